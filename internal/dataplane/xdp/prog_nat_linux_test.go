package xdp

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/govs/govs/internal/dataplane"
)

// l4OK verifies the TCP/UDP checksum of an IP packet independently.
func l4OK(ip []byte) bool {
	var src, dst netip.Addr
	var proto uint8
	var l4 []byte
	if ip[0]>>4 == 4 {
		ihl := int(ip[0]&0xf) * 4
		n := int(binary.BigEndian.Uint16(ip[2:]))
		src, dst = netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
		proto, l4 = ip[9], ip[ihl:n]
	} else {
		n := int(binary.BigEndian.Uint16(ip[4:]))
		src, dst = netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
		proto, l4 = ip[6], ip[40:40+n]
	}
	if proto == 17 && binary.BigEndian.Uint16(l4[6:]) == 0 { // none (IPv6: RFC 6935)
		return true
	}
	return csumFold(csumAdd(pseudo(src, dst, proto, len(l4)), l4)) == 0
}

// TestNAT: both directions of masquerading, IPv4 and IPv6, TCP and UDP:
// addresses and ports rewritten, checksums valid by an independent
// computation, counters in both directions.
func TestNAT(t *testing.T) {
	x := newTDP(t, Options{})
	// an empty namespace: the reply's route lookup finds nothing and the
	// program leaves the rewritten reply to the kernel
	inEmptyNS(t)

	real4 := netip.MustParseAddrPort("10.0.0.1:8080")
	real6 := netip.MustParseAddrPort("[fd00::1]:8080")
	x.apply(svc(dataplane.TCP, vip4, 80, "rr", rsv(real4, 1, dataplane.NAT)),
		svc(dataplane.UDP, vip4, 53, "rr", rsv(netip.AddrPortFrom(real4.Addr(), 5353), 1, dataplane.NAT)),
		svc(dataplane.TCP, vip6, 80, "rr", rsv(real6, 1, dataplane.NAT)),
		svc(dataplane.UDP, vip6, 53, "rr", rsv(netip.AddrPortFrom(real6.Addr(), 5353), 1, dataplane.NAT)))

	cases := []struct {
		name        string
		client, vip netip.AddrPort
		real        netip.AddrPort
		proto       uint8
		zeroUDPcsum bool
	}{
		{"tcp ipv4", netip.AddrPortFrom(client(1), 40000), netip.AddrPortFrom(vip4, 80), real4, 6, false},
		{"udp ipv4", netip.AddrPortFrom(client(1), 40001), netip.AddrPortFrom(vip4, 53), netip.AddrPortFrom(real4.Addr(), 5353), 17, false},
		{"udp ipv4 no checksum", netip.AddrPortFrom(client(2), 40001), netip.AddrPortFrom(vip4, 53), netip.AddrPortFrom(real4.Addr(), 5353), 17, true},
		{"tcp ipv6", netip.AddrPortFrom(client6(1), 40000), netip.AddrPortFrom(vip6, 80), real6, 6, false},
		{"udp ipv6", netip.AddrPortFrom(client6(1), 40001), netip.AddrPortFrom(vip6, 53), netip.AddrPortFrom(real6.Addr(), 5353), 17, false},
		{"udp ipv6 no checksum", netip.AddrPortFrom(client6(2), 40001), netip.AddrPortFrom(vip6, 53), netip.AddrPortFrom(real6.Addr(), 5353), 17, true},
	}
	// no subtests: the goroutine must stay on this thread (namespace)
	for _, c := range cases {
		func() {
			t.Logf("case %s", c.name)
			p := pkt{src: c.client, dst: c.vip, proto: c.proto, flags: tcpSYN, payload: []byte("hello nat")}
			in := p.frame()
			if c.zeroUDPcsum {
				o := 14 + 20 + 6
				if c.client.Addr().Is6() {
					o = 14 + 40 + 6
				}
				in[o], in[o+1] = 0, 0
			}
			out := x.expect(in, xdpTX, "tx_nat")
			ip := out[14:len(in)]
			if dstMAC(out) != realMAC(c.real.Addr()) {
				t.Errorf("dst mac %x", dstMAC(out))
			}
			var dst netip.Addr
			var l4 []byte
			if c.client.Addr().Is4() {
				dst, l4 = netip.AddrFrom4([4]byte(ip[16:20])), ip[20:]
				if !ipv4HeaderOK(ip) {
					t.Errorf("ip header checksum wrong")
				}
			} else {
				dst, l4 = netip.AddrFrom16([16]byte(ip[24:40])), ip[40:]
			}
			if got := netip.AddrPortFrom(dst, binary.BigEndian.Uint16(l4[2:])); got != c.real {
				t.Errorf("destination %s, want %s", got, c.real)
			}
			if !l4OK(ip) {
				t.Errorf("l4 checksum wrong after rewrite")
			}
			if c.zeroUDPcsum && binary.BigEndian.Uint16(l4[6:]) != 0 {
				t.Errorf("absent UDP checksum was filled in")
			}
			if c.proto == 17 && !c.zeroUDPcsum && binary.BigEndian.Uint16(l4[6:]) == 0 {
				t.Errorf("UDP checksum became 0 (none)")
			}

			// the reply from the real server
			r := pkt{src: c.real, dst: c.client, proto: c.proto, flags: tcpSYN | tcpACK, payload: []byte("hello back")}
			rin := r.frame()
			if c.zeroUDPcsum {
				o := 14 + 20 + 6
				if c.client.Addr().Is6() {
					o = 14 + 40 + 6
				}
				rin[o], rin[o+1] = 0, 0
			}
			rout := x.expect(rin, xdpPass, "pass_nat_reply")
			rip := rout[14:len(rin)]
			var src netip.Addr
			if c.client.Addr().Is4() {
				src, l4 = netip.AddrFrom4([4]byte(rip[12:16])), rip[20:]
				if !ipv4HeaderOK(rip) {
					t.Errorf("reply ip header checksum wrong")
				}
			} else {
				src, l4 = netip.AddrFrom16([16]byte(rip[8:24])), rip[40:]
			}
			if got := netip.AddrPortFrom(src, binary.BigEndian.Uint16(l4[0:])); got != c.vip {
				t.Errorf("reply source %s, want %s", got, c.vip)
			}
			if !l4OK(rip) {
				t.Errorf("reply l4 checksum wrong")
			}
			if c.zeroUDPcsum && binary.BigEndian.Uint16(l4[6:]) != 0 {
				t.Errorf("absent UDP checksum of the reply was filled in")
			}
			if c.proto == 17 && !c.zeroUDPcsum && binary.BigEndian.Uint16(l4[6:]) == 0 {
				t.Errorf("reply UDP checksum became 0 (none)")
			}
		}()
	}
	st := x.stats()
	for _, s := range st.Services {
		if s.InPkts == 0 || s.OutPkts == 0 || s.OutBytes == 0 {
			t.Errorf("%s: counters %+v, want both directions", s.Key, s.Counters)
		}
	}
	// ICMP errors about NAT flows are translated both ways
	router := netip.MustParseAddr("203.0.113.1")
	icmpOK := func(ip []byte) bool { // the whole ICMP message's checksum
		if ip[0]>>4 == 4 {
			n := int(binary.BigEndian.Uint16(ip[2:]))
			return csumFold(csumAdd(0, ip[20:n])) == 0
		}
		n := int(binary.BigEndian.Uint16(ip[4:]))
		src, dst := netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
		return csumFold(csumAdd(pseudo(src, dst, 58, n), ip[40:40+n])) == 0
	}
	{ // from the client side: frag needed for a reply, goes to the real server
		reply := pkt{src: netip.AddrPortFrom(vip4, 80), dst: netip.AddrPortFrom(client(1), 40000), proto: 6, flags: tcpACK, payload: make([]byte, 1400)}
		e := pkt{src: netip.AddrPortFrom(router, 0), dst: netip.AddrPortFrom(vip4, 0), proto: 1, l4override: icmpErr4(3, 4, reply.ip())}
		in := e.frame()
		out := x.expect(in, xdpTX, "tx_icmp_related")
		ip := out[14:len(in)]
		in4 := ip[28:]
		if netip.AddrFrom4([4]byte(ip[16:20])) != real4.Addr() || netip.AddrFrom4([4]byte(in4[12:16])) != real4.Addr() ||
			binary.BigEndian.Uint16(in4[20:]) != real4.Port() || dstMAC(out) != realMAC(real4.Addr()) {
			t.Errorf("icmp to real server not translated: % x", ip[:56])
		}
		if !ipv4HeaderOK(ip) || !ipv4HeaderOK(in4) || !icmpOK(ip) {
			t.Errorf("icmp checksums wrong after translation")
		}
	}
	{ // from the real server: port unreachable about a UDP datagram, goes to the client
		sent := pkt{src: netip.AddrPortFrom(client(1), 40001), dst: netip.AddrPortFrom(real4.Addr(), 5353), proto: 17, payload: []byte("q")}
		// quote the whole datagram, so the quoted UDP checksum can be verified
		q := sent.ip()
		msg := append([]byte{3, 3, 0, 0, 0, 0, 0, 0}, q...)
		binary.BigEndian.PutUint16(msg[2:], csumFold(csumAdd(0, msg)))
		e := pkt{src: netip.AddrPortFrom(real4.Addr(), 0), dst: netip.AddrPortFrom(client(1), 0), proto: 1, l4override: msg}
		in := e.frame()
		out := x.expect(in, xdpPass, "pass_nat_reply")
		ip := out[14:len(in)]
		in4 := ip[28:]
		if netip.AddrFrom4([4]byte(ip[12:16])) != vip4 || netip.AddrFrom4([4]byte(in4[16:20])) != vip4 || binary.BigEndian.Uint16(in4[22:]) != 53 {
			t.Errorf("icmp to client not translated: % x", ip[:56])
		}
		if !ipv4HeaderOK(ip) || !ipv4HeaderOK(in4) || !icmpOK(ip) || !l4OK(in4) {
			t.Errorf("icmp checksums wrong after translation (outer %v inner %v icmp %v udp %v)", ipv4HeaderOK(ip), ipv4HeaderOK(in4), icmpOK(ip), l4OK(in4))
		}
	}
	{ // IPv6 packet too big from the client side
		r6 := netip.MustParseAddr("2001:db8:ffff::1")
		reply := pkt{src: netip.AddrPortFrom(vip6, 80), dst: netip.AddrPortFrom(client6(1), 40000), proto: 6, flags: tcpACK}
		e := pkt{src: netip.AddrPortFrom(r6, 0), dst: netip.AddrPortFrom(vip6, 0), proto: 58, l4override: icmpErr6(r6, vip6, 2, 0, reply.ip())}
		in := e.frame()
		out := x.expect(in, xdpTX, "tx_icmp_related")
		ip := out[14:len(in)]
		if netip.AddrFrom16([16]byte(ip[24:40])) != real6.Addr() || netip.AddrFrom16([16]byte(ip[48+8:48+24])) != real6.Addr() {
			t.Errorf("icmpv6 not translated")
		}
		if !icmpOK(ip) {
			t.Errorf("icmpv6 checksum wrong after translation")
		}
	}
	// from the real server: ICMPv6 port unreachable about a UDP datagram,
	// goes to the client; the quoted checksum is what the translated
	// datagram has, and stays 0 for one sent without (RFC 6935)
	for k, zero := range []bool{false, true} {
		c6 := netip.AddrPortFrom(client6(1+k), 40001)
		sent := pkt{src: c6, dst: netip.AddrPortFrom(real6.Addr(), 5353), proto: 17, payload: []byte("q")}
		q := sent.ip()
		if zero {
			q[46], q[47] = 0, 0
		}
		e := pkt{src: netip.AddrPortFrom(real6.Addr(), 0), dst: netip.AddrPortFrom(c6.Addr(), 0), proto: 58, l4override: icmpErr6(real6.Addr(), c6.Addr(), 1, 4, q)}
		in := e.frame()
		out := x.expect(in, xdpPass, "pass_nat_reply")
		ip := out[14:len(in)]
		quoted := ip[48:]
		if netip.AddrFrom16([16]byte(ip[8:24])) != vip6 || netip.AddrFrom16([16]byte(quoted[24:40])) != vip6 || binary.BigEndian.Uint16(quoted[42:]) != 53 {
			t.Errorf("icmpv6 to client not translated: % x", ip[:88])
		}
		if !icmpOK(ip) {
			t.Errorf("icmpv6 checksum wrong after translation")
		}
		want := pkt{src: c6, dst: netip.AddrPortFrom(vip6, 53), proto: 17, payload: []byte("q")}.ip()[46:48]
		if zero {
			want = []byte{0, 0}
		}
		if got := quoted[46:48]; !bytes.Equal(got, want) {
			t.Errorf("quoted UDP checksum (zero %v) % x, want % x", zero, got, want)
		}
	}
	// a reply that belongs to no connection passes untouched
	stray := pkt{src: real4, dst: netip.AddrPortFrom(client(9), 1), proto: 6, flags: tcpACK}
	x.expect(stray.frame(), xdpPass, "pass_no_service")
}

