package director

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/notify"
	"github.com/govs/govs/internal/vrrp"
)

// High availability: the director runs the configuration's VRRP instances
// (when Options.VRRPSystem is set and the configuration has any) and
// balances only the virtual addresses this node holds as MASTER. Virtual
// servers with ha_suspend have their checks suspended while their address
// is elsewhere.

// newNode builds the VRRP node for cfg, or nil without a VRRPSystem. A
// configuration without instances gets a node too, which a reload can
// give instances.
func (d *Director) newNode(cfg *config.Config) (*vrrp.Node, error) {
	if d.opts.VRRPSystem == nil {
		return nil, nil
	}
	insts, scripts, groups := vrrpOptions(cfg)
	delays, static := linkDelays(cfg), staticOptions(cfg)
	d.vrrpSig = vrrpSignature(insts, scripts, groups, delays, static)
	d.vrrpCfg = cfg
	return vrrp.NewNode(vrrp.Options{
		Instances:  insts,
		Scripts:    scripts,
		SyncGroups: groups,
		LinkDelays: delays,
		Static:     static,
		System:     d.opts.VRRPSystem,
		Notifier:   vrrpNotifier{d},
		OnChange: func(s vrrp.InstanceStatus) {
			d.log.Info("vrrp state", "instance", s.Name, "state", s.State.String(), "priority", s.EffectivePriority, "master", s.MasterAddr)
			d.updateSyncRole()
			d.ownershipChanged()
		},
		BFD:    bfdWatcher{d},
		Logger: d.log.With("subsystem", "vrrp"),
	})
}

// reloadVRRP puts a reloaded configuration's VRRP part in force in the
// running node (vrrp.Node.Reload: instances keep their state, only what
// changed is touched). On failure the node keeps its configuration and
// the error says so.
func (d *Director) reloadVRRP(ctx context.Context, cfg *config.Config, next vrrp.Options, sig string) error {
	// the notifications of instances and groups that go (STOP) come after
	// d.cfg has lost them: keep their notifiers
	d.mu.Lock()
	retired := map[string]config.Notifiers{}
	for _, vi := range d.vrrpCfg.VRRPInstances {
		retired["INSTANCE "+vi.Name] = vi.Notify
	}
	for _, g := range d.vrrpCfg.SyncGroups {
		retired["GROUP "+g.Name] = g.Notify
	}
	d.retiredNotify = retired
	d.mu.Unlock()
	err := d.node.Reload(ctx, next)
	if err != nil && !errors.Is(err, vrrp.ErrNotStarted) {
		err = fmt.Errorf("vrrp not reloaded, it keeps running its previous configuration: %w", err)
		d.log.Error("reload", "err", err)
		return err
	}
	d.mu.Lock()
	d.vrrpSig, d.vrrpCfg = sig, cfg
	if err != nil {
		// the next reload tries the instance that did not start again
		d.vrrpSig = ""
	}
	d.mu.Unlock()
	d.refreshFirewall()
	if err != nil {
		d.log.Error("reload", "err", err)
	} else {
		d.log.Info("vrrp configuration reloaded", "instances", len(next.Instances))
	}
	// the addresses each instance holds may have changed
	d.ownershipChanged()
	return err
}

// linkDelays maps interface_up_down_delays onto the vrrp package's.
func linkDelays(cfg *config.Config) map[string]vrrp.LinkDelay {
	var out map[string]vrrp.LinkDelay
	for _, b := range cfg.InterfaceDelays {
		for _, e := range b.Entries {
			if out == nil {
				out = map[string]vrrp.LinkDelay{}
			}
			out[e.Name] = vrrp.LinkDelay{Down: e.Down.D(), Up: e.Up.D()}
		}
	}
	return out
}

func vrrpSignature(a ...any) string {
	b, _ := json.Marshal(a)
	return string(b)
}

// vipCovered reports whether a VRRP instance manages addr.
func vipCovered(cfg *config.Config, addr netip.Addr) bool {
	for _, vi := range cfg.VRRPInstances {
		for _, list := range [][]config.VIPAddr{vi.VIPs, vi.VIPsExcluded} {
			for _, v := range list {
				if v.Prefix.Addr() == addr {
					return true
				}
			}
		}
	}
	return false
}

