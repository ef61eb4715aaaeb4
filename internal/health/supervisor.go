package health

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Server is one real server as the supervisor sees it: an identifier
// chosen by the caller, the configured weight (the base dynamic checkers
// adjust), and its checks. The server is up only when every check is up
// (keepalived semantics); a server without checks is always up.
type Server struct {
	ID     string
	Weight int
	Checks []Spec
}

// Transition is a change of a server's state or dynamic weight.
type Transition struct {
	ID string
	Up bool
	// Weight is the effective weight when a dynamic checker (misc_dynamic,
	// FILE_CHECK dynamic) contributes, nil when the configured weight
	// applies.
	Weight *int
	// Reason says why, e.g. "TCP_CHECK 10.0.0.1:80: connect: connection
	// refused, 3 of 3 retries".
	Reason string
	Time   time.Time
}

// SupervisorConfig configures a Supervisor. The zero value is usable.
type SupervisorConfig struct {
	// MaxInFlight bounds concurrently running check attempts (default
	// 1024). A check waiting for a slot does not delay any other.
	MaxInFlight int
	// NewChecker builds checkers (default New with Options). Tests inject
	// fakes here.
	NewChecker func(Spec) (Checker, error)
	// Options are passed to New when NewChecker is nil.
	Options Options
	// Rand returns a uniform value in [0, n) for warmup (default
	// math/rand/v2).
	Rand func(n int64) int64
	// Buffer is the capacity of the Transitions channel (default 256).
	Buffer int
	// LogAllFailures gives every check's failed attempts to OnFailure,
	// as each Spec.LogAllFailures does its own (keepalived's
	// checker_log_all_failures and log_all_failures).
	LogAllFailures bool
	// OnFailure hears failed attempts (label: the check, as in
	// Transition.Reason; attempt of attempts in this round).
	OnFailure func(id, label string, err error, attempt, attempts int)
}

// Supervisor runs health checks and emits transitions. Servers are added,
// changed and removed with Update at any time, before or during Run.
type Supervisor struct {
	cfg SupervisorConfig
	sem chan struct{} // bounds attempts in flight
	out chan Transition

	mu      sync.Mutex
	servers map[string]*serverState
	queue   []Transition
	wake    chan struct{}
	runCtx  context.Context // set while Run runs
	done    bool
	wg      sync.WaitGroup
}

type serverState struct {
	id     string
	weight int
	checks []*checkState
	// last emitted state
	up        bool
	effWeight *int
}

type checkState struct {
	spec    Spec
	label   string
	checker Checker
	cancel  context.CancelFunc
	// logAll is the spec's LogAllFailures, which a reload may change
	// without restarting the check; lastFail the error last given to
	// OnFailure (polled kinds: only changes are)
	logAll   atomic.Bool
	lastFail string

	up           bool
	okRun        int
	failRun      int
	healthySince time.Time
	failingSince time.Time
	weight       *int // last dynamic contribution (delta to base)
	last         Result
	lastTime     time.Time
	reason       string
}

// NewSupervisor returns a Supervisor; call Run to start checking.
func NewSupervisor(cfg SupervisorConfig) *Supervisor {
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 1024
	}
	if cfg.NewChecker == nil {
		opts := cfg.Options
		cfg.NewChecker = func(s Spec) (Checker, error) { return New(s, opts) }
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Int64N
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = 256
	}
	return &Supervisor{
		cfg:     cfg,
		sem:     make(chan struct{}, cfg.MaxInFlight),
		out:     make(chan Transition, cfg.Buffer),
		servers: make(map[string]*serverState),
		wake:    make(chan struct{}, 1),
	}
}

// Transitions delivers transitions in order. It is closed when Run
// returns. A server's first transition, sent when it is added, gives its
// initial state (up, or down when a check has alpha).
func (s *Supervisor) Transitions() <-chan Transition { return s.out }

// ErrStopped is returned by Update after Run has returned.
var ErrStopped = errors.New("health supervisor stopped")

