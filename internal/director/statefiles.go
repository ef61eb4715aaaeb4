package director

import (
	"context"
	"strings"
	"time"

	"github.com/govs/govs/internal/statefiles"
)

// StateFilesInput is what keepalived's state files (keepalived.data,
// .stats, .json) show of the director now; with services, the virtual
// and real servers too (keepalived_check.data: the dataplane's counters
// are read for them).
func (d *Director) StateFilesInput(ctx context.Context, services bool) (*statefiles.Input, error) {
	in := &statefiles.Input{Now: time.Now(), Config: d.Config()}
	if services {
		st, err := d.State(ctx)
		if err != nil {
			return nil, err
		}
		in.State = st
	}
	if d.node != nil {
		in.VRRP = d.node.Dump()
	}
	return in, nil
}

// writeVRRPStates writes every VRRP instance's and sync group's state to
// the notify FIFOs (fifo_write_vrrp_states_on_reload), as keepalived
// does after a reload: a reader that lost track learns where things are.
func (d *Director) writeVRRPStates() {
	dump := d.node.Dump()
	for _, g := range dump.SyncGroups {
		st := statefiles.GroupState(g, dump.Instances)
		prio := 0
		for _, in := range dump.Instances {
			if len(g.Members) > 0 && in.Name == g.Members[0] {
				prio = in.EffectivePriority
			}
		}
		d.fifos.VRRP(vrrpFIFOLine("GROUP", g.Name, strings.ToUpper(st.String()), prio, false, false))
	}
	for _, in := range dump.Instances {
		d.fifos.VRRP(vrrpFIFOLine("INSTANCE", in.Name, strings.ToUpper(in.State.String()), in.EffectivePriority, false, false))
	}
}

// Event is a change the director tells its event sink about (SNMP
// traps): a VRRP instance's or sync group's new state, a real server
// going up or down, a virtual service's quorum met or lost.
type Event struct {
	Kind       string // "INSTANCE", "GROUP", "RS" or "QUORUM"
	Name       string // the instance or group
	State      string // its new state (MASTER, BACKUP, FAULT, STOP)
	Service    string // the service's API id (RS, QUORUM)
	RealServer string // the real server's ip:port (RS)
	Up         bool   // RS up, quorum met
}

// SetEventSink makes fn receive the director's events; it is called on
// the director's paths and must not block.
func (d *Director) SetEventSink(fn func(Event)) {
	if fn == nil {
		d.events.Store(nil)
		return
	}
	d.events.Store(&fn)
}

func (d *Director) emit(ev Event) {
	if fn := d.events.Load(); fn != nil {
		(*fn)(ev)
	}
}
