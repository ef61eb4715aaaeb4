package xdp

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netns"

	"github.com/govs/govs/internal/dataplane"
)

// inEmptyNS moves the (locked) test thread to a new empty network
// namespace, so that replies find no route and go to the kernel
// (pass_nat_reply), and back at cleanup.
func inEmptyNS(t testing.TB) {
	t.Helper()
	// the namespace is the thread's: keep the test on it (exec'd
	// commands and netlink calls run where the goroutine runs)
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	empty, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netns.Set(orig); orig.Close(); empty.Close(); runtime.UnlockOSThread() })
}

// fwdAddrs decodes the source and destination of a forwarded frame.
func fwdAddrs(out []byte) (src, dst netip.AddrPort) {
	ip := out[14:]
	if ip[0]>>4 == 4 {
		ihl := int(ip[0]&0xf) * 4
		src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[12:16])), binary.BigEndian.Uint16(ip[ihl:]))
		dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[16:20])), binary.BigEndian.Uint16(ip[ihl+2:]))
		return src, dst
	}
	src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(ip[8:24])), binary.BigEndian.Uint16(ip[40:]))
	dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(ip[24:40])), binary.BigEndian.Uint16(ip[42:]))
	return src, dst
}

func udp(src, dst netip.AddrPort, payload string) pkt {
	return pkt{src: src, dst: dst, proto: 17, payload: []byte(payload)}
}

func snatSvc(proto dataplane.Proto, vip netip.Addr, port uint16, pool *dataplane.SourcePool, reals ...netip.AddrPort) dataplane.Service {
	s := svc(proto, vip, port, "rr")
	for _, r := range reals {
		s.RealServers = append(s.RealServers, rsv(r, 1, dataplane.SNAT))
	}
	s.SourcePool = pool
	return s
}

