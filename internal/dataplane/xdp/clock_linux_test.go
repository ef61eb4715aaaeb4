package xdp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/govs/govs/internal/dataplane"
)

// TestClock: the program's jiffies-based clock gives connection
// timestamps on the Go side's clock (CLOCK_MONOTONIC_COARSE), to within
// a few ticks, whether or not calibration found the tick length.
func TestClock(t *testing.T) {
	x := newTDP(t, Options{})
	if x.d.clkMult == 0 {
		t.Logf("tick length not calibrated: the program uses bpf_ktime_get_coarse_ns")
	}
	x.apply(svc(dataplane.TCP, vip4, 80, "rr", rsv(rs1, 1, dataplane.DR)),
		svc(dataplane.TCP, vip6, 80, "rr", rsv(rs6a, 1, dataplane.DR)))
	for _, c := range []struct {
		name   string
		family uint8
		p      pkt
	}{
		{"ipv4", 4, syn(client(1), 40000, vip4, 80)},
		{"ipv6", 6, syn(client6(1), 40000, vip6, 80)},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := monoNow()
			x.expect(c.p.frame(), xdpTX, "tx_dr")
			after := monoNow()
			var got uint64
			found := false
			if err := x.d.eachConn(func(k *lbFlowKey, v *lbConn) {
				if htons(k.Sport) == 40000 && k.Family == c.family {
					got, found = v.LastNs, true
				}
			}); err != nil {
				t.Fatal(err)
			}
			if !found {
				t.Fatal("no connection entry")
			}
			slack := uint64(50 * time.Millisecond) // a few ticks at any HZ
			if got+slack < before || got > after+slack {
				t.Errorf("last_ns %d outside [%d, %d] ± %v", got, before, after, time.Duration(slack))
			}
		})
	}
}

// TestKey4: IPv4 flow keys survive the round trip through conn4_tbl's
// 16-byte key, and the sync deletes from the table of the family.
func TestKey4(t *testing.T) {
	k := lbFlowKey{Family: 4, Proto: 6, Sport: htons(40000), Dport: htons(80)}
	copy(k.Saddr[:], []byte{10, 0, 0, 1})
	copy(k.Daddr[:], []byte{192, 0, 2, 1})
	if got := fromKey4(toKey4(&k)); got != k {
		t.Errorf("round trip: got %+v, want %+v", got, k)
	}
	x := newTDP(t, Options{})
	x.apply(svc(dataplane.UDP, vip4, 53, "rr", rsv(rs1, 1, dataplane.DR)),
		svc(dataplane.UDP, vip6, 53, "rr", rsv(rs6a, 1, dataplane.DR)))
	for _, p := range []pkt{
		{src: netip.AddrPortFrom(client(1), 5000), dst: netip.AddrPortFrom(vip4, 53), proto: 17, payload: []byte("x")},
		{src: netip.AddrPortFrom(client6(1), 5000), dst: netip.AddrPortFrom(vip6, 53), proto: 17, payload: []byte("x")},
	} {
		x.expect(p.frame(), xdpTX, "tx_dr")
	}
	if n4, n6 := x.d.objs.Conn4Tbl.MaxEntries(), x.d.objs.ConnTbl.MaxEntries(); n4 != n6 {
		t.Errorf("table sizes %d (IPv4) and %d (IPv6) differ", n4, n6)
	}
	var keys []lbFlowKey
	if err := x.d.eachConn(func(k *lbFlowKey, _ *lbConn) { keys = append(keys, *k) }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("%d entries, want 2 (one per family)", len(keys))
	}
	if err := x.d.deleteConns(keys); err != nil {
		t.Fatal(err)
	}
	n := 0
	if err := x.d.eachConn(func(*lbFlowKey, *lbConn) { n++ }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d entries left after deleting both", n)
	}
}
