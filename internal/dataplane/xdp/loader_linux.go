package xdp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/dataplane"
)

// Dataplane is the XDP director. It implements dataplane.Dataplane.
type Dataplane struct {
	opts Options
	log  *slog.Logger
	ns   netns.NsHandle // network namespace New was called in
	nl   *netlink.Handle
	ncpu int

	objs  lbObjects
	links []link.Link
	pins  []string
	fresh []link.Link // links attached (not adopted) by this New
	// xmitOn: the interfaces the program is attached to, once it is
	// (nil: not yet, or not alone on them); with one, the real servers
	// leaving by it are written with REAL_F_TX, the others with
	// REAL_F_REDIR (setXmit, realFlags)
	xmitOn   []uint32
	attached []uint32 // the interfaces attach attached to, by index

	mu       sync.Mutex
	svcs     map[dataplane.ServiceKey]*service
	keyOwner map[lbSvcKey]uint32
	svcUsed  [maxServices]bool
	realUsed [maxReals]bool
	slots    slotSpace  // sched_tbl's runs (slots.go)
	gone     []goneReal // real servers that left in this Apply (removeGone)
	// removed NAT real servers by slot and generation, until the next
	// walk of the connection tables has deleted their connections and
	// the reply entries those own (the walk needs the server's address
	// for the reply key)
	tombs map[[2]uint32]*realState
	// recounted is when ImportConns last made the next sync walk the
	// tables again
	recounted  time.Time
	recountDue bool // a recount is armed (recountLocked)
	// clientNH queues the clients whose next hops ImportConns wants
	// resolved; clientAsked and nhAsked remember when (clientnh_linux.go)
	clientNH    chan netip.Addr
	clientAsked map[netip.Addr]time.Time
	nhAsked     map[netip.Addr]time.Time
	// connsHint is the capacity Conns starts with (its last count)
	connsHint   int
	goneErr     error  // what freeing them early (allocReal) failed with
	quiesces    uint64 // grace periods waited for (quiesce)
	gen         uint32
	reps        map[tableLayout][]uint32
	counts      map[uint32]realCount
	synced      time.Time
	walk        walkState   // the last walk of the connection tables (sync_linux.go)
	nhChecked   time.Time   // when the sync last resolved every next hop again
	syncTimer   *time.Timer // the loop's next sync (nextSync), at syncAt
	syncAt      time.Time
	snatPools   snatState         // snat_pool allocation, exhaustion log (pool_linux.go)
	warnedLocal map[string]bool   // interfaces warnLocalVIPs logged
	warnedFwd   map[string]bool   // family/interface pairs warnForwarding logged
	warnedPeer  map[uint32]string // next-hop interfaces warnNextHopVeths logged, and what
	// the kernel's ephemeral port range, read once (ownAddrPorts)
	ephOnce      sync.Once
	ephLo, ephHi uint16
	clkMult      uint64 // settings clk_mult/clk_off (clock_linux.go)
	clkOff       uint64
	clkTuned     time.Time // the last retuneClock
	// replyExact: reply_ports holds every port a NAT reply of the
	// applied services can come from (settings CFG_F_REPLY_PORTS).
	replyExact bool
	replyHeld  *portSet // what reply_ports holds; nil until read
	// sweep: an interface the program runs on hands it a flow's packets
	// on whichever CPU sent them (sweepsCopies), so a close frees the
	// flow's flow-cache copies on every CPU (CFG_F_FC_SWEEP)
	sweep bool
	// natNext: the configuration Apply was last given has NAT or SNAT
	// real servers (settings CFG_F_NAT from before the first is written)
	natNext bool
	// afterServices, when set (tests), runs in Apply once the services
	// are written and before the settings are
	afterServices func()

	resolver func(netip.Addr, dataplane.Method) nexthop // nil: netlink

	cancel context.CancelFunc
	done   chan struct{}
	closed bool
}

const (
	maxServices = 1024 // MAX_SERVICES in bpf/lb.h
	maxReals    = 8192 // MAX_REALS in bpf/lb.h
	exitSlots   = 32   // EXIT_SLOTS in bpf/lb.h
	evSlots     = 16   // EV_SLOTS in bpf/lb.h
	// cpu_data's layout (CD_* in bpf/lb.h), in 128-byte entries
	cdEntry    = 128
	cdExits    = 0
	cdEvents   = 2
	cdReals    = 3
	cdEntries  = (cdReals + maxReals + 31) &^ 31
	cdCounters = 64 // offset of a real server's counters in its entry
	realFTX    = 1  // REAL_F_TX in bpf/lb.h
	realFRedir = 2  // REAL_F_REDIR
)

// Service flags (SVC_F_* in bpf/lb.h).
const (
	svcFValid    = 1 << 0
	svcFPersist  = 1 << 1
	svcFOnePkt   = 1 << 2
	svcFHashPort = 1 << 3
)

// Settings flags (CFG_F_* in bpf/lb.h).
const (
	cfgFSloppyTCP  = 1 << 0
	cfgFTunSrc4    = 1 << 1
	cfgFTunSrc6    = 1 << 2
	cfgFWildcard   = 1 << 3
	cfgFNAT        = 1 << 4
	cfgFReplyPorts = 1 << 5
	cfgFSweep      = 1 << 6
)

var (
	_ dataplane.Dataplane     = (*Dataplane)(nil)
	_ dataplane.TimeoutSetter = (*Dataplane)(nil)
)

// New loads the director program, creates or adopts the pinned maps,
// attaches to every interface of opts and starts the sync loop. It works
// in the network namespace of the calling thread. Errors are explicit:
// missing privileges, no BPF support, unknown interfaces and attach
// failures are returned, never papered over.
func New(opts Options) (*Dataplane, error) {
	if len(opts.Interfaces) == 0 {
		return nil, errors.New("xdp: no interface to attach to")
	}
	return newDataplane(opts, nil)
}