func ips(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

// inPool reports whether b is an address of p within its port range.
func inPool(b netip.AddrPort, p *dataplane.SourcePool) bool {
	return slicesContains(p.Addresses, b.Addr()) && b.Port() >= p.PortMin && b.Port() <= p.PortMax
}

// TestSNATPerServicePool: each service binds from its own pool and port
// range (only the addresses of its family), a service without a pool
// from the real server's src; Conns lists the translated source; a pool
// change keeps established bindings and moves new connections; services
// with the same addresses share one run of snat_pool; Apply refuses bad
// pools naming the service and changes nothing.
func TestSNATPerServicePool(t *testing.T) {
	x := newTDP(t, Options{})
	inEmptyNS(t)
	real := netip.MustParseAddrPort("10.0.0.1:8080")
	real6 := netip.MustParseAddrPort("[fd00::1]:8080")
	pA := &dataplane.SourcePool{Name: "a", Addresses: ips("10.9.0.1", "10.9.0.2", "fd09::1"), PortMin: 20000, PortMax: 20099}
	pB := &dataplane.SourcePool{Name: "b", Addresses: ips("10.9.1.1"), PortMin: 30000, PortMax: 30999}
	pB2 := &dataplane.SourcePool{Name: "b", Addresses: ips("10.9.1.1"), PortMin: 30000, PortMax: 30999} // same addresses as pB
	p6 := &dataplane.SourcePool{Name: "six", Addresses: ips("10.9.0.1", "fd09::1", "fd09::2"), PortMin: 40000, PortMax: 40049}
	sA := snatSvc(dataplane.TCP, vip4, 80, pA, real)
	sB := snatSvc(dataplane.UDP, vip4, 53, pB, netip.AddrPortFrom(real.Addr(), 5353))
	sB2 := snatSvc(dataplane.UDP, vip4, 54, pB2, netip.AddrPortFrom(real.Addr(), 5353))
	sC := snatSvc(dataplane.TCP, vip4, 81, nil, real)
	s6 := snatSvc(dataplane.TCP, vip6, 80, p6, real6)
	x.apply(sA, sB, sB2, sC, s6)
	if n := len(x.d.snatPools.runs); n != 3 {
		t.Errorf("%d runs of snat_pool, want 3 (a, b shared by two services, six)", n)
	}

	type flow struct {
		p    pkt
		pool *dataplane.SourcePool // nil: the real server's src (tunSrc in these tests)
	}
	var flows []flow
	for i := range 40 {
		c := netip.AddrPortFrom(client(1+i%5), uint16(41000+i))
		flows = append(flows,
			flow{syn(c.Addr(), c.Port(), vip4, 80), pA},
			flow{udp(c, netip.AddrPortFrom(vip4, 53), "q"), pB},
			flow{udp(c, netip.AddrPortFrom(vip4, 54), "q"), pB2},
			flow{syn(c.Addr(), c.Port(), vip4, 81), nil},
			flow{syn(client6(1+i%5), c.Port(), vip6, 80), p6})
	}
	bound := map[netip.AddrPort]netip.AddrPort{} // client → binding
	for _, f := range flows {
		out := x.expect(f.p.frame(), xdpTX, "tx_snat")
		src, _ := fwdAddrs(out)
		switch {
		case f.pool == nil && (src.Addr() != tunSrc || src.Port() < 1024):
			t.Errorf("flow to %s bound to %s, want the real server's src %s", f.p.dst, src, tunSrc)
		case f.pool == nil && src.Port() >= x.d.ephLo && src.Port() <= x.d.ephHi:
			t.Errorf("flow to %s bound to %s, a port of the kernel's ephemeral range %d-%d (the director's own connections use them)",
				f.p.dst, src, x.d.ephLo, x.d.ephHi)
		case f.pool != nil && !inPool(src, f.pool):
			t.Errorf("flow to %s bound to %s, not in pool %s %v %d-%d", f.p.dst, src, f.pool.Name, f.pool.Addresses, f.pool.PortMin, f.pool.PortMax)
		case f.pool == p6 && !src.Addr().Is6():
			t.Errorf("IPv6 flow bound to %s", src)
		}
		if f.p.dst.Port() == 80 && f.p.src.Addr().Is4() {
			bound[f.p.src] = src
		}
	}
	// Conns shows the translated source of every connection
	for _, c := range x.conns() {
		if !c.Local.IsValid() {
			t.Errorf("conn %s → %s listed without its translated source", c.Client, c.Virtual)
			continue
		}
		if c.Virtual.Port() == 80 && c.Client.Addr().Is4() && bound[c.Client] != c.Local {
			t.Errorf("conn %s lists Local %s, the program bound %s", c.Client, c.Local, bound[c.Client])
		}
	}

	// a new pool for service a: established connections keep their
	// binding, new ones take the new pool
	pA2 := &dataplane.SourcePool{Name: "a", Addresses: ips("10.9.2.1"), PortMin: 50000, PortMax: 50999}
	sA.SourcePool = pA2
	x.apply(sA, sB, sB2, sC, s6)
	for cl, b := range bound {
		p := syn(cl.Addr(), cl.Port(), vip4, 80)
		p.flags = tcpACK
		src, _ := fwdAddrs(x.expect(p.frame(), xdpTX, "tx_snat"))
		if src != b {
			t.Errorf("established %s moved from %s to %s by a pool change", cl, b, src)
		}
	}
	for i := range 20 {
		src, _ := fwdAddrs(x.expect(syn(client(20), uint16(42000+i), vip4, 80).frame(), xdpTX, "tx_snat"))
		if !inPool(src, pA2) {
			t.Errorf("new connection after the pool change bound to %s, want pool %v %d-%d", src, pA2.Addresses, pA2.PortMin, pA2.PortMax)
		}
	}

	// errors name the service and change nothing
	bad := func(p *dataplane.SourcePool) dataplane.Service { s := sA; s.SourcePool = p; return s }
	big := make([]netip.Addr, 40000)
	big2 := make([]netip.Addr, 40000)
	for i := range big {
		big[i] = netip.AddrFrom4([4]byte{10, 100, byte(i >> 8), byte(i)})
		big2[i] = netip.AddrFrom4([4]byte{10, 101, byte(i >> 8), byte(i)})
	}
	for _, c := range []struct {
		name string
		svcs []dataplane.Service
		want string
	}{
		{"no address of the family", []dataplane.Service{bad(&dataplane.SourcePool{Name: "v6only", Addresses: ips("fd09::1")})}, `source pool "v6only" has no IPv4 address`},
		{"empty port range", []dataplane.Service{bad(&dataplane.SourcePool{Name: "r", Addresses: ips("10.9.0.1"), PortMin: 3000, PortMax: 2000})}, "port range 3000-2000 is empty"},
		{"too many in all", []dataplane.Service{bad(&dataplane.SourcePool{Name: "big", Addresses: big}), snatSvc(dataplane.TCP, vip4, 82, &dataplane.SourcePool{Name: "big2", Addresses: big2}, real)},
			"holds at most 65536"},
	} {
		err := x.d.Apply(context.Background(), c.svcs)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "service ") {
			t.Errorf("%s: Apply error %v, want one naming the service and %q", c.name, err, c.want)
		}
	}
	src, _ := fwdAddrs(x.expect(syn(client(21), 43000, vip4, 80).frame(), xdpTX, "tx_snat"))
	if !inPool(src, pA2) {
		t.Errorf("after refused Applies a new connection bound to %s, want pool %v", src, pA2.Addresses)
	}
	// two services of 30000 distinct addresses each fit, and sharing
	// services cost nothing
	x.apply(bad(&dataplane.SourcePool{Name: "big", Addresses: big[:30000]}),
		snatSvc(dataplane.TCP, vip4, 82, &dataplane.SourcePool{Name: "big2", Addresses: big2[:30000]}, real),
		snatSvc(dataplane.TCP, vip4, 83, &dataplane.SourcePool{Name: "big2", Addresses: big2[:30000]}, real))
	src, _ = fwdAddrs(x.expect(syn(client(22), 43001, vip4, 83).frame(), xdpTX, "tx_snat"))
	if !slicesContains(big2, src.Addr()) {
		t.Errorf("service of the large shared pool bound to %s", src)
	}
}

