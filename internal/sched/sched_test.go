package sched

import (
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var allNames = []string{"dh", "fo", "lblc", "lblcr", "lc", "mh", "nq", "ovf", "rr", "sed", "sh", "twos", "wlc", "wrr"}

func TestNames(t *testing.T) {
	if diff := cmp.Diff(allNames, Names()); diff != "" {
		t.Errorf("Names() (-want +got):\n%s", diff)
	}
	for _, n := range allNames {
		s, err := New(strings.ToUpper(n), Options{})
		if err != nil {
			t.Fatalf("New(%q): %v", n, err)
		}
		if s.Name() != n {
			t.Errorf("New(%q).Name() = %q", n, s.Name())
		}
		if !Known(n) {
			t.Errorf("Known(%q) = false", n)
		}
	}
	if Known("nope") {
		t.Error(`Known("nope") = true`)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name  string
		sched string
		opts  Options
		want  string
	}{
		{"unknown", "nope", Options{}, "unknown scheduler"},
		{"mh not prime", "mh", Options{TableSize: 65536}, "not prime"},
		{"mh too small", "mh", Options{TableSize: 1}, "out of range"},
		{"sh bits", "sh", Options{HashBits: 21}, "out of range"},
		{"dh bits", "dh", Options{HashBits: -1}, "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.sched, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New(%q, %+v) error = %v, want %q", tt.sched, tt.opts, err, tt.want)
			}
		})
	}
}

func TestThresholds(t *testing.T) {
	type step struct {
		open, close int // connections opened then closed (inactive)
		want        bool
	}
	tests := []struct {
		name         string
		upper, lower uint32
		steps        []step
	}{
		{"upper only resumes below 3/4", 10, 0, []step{
			{open: 9, want: false},
			{open: 1, want: true},   // 10 >= 10
			{close: 2, want: true},  // 8: 32 >= 30
			{close: 1, want: false}, // 7: 28 < 30
			{open: 2, want: false},  // 9
			{open: 1, want: true},
		}},
		{"upper 4 needs 2", 4, 0, []step{
			{open: 4, want: true},
			{close: 1, want: true},  // 3: 12 >= 12
			{close: 1, want: false}, // 2: 8 < 12
		}},
		{"with lower", 10, 5, []step{
			{open: 10, want: true},
			{close: 5, want: true},  // 5 is not below 5
			{close: 1, want: false}, // 4
		}},
		{"no threshold", 0, 0, []step{{open: 1000, want: false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mkDests(1)[0]
			d.SetThresholds(tt.upper, tt.lower)
			for i, st := range tt.steps {
				open(d, st.open, false)
				for range st.close {
					d.ConnClosed(false)
				}
				if got := d.Overloaded(); got != st.want {
					t.Fatalf("step %d (total %d): Overloaded() = %v, want %v", i, d.InactiveConns(), got, st.want)
				}
				if d.Available() == st.want {
					t.Fatalf("step %d: Available() = %v with overloaded %v", i, d.Available(), st.want)
				}
			}
		})
	}
}

func TestThresholdRaiseClears(t *testing.T) {
	d := mkDests(1)[0]
	d.SetThresholds(4, 0)
	open(d, 4, true)
	if !d.Overloaded() {
		t.Fatal("not overloaded at the upper threshold")
	}
	d.SetThresholds(8, 0)
	if d.Overloaded() {
		t.Error("raising the upper threshold kept the overload flag")
	}
	d.SetThresholds(2, 0)
	if !d.Overloaded() {
		t.Error("lowering the upper threshold below the load did not overload")
	}
	d.SetThresholds(0, 0)
	if d.Overloaded() {
		t.Error("removing the threshold kept the overload flag")
	}
}

func TestConnCounters(t *testing.T) {
	d := mkDests(1)[0]
	d.ConnOpened(false)             // SYN_RECV
	d.ConnStateChanged(false, true) // ESTABLISHED
	d.ConnOpened(true)
	d.ConnStateChanged(true, false) // FIN_WAIT
	d.ConnStateChanged(true, true)  // no-op
	got := [3]int64{d.ActiveConns(), d.InactiveConns(), d.Overhead()}
	if want := [3]int64{1, 1, 257}; got != want {
		t.Errorf("active, inactive, overhead = %v, want %v", got, want)
	}
	d.ResetConns()
	if d.ActiveConns() != 0 || d.InactiveConns() != 0 {
		t.Errorf("after ResetConns: %d active %d inactive", d.ActiveConns(), d.InactiveConns())
	}
}

// Every scheduler: a quiescent (weight 0) or overloaded server never gets a
// new connection, and with no available server Pick returns nil.
func TestUnavailableNeverPicked(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	flows := randFlows(r, 2000)
	for _, name := range allNames {
		t.Run(name, func(t *testing.T) {
			ds := mkDests(3, 2, 0, 4, 1)
			ds[4].SetWeight(0)        // quiesced after having weight (mh keeps its slots)
			ds[3].SetThresholds(1, 0) // overloaded
			ds[3].ConnOpened(false)
			s := mustNew(t, name, Options{Flags: Flags{Fallback: true}}, ds)
			got := 0
			for _, f := range flows {
				d := s.Pick(f)
				if d == ds[2] || d == ds[3] || d == ds[4] {
					t.Fatalf("Pick(%v) = %s, an unavailable server", f, label(ds, d))
				}
				if d != nil {
					got++
				}
			}
			if got == 0 {
				t.Fatal("no pick returned a server")
			}
			for _, d := range ds {
				d.SetWeight(0)
			}
			s.Update(ds)
			for _, f := range flows[:100] {
				if d := s.Pick(f); d != nil {
					t.Fatalf("all quiesced: Pick = %s, want nil", label(ds, d))
				}
			}
			s.Update(nil)
			if d := s.Pick(flows[0]); d != nil {
				t.Fatalf("no servers: Pick = %v, want nil", d)
			}
		})
	}
}

// Every scheduler is safe for concurrent Pick, Update and connection
// hooks; run with -race.
func TestConcurrent(t *testing.T) {
	for _, name := range allNames {
		t.Run(name, func(t *testing.T) {
			ds := mkDests(1, 2, 3, 4)
			s := mustNew(t, name, Options{TableSize: 251}, ds)
			var wg sync.WaitGroup
			for g := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := rand.New(rand.NewPCG(uint64(g), 7))
					for _, f := range randFlows(r, 300) {
						if d := s.Pick(f); d != nil {
							d.ConnOpened(true)
							d.ConnClosed(true)
						}
					}
				}()
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 20 {
					ds[i%4].SetWeight(i % 3)
					s.Update(ds[:2+i%3])
				}
			}()
			wg.Wait()
		})
	}
}

