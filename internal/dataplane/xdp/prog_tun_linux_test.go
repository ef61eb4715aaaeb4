package xdp

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/govs/govs/internal/dataplane"
)

var (
	tun4 = netip.MustParseAddrPort("10.1.0.1:80")
	tun6 = netip.MustParseAddrPort("[fd00::1]:80")
)

// TestTunnel checks IPIP and IP6IP6 encapsulation byte by byte.
func TestTunnel(t *testing.T) {
	x := newTDP(t, Options{})
	x.apply(svc(dataplane.TCP, vip4, 80, "rr", rsv(tun4, 1, dataplane.TUN)),
		svc(dataplane.TCP, vip6, 80, "rr", rsv(tun6, 1, dataplane.TUN)),
		svc(dataplane.UDP, vip4, 53, "rr", rsv(tun6, 1, dataplane.TUN))) // IPv4 in IPv6

	t.Run("ipv4 in ipv4", func(t *testing.T) {
		x.t = t
		p := syn(client(1), 40000, vip4, 80)
		p.tos = 0x28
		p.df = true
		inner := p.ip()
		out := x.expect(p.frame(), xdpTX, "tx_tun")
		if dstMAC(out) != realMAC(tun4.Addr()) || !bytes.Equal(out[6:12], directorMAC[:]) {
			t.Errorf("macs %x %x", out[0:6], out[6:12])
		}
		if et := binary.BigEndian.Uint16(out[12:]); et != 0x0800 {
			t.Fatalf("ethertype %#x", et)
		}
		o := out[14:34]
		if o[0] != 0x45 || o[9] != 4 || o[8] != 64 || o[1] != 0x28 {
			t.Errorf("outer header version/proto/ttl/tos = %#x/%d/%d/%#x, want 0x45/4/64/0x28", o[0], o[9], o[8], o[1])
		}
		if got := binary.BigEndian.Uint16(o[2:]); int(got) != len(inner)+20 {
			t.Errorf("outer length %d, want %d", got, len(inner)+20)
		}
		if binary.BigEndian.Uint16(o[6:])&0x4000 == 0 {
			t.Errorf("outer DF not copied from inner")
		}
		if !ipv4HeaderOK(o) {
			t.Errorf("outer header checksum wrong")
		}
		if s, d := netip.AddrFrom4([4]byte(o[12:16])), netip.AddrFrom4([4]byte(o[16:20])); s != tunSrc || d != tun4.Addr() {
			t.Errorf("outer %s → %s, want %s → %s", s, d, tunSrc, tun4.Addr())
		}
		if !bytes.Equal(out[34:34+len(inner)], inner) {
			t.Errorf("inner packet changed")
		}
		if id := binary.BigEndian.Uint16(o[4:]); id != 0 {
			t.Errorf("outer ID %d with DF set, want 0", id)
		}
	})
	t.Run("ipv4 in ipv4 without DF", func(t *testing.T) {
		x.t = t
		// a packet that may be fragmented gets an outer ID of its own,
		// not one every such packet shares
		ids := map[uint16]bool{}
		for range 8 {
			p := syn(client(1), 40000, vip4, 80)
			out := x.expect(p.frame(), xdpTX, "tx_tun")
			o := out[14:34]
			if binary.BigEndian.Uint16(o[6:])&0x4000 != 0 {
				t.Fatalf("outer DF set for an inner packet without it")
			}
			if !ipv4HeaderOK(o) {
				t.Errorf("outer header checksum wrong")
			}
			ids[binary.BigEndian.Uint16(o[4:])] = true
		}
		if len(ids) < 2 {
			t.Errorf("8 packets without DF all had outer ID %v", ids)
		}
	})
	t.Run("ipv6 in ipv6", func(t *testing.T) {
		x.t = t
		p := syn(client6(1), 40000, vip6, 80)
		inner := p.ip()
		out := x.expect(p.frame(), xdpTX, "tx_tun")
		if et := binary.BigEndian.Uint16(out[12:]); et != 0x86dd {
			t.Fatalf("ethertype %#x", et)
		}
		o := out[14:54]
		if o[0]>>4 != 6 || o[6] != 41 || o[7] != 64 {
			t.Errorf("outer version/next/hop %d/%d/%d", o[0]>>4, o[6], o[7])
		}
		if got := binary.BigEndian.Uint16(o[4:]); int(got) != len(inner) {
			t.Errorf("payload length %d, want %d", got, len(inner))
		}
		if s, d := netip.AddrFrom16([16]byte(o[8:24])), netip.AddrFrom16([16]byte(o[24:40])); s != tunSrc6 || d != tun6.Addr() {
			t.Errorf("outer %s → %s", s, d)
		}
		if binary.BigEndian.Uint32(o[0:])&0xfffff == 0 {
			t.Errorf("flow label not set from the flow hash")
		}
		if !bytes.Equal(out[54:54+len(inner)], inner) {
			t.Errorf("inner packet changed")
		}
	})
	t.Run("ipv4 in ipv6", func(t *testing.T) {
		x.t = t
		p := pkt{src: netip.AddrPortFrom(client(1), 5353), dst: netip.AddrPortFrom(vip4, 53), proto: 17, payload: []byte("q")}
		inner := p.ip()
		out := x.expect(p.frame(), xdpTX, "tx_tun")
		if out[14+6] != 4 || !bytes.Equal(out[54:54+len(inner)], inner) {
			t.Errorf("next header %d or inner wrong", out[14+6])
		}
	})
}

