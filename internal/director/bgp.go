package director

import (
	"context"
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
	// withdrawn: govs is stopping, nothing is announced any more
	withdrawn bool
	want      []netip.Prefix // the routes reconcile computed last
	err       string         // the last start error (the speaker keeps its own)
}

// bgpSettings turns the govs_bgp block into the speaker's settings.
func bgpSettings(b *config.BGP) bgp.Settings {
	sec := func(s int) time.Duration { return time.Duration(s) * time.Second }
	set := bgp.Settings{
		LocalAS:    uint32(b.LocalAS),
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
	if b.MED != nil {
		v := uint32(*b.MED)
		set.MED = &v
	}
	if b.LocalPref != nil {
		v := uint32(*b.LocalPref)
		set.LocalPref = &v
	}
	pick := func(own, dflt int) time.Duration {
		if own != 0 {
			return sec(own)
		}
		return sec(dflt)
	}
	for _, n := range b.Neighbors {
		set.Neighbors = append(set.Neighbors, bgp.Neighbor{
			Address:      n.Address,
			RemoteAS:     uint32(n.RemoteAS),
			LocalAddress: n.LocalAddress,
			Port:         n.Port,
			Password:     n.Password,
			Passive:      n.Passive,
			Multihop:     n.Multihop,
			HoldTime:     pick(n.HoldTime, b.HoldTime),
			Keepalive:    pick(n.Keepalive, b.Keepalive),
			ConnectRetry: pick(n.ConnectRetry, b.ConnectRetry),
		})
	}
	return set
}

// bgpRoutes lists the host routes of the addresses of services that are
// up: put in the dataplane (this node balances them, they are not
// deactivated) and with their quorum met. An address shared by several
// services is announced while one of them is up. d.mu is held.
func (d *Director) bgpRoutesLocked(svcs []dataplane.Service) []netip.Prefix {
	seen := map[netip.Addr]bool{}
	var out []netip.Prefix
	add := func(a netip.Addr) {
		if !a.IsValid() || a.IsUnspecified() || seen[a] {
			return
		}
		seen[a] = true
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	for _, s := range svcs {
		if !d.decisions[s.Key].QuorumUp {
			continue
		}
		add(s.Key.Addr)
		for _, v := range s.VIPs {
			add(v)
		}
	}
	slices.SortFunc(out, netip.Prefix.Compare)
	return out
}

// setBGPConfig records the govs_bgp block of a configuration put in
// force and, once Run has started, applies it: start, change or stop the
// speaker.
func (d *Director) setBGPConfig(ctx context.Context, b *config.BGP) {
	d.bmu.Lock()
	defer d.bmu.Unlock()
	d.bgp.cfg = b
	d.applyBGPLocked(ctx)
}

func (d *Director) applyBGPLocked(ctx context.Context) {
	st := &d.bgp
	if !st.running {
		return
	}
	if st.cfg == nil {
		if st.sp != nil {
			d.log.Info("bgp: govs_bgp removed: withdrawing every route and closing the sessions")
			st.sp.Close(ctx)
			st.sp = nil
		}
		st.err = ""
		return
	}
	if st.sp == nil {
		st.sp = bgp.New(d.log)
	}
	if err := st.sp.Configure(ctx, bgpSettings(st.cfg)); err != nil {
		st.err = err.Error()
		d.log.Error("bgp", "err", err)
	} else {
		st.err = ""
	}
	d.announceLocked()
}

// announceLocked puts the routes last computed in force (d.bmu held).
func (d *Director) announceLocked() {
	st := &d.bgp
	if st.sp == nil || !st.running {
		return
	}
	want := st.want
	if st.withdrawn {
		want = nil
	}
	if err := st.sp.SetRoutes(want); err != nil {
		d.log.Warn("bgp: routes", "err", err)
	}
}

// setBGPRoutes is called by reconcile with the routes of the services
// just applied.
func (d *Director) setBGPRoutes(routes []netip.Prefix) {
	d.bmu.Lock()
	defer d.bmu.Unlock()
	d.bgp.want = routes
	d.announceLocked()
}

// startBGP lets the speaker connect (Run).
func (d *Director) startBGP(ctx context.Context) {
	d.bmu.Lock()
	defer d.bmu.Unlock()
	d.bgp.running = true
	d.applyBGPLocked(ctx)
}

// WithdrawBGP withdraws every route and announces none until govs stops:
// the first step of a lame-duck stop, so that routers send new flows to
// the other directors while this one still forwards what is on its way.
// It reports whether there were routes to withdraw.
func (d *Director) WithdrawBGP() bool {
	d.bmu.Lock()
	defer d.bmu.Unlock()
	had := d.bgp.sp != nil && len(d.bgp.want) > 0 && !d.bgp.withdrawn
	d.bgp.withdrawn = true
	d.announceLocked()
	return had
}

// stopBGP closes the sessions (Stop).
func (d *Director) stopBGP(ctx context.Context) {
	d.bmu.Lock()
	defer d.bmu.Unlock()
	d.bgp.running = false
	if d.bgp.sp != nil {
		d.bgp.sp.Close(ctx)
		d.bgp.sp = nil
	}
}

// bgpState reports the speaker for the API (nil without govs_bgp).
func (d *Director) bgpStatus(ctx context.Context) *api.BGP {
	d.bmu.Lock()
	sp, cfg, withdrawn, serr := d.bgp.sp, d.bgp.cfg, d.bgp.withdrawn, d.bgp.err
	d.bmu.Unlock()
	if cfg == nil {
		return nil
	}
	out := &api.BGP{LocalAS: uint32(cfg.LocalAS), Withdrawn: withdrawn, Neighbors: []api.BGPNeighbor{}, Routes: []string{}, LastError: serr}
	if cfg.RouterID.IsValid() {
		out.RouterID = cfg.RouterID.String()
	}
	if sp == nil {
		for _, n := range cfg.Neighbors {
			out.Neighbors = append(out.Neighbors, api.BGPNeighbor{Address: n.Address.String(), RemoteAS: uint32(n.RemoteAS), State: "idle"})
		}
		return out
	}
	st := sp.Status(ctx)
	out.RouterID = st.RouterID
	out.Routes = st.Routes
	if out.LastError == "" {
		out.LastError = st.LastError
	}
	for _, n := range st.Neighbors {
		out.Neighbors = append(out.Neighbors, api.BGPNeighbor{Address: n.Address, RemoteAS: n.RemoteAS, State: n.State,
			Since: n.Since, Advertised: n.Advertised, Received: n.Received, LastDown: n.LastDown})
	}
	return out
}
