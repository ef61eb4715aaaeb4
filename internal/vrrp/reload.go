package vrrp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// ErrStopped is returned by Reload once Run has returned.
var ErrStopped = errors.New("vrrp: the node has stopped")

// ErrNotStarted is wrapped by a Reload error when the reload was applied
// but an instance that replaces another (reusing its use_vmac interface
// name) could not be started.
var ErrNotStarted = errors.New("vrrp: reload applied, but an instance could not start")

type reloadReq struct {
	plan  *plan
	opts  Options
	reply chan error
}

// Reload puts a new set of instances, scripts and sync groups in force
// while the node runs, the way keepalived applies a reload: only what
// changed is touched.
//
//   - An instance is known across the reload by its name. One whose
//     interface, virtual_router_id, address family and VRRP version are
//     the same keeps its state (a MASTER stays MASTER, its addresses stay
//     in place) and takes its new settings at once: a MASTER adds the
//     virtual addresses, routes and rules that are new (and announces
//     the new addresses) and removes those that went; a new priority or
//     advert interval goes out in an advert at once; trackers are
//     re-evaluated. A new source address, peer list, TTL or multicast
//     group opens a new socket and keeps the state.
//   - An instance whose name is gone, or whose router (interface, VRID,
//     family, version) changed, is stopped as at shutdown (a MASTER sends
//     a priority 0 advert and removes its addresses; STOP is notified);
//     a new one starts as at startup.
//   - A vrrp_script, track_file or track_process whose settings did not
//     change keeps running and keeps its result; a changed one restarts
//     from its initial state.
//
// The configuration is checked first: an invalid one, or a socket that
// cannot be opened, is refused with nothing changed. Before Run starts
// (vrrp_startup_delay) the new configuration is simply the one Run will
// start. Only Instances, Scripts, SyncGroups, LinkDelays and Static of
// opts are read.
func (n *Node) Reload(ctx context.Context, opts Options) error {
	p, err := preparePlan(opts)
	if err != nil {
		return err
	}
	n.mu.Lock()
	if !n.running {
		defer n.mu.Unlock()
		select {
		case <-n.done:
			return ErrStopped
		default:
		}
		n.adopt(p)
		n.setOpts(opts)
		return nil
	}
	n.mu.Unlock()
	req := &reloadReq{plan: p, opts: opts, reply: make(chan error, 1)}
	select {
	case n.reloads <- req:
	case <-n.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	// Run answers every request it took, whatever becomes of ctx
	return <-req.reply
}

func (n *Node) setOpts(o Options) {
	n.opts.Instances, n.opts.Scripts, n.opts.SyncGroups, n.opts.LinkDelays = o.Instances, o.Scripts, o.SyncGroups, o.LinkDelays
	n.opts.Static = o.Static
	if n.links != nil {
		n.links.setDelays(o.LinkDelays)
	}
}

// sameRouter reports whether two configurations are the same virtual
// router, so that a reload keeps the instance's state.
func sameRouter(a, b *InstanceConfig) bool {
	return a.Interface == b.Interface && a.VRID == b.VRID && a.IsIPv6() == b.IsIPv6() && a.Version == b.Version &&
		a.VMAC == b.VMAC && a.VirtualMAC().String() == b.VirtualMAC().String() && a.VMACXmitBase == b.VMACXmitBase
}

// sameSocket reports whether the advert socket of a can serve b.
func sameSocket(a, b *InstanceConfig) bool {
	return a.UnicastSrcIP == b.UnicastSrcIP && a.McastSrcIP == b.McastSrcIP &&
		slices.Equal(a.UnicastPeers, b.UnicastPeers) && a.UnicastTTL == b.UnicastTTL && a.MulticastGroup == b.MulticastGroup &&
		// the socket holds the interface's promote_secondaries
		a.PromoteSecondaries == b.PromoteSecondaries &&
		// and its receive buffer
		a.RxBufSize == b.RxBufSize && a.RxBufMTUs == b.RxBufMTUs &&
		// an AH socket holds its key
		a.AuthAH == b.AuthAH && (!a.AuthAH || a.AuthPass == b.AuthPass)
}

// addrDelta is the part of from's addresses, routes and rules that minus
// does not have, as a configuration System.AddAddresses and
// RemoveAddresses take (empty reports whether there is none).
//
// The delta names the device of each address and route that had none
// (the use_vmac interface or the instance's) and has no VMAC of its own:
// adding or removing it touches those entries alone, not the VMAC
// interface's link-local address (IPv6) that the whole set carries.
func addrDelta(from, minus *InstanceConfig) (d InstanceConfig, empty bool) {
	d = *from
	d.VirtualIPs, d.VirtualIPsExcluded, d.VirtualRoutes, d.VirtualRules = nil, nil, nil, nil
	d.VMAC = ""
	have := allVIPs(minus)
	for _, v := range from.VirtualIPs {
		if !slices.Contains(have, v) {
			d.VirtualIPs = append(d.VirtualIPs, from.withDev(v))
		}
	}
	for _, v := range from.VirtualIPsExcluded {
		if !slices.Contains(have, v) {
			d.VirtualIPsExcluded = append(d.VirtualIPsExcluded, from.withDev(v))
		}
	}
	for _, r := range from.VirtualRoutes {
		if !slices.ContainsFunc(minus.VirtualRoutes, r.equal) {
			if r.onDefaultDev() {
				r.Dev = from.addrDev()
			}
			d.VirtualRoutes = append(d.VirtualRoutes, r)
		}
	}
	for _, r := range from.VirtualRules {
		if !slices.Contains(minus.VirtualRules, r) {
			d.VirtualRules = append(d.VirtualRules, r)
		}
	}
	return d, len(d.VirtualIPs)+len(d.VirtualIPsExcluded)+len(d.VirtualRoutes)+len(d.VirtualRules) == 0
}

// reload applies p in the Run goroutine (see Reload).
func (n *Node) reload(p *plan, opts Options) error {
	ctx, q := n.bg, n.q
	// a socket bound to an interface made anew goes first: the reload
	// opens the instance's new one
	n.checkLinks(ctx, q)
	now := n.now()
	oldIdx := map[*instance]int{}
	byName := map[string]*instance{}
	for i, in := range n.insts {
		oldIdx[in] = i
		byName[in.cfg.Name] = in
	}

	type step struct {
		in        *instance // kept, or nil for a new instance
		prev      InstanceConfig
		oldGroup  string
		wasMaster bool
		conn      Conn // a new socket, or nil
		deferred  bool // set up after the instances that go stopped
		failed    bool // a deferred setup that failed
		wait      bool // no socket (yet): the instance waits in FAULT
		waitErr   string
	}
	steps := make([]step, len(p.cfgs))
	for i := range p.cfgs {
		c := &p.cfgs[i]
		if o := byName[c.Name]; o != nil && sameRouter(&o.cfg, c) {
			steps[i] = step{in: o, prev: o.cfg, oldGroup: n.groupName(c.Name), wasMaster: o.m.State() == StateMaster}
			delete(byName, c.Name)
		}
	}
	// byName holds the instances that go now. A new instance whose VMAC
	// interface has the name of one of theirs is set up once that one
	// stopped: its setup would replace the interface under it.
	going := map[string]bool{}
	for _, o := range byName {
		if o.cfg.VMAC != "" {
			going[o.cfg.VMAC] = true
		}
	}

	// Open the other sockets first: a failure leaves everything as it was.
	var opened []int // steps with a new socket
	for i := range p.cfgs {
		c, st := &p.cfgs[i], &steps[i]
		if st.in != nil && sameSocket(&st.in.cfg, c) && st.in.conn != nil {
			continue
		}
		if st.in == nil && c.VMAC != "" && going[c.VMAC] {
			st.deferred = true
			continue
		}
		oc := *c
		if st.in != nil && sameSocket(&st.in.cfg, c) && st.in.pinned.IsValid() {
			// a track_src_ip instance waits for the source it lost
			oc.UnicastSrcIP = st.in.pinned
		}
		conn, err := n.openConn(ctx, &oc)
		if errors.Is(err, ErrNotYet) {
			// its interface or source is not there yet: the instance
			// waits in FAULT (retryOpen), as at start; not a refusal
			st.wait, st.waitErr = true, err.Error()
			continue
		}
		if err != nil {
			olds := make([]InstanceConfig, len(n.insts))
			for j, in := range n.insts {
				olds[j] = in.cfg
			}
			for j := range steps[:i+1] {
				if !slices.Contains(opened, j) && !(steps[j].wait && steps[j].in == nil) && j != i {
					continue // nothing was set up for it
				}
				if steps[j].conn != nil {
					steps[j].conn.Close()
				}
				if steps[j].in == nil {
					n.removeVMAC(ctx, &p.cfgs[j], olds)
				}
			}
			return err
		}
		opened = append(opened, i)
		st.conn = conn
	}

	// Instances that go (byName holds them) stop as at shutdown.
	var keepVMAC []InstanceConfig
	for i := range p.cfgs {
		if !steps[i].deferred {
			keepVMAC = append(keepVMAC, p.cfgs[i])
		}
	}
	for _, in := range n.insts {
		if byName[in.cfg.Name] == in {
			n.log.Info("vrrp instance removed by reload", "instance", in.cfg.Name)
			n.apply(ctx, q, oldIdx[in], EventShutdown{Deleted: true})
			if in.conn != nil {
				in.conn.Close()
			}
			n.removeVMAC(ctx, &in.cfg, keepVMAC)
		}
	}
	var notStarted []error
	for i := range steps {
		if !steps[i].deferred {
			continue
		}
		conn, err := n.openConn(ctx, &p.cfgs[i])
		if errors.Is(err, ErrNotYet) {
			steps[i].wait, steps[i].waitErr = true, err.Error()
			continue
		}
		if err != nil {
			n.removeVMAC(ctx, &p.cfgs[i], keepVMAC)
			n.log.Error("vrrp instance of the reload not started", "instance", p.cfgs[i].Name, "err", err)
			notStarted = append(notStarted, err)
			steps[i].failed = true
			continue
		}
		steps[i].conn = conn
	}
	if len(notStarted) > 0 {
		var cfgs []InstanceConfig
		var kept []step
		for i := range steps {
			if !steps[i].failed {
				cfgs, kept = append(cfgs, p.cfgs[i]), append(kept, steps[i])
			}
		}
		p.cfgs, steps = cfgs, kept
	}

	// A MASTER that keeps its state drops the addresses that went, all of
	// them before any is added, so that one moving from one instance to
	// another ends up installed.
	// A route or rule another holder keeps (a MASTER, in its new
	// configuration, or the new static set) stays.
	holders := func(skip int) []InstanceConfig {
		var hs []InstanceConfig
		for j, o := range steps {
			if j != skip && o.in != nil && o.wasMaster {
				hs = append(hs, p.cfgs[j])
			}
		}
		if !opts.Static.empty() {
			hs = append(hs, opts.Static.config())
		}
		return hs
	}
	for i, s := range steps {
		if s.in == nil || !s.wasMaster {
			continue
		}
		if gone, empty := addrDelta(&s.prev, &p.cfgs[i]); !empty {
			gone = withoutShared(gone, holders(i))
			if err := n.opts.System.RemoveAddresses(ctx, &gone); err != nil {
				n.log.Error("remove virtual addresses", "instance", s.in.cfg.Name, "err", err)
			}
		}
	}

	// The trackers' state before the watchers change.
	cur := map[string]Tracker{}
	for _, in := range n.insts {
		for _, t := range in.m.trackers {
			cur[t.Key] = t
		}
	}
	// static addresses, routes and rules: those that went go, the new
	// ones come (all are added again: adding is idempotent)
	oldStatic, newStatic := n.opts.Static.config(), opts.Static.config()
	if gone, empty := addrDelta(&oldStatic, &newStatic); !empty {
		var masters []InstanceConfig
		for j, o := range steps {
			if o.in != nil && o.wasMaster {
				masters = append(masters, p.cfgs[j])
			}
		}
		gone = withoutShared(gone, masters)
		if err := n.opts.System.RemoveAddresses(ctx, &gone); err != nil {
			n.log.Error("remove static addresses, routes and rules", "err", err)
		}
	}
	n.installStatic(ctx, opts.Static)
	kept := n.syncWatchers(n.watchSpecs(p.cfgs, p.scripts))
	n.scripts, n.groupOf, n.cfgs = p.scripts, p.groupOf, p.cfgs
	n.setOpts(opts)

	insts := make([]*instance, len(p.cfgs))
	status := make([]InstanceStatus, len(p.cfgs))
	trackers := make([][]Tracker, len(p.cfgs))
	n.mu.Lock()
	oldStatus := n.status
	n.mu.Unlock()
	for i, s := range steps {
		c := p.cfgs[i]
		trackers[i] = n.trackers(ctx, &c, cur, kept, s.wait || s.in != nil && s.in.conn == nil && s.conn == nil)
		in := s.in
		if in == nil {
			in = &instance{cfg: c, conn: s.conn, openErr: s.waitErr, started: n.now()}
			in.storeVIPs()
			var local netip.Addr
			if s.conn != nil {
				local = s.conn.LocalAddr()
			}
			m, err := NewMachine(c, local, trackers[i])
			if err != nil { // checked by preparePlan
				panic(err)
			}
			in.m = m
			n.log.Info("vrrp instance added by reload", "instance", c.Name)
		} else {
			if !sameSocket(&s.prev, &c) || !c.TrackSrcIP {
				in.pinned = netip.Addr{}
			}
			switch {
			case s.conn != nil:
				if in.conn != nil {
					in.conn.Close()
				}
				in.conn, in.openErr, in.pinned = s.conn, "", netip.Addr{}
			case s.wait:
				// its new socket waits: the old one goes
				if in.conn != nil {
					in.conn.Close()
					in.conn = nil
				}
				in.openErr = s.waitErr
			}
			if c.OldUnicastChecksum != in.cfg.OldUnicastChecksum || !slices.Equal(c.UnicastPeers, in.cfg.UnicastPeers) ||
				c.OldChecksumGroup != in.cfg.OldChecksumGroup || c.Version != in.cfg.Version {
				in.oldChecksumSeen = false // (seen again with the next advert)
			}
			in.cfg = c
			in.storeVIPs()
			status[i] = oldStatus[oldIdx[in]]
		}
		if s.conn != nil {
			n.startReceiver(in)
		}
		insts[i] = in
		status[i] = n.statusBase(c, status[i])
	}
	n.insts = insts
	n.byKey = map[string]int{}
	for i, in := range insts {
		n.byKey[in.cfg.Name] = i
	}
	n.mu.Lock()
	n.status = status
	n.shown = p.shown()
	n.mu.Unlock()
	// a group's state is forgotten with the group (a group that keeps
	// its name keeps it, and its new members are brought to it below)
	for g := range n.groupState {
		if !slices.ContainsFunc(opts.SyncGroups, func(sg SyncGroupConfig) bool { return sg.Name == g }) {
			delete(n.groupState, g)
		}
	}

	for i, s := range steps {
		in := insts[i]
		g := n.groupOf[in.cfg.Name]
		var gst State
		hasGST := false
		if g != nil {
			gst, hasGST = n.groupState[g.Name]
		}
		if s.in == nil && g != nil && !in.m.pendingFault() && n.groupWaiting(g) {
			// a new member of a group one of whose members still waits
			// for a script's first result waits with it, as at start
			// (releaseHeld starts it; keepalived 2.2.7 holds it so)
			in.heldStart = true
			n.publish(i)
			continue
		}
		if s.in == nil {
			// A new member of a group that has a state takes it rather
			// than pull the group to its own startup BACKUP; a FAULT at
			// startup is still the group's.
			n.stepWith(ctx, q, i, func(m *Machine) []Action { return m.Step(EventStartup{}, n.now()) },
				func(t ActionTransition) bool { return !hasGST || t.To == StateFault })
			if hasGST && in.m.State() != StateFault {
				n.apply(ctx, q, i, EventSync{Group: g.Name, State: gst})
			}
			continue
		}
		sync := n.groupFault(in)
		n.stepWith(ctx, q, i, func(m *Machine) []Action {
			local := m.local
			if in.conn != nil {
				local = in.conn.LocalAddr()
			}
			return m.Reconfigure(in.cfg, local, trackers[i], sync, now)
		}, nil)
		// an instance that joined a group takes the group's state
		if hasGST && s.oldGroup != g.Name && in.m.State() != StateFault && in.m.State() != gst {
			n.apply(ctx, q, i, EventSync{Group: g.Name, State: gst})
		}
		if s.wasMaster && in.m.State() == StateMaster {
			// every address, not only the new ones: one that another
			// instance removed above may be this one's too
			if err := n.opts.System.AddAddresses(ctx, &in.cfg); err != nil {
				n.log.Error("add virtual addresses", "instance", in.cfg.Name, "err", err)
			}
			if added, empty := addrDelta(&in.cfg, &s.prev); !empty && len(added.VirtualIPs)+len(added.VirtualIPsExcluded) > 0 {
				n.announce(ctx, in, added, in.cfg.GARPMasterRepeat, "addresses added by reload")
			}
		}
		n.publish(i)
	}
	if len(notStarted) > 0 {
		return fmt.Errorf("%w: %w", ErrNotStarted, errors.Join(notStarted...))
	}
	return nil
}

// groupFault reports whether another member of in's sync group is in
// FAULT through a tracker of its own (which holds the group in FAULT).
func (n *Node) groupFault(in *instance) bool {
	g := n.groupOf[in.cfg.Name]
	if g == nil {
		return false
	}
	for _, name := range g.Members {
		if j, ok := n.byKey[name]; ok && n.insts[j] != in && n.insts[j].m.fault && !n.insts[j].m.Waiting() {
			return true
		}
	}
	return false
}

// withoutShared is cfg without the routes and rules one of holders has
// too: the same destination, table and metric for a route (the kernel's
// identity of it), the same rule.
func withoutShared(cfg InstanceConfig, holders []InstanceConfig) InstanceConfig {
	if len(holders) == 0 {
		return cfg
	}
	type routeID struct {
		dst           netip.Prefix
		table, metric int
	}
	// the kernel's identity: no table is main, an IPv6 metric of 0 is
	// 1024
	key := func(r VirtualRoute) routeID {
		t, m := r.Table, r.Metric
		if t == 0 {
			t = 254
		}
		if m == 0 && r.Dst.Addr().Is6() {
			m = 1024
		}
		return routeID{r.Dst.Masked(), t, m}
	}
	routes := map[routeID]bool{}
	var rules []VirtualRule
	for _, h := range holders {
		for _, r := range h.VirtualRoutes {
			routes[key(r)] = true
		}
		for _, r := range h.VirtualRules {
			r.NoTrack = false
			rules = append(rules, r)
		}
	}
	out := cfg
	out.VirtualRoutes, out.VirtualRules = nil, nil
	for _, r := range cfg.VirtualRoutes {
		if !routes[key(r)] {
			out.VirtualRoutes = append(out.VirtualRoutes, r)
		}
	}
	for _, r := range cfg.VirtualRules {
		k := r
		k.NoTrack = false
		if !slices.Contains(rules, k) {
			out.VirtualRules = append(out.VirtualRules, r)
		}
	}
	return out
}
