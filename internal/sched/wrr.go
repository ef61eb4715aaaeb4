package sched

import "sync"

// wrr: weighted round robin with IPVS's interleaving (ip_vs_wrr.c). The
// scheduler walks the list in passes with a current weight cw that starts
// at the maximum weight and drops by the gcd of the weights after each
// pass; a pass takes every available server whose weight is >= cw. For
// weights 4,3,2 (A,B,C) that gives A A B A B C A B C, repeating.
//
// As in IPVS the maximum is reduced by (gcd-1) so the last pass has cw = 1
// and a weight lowered below the gcd since the last Update is still found.
// gcd and maximum are computed on Update; weights are read live at pick.
type wrr struct {
	mu    sync.Mutex
	dests []*Dest
	cl    int // index of the last pick; -1 = the list head
	cw    int // current weight
	mw    int // maximum weight - (gcd - 1)
	di    int // gcd of the positive weights
}

func newWRR(Options) (Scheduler, error) { return &wrr{cl: -1, di: 1}, nil }

func (s *wrr) Name() string { return "wrr" }

func (s *wrr) Update(dests []*Dest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dests = append(s.dests[:0:0], dests...)
	s.cl = -1
	g, maxw := 0, 0
	for _, d := range s.dests {
		w := d.Weight()
		if w > 0 {
			g = gcd(w, g)
		}
		maxw = max(maxw, w)
	}
	if g == 0 {
		g = 1
	}
	s.di = g
	s.mw = maxw - (g - 1)
	switch {
	case s.cw > s.mw || s.cw == 0:
		s.cw = s.mw
	case s.di > 1:
		s.cw = (s.cw/s.di)*s.di + 1
	}
}

func (s *wrr) Pick(f Flow) *Dest {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mw <= 0 {
		return nil
	}
	last, stop := s.cl, -2
	lastPass, restarted := false, false
	idx := s.cl
	for {
		for idx++; idx < len(s.dests); idx++ {
			d := s.dests[idx]
			if !d.Overloaded() && d.Weight() >= s.cw { // cw >= 1 here
				s.cl = idx
				return d
			}
			if idx == stop {
				s.cl = idx
				return nil
			}
		}
		idx = -1 // back at the head
		s.cw -= s.di
		if s.cw <= 0 {
			s.cw = s.mw
			// A full pass with cw = 1 over every server found nothing.
			if lastPass || last == -1 {
				s.cl = -1
				return nil
			}
			restarted = true
		}
		lastPass = s.cw <= s.di
		if lastPass && restarted && last != -1 {
			// The first walk with cw = 1 covered only the servers after
			// last; walk the rest up to last and stop there.
			stop = last
		}
	}
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