// TestSNAT: source and destination rewritten, checksums valid, the reply
// restored; 200000 concurrent connections (20000 with -short) through a
// pool of 4 addresses to one real server get as many distinct (source,
// port) bindings and none fails.
func TestSNAT(t *testing.T) {
	pool := []netip.Addr{
		netip.MustParseAddr("10.9.0.1"), netip.MustParseAddr("10.9.0.2"),
		netip.MustParseAddr("10.9.0.3"), netip.MustParseAddr("10.9.0.4"),
	}
	n := 200000
	if testing.Short() {
		n = 20000
	}
	x := newTDP(t, Options{ConnTableSize: 1 << 19})
	inEmptyNS(t)
	real := netip.MustParseAddrPort("10.0.0.1:8080")
	s := svc(dataplane.TCP, vip4, 80, "rr", rsv(real, 1, dataplane.SNAT))
	s.SourcePool = &dataplane.SourcePool{Name: "four", Addresses: pool}
	x.apply(s)

	p := pkt{src: netip.AddrPortFrom(client(1), 40000), dst: netip.AddrPortFrom(vip4, 80), proto: 6, flags: tcpSYN, payload: []byte("x")}
	in := p.frame()
	out := x.expect(in, xdpTX, "tx_snat")
	ip := out[14:len(in)]
	src := netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[12:16])), binary.BigEndian.Uint16(ip[20:]))
	dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip[16:20])), binary.BigEndian.Uint16(ip[22:]))
	if dst != real || !slicesContains(pool, src.Addr()) || src.Port() < 1024 {
		t.Errorf("forward %s → %s, want pool address → %s", src, dst, real)
	}
	if !ipv4HeaderOK(ip) || !l4OK(ip) {
		t.Errorf("checksums wrong after SNAT")
	}
	// established packets keep the binding
	p.flags = tcpACK
	again := x.expect(p.frame(), xdpTX, "tx_snat")
	if src2 := netip.AddrPortFrom(netip.AddrFrom4([4]byte(again[14+12:14+16])), binary.BigEndian.Uint16(again[14+20:])); src2 != src {
		t.Errorf("binding changed within a connection: %s then %s", src, src2)
	}
	// the reply
	r := pkt{src: real, dst: src, proto: 6, flags: tcpSYN | tcpACK, payload: []byte("y")}
	rin := r.frame()
	rout := x.expect(rin, xdpPass, "pass_nat_reply")
	rip := rout[14:len(rin)]
	rs := netip.AddrPortFrom(netip.AddrFrom4([4]byte(rip[12:16])), binary.BigEndian.Uint16(rip[20:]))
	rd := netip.AddrPortFrom(netip.AddrFrom4([4]byte(rip[16:20])), binary.BigEndian.Uint16(rip[22:]))
	if rs != p.dst || rd != p.src {
		t.Errorf("reply %s → %s, want %s → %s", rs, rd, p.dst, p.src)
	}
	if !ipv4HeaderOK(rip) || !l4OK(rip) {
		t.Errorf("reply checksums wrong")
	}
	// many connections: distinct bindings, none exhausted
	seen := map[netip.AddrPort]bool{src: true}
	perAddr := map[netip.Addr]int{}
	for i := range n {
		c := netip.AddrFrom4([4]byte{198, byte(18 + i>>16), byte(i >> 8), byte(i)})
		q := syn(c, uint16(10000+i%50000), vip4, 80)
		ret, o := x.run(q.frame())
		if ret != xdpTX {
			t.Fatalf("connection %d: verdict %d, exits %v", i, ret, nonZero(x.exits()))
		}
		b := netip.AddrPortFrom(netip.AddrFrom4([4]byte(o[14+12:14+16])), binary.BigEndian.Uint16(o[14+20:]))
		if seen[b] {
			t.Fatalf("binding %s given twice", b)
		}
		seen[b] = true
		perAddr[b.Addr()]++
	}
	if len(perAddr) != 4 {
		t.Errorf("pool use %v, want all 4 addresses", perAddr)
	}
	ex := x.exits()
	if ex["drop_snat_exhausted"] != 0 {
		t.Errorf("%d connections dropped for lack of ports", ex["drop_snat_exhausted"])
	}
	var locals int
	for _, c := range x.conns() {
		if c.Local.IsValid() {
			locals++
		}
	}
	if locals != n+1 {
		t.Errorf("%d connections listed with a translated source, want %d", locals, n+1)
	}
	t.Logf("%d connections, bindings per pool address %v", n+1, perAddr)
}