// newDataplane is New with an optional next-hop resolver (tests use a
// fixed one) and no requirement on interfaces.
func newDataplane(opts Options, resolver func(netip.Addr, dataplane.Method) nexthop) (*Dataplane, error) {
	opts = withDefaults(opts)
	ns, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("xdp: current network namespace: %w", err)
	}
	d := &Dataplane{
		opts:     opts,
		log:      opts.Logger,
		ns:       ns,
		svcs:     make(map[dataplane.ServiceKey]*service),
		keyOwner: make(map[lbSvcKey]uint32),
		slots:    newSlotSpace(schedSlots),
		reps:     make(map[tableLayout][]uint32),
		counts:   make(map[uint32]realCount),
		resolver: resolver,

		clientNH:    make(chan netip.Addr, clientNHQueue),
		clientAsked: make(map[netip.Addr]time.Time),
		nhAsked:     make(map[netip.Addr]time.Time),
	}
	if err := d.open(); err != nil {
		// undo the attachments made here; adopted ones keep forwarding
		for _, l := range d.fresh {
			_ = l.Unpin()
		}
		_ = d.release(false)
		return nil, err
	}
	d.fresh = nil
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel, d.done = cancel, make(chan struct{})
	d.mu.Lock()
	d.nhChecked = time.Now()
	d.syncTimer = time.NewTimer(opts.SyncInterval)
	d.syncAt = time.Now().Add(opts.SyncInterval)
	d.mu.Unlock()
	go d.loop(ctx)
	return d, nil
}

func withDefaults(o Options) Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	o.Timeouts = o.Timeouts.OrDefault()
	if o.ConnTableSize <= 0 {
		o.ConnTableSize = DefaultConnTableSize
	}
	if o.NATTableSize <= 0 {
		o.NATTableSize = 2 * o.ConnTableSize
	}
	if o.PersistTableSize <= 0 {
		o.PersistTableSize = DefaultPersistTableSize
	}
	if o.PinPath == "" {
		o.PinPath = DefaultPinPath
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.RingSize <= 0 {
		o.RingSize = DefaultRingSize
	}
	return o
}

