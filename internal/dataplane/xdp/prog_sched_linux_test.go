package xdp

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/sched"
)

var macToReal = func(rs ...netip.AddrPort) map[[6]byte]netip.AddrPort {
	m := map[[6]byte]netip.AddrPort{}
	for _, r := range rs {
		m[realMAC(r.Addr())] = r
	}
	return m
}

// pool returns n DR real servers 10.0.0.1.. with the given weights.
func pool(weights ...int) []dataplane.RealServer {
	out := make([]dataplane.RealServer, len(weights))
	for i, w := range weights {
		out[i] = rsv(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 80), w, dataplane.DR)
	}
	return out
}

func addrs(rs []dataplane.RealServer) []netip.AddrPort {
	out := make([]netip.AddrPort, len(rs))
	for i, r := range rs {
		out[i] = r.Addr
	}
	return out
}

// TestHashSchedulersMatchSched: for sh, dh and mh (with flags) the real
// server the program picks for each flow is exactly internal/sched's.
func TestHashSchedulersMatchSched(t *testing.T) {
	tests := []struct {
		name  string
		sched string
		flags []string
		size  int
		w     []int
		v6    bool
	}{
		{"sh", "sh", nil, 0, []int{1, 2, 3}, false},
		{"sh-port", "sh", []string{"sh-port"}, 0, []int{1, 1}, false},
		{"sh weight0 fallback", "sh", []string{"sh-fallback"}, 0, []int{1, 0, 1}, false},
		{"sh weight0 no fallback", "sh", nil, 0, []int{1, 0, 1}, false},
		{"dh", "dh", nil, 0, []int{1, 1, 1}, false},
		{"mh small table", "mh", nil, 251, []int{1, 1, 2}, false},
		{"mh-port", "mh", []string{"mh-port"}, 251, []int{3, 1}, false},
		{"mh default table", "mh", nil, 0, []int{1, 1, 1, 1}, false},
		{"sh ipv6", "sh", nil, 0, []int{1, 1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := newTDP(t, Options{})
			reals := pool(tt.w...)
			vip := vip4
			if tt.v6 {
				vip = vip6
				for i := range reals {
					reals[i].Addr = netip.AddrPortFrom(netip.AddrFrom16([16]byte{0xfd, 15: byte(i + 1)}), 80)
				}
			}
			s := svc(dataplane.TCP, vip, 80, tt.sched, reals...)
			s.SchedFlags, s.MHTableSize = tt.flags, tt.size
			x.apply(s)

			ref, err := sched.New(tt.sched, schedOptions(s))
			if err != nil {
				t.Fatal(err)
			}
			var dests []*sched.Dest
			for _, r := range reals {
				dests = append(dests, sched.NewDest(r.Addr, r.Weight))
			}
			ref.Update(dests)
			byMAC := macToReal(addrs(reals)...)
			for i := range 300 {
				c := netip.AddrFrom4([4]byte{198, 51, byte(i / 200), byte(i * 7)})
				if tt.v6 {
					c = netip.AddrFrom16([16]byte{0x20, 0x01, 0xd, 0xb8, 7: byte(i), 15: byte(i * 13)})
				}
				port := uint16(1024 + i*31)
				want := ref.Pick(sched.Flow{Proto: sched.TCP, Src: netip.AddrPortFrom(c, port), Dst: netip.AddrPortFrom(vip, 80)})
				ret, out := x.run(syn(c, port, vip, 80).frame())
				if want == nil {
					if ret != xdpDrop {
						t.Fatalf("flow %s:%d: sched has no server, program verdict %d", c, port, ret)
					}
					continue
				}
				if ret != xdpTX {
					t.Fatalf("flow %s:%d: verdict %d, sched picks %s", c, port, ret, want.Addr)
				}
				if got := byMAC[dstMAC(out)]; got != want.Addr {
					t.Fatalf("flow %s:%d: program picked %s, sched %s", c, port, got, want.Addr)
				}
			}
		})
	}
}

// newConns opens n connections from distinct clients and counts them per
// real server.
func newConns(x *tdp, n int, vip netip.Addr, port uint16, start int) map[[6]byte]int {
	got := map[[6]byte]int{}
	for i := range n {
		c := netip.AddrFrom4([4]byte{198, 18, byte((start + i) >> 8), byte(start + i)})
		ret, out := x.run(syn(c, 40000, vip, port).frame())
		if ret == xdpTX {
			got[dstMAC(out)]++
		} else {
			got[[6]byte{}]++
		}
	}
	return got
}

// TestRingSchedulers: the cursor schedulers distribute new connections as
// sched does.
func TestRingSchedulers(t *testing.T) {
	tests := []struct {
		sched string
		w     []int
		n     int
		want  []int // connections per real server
	}{
		{"rr", []int{1, 1, 1}, 300, []int{100, 100, 100}},
		{"wrr", []int{3, 1}, 400, []int{300, 100}},
		{"wrr", []int{2, 0, 1}, 300, []int{200, 0, 100}},
		{"lc", []int{1, 1}, 200, []int{100, 100}},
		{"wlc", []int{2, 1}, 300, []int{200, 100}},
		{"sed", []int{1, 1}, 100, []int{50, 50}},
		{"nq", []int{1, 1}, 100, []int{50, 50}},
		{"fo", []int{1, 5, 2}, 100, []int{0, 100, 0}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s%v", tt.sched, tt.w), func(t *testing.T) {
			x := newTDP(t, Options{})
			reals := pool(tt.w...)
			x.apply(svc(dataplane.TCP, vip4, 80, tt.sched, reals...))
			got := newConns(x, tt.n, vip4, 80, 0)
			for i, r := range reals {
				if g := got[realMAC(r.Addr.Addr())]; g != tt.want[i] {
					t.Errorf("%s got %d connections, want %d (all: %v)", r.Addr, g, tt.want[i], got)
				}
			}
		})
	}
}

