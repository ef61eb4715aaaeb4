package snmpmib

import (
	"net/netip"
	"strings"
	"time"

	"github.com/govs/govs/internal/agentx"
	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/statefiles"
)

// Check is KEEPALIVED-MIB's check group: the virtual and real servers,
// the sync daemon and the timeouts.
var Check = Keepalived.Append(3)

// keepalived's numbers of the schedulers (virtualServerLoadBalancingAlgo).
var schedNums = map[string]int{"rr": 1, "wrr": 2, "lc": 3, "wlc": 4, "lblc": 5, "lblcr": 6, "dh": 7, "sh": 8,
	"sed": 9, "nq": 10, "fo": 11, "ovf": 12, "mh": 13, "twos": 14}

// methodNum is keepalived's nat(1), dr(2), tun(3) (0 for govs's SNAT,
// which the MIB has no number for).
func methodNum(m string) int {
	switch strings.ToUpper(m) {
	case "NAT", "MASQ":
		return 1
	case "DR", "ROUTE":
		return 2
	case "TUN", "TUNNEL":
		return 3
	}
	return 0
}

func protoNum(p string) int {
	switch strings.ToUpper(p) {
	case "TCP":
		return 1
	case "UDP":
		return 2
	case "SCTP":
		return 3
	}
	return 4
}

// CheckVars returns the check group's variables: in.State (the services)
// must be set. As keepalived, a row per virtual_server in the
// configuration's order (a group's, a multi-protocol one's services
// merged into it) and, under it, its sorry server first when it has one,
// then its real servers.
func CheckVars(in *statefiles.Input) []agentx.Var {
	var vs []agentx.Var
	vsRows, rsRows := Check.Append(3, 1), Check.Append(4, 1)
	for i, r := range rowsOf(in) {
		n := uint32(i + 1)
		vs = append(vs, serviceVars(vsRows, n, &r.svc, r.vsc)...)
		j := uint32(0)
		if r.vsc != nil && r.vsc.Sorry != nil {
			j++
			vs = append(vs, sorryVars(rsRows, n, j, &r.svc, r.vsc, r.sorry)...)
		}
		for k := range r.svc.RealServers {
			if r.svc.RealServers[k].Sorry {
				continue
			}
			j++
			vs = append(vs, realServerVars(rsRows, n, j, &r.svc, &r.svc.RealServers[k], r.vsc)...)
		}
	}
	if in.Config != nil {
		g := in.Config.Global
		sd := Check.Append(6)
		if s := g.LVSSyncDaemon; s != nil {
			vs = append(vs, agentx.Integer(sd.Append(1, 0), 1), agentx.String(sd.Append(2, 0), s.Interface))
			if s.Instance != "" {
				vs = append(vs, agentx.String(sd.Append(3, 0), s.Instance))
			}
		} else {
			vs = append(vs, agentx.Integer(sd.Append(1, 0), 2))
		}
		if t := g.LVSTimeouts; in.State != nil {
			// the timeouts the configuration sets (keepalived shows
			// only those), as in force
			now := in.State.Timeouts
			for k, set := range []struct {
				on bool
				v  int
			}{{t.TCP != 0, now.TCP}, {t.TCPFin != 0, now.TCPFin}, {t.UDP != 0, now.UDP}} {
				if set.on {
					vs = append(vs, agentx.Integer(Check.Append(7, uint32(k+1), 0), set.v))
				}
			}
		}
	}
	return vs
}

// row is one virtual_server's services as one row.
type row struct {
	vsc   *config.VirtualServer
	svc   api.Service     // the first service, counters and rates summed over all
	sorry *api.RealServer // its sorry server while in use
}