func (d *Dataplane) open() error {
	var err error
	if d.ncpu, err = ebpf.PossibleCPU(); err != nil {
		return fmt.Errorf("xdp: possible cpus: %w", err)
	}
	if d.nl, err = netlink.NewHandleAt(d.ns); err != nil {
		return fmt.Errorf("xdp: netlink: %w", err)
	}
	if mounted, err := ensureBPFFS(d.opts.PinPath); err != nil {
		return err
	} else if mounted {
		d.log.Warn(bpffsNote)
	}
	spec, err := loadLb()
	if err != nil {
		return fmt.Errorf("xdp: load program spec: %w", err)
	}
	spec.Maps["conn_tbl"].MaxEntries = uint32(d.opts.ConnTableSize)
	spec.Maps["conn4_tbl"].MaxEntries = uint32(d.opts.ConnTableSize)
	spec.Maps["persist_tbl"].MaxEntries = uint32(d.opts.PersistTableSize)
	spec.Maps["nat_tbl"].MaxEntries = uint32(d.opts.NATTableSize)
	// a block per possible CPU (the program indexes by CPU number)
	for _, m := range []string{"flow_cache", "flow_cache6", "cpu_data"} {
		spec.Maps[m].MaxEntries *= uint32(d.ncpu)
	}
	if err := spec.Variables["sweep_cpus"].Set(uint32(sweepCPUs(d.ncpu))); err != nil {
		return fmt.Errorf("xdp: set sweep_cpus: %w", err)
	}
	load := func() error {
		return spec.LoadAndAssign(&d.objs, &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: d.opts.PinPath}})
	}
	// pins of a govs from before cpu_data, whose state is moved over
	// (real_tbl is removed only once it is, so a start that died half way
	// through, or a govs started again after a downgrade, moves it again)
	legacy := pinExists(d.opts.PinPath, "real_tbl")
	zeroReals := false
	if err := setAsideHashTable(d.opts.PinPath); err != nil {
		return fmt.Errorf("xdp: set the pinned scheduling hash of a previous govs aside: %w", err)
	}
	err = load()
	if errors.Is(err, ebpf.ErrMapIncompatible) {
		// When only counters changed their layout (an upgrade), those
		// maps are replaced and the state is adopted as after a restart.
		stale, serr := stalePins(spec, d.opts.PinPath)
		if serr != nil {
			d.log.Warn("check pinned XDP maps", "path", d.opts.PinPath, "err", serr)
		}
		if serr == nil && len(stale) > 0 && !slices.ContainsFunc(stale, func(n string) bool { return !resettable[n] }) {
			d.log.Warn("pinned XDP counter maps do not match this govs (an upgrade changed their layout): replacing them; services and connections are adopted, the replaced counters start again from zero",
				"path", d.opts.PinPath, "maps", strings.Join(stale, ","))
			// A service's counters are stats_svc plus its real servers'
			// (in cpu_data, which is kept): those start again too, or
			// the sum would go back without reaching zero.
			zeroReals = slices.Contains(stale, "stats_svc")
			var errs []error
			for _, n := range stale {
				if rerr := os.Remove(filepath.Join(d.opts.PinPath, n)); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
					errs = append(errs, rerr)
				}
			}
			if rerr := errors.Join(errs...); rerr != nil {
				return fmt.Errorf("xdp: remove incompatible pinned maps: %w", rerr)
			}
			err = load()
		}
	}
	if errors.Is(err, ebpf.ErrMapIncompatible) {
		// A table size changed, or an upgrade changed the layout of a
		// map that holds state: the old state cannot be adopted. Start
		// with empty tables; the pinned links stay, so attach replaces
		// the old program in one step and no packet meets an interface
		// without a program.
		d.log.Warn("pinned XDP maps do not match this govs (table size changed, or an upgrade changed their layout): starting with empty tables; connections tracked so far are not adopted",
			"path", d.opts.PinPath, "err", err)
		if rerr := removeMapPins(d.opts.PinPath); rerr != nil {
			return fmt.Errorf("xdp: remove incompatible pinned maps: %w", rerr)
		}
		err = load()
	}
	switch {
	case errors.Is(err, ebpf.ErrMapIncompatible):
		return fmt.Errorf("xdp: maps pinned in %s do not match this govs; remove the directory to start afresh: %w", d.opts.PinPath, err)
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("xdp: load bpf objects: permission denied (needs root or CAP_BPF+CAP_NET_ADMIN): %w", err)
	case err != nil:
		return fmt.Errorf("xdp: load bpf objects: %w", err)
	}
	// Map the per-CPU counter blocks now: Map.Memory sets its mapping
	// up on first use without a lock, and Exits and Events are called
	// from other goroutines (metrics) than the sync loop.
	if _, err := d.objs.CpuData.Memory(); err != nil {
		return fmt.Errorf("xdp: map cpu_data: %w", err)
	}
	if _, err := d.objs.SchedTbl.Memory(); err != nil {
		return fmt.Errorf("xdp: map sched_tbl: %w", err)
	}
	zeroSvc := false
	if legacy {
		lost, err := d.migrateLegacy()
		if err != nil {
			return fmt.Errorf("xdp: take over the pinned real servers of the previous govs: %w", err)
		}
		// without the real servers' counters, a service's would go back
		zeroReals, zeroSvc = zeroReals || lost, lost
	}
	if zeroReals {
		for id := range uint32(maxReals) {
			if err := d.zeroStats(d.statsReal(), id); err != nil {
				return err
			}
		}
	}
	if zeroSvc {
		for id := range uint32(maxServices) {
			if err := d.zeroStats(d.objs.StatsSvc, id); err != nil {
				return err
			}
		}
	}
	if err := d.migrateSchedTbl(); err != nil {
		return fmt.Errorf("xdp: take over the scheduling tables of the previous govs: %w", err)
	}
	if err := d.adopt(); err != nil {
		return fmt.Errorf("xdp: adopt pinned state: %w", err)
	}
	if d.clkMult, d.clkOff, err = d.calibrateClock(); err != nil {
		return err
	}
	for _, ifname := range d.opts.Interfaces {
		if l, err := d.nl.LinkByName(ifname); err == nil && sweepsCopies(l) {
			d.sweep = true // attach reports the ones not found
		}
	}
	if err := d.writeSettings(); err != nil {
		return err
	}
	if err := d.installMasquerade(); err != nil {
		return err
	}
	// a previous govs attached to one interface left its real servers
	// flagged to leave by XDP_TX: cleared before the program is attached
	// anywhere else, set again once it is attached where it now goes
	if err := d.setXmit(nil); err != nil {
		return err
	}
	for _, ifname := range d.opts.Interfaces {
		if err := d.attach(ifname); err != nil {
			return err
		}
	}
	d.detachOthers()
	on := slices.Compact(slices.Sorted(slices.Values(d.attached)))
	if len(on) == 1 {
		// a link detachOthers could not remove, or one another process
		// still holds (a previous govs still running), keeps a govs
		// program on another interface, reading the same real servers
		sole, err := d.soleAttachment(on[0])
		if !sole {
			// neither mark: that program, if of this version, would
			// read REAL_F_REDIR too, and redirect what arrives there
			// back out where XDP_TX served
			d.log.Warn("the xdp program of a previous govs is still attached to another interface: real servers are not marked to leave by XDP_TX", "err", err)
			return nil
		}
		// runs of a program detached just now may still be in flight
		d.quiesce()
	}
	return d.setXmit(on)
}

// soleAttachment says whether no interface of the namespace but ifindex
// has a govs director program attached (by its name, govs_lb, whatever
// its version); err says why it could not tell.
func (d *Dataplane) soleAttachment(ifindex uint32) (bool, error) {
	links, err := d.nl.LinkList()
	if err != nil {
		return false, fmt.Errorf("list interfaces: %w", err)
	}
	for _, l := range links {
		x := l.Attrs().Xdp
		if x == nil || !x.Attached || x.ProgId == 0 || uint32(l.Attrs().Index) == ifindex {
			continue
		}
		prog, err := ebpf.NewProgramFromID(ebpf.ProgramID(x.ProgId))
		if err != nil {
			return false, fmt.Errorf("program %d of %s: %w", x.ProgId, l.Attrs().Name, err)
		}
		info, err := prog.Info()
		_ = prog.Close()
		if err != nil {
			return false, fmt.Errorf("program %d of %s: %w", x.ProgId, l.Attrs().Name, err)
		}
		if info.Name == "govs_lb" {
			return false, fmt.Errorf("%s runs it", l.Attrs().Name)
		}
	}
	return true, nil
}

// setXmit makes on the interfaces the program is attached to (nil:
// none known: no marks) and writes again every real server known whose
// flags change (realFlags). With one interface, the program must run
// there alone by then (and stay so).
func (d *Dataplane) setXmit(on []uint32) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.xmitOn = on
	var errs []error
	for _, s := range d.svcs {
		for _, r := range s.reals {
			cur, err := d.readReal(r.id)
			if err == nil && cur.Flags == d.realFlags(r) {
				continue
			}
			errs = append(errs, d.writeReal(s.id, r))
		}
	}
	return errors.Join(errs...)
}