// TestTunnelSourcePerFlow: with a source prefix the outer source varies
// by flow inside the prefix and stays fixed within a flow.
func TestTunnelSourcePerFlow(t *testing.T) {
	pfx := netip.MustParsePrefix("172.16.0.0/16")
	x := newTDP(t, Options{TunnelSource4: pfx})
	x.apply(svc(dataplane.TCP, vip4, 80, "rr", rsv(tun4, 1, dataplane.TUN)))
	srcs := map[netip.Addr]bool{}
	for i := range 8 {
		p := syn(client(i+1), uint16(40000+i), vip4, 80)
		out := x.expect(p.frame(), xdpTX, "tx_tun")
		s := netip.AddrFrom4([4]byte(out[14+12 : 14+16]))
		if !pfx.Contains(s) {
			t.Errorf("outer source %s outside %s", s, pfx)
		}
		if !ipv4HeaderOK(out[14:34]) {
			t.Errorf("outer checksum wrong")
		}
		p.flags = tcpACK
		again := x.expect(p.frame(), xdpTX, "tx_tun")
		if s2 := netip.AddrFrom4([4]byte(again[14+12 : 14+16])); s2 != s {
			t.Errorf("outer source changed within a flow: %s then %s", s, s2)
		}
		srcs[s] = true
	}
	if len(srcs) < 4 {
		t.Errorf("8 flows used only %d outer sources", len(srcs))
	}
}

