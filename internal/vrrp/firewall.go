package vrrp

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// FirewallTable is the nftables table (family inet) that holds the
// no_accept drop rules.
const FirewallTable = "govs_vrrp"

// FirewallService is a virtual service whose traffic the no_accept rules
// let through: the director forwards it, the host does not consume it.
type FirewallService struct {
	// Proto is the IP protocol (6 TCP, 17 UDP, 132 SCTP); 0 with FWMark.
	Proto uint8
	Addr  netip.Addr
	// Port to PortTo (0: Port alone); Port 0: every port of Addr.
	Port, PortTo uint16
	FWMark       uint32
}

// fwAddr is an address the no_accept rules drop; dev is kept for IPv6
// link-local addresses only, which are the same on every link.
type fwAddr struct {
	addr netip.Addr
	dev  string
}

// firewallScript renders the nftables script that replaces the table
// with rules dropping packets addressed to (input) or sent from (output)
// the addresses in drop, except:
//   - neighbour discovery, without which nobody could resolve them;
//   - ICMP errors coming in (about what the services sent);
//   - the traffic of the virtual services svcs, by address, protocol
//     and port (source port going out), and firewall-marked packets
//     coming in.
//
// An empty drop set renders a script that only removes the table.
func firewallScript(drop []fwAddr, svcs []FirewallService) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {}\ndelete table inet %s\n", FirewallTable, FirewallTable)
	if len(drop) == 0 {
		return b.String()
	}
	var v4, v6, ll []string
	for _, a := range drop {
		switch {
		case a.addr.Is4():
			v4 = append(v4, a.addr.String())
		case a.addr.IsLinkLocalUnicast():
			ll = append(ll, fmt.Sprintf("%s . %q", a.addr, a.dev))
		default:
			v6 = append(v6, a.addr.String())
		}
	}
	s4, s6, all4, all6, marks := serviceElements(svcs)
	fmt.Fprintf(&b, "table inet %s {\n", FirewallTable)
	set := func(name, typ string, elems []string) {
		if len(elems) == 0 {
			return
		}
		slices.Sort(elems)
		elems = slices.Compact(elems)
		flags := ""
		if strings.HasSuffix(typ, "inet_service") && slices.ContainsFunc(elems, func(e string) bool { return strings.Contains(e, "-") }) {
			// port ranges of multi-port services (a concatenation
			// with ranges needs nft 0.9.4 and Linux 5.6: only then)
			flags = "\t\tflags interval\n"
		}
		fmt.Fprintf(&b, "\tset %s {\n\t\ttype %s\n%s\t\telements = { %s }\n\t}\n", name, typ, flags, strings.Join(elems, ", "))
	}
	set("vips4", "ipv4_addr", v4)
	set("vips6", "ipv6_addr", v6)
	set("vips6_link_local", "ipv6_addr . ifname", ll)
	set("services4", "ipv4_addr . inet_proto . inet_service", s4)
	set("services6", "ipv6_addr . inet_proto . inet_service", s6)
	set("services4_all_ports", "ipv4_addr . inet_proto", all4)
	set("services6_all_ports", "ipv6_addr . inet_proto", all6)
	set("service_marks", "mark", marks)
	chain := func(name, hook, dir, port, iface string) {
		fmt.Fprintf(&b, "\tchain %s {\n\t\ttype filter hook %s priority filter - 1; policy accept;\n", name, hook)
		if len(v6)+len(ll) > 0 {
			b.WriteString("\t\ticmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept\n")
		}
		if hook == "input" {
			b.WriteString("\t\ticmp type { destination-unreachable, time-exceeded, parameter-problem } accept\n")
			b.WriteString("\t\ticmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem } accept\n")
		}
		if len(s4) > 0 {
			fmt.Fprintf(&b, "\t\tip %s . meta l4proto . th %s @services4 accept\n", dir, port)
		}
		if len(s6) > 0 {
			fmt.Fprintf(&b, "\t\tip6 %s . meta l4proto . th %s @services6 accept\n", dir, port)
		}
		if len(all4) > 0 {
			fmt.Fprintf(&b, "\t\tip %s . meta l4proto @services4_all_ports accept\n", dir)
		}
		if len(all6) > 0 {
			fmt.Fprintf(&b, "\t\tip6 %s . meta l4proto @services6_all_ports accept\n", dir)
		}
		if len(marks) > 0 && hook == "input" {
			b.WriteString("\t\tmeta mark @service_marks accept\n")
		}
		if len(v4) > 0 {
			fmt.Fprintf(&b, "\t\tip %s @vips4 drop\n", dir)
		}
		if len(v6) > 0 {
			fmt.Fprintf(&b, "\t\tip6 %s @vips6 drop\n", dir)
		}
		if len(ll) > 0 {
			fmt.Fprintf(&b, "\t\tip6 %s . %s @vips6_link_local drop\n", dir, iface)
		}
		b.WriteString("\t}\n")
	}
	chain("in", "input", "daddr", "dport", "iifname")
	chain("out", "output", "saddr", "sport", "oifname")
	b.WriteString("}\n")
	return b.String()
}

// serviceElements renders the services as set elements: address .
// protocol . ports (the ranges of one address and protocol merged, an
// interval set refusing overlaps), address . protocol for every port,
// and marks.
func serviceElements(svcs []FirewallService) (s4, s6, all4, all6, marks []string) {
	type ap struct {
		addr  netip.Addr
		proto uint8
	}
	ranges := map[ap][][2]uint16{}
	every := map[ap]bool{}
	for _, s := range svcs {
		if s.FWMark != 0 {
			marks = append(marks, fmt.Sprint(s.FWMark))
			continue
		}
		a := s.Addr.Unmap()
		if !a.IsValid() {
			continue
		}
		k := ap{a, s.Proto}
		if s.Port == 0 {
			every[k] = true
			continue
		}
		ranges[k] = append(ranges[k], [2]uint16{s.Port, max(s.PortTo, s.Port)})
	}
	for k := range every {
		e := fmt.Sprintf("%s . %d", k.addr, k.proto)
		if k.addr.Is4() {
			all4 = append(all4, e)
		} else {
			all6 = append(all6, e)
		}
	}
	for k, rs := range ranges {
		if every[k] {
			continue
		}
		slices.SortFunc(rs, func(x, y [2]uint16) int { return cmp.Compare(x[0], y[0]) })
		merged := rs[:1]
		for _, r := range rs[1:] {
			last := &merged[len(merged)-1]
			if int(r[0]) <= int(last[1])+1 {
				last[1] = max(last[1], r[1])
				continue
			}
			merged = append(merged, r)
		}
		for _, r := range merged {
			ports := fmt.Sprint(r[0])
			if r[1] > r[0] {
				ports += fmt.Sprintf("-%d", r[1])
			}
			e := fmt.Sprintf("%s . %d . %s", k.addr, k.proto, ports)
			if k.addr.Is4() {
				s4 = append(s4, e)
			} else {
				s6 = append(s6, e)
			}
		}
	}
	return s4, s6, all4, all6, marks
}

// sortedDrop is the drop set in a stable order.
func sortedDrop(m map[fwAddr]bool) []fwAddr {
	out := make([]fwAddr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y fwAddr) int {
		return cmp.Or(x.addr.Compare(y.addr), cmp.Compare(x.dev, y.dev))
	})
	return out
}