// TestSNATRecovers: a pool of one address and five ports is exhausted by
// five live UDP flows; the sixth is dropped, counted per service and
// logged; once the flows expired the pool serves new flows again, both
// when the dead connections are still in the table and after the sync
// deleted them.
func TestSNATRecovers(t *testing.T) {
	var logbuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logbuf, nil))
	x := newTDP(t, Options{Logger: log, Timeouts: dataplane.Timeouts{UDP: time.Second}})
	inEmptyNS(t)
	p := &dataplane.SourcePool{Name: "tiny", Addresses: ips("10.9.0.1"), PortMin: 40000, PortMax: 40004}
	s := snatSvc(dataplane.UDP, vip4, 53, p, netip.MustParseAddrPort("10.0.0.1:53"))
	x.apply(s)
	x.stats() // a first sync: the exhaustion log starts counting from here

	fill := func(round int) {
		t.Helper()
		seen := map[netip.AddrPort]bool{}
		for i := range 5 {
			c := netip.AddrPortFrom(client(10*round+i), 5000)
			src, _ := fwdAddrs(x.expect(udp(c, netip.AddrPortFrom(vip4, 53), "q").frame(), xdpTX, "tx_snat"))
			if !inPool(src, p) || seen[src] {
				t.Errorf("round %d flow %d bound to %s (seen before: %v)", round, i, src, seen[src])
			}
			seen[src] = true
		}
	}
	fill(1)
	x.expect(udp(netip.AddrPortFrom(client(99), 5000), netip.AddrPortFrom(vip4, 53), "q").frame(), xdpDrop, "drop_snat_exhausted")
	dropped, err := x.d.SNATDropped()
	if err != nil {
		t.Fatal(err)
	}
	if dropped[s.Key] != 1 {
		t.Errorf("per-service exhaustion count %d, want 1", dropped[s.Key])
	}
	x.stats() // the sync logs it
	logged := logbuf.String()
	t.Logf("log: %s", logged)
	for _, want := range []string{"snat source ports exhausted", "pool=tiny", "dropped=1", "ports=40000-40004", "addresses=1"} {
		if !strings.Contains(logged, want) {
			t.Errorf("log lacks %q:\n%s", want, logged)
		}
	}
	// rate limited: a second drop within 10 s is counted, not logged
	logbuf.Reset()
	x.expect(udp(netip.AddrPortFrom(client(98), 5000), netip.AddrPortFrom(vip4, 53), "q").frame(), xdpDrop, "drop_snat_exhausted")
	x.stats()
	if logbuf.Len() != 0 && strings.Contains(logbuf.String(), "exhausted") {
		t.Errorf("logged again within 10 s:\n%s", logbuf.String())
	}

	// expired, still in the connection table: taken over at once
	time.Sleep(1100 * time.Millisecond)
	fill(2)
	// expired and deleted by the sync (the bindings stay in nat_tbl):
	// taken over once older than the UDP timeout
	time.Sleep(1100 * time.Millisecond)
	x.stats()
	// CI once found 5 connections still unexpired here (not reproduced
	// in 20 runs under load): they are listed with what the clocks said,
	// and the deletion is awaited up to 2 s more before it fails
	if left := x.conns(); len(left) != 0 {
		r, ok, _ := x.d.readClock()
		x.d.mu.Lock()
		mult, off := x.d.clkMult, x.d.clkOff
		x.d.mu.Unlock()
		t.Logf("%d connections unexpired 1.1 s after they were made (UDP timeout 1 s); coarse now %d; clock read (ok %v): coarse %d, program %d (mult %d)",
			len(left), monoNow(), ok, r.ns, r.jiffies*mult+off, mult)
		for _, c := range left {
			t.Logf("  %s → %s state %s expires in %v", c.Client, c.Local, c.State, c.Expires)
		}
		deadline := time.Now().Add(2 * time.Second)
		for len(left) != 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			x.stats()
			left = x.conns()
		}
		if len(left) != 0 {
			t.Fatalf("%d connections left after the sync, want 0", len(left))
		}
	}
	fill(3)
	if ex := x.exits(); ex["drop_snat_exhausted"] != 2 {
		t.Errorf("drop_snat_exhausted %d, want the 2 of the full pool only", ex["drop_snat_exhausted"])
	}
	// the replies of the new owners are translated to them
	for i := range 5 {
		c := netip.AddrPortFrom(client(30+i), 5000)
		var b netip.AddrPort
		for _, cn := range x.conns() {
			if cn.Client == c {
				b = cn.Local
			}
		}
		if !b.IsValid() {
			t.Fatalf("no connection for %s", c)
		}
		rout := x.expect(udp(netip.MustParseAddrPort("10.0.0.1:53"), b, "a").frame(), xdpPass, "pass_nat_reply")
		if src, dst := fwdAddrs(rout); src != netip.AddrPortFrom(vip4, 53) || dst != c {
			t.Errorf("reply to %s went %s → %s, want %s → %s", b, src, dst, netip.AddrPortFrom(vip4, 53), c)
		}
	}
}

