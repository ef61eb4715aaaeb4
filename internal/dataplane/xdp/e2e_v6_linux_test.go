package xdp

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/govs/govs/internal/dataplane"
)

// TestEndToEndIPv6: DR, IP6IP6 tunnelling and source NAT over IPv6 in
// namespaces (prefix xd6): client, director and two real servers on one
// bridge, the DR and TUN VIPs on the real servers' lo, the decapsulation
// program on their eth0. The SNAT service's real servers answer the
// director's own address (the default pool), and the director sends
// the replies on from its IPv6 flow cache after each connection's first.
func TestEndToEndIPv6(t *testing.T) {
	requireRoot(t)
	l := &lab{t: t, prefix: "xd6"}
	t.Cleanup(l.close)
	const (
		dirAddr = "fd77::2"
		vipDR   = "fd77:1::100"
		vipTUN  = "fd77:1::101"
		vipSNAT = "fd77:1::102"
	)
	addNS := func(ns string) {
		l.addNS(ns)
		l.in(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=0", "net.ipv6.conf.default.disable_ipv6=0")
	}
	addNS("br")
	l.in("br", "ip", "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
	l.in("br", "ip", "link", "set", "br0", "up")
	plug := func(ns, addr string) string {
		peer := "xd6" + ns
		l.sh("ip", "link", "add", "eth0", "netns", l.name(ns), "type", "veth", "peer", "name", peer, "netns", l.name("br"))
		l.in("br", "ip", "link", "set", peer, "master", "br0", "up")
		l.in(ns, "ip", "link", "set", "eth0", "up")
		l.in(ns, "ip", "-6", "addr", "add", addr+"/64", "dev", "eth0", "nodad")
		return peer
	}
	addNS("cl")
	plug("cl", "fd77::10")
	l.in("cl", "ip", "-6", "route", "add", "fd77:1::/64", "via", dirAddr)
	l.in("cl", "ethtool", "-K", "eth0", "tx", "off")
	addNS("dir")
	l.attachPass("br", plug("dir", dirAddr))
	var reals []netip.Addr
	for i := 1; i <= 2; i++ {
		ns := fmt.Sprintf("rs%d", i)
		addNS(ns)
		addr := fmt.Sprintf("fd77::%d", 10+i)
		plug(ns, addr)
		l.in(ns, "ethtool", "-K", "eth0", "tx", "off") // SNAT replies cross XDP (netns-testbed.md)
		reals = append(reals, netip.MustParseAddr(addr))
		l.in(ns, "ip", "-6", "addr", "add", vipDR+"/128", "dev", "lo")
		l.in(ns, "ip", "-6", "addr", "add", vipTUN+"/128", "dev", "lo")
		name := ns
		l.inNS(ns, func() {
			ln, err := net.Listen("tcp6", "[::]:80")
			if err != nil {
				t.Fatalf("listen: %v", err)
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })}
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close() })
			dc, err := NewDecap(DecapOptions{Interface: "eth0", VIPs: []netip.Addr{netip.MustParseAddr(vipTUN)}, PinPath: "/sys/fs/bpf/xd6-decap-" + ns})
			if err != nil {
				t.Fatalf("decap: %v", err)
			}
			t.Cleanup(func() { dc.Close() })
		})
	}
	// IPv6 neighbour discovery right after the links come up can take a
	// retransmission (1 s) or two; settle it before timing requests
	for i, a := range reals {
		l.in("dir", "ping", "-6", "-c", "1", "-W", "3", a.String())
		l.in(fmt.Sprintf("rs%d", i+1), "ping", "-6", "-c", "1", "-W", "3", "fd77::10")
		l.in(fmt.Sprintf("rs%d", i+1), "ping", "-6", "-c", "1", "-W", "3", dirAddr)
	}
	// the SNAT replies' route to the client: bpf_fib_lookup needs
	// forwarding on the interface, as IPVS NAT does, and the client's
	// neighbour entry
	l.in("dir", "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
	l.in("dir", "ping", "-6", "-c", "1", "-W", "3", "fd77::10")
	var d *Dataplane
	l.inNS("dir", func() {
		var err error
		d, err = New(Options{Interfaces: []string{"eth0"}, PinPath: "/sys/fs/bpf/xd6-e2e", SyncInterval: 200 * time.Millisecond})
		if err != nil {
			t.Fatalf("new: %v", err)
		}
	})
	t.Cleanup(func() { d.Close() })
	mk := func(vip string, m dataplane.Method) dataplane.Service {
		s := dataplane.Service{Key: dataplane.ServiceKey{Proto: dataplane.TCP, Addr: netip.MustParseAddr(vip), Port: 80}, Scheduler: "rr"}
		for _, a := range reals {
			s.RealServers = append(s.RealServers, dataplane.RealServer{Addr: netip.AddrPortFrom(a, 80), Weight: 1, Method: m})
		}
		return s
	}
	if err := d.Apply(context.Background(), []dataplane.Service{mk(vipDR, dataplane.DR), mk(vipTUN, dataplane.TUN), mk(vipSNAT, dataplane.SNAT)}); err != nil {
		t.Fatalf("apply: %v", err)
	}
	c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DialContext: l.dialerFor("cl"), DisableKeepAlives: true}}
	for _, vip := range []string{vipDR, vipTUN, vipSNAT} {
		seen := map[string]int{}
		for i := range 10 {
			body, err := get(c, "http://["+vip+"]/")
			if err != nil {
				ex, _ := d.Exits()
				t.Fatalf("%s request %d: %v\nexits %v", vip, i, err, nonZero(ex))
			}
			seen[body]++
		}
		if seen["rs1"] != 5 || seen["rs2"] != 5 {
			t.Errorf("%s: answers %v, want 5 each", vip, seen)
		}
	}
	copies := 0
	var e lbFcEntry6
	for k := range d.objs.FlowCache6.MaxEntries() {
		if err := d.objs.FlowCache6.Lookup(k, &e); err != nil {
			t.Fatal(err)
		}
		if e.Key.Family != 0 && e.C.State == 0xff { // FC_NAT_REPLY
			copies++
		}
	}
	ex, _ := d.Exits()
	if copies == 0 {
		t.Errorf("no SNAT reply copied into flow_cache6; exits %v", nonZero(ex))
	}
	if ex["tx_nat_reply"]+ex["redirect_nat_reply"] == 0 {
		t.Errorf("no SNAT reply sent by the program; exits %v", nonZero(ex))
	}
}
