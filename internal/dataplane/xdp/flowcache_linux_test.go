package xdp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/bits"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/dataplane"
)

// dropFlowCache empties the program's flow caches (bpf/lb.c), as time
// would: tests that edit conn4_tbl or conn_tbl by hand call it.
func (x *tdp) dropFlowCache() {
	x.t.Helper()
	zeroArray[lbFcEntry](x.t, x.d.objs.FlowCache)
	zeroArray[lbFcEntry6](x.t, x.d.objs.FlowCache6)
}

// refill gives the flows of frames copies with the whole window: a new
// flow's first packet, or a TCP packet without payload, makes a brief
// one (FC_BRIEF_NS, fc_brief), which a slow test could outlive; with
// the cache emptied, each frame's next packet takes the table path as a
// tracked flow's and is copied for the window. exit is the frames'
// exit reason (XDP_TX).
func (x *tdp) refill(exit string, frames ...[]byte) {
	x.t.Helper()
	x.dropFlowCache()
	for _, f := range frames {
		x.expect(f, xdpTX, exit)
	}
}

// zeroArray sets every value of array m (values of type V) to zero.
func zeroArray[V any](t testing.TB, m *ebpf.Map) {
	t.Helper()
	n := int(m.MaxEntries())
	keys := make([]uint32, n)
	for i := range keys {
		keys[i] = uint32(i)
	}
	if _, err := m.BatchUpdate(keys, make([]V, n), nil); err != nil {
		t.Fatalf("clear %v: %v", m, err)
	}
}

// fcSlots is FC_SLOTS (bpf/lb.h): the flow cache's slots per CPU, in
// sets of fcWays.
const (
	fcSetsLog2 = 10
	fcWays     = 2
	fcSlots    = fcWays << fcSetsLog2
	fc6Slots   = fcWays << 9 // FC6_SLOTS
)

// sameSetPorts finds n client(1) ports from 1024 up whose UDP flows to
// dst fall in one flow-cache set.
func sameSetPorts(t *testing.T, dst netip.AddrPort, n int) []uint16 {
	t.Helper()
	var ports []uint16
	want := fcSet(netip.AddrPortFrom(client(1), 1024), dst, 17)
	for p := uint16(1024); len(ports) < n && p < 65535; p++ {
		if fcSet(netip.AddrPortFrom(client(1), p), dst, 17) == want {
			ports = append(ports, p)
		}
	}
	if len(ports) < n {
		t.Fatalf("found only ports %v in set %d", ports, want)
	}
	return ports
}

// fcSet is the set of bpf/lb.c's fc_set for an IPv4 flow key.
func fcSet(src, dst netip.AddrPort, proto uint8) uint32 {
	var k [16]byte
	s, d := src.Addr().As4(), dst.Addr().As4()
	copy(k[0:], s[:])
	copy(k[4:], d[:])
	binary.BigEndian.PutUint16(k[8:], src.Port())
	binary.BigEndian.PutUint16(k[10:], dst.Port())
	k[12] = proto
	w0, w1 := binary.LittleEndian.Uint64(k[:8]), binary.LittleEndian.Uint64(k[8:])
	h := w0*0x9e3779b97f4a7c15 ^ w1*0xc2b2ae3d27d4eb4f
	return uint32(h >> (64 - fcSetsLog2))
}

// entriesIn lists the entries of array m (values of type E) at indexes
// from to to (not included) that keep says to.
func entriesIn[E any](t testing.TB, m *ebpf.Map, from, to uint32, keep func(*E) bool) []E {
	t.Helper()
	var out []E
	var v E
	for k := from; k < to; k++ {
		if err := m.Lookup(k, &v); err != nil {
			t.Fatal(err)
		}
		if keep(&v) {
			out = append(out, v)
		}
	}
	return out
}

// cached6 lists the IPv6 flow cache's filled entries, every CPU's.
func (x *tdp) cached6() []lbFcEntry6 {
	x.t.Helper()
	m := x.d.objs.FlowCache6
	return entriesIn(x.t, m, 0, m.MaxEntries(), func(e *lbFcEntry6) bool { return e.Key.Family != 0 })
}

// cached lists the filled slots of CPU 0's part of the flow cache (the
// tests run the program on CPU 0).
func (x *tdp) cached() []lbFcEntry {
	x.t.Helper()
	return entriesIn(x.t, x.d.objs.FlowCache, 0, fcSlots, func(e *lbFcEntry) bool { return e.Key.Proto != 0 })
}

// cachedState is the state the flow cache holds for the one flow it has.
func (x *tdp) cachedState() uint8 {
	x.t.Helper()
	c := x.cached()
	if len(c) != 1 {
		x.t.Fatalf("flow cache holds %d flows, want 1", len(c))
	}
	return c[0].C.State
}

// TestFlowCacheServesEstablished: the second packet of a UDP flow is
// served from the flow cache, without conn4_tbl (deleting the table
// entry does not make it a new connection), until the cache window has
// passed; then the table decides again.
func TestFlowCacheServesEstablished(t *testing.T) {
	// the window is 500 ms, a quarter of the 2 s timeout (FC_WINDOW_NS,
	// 1 s, is more)
	x := newTDP(t, Options{Timeouts: dataplane.Timeouts{UDP: 2 * time.Second}})
	if n := x.d.objs.FlowCache.MaxEntries(); n != fcSlots*uint32(x.d.ncpu) {
		t.Fatalf("flow cache of %d slots, want %d per CPU × %d", n, fcSlots, x.d.ncpu)
	}
	// the Go strides of the per-CPU counter blocks are the program's
	if n := x.d.objs.CpuData.MaxEntries(); n != cdEntries*uint32(x.d.ncpu) {
		t.Fatalf("cpu_data of %d entries, want %d per CPU × %d", n, cdEntries, x.d.ncpu)
	}
	if n := x.d.objs.CpuData.ValueSize(); n != cdEntry {
		t.Fatalf("cpu_data's entries are %d bytes, want %d", n, cdEntry)
	}
	x.apply(svc(dataplane.UDP, vip4, 53, "rr", pool(1, 1)...))
	p := pkt{src: netip.AddrPortFrom(client(1), 5000), dst: netip.AddrPortFrom(vip4, 53), proto: 17, payload: []byte("x")}
	first := dstMAC(x.expect(p.frame(), xdpTX, "tx_dr"))
	x.refill("tx_dr", p.frame())
	c := x.cached()
	if len(c) != 1 || c[0].Key.Sport != bits.ReverseBytes16(5000) || c[0].C.State != 5 {
		t.Fatalf("flow cache after one packet: %+v, want the flow in state UDP", c)
	}

	var k lbFlowKey4
	var v lbConn
	if !x.d.objs.Conn4Tbl.Iterate().Next(&k, &v) {
		t.Fatal("no connection entry")
	}
	if err := x.d.objs.Conn4Tbl.Delete(k); err != nil {
		t.Fatal(err)
	}
	ev0 := x.events()
	if got := dstMAC(x.expect(p.frame(), xdpTX, "tx_dr")); got != first {
		t.Errorf("cached flow went to %x, want %x", got, first)
	}
	if ev := x.events(); ev["conn_new"] != ev0["conn_new"] {
		t.Errorf("a cached flow made a new connection: %v → %v", ev0, ev)
	}

	time.Sleep(600 * time.Millisecond) // past the window, within the timeout
	x.expect(p.frame(), xdpTX, "tx_dr")
	if ev := x.events(); ev["conn_new"] != ev0["conn_new"]+1 {
		t.Errorf("after the window the table was not consulted: %v → %v", ev0, ev)
	}
}