// TestSNATMillionFlows drives 1,000,000 new UDP flows (100,000 with
// -short) through a pool of 16 addresses to 2 real servers: every flow
// gets a distinct binding and none is dropped for want of one.
func TestSNATMillionFlows(t *testing.T) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	x := newTDP(t, Options{ConnTableSize: 1 << 20})
	inEmptyNS(t)
	var pool []netip.Addr
	for i := range 16 {
		pool = append(pool, netip.AddrFrom4([4]byte{10, 9, 0, byte(1 + i)}))
	}
	p := &dataplane.SourcePool{Name: "sixteen", Addresses: pool}
	x.apply(snatSvc(dataplane.UDP, vip4, 53, p, netip.MustParseAddrPort("10.0.0.1:53"), netip.MustParseAddrPort("10.0.0.2:53")))
	frame := udp(netip.AddrPortFrom(client(1), 1), netip.AddrPortFrom(vip4, 53), "q").frame()
	out := make([]byte, len(frame)+64)
	seen := make(map[[8]byte]bool, n) // real server (last two bytes), source address (last byte), source port
	start := time.Now()
	for i := range n {
		// client 100.64.0.0/10 + port: n distinct flows
		binary.BigEndian.PutUint32(frame[14+12:], 0x64400000|uint32(i>>4))
		binary.BigEndian.PutUint16(frame[14+20:], uint16(10000+i&15))
		// fix the IPv4 header checksum; the UDP checksum is left out
		frame[14+10], frame[14+11] = 0, 0
		binary.BigEndian.PutUint16(frame[14+10:], csumFold(csumAdd(0, frame[14:34])))
		frame[14+26], frame[14+27] = 0, 0
		ret, err := x.d.objs.GovsLb.Run(&ebpf.RunOptions{Data: frame, DataOut: out})
		if err != nil {
			t.Fatal(err)
		}
		if ret != xdpTX {
			ex := nonZero(x.exits())
			t.Fatalf("flow %d: verdict %d, exits %v", i, ret, ex)
		}
		var k [8]byte
		copy(k[0:2], out[14+18:14+20]) // real server
		k[2] = out[14+15]              // pool address
		copy(k[3:5], out[14+20:14+22]) // source port
		if seen[k] {
			t.Fatalf("flow %d: binding %v given twice", i, k)
		}
		seen[k] = true
	}
	el := time.Since(start)
	ex := x.exits()
	if ex["drop_snat_exhausted"] != 0 || ex["tx_snat"] != uint64(n) {
		t.Errorf("exits %v, want %d tx_snat and no drop_snat_exhausted", nonZero(ex), n)
	}
	// nat_tbl (2 × ConnTableSize) kept every binding: none was evicted
	entries := 0
	var k lbFlowKey
	var v lbNatRev
	it := x.d.objs.NatTbl.Iterate()
	for it.Next(&k, &v) {
		entries++
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	if entries != n {
		t.Errorf("nat_tbl holds %d entries after %d flows: bindings were evicted", entries, n)
	}
	t.Logf("%d new flows in %v (%.0f ns each incl. the system call), %d distinct bindings", n, el, float64(el.Nanoseconds())/float64(n), len(seen))
}

