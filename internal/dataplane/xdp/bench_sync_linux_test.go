package xdp

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/govs/govs/internal/connsync"
	"github.com/govs/govs/internal/dataplane"
)

// syncConns are n established connections of the service at vip4:80,
// spread over its real servers.
func syncConns(x *tdp, n int) []dataplane.Conn {
	var s *service
	for _, v := range x.d.svcs {
		s = v
	}
	var reals []netip.AddrPort
	for a := range s.reals {
		reals = append(reals, a)
	}
	out := make([]dataplane.Conn, n)
	for i := range out {
		out[i] = dataplane.Conn{Proto: dataplane.TCP,
			Client:  netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), uint16(1024+i%60000)),
			Virtual: netip.AddrPortFrom(vip4, 80), Real: reals[i%len(reals)],
			State: "ESTABLISHED", Expires: 900 * time.Second, Method: dataplane.DR}
	}
	return out
}

// BenchmarkSyncImport: the BACKUP's cost per connection taken
// (ImportConns, by messages of 40 as the wire carries them).
func BenchmarkSyncImport(b *testing.B) {
	const n = 200000
	x := newTDPFor(b, Options{ConnTableSize: 1 << 20})
	x.apply(svc(dataplane.TCP, vip4, 80, "wlc", pool(1, 1, 1, 1)...))
	conns := syncConns(x, n)
	for b.Loop() {
		for i := 0; i < n; i += 40 {
			took, err := x.d.ImportConns(context.Background(), conns[i:min(i+40, n)])
			if err != nil || took != min(40, n-i) {
				b.Fatalf("took %d: %v", took, err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/conn")
}

// BenchmarkSyncSend: the MASTER's round over a table of 200,000
// connections (read, compare, encode): first/ sends them all, steady/
// finds nothing to send (the round every second costs this).
func BenchmarkSyncSend(b *testing.B) {
	const n = 200000
	x := newTDPFor(b, Options{ConnTableSize: 1 << 20})
	x.apply(svc(dataplane.TCP, vip4, 80, "wlc", pool(1, 1, 1, 1)...))
	if took, err := x.d.ImportConns(context.Background(), syncConns(x, n)); err != nil || took != n {
		b.Fatalf("took %d: %v", took, err)
	}
	for _, steady := range []bool{false, true} {
		name := map[bool]string{false: "first", true: "steady"}[steady]
		b.Run(name, func(b *testing.B) {
			sent := 0
			var s connsync.Sender
			s.MaxLen = 1472
			if steady {
				if _, _, err := s.Round(context.Background(), x.d, time.Now()); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				if !steady {
					s = connsync.Sender{MaxLen: 1472}
				}
				var err error
				_, sent, err = s.Round(context.Background(), x.d, time.Now())
				if err != nil {
					b.Fatal(err)
				}
			}
			want := n
			if steady {
				want = 0
			}
			if sent != want {
				b.Fatalf("sent %d connections, want %d", sent, want)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/conn")
		})
	}
}
