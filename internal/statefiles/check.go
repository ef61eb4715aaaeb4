package statefiles

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/config"
)

// CheckData writes keepalived_check.data: the global definitions, then
// every virtual server with its real servers, weights and health, then
// the health checkers, in the layout of keepalived's checker process.
func CheckData(out io.Writer, in *Input) error {
	w := bufio.NewWriter(out)
	writeGlobal(w, in)
	if in.State == nil || len(in.State.Services) == 0 {
		return w.Flush()
	}
	vss := map[string]*config.VirtualServer{}
	if in.Config != nil {
		for _, vs := range in.Config.VirtualServers {
			vss[vs.Pos.String()] = vs
		}
	}
	fmt.Fprintln(w, "------< LVS Topology >------")
	fmt.Fprintf(w, " System is govs %s, dataplane %s\n", in.State.Version, in.State.Dataplane)
	for i := range in.State.Services {
		writeService(w, &in.State.Services[i], vss[in.State.Services[i].Source])
	}
	fmt.Fprintln(w, "------< Health checkers >------")
	for i := range in.State.Services {
		s := &in.State.Services[i]
		vs := vss[s.Source]
		if vs == nil {
			continue
		}
		for _, r := range s.RealServers {
			rs := realServerOf(vs, s, r.Addr)
			if rs == nil || r.Sorry {
				continue
			}
			for _, ck := range rs.Checks {
				fmt.Fprintf(w, " %s -> %s\n", serviceName(s), endpointName(s, r.Addr))
				fmt.Fprintf(w, "   Enabled = %s\n", onOff(r.Enabled, "yes", "no"))
				fmt.Fprintf(w, "   Up = %s\n", onOff(r.Healthy, "yes", "no"))
				fmt.Fprintf(w, "   Current weight = %d\n", r.Weight)
				if r.Reason != "" {
					fmt.Fprintf(w, "   Reason = %s\n", r.Reason)
				}
				fmt.Fprintf(w, "   Keepalive method = %s\n", ck.Kind)
			}
		}
	}
	return w.Flush()
}

// serviceName is keepalived's [vip]:proto:port (FWM n for a mark).
func serviceName(s *api.Service) string {
	if s.FWMark != 0 {
		return fmt.Sprintf("FWM %d", s.FWMark)
	}
	return fmt.Sprintf("[%s]:%s:%d", s.Addr, strings.ToLower(s.Proto), s.Port)
}

// endpointName is a real server as [ip]:proto:port.
func endpointName(s *api.Service, addr string) string {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return addr
	}
	proto := strings.ToLower(s.Proto)
	if s.FWMark != 0 {
		proto = "fwm"
	}
	return fmt.Sprintf("[%s]:%s:%d", ap.Addr(), proto, ap.Port())
}

// realServerOf finds the configured real server at addr ("ip:port") of
// the service s of vs.
func realServerOf(vs *config.VirtualServer, s *api.Service, addr string) *config.RealServer {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil
	}
	for _, rs := range vs.RealServers {
		port := rs.Port
		if port == 0 {
			port = s.Port
		}
		if rs.Addr == ap.Addr() && port == ap.Port() {
			return rs
		}
	}
	return nil
}

func writeService(w *bufio.Writer, s *api.Service, vs *config.VirtualServer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, "   "+format+"\n", a...) }
	fmt.Fprintln(w, " ------< Virtual server >------")
	if s.FWMark != 0 {
		fmt.Fprintf(w, " VS FWMARK = %d\n", s.FWMark)
	} else {
		port := fmt.Sprint(s.Port)
		if s.Port == 0 && vs != nil && len(vs.Ports) > 0 {
			port = portsText(vs.Ports) // one service on several ports
		}
		fmt.Fprintf(w, " VS VIP = %s, VPORT = %s\n", s.Addr, port)
	}
	if s.Name != "" {
		p("Name = %s", s.Name)
	}
	p("Address family = %s", onOff(s.V6, "inet6", "inet"))
	if vs != nil {
		delay := 60.0 // keepalived's default delay_loop
		if vs.DelayLoop != nil {
			delay = vs.DelayLoop.D().Seconds()
		}
		p("delay_loop = %f", delay)
	}
	p("lvs_sched = %s", s.Scheduler)
	for _, f := range s.Flags {
		p("%s", f)
	}
	p("One packet scheduling = %s", onOff(s.OnePacket, "enabled", "disabled"))
	if s.Persistent > 0 {
		p("persistence timeout = %d", s.Persistent)
	}
	p("protocol = %s", protoName(s, vs))
	if vs != nil {
		p("alpha is %s", onOff(vs.Alpha != nil && *vs.Alpha, "ON", "OFF"))
		p("omega is %s", onOff(vs.Omega, "ON", "OFF"))
		p("Inhibit on failure is %s", onOff(vs.InhibitOnFailure, "ON", "OFF"))
		p("quorum = %d, hysteresis = %d", vs.Quorum, vs.Hysteresis)
		if vs.HASuspend {
			p("Using HA suspend")
		}
	}
	p("default forwarding method = %s", s.Method)
	p("alive = %d", b2i(s.Enabled))
	p("quorum_state_up = %d", b2i(s.QuorumUp))
	for _, r := range s.RealServers {
		ap, err := netip.ParseAddrPort(r.Addr)
		rip, rport := r.Addr, ""
		if err == nil {
			rip, rport = ap.Addr().String(), fmt.Sprint(ap.Port())
		}
		p("------< Real server >------")
		if r.Sorry {
			p("sorry server = %s", endpointName(s, r.Addr))
			p("  forwarding method = %s", methodName(r.Method))
			continue
		}
		p("RIP = %s, RPORT = %s, WEIGHT = %d EFF WEIGHT = %d", rip, rport, r.ConfigWeight, r.Weight)
		p("forwarding method = %s", methodName(r.Method))
		if r.UThreshold != 0 || r.LThreshold != 0 {
			p("connection limit range = %d -> %d", r.LThreshold, r.UThreshold)
		}
		p("alive = %d", b2i(r.Healthy))
		if r.Reason != "" && !r.Healthy {
			p("reason = %s", r.Reason)
		}
		p("in pool = %d", b2i(r.InPool))
	}
}

func protoName(s *api.Service, vs *config.VirtualServer) string {
	if s.FWMark == 0 || vs == nil {
		return s.Proto
	}
	var names []string
	for _, p := range vs.Protocols {
		names = append(names, strings.ToUpper(string(p)))
	}
	if len(names) == 0 {
		return "TCP"
	}
	return strings.Join(names, ",")
}

func portsText(ps []config.PortRange) string {
	var parts []string
	for _, r := range ps {
		if r.From == r.To {
			parts = append(parts, fmt.Sprint(r.From))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", r.From, r.To))
		}
	}
	return strings.Join(parts, ",")
}

// methodName is keepalived's name of a forwarding method the API names
// as ipvsadm does.
func methodName(m string) string {
	switch m {
	case "Masq":
		return "NAT"
	case "Route":
		return "DR"
	case "Tunnel":
		return "TUN"
	case "FullNat":
		return "SNAT"
	}
	return m
}
