package health

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// fakeCheck is a Checker whose outcome the test switches.
type fakeCheck struct {
	mu      sync.Mutex
	healthy bool
	hang    bool // block until the attempt's deadline
	weight  *int
	calls   []time.Time
	running atomic.Int32
	maxRun  atomic.Int32
}

func (f *fakeCheck) set(healthy bool) { f.mu.Lock(); f.healthy = healthy; f.mu.Unlock() }
func (f *fakeCheck) setHang(h bool)   { f.mu.Lock(); f.hang = h; f.mu.Unlock() }
func (f *fakeCheck) ncalls() int      { f.mu.Lock(); defer f.mu.Unlock(); return len(f.calls) }

func (f *fakeCheck) Check(ctx context.Context) Result {
	n := f.running.Add(1)
	defer f.running.Add(-1)
	for {
		m := f.maxRun.Load()
		if n <= m || f.maxRun.CompareAndSwap(m, n) {
			break
		}
	}
	f.mu.Lock()
	f.calls = append(f.calls, time.Now())
	healthy, hang, w := f.healthy, f.hang, f.weight
	f.mu.Unlock()
	if hang {
		<-ctx.Done()
		return Result{Err: errors.New("read: timeout")}
	}
	if !healthy {
		return Result{Err: errors.New("connect: connection refused")}
	}
	return Result{Msg: "connected", Weight: w}
}

// fakes maps a spec's target port to its fake.
type fakes map[uint16]*fakeCheck

func (fs fakes) newChecker(s Spec) (Checker, error) {
	f, ok := fs[s.Target.Port()]
	if !ok {
		return nil, fmt.Errorf("no fake for port %d", s.Target.Port())
	}
	return f, nil
}

func spec(port uint16, mod func(*Spec)) Spec {
	s := Spec{Kind: TCP, Target: netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), port), Warmup: durp(0)}
	if mod != nil {
		mod(&s)
	}
	return s
}

func newTestSupervisor(fs fakes) *Supervisor {
	return NewSupervisor(SupervisorConfig{NewChecker: fs.newChecker, Rand: func(n int64) int64 { return n / 2 }})
}

// run starts the supervisor in the bubble and returns a stop function
// that cancels it and waits for Run to return.
func run(t *testing.T, sup *Supervisor) (stop func()) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- sup.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func next(t *testing.T, sup *Supervisor) Transition {
	t.Helper()
	tr, ok := <-sup.Transitions()
	if !ok {
		t.Fatal("transitions closed")
	}
	return tr
}

func TestSupervisorDownWithRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		f := &fakeCheck{healthy: true}
		sup := newTestSupervisor(fakes{80: f})
		err := sup.Add(Server{ID: "rs1", Weight: 1, Checks: []Spec{spec(80, func(s *Spec) {
			s.DelayLoop, s.Retry, s.DelayBeforeRetry = 10*time.Second, intp(3), 2*time.Second
		})}})
		if err != nil {
			t.Fatal(err)
		}
		stop := run(t, sup)
		defer stop()
		if tr := next(t, sup); !tr.Up || tr.Reason != "added" {
			t.Fatalf("initial transition %+v", tr)
		}
		// Healthy rounds at 0, 10, 20; fails from 25 s on.
		time.Sleep(25 * time.Second)
		f.set(false)
		tr := next(t, sup)
		// Round at 30 s, retries at 32, 34, 36 → down at 36 s.
		if tr.Up || tr.ID != "rs1" {
			t.Fatalf("got %+v, want rs1 down", tr)
		}
		if got := tr.Time.Sub(t0); got != 36*time.Second {
			t.Errorf("down at %v, want 36s", got)
		}
		want := "TCP_CHECK 192.0.2.1:80: connect: connection refused, 3 of 3 retries"
		if tr.Reason != want {
			t.Errorf("reason %q, want %q", tr.Reason, want)
		}
		// While down no retries: one attempt per delay_loop.
		before := f.ncalls()
		time.Sleep(30*time.Second + time.Millisecond)
		if got := f.ncalls() - before; got != 3 {
			t.Errorf("%d attempts in 30s while down, want 3", got)
		}
		f.set(true)
		tr = next(t, sup)
		if !tr.Up || tr.Time.Sub(t0) != 76*time.Second {
			t.Errorf("got %+v at %v, want up at 76s", tr, tr.Time.Sub(t0))
		}
	})
}

