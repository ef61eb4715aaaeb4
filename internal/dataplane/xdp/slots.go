package xdp

import (
	"cmp"
	"fmt"
	"slices"
)

// extent is a run of sched_tbl's entries: [base, base+n).
type extent struct{ base, n uint32 }

func (e extent) end() uint32 { return e.base + e.n }

// slotSpace allocates the runs of sched_tbl that hold the services'
// scheduling tables. It keeps the free runs sorted by base and merged,
// and allocates first fit: tables are few (at most one per service) and
// most have one of three sizes (the ring, 256, the mh size), so the
// free space rarely splinters. A value: Clone gives a copy that
// checkCapacity can run an Apply through before anything is written.
type slotSpace struct {
	free []extent
}

// newSlotSpace is an empty space of n entries.
func newSlotSpace(n uint32) slotSpace {
	return slotSpace{free: []extent{{0, n}}}
}

func (s slotSpace) Clone() slotSpace { return slotSpace{free: slices.Clone(s.free)} }

// Free is the number of free entries.
func (s slotSpace) Free() uint32 {
	var t uint32
	for _, e := range s.free {
		t += e.n
	}
	return t
}

// alloc takes a run of n > 0 entries, the first that fits.
func (s *slotSpace) alloc(n uint32) (extent, bool) {
	if n == 0 {
		return extent{}, true
	}
	for i, e := range s.free {
		if e.n < n {
			continue
		}
		if e.n == n {
			s.free = slices.Delete(s.free, i, i+1)
		} else {
			s.free[i] = extent{e.base + n, e.n - n}
		}
		return extent{e.base, n}, true
	}
	return extent{}, false
}

// take marks x as used; it fails when some entry of x is not free (a
// pinned configuration whose runs overlap, which adoption refuses).
func (s *slotSpace) take(x extent) error {
	if x.n == 0 {
		return nil
	}
	i := slices.IndexFunc(s.free, func(e extent) bool { return e.base <= x.base && x.end() <= e.end() })
	if i < 0 {
		return fmt.Errorf("entries %d-%d of the scheduling tables are not free", x.base, x.end()-1)
	}
	e := s.free[i]
	var repl []extent
	if e.base < x.base {
		repl = append(repl, extent{e.base, x.base - e.base})
	}
	if x.end() < e.end() {
		repl = append(repl, extent{x.end(), e.end() - x.end()})
	}
	s.free = slices.Replace(s.free, i, i+1, repl...)
	return nil
}

// release gives x back, merging it with its free neighbours.
func (s *slotSpace) release(x extent) {
	if x.n == 0 {
		return
	}
	i, _ := slices.BinarySearchFunc(s.free, x.base, func(e extent, b uint32) int {
		switch {
		case e.base < b:
			return -1
		case e.base > b:
			return 1
		}
		return 0
	})
	s.free = slices.Insert(s.free, i, x)
	if i+1 < len(s.free) && s.free[i].end() == s.free[i+1].base {
		s.free[i].n += s.free[i+1].n
		s.free = slices.Delete(s.free, i+1, i+2)
	}
	if i > 0 && s.free[i-1].end() == s.free[i].base {
		s.free[i-1].n += s.free[i].n
		s.free = slices.Delete(s.free, i, i+1)
	}
}

// resize is what a service's table does when its capacity becomes n:
// it keeps its base when n fits in its run, or in its run and the free
// entries right after it (the tail past n is freed); else it takes n
// entries from its run and the free entries around it, ending where
// they end; else it takes a new run of n, the first that fits, and frees
// the old one. The run returned is the table's from then on; ok is false
// when no run of n can be had (the space is then left as it was).
//
// A new run may overlap the old one: the caller writes the new table
// over it while the program may still read the old run, which is sound
// because every value written names one of the same service's servers.
func (s *slotSpace) resize(old extent, n uint32) (extent, bool) {
	if n <= old.n {
		s.release(extent{old.base + n, old.n - n})
		if n == 0 {
			return extent{}, true
		}
		return extent{old.base, n}, true
	}
	if old.n > 0 {
		lo, hi := old.base, old.end()
		for _, e := range s.free {
			if e.end() == old.base {
				lo = e.base
			}
			if e.base == old.end() {
				hi = e.end()
			}
		}
		if hi-lo >= n {
			x := extent{old.base, n}
			if x.end() > hi {
				x.base = hi - n
			}
			s.release(old)
			if err := s.take(x); err != nil {
				panic("xdp: slotSpace: " + err.Error()) // x lies in old and its free neighbours
			}
			return x, true
		}
	}
	x, ok := s.alloc(n)
	if !ok {
		return old, false
	}
	s.release(old)
	return x, true
}

// compact plans how the used runs (runs, disjoint) are packed toward
// the start of the space: lowest first, a run goes to the start of the
// first free run below it that holds it whole, and passes are made
// until no run can go lower. The moves are applied to s and returned
// in order; each one's destination is free and apart from its source
// when it is made, so a table can be copied there while the program
// still reads the old run. Best effort: a run that only a partly
// overlapping slide could lower stays.
func (s *slotSpace) compact(runs []extent) []move {
	cur := slices.Clone(runs)
	var moves []move
	for {
		slices.SortFunc(cur, func(a, b extent) int { return cmp.Compare(a.base, b.base) })
		moved := false
		for i, r := range cur {
			if r.n == 0 {
				continue
			}
			j := slices.IndexFunc(s.free, func(e extent) bool { return e.base < r.base && e.n >= r.n })
			if j < 0 {
				continue
			}
			to := extent{s.free[j].base, r.n}
			if err := s.take(to); err != nil {
				panic("xdp: slotSpace: " + err.Error()) // to lies in a free run
			}
			s.release(r)
			moves = append(moves, move{from: r, to: to})
			cur[i] = to
			moved = true
		}
		if !moved {
			return moves
		}
	}
}

// move is a table's run moving from one place to another (compact).
type move struct{ from, to extent }

// ringCapacity is the run a table of used slots in layout mode needs:
// a ring (modeCursor) holds whole cycles of its scheduler within
// ringSize slots, and its run is ringSize long whatever it uses; a
// hashed table's run is its size.
func ringCapacity(mode uint8, used uint32, ringSize int) uint32 {
	if mode == modeCursor && ringSize > 0 && uint32(ringSize) > used {
		return uint32(ringSize)
	}
	return used
}
