package director

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/dataplane"
)

// The director is the API's Backend: these methods read its state and
// make runtime changes.

var _ api.Backend = (*Director)(nil)

// State returns the observable state for the API.
func (d *Director) State(ctx context.Context) (*api.State, error) {
	snap, err := d.dp.Stats(ctx)
	if err != nil {
		return nil, fmt.Errorf("dataplane stats: %w", err)
	}
	stats := map[dataplane.ServiceKey]dataplane.ServiceStats{}
	rsStats := map[rsKey]dataplane.RealServerStats{}
	for _, s := range snap.Services {
		stats[s.Key] = s
		for _, r := range s.RealServers {
			rsStats[rsKey{s.Key, r.Addr}] = r
		}
	}
	d.rmu.Lock()
	rt := make(map[rateKey]rates, len(d.rates))
	for k, v := range d.rates {
		rt[k] = v
	}
	d.rmu.Unlock()

	bgpSt := d.bgpStatus(ctx)

	d.mu.Lock()
	defer d.mu.Unlock()
	to := DataplaneTimeouts(d.timeouts).OrDefault() // in force, not as reloaded
	st := &api.State{
		Version:         d.opts.Version,
		Dataplane:       d.opts.DataplaneName,
		XDPMode:         d.opts.XDPMode,
		Started:         d.started,
		ConfigFile:      d.opts.ConfigFile,
		ConfigLoaded:    d.configLoaded,
		ConnTableSize:   d.opts.ConnTableSize,
		LastReloadError: d.reloadErr,
		Timeouts: api.Timeouts{
			TCP:    int(to.TCP.Seconds()),
			TCPFin: int(to.TCPFin.Seconds()),
			UDP:    int(to.UDP.Seconds()),
		},
	}
	st.VRRP = d.vrrpState()
	st.Sync = d.syncStateLocked()
	st.ConfigSync = d.cfgSyncState(d.cfg)
	st.BGP = bgpSt
	if d.bfd != nil {
		st.BFD = d.bfd.Status()
	}
	for _, s := range d.specs {
		key := s.svc.Key
		dec := d.decisions[key]
		as := api.Service{
			ID:          api.ServiceID(key),
			Name:        s.svc.Name,
			Proto:       key.Proto.String(),
			Port:        key.Port,
			FWMark:      key.FWMark,
			V6:          key.V6,
			Scheduler:   s.svc.Scheduler,
			Flags:       s.svc.SchedFlags,
			Persistent:  int(s.svc.Persistence.Seconds()),
			PersistMask: s.svc.PersistMask,
			OnePacket:   s.svc.OnePacket,
			PE:          s.vs.PersistenceEngine,
			Method:      string(s.vs.Method),
			Enabled:     !d.vsOff[key],
			QuorumUp:    dec.QuorumUp,
			SorryActive: dec.SorryOn,
			Stats:       stats[key].Counters,
			Rates:       toRates(rt[rateKey{svc: key}]),
			Source:      s.vs.Pos.String(),
		}
		if key.FWMark != 0 {
			as.Proto = "FWM"
		} else {
			as.Addr = key.Addr.String()
		}
		inPool := map[string]int{}
		for _, e := range dec.Servers {
			if !e.Sorry {
				inPool[e.ID] = e.Weight
			}
		}
		for _, r := range s.reals {
			ov := d.rsOverride[rsKey{key, r.dp.Addr}]
			h := d.health[r.id]
			w, in := inPool[r.id]
			ar := api.RealServer{
				Addr:         r.dp.Addr.String(),
				Method:       r.dp.Method.String(),
				Weight:       w,
				ConfigWeight: r.dp.Weight,
				Healthy:      h == nil || h.up,
				Enabled:      ov == nil || !ov.disabled,
				InPool:       in && !d.vsOff[key],
				UThreshold:   r.dp.UThreshold,
				LThreshold:   r.dp.LThreshold,
			}
			if h != nil {
				ar.Reason, ar.Since = h.reason, h.since
			}
			if s, ok := rsStats[rsKey{key, r.dp.Addr}]; ok {
				ar.ActiveConns, ar.InactConns, ar.PersistConns = s.ActiveConns, s.InactiveConns, s.PersistConns
				ar.Stats = s.Counters
			}
			ar.Rates = toRates(rt[rateKey{key, r.dp.Addr}])
			as.RealServers = append(as.RealServers, ar)
		}
		if s.sorry != nil && dec.SorryOn {
			ar := api.RealServer{Addr: s.sorry.Addr.String(), Method: s.sorry.Method.String(), Weight: s.sorry.Weight, ConfigWeight: 1, Healthy: true, Enabled: true, InPool: true, Sorry: true, Reason: "sorry server: no real server available"}
			if st, ok := rsStats[rsKey{key, s.sorry.Addr}]; ok {
				ar.ActiveConns, ar.InactConns, ar.PersistConns = st.ActiveConns, st.InactiveConns, st.PersistConns
				ar.Stats = st.Counters
			}
			as.RealServers = append(as.RealServers, ar)
		}
		st.Services = append(st.Services, as)
	}
	return st, nil
}