// owns reports whether this node should balance a service on addr: always
// without VRRP, or when the address is not managed by VRRP; otherwise only
// while an instance holding it is MASTER. Called with d.mu held.
func (d *Director) owns(addr netip.Addr) bool {
	// Judged against the VRRP configuration the node runs (vrrpCfg),
	// which a reload that changed VRRP but failed to apply it keeps.
	if d.node == nil || !addr.IsValid() || !vipCovered(d.vrrpCfg, addr) {
		return true
	}
	return d.node.Owns(addr)
}

// ownershipChanged re-applies services and, for ha_suspend, the set of
// running checks.
func (d *Director) ownershipChanged() {
	d.mu.Lock()
	servers := d.healthServersLocked()
	d.mu.Unlock()
	if err := d.sup.Update(servers); err != nil {
		d.log.Warn("health checks", "err", err)
	}
	d.Kick()
}

// vrrpNotifier runs the notify scripts of instances and sync groups, with
// keepalived's arguments, and mails smtp alerts.
type vrrpNotifier struct{ d *Director }

func (n vrrpNotifier) Notify(ctx context.Context, ev vrrp.NotifyEvent) {
	d := n.d
	d.mu.Lock()
	var nf config.Notifiers
	found := false
	switch {
	case ev.Deleted:
		// the deleted instance's own notifiers (a new one of the same
		// name may have others)
		nf, found = d.retiredNotify[ev.Type+" "+ev.Name]
	case ev.Type == "GROUP":
		for _, g := range d.cfg.SyncGroups {
			if g.Name == ev.Name {
				nf, found = g.Notify, true
			}
		}
	default:
		for _, vi := range d.cfg.VRRPInstances {
			if vi.Name == ev.Name {
				nf, found = vi.Notify, true
			}
		}
	}
	if !found {
		nf, found = d.retiredNotify[ev.Type+" "+ev.Name]
	}
	noFaultMail := d.cfg != nil && d.cfg.Global.NoEmailFaults
	d.mu.Unlock()
	if ev.Deleted && ev.WasFault && nf.Deleted == nil {
		return // keepalived: nothing for a FAULT instance it deletes
	}
	state := notifiedState(nf, ev)
	if !ev.Deleted {
		// (keepalived 2.2.7 writes no FIFO line for an instance a
		// reload deleted, and govs sends no trap for it)
		d.fifos.VRRP(vrrpFIFOLine(ev.Type, ev.Name, state, ev.Priority, ev.RxLowerPri, ev.PriorityChange))
		if !ev.RxLowerPri && !ev.PriorityChange && !ev.Repeat {
			d.emit(Event{Kind: ev.Type, Name: ev.Name, State: state})
		}
	}
	if !found {
		return
	}
	note, ok := vrrpNotification(nf, ev)
	if state == "FAULT" && noFaultMail {
		note.Mail = false // no_email_faults
		ok = len(note.Scripts) > 0
	}
	if !ok {
		return
	}
	if ev.RxLowerPri {
		n.rxLowerPri(ev.Name, note)
		return
	}
	d.notifier.Enqueue(note)
}

// rxLowerPri runs an instance's notify_master_rx_lower_pri script apart
// from the queue of the other notifications, as keepalived starts it
// without waiting: one that comes with every lower-priority advert must
// not hold back a notify_master or notify_backup behind it. While the
// instance's last run goes on, a new one is skipped, so a lasting split
// brain does not pile them up.
func (n vrrpNotifier) rxLowerPri(instance string, note notify.Notification) {
	d := n.d
	d.mu.Lock()
	if d.rxLowerRunning == nil {
		d.rxLowerRunning = map[string]bool{}
	}
	busy := d.rxLowerRunning[instance]
	d.rxLowerRunning[instance] = true
	d.mu.Unlock()
	if busy {
		return
	}
	go func() {
		defer func() {
			d.mu.Lock()
			delete(d.rxLowerRunning, instance)
			d.mu.Unlock()
		}()
		for _, c := range note.Scripts {
			if _, err := d.notifier.Runner.Run(context.Background(), c); err != nil {
				d.log.Warn("notify_master_rx_lower_pri failed", "instance", instance, "err", err)
			}
		}
	}()
}

