package sched

import "testing"

// load is a crafted state of one server: weight, active, inactive.
type load struct{ w, act, inact int }

func mkLoaded(ls ...load) []*Dest {
	ws := make([]int, len(ls))
	for i, l := range ls {
		ws[i] = l.w
	}
	ds := mkDests(ws...)
	for i, l := range ls {
		open(ds[i], l.act, true)
		open(ds[i], l.inact, false)
	}
	return ds
}

func TestLeastConnectionFamily(t *testing.T) {
	f := flow("203.0.113.1:1000")
	tests := []struct {
		name  string
		sched string
		ls    []load
		want  string
	}{
		// lc: overhead = active*256 + inactive, weight only gates.
		{"lc inactive cheap", "lc", []load{{1, 1, 0}, {1, 0, 200}, {1, 1, 1}}, "B"}, // 256, 200, 257
		{"lc active dominates", "lc", []load{{1, 0, 300}, {1, 1, 0}}, "B"},          // 300 vs 256
		{"lc tie first", "lc", []load{{1, 0, 5}, {9, 0, 5}}, "A"},                   // weight ignored
		{"lc skips quiescent", "lc", []load{{0, 0, 0}, {1, 3, 0}}, "B"},
		// wlc: overhead / weight.
		{"wlc weight counts", "wlc", []load{{1, 1, 0}, {3, 2, 0}}, "B"}, // 256/1 vs 512/3
		{"wlc tie first", "wlc", []load{{2, 1, 0}, {4, 2, 0}}, "A"},     // 128 = 128
		{"wlc inactive", "wlc", []load{{1, 0, 10}, {1, 0, 9}, {1, 0, 11}}, "B"},
		{"wlc quiescent idle", "wlc", []load{{0, 0, 0}, {5, 10, 0}}, "B"},
		{"wlc all idle", "wlc", []load{{1, 0, 0}, {100, 0, 0}}, "A"},
		// sed: (active+1) / weight, inactive ignored.
		{"sed prefers heavy weight", "sed", []load{{1, 0, 0}, {3, 1, 0}}, "B"}, // 1/1 vs 2/3
		{"sed ignores inactive", "sed", []load{{1, 0, 1000}, {1, 1, 0}}, "A"},  // 1 vs 2
		{"sed all idle by weight", "sed", []load{{1, 0, 0}, {2, 0, 0}}, "B"},   // 1 vs 1/2
		// nq: an idle server first, else sed.
		{"nq idle wins", "nq", []load{{1, 0, 0}, {3, 1, 0}}, "A"},
		{"nq first idle", "nq", []load{{1, 2, 0}, {1, 0, 5}, {9, 0, 0}}, "B"},
		{"nq no idle is sed", "nq", []load{{1, 1, 0}, {3, 2, 0}}, "B"}, // 2/1 vs 3/3
		{"nq idle quiescent skipped", "nq", []load{{0, 0, 0}, {1, 4, 0}}, "B"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := mkLoaded(tt.ls...)
			s := mustNew(t, tt.sched, Options{}, ds)
			if got := label(ds, s.Pick(f)); got != tt.want {
				t.Errorf("Pick = %s, want %s", got, tt.want)
			}
		})
	}
}

// wlc spreads new connections in proportion to weight as they accumulate.
func TestWLCConvergesToWeights(t *testing.T) {
	ds := mkDests(1, 2, 5)
	s := mustNew(t, "wlc", Options{}, ds)
	f := flow("203.0.113.1:1000")
	for range 800 {
		s.Pick(f).ConnOpened(true)
	}
	got := []int64{ds[0].ActiveConns(), ds[1].ActiveConns(), ds[2].ActiveConns()}
	want := []int64{100, 200, 500}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("active = %v, want %v", got, want)
		}
	}
}

func TestFailoverAndOverflow(t *testing.T) {
	f := flow("203.0.113.1:1000")
	tests := []struct {
		name  string
		sched string
		ls    []load
		prep  func(ds []*Dest)
		want  string
	}{
		{"fo highest", "fo", []load{{1, 0, 0}, {5, 0, 0}, {3, 0, 0}}, nil, "B"},
		{"fo first of equal", "fo", []load{{5, 0, 0}, {5, 0, 0}}, nil, "A"},
		{"fo ignores load", "fo", []load{{2, 999, 0}, {1, 0, 0}}, nil, "A"},
		{"fo overloaded fails over", "fo", []load{{1, 0, 0}, {5, 0, 0}, {3, 0, 0}},
			func(ds []*Dest) { ds[1].SetThresholds(1, 0); ds[1].ConnOpened(true) }, "C"},
		{"fo quiesced fails over", "fo", []load{{1, 0, 0}, {5, 0, 0}, {3, 0, 0}},
			func(ds []*Dest) { ds[1].SetWeight(0); ds[2].SetWeight(0) }, "A"},
		{"ovf highest under weight", "ovf", []load{{2, 0, 0}, {3, 3, 0}}, nil, "B"}, // 3 active <= 3
		{"ovf overflows", "ovf", []load{{2, 0, 0}, {3, 4, 0}}, nil, "A"},
		{"ovf all over", "ovf", []load{{2, 3, 0}, {3, 4, 0}}, nil, "-"},
		{"ovf inactive ignored", "ovf", []load{{2, 0, 0}, {3, 0, 500}}, nil, "B"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := mkLoaded(tt.ls...)
			if tt.prep != nil {
				tt.prep(ds)
			}
			s := mustNew(t, tt.sched, Options{}, ds)
			if got := label(ds, s.Pick(f)); got != tt.want {
				t.Errorf("Pick = %s, want %s", got, tt.want)
			}
		})
	}
}

// ovf fills servers one after another in weight order.
func TestOVFSequence(t *testing.T) {
	ds := mkDests(1, 3, 2) // B first (3), then C (2), then A (1)
	s := mustNew(t, "ovf", Options{}, ds)
	f := flow("203.0.113.1:1000")
	got := ""
	for range 10 {
		d := s.Pick(f)
		got += label(ds, d)
		if d != nil {
			d.ConnOpened(true)
		}
	}
	// B takes 4 (0..3 active <= 3), C 3, A 2, then none.
	if want := "BBBBCCCAA-"; got != want {
		t.Errorf("sequence = %s, want %s", got, want)
	}
}