// TestFlowCacheMissCounted: event fc_miss counts the packets the flow
// cache serves that were served from the tables instead (established
// TCP without SYN/FIN/RST, UDP of a tracked flow, NAT replies:
// TestFlowCacheNATReplies), and nothing else: not a new flow's first
// packet, not a TCP packet that changes or ends the connection's state,
// not a hit.
func TestFlowCacheMissCounted(t *testing.T) {
	x := newTDP(t, Options{})
	x.apply(svc(dataplane.UDP, vip4, 53, "rr", pool(1)...), svc(dataplane.TCP, vip4, 80, "rr", pool(1)...),
		svc(dataplane.UDP, vip6, 53, "rr", rsv(rs6a, 1, dataplane.DR)))
	misses := func() uint64 { return x.events()["fc_miss"] }
	step := func(what string, frame []byte, exit string, want uint64) {
		t.Helper()
		n := misses()
		x.expect(frame, xdpTX, exit)
		if got := misses() - n; got != want {
			t.Errorf("%s: %d fc_miss, want %d", what, got, want)
		}
	}
	for _, u := range []pkt{
		{src: netip.AddrPortFrom(client(1), 5000), dst: netip.AddrPortFrom(vip4, 53), proto: 17, payload: []byte("x")},
		{src: netip.AddrPortFrom(client6(1), 5000), dst: netip.AddrPortFrom(vip6, 53), proto: 17, payload: []byte("x")},
	} {
		step("UDP, new flow", u.frame(), "tx_dr", 0)
		x.dropFlowCache()
		step("UDP, cache emptied", u.frame(), "tx_dr", 1)
		step("UDP, cached", u.frame(), "tx_dr", 0)
	}
	s := syn(client(1), 40000, vip4, 80)
	step("SYN", s.frame(), "tx_dr", 0)
	s.flags = tcpACK
	step("handshake's ACK", s.frame(), "tx_dr", 0)
	x.dropFlowCache()
	s.payload = []byte("GET")
	step("established, cache emptied", s.frame(), "tx_dr", 1)
	step("established, cached", s.frame(), "tx_dr", 0)
	x.dropFlowCache()
	s.flags = tcpACK | tcpFIN
	step("FIN", s.frame(), "tx_dr", 0)
}

// TestFlowCacheBrief: a copy made from a packet that does not show its
// flow goes on (a new UDP flow's first packet, a TCP packet without
// payload) serves for FC_BRIEF_NS (10 ms and up to two jiffies more),
// one made from a later UDP packet or TCP data for the whole window; a
// TCP FIN or RST frees the flow's way (fc_release). NAT replies:
// TestFlowCacheNATReplies.
func TestFlowCacheBrief(t *testing.T) {
	x := newTDP(t, Options{Timeouts: dataplane.Timeouts{UDP: 40 * time.Second, TCP: 40 * time.Second}}) // 1 s windows
	x.apply(svc(dataplane.UDP, vip4, 53, "rr", pool(1)...), svc(dataplane.TCP, vip4, 80, "rr", pool(1)...))
	misses := func() uint64 { return x.events()["fc_miss"] }
	// served says whether frame, 50 ms on, is served from its copy
	served := func(frame []byte) bool {
		t.Helper()
		time.Sleep(50 * time.Millisecond)
		n := misses()
		x.expect(frame, xdpTX, "tx_dr")
		return misses() == n
	}
	u := pkt{src: netip.AddrPortFrom(client(1), 5000), dst: netip.AddrPortFrom(vip4, 53), proto: 17, payload: []byte("x")}
	x.expect(u.frame(), xdpTX, "tx_dr")
	if served(u.frame()) {
		t.Error("a new UDP flow's copy served 50 ms on, want it brief")
	}
	if !served(u.frame()) { // the table path refilled it for the window
		t.Error("a tracked UDP flow's copy did not serve 50 ms on")
	}

	s := syn(client(1), 40000, vip4, 80)
	x.expect(s.frame(), xdpTX, "tx_dr")
	s.flags = tcpACK
	x.expect(s.frame(), xdpTX, "tx_dr")
	if served(s.frame()) {
		t.Error("the copy the handshake's ACK made served 50 ms on, want it brief")
	}
	if served(s.frame()) { // a pure ACK's, again
		t.Error("the copy a pure ACK made served 50 ms on, want it brief")
	}
	s.payload = []byte("GET")
	if served(s.frame()) {
		t.Error("a TCP copy served after its brief window")
	}
	// the miss just now refilled it from data, for the window
	if !served(s.frame()) {
		t.Error("the copy a data packet made did not serve 50 ms on")
	}
	s.flags = tcpACK | tcpRST
	s.payload = nil
	x.expect(s.frame(), xdpTX, "tx_dr")
	for _, e := range x.cached() {
		if e.Key.Sport == bits.ReverseBytes16(40000) && e.Until != 0 {
			t.Errorf("the reset connection's way was not freed: %+v", e)
		}
	}
}

// TestFlowCacheReopenedTCP: a TCP connection closed and opened again on
// the same addresses and ports at once goes to the real server the new
// connection was scheduled to, not to the old one a cache slot held.
func TestFlowCacheReopenedTCP(t *testing.T) {
	x := newTDP(t, Options{})
	x.apply(svc(dataplane.TCP, vip4, 80, "rr", pool(1, 1)...))
	p := pkt{src: netip.AddrPortFrom(client(1), 40000), dst: netip.AddrPortFrom(vip4, 80), proto: 6, flags: tcpSYN}
	old := dstMAC(x.expect(p.frame(), xdpTX, "tx_dr"))
	p.flags = tcpACK
	p.payload = []byte("x") // data: a copy for the whole window
	// established, then served from the cache
	for range 3 {
		if got := dstMAC(x.expect(p.frame(), xdpTX, "tx_dr")); got != old {
			t.Fatalf("established packet to %x, want %x", got, old)
		}
	}
	if st := x.cachedState(); st != 2 {
		t.Fatalf("cached state %d, want 2 (established)", st)
	}
	p.flags = tcpFIN | tcpACK
	p.payload = nil
	x.expect(p.frame(), xdpTX, "tx_dr")
	// the close released the slot: no copy serves, and the way is free
	if c := x.cached(); len(c) != 1 || c[0].Until != 0 {
		t.Fatalf("flow cache after FIN %+v, want the flow's way released (until 0)", c)
	}
	p.flags = tcpSYN
	reopened := dstMAC(x.expect(p.frame(), xdpTX, "tx_dr"))
	if reopened == old {
		t.Fatalf("rr gave the reopened connection the same real server %x", old)
	}
	// a connection before its handshake's ACK takes no way
	if c := x.cached(); len(c) != 1 || c[0].Until != 0 {
		t.Fatalf("flow cache after a new SYN %+v, want no live copy", c)
	}
	p.flags = tcpACK
	if got := dstMAC(x.expect(p.frame(), xdpTX, "tx_dr")); got != reopened {
		t.Errorf("ACK of the reopened connection went to %x, want %x (the new connection's)", got, reopened)
	}
}

