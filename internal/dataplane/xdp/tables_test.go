package xdp

import (
	"net/netip"
	"testing"

	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/sched"
)

func TestRepresentativesLandInTheirSlot(t *testing.T) {
	for _, l := range []tableLayout{
		{mode: modeHashSrc, bits: 8, size: 256},
		{mode: modeHashDst, bits: 4, size: 16},
		{mode: modeHashMH, size: 251},
		{mode: modeHashMH, size: 65537},
	} {
		reps, err := l.representatives()
		if err != nil {
			t.Fatalf("%+v: %v", l, err)
		}
		for b, x := range reps {
			if got := l.slotOf(x); got != uint32(b) {
				t.Fatalf("%+v: representative %d of slot %d lands in %d", l, x, b, got)
			}
		}
	}
	if goldenInverse*goldenRatio32 != 1 {
		t.Errorf("inverse wrong")
	}
}

func TestLayoutFor(t *testing.T) {
	tests := []struct {
		sched string
		mh    int
		want  tableLayout
		err   bool
	}{
		{"sh", 0, tableLayout{mode: modeHashSrc, bits: 8, size: 256}, false},
		{"dh", 0, tableLayout{mode: modeHashDst, bits: 8, size: 256}, false},
		{"mh", 0, tableLayout{mode: modeHashMH, size: 4093}, false},
		{"mh", 251, tableLayout{mode: modeHashMH, size: 251}, false},
		{"wlc", 0, tableLayout{mode: modeCursor, size: 1024}, false},
		{"", 0, tableLayout{mode: modeCursor, size: 1024}, false},
		{"nope", 0, tableLayout{}, true},
	}
	for _, tt := range tests {
		got, err := layoutFor(dataplane.Service{Scheduler: tt.sched, MHTableSize: tt.mh}, 1024)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("%s: %+v %v, want %+v (error %v)", tt.sched, got, err, tt.want, tt.err)
		}
	}
}

// TestRingWholeCycles: rr and wrr rings hold whole cycles and respect
// weights exactly.
func TestRingWholeCycles(t *testing.T) {
	mk := func(ws ...int) []*sched.Dest {
		var ds []*sched.Dest
		for i, w := range ws {
			ds = append(ds, sched.NewDest(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 80), w))
		}
		return ds
	}
	vip := netip.MustParseAddrPort("192.0.2.1:80")
	for _, tt := range []struct {
		name string
		w    []int
		n    int
	}{{"rr", []int{1, 1, 1}, 1023}, {"wrr", []int{3, 2, 1}, 1020}, {"wrr", []int{4, 0, 2}, 1023}} {
		ds := mk(tt.w...)
		s, _ := sched.New(tt.name, sched.Options{})
		s.Update(ds)
		ring := fillRing(1024, s, ds, sched.TCP, vip, false)
		if len(ring) != tt.n {
			t.Errorf("%s%v: ring of %d, want %d", tt.name, tt.w, len(ring), tt.n)
		}
		count := map[*sched.Dest]int{}
		for _, d := range ring {
			count[d]++
		}
		sum := 0
		for _, w := range tt.w {
			if tt.name == "rr" {
				w = 1
			}
			sum += w
		}
		for i, d := range ds {
			w := tt.w[i]
			if tt.name == "rr" {
				w = 1
			}
			if want := len(ring) * w / sum; count[d] != want {
				t.Errorf("%s%v: %s has %d slots, want %d", tt.name, tt.w, d, count[d], want)
			}
			if d.ActiveConns() != 0 || d.InactiveConns() != 0 {
				t.Errorf("simulation left counts on %s", d)
			}
		}
	}
}

// TestFillRingKeepsOverload: the connections fillRing simulates do not
// leave a server overloaded that was not (the threshold rule's
// hysteresis would keep the overload their peak set).
func TestFillRingKeepsOverload(t *testing.T) {
	var dests []*sched.Dest
	for i := range 2 {
		d := sched.NewDest(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 80), 1)
		d.SetThresholds(100, 0) // lower: 3/4 of upper
		for range 80 {
			d.ConnOpened(true)
		}
		dests = append(dests, d)
	}
	s, err := sched.New("rr", sched.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Update(dests)
	ring := fillRing(1024, s, dests, 6, netip.MustParseAddrPort("192.0.2.1:80"), false)
	nils := 0
	for _, d := range ring {
		if d == nil {
			nils++
		}
	}
	if nils == 0 {
		t.Errorf("a ring of 1024 over two servers with 20 free connections each has no empty slot")
	}
	for _, d := range dests {
		if d.Overloaded() || d.ActiveConns() != 80 {
			t.Errorf("%v after fillRing: overloaded %v, active %d; want false, 80", d, d.Overloaded(), d.ActiveConns())
		}
	}
}
