package xdp

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/govs/govs/internal/dataplane"
)

// TestRemovedRealNATEntries: the reply entries (nat_tbl) of the
// connections of a NAT real server that was removed, alone or with its
// service, are deleted by the next walk with the connections; they used
// to wait for the LRU to evict them, since the walk built an entry's key
// from the server's address and no longer had it.
func TestRemovedRealNATEntries(t *testing.T) {
	for _, fam := range []string{"ipv4", "ipv6"} {
		for _, how := range []string{"server", "service"} {
			t.Run(fmt.Sprintf("%s/%s", fam, how), func(t *testing.T) { testRemovedRealNAT(t, fam == "ipv6", how == "service") })
		}
	}
}

func testRemovedRealNAT(t *testing.T, v6, wholeService bool) {
	x := newTDP(t, Options{})
	inRoutedNS(t)
	vip, other := vip4, netip.MustParseAddr("192.0.2.11")
	rs, rs2 := netip.MustParseAddrPort("10.0.0.1:8080"), netip.MustParseAddrPort("10.0.0.2:8080")
	cl := netip.AddrPortFrom(client(1), 40000)
	if v6 {
		vip, other = vip6, netip.MustParseAddr("2001:db8::11")
		rs, rs2 = netip.MustParseAddrPort("[fd00::1]:8080"), netip.MustParseAddrPort("[fd00::2]:8080")
		cl = netip.AddrPortFrom(client6(1), 40000)
	}
	keep := svc(dataplane.TCP, other, 80, "rr", rsv(rs2, 1, dataplane.NAT))
	x.apply(svc(dataplane.TCP, vip, 80, "rr", rsv(rs, 1, dataplane.NAT)), keep)
	x.expect(pkt{src: cl, dst: netip.AddrPortFrom(vip, 80), proto: 6, flags: tcpSYN}.frame(), xdpTX, "tx_nat")
	cl2 := netip.AddrPortFrom(client(2), 40001)
	if v6 {
		cl2 = netip.AddrPortFrom(client6(2), 40001)
	}
	x.expect(pkt{src: cl2, dst: netip.AddrPortFrom(other, 80), proto: 6, flags: tcpSYN}.frame(), xdpTX, "tx_nat")
	before := len(x.natClaims())
	if before < 2 {
		t.Fatalf("nat_tbl holds %d entries, want the two connections'", before)
	}
	if wholeService {
		x.apply(keep)
	} else {
		x.apply(svc(dataplane.TCP, vip, 80, "rr"), keep)
	}
	x.d.mu.Lock()
	err := x.d.syncLocked()
	tombs := len(x.d.tombs)
	x.d.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if got := len(x.natClaims()); got != before-1 {
		t.Errorf("after the walk nat_tbl holds %d entries, want %d (the removed server's connection's entry deleted, the other kept)", got, before-1)
	}
	if tombs != 0 {
		t.Errorf("%d removed servers still remembered after the walk", tombs)
	}
	for _, c := range x.conns() {
		if c.Real == rs {
			t.Errorf("a connection of the removed server is left: %+v", c)
		}
	}
}
