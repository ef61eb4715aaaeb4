package vrrp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestLinuxSystemAddressesRoutesTracking runs an address owner in a
// namespace and checks with iproute2 what it installs: brd, label, scope,
// excluded addresses, virtual_routes (via and blackhole), virtual_rules
// (source, inverted destination with fwmark, a prohibit); then a tracked
// interface going down moves it to FAULT and everything is removed, and
// back.
func TestLinuxSystemAddressesRoutesTracking(t *testing.T) {
	requireRoot(t)
	ns := fmt.Sprintf("vr%04dsy", os.Getpid()%10000)
	addNetns(t, ns, false)
	run(t, "ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", "eth1", "netns", ns)
	ipn(t, ns, "link", "set", "eth0", "up")
	ipn(t, ns, "link", "set", "eth1", "up")
	ipn(t, ns, "addr", "add", "10.8.0.1/24", "dev", "eth0")
	cfg := InstanceConfig{
		Name: "OWN", Interface: "eth0", VRID: 9, Priority: 255, Version: 3, AdvertInterval: 100 * time.Millisecond,
		VirtualIPs: []VirtualIP{{Prefix: netip.MustParsePrefix("10.8.0.100/24"), Broadcast: netip.MustParseAddr("10.8.0.255"),
			Label: "eth0:vip", Scope: "global"}},
		VirtualIPsExcluded: []VirtualIP{{Prefix: netip.MustParsePrefix("10.8.9.9/32"), Dev: "eth1", Scope: "host"}},
		VirtualRoutes: []VirtualRoute{
			{Dst: netip.MustParsePrefix("10.77.0.0/16"), Via: netip.MustParseAddr("10.8.0.254"), Metric: 5},
			{Dst: netip.MustParsePrefix("10.66.0.0/16"), Type: "blackhole"},
		},
		VirtualRules: []VirtualRule{
			{From: netip.MustParsePrefix("10.8.0.100/32"), Table: 100, Priority: 1000},
			{Not: true, To: netip.MustParsePrefix("10.55.0.0/16"), FWMark: 7, FWMask: 0xff, HasMask: true, Table: 300, Priority: 1001},
			{Iif: "eth1", IPProto: 6, Dport: [2]uint16{8000, 8080}, Type: "prohibit", Priority: 1002},
		},
		TrackInterfaces: []TrackInterface{{Name: "eth1"}},
	}
	g := startGovs(t, ns, cfg)
	rulesWant := []string{
		"1000:\tfrom 10.8.0.100 lookup 100",
		"1001:\tnot from all to 10.55.0.0/16 fwmark 0x7/0xff lookup 300",
		"1002:\tfrom all iif eth1 ipproto tcp dport 8000-8080 prohibit",
	}
	rules := func() (n int) {
		out := ipn(t, ns, "rule", "show")
		for _, w := range rulesWant {
			if strings.Contains(out, w) {
				n++
			}
		}
		return n
	}
	installed := func() (addr, excl, via, bh bool) {
		a := ipn(t, ns, "-o", "addr", "show")
		r := ipn(t, ns, "route", "show")
		return strings.Contains(a, "inet 10.8.0.100/24 brd 10.8.0.255 scope global secondary eth0:vip"),
			strings.Contains(a, "inet 10.8.9.9/32 scope host eth1"),
			strings.Contains(r, "10.77.0.0/16 via 10.8.0.254 dev eth0 metric 5"),
			strings.Contains(r, "blackhole 10.66.0.0/16")
	}
	all := func() bool { a, e, v, b := installed(); return a && e && v && b && rules() == len(rulesWant) }
	none := func() bool { a, e, v, b := installed(); return !a && !e && !v && !b && rules() == 0 }
	if !waitFor(2*time.Second, func() bool { return g.status().State == StateMaster && all() }) {
		t.Fatalf("owner did not install everything: %+v\n%s\n%s\n%s", g.status(),
			ipn(t, ns, "-o", "addr", "show"), ipn(t, ns, "route", "show"), ipn(t, ns, "rule", "show"))
	}
	ipn(t, ns, "link", "set", "eth1", "down")
	if !waitFor(2*time.Second, func() bool { return g.status().State == StateFault && none() }) {
		t.Fatalf("tracked interface down: %+v\n%s", g.status(), ipn(t, ns, "-o", "addr", "show"))
	}
	ipn(t, ns, "link", "set", "eth1", "up")
	if !waitFor(2*time.Second, func() bool { return g.status().State == StateMaster && all() }) {
		t.Fatalf("tracked interface up: %+v", g.status())
	}
	g.stop()
	if !none() {
		t.Fatalf("addresses, routes or rules left after stop:\n%s\n%s\n%s", ipn(t, ns, "-o", "addr", "show"), ipn(t, ns, "route", "show"), ipn(t, ns, "rule", "show"))
	}
}

