package vrrp

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func readSysctl(t *testing.T, ns, path string) string {
	t.Helper()
	var v string
	err := inNetns(ns, func() error {
		b, err := os.ReadFile("/proc/sys/" + path)
		v = strings.TrimSpace(string(b))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// dialName connects to addr (tcp4 or tcp6: network) from ns and returns
// the name its server sends.
func dialName(t *testing.T, ns, network, addr string) string {
	t.Helper()
	var who string
	err := inNetns(ns, func() error {
		c, err := net.DialTimeout(network, addr, time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Second))
		who, err = bufio.NewReader(c).ReadString('\n')
		who = strings.TrimSpace(who)
		return err
	})
	if err != nil {
		t.Fatalf("connect to %s from %s: %v", addr, ns, err)
	}
	return who
}

// TestVMAC: two govs nodes with use_vmac on a bridge. Both create the
// macvlan vrrp.61 with the virtual MAC 00:00:5e:00:01:3d; the MASTER
// holds the VIP on it, the BACKUP hears the MASTER's adverts through its
// own VMAC interface, the client learns the virtual MAC for the VIP and
// keeps it across a failover; a stopped node removes its VMAC interface
// and puts its parent's ARP settings back.
// With all.rp_filter=1 on both nodes, which keepalived clears (the
// BACKUP would drop the adverts it hears on its VMAC interface). The
// unicast variant sends the adverts through eth0 (vmac_xmit_base is
// implied: unicast adverts come to eth0's MAC).
func TestVMAC(t *testing.T) {
	t.Run("multicast", func(t *testing.T) { testVMAC(t, false) })
	t.Run("unicast", func(t *testing.T) { testVMAC(t, true) })
}

func testVMAC(t *testing.T, unicast bool) {
	requireRoot(t)
	p := fmt.Sprintf("vm%d", os.Getpid()%10000)
	sw, g1, g2, cl := p+"sw", p+"g1", p+"g2", p+"cl"
	for _, ns := range []string{sw, g1, g2, cl} {
		addNetns(t, ns, false)
	}
	ipn(t, sw, "link", "add", "br0", "type", "bridge")
	ipn(t, sw, "link", "set", "br0", "up")
	for i, h := range []struct{ ns, addr string }{{g1, "10.88.0.1/24"}, {g2, "10.88.0.2/24"}, {cl, "10.88.0.100/24"}} {
		plug(t, sw, "br0", fmt.Sprintf("p%d", i), h.ns, "eth0")
		ipn(t, h.ns, "addr", "add", h.addr, "dev", "eth0")
	}
	for _, ns := range []string{g1, g2} {
		run(t, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1")
	}
	serveName(t, g1, 8080, "g1")
	serveName(t, g2, 8080, "g2")
	cfg := func(prio int, peer string) InstanceConfig {
		c := InstanceConfig{
			Name: "VI_1", Interface: "eth0", VRID: 61, Priority: prio, Version: 3,
			AdvertInterval: 100 * time.Millisecond, GARPMasterDelay: time.Second, VMAC: "vrrp.61",
			VirtualIPs: []VirtualIP{{Prefix: netip.MustParsePrefix("10.88.0.50/24")}},
		}
		if unicast {
			c.UnicastPeers = []netip.Addr{netip.MustParseAddr(peer)}
		}
		return c
	}
	parentSettings := func() string {
		var v []string
		for _, kv := range parentARP {
			v = append(v, kv[0]+"="+readSysctl(t, g1, "net/ipv4/conf/eth0/"+kv[0]))
		}
		return strings.Join(v, " ")
	}
	before := parentSettings()
	rpBefore := readSysctl(t, g1, "net/ipv4/conf/eth0/rp_filter")
	a := startGovs(t, g1, cfg(150, "10.88.0.2"))
	b := startGovs(t, g2, cfg(100, "10.88.0.1"))
	if !waitFor(5*time.Second, func() bool { return a.status().State == StateMaster && b.status().State == StateBackup }) {
		t.Fatalf("roles: g1 %s, g2 %s", a.status().State, b.status().State)
	}
	vmac := net.HardwareAddr{0, 0, 0x5e, 0, 1, 61}
	for _, ns := range []string{g1, g2} {
		if mac := linkMAC(t, ns, "vrrp.61"); mac.String() != vmac.String() {
			t.Fatalf("%s: vrrp.61 has MAC %s, want %s", ns, mac, vmac)
		}
		if out := ipn(t, ns, "-d", "link", "show", "vrrp.61"); !strings.Contains(out, "vrrp.61@eth0") || !strings.Contains(out, "macvlan mode private") || !strings.Contains(out, "state UP") && !strings.Contains(out, ",UP") {
			t.Fatalf("%s: vrrp.61:\n%s", ns, out)
		}
	}
	if !hasAddr(t, g1, "vrrp.61", "10.88.0.50") || hasAddr(t, g1, "eth0", "10.88.0.50") || hasAddr(t, g2, "vrrp.61", "10.88.0.50") {
		t.Fatal("the VIP is not on the MASTER's VMAC interface alone")
	}
	for path, want := range map[string]string{
		"net/ipv4/conf/eth0/arp_ignore": "1", "net/ipv4/conf/eth0/arp_filter": "1", "net/ipv4/conf/eth0/arp_announce": "2",
		"net/ipv4/conf/vrrp.61/arp_ignore": "1", "net/ipv4/conf/vrrp.61/rp_filter": "0", "net/ipv4/conf/vrrp.61/accept_local": "1",
		"net/ipv4/conf/all/rp_filter": "0", "net/ipv4/conf/eth0/rp_filter": "1",
	} {
		if got := readSysctl(t, g1, path); got != want {
			t.Errorf("g1 %s = %s, want %s", path, got, want)
		}
	}
	if st := b.status(); st.MasterAddr != netip.MustParseAddr("10.88.0.1") || st.Counters.AdvertsReceived == 0 {
		t.Fatalf("g2 does not hear g1's adverts through its VMAC interface: %+v", st)
	}
	if who := dialName(t, cl, "tcp4", "10.88.0.50:8080"); who != "g1" {
		t.Fatalf("VIP answered by %q, want g1", who)
	}
	neigh := func() string {
		out := ipn(t, cl, "neigh", "show", "10.88.0.50")
		if f := strings.Fields(out); len(f) >= 5 && f[3] == "lladdr" {
			return f[4]
		}
		t.Fatalf("client's neighbour entry for the VIP: %q", out)
		return ""
	}
	if got := neigh(); got != vmac.String() {
		t.Fatalf("client resolved the VIP to %s, want the virtual MAC %s\n%s\n%s\n%s", got, vmac, ipn(t, g1, "-br", "link"), ipn(t, g2, "-br", "link"), ipn(t, cl, "neigh"))
	}

	a.stop()
	if !waitFor(3*time.Second, func() bool { return b.status().State == StateMaster }) {
		t.Fatalf("g2 did not take over: %s", b.status().State)
	}
	if out := ipn(t, g1, "-o", "link", "show"); strings.Contains(out, "vrrp.61") {
		t.Fatalf("g1 kept its VMAC interface after stopping:\n%s", out)
	}
	if after := parentSettings(); after != before {
		t.Fatalf("g1 eth0 %s after stop, %s before start", after, before)
	}
	if all, eth0 := readSysctl(t, g1, "net/ipv4/conf/all/rp_filter"), readSysctl(t, g1, "net/ipv4/conf/eth0/rp_filter"); all != "1" || eth0 != rpBefore {
		t.Fatalf("g1 rp_filter after stop: all %s (want 1), eth0 %s (want %s)", all, eth0, rpBefore)
	}
	if who := dialName(t, cl, "tcp4", "10.88.0.50:8080"); who != "g2" {
		t.Fatalf("VIP answered by %q after the failover, want g2", who)
	}
	if got := neigh(); got != vmac.String() {
		t.Fatalf("client's entry for the VIP became %s, want the virtual MAC still", got)
	}
}

// TestVMAC6: the same for an IPv6 instance (VMAC 00:00:5e:00:02:3d). The
// VMAC interface gets no link-local address from its MAC, and has the
// parent's only while MASTER: a BACKUP's would answer neighbour
// solicitations from the virtual MAC and draw the MASTER's traffic.
func TestVMAC6(t *testing.T) {
	requireRoot(t)
	p := fmt.Sprintf("v6%d", os.Getpid()%10000)
	sw, g1, g2, cl := p+"sw", p+"g1", p+"g2", p+"cl"
	for _, ns := range []string{sw, g1, g2, cl} {
		addNetns(t, ns, true)
	}
	ipn(t, sw, "link", "add", "br0", "type", "bridge")
	ipn(t, sw, "link", "set", "br0", "up")
	for i, h := range []struct{ ns, addr string }{{g1, "fd88::1/64"}, {g2, "fd88::2/64"}, {cl, "fd88::100/64"}} {
		plug(t, sw, "br0", fmt.Sprintf("p%d", i), h.ns, "eth0")
		ipn(t, h.ns, "addr", "add", h.addr, "dev", "eth0", "nodad")
	}
	for _, h := range []struct{ ns, name string }{{g1, "g1"}, {g2, "g2"}} {
		var ln net.Listener
		if err := inNetns(h.ns, func() (err error) { ln, err = net.Listen("tcp6", "[::]:8080"); return err }); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func(name string) {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				fmt.Fprintln(c, name)
				c.Close()
			}
		}(h.name)
	}
	cfg := func(prio int) InstanceConfig {
		return InstanceConfig{
			Name: "VI_6", Interface: "eth0", VRID: 61, Priority: prio, Version: 3,
			AdvertInterval: 100 * time.Millisecond, GARPMasterDelay: time.Second, VMAC: "vrrp.61",
			VirtualIPs: []VirtualIP{{Prefix: netip.MustParsePrefix("fd88::50/64"), NoDAD: true}},
		}
	}
	a := startGovs(t, g1, cfg(150))
	b := startGovs(t, g2, cfg(100))
	if !waitFor(5*time.Second, func() bool { return a.status().State == StateMaster && b.status().State == StateBackup }) {
		t.Fatalf("roles: g1 %s, g2 %s", a.status().State, b.status().State)
	}
	vmac := "00:00:5e:00:02:3d"
	addrs := func(ns string) string { return ipn(t, ns, "-6", "-o", "addr", "show", "dev", "vrrp.61") }
	for _, ns := range []string{g1, g2} {
		if mac := linkMAC(t, ns, "vrrp.61"); mac.String() != vmac {
			t.Fatalf("%s: vrrp.61 has MAC %s, want %s", ns, mac, vmac)
		}
	}
	if out := addrs(g1); !strings.Contains(out, "fe80::") || !strings.Contains(out, "fd88::50/64") {
		t.Fatalf("the MASTER's vrrp.61:\n%s", out)
	}
	if out := addrs(g2); strings.TrimSpace(out) != "" {
		t.Fatalf("the BACKUP's vrrp.61 has addresses:\n%s", out)
	}
	if st := b.status(); !st.MasterAddr.IsLinkLocalUnicast() || st.Counters.AdvertsReceived == 0 {
		t.Fatalf("g2 does not hear g1's adverts: %+v", st)
	}
	if who := dialName(t, cl, "tcp6", "[fd88::50]:8080"); who != "g1" {
		t.Fatalf("VIP answered by %q, want g1", who)
	}
	if out := ipn(t, cl, "-6", "neigh", "show", "fd88::50"); !strings.Contains(out, "lladdr "+vmac) {
		t.Fatalf("client's neighbour entry for the VIP: %q, want the virtual MAC", out)
	}
	a.stop()
	if !waitFor(3*time.Second, func() bool { return b.status().State == StateMaster }) {
		t.Fatalf("g2 did not take over: %s", b.status().State)
	}
	if out := addrs(g2); !strings.Contains(out, "fe80::") || !strings.Contains(out, "fd88::50/64") {
		t.Fatalf("the new MASTER's vrrp.61:\n%s", out)
	}
	if who := dialName(t, cl, "tcp6", "[fd88::50]:8080"); who != "g2" {
		t.Fatalf("VIP answered by %q after the failover, want g2", who)
	}
}

// TestInterfaceLater: an instance whose interface does not exist when
// govs starts (a VLAN or bond made later at boot) starts in FAULT instead
// of failing, and takes over once the interface appears.
func TestInterfaceLater(t *testing.T) {
	requireRoot(t)
	ns := fmt.Sprintf("il%d", os.Getpid()%10000)
	addNetns(t, ns, false)
	g := startGovs(t, ns, InstanceConfig{
		Name: "VI_L", Interface: "late0", VRID: 71, Priority: 100, Version: 3,
		AdvertInterval: 100 * time.Millisecond, GARPMasterDelay: time.Second,
		VirtualIPs: []VirtualIP{{Prefix: netip.MustParsePrefix("10.89.0.50/24")}},
	})
	time.Sleep(1500 * time.Millisecond)
	if st := g.status(); st.State != StateFault {
		t.Fatalf("without its interface: %s", st.State)
	}
	ipn(t, ns, "link", "add", "late0", "type", "veth", "peer", "name", "late1")
	ipn(t, ns, "addr", "add", "10.89.0.1/24", "dev", "late0")
	ipn(t, ns, "link", "set", "late1", "up")
	ipn(t, ns, "link", "set", "late0", "up")
	if !waitFor(3*time.Second, func() bool { return g.status().State == StateMaster }) {
		t.Fatalf("once late0 appeared: %+v", g.status())
	}
	if !hasAddr(t, ns, "late0", "10.89.0.50") || g.status().LocalAddr != netip.MustParseAddr("10.89.0.1") {
		t.Fatalf("VIP or source after the interface appeared: %+v", g.status())
	}
}

// TestSourceAddressGone: the adverts' source address is deleted under a
// MASTER. Chosen by govs, another address of the interface takes its
// place with no change of state; with track_src_ip the instance goes to
// FAULT until the address is back; a unicast_src_ip not there at start
// holds the instance in FAULT until it is added.
func TestSourceAddressGone(t *testing.T) {
	requireRoot(t)
	cases := []struct {
		name  string
		mod   func(*InstanceConfig)
		early bool // the source is added only after the start
	}{
		{"chosen", func(*InstanceConfig) {}, false},
		{"track_src_ip", func(c *InstanceConfig) { c.TrackSrcIP = true }, false},
		{"unicast_src_ip later", func(c *InstanceConfig) { c.UnicastSrcIP = netip.MustParseAddr("10.90.0.1") }, true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := fmt.Sprintf("sg%d%d", os.Getpid()%10000, i)
			addNetns(t, ns, false)
			ipn(t, ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
			if !tc.early {
				ipn(t, ns, "addr", "add", "10.90.0.1/24", "dev", "eth0")
			}
			ipn(t, ns, "addr", "add", "10.91.0.1/24", "dev", "eth0")
			ipn(t, ns, "link", "set", "eth1", "up")
			ipn(t, ns, "link", "set", "eth0", "up")
			cfg := InstanceConfig{
				Name: "VI_S", Interface: "eth0", VRID: 72, Priority: 100, Version: 3,
				AdvertInterval: 100 * time.Millisecond, GARPMasterDelay: time.Second,
				VirtualIPs: []VirtualIP{{Prefix: netip.MustParsePrefix("10.90.0.50/24")}},
			}
			tc.mod(&cfg)
			g := startGovs(t, ns, cfg)
			src := netip.MustParseAddr("10.90.0.1")
			if tc.early {
				time.Sleep(1500 * time.Millisecond)
				if st := g.status(); st.State != StateFault {
					t.Fatalf("without its unicast_src_ip: %s", st.State)
				}
				ipn(t, ns, "addr", "add", "10.90.0.1/24", "dev", "eth0")
				if !waitFor(3*time.Second, func() bool { return g.status().State == StateMaster }) {
					t.Fatalf("once its source was added: %+v", g.status())
				}
				return
			}
			if !waitFor(3*time.Second, func() bool { return g.status().State == StateMaster }) {
				t.Fatalf("not MASTER: %+v", g.status())
			}
			if st := g.status(); st.LocalAddr != src {
				t.Fatalf("source %s, want %s", st.LocalAddr, src)
			}
			n := len(g.status().Transitions)
			ipn(t, ns, "addr", "del", "10.90.0.1/24", "dev", "eth0")
			if !cfg.TrackSrcIP {
				if !waitFor(3*time.Second, func() bool { return g.status().LocalAddr == netip.MustParseAddr("10.91.0.1") }) {
					t.Fatalf("source after 10.90.0.1 went: %+v", g.status())
				}
				time.Sleep(500 * time.Millisecond)
				if st := g.status(); st.State != StateMaster || len(st.Transitions) != n {
					t.Fatalf("a new source should change no state: %s %v", st.State, st.Transitions)
				}
				return
			}
			if !waitFor(3*time.Second, func() bool { return g.status().State == StateFault }) {
				t.Fatalf("track_src_ip after its source went: %+v", g.status())
			}
			ipn(t, ns, "addr", "add", "10.90.0.1/24", "dev", "eth0")
			if !waitFor(3*time.Second, func() bool { return g.status().State == StateMaster }) {
				t.Fatalf("track_src_ip once its source was back: %+v", g.status())
			}
			if st := g.status(); st.LocalAddr != src {
				t.Fatalf("source %s after it came back, want %s", st.LocalAddr, src)
			}
		})
	}
}

// TestVIPDeletedByOthers: a MASTER puts back, within about a second, a
// virtual address someone else deleted (and announces it), with no change
// of state; one with no_track is left deleted.
func TestVIPDeletedByOthers(t *testing.T) {
	requireRoot(t)
	ns := fmt.Sprintf("vd%d", os.Getpid()%10000)
	addNetns(t, ns, true) // (IPv6 for a route)
	ipn(t, ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
	ipn(t, ns, "addr", "add", "10.92.0.1/24", "dev", "eth0")
	ipn(t, ns, "link", "set", "eth1", "up")
	ipn(t, ns, "link", "set", "eth0", "up")
	g := startGovs(t, ns, InstanceConfig{
		Name: "VI_D", Interface: "eth0", VRID: 73, Priority: 100, Version: 3,
		AdvertInterval: 100 * time.Millisecond, GARPMasterDelay: time.Second,
		VirtualIPs: []VirtualIP{{Prefix: netip.MustParsePrefix("10.92.0.50/24")}, {Prefix: netip.MustParsePrefix("10.92.0.51/24"), NoTrack: true}},
		VirtualRoutes: []VirtualRoute{
			{Dst: netip.MustParsePrefix("10.95.0.0/16"), Via: netip.MustParseAddr("10.92.0.254")},
			{Dst: netip.MustParsePrefix("10.96.0.0/16"), Via: netip.MustParseAddr("10.92.0.254"), NoTrack: true},
			{Dst: netip.MustParsePrefix("2001:db8:95::/64"), Dev: "eth0"}, // listed with the kernel's metric 1024
			{Dst: netip.MustParsePrefix("10.97.0.0/16"), Type: "blackhole", Table: 100},
		},
		VirtualRules: []VirtualRule{{From: netip.MustParsePrefix("10.92.0.50/32"), Table: 100, Priority: 1000}},
	})
	if !waitFor(3*time.Second, func() bool { return g.status().State == StateMaster }) {
		t.Fatalf("not MASTER: %+v", g.status())
	}
	n := len(g.status().Transitions)
	// installed routes are found as they are: nothing is put back
	time.Sleep(2500 * time.Millisecond)
	if c := g.status().Counters; c.RoutesRestored != 0 {
		t.Fatalf("%d routes or rules put back while all were there", c.RoutesRestored)
	}
	ipn(t, ns, "addr", "del", "10.92.0.50/24", "dev", "eth0")
	ipn(t, ns, "addr", "del", "10.92.0.51/24", "dev", "eth0")
	ipn(t, ns, "route", "del", "10.95.0.0/16")
	ipn(t, ns, "route", "del", "10.96.0.0/16")
	ipn(t, ns, "-6", "route", "del", "2001:db8:95::/64")
	ipn(t, ns, "route", "del", "blackhole", "10.97.0.0/16", "table", "100")
	ipn(t, ns, "rule", "del", "priority", "1000")
	if !waitFor(3*time.Second, func() bool { return hasAddr(t, ns, "eth0", "10.92.0.50") }) {
		t.Fatal("the deleted VIP was not put back")
	}
	routes := func() string {
		return ipn(t, ns, "route", "show") + ipn(t, ns, "-6", "route", "show") + ipn(t, ns, "route", "show", "table", "100") + ipn(t, ns, "rule", "show")
	}
	want := []string{"10.95.0.0/16 via 10.92.0.254", "2001:db8:95::/64 dev eth0", "blackhole 10.97.0.0/16", "1000:\tfrom 10.92.0.50 lookup 100"}
	if !waitFor(3*time.Second, func() bool {
		r := routes()
		return !slices.ContainsFunc(want, func(w string) bool { return !strings.Contains(r, w) })
	}) {
		t.Fatalf("the deleted routes and rule were not all put back (want %q):\n%s", want, routes())
	}
	time.Sleep(2500 * time.Millisecond)
	if hasAddr(t, ns, "eth0", "10.92.0.51") {
		t.Fatal("a no_track VIP was put back")
	}
	if r := routes(); strings.Contains(r, "10.96.0.0/16") {
		t.Fatalf("a no_track route was put back:\n%s", r)
	}
	st := g.status()
	if st.State != StateMaster || len(st.Transitions) != n || st.Counters.AddressesRestored != 1 || st.Counters.RoutesRestored != 4 {
		t.Fatalf("after the VIP and routes were put back: %s, transitions %v, addresses restored %d, routes %d (want 1, 4)",
			st.State, st.Transitions, st.Counters.AddressesRestored, st.Counters.RoutesRestored)
	}
}

// TestStaticAddresses: static_ipaddress and static_routes are installed
// at start whatever the VRRP state, put back when someone deletes an
// address or a route, changed by a reload, kept when VRRP stops and
// removed by RemoveStatic (the director's final stop).
func TestStaticAddresses(t *testing.T) {
	requireRoot(t)
	ns := fmt.Sprintf("st%d", os.Getpid()%10000)
	addNetns(t, ns, false)
	ipn(t, ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
	ipn(t, ns, "addr", "add", "10.93.0.1/24", "dev", "eth0")
	ipn(t, ns, "link", "set", "eth1", "up")
	ipn(t, ns, "link", "set", "eth0", "up")
	static := StaticConfig{
		Addresses: []VirtualIP{{Prefix: netip.MustParsePrefix("10.93.0.7/24"), Dev: "eth0"}},
		Routes:    []VirtualRoute{{Dst: netip.MustParsePrefix("10.94.0.0/16"), Via: netip.MustParseAddr("10.93.0.254")}},
	}
	cfg := InstanceConfig{
		Name: "VI_S", Interface: "eth0", VRID: 74, Priority: 100, Version: 3,
		AdvertInterval: 100 * time.Millisecond, GARPMasterDelay: time.Second, DontTrackPrimary: true,
		VirtualIPs: []VirtualIP{{Prefix: netip.MustParsePrefix("10.93.0.50/24")}},
	}
	// a node of its own: its system stays open after Run for RemoveStatic
	sys, err := NewLinuxSystem(LinuxOptions{NetNS: ns})
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	node, err := NewNode(Options{Instances: []InstanceConfig{cfg}, System: sys, Static: static})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Run(ctx) }()
	defer func() { cancel(); <-done }()
	routes := func() string { return ipn(t, ns, "route", "show") }
	if !waitFor(2*time.Second, func() bool { return hasAddr(t, ns, "eth0", "10.93.0.7") }) {
		t.Fatal("the static address was not installed")
	}
	if r := routes(); !strings.Contains(r, "10.94.0.0/16 via 10.93.0.254") {
		t.Fatalf("the static route was not installed:\n%s", r)
	}
	ipn(t, ns, "addr", "del", "10.93.0.7/24", "dev", "eth0")
	ipn(t, ns, "route", "del", "10.94.0.0/16")
	if !waitFor(3*time.Second, func() bool { return hasAddr(t, ns, "eth0", "10.93.0.7") }) {
		t.Fatal("the deleted static address was not put back")
	}
	if !waitFor(3*time.Second, func() bool { return strings.Contains(routes(), "10.94.0.0/16 via 10.93.0.254") }) {
		t.Fatalf("the deleted static route was not put back:\n%s", routes())
	}
	// a reload: the route goes, another address comes
	next := StaticConfig{Addresses: []VirtualIP{static.Addresses[0], {Prefix: netip.MustParsePrefix("10.93.0.8/24"), Dev: "eth0"}}}
	if err := node.Reload(context.Background(), Options{Instances: []InstanceConfig{cfg}, Static: next}); err != nil {
		t.Fatal(err)
	}
	if !hasAddr(t, ns, "eth0", "10.93.0.8") || strings.Contains(routes(), "10.94.0.0/16") {
		t.Fatalf("after the reload:\n%s\n%s", ipn(t, ns, "-o", "addr", "show", "dev", "eth0"), routes())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil // for the deferred wait
	if !hasAddr(t, ns, "eth0", "10.93.0.7") {
		t.Fatal("static addresses removed when VRRP stopped (a lame-duck stop must keep them)")
	}
	if err := node.RemoveStatic(context.Background()); err != nil {
		t.Fatal(err)
	}
	if hasAddr(t, ns, "eth0", "10.93.0.7") || hasAddr(t, ns, "eth0", "10.93.0.8") {
		t.Fatalf("static addresses left after stop:\n%s", ipn(t, ns, "-o", "addr", "show", "dev", "eth0"))
	}
}

// TestInterfaceMadeAnew: the MASTER's interface is deleted and made
// again (a new index). Its socket, bound to the old index, would neither
// send nor receive: the MASTER would go on unheard beside the BACKUP that
// took over. govs opens the socket anew (and the use_vmac interface, with
// the parent's settings) and the pair settles with one MASTER.
func TestInterfaceMadeAnew(t *testing.T) {
	requireRoot(t)
	for i, vmac := range []bool{false, true} {
		t.Run(fmt.Sprintf("use_vmac=%v", vmac), func(t *testing.T) {
			p := fmt.Sprintf("ma%d%d", os.Getpid()%10000, i)
			sw, g1, g2 := p+"sw", p+"g1", p+"g2"
			for _, ns := range []string{sw, g1, g2} {
				addNetns(t, ns, false)
			}
			ipn(t, sw, "link", "add", "br0", "type", "bridge")
			ipn(t, sw, "link", "set", "br0", "up")
			plug(t, sw, "br0", "p1", g1, "eth0")
			ipn(t, g1, "addr", "add", "10.86.0.1/24", "dev", "eth0")
			plug(t, sw, "br0", "p2", g2, "eth0")
			ipn(t, g2, "addr", "add", "10.86.0.2/24", "dev", "eth0")
			cfg := func(prio int) InstanceConfig {
				c := InstanceConfig{
					Name: "VI_A", Interface: "eth0", VRID: 62, Priority: prio, Version: 3,
					AdvertInterval: 100 * time.Millisecond, GARPMasterDelay: time.Second,
					VirtualIPs: []VirtualIP{{Prefix: netip.MustParsePrefix("10.86.0.50/24")}},
				}
				if vmac {
					c.VMAC = "vrrp.62"
				}
				return c
			}
			vipDev := "eth0"
			if vmac {
				vipDev = "vrrp.62"
			}
			a := startGovs(t, g1, cfg(150))
			b := startGovs(t, g2, cfg(100))
			settled := func() bool {
				return a.status().State == StateMaster && b.status().State == StateBackup &&
					hasAddr(t, g1, vipDev, "10.86.0.50") && !hasAddr(t, g2, vipDev, "10.86.0.50")
			}
			if !waitFor(5*time.Second, settled) {
				t.Fatalf("roles: g1 %s, g2 %s", a.status().State, b.status().State)
			}
			ipn(t, g1, "link", "del", "eth0")
			if !waitFor(3*time.Second, func() bool { return b.status().State == StateMaster }) {
				t.Fatalf("g2 did not take over: %s", b.status().State)
			}
			plug(t, sw, "br0", "p1", g1, "eth0")
			ipn(t, g1, "addr", "add", "10.86.0.1/24", "dev", "eth0")
			if !waitFor(6*time.Second, settled) {
				t.Fatalf("after eth0 was made anew: g1 %s (%+v), g2 %s", a.status().State, a.status().Counters, b.status().State)
			}
			if vmac {
				if v := readSysctl(t, g1, "net/ipv4/conf/eth0/arp_announce"); v != "2" {
					t.Errorf("the new parent's arp_announce is %s, want 2", v)
				}
			}
			// and it stays so: g1's adverts reach g2
			time.Sleep(time.Second)
			if !settled() {
				t.Fatalf("a second later: g1 %s, g2 %s", a.status().State, b.status().State)
			}
		})
	}
}

// TestGARPExtraIf: with use_vmac and the adverts leaving by the parent
// (vmac_xmit_base), nothing refreshes the virtual MAC in switches but
// garp_extra_if: one GARP from the VMAC interface every interval while
// MASTER.
func TestGARPExtraIfVMAC(t *testing.T) {
	requireRoot(t)
	ns := fmt.Sprintf("gx%d", os.Getpid()%10000)
	addNetns(t, ns, false)
	ipn(t, ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
	ipn(t, ns, "addr", "add", "10.84.0.1/24", "dev", "eth0")
	ipn(t, ns, "link", "set", "eth1", "up")
	ipn(t, ns, "link", "set", "eth0", "up")
	capt := startCapture(t, ns, "eth1")
	g := startGovs(t, ns, InstanceConfig{
		Name: "VI_X", Interface: "eth0", VRID: 63, Priority: 100, Version: 3,
		AdvertInterval: 100 * time.Millisecond, NoGARPDelay: true, GARPMasterRepeat: 1,
		VMAC: "vrrp.63", VMACXmitBase: true, GARPExtraIf: time.Second,
		VirtualIPs: []VirtualIP{{Prefix: netip.MustParsePrefix("10.84.0.50/24")}},
	})
	if !waitFor(3*time.Second, func() bool { return g.status().State == StateMaster }) {
		t.Fatalf("not MASTER: %+v", g.status())
	}
	master := time.Now()
	time.Sleep(3500 * time.Millisecond)
	vmac := net.HardwareAddr{0, 0, 0x5e, 0, 1, 63}
	var after []time.Duration
	for _, at := range capt.garps(vmac, netip.MustParseAddr("10.84.0.50")) {
		after = append(after, at.Sub(master).Round(100*time.Millisecond))
	}
	// one on becoming MASTER, then one a second
	if len(after) < 4 || len(after) > 5 {
		t.Fatalf("GARPs from the virtual MAC at %v after MASTER, want one then one a second", after)
	}
}