func slicesContains(s []netip.Addr, a netip.Addr) bool {
	for _, v := range s {
		if v == a {
			return true
		}
	}
	return false
}

// TestNATReplyRefresh: a UDP flow whose real server goes on sending
// while the client is silent stays alive past the UDP timeout (IPVS
// refreshes a connection on either direction): its entry is neither
// expired by a sync, which would drop a NAT flow's reply translation,
// nor taken for dead, which would hand an SNAT flow's binding to
// another client.
func TestNATReplyRefresh(t *testing.T) {
	x := newTDP(t, Options{Timeouts: dataplane.Timeouts{UDP: time.Second}})
	inEmptyNS(t) // replies find no route: each takes the table path
	real := netip.MustParseAddrPort("10.0.0.1:5353")
	x.apply(svc(dataplane.UDP, vip4, 53, "rr", rsv(real, 1, dataplane.NAT)),
		snatSvc(dataplane.UDP, vip4, 54, nil, real))
	natClient := netip.AddrPortFrom(client(1), 40001)
	x.expect(udp(natClient, netip.AddrPortFrom(vip4, 53), "q").frame(), xdpTX, "tx_nat")
	out := x.expect(udp(netip.AddrPortFrom(client(2), 40002), netip.AddrPortFrom(vip4, 54), "q").frame(), xdpTX, "tx_snat")
	binding, _ := fwdAddrs(out)
	deadline := time.Now().Add(1600 * time.Millisecond) // past the 1 s timeout
	for time.Now().Before(deadline) {
		x.expect(udp(real, natClient, "stream").frame(), xdpPass, "pass_nat_reply")
		x.expect(udp(real, binding, "stream").frame(), xdpPass, "pass_nat_reply")
		time.Sleep(100 * time.Millisecond)
	}
	var inact int64
	for _, s := range x.stats().Services {
		for _, r := range s.RealServers {
			inact += r.InactiveConns
		}
	}
	if inact != 2 {
		t.Errorf("%d live UDP connections after 1.6 s of replies only, want 2", inact)
	}
	if n := len(x.conns()); n != 2 {
		t.Errorf("Conns lists %d connections, want 2", n)
	}
}