// TestPathMTU: a packet too big for the tunnel with DF gets ICMP
// fragmentation-needed (IPv4) or packet-too-big (IPv6) back.
func TestPathMTU(t *testing.T) {
	x := newTDP(t, Options{})
	x.apply(svc(dataplane.TCP, vip4, 80, "rr", rsv(tun4, 1, dataplane.TUN)),
		svc(dataplane.TCP, vip6, 80, "rr", rsv(tun6, 1, dataplane.TUN)))

	t.Run("ipv4 frag needed", func(t *testing.T) {
		x.t = t
		p := syn(client(1), 40000, vip4, 80)
		p.flags = tcpSYN
		p.df = true
		p.payload = make([]byte, 1500-40) // IP length 1500: +20 does not fit
		orig := p.ip()
		out := x.expect(p.frame(), xdpTX, "tx_icmp_toobig")
		out = out[:14+20+8+28]
		if dstMAC(out) != clientMAC || [6]byte(out[6:12]) != directorMAC {
			t.Errorf("macs not swapped: %x %x", out[0:6], out[6:12])
		}
		ip := out[14:34]
		if !ipv4HeaderOK(ip) || ip[9] != 1 || binary.BigEndian.Uint16(ip[2:]) != 56 {
			t.Errorf("icmp ip header wrong: % x", ip)
		}
		if s, d := netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20])); s != vip4 || d != client(1) {
			t.Errorf("icmp %s → %s, want %s → %s", s, d, vip4, client(1))
		}
		ic := out[34:]
		if ic[0] != 3 || ic[1] != 4 || binary.BigEndian.Uint16(ic[6:]) != 1480 {
			t.Errorf("icmp type/code/mtu %d/%d/%d, want 3/4/1480", ic[0], ic[1], binary.BigEndian.Uint16(ic[6:]))
		}
		if csumFold(csumAdd(0, ic[:36])) != 0 {
			t.Errorf("icmp checksum wrong")
		}
		if !bytes.Equal(ic[8:36], orig[:28]) {
			t.Errorf("icmp does not quote the original header")
		}
	})
	t.Run("ipv4 too big without DF", func(t *testing.T) {
		x.t = t
		p := syn(client(2), 40000, vip4, 80)
		p.payload = make([]byte, 1500-40)
		x.expect(p.frame(), xdpDrop, "drop_toobig")
	})
	t.Run("ipv4 fits", func(t *testing.T) {
		x.t = t
		p := syn(client(3), 40000, vip4, 80)
		p.df = true
		p.payload = make([]byte, 1480-40)
		x.expect(p.frame(), xdpTX, "tx_tun")
	})
	t.Run("ipv6 packet too big", func(t *testing.T) {
		x.t = t
		p := syn(client6(1), 40000, vip6, 80)
		p.payload = make([]byte, 1500-60)
		orig := p.ip()
		out := x.expect(p.frame(), xdpTX, "tx_icmp_toobig")
		out = out[:14+40+8+48]
		ip := out[14:54]
		if ip[6] != 58 || binary.BigEndian.Uint16(ip[4:]) != 56 {
			t.Errorf("icmpv6 header: next %d len %d", ip[6], binary.BigEndian.Uint16(ip[4:]))
		}
		src, dst := netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
		if src != vip6 || dst != client6(1) {
			t.Errorf("icmpv6 %s → %s", src, dst)
		}
		ic := out[54:]
		if ic[0] != 2 || binary.BigEndian.Uint32(ic[4:]) != 1460 {
			t.Errorf("type %d mtu %d, want 2 and 1460", ic[0], binary.BigEndian.Uint32(ic[4:]))
		}
		if csumFold(csumAdd(pseudo(src, dst, 58, 56), ic[:56])) != 0 {
			t.Errorf("icmpv6 checksum wrong")
		}
		if !bytes.Equal(ic[8:56], orig[:48]) {
			t.Errorf("icmpv6 does not quote the original")
		}
	})
}

