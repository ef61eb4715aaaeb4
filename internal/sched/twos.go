package sched

import (
	"math/rand/v2"
	"sync"
)

// twos: weighted random "power of two choices" (ip_vs_twos.c). Two
// servers are drawn at random with probability by weight, and the one with
// the lower overhead/weight wins (the first draw on a tie).
//
// As in IPVS the random numbers are drawn from [0, total weight] (one more
// value than the total), and the value 0 falls to the first server: the
// first available server gets one extra share in total+1. With weights in
// the hundreds this bias is below 1%; with tiny weights (1,2,3) it is not.
type twos struct {
	d   destSnapshot
	mu  sync.Mutex // serialises an injected Options.Rand
	src rand.Source
}

func newTwoS(o Options) (Scheduler, error) { return &twos{src: o.Rand}, nil }

func (s *twos) Name() string         { return "twos" }
func (s *twos) Update(dests []*Dest) { s.d.store(dests) }

func (s *twos) rand32() uint32 {
	if s.src == nil {
		return rand.Uint32()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return uint32(s.src.Uint64() >> 32)
}

func (s *twos) Pick(f Flow) *Dest {
	dests := s.d.load()
	var choice1, choice2 *Dest
	total := 0
	for _, d := range dests {
		if w := d.Weight(); !d.Overloaded() && w > 0 {
			total += w
			choice1 = d
		}
	}
	if choice1 == nil {
		return nil
	}
	total++
	r1 := int(s.rand32() % uint32(total))
	r2 := int(s.rand32() % uint32(total))
	w1, w2 := -1, -1
	var oh1, oh2 int64
	for _, d := range dests {
		if d.Overloaded() {
			continue
		}
		w := d.Weight()
		if w <= 0 {
			continue
		}
		r1 -= w
		r2 -= w
		if r1 <= 0 && w1 == -1 {
			choice1, w1, oh1 = d, w, d.Overhead()
		}
		if r2 <= 0 && w2 == -1 {
			choice2, w2, oh2 = d, w, d.Overhead()
		}
		if w1 != -1 && w2 != -1 {
			break
		}
	}
	if choice2 != nil && w1 != -1 && int64(w2)*oh1 > int64(w1)*oh2 {
		return choice2
	}
	return choice1
}