// TestFlowCacheRealRemoved: a cached flow whose real server is removed
// is not sent to it.
func TestFlowCacheRealRemoved(t *testing.T) {
	x := newTDP(t, Options{})
	rs := pool(1, 1)
	x.apply(svc(dataplane.UDP, vip4, 53, "rr", rs...))
	p := pkt{src: netip.AddrPortFrom(client(1), 5000), dst: netip.AddrPortFrom(vip4, 53), proto: 17, payload: []byte("x")}
	first := dstMAC(x.expect(p.frame(), xdpTX, "tx_dr"))
	x.refill("tx_dr", p.frame())
	m := x.events()["fc_miss"]
	x.expect(p.frame(), xdpTX, "tx_dr")
	if x.events()["fc_miss"] != m {
		t.Fatal("the flow was not served from the cache")
	}
	var keep []dataplane.RealServer
	for _, r := range rs {
		if realMAC(r.Addr.Addr()) != first {
			keep = append(keep, r)
		}
	}
	gone := x.cached()[0].C.Real
	x.apply(svc(dataplane.UDP, vip4, 53, "rr", keep...))
	if got := dstMAC(x.expect(p.frame(), xdpTX, "tx_dr")); got != realMAC(keep[0].Addr.Addr()) {
		t.Errorf("after removing %x the flow went to %x, want %x", first, got, realMAC(keep[0].Addr.Addr()))
	}
	// the table path overwrote the copy: the next packet is a hit again
	if c := x.cached(); len(c) != 1 || c[0].C.Real == gone {
		t.Errorf("flow cache after the server's removal: %+v, want the flow with its new server", c)
	}
}

// TestFlowCacheTwoWays: two flows whose keys fall in the same set are
// both served from the cache; a third one takes the way filled longer
// ago, whichever way that is.
func TestFlowCacheTwoWays(t *testing.T) {
	// a 100 ms window (a quarter of the timeout), so a flow can be
	// refilled in the test's time
	x := newTDP(t, Options{Timeouts: dataplane.Timeouts{UDP: 400 * time.Millisecond}})
	x.apply(svc(dataplane.UDP, vip4, 53, "rr", pool(1, 1)...))
	dst := netip.AddrPortFrom(vip4, 53)
	ports := sameSetPorts(t, dst, 3)
	flow := func(i int) []byte {
		return pkt{src: netip.AddrPortFrom(client(1), ports[i]), dst: dst, proto: 17, payload: []byte("x")}.frame()
	}
	misses := func() uint64 { return x.events()["fc_miss"] }
	// inSet lists the client ports of the set's live copies
	inSet := func() (in []uint16) {
		for _, e := range x.cached() {
			if e.Until != 0 {
				in = append(in, bits.ReverseBytes16(e.Key.Sport))
			}
		}
		slices.Sort(in)
		return in
	}
	x.expect(flow(0), xdpTX, "tx_dr")
	x.expect(flow(1), xdpTX, "tx_dr")
	x.refill("tx_dr", flow(0), flow(1)) // ways 0 and 1, for the window
	if c := x.cached(); len(c) != 2 {
		t.Fatalf("flow cache holds %d flows, want 2: %+v", len(c), c)
	}
	n := misses()
	x.expect(flow(0), xdpTX, "tx_dr")
	x.expect(flow(1), xdpTX, "tx_dr")
	if got := misses(); got != n {
		t.Fatalf("flows of one set were not both cached: %d misses", got-n)
	}
	// past the window (the connections live on), flow 0 misses and is
	// refilled: way 1 now holds the older copy, which flow 2 takes
	time.Sleep(120 * time.Millisecond)
	x.expect(flow(0), xdpTX, "tx_dr")
	x.expect(flow(2), xdpTX, "tx_dr")
	if got, want := inSet(), []uint16{ports[0], ports[2]}; !slices.Equal(got, want) {
		t.Errorf("the set holds flows from ports %v, want %v (flow 1, filled longer ago, evicted)", got, want)
	}
}

