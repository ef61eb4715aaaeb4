package director

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/bgp"
	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/dataplane"
)

// bgpState is the BGP speaker of a director (govs_bgp): it announces the
// host route of every virtual address with a virtual service up, so that
// routers spread the traffic over the directors that announce it (ECMP).
type bgpState struct {
	sp      *bgp.Speaker // nil: no govs_bgp, or not started
	cfg     *config.BGP  // the block to put in force
	running bool         // Run started: the speaker may connect
	// withdrawn: govs is stopping, nothing is announced any more;
	// drained: withdrawn at run time (govs bgp --withdraw)
	withdrawn, drained bool
	want               []netip.Prefix // the routes reconcile computed last
	err                string         // the last start error (the speaker keeps its own)
	// wake asks the route worker to put want in force; done is closed
	// when the worker ends; applied counts what it put in force
	wake    chan struct{}
	done    chan struct{}
	cancel  context.CancelFunc // ends the worker
	applied uint64
	asked   uint64
	setErr  error // of the worker's last SetRoutes
	// announced: the addresses past their hold-down, held: those in it
	// (holdDownLocked)
	announced, held []netip.Prefix
	holdTimer       *time.Timer
}

// bgpRetry is how often a speaker that could not start is started again.
const bgpRetry = 10 * time.Second

// bgpSettings turns the govs_bgp block into the speaker's settings.
func bgpSettings(b *config.BGP) bgp.Settings {
	sec := func(s int) time.Duration { return time.Duration(s) * time.Second }
	set := bgp.Settings{
		LocalAS:    b.LocalAS,
		RouterID:   b.RouterID,
		ListenPort: b.ListenPort,
		NextHop4:   b.NextHop,
		NextHop6:   b.NextHop6,
		Prepend:    b.Prepend,
	}
	for _, c := range b.Communities {
		if v, err := config.ParseCommunity(c); err == nil {
			set.Communities = append(set.Communities, v)
		}
	}
	set.MED, set.LocalPref = b.MED, b.LocalPref
	for _, n := range b.Neighbors {
		hold, ka := config.BGPTimers(b, n)
		retry := n.ConnectRetry
		if retry == 0 {
			retry = b.ConnectRetry
		}
		set.Neighbors = append(set.Neighbors, bgp.Neighbor{
			Address:       n.Address,
			RemoteAS:      n.RemoteAS,
			LocalAddress:  n.LocalAddress,
			Port:          n.Port,
			Password:      n.Password,
			Passive:       n.Passive,
			Multihop:      n.Multihop,
			HoldTime:      sec(hold),
			Keepalive:     sec(ka),
			ConnectRetry:  sec(retry),
			BFD:           n.BFD,
			BFDInterval:   time.Duration(n.BFDInterval) * time.Millisecond,
			BFDMultiplier: n.BFDMultiplier,
		})
	}
	return set
}

// bgpRoutes lists the host routes of the addresses of services that are
// up: put in the dataplane (this node balances them, they are not
// deactivated) and with their quorum met, or answered by their sorry
// server. An address shared by several services is announced while one
// of them is up. d.mu is held.
//
// It also returns, for each route, since when its address has had a
// service up by its health (d.bgpHealthy, kept for every configured
// service whether this node balances it or not): the hold-down counts
// from there, so an address VRRP hands over or a service activated again
// is announced at once, its checks having run all along.
func (d *Director) bgpRoutesLocked(svcs []dataplane.Service) ([]netip.Prefix, map[netip.Prefix]time.Time) {
	healthy := func(key dataplane.ServiceKey, sorry bool) bool {
		dec := d.decisions[key]
		return dec.QuorumUp || dec.SorryOn && sorry
	}
	each := func(s dataplane.Service, fn func(netip.Prefix)) {
		for _, a := range append([]netip.Addr{s.Key.Addr}, s.VIPs...) {
			if a = a.Unmap(); a.IsValid() && !a.IsUnspecified() {
				fn(netip.PrefixFrom(a, a.BitLen()))
			}
		}
	}
	now := time.Now()
	up := map[netip.Prefix]bool{}
	for _, s := range d.specs {
		if healthy(s.svc.Key, s.sorry != nil) {
			each(s.svc, func(p netip.Prefix) { up[p] = true })
		}
	}
	if d.bgpHealthy == nil {
		d.bgpHealthy = map[netip.Prefix]time.Time{}
	}
	for p := range d.bgpHealthy {
		if !up[p] {
			delete(d.bgpHealthy, p)
		}
	}
	for p := range up {
		if _, ok := d.bgpHealthy[p]; !ok {
			d.bgpHealthy[p] = now
		}
	}
	seen := map[netip.Prefix]bool{}
	var out []netip.Prefix
	since := map[netip.Prefix]time.Time{}
	for _, s := range svcs {
		if !healthy(s.Key, s.Sorry != nil) {
			continue
		}
		each(s, func(p netip.Prefix) {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
				since[p] = d.bgpHealthy[p]
			}
		})
	}
	slices.SortFunc(out, netip.Prefix.Compare)
	return out, since
}

