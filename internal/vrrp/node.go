package vrrp

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Node.
type Options struct {
	Instances  []InstanceConfig
	Scripts    []ScriptConfig
	SyncGroups []SyncGroupConfig
	// System does the I/O (NewLinuxSystem); required.
	System System
	// Notifier gets notify events; nil drops them.
	Notifier Notifier
	// LinkDelays are interface_up_down_delays, by interface name.
	LinkDelays map[string]LinkDelay
	// Static are the static_ipaddress, static_routes and static_rules:
	// installed while the node runs, whatever the instances' states.
	Static StaticConfig
	// OnChange is called after every state or priority change of an
	// instance, in order, from the notification goroutine.
	OnChange func(InstanceStatus)
	// BFD tells the state of the sessions track_bfd names; without it
	// they stay down.
	BFD    BFDWatcher
	Logger *slog.Logger
}

// InstanceStatus is the observable state of one instance (API, CLI,
// metrics).
type InstanceStatus struct {
	Name              string        `json:"name"`
	SyncGroup         string        `json:"sync_group,omitempty"`
	Interface         string        `json:"interface"`
	VRID              int           `json:"virtual_router_id"`
	Version           int           `json:"version"`
	State             State         `json:"state"`
	BasePriority      int           `json:"base_priority"`
	EffectivePriority int           `json:"effective_priority"`
	LocalAddr         netip.Addr    `json:"local_addr,omitzero"`
	MasterAddr        netip.Addr    `json:"master_addr,omitzero"`
	MasterPriority    int           `json:"master_priority,omitempty"`
	LastAdvert        time.Time     `json:"last_advert,omitzero"`
	AdvertInterval    time.Duration `json:"advert_interval_ns"`
	// MasterAdvertInterval is the interval the master advertises
	// (VRRPv3; the own one until an advert is heard), MasterDown the
	// master-down interval it makes (RFC 5798 §6.1).
	MasterAdvertInterval time.Duration `json:"master_advert_interval_ns"`
	MasterDown           time.Duration `json:"master_down_ns"`
	// Started is when the instance began counting (its start, or the
	// reload that made it anew); UpSince when it first left INIT.
	Started    time.Time      `json:"started,omitzero"`
	UpSince    time.Time      `json:"up_since,omitzero"`
	VirtualIPs []netip.Prefix `json:"virtual_ipaddress"`
	// NoAccept: as MASTER the host drops packets to the virtual
	// addresses other than the virtual services' (InstanceConfig).
	NoAccept bool `json:"no_accept,omitempty"`
	// UnicastChecksum is, for a unicast instance, keepalived's word for
	// the checksum it uses: "no" (the standard one), "never", "config"
	// or "auto" (old_unicast_checksum, InstanceConfig).
	UnicastChecksum string `json:"unicast_checksum,omitempty"`
	// Waiting: in INIT until a weight-0 tracker's first result (a
	// vrrp_script on its first run), as keepalived waits.
	Waiting     bool         `json:"waiting,omitempty"`
	Trackers    []Tracker    `json:"trackers,omitempty"`
	Transitions []Transition `json:"transitions"`
	Counters    Counters     `json:"counters"`

	cfg InstanceConfig // the configuration in force, with its defaults
}

// Config is the configuration the instance runs, defaults filled in.
func (s *InstanceStatus) Config() InstanceConfig { return s.cfg }

// StaticConfig are static addresses (each with its Dev), routes and
// rules.
type StaticConfig struct {
	Addresses []VirtualIP    `json:"static_ipaddress,omitempty"`
	Routes    []VirtualRoute `json:"static_routes,omitempty"`
	Rules     []VirtualRule  `json:"static_rules,omitempty"`
}

func (s StaticConfig) empty() bool {
	return len(s.Addresses)+len(s.Routes)+len(s.Rules) == 0
}

// config is the static set as an InstanceConfig the System takes.
func (s StaticConfig) config() InstanceConfig {
	return InstanceConfig{Name: "static", VirtualIPs: s.Addresses, VirtualRoutes: s.Routes, VirtualRules: s.Rules}
}

// Counters of one instance.
type Counters struct {
	AdvertsSent uint64 `json:"adverts_sent"`
	// AdvertsReceived counts the adverts that passed the instance's
	// checks (the others are in Dropped).
	AdvertsReceived uint64 `json:"adverts_received"`
	SendErrors      uint64 `json:"send_errors"`
	Announcements   uint64 `json:"announcements"`
	BecameMaster    uint64 `json:"became_master"`
	// ReleasedMaster counts the instance's leaving MASTER for BACKUP or
	// FAULT (not at a stop, as keepalived's).
	ReleasedMaster uint64 `json:"released_master"`
	// PriorityZeroReceived and PriorityZeroSent count the adverts of
	// priority 0 (a MASTER resigning) received and sent.
	PriorityZeroReceived uint64 `json:"priority_zero_received"`
	PriorityZeroSent     uint64 `json:"priority_zero_sent"`
	// AddressListErrors counts received adverts whose addresses are not
	// the instance's virtual addresses (govs still takes them, as RFC
	// 5798 §7.1 advises) and those dropped as DropDestination, as
	// keepalived's addr_list_err counts both.
	AddressListErrors uint64 `json:"address_list_errors"`
	// AddressesRestored counts virtual addresses a MASTER put back
	// after someone else deleted them (checkVIPs).
	AddressesRestored uint64 `json:"addresses_restored,omitempty"`
	// RoutesRestored counts virtual routes and rules a MASTER put back
	// after someone else deleted them (or the kernel dropped them).
	RoutesRestored uint64                `json:"routes_restored,omitempty"`
	Dropped        map[DropReason]uint64 `json:"dropped,omitempty"`
}

// Node runs VRRP instances, their trackers and sync groups.
type Node struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	scripts map[string]ScriptConfig
	groupOf map[string]*SyncGroupConfig
	cfgs    []InstanceConfig

	mu     sync.Mutex
	status []InstanceStatus
	shown  shownConfig    // under mu: the scripts and groups in force
	busy   map[string]int // under mu: runs of each vrrp_script under way

	running bool // under mu: Run is between its start and its end
	reloads chan *reloadReq
	done    chan struct{} // closed when Run returns

	// Owned by the Run goroutine.
	insts      []*instance
	byKey      map[string]int
	groupState map[string]State
	bg         context.Context
	wg         *sync.WaitGroup
	events     chan any
	q          *queue
	watchers   map[string]watcher
	watchGen   uint64
	links      *debouncer // interface_up_down_delays
	staticErr  string     // the last reason static addresses could not be put back

	garp garpPacer // gratuitous ARP / NA pacing, shared by the instances
}

// watcher is a running tracker goroutine (a vrrp_script, track_file or
// track_process), started once per tracker key whatever the number of
// instances that track it. gen tells its events from those of an earlier
// watcher of the same key that a reload stopped.
type watcher struct {
	sig  string
	gen  uint64
	stop context.CancelFunc
}

// trackEvent is an EventTrack from the watcher of generation gen.
type trackEvent struct {
	gen uint64
	ev  EventTrack
}

