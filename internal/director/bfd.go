package director

import (
	"context"

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

// configureBFD puts the configuration's sessions in force; the daemon
// starts on the first one (no socket is opened without).
func (d *Director) configureBFD(cfg *config.Config) {
	cfgs := bfdConfigs(cfg)
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