// setBGPConfig records the govs_bgp block of a configuration put in
// force and, once Run has started, applies it: start, change or stop the
// speaker.
func (d *Director) setBGPConfig(ctx context.Context, b *config.BGP) {
	d.bmu.Lock()
	d.bgp.cfg = b
	if b == nil {
		// a block put back later starts announcing
		d.bgp.drained = false
	}
	d.bmu.Unlock()
	d.applyBGP(ctx)
}

// applyBGP puts the recorded govs_bgp block in force. Calls into the
// speaker are made without d.bmu, so that reconcile (which takes it to
// hand over routes) never waits for a BGP session; bcfgMu keeps the
// blocks applied in the order they were recorded.
func (d *Director) applyBGP(ctx context.Context) {
	d.bcfgMu.Lock()
	defer d.bcfgMu.Unlock()
	d.bmu.Lock()
	st := &d.bgp
	if !st.running {
		d.bmu.Unlock()
		return
	}
	cfg, sp := st.cfg, st.sp
	if cfg == nil {
		st.sp, st.err = nil, ""
		d.bmu.Unlock()
		if sp != nil {
			d.log.Info("bgp: govs_bgp removed: withdrawing every route and closing the sessions")
			sp.Close(ctx)
		}
		return
	}
	if sp == nil {
		sp = bgp.New(d.log)
		st.sp = sp
	}
	d.bmu.Unlock()
	err := sp.Configure(ctx, bgpSettings(cfg))
	if err != nil {
		// a speaker that did not start (no router ID, the listen port
		// taken) is started again by the worker every bgpRetry, and so
		// is a neighbor GoBGP refused; the sessions that are up keep
		// their routes in force meanwhile
		d.log.Error("bgp", "err", err)
	}
	d.bmu.Lock()
	st.err = ""
	if err != nil {
		st.err = err.Error()
	}
	d.kickBGPLocked()
	d.bmu.Unlock()
}

// kickBGPLocked asks the route worker to put the routes in force
// (d.bmu held).
func (d *Director) kickBGPLocked() {
	d.bgp.asked++
	select {
	case d.bgp.wake <- struct{}{}:
	default:
	}
}

// bgpWorker puts the routes reconcile computed in force, off the
// reconcile path: a slow BGP speaker never holds up the dataplane. The
// latest routes win. It also configures again a speaker whose last
// configuration failed (not started, or a neighbor refused).
func (d *Director) bgpWorker(ctx context.Context) {
	defer close(d.bgp.done)
	retry := time.NewTicker(bgpRetry)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-retry.C:
			d.bmu.Lock()
			again := d.bgp.cfg != nil && d.bgp.err != ""
			d.bmu.Unlock()
			if again {
				d.applyBGP(ctx)
			}
			continue
		case <-d.bgp.wake:
		}
		d.bmu.Lock()
		sp, want, asked := d.bgp.sp, d.bgp.want, d.bgp.asked
		if d.bgp.withdrawn || d.bgp.drained {
			want = nil
		}
		d.bmu.Unlock()
		var err error
		if sp != nil && sp.Running() {
			if err = sp.SetRoutes(want); err != nil {
				d.log.Warn("bgp: routes", "err", err)
			}
		}
		d.bmu.Lock()
		d.bgp.applied, d.bgp.setErr = asked, err
		d.bmu.Unlock()
	}
}