// TestFlowCacheTakingTurns: three flows of one set that take turns,
// one packet each, with both ways' windows open: the cache keeps two of
// them most of the time (fc_admit), where taking in every flow that
// misses would have every packet miss; and a flow kept out gets in
// within some jiffies, not only once a window ends. Misses are counted
// by event fc_miss. The rounds are spread over
// some 60 jiffies (within the 1 s window), since fc_admit answers for a
// whole jiffy.
func TestFlowCacheTakingTurns(t *testing.T) {
	x := newTDP(t, Options{Timeouts: dataplane.Timeouts{UDP: 40 * time.Second}}) // a 1 s window
	x.apply(svc(dataplane.UDP, vip4, 53, "rr", pool(1, 1)...))
	spec, err := loadLb()
	if err != nil {
		t.Fatal(err)
	}
	if n, n6 := spec.Maps["flow_cache"].MaxEntries, spec.Maps["flow_cache6"].MaxEntries; n != fcSlots || n6 != fc6Slots {
		t.Fatalf("the object's flow caches have %d and %d slots per CPU, the tests assume %d and %d", n, n6, fcSlots, fc6Slots)
	}
	dst := netip.AddrPortFrom(vip4, 53)
	ports := sameSetPorts(t, dst, 3)
	// missed sends flow i's packet and says whether it missed the cache
	// (fc_miss: the flows are tracked, their first packets sent first)
	frame := func(i int) []byte {
		return pkt{src: netip.AddrPortFrom(client(1), ports[i]), dst: dst, proto: 17, payload: []byte("x")}.frame()
	}
	missed := func(i int) bool {
		n := x.events()["fc_miss"]
		x.expect(frame(i), xdpTX, "tx_dr")
		return x.events()["fc_miss"] != n
	}
	for i := range ports {
		x.expect(frame(i), xdpTX, "tx_dr")
	}
	x.dropFlowCache()
	const rounds = 60
	misses := 0
	for range rounds {
		for i := range ports {
			if missed(i) {
				misses++
			}
		}
		time.Sleep(11 * time.Millisecond) // a jiffy at HZ 100
	}
	// taking every flow in: 2 misses a round (3 when the windows' ends
	// differ); keeping two: about 1
	if misses > rounds*3/2 {
		t.Errorf("%d misses in %d rounds of three flows in one set, want about one a round", misses, rounds)
	}
	t.Logf("%d misses in %d rounds", misses, rounds)
	// a flow kept out by two live copies gets in within some jiffies
	// (one in eight lets it in), long before their windows end: once
	// the windows of the rounds' copies are over, flows 0 and 1 fill
	// the set afresh, and flow 2 tries for at most 400 ms
	time.Sleep(1100 * time.Millisecond)
	missed(0)
	missed(1)
	start := time.Now()
	for missed(2) {
		if time.Since(start) > 400*time.Millisecond {
			t.Fatalf("flow 2 kept out for 400 ms by two copies with open windows")
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("flow 2 got in after %v", time.Since(start))
}

// deleteAll empties a hash map with keys of type K and values of type
// V, as the daemon's expiry would.
func deleteAll[K, V any](t testing.TB, m *ebpf.Map) {
	t.Helper()
	var k K
	var v V
	var keys []K
	for it := m.Iterate(); it.Next(&k, &v); {
		keys = append(keys, k)
	}
	for _, k := range keys {
		if err := m.Delete(k); err != nil {
			t.Fatal(err)
		}
	}
}

// deleteConns empties conn4_tbl, leaving the flow cache as it is.
func (x *tdp) deleteConns() { deleteAll[lbFlowKey4, lbConn](x.t, x.d.objs.Conn4Tbl) }

// inRoutedNS moves the test's (locked) thread into a new network
// namespace where a reply's route lookup succeeds: forwarding on, a veth
// holding 198.51.100.0/24, and client(1)'s neighbour entry permanent.
// It returns the veth's MAC and the client's.
func inRoutedNS(t testing.TB) (ifMAC, clientMAC [6]byte) {
	t.Helper()
	inEmptyNS(t)
	for _, f := range []string{"/proc/sys/net/ipv4/conf/all/forwarding", "/proc/sys/net/ipv4/conf/lo/forwarding",
		"/proc/sys/net/ipv6/conf/all/forwarding", "/proc/sys/net/ipv6/conf/lo/forwarding"} {
		if err := os.WriteFile(f, []byte("1"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "fc0"}, PeerName: "fc1"}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	l, err := netlink.LinkByName("fc0")
	if err != nil {
		t.Fatal(err)
	}
	peer, err := netlink.LinkByName("fc1")
	if err != nil {
		t.Fatal(err)
	}
	for _, up := range []netlink.Link{lo, l, peer} {
		if err := netlink.LinkSetUp(up); err != nil {
			t.Fatal(err)
		}
	}
	addr, _ := netlink.ParseAddr("198.51.100.254/24")
	if err := netlink.AddrAdd(l, addr); err != nil {
		t.Fatal(err)
	}
	addr6, _ := netlink.ParseAddr("2001:db8:c00::fe/64")
	addr6.Flags = unix.IFA_F_NODAD
	if err := netlink.AddrAdd(l, addr6); err != nil {
		t.Fatal(err)
	}
	clientMAC = [6]byte{0x02, 0xc1, 0, 0, 0, 1}
	for _, c := range []netip.Addr{client(1), client6(1)} {
		if err := netlink.NeighAdd(&netlink.Neigh{LinkIndex: l.Attrs().Index, State: netlink.NUD_PERMANENT,
			IP: c.AsSlice(), HardwareAddr: clientMAC[:]}); err != nil {
			t.Fatal(err)
		}
	}
	return [6]byte(l.Attrs().HardwareAddr), clientMAC
}

// deleteNAT empties nat_tbl.
func (x *tdp) deleteNAT() { deleteAll[lbFlowKey, lbNatRev](x.t, x.d.objs.NatTbl) }

// TestFlowCacheNATReplies: the first reply of a NAT or SNAT connection
// found in nat_tbl and routed is copied into the flow cache with its
// route; the next ones are sent from the copy (the same frame out, with
// nat_tbl emptied), except one longer than the route was looked up for
// (1500 bytes, or the route's MTU when smaller), none once the real
// server is removed, and none past the window. (The steps between
// emptying nat_tbl and the last check take well under the 1 s
// window.)
func TestFlowCacheNATReplies(t *testing.T) {
	pool := &dataplane.SourcePool{Name: "p", Addresses: ips("10.9.0.1"), PortMin: 20000, PortMax: 20099}
	pool6 := &dataplane.SourcePool{Name: "p6", Addresses: ips("fd00:9::1"), PortMin: 20000, PortMax: 20099}
	real4 := netip.MustParseAddrPort("10.0.0.1:8080")
	real6 := netip.MustParseAddrPort("[fd00::1]:8080")
	for _, c := range []struct {
		name string
		svc  dataplane.Service
	}{
		{"nat", svc(dataplane.TCP, vip4, 80, "rr", rsv(real4, 1, dataplane.NAT))},
		{"snat", snatSvc(dataplane.TCP, vip4, 80, pool, real4)},
		{"nat-ipv6", svc(dataplane.TCP, vip6, 80, "rr", rsv(real6, 1, dataplane.NAT))},
		{"snat-ipv6", snatSvc(dataplane.TCP, vip6, 80, pool6, real6)},
	} {
		t.Run(c.name, func(t *testing.T) {
			x := newTDP(t, Options{})
			ifMAC, clientMAC := inRoutedNS(t)
			x.apply(c.svc)
			v6 := strings.HasSuffix(c.name, "ipv6")
			cl := netip.AddrPortFrom(client(1), 40000)
			vip := netip.AddrPortFrom(vip4, 80)
			hl := 20 + 20 // IP and TCP headers
			if v6 {
				cl = netip.AddrPortFrom(client6(1), 40000)
				vip = netip.AddrPortFrom(vip6, 80)
				hl = 40 + 20
			}
			want := "tx_nat"
			if strings.HasPrefix(c.name, "snat") {
				want = "tx_snat"
			}
			fwd := x.expect(pkt{src: cl, dst: vip, proto: 6, flags: tcpSYN}.frame(), xdpTX, want)
			// the reply goes to where the forwarded packet came from
			from, to := fwdAddrs(fwd)
			reply := func(payload string) []byte {
				return pkt{src: to, dst: from, proto: 6, flags: tcpACK, payload: []byte(payload)}.frame()
			}
			m0 := x.events()["fc_miss"]
			first := x.expect(reply("ab"), xdpRedirect, "redirect_nat_reply")
			if m := x.events()["fc_miss"] - m0; m != 1 {
				t.Errorf("a reply found in nat_tbl counted %d fc_miss, want 1", m)
			}
			src, dst := fwdAddrs(first)
			if src != vip || dst != cl || dstMAC(first) != clientMAC || [6]byte(first[6:12]) != ifMAC {
				t.Fatalf("reply %s -> %s, MACs %x <- %x; want %s -> %s, %x <- %x", src, dst, first[0:6], first[6:12], vip, cl, clientMAC, ifMAC)
			}
			if !v6 && !ipv4HeaderOK(first[14:]) || !l4OK(first[14:]) {
				t.Fatal("reply checksums wrong")
			}
			var copies int
			for _, e := range x.cached() {
				if e.C.State == 0xff {
					copies++
				}
			}
			for _, e := range x.cached6() {
				if e.C.State == 0xff {
					copies++
				}
			}
			if copies != 1 {
				t.Fatalf("flow cache holds %d reply copies, want 1", copies)
			}

			// without nat_tbl, the copy still sends the same frame
			x.deleteNAT()
			if again := x.expect(reply("ab"), xdpRedirect, "redirect_nat_reply"); !bytes.Equal(again, first) {
				t.Fatalf("reply from the copy differs:\n%x\n%x", again, first)
			}
			if m := x.events()["fc_miss"] - m0; m != 1 {
				t.Errorf("a reply served from the copy counted fc_miss (%d in all, want 1)", m)
			}
			// attached to the reply's interface alone (its real server
			// marked REAL_F_TX there), the copy leaves by XDP_TX
			// without the ingress interface (lo here) compared
			x.soleOn(t, c.svc, "fc0", func() {
				if again := x.expect(reply("ab"), xdpTX, "tx_nat_reply"); !bytes.Equal(again, first) {
					t.Fatalf("reply sent by XDP_TX differs:\n%x\n%x", again, first)
				}
			})
			// attached to another interface alone (lo, where the test
			// runs it), a reply routed out fc0 is redirected there
			x.soleOn(t, c.svc, "lo", func() {
				x.expect(reply("ab"), xdpRedirect, "redirect_nat_reply")
			})
			// longer, up to the 1500 bytes the route was looked up
			// for: served
			x.expect(reply(strings.Repeat("a", 1500-hl)), xdpRedirect, "redirect_nat_reply")
			// longer than that: the table path, which no longer
			// knows the binding, leaves it to the kernel
			x.expect(reply(strings.Repeat("a", 1500-hl+1)), xdpPass, "pass_no_service")

			// a fresh binding, copied, then its real server removed
			fwd = x.expect(pkt{src: netip.AddrPortFrom(cl.Addr(), 40001), dst: vip, proto: 6, flags: tcpSYN}.frame(), xdpTX, want)
			from, to = fwdAddrs(fwd)
			x.expect(reply("ab"), xdpRedirect, "redirect_nat_reply")
			x.deleteNAT()
			x.expect(reply("ab"), xdpRedirect, "redirect_nat_reply")
			gone := c.svc
			gone.RealServers = nil
			x.apply(gone)
			x.expect(reply("ab"), xdpPass, "pass_no_service")

			// a route with a smaller MTU: the copy serves up to it
			l, err := netlink.LinkByName("fc0")
			if err != nil {
				t.Fatal(err)
			}
			if err := netlink.LinkSetMTU(l, 1400); err != nil {
				t.Fatal(err)
			}
			x.apply(c.svc)
			fwd = x.expect(pkt{src: netip.AddrPortFrom(cl.Addr(), 40002), dst: vip, proto: 6, flags: tcpSYN}.frame(), xdpTX, want)
			from, to = fwdAddrs(fwd)
			x.expect(reply("abcd"), xdpRedirect, "redirect_nat_reply")
			x.deleteNAT()
			x.expect(reply(strings.Repeat("a", 1400-hl)), xdpRedirect, "redirect_nat_reply")
			x.expect(reply(strings.Repeat("a", 1400-hl+1)), xdpPass, "pass_no_service")

			// a reply with FIN leaves its copy a jiffy or two
			// (fc_shorten, for the close's last ACK); a reply copied
			// from the table path without payload serves briefly, one
			// with data for the window (reply_brief)
			fwd3 := x.expect(pkt{src: netip.AddrPortFrom(cl.Addr(), 40003), dst: vip, proto: 6, flags: tcpSYN}.frame(), xdpTX, want)
			from3, to3 := fwdAddrs(fwd3)
			data3 := pkt{src: to3, dst: from3, proto: 6, flags: tcpACK, payload: []byte("ab")}.frame()
			ack3 := pkt{src: to3, dst: from3, proto: 6, flags: tcpACK}.frame()
			fin3 := pkt{src: to3, dst: from3, proto: 6, flags: tcpACK | tcpFIN}.frame()
			// until3 is the window's end of the binding's reply copy
			until3 := func() uint64 {
				sport, dport := bits.ReverseBytes16(to3.Port()), bits.ReverseBytes16(from3.Port())
				type replyCopy struct {
					state        uint8
					sport, dport uint16
					until        uint64
				}
				var all []replyCopy
				for _, e := range x.cached() {
					all = append(all, replyCopy{e.C.State, e.Key.Sport, e.Key.Dport, e.Until})
				}
				for _, e := range x.cached6() {
					all = append(all, replyCopy{e.C.State, e.Key.Sport, e.Key.Dport, e.Until})
				}
				for _, c := range all {
					if c.state == 0xff && c.sport == sport && c.dport == dport {
						return c.until
					}
				}
				return 0
			}
			x.expect(data3, xdpRedirect, "redirect_nat_reply")
			full := until3()
			m0 = x.events()["fc_miss"]
			x.expect(fin3, xdpRedirect, "redirect_nat_reply")
			if m := x.events()["fc_miss"] - m0; m != 0 {
				t.Errorf("the FIN was not served from the copy (%d fc_miss)", m)
			}
			// a 1 s window is 100 jiffies or more; a shortened one 2
			if short := until3(); short == 0 || short+50 > full {
				t.Errorf("after the FIN the copy ends at jiffy %d, want some jiffies from now (before: %d)", short, full)
			}
			x.dropFlowCache()
			x.expect(ack3, xdpRedirect, "redirect_nat_reply")
			if brief := until3(); brief == 0 || brief+50 > full {
				t.Errorf("a pure ACK's copy ends at jiffy %d, want some jiffies from now (a data reply's: %d)", brief, full)
			}
			x.dropFlowCache()
			x.expect(data3, xdpRedirect, "redirect_nat_reply")
			if u := until3(); u+5 < full {
				t.Errorf("a data reply's copy ends at jiffy %d, want the window's end (%d before)", u, full)
			}

			// past its window (FC_WINDOW_NS, 1 s) the copy serves no
			// more. With nat_tbl emptied again, data3's copy, just
			// filled, is all that could send it. (Not the first
			// binding's reply: its copy went with dropFlowCache, and
			// once its nat_tbl entry was deleted the pool could give
			// the third connection the same address and port, whose
			// entry would then answer for it.)
			x.deleteNAT()
			x.expect(data3, xdpRedirect, "redirect_nat_reply")
			time.Sleep(1100 * time.Millisecond)
			x.expect(data3, xdpPass, "pass_no_service")
		})
	}
}

// soleOn runs fn with the real servers of svc marked as leaving by
// interface ifname, the one the program is attached to (REAL_F_TX), as
// setXmit marks them, and puts them back as they were afterwards.
func (x *tdp) soleOn(t *testing.T, svc dataplane.Service, ifname string, fn func()) {
	t.Helper()
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	was := map[uint32]lbReal{}
	for _, rs := range x.d.svcs[svc.Key].reals {
		r, err := x.d.readReal(rs.id)
		if err != nil {
			t.Fatal(err)
		}
		was[rs.id] = r
		r.Flags, r.Ifindex = realFTX, uint32(l.Attrs().Index)
		if err := x.d.reals().putAll(rs.id, &r); err != nil {
			t.Fatal(err)
		}
	}
	fn()
	for id, r := range was {
		if err := x.d.reals().putAll(id, &r); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFlowCacheUncalibratedClock: without a calibrated jiffies clock
// (clk_mult 0, as at HZ=300) the cache still serves, for a window
// counted in jiffies of the longest length (10 ms).
func TestFlowCacheUncalibratedClock(t *testing.T) {
	x := newTDP(t, Options{Timeouts: dataplane.Timeouts{UDP: 2 * time.Second}})
	x.d.clkMult = 0
	if err := x.d.writeSettings(); err != nil {
		t.Fatal(err)
	}
	x.apply(svc(dataplane.UDP, vip4, 53, "rr", pool(1, 1)...))
	p := pkt{src: netip.AddrPortFrom(client(1), 5000), dst: netip.AddrPortFrom(vip4, 53), proto: 17, payload: []byte("x")}
	x.expect(p.frame(), xdpTX, "tx_dr")
	x.refill("tx_dr", p.frame())
	x.deleteConns()
	ev0 := x.events()
	x.expect(p.frame(), xdpTX, "tx_dr")
	if ev := x.events(); ev["conn_new"] != ev0["conn_new"] {
		t.Errorf("the flow was not served from the cache: %v → %v", ev0, ev)
	}
}

// deleteConns6 empties conn_tbl, the IPv6 connection table.
func (x *tdp) deleteConns6() { deleteAll[lbFlowKey, lbConn](x.t, x.d.objs.ConnTbl) }

// TestFlowCacheIPv6: IPv6 flows have their own cache (flow_cache6):
// established packets are served from it without conn_tbl, a FIN is
// not, and the map has its block per CPU.
func TestFlowCacheIPv6(t *testing.T) {
	x := newTDP(t, Options{})
	if n := x.d.objs.FlowCache6.MaxEntries(); n != fc6Slots*uint32(x.d.ncpu) {
		t.Fatalf("flow_cache6 of %d slots, want %d per CPU × %d", n, fc6Slots, x.d.ncpu)
	}
	x.apply(svc(dataplane.UDP, vip6, 53, "rr", rsv(rs6a, 1, dataplane.DR)), svc(dataplane.TCP, vip6, 80, "rr", rsv(rs6a, 1, dataplane.DR)))
	newConns := func() uint64 { return x.events()["conn_new"] }

	u := pkt{src: netip.AddrPortFrom(client6(1), 5000), dst: netip.AddrPortFrom(vip6, 53), proto: 17, payload: []byte("x")}
	first := dstMAC(x.expect(u.frame(), xdpTX, "tx_dr"))
	x.refill("tx_dr", u.frame())
	var cached int
	var e lbFcEntry6
	for k := uint32(0); k < fc6Slots; k++ {
		if err := x.d.objs.FlowCache6.Lookup(k, &e); err != nil {
			t.Fatal(err)
		}
		if e.Key.Family != 0 {
			cached++
			if e.C.State != 5 || e.Key.Sport != bits.ReverseBytes16(5000) {
				t.Errorf("cached entry %+v, want the UDP flow from port 5000", e)
			}
		}
	}
	if cached != 1 {
		t.Fatalf("flow_cache6 holds %d entries, want 1", cached)
	}
	x.deleteConns6()
	n := newConns()
	if got := dstMAC(x.expect(u.frame(), xdpTX, "tx_dr")); got != first || newConns() != n {
		t.Fatalf("cached IPv6 flow went to %x with %d new connections, want %x and none", got, newConns()-n, first)
	}

	// its real server removed, the copy is not used
	x.apply(svc(dataplane.UDP, vip6, 53, "rr"), svc(dataplane.TCP, vip6, 80, "rr", rsv(rs6a, 1, dataplane.DR)))
	x.expect(u.frame(), xdpDrop, "drop_no_dest")

	s := syn(client6(1), 40000, vip6, 80)
	x.expect(s.frame(), xdpTX, "tx_dr")
	s.flags = tcpACK
	s.payload = []byte("x")
	x.expect(s.frame(), xdpTX, "tx_dr") // established, copied (data: for the window)
	x.deleteConns6()
	x.expect(s.frame(), xdpTX, "tx_dr") // served from the copy
	s.flags = tcpACK | tcpFIN
	s.payload = nil
	x.expect(s.frame(), xdpPass, "pass_tcp_nosyn") // the table path, which lost it

	// a new connection takes a way at its handshake's ACK, and frees it
	// at its FIN
	live := func(port uint16) (n int) {
		for _, e := range x.cached6() {
			if e.Key.Sport == bits.ReverseBytes16(port) && e.Until != 0 {
				n++
			}
		}
		return n
	}
	s = syn(client6(1), 40001, vip6, 80)
	x.expect(s.frame(), xdpTX, "tx_dr")
	if n := live(40001); n != 0 {
		t.Errorf("%d live copies after the SYN, want none", n)
	}
	s.flags = tcpACK
	x.expect(s.frame(), xdpTX, "tx_dr")
	if n := live(40001); n != 1 {
		t.Errorf("%d live copies once established, want 1", n)
	}
	s.flags = tcpACK | tcpFIN
	x.expect(s.frame(), xdpTX, "tx_dr")
	if n := live(40001); n != 0 {
		t.Errorf("%d live copies after the FIN, want none", n)
	}
}

// TestFlowCacheSweep: where a flow's packets come through any CPU (veth,
// tun: CFG_F_FC_SWEEP), a client's FIN or RST frees the flow's copies on
// every CPU, and so does a SYN that replaces a closing connection, so
// the reopened connection's packets on the CPU that copied the old one
// go to the new connection's real server. Without the flag (a NIC,
// whose RSS keeps a flow on one CPU) that CPU's copy still serves, the
// case the sweep is for: those subtests rely on CPU 1's copy lasting
// its window (1 s) from its fill to the packet that meets it.
func TestFlowCacheSweep(t *testing.T) {
	for _, fam := range []string{"ipv4", "ipv6"} {
		for _, on := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/sweep=%v", fam, on), func(t *testing.T) {
				x := newTDP(t, Options{})
				x.needCPU1()
				x.d.sweep = on
				if err := x.d.writeSettings(); err != nil {
					t.Fatal(err)
				}
				v6 := fam == "ipv6"
				s := svc(dataplane.TCP, vip4, 80, "rr", pool(1, 1)...)
				p := syn(client(1), 40000, vip4, 80)
				if v6 {
					s = svc(dataplane.TCP, vip6, 80, "rr", rsv(rs6a, 1, dataplane.DR), rsv(rs6b, 1, dataplane.DR))
					p = syn(client6(1), 40000, vip6, 80)
				}
				x.apply(s)
				// open: a connection from port, opened on CPU 0,
				// established on CPU 1 with data (a copy there for
				// the window); its real server's MAC
				open := func(port uint16) [6]byte {
					t.Helper()
					p.src = netip.AddrPortFrom(p.src.Addr(), port)
					p.flags, p.payload = tcpSYN, nil
					r := dstMAC(x.expect(p.frame(), xdpTX, "tx_dr"))
					x.onCPU(1)
					p.flags, p.payload = tcpACK, []byte("x")
					if got := dstMAC(x.expect(p.frame(), xdpTX, "tx_dr")); got != r {
						t.Fatalf("established packet to %x, want %x", got, r)
					}
					x.onCPU(0)
					if n := x.liveCopies(1, v6, port); n != 1 {
						t.Fatalf("CPU 1 holds %d live copies of the flow from port %d, want 1", n, port)
					}
					return r
				}
				// closed: after the close on CPU 0, CPU 1's copy is
				// gone with the sweep, there without
				closed := func(port uint16, via string) {
					t.Helper()
					want := 1
					if on {
						want = 0
					}
					if n := x.liveCopies(1, v6, port); n != want {
						t.Errorf("after %s on CPU 0, CPU 1 holds %d live copies of the flow, want %d", via, n, want)
					}
				}
				// reopen: a new SYN on CPU 0 starts a connection to
				// the other real server; its ACK on CPU 1 goes there
				// with the sweep, to the old one from CPU 1's copy
				// without
				reopen := func(old [6]byte, via string) {
					t.Helper()
					p.flags, p.payload = tcpSYN, nil
					reopened := dstMAC(x.expect(p.frame(), xdpTX, "tx_dr"))
					if reopened == old {
						t.Fatalf("rr gave the reopened connection the same real server %x", old)
					}
					x.onCPU(1)
					p.flags = tcpACK
					got := dstMAC(x.expect(p.frame(), xdpTX, "tx_dr"))
					x.onCPU(0)
					want, what := reopened, "the reopened connection's"
					if !on {
						want, what = old, "the old connection's, from CPU 1's copy"
					}
					if got != want {
						t.Errorf("after %s, the reopened connection's ACK on CPU 1 went to %x, want %x (%s); old %x, reopened %x",
							via, got, want, what, old, reopened)
					}
				}

				old := open(40000)
				p.flags = tcpFIN | tcpACK
				x.expect(p.frame(), xdpTX, "tx_dr")
				closed(40000, "a FIN")
				reopen(old, "a FIN")

				old = open(40001)
				p.flags = tcpRST
				x.expect(p.frame(), xdpTX, "tx_dr")
				closed(40001, "an RST")
				reopen(old, "an RST")

				// closed with no FIN or RST this program saw (the
				// table says so, as when another CPU wrote the state
				// after the sweep read): the SYN that replaces the
				// connection sweeps
				old = open(40002)
				x.closeConns(v6)
				reopen(old, "a SYN replacing a closed connection")
			})
		}
	}
}

// liveCopies counts the entries of CPU cpu's block of flow_cache
// (IPv6: flow_cache6) that hold a TCP flow from source port sport and
// serve (a window not ended: until is not 0, and the tests run within
// their windows).
func (x *tdp) liveCopies(cpu int, v6 bool, sport uint16) int {
	x.t.Helper()
	port := bits.ReverseBytes16(sport)
	c := uint32(cpu)
	if v6 {
		return len(entriesIn(x.t, x.d.objs.FlowCache6, c*fc6Slots, (c+1)*fc6Slots, func(e *lbFcEntry6) bool {
			return e.Key.Proto == 6 && e.Key.Sport == port && e.Until != 0
		}))
	}
	return len(entriesIn(x.t, x.d.objs.FlowCache, c*fcSlots, (c+1)*fcSlots, func(e *lbFcEntry) bool {
		return e.Key.Proto == 6 && e.Key.Sport == port && e.Until != 0
	}))
}

// closeConns sets every connection of conn4_tbl (IPv6: conn_tbl) to
// CLOSE, as the program does at an RST.
func (x *tdp) closeConns(v6 bool) {
	x.t.Helper()
	m := x.d.objs.Conn4Tbl
	if v6 {
		m = x.d.objs.ConnTbl
	}
	var keys [][]byte
	var vals []lbConn
	it := m.Iterate()
	k := make([]byte, m.KeySize())
	var c lbConn
	for it.Next(&k, &c) {
		keys, vals = append(keys, slices.Clone(k)), append(vals, c)
	}
	if err := it.Err(); err != nil {
		x.t.Fatal(err)
	}
	for i, k := range keys {
		vals[i].State = 4 // ST_CLOSE
		if err := m.Put(k, &vals[i]); err != nil {
			x.t.Fatal(err)
		}
	}
}

// TestSweepFlag: attached to a veth, or to the loopback, the program is
// told to sweep (CFG_F_FC_SWEEP); attached to an interface of another
// kind (a bridge, in generic mode), it is not.
func TestSweepFlag(t *testing.T) {
	requireBPF(t)
	vethInEmptyNS(t, "sw0", "sw1")
	if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "swbr"}}); err != nil {
		t.Fatal(err)
	}
	pin := "/sys/fs/bpf/xd-sweep-flag"
	t.Cleanup(func() { _ = RemovePinned(pin) })
	for _, c := range []struct {
		ifname string
		mode   Mode
		want   bool
	}{{"sw0", Native, true}, {"lo", Generic, true}, {"swbr", Generic, false}} {
		d, err := New(Options{Interfaces: []string{c.ifname}, Mode: c.mode, PinPath: pin, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		var s lbConfig
		err = d.objs.Settings.Lookup(uint32(0), &s)
		if cerr := d.Close(); cerr != nil {
			t.Fatal(cerr)
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Flags&cfgFSweep != 0; got != c.want {
			t.Errorf("attached to %s: CFG_F_FC_SWEEP %v, want %v (flags %#x)", c.ifname, got, c.want, s.Flags)
		}
	}
}

// TestSweepCPUsLoaded: the program is loaded with sweep_cpus, the CPU
// blocks a sweep visits, set to the highest online CPU's number plus
// one, within the possible CPUs the maps have blocks for.
func TestSweepCPUsLoaded(t *testing.T) {
	x := newTDP(t, Options{})
	var got uint32
	if err := x.d.objs.SweepCpus.Get(&got); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(onlineCPUsFile)
	if err != nil {
		t.Skipf("no list of online CPUs: %v", err)
	}
	want, err := cpuListEnd(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if int(got) != want || want < 1 || want > x.d.ncpu {
		t.Errorf("sweep_cpus %d, want %d (online %q, possible %d)", got, want, strings.TrimSpace(string(b)), x.d.ncpu)
	}
}

// TestFlowCacheNATReplyReused: a client that reuses its port toward
// another virtual service with the same real server and port makes the
// same reply key (real server and port → client and port) as before.
// The new connection replaces nat_tbl's entry and frees the key's reply
// copies on every CPU (nat_store), with or without the sweep flag, so
// its replies leave from the new virtual address on CPU 0 and CPU 1,
// where the first connection's replies had left copies. Reused toward
// the same virtual service, the entry is kept (no LRU insert) and the
// copies still serve. TCP (closed, then a new SYN) and UDP.
func TestFlowCacheNATReplyReused(t *testing.T) {
	real4 := netip.MustParseAddrPort("10.0.0.1:8080")
	real6 := netip.MustParseAddrPort("[fd00::1]:8080")
	for _, fam := range []string{"ipv4", "ipv6"} {
		for _, proto := range []uint8{6, 17} {
			for _, on := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/proto=%d/sweep=%v", fam, proto, on), func(t *testing.T) {
					testNATReplyReused(t, fam == "ipv6", proto, on, real4, real6)
				})
			}
		}
	}
}