// Update makes the set of servers equal to servers. Checks whose Spec is
// unchanged keep running with their state; changed or new checks start
// afresh; checks and servers no longer listed stop. A server with an
// invalid check is rejected (its previous version, if any, keeps
// running) and reported in the joined error.
func (s *Supervisor) Update(servers []Server) error {
	var errs []error
	want := make(map[string]Server, len(servers))
	for _, srv := range servers {
		if _, dup := want[srv.ID]; dup {
			errs = append(errs, fmt.Errorf("server %q listed twice", srv.ID))
			continue
		}
		want[srv.ID] = srv
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return ErrStopped
	}
	for id, st := range s.servers {
		if _, ok := want[id]; !ok {
			s.removeLocked(st)
		}
	}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if err := s.setLocked(want[id]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Add adds or replaces one server.
func (s *Supervisor) Add(srv Server) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return ErrStopped
	}
	return s.setLocked(srv)
}

// Remove stops the checks of a server and forgets it.
func (s *Supervisor) Remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.servers[id]; ok {
		s.removeLocked(st)
	}
}

func (s *Supervisor) removeLocked(st *serverState) {
	for _, c := range st.checks {
		if c.cancel != nil {
			c.cancel()
		}
	}
	delete(s.servers, st.id)
}

func (s *Supervisor) setLocked(srv Server) error {
	specs := make([]Spec, len(srv.Checks))
	for i, sp := range srv.Checks {
		sp = sp.Defaults()
		if err := sp.Validate(); err != nil {
			return fmt.Errorf("server %q check %d: %w", srv.ID, i, err)
		}
		specs[i] = sp
	}
	old := s.servers[srv.ID]
	var oldChecks []*checkState
	if old != nil {
		oldChecks = old.checks
	}
	used := make([]bool, len(oldChecks))
	next := make([]*checkState, len(specs))
	var fresh []*checkState
	for i, sp := range specs {
		for j, oc := range oldChecks {
			if !used[j] && sameCheck(oc.spec, sp) {
				// (log_all_failures may change: the check goes on)
				oc.logAll.Store(sp.LogAllFailures)
				used[j], next[i] = true, oc
				break
			}
		}
		if next[i] != nil {
			continue
		}
		ch, err := s.cfg.NewChecker(sp)
		if err != nil {
			return fmt.Errorf("server %q check %d: %w", srv.ID, i, err)
		}
		cs := &checkState{spec: sp, label: checkLabel(sp), checker: ch, up: !sp.Alpha}
		cs.logAll.Store(sp.LogAllFailures)
		if sp.Alpha {
			cs.reason = cs.label + ": alpha, waiting for first success"
		}
		next[i] = cs
		fresh = append(fresh, cs)
	}
	for j, oc := range oldChecks {
		if !used[j] && oc.cancel != nil {
			oc.cancel()
		}
	}
	st := old
	if st == nil {
		st = &serverState{id: srv.ID}
		s.servers[srv.ID] = st
	}
	st.weight, st.checks = srv.Weight, next
	for _, cs := range fresh {
		s.startLocked(st, cs)
	}
	up, w, reason := st.aggregate()
	if old == nil {
		if reason == "" {
			reason = "added"
		}
		st.up, st.effWeight = up, w
		s.emitLocked(Transition{ID: st.id, Up: up, Weight: w, Reason: reason, Time: time.Now()})
		return nil
	}
	s.maybeEmitLocked(st, nil, "configuration changed")
	return nil
}

func checkLabel(sp Spec) string {
	switch sp.Kind {
	case File:
		return string(sp.Kind) + " " + sp.File.Path
	case Misc:
		return string(sp.Kind) + " " + sp.Misc.Path
	case Ping:
		return string(sp.Kind) + " " + sp.Addr().String()
	}
	return string(sp.Kind) + " " + sp.ConnectAddr().String()
}

// startLocked starts the goroutine of a check if Run is running.
func (s *Supervisor) startLocked(st *serverState, cs *checkState) {
	if s.runCtx == nil {
		return
	}
	ctx, cancel := context.WithCancel(s.runCtx)
	cs.cancel = cancel
	s.wg.Go(func() { s.loop(ctx, st.id, cs) })
}

// Run starts all checks and delivers transitions until ctx is done, then
// stops every check and returns after all goroutines have exited.
func (s *Supervisor) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.runCtx != nil || s.done {
		s.mu.Unlock()
		return errors.New("health supervisor: Run called twice")
	}
	s.runCtx = ctx
	for _, st := range s.servers {
		for _, cs := range st.checks {
			s.startLocked(st, cs)
		}
	}
	s.mu.Unlock()

	s.dispatch(ctx)

	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
	s.wg.Wait()
	close(s.out)
	return nil
}