// TestICMPRelated: an ICMP error about a tracked flow follows the flow to
// its real server; one about an unknown flow goes to the kernel.
func TestICMPRelated(t *testing.T) {
	x := newTDP(t, Options{})
	x.apply(svc(dataplane.TCP, vip4, 80, "rr", rsv(rs1, 1, dataplane.DR), rsv(rs2, 1, dataplane.DR)),
		svc(dataplane.TCP, vip6, 80, "rr", rsv(tun6, 1, dataplane.TUN)))
	router := netip.MustParseAddr("203.0.113.1")

	// establish on some real, then a router reports the reply undeliverable
	var reals [2][6]byte
	for i := range 2 {
		out := x.expect(syn(client(i+1), 40000, vip4, 80).frame(), xdpTX, "tx_dr")
		reals[i] = dstMAC(out)
	}
	for i := range 2 {
		reply := pkt{src: netip.AddrPortFrom(vip4, 80), dst: netip.AddrPortFrom(client(i+1), 40000), proto: 6, flags: tcpACK, payload: make([]byte, 1400)}
		e := pkt{src: netip.AddrPortFrom(router, 0), dst: netip.AddrPortFrom(vip4, 0), proto: 1, l4override: icmpErr4(3, 4, reply.ip())}
		in := e.frame()
		out := x.expect(in, xdpTX, "tx_icmp_related")
		if dstMAC(out) != reals[i] {
			t.Errorf("icmp for flow %d went to %x, flow is on %x", i, dstMAC(out), reals[i])
		}
		if !bytes.Equal(out[12:len(in)], in[12:]) {
			t.Errorf("icmp packet modified")
		}
	}
	unknown := pkt{src: netip.AddrPortFrom(vip4, 80), dst: netip.AddrPortFrom(client(9), 1), proto: 6, flags: tcpACK}
	e := pkt{src: netip.AddrPortFrom(router, 0), dst: netip.AddrPortFrom(vip4, 0), proto: 1, l4override: icmpErr4(3, 4, unknown.ip())}
	x.expect(e.frame(), xdpPass, "pass_icmp")

	// IPv6 through the tunnel
	x.expect(syn(client6(1), 40000, vip6, 80).frame(), xdpTX, "tx_tun")
	r6 := netip.MustParseAddr("2001:db8:ffff::1")
	reply6 := pkt{src: netip.AddrPortFrom(vip6, 80), dst: netip.AddrPortFrom(client6(1), 40000), proto: 6, flags: tcpACK}
	e6 := pkt{src: netip.AddrPortFrom(r6, 0), dst: netip.AddrPortFrom(vip6, 0), proto: 58, l4override: icmpErr6(r6, vip6, 2, 0, reply6.ip())}
	out := x.expect(e6.frame(), xdpTX, "tx_icmp_related")
	if out[14+6] != 41 || netip.AddrFrom16([16]byte(out[14+24:14+40])) != tun6.Addr() {
		t.Errorf("icmpv6 error not tunnelled to the flow's real server")
	}
}

// TestRedirectAndNeighbour: another egress interface means XDP_REDIRECT;
// an unresolved next hop drops with its own reason.
func TestRedirectAndNeighbour(t *testing.T) {
	x := newTDP(t, Options{})
	x.unresolved[rs2.Addr()] = true
	x.apply(svc(dataplane.TCP, vip4, 80, "rr", rsv(rs2, 1, dataplane.DR)))
	x.expect(syn(client(1), 40000, vip4, 80).frame(), xdpDrop, "drop_no_neigh")

	y := newTDP(t, Options{})
	y.d.resolver = func(a netip.Addr, m dataplane.Method) nexthop {
		return nexthop{addr: a, ok: true, ifindex: 4242, dmac: realMAC(a), smac: directorMAC, mtu: 1500, src: tunSrc}
	}
	y.apply(svc(dataplane.TCP, vip4, 80, "rr", rsv(rs1, 1, dataplane.DR)),
		svc(dataplane.TCP, vip4, 81, "rr", rsv(tun4, 1, dataplane.TUN)))
	y.expect(syn(client(1), 40000, vip4, 80).frame(), xdpRedirect, "redirect_dr")
	y.expect(syn(client(1), 40000, vip4, 81).frame(), xdpRedirect, "redirect_tun")
}

