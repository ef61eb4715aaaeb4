package snmpmib

import (
	"github.com/govs/govs/internal/agentx"
	"github.com/govs/govs/internal/statefiles"
	"github.com/govs/govs/internal/vrrp"
)

// The notifications keepalived sends (enable_traps).
var (
	TrapSyncGroupState = VRRP.Append(10, 0, 1)  // vrrpSyncGroupStateChange
	TrapInstanceState  = VRRP.Append(10, 0, 2)  // vrrpInstanceStateChange
	TrapRealServer     = Check.Append(5, 0, 1)  // realServerStateChange
	TrapQuorum         = Check.Append(5, 0, 2)  // virtualServerQuorumStateChange
	TrapNewMaster      = VRRPv2MIB.Append(0, 1) // vrrpTrapNewMaster
	TrapNewMasterV3    = VRRPv3MIB.Append(0, 1) // vrrpv3NewMaster
)

// Event is what a notification tells of.
type Event struct {
	Kind       string // "INSTANCE", "GROUP", "RS", "QUORUM"
	Name       string // instance or sync group
	State      vrrp.State
	Service    string // API id (RS, QUORUM)
	RealServer string // ip:port (RS)
	Up         bool   // RS up, quorum met
}

// Notification is one trap: its OID and objects.
type Notification struct {
	Trap agentx.OID
	Objs []agentx.Var
}

// Trapped says which groups of notifications are sent: those of the
// subtrees served.
type Trapped struct{ VRRP, Check, RFCv2, RFCv3 bool }