// dispatch moves queued transitions to the channel until ctx is done.
func (s *Supervisor) dispatch(ctx context.Context) {
	for {
		s.mu.Lock()
		q := s.queue
		s.queue = nil
		s.mu.Unlock()
		for _, t := range q {
			select {
			case s.out <- t:
			case <-ctx.Done():
				return
			}
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return
		}
	}
}

func (s *Supervisor) emitLocked(t Transition) {
	s.queue = append(s.queue, t)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// sleep waits d or until ctx is done.
func (s *Supervisor) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// loop is the life of one check: warmup, then one round per delay_loop.
func (s *Supervisor) loop(ctx context.Context, id string, cs *checkState) {
	sp := cs.spec
	if w := *sp.Warmup; w > 0 {
		if !s.sleep(ctx, time.Duration(s.cfg.Rand(int64(w)+1))) {
			return
		}
	}
	for {
		s.mu.Lock()
		up := cs.up
		s.mu.Unlock()
		started := time.Now()
		r, retries := s.round(ctx, id, cs, up)
		if ctx.Err() != nil {
			return
		}
		s.record(id, cs, r, retries, started)
		if !s.sleep(ctx, sp.DelayLoop) {
			return
		}
	}
}

// round makes one attempt, plus up to Retry more (delay_before_retry
// apart) while the check is up. It returns the last result and the
// number of retries made.
func (s *Supervisor) round(ctx context.Context, id string, cs *checkState, up bool) (Result, int) {
	attempts := 1
	if up {
		attempts += *cs.spec.Retry
	}
	var r Result
	for i := range attempts {
		if i > 0 && !s.sleep(ctx, cs.spec.DelayBeforeRetry) {
			return r, i - 1
		}
		r = s.attempt(ctx, cs)
		if r.OK() {
			cs.lastFail = ""
		}
		if r.OK() || ctx.Err() != nil {
			return r, i
		}
		if s.cfg.OnFailure != nil && (cs.logAll.Load() || s.cfg.LogAllFailures) {
			// BFD_CHECK (every 100 ms) and FILE_CHECK (every second)
			// poll a state: their failures are given when they change
			msg := fmt.Sprint(r.Err)
			if polled := cs.spec.Kind == BFD || cs.spec.Kind == File; !polled || msg != cs.lastFail {
				s.cfg.OnFailure(id, cs.label, r.Err, i+1, attempts)
			}
			cs.lastFail = msg
		}
	}
	return r, attempts - 1
}

func (s *Supervisor) attempt(ctx context.Context, cs *checkState) Result {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return Result{Err: ctx.Err()}
	}
	defer func() { <-s.sem }()
	actx, cancel := context.WithTimeout(ctx, cs.spec.AttemptTimeout())
	defer cancel()
	return cs.checker.Check(actx)
}