// TestSingleInterfaceTX: when the program is attached to one interface
// only, the real servers that leave by it carry REAL_F_TX and their
// packets go out by XDP_TX without the program comparing its ingress
// interface (which BPF_PROG_TEST_RUN makes lo, so a server behind
// interface 4242 is otherwise redirected); cleared again, they are
// redirected; and a restarted govs clears the flags its predecessor
// left before it attaches anywhere.
func TestSingleInterfaceTX(t *testing.T) {
	x := newTDP(t, Options{KeepOnClose: true})
	behind4242 := func(a netip.Addr, m dataplane.Method) nexthop {
		return nexthop{addr: a, ok: true, ifindex: 4242, dmac: realMAC(a), smac: directorMAC, mtu: 1500, src: tunSrc}
	}
	x.d.resolver = behind4242
	dr, tun := svc(dataplane.TCP, vip4, 80, "rr", rsv(rs1, 1, dataplane.DR)), svc(dataplane.TCP, vip4, 81, "rr", rsv(tun4, 1, dataplane.TUN))
	x.apply(dr, tun)
	flags := func(d *Dataplane) (out []uint8) {
		t.Helper()
		for _, s := range d.svcs {
			for _, rs := range s.reals {
				r, err := d.readReal(rs.id)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, r.Flags)
			}
		}
		return out
	}
	x.expect(syn(client(1), 40000, vip4, 80).frame(), xdpRedirect, "redirect_dr")
	if err := x.d.setXmit([]uint32{4242}); err != nil {
		t.Fatal(err)
	}
	if got := flags(x.d); !slices.Equal(got, []uint8{realFTX, realFTX}) {
		t.Fatalf("flags after setXmit([4242]): %v, want REAL_F_TX on both", got)
	}
	x.expect(syn(client(1), 40000, vip4, 80).frame(), xdpTX, "tx_dr")
	x.expect(syn(client(2), 40000, vip4, 81).frame(), xdpTX, "tx_tun")
	// a server added afterwards gets the flag too; one behind another
	// interface does not
	x.d.resolver = func(a netip.Addr, m dataplane.Method) nexthop {
		nh := behind4242(a, m)
		if a == rs2.Addr() {
			nh.ifindex = 4343
		}
		return nh
	}
	x.apply(dr, tun, svc(dataplane.TCP, vip4, 82, "rr", rsv(rs2, 1, dataplane.DR)), svc(dataplane.TCP, vip4, 83, "rr", rsv(netip.MustParseAddrPort("10.0.0.3:80"), 1, dataplane.DR)))
	x.expect(syn(client(3), 40000, vip4, 82).frame(), xdpRedirect, "redirect_dr")
	x.expect(syn(client(3), 40000, vip4, 83).frame(), xdpTX, "tx_dr")
	if r, err := x.d.readReal(x.d.svcs[svc(dataplane.TCP, vip4, 82, "rr").Key].reals[rs2].id); err != nil || r.Flags != realFRedir {
		t.Errorf("server behind an interface the program is not attached to: flags %d (%v), want REAL_F_REDIR", r.Flags, err)
	}

	// a govs stopped between clearing a service's configuration and
	// freeing its servers leaves their slots to no adopted service
	orphan := x.d.svcs[tun.Key]
	if err := x.d.objs.SvcCfgs.Put(orphan.id, &lbSvcCfg{}); err != nil {
		t.Fatal(err)
	}
	d2 := restart(t, x, behind4242)
	if got := flags(d2); slices.ContainsFunc(got, func(f uint8) bool { return f != 0 }) {
		t.Errorf("flags adopted by a govs attached nowhere: %v, want none", got)
	}
	for _, rs := range orphan.reals {
		if r, err := d2.readReal(rs.id); err != nil || r.Gen == 0 || r.Flags != 0 {
			t.Errorf("slot %d of a service not adopted: gen %d, flags %d (%v); want its server kept, unflagged", rs.id, r.Gen, r.Flags, err)
		}
	}
	if v, _, err := d2.objs.GovsLb.Benchmark(syn(client(1), 40000, vip4, 80).frame(), 1, nil); err != nil || v != xdpRedirect {
		t.Errorf("after the restart: verdict %d, err %v, want XDP_REDIRECT", v, err)
	}
}

