package sched

import (
	"math/rand/v2"
	"testing"
)

func TestRRSequence(t *testing.T) {
	f := flow("203.0.113.1:1000")
	tests := []struct {
		name    string
		weights []int
		prep    func(ds []*Dest)
		want    string
	}{
		{"plain", []int{1, 1, 1}, nil, "ABCABCA"},
		{"weights ignored", []int{5, 1, 2}, nil, "ABCABCA"},
		{"quiesced skipped", []int{1, 0, 1}, nil, "ACACAC"},
		{"overloaded skipped", []int{1, 1, 1}, func(ds []*Dest) { ds[0].SetThresholds(1, 0); ds[0].ConnOpened(true) }, "BCBCBC"},
		{"single", []int{1}, nil, "AAA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := mkDests(tt.weights...)
			if tt.prep != nil {
				tt.prep(ds)
			}
			s := mustNew(t, "rr", Options{}, ds)
			if got := seq(s, ds, f, len(tt.want)); got != tt.want {
				t.Errorf("sequence = %s, want %s", got, tt.want)
			}
		})
	}
}

// rr continues after the last pick across updates; when the last pick is
// removed it continues from the server before it (ip_vs_rr_del_dest).
func TestRRContinuesAfterUpdate(t *testing.T) {
	f := flow("203.0.113.1:1000")
	ds := mkDests(1, 1, 1, 1) // A B C D
	s := mustNew(t, "rr", Options{}, ds)
	if got := seq(s, ds, f, 2); got != "AB" {
		t.Fatalf("first picks = %s, want AB", got)
	}
	s.Update([]*Dest{ds[0], ds[2], ds[3]}) // B (last pick) removed
	if got := seq(s, ds, f, 4); got != "CDAC" {
		t.Errorf("after removing B = %s, want CDAC", got)
	}
	s.Update(ds) // B back: position stays at C
	if got := seq(s, ds, f, 3); got != "DAB" {
		t.Errorf("after re-adding B = %s, want DAB", got)
	}
}

func TestWRRSequence(t *testing.T) {
	f := flow("203.0.113.1:1000")
	tests := []struct {
		name    string
		weights []int
		want    string
	}{
		// The IPVS interleaving: passes with cw = 4, 3, 2, 1.
		{"4,3,2", []int{4, 3, 2}, "AABABCABC" + "AABABCABC"},
		// gcd 2: mw = 4-(2-1) = 3, passes cw = 3 and 1.
		{"2,4", []int{2, 4}, "BAB" + "BAB"},
		{"equal", []int{2, 2, 2}, "ABCABC"},
		{"with quiescent", []int{3, 0, 1}, "AAAC" + "AAAC"},
		{"1,2,3", []int{1, 2, 3}, "CBCABC" + "CBCABC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := mkDests(tt.weights...)
			s := mustNew(t, "wrr", Options{}, ds)
			if got := seq(s, ds, f, len(tt.want)); got != tt.want {
				t.Errorf("sequence = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestWRROverloadedAndLowered(t *testing.T) {
	f := flow("203.0.113.1:1000")
	ds := mkDests(4, 3, 2)
	s := mustNew(t, "wrr", Options{}, ds)
	ds[0].SetThresholds(1, 0)
	ds[0].ConnOpened(true)
	if got := seq(s, ds, f, 5); got != "BBCBC" {
		t.Errorf("A overloaded: %s, want BBCBC", got)
	}
	// All overloaded: nil, and no endless loop.
	for _, d := range ds {
		d.SetThresholds(1, 0)
		d.ConnOpened(true)
	}
	if got := seq(s, ds, f, 3); got != "---" {
		t.Errorf("all overloaded: %s, want ---", got)
	}
}

func TestRoundRobinDistribution(t *testing.T) {
	weights := []int{5, 3, 2, 7, 1}
	flows := randFlows(rand.New(rand.NewPCG(3, 4)), 100000)
	for _, tt := range []struct {
		name string
		want []float64
	}{
		{"rr", weightShares(1, 1, 1, 1, 1)},
		{"wrr", weightShares(weights...)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ds := mkDests(weights...)
			s := mustNew(t, tt.name, Options{}, ds)
			checkShares(t, shares(s, ds, flows), tt.want, 0.01)
		})
	}
}

func checkShares(t *testing.T, got, want []float64, tol float64) {
	t.Helper()
	for i := range want {
		if d := got[i] - want[i]; d > tol || d < -tol {
			t.Errorf("share of %c = %.4f, want %.4f ± %.2f", 'A'+i, got[i], want[i], tol)
		}
	}
}