func TestSupervisorAlphaRiseFall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		f := &fakeCheck{healthy: true}
		sup := newTestSupervisor(fakes{80: f})
		_ = sup.Add(Server{ID: "rs", Checks: []Spec{spec(80, func(s *Spec) {
			s.Alpha, s.Rise, s.Fall, s.Retry = true, 2, 3, intp(0)
			s.DelayLoop = 5 * time.Second
		})}})
		stop := run(t, sup)
		defer stop()
		if tr := next(t, sup); tr.Up {
			t.Fatalf("alpha: initial %+v, want down", tr)
		}
		tr := next(t, sup) // successes at 0 and 5 → up at 5 s (rise 2)
		if !tr.Up || tr.Time.Sub(t0) != 5*time.Second {
			t.Fatalf("got %+v at %v, want up at 5s", tr, tr.Time.Sub(t0))
		}
		if !strings.Contains(tr.Reason, "2 successes") {
			t.Errorf("reason %q lacks rise count", tr.Reason)
		}
		time.Sleep(6 * time.Second) // now 11 s
		f.set(false)
		tr = next(t, sup) // failures at 15, 20, 25 → down at 25 s (fall 3)
		if tr.Up || tr.Time.Sub(t0) != 25*time.Second {
			t.Fatalf("got %+v at %v, want down at 25s", tr, tr.Time.Sub(t0))
		}
		if !strings.Contains(tr.Reason, "3 failed rounds") {
			t.Errorf("reason %q lacks fall count", tr.Reason)
		}
	})
}

func TestSupervisorWarmup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		f := &fakeCheck{healthy: true}
		var asked int64
		sup := NewSupervisor(SupervisorConfig{
			NewChecker: fakes{80: f}.newChecker,
			Rand:       func(n int64) int64 { asked = n; return int64(7 * time.Second) },
		})
		_ = sup.Add(Server{ID: "rs", Checks: []Spec{spec(80, func(s *Spec) {
			s.Warmup = nil // default: delay_loop
			s.DelayLoop = 20 * time.Second
		})}})
		stop := run(t, sup)
		defer stop()
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if asked != int64(20*time.Second)+1 {
			t.Errorf("warmup bound %v, want delay_loop 20s", time.Duration(asked))
		}
		f.mu.Lock()
		calls := append([]time.Time(nil), f.calls...)
		f.mu.Unlock()
		if len(calls) != 2 || calls[0].Sub(t0) != 7*time.Second || calls[1].Sub(t0) != 27*time.Second {
			t.Errorf("calls at %v, want 7s and 27s", offsets(t0, calls))
		}
	})
}

func offsets(t0 time.Time, ts []time.Time) []time.Duration {
	out := make([]time.Duration, len(ts))
	for i, x := range ts {
		out[i] = x.Sub(t0)
	}
	return out
}