func testNATReplyReused(t *testing.T, v6 bool, proto uint8, sweep bool, real4, real6 netip.AddrPort) {
	x := newTDP(t, Options{})
	x.needCPU1()
	inRoutedNS(t)
	x.d.sweep = sweep
	if err := x.d.writeSettings(); err != nil {
		t.Fatal(err)
	}
	rs, vipA, vipB := real4, vip4, netip.MustParseAddr("192.0.2.11")
	cl := netip.AddrPortFrom(client(1), 40000)
	if v6 {
		rs, vipA, vipB = real6, vip6, netip.MustParseAddr("2001:db8::11")
		cl = netip.AddrPortFrom(client6(1), 40000)
	}
	p := dataplane.TCP
	if proto == 17 {
		p = dataplane.UDP
	}
	x.apply(svc(p, vipA, 80, "rr", rsv(rs, 1, dataplane.NAT)), svc(p, vipB, 80, "rr", rsv(rs, 1, dataplane.NAT)))
	flags := func(f uint8) uint8 {
		if proto == 17 {
			return 0
		}
		return f
	}
	// send sends the client's packet to vip with flags f
	send := func(vip netip.Addr, f uint8) {
		t.Helper()
		x.expect(pkt{src: cl, dst: netip.AddrPortFrom(vip, 80), proto: proto, flags: flags(f)}.frame(), xdpTX, "tx_nat")
	}
	// fromFlags sends a reply with flags f on cpu and says which
	// virtual address it left from, and whether it missed the flow
	// cache; from sends one with data
	fromFlags := func(cpu int, f uint8, payload string) (netip.Addr, bool) {
		t.Helper()
		x.onCPU(cpu)
		defer x.onCPU(0)
		m0 := x.events()["fc_miss"]
		out := x.expect(pkt{src: rs, dst: cl, proto: proto, flags: flags(f), payload: []byte(payload)}.frame(),
			xdpRedirect, "redirect_nat_reply")
		src, dst := fwdAddrs(out)
		if dst != cl || src.Port() != 80 {
			t.Fatalf("reply %s -> %s, want from port 80 to %s", src, dst, cl)
		}
		return src.Addr(), x.events()["fc_miss"] != m0
	}
	from := func(cpu int) (netip.Addr, bool) { return fromFlags(cpu, tcpACK, "ab") }
	// replies checks a reply on each CPU: from vip, and missed or not
	replies := func(what string, vip netip.Addr, miss bool) {
		t.Helper()
		for cpu := range 2 {
			got, missed := from(cpu)
			if got != vip || missed != miss {
				t.Errorf("%s: a reply on CPU %d left from %s (flow-cache miss %v), want %s (miss %v)",
					what, cpu, got, missed, vip, miss)
			}
		}
	}

	send(vipA, tcpSYN)
	replies("the first connection's first replies", vipA, true)
	replies("its next ones", vipA, false)
	if proto == 6 { // closed, and the port used again at once
		claims := x.natClaims()
		send(vipA, tcpFIN|tcpACK)
		time.Sleep(20 * time.Millisecond) // a jiffy or more: a rewritten entry would show a later claim
		send(vipA, tcpSYN)
		if again := x.natClaims(); !slices.Equal(again, claims) {
			t.Errorf("a new connection to the same virtual service: nat_tbl's claims %v, then %v; want the entry kept", claims, again)
		}
		replies("a new connection to the same virtual service", vipA, false)
	}
	send(vipB, tcpSYN)
	// TCP: the server's SYN-ACK, on CPU 0
	if got, missed := fromFlags(0, tcpSYN|tcpACK, ""); got != vipB || !missed {
		t.Errorf("the port reused toward another virtual service: its first reply (a SYN-ACK for TCP) left from %s "+
			"(flow-cache miss %v), want %s by the table path", got, missed, vipB)
	}
	if got, missed := from(1); got != vipB || !missed {
		t.Errorf("the port reused toward another virtual service: a reply on CPU 1 left from %s (flow-cache miss %v), "+
			"want %s by the table path", got, missed, vipB)
	}
	// from the copies, which a SYN-ACK's (brief, 10-20 ms) may have left
	// already on a loaded machine: the address alone
	for cpu := range 2 {
		if got, _ := from(cpu); got != vipB {
			t.Errorf("the port reused toward another virtual service: a later reply on CPU %d left from %s, want %s", cpu, got, vipB)
		}
	}

	// The first connection expires: the walk deletes it, but not the
	// reply entry, which is the second connection's now.
	x.ageConns(v6, netip.AddrPortFrom(vipA, 80))
	x.d.mu.Lock()
	x.d.walk.done = false
	err := x.d.syncLocked()
	x.d.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(x.conns()); n != 1 {
		t.Fatalf("after the walk %d connections, want 1 (the one to %s)", n, vipB)
	}
	x.dropFlowCache()
	replies("after the first connection expired", vipB, true)

	// The second one expires too: the walk deletes its reply entry, which
	// it still owns.
	x.ageConns(v6, netip.AddrPortFrom(vipB, 80))
	x.d.mu.Lock()
	x.d.walk.done = false
	err = x.d.syncLocked()
	x.d.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(x.conns()); n != 0 {
		t.Errorf("after the second walk %d connections, want 0", n)
	}
	if claims := x.natClaims(); len(claims) != 0 {
		t.Errorf("after the second connection expired nat_tbl holds %d entries, want 0 (the walk deletes an entry its dead connection owns)", len(claims))
	}
}