// TestLeastConnFollowsLiveCounts: after a sync the ring reflects the
// connections the table holds (a loaded server gets fewer new ones).
func TestLeastConnFollowsLiveCounts(t *testing.T) {
	x := newTDP(t, Options{RingSize: 64})
	reals := pool(1, 1)
	x.apply(svc(dataplane.TCP, vip4, 80, "lc", reals[0]))
	for i := range 40 { // 40 established connections on 10.0.0.1
		p := syn(client(i+1), 40000, vip4, 80)
		x.run(p.frame())
		p.flags = tcpACK
		x.run(p.frame())
	}
	x.apply(svc(dataplane.TCP, vip4, 80, "lc", reals...))
	x.stats() // sync: 40 active on .1, 0 on .2
	got := newConns(x, 40, vip4, 80, 1000)
	if g := got[realMAC(reals[1].Addr.Addr())]; g != 40 {
		t.Errorf("lc sent %d of 40 new connections to the idle server, want all (%v)", g, got)
	}
}

// TestWeightZeroAndSorry: a quiescent server takes no new connections but
// keeps its established ones; the sorry server takes over only when no
// real server can; without it new connections are dropped.
func TestWeightZeroAndSorry(t *testing.T) {
	x := newTDP(t, Options{})
	reals := pool(1, 1)
	x.apply(svc(dataplane.TCP, vip4, 80, "rr", reals...))
	est := syn(client(1), 40000, vip4, 80)
	out := x.expect(est.frame(), xdpTX, "tx_dr")
	owner := dstMAC(out)

	// quiesce the owner of the established connection
	for i := range reals {
		if realMAC(reals[i].Addr.Addr()) == owner {
			reals[i].Weight = 0
		}
	}
	x.apply(svc(dataplane.TCP, vip4, 80, "rr", reals...))
	est.flags = tcpACK
	if out := x.expect(est.frame(), xdpTX, "tx_dr"); dstMAC(out) != owner {
		t.Errorf("established connection moved off its quiescent server")
	}
	got := newConns(x, 20, vip4, 80, 0)
	if got[owner] != 0 {
		t.Errorf("quiescent server got %d new connections", got[owner])
	}

	// all quiescent, no sorry server: dropped
	reals[0].Weight, reals[1].Weight = 0, 0
	x.apply(svc(dataplane.TCP, vip4, 80, "rr", reals...))
	x.expect(syn(client(50), 1, vip4, 80).frame(), xdpDrop, "drop_no_dest")

	// with a sorry server
	sorry := rsv(netip.MustParseAddrPort("10.0.0.99:80"), 1, dataplane.DR)
	s := svc(dataplane.TCP, vip4, 80, "rr", reals...)
	s.Sorry = &sorry
	x.apply(s)
	if out := x.expect(syn(client(51), 1, vip4, 80).frame(), xdpTX, "tx_dr"); dstMAC(out) != realMAC(sorry.Addr.Addr()) {
		t.Errorf("sorry server not used")
	}
	// a real server back: the sorry server stops taking new connections
	reals[1].Weight = 1
	s = svc(dataplane.TCP, vip4, 80, "rr", reals...)
	s.Sorry = &sorry
	x.apply(s)
	if out := x.expect(syn(client(52), 1, vip4, 80).frame(), xdpTX, "tx_dr"); dstMAC(out) != realMAC(reals[1].Addr.Addr()) {
		t.Errorf("new connection to %x, want the real server back in service", dstMAC(out))
	}
}

// TestThresholds: a server at its upper threshold takes no new
// connections once the sync saw its load.
func TestThresholds(t *testing.T) {
	x := newTDP(t, Options{})
	reals := pool(1, 1)
	reals[0].UThreshold = 5
	x.apply(svc(dataplane.TCP, vip4, 80, "rr", reals...))
	got := newConns(x, 40, vip4, 80, 0)
	if g := got[realMAC(reals[0].Addr.Addr())]; g > 5 {
		t.Errorf("server with upper threshold 5 got %d connections", g)
	}
	x.stats()
	got = newConns(x, 20, vip4, 80, 100)
	if g := got[realMAC(reals[0].Addr.Addr())]; g != 0 {
		t.Errorf("overloaded server got %d more connections", g)
	}
}

// TestPersistence: with a /24 mask every client of one /24 lands on one
// server; another /24 may go elsewhere; templates are listed.
func TestPersistence(t *testing.T) {
	x := newTDP(t, Options{})
	s := svc(dataplane.TCP, vip4, 80, "rr", pool(1, 1)...)
	s.Persistence, s.PersistMask = 300*time.Second, 24
	x.apply(s)
	ev0, _ := x.d.Events()
	first := map[byte][6]byte{}
	for i := range 12 {
		net := byte(i % 2)
		c := netip.AddrFrom4([4]byte{198, 51, net, byte(10 + i)})
		ret, out := x.run(syn(c, uint16(30000+i), vip4, 80).frame())
		if ret != xdpTX {
			t.Fatalf("verdict %d", ret)
		}
		if f, ok := first[net]; ok && f != dstMAC(out) {
			t.Errorf("client %s on %x, its /24 is on %x", c, dstMAC(out), f)
		}
		first[net] = dstMAC(out)
	}
	if first[0] == first[1] {
		t.Errorf("both /24s on one server: rr should have spread the first two")
	}
	ev1, _ := x.d.Events()
	if d := ev1["persist_hit"] - ev0["persist_hit"]; d != 10 {
		t.Errorf("persist_hit +%d, want 10", d)
	}
	var tmpl int
	for _, c := range x.conns() {
		if c.Template {
			tmpl++
			if c.Client.Addr().As4()[3] != 0 || c.State != "NONE" {
				t.Errorf("template %+v", c)
			}
		}
	}
	if tmpl != 2 {
		t.Errorf("%d templates, want 2", tmpl)
	}
	st := x.stats()
	var persist int64
	for _, r := range st.Services[0].RealServers {
		persist += r.PersistConns
	}
	if persist != 2 {
		t.Errorf("PersistConns total %d, want 2", persist)
	}
}

