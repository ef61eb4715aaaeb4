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

// TestGARPPace: two instances announcing on one interface at once share
// its pace, one packet per interval whatever instance sends it (as
// keepalived's garp_delay); an interface of its own (a VIP's dev) keeps
// its own pace; without an interval a burst goes at once.
func TestGARPPace(t *testing.T) {
	sys := &fakeSystem{}
	n := &Node{opts: Options{System: sys}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	const every = 40 * time.Millisecond
	mk := func(name string, vips ...VirtualIP) (*instance, InstanceConfig) {
		c := InstanceConfig{Name: name, Interface: "eth0", VirtualIPs: vips, GARPDelay: GARPDelay{ARP: every}}
		return &instance{cfg: c}, c
	}
	vip := func(s, dev string) VirtualIP { return VirtualIP{Prefix: netip.MustParsePrefix(s), Dev: dev} }
	a, ac := mk("A", vip("10.0.0.1/24", ""), vip("10.0.0.2/24", ""))
	b, bc := mk("B", vip("10.0.0.3/24", ""), vip("10.0.9.1/24", "eth9"))
	start := time.Now()
	var wg sync.WaitGroup
	for _, x := range []struct {
		in  *instance
		cfg InstanceConfig
	}{{a, ac}, {b, bc}} {
		wg.Add(1)
		go func() { defer wg.Done(); n.announce(context.Background(), x.in, x.cfg, 2, "test") }()
	}
	wg.Wait()
	deadline := time.Now().Add(3 * time.Second)
	for {
		sys.mu.Lock()
		got := len(sys.sent)
		sys.mu.Unlock()
		if got == 8 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	sys.mu.Lock()
	sent := append([]sentAnnounce(nil), sys.sent...)
	sys.mu.Unlock()
	if len(sent) != 8 {
		t.Fatalf("%d packets, want 8 (2 rounds of 4 addresses)", len(sent))
	}
	var eth0 []time.Time
	var eth9 []time.Time
	for _, s := range sent {
		if s.addr.Addr().As4()[2] == 9 {
			eth9 = append(eth9, s.at)
		} else {
			eth0 = append(eth0, s.at)
		}
	}
	// eth0: six packets of two instances, each at least an interval
	// after the one before (a little early is the timer's slack)
	for i := 1; i < len(eth0); i++ {
		if gap := eth0[i].Sub(eth0[i-1]); gap < every-5*time.Millisecond {
			t.Errorf("eth0 packets %d and %d %v apart, want ≥ %v", i-1, i, gap, every)
		}
	}
	if d := eth0[len(eth0)-1].Sub(start); d < 5*every-5*time.Millisecond {
		t.Errorf("six packets on eth0 took %v, want ≥ %v", d, 5*every)
	}
	// eth9's two went on its own pace: the first at once
	if len(eth9) != 2 || eth9[0].Sub(start) > every/2 {
		t.Errorf("eth9: %v after the start, want its first at once", eth9)
	}

	// no interval: both rounds at once, in the call
	sys.mu.Lock()
	sys.sent = nil
	sys.mu.Unlock()
	c, cc := mk("C", vip("10.0.0.5/24", ""), vip("10.0.0.6/24", ""))
	cc.GARPDelay = GARPDelay{}
	n.announce(context.Background(), c, cc, 3, "test")
	if len(sys.sent) != 6 {
		t.Errorf("unpaced: %d packets when announce returned, want 6", len(sys.sent))
	}
}

// TestGARPPaceStops: a paced announcement stops when the instance gives
// its addresses up (a BACKUP must not draw their traffic).
func TestGARPPaceStops(t *testing.T) {
	sys := &fakeSystem{}
	n := &Node{opts: Options{System: sys}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	const every = 30 * time.Millisecond
	c := InstanceConfig{Name: "A", Interface: "eth0", GARPDelay: GARPDelay{ARP: every},
		VirtualIPs: []VirtualIP{{Prefix: netip.MustParsePrefix("10.0.0.1/24")}, {Prefix: netip.MustParsePrefix("10.0.0.2/24")}}}
	in := &instance{cfg: c}
	n.announce(context.Background(), in, c, 5, "test")
	time.Sleep(every + every/2) // two packets sent
	in.garpGen.Add(1)           // as ActionRemoveAddresses does
	stopped := time.Now()
	time.Sleep(6 * every)
	sys.mu.Lock()
	defer sys.mu.Unlock()
	if len(sys.sent) == 0 || len(sys.sent) >= 10 {
		t.Fatalf("%d packets, want some but not all 10", len(sys.sent))
	}
	for _, p := range sys.sent {
		if p.at.After(stopped.Add(5 * time.Millisecond)) {
			t.Errorf("a packet %v after the addresses went", p.at.Sub(stopped))
		}
	}
}

func TestGARPPacerSlot(t *testing.T) {
	var p garpPacer
	t0 := time.Unix(1000, 0)
	if at := p.slot("k", time.Second, t0); !at.Equal(t0) {
		t.Errorf("first slot %v, want now", at)
	}
	if at := p.slot("k", time.Second, t0); !at.Equal(t0.Add(time.Second)) {
		t.Errorf("second slot %v, want now+1s", at)
	}
	if at := p.slot("other", time.Second, t0); !at.Equal(t0) {
		t.Errorf("another pace's first slot %v, want now", at)
	}
	// long after: at once again
	if at := p.slot("k", time.Second, t0.Add(time.Minute)); !at.Equal(t0.Add(time.Minute)) {
		t.Errorf("slot after a pause %v, want now", at)
	}
}
