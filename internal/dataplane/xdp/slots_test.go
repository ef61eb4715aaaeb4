package xdp

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// checkSpace fails unless s's free runs are sorted, disjoint, merged,
// non-empty, inside [0, n), and exactly the complement of used.
func checkSpace(t *testing.T, s slotSpace, n uint32, used []extent) {
	t.Helper()
	owner := make([]int8, n)
	for _, e := range s.free {
		if e.n == 0 || e.end() > n {
			t.Fatalf("free run %+v empty or past %d: %+v", e, n, s.free)
		}
		for i := e.base; i < e.end(); i++ {
			owner[i]++
		}
	}
	for i := 1; i < len(s.free); i++ {
		if s.free[i-1].end() >= s.free[i].base {
			t.Fatalf("free runs unsorted, overlapping or unmerged: %+v", s.free)
		}
	}
	for _, u := range used {
		for i := u.base; i < u.end(); i++ {
			owner[i]++
		}
	}
	for i, o := range owner {
		if o != 1 {
			t.Fatalf("entry %d counted %d times (free %+v, used %+v)", i, o, s.free, used)
		}
	}
}

func TestSlotSpace(t *testing.T) {
	s := newSlotSpace(100)
	a, _ := s.alloc(30)
	b, _ := s.alloc(30)
	c, _ := s.alloc(40)
	if a != (extent{0, 30}) || b != (extent{30, 30}) || c != (extent{60, 40}) {
		t.Fatalf("first fit: %+v %+v %+v", a, b, c)
	}
	if _, ok := s.alloc(1); ok {
		t.Fatal("allocated from a full space")
	}
	s.release(b)
	if _, ok := s.alloc(31); ok {
		t.Fatal("allocated 31 from a hole of 30")
	}
	// a grows over b's hole, keeping its base
	if x, ok := s.resize(a, 50); !ok || x != (extent{0, 50}) {
		t.Fatalf("grow in place: %+v %v", x, ok)
	}
	a = extent{0, 50}
	checkSpace(t, s, 100, []extent{a, c})
	// shrinking keeps the base and frees the tail, which merges
	a, _ = s.resize(a, 10)
	if a != (extent{0, 10}) || !slices.Equal(s.free, []extent{{10, 50}}) {
		t.Fatalf("shrink: %+v, free %+v", a, s.free)
	}
	// c, at the end of the space, grows over the free entries before it
	c, ok := s.resize(c, 45)
	if !ok || c != (extent{55, 45}) {
		t.Fatalf("grow: %+v %v", c, ok)
	}
	checkSpace(t, s, 100, []extent{a, c})
	// again over the free entries before it
	d, _ := s.alloc(5) // [10, 15)
	s.release(a)       // free: [0, 10), [15, 55)
	c, ok = s.resize(c, 46)
	if !ok || c != (extent{54, 46}) {
		t.Fatalf("grow over its free neighbour: %+v %v", c, ok)
	}
	checkSpace(t, s, 100, []extent{d, c})
	e, ok := s.resize(d, 8) // the free entries after d suffice
	if !ok || e != (extent{10, 8}) {
		t.Fatalf("grow in place: %+v %v", e, ok)
	}
	sp := s.Clone()
	// over free entries on both sides: [0, 10) before, [18, 54) after
	if g, ok := (&sp).resize(e, 50); !ok || g != (extent{4, 50}) {
		t.Fatalf("grow over both sides: %+v %v", g, ok)
	}
	a = e
	checkSpace(t, s, 100, []extent{a, c})
	if err := s.take(extent{50, 10}); err == nil {
		t.Fatal("took entries that are in use")
	}
	if err := s.take(extent{30, 10}); err != nil {
		t.Fatal(err)
	}
	checkSpace(t, s, 100, []extent{a, c, {30, 10}})
	cl := s.Clone()
	cl.alloc(5)
	checkSpace(t, s, 100, []extent{a, c, {30, 10}})
	// no room around it: it moves to the first run that fits
	s = newSlotSpace(100)
	p, _ := s.alloc(10)
	q, _ := s.alloc(10)
	r, _ := s.alloc(10)
	if q, ok = s.resize(q, 30); !ok || q != (extent{30, 30}) {
		t.Fatalf("move: %+v %v", q, ok)
	}
	checkSpace(t, s, 100, []extent{p, q, r})
}