// TestTCPStates follows one connection through the IPVS states.
func TestTCPStates(t *testing.T) {
	x := newTDP(t, Options{Timeouts: dataplane.Timeouts{TCP: 100 * time.Second, TCPFin: 20 * time.Second}})
	x.apply(svc(dataplane.TCP, vip4, 80, "rr", pool(1)...))
	p := syn(client(1), 40000, vip4, 80)
	state := func() dataplane.Conn {
		for _, c := range x.conns() {
			if !c.Template && c.Client == p.src {
				return c
			}
		}
		t.Fatalf("connection %s not listed", p.src)
		return dataplane.Conn{}
	}
	steps := []struct {
		flags   uint8
		want    string
		timeout time.Duration
	}{
		{tcpSYN, "SYN_RECV", 60 * time.Second},
		{tcpACK, "ESTABLISHED", 100 * time.Second},
		{tcpACK, "ESTABLISHED", 100 * time.Second},
		{tcpFIN | tcpACK, "FIN_WAIT", 20 * time.Second},
		{tcpRST, "CLOSE", 10 * time.Second},
	}
	for _, s := range steps {
		p.flags = s.flags
		x.expect(p.frame(), xdpTX, "tx_dr")
		c := state()
		if c.State != s.want || c.Expires > s.timeout || c.Expires < s.timeout-2*time.Second {
			t.Errorf("after flags %#x: state %s expires %v, want %s ≈%v", s.flags, c.State, c.Expires, s.want, s.timeout)
		}
		if c.Virtual != p.dst || c.Real != pool(1)[0].Addr || c.Proto != dataplane.TCP {
			t.Errorf("conn %+v", c)
		}
	}
	// a new SYN on a closed connection is a new connection
	ev0, _ := x.d.Events()
	p.flags = tcpSYN
	x.expect(p.frame(), xdpTX, "tx_dr")
	ev1, _ := x.d.Events()
	if ev1["conn_new"]-ev0["conn_new"] != 1 {
		t.Errorf("SYN after RST not counted as a new connection")
	}
}

// TestExpiry: an entry older than its timeout is a miss; the sync loop
// removes it.
func TestExpiry(t *testing.T) {
	x := newTDP(t, Options{Timeouts: dataplane.Timeouts{UDP: 5 * time.Second}})
	x.apply(svc(dataplane.UDP, vip4, 53, "rr", pool(1)...))
	p := pkt{src: netip.AddrPortFrom(client(1), 5000), dst: netip.AddrPortFrom(vip4, 53), proto: 17, payload: []byte("x")}
	x.expect(p.frame(), xdpTX, "tx_dr")
	// age the entry by hand
	var k lbFlowKey4 // IPv4 flows live in conn4_tbl
	var v lbConn
	it := x.d.objs.Conn4Tbl.Iterate()
	if !it.Next(&k, &v) {
		t.Fatal("no connection entry")
	}
	v.LastNs -= uint64(6 * time.Second)
	if err := x.d.objs.Conn4Tbl.Put(k, v); err != nil {
		t.Fatal(err)
	}
	x.dropFlowCache() // 6 s would have outdated the program's copy too
	ev0, _ := x.d.Events()
	x.expect(p.frame(), xdpTX, "tx_dr")
	ev1, _ := x.d.Events()
	if ev1["conn_expired"]-ev0["conn_expired"] != 1 || ev1["conn_new"]-ev0["conn_new"] != 1 {
		t.Errorf("events %v → %v: want one expiry and one new connection", ev0, ev1)
	}
	v.LastNs -= uint64(6 * time.Second)
	_ = x.d.objs.Conn4Tbl.Put(k, v)
	x.stats() // sync collects it
	if n := len(x.conns()); n != 0 {
		t.Errorf("%d entries after expiry", n)
	}
	if err := x.d.objs.Conn4Tbl.Lookup(k, &v); err == nil {
		t.Errorf("expired entry not deleted by the sync")
	}
}

// TestOnePacket: UDP one-packet scheduling keeps no state.
func TestOnePacket(t *testing.T) {
	x := newTDP(t, Options{})
	s := svc(dataplane.UDP, vip4, 53, "rr", pool(1, 1)...)
	s.OnePacket = true
	x.apply(s)
	p := pkt{src: netip.AddrPortFrom(client(1), 5000), dst: netip.AddrPortFrom(vip4, 53), proto: 17, payload: []byte("x")}
	_, a := x.run(p.frame())
	_, b := x.run(p.frame())
	if dstMAC(a) == dstMAC(b) {
		t.Errorf("one-packet: two datagrams of one flow on one server under rr")
	}
	if n := len(x.conns()); n != 0 {
		t.Errorf("%d connection entries, want none", n)
	}
}

