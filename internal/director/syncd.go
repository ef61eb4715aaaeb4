package director

import (
	"net/netip"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/connsync"
	"github.com/govs/govs/internal/vrrp"
)

// Connection-state synchronisation (lvs_sync_daemon): the director sends
// its dataplane's connections while the named VRRP instance is MASTER
// and takes the peer's while it is not, as keepalived switches the
// kernel's IPVS sync daemons; without an instance (or without VRRP
// running) it does both. A director that can take connections (the xdp
// dataplane) keeps its virtual services in the dataplane while BACKUP,
// as IPVS keeps them on a keepalived BACKUP, so that the connections it
// takes are bound to their real servers before the takeover.

// syncConfig is cfg's lvs_sync_daemon for connsync; ok is false without
// one.
func syncConfig(cfg *config.Config) (connsync.Config, bool) {
	s := cfg.Global.LVSSyncDaemon
	if s == nil {
		return connsync.Config{}, false
	}
	c := connsync.Config{Interface: s.Interface, MaxLen: s.MaxLen, Port: s.Port, TTL: s.TTL}
	if s.Group != "" {
		c.Group, _ = netip.ParseAddr(s.Group) // validated
	}
	switch {
	case s.ID != nil:
		c.SyncID = uint8(*s.ID)
	case s.Instance != "":
		// keepalived's default: the instance's virtual router ID
		for _, vi := range cfg.VRRPInstances {
			if vi.Name == s.Instance {
				c.SyncID = uint8(vi.VirtualRouterID)
			}
		}
	}
	return c, true
}

// startSync makes the sync daemon of cfg, if it has one (at New and when
// a reload adds or changes it); its role is set by updateSyncRole.
func (d *Director) startSync(cfg *config.Config) {
	c, ok := syncConfig(cfg)
	d.mu.Lock()
	old := d.syncd
	if old != nil && ok && old.Config() == c.WithDefaults() && d.syncInst == cfg.Global.LVSSyncDaemon.Instance {
		d.mu.Unlock()
		return
	}
	d.syncd, d.syncInst = nil, ""
	if ok {
		sd, err := connsync.New(c, d.dp, d.log.With("subsystem", "connsync"))
		switch {
		case err != nil:
			d.log.Error("lvs_sync_daemon", "err", err)
		case !sd.CanReceive():
			// a proxied connection is two sockets of this process: no
			// other director can go on with it, so there is nothing
			// worth sending either
			d.log.Warn("lvs_sync_daemon is not started: the " + d.opts.DataplaneName + " dataplane's connections cannot move to another director (the xdp dataplane's can)")
		default:
			d.syncd, d.syncInst = sd, cfg.Global.LVSSyncDaemon.Instance
		}
	}
	d.mu.Unlock()
	if old != nil {
		old.Close()
	}
	d.updateSyncRole()
}

// updateSyncRole gives the sync daemon the role the VRRP state says.
func (d *Director) updateSyncRole() {
	// one at a time, so that the last to set a role read the last state
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	d.mu.Lock()
	sd, inst, running := d.syncd, d.syncInst, d.syncRunning
	d.mu.Unlock()
	if sd == nil || !running {
		return
	}
	role := connsync.RoleMaster | connsync.RoleBackup
	if inst != "" && d.node != nil {
		role = connsync.RoleBackup
		for _, st := range d.node.Status() {
			if st.Name == inst && st.State == vrrp.StateMaster {
				role = connsync.RoleMaster
			}
		}
	}
	sd.SetRole(role)
}

// keepsServices says whether the dataplane keeps the services of
// virtual addresses held elsewhere (see above). Called with d.mu held.
func (d *Director) keepsServices() bool { return d.syncd != nil }

// stopSync stops the daemon (Stop).
func (d *Director) stopSync() {
	d.mu.Lock()
	sd := d.syncd
	d.syncd, d.syncRunning = nil, false
	d.mu.Unlock()
	if sd != nil {
		sd.Close()
	}
}

// syncStateLocked is the daemon for the state, nil without one. Called
// with d.mu held.
func (d *Director) syncStateLocked() *api.SyncDaemon {
	if d.syncd == nil {
		return nil
	}
	c, s := d.syncd.Config(), d.syncd.Stats()
	return &api.SyncDaemon{
		Interface: c.Interface, Instance: d.syncInst, SyncID: int(c.SyncID), MaxLen: c.MaxLen,
		Group: c.Group.String(), Port: c.Port, TTL: c.TTL, Role: s.Role,
		MessagesSent: s.MessagesSent, ConnsSent: s.ConnsSent, SendErrors: s.SendErrors,
		MessagesReceived: s.MessagesReceived, ConnsReceived: s.ConnsReceived, ConnsImported: s.ConnsImported,
		ConnsNotTaken: s.ConnsNotTaken, Malformed: s.Malformed, OtherSyncID: s.OtherSyncID, Dropped: s.Dropped, LastError: s.LastError,
	}
}