// rowsOf merges the services of each virtual_server, in the
// configuration's order (services no virtual_server names follow).
func rowsOf(in *statefiles.Input) []row {
	if in.State == nil {
		return nil
	}
	bySource := map[string][]*api.Service{}
	var order []string
	for i := range in.State.Services {
		s := &in.State.Services[i]
		if _, ok := bySource[s.Source]; !ok {
			order = append(order, s.Source)
		}
		bySource[s.Source] = append(bySource[s.Source], s)
	}
	var rows []row
	merge := func(vsc *config.VirtualServer, svcs []*api.Service) {
		r := row{vsc: vsc, svc: *svcs[0]}
		r.svc.RealServers = append([]api.RealServer(nil), svcs[0].RealServers...)
		for _, o := range svcs[1:] {
			r.svc.Stats = r.svc.Stats.Add(o.Stats)
			r.svc.Rates = addRates(r.svc.Rates, o.Rates)
			r.svc.Enabled = r.svc.Enabled || o.Enabled
			for _, or := range o.RealServers {
				for k := range r.svc.RealServers {
					if rr := &r.svc.RealServers[k]; rr.Sorry == or.Sorry && sameServer(vsc, rr.Addr, or.Addr) {
						rr.Stats = rr.Stats.Add(or.Stats)
						rr.Rates = addRates(rr.Rates, or.Rates)
						rr.ActiveConns += or.ActiveConns
						rr.InactConns += or.InactConns
						rr.PersistConns += or.PersistConns
					}
				}
			}
		}
		for k := range r.svc.RealServers {
			if r.svc.RealServers[k].Sorry {
				r.sorry = &r.svc.RealServers[k]
			}
		}
		rows = append(rows, r)
	}
	if in.Config != nil {
		for _, vsc := range in.Config.VirtualServers {
			src := vsc.Pos.String()
			if svcs := bySource[src]; len(svcs) > 0 {
				merge(vsc, svcs)
				delete(bySource, src)
			}
		}
	}
	for _, src := range order {
		if svcs, ok := bySource[src]; ok {
			merge(nil, svcs)
		}
	}
	return rows
}

// sameServer says whether two services' real servers at a and b
// ("ip:port") are one configured real server: the same address, or the
// same IP of a real_server without a port of its own (which takes each
// service's port).
func sameServer(vsc *config.VirtualServer, a, b string) bool {
	if a == b {
		return true
	}
	pa, err1 := netip.ParseAddrPort(a)
	pb, err2 := netip.ParseAddrPort(b)
	if err1 != nil || err2 != nil || pa.Addr() != pb.Addr() || vsc == nil {
		return false
	}
	for _, rs := range vsc.RealServers {
		if rs.Addr == pa.Addr() && rs.Port == 0 {
			return true
		}
	}
	return false
}

func addRates(a, b api.Rates) api.Rates {
	return api.Rates{CPS: a.CPS + b.CPS, InPPS: a.InPPS + b.InPPS, OutPPS: a.OutPPS + b.OutPPS, InBPS: a.InBPS + b.InBPS, OutBPS: a.OutBPS + b.OutBPS}
}

// sorryVars is a virtual server's sorry server row: keepalived shows its
// address and counters, not the columns of a checked server (6-13).
func sorryVars(e agentx.OID, n, j uint32, s *api.Service, vsc *config.VirtualServer, active *api.RealServer) []agentx.Var {
	port := vsc.Sorry.Port
	if port == 0 {
		port = s.Port
	}
	a := vsc.Sorry.Addr
	ix := []uint32{n, j}
	o := func(col uint32) agentx.OID { return e.Append(col).Append(ix...) }
	vs := []agentx.Var{
		agentx.Integer(o(2), 2),
		agentx.Integer(o(3), addrType(a)),
		agentx.Bytes(o(4), a.AsSlice()),
		agentx.Gauge(o(5), uint64(port)),
	}
	var r api.RealServer
	if active != nil {
		r = *active
	}
	vs = append(vs, counterVars(o, &r)...)
	m := string(vsc.Sorry.Method)
	if m == "" {
		m = s.Method
	}
	if k := methodNum(m); k != 0 {
		vs = append(vs, agentx.Integer(o(40), k))
	}
	return vs
}