// TestSlotSpaceRandom runs random allocations, resizes and releases
// against the invariant that free and used runs tile the space.
func TestSlotSpaceRandom(t *testing.T) {
	const n = 5000
	rng := rand.New(rand.NewPCG(1, 2))
	s := newSlotSpace(n)
	var used []extent
	for range 20000 {
		switch op := rng.IntN(3); {
		case op == 0 || len(used) == 0:
			if x, ok := s.alloc(uint32(1 + rng.IntN(600))); ok {
				used = append(used, x)
			}
		case op == 1:
			i := rng.IntN(len(used))
			x, ok := s.resize(used[i], uint32(rng.IntN(800)))
			if ok && x.n == 0 {
				used = slices.Delete(used, i, i+1)
			} else {
				used[i] = x
			}
		default:
			i := rng.IntN(len(used))
			s.release(used[i])
			used = slices.Delete(used, i, i+1)
		}
		checkSpace(t, s, n, used)
	}
	var total uint32
	for _, u := range used {
		total += u.n
	}
	if s.Free()+total != n {
		t.Fatalf("free %d + used %d != %d", s.Free(), total, n)
	}
}

// TestSlotSpaceGrowInPlace: a table grows over the free entries beside
// its run before it looks elsewhere, keeping its base when the entries
// after it suffice, else ending where the free entries around it end.
func TestSlotSpaceGrowInPlace(t *testing.T) {
	s := newSlotSpace(100)
	a, _ := s.alloc(40)
	b, _ := s.alloc(10)
	c, _ := s.alloc(10)
	// free: [60, 100); b's right neighbour is c: no room after b
	s.release(a) // free: [0, 40), [60, 100)
	x, ok := s.resize(b, 45)
	if !ok || x != (extent{5, 45}) {
		t.Fatalf("grow into the free entries before: %+v %v", x, ok)
	}
	checkSpace(t, s, 100, []extent{x, c})
	// c keeps its base: the 40 free entries after it suffice
	y, ok := s.resize(c, 50)
	if !ok || y != (extent{50, 50}) {
		t.Fatalf("grow into the free entries after: %+v %v", y, ok)
	}
	checkSpace(t, s, 100, []extent{x, y})
	// no room around it nor anywhere: unchanged
	if z, ok := s.resize(y, 56); ok || z != y {
		t.Fatalf("grow past the space: %+v %v", z, ok)
	}
	checkSpace(t, s, 100, []extent{x, y})
}

// TestSlotSpaceCompact: compaction packs the runs toward the start, each
// move to a free run below its source and apart from it, until one free
// run is left at the end (when only whole moves are needed), and random
// spaces keep the tiling invariant, with every move's destination free
// and disjoint from its source at the time it is made.
func TestSlotSpaceCompact(t *testing.T) {
	// a, a hole of 30, b (20), a hole of 20, c (30), 10 free at the end
	s := newSlotSpace(150)
	a, _ := s.alloc(40)
	hole1, _ := s.alloc(30)
	b, _ := s.alloc(20)
	hole2, _ := s.alloc(20)
	c, _ := s.alloc(30)
	s.release(hole1)
	s.release(hole2)
	if cl := s.Clone(); func() bool { _, ok := cl.alloc(60); return ok }() {
		t.Fatal("a run of 60 fits before compaction: the test is wrong")
	}
	moves := s.compact([]extent{c, a, b})
	want := []move{{b, extent{40, 20}}, {c, extent{60, 30}}}
	if !slices.Equal(moves, want) {
		t.Fatalf("moves %+v, want %+v", moves, want)
	}
	checkSpace(t, s, 150, []extent{a, {40, 20}, {60, 30}})
	if len(s.free) != 1 || s.free[0] != (extent{90, 60}) {
		t.Fatalf("free after compaction %+v, want one run [90, 150)", s.free)
	}

	rng := rand.New(rand.NewPCG(3, 4))
	for range 300 {
		const n = 3000
		s := newSlotSpace(n)
		var used []extent
		for range 60 {
			if x, ok := s.alloc(uint32(1 + rng.IntN(200))); ok {
				used = append(used, x)
			}
			if len(used) > 0 && rng.IntN(3) == 0 {
				i := rng.IntN(len(used))
				s.release(used[i])
				used = slices.Delete(used, i, i+1)
			}
		}
		before := s.Clone()
		moves := s.compact(used)
		// replay the moves one by one on the space before
		replay := slices.Clone(used)
		for _, m := range moves {
			if m.to.base >= m.from.base || m.to.n != m.from.n || m.to.end() > m.from.base {
				t.Fatalf("move %+v does not go below and apart from its source", m)
			}
			if err := before.take(m.to); err != nil {
				t.Fatalf("move %+v: destination not free: %v", m, err)
			}
			before.release(m.from)
			i := slices.Index(replay, m.from)
			if i < 0 {
				t.Fatalf("move %+v of no run", m)
			}
			replay[i] = m.to
		}
		checkSpace(t, before, n, replay)
		checkSpace(t, s, n, replay)
		// nothing is left that could go lower
		for _, r := range replay {
			if slices.ContainsFunc(s.free, func(e extent) bool { return e.base < r.base && e.n >= r.n }) {
				t.Fatalf("run %+v could still go lower: free %+v", r, s.free)
			}
		}
	}
}