// TestMultiPort: port ranges, several VIPs and both protocols in one
// (firewall-mark-like) service.
func TestMultiPort(t *testing.T) {
	x := newTDP(t, Options{})
	vip4b := netip.MustParseAddr("192.0.2.11")
	s := dataplane.Service{
		Key:         dataplane.ServiceKey{FWMark: 21},
		VIPs:        []netip.Addr{vip4, vip4b},
		Ports:       []dataplane.PortRange{{From: 21, To: 21}, {From: 10000, To: 10010}},
		Protos:      []dataplane.Proto{dataplane.TCP},
		Scheduler:   "rr",
		Persistence: time.Minute,
		PersistMask: 32,
		RealServers: pool(1, 1),
	}
	x.apply(s)
	var owner [6]byte
	for i, dst := range []netip.AddrPort{
		netip.AddrPortFrom(vip4, 21), netip.AddrPortFrom(vip4, 10000), netip.AddrPortFrom(vip4b, 10010), netip.AddrPortFrom(vip4, 10005),
	} {
		out := x.expect(syn(client(1), uint16(40000+i), dst.Addr(), dst.Port()).frame(), xdpTX, "tx_dr")
		if i > 0 && dstMAC(out) != owner {
			t.Errorf("%s: persistence across the ports of one service broken", dst)
		}
		owner = dstMAC(out)
	}
	x.expect(syn(client(1), 40000, vip4, 10011).frame(), xdpPass, "pass_no_service")
	x.expect(syn(client(1), 40000, vip4, 22).frame(), xdpPass, "pass_no_service")
	for _, c := range x.conns() {
		if c.FWMark != 21 {
			t.Errorf("entry without its firewall mark: %+v", c)
		}
	}
	// overlapping services are refused
	err := x.d.Apply(t.Context(), []dataplane.Service{s, svc(dataplane.TCP, vip4, 10003, "rr", pool(1)...)})
	if err == nil {
		t.Errorf("overlapping services accepted")
	}
}

// TestApplyDiff: unrelated changes keep connections and counters.
func TestApplyDiff(t *testing.T) {
	x := newTDP(t, Options{})
	a := svc(dataplane.TCP, vip4, 80, "rr", pool(1, 1)...)
	x.apply(a)
	p := syn(client(1), 40000, vip4, 80)
	owner := dstMAC(x.expect(p.frame(), xdpTX, "tx_dr"))
	b := svc(dataplane.TCP, vip4, 443, "wlc", pool(1)...)
	x.apply(a, b)
	a.RealServers = append(a.RealServers, rsv(netip.MustParseAddrPort("10.0.0.3:80"), 1, dataplane.DR))
	x.apply(a, b)
	p.flags = tcpACK
	if got := dstMAC(x.expect(p.frame(), xdpTX, "tx_dr")); got != owner {
		t.Errorf("connection moved after an unrelated change")
	}
	st := x.stats()
	if st.Services[0].Conns != 1 || st.Services[0].InPkts != 2 {
		t.Errorf("counters reset: %+v", st.Services[0].Counters)
	}
	// the program counts per real server; removing one keeps what it
	// counted in its service's counters
	before := x.stats().Services[0].Counters
	for i := 0; i < 6; i++ {
		x.expect(syn(client(10+i), 40000, vip4, 80).frame(), xdpTX, "tx_dr")
	}
	a2 := a
	a2.RealServers = a.RealServers[:1]
	x.apply(a2, b)
	after := x.stats().Services[0]
	if after.Conns != before.Conns+6 || after.InPkts != before.InPkts+6 {
		t.Errorf("service counters after removing a real server = %+v, want %d conns, %d packets",
			after.Counters, before.Conns+6, before.InPkts+6)
	}
	if len(after.RealServers) != 1 {
		t.Fatalf("real servers listed: %d, want 1", len(after.RealServers))
	}
	if rsc := after.RealServers[0].Counters; rsc.Conns >= after.Conns {
		t.Errorf("remaining real server has %d of the service's %d connections: nothing was folded", rsc.Conns, after.Conns)
	}
	x.apply(a, b)
	// removing the service passes its traffic to the kernel
	x.apply(b)
	x.expect(p.frame(), xdpPass, "pass_no_service")
	// a real server removed: its connections are rescheduled only on SYN
	x.apply(a, b)
}

// TestApplyErrors: methods and schedulers the program cannot do are
// refused up front.
func TestApplyErrors(t *testing.T) {
	x := newTDP(t, Options{})
	tests := []struct {
		name string
		s    dataplane.Service
	}{
		{"local", svc(dataplane.TCP, vip4, 80, "rr", rsv(rs1, 1, dataplane.Local))},
		{"unknown scheduler", svc(dataplane.TCP, vip4, 80, "xx", rsv(rs1, 1, dataplane.DR))},
		{"dr across families", svc(dataplane.TCP, vip6, 80, "rr", rsv(rs1, 1, dataplane.DR))},
		{"sctp", svc(dataplane.SCTP, vip4, 80, "rr", rsv(rs1, 1, dataplane.DR))},
		{"more servers than mh slots", func() dataplane.Service {
			s := svc(dataplane.TCP, vip4, 80, "mh", rsv(rs1, 1, dataplane.DR), rsv(rs2, 1, dataplane.DR), rsv(netip.MustParseAddrPort("10.0.0.3:80"), 1, dataplane.DR))
			s.MHTableSize = 2
			return s
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := x.d.Apply(t.Context(), []dataplane.Service{tt.s}); err == nil {
				t.Errorf("accepted")
			}
		})
	}
}

// TestAllPorts: a service on port 0 takes every port of its VIP (IPVS
// persistent port-0 services); other VIPs still pass.
func TestAllPorts(t *testing.T) {
	x := newTDP(t, Options{})
	x.apply(svc(dataplane.TCP, vip4, 0, "rr", pool(1)...), svc(dataplane.TCP, vip6, 80, "rr", rsv(rs6a, 1, dataplane.DR)))
	for _, port := range []uint16{1, 80, 65535} {
		x.expect(syn(client(1), 40000, vip4, port).frame(), xdpTX, "tx_dr")
	}
	x.expect(syn(client6(1), 40000, vip6, 81).frame(), xdpPass, "pass_no_service")
	x.apply(svc(dataplane.TCP, vip6, 80, "rr", rsv(rs6a, 1, dataplane.DR)))
	x.expect(syn(client(1), 40001, vip4, 80).frame(), xdpPass, "pass_no_service")
}