// detachOthers detaches the programs a previous govs left pinned on
// interfaces this one was not given: they would go on forwarding there,
// on the tables this process now owns, with settings nobody updates.
func (d *Dataplane) detachOthers() {
	entries, err := os.ReadDir(d.opts.PinPath)
	if err != nil {
		d.log.Warn("list pinned xdp links", "path", d.opts.PinPath, "err", err)
		return
	}
	for _, e := range entries {
		pin := filepath.Join(d.opts.PinPath, e.Name())
		if !strings.HasPrefix(e.Name(), "link_") || slices.Contains(d.pins, pin) {
			continue
		}
		ifname := strings.TrimPrefix(e.Name(), "link_")
		l, err := link.LoadPinnedLink(pin, nil)
		if err != nil {
			d.log.Warn("pinned xdp link of an interface no longer configured is unreadable; left in place", "interface", ifname, "err", err)
			continue
		}
		// the pin and this handle are the last references: without
		// them the link is released and the program detached
		err = l.Unpin()
		_ = l.Close()
		if err != nil {
			d.log.Warn("detach the xdp program of an interface no longer configured", "interface", ifname, "err", err)
			continue
		}
		d.log.Warn("detached the xdp program a previous govs left on an interface no longer configured", "interface", ifname)
	}
}

// ensureBPFFS mounts bpffs on /sys/fs/bpf when it is not mounted and
// creates dir. mounted says it mounted one: a bpffs mounted in a mount
// namespace of this process's own (`ip netns exec` makes one, with a
// fresh /sys) is gone when the process is, and the pins with it.
func ensureBPFFS(dir string) (mounted bool, err error) {
	const root = "/sys/fs/bpf"
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err == nil && uint32(st.Type) != unix.BPF_FS_MAGIC { // int32 on 32-bit systems
		if err := unix.Mount("bpf", root, "bpf", 0, "mode=0700"); err != nil {
			return false, fmt.Errorf("xdp: mount bpffs on %s: %w", root, err)
		}
		mounted = true
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return mounted, fmt.Errorf("xdp: create pin directory: %w", err)
	}
	if err := unix.Statfs(dir, &st); err != nil || uint32(st.Type) != unix.BPF_FS_MAGIC {
		return mounted, fmt.Errorf("xdp: pin path %s is not on a bpf filesystem", dir)
	}
	return mounted, nil
}

// bpffsNote is what New logs when it mounted bpffs (govs realserver tun
// refuses to: internal/realserver).
const bpffsNote = "mounted bpffs on /sys/fs/bpf, which had none: if this process has a mount namespace of its own (ip netns exec gives it one, with a fresh /sys), the pins end with it and a restart starts with empty tables; run govs in the host's mount namespace (nsenter --net=/run/netns/NAME instead of ip netns exec)"

// inNS runs fn on a thread switched to the dataplane's namespace: XDP
// attachment resolves interface indexes in the caller's namespace.
func inNS(ns netns.NsHandle, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("current network namespace: %w", err)
	}
	defer orig.Close()
	if !orig.Equal(ns) {
		if err := netns.Set(ns); err != nil {
			return fmt.Errorf("enter network namespace: %w", err)
		}
		defer func() { _ = netns.Set(orig) }()
	}
	return fn()
}

// attach attaches the program to ifname, or replaces the program of a
// link pinned by a previous process: the replacement is atomic, no packet
// sees an interface without a program.
func (d *Dataplane) attach(ifname string) error {
	pin := filepath.Join(d.opts.PinPath, "link_"+ifname)
	l, err := d.nl.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("xdp: interface %q: %w", ifname, err)
	}
	flags := link.XDPDriverMode
	if d.opts.Mode == Generic {
		flags = link.XDPGenericMode
	}
	return inNS(d.ns, func() error {
		old, reason := reusableLink(pin, l, d.opts.Mode)
		if old != nil {
			if err := old.Update(d.objs.GovsLb); err != nil {
				_ = old.Close()
				return fmt.Errorf("xdp: replace program on %s: %w", ifname, err)
			}
			d.links, d.pins = append(d.links, old), append(d.pins, pin)
			d.attached = append(d.attached, uint32(l.Attrs().Index))
			d.log.Info("adopted xdp link", "interface", ifname)
			d.warnVethPeer(l)
			return nil
		}
		if reason != "" {
			// The interface the pin was made for is gone (its
			// namespace deleted, or it was recreated), or another mode
			// is asked for: the pin was dropped, attach afresh.
			d.log.Warn("pinned xdp link not reusable, attaching afresh", "interface", ifname, "reason", reason)
		}
		nl, err := link.AttachXDP(link.XDPOptions{Program: d.objs.GovsLb, Interface: l.Attrs().Index, Flags: flags})
		if err != nil {
			return fmt.Errorf("xdp: attach to %s (mode %s): %w", ifname, d.opts.Mode, err)
		}
		if err := nl.Pin(pin); err != nil {
			_ = nl.Close()
			return fmt.Errorf("xdp: pin link of %s: %w", ifname, err)
		}
		d.links, d.pins, d.fresh = append(d.links, nl), append(d.pins, pin), append(d.fresh, nl)
		d.attached = append(d.attached, uint32(l.Attrs().Index))
		d.log.Info("attached xdp program", "interface", ifname, "mode", d.opts.Mode)
		d.warnVethPeer(l)
		return nil
	})
}

// sweepsCopies says whether the program, attached to l, is handed a
// flow's packets on whichever CPU sent them: a veth, the loopback and
// macvlan or ipvlan between namespaces receive in the sender's softirq,
// and tun runs XDP in the writer's context. A NIC's RSS keeps a flow on
// one CPU's queue.
func sweepsCopies(l netlink.Link) bool {
	switch l.Type() {
	case "veth", "tuntap", "macvlan", "macvtap", "ipvlan", "ipvtap":
		return true
	}
	return l.Attrs().Flags&net.FlagLoopback != 0
}