// vrrpNotification is what a VRRP notification runs and sends: the
// state's notify_* script, the notify script with keepalived's
// arguments, and the mail when smtp_alert is set; for a priority change
// in the same state (notify_priority_changes) the notify script alone;
// for a lower-priority advert a MASTER heard, notify_master_rx_lower_pri
// alone, without arguments.
// ok is false when there is nothing to do.
func vrrpNotification(nf config.Notifiers, ev vrrp.NotifyEvent) (notify.Notification, bool) {
	if ev.RxLowerPri {
		// notify_master_rx_lower_pri alone, without arguments
		c := scriptCmd(nf.MasterRxLowerPri)
		if c == nil {
			return notify.Notification{}, false
		}
		return notify.Notification{Scripts: []notify.Command{*c}}, true
	}
	state := notifiedState(nf, ev)
	// (no mail for a deletion, as no FIFO line)
	note := notify.Notification{Mail: ev.SMTPAlert && !ev.PriorityChange && !ev.Deleted}
	note.Subject, note.Body = notify.VRRPMail(ev.Name, state)
	var specific *config.Script
	switch {
	case ev.PriorityChange:
	case ev.Deleted:
		// keepalived 2.2.7: the notify script with FAULT (notify_fault
		// does not run), or notify_deleted's script and DELETED
		specific = nf.Deleted
	case state == "MASTER":
		specific = nf.Master
	case state == "BACKUP":
		specific = nf.Backup
	case state == "FAULT":
		specific = nf.Fault
	case state == "STOP":
		specific = nf.Stop
	}
	if specific != nil && specific.Cmd != "" {
		if c := scriptCmd(specific); c != nil {
			note.Scripts = append(note.Scripts, *c)
		}
	}
	if c := scriptCmd(nf.Any); c != nil {
		c.Args = append(c.Args, notify.VRRPNotifyArgs(ev.Type == "GROUP", ev.Name, state, ev.Priority)...)
		note.Scripts = append(note.Scripts, *c)
	}
	return note, len(note.Scripts) > 0 || note.Mail
}

// notifiedState is the state a notification says: the instance's, but
// for one a reload deleted, which keepalived notifies as FAULT, or as
// DELETED with notify_deleted (seen with keepalived 2.2.7: the notify
// script gets "INSTANCE NAME FAULT|DELETED PRIORITY", notify_fault does
// not run, the FIFO gets nothing).
func notifiedState(nf config.Notifiers, ev vrrp.NotifyEvent) string {
	switch {
	case !ev.Deleted:
		return strings.ToUpper(ev.State.String())
	case nf.Deleted != nil:
		return "DELETED"
	}
	return "FAULT"
}

// vrrpState converts the node's status for the API.
func (d *Director) vrrpState() []api.VRRP {
	if d.node == nil {
		return nil
	}
	var out []api.VRRP
	for _, s := range d.node.Status() {
		v := api.VRRP{
			Name:       s.Name,
			State:      strings.ToUpper(s.State.String()),
			Priority:   s.BasePriority,
			Effective:  s.EffectivePriority,
			LastAdvert: s.LastAdvert,
			Interface:  s.Interface,
			VRID:       s.VRID,
			SyncGroup:  s.SyncGroup,
			NoAccept:   s.NoAccept,
			Waiting:    s.Waiting,
		}
		if s.MasterAddr.IsValid() {
			v.Master = s.MasterAddr.String()
		}
		c := s.Counters
		v.Counters = api.VRRPCounters{AdvertsSent: c.AdvertsSent, AdvertsReceived: c.AdvertsReceived, SendErrors: c.SendErrors,
			BecameMaster: c.BecameMaster, ReleasedMaster: c.ReleasedMaster, PriorityZeroRcvd: c.PriorityZeroReceived, PriorityZeroSent: c.PriorityZeroSent,
			AddressListErrors: c.AddressListErrors, AddressesRestored: c.AddressesRestored, RoutesRestored: c.RoutesRestored}
		for r, n := range c.Dropped {
			if v.Counters.Dropped == nil {
				v.Counters.Dropped = map[string]uint64{}
			}
			v.Counters.Dropped[string(r)] = n
		}
		for _, p := range s.VirtualIPs {
			v.VIPs = append(v.VIPs, p.String())
		}
		for _, t := range s.Transitions {
			v.Transitions = append(v.Transitions, api.VRRPTransition{Time: t.Time, From: strings.ToUpper(t.From.String()), To: strings.ToUpper(t.To.String()), Reason: t.Reason})
		}
		out = append(out, v)
	}
	return out
}