// TestRingFollowsFallingCounts: an rr ring filled while its servers were
// near their upper threshold (a ring holds the next connections, so 10
// free per server: mostly empty slots) is refilled by the sync once
// their counts fall, though no server changed availability.
func TestRingFollowsFallingCounts(t *testing.T) {
	x := newTDP(t, Options{})
	reals := pool(1, 1)
	for i := range reals {
		reals[i].UThreshold = 100
	}
	x.apply(svc(dataplane.TCP, vip4, 80, "rr", reals...))
	x.d.mu.Lock()
	defer x.d.mu.Unlock()
	var s *service
	for _, v := range x.d.svcs {
		s = v
	}
	filled := func(active int64) int {
		t.Helper()
		for _, r := range s.reals {
			r.dest.SetConns(active, 0)
		}
		if err := x.d.pushTable(s); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, v := range s.pushed {
			if v != 0 {
				n++
			}
		}
		return n
	}
	if n := filled(90); n != 20 {
		t.Errorf("two servers 10 connections below their threshold fill %d slots, want 20", n)
	}
	if n := filled(0); n != 200 {
		t.Errorf("after their counts fell to 0 the ring has %d filled slots, want 200", n)
	}
}

// TestApplyCapacity: services whose scheduling tables or real servers
// do not fit the maps are refused before anything changes.
func TestApplyCapacity(t *testing.T) {
	x := newTDP(t, Options{})
	keep := svc(dataplane.TCP, vip4, 80, "rr", rsv(rs1, 1, dataplane.DR))
	x.apply(keep)
	p := syn(client(1), 40000, vip4, 80)
	var mh []dataplane.Service
	for i := range 16 { // 16 × 65537 > 2^20
		s := svc(dataplane.TCP, vip4, uint16(1000+i), "mh", rsv(rs1, 1, dataplane.DR))
		s.MHTableSize = 65537
		mh = append(mh, s)
	}
	err := x.d.Apply(context.Background(), append([]dataplane.Service{keep}, mh...))
	if err == nil || !strings.Contains(err.Error(), "scheduling tables need") {
		t.Errorf("16 mh services: %v, want a refusal naming the scheduling tables", err)
	}
	var many []dataplane.Service
	for i := range 3 { // 3 × 3000 real servers > 8191 slots
		s := svc(dataplane.TCP, vip4, uint16(2000+i), "rr")
		for j := range 3000 {
			s.RealServers = append(s.RealServers, rsv(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i), byte(j >> 8), byte(j)}), 80), 1, dataplane.DR))
		}
		many = append(many, s)
	}
	err = x.d.Apply(context.Background(), append([]dataplane.Service{keep}, many...))
	if err == nil || !strings.Contains(err.Error(), "real servers need") {
		t.Errorf("9000 real servers: %v, want a refusal naming the real servers", err)
	}
	// nothing changed: the first service forwards, no other was added
	x.expect(p.frame(), xdpTX, "tx_dr")
	if n := len(x.stats().Services); n != 1 {
		t.Errorf("%d services after the refused configurations, want 1", n)
	}
}

// TestApplyCapacityOrder: the capacity check follows the order Apply
// changes things in: a service whose table shrinks frees its slots
// only when its turn comes, and a service's old real servers are freed
// only after its new ones are written — but then they are.
func TestApplyCapacityOrder(t *testing.T) {
	x := newTDP(t, Options{RingSize: 1 << 19}) // rr: 2^19 slots; sh: 256
	a := svc(dataplane.TCP, vip4, 80, "rr", rsv(rs1, 1, dataplane.DR))
	b := svc(dataplane.TCP, vip4, 81, "sh", rsv(rs1, 1, dataplane.DR))
	c := svc(dataplane.TCP, vip4, 82, "sh", rsv(rs1, 1, dataplane.DR))
	x.apply(a, b, c) // 2^19 + 512 slots
	a2, b2 := a, b
	a2.Scheduler, b2.Scheduler = "sh", "rr"
	// b grows before a shrinks: 2^20 + 256 slots on the way
	err := x.d.Apply(context.Background(), []dataplane.Service{b2, a2, c})
	if err == nil || !strings.Contains(err.Error(), "scheduling tables need") {
		t.Errorf("b grown before a shrinks: %v, want a refusal naming the scheduling tables", err)
	}
	// a shrinks first: at most 2^19 + 512 on the way
	x.apply(a2, b2, c)

	// 3 services × 2000 real servers moving from DR to NAT: at most
	// 6000 + 2000 slots at any time (each service frees its old ones)
	var dr, nat []dataplane.Service
	for i := range 3 {
		s := svc(dataplane.TCP, vip4, uint16(2000+i), "sh")
		for j := range 2000 {
			s.RealServers = append(s.RealServers, rsv(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i), byte(j >> 8), byte(j)}), 80), 1, dataplane.DR))
		}
		dr = append(dr, s)
		n := s
		n.RealServers = slices.Clone(s.RealServers)
		for j := range n.RealServers {
			n.RealServers[j].Method = dataplane.NAT
		}
		nat = append(nat, n)
	}
	x.apply(dr...)
	x.apply(nat...)
}