// TestRedirectFlag: REAL_F_REDIR sends a real server's packets by
// bpf_redirect without comparing its interface with the ingress one.
// BPF_PROG_TEST_RUN's ingress is lo, so a server behind lo is sent by
// XDP_TX when unflagged; flagged (the program attached to several
// interfaces, or to one that is not the server's) it is redirected.
func TestRedirectFlag(t *testing.T) {
	x := newTDP(t, Options{})
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	behindLo := uint32(lo.Index)
	x.d.resolver = func(a netip.Addr, m dataplane.Method) nexthop {
		return nexthop{addr: a, ok: true, ifindex: behindLo, dmac: realMAC(a), smac: directorMAC, mtu: 1500}
	}
	dr := svc(dataplane.TCP, vip4, 80, "rr", rsv(rs1, 1, dataplane.DR))
	x.apply(dr)
	id := x.d.svcs[dr.Key].reals[rs1].id
	for _, c := range []struct {
		on    []uint32
		flags uint8
		want  uint32
		exit  string
	}{
		{nil, 0, xdpTX, "tx_dr"},
		{[]uint32{behindLo, 4242}, realFRedir, xdpRedirect, "redirect_dr"},
		{[]uint32{4242}, realFRedir, xdpRedirect, "redirect_dr"},
		{[]uint32{behindLo}, realFTX, xdpTX, "tx_dr"},
		{nil, 0, xdpTX, "tx_dr"}, // cleared again
	} {
		if err := x.d.setXmit(c.on); err != nil {
			t.Fatal(err)
		}
		if r, err := x.d.readReal(id); err != nil || r.Flags != c.flags {
			t.Fatalf("setXmit(%v): flags %d (%v), want %d", c.on, r.Flags, err, c.flags)
		}
		x.expect(syn(client(1), 40000, vip4, 80).frame(), c.want, c.exit)
	}
}

// TestPathMTUDirect: direct routing and NAT check the path's MTU toward
// the real server too (a redirect drops a frame its egress cannot take
// without a word): fragmentation-needed or packet-too-big back to the
// client, a drop for an IPv4 packet without DF, and what fits goes.
func TestPathMTUDirect(t *testing.T) {
	x := newTDP(t, Options{})
	x.mtu = 1400
	nat := netip.MustParseAddrPort("10.0.0.1:8080")
	x.apply(svc(dataplane.TCP, vip4, 80, "rr", rsv(rs1, 1, dataplane.DR)),
		svc(dataplane.TCP, vip4, 81, "rr", rsv(nat, 1, dataplane.NAT)),
		svc(dataplane.TCP, vip6, 80, "rr", rsv(rs6a, 1, dataplane.DR)))
	for _, c := range []struct {
		name    string
		p       pkt
		len     int // IP length
		df      bool
		verdict uint32
		exit    string
	}{
		{"dr fits", syn(client(1), 40000, vip4, 80), 1400, true, xdpTX, "tx_dr"},
		{"dr too big, DF", syn(client(2), 40000, vip4, 80), 1401, true, xdpTX, "tx_icmp_toobig"},
		{"dr too big, no DF", syn(client(3), 40000, vip4, 80), 1401, false, xdpDrop, "drop_toobig"},
		{"nat too big, DF", syn(client(4), 40000, vip4, 81), 1500, true, xdpTX, "tx_icmp_toobig"},
		{"nat fits", syn(client(5), 40000, vip4, 81), 1400, true, xdpTX, "tx_nat"},
		{"dr ipv6 too big", syn(client6(1), 40000, vip6, 80), 1401, false, xdpTX, "tx_icmp_toobig"},
	} {
		p := c.p
		p.df = c.df
		hdr := 40
		if p.src.Addr().Is6() {
			hdr = 60
		}
		p.payload = make([]byte, c.len-hdr)
		out := x.expect(p.frame(), c.verdict, c.exit)
		if c.exit != "tx_icmp_toobig" {
			continue
		}
		if p.src.Addr().Is4() {
			if ic := out[34:]; ic[0] != 3 || ic[1] != 4 || binary.BigEndian.Uint16(ic[6:]) != 1400 {
				t.Errorf("%s: icmp type/code/mtu %d/%d/%d, want 3/4/1400", c.name, ic[0], ic[1], binary.BigEndian.Uint16(ic[6:]))
			}
		} else if ic := out[54:]; ic[0] != 2 || binary.BigEndian.Uint32(ic[4:]) != 1400 {
			t.Errorf("%s: icmpv6 type/mtu %d/%d, want 2/1400", c.name, ic[0], binary.BigEndian.Uint32(ic[4:]))
		}
	}
}
