package xdp

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/dataplane"
)

// TestImportConns: connections one director made (NAT, SNAT with a
// pool, DR under persistence) and listed (Conns) are taken by another
// with the same services (ImportConns, what connsync's backup does).
// Their packets without SYN, which the second would otherwise pass to
// the kernel, go to the same real servers; NAT and SNAT replies are
// translated back; a new connection of a persistent client follows the
// template. Connections of unknown services, and SNAT connections with a
// source that is not this director's, are not taken.
func TestImportConns(t *testing.T) {
	a := newTDP(t, Options{})
	t.Run("backup", func(t *testing.T) {
		inEmptyNS(t) // replies find no route: the program leaves them to the kernel
		b := newTDP(t, Options{})
		realNAT := netip.MustParseAddrPort("10.0.0.1:8080")
		realSNAT := netip.MustParseAddrPort("10.0.0.21:8080")
		poolAddrs := ips("10.9.0.1", "10.9.0.2")
		nat := svc(dataplane.TCP, vip4, 80, "rr", rsv(realNAT, 1, dataplane.NAT))
		dr := svc(dataplane.TCP, vip4, 443, "rr", pool(1, 1)...)
		dr.Persistence = 300 * time.Second
		sn := snatSvc(dataplane.TCP, vip4, 8443, &dataplane.SourcePool{Name: "p", Addresses: poolAddrs}, realSNAT)
		a.apply(nat, dr, sn)
		b.apply(nat, dr, sn)

		natC := netip.AddrPortFrom(client(1), 40000)
		a.expect(syn(natC.Addr(), natC.Port(), vip4, 80).frame(), xdpTX, "tx_nat")
		a.expect(syn(client(6), 1000, vip4, 443).frame(), xdpTX, "tx_dr") // rr's first server
		drOut := a.expect(syn(client(5), 1000, vip4, 443).frame(), xdpTX, "tx_dr")
		drMAC := dstMAC(drOut) // the second
		snC := netip.AddrPortFrom(client(2), 40001)
		snOut := a.expect(syn(snC.Addr(), snC.Port(), vip4, 8443).frame(), xdpTX, "tx_snat")
		binding, _ := fwdAddrs(snOut)
		conns := a.conns()
		if len(conns) != 6 { // 4 connections, 2 templates
			t.Fatalf("the first director lists %d entries, want 6: %+v", len(conns), conns)
		}

		ack := func(c netip.AddrPort, vport uint16) []byte {
			return pkt{src: c, dst: netip.AddrPortFrom(vip4, vport), proto: 6, flags: tcpACK, payload: []byte("more")}.frame()
		}
		b.expect(ack(natC, 80), xdpPass, "pass_tcp_nosyn") // not imported yet

		// not taken: an unknown service, an SNAT source not in the pool
		other := []dataplane.Conn{
			{Proto: dataplane.TCP, Client: natC, Virtual: netip.AddrPortFrom(vip4, 81), Real: realNAT, State: "ESTABLISHED", Expires: time.Minute},
			{Proto: dataplane.TCP, Client: netip.AddrPortFrom(client(3), 5), Virtual: netip.AddrPortFrom(vip4, 8443), Real: realSNAT,
				Local: netip.MustParseAddrPort("10.9.9.9:2000"), State: "ESTABLISHED", Expires: time.Minute},
		}
		took, err := b.d.ImportConns(context.Background(), append(conns, other...))
		if took != 6 {
			t.Fatalf("took %d of 8, want 6 (%v)", took, err)
		}
		if err == nil || !strings.Contains(err.Error(), "not in the service's source pool") {
			t.Errorf("the refused SNAT source is not reported: %v", err)
		}

		// the imported entries are listed with what the first director
		// had (before any packet here)
		got := map[string]dataplane.Conn{}
		for _, c := range b.conns() {
			got[c.Client.String()+c.Virtual.String()] = c
		}
		for _, c := range conns {
			g, ok := got[c.Client.String()+c.Virtual.String()]
			if !ok || g.Real != c.Real || g.Local != c.Local || g.State != c.State || g.Template != c.Template {
				t.Errorf("imported %+v, listed as %+v", c, g)
			}
		}

		// NAT: same real server, reply translated back
		out := b.expect(ack(natC, 80), xdpTX, "tx_nat")
		if _, dst := fwdAddrs(out); dst != realNAT {
			t.Errorf("NAT connection sent to %s, want %s", dst, realNAT)
		}
		rout := b.expect(pkt{src: realNAT, dst: natC, proto: 6, flags: tcpACK, payload: []byte("back")}.frame(), xdpPass, "pass_nat_reply")
		if src, dst := fwdAddrs(rout); src != netip.AddrPortFrom(vip4, 80) || dst != natC {
			t.Errorf("NAT reply %s -> %s, want %s -> %s", src, dst, netip.AddrPortFrom(vip4, 80), natC)
		}
		// DR: same real server, and the persistent client's next
		// connection follows the template (rr here would pick the first)
		if out := b.expect(ack(netip.AddrPortFrom(client(5), 1000), 443), xdpTX, "tx_dr"); dstMAC(out) != drMAC {
			t.Errorf("DR connection sent to %x, want %x", dstMAC(out), drMAC)
		}
		if out := b.expect(syn(client(5), 2000, vip4, 443).frame(), xdpTX, "tx_dr"); dstMAC(out) != drMAC {
			t.Errorf("persistent client's new connection sent to %x, want %x (the template's)", dstMAC(out), drMAC)
		}
		// SNAT: the same binding, and its reply goes back to the client
		out = b.expect(ack(snC, 8443), xdpTX, "tx_snat")
		if src, dst := fwdAddrs(out); src != binding || dst != realSNAT {
			t.Errorf("SNAT connection %s -> %s, want %s -> %s", src, dst, binding, realSNAT)
		}
		rout = b.expect(pkt{src: realSNAT, dst: binding, proto: 6, flags: tcpACK, payload: []byte("back")}.frame(), xdpPass, "pass_nat_reply")
		if src, dst := fwdAddrs(rout); src != netip.AddrPortFrom(vip4, 8443) || dst != snC {
			t.Errorf("SNAT reply %s -> %s, want %s -> %s", src, dst, netip.AddrPortFrom(vip4, 8443), snC)
		}
		// a binding this director gave to another live connection is
		// not taken over
		live := netip.AddrPortFrom(client(4), 7)
		out = b.expect(syn(live.Addr(), live.Port(), vip4, 8443).frame(), xdpTX, "tx_snat")
		liveBinding, _ := fwdAddrs(out)
		steal := dataplane.Conn{Proto: dataplane.TCP, Client: netip.AddrPortFrom(client(7), 9), Virtual: netip.AddrPortFrom(vip4, 8443),
			Real: realSNAT, Local: liveBinding, State: "ESTABLISHED", Expires: time.Minute}
		if took, err := b.d.ImportConns(context.Background(), []dataplane.Conn{steal}); took != 0 || err == nil {
			t.Errorf("a live binding was taken over: took %d, %v", took, err)
		}
		rout = b.expect(pkt{src: realSNAT, dst: liveBinding, proto: 6, flags: tcpACK, payload: []byte("back")}.frame(), xdpPass, "pass_nat_reply")
		if _, dst := fwdAddrs(rout); dst != live {
			t.Errorf("the live binding's reply goes to %s, want %s", dst, live)
		}
	})
}