// record applies a round's result to the check and its server.
func (s *Supervisor) record(id string, cs *checkState, r Result, retries int, started time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.servers[id]
	if !ok || !slices.Contains(st.checks, cs) {
		return // removed or replaced meanwhile
	}
	now := time.Now()
	sp := cs.spec
	if r.OK() && sp.Kind == File && r.Weight != nil && st.weight+*r.Weight <= 0 {
		r.Err = fmt.Errorf("track_file %s: weight %d%+d is not positive", sp.File.Path, st.weight, *r.Weight)
	}
	cs.last, cs.lastTime = r, now
	if r.OK() {
		cs.okRun++
		cs.failRun = 0
		cs.failingSince = time.Time{}
		if cs.healthySince.IsZero() {
			cs.healthySince = started
		}
		switch {
		case sp.Kind == Misc && sp.Misc.Dynamic && r.Weight != nil:
			d := *r.Weight - st.weight
			cs.weight = &d
		case sp.Kind == Misc && sp.Misc.Dynamic:
			// exit 0: "weight unchanged" (keepalived.conf(5))
		case sp.Kind == File && sp.File.Dynamic && r.Weight != nil:
			d := *r.Weight
			cs.weight = &d
		default:
			cs.weight = nil
		}
		if !cs.up && cs.okRun >= sp.Rise && now.Sub(cs.healthySince) >= sp.Reentry {
			cs.up = true
			cs.reason = fmt.Sprintf("%s: %s", cs.label, okText(r))
			if sp.Rise > 1 {
				cs.reason += fmt.Sprintf(", %d successes", cs.okRun)
			}
			if sp.Reentry > 0 {
				cs.reason += fmt.Sprintf(", healthy for %s", now.Sub(cs.healthySince).Round(time.Millisecond))
			}
		}
	} else {
		cs.failRun++
		cs.okRun = 0
		cs.healthySince = time.Time{}
		if cs.failingSince.IsZero() {
			cs.failingSince = started
		}
		if cs.up && cs.failRun >= sp.Fall && now.Sub(cs.failingSince) >= sp.ServiceTimeout {
			cs.up = false
			cs.weight = nil
			cs.reason = fmt.Sprintf("%s: %v, %d of %d retries", cs.label, r.Err, retries, *sp.Retry)
			if sp.Fall > 1 {
				cs.reason += fmt.Sprintf(", %d failed rounds", cs.failRun)
			}
			if sp.ServiceTimeout > 0 {
				cs.reason += fmt.Sprintf(", failing for %s", now.Sub(cs.failingSince).Round(time.Millisecond))
			}
		}
	}
	s.maybeEmitLocked(st, cs, "")
}

// sameCheck: two specs make the same check (log_all_failures aside).
func sameCheck(a, b Spec) bool {
	a.LogAllFailures, b.LogAllFailures = false, false
	return reflect.DeepEqual(a, b)
}

func okText(r Result) string {
	if r.Msg != "" {
		return r.Msg
	}
	return "ok"
}

// aggregate computes a server's state: up when all checks are up; the
// effective weight when a dynamic checker contributes; the reason of the
// first down check, or of the last check that came up.
func (st *serverState) aggregate() (bool, *int, string) {
	up := true
	var reason string
	dyn := false
	w := st.weight
	for _, c := range st.checks {
		if !c.up {
			if up {
				reason = c.reason
			}
			up = false
		}
		if c.weight != nil {
			dyn = true
			w += *c.weight
		}
	}
	if up {
		for _, c := range st.checks {
			if c.reason != "" {
				reason = c.reason
			}
		}
	}
	if !dyn {
		return up, nil, reason
	}
	w = max(0, min(w, 65535))
	return up, &w, reason
}

// maybeEmitLocked sends a transition if the server's state or weight
// changed. cause is the check whose result was just recorded: its reason
// explains the change when its state agrees with the server's.
func (s *Supervisor) maybeEmitLocked(st *serverState, cause *checkState, fallback string) {
	up, w, reason := st.aggregate()
	if up == st.up && eqIntPtr(w, st.effWeight) {
		return
	}
	if cause != nil && cause.up == up && cause.reason != "" {
		reason = cause.reason
	}
	if up == st.up {
		reason = "weight changed"
		if w != nil {
			reason = fmt.Sprintf("weight changed to %d", *w)
		}
	}
	if reason == "" {
		reason = fallback
	}
	st.up, st.effWeight = up, w
	s.emitLocked(Transition{ID: st.id, Up: up, Weight: w, Reason: reason, Time: time.Now()})
}

func eqIntPtr(a, b *int) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

// CheckStatus is the live state of one check, for status pages.
type CheckStatus struct {
	Kind     Kind
	Label    string
	Up       bool
	Last     Result
	LastTime time.Time
}

// ServerStatus is the live state of one server.
type ServerStatus struct {
	ID     string
	Up     bool
	Weight *int
	Checks []CheckStatus
}

// Status returns the state of every server, sorted by ID.
func (s *Supervisor) Status() []ServerStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ServerStatus, 0, len(s.servers))
	for _, st := range s.servers {
		ss := ServerStatus{ID: st.id, Up: st.up, Weight: st.effWeight}
		for _, c := range st.checks {
			ss.Checks = append(ss.Checks, CheckStatus{Kind: c.spec.Kind, Label: c.label, Up: c.up, Last: c.last, LastTime: c.lastTime})
		}
		out = append(out, ss)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
