package sched

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// mkDests returns one Dest per weight, 10.0.0.1:80, 10.0.0.2:80, ...
func mkDests(weights ...int) []*Dest {
	ds := make([]*Dest, len(weights))
	for i, w := range weights {
		ds[i] = NewDest(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i + 1)}), 80), w)
	}
	return ds
}

// label names d by its index in ds: A, B, C, ... ("-" for nil).
func label(ds []*Dest, d *Dest) string {
	if d == nil {
		return "-"
	}
	for i, x := range ds {
		if x == d {
			if i < 26 {
				return string(rune('A' + i))
			}
			return fmt.Sprintf("#%d", i)
		}
	}
	return "?"
}

// seq picks n times with flow f and returns the labels joined.
func seq(s Scheduler, ds []*Dest, f Flow, n int) string {
	var b strings.Builder
	for range n {
		b.WriteString(label(ds, s.Pick(f)))
	}
	return b.String()
}

func mustNew(t testing.TB, name string, o Options, ds []*Dest) Scheduler {
	t.Helper()
	s, err := New(name, o)
	if err != nil {
		t.Fatalf("New(%q): %v", name, err)
	}
	s.Update(ds)
	return s
}

var (
	vip4 = netip.MustParseAddrPort("192.0.2.10:80")
	vip6 = netip.MustParseAddrPort("[2001:db8::10]:443")
)

func flow(src string) Flow {
	return Flow{Proto: TCP, Src: netip.MustParseAddrPort(src), Dst: vip4}
}

// randFlows returns n TCP flows from random IPv4 clients and ports to
// random destination addresses in 198.51.100.0/24 (for dh and lblc).
func randFlows(r *rand.Rand, n int) []Flow {
	fs := make([]Flow, n)
	for i := range fs {
		a := r.Uint32()
		src := netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)})
		dst := netip.AddrFrom4([4]byte{198, 51, 100, byte(r.IntN(256))})
		fs[i] = Flow{Proto: TCP, Src: netip.AddrPortFrom(src, uint16(1024+r.IntN(60000))), Dst: netip.AddrPortFrom(dst, 80)}
	}
	return fs
}

// shares counts picks per dest over flows and returns the fractions.
func shares(s Scheduler, ds []*Dest, flows []Flow) []float64 {
	idx := make(map[*Dest]int, len(ds))
	for i, d := range ds {
		idx[d] = i
	}
	cnt := make([]int, len(ds))
	for _, f := range flows {
		if d := s.Pick(f); d != nil {
			cnt[idx[d]]++
		}
	}
	out := make([]float64, len(ds))
	for i, c := range cnt {
		out[i] = float64(c) / float64(len(flows))
	}
	return out
}

func weightShares(ws ...int) []float64 {
	sum := 0
	for _, w := range ws {
		sum += w
	}
	out := make([]float64, len(ws))
	for i, w := range ws {
		out[i] = float64(w) / float64(sum)
	}
	return out
}

// fakeClock is a settable Clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// open records n connections on d (active or inactive).
func open(d *Dest, n int, active bool) {
	for range n {
		d.ConnOpened(active)
	}
}