// setBGPRoutes is called by reconcile with the routes of the services
// just applied. applied says whether the dataplane took them all: when
// it did not, only withdrawals are made (what it holds may be less than
// what was asked), so that a service that fails to apply never holds up
// the withdrawal of another one.
func (d *Director) setBGPRoutes(routes []netip.Prefix, since map[netip.Prefix]time.Time, applied bool) {
	d.bmu.Lock()
	defer d.bmu.Unlock()
	if !applied {
		var keep []netip.Prefix
		for _, p := range routes {
			if slices.Contains(d.bgp.want, p) {
				keep = append(keep, p)
			}
		}
		routes = keep
	}
	d.bgp.want = d.holdDownLocked(routes, since)
	d.kickBGPLocked()
}

// holdDownLocked keeps out of routes the addresses that were not
// announced and whose services have been up by their health (since) for
// less than announce_delay: a director whose services just came up (at
// start, after its link or its real servers came back) is announced once
// its checks have had time to find every real server that is up. Until
// then its mh table may differ from the other directors', and the
// connections the routers would move to it could reach another real
// server. Withdrawals are never delayed. d.bmu is held.
func (d *Director) holdDownLocked(routes []netip.Prefix, since map[netip.Prefix]time.Time) []netip.Prefix {
	st := &d.bgp
	delay := config.DefaultBGPAnnounceDelay
	if st.cfg != nil && st.cfg.AnnounceDelay != nil {
		delay = st.cfg.AnnounceDelay.D()
	}
	now := time.Now()
	var out []netip.Prefix
	var next time.Duration
	st.held = st.held[:0]
	for _, p := range routes {
		up := now.Sub(since[p])
		if slices.Contains(st.announced, p) || up >= delay {
			out = append(out, p)
			continue
		}
		st.held = append(st.held, p)
		if wait := delay - up; next == 0 || wait < next {
			next = wait
		}
	}
	st.announced = out
	if next > 0 {
		// reconcile again when the first held address is due
		if st.holdTimer != nil {
			st.holdTimer.Stop()
		}
		st.holdTimer = time.AfterFunc(next, d.Kick)
	}
	return out
}

// startBGP lets the speaker connect and starts the route worker (Run).
func (d *Director) startBGP(ctx context.Context) {
	d.bmu.Lock()
	d.bgp.running = true
	d.bgp.wake = make(chan struct{}, 1)
	d.bgp.done = make(chan struct{})
	wctx, cancel := context.WithCancel(ctx)
	d.bgp.cancel = cancel
	go d.bgpWorker(wctx)
	d.bmu.Unlock()
	d.applyBGP(ctx)
}

// WithdrawBGP withdraws every route and announces none until govs stops:
// the first step of a lame-duck stop, so that routers send new flows to
// the other directors while this one still forwards what is on its way.
// It waits (at most 5 s) for the withdrawal to be sent and reports
// whether there were routes to withdraw.
func (d *Director) WithdrawBGP() bool {
	d.bmu.Lock()
	sp := d.bgp.sp
	had := sp != nil && len(d.bgp.want) > 0 && !d.bgp.withdrawn && !d.bgp.drained
	d.bgp.withdrawn = true
	d.bmu.Unlock()
	if sp == nil {
		return false // no govs_bgp, or no speaker to tell
	}
	if err := d.waitBGP(); err != nil {
		d.log.Warn("bgp: withdrawing at stop", "err", err)
	}
	return had && sp.Running()
}

// waitBGP asks the worker to put the routes in force and waits (at most
// 5 s) until it has; it returns why they may not be.
func (d *Director) waitBGP() error {
	d.bmu.Lock()
	running, sp := d.bgp.running, d.bgp.sp
	if running {
		d.kickBGPLocked()
	}
	target := d.bgp.asked
	d.bmu.Unlock()
	if !running || sp == nil || !sp.Running() {
		return errors.New("the BGP speaker is not running (see govs status)")
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		d.bmu.Lock()
		done, err := d.bgp.applied >= target, d.bgp.setErr
		d.bmu.Unlock()
		if done {
			return err
		}
	}
	return errors.New("the BGP speaker did not take the change within 5 s")
}