func TestSupervisorPiranhaTimeoutReentry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		t0 := time.Now()
		f := &fakeCheck{healthy: true}
		sup := newTestSupervisor(fakes{80: f})
		_ = sup.Add(Server{ID: "rs", Checks: []Spec{spec(80, func(s *Spec) {
			s.Kind = SendExpect
			s.SendExpect = &SendExpectSpec{}
			s.Retry = intp(0)
			s.DelayLoop = 2 * time.Second
			s.ServiceTimeout = 6 * time.Second
			s.Reentry = 15 * time.Second
		})}})
		stop := run(t, sup)
		defer stop()
		next(t, sup)
		time.Sleep(9 * time.Second) // rounds at 0,2,4,6,8
		f.set(false)                // fails from round 10
		tr := next(t, sup)          // failing since 10 s → down at 16 s
		if tr.Up || tr.Time.Sub(t0) != 16*time.Second {
			t.Fatalf("got %+v at %v, want down at 16s", tr, tr.Time.Sub(t0))
		}
		if !strings.Contains(tr.Reason, "failing for 6s") {
			t.Errorf("reason %q", tr.Reason)
		}
		time.Sleep(3 * time.Second) // 19 s
		f.set(true)                 // healthy from round 20
		// a flap at 26 s restarts the re-entry clock
		time.Sleep(6 * time.Second) // 25 s
		f.set(false)
		time.Sleep(2 * time.Second) // 27 s (round 26 failed)
		f.set(true)                 // healthy from 28 s → up at 28+15 = 43 s
		tr = next(t, sup)
		if !tr.Up || tr.Time.Sub(t0) != 44*time.Second && tr.Time.Sub(t0) != 43*time.Second {
			t.Fatalf("got %+v at %v, want up at 44s", tr, tr.Time.Sub(t0))
		}
		// rounds run at even seconds: 28 + 15 = 43 → first round at or after is 44.
		if tr.Time.Sub(t0) != 44*time.Second {
			t.Errorf("up at %v, want 44s", tr.Time.Sub(t0))
		}
	})
}

func TestSupervisorAllChecksMustBeUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := &fakeCheck{healthy: true}, &fakeCheck{healthy: true}
		sup := newTestSupervisor(fakes{80: a, 81: b})
		mod := func(s *Spec) { s.Retry, s.DelayLoop = intp(0), time.Second }
		_ = sup.Add(Server{ID: "rs", Checks: []Spec{spec(80, mod), spec(81, mod)}})
		stop := run(t, sup)
		defer stop()
		next(t, sup)
		b.set(false)
		tr := next(t, sup)
		if tr.Up || !strings.HasPrefix(tr.Reason, "TCP_CHECK 192.0.2.1:81:") {
			t.Fatalf("got %+v, want down by the :81 check", tr)
		}
		a.set(false)
		time.Sleep(3 * time.Second)
		b.set(true)
		time.Sleep(3 * time.Second)
		select {
		case tr := <-sup.Transitions():
			t.Fatalf("server came up with one check down: %+v", tr)
		default:
		}
		a.set(true)
		if tr := next(t, sup); !tr.Up || !strings.HasPrefix(tr.Reason, "TCP_CHECK 192.0.2.1:80:") {
			t.Fatalf("got %+v, want up with the reason of the :80 check that came up last", tr)
		}
	})
}

func TestSupervisorDynamicWeight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeCheck{healthy: true, weight: intp(10)}
		sup := newTestSupervisor(fakes{80: f})
		_ = sup.Add(Server{ID: "rs", Weight: 3, Checks: []Spec{spec(80, func(s *Spec) {
			s.Kind = Misc
			s.Misc = &MiscSpec{Path: "/bin/true", Dynamic: true}
			s.DelayLoop = time.Second
		})}})
		stop := run(t, sup)
		defer stop()
		next(t, sup)
		tr := next(t, sup)
		if !tr.Up || tr.Weight == nil || *tr.Weight != 10 {
			t.Fatalf("got %+v, want weight 10", tr)
		}
		f.mu.Lock()
		f.weight = intp(20)
		f.mu.Unlock()
		tr = next(t, sup)
		if tr.Weight == nil || *tr.Weight != 20 || tr.Reason != "weight changed to 20" {
			t.Fatalf("got %+v, want weight 20", tr)
		}
		// exit 0 (no weight): unchanged
		f.mu.Lock()
		f.weight = nil
		f.mu.Unlock()
		time.Sleep(5 * time.Second)
		select {
		case tr := <-sup.Transitions():
			t.Fatalf("exit 0 changed the weight: %+v", tr)
		default:
		}
		// failure drops the dynamic weight; recovery without a weight
		// reports the configured one.
		f.set(false)
		tr = next(t, sup)
		if tr.Up || tr.Weight != nil {
			t.Fatalf("got %+v, want down without dynamic weight", tr)
		}
		f.set(true)
		if tr = next(t, sup); !tr.Up || tr.Weight != nil {
			t.Fatalf("got %+v, want up with configured weight", tr)
		}
	})
}

