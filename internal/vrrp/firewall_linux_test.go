package vrrp

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestLinuxSystemNoAccept loads the no_accept rules in a namespace with
// the addresses of a no_accept instance (link-local ones with their
// interface) and not an accept one's, lets services through, and takes
// the table away on a reload to accept and at the stop. A table a
// previous run left is removed at the first call.
func TestLinuxSystemNoAccept(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs nft")
	}
	ns := fmt.Sprintf("vr%04dfw", os.Getpid()%10000)
	addNetns(t, ns, true)
	run(t, "ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", "eth1", "netns", ns)
	ipn(t, ns, "link", "set", "eth0", "up")
	ipn(t, ns, "link", "set", "eth1", "up")
	ipn(t, ns, "addr", "add", "10.8.0.1/24", "dev", "eth0")
	list := func() (string, bool) {
		out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "table", "inet", FirewallTable).CombinedOutput()
		return string(out), err == nil
	}
	// a table left by an earlier run
	stale := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	stale.Stdin = strings.NewReader("table inet govs_vrrp {\n\tchain in {\n\t\ttype filter hook input priority filter - 1; policy accept;\n\t\tip daddr 10.8.0.99 drop\n\t}\n}\n")
	if out, err := stale.CombinedOutput(); err != nil {
		t.Fatalf("stale table: %v %s", err, out)
	}
	s, err := NewLinuxSystem(LinuxOptions{NetNS: ns})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SetFirewall(nil, nil); err != nil {
		t.Fatal(err)
	}
	if rules, ok := list(); ok {
		t.Fatalf("the stale table stays:\n%s", rules)
	}

	cfg := InstanceConfig{Name: "A", Interface: "eth0", VRID: 1, Priority: 100, Version: 3, NoAccept: true,
		VirtualIPs:         []VirtualIP{{Prefix: netip.MustParsePrefix("10.8.0.100/24")}},
		VirtualIPsExcluded: []VirtualIP{{Prefix: netip.MustParsePrefix("fe80::100/64")}, {Prefix: netip.MustParsePrefix("2001:db8::100/64"), Dev: "eth1"}},
	}
	// an instance in accept mode adds nothing
	other := InstanceConfig{Name: "B", Interface: "eth0", VRID: 2, Priority: 100, Version: 3,
		VirtualIPs: []VirtualIP{{Prefix: netip.MustParsePrefix("10.8.0.200/24")}}}
	if err := s.SetFirewall([]InstanceConfig{cfg, other}, nil); err != nil {
		t.Fatal(err)
	}
	rules, ok := list()
	for _, want := range []string{"10.8.0.100", `fe80::100 . "eth0"`, "2001:db8::100", "ip daddr @vips4 drop", "ip6 saddr @vips6 drop"} {
		if !ok || !strings.Contains(rules, want) {
			t.Errorf("no %q in the loaded rules:\n%s", want, rules)
		}
	}
	if strings.Contains(rules, "10.8.0.200") {
		t.Errorf("an accept instance's address in the rules:\n%s", rules)
	}
	if err := s.SetFirewall([]InstanceConfig{cfg, other}, []FirewallService{{Proto: 6, Addr: netip.MustParseAddr("10.8.0.100"), Port: 80}, {FWMark: 3},
		{Proto: 17, Addr: netip.MustParseAddr("10.8.0.100"), Port: 5000, PortTo: 5100}, {Proto: 6, Addr: netip.MustParseAddr("2001:db8::100")},
		{Proto: 6, Addr: netip.MustParseAddr("2001:db8::100"), Port: 443}}); err != nil {
		t.Fatal(err)
	}
	if rules, _ := list(); !strings.Contains(rules, "10.8.0.100 . tcp . 80") || !strings.Contains(rules, "meta mark @service_marks accept") ||
		!strings.Contains(rules, "10.8.0.100 . udp . 5000-5100") || !strings.Contains(rules, "2001:db8::100 . tcp") {
		t.Errorf("services not in the rules:\n%s", rules)
	}
	// a reload turning accept on takes the table away
	acc := cfg
	acc.NoAccept = false
	if err := s.SetFirewall([]InstanceConfig{acc, other}, nil); err != nil {
		t.Fatal(err)
	}
	if rules, ok := list(); ok {
		t.Errorf("accept: table left:\n%s", rules)
	}
	// and back; then the stop
	if err := s.SetFirewall([]InstanceConfig{cfg}, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := list(); !ok {
		t.Error("no_accept again: no table")
	}
	if err := s.SetFirewall(nil, nil); err != nil {
		t.Fatal(err)
	}
	if rules, ok := list(); ok {
		t.Errorf("stopped: table left:\n%s", rules)
	}
}
