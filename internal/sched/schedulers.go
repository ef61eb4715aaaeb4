package sched

import (
	"sync/atomic"
	"time"
)

// constructors maps IPVS scheduler names to their constructors. It is a
// literal table, never modified at run time.
var constructors = map[string]func(Options) (Scheduler, error){
	"rr":    newRR,
	"wrr":   newWRR,
	"lc":    newLC,
	"wlc":   newWLC,
	"sed":   newSED,
	"nq":    newNQ,
	"lblc":  newLBLC,
	"lblcr": newLBLCR,
	"dh":    newDH,
	"sh":    newSH,
	"mh":    newMH,
	"fo":    newFO,
	"ovf":   newOVF,
	"twos":  newTwoS,
}

// Default is the scheduler IPVS uses when none is named.
const Default = "wlc"

// destSnapshot holds an immutable copy of the destination list for the
// schedulers that keep no state between picks: Pick loads it without a
// lock and without allocating.
type destSnapshot struct {
	p atomic.Pointer[[]*Dest]
}

func (s *destSnapshot) store(dests []*Dest) {
	c := append([]*Dest(nil), dests...)
	s.p.Store(&c)
}

func (s *destSnapshot) load() []*Dest {
	if p := s.p.Load(); p != nil {
		return *p
	}
	return nil
}

// systemClock is the Clock used when Options.Clock is nil.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func clockOf(o Options) Clock {
	if o.Clock == nil {
		return systemClock{}
	}
	return o.Clock
}

// FuncClock adapts a function to Clock. Use a pointer so Options stays
// comparable: &FuncClock{F: fake.Now}.
type FuncClock struct {
	F func() time.Time
}

// Now calls F.
func (c *FuncClock) Now() time.Time { return c.F() }