type instance struct {
	// garpGen moves on when the instance gives its addresses up, and
	// vips are the addresses its configuration has (storeVIPs): a paced
	// announcement still queued goes only while both hold (garpPacer)
	garpGen atomic.Uint64
	vips    atomic.Pointer[map[netip.Prefix]bool]
	cfg     InstanceConfig
	m       *Machine
	conn    Conn // nil while it cannot open (open, retryOpen)
	count   Counters
	// started is when the instance (and its counters) began: a reload
	// that replaces it starts them again
	started time.Time
	// upSince is when it first left INIT (zero before)
	upSince time.Time
	// openErr is the last reason the socket could not open, sendErr
	// the last advert's (logged when it changes)
	openErr, sendErr string
	// pinned is the source address a track_src_ip instance lost and
	// waits for (retryOpen)
	pinned netip.Addr
	// vipErr is the last reason deleted virtual addresses could not be
	// put back (checkVIPs)
	vipErr string
	// heldStart: its start waits for a member of its sync group that
	// waits for a script's first result (Machine.Waiting), as keepalived
	// holds the whole group in INIT meanwhile (releaseHeld)
	heldStart bool
	// oldChecksumSeen: a peer's advert checked only with keepalived's
	// old unicast checksum, which the instance uses from then on
	// (InstanceConfig.OldUnicastChecksum "")
	oldChecksumSeen bool
}

// oldChecksum says whether the instance sends and expects keepalived's
// old VRRPv3 unicast checksum, configured or seen.
func (in *instance) oldChecksum() bool {
	c := &in.cfg
	return c.oldChecksumFamily() && (c.OldUnicastChecksum == "config" || c.OldUnicastChecksum == "" && in.oldChecksumSeen)
}

// checksumMode is keepalived's word for the instance's unicast checksum
// (its "Unicast checksum compatibility"): no, never, config or auto.
func (in *instance) checksumMode() string {
	switch {
	case in.cfg.OldUnicastChecksum == "config":
		return "config"
	case in.cfg.OldUnicastChecksum == "never":
		return "never"
	case in.oldChecksumSeen:
		return "auto"
	}
	return "no"
}

// inbound is a packet read from an instance's socket. A packet of an
// instance a reload removed, or of a socket it replaced, is dropped.
type inbound struct {
	in   *instance
	conn Conn
	pkt  Packet
}

// plan is a checked node configuration.
type plan struct {
	scripts map[string]ScriptConfig
	groupOf map[string]*SyncGroupConfig
	cfgs    []InstanceConfig
}

// CheckOptions checks the instances, scripts and sync groups of opts as
// NewNode and Reload do, without opening or changing anything.
func CheckOptions(opts Options) error {
	_, err := preparePlan(opts)
	return err
}

