package sched

import "sync"

// rr: round robin. Each pick continues after the server picked last and
// takes the next available one, wrapping around (ip_vs_rr.c). When the
// server picked last is removed, the position moves to the server before
// it, so the rotation carries on where it was.
type rr struct {
	mu    sync.Mutex
	dests []*Dest
	pos   int // index of the last pick; -1 = before the first
}

func newRR(Options) (Scheduler, error) { return &rr{pos: -1}, nil }

func (s *rr) Name() string { return "rr" }

func (s *rr) Update(dests []*Dest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pos = repositionAfter(s.dests, dests, s.pos)
	s.dests = append(s.dests[:0:0], dests...)
}

func (s *rr) Pick(f Flow) *Dest {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.dests)
	for i := range n {
		idx := (s.pos + 1 + i) % n
		if d := s.dests[idx]; d.Available() {
			s.pos = idx
			return d
		}
	}
	return nil
}

// repositionAfter maps a position in old (the index of the last pick, -1
// for none) to the new list: the same server if it survived, else the
// nearest surviving server before it (IPVS ip_vs_rr_del_dest), else -1.
func repositionAfter(old, dests []*Dest, pos int) int {
	if pos < 0 || pos >= len(old) {
		return -1
	}
	index := make(map[*Dest]int, len(dests))
	for i, d := range dests {
		index[d] = i
	}
	for p := pos; p >= 0; p-- {
		if i, ok := index[old[p]]; ok {
			return i
		}
	}
	return -1
}
