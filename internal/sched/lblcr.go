package sched

import (
	"slices"
	"sync"
	"time"
)

// lblcr: locality-based least connection with replication
// (ip_vs_lblcr.c). Each destination address maps to a set of servers. A
// new flow goes to the weighted-least-connection member of the set; when
// there is none, or it is overloaded in lblc's sense, the service-wide wlc
// choice is taken and added to the set. When a set of more than one server
// has not changed for Options.Expiration (24h), its most loaded member is
// removed. Entries expire as in lblc.
type lblcr struct {
	clock Clock
	exp   time.Duration

	mu    sync.Mutex
	dests []*Dest
	t     locTable[*serverSet]
}

// serverSet is an lblcr replica set, newest member first (IPVS adds at the
// head of the list).
type serverSet struct {
	dests   []*Dest
	lastmod time.Time
}

func newLBLCR(o Options) (Scheduler, error) {
	return &lblcr{clock: clockOf(o), exp: expirationOf(o), t: newLocTable[*serverSet]()}, nil
}

func (s *lblcr) Name() string { return "lblcr" }

func (s *lblcr) Update(dests []*Dest) {
	present := destSet(dests)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dests = append(s.dests[:0:0], dests...)
	s.t.filter(func(e *locEntry[*serverSet]) bool {
		e.val.dests = slices.DeleteFunc(e.val.dests, func(d *Dest) bool {
			_, ok := present[d]
			return !ok
		})
		return len(e.val.dests) > 0
	})
}

func (s *lblcr) Pick(f Flow) *Dest {
	now := s.clock.Now()
	addr := f.Dst.Addr().Unmap()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.t.expire(now, s.exp)
	if e := s.t.get(addr); e != nil {
		s.t.touch(e, now)
		set := e.val
		d := pickWLC(set.dests)
		if len(set.dests) > 1 && now.Sub(set.lastmod) > s.exp {
			if m := setMax(set.dests); m != nil {
				set.dests = slices.DeleteFunc(set.dests, func(x *Dest) bool { return x == m })
				set.lastmod = now
			}
		}
		if d != nil && !lblcOverloaded(d, s.dests) {
			return d
		}
		d = pickWLC(s.dests)
		if d == nil {
			return nil
		}
		if !slices.Contains(set.dests, d) {
			set.dests = slices.Insert(set.dests, 0, d)
			set.lastmod = now
		}
		return d
	}
	d := pickWLC(s.dests)
	if d == nil {
		return nil
	}
	s.t.add(addr, &serverSet{dests: []*Dest{d}, lastmod: now}, now)
	return d
}

// setMax is the most loaded member by overhead/weight among those with a
// positive weight (ip_vs_dest_set_max).
func setMax(dests []*Dest) *Dest {
	var most *Dest
	var moh, mw int64
	for _, d := range dests {
		dw := int64(d.Weight())
		if dw <= 0 {
			continue
		}
		doh := d.Overhead()
		if most == nil || moh*dw < doh*mw {
			most, moh, mw = d, doh, dw
		}
	}
	return most
}
