package vrrp

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// garpNode is a Node with a fake system, for the announcements alone.
func garpNode() (*Node, *fakeSystem) {
	sys := &fakeSystem{}
	return &Node{opts: Options{System: sys}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}, sys
}

func garpInstance(name string, every time.Duration, vips ...VirtualIP) *instance {
	in := &instance{cfg: InstanceConfig{Name: name, Interface: "eth0", VirtualIPs: vips, GARPDelay: GARPDelay{ARP: every}}}
	in.storeVIPs()
	return in
}

func vipOn(s, dev string) VirtualIP { return VirtualIP{Prefix: netip.MustParsePrefix(s), Dev: dev} }

// sentAfter waits until n packets were sent (or 3 s passed) and returns
// them.
func sentAfter(sys *fakeSystem, n int, settle time.Duration) []sentAnnounce {
	deadline := time.Now().Add(3 * time.Second)
	for {
		sys.mu.Lock()
		got := len(sys.sent)
		sys.mu.Unlock()
		if got >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(settle) // and nothing more comes
	sys.mu.Lock()
	defer sys.mu.Unlock()
	return append([]sentAnnounce(nil), sys.sent...)
}

// TestGARPPace: two instances announcing on one interface share its
// pace, one packet an interval after the one before it went, whatever
// instance sends it (keepalived's garp_delay); an address on another
// interface keeps that interface's pace (its first goes at once); a
// repeat of a queued address adds nothing (keepalived marks it pending);
// without an interval every repeat goes at once.
func TestGARPPace(t *testing.T) {
	n, sys := garpNode()
	const every = 40 * time.Millisecond
	a := garpInstance("A", every, vipOn("10.0.0.1/24", ""), vipOn("10.0.0.2/24", ""))
	b := garpInstance("B", every, vipOn("10.0.0.3/24", ""), vipOn("10.0.9.1/24", "eth9"))
	start := time.Now()
	var wg sync.WaitGroup
	for _, in := range []*instance{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); n.announce(context.Background(), in, in.cfg, 2, "test") }()
	}
	wg.Wait()
	sent := sentAfter(sys, 4, 3*every)
	if len(sent) != 4 {
		t.Fatalf("%d packets, want 4 (each address once: the repeat found it queued)", len(sent))
	}
	var eth0, eth9 []time.Time
	for _, s := range sent {
		if s.addr.Addr().As4()[2] == 9 {
			eth9 = append(eth9, s.at)
		} else {
			eth0 = append(eth0, s.at)
		}
	}
	if len(eth0) != 3 || len(eth9) != 1 {
		t.Fatalf("eth0 %d, eth9 %d packets, want 3 and 1", len(eth0), len(eth9))
	}
	if d := eth0[0].Sub(start); d > every/2 {
		t.Errorf("eth0's first packet after %v, want at once", d)
	}
	for i := 1; i < len(eth0); i++ {
		// (spaced from when the one before went: no slack needed)
		if gap := eth0[i].Sub(eth0[i-1]); gap < every {
			t.Errorf("eth0 packets %d and %d %v apart, want ≥ %v", i-1, i, gap, every)
		}
	}
	if d := eth9[0].Sub(start); d > every/2 {
		t.Errorf("eth9's packet after %v, want at once (its own pace)", d)
	}

	// no interval: every repeat, at once, in the call
	sys.mu.Lock()
	sys.sent = nil
	sys.mu.Unlock()
	c := garpInstance("C", 0, vipOn("10.0.0.5/24", ""), vipOn("10.0.0.6/24", ""))
	n.announce(context.Background(), c, c.cfg, 3, "test")
	if len(sys.sent) != 6 {
		t.Errorf("unpaced: %d packets when announce returned, want 6", len(sys.sent))
	}
}

// TestGARPPaceCoalesces: announcements that come faster than the pace
// sends (a refresh, a lower priority's) do not pile up: an address is
// queued once; once sent, a new announcement queues it again.
func TestGARPPaceCoalesces(t *testing.T) {
	n, sys := garpNode()
	const every = 20 * time.Millisecond
	in := garpInstance("A", every, vipOn("10.0.0.1/24", ""), vipOn("10.0.0.2/24", ""), vipOn("10.0.0.3/24", ""))
	for range 3 {
		n.announce(context.Background(), in, in.cfg, 5, "test")
	}
	// (the first address may go at once, before the next call queues it
	// again: 4)
	first := len(sentAfter(sys, 3, 3*every))
	if first < 3 || first > 4 {
		t.Fatalf("three announcements of three addresses, repeat 5, in a row: %d packets, want 3 (or 4), not 45", first)
	}
	n.announce(context.Background(), in, in.cfg, 5, "test")
	if got := len(sentAfter(sys, first+3, 3*every)); got != first+3 {
		t.Errorf("an announcement after the queue went: %d packets more, want 3", got-first)
	}
}

// TestGARPPaceStops: what is queued for an instance does not go once it
// gave its addresses up (BACKUP: a BACKUP must not draw their traffic),
// nor an address a reload took away; a MASTER again before its turn
// came gets it.
func TestGARPPaceStops(t *testing.T) {
	n, sys := garpNode()
	const every = 30 * time.Millisecond
	in := garpInstance("A", every, vipOn("10.0.0.1/24", ""), vipOn("10.0.0.2/24", ""))
	n.announce(context.Background(), in, in.cfg, 5, "test")
	sentAfter(sys, 1, 0) // the first went at once
	in.garpGen.Add(1)    // as ActionRemoveAddresses does
	if got := sentAfter(sys, 2, 4*every); len(got) != 1 {
		t.Fatalf("after the addresses went: %d packets, want the first only", len(got))
	}

	// MASTER, BACKUP, MASTER again before the queue's turn: all go
	n, sys = garpNode()
	in = garpInstance("A", every, vipOn("10.0.0.1/24", ""), vipOn("10.0.0.2/24", ""), vipOn("10.0.0.3/24", ""))
	n.announce(context.Background(), in, in.cfg, 1, "test")
	in.garpGen.Add(1)
	n.announce(context.Background(), in, in.cfg, 1, "test")
	// (the first may have gone before the BACKUP, then again)
	got := sentAfter(sys, 3, 3*every)
	seen := map[netip.Prefix]bool{}
	for _, p := range got {
		seen[p.addr] = true
	}
	if len(seen) != 3 || len(got) > 4 {
		t.Errorf("MASTER again: %v, want each address once (the first maybe twice)", got)
	}

	// a reload that takes an address away: it does not go
	n, sys = garpNode()
	in = garpInstance("A", every, vipOn("10.0.0.1/24", ""), vipOn("10.0.0.2/24", ""))
	n.announce(context.Background(), in, in.cfg, 1, "test")
	in.cfg.VirtualIPs = in.cfg.VirtualIPs[:1]
	in.storeVIPs()
	got = sentAfter(sys, 2, 3*every)
	if len(got) != 1 || got[0].addr != netip.MustParsePrefix("10.0.0.1/24") {
		t.Errorf("after a reload took 10.0.0.2 away: %v, want 10.0.0.1 alone", got)
	}
}