// TestApplyRemovalOrder: a real server that leaves a service is removed
// only once the new scheduling table no longer points at it and no run
// of the program that read the old table is still going. New flows
// scheduled from another thread all the while through Applies that swap
// servers in and out are all forwarded. Removing before the table is
// written lost 25-33 % of them; removing right after it, without
// waiting for the runs in flight (quiesce), 1-2 of about 1,500 in half
// of the sh runs (drop_no_dest).
func TestApplyRemovalOrder(t *testing.T) {
	x := newTDP(t, Options{})
	rs3 := netip.MustParseAddrPort("10.0.0.3:80")
	sets := [][]dataplane.RealServer{
		{rsv(rs1, 1, dataplane.DR), rsv(rs2, 1, dataplane.DR)},
		{rsv(rs2, 1, dataplane.DR), rsv(rs3, 1, dataplane.DR)},
		{rsv(rs3, 1, dataplane.DR), rsv(rs1, 1, dataplane.DR)},
	}
	for k, sch := range []string{"rr", "sh", "mh"} {
		t.Run(sch, func(t *testing.T) {
			if err := x.d.Apply(context.Background(), []dataplane.Service{svc(dataplane.TCP, vip4, 80, sch, sets[0]...)}); err != nil {
				t.Fatal(err)
			}
			newFlowsDuring(t, x, k, func(i int) []dataplane.Service {
				return []dataplane.Service{svc(dataplane.TCP, vip4, 80, sch, sets[i%3]...)}
			})
		})
	}
}

// TestApplyOneGracePeriod: an Apply that swaps servers in many services
// waits for one grace period in all, not one per service, and still
// frees every server that left (their slots are reused by the next
// Apply); when the servers that left hold the slots a new one needs, it
// waits for them early instead of failing.
func TestApplyOneGracePeriod(t *testing.T) {
	x := newTDP(t, Options{})
	const n = 40
	build := func(set int) []dataplane.Service {
		var out []dataplane.Service
		for i := range n {
			a := netip.AddrFrom4([4]byte{10, 1, byte(i), byte(1 + set)})
			b := netip.AddrFrom4([4]byte{10, 1, byte(i), byte(100 + set)})
			out = append(out, svc(dataplane.TCP, vip4, uint16(3000+i), "rr",
				rsv(netip.AddrPortFrom(a, 80), 1, dataplane.DR), rsv(netip.AddrPortFrom(b, 80), 1, dataplane.DR)))
		}
		return out
	}
	x.apply(build(0)...)
	used := func() int {
		k := 0
		for _, u := range x.d.realUsed {
			if u {
				k++
			}
		}
		return k
	}
	for set := 1; set <= 3; set++ {
		q := x.d.quiesces
		x.apply(build(set)...)
		if w := x.d.quiesces - q; w != 1 {
			t.Errorf("swapping the servers of %d services waited for %d grace periods, want 1", n, w)
		}
		if u := used(); u != 2*n {
			t.Errorf("%d real server slots in use after the swap, want %d", u, 2*n)
		}
		p := syn(client(1), 40000, vip4, 3000)
		x.expect(p.frame(), xdpTX, "tx_dr")
	}
	// 5000 of 8191 slots in use: the second service's 2500 new servers
	// need the slots of the first's that left, before the end of the
	// Apply (without the early free, allocReal fails; the two waits are
	// also what one wait per service gave)
	big := func(set int) []dataplane.Service {
		var out []dataplane.Service
		for i := range 2 {
			s := svc(dataplane.TCP, vip4, uint16(4000+i), "rr")
			for j := range 2500 {
				a := netip.AddrFrom4([4]byte{10, byte(2 + set), byte(i*16 + j>>8), byte(j)})
				s.RealServers = append(s.RealServers, rsv(netip.AddrPortFrom(a, 80), 1, dataplane.DR))
			}
			out = append(out, s)
		}
		return out
	}
	x.apply(big(0)...)
	q := x.d.quiesces
	x.apply(big(1)...)
	if w := x.d.quiesces - q; w != 2 {
		t.Errorf("the large swap waited for %d grace periods, want 2 (one to free the first service's servers early, one at the end)", w)
	}
	if u := used(); u != 5000 {
		t.Errorf("%d real server slots in use after the large swap, want 5000", u)
	}
}

// TestApplyLayoutChange: a service whose scheduler changes kind (ring,
// source hash, Maglev; table sizes 1024, 256, 4093) keeps forwarding
// every new flow through the change: its table is rewritten in place and
// shrunk only after the configuration has the new size. Clearing the
// table first lost the flows that came before the refill.
func TestApplyLayoutChange(t *testing.T) {
	reals := []dataplane.RealServer{rsv(rs1, 1, dataplane.DR), rsv(rs2, 1, dataplane.DR)}
	scheds := []string{"rr", "sh", "mh", "wrr", "dh"}
	// alone, the table grows over the free slots after it; with a
	// service whose table follows it in sched_tbl, a table that grows
	// past its run moves to another (its base changes)
	for k, neighbour := range []bool{false, true} {
		t.Run(fmt.Sprintf("neighbour=%v", neighbour), func(t *testing.T) {
			x := newTDP(t, Options{})
			svcs := func(i int) []dataplane.Service {
				s := []dataplane.Service{svc(dataplane.TCP, vip4, 80, scheds[i%len(scheds)], reals...)}
				if neighbour {
					s = append(s, svc(dataplane.TCP, vip4, 81, "sh", reals...))
				}
				return s
			}
			x.apply(svcs(0)[0])
			x.apply(svcs(0)...)
			bases := map[uint32]bool{}
			newFlowsDuring(t, x, 10+k, func(i int) []dataplane.Service {
				x.d.mu.Lock()
				for _, s := range x.d.svcs {
					if s.spec.Key.Port == 80 {
						bases[s.tbl.base] = true
					}
				}
				x.d.mu.Unlock()
				return svcs(i)
			})
			if neighbour && len(bases) < 2 {
				t.Errorf("the table stayed at base %v: no move was exercised", bases)
			}
		})
	}
}