// SetBGPAnnounce withdraws every route and keeps them withdrawn
// (announce false: the director leaves the routers' ECMP groups for
// maintenance, and keeps forwarding what still reaches it), or announces
// them again. A restart announces again.
func (d *Director) SetBGPAnnounce(_ context.Context, announce bool) error {
	d.bmu.Lock()
	if d.bgp.cfg == nil {
		d.bmu.Unlock()
		return fmt.Errorf("%w: no govs_bgp in the configuration", api.ErrBadRequest)
	}
	if d.bgp.withdrawn {
		d.bmu.Unlock()
		return fmt.Errorf("%w: govs is stopping: its routes are withdrawn until it stops", api.ErrBadRequest)
	}
	if d.bgp.sp == nil || !d.bgp.sp.Running() {
		d.bmu.Unlock()
		return fmt.Errorf("%w: the BGP speaker is not running (see govs status): nothing changed", api.ErrBadRequest)
	}
	changed := d.bgp.drained == announce
	d.bgp.drained = !announce
	d.bmu.Unlock()
	if changed {
		if announce {
			d.log.Info("bgp: routes announced again (govs bgp --announce)")
		} else {
			d.log.Info("bgp: every route withdrawn until govs bgp --announce (maintenance)")
		}
	}
	if err := d.waitBGP(); err != nil {
		return fmt.Errorf("routes %s, but: %w", map[bool]string{true: "to be announced", false: "to be withdrawn"}[announce], err)
	}
	return nil
}

// stopBGP closes the sessions (Stop).
func (d *Director) stopBGP(ctx context.Context) {
	d.bmu.Lock()
	d.bgp.running = false
	done, cancel := d.bgp.done, d.bgp.cancel
	if d.bgp.holdTimer != nil {
		d.bgp.holdTimer.Stop()
	}
	d.bmu.Unlock()
	if done != nil {
		cancel()
		select {
		case <-done:
		case <-ctx.Done():
		}
	}
	d.bmu.Lock()
	defer d.bmu.Unlock()
	if d.bgp.sp != nil {
		d.bgp.sp.Close(ctx)
		d.bgp.sp = nil
	}
}

// bgpState reports the speaker for the API (nil without govs_bgp).
func (d *Director) bgpStatus(ctx context.Context) *api.BGP {
	d.bmu.Lock()
	sp, cfg, withdrawn, drained, serr := d.bgp.sp, d.bgp.cfg, d.bgp.withdrawn, d.bgp.drained, d.bgp.err
	held := prefixStrings(d.bgp.held)
	d.bmu.Unlock()
	if cfg == nil {
		return nil
	}
	out := &api.BGP{LocalAS: cfg.LocalAS, Withdrawn: withdrawn, Drained: drained, Neighbors: []api.BGPNeighbor{}, Routes: []string{}, LastError: serr,
		Held: held}
	if cfg.RouterID.IsValid() {
		out.RouterID = cfg.RouterID.String()
	}
	idle := func() {
		// not started, or the neighbors not taken: each is down (the
		// metrics say 0 rather than nothing)
		for _, n := range cfg.Neighbors {
			out.Neighbors = append(out.Neighbors, api.BGPNeighbor{Address: n.Address.String(), RemoteAS: n.RemoteAS, State: "idle"})
		}
	}
	if sp == nil || !sp.Running() {
		idle()
		return out
	}
	out.Running = true
	st := sp.Status(ctx)
	if st.RouterID != "" {
		out.RouterID = st.RouterID
	}
	out.Routes = st.Routes
	if out.LastError == "" {
		out.LastError = st.LastError
	}
	byAddr := map[string]bgp.PeerStatus{}
	for _, n := range st.Neighbors {
		byAddr[n.Address] = n
	}
	// in the configuration's order; a neighbor the speaker does not
	// have (refused, retried) is down
	for _, c := range cfg.Neighbors {
		n, ok := byAddr[c.Address.String()]
		if !ok {
			n = bgp.PeerStatus{Address: c.Address.String(), RemoteAS: c.RemoteAS, State: "idle"}
		}
		out.Neighbors = append(out.Neighbors, api.BGPNeighbor{Address: n.Address, RemoteAS: n.RemoteAS, State: n.State,
			Since: n.Since, Advertised: n.Advertised, Received: n.Received, LastDown: n.LastDown, BFD: n.BFD})
	}
	return out
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}