// counterVars are a real server's connection counts, counters and rates
// (columns 14-29).
func counterVars(o func(uint32) agentx.OID, r *api.RealServer) []agentx.Var {
	return []agentx.Var{
		agentx.Gauge(o(14), r.Stats.Conns),
		agentx.Gauge(o(15), uint64(r.ActiveConns)),
		agentx.Gauge(o(16), uint64(r.InactConns)),
		agentx.Gauge(o(17), uint64(r.PersistConns)),
		agentx.Counter(o(18), r.Stats.InPkts),
		agentx.Counter(o(19), r.Stats.OutPkts),
		agentx.Counter64(o(20), r.Stats.InBytes),
		agentx.Counter64(o(21), r.Stats.OutBytes),
		agentx.Gauge(o(22), r.Rates.CPS),
		agentx.Gauge(o(23), r.Rates.InPPS),
		agentx.Gauge(o(24), r.Rates.OutPPS),
		agentx.Gauge(o(25), r.Rates.InBPS),
		agentx.Gauge(o(26), r.Rates.OutBPS),
		agentx.Counter64(o(27), r.Stats.Conns),
		agentx.Counter64(o(28), r.Stats.InPkts),
		agentx.Counter64(o(29), r.Stats.OutPkts),
	}
}

func serviceVars(e agentx.OID, n uint32, s *api.Service, vsc *config.VirtualServer) []agentx.Var {
	up, total := 0, 0
	for _, r := range s.RealServers {
		if r.Sorry {
			continue
		}
		total++
		if r.Healthy {
			up++
		}
	}
	var vs []agentx.Var
	add := func(col uint32, v func(agentx.OID) agentx.Var) { vs = append(vs, v(e.Append(col, n))) }
	integer := func(col uint32, v int) { add(col, func(o agentx.OID) agentx.Var { return agentx.Integer(o, v) }) }
	gauge := func(col uint32, v uint64) { add(col, func(o agentx.OID) agentx.Var { return agentx.Gauge(o, v) }) }
	str := func(col uint32, v string) { add(col, func(o agentx.OID) agentx.Var { return agentx.String(o, v) }) }
	switch {
	case vsc != nil && vsc.Group != "":
		integer(2, 3)
		str(3, vsc.Group)
	case s.FWMark != 0:
		integer(2, 1)
		gauge(4, uint64(s.FWMark))
		integer(5, 1+b2i(s.V6))
	default:
		integer(2, 2)
		if a, err := netip.ParseAddr(s.Addr); err == nil {
			integer(5, addrType(a))
			add(6, func(o agentx.OID) agentx.Var { return agentx.Bytes(o, a.AsSlice()) })
		}
		gauge(7, uint64(s.Port))
	}
	integer(8, protoNum(s.Proto))
	algo, ok := schedNums[s.Scheduler]
	if !ok {
		algo = 99
	}
	integer(9, algo)
	if m := methodNum(s.Method); m != 0 {
		integer(10, m)
	}
	integer(11, truth(s.Enabled)) // in the dataplane (the quorum is column 23)
	integer(13, truth(s.Persistent > 0))
	if s.Persistent > 0 {
		gauge(14, uint64(s.Persistent))
	}
	gauge(20, uint64(total))
	gauge(21, uint64(up))
	integer(23, truth(s.QuorumUp))
	c := s.Stats
	gauge(27, c.Conns)
	add(28, func(o agentx.OID) agentx.Var { return agentx.Counter(o, c.InPkts) })
	add(29, func(o agentx.OID) agentx.Var { return agentx.Counter(o, c.OutPkts) })
	add(30, func(o agentx.OID) agentx.Var { return agentx.Counter64(o, c.InBytes) })
	add(31, func(o agentx.OID) agentx.Var { return agentx.Counter64(o, c.OutBytes) })
	r := s.Rates
	gauge(32, r.CPS)
	gauge(33, r.InPPS)
	gauge(34, r.OutPPS)
	gauge(35, r.InBPS)
	gauge(36, r.OutBPS)
	integer(37, truth(s.OnePacket))
	add(38, func(o agentx.OID) agentx.Var { return agentx.Counter64(o, c.Conns) })
	add(39, func(o agentx.OID) agentx.Var { return agentx.Counter64(o, c.InPkts) })
	add(40, func(o agentx.OID) agentx.Var { return agentx.Counter64(o, c.OutPkts) })
	if vsc != nil {
		if vsc.Virtualhost != "" {
			str(12, vsc.Virtualhost)
		}
		delay := 60 * time.Second
		if vsc.DelayLoop != nil {
			delay = vsc.DelayLoop.D()
		}
		gauge(16, uint64(delay/time.Second))
		integer(17, truth(vsc.HASuspend))
		integer(18, truth(vsc.Alpha != nil && *vsc.Alpha))
		integer(19, truth(vsc.Omega))
		gauge(22, uint64(vsc.Quorum))
		if vsc.QuorumUp != nil {
			str(24, statefiles.QuoteCommand(vsc.QuorumUp.Cmd))
		}
		if vsc.QuorumDown != nil {
			str(25, statefiles.QuoteCommand(vsc.QuorumDown.Cmd))
		}
		gauge(26, uint64(vsc.Hysteresis))
		integer(56, 1+b2i(vsc.InhibitOnFailure)) // remove(1), inhibit(2)
		gauge(64, uint64(delay/time.Microsecond))
		if s.Name != "" {
			str(71, s.Name)
		}
	}
	return vs
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func realServerVars(e agentx.OID, n, j uint32, s *api.Service, r *api.RealServer, vsc *config.VirtualServer) []agentx.Var {
	ap, err := netip.ParseAddrPort(r.Addr)
	if err != nil {
		return nil
	}
	var rsc *config.RealServer
	if vsc != nil {
		for _, c := range vsc.RealServers {
			port := c.Port
			if port == 0 {
				port = s.Port
			}
			if c.Addr == ap.Addr() && port == ap.Port() {
				rsc = c
			}
		}
	}
	ix := []uint32{n, j}
	o := func(col uint32) agentx.OID { return e.Append(col).Append(ix...) }
	typ := 1
	if r.Sorry {
		typ = 2
	}
	vs := []agentx.Var{
		agentx.Integer(o(2), typ),
		agentx.Integer(o(3), addrType(ap.Addr())),
		agentx.Bytes(o(4), ap.Addr().AsSlice()),
		agentx.Gauge(o(5), uint64(ap.Port())),
		agentx.Integer(o(6), truth(r.Healthy)),
		// keepalived's effective weight: what the server has when in use
		// (the dataplane's is 0 while it is down or inhibited)
		agentx.Integer(o(7), effectiveWeight(r)),
	}
	if r.UThreshold != 0 {
		vs = append(vs, agentx.Gauge(o(8), uint64(r.UThreshold)))
	}
	if r.LThreshold != 0 {
		vs = append(vs, agentx.Gauge(o(9), uint64(r.LThreshold)))
	}
	vs = append(vs, agentx.Gauge(o(13), uint64(1-b2i(r.Healthy))))
	vs = append(vs, counterVars(o, r)...)
	if m := methodNum(r.Method); m != 0 {
		vs = append(vs, agentx.Integer(o(40), m))
	}
	if rsc != nil {
		inhibit := vsc.InhibitOnFailure
		if rsc.InhibitOnFailure != nil {
			inhibit = *rsc.InhibitOnFailure
		}
		vs = append(vs, agentx.Integer(o(10), 1+b2i(inhibit)))
		if rsc.NotifyUp != nil {
			vs = append(vs, agentx.String(o(11), statefiles.QuoteCommand(rsc.NotifyUp.Cmd)))
		}
		if rsc.NotifyDown != nil {
			vs = append(vs, agentx.String(o(12), statefiles.QuoteCommand(rsc.NotifyDown.Cmd)))
		}
		if rsc.Name != "" {
			vs = append(vs, agentx.String(o(55), rsc.Name))
		}
	}
	return vs
}

// effectiveWeight is the weight a real server has when in use: the
// dataplane's while it is in the pool and healthy, else the configured
// (or runtime-set) one.
func effectiveWeight(r *api.RealServer) int {
	if r.InPool && r.Healthy {
		return r.Weight
	}
	return r.ConfigWeight
}
