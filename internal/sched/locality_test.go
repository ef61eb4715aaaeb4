package sched

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func dstFlow(dst string) Flow {
	return Flow{Proto: TCP, Src: netip.MustParseAddrPort("203.0.113.9:4000"), Dst: netip.AddrPortFrom(netip.MustParseAddr(dst), 80)}
}

func TestLBLC(t *testing.T) {
	clk := newFakeClock()
	ds := mkDests(2, 2, 2)
	s := mustNew(t, "lblc", Options{Clock: clk}, ds).(*lblc)
	f1, f2 := dstFlow("198.51.100.1"), dstFlow("198.51.100.2")

	first := s.Pick(f1) // wlc: A (all idle)
	first.ConnOpened(true)
	first.ConnOpened(true)
	// The same destination address sticks to A even though B and C are
	// less loaded now.
	if got := s.Pick(f1); got != first {
		t.Fatalf("same destination: %s, want %s", label(ds, got), label(ds, first))
	}
	// Another destination address is scheduled by wlc: B.
	if got := label(ds, s.Pick(f2)); got != "B" {
		t.Fatalf("second destination: %s, want B", got)
	}
	// A over its weight (3 active > 2) while C has 0*2 < 2: reschedule.
	first.ConnOpened(true)
	got := s.Pick(f1)
	if got == first {
		t.Fatalf("lblc-overloaded server kept")
	}
	if s.Pick(f1) != got {
		t.Fatal("the new choice was not remembered")
	}
	// Quiescing the remembered server moves the address too.
	got.SetWeight(0)
	if again := s.Pick(f1); again == got || again == nil {
		t.Fatalf("quiesced server kept: %s", label(ds, again))
	}
}

func TestLBLCExpiry(t *testing.T) {
	clk := newFakeClock()
	ds := mkDests(1, 1)
	s := mustNew(t, "lblc", Options{Clock: clk, Expiration: time.Hour}, ds).(*lblc)
	for i := range 5 {
		s.Pick(dstFlow(fmt.Sprintf("198.51.100.%d", i+1)))
	}
	if n := s.entries(); n != 5 {
		t.Fatalf("entries = %d, want 5", n)
	}
	clk.Advance(59 * time.Minute)
	s.Pick(dstFlow("198.51.100.1")) // touched: stays
	clk.Advance(time.Minute)        // the other four are an hour idle
	s.Pick(dstFlow("198.51.100.99"))
	if n := s.entries(); n != 2 {
		t.Fatalf("after expiry entries = %d, want 2 (touched + new)", n)
	}
}

func TestLBLCUpdateDropsRemoved(t *testing.T) {
	ds := mkDests(1, 1)
	s := mustNew(t, "lblc", Options{Clock: newFakeClock()}, ds).(*lblc)
	d := s.Pick(dstFlow("198.51.100.1"))
	var rest []*Dest
	for _, x := range ds {
		if x != d {
			rest = append(rest, x)
		}
	}
	s.Update(rest)
	if s.entries() != 0 {
		t.Fatal("entry for a removed server kept")
	}
	if got := s.Pick(dstFlow("198.51.100.1")); got != rest[0] {
		t.Fatalf("Pick = %v, want %v", got, rest[0])
	}
}

func TestLBLCR(t *testing.T) {
	clk := newFakeClock()
	ds := mkDests(2, 2, 2)
	s := mustNew(t, "lblcr", Options{Clock: clk}, ds).(*lblcr)
	f := dstFlow("198.51.100.1")
	set := func() string {
		s.mu.Lock()
		defer s.mu.Unlock()
		out := ""
		for _, d := range s.t.get(f.Dst.Addr()).val.dests {
			out += label(ds, d)
		}
		return out
	}

	a := s.Pick(f)
	if label(ds, a) != "A" || set() != "A" {
		t.Fatalf("first pick %s set %s, want A / A", label(ds, a), set())
	}
	open(a, 3, true) // A: 3 active > weight 2, B has 0
	b := s.Pick(f)   // wlc over the service: B, added to the set
	if label(ds, b) != "B" || set() != "BA" {
		t.Fatalf("replication: pick %s set %s, want B / BA", label(ds, b), set())
	}
	// Now the set's least loaded member (B) serves.
	if got := label(ds, s.Pick(f)); got != "B" {
		t.Fatalf("pick from set = %s, want B", got)
	}
	// After the expiration without change the most loaded (A) leaves.
	clk.Advance(DefaultLocalityExpiration + time.Second)
	if got := label(ds, s.Pick(f)); got != "B" {
		t.Fatalf("pick = %s, want B", got)
	}
	if got := set(); got != "B" {
		t.Fatalf("after expiration set = %s, want B", got)
	}
}

func TestLBLCRUpdateShrinksSets(t *testing.T) {
	ds := mkDests(1, 1)
	s := mustNew(t, "lblcr", Options{Clock: newFakeClock()}, ds).(*lblcr)
	f := dstFlow("198.51.100.1")
	s.Pick(f)
	s.Update(ds[1:])
	if got := s.Pick(f); got != ds[1] {
		t.Fatalf("Pick = %v, want %v", got, ds[1])
	}
	s.Update(nil)
	if s.t.len() != 0 {
		t.Fatal("empty sets kept")
	}
}

// entries reports the lblc table size.
func (s *lblc) entries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.t.len()
}
