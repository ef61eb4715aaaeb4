package director

import (
	"context"
	"net/netip"
	"slices"

	"github.com/govs/govs/internal/bfd"
	"github.com/govs/govs/internal/config"
)

// bfdConfigs are the bfd_instance blocks as sessions.
func bfdConfigs(cfg *config.Config) []bfd.Config {
	var out []bfd.Config
	for _, bi := range cfg.BFDInstances {
		out = append(out, bfd.Config{
			Name: bi.Name, Peer: bi.Neighbor, Source: bi.Source,
			MinRx: bi.MinRx.D(), MinTx: bi.MinTx.D(), IdleTx: bi.IdleTx.D(),
			Multiplier: bi.Multiplier, Passive: bi.Passive, TTL: bi.OutTTL(), MaxHops: bi.MaxHops,
		})
	}
	return out
}

// keepRunningBFD is the sessions of a reload before the node's: the new
// ones, and those the new configuration drops that the instances and
// sync groups of running (the configuration the VRRP node runs) track,
// unless a new session has their neighbor (one session per neighbor).
func keepRunningBFD(next []bfd.Config, running *config.Config) []bfd.Config {
	out := slices.Clone(next)
	if running == nil {
		return out
	}
	have := map[string]bool{}
	peers := map[netip.Addr]bool{}
	for _, c := range next {
		have[c.Name] = true
		peers[c.Peer] = true
	}
	tracked := map[string]bool{}
	for _, vi := range running.VRRPInstances {
		for _, t := range vi.TrackBFDs {
			tracked[t.Name] = true
		}
	}
	for _, g := range running.SyncGroups {
		for _, t := range g.TrackBFDs {
			tracked[t.Name] = true
		}
	}
	for _, c := range bfdConfigs(running) {
		if tracked[c.Name] && !have[c.Name] && !peers[c.Peer] {
			have[c.Name], peers[c.Peer] = true, true
			out = append(out, c)
		}
	}
	return out
}

// configureBFD puts the sessions cfgs in force; the daemon starts on the
// first one (no socket is opened without).
func (d *Director) configureBFD(cfgs []bfd.Config) {
	d.mu.Lock()
	dm := d.bfd
	if dm == nil && len(cfgs) > 0 {
		dm = bfd.NewDaemon(d.log.With("subsystem", "bfd"))
		d.bfd = dm
	}
	d.mu.Unlock()
	if dm == nil {
		return
	}
	if err := dm.Configure(cfgs); err != nil {
		d.log.Error("bfd", "err", err)
	}
}

// closeBFD ends the sessions (AdminDown to their peers) and the daemon.
func (d *Director) closeBFD() {
	d.mu.Lock()
	dm := d.bfd
	d.mu.Unlock()
	if dm != nil {
		dm.Close()
	}
}

// bfdWatcher lets VRRP watch the sessions of a daemon that may start
// only with a reload that adds the first bfd_instance.
type bfdWatcher struct{ d *Director }

func (w bfdWatcher) daemon() *bfd.Daemon {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	return w.d.bfd
}

func (w bfdWatcher) Watch(ctx context.Context, name string, fn func(up bool)) {
	dm := w.daemon()
	if dm == nil {
		// validation refuses a track_bfd without its bfd_instance, so
		// this is a session the configuration lost: down
		fn(false)
		<-ctx.Done()
		return
	}
	dm.Watch(ctx, name, fn)
}

func (w bfdWatcher) Up(name string) (bool, bool) {
	if dm := w.daemon(); dm != nil {
		return dm.Up(name)
	}
	return false, false
}

// vrrpConfig is the configuration the VRRP node runs.
func (d *Director) vrrpConfig() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.vrrpCfg
}