func toRates(r rates) api.Rates {
	return api.Rates{CPS: r.cps, InPPS: r.inpps, OutPPS: r.outpps, InBPS: r.inbps, OutBPS: r.outbps}
}

// Conns walks the dataplane's connection table.
func (d *Director) Conns(ctx context.Context, fn func(api.Conn) bool) error {
	return d.dp.Conns(ctx, func(c dataplane.Conn) bool {
		ac := api.Conn{
			Proto:    c.Proto.String(),
			Client:   c.Client.String(),
			Virtual:  c.Virtual.String(),
			Real:     c.Real.String(),
			State:    c.State,
			Expires:  c.Expires.Seconds(),
			Template: c.Template,
			FWMark:   c.FWMark,
		}
		if c.Local.IsValid() {
			ac.Local = c.Local.String()
		}
		return fn(ac)
	})
}

func (d *Director) spec(key dataplane.ServiceKey) *vsSpec {
	for _, s := range d.specs {
		if s.svc.Key == key {
			return s
		}
	}
	return nil
}

// ChangeService enables or disables a virtual service at run time.
func (d *Director) ChangeService(ctx context.Context, c api.ServiceChange) error {
	key, err := api.ParseServiceID(c.Service)
	if err != nil {
		return fmt.Errorf("%w: %v", api.ErrBadRequest, err)
	}
	if c.Enabled == nil {
		return fmt.Errorf("%w: nothing to change (set enabled)", api.ErrBadRequest)
	}
	if c.Persist {
		return fmt.Errorf("%w: enabling or disabling a service cannot be persisted: keepalived syntax has no such setting", api.ErrBadRequest)
	}
	d.mu.Lock()
	if d.spec(key) == nil {
		d.mu.Unlock()
		return fmt.Errorf("%w: service %s", api.ErrNotFound, c.Service)
	}
	if *c.Enabled {
		delete(d.vsOff, key)
	} else {
		d.vsOff[key] = true
	}
	d.mu.Unlock()
	d.log.Info("service changed", "vs", c.Service, "enabled", *c.Enabled)
	return d.reconcile(ctx)
}