// Notifications returns the traps ev makes, with their objects taken
// from vars (a snapshot of Vars and CheckVars for in) as keepalived's
// traps carry them. keepalived names the objects of its own MIB's traps
// by their columns, without the row's index (vrrpInstanceName, not
// vrrpInstanceName.1); so does govs, for receivers set up for it.
func Notifications(in *statefiles.Input, vars []agentx.Var, ev Event, t Trapped) []Notification {
	byName := make(map[string]agentx.Var, len(vars))
	for _, v := range vars {
		byName[v.Name.String()] = v
	}
	pick := func(names ...agentx.OID) []agentx.Var {
		var out []agentx.Var
		for _, n := range names {
			if v, ok := byName[n.String()]; ok {
				out = append(out, v)
			}
		}
		return out
	}
	// column picks a row's objects named as keepalived names them: by
	// the column alone (the scalar routerId keeps its .0)
	column := func(names ...agentx.OID) []agentx.Var {
		out := pick(names...)
		for i := range out {
			if !out[i].Name.HasPrefix(Global) {
				out[i].Name = out[i].Name[:len(out[i].Name)-rowLen(out[i].Name)]
			}
		}
		return out
	}
	routerID := Global.Append(2, 0)
	var out []Notification
	switch ev.Kind {
	case "INSTANCE":
		i := -1
		for k, st := range in.VRRP.Instances {
			if st.Name == ev.Name {
				i = k
			}
		}
		if i < 0 {
			return nil
		}
		n := uint32(i + 1)
		e := VRRP.Append(3, 1)
		if t.VRRP {
			objs := column(e.Append(2, n))
			// the state the event tells of (the snapshot may be later)
			objs = append(objs, agentx.Integer(e.Append(4), stateNum(ev.State)))
			objs = append(objs, column(e.Append(5, n), routerID)...)
			out = append(out, Notification{TrapInstanceState, objs})
		}
		if ev.State != vrrp.StateMaster {
			break
		}
		st := &in.VRRP.Instances[i]
		cfg := st.Config()
		links := linksNow()
		l, ok := instanceLink(&cfg, links)
		if !ok {
			break
		}
		if t.RFCv2 && cfg.Version == 2 && st.LocalAddr.Is4() {
			// the new master's address: this router's own
			out = append(out, Notification{TrapNewMaster, []agentx.Var{
				agentx.IPAddress(VRRPv2MIB.Append(1, 3, 1, 7, uint32(l.index), uint32(cfg.VRID)), st.LocalAddr.As4())}})
		}
		if t.RFCv3 && st.LocalAddr.IsValid() {
			family := uint32(1)
			if cfg.IsIPv6() {
				family = 2
			}
			ix := []uint32{uint32(l.index), uint32(cfg.VRID), family}
			// from the event, not the snapshot (which may not show the
			// new MASTER yet): this router's address, and why
			reason := 3 // masterNoResponse
			if cfg.Priority == vrrp.PriorityOwner {
				reason = 1 // priority
			}
			out = append(out, Notification{TrapNewMasterV3, []agentx.Var{
				agentx.Bytes(VRRPv3MIB.Append(1, 1, 1, 1, 3).Append(ix...), st.LocalAddr.AsSlice()),
				agentx.Integer(VRRPv3MIB.Append(1, 2, 5, 1, 2).Append(ix...), reason)}})
		}
	case "GROUP":
		if !t.VRRP {
			break
		}
		for k, g := range in.VRRP.SyncGroups {
			if g.Name == ev.Name {
				n := uint32(k + 1)
				objs := column(VRRP.Append(1, 1, 2, n))
				objs = append(objs, agentx.Integer(VRRP.Append(1, 1, 3), stateNum(ev.State)))
				out = append(out, Notification{TrapSyncGroupState, append(objs, column(routerID)...)})
			}
		}
	case "RS", "QUORUM":
		if !t.Check || in.State == nil {
			break
		}
		rows := rowsOf(in)
		for k := range rows {
			r := &rows[k]
			if !rowHas(in, r, ev.Service) {
				continue
			}
			n := uint32(k + 1)
			vs := Check.Append(3, 1)
			// the virtual server: its type, what names it, then its
			// protocol, as keepalived's traps carry them (the protocol
			// as keepalived sends it: 1 for TCP, 2 for any other)
			id := column(vs.Append(2, n), vs.Append(3, n), vs.Append(4, n), vs.Append(5, n), vs.Append(6, n), vs.Append(7, n))
			proto := agentx.Integer(vs.Append(8), 2-b2i(protoNum(r.svc.Proto) == 1))
			if ev.Kind == "QUORUM" {
				objs := append(id, proto, agentx.Integer(vs.Append(23), truth(ev.Up)))
				objs = append(objs, column(vs.Append(22, n), vs.Append(21, n), vs.Append(20, n), routerID)...)
				out = append(out, Notification{TrapQuorum, objs})
				break
			}
			j := rsRow(r, ev.RealServer)
			if j == 0 {
				break
			}
			rs := Check.Append(4, 1)
			objs := column(rs.Append(3, n, j), rs.Append(4, n, j), rs.Append(5, n, j))
			objs = append(objs, agentx.Integer(rs.Append(6), truth(ev.Up)))
			objs = append(objs, id...)
			objs = append(objs, proto)
			objs = append(objs, column(vs.Append(21, n), vs.Append(20, n), routerID)...)
			out = append(out, Notification{TrapRealServer, objs})
		}
	}
	return out
}

// rowHas says whether the service with the API id is one of r's.
func rowHas(in *statefiles.Input, r *row, id string) bool {
	if r.svc.ID == id {
		return true
	}
	for i := range in.State.Services {
		if s := &in.State.Services[i]; s.ID == id && s.Source == r.svc.Source && r.vsc != nil {
			return true
		}
	}
	return false
}

// rsRow is the row (from 1) of the real server at addr under r, as
// CheckVars numbers them (the sorry server first); 0 when not there.
func rsRow(r *row, addr string) uint32 {
	j := uint32(0)
	if r.vsc != nil && r.vsc.Sorry != nil {
		j++
	}
	for _, rs := range r.svc.RealServers {
		if rs.Sorry {
			continue
		}
		j++
		if rs.Addr == addr {
			return j
		}
	}
	return 0
}

// rowLen is the length of the row index of a column object of the
// KEEPALIVED-MIB tables traps carry: two for the real servers
// (virtual server, real server), one for the others.
func rowLen(name agentx.OID) int {
	if name.HasPrefix(Check.Append(4)) {
		return 2
	}
	return 1
}