// reusableLink loads the link pinned at pin, if any, and returns it when
// its program can be replaced in place for interface ifc in mode. A link
// that cannot (staleLink, or attached in another mode: an update keeps
// the link's mode) is unpinned and released, and why is returned.
func reusableLink(pin string, ifc netlink.Link, mode Mode) (link.Link, string) {
	old, err := link.LoadPinnedLink(pin, nil)
	if err != nil {
		return nil, ""
	}
	reason := staleLink(old, ifc.Attrs().Index)
	if x := ifc.Attrs().Xdp; reason == "" && x != nil && x.Attached && attachedMode(x.AttachMode) != mode {
		reason = fmt.Sprintf("attached in %s mode, %s asked for", attachedMode(x.AttachMode), mode)
	}
	if reason != "" {
		_ = old.Unpin()
		_ = old.Close()
		return nil, reason
	}
	return old, ""
}

// staleLink says why a pinned XDP link cannot be adopted for the
// interface with index ifindex ("" when it can): the link was severed
// (its interface is gone) or it is attached to another interface.
func staleLink(l link.Link, ifindex int) string {
	info, err := l.Info()
	if err != nil {
		return "reading the link: " + err.Error()
	}
	x := info.XDP()
	if x == nil {
		return "not an XDP link"
	}
	if x.Ifindex == 0 {
		return "its interface is gone"
	}
	if int(x.Ifindex) != ifindex {
		return fmt.Sprintf("attached to interface index %d, not %d", x.Ifindex, ifindex)
	}
	return ""
}

// attachedMode is the Mode of a netlink XDP attach mode.
func attachedMode(m uint32) Mode {
	if m == nl.XDP_ATTACHED_SKB {
		return Generic
	}
	return Native
}

// SetTimeouts changes the connection timeouts (dataplane.TimeoutSetter):
// the program reads them from the settings map for every packet a flow
// cache copy does not serve (a copy serves for at most FC_WINDOW_NS, and
// copies of idle flows expire by their window), and the sync expires
// idle connections by them (its next walk does not wait for the expiry
// the last walk foresaw by the old ones).
func (d *Dataplane) SetTimeouts(t dataplane.Timeouts) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("xdp: dataplane closed")
	}
	old := d.opts.Timeouts
	d.opts.Timeouts = t.OrDefault()
	if err := d.writeSettings(); err != nil {
		d.opts.Timeouts = old
		return fmt.Errorf("xdp: set timeouts: %w", err)
	}
	d.walk.done = false
	d.syncSoon()
	return nil
}

// writeSettings stores timeouts and global flags in the settings map.
func (d *Dataplane) writeSettings() error {
	t := d.opts.Timeouts
	var c lbConfig
	c.TimeoutNs = [6]uint64{
		uint64(24 * time.Hour), // templates carry their own timeout
		uint64(60 * time.Second),
		uint64(t.TCP),
		uint64(t.TCPFin),
		uint64(10 * time.Second),
		uint64(t.UDP),
	}
	if d.opts.SloppyTCP {
		c.Flags |= cfgFSloppyTCP
	}
	for k := range d.keyOwner {
		if k.Port == 0 {
			c.Flags |= cfgFWildcard
			break
		}
	}
	if d.natNext {
		c.Flags |= cfgFNAT
	}
	for _, s := range d.svcs {
		for _, r := range s.reals {
			if r.spec.Method == dataplane.NAT || r.spec.Method == dataplane.SNAT {
				c.Flags |= cfgFNAT
			}
		}
	}
	if c.Flags&cfgFNAT != 0 && d.replyExact {
		c.Flags |= cfgFReplyPorts
	}
	if d.sweep {
		c.Flags |= cfgFSweep
	}
	if p := d.opts.TunnelSource4; p.IsValid() && p.Addr().Is4() {
		c.Flags |= cfgFTunSrc4
		c.TunSrc4 = p.Masked().Addr().As4()
		c.TunMask4 = hostMask(p.Bits(), 32)
	}
	if p := d.opts.TunnelSource6; p.IsValid() && p.Addr().Is6() {
		c.Flags |= cfgFTunSrc6
		c.TunSrc6 = p.Masked().Addr().As16()
		c.TunMask6 = hostMask(p.Bits(), 128)
	}
	c.ClkMult, c.ClkOff = d.clkMult, d.clkOff
	if err := d.objs.Settings.Put(uint32(0), &c); err != nil {
		return fmt.Errorf("xdp: write settings: %w", err)
	}
	return nil
}

// hostMask is the mask of the host bits of a prefix within the low 32
// bits of the address.
func hostMask(bits, total int) uint32 {
	host := total - bits
	if host >= 32 {
		return ^uint32(0)
	}
	if host <= 0 {
		return 0
	}
	return uint32(1)<<host - 1
}

// Close stops the sync loop. Without KeepOnClose it detaches the program
// and removes every pin; with it, forwarding continues untouched.
func (d *Dataplane) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	d.cancel()
	<-d.done
	var merr error
	if !d.opts.KeepOnClose {
		merr = d.removeMasquerade()
	}
	return errors.Join(merr, d.release(!d.opts.KeepOnClose))
}