// natClaims returns the claim times of nat_tbl's entries, sorted.
func (x *tdp) natClaims() []uint64 {
	x.t.Helper()
	var out []uint64
	var k lbFlowKey
	var v lbNatRev
	it := x.d.objs.NatTbl.Iterate()
	for it.Next(&k, &v) {
		out = append(out, v.Ns)
	}
	if err := it.Err(); err != nil {
		x.t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// ageConns makes the connections to dst in conn4_tbl (IPv6: conn_tbl)
// older than any timeout.
func (x *tdp) ageConns(v6 bool, dst netip.AddrPort) {
	x.t.Helper()
	port := bits.ReverseBytes16(dst.Port())
	var aged int
	if v6 {
		aged = ageIn(x.t, x.d.objs.ConnTbl, func(k *lbFlowKey) bool {
			return netip.AddrFrom16(k.Daddr) == dst.Addr() && k.Dport == port
		})
	} else {
		aged = ageIn(x.t, x.d.objs.Conn4Tbl, func(k *lbFlowKey4) bool {
			return netip.AddrFrom4(k.Daddr) == dst.Addr() && k.Dport == port
		})
	}
	if aged != 1 {
		x.t.Fatalf("aged %d connections to %s, want 1", aged, dst)
	}
}

// ageIn sets the last-use time of m's connections whose key matches to 1
// ns and says how many there were.
func ageIn[K any](t testing.TB, m *ebpf.Map, match func(*K) bool) int {
	t.Helper()
	var keys []K
	var vals []lbConn
	var k K
	var c lbConn
	it := m.Iterate()
	for it.Next(&k, &c) {
		if match(&k) {
			keys, vals = append(keys, k), append(vals, c)
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	for i := range keys {
		vals[i].LastNs = 1
		if err := m.Put(&keys[i], &vals[i]); err != nil {
			t.Fatal(err)
		}
	}
	return len(keys)
}

// TestFlowCacheSNATTakeover: an SNAT binding whose connection left the
// table while its replies still came (evicted from a full table: here
// deleted, with the binding's claim made old) is taken over by a new
// connection, and the binding's reply copies go with it: the next reply
// to the binding reaches the new client, not the old one from a copy.
func TestFlowCacheSNATTakeover(t *testing.T) {
	x := newTDP(t, Options{})
	inRoutedNS(t)
	rs := netip.MustParseAddrPort("10.0.0.1:53")
	p := &dataplane.SourcePool{Name: "one", Addresses: ips("10.9.0.1"), PortMin: 40000, PortMax: 40000}
	x.apply(snatSvc(dataplane.UDP, vip4, 53, p, rs))
	vip := netip.AddrPortFrom(vip4, 53)
	old, next := netip.AddrPortFrom(client(1), 5000), netip.AddrPortFrom(client(1), 5001)

	src, _ := fwdAddrs(x.expect(udp(old, vip, "q").frame(), xdpTX, "tx_snat"))
	if !inPool(src, p) {
		t.Fatalf("bound to %s, not the pool's", src)
	}
	// reply sends a reply to the binding and says where it went and
	// whether it missed the flow cache
	reply := func() (netip.AddrPort, bool) {
		t.Helper()
		m0 := x.events()["fc_miss"]
		from, to := fwdAddrs(x.expect(udp(rs, src, "a").frame(), xdpRedirect, "redirect_nat_reply"))
		if from != vip {
			t.Fatalf("reply from %s, want %s", from, vip)
		}
		return to, x.events()["fc_miss"] != m0
	}
	if to, missed := reply(); to != old || !missed {
		t.Fatalf("first reply to %s (miss %v), want %s by the table path", to, missed, old)
	}
	if to, missed := reply(); to != old || missed {
		t.Fatalf("second reply to %s (miss %v), want %s from the copy", to, missed, old)
	}

	// the connection leaves the table, its binding claimed long ago
	x.deleteConns()
	var k lbFlowKey
	var v lbNatRev
	n := 0
	it := x.d.objs.NatTbl.Iterate()
	for it.Next(&k, &v) {
		n++
	}
	if err := it.Err(); err != nil || n != 1 {
		t.Fatalf("nat_tbl holds %d entries (%v), want the binding's", n, err)
	}
	v.Ns = 1
	if err := x.d.objs.NatTbl.Put(&k, &v); err != nil {
		t.Fatal(err)
	}
	// a new connection takes the pool's one binding over
	if got, _ := fwdAddrs(x.expect(udp(next, vip, "q").frame(), xdpTX, "tx_snat")); got != src {
		t.Fatalf("the new connection bound to %s, want the taken-over %s", got, src)
	}
	if to, missed := reply(); to != next || !missed {
		t.Errorf("after the take-over a reply went to %s (miss %v), want %s by the table path (the old copy freed)", to, missed, next)
	}
}