// snatICMPCase is one ICMP error fixture.
type snatICMPCase struct {
	name  string
	proto uint8
	v6    bool
}

// quoteOf builds the ICMP error message (type/code for the family)
// quoting all of inner, with a correct checksum (ICMPv6: pseudo header
// of src, dst).
func quoteOf(v6 bool, src, dst netip.Addr, inner []byte) []byte {
	msg := make([]byte, 8, 8+len(inner))
	if v6 {
		msg[0] = 1 // destination unreachable
		msg[1] = 4 // port unreachable
	} else {
		msg[0], msg[1] = 3, 3
	}
	msg = append(msg, inner...)
	if v6 {
		binary.BigEndian.PutUint16(msg[2:], csumFold(csumAdd(pseudo(src, dst, 58, len(msg)), msg)))
	} else {
		binary.BigEndian.PutUint16(msg[2:], csumFold(csumAdd(0, msg)))
	}
	return msg
}

// decodedICMP is an ICMP error decoded independently of the program.
type decodedICMP struct {
	outerSrc, outerDst netip.Addr
	quote              []byte // the quoted IP packet
	outerOK, icmpOK    bool
}

func decodeICMP(ip []byte) decodedICMP {
	var d decodedICMP
	if ip[0]>>4 == 4 {
		n := int(binary.BigEndian.Uint16(ip[2:]))
		d.outerSrc, d.outerDst = netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
		d.outerOK = ipv4HeaderOK(ip)
		d.icmpOK = csumFold(csumAdd(0, ip[20:n])) == 0
		d.quote = ip[28:n]
		return d
	}
	n := int(binary.BigEndian.Uint16(ip[4:]))
	d.outerSrc, d.outerDst = netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
	d.outerOK = true
	d.icmpOK = csumFold(csumAdd(pseudo(d.outerSrc, d.outerDst, 58, n), ip[40:40+n])) == 0
	d.quote = ip[48 : 40+n]
	return d
}

// maskChecksums zeroes the IPv4 header and transport checksums of an IP
// packet, to compare the other fields byte for byte.
func maskChecksums(ip []byte) []byte {
	b := bytes.Clone(ip)
	l4 := 40
	if b[0]>>4 == 4 {
		b[10], b[11] = 0, 0
		l4 = int(b[0]&0xf) * 4
	}
	proto := b[6]
	if b[0]>>4 == 4 {
		proto = b[9]
	}
	if proto == 17 {
		b[l4+6], b[l4+7] = 0, 0
	} else {
		b[l4+16], b[l4+17] = 0, 0
	}
	return b
}