func (d *Dataplane) release(detach bool) error {
	var errs []error
	for i, l := range d.links {
		if detach {
			if err := l.Unpin(); err != nil {
				errs = append(errs, fmt.Errorf("unpin %s: %w", d.pins[i], err))
			}
		}
		if err := l.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	d.links = nil
	if detach && d.objs.GovsLb != nil {
		for _, m := range d.maps() {
			if err := m.Unpin(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := d.objs.Close(); err != nil {
		errs = append(errs, err)
	}
	if d.nl != nil {
		d.nl.Close()
	}
	if detach {
		_ = os.Remove(d.opts.PinPath) // only succeeds when empty
	}
	_ = d.ns.Close()
	return errors.Join(errs...)
}

func (d *Dataplane) maps() []*ebpf.Map {
	o := &d.objs.lbMaps
	return []*ebpf.Map{o.ConnTbl, o.Conn4Tbl, o.Cursors, o.CpuData, o.NatTbl, o.ReplyPorts, o.SnatPool, o.SnatFail, o.PersistTbl, o.SchedTbl,
		o.Services, o.Settings, o.StatsSvc, o.SvcCfgs}
}

// resettable names the pinned maps that hold no state a restart adopts:
// counters, and the settings the loader writes in full before it
// attaches. (reply_ports and cursors are rebuilt too, but by the first
// Apply, not before the attach.)
var resettable = map[string]bool{"stats_svc": true, "snat_fail": true, "settings": true}

// stalePins lists the maps of spec pinned under dir that this govs
// cannot use (type, sizes or flags differ).
func stalePins(spec *ebpf.CollectionSpec, dir string) ([]string, error) {
	var stale []string
	for name, ms := range spec.Maps {
		if ms.Pinning != ebpf.PinByName {
			continue
		}
		m, err := ebpf.LoadPinnedMap(filepath.Join(dir, name), nil)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if ms.Compatible(m) != nil {
			stale = append(stale, name)
		}
		m.Close()
	}
	slices.Sort(stale)
	return stale, nil
}

// removeMapPins removes the pinned maps under dir and keeps the pinned
// links (link_IFNAME), which attach adopts.
func removeMapPins(dir string) error {
	return removePins(dir, func(name string) bool { return strings.HasPrefix(name, "link_") })
}

// RemovePinned detaches programs pinned under dir by a previous process
// and removes every pinned map: the next New starts with empty tables.
func RemovePinned(dir string) error {
	if err := removePins(dir, func(string) bool { return false }); err != nil {
		return fmt.Errorf("xdp: %w", err)
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("xdp: %w", err)
	}
	return nil
}

// removePins removes the entries of dir that keep does not keep; a
// missing dir has none.
func removePins(dir string, keep func(name string) bool) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", dir, err)
	}
	var errs []error
	for _, e := range entries {
		if keep(e.Name()) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Exits returns the exit-reason counters of the director program summed
// over CPUs, by the names of ExitReasons.
func (d *Dataplane) Exits() (map[string]uint64, error) {
	return sumCounters(d.exits(), exitNames[:])
}

// Events returns the event counters (new connections, connection-table
// hits and expiries, persistence hits, sorry-server uses).
func (d *Dataplane) Events() (map[string]uint64, error) {
	return sumCounters(d.events(), eventNames[:])
}

// readReal reads real server id's entry (CPU 0's copy: the loader
// writes the same into every block).
func (d *Dataplane) readReal(id uint32) (lbReal, error) {
	var r lbReal
	p := d.reals()
	if id >= p.n {
		return r, fmt.Errorf("real server slot %d: not below %d", id, p.n)
	}
	return r, p.readCPU(0, id, &r)
}

func pinExists(dir, name string) bool {
	_, err := os.Stat(filepath.Join(dir, name))
	return err == nil
}

// legacySchedPin is where setAsideHashTable moves the sched_tbl a govs
// from before the flat table pinned: a hash keyed by (service, slot).
const legacySchedPin = "sched_tbl_hash"

// legacyTblKey is that hash's key.
type legacyTblKey struct{ Svc, Slot uint32 }

// setAsideHashTable renames a pinned sched_tbl that is a hash to
// legacySchedPin, so that the load creates the array in its place and
// migrateSchedTbl can move the tables over (until it has, the previous
// program, still attached, keeps using the hash).
func setAsideHashTable(dir string) error {
	p := filepath.Join(dir, "sched_tbl")
	m, err := ebpf.LoadPinnedMap(p, nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	typ := m.Type()
	m.Close()
	if typ != ebpf.Hash {
		return nil
	}
	return os.Rename(p, filepath.Join(dir, legacySchedPin))
}

// migrateSchedTbl copies the tables of a hash set aside by
// setAsideHashTable into runs of sched_tbl, gives each pinned service
// its run's base, and removes the hash. A start that dies half way
// through finds the hash again and starts over.
func (d *Dataplane) migrateSchedTbl() error {
	p := filepath.Join(d.opts.PinPath, legacySchedPin)
	old, err := ebpf.LoadPinnedMap(p, nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer old.Close()
	if old.Type() != ebpf.Hash || old.KeySize() != 8 || old.ValueSize() != 4 {
		return fmt.Errorf("%s is a %v with %d-byte keys and %d-byte values, not a govs scheduling hash; remove it", p, old.Type(), old.KeySize(), old.ValueSize())
	}
	tables := make(map[uint32][]uint32)
	type pinned struct {
		id  uint32
		cfg lbSvcCfg
	}
	var svcs []pinned
	var id uint32
	var cfg lbSvcCfg
	it := d.objs.SvcCfgs.Iterate()
	for it.Next(&id, &cfg) {
		if pinnedService(id, &cfg) {
			svcs = append(svcs, pinned{id, cfg})
			tables[id] = make([]uint32, cfg.TableSize)
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	if err := walkMap(old, func(k *legacyTblKey, v *uint32) {
		if t := tables[k.Svc]; k.Slot < uint32(len(t)) {
			t[k.Slot] = *v
		}
	}); err != nil {
		return err
	}
	space := newSlotSpace(schedSlots)
	for _, s := range svcs {
		run, ok := space.alloc(ringCapacity(s.cfg.Mode, s.cfg.TableSize, d.opts.RingSize))
		if !ok {
			return fmt.Errorf("the pinned services' tables do not fit the %d slots of sched_tbl", schedSlots)
		}
		for i, v := range tables[s.id] {
			if err := d.writeSlot(run.base+uint32(i), v); err != nil {
				return err
			}
		}
		s.cfg.TblBase = run.base
		if err := d.objs.SvcCfgs.Put(s.id, &s.cfg); err != nil {
			return fmt.Errorf("write service config: %w", err)
		}
	}
	if err := os.Remove(p); err != nil {
		return err
	}
	d.log.Info("moved the scheduling tables of the previous govs from its hash into sched_tbl", "services", len(svcs))
	return nil
}

// legacyPins are the maps a govs from before cpu_data pinned: the real
// servers (real_tbl) and the counters now in cpu_data.
var legacyPins = []string{"real_tbl", "stats_real", "exits", "events"}

// migrateLegacy moves the state of a govs from before cpu_data into the
// new map, before anything reads it: every real server slot (empty ones
// too, so a cpu_data left by an earlier start is overwritten), the real
// servers' counters and the exit and event counters; then it removes the
// old pins, real_tbl last. lost says the real servers' counters could not
// be taken over (another layout), so the caller starts them and the
// services' again from zero. Connections and services are adopted from
// their maps as after any restart, so the upgrade forwards without a gap.
func (d *Dataplane) migrateLegacy() (lost bool, err error) {
	rt, err := ebpf.LoadPinnedMap(filepath.Join(d.opts.PinPath, "real_tbl"), nil)
	if errors.Is(err, os.ErrNotExist) { // removed with every table (the load's reset)
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer rt.Close()
	if rt.ValueSize() != uint32(binary.Size(lbReal{})) || rt.MaxEntries() != maxReals {
		return false, fmt.Errorf("pinned real_tbl has %d entries of %d bytes, want %d of %d; remove %s to start afresh",
			rt.MaxEntries(), rt.ValueSize(), maxReals, binary.Size(lbReal{}), d.opts.PinPath)
	}
	var r lbReal
	var moved int
	for id := uint32(1); id < maxReals; id++ {
		if err := rt.Lookup(id, &r); err != nil {
			return false, fmt.Errorf("read pinned real_tbl slot %d: %w", id, err)
		}
		if err := d.reals().putAll(id, &r); err != nil {
			return false, err
		}
		if r.Gen != 0 {
			moved++
		}
	}
	// The old counters were plain arrays with a block per CPU, CPU n's
	// at n*slots.
	copyBlock := func(name string, p perCPU, valueSize uint32) error {
		m, err := ebpf.LoadPinnedMap(filepath.Join(d.opts.PinPath, name), nil)
		if err != nil {
			return err
		}
		defer m.Close()
		if m.Type() != ebpf.Array || m.ValueSize() != valueSize || m.MaxEntries() != p.n*uint32(d.ncpu) {
			return fmt.Errorf("a %v of %d entries of %d bytes, not this layout", m.Type(), m.MaxEntries(), m.ValueSize())
		}
		buf := make([]byte, valueSize)
		for c := range d.ncpu {
			for k := range p.n {
				if err := m.Lookup(uint32(c)*p.n+k, &buf); err != nil {
					return err
				}
				if err := p.putBytes(c, k, buf); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, b := range []struct {
		name string
		p    perCPU
		size int
	}{{"stats_real", d.statsReal(), binary.Size(lbCounters{})}, {"exits", d.exits(), 8}, {"events", d.events(), 8}} {
		if err := copyBlock(b.name, b.p, uint32(b.size)); err != nil {
			d.log.Warn("previous govs's counters not taken over: they start again from zero", "map", b.name, "err", err)
			lost = lost || b.name == "stats_real"
		}
	}
	var errs []error
	for _, n := range slices.Backward(legacyPins) {
		if err := os.Remove(filepath.Join(d.opts.PinPath, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	d.log.Info("took over the previous govs's real servers into cpu_data", "real_servers", moved, "counters", !lost)
	return lost, errors.Join(errs...)
}

// perCPU is one kind of per-CPU entry in cpu_data (CD_* in bpf/lb.h):
// keys 0..n-1 of size bytes, step bytes apart from base in each CPU's
// block, read and written like a per-CPU array: a slice of one value per
// CPU, from and to the map's memory (BPF_F_MMAPABLE), no system call.
type perCPU struct {
	m          *ebpf.Map
	ncpu       int
	n          uint32 // keys
	base, step int64  // byte offset of key 0 in a CPU's block, bytes between keys
	size       int    // bytes of a value
}

// statsReal, exits and events are the program's per-CPU blocks of
// counters, reals the per-CPU copies of the real servers' entries.
func (d *Dataplane) statsReal() perCPU {
	return perCPU{d.objs.CpuData, d.ncpu, maxReals, cdReals*cdEntry + cdCounters, cdEntry, binary.Size(lbCounters{})}
}
func (d *Dataplane) exits() perCPU {
	return perCPU{d.objs.CpuData, d.ncpu, exitSlots, cdExits * cdEntry, 8, 8}
}
func (d *Dataplane) events() perCPU {
	return perCPU{d.objs.CpuData, d.ncpu, evSlots, cdEvents * cdEntry, 8, 8}
}
func (d *Dataplane) reals() perCPU {
	return perCPU{d.objs.CpuData, d.ncpu, maxReals, cdReals * cdEntry, cdEntry, binary.Size(lbReal{})}
}

// off is where CPU c's value of key k starts in the map's memory.
func (p perCPU) off(c int, k uint32) int64 {
	return int64(c)*cdEntries*cdEntry + p.base + int64(k)*p.step
}

func (p perCPU) key(key any) (uint32, error) {
	k, ok := key.(uint32)
	if !ok || k >= p.n {
		return 0, fmt.Errorf("per-CPU key %v: not a uint32 below %d", key, p.n)
	}
	return k, nil
}

// Lookup reads key's value of every CPU into out, a *[]T.
func (p perCPU) Lookup(key, out any) error {
	k, err := p.key(key)
	if err != nil {
		return err
	}
	v := reflect.ValueOf(out)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Slice {
		return fmt.Errorf("per-CPU lookup into %T: want a pointer to a slice", out)
	}
	s := reflect.MakeSlice(v.Elem().Type(), p.ncpu, p.ncpu)
	for c := range p.ncpu {
		if err := p.readCPU(c, k, s.Index(c).Addr().Interface()); err != nil {
			return err
		}
	}
	v.Elem().Set(s)
	return nil
}

// readCPU decodes CPU c's value of key k into out, a pointer.
func (p perCPU) readCPU(c int, k uint32, out any) error {
	mem, err := p.m.Memory()
	if err != nil {
		return err
	}
	buf := make([]byte, p.size)
	if _, err := mem.ReadAt(buf, p.off(c, k)); err != nil {
		return fmt.Errorf("read key %d of CPU %d: %w", k, c, err)
	}
	if err := binary.Read(bytes.NewReader(buf), binary.NativeEndian, out); err != nil {
		return fmt.Errorf("decode key %d of CPU %d: %w", k, c, err)
	}
	return nil
}

// Put writes value, a []T of one value per CPU, as key's values.
func (p perCPU) Put(key, value any) error {
	k, err := p.key(key)
	if err != nil {
		return err
	}
	v := reflect.ValueOf(value)
	if v.Kind() != reflect.Slice || v.Len() != p.ncpu {
		return fmt.Errorf("per-CPU put of %T: want a slice of %d values", value, p.ncpu)
	}
	for c := range p.ncpu {
		if err := p.putCPU(c, k, v.Index(c).Interface()); err != nil {
			return err
		}
	}
	return nil
}

// putAll writes value, one T, as key's value of every CPU (a real
// server's entry, which every CPU reads from its own block).
func (p perCPU) putAll(k uint32, value any) error {
	if k >= p.n {
		return fmt.Errorf("per-CPU key %d: not below %d", k, p.n)
	}
	b, err := p.encode(k, value)
	if err != nil {
		return err
	}
	// CPU 0 last: a restart adopts CPU 0's copy, which then never shows
	// what the other CPUs do not have yet
	for c := p.ncpu - 1; c >= 0; c-- {
		if err := p.putBytes(c, k, b); err != nil {
			return err
		}
	}
	return nil
}

func (p perCPU) putCPU(c int, k uint32, value any) error {
	b, err := p.encode(k, value)
	if err != nil {
		return err
	}
	return p.putBytes(c, k, b)
}

// encode renders value as key k's bytes.
func (p perCPU) encode(k uint32, value any) ([]byte, error) {
	var b bytes.Buffer
	if err := binary.Write(&b, binary.NativeEndian, value); err != nil || b.Len() != p.size {
		return nil, fmt.Errorf("encode key %d (%d of %d bytes): %v", k, b.Len(), p.size, err)
	}
	return b.Bytes(), nil
}

// putBytes writes b, an encoded value, as CPU c's value of key k.
func (p perCPU) putBytes(c int, k uint32, b []byte) error {
	if len(b) != p.size || k >= p.n {
		return fmt.Errorf("per-CPU write of %d bytes to key %d: want %d bytes and a key below %d", len(b), k, p.size, p.n)
	}
	mem, err := p.m.Memory()
	if err != nil {
		return err
	}
	if _, err := mem.WriteAt(b, p.off(c, k)); err != nil {
		return fmt.Errorf("write key %d of CPU %d: %w", k, c, err)
	}
	return nil
}

// sumWords adds up, over CPUs, the first words uint64 words of each of
// keys key..key+n-1 (every counter the program keeps is a uint64), into
// out[(k-key)*words+w]: one read of the map's memory per CPU, no
// decoding by reflection. The sync reads the events and exits this way
// every round.
func (p perCPU) sumWords(key, n uint32, words int, out []uint64) error {
	if key+n > p.n || n == 0 || words*8 > p.size || len(out) != int(n)*words {
		return fmt.Errorf("per-CPU read of keys %d+%d, %d words: outside %d keys of %d bytes", key, n, words, p.n, p.size)
	}
	mem, err := p.m.Memory()
	if err != nil {
		return err
	}
	clear(out)
	buf := make([]byte, int64(n-1)*p.step+int64(words*8))
	for c := range p.ncpu {
		if _, err := mem.ReadAt(buf, p.off(c, key)); err != nil {
			return fmt.Errorf("read keys %d+%d of CPU %d: %w", key, n, c, err)
		}
		for k := range int64(n) {
			for w := range int64(words) {
				out[k*int64(words)+w] += binary.NativeEndian.Uint64(buf[k*p.step+8*w:])
			}
		}
	}
	return nil
}

func sumCounters(m interface {
	Lookup(key, valueOut any) error
}, names []string) (map[string]uint64, error) {
	out := make(map[string]uint64, len(names))
	if p, ok := m.(perCPU); ok {
		sums := make([]uint64, len(names))
		if err := p.sumWords(0, uint32(len(names)), 1, sums); err != nil {
			return nil, fmt.Errorf("xdp: read counters: %w", err)
		}
		for i, n := range names {
			out[n] = sums[i]
		}
		return out, nil
	}
	for i, n := range names {
		var per []uint64
		if err := m.Lookup(uint32(i), &per); err != nil {
			return nil, fmt.Errorf("xdp: read counter %s: %w", n, err)
		}
		var s uint64
		for _, v := range per {
			s += v
		}
		out[n] = s
	}
	return out, nil
}

// addrBytes renders an address the way keys store it: IPv4 in the first
// four bytes, the rest zero.
func addrBytes(a netip.Addr) (b [16]byte, family uint8) {
	a = a.Unmap()
	if a.Is4() {
		v := a.As4()
		copy(b[:], v[:])
		return b, 4
	}
	return a.As16(), 6
}

func bytesAddr(b [16]byte, family uint8) netip.Addr {
	if family == 4 {
		return netip.AddrFrom4([4]byte(b[:4]))
	}
	return netip.AddrFrom16(b)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