func preparePlan(opts Options) (*plan, error) {
	p := &plan{scripts: map[string]ScriptConfig{}, groupOf: map[string]*SyncGroupConfig{}}
	var errs []error
	for _, s := range opts.Scripts {
		if err := s.Validate(); err != nil {
			errs = append(errs, err)
		}
		p.scripts[s.Name] = s.WithDefaults()
	}
	names := map[string]bool{}
	// one virtual router per VRID on an interface and family, and per
	// multicast group: with mcast_dst_ip, as keepalived 2.2.7, two
	// instances may share a VRID on other groups (each socket reads its
	// own group's adverts); unicast instances have none
	type vr struct {
		ifname string
		vrid   int
		v6     bool
		group  netip.Addr
	}
	vrids := map[vr]string{}
	for _, c := range opts.Instances {
		c = c.WithDefaults()
		if err := c.Validate(); err != nil {
			errs = append(errs, err)
		}
		if names[c.Name] {
			errs = append(errs, fmt.Errorf("vrrp_instance %s: defined twice", c.Name))
		}
		names[c.Name] = true
		k := vr{c.Interface, c.VRID, c.IsIPv6(), c.multicastGroup()}
		if other, ok := vrids[k]; ok {
			errs = append(errs, fmt.Errorf("vrrp_instance %s: virtual_router_id %d on %s already used by %s", c.Name, c.VRID, c.Interface, other))
		}
		vrids[k] = c.Name
		if _, err := ResolveTrackers(&c, p.scripts); err != nil {
			errs = append(errs, err)
		}
		p.cfgs = append(p.cfgs, c)
	}
	for i := range opts.SyncGroups {
		g := &opts.SyncGroups[i]
		for _, mname := range g.Members {
			if !names[mname] {
				errs = append(errs, fmt.Errorf("vrrp_sync_group %s: no vrrp_instance %s", g.Name, mname))
			}
			if prev, ok := p.groupOf[mname]; ok {
				errs = append(errs, fmt.Errorf("vrrp_sync_group %s: instance %s already in group %s", g.Name, mname, prev.Name))
			}
			p.groupOf[mname] = g
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

// NewNode checks the configuration and returns a Node ready to Run.
func NewNode(opts Options) (*Node, error) {
	if opts.System == nil {
		return nil, errors.New("vrrp: no System")
	}
	p, err := preparePlan(opts)
	if err != nil {
		return nil, err
	}
	n := &Node{
		opts:    opts,
		log:     opts.Logger,
		now:     time.Now,
		byKey:   map[string]int{},
		reloads: make(chan *reloadReq),
		done:    make(chan struct{}),

		groupState: map[string]State{},
		watchers:   map[string]watcher{},
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	n.adopt(p)
	return n, nil
}

// adopt makes p the configuration of a node that is not running.
func (n *Node) adopt(p *plan) {
	n.scripts, n.groupOf, n.cfgs = p.scripts, p.groupOf, p.cfgs
	n.status = nil
	for _, c := range n.cfgs {
		n.status = append(n.status, n.statusBase(c, InstanceStatus{}))
	}
	n.shown = p.shown()
}

// shownConfig is the part of the configuration Dump shows besides the
// instances'.
type shownConfig struct {
	scripts []ScriptConfig
	groups  []SyncGroupConfig
}

// shown returns p's scripts, sorted by name, and its sync groups.
func (p *plan) shown() shownConfig {
	var sc shownConfig
	for _, s := range p.scripts {
		sc.scripts = append(sc.scripts, s)
	}
	slices.SortFunc(sc.scripts, func(a, b ScriptConfig) int { return strings.Compare(a.Name, b.Name) })
	seen := map[string]bool{}
	for _, c := range p.cfgs {
		if g := p.groupOf[c.Name]; g != nil && !seen[g.Name] {
			seen[g.Name] = true
			sc.groups = append(sc.groups, *g)
		}
	}
	return sc
}

// Dump is what keepalived's state files (keepalived.data, .stats and
// .json) show of a node: the instances with their configurations in
// force, the vrrp_scripts and the sync groups.
type Dump struct {
	Instances  []InstanceStatus
	Scripts    []ScriptConfig
	SyncGroups []SyncGroupConfig
	// Running names the scripts being run at the time.
	Running []string
}

// scriptBusy records a run of the vrrp_script name starting or ending.
func (n *Node) scriptBusy(name string, start bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.busy == nil {
		n.busy = map[string]int{}
	}
	if start {
		n.busy[name]++
	} else if n.busy[name]--; n.busy[name] <= 0 {
		delete(n.busy, name)
	}
}

// Dump returns a snapshot for keepalived's state files.
func (n *Node) Dump() Dump {
	n.mu.Lock()
	defer n.mu.Unlock()
	d := Dump{Instances: slices.Clone(n.status), Scripts: slices.Clone(n.shown.scripts), SyncGroups: slices.Clone(n.shown.groups)}
	for name := range n.busy {
		d.Running = append(d.Running, name)
	}
	for i := range d.Instances {
		d.Instances[i].Counters.Dropped = cloneMap(d.Instances[i].Counters.Dropped)
	}
	return d
}

// statusBase sets the configured fields of an instance's status.
func (n *Node) statusBase(c InstanceConfig, s InstanceStatus) InstanceStatus {
	s.Name, s.Interface, s.VRID, s.Version = c.Name, c.Interface, c.VRID, c.Version
	s.BasePriority, s.VirtualIPs, s.SyncGroup = c.Priority, vipPrefixes(&c), n.groupName(c.Name)
	s.NoAccept = c.NoAccept
	s.cfg = c
	return s
}

func (n *Node) groupName(inst string) string {
	if g := n.groupOf[inst]; g != nil {
		return g.Name
	}
	return ""
}

func vipPrefixes(c *InstanceConfig) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(c.VirtualIPs)+len(c.VirtualIPsExcluded))
	for _, v := range allVIPs(c) {
		out = append(out, v.Prefix)
	}
	return out
}

// Status returns a snapshot of every instance.
func (n *Node) Status() []InstanceStatus {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := slices.Clone(n.status)
	for i := range out {
		out[i].Counters.Dropped = cloneMap(out[i].Counters.Dropped)
	}
	return out
}

func cloneMap(m map[DropReason]uint64) map[DropReason]uint64 {
	if m == nil {
		return nil
	}
	c := make(map[DropReason]uint64, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Owns reports whether an instance in MASTER state holds addr as a
// virtual address (the director balances only these VIPs; ha_suspend
// suspends checks of the others).
func (n *Node) Owns(addr netip.Addr) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, s := range n.status {
		if s.State != StateMaster {
			continue
		}
		for _, p := range s.VirtualIPs {
			if p.Addr() == addr {
				return true
			}
		}
	}
	return false
}

// Run opens the sockets, starts every instance and runs until ctx is
// done; then it shuts the instances down (priority 0 adverts, addresses
// removed, STOP notifications) and returns after its goroutines exited.
// It returns an error only when it cannot start. Call it once.
func (n *Node) Run(ctx context.Context) error {
	n.mu.Lock()
	n.running = true
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		n.running = false
		close(n.done)
		n.mu.Unlock()
	}()
	n.events = make(chan any, 256)
	var wg sync.WaitGroup
	defer wg.Wait()
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	n.bg, n.wg = bg, &wg

	q := newQueue()
	n.q = q
	wg.Go(func() { q.run() })
	defer q.close()

	n.newLinks()
	if err := n.open(ctx); err != nil {
		n.closeConns()
		return err
	}
	defer n.closeConns()
	for _, in := range n.insts {
		n.startReceiver(in)
	}
	n.installStatic(ctx, n.opts.Static)
	n.watchLinks()
	n.syncWatchers(n.watchSpecs(n.cfgs, n.scripts))

	for i, in := range n.insts {
		// the members of a sync group one of whose members waits for a
		// script's first result wait with it, in INIT (releaseHeld)
		if g := n.groupOf[in.cfg.Name]; g != nil && !in.m.pendingFault() && n.groupWaiting(g) {
			in.heldStart = true
			n.publish(i)
			continue
		}
		n.apply(bg, q, i, EventStartup{})
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	for {
		n.armTimer(timer)
		// the ticker: sockets to open again, sources to check
		var retryC <-chan time.Time
		if len(n.insts) > 0 || !n.opts.Static.empty() {
			retryC = retry.C
		}
		select {
		case <-retryC:
			if n.waitingForSocket() {
				n.retryOpen(bg, q)
			}
			n.checkAddrs(bg, q)
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			for i := range n.insts {
				n.apply(sctx, q, i, EventShutdown{})
			}
			stopBG()
			n.closeConns()
			for _, in := range n.insts {
				n.removeVMAC(sctx, &in.cfg, nil)
			}

			cancel()
			return nil
		case <-timer.C:
			for i := range n.insts {
				if d := n.insts[i].m.NextDeadline(); !d.IsZero() && !n.now().Before(d) {
					n.apply(bg, q, i, EventTimer{})
				}
			}
		case ev := <-n.events:
			n.dispatch(bg, q, ev)
		case req := <-n.reloads:
			req.reply <- n.reload(req.plan, req.opts)
		}
	}
}

// open opens every instance's socket. One that cannot open for want of
// something that may come later (its interface, an address on it) starts
// in FAULT, held there by its socket tracker, and Run tries again every
// second and whenever a link comes up (retryOpen), as keepalived waits for an
// interface. Lacking the permission to open raw sockets fails Run.
func (n *Node) open(ctx context.Context) error {
	n.insts = nil
	for i := range n.cfgs {
		c := &n.cfgs[i]
		conn, err := n.openConn(ctx, c)
		if errors.Is(err, os.ErrPermission) {
			// nothing runs yet: the VMAC interfaces made so far go
			n.closeConns()
			for j := range n.cfgs[:i+1] {
				n.removeVMAC(ctx, &n.cfgs[j], nil)
			}
			return err
		}
		in := &instance{cfg: *c, conn: conn, started: n.now()}
		in.storeVIPs()
		var local netip.Addr
		if err != nil {
			in.conn, in.openErr = nil, err.Error()
			n.log.Error("vrrp instance starts in FAULT: its socket cannot open yet (tried again every second)", "instance", c.Name, "err", err)
		} else {
			local = conn.LocalAddr()
		}
		n.insts = append(n.insts, in)
		m, err := NewMachine(*c, local, n.trackers(ctx, c, nil, nil, in.conn == nil))
		if err != nil {
			return err
		}
		in.m = m
		n.byKey[c.Name] = i
	}
	return nil
}

// socketKey is the tracker that holds an instance without a socket in
// FAULT.
func socketKey(name string) string { return "socket:" + name }

// retryOpen tries again to open the sockets of the instances that have
// none; one that opens leaves FAULT through its socket tracker.
func (n *Node) retryOpen(ctx context.Context, q *queue) {
	for i, in := range n.insts {
		if in.conn != nil {
			continue
		}
		cfg := in.cfg
		if in.pinned.IsValid() {
			cfg.UnicastSrcIP = in.pinned
		}
		conn, err := n.openConn(ctx, &cfg)
		if err != nil {
			if msg := err.Error(); msg != in.openErr {
				in.openErr = msg
				n.log.Warn("vrrp instance socket still cannot open", "instance", in.cfg.Name, "err", err)
			}
			continue
		}
		n.log.Info("vrrp instance socket open", "instance", in.cfg.Name, "local", conn.LocalAddr())
		in.conn, in.openErr, in.pinned = conn, "", netip.Addr{}
		in.m.setLocal(conn.LocalAddr())
		n.startReceiver(in)
		n.apply(ctx, q, i, EventTrack{Key: socketKey(in.cfg.Name), OK: true})
	}
}

// checkSources checks that the adverts' source address of each instance
// is still an address of this host. A MASTER whose source went would
// advertise in vain (the kernel refuses the source) while the BACKUP
// takes over: both would hold the addresses. As keepalived does, an
// instance whose source was chosen, not configured, takes another one at
// once (a new socket, no change of state); one with unicast_src_ip or
// track_src_ip goes to FAULT until its address is back (retryOpen). A
// link-local source under duplicate address detection (the interface
// came up again) is kept: it is usable again in a second or two.
func (n *Node) checkSources(ctx context.Context, q *queue, local map[netip.Addr]AddrState) {
	for i, in := range n.insts {
		if in.conn == nil || in.cfg.vmacLinkLocalSource() {
			// (an IPv6 VMAC interface's link-local source is govs's
			// own, there while MASTER)
			continue
		}
		src := in.conn.LocalAddr()
		switch local[src] {
		case AddrUsable:
			continue
		case AddrTentative:
			if src.Is6() && src.IsLinkLocalUnicast() && !in.cfg.UnicastSrcIP.IsValid() {
				continue
			}
		}
		in.conn.Close()
		in.conn = nil
		if !in.cfg.TrackSrcIP && !in.cfg.UnicastSrcIP.IsValid() {
			if conn, err := n.opts.System.OpenConn(ctx, &in.cfg); err == nil {
				n.log.Warn("vrrp advert source address gone: another one taken", "instance", in.cfg.Name, "was", src, "now", conn.LocalAddr())
				in.conn = conn
				in.m.setLocal(conn.LocalAddr())
				n.startReceiver(in)
				n.publish(i)
				continue
			}
		}
		if in.cfg.TrackSrcIP && !in.cfg.UnicastSrcIP.IsValid() {
			in.pinned = src
		}
		in.openErr = fmt.Sprintf("source address %s gone", src)
		n.log.Error("vrrp advert source address gone: FAULT until it is back", "instance", in.cfg.Name, "address", src)
		n.apply(ctx, q, i, EventTrack{Key: socketKey(in.cfg.Name), OK: false})
	}
}

// checkLinks closes the socket of an instance whose interface went away
// or was made anew (a new index: the socket, bound to the old one, would
// neither send nor receive, and a MASTER there would go on unheard while
// its peer takes over), or whose use_vmac interface is gone. The instance
// is in FAULT until retryOpen opens it again, making the use_vmac
// interface anew, once the interface is back.
func (n *Node) checkLinks(ctx context.Context, q *queue) {
	for i, in := range n.insts {
		if in.conn == nil {
			continue
		}
		name, idx := in.conn.Device()
		why := ""
		if name != "" {
			cur, err := n.opts.System.LinkIndex(ctx, name)
			switch {
			case errors.Is(err, ErrNotYet):
				why = name + " gone"
			case err == nil && cur != idx:
				why = name + " made anew"
			}
		}
		if why == "" && in.cfg.VMAC != "" && in.cfg.VMAC != name {
			if _, err := n.opts.System.LinkIndex(ctx, in.cfg.VMAC); errors.Is(err, ErrNotYet) {
				why = in.cfg.VMAC + " gone"
			}
		}
		if why == "" {
			continue
		}
		in.conn.Close()
		in.conn = nil
		in.openErr = "interface " + why
		n.log.Error("vrrp instance interface gone or made anew: FAULT until its socket opens again", "instance", in.cfg.Name, "interface", why)
		n.apply(ctx, q, i, EventTrack{Key: socketKey(in.cfg.Name), OK: false})
	}
}

// checkAddrs checks, once a second, the adverts' sources (checkSources)
// and the virtual addresses of the MASTER instances (checkVIPs) and the
// static ones against the host's addresses.
func (n *Node) checkAddrs(ctx context.Context, q *queue) {
	local, err := n.opts.System.LocalAddrs(ctx)
	if err != nil {
		return // a failed listing is no evidence: next second
	}
	n.checkLinks(ctx, q)
	n.checkSources(ctx, q, local)
	n.checkVIPs(ctx, local)
	if n.opts.Static.empty() {
		return
	}
	st := n.opts.Static.config()
	back, err := n.putBack(ctx, st, local)
	if len(back.VirtualIPs) > 0 {
		n.log.Warn("static addresses deleted by someone else: put back", "addresses", vipPrefixes(&back))
	}
	// routes and rules: the kernel drops a route whose device went down
	// or lost its address
	if len(st.VirtualRoutes)+len(st.VirtualRules) > 0 {
		added, rerr := n.opts.System.RestoreRoutes(ctx, &st)
		if added > 0 {
			n.log.Warn("static routes or rules gone: put back", "count", added)
		}
		err = errors.Join(err, rerr)
	}
	if err != nil {
		if msg := err.Error(); msg != n.staticErr {
			n.staticErr = msg
			n.log.Error("static addresses, routes or rules cannot be put back", "err", err)
		}
	} else {
		n.staticErr = ""
	}
}

// RemoveStatic removes the static addresses, routes and rules. The
// director calls it at its final stop, after Run returned: a lame-duck
// stop ends VRRP first, and the services on static addresses keep
// forwarding until then.
func (n *Node) RemoveStatic(ctx context.Context) error {
	if n.opts.Static.empty() {
		return nil
	}
	st := n.opts.Static.config()
	return n.opts.System.RemoveAddresses(ctx, &st)
}

// installStatic installs the static addresses, routes and rules.
func (n *Node) installStatic(ctx context.Context, s StaticConfig) {
	if s.empty() {
		return
	}
	st := s.config()
	if err := n.opts.System.AddAddresses(ctx, &st); err != nil {
		n.log.Error("install static addresses, routes and rules", "err", err)
	}
}

// putBack adds, one by one, the addresses of cfg (not no_track ones)
// that local lacks. It returns those it put back, as a configuration of
// them alone (each with its device) to announce them with.
func (n *Node) putBack(ctx context.Context, cfg InstanceConfig, local map[netip.Addr]AddrState) (InstanceConfig, error) {
	d := cfg
	d.VirtualIPsExcluded, d.VirtualRoutes, d.VirtualRules, d.VMAC = nil, nil, nil, ""
	var back []VirtualIP
	var errs []error
	for _, v := range allVIPs(&cfg) {
		if _, there := local[v.Prefix.Addr()]; v.NoTrack || there {
			continue
		}
		d.VirtualIPs = []VirtualIP{cfg.withDev(v)}
		if err := n.opts.System.AddAddresses(ctx, &d); err != nil {
			errs = append(errs, err)
			continue
		}
		back = append(back, d.VirtualIPs[0])
	}
	d.VirtualIPs = back
	return d, errors.Join(errs...)
}

// checkVIPs puts back the virtual addresses a MASTER holds that someone
// else deleted (a network manager flushing the addresses it does not
// know, an operator), and announces them; an address with no_track is
// left alone. Its virtual routes and rules that went are added again
// (not no_track ones). keepalived (2.0) takes such an instance to BACKUP
// and lets the next MASTER add them back; govs restores them where they
// are, with no failover.
func (n *Node) checkVIPs(ctx context.Context, local map[netip.Addr]AddrState) {
	for i, in := range n.insts {
		if in.m.State() != StateMaster {
			continue
		}
		back, err := n.putBack(ctx, in.cfg, local)
		if len(in.cfg.VirtualRoutes)+len(in.cfg.VirtualRules) > 0 {
			added, rerr := n.opts.System.RestoreRoutes(ctx, &in.cfg)
			if added > 0 {
				n.log.Warn("vrrp virtual routes or rules gone: put back", "instance", in.cfg.Name, "count", added)
				in.count.RoutesRestored += uint64(added)
				n.publish(i)
			}
			err = errors.Join(err, rerr)
		}
		if err != nil {
			// (every second until it works: logged when the reason changes)
			if msg := err.Error(); msg != in.vipErr {
				in.vipErr = msg
				n.log.Error("vrrp virtual addresses deleted by someone else cannot be put back", "instance", in.cfg.Name, "err", err)
			}
		} else {
			in.vipErr = ""
		}
		if len(back.VirtualIPs) == 0 {
			continue
		}
		n.log.Warn("vrrp virtual addresses deleted by someone else: put back", "instance", in.cfg.Name, "addresses", vipPrefixes(&back))
		in.count.AddressesRestored += uint64(len(back.VirtualIPs))
		n.announce(ctx, in, back, in.cfg.GARPMasterRepeat, "addresses put back")
		n.publish(i)
	}
}

func (n *Node) waitingForSocket() bool {
	return slices.ContainsFunc(n.insts, func(in *instance) bool { return in.conn == nil })
}

// trackers resolves an instance's trackers in their current state: an
// interface as the system reports it now; an object whose watcher keeps
// running (kept) as the instances saw it last (cur); any other in the
// state its new watcher starts from.
func (n *Node) trackers(ctx context.Context, c *InstanceConfig, cur map[string]Tracker, kept map[string]bool, noSocket bool) []Tracker {
	trackers, _ := ResolveTrackers(c, n.scripts)
	// FAULT while the instance has no socket (open, checkSources)
	trackers = append(trackers, Tracker{Key: socketKey(c.Name), OK: !noSocket})
	for j := range trackers {
		t := &trackers[j]
		if name, ok := strings.CutPrefix(t.Key, "interface:"); ok {
			// the state the instances have seen, when there is one
			// (interface_up_down_delays may hold a change back)
			if up, known := n.links.state(name); known {
				t.OK = up
				continue
			}
			up, err := n.opts.System.LinkUp(ctx, name)
			if err != nil {
				n.log.Warn("track interface", "instance", c.Name, "interface", name, "err", err)
			}
			t.OK = up
			n.links.seed(name, up)
			continue
		}
		if was, ok := cur[t.Key]; ok && kept[t.Key] {
			t.OK, t.Value, t.Pending, t.Loose = was.OK, was.Value, was.Pending, was.Loose
		} else if cur != nil && t.Pending {
			// a script a reload starts: pending without failing, as
			// keepalived's INIT/RELOAD (seen: an instance a reload adds
			// with a slow weight-0 script goes to BACKUP, then MASTER)
			t.Loose = true
		}
	}
	return trackers
}

func (n *Node) closeConns() {
	for _, in := range n.insts {
		if in.conn != nil {
			in.conn.Close()
		}
	}
}

// openConn sets up an instance's use_vmac interface, if it has one, and
// opens its socket.
func (n *Node) openConn(ctx context.Context, c *InstanceConfig) (Conn, error) {
	if c.VMAC != "" {
		if err := n.opts.System.SetupVMAC(ctx, c); err != nil {
			return nil, fmt.Errorf("vrrp_instance %s: %w", c.Name, err)
		}
		n.log.Debug("vrrp use_vmac interface ready", "instance", c.Name, "interface", c.VMAC, "mac", c.VirtualMAC().String(), "parent", c.Interface)
	}
	conn, err := n.opts.System.OpenConn(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("vrrp_instance %s: %w", c.Name, err)
	}
	return conn, nil
}

// removeVMAC deletes an instance's use_vmac interface, once its
// addresses are gone and its socket closed, unless an instance of keep
// uses an interface of the same name.
func (n *Node) removeVMAC(ctx context.Context, c *InstanceConfig, keep []InstanceConfig) {
	if c.VMAC == "" || slices.ContainsFunc(keep, func(k InstanceConfig) bool { return k.VMAC == c.VMAC }) {
		return
	}
	if err := n.opts.System.RemoveVMAC(ctx, c); err != nil {
		n.log.Warn("vrrp use_vmac interface", "instance", c.Name, "err", err)
	}
}

// startReceiver reads in's current socket until it is closed.
func (n *Node) startReceiver(in *instance) {
	c := in.conn
	if c == nil {
		return // it has none yet (retryOpen starts it)
	}
	n.wg.Go(func() { n.receive(n.bg, in, c, n.events) })
}

func (n *Node) receive(ctx context.Context, in *instance, c Conn, events chan<- any) {
	for {
		pkt, err := c.Recv()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// A transient error (e.g. ENOBUFS): keep receiving.
			n.log.Warn("vrrp receive", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		select {
		case events <- inbound{in: in, conn: c, pkt: pkt}:
		case <-ctx.Done():
			return
		}
	}
}

// newLinks makes the debouncer of the link changes (before open, which
// seeds it with the states the instances start from).
func (n *Node) newLinks() {
	ctx, events := n.bg, n.events
	n.links = newDebouncer(n.opts.LinkDelays, func(name string, up bool) {
		select {
		case events <- EventTrack{Key: interfaceKey(name), OK: up}:
		case <-ctx.Done():
		}
	})
}

func (n *Node) watchLinks() {
	ctx := n.bg
	links := n.links
	n.wg.Go(func() {
		defer links.stop()
		err := n.opts.System.WatchLinks(ctx, links.event)
		if err != nil && ctx.Err() == nil {
			n.log.Warn("watch links", "err", err)
		}
	})
}

// watchSpec is a tracker goroutine to run: sig identifies its settings.
type watchSpec struct {
	sig string
	run func(ctx context.Context, send func(EventTrack))
}

// watchSpecs lists the watchers the instances cfgs need, by tracker key.
func (n *Node) watchSpecs(cfgs []InstanceConfig, scripts map[string]ScriptConfig) map[string]watchSpec {
	specs := map[string]watchSpec{}
	sig := func(a ...any) string {
		b, _ := json.Marshal(a)
		return string(b)
	}
	for _, c := range cfgs {
		for _, ts := range c.TrackScripts {
			sc, ok := scripts[ts.Name]
			if !ok {
				continue
			}
			// the weight is the instances' business, not the watcher's
			id := sc
			id.Weight, id.Reverse = 0, false
			specs[scriptKey(sc.Name)] = watchSpec{sig: sig(id), run: func(ctx context.Context, send func(EventTrack)) {
				watchScript(ctx, sc, func(ok bool) {
					n.log.Info("vrrp script state", "script", sc.Name, "ok", ok)
					send(EventTrack{Key: scriptKey(sc.Name), OK: ok})
				}, func(b bool) { n.scriptBusy(sc.Name, b) })
			}}
		}
		for _, tf := range c.TrackFiles {
			specs[fileKey(tf.Name)] = watchSpec{sig: sig(tf.Path, tf.Init), run: func(ctx context.Context, send func(EventTrack)) {
				watchFile(ctx, tf, func(v int) { send(EventTrack{Key: fileKey(tf.Name), Value: v}) }, func() {
					n.log.Warn("vrrp track file holds a number outside 32 bits: ignored, its last value kept (as keepalived: \"Invalid number ... - ignoring\")",
						"track_file", tf.Name, "file", tf.Path)
				})
			}}
		}
		for _, tb := range c.TrackBFDs {
			if n.opts.BFD == nil {
				continue
			}
			specs[bfdKey(tb.Name)] = watchSpec{sig: tb.Name, run: func(ctx context.Context, send func(EventTrack)) {
				n.opts.BFD.Watch(ctx, tb.Name, func(up bool) {
					n.log.Info("vrrp tracked bfd state", "track_bfd", tb.Name, "up", up)
					send(EventTrack{Key: bfdKey(tb.Name), OK: up})
				})
			}}
		}
		for _, tp := range c.TrackProcesses {
			specs[processKey(tp.Name)] = watchSpec{sig: sig(tp.Match), run: func(ctx context.Context, send func(EventTrack)) {
				watchProcess(ctx, tp, n.log, func(ok bool) {
					n.log.Info("vrrp tracked process state", "track_process", tp.Name, "up", ok)
					send(EventTrack{Key: processKey(tp.Name), OK: ok})
				})
			}}
		}
	}
	return specs
}

// syncWatchers runs the watchers of specs: one whose settings did not
// change keeps running (kept), the others are stopped or started. A
// stopped watcher's events still queued are dropped (dispatch).
func (n *Node) syncWatchers(specs map[string]watchSpec) (kept map[string]bool) {
	kept = map[string]bool{}
	for k, w := range n.watchers {
		if s, ok := specs[k]; ok && s.sig == w.sig {
			kept[k] = true
			continue
		}
		w.stop()
		delete(n.watchers, k)
	}
	for k, s := range specs {
		if kept[k] {
			continue
		}
		n.watchGen++
		gen := n.watchGen
		ctx, stop := context.WithCancel(n.bg)
		n.watchers[k] = watcher{sig: s.sig, gen: gen, stop: stop}
		events := n.events
		send := func(ev EventTrack) {
			select {
			case events <- trackEvent{gen: gen, ev: ev}:
			case <-ctx.Done():
			}
		}
		n.wg.Go(func() { s.run(ctx, send) })
	}
	return kept
}

func (n *Node) armTimer(t *time.Timer) {
	var next time.Time
	for _, in := range n.insts {
		if d := in.m.NextDeadline(); !d.IsZero() && (next.IsZero() || d.Before(next)) {
			next = d
		}
	}
	wait := time.Hour
	if !next.IsZero() {
		wait = max(0, next.Sub(n.now()))
	}
	t.Reset(wait)
}

func (n *Node) dispatch(ctx context.Context, q *queue, ev any) {
	switch ev := ev.(type) {
	case inbound:
		idx := slices.Index(n.insts, ev.in)
		if idx < 0 || ev.in.conn != ev.conn {
			return // the instance or its socket went in a reload
		}
		in := ev.in
		if ev.pkt.Drop == "" && ev.pkt.accept != nil && !ev.pkt.accept() {
			ev.pkt.Drop = DropReplay
		}
		if ev.pkt.Drop != "" {
			// refused by the socket (an AH packet)
			n.countDrop(in, ev.pkt.Drop)
			n.log.Debug("vrrp advert dropped", "instance", in.cfg.Name, "src", ev.pkt.Src, "reason", ev.pkt.Drop)
			n.publish(idx)
			return
		}
		if d := ev.pkt.Data; len(d) >= headerLen && d[1] != uint8(in.cfg.VRID) {
			// another VRID's advert (every instance's socket on the
			// interface reads it): dropped before any other check, as
			// keepalived sorts adverts by VRID first; so its checksum
			// cannot switch this instance to the old one
			n.countDrop(in, DropVRID)
			if in.cfg.LogUnknownVRIDs {
				n.unknownVRID(idx, d[1], ev.pkt.Src)
			}
			n.publish(idx)
			return
		}
		if dst := ev.pkt.Dst; dst.IsValid() && dst.IsMulticast() != (len(in.cfg.UnicastPeers) == 0) {
			// as keepalived: "Expected multicast packet but received
			// unicast packet", and the other way round
			n.countDrop(in, DropDestination)
			in.count.AddressListErrors++
			n.log.Debug("vrrp advert dropped", "instance", in.cfg.Name, "src", ev.pkt.Src, "dst", dst, "reason", DropDestination)
			n.publish(idx)
			return
		}
		a, err := n.parseAdvert(in, ev.pkt)
		if err != nil {
			var pe *ParseError
			reason := DropLength
			if errors.As(err, &pe) {
				reason = pe.Reason
			}
			n.countDrop(in, reason)
			n.log.Debug("vrrp advert dropped", "instance", in.cfg.Name, "src", ev.pkt.Src, "err", err)
			n.publish(idx)
			return
		}
		adv := EventAdvert{Src: ev.pkt.Src, TTL: ev.pkt.TTL, Advert: a}
		if in.m.validate(adv) == "" {
			// counted as keepalived counts them: adverts that pass the
			// checks (the machine counts the others as dropped)
			in.count.AdvertsReceived++
			if a.Priority == PriorityStop {
				in.count.PriorityZeroReceived++
			}
			if !sameAddresses(a.Addrs, in.cfg.VirtualIPs) {
				in.count.AddressListErrors++
				n.log.Debug("vrrp advert's addresses are not the instance's", "instance", in.cfg.Name, "src", ev.pkt.Src, "addresses", a.Addrs)
			}
		}
		n.apply(ctx, q, idx, adv)
	case trackEvent:
		if w, ok := n.watchers[ev.ev.Key]; ok && w.gen == ev.gen {
			n.dispatch(ctx, q, ev.ev)
		}
	case EventTrack:
		if strings.HasPrefix(ev.Key, "interface:") && ev.OK {
			// an interface made anew comes up: a socket bound to its
			// old index goes first, so that the instance does not leave
			// FAULT with it
			n.checkLinks(ctx, q)
		}
		for i := range n.insts {
			n.apply(ctx, q, i, ev)
		}
		if strings.HasPrefix(ev.Key, "interface:") && ev.OK && n.waitingForSocket() {
			n.retryOpen(ctx, q)
		}
	}
}

// unknownVRID logs an advert, read by instance idx, whose VRID no
// instance on that interface (and address family) has
// (log_unknown_vrids). Every instance's socket there reads it: the
// first of them with a socket logs it.
func (n *Node) unknownVRID(idx int, vrid uint8, src netip.Addr) {
	in := n.insts[idx]
	dev, v6, ah := in.cfg.advertDev(), in.cfg.IsIPv6(), in.cfg.AuthAH
	first := -1
	for i, o := range n.insts {
		// the instances whose sockets read the same packets (an AH
		// socket reads protocol 51: AH instances among themselves)
		if o.cfg.advertDev() != dev || o.cfg.IsIPv6() != v6 || o.cfg.AuthAH != ah {
			continue
		}
		if o.cfg.VRID == int(vrid) {
			return
		}
		if first < 0 && o.conn != nil {
			first = i
		}
	}
	if first == idx {
		n.log.Info("vrrp advert for a VRID no instance on the interface has (log_unknown_vrids)", "interface", dev, "vrid", vrid, "src", src)
	}
}

// parseAdvert decodes pkt for in. With old_unicast_checksum the VRRPv3
// checksum is checked with the old pseudo-header; without it (and not
// "never"), an IPv4 unicast advert whose checksum holds only that way
// switches the instance to the old checksum for good, as keepalived
// 2.2.7 does: a peer running keepalived before 1.3.6 sends it.
func (n *Node) parseAdvert(in *instance, pkt Packet) (Advert, error) {
	dst := pkt.Dst
	if in.oldChecksum() {
		dst = in.cfg.oldChecksumDst()
	}
	a, err := ParseAdvert(pkt.Data, in.cfg.IsIPv6(), pkt.Src, dst, pkt.ChecksumVerified)
	var pe *ParseError
	if err == nil || !errors.As(err, &pe) || pe.Reason != DropChecksum ||
		!in.cfg.oldChecksumFamily() || in.cfg.OldUnicastChecksum != "" || in.oldChecksumSeen || dst == in.cfg.oldChecksumDst() {
		return a, err
	}
	old, oerr := ParseAdvert(pkt.Data, false, pkt.Src, in.cfg.oldChecksumDst(), pkt.ChecksumVerified)
	if oerr != nil {
		return a, err
	}
	in.oldChecksumSeen = true
	n.log.Warn("vrrp peer uses the VRRPv3 unicast checksum of keepalived before 1.3.6: this instance uses it too from now on, as keepalived (old_unicast_checksum never stops this)",
		"instance", in.cfg.Name, "src", pkt.Src)
	return old, nil
}

// transitioned says whether actions hold a change of state, whose own
// notification carries the new priority.
func transitioned(acts []Action) bool {
	for _, a := range acts {
		if _, ok := a.(ActionTransition); ok {
			return true
		}
	}
	return false
}

// sameAddresses says whether an advert's addresses are the configured
// virtual addresses (an advert carries at most 255), in any order.
func sameAddresses(got []netip.Addr, vips []VirtualIP) bool {
	if len(got) != min(len(vips), 255) {
		return false
	}
	for _, v := range vips[:len(got)] {
		if !slices.Contains(got, v.Prefix.Addr()) {
			return false
		}
	}
	return true
}

func (n *Node) countDrop(in *instance, r DropReason) {
	if in.count.Dropped == nil {
		in.count.Dropped = map[DropReason]uint64{}
	}
	in.count.Dropped[r]++
}

// apply steps one machine and executes its actions; sync group members
// follow a transition that was not itself forced by the group.
func (n *Node) apply(ctx context.Context, q *queue, idx int, ev Event) {
	n.stepWith(ctx, q, idx, func(m *Machine) []Action { return m.Step(ev, n.now()) }, nil)
}

// stepWith runs step on instance idx's machine and executes the actions
// it returns, as apply does for an event. A transition the group does not
// force is passed on to the other members of the instance's sync group,
// unless pass says otherwise (nil: all).
func (n *Node) stepWith(ctx context.Context, q *queue, idx int, step func(*Machine) []Action, pass func(ActionTransition) bool) {
	in := n.insts[idx]
	prevEff := in.m.EffectivePriority()
	acts := step(in.m)
	changed := in.m.EffectivePriority() != prevEff
	var follow []ActionTransition
	for _, a := range acts {
		switch a := a.(type) {
		case ActionTransition:
			changed = true
			n.log.Info("vrrp transition", "instance", in.cfg.Name, "from", a.From, "to", a.To, "reason", a.Reason)
			if a.To == StateMaster {
				in.count.BecameMaster++
			}
			if in.upSince.IsZero() && a.To != StateInit && a.To != StateStop {
				in.upSince = n.now()
			}
			if a.From == StateMaster && (a.To == StateBackup || a.To == StateFault) {
				in.count.ReleasedMaster++
			}
			if !a.BySync && (pass == nil || pass(a)) {
				follow = append(follow, a)
			}
		default:
			n.execute(ctx, q, in, a)
		}
	}
	if changed && in.cfg.NotifyPriorityChanges && n.opts.Notifier != nil && !transitioned(acts) {
		ev := NotifyEvent{Type: "INSTANCE", Name: in.cfg.Name, State: in.m.State(), Priority: in.m.EffectivePriority(),
			Scripts: in.cfg.Notify, PriorityChange: true, Time: n.now()}
		q.push(func() { n.opts.Notifier.Notify(context.WithoutCancel(ctx), ev) })
	}
	n.publish(idx)
	if changed && n.opts.OnChange != nil {
		st := n.statusOf(idx)
		q.push(func() { n.opts.OnChange(st) })
	}
	g := n.groupOf[in.cfg.Name]
	if g == nil {
		return
	}
	defer n.releaseHeld(ctx, q, g)
	for _, t := range follow {
		if t.To != StateMaster && t.To != StateBackup && t.To != StateFault {
			continue
		}
		for _, member := range g.Members {
			if j, ok := n.byKey[member]; ok && j != idx {
				n.apply(ctx, q, j, EventSync{Group: g.Name, State: t.To})
			}
		}
		if prev, ok := n.groupState[g.Name]; ok && prev == t.To {
			continue
		}
		n.groupState[g.Name] = t.To
		if n.opts.Notifier != nil {
			// (a group's priority is 0 in its notifications, as
			// keepalived's: seen in a namespace)
			ev := NotifyEvent{Type: "GROUP", Name: g.Name, State: t.To, Priority: 0,
				Scripts: g.Notify, SMTPAlert: g.SMTPAlert, Time: n.now()}
			q.push(func() { n.opts.Notifier.Notify(context.WithoutCancel(ctx), ev) })
		}
	}
}

// groupWaiting says whether a member of g waits, or is about to wait,
// for a script's first result.
func (n *Node) groupWaiting(g *SyncGroupConfig) bool {
	for _, member := range g.Members {
		if j, ok := n.byKey[member]; ok && (n.insts[j].m.Waiting() || n.insts[j].m.pendingFault() && n.insts[j].m.State() == StateInit) {
			return true
		}
	}
	return false
}

// releaseHeld starts the members of g held back at startup once no
// member waits any more (a group in FAULT meanwhile starts them in FAULT,
// without their own notifications, as keepalived).
func (n *Node) releaseHeld(ctx context.Context, q *queue, g *SyncGroupConfig) {
	if n.groupWaiting(g) {
		return
	}
	for _, member := range g.Members {
		if j, ok := n.byKey[member]; ok && n.insts[j].heldStart {
			n.insts[j].heldStart = false
			n.apply(ctx, q, j, EventStartup{AfterWait: true})
		}
	}
}

func (n *Node) execute(ctx context.Context, q *queue, in *instance, a Action) {
	log := n.log.With("instance", in.cfg.Name)
	switch a := a.(type) {
	case ActionSendAdvert:
		if in.conn == nil {
			return // FAULT: a machine without a socket sends nothing
		}
		adv := Advert{
			Version: in.cfg.Version, VRID: uint8(in.cfg.VRID), Priority: a.Priority,
			Interval: uint16(in.cfg.advertUnits()),
		}
		for _, v := range in.cfg.VirtualIPs {
			adv.Addrs = append(adv.Addrs, v.Prefix.Addr())
		}
		if len(adv.Addrs) > 255 {
			adv.Addrs = adv.Addrs[:255]
		}
		if in.oldChecksum() {
			adv.ChecksumDst = in.cfg.oldChecksumDst()
		}
		switch {
		case in.cfg.AuthAH:
			adv.AuthType = AuthAH // the socket adds the AH header
		case in.cfg.AuthPass != "":
			adv.AuthType, adv.AuthData = AuthPass, authPassData(in.cfg.AuthPass)
		}
		if err := in.conn.Send(&adv); err != nil {
			in.count.SendErrors++
			if msg := err.Error(); msg != in.sendErr {
				// (once per reason: an IPv6 source under duplicate
				// address detection fails every advert for a second
				// or two)
				in.sendErr = msg
				log.Warn("send advert (logged again when the reason changes; counted in send_errors)", "err", err)
			}
			return
		}
		if in.sendErr != "" {
			log.Info("send advert: works again", "failed", in.count.SendErrors)
			in.sendErr = ""
		}
		in.count.AdvertsSent++
		if a.Priority == PriorityStop {
			in.count.PriorityZeroSent++
		}
	case ActionAddAddresses:
		if err := n.opts.System.AddAddresses(ctx, &in.cfg); err != nil {
			log.Error("add virtual addresses", "err", err)
		}
	case ActionRemoveAddresses:
		// a paced announcement still going stops: the addresses are
		// no longer this host's
		in.garpGen.Add(1)
		// a route or rule another MASTER instance or the static set
		// also has stays: it would go from under them
		var holders []InstanceConfig
		for _, o := range n.insts {
			if o != in && o.m.State() == StateMaster {
				holders = append(holders, o.cfg)
			}
		}
		if !n.opts.Static.empty() {
			holders = append(holders, n.opts.Static.config())
		}
		cfg := withoutShared(in.cfg, holders)
		if err := n.opts.System.RemoveAddresses(ctx, &cfg); err != nil {
			log.Error("remove virtual addresses", "err", err)
		}
	case ActionAnnounce:
		cfg := in.cfg
		if a.Extra {
			if cfg = in.cfg.extraIfVIPs(); len(cfg.VirtualIPs) == 0 {
				return
			}
		}
		n.announce(ctx, in, cfg, a.Repeat, a.Reason)
	case ActionNotify:
		if n.opts.Notifier == nil {
			return
		}
		ev := NotifyEvent{Type: "INSTANCE", Name: in.cfg.Name, State: a.State, Priority: a.Priority,
			Scripts: in.cfg.Notify, SMTPAlert: in.cfg.SMTPAlert, Repeat: a.Repeat, RxLowerPri: a.RxLowerPri, Deleted: a.Deleted, WasFault: a.WasFault, Time: n.now()}
		q.push(func() { n.opts.Notifier.Notify(context.WithoutCancel(ctx), ev) })
	case ActionDrop:
		n.countDrop(in, a.Reason)
		log.Debug("vrrp advert dropped", "src", a.Src, "reason", a.Reason)
	}
}

// announce sends gratuitous ARPs or unsolicited neighbour
// advertisements for the addresses of cfg, repeat times each. An address
// whose interface has no pace goes at once, repeat times. One with a
// pace (GARPPace: vrrp_garp_interval / vrrp_gna_interval, or its
// garp_group's) is queued on it, once, as keepalived's garp_delay marks
// it pending: the pace sends one packet per interval, whatever instance
// queued it, and a repeat of an address still queued adds nothing.
func (n *Node) announce(ctx context.Context, in *instance, cfg InstanceConfig, repeat int, reason string) {
	log := n.log.With("instance", in.cfg.Name)
	in.count.Announcements += uint64(repeat)
	gen := in.garpGen.Load()
	var now []InstanceConfig // one address each, unpaced
	for _, v := range allVIPs(&cfg) {
		one := cfg
		one.VirtualIPs, one.VirtualIPsExcluded = []VirtualIP{v}, nil
		key, every := cfg.GARPPace(cmp.Or(v.Dev, cfg.addrDev()), v.Prefix.Addr().Is6())
		if every <= 0 {
			now = append(now, one)
			continue
		}
		n.garp.queue(key, every, garpItem{in: in, gen: gen, cfg: one}, func() { n.runPace(ctx, key) })
	}
	failed := make([]bool, len(now))
	for range repeat {
		for i := range now {
			if failed[i] {
				continue
			}
			if err := n.opts.System.Announce(ctx, &now[i]); err != nil {
				log.Warn("announce virtual address", "addr", now[i].VirtualIPs[0].Prefix, "err", err)
				failed[i] = true
			}
		}
	}
	log.Debug("announced virtual addresses", "repeat", repeat, "reason", reason)
}

// runPace sends a pace's queue, one packet an interval after the one
// before it went, until the queue is empty (or the node stops). A packet
// whose instance gave its addresses up, or whose address a reload took
// away, is left out.
func (n *Node) runPace(ctx context.Context, key string) {
	for {
		wait, ok := n.garp.next(key)
		if !ok {
			return
		}
		if wait > 0 {
			select {
			case <-ctx.Done():
				n.garp.drop(key)
				return
			case <-time.After(wait):
			}
		}
		it, ok := n.garp.pop(key)
		if !ok {
			return
		}
		if it.in.garpGen.Load() != it.gen || !it.in.holds(it.cfg.VirtualIPs[0].Prefix) {
			continue
		}
		err := n.opts.System.Announce(ctx, &it.cfg)
		n.garp.sent(key, time.Now())
		if err != nil {
			n.log.Warn("announce virtual address", "instance", it.cfg.Name, "addr", it.cfg.VirtualIPs[0].Prefix, "err", err)
		}
	}
}

// storeVIPs publishes the instance's addresses for the paces' senders.
func (in *instance) storeVIPs() {
	m := map[netip.Prefix]bool{}
	for _, v := range allVIPs(&in.cfg) {
		m[v.Prefix] = true
	}
	in.vips.Store(&m)
}

// holds says whether the instance's configuration still has the address.
func (in *instance) holds(p netip.Prefix) bool {
	m := in.vips.Load()
	return m != nil && (*m)[p]
}

// garpPacer keeps the paces' queues: per pace, its interval, when its
// last packet went, and the packets waiting (one sender goroutine while
// there are).
type garpPacer struct {
	mu    sync.Mutex
	paces map[string]*paceQueue
}

type paceQueue struct {
	every   time.Duration
	last    time.Time
	pending []garpItem
	running bool
}

// garpItem is one address to announce for an instance (cfg holds only
// that address), queued at the instance's generation gen.
type garpItem struct {
	in  *instance
	gen uint64
	cfg InstanceConfig
}

// queue adds it to the pace key unless the same instance's address is
// queued already; start is called to run the pace when none runs.
func (p *garpPacer) queue(key string, every time.Duration, it garpItem, start func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paces == nil {
		p.paces = map[string]*paceQueue{}
	}
	q := p.paces[key]
	if q == nil {
		q = &paceQueue{}
		p.paces[key] = q
	}
	q.every = every
	addr := it.cfg.VirtualIPs[0].Prefix
	for i, o := range q.pending {
		if o.in == it.in && o.cfg.VirtualIPs[0].Prefix == addr {
			// queued already: it keeps its turn, at the newest
			// generation (a MASTER again since it was queued)
			q.pending[i] = it
			return
		}
	}
	q.pending = append(q.pending, it)
	if !q.running {
		q.running = true
		go start()
	}
}

// next is how long the pace's next packet waits (ok false, and the
// sender ends, when the queue is empty).
func (p *garpPacer) next(key string) (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.paces[key]
	if len(q.pending) == 0 {
		q.running = false
		return 0, false
	}
	return time.Until(q.last.Add(q.every)), true
}

func (p *garpPacer) pop(key string) (garpItem, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.paces[key]
	if len(q.pending) == 0 {
		q.running = false
		return garpItem{}, false
	}
	it := q.pending[0]
	q.pending = q.pending[1:]
	return it, true
}

// sent notes when a packet of the pace went: the next waits an interval
// from then.
func (p *garpPacer) sent(key string, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paces[key].last = at
}

// drop empties a pace whose sender stops with the node.
func (p *garpPacer) drop(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.paces[key]
	q.pending, q.running = nil, false
}

func (n *Node) statusOf(idx int) InstanceStatus {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.status[idx]
	s.Counters.Dropped = cloneMap(s.Counters.Dropped)
	return s
}

// publish refreshes the status snapshot of instance idx.
func (n *Node) publish(idx int) {
	in := n.insts[idx]
	m := in.m
	maddr, mprio := m.MasterAddr()
	n.mu.Lock()
	defer n.mu.Unlock()
	s := &n.status[idx]
	// (a member held for its group's script waits as much: keepalived
	// shows it so too)
	s.State, s.Waiting = m.State(), m.Waiting() || in.heldStart && m.State() == StateInit
	s.EffectivePriority = m.EffectivePriority()
	s.LocalAddr = m.local
	s.MasterAddr, s.MasterPriority = maddr, mprio
	s.LastAdvert = m.LastAdvert()
	s.AdvertInterval = m.AdvertInterval()
	s.MasterAdvertInterval, s.MasterDown = m.masterAdver, m.MasterDownInterval()
	s.Started, s.UpSince = in.started, in.upSince
	s.Trackers = m.Trackers()
	s.Transitions = m.History()
	s.Counters = in.count
	s.Counters.Dropped = cloneMap(in.count.Dropped)
	s.UnicastChecksum = ""
	if len(in.cfg.UnicastPeers) > 0 {
		s.UnicastChecksum = in.checksumMode()
	}
}

// queue runs callbacks in order on one goroutine without ever blocking
// the pusher.
type queue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  []func()
	closed bool
}

func newQueue() *queue {
	q := &queue{}
	q.cond = sync.NewCond(&q.mu)
	return q
}

func (q *queue) push(f func()) {
	q.mu.Lock()
	q.items = append(q.items, f)
	q.mu.Unlock()
	q.cond.Signal()
}

func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Signal()
}

// run executes callbacks until closed and drained.
func (q *queue) run() {
	for {
		q.mu.Lock()
		for len(q.items) == 0 && !q.closed {
			q.cond.Wait()
		}
		if len(q.items) == 0 {
			q.mu.Unlock()
			return
		}
		f := q.items[0]
		q.items = q.items[1:]
		q.mu.Unlock()
		f()
	}
}
