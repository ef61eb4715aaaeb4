package xdp

import (
	"context"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/govs/govs/internal/dataplane"
)

// TestBatchDeleteSkipsMissing: a key that is already gone must not stop
// the deletion of the keys after it (the kernel's batch delete stops at
// the first missing key).
func TestBatchDeleteSkipsMissing(t *testing.T) {
	requireBPF(t)
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.LRUHash, KeySize: 4, ValueSize: 4, MaxEntries: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	const n = 3 * walkBatch
	var keys []uint32
	for i := uint32(0); i < n; i++ {
		if i%7 != 3 { // every seventh key is never stored
			if err := m.Put(i, i); err != nil {
				t.Fatal(err)
			}
		}
		keys = append(keys, i)
	}
	if err := batchDelete(m, keys); err != nil {
		t.Fatalf("batchDelete: %v", err)
	}
	var k, v uint32
	left := 0
	it := m.Iterate()
	for it.Next(&k, &v) {
		left++
		if left < 5 {
			t.Errorf("key %d still in the map", k)
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Fatalf("%d of %d keys left after batchDelete", left, n)
	}
}

// TestSyncSkipsIdleWalks: a sync walks the tables only when the counts
// may have changed — a new connection, a TCP state change, an entry
// reaching its timeout, a configuration change — and otherwise keeps the
// last counts without visiting every bucket.
func TestSyncSkipsIdleWalks(t *testing.T) {
	x := newTDP(t, Options{Timeouts: dataplane.Timeouts{UDP: time.Second}})
	x.apply(svc(dataplane.TCP, vip4, 80, "rr", rsv(rs1, 1, dataplane.DR)),
		svc(dataplane.UDP, vip4, 53, "rr", rsv(rs1, 1, dataplane.DR)))
	walks := func() uint64 {
		x.d.mu.Lock()
		defer x.d.mu.Unlock()
		return x.d.walk.walks
	}
	counts := func() (act, inact int64) {
		for _, s := range x.stats().Services {
			for _, r := range s.RealServers {
				act += r.ActiveConns
				inact += r.InactiveConns
			}
		}
		return act, inact
	}
	step := func(what string, wantWalk bool, wantAct, wantInact int64) {
		t.Helper()
		w0 := walks()
		act, inact := counts()
		if walked := walks() != w0; walked != wantWalk {
			t.Errorf("%s: walked %v, want %v", what, walked, wantWalk)
		}
		if act != wantAct || inact != wantInact {
			t.Errorf("%s: active %d inactive %d, want %d and %d", what, act, inact, wantAct, wantInact)
		}
	}

	step("after apply", true, 0, 0)
	step("idle, empty", false, 0, 0)
	s := syn(client(1), 40000, vip4, 80)
	x.expect(s.frame(), xdpTX, "tx_dr")
	step("new connection", true, 0, 1)
	step("idle", false, 0, 1)
	s.flags = tcpACK
	x.expect(s.frame(), xdpTX, "tx_dr")
	step("SYN_RECV -> ESTABLISHED", true, 1, 0)
	x.expect(s.frame(), xdpTX, "tx_dr")
	step("established packet, no state change", false, 1, 0)
	u := pkt{src: netip.AddrPortFrom(client(2), 5353), dst: netip.AddrPortFrom(vip4, 53), proto: 17, payload: []byte("q")}
	x.expect(u.frame(), xdpTX, "tx_dr")
	step("udp flow", true, 1, 1)
	step("idle with a udp flow", false, 1, 1)
	time.Sleep(1200 * time.Millisecond) // the UDP timeout (1 s) passes
	step("udp flow timed out", true, 1, 0)
	step("idle after expiry", false, 1, 0)
	x.apply(svc(dataplane.TCP, vip4, 80, "rr", rsv(rs2, 1, dataplane.DR)))
	step("real server replaced", true, 0, 0)

	// the rate estimator's Stats (counters only) makes no walk, even
	// long after the last sync and with a new connection: its counters
	// are live, its connection counts those of the last walk
	rs2Pkts := func(snap dataplane.Snapshot) (n uint64) {
		for _, s := range snap.Services {
			for _, r := range s.RealServers {
				if r.Addr == rs2 {
					n += r.Counters.InPkts
				}
			}
		}
		return n
	}
	before := rs2Pkts(x.stats())
	x.expect(syn(client(3), 40001, vip4, 80).frame(), xdpTX, "tx_dr")
	x.d.mu.Lock()
	x.d.synced = time.Time{}
	x.d.mu.Unlock()
	w0 := walks()
	snap, err := x.d.Stats(dataplane.CountersOnly(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	var inact int64
	for _, s := range snap.Services {
		for _, r := range s.RealServers {
			inact += r.InactiveConns
		}
	}
	if walks() != w0 || inact != 0 || rs2Pkts(snap) != before+1 {
		t.Errorf("counters-only Stats: walked %v, %d inactive (want the last walk's 0), %d packets to %s (want the live %d)", walks() != w0, inact, rs2Pkts(snap), rs2, before+1)
	}
	step("a new connection, plain Stats", true, 0, 1)
}

// TestNextSync: the loop syncs every interval while the scheduling
// depends on the connection counts (or a next hop is unresolved, a
// template could expire unrefreshed, a walk is owed), and otherwise
// waits for the earliest thing due, up to lazyIntervals intervals.
func TestNextSync(t *testing.T) {
	x := newTDP(t, Options{})
	d := x.d
	const iv = time.Second
	next := func(svcs ...dataplane.Service) time.Duration {
		t.Helper()
		x.apply(svcs...)
		d.mu.Lock()
		defer d.mu.Unlock()
		// the interval the figures are for, only while nextSync runs:
		// the loop keeps its hour
		d.opts.SyncInterval = iv
		defer func() { d.opts.SyncInterval = time.Hour }()
		now := time.Now()
		d.walk.done, d.walk.due, d.walk.refresh, d.clkTuned, d.nhChecked = true, math.MaxUint64, math.MaxUint64, now, now
		return d.nextSync()
	}
	dr := rsv(rs1, 1, dataplane.DR)
	lazy := func(n time.Duration) bool { return n > lazyIntervals*iv-100*time.Millisecond && n <= lazyIntervals*iv }
	if n := next(svc(dataplane.TCP, vip4, 80, "rr", dr)); !lazy(n) {
		t.Errorf("rr: next sync in %v, want %v", n, lazyIntervals*iv)
	}
	if n := next(svc(dataplane.TCP, vip4, 80, "mh", dr)); !lazy(n) {
		t.Errorf("mh: next sync in %v, want %v", n, lazyIntervals*iv)
	}
	for _, sch := range []string{"wlc", "lc", "", "sed", "lblc"} {
		if n := next(svc(dataplane.TCP, vip4, 80, sch, dr)); n != iv {
			t.Errorf("%q: next sync in %v, want %v", sch, n, iv)
		}
	}
	limited := dr
	limited.UThreshold = 10
	if n := next(svc(dataplane.TCP, vip4, 80, "sh", limited)); n != iv {
		t.Errorf("sh with a threshold: next sync in %v, want %v", n, iv)
	}
	short := svc(dataplane.TCP, vip4, 80, "rr", dr)
	short.Persistence = 5 * time.Second
	if n := next(short); n != iv {
		t.Errorf("persistence 5s: next sync in %v, want %v", n, iv)
	}
	short.Persistence = 300 * time.Second
	if n := next(short); !lazy(n) {
		t.Errorf("persistence 300s: next sync in %v, want %v", n, lazyIntervals*iv)
	}
	x.unresolved[rs1.Addr()] = true
	if n := next(svc(dataplane.TCP, vip4, 81, "rr", dr)); n != iv {
		t.Errorf("unresolved next hop: next sync in %v, want %v", n, iv)
	}
	delete(x.unresolved, rs1.Addr())

	// what is due first, within [iv, lazyIntervals*iv]
	x.apply(svc(dataplane.TCP, vip4, 80, "rr", dr))
	d.mu.Lock()
	defer d.mu.Unlock()
	d.opts.SyncInterval = iv
	defer func() { d.opts.SyncInterval = time.Hour }()
	d.walk.done = true
	d.walk.due = monoNow() + uint64(3*iv)
	d.walk.refresh = math.MaxUint64
	if n := d.nextSync(); !lazy(n) {
		t.Errorf("an entry expiring in 3s: next sync in %v, want %v (no wake-up for an expiry)", n, lazyIntervals*iv)
	}
	d.walk.refresh = d.walk.due
	if n := d.nextSync(); n > 3*iv+coarseSlack || n < 3*iv-100*time.Millisecond {
		t.Errorf("template refresh due in 3s: next sync in %v", n)
	}
	d.walk.due = monoNow() + uint64(iv/10)
	d.walk.refresh = d.walk.due
	if n := d.nextSync(); n != iv {
		t.Errorf("template refresh due in 0.1s: next sync in %v, want %v", n, iv)
	}
	d.walk.due, d.walk.refresh = math.MaxUint64, math.MaxUint64
	d.clkTuned = time.Now().Add(-clockRetuneEvery + 4*iv)
	if n := d.nextSync(); n > 4*iv || n < 4*iv-100*time.Millisecond {
		t.Errorf("clock retune due in 4s: next sync in %v", n)
	}
	d.walk.done = false
	if n := d.nextSync(); n != iv {
		t.Errorf("walk owed after Apply: next sync in %v, want %v", n, iv)
	}
}

// TestSyncLoop: the loop keeps syncing on its own, at the lazy pace for
// an rr service, at every interval for a wlc one, and owes a walk within
// an interval of every Apply.
func TestSyncLoop(t *testing.T) {
	const iv = 20 * time.Millisecond
	x := newTDP(t, Options{SyncInterval: iv})
	d := x.d
	dr := rsv(rs1, 1, dataplane.DR)
	synced := func() time.Time {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.synced
	}
	// syncs counts the loop's syncs over window
	syncs := func(window time.Duration) int {
		n, last := 0, synced()
		for end := time.Now().Add(window); time.Now().Before(end); {
			time.Sleep(iv / 4)
			if s := synced(); s.After(last) {
				n, last = n+1, s
			}
		}
		return n
	}
	// rr: lazy, lazyIntervals intervals apart (5 in the window), and
	// never stopped
	x.apply(svc(dataplane.TCP, vip4, 80, "rr", dr))
	time.Sleep(2 * iv) // the walk Apply owes
	if n := syncs(5 * lazyIntervals * iv); n < 1 || n > 8 {
		t.Errorf("rr: %d syncs in %v, want about 5", n, 5*lazyIntervals*iv)
	}
	// wlc: every interval (50 in the window; fewer on a busy machine)
	x.apply(svc(dataplane.TCP, vip4, 80, "wlc", dr))
	if n := syncs(5 * lazyIntervals * iv); n < 15 {
		t.Errorf("wlc: %d syncs in %v, want about 50", n, 5*lazyIntervals*iv)
	}
	// Apply owes a walk within an interval, even from the lazy pace
	x.apply(svc(dataplane.TCP, vip4, 80, "rr", dr))
	time.Sleep(2 * iv)
	d.mu.Lock()
	w0 := d.walk.walks
	d.mu.Unlock()
	x.apply(svc(dataplane.TCP, vip4, 80, "rr", dr, rsv(rs2, 1, dataplane.DR)))
	deadline := time.Now().Add(2 * time.Second)
	for {
		d.mu.Lock()
		w := d.walk.walks
		d.mu.Unlock()
		if w > w0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no walk within 2s of Apply")
		}
		time.Sleep(iv / 4)
	}
}

// TestSetTimeouts: timeouts changed while the program runs (ipvsadm
// --set) reach the settings map the program reads, and the next sync
// expires the connections they end.
func TestSetTimeouts(t *testing.T) {
	x := newTDP(t, Options{}) // UDP 300 s
	x.apply(svc(dataplane.UDP, vip4, 53, "rr", rsv(rs1, 1, dataplane.DR)))
	u := pkt{src: netip.AddrPortFrom(client(2), 5353), dst: netip.AddrPortFrom(vip4, 53), proto: 17, payload: []byte("q")}
	x.expect(u.frame(), xdpTX, "tx_dr")
	inactive := func() (n int64) {
		for _, s := range x.stats().Services {
			for _, r := range s.RealServers {
				n += r.InactiveConns
			}
		}
		return n
	}
	if n := inactive(); n != 1 {
		t.Fatalf("%d UDP connections, want 1", n)
	}
	if err := x.d.SetTimeouts(dataplane.Timeouts{UDP: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	var c lbConfig
	if err := x.d.objs.Settings.Lookup(uint32(0), &c); err != nil {
		t.Fatal(err)
	}
	def := dataplane.DefaultTimeouts
	if c.TimeoutNs[2] != uint64(def.TCP) || c.TimeoutNs[3] != uint64(def.TCPFin) || c.TimeoutNs[5] != uint64(100*time.Millisecond) {
		t.Errorf("settings timeouts %v: want tcp %d, tcpfin %d (defaults), udp 100ms", c.TimeoutNs, def.TCP, def.TCPFin)
	}
	time.Sleep(200 * time.Millisecond)
	if n := inactive(); n != 0 {
		t.Errorf("%d UDP connections left after the timeout was shortened to 100ms and passed", n)
	}
	if err := x.d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := x.d.SetTimeouts(dataplane.Timeouts{UDP: time.Second}); err == nil {
		t.Error("SetTimeouts after Close: no error")
	}
}