// TestApplyPacksTables: when a new table needs a longer run than any
// free one and the free entries are enough in all, Apply packs the
// tables of the services that stay toward the start of sched_tbl and
// then places it; new flows of a service whose table moves meanwhile
// go to that service's servers all along (a ring, whose cursor walks
// on); the free space is then what the services' runs leave.
func TestApplyPacksTables(t *testing.T) {
	const big, bigger = 262139, 400009 // primes: 4 × big fill 2^20 but 20 slots
	x := newTDP(t, Options{RingSize: big})
	mhSvc := func(port uint16, size int, reals ...dataplane.RealServer) dataplane.Service {
		s := svc(dataplane.TCP, vip4, port, "mh", reals...)
		s.MHTableSize = size
		return s
	}
	c1, c2 := netip.MustParseAddrPort("10.0.0.31:80"), netip.MustParseAddrPort("10.0.0.32:80")
	a := mhSvc(80, big, rsv(rs1, 1, dataplane.DR))
	b := mhSvc(81, big, rsv(rs2, 1, dataplane.DR))
	c := svc(dataplane.TCP, vip4, 82, "rr", rsv(c1, 1, dataplane.DR), rsv(c2, 1, dataplane.DR))
	d := mhSvc(83, big, rsv(rs2, 1, dataplane.DR))
	x.apply(a, b, c, d)
	x.apply(a, c) // holes of big entries where b was, and where d was with the 20 after it
	x.d.mu.Lock()
	before := x.d.svcs[c.Key].tbl
	space := x.d.slots.Clone()
	x.d.mu.Unlock()
	if _, ok := space.alloc(bigger); ok || space.Free() < bigger {
		t.Fatalf("free space %+v: the test needs %d entries free in all and in no one run", space.free, bigger)
	}

	// new flows to c while the next Apply moves its table
	cMACs := map[[6]byte]bool{realMAC(c1.Addr()): true, realMAC(c2.Addr()): true}
	sender := sendNewFlows(x, 40, 82, func(v uint32, out []byte) bool { return v == xdpTX && cMACs[dstMAC(out)] })
	e := mhSvc(84, bigger, rsv(rs1, 1, dataplane.DR))
	q0 := x.d.quiesces
	err := x.d.Apply(context.Background(), []dataplane.Service{a, c, e})
	time.Sleep(50 * time.Millisecond)
	r := sender.stop()
	if err != nil {
		t.Fatalf("Apply that needs the tables packed: %v", err)
	}
	if r.err != nil || r.wrong > 0 || r.sent == 0 {
		t.Errorf("new flows to the service whose table moved: %d of %d not sent to its servers (%v)", r.wrong, r.sent, r.err)
	}
	x.d.mu.Lock()
	after := x.d.svcs[c.Key].tbl
	var runs []extent
	for _, s := range x.d.svcs {
		runs = append(runs, s.tbl)
	}
	checkSpace(t, x.d.slots, schedSlots, runs)
	x.d.mu.Unlock()
	if after.base >= before.base || after.n != before.n {
		t.Errorf("c's table at %+v before, %+v after: it was not moved down", before, after)
	}
	if x.d.quiesces == q0 {
		t.Error("the move waited for no grace period")
	}
	x.expect(syn(client(1), 40000, vip4, 84).frame(), xdpTX, "tx_dr")
	for i := range 20 {
		out := x.expect(syn(client(2), uint16(41000+i), vip4, 82).frame(), xdpTX, "tx_dr")
		if !cMACs[dstMAC(out)] {
			t.Fatalf("c's flow after the move went to %x", dstMAC(out))
		}
	}
}

// TestPackTablesWaves: packing waits for one grace period for all the
// moves whose destinations touch no run still to be freed, and for a
// new one when a table moves into entries another just vacated. A ring
// fills all but a few entries of sched_tbl; after it, a hole of h
// entries, then tables a and b, and t entries free at the end: packing
// moves a into the hole, then b below its old place.
func TestPackTablesWaves(t *testing.T) {
	for _, c := range []struct {
		name       string
		ring       int
		h, a, b, g int // primes: mh table sizes
		waves      uint64
	}{
		// b goes into what is left of the hole
		{"one wave", 1048291, 137, 101, 31, 139, 1},
		// b goes into a's old run
		{"two waves", 1048447, 41, 31, 37, 43, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			x := newTDP(t, Options{RingSize: c.ring})
			mhSvc := func(port uint16, size int) dataplane.Service {
				s := svc(dataplane.TCP, vip4, port, "mh", rsv(rs1, 1, dataplane.DR), rsv(rs2, 1, dataplane.DR))
				s.MHTableSize = size
				return s
			}
			ring := svc(dataplane.TCP, vip4, 90, "rr", rsv(rs1, 1, dataplane.DR))
			a, b := mhSvc(92, c.a), mhSvc(93, c.b)
			x.apply(ring, mhSvc(91, c.h), a, b)
			x.apply(ring, a, b)
			q0 := x.d.quiesces
			x.apply(ring, a, b, mhSvc(94, c.g))
			if got := x.d.quiesces - q0; got != c.waves {
				t.Errorf("%d grace periods, want %d", got, c.waves)
			}
			x.d.mu.Lock()
			defer x.d.mu.Unlock()
			base := uint32(c.ring)
			if ta, tb := x.d.svcs[a.Key].tbl, x.d.svcs[b.Key].tbl; ta.base != base || tb.base != base+uint32(c.a) {
				t.Errorf("a at %+v, b at %+v; want them packed from %d", ta, tb, base)
			}
			var runs []extent
			for _, s := range x.d.svcs {
				runs = append(runs, s.tbl)
			}
			checkSpace(t, x.d.slots, schedSlots, runs)
		})
	}
}

