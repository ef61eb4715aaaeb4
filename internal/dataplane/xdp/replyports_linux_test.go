package xdp

import (
	"net/netip"
	"testing"

	"github.com/govs/govs/internal/dataplane"
)

// TestReplyPortSet: the ports NAT replies can come from.
func TestReplyPortSet(t *testing.T) {
	nat := func(port uint16) dataplane.RealServer {
		return rsv(netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), port), 1, dataplane.NAT)
	}
	ftp := svc(dataplane.TCP, vip4, 21, "rr", nat(0))
	ftp.Ports = []dataplane.PortRange{{From: 21, To: 21}, {From: 10000, To: 10009}}
	sorry := svc(dataplane.TCP, vip4, 443, "rr", rsv(rs1, 1, dataplane.DR))
	s := rsv(netip.MustParseAddrPort("10.0.0.9:8443"), 1, dataplane.SNAT)
	sorry.Sorry = &s
	wild := svc(dataplane.TCP, vip4, 0, "rr", nat(0))

	cases := []struct {
		name  string
		svcs  []dataplane.Service
		want  []uint16
		exact bool
	}{
		{"none", nil, nil, true},
		{"dr only", []dataplane.Service{svc(dataplane.TCP, vip4, 80, "rr", rsv(rs1, 1, dataplane.DR))}, nil, true},
		{"nat port", []dataplane.Service{svc(dataplane.TCP, vip4, 80, "rr", nat(8080))}, []uint16{8080}, true},
		{"port kept", []dataplane.Service{svc(dataplane.UDP, vip4, 53, "rr", nat(0))}, []uint16{53}, true},
		{"multi-port", []dataplane.Service{ftp}, []uint16{21, 10000, 10001, 10002, 10003, 10004, 10005, 10006, 10007, 10008, 10009}, true},
		{"sorry server", []dataplane.Service{sorry}, []uint16{8443}, true},
		{"every port", []dataplane.Service{wild}, nil, false},
		{"every port, then a port", []dataplane.Service{wild, svc(dataplane.TCP, vip4, 80, "rr", nat(8080))}, []uint16{8080}, false},
	}
	for _, c := range cases {
		set, exact := replyPorts(c.svcs)
		if exact != c.exact {
			t.Errorf("%s: exact %v, want %v", c.name, exact, c.exact)
		}
		var want portSet
		for _, p := range c.want {
			want.add(p)
		}
		if set != want {
			for p := 0; p < 65536; p++ {
				if got, w := set[p>>6]>>(p&63)&1, want[p>>6]>>(p&63)&1; got != w {
					t.Errorf("%s: port %d in set %d, want %d", c.name, p, got, w)
				}
			}
		}
	}
}

// TestReplyPortsFollowApply: the program finds NAT replies from the ports
// of the configuration applied last, and the settings say whether the
// set is exact.
func TestReplyPortsFollowApply(t *testing.T) {
	x := newTDP(t, Options{})
	inEmptyNS(t) // the reply's route lookup finds nothing: left to the kernel
	if n := x.d.objs.ReplyPorts.MaxEntries(); n != replyWords {
		t.Fatalf("reply_ports has %d entries, replyWords is %d", n, replyWords)
	}
	flags := func() uint32 {
		var c lbConfig
		if err := x.d.objs.Settings.Lookup(uint32(0), &c); err != nil {
			t.Fatal(err)
		}
		return c.Flags
	}
	conn := func(cport uint16, real netip.AddrPort) {
		t.Helper()
		cl := netip.AddrPortFrom(client(1), cport)
		x.expect(pkt{src: cl, dst: netip.AddrPortFrom(vip4, 80), proto: 6, flags: tcpSYN}.frame(), xdpTX, "tx_nat")
		x.expect(pkt{src: real, dst: cl, proto: 6, flags: tcpSYN | tcpACK}.frame(), xdpPass, "pass_nat_reply")
	}
	r1 := netip.MustParseAddrPort("10.0.0.1:8080")
	x.apply(svc(dataplane.TCP, vip4, 80, "rr", rsv(r1, 1, dataplane.NAT)))
	if f := flags(); f&48 != 48 {
		t.Errorf("settings flags %#x, want CFG_F_NAT|CFG_F_REPLY_PORTS", f)
	}
	conn(40000, r1)
	r2 := netip.MustParseAddrPort("10.0.0.1:8081")
	x.apply(svc(dataplane.TCP, vip4, 80, "rr", rsv(r2, 1, dataplane.NAT)))
	conn(40001, r2)
	var w uint64
	if err := x.d.objs.ReplyPorts.Lookup(uint32(8080>>6), &w); err != nil {
		t.Fatal(err)
	}
	if w>>(8080&63)&1 != 0 {
		t.Errorf("port 8080 still a reply port after its real server went")
	}
	// a wildcard service whose real server keeps the client's port: every
	// port can be a reply, the set is not used
	x.apply(svc(dataplane.TCP, vip4, 0, "rr", rsv(netip.AddrPortFrom(r1.Addr(), 0), 1, dataplane.NAT)))
	if f := flags(); f&48 != 16 {
		t.Errorf("settings flags %#x, want CFG_F_NAT without CFG_F_REPLY_PORTS", f)
	}
	cl := netip.AddrPortFrom(client(2), 40002)
	x.expect(pkt{src: cl, dst: netip.AddrPortFrom(vip4, 7777), proto: 6, flags: tcpSYN}.frame(), xdpTX, "tx_nat")
	x.expect(pkt{src: netip.AddrPortFrom(r1.Addr(), 7777), dst: cl, proto: 6, flags: tcpSYN | tcpACK}.frame(), xdpPass, "pass_nat_reply")
	x.apply(svc(dataplane.TCP, vip4, 80, "rr", rsv(rs1, 1, dataplane.DR)))
	if f := flags(); f&48 != 0 {
		t.Errorf("settings flags %#x with DR only, want neither NAT flag", f)
	}
}

// TestNATRepliesDuringFirstApply: the first Apply that brings NAT real
// servers sets CFG_F_NAT before it writes them, so the reply to a
// connection made while that Apply is still running is translated, not
// left untranslated to the kernel.
func TestNATRepliesDuringFirstApply(t *testing.T) {
	x := newTDP(t, Options{})
	inEmptyNS(t) // the reply's route lookup finds nothing: left to the kernel
	r1 := netip.MustParseAddrPort("10.0.0.1:8080")
	cl := netip.AddrPortFrom(client(1), 40000)
	ran := false
	x.d.afterServices = func() {
		ran = true
		x.expect(pkt{src: cl, dst: netip.AddrPortFrom(vip4, 80), proto: 6, flags: tcpSYN}.frame(), xdpTX, "tx_nat")
		x.expect(pkt{src: r1, dst: cl, proto: 6, flags: tcpSYN | tcpACK}.frame(), xdpPass, "pass_nat_reply")
	}
	x.apply(svc(dataplane.TCP, vip4, 80, "rr", rsv(r1, 1, dataplane.NAT)))
	if !ran {
		t.Fatal("the hook did not run")
	}
}
