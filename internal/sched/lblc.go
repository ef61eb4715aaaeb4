package sched

import (
	"sync"
	"time"
)

// lblc: locality-based least connection (ip_vs_lblc.c). A table maps each
// destination address to the server that last served it. A new flow goes
// to that server unless it is unavailable or "overloaded" in lblc's sense
// (more active connections than its weight while another server has fewer
// than half its weight); then the wlc choice is taken and remembered.
// Entries unused for Options.Expiration (24h) are dropped, or after 6
// minutes while the table holds more than 16384 entries; collection is
// lazy, a few entries per pick, on Options.Clock.
//
// One deliberate difference: IPVS returns a cached server even when its
// upper connection threshold is reached; govs treats that as unavailable,
// so thresholds hold for every scheduler.
type lblc struct {
	clock Clock
	exp   time.Duration

	mu    sync.Mutex
	dests []*Dest
	t     locTable[*Dest]
}

func newLBLC(o Options) (Scheduler, error) {
	return &lblc{clock: clockOf(o), exp: expirationOf(o), t: newLocTable[*Dest]()}, nil
}

func (s *lblc) Name() string { return "lblc" }

func (s *lblc) Update(dests []*Dest) {
	present := destSet(dests)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dests = append(s.dests[:0:0], dests...)
	s.t.filter(func(e *locEntry[*Dest]) bool {
		_, ok := present[e.val]
		return ok
	})
}

func (s *lblc) Pick(f Flow) *Dest {
	now := s.clock.Now()
	addr := f.Dst.Addr().Unmap()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.t.expire(now, s.exp)
	e := s.t.get(addr)
	if e != nil {
		s.t.touch(e, now)
		if d := e.val; d.Available() && !lblcOverloaded(d, s.dests) {
			return d
		}
	}
	d := pickWLC(s.dests)
	if d == nil {
		return nil
	}
	if e != nil {
		e.val = d
	} else {
		s.t.add(addr, d, now)
	}
	return d
}