// newFlowsDuring runs Applies of svcAt(1, 2, ...), at least 150 and
// until 1,000 new flows were sent (within 30 s), while another thread
// sends new TCP flows (SYNs from addresses 198.18.k.x) through the
// program, and fails unless they were all forwarded.
func newFlowsDuring(t *testing.T, x *tdp, k int, svcAt func(i int) []dataplane.Service) {
	t.Helper()
	sender := sendNewFlows(x, k, 80, func(v uint32, _ []byte) bool { return v == xdpTX })
	var applyErr error
	applies := 0
	for deadline := time.Now().Add(30 * time.Second); applyErr == nil && (applies < 150 || sender.sent.Load() < 1000) && time.Now().Before(deadline); {
		applies++
		applyErr = x.d.Apply(context.Background(), svcAt(applies))
	}
	r := sender.stop()
	if applyErr != nil {
		t.Fatal(applyErr)
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	n := r.sent
	t.Logf("%d new flows during %d Applies, %d not forwarded", n, applies, r.wrong)
	if n < 1000 {
		t.Errorf("only %d flows sent during %d Applies", n, applies)
	}
	if r.wrong > 0 {
		t.Errorf("%d of %d new flows were not forwarded (exits %v)", r.wrong, n, nonZero(x.exits()))
	}
}

// flowSender sends new TCP flows through the program from another
// thread (sendNewFlows) until stop.
type flowSender struct {
	sent atomic.Int64
	quit chan struct{}
	done chan flowsSent
}

// flowsSent is what a flowSender sent, how many of its flows ok refused,
// and the error that stopped it.
type flowsSent struct {
	sent  int64
	wrong int
	err   error
}

// sendNewFlows starts sending SYNs of new flows, from addresses
// 198.18.k.x, to vip4:port, each checked by ok (verdict, frame out).
func sendNewFlows(x *tdp, k int, port uint16, ok func(v uint32, out []byte) bool) *flowSender {
	f := &flowSender{quit: make(chan struct{}), done: make(chan flowsSent, 1)}
	go func() {
		var r flowsSent
		out := make([]byte, 256)
		for i := 0; ; i++ {
			select {
			case <-f.quit:
				r.sent = f.sent.Load()
				f.done <- r
				return
			default:
			}
			// a new flow each time: no connection of an earlier test
			// (whose server may be the one being removed) is met
			c := netip.AddrFrom4([4]byte{198, 18, byte(k), byte(i % 250)})
			p := syn(c, uint16(1024+(i/250)%60000), vip4, port)
			v, err := x.d.objs.GovsLb.Run(&ebpf.RunOptions{Data: p.frame(), DataOut: out})
			if err != nil {
				r.err, r.sent = err, f.sent.Load()
				f.done <- r
				return
			}
			f.sent.Add(1)
			if !ok(v, out) {
				r.wrong++
			}
		}
	}()
	return f
}

// stop ends the sending and says what was sent.
func (f *flowSender) stop() flowsSent {
	close(f.quit)
	return <-f.done
}

// TestApplyRetriesFailedUpdate: an update that fails part way (here the
// lookup keys, with the services map full) is done again by the next
// Apply of the same service, which would otherwise find the spec it
// asks for already recorded and leave the service without its keys.
func TestApplyRetriesFailedUpdate(t *testing.T) {
	x := newTDP(t, Options{})
	full := x.d.objs.Services.MaxEntries()
	filler := make([]lbSvcKey, 0, full)
	for i := range full {
		// keys of a family no packet has (FAM_V4 is 4, FAM_V6 6)
		k := lbSvcKey{Proto: 17, Family: 2, Port: uint16(i)}
		k.Addr[0], k.Addr[1], k.Addr[14], k.Addr[15] = 0xfd, 0xee, byte(i>>24), byte(i>>16)
		filler = append(filler, k)
	}
	ids := make([]uint32, len(filler))
	if _, err := x.d.objs.Services.BatchUpdate(filler, ids, nil); err != nil {
		t.Fatalf("fill the services map: %v", err)
	}
	dr := svc(dataplane.TCP, vip4, 80, "rr", rsv(rs1, 1, dataplane.DR))
	if err := x.d.Apply(context.Background(), []dataplane.Service{dr}); err == nil {
		t.Fatal("Apply with the services map full: no error")
	}
	x.expect(syn(client(1), 40000, vip4, 80).frame(), xdpPass, "pass_no_service")
	if _, err := x.d.objs.Services.BatchDelete(filler[:16], nil); err != nil {
		t.Fatal(err)
	}
	x.apply(dr)
	x.expect(syn(client(1), 40000, vip4, 80).frame(), xdpTX, "tx_dr")

	// a write that stops part way: room for 8 of a range's 32 keys; the
	// 8 written are deleted with the service
	x.apply()
	if _, err := x.d.objs.Services.BatchUpdate(filler[:8], ids[:8], nil); err != nil {
		t.Fatal(err)
	}
	multi := dr
	multi.Ports = []dataplane.PortRange{{From: 8000, To: 8031}}
	if err := x.d.Apply(context.Background(), []dataplane.Service{multi}); err == nil {
		t.Fatal("Apply of 32 keys with room for 8: no error")
	}
	x.apply()
	var k lbSvcKey
	var id uint32
	for it := x.d.objs.Services.Iterate(); it.Next(&k, &id); {
		if k.Family == 4 {
			t.Errorf("key %d/%d of the removed service left in the services map", k.Proto, k.Port>>8|k.Port<<8)
		}
	}
}