// After ResetConns (quiesce_server) the closes of connections opened
// before it must not drive the counters negative.
func TestResetConnsThenClose(t *testing.T) {
	d := mkDests(1)[0]
	open(d, 3, true)
	open(d, 2, false)
	d.ResetConns()
	d.ConnOpened(true) // a new one after re-entry
	for range 3 {
		d.ConnClosed(true)
	}
	d.ConnStateChanged(false, true) // an old one moving: stays uncounted
	d.ConnClosed(false)
	d.ConnClosed(false)
	if d.ActiveConns() != 0 || d.InactiveConns() != 0 || d.Overhead() != 0 {
		t.Errorf("active %d inactive %d, want 0 0", d.ActiveConns(), d.InactiveConns())
	}
}

// TestSetConnsEvaluatesOnce: counts set from a table walk judge the
// threshold on the new total only. Stepping there one connection at a
// time (active first, then inactive) would pass through totals the
// server never had.
func TestSetConnsEvaluatesOnce(t *testing.T) {
	d := mkDests(1)[0]
	d.SetThresholds(100, 0)
	d.SetConns(30, 60)
	d.SetConns(45, 50) // 95: under 100 all along
	if d.Overloaded() {
		t.Error("30/60 -> 45/50 overloaded a server that never reached the threshold")
	}
	d.SetConns(70, 30) // 100
	if !d.Overloaded() {
		t.Fatal("not overloaded at the threshold")
	}
	d.SetConns(20, 70) // 90: not below 3/4 of 100
	if !d.Overloaded() {
		t.Error("70/30 -> 20/70 cleared the overload above 3/4 of the threshold")
	}
	d.SetConns(20, 54) // 74
	if d.Overloaded() {
		t.Error("still overloaded below 3/4 of the threshold")
	}
	d.SetConns(-1, 3)
	if d.ActiveConns() != 0 || d.InactiveConns() != 3 {
		t.Errorf("SetConns(-1, 3) gave %d/%d, want 0/3", d.ActiveConns(), d.InactiveConns())
	}
}