func TestSupervisorUpdateKeepsState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b, c := &fakeCheck{healthy: false}, &fakeCheck{healthy: true}, &fakeCheck{healthy: true}
		sup := newTestSupervisor(fakes{80: a, 81: b, 82: c})
		mod := func(s *Spec) { s.Retry, s.DelayLoop = intp(0), 10*time.Second }
		_ = sup.Update([]Server{
			{ID: "a", Checks: []Spec{spec(80, mod)}},
			{ID: "b", Checks: []Spec{spec(81, mod)}},
		})
		stop := run(t, sup)
		defer stop()
		got := map[string]bool{}
		for range 3 { // two initial ups, then a down
			tr := next(t, sup)
			got[tr.ID] = tr.Up
		}
		if got["a"] || !got["b"] {
			t.Fatalf("states %v, want a down, b up", got)
		}
		time.Sleep(15 * time.Second)
		// Reload: a unchanged (stays down, no transition, same schedule),
		// b removed, c added.
		callsA := a.ncalls()
		if err := sup.Update([]Server{
			{ID: "a", Checks: []Spec{spec(80, mod)}},
			{ID: "c", Checks: []Spec{spec(82, mod)}},
		}); err != nil {
			t.Fatal(err)
		}
		if tr := next(t, sup); tr.ID != "c" || !tr.Up {
			t.Fatalf("got %+v, want c added up", tr)
		}
		callsB := b.ncalls()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if a.ncalls() != callsA+1 {
			t.Errorf("a: %d calls after reload, want 1 (kept its schedule)", a.ncalls()-callsA)
		}
		if b.ncalls() != callsB {
			t.Errorf("b still checked after removal")
		}
		select {
		case tr := <-sup.Transitions():
			t.Errorf("unexpected transition %+v", tr)
		default:
		}
		st := sup.Status()
		if len(st) != 2 || st[0].ID != "a" || st[0].Up || st[1].ID != "c" {
			t.Errorf("status %+v", st)
		}
		// Changing a's check restarts it fresh (up unless alpha).
		_ = sup.Update([]Server{
			{ID: "a", Checks: []Spec{spec(80, func(s *Spec) { mod(s); s.ConnectTimeout = time.Second })}},
			{ID: "c", Checks: []Spec{spec(82, mod)}},
		})
		if tr := next(t, sup); tr.ID != "a" || !tr.Up || tr.Reason != "configuration changed" {
			t.Fatalf("got %+v, want a up after its check changed", tr)
		}
	})
}

func TestSupervisorHangingCheckDelaysNoOther(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hang, fast := &fakeCheck{hang: true}, &fakeCheck{healthy: true}
		sup := newTestSupervisor(fakes{80: hang, 81: fast})
		_ = sup.Update([]Server{
			{ID: "hang", Checks: []Spec{spec(80, func(s *Spec) { s.DelayLoop, s.ConnectTimeout = 5*time.Second, 30*time.Second })}},
			{ID: "fast", Checks: []Spec{spec(81, func(s *Spec) { s.DelayLoop = time.Second })}},
		})
		stop := run(t, sup)
		defer stop()
		time.Sleep(10*time.Second + time.Millisecond)
		if n := fast.ncalls(); n != 11 {
			t.Errorf("fast check ran %d times in 10s beside a hanging one, want 11", n)
		}
	})
}

func TestSupervisorMaxInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeCheck{hang: true}
		sup := NewSupervisor(SupervisorConfig{MaxInFlight: 3, NewChecker: func(Spec) (Checker, error) { return f, nil }})
		var servers []Server
		for i := range 20 {
			servers = append(servers, Server{ID: fmt.Sprint(i), Checks: []Spec{spec(uint16(1000+i), func(s *Spec) { s.ConnectTimeout = time.Second })}})
		}
		_ = sup.Update(servers)
		stop := run(t, sup)
		defer stop()
		time.Sleep(5 * time.Second)
		if m := f.maxRun.Load(); m != 3 {
			t.Errorf("max concurrent attempts %d, want 3", m)
		}
		if f.ncalls() < 12 {
			t.Errorf("only %d attempts in 5s with 3 slots of 1s", f.ncalls())
		}
	})
}

func TestSupervisorRunStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeCheck{hang: true}
		sup := newTestSupervisor(fakes{80: f})
		_ = sup.Add(Server{ID: "rs", Checks: []Spec{spec(80, nil)}})
		stop := run(t, sup)
		time.Sleep(time.Second)
		stop()
		for range sup.Transitions() { // closed once Run returned
		}
		if err := sup.Add(Server{ID: "x"}); !errors.Is(err, ErrStopped) {
			t.Errorf("Add after Run: %v, want ErrStopped", err)
		}
	})
}

// TestSupervisorLogAllFailures: with log_all_failures every failed
// attempt reaches OnFailure, retries included and while the state does
// not change; without it (and without the global setting) none does.
func TestSupervisorLogAllFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, g := &fakeCheck{healthy: true}, &fakeCheck{healthy: true}
		var mu sync.Mutex
		var got []string
		sup := NewSupervisor(SupervisorConfig{NewChecker: fakes{80: f, 81: g}.newChecker, Rand: func(n int64) int64 { return n / 2 },
			OnFailure: func(id, label string, err error, attempt, attempts int) {
				mu.Lock()
				got = append(got, fmt.Sprintf("%s %s %d/%d: %v", id, label, attempt, attempts, err))
				mu.Unlock()
			}})
		timing := func(s *Spec) { s.DelayLoop, s.Retry, s.DelayBeforeRetry = 10*time.Second, intp(2), time.Second }
		if err := sup.Add(Server{ID: "rs1", Weight: 1, Checks: []Spec{spec(80, func(s *Spec) { timing(s); s.LogAllFailures = true })}}); err != nil {
			t.Fatal(err)
		}
		if err := sup.Add(Server{ID: "rs2", Weight: 1, Checks: []Spec{spec(81, timing)}}); err != nil {
			t.Fatal(err)
		}
		stop := run(t, sup)
		defer stop()
		next(t, sup)
		next(t, sup)
		time.Sleep(5 * time.Second)
		f.set(false)
		g.set(false)
		// rs1's round at 10 s fails three times (down at 12 s); the next
		// round, at 22 s, once
		time.Sleep(18 * time.Second)
		mu.Lock()
		defer mu.Unlock()
		want := []string{
			"rs1 TCP_CHECK 192.0.2.1:80 1/3: connect: connection refused",
			"rs1 TCP_CHECK 192.0.2.1:80 2/3: connect: connection refused",
			"rs1 TCP_CHECK 192.0.2.1:80 3/3: connect: connection refused",
			"rs1 TCP_CHECK 192.0.2.1:80 1/1: connect: connection refused",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("failures heard:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		// log_all_failures turned off by a reload: the check goes on
		// (down, no new transition), and is not heard any more
		got = nil
		mu.Unlock()
		for range 2 {
			if tr := next(t, sup); tr.Up {
				t.Fatalf("transition %+v, want down", tr)
			}
		}
		if err := sup.Update([]Server{{ID: "rs1", Weight: 1, Checks: []Spec{spec(80, timing)}}, {ID: "rs2", Weight: 1, Checks: []Spec{spec(81, timing)}}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Second)
		mu.Lock()
		if len(got) != 0 {
			t.Errorf("heard after log_all_failures went: %v", got)
		}
		select {
		case tr := <-sup.Transitions():
			t.Errorf("transition after a change of log_all_failures alone: %+v", tr)
		default:
		}
	})
}