// TestLinuxSystemRulesIdempotent: virtual_rules entries, some without a
// priority (the kernel gives every add a priority of its own) and two
// that overlap (one is the other plus iif), added twice, as a restart
// while MASTER does, are there once each; removing them removes exactly
// them, not an administrator's rule that a delete naming fewer fields
// would also match.
func TestLinuxSystemRulesIdempotent(t *testing.T) {
	requireRoot(t)
	ns := fmt.Sprintf("vr%04dru", os.Getpid()%10000)
	addNetns(t, ns, false)
	sys, err := NewLinuxSystem(LinuxOptions{NetNS: ns})
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	ipn(t, ns, "rule", "add", "from", "10.5.0.0/16", "iif", "eth9", "lookup", "123", "pref", "700") // the administrator's
	cfg := InstanceConfig{Name: "R", VirtualRules: []VirtualRule{
		{From: netip.MustParsePrefix("10.5.0.0/16"), Table: 123},
		{From: netip.MustParsePrefix("10.5.0.0/16"), Iif: "eth1", Table: 123},
		{To: netip.MustParsePrefix("10.6.0.0/16"), Table: 124, Priority: 500},
		{From: netip.MustParsePrefix("10.7.0.0/16"), Type: "prohibit"},
		{To: netip.MustParsePrefix("0.0.0.0/0"), Table: 126}, // /0: all, as the kernel keeps it
	}}
	rules := func() string { return ipn(t, ns, "rule", "show") }
	count := func(s string) int { return strings.Count(rules(), s+"\n") }
	want := []string{"from 10.5.0.0/16 lookup 123", "from 10.5.0.0/16 iif eth1 [detached] lookup 123", "500:\tfrom all to 10.6.0.0/16 lookup 124", "from 10.7.0.0/16 prohibit", "from all lookup 126"}
	ctx := t.Context()
	for range 2 {
		if err := sys.AddAddresses(ctx, &cfg); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range want {
		if n := count(w); n != 1 {
			t.Fatalf("after two adds: %d copies of %q, want 1:\n%s", n, w, rules())
		}
	}
	if err := sys.RemoveAddresses(ctx, &cfg); err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if n := count(w); n != 0 {
			t.Fatalf("after remove: %d copies of %q left:\n%s", n, w, rules())
		}
	}
	if n := count("700:\tfrom 10.5.0.0/16 iif eth9 [detached] lookup 123"); n != 1 {
		t.Fatalf("the administrator's rule was touched:\n%s", rules())
	}
}

// TestLinuxSystemRouteOptions: multipath routes (weights), onlink, the
// protocol and route metrics are installed as asked, found as installed
// by RestoreRoutes (nothing added again), put back once deleted, and
// removed.
func TestLinuxSystemRouteOptions(t *testing.T) {
	requireRoot(t)
	ns := fmt.Sprintf("vr%04dro", os.Getpid()%10000)
	addNetns(t, ns, false)
	run(t, "ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", "eth1", "netns", ns)
	ipn(t, ns, "link", "set", "eth0", "up")
	ipn(t, ns, "link", "set", "eth1", "up")
	ipn(t, ns, "addr", "add", "10.8.0.1/24", "dev", "eth0")
	sys, err := NewLinuxSystem(LinuxOptions{NetNS: ns})
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	cfg := InstanceConfig{Name: "R", Interface: "eth0", VirtualRoutes: []VirtualRoute{
		{Dst: netip.MustParsePrefix("10.70.0.0/16"), Nexthops: []VirtualNexthop{
			{Via: netip.MustParseAddr("10.8.0.2")}, {Via: netip.MustParseAddr("10.8.0.3"), Weight: 3}}},
		{Dst: netip.MustParsePrefix("10.71.0.0/16"), Via: netip.MustParseAddr("192.0.2.1"), Dev: "eth0", Onlink: true},
		{Dst: netip.MustParsePrefix("10.72.0.0/16"), Via: netip.MustParseAddr("10.8.0.254"), Proto: 4, MTU: 1400, MTULock: true, AdvMSS: 1360},
	}}
	ctx := context.Background()
	if err := sys.AddAddresses(ctx, &cfg); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"10.70.0.0/16 \n\tnexthop via 10.8.0.2 dev eth0 weight 1 \n\tnexthop via 10.8.0.3 dev eth0 weight 3",
		"10.71.0.0/16 via 192.0.2.1 dev eth0 onlink",
		"10.72.0.0/16 via 10.8.0.254 dev eth0 proto static mtu lock 1400 advmss 1360",
	}
	check := func(when string) {
		t.Helper()
		out := ipn(t, ns, "route", "show")
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: no %q in:\n%s", when, w, out)
			}
		}
	}
	check("installed")
	if n, err := sys.RestoreRoutes(ctx, &cfg); n != 0 || err != nil {
		t.Errorf("RestoreRoutes with all installed: %d added, %v", n, err)
	}
	// (the deletions reach RestoreRoutes through its subscription: a
	// call may come before they do)
	restored := func(want int) {
		t.Helper()
		n := 0
		waitFor(2*time.Second, func() bool {
			a, err := sys.RestoreRoutes(ctx, &cfg)
			if err != nil {
				t.Fatal(err)
			}
			n += a
			return n >= want
		})
		if n != want {
			t.Errorf("RestoreRoutes put back %d routes, want %d", n, want)
		}
	}
	ipn(t, ns, "route", "del", "10.70.0.0/16")
	ipn(t, ns, "route", "del", "10.72.0.0/16")
	restored(2)
	check("put back")
	// a route the kernel drops with its source address (no deletion
	// message of its own)
	ipn(t, ns, "addr", "add", "10.9.0.1/24", "dev", "eth0")
	cfg.VirtualRoutes = append(cfg.VirtualRoutes, VirtualRoute{Dst: netip.MustParsePrefix("10.73.0.0/16"), Via: netip.MustParseAddr("10.8.0.254"), Src: netip.MustParseAddr("10.9.0.1")})
	want = append(want, "10.73.0.0/16 via 10.8.0.254 dev eth0 src 10.9.0.1")
	if err := sys.AddAddresses(ctx, &cfg); err != nil {
		t.Fatal(err)
	}
	restored(0)
	ipn(t, ns, "addr", "del", "10.9.0.1/24", "dev", "eth0")
	if out := ipn(t, ns, "route", "show"); strings.Contains(out, "10.73.0.0/16") {
		t.Fatalf("the kernel kept the route without its address:\n%s", out)
	}
	ipn(t, ns, "addr", "add", "10.9.0.1/24", "dev", "eth0")
	restored(1)
	check("put back after the address came back")
	if err := sys.RemoveAddresses(ctx, &cfg); err != nil {
		t.Fatal(err)
	}
	if out := ipn(t, ns, "route", "show"); strings.Contains(out, "10.7") {
		t.Errorf("routes left after removal:\n%s", out)
	}
}

