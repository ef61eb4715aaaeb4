package xdp

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/govs/govs/internal/dataplane"
)

// BenchmarkSNATNewFlow: the cost of a new SNAT connection (connection
// and reply-table misses, service lookup, scheduling, binding a source,
// storing the connection, two rewrites) with the service's pool empty,
// half full and 90% full of live connections. Run:
//
//	go test -run '^$' -bench SNATNewFlow -benchtime 20x ./internal/dataplane/xdp
//
// The pool is 16 addresses × 4096 ports (65536 bindings) toward one real
// server, filled with SYNs of distinct clients (alive for 60 s). Bindings
// younger than the shortest TCP life (10 s) are passed over at the cost
// of one lookup; in the -old case they were claimed an hour ago by
// connections still alive, so every taken candidate also costs the
// lookup of its connection (the worst case: a pool full of long-lived
// connections). The
// trick that makes repeat mode (the kernel's own time per run, one
// buffer for every run) measure new connections: the real server is the
// virtual address itself, so the SYN the program forwards, now from the
// binding it just made, is the next run's new connection from a new
// client. After each batch of runs the bindings it made are deleted, so
// the occupancy stays within 1000/65536 of its mark (and so are the
// connections of those runs). dropped/run is the
// share of runs that found no free binding in 64 tries (0.9^64 ≈ 0.1 % is
// expected at 90 %).
func BenchmarkSNATNewFlow(b *testing.B) {
	const batch = 1000
	var pool []netip.Addr
	for i := range 16 {
		pool = append(pool, netip.AddrFrom4([4]byte{10, 9, 0, byte(1 + i)}))
	}
	sp := &dataplane.SourcePool{Name: "bench", Addresses: pool, PortMin: 20000, PortMax: 20000 + 4095}
	const space = 16 * 4096
	for _, c := range []struct {
		name string
		occ  int
		old  bool // bindings claimed an hour ago by live connections
	}{{"snat-0%", 0, false}, {"snat-50%", 50, false}, {"snat-90%", 90, false}, {"snat-90%-old", 90, true}} {
		b.Run(c.name, func(b *testing.B) {
			requireBPF(b)
			x := newTDPFor(b, Options{ConnTableSize: 1 << 18})
			s := svc(dataplane.TCP, vip4, 80, "rr", rsv(netip.AddrPortFrom(vip4, 80), 1, dataplane.SNAT))
			s.SourcePool = sp
			x.apply(s)
			frame := syn(client(1), 1, vip4, 80).frame()
			fill := c.occ * space / 100
			for i := range fill {
				binary.BigEndian.PutUint32(frame[14+12:], 0x64400000|uint32(i>>4))
				binary.BigEndian.PutUint16(frame[14+20:], uint16(10000+i&15))
				frame[14+10], frame[14+11] = 0, 0
				binary.BigEndian.PutUint16(frame[14+10:], csumFold(csumAdd(0, frame[14:34])))
				x.run(frame) // the TCP checksum is not looked at
			}
			keep := map[lbFlowKey]bool{}
			var k lbFlowKey
			var v lbNatRev
			it := x.d.objs.NatTbl.Iterate()
			for it.Next(&k, &v) {
				keep[k] = true
			}
			if c.old {
				for k := range keep {
					if err := x.d.objs.NatTbl.Lookup(k, &v); err != nil {
						b.Fatal(err)
					}
					v.Ns -= uint64(time.Hour)
					if err := x.d.objs.NatTbl.Put(k, v); err != nil {
						b.Fatal(err)
					}
				}
			}
			ex0, ev0 := x.exits(), x.events()
			var total time.Duration
			batches := 0
			for b.Loop() {
				// a new client each batch: its first run is new as well
				frame = syn(client(1), uint16(30000+batches), vip4, 80).frame()
				batches++
				ret, d, err := x.d.objs.GovsLb.Benchmark(frame, batch, nil)
				if err != nil || ret != xdpTX && ret != xdpDrop { // the last run may find no binding
					b.Fatalf("verdict %d, %v, exits %v", ret, err, nonZero(x.exits()))
				}
				total += d
				var del []lbFlowKey
				it := x.d.objs.NatTbl.Iterate()
				for it.Next(&k, &v) {
					if !keep[k] {
						del = append(del, k)
					}
				}
				if err := batchDelete(x.d.objs.NatTbl, del); err != nil {
					b.Fatal(err)
				}
				// and the connections of the batch (their clients are
				// pool addresses), or a later batch that binds one of
				// those again would find it established
				var k4 lbFlowKey4
				var c4 lbConn
				var cdel []lbFlowKey4
				cit := x.d.objs.Conn4Tbl.Iterate()
				for cit.Next(&k4, &c4) {
					if k4.Saddr[0] == 10 && k4.Saddr[1] == 9 {
						cdel = append(cdel, k4)
					}
				}
				if err := batchDelete(x.d.objs.Conn4Tbl, cdel); err != nil {
					b.Fatal(err)
				}
			}
			ex, ev := x.exits(), x.events()
			dropped := ex["drop_snat_exhausted"] - ex0["drop_snat_exhausted"]
			n := ex["tx_snat"] - ex0["tx_snat"]
			// every run is a new connection (a dropped one included)
			if n+dropped != uint64(b.N*batch) || ev["conn_new"]-ev0["conn_new"] != uint64(b.N*batch) {
				b.Errorf("%d runs: %d forwarded, %d dropped, %d new connections", b.N*batch, n, dropped, ev["conn_new"]-ev0["conn_new"])
			}
			b.ReportMetric(float64(dropped)/float64(b.N*batch), "dropped/run")
			b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/pkt")
			b.ReportMetric(float64(len(keep))*100/space, "occupancy%")
		})
	}
}

func (x *tdp) events() map[string]uint64 {
	x.t.Helper()
	m, err := x.d.Events()
	if err != nil {
		x.t.Fatal(err)
	}
	return m
}