// TestSNATICMP: ICMP errors about SNAT flows, both ways, IPv4 and IPv6,
// UDP and TCP. From the real server's side (port unreachable about the
// packet the director sent, laddr:lport → real) the client gets an error
// from the VIP about its own packet, client:cport → VIP:vport. From the
// client's side (about a reply VIP:vport → client:cport) the real server
// gets an error from laddr about its own packet, real:rport →
// laddr:lport. Every field of the quote is compared with the packet it
// must be, and every checksum (outer IPv4 header, ICMP with the ICMPv6
// pseudo header, quoted IPv4 header, quoted UDP/TCP) is verified.
func TestSNATICMP(t *testing.T) {
	x := newTDP(t, Options{})
	inEmptyNS(t)
	real4 := netip.MustParseAddrPort("10.0.0.1:8080")
	real6 := netip.MustParseAddrPort("[fd00::1]:8080")
	p4 := &dataplane.SourcePool{Name: "p4", Addresses: ips("10.9.0.1", "10.9.0.2"), PortMin: 20000, PortMax: 29999}
	p6 := &dataplane.SourcePool{Name: "p6", Addresses: ips("fd09::1", "fd09::2"), PortMin: 20000, PortMax: 29999}
	x.apply(snatSvc(dataplane.TCP, vip4, 80, p4, real4), snatSvc(dataplane.UDP, vip4, 53, p4, real4),
		snatSvc(dataplane.TCP, vip6, 80, p6, real6), snatSvc(dataplane.UDP, vip6, 53, p6, real6))
	router4, router6 := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("2001:db8:ffff::1")

	for i, c := range []snatICMPCase{{"udp ipv4", 17, false}, {"tcp ipv4", 6, false}, {"udp ipv6", 17, true}, {"tcp ipv6", 6, true}} {
		t.Logf("case %s", c.name)
		cl := netip.AddrPortFrom(client(50+i), uint16(45000+i))
		vport := uint16(53)
		if c.proto == 6 {
			vport = 80
		}
		vip, real, router := netip.AddrPortFrom(vip4, vport), real4, router4
		if c.v6 {
			cl = netip.AddrPortFrom(client6(50+i), cl.Port())
			vip, real, router = netip.AddrPortFrom(vip6, vport), real6, router6
		}
		orig := pkt{src: cl, dst: vip, proto: c.proto, flags: tcpSYN, payload: []byte("hello " + c.name)}
		origIP := orig.ip()
		out := x.expect(orig.frame(), xdpTX, "tx_snat")
		sent := bytes.Clone(out[14 : 14+len(origIP)]) // what the real server received
		local, dst := fwdAddrs(out)
		if dst != real || !inPool(local, map[bool]*dataplane.SourcePool{false: p4, true: p6}[c.v6]) {
			t.Fatalf("%s: forwarded %s → %s", c.name, local, dst)
		}

		// (a) the real server's side: port unreachable about sent
		for _, from := range []netip.Addr{real.Addr(), router} {
			in := icmpError(c.v6, from, local.Addr(), sent)
			o := x.expect(in, xdpPass, "pass_nat_reply")
			d := decodeICMP(o[14:len(in)])
			if d.outerSrc != vip.Addr() || d.outerDst != cl.Addr() {
				t.Errorf("%s (a) from %s: outer %s → %s, want %s → %s", c.name, from, d.outerSrc, d.outerDst, vip.Addr(), cl.Addr())
			}
			if !bytes.Equal(maskChecksums(d.quote), maskChecksums(origIP)) {
				t.Errorf("%s (a): quote\n% x\nwant the client's packet\n% x", c.name, d.quote, origIP)
			}
			if !d.outerOK || !d.icmpOK || !c.v6 && !ipv4HeaderOK(d.quote) || !l4OK(d.quote) {
				t.Errorf("%s (a): checksums outer %v icmp %v quoted ip %v quoted l4 %v", c.name, d.outerOK, d.icmpOK, c.v6 || ipv4HeaderOK(d.quote), l4OK(d.quote))
			}
		}

		// (b) the client's side: an error about the reply the client got
		rsReply := pkt{src: real, dst: local, proto: c.proto, flags: tcpSYN | tcpACK, payload: []byte("reply " + c.name)}
		rsIP := rsReply.ip()
		got := x.expect(rsReply.frame(), xdpPass, "pass_nat_reply")
		cliIP := bytes.Clone(got[14 : 14+len(rsIP)]) // the reply as the client received it
		if s, d := fwdAddrs(got); s != vip || d != cl {
			t.Fatalf("%s: reply %s → %s", c.name, s, d)
		}
		for _, from := range []netip.Addr{cl.Addr(), router} {
			in := icmpError(c.v6, from, vip.Addr(), cliIP)
			o := x.expect(in, xdpTX, "tx_icmp_related")
			if dstMAC(o) != realMAC(real.Addr()) {
				t.Errorf("%s (b): to mac %x, want the real server's", c.name, dstMAC(o))
			}
			d := decodeICMP(o[14:len(in)])
			if d.outerSrc != local.Addr() || d.outerDst != real.Addr() {
				t.Errorf("%s (b) from %s: outer %s → %s, want %s → %s", c.name, from, d.outerSrc, d.outerDst, local.Addr(), real.Addr())
			}
			if !bytes.Equal(maskChecksums(d.quote), maskChecksums(rsIP)) {
				t.Errorf("%s (b): quote\n% x\nwant the real server's packet\n% x", c.name, d.quote, rsIP)
			}
			if !d.outerOK || !d.icmpOK || !c.v6 && !ipv4HeaderOK(d.quote) || !l4OK(d.quote) {
				t.Errorf("%s (b): checksums outer %v icmp %v quoted ip %v quoted l4 %v", c.name, d.outerOK, d.icmpOK, c.v6 || ipv4HeaderOK(d.quote), l4OK(d.quote))
			}
		}
	}
	// a short quote (8 bytes of UDP, IPv4) is translated too
	cl := netip.AddrPortFrom(client(60), 46000)
	out := x.expect(udp(cl, netip.AddrPortFrom(vip4, 53), "x").frame(), xdpTX, "tx_snat")
	local, _ := fwdAddrs(out)
	sent := out[14 : 14+28]
	e := pkt{src: netip.AddrPortFrom(real4.Addr(), 0), dst: netip.AddrPortFrom(local.Addr(), 0), proto: 1, l4override: icmpErr4(3, 3, sent)}
	in := e.frame()
	d := decodeICMP(x.expect(in, xdpPass, "pass_nat_reply")[14:len(in)])
	q := d.quote
	if netip.AddrFrom4([4]byte(q[12:16])) != cl.Addr() || binary.BigEndian.Uint16(q[20:]) != cl.Port() ||
		netip.AddrFrom4([4]byte(q[16:20])) != vip4 || binary.BigEndian.Uint16(q[22:]) != 53 || !d.icmpOK || !ipv4HeaderOK(q) {
		t.Errorf("short quote: % x (icmp checksum %v)", q, d.icmpOK)
	}
}

// icmpError is the frame of a port-unreachable error from one address to
// another quoting packet quoted (ICMP or ICMPv6).
func icmpError(v6 bool, from, to netip.Addr, quoted []byte) []byte {
	e := pkt{src: netip.AddrPortFrom(from, 0), dst: netip.AddrPortFrom(to, 0), proto: 1, l4override: quoteOf(v6, from, to, quoted)}
	if v6 {
		e.proto = 58
	}
	return e.frame()
}

func TestPortsOutside(t *testing.T) {
	for _, tt := range []struct {
		lo, hi, wantLo, wantHi uint16
	}{
		{32768, 60999, 1024, 32767},  // the kernel's default
		{1024, 60000, 60001, 65535},  // only above
		{20000, 40000, 40001, 65535}, // more above (25535) than below (18976)
		{1500, 65000, 1024, 65535},   // neither has 1024: all
		{1024, 65535, 1024, 65535},
	} {
		lo, hi := portsOutside(tt.lo, tt.hi)
		if lo != tt.wantLo || hi != tt.wantHi {
			t.Errorf("portsOutside(%d, %d) = %d-%d, want %d-%d", tt.lo, tt.hi, lo, hi, tt.wantLo, tt.wantHi)
		}
	}
}