// TestPromoteSecondaries: promote_secondaries is set on the instance's
// interface while it runs and put back at its stop.
func TestPromoteSecondaries(t *testing.T) {
	requireRoot(t)
	ns := fmt.Sprintf("vr%04dps", os.Getpid()%10000)
	addNetns(t, ns, false)
	run(t, "ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", "eth1", "netns", ns)
	ipn(t, ns, "link", "set", "eth0", "up")
	ipn(t, ns, "link", "set", "eth1", "up")
	ipn(t, ns, "addr", "add", "10.8.0.1/24", "dev", "eth0")
	value := func() string {
		return strings.TrimSpace(run(t, "ip", "netns", "exec", ns, "cat", "/proc/sys/net/ipv4/conf/eth0/promote_secondaries"))
	}
	run(t, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.conf.eth0.promote_secondaries=0")
	g := startGovs(t, ns, InstanceConfig{Name: "P", Interface: "eth0", VRID: 12, Priority: 255, Version: 3,
		AdvertInterval: 100 * time.Millisecond, PromoteSecondaries: true,
		VirtualIPs: []VirtualIP{{Prefix: netip.MustParsePrefix("10.8.0.100/24")}}})
	if !waitFor(2*time.Second, func() bool { return g.status().State == StateMaster }) {
		t.Fatalf("not MASTER: %+v", g.status())
	}
	if v := value(); v != "1" {
		t.Errorf("promote_secondaries while running: %s", v)
	}
	g.stop()
	if v := value(); v != "0" {
		t.Errorf("promote_secondaries after the stop: %s", v)
	}
}

// TestRxBufSize: the advert socket's receive buffer is RxBufSize bytes
// and RxBufMTUs times the interface's MTU (the kernel reports twice what
// was asked, its bookkeeping included).
func TestRxBufSize(t *testing.T) {
	requireRoot(t)
	ns := fmt.Sprintf("vr%04drb", os.Getpid()%10000)
	addNetns(t, ns, false)
	run(t, "ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", "eth1", "netns", ns)
	ipn(t, ns, "link", "set", "eth0", "up")
	ipn(t, ns, "link", "set", "eth1", "up")
	ipn(t, ns, "addr", "add", "10.8.1.1/24", "dev", "eth0")
	sys, err := NewLinuxSystem(LinuxOptions{NetNS: ns})
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	for _, tc := range []struct {
		size, mtus int
		want       int
	}{
		{size: 50000, want: 50000},
		{mtus: 2, want: 1500 * 2},
		{size: 1000, mtus: 3, want: 1000 + 1500*3},
	} {
		cfg := InstanceConfig{Name: "R", Interface: "eth0", VRID: 13, Priority: 100, Version: 2, AdvertInterval: time.Second,
			VirtualIPs: []VirtualIP{{Prefix: netip.MustParsePrefix("10.8.1.100/24")}},
			RxBufSize:  tc.size, RxBufMTUs: tc.mtus}
		c, err := sys.OpenConn(context.Background(), &cfg)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := c.(*linuxConn).raw.(*net.IPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var got int
		rc.Control(func(fd uintptr) { got, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) })
		c.Close()
		if err != nil || got != 2*tc.want {
			t.Errorf("%+v: SO_RCVBUF %d (%v), want %d", tc, got, err, 2*tc.want)
		}
	}
}
