package vrrp

import (
	"net/netip"
	"strings"
	"testing"
)

// TestFirewallScript: the no_accept rules drop what is addressed to (and
// sent from) the addresses, let neighbour discovery, incoming ICMP
// errors and the virtual services through, and match IPv6 link-local
// addresses with their interface; with nothing to drop the script only
// removes the table.
func TestFirewallScript(t *testing.T) {
	a := netip.MustParseAddr
	empty := firewallScript(nil, []FirewallService{{Proto: 6, Addr: a("10.0.0.1"), Port: 80}})
	if empty != "table inet govs_vrrp {}\ndelete table inet govs_vrrp\n" {
		t.Errorf("empty drop set:\n%s", empty)
	}
	v4only := firewallScript([]fwAddr{{addr: a("10.0.0.1")}}, nil)
	for _, no := range []string{"icmpv6 type { nd-", "services", "vips6", "mark"} {
		if strings.Contains(v4only, no) {
			t.Errorf("IPv4 only, no services: %q in\n%s", no, v4only)
		}
	}
	s := firewallScript(
		[]fwAddr{{addr: a("10.0.0.1")}, {addr: a("10.0.0.2")}, {addr: a("2001:db8::1")}, {addr: a("fe80::1"), dev: "eth0"}},
		[]FirewallService{
			{Proto: 6, Addr: a("10.0.0.1"), Port: 80}, {Proto: 6, Addr: a("10.0.0.1"), Port: 80}, // the same twice
			{Proto: 17, Addr: a("::ffff:10.0.0.2"), Port: 53},
			{Proto: 6, Addr: a("2001:db8::1"), Port: 443},
			{Proto: 6, Addr: a("10.0.0.2")}, // every port
			{FWMark: 7},
		})
	for _, want := range []string{
		"table inet govs_vrrp {}\ndelete table inet govs_vrrp\ntable inet govs_vrrp {\n",
		"set vips4 {\n\t\ttype ipv4_addr\n\t\telements = { 10.0.0.1, 10.0.0.2 }\n\t}",
		"set vips6 {\n\t\ttype ipv6_addr\n\t\telements = { 2001:db8::1 }\n\t}",
		"set vips6_link_local {\n\t\ttype ipv6_addr . ifname\n\t\telements = { fe80::1 . \"eth0\" }\n\t}",
		"elements = { 10.0.0.1 . 6 . 80, 10.0.0.2 . 17 . 53 }",
		"elements = { 2001:db8::1 . 6 . 443 }",
		"set services4_all_ports {\n\t\ttype ipv4_addr . inet_proto\n\t\telements = { 10.0.0.2 . 6 }",
		"set service_marks {\n\t\ttype mark\n\t\telements = { 7 }",
		"chain in {\n\t\ttype filter hook input priority filter - 1; policy accept;\n\t\ticmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept\n",
		"\t\tip daddr . meta l4proto . th dport @services4 accept\n",
		"\t\tmeta mark @service_marks accept\n\t\tip daddr @vips4 drop\n\t\tip6 daddr @vips6 drop\n\t\tip6 daddr . iifname @vips6_link_local drop\n\t}\n",
		"chain out {\n\t\ttype filter hook output priority filter - 1; policy accept;\n\t\ticmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept\n\t\tip saddr . meta l4proto . th sport @services4 accept\n",
		"\t\tip saddr @vips4 drop\n\t\tip6 saddr @vips6 drop\n\t\tip6 saddr . oifname @vips6_link_local drop\n\t}\n}\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("no %q in\n%s", want, s)
		}
	}
	// the ports of one address and protocol merged, as an interval set
	// takes no overlap
	m := firewallScript([]fwAddr{{addr: a("10.0.0.1")}}, []FirewallService{
		{Proto: 6, Addr: a("10.0.0.1"), Port: 80}, {Proto: 6, Addr: a("10.0.0.1"), Port: 8000, PortTo: 8100},
		{Proto: 6, Addr: a("10.0.0.1"), Port: 8050, PortTo: 8200}, {Proto: 6, Addr: a("10.0.0.1"), Port: 81},
		{Proto: 17, Addr: a("10.0.0.1"), Port: 8050},
	})
	if !strings.Contains(m, "flags interval\n\t\telements = { 10.0.0.1 . 17 . 8050, 10.0.0.1 . 6 . 80-81, 10.0.0.1 . 6 . 8000-8200 }") {
		t.Errorf("merged ranges:\n%s", m)
	}
	// the output chain takes no marks and lets no ICMP error out
	out := s[strings.Index(s, "chain out"):]
	if strings.Contains(out, "mark") || strings.Contains(out, "destination-unreachable") {
		t.Errorf("output chain:\n%s", out)
	}
}