// ChangeRealServer sets a real server's weight (0 drains it: no new
// connections, existing ones continue) or disables/enables it, without a
// reload. With Persist the new weight is also written to the
// configuration file (comments and unrelated blocks are kept).
func (d *Director) ChangeRealServer(ctx context.Context, c api.RealServerChange) error {
	if c.Persist {
		// one file edit at a time, from the check that the file is as
		// loaded through the write and the reload; the file lock keeps
		// other processes' writers (govs web-password) out too
		d.pmu.Lock()
		defer d.pmu.Unlock()
		if d.opts.ConfigFile != "" {
			unlock, err := config.Lock(d.opts.ConfigFile)
			if err != nil {
				return fmt.Errorf("persist weight: %w", err)
			}
			defer unlock()
		}
	}
	key, err := api.ParseServiceID(c.Service)
	if err != nil {
		return fmt.Errorf("%w: %v", api.ErrBadRequest, err)
	}
	addr, err := netip.ParseAddrPort(c.Server)
	if err != nil {
		return fmt.Errorf("%w: server %q: %v", api.ErrBadRequest, c.Server, err)
	}
	if c.Weight == nil && c.Enabled == nil {
		return fmt.Errorf("%w: nothing to change (set weight or enabled)", api.ErrBadRequest)
	}
	if c.Weight != nil && (*c.Weight < 0 || *c.Weight > 65535) {
		return fmt.Errorf("%w: weight %d outside 0..65535", api.ErrBadRequest, *c.Weight)
	}
	if c.Persist && c.Enabled != nil {
		return fmt.Errorf("%w: enabling or disabling a real server cannot be persisted (persist a weight of 0 instead)", api.ErrBadRequest)
	}
	d.mu.Lock()
	s := d.spec(key)
	if s == nil {
		d.mu.Unlock()
		return fmt.Errorf("%w: service %s", api.ErrNotFound, c.Service)
	}
	var r *rsSpec
	for i := range s.reals {
		if s.reals[i].dp.Addr == addr {
			r = &s.reals[i]
		}
	}
	if r == nil {
		d.mu.Unlock()
		return fmt.Errorf("%w: real server %s in service %s", api.ErrNotFound, c.Server, c.Service)
	}
	if c.Persist && c.Weight != nil {
		// Write the weight into the file with a one-statement edit, then
		// reload it: the configuration now says what runs, and no
		// runtime override is left to hide later edits of the file.
		files, err := d.cfg.SetRealServerWeight(r.rs, *c.Weight)
		d.mu.Unlock()
		if err != nil {
			return fmt.Errorf("persist weight: %w", err)
		}
		if err := config.SaveAll(files); err != nil {
			return fmt.Errorf("persist weight: %w", err)
		}
		d.mu.Lock()
		delete(d.rsOverride, rsKey{key, addr})
		d.mu.Unlock()
		d.log.Info("real server weight persisted", "vs", c.Service, "rs", c.Server, "weight", *c.Weight)
		// the file is written: the reload runs to its end even if the
		// client goes away
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		return d.Reload(rctx)
	}
	k := rsKey{key, addr}
	ov := d.rsOverride[k]
	if ov == nil {
		ov = &override{}
		d.rsOverride[k] = ov
	}
	if c.Weight != nil {
		w := *c.Weight
		ov.weight = &w
	}
	if c.Enabled != nil {
		ov.disabled = !*c.Enabled
	}
	d.mu.Unlock()
	d.log.Info("real server changed", "vs", c.Service, "rs", c.Server, "weight", fmtIntPtr(c.Weight), "enabled", fmtBoolPtr(c.Enabled), "persist", c.Persist)
	return d.reconcile(ctx)
}

func fmtIntPtr(p *int) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
}

func fmtBoolPtr(p *bool) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprint(*p)
}

// DescribeServices lists the configured services in one line each, for
// the startup log.
func (d *Director) DescribeServices() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var parts []string
	for _, s := range d.specs {
		parts = append(parts, fmt.Sprintf("%s (%s, %d real servers)", s.svc.Key, s.svc.Scheduler, len(s.reals)))
	}
	return strings.Join(parts, "; ")
}

// SetTimeouts changes the connection timeouts in force at run time, as
// ipvsadm --set does (api.Backend): a field of 0 keeps its value. A
// reload keeps them unless the file's lvs_timeouts changed.
func (d *Director) SetTimeouts(_ context.Context, t api.Timeouts) error {
	if err := t.Check(); err != nil {
		return err
	}
	if _, ok := d.dp.(dataplane.TimeoutSetter); !ok {
		return fmt.Errorf("%w: the %s dataplane takes timeouts only at start (lvs_timeouts)", api.ErrBadRequest, d.opts.DataplaneName)
	}
	d.tmu.Lock()
	defer d.tmu.Unlock()
	d.mu.Lock()
	nt := d.timeouts
	d.mu.Unlock()
	for _, f := range []struct {
		sec int
		to  *config.Duration
	}{{t.TCP, &nt.TCP}, {t.TCPFin, &nt.TCPFin}, {t.UDP, &nt.UDP}} {
		if f.sec > 0 {
			*f.to = config.Duration(time.Duration(f.sec) * time.Second)
		}
	}
	return d.applyTimeoutsLocked(nt)
}
