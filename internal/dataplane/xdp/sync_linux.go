package xdp

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"slices"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/sched"
)

// realCount are the connection counts of one real server slot.
type realCount struct{ active, inactive, persist int64 }

// monoNow is the clock of bpf_ktime_get_coarse_ns (and of the program's
// jiffies-based now_ns, see clock_linux.go).
func monoNow() uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC_COARSE, &ts)
	return uint64(ts.Nano())
}

func (d *Dataplane) loop(ctx context.Context) {
	defer close(d.done)
	defer d.syncTimer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-d.clientNH:
			d.mu.Lock()
			if !d.closed {
				d.resolveClientLocked(a)
			}
			d.mu.Unlock()
		case <-d.syncTimer.C:
			d.mu.Lock()
			// a sync made meanwhile (Stats) moved the round; the walk
			// gap bounds the pace of walks of huge tables
			if wait := max(time.Until(d.syncAt), d.walk.gap-time.Since(d.synced)); wait > 0 {
				d.armSync(wait)
			} else if err := d.syncLocked(); err != nil {
				d.log.Warn("xdp sync", "err", err)
			}
			d.mu.Unlock()
		}
	}
}

// armSync sets the loop's next sync to after wait.
func (d *Dataplane) armSync(wait time.Duration) {
	if d.syncTimer == nil {
		return
	}
	d.syncAt = time.Now().Add(wait)
	d.syncTimer.Reset(wait)
}

// syncSoon brings the loop's next sync forward to one SyncInterval from
// now at the latest (Apply).
func (d *Dataplane) syncSoon() {
	if iv := d.opts.SyncInterval; d.syncAt.IsZero() || time.Until(d.syncAt) > iv {
		d.armSync(iv)
	}
}

// lazyIntervals bounds the wait between two syncs of a director whose
// scheduling does not depend on its connection counts (nextSync).
const lazyIntervals = 10

// nextHopCheckEvery is how many sync intervals apart the sync resolves
// every real server's next hop again (unresolved ones: every round).
const nextHopCheckEvery = 10

// coarseSlack covers the lag of CLOCK_MONOTONIC_COARSE (a tick, 10 ms
// at HZ=100) behind the timers' clock.
const coarseSlack = 10 * time.Millisecond

// nextSync is how long after a sync the loop makes the next one. Every
// SyncInterval while something depends on it: a scheduler or threshold
// that reads the active and inactive counts (tableSig), a next hop still
// unresolved, a released SNAT run not yet freed, a persistence timeout
// shorter than lazyIntervals+2 intervals (a template made after a walk
// must be refreshed by the next), an adopted service, or a walk owed
// since Apply. Otherwise the counts are only shown: Stats, which the
// API and the metrics call, syncs first when they are older than a
// quarter of a second (or the walk gap); the director's rate estimator
// reads the counters only (dataplane.CountersOnly) and does not sync.
// The loop then waits
// for the earliest of: a template to refresh, the next check of the
// next hops, the clock's retune, and lazyIntervals intervals; a SNAT
// exhaustion is then logged, and an expired entry deleted, that late
// at most. Apply brings the next sync to one interval away at
// the latest (syncSoon). On this guest a timer wake-up costs some 0.25 ms
// of CPU across the Go runtime's threads, about as much as an idle round
// itself (docs/BENCHMARKS.md).
func (d *Dataplane) nextSync() time.Duration {
	iv := d.opts.SyncInterval
	if d.eager() {
		return iv
	}
	next := lazyIntervals * iv
	// not for an entry reaching its timeout: under steady traffic it
	// has been refreshed by then nearly always (a 5 s UDP flow woke a
	// walk of every table every 5 s), and nothing needs it gone sooner:
	// the program takes an expired connection for none (a NAT reply
	// mapping still translates until the walk, as the flow cache's copy
	// may), and Stats walks before it shows counts
	if due := d.walk.refresh; due != math.MaxUint64 {
		now := monoNow()
		if due <= now {
			return iv
		}
		// the coarse clock the walk compares with lags by up to a tick:
		// woken right at due, it could find nothing due yet
		next = min(next, time.Duration(due-now)+coarseSlack)
	}
	next = min(next, nextHopCheckEvery*iv-time.Since(d.nhChecked), clockRetuneEvery-time.Since(d.clkTuned))
	return max(next, iv)
}

// eager reports whether the next sync is due one SyncInterval after the
// last (nextSync).
func (d *Dataplane) eager() bool {
	if !d.walk.done || d.snatPools.freed {
		return true
	}
	// a template made after the last walk must be refreshed by a walk
	// before it expires, and a lazy wait is lazyIntervals long
	short := time.Duration(lazyIntervals+2) * d.opts.SyncInterval
	for _, s := range d.svcs {
		if s.adopted || s.countsMatter() || s.spec.Persistence > 0 && s.spec.Persistence < short {
			return true
		}
		for _, r := range s.reals {
			if !r.nh.ok {
				return true
			}
		}
	}
	return false
}

func (d *Dataplane) timeout(state uint8) uint64 {
	t := d.opts.Timeouts
	switch state {
	case 1:
		return uint64(60 * time.Second)
	case 2:
		return uint64(t.TCP)
	case 3:
		return uint64(t.TCPFin)
	case 4:
		return uint64(10 * time.Second)
	case 5:
		return uint64(t.UDP)
	}
	return uint64(24 * time.Hour)
}

func expired(now, last, timeout uint64) bool { return now > last && now-last >= timeout }

// persistKey is the template key a connection of a persistent service
// belongs to.
func persistKey(s *service, k *lbFlowKey) lbPersistKey {
	pk := lbPersistKey{Svc: s.id, Family: k.Family}
	a := bytesAddr(k.Saddr, k.Family)
	bits := s.spec.PersistMask
	if bits <= 0 || bits > a.BitLen() {
		bits = a.BitLen()
	}
	p, _ := a.Prefix(bits)
	pk.Addr, _ = addrBytes(p.Addr())
	return pk
}

// syncLocked walks the connection and template tables: it deletes expired
// entries, keeps templates alive while they control connections, feeds
// the live counts to the schedulers' Dests, recomputes scheduling tables
// and the sorry-server switch, and retries next hops.
func (d *Dataplane) syncLocked() (err error) {
	// whatever this round ends with, the loop's next one is scheduled
	// from it (Stats and the loop both sync); one that failed is tried
	// again after an interval
	defer func() {
		if err != nil {
			d.armSync(d.opts.SyncInterval)
		} else {
			d.armSync(d.nextSync())
		}
	}()
	// NTP slews the coarse clock by 0.5 ms/s at most, so a reading every
	// clockRetuneEvery keeps the offset within a few ticks and spares a
	// system call in most rounds.
	if time.Since(d.clkTuned) >= clockRetuneEvery {
		d.clkTuned = time.Now()
		if moved, err := d.retuneClock(); err != nil {
			d.log.Warn("xdp clock retune", "err", err) // the old offset stays: off by ms at most
		} else if moved {
			if err := d.writeSettings(); err != nil {
				return err
			}
		}
	}
	now := monoNow()
	start := time.Now()
	byID := make(map[uint32]*service, len(d.svcs))
	reals := make(map[uint32]*realState)
	for _, s := range d.svcs {
		byID[s.id] = s
		for _, r := range s.reals {
			reals[r.id] = r
		}
	}
	counts, err := d.walkTables(now, byID, reals)
	if err != nil {
		return err
	}
	d.counts, d.synced = counts, time.Now()
	d.walk.gap = 19 * d.synced.Sub(start)
	checkNH := time.Since(d.nhChecked) >= nextHopCheckEvery*d.opts.SyncInterval
	if checkNH {
		d.nhChecked = time.Now()
	}
	if err := d.logExhaustion(time.Now()); err != nil {
		d.log.Warn("xdp snat counters", "err", err)
	}
	d.snatPools.settle()

	var errs []error
	hopMoved := false
	for _, s := range d.svcs {
		if s.adopted {
			continue
		}
		for _, r := range s.reals {
			c := counts[r.id]
			r.dest.SetConns(c.active, c.inactive)
			if !r.nh.ok || checkNH {
				if nh := d.resolve(r.spec.Addr.Addr(), r.spec.Method); nextHopChanged(r.nh, nh) {
					hopMoved = hopMoved || nh.ifindex != r.nh.ifindex || nh.ok != r.nh.ok
					r.nh = nh
					errs = append(errs, d.writeReal(s.id, r))
				}
			}
		}
		// the configuration describes the table: not written when the
		// table could not be
		err := d.pushTable(s)
		if err == nil {
			err = d.writeCfg(s)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("service %s: %w", s.spec.Key, err))
		}
	}
	if hopMoved {
		d.warnNextHopVeths()
	}
	return errors.Join(errs...)
}

// nextHopChanged says whether a fresh resolution nh replaces a real
// server's next hop old: a different answer does, and so does a failure
// of a good one (no route, another interface), but not a neighbour entry
// still being resolved on the same interface. The kernel lets the
// entries of neighbours only XDP sends to age out (it never uses them
// itself), and marking the server invalid for that would drop its
// traffic, established flows included, until the next round.
func nextHopChanged(old, nh nexthop) bool {
	switch {
	case nh.ok:
		return nh != old
	case !old.ok:
		return false
	}
	return !nh.pending || nh.ifindex != old.ifindex
}

// walkState describes the last walk of the connection tables.
type walkState struct {
	// gap is the least time until the next walk: 19 times the last
	// walk's duration, so walking a very large table costs at most about
	// 5 % of one CPU.
	gap time.Duration
	// done: a walk was made, and nothing has happened since that it
	// could not see (Apply clears it: a removed server's connections
	// go, and their counts with them).
	done    bool
	made    uint64 // the program's new-connection count then
	changed uint64 // the program's TCP state-change count then
	// due is when the earliest entry found expires, or a live template
	// must be refreshed (monoNow ns; MaxUint64 when none); refresh is
	// the latter alone, the one a lazy loop wakes for (nextSync).
	due     uint64
	refresh uint64
	v6      bool   // it found an entry in the IPv6 table
	walks   uint64 // walks made (skipped ones not counted)
}

// walkTables walks the connection and template tables: it deletes expired
// entries, keeps templates alive while they control connections and
// returns the live counts per real server slot. It skips the walk, and
// returns the last counts, when nothing could have changed them: since
// the last walk the program has made no connection and changed no TCP
// state, no entry the last walk found has reached its timeout and no
// template needs refreshing. Walking costs about the same for a sparse
// table as for a full one (the kernel visits every bucket: 1.5–3 ms for
// 2^21 buckets), so a director whose flows are long-lived or few does
// not pay it every second.
func (d *Dataplane) walkTables(now uint64, byID map[uint32]*service, reals map[uint32]*realState) (map[uint32]realCount, error) {
	ev, err := d.Events()
	if err != nil {
		return nil, err
	}
	made, changed := ev["conn_new"], ev["conn_state"]
	if d.walk.done && made == d.walk.made && changed == d.walk.changed && now < d.walk.due {
		return d.counts, nil
	}
	due, refresh := uint64(math.MaxUint64), uint64(math.MaxUint64)
	counts := make(map[uint32]realCount)
	live := make(map[lbPersistKey]bool)
	var dead []lbFlowKey
	var deadNAT []natOwner
	// The dead entries of each batch are deleted right after it is read:
	// deleted at the end of a walk of a large table (a quarter of a
	// second per million entries), a connection made again in between
	// on the same addresses and ports (a client reusing its port) would
	// be deleted with its NAT entry.
	expireRead := func() error {
		if err := d.deleteConns(dead); err != nil {
			return fmt.Errorf("expire connections: %w", err)
		}
		if err := d.deleteOwnedNAT(deadNAT); err != nil {
			return fmt.Errorf("expire nat entries: %w", err)
		}
		dead, deadNAT = dead[:0], deadNAT[:0]
		return nil
	}
	tombs := len(d.tombs)
	err = d.eachConn(func(k *lbFlowKey, v *lbConn) {
		r := reals[v.Real]
		timeout := d.timeout(v.State)
		if expired(now, v.LastNs, timeout) || r == nil || r.gen != v.Gen {
			dead = append(dead, *k)
			// the connection's server, removed or not
			owner := r
			if r == nil || r.gen != v.Gen {
				owner = d.tombs[[2]uint32{v.Real, v.Gen}]
			}
			// A SNAT binding is left to the program, which takes it over
			// once its connection is dead (snat.h): deleting it here could
			// delete it after it was given to a new connection.
			if owner != nil && owner.spec.Method == dataplane.NAT && v.Snat == 0 {
				deadNAT = append(deadNAT, natOwner{key: natKey(k, v, owner), vaddr: k.Daddr, vport: k.Dport,
					svc: v.Svc, real: v.Real, gen: v.Gen})
			}
			return
		}
		due = min(due, v.LastNs+timeout)
		c := counts[v.Real]
		if v.State == 2 {
			c.active++
		} else {
			c.inactive++
		}
		counts[v.Real] = c
		if s := byID[v.Svc]; s != nil && s.spec.Persistence > 0 {
			live[persistKey(s, k)] = true
		}
	}, expireRead)
	if err != nil {
		return nil, fmt.Errorf("walk connections: %w", err)
	}
	if err := expireRead(); err != nil { // the per-entry walk's
		return nil, err
	}
	// a whole walk has deleted the removed servers' connections and
	// their reply entries
	if tombs > 0 {
		clear(d.tombs)
	}

	var pdead []lbPersistKey
	// A live template is refreshed again before the program could take
	// it for expired: the walk after due may come a sync interval (or a
	// walk gap) later.
	margin := 2 * uint64(max(d.opts.SyncInterval, d.walk.gap))
	err = walkMap(d.objs.PersistTbl, func(pk *lbPersistKey, pv *lbPersistVal) {
		s, r := byID[pk.Svc], reals[pv.Real]
		if s == nil || r == nil || r.gen != pv.Gen {
			pdead = append(pdead, *pk)
			return
		}
		if live[*pk] {
			pv.LastNs = now
			_ = d.objs.PersistTbl.Update(pk, pv, 0)
			refresh = min(refresh, now+max(uint64(s.spec.Persistence), margin)-margin)
			due = min(due, refresh)
		} else if expired(now, pv.LastNs, uint64(s.spec.Persistence)) {
			pdead = append(pdead, *pk)
			return
		} else {
			due = min(due, pv.LastNs+uint64(s.spec.Persistence))
		}
		c := counts[pv.Real]
		c.persist++
		counts[pv.Real] = c
	})
	if err != nil {
		return nil, fmt.Errorf("walk templates: %w", err)
	}
	if err := batchDelete(d.objs.PersistTbl, pdead); err != nil {
		return nil, fmt.Errorf("expire templates: %w", err)
	}
	d.walk.done, d.walk.made, d.walk.changed, d.walk.due, d.walk.refresh = true, made, changed, due, refresh
	d.walk.walks++
	return counts, nil
}

// natOwner is the reply entry a dead NAT connection made: its key, and
// what the entry holds while it is still that connection's.
type natOwner struct {
	key            lbFlowKey
	vaddr          [16]byte
	vport          uint16
	svc, real, gen uint32
}

// deleteOwnedNAT deletes the reply entries of dead NAT connections that
// still translate for them. A client that reused its port toward another
// virtual service with the same real server and port made the same reply
// key, and the program gave the entry to the new connection (nat_store):
// deleting it with the old one would leave the new one's replies
// untranslated. One lookup per entry; a connection made on that key
// between the lookup and the batch's delete (up to walkBatch lookups
// later) still loses its entry.
func (d *Dataplane) deleteOwnedNAT(dead []natOwner) error {
	var keys []lbFlowKey
	var v lbNatRev
	for i := range dead {
		o := &dead[i]
		if err := d.objs.NatTbl.Lookup(&o.key, &v); err != nil {
			if isNotExist(err) {
				continue
			}
			return err
		}
		if v.Snat == 0 && v.Vaddr == o.vaddr && v.Vport == o.vport && v.Svc == o.svc && v.Real == o.real && v.Gen == o.gen {
			keys = append(keys, o.key)
		}
	}
	return batchDelete(d.objs.NatTbl, keys)
}

// natKey is the reply-direction key of a NAT or SNAT connection.
func natKey(k *lbFlowKey, v *lbConn, r *realState) lbFlowKey {
	a, _ := addrBytes(r.spec.Addr.Addr())
	rk := lbFlowKey{Family: k.Family, Proto: k.Proto, Sport: htons(r.spec.Addr.Port()), Dport: k.Sport, Saddr: a, Daddr: k.Saddr}
	if r.spec.Addr.Port() == 0 { // multi-port: the client's port is kept
		rk.Sport = k.Dport
	}
	if v.Snat != 0 {
		rk.Dport, rk.Daddr = v.Lport, v.Laddr
	}
	return rk
}

// eachConn hands every entry of both connection tables to fn, IPv4
// entries (conn4_tbl, 16-byte keys) converted to full flow keys. fn must
// copy what it keeps.
func (d *Dataplane) eachConn(fn func(k *lbFlowKey, v *lbConn), after ...func() error) error {
	// Batched lookups read thousands of entries per system call; the
	// per-entry iterator costs two calls per entry, which with a million
	// connections kept a core busy at every sync.
	//
	// The IPv6 table is skipped while no IPv6 service exists and the last
	// walk found no IPv6 entry: visiting its empty buckets costs as much
	// as visiting full ones.
	if !d.v6Walk() {
		return d.eachConn4(fn, after...)
	}
	v6 := false
	if err := walkMap(d.objs.ConnTbl, func(k *lbFlowKey, v *lbConn) {
		v6 = true
		fn(k, v)
	}, after...); err != nil {
		return err
	}
	d.walk.v6 = v6
	return d.eachConn4(fn, after...)
}

// v6Walk says whether eachConn visits the IPv6 table.
func (d *Dataplane) v6Walk() bool {
	if d.walk.v6 || !d.walk.done {
		return true
	}
	for k := range d.svcs {
		if k.Addr.Is6() || k.V6 {
			return true
		}
	}
	return false
}

// eachConn4 hands every entry of conn4_tbl to fn as a full flow key.
func (d *Dataplane) eachConn4(fn func(k *lbFlowKey, v *lbConn), after ...func() error) error {
	return walkMap(d.objs.Conn4Tbl, func(k4 *lbFlowKey4, v *lbConn) {
		k := fromKey4(*k4)
		fn(&k, v)
	}, after...)
}

// walkBatch is the number of entries read (or deleted) per batched
// system call. The kernel's hash-table batch lookup scans buckets without
// a rescheduling point, and kernels are often PREEMPT_NONE, so one call
// holds its CPU for its whole length: ~0.4 ms for 1024 entries, which
// showed in the director's request p99; ~30 µs for 128, at the same cost
// per entry (BenchmarkSyncWalk; docs/dataplane-xdp.md).
const walkBatch = 128

// walkMap hands every entry of m to fn, by batched lookups, or entry by
// entry on kernels without them, yielding the CPU every walkBatch
// entries either way. fn gets copies and must copy what it keeps. The
// after functions run after each batch (not entry by entry: deleting
// there could restart the kernel's key iteration).
func walkMap[K, V any](m *ebpf.Map, fn func(*K, *V), after ...func() error) error {
	keys := make([]K, walkBatch)
	vals := make([]V, walkBatch)
	var cursor ebpf.MapBatchCursor
	for first := true; ; first = false {
		n, err := m.BatchLookup(&cursor, keys, vals, nil)
		if first && n == 0 && err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			if errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
				return iterateMap(m, &keys[0], &vals[0], fn)
			}
			return fmt.Errorf("batch lookup %s: %w", m, err)
		}
		for i := 0; i < n; i++ {
			fn(&keys[i], &vals[i])
		}
		for _, a := range after {
			if err := a(); err != nil {
				return err
			}
		}
		yieldCPU()
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("batch lookup %s: %w", m, err)
		}
	}
}

// iterateMap is walkMap's per-entry path (two system calls per entry).
func iterateMap[K, V any](m *ebpf.Map, k *K, v *V, fn func(*K, *V)) error {
	it := m.Iterate()
	for i := 1; it.Next(k, v); i++ {
		fn(k, v)
		if i%walkBatch == 0 {
			yieldCPU()
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("iterate %s: %w", m, err)
	}
	return nil
}

// deleteConns removes connection entries from the table of their family.
func (d *Dataplane) deleteConns(keys []lbFlowKey) error {
	var k6 []lbFlowKey
	var k4 []lbFlowKey4
	for i := range keys {
		if keys[i].Family == 4 {
			k4 = append(k4, toKey4(&keys[i]))
		} else {
			k6 = append(k6, keys[i])
		}
	}
	return errors.Join(batchDelete(d.objs.ConnTbl, k6), batchDelete(d.objs.Conn4Tbl, k4))
}

// toKey4 and fromKey4 convert between the flow keys of conn_tbl and
// conn4_tbl (the program's key4).
func toKey4(k *lbFlowKey) lbFlowKey4 {
	k4 := lbFlowKey4{Sport: k.Sport, Dport: k.Dport, Proto: uint32(k.Proto)}
	copy(k4.Saddr[:], k.Saddr[:4])
	copy(k4.Daddr[:], k.Daddr[:4])
	return k4
}

func fromKey4(k4 lbFlowKey4) lbFlowKey {
	k := lbFlowKey{Family: 4, Proto: uint8(k4.Proto), Sport: k4.Sport, Dport: k4.Dport}
	copy(k.Saddr[:], k4.Saddr[:])
	copy(k.Daddr[:], k4.Daddr[:])
	return k
}

func batchDelete[K any](m interface {
	BatchDelete(keys any, opts *ebpf.BatchOptions) (int, error)
}, keys []K) error {
	for len(keys) > 0 {
		n := min(len(keys), walkBatch)
		done, err := m.BatchDelete(keys[:n], nil)
		switch {
		case err == nil:
		case isNotExist(err):
			// The kernel stops at the first key that is gone (evicted,
			// or removed by the program): skip it and go on with the rest.
			n = min(done+1, n)
		default:
			return err
		}
		keys = keys[n:]
		yieldCPU()
	}
	return nil
}

// yieldCPU lets a task that woke on this CPU run before the walk goes on.
// The walk is housekeeping that may take tens of ms on a big table; the
// scheduler (EEVDF, RUN_TO_PARITY) lets a running task finish its slice,
// ~1.5 ms on 2 CPUs, before a woken one preempts it, so without a yield
// a server process woken on the walk's CPU waits that long.
func yieldCPU() { _, _, _ = unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0) }

// Stats returns per-service and per-real-server counters. Connection
// counts come from the last walk of the connection table: at most a
// quarter of a second old, or up to 19 walk durations for tables so large
// that a walk takes longer than about 13 ms (see walkState); under
// dataplane.CountersOnly, as the last sync left them (up to lazyIntervals
// intervals old), the traffic counters being read live either way.
func (d *Dataplane) Stats(ctx context.Context) (dataplane.Snapshot, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return dataplane.Snapshot{}, errors.New("xdp: dataplane closed")
	}
	// the rate estimator reads the counters only: a walk of the tables
	// for it would cost 2–3 ms at 2^21 buckets every 2 s whenever new
	// connections are made
	if !dataplane.IsCountersOnly(ctx) && time.Since(d.synced) > max(250*time.Millisecond, d.walk.gap) {
		if err := d.syncLocked(); err != nil {
			return dataplane.Snapshot{}, err
		}
	}
	snap := dataplane.Snapshot{Time: time.Now()}
	svcs := d.sortedServices()
	for _, s := range svcs {
		if err := ctx.Err(); err != nil {
			return dataplane.Snapshot{}, err
		}
		c, err := d.readCounters(d.objs.StatsSvc, s.id)
		if err != nil {
			return dataplane.Snapshot{}, err
		}
		// stats_svc keeps what removed real servers counted; the
		// service's counters are that plus its real servers'.
		st := dataplane.ServiceStats{Key: s.spec.Key, Counters: c}
		all := slices.Clone(s.order)
		if s.sorry != nil {
			all = append(all, s.sorry)
		}
		for _, r := range all {
			rc, err := d.readCounters(d.statsReal(), r.id)
			if err != nil {
				return dataplane.Snapshot{}, err
			}
			st.Counters = st.Counters.Add(rc)
			n := d.counts[r.id]
			st.RealServers = append(st.RealServers, dataplane.RealServerStats{
				Addr: r.spec.Addr, Counters: rc,
				ActiveConns: n.active, InactiveConns: n.inactive, PersistConns: n.persist,
			})
		}
		snap.Services = append(snap.Services, st)
	}
	return snap, nil
}

func (d *Dataplane) sortedServices() []*service {
	out := make([]*service, 0, len(d.svcs))
	for _, s := range d.svcs {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *service) int { return int(a.id) - int(b.id) })
	return out
}

func (d *Dataplane) readCounters(m interface {
	Lookup(key, valueOut any) error
}, id uint32) (dataplane.Counters, error) {
	// the five uint64s of lbCounters, summed over CPUs: from cpu_data's
	// memory, or from a per-CPU map (stats_svc)
	var w [5]uint64
	if p, ok := m.(perCPU); ok {
		if err := p.sumWords(id, 1, len(w), w[:]); err != nil {
			return dataplane.Counters{}, fmt.Errorf("xdp: read counters: %w", err)
		}
	} else {
		var per []lbCounters
		if err := m.Lookup(id, &per); err != nil {
			return dataplane.Counters{}, fmt.Errorf("xdp: read counters: %w", err)
		}
		for _, p := range per {
			w[0], w[1], w[2], w[3], w[4] = w[0]+p.Conns, w[1]+p.Pkts, w[2]+p.Bytes, w[3]+p.OutPkts, w[4]+p.OutBytes
		}
	}
	return dataplane.Counters{Conns: w[0], InPkts: w[1], InBytes: w[2], OutPkts: w[3], OutBytes: w[4]}, nil
}

// Conns walks the connection table, then the persistence templates.
// Expired entries not yet collected are skipped.
func (d *Dataplane) Conns(ctx context.Context, fn func(dataplane.Conn) bool) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return errors.New("xdp: dataplane closed")
	}
	now := monoNow()
	byID := make(map[uint32]*service, len(d.svcs))
	reals := make(map[uint32]*realState)
	for _, s := range d.svcs {
		byID[s.id] = s
		for _, r := range s.reals {
			reals[r.id] = r
		}
	}
	// sized as the last walk's: the connection-sync sender walks every
	// round, and growing a slice of a table's worth copies it again and
	// again
	out := make([]dataplane.Conn, 0, d.connsHint)
	err := d.eachConn(func(k *lbFlowKey, v *lbConn) {
		s, r := byID[v.Svc], reals[v.Real]
		to := d.timeout(v.State)
		if s == nil || r == nil || r.gen != v.Gen || expired(now, v.LastNs, to) {
			return
		}
		c := dataplane.Conn{
			Proto:   dataplane.Proto(k.Proto),
			Client:  netip.AddrPortFrom(bytesAddr(k.Saddr, k.Family), htons(k.Sport)),
			Virtual: netip.AddrPortFrom(bytesAddr(k.Daddr, k.Family), htons(k.Dport)),
			Real:    r.spec.Addr,
			State:   stateName(v.State),
			Expires: remaining(now, v.LastNs, to),
			FWMark:  s.spec.Key.FWMark,
			Method:  r.spec.Method,
		}
		if v.Snat != 0 {
			c.Local = netip.AddrPortFrom(bytesAddr(v.Laddr, k.Family), htons(v.Lport))
		}
		out = append(out, c)
	})
	if err != nil {
		d.mu.Unlock()
		return fmt.Errorf("xdp: walk connections: %w", err)
	}
	err = walkMap(d.objs.PersistTbl, func(pk *lbPersistKey, pv *lbPersistVal) {
		s, r := byID[pk.Svc], reals[pv.Real]
		if s == nil || r == nil || r.gen != pv.Gen || expired(now, pv.LastNs, uint64(s.spec.Persistence)) {
			return
		}
		out = append(out, dataplane.Conn{
			Proto:    s.spec.Key.Proto,
			Client:   netip.AddrPortFrom(bytesAddr(pk.Addr, pk.Family), 0),
			Virtual:  netip.AddrPortFrom(s.spec.Key.Addr, s.spec.Key.Port),
			Real:     r.spec.Addr,
			State:    "NONE",
			Expires:  remaining(now, pv.LastNs, uint64(s.spec.Persistence)),
			Template: true,
			FWMark:   s.spec.Key.FWMark,
			Method:   r.spec.Method,
		})
	})
	d.connsHint = len(out) + len(out)/8
	d.mu.Unlock()
	if err != nil {
		return fmt.Errorf("xdp: walk templates: %w", err)
	}
	for _, c := range out {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !fn(c) {
			return nil
		}
	}
	return nil
}

func stateName(s uint8) string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "NONE"
}

func remaining(now, last, timeout uint64) time.Duration {
	if now < last {
		return time.Duration(timeout)
	}
	if el := now - last; el < timeout {
		return time.Duration(timeout - el)
	}
	return 0
}

// pinnedService says whether svc_cfgs entry id holds a service (a
// valid entry, within the ids the loader gives).
func pinnedService(id uint32, cfg *lbSvcCfg) bool {
	return cfg.Flags&svcFValid != 0 && id != 0 && id < maxServices
}

// adopt rebuilds the Go-side view of services and real servers from maps
// pinned by a previous process, so the first Apply updates them in place
// (same slots, same generations: established connections keep flowing).
func (d *Dataplane) adopt() error {
	byID := make(map[uint32]*service)
	var id uint32
	var cfg lbSvcCfg
	bases := make(map[uint32]uint32) // each service's run of sched_tbl
	it := d.objs.SvcCfgs.Iterate()
	for it.Next(&id, &cfg) {
		if !pinnedService(id, &cfg) {
			continue
		}
		key := dataplane.ServiceKey{Proto: dataplane.Proto(cfg.Proto), Port: cfg.Port, FWMark: cfg.Fwmark}
		if cfg.Fwmark == 0 {
			key.Addr = bytesAddr(cfg.Addr, cfg.Family)
		} else {
			key.V6 = cfg.Family == 6
		}
		s := &service{id: id, adopted: true, spec: dataplane.Service{Key: key}, reals: make(map[netip.AddrPort]*realState), tblLen: cfg.TableSize,
			// the table's layout as written: an unchanged one is updated
			// in place by the first Apply, not cleared and refilled
			layout: tableLayout{mode: cfg.Mode, bits: cfg.HashBits, size: cfg.TableSize}}
		if cfg.Flags&svcFPersist != 0 {
			// the walk keeps its templates alive and expires them by
			// this timeout until Apply brings the service's full spec
			s.spec.Persistence = time.Duration(cfg.PersistTimeout) * time.Second
			s.spec.PersistMask = int(cfg.PersistMask)
		}
		written := cfg
		s.written, s.cfgLive = &written, true
		d.svcs[key], byID[id], d.svcUsed[id] = s, s, true
		bases[id] = cfg.TblBase
		d.adoptPool(s, &cfg)
	}
	if err := it.Err(); err != nil {
		return err
	}
	var sk lbSvcKey
	sit := d.objs.Services.Iterate()
	for sit.Next(&sk, &id) {
		if s := byID[id]; s != nil {
			s.keys = append(s.keys, sk)
			d.keyOwner[sk] = id
		}
	}
	if err := sit.Err(); err != nil {
		return err
	}
	for id := uint32(1); id < maxReals; id++ {
		r, err := d.readReal(id)
		if err != nil {
			return err
		}
		// generations are never given twice, not even those of servers
		// of no adopted service
		d.gen = max(d.gen, r.Gen)
		s := byID[r.Svc]
		if r.Gen == 0 || s == nil {
			// a server whose service went (a govs stopped between the
			// two) may still serve connections until the walk deletes
			// them: no REAL_F_* mark left on it (open sets the marks
			// again only on adopted servers); a NAT one is remembered
			// for the reply entries of its connections
			if r.Gen != 0 && dataplane.Method(r.Method) == dataplane.NAT {
				if d.tombs == nil {
					d.tombs = map[[2]uint32]*realState{}
				}
				addr := netip.AddrPortFrom(bytesAddr(r.Addr, r.Family), r.Port)
				d.tombs[[2]uint32{id, r.Gen}] = &realState{id: id, gen: r.Gen, spec: dataplane.RealServer{Addr: addr, Method: dataplane.NAT}}
			}
			if r.Flags != 0 {
				r.Flags = 0
				if err := d.reals().putAll(id, &r); err != nil {
					return fmt.Errorf("clear the flags of real server slot %d: %w", id, err)
				}
			}
			continue
		}
		addr := netip.AddrPortFrom(bytesAddr(r.Addr, r.Family), r.Port)
		rs := &realState{id: id, gen: r.Gen, spec: dataplane.RealServer{Addr: addr, Method: dataplane.Method(r.Method)},
			dest: sched.NewDest(addr, 0)}
		if r.Valid != 0 {
			// the next hop it forwards with: Apply keeps it rather than
			// resolving again, which would invalidate the server if the
			// kernel's neighbour entry has aged out
			rs.nh = nexthop{ok: true, addr: addr.Addr(), ifindex: r.Ifindex, dmac: r.Dmac, smac: r.Smac, mtu: r.Mtu,
				src: bytesAddr(r.Src, r.Family)}
		}
		s.reals[addr] = rs
		d.realUsed[id] = true
	}
	// each service's scheduling table as pushed, so Apply rewrites
	// exactly what changed; a run outside sched_tbl or shared with
	// another service (a damaged pin) is not taken: the first Apply
	// moves that service's table to a run of its own
	d.slots = newSlotSpace(schedSlots)
	ids := slices.Sorted(maps.Keys(byID))
	for _, id := range ids {
		s := byID[id]
		run := extent{bases[id], s.tblLen}
		if uint64(run.base)+uint64(run.n) > schedSlots {
			d.log.Warn("pinned scheduling table outside sched_tbl: the first Apply writes it again", "service", s.spec.Key, "base", run.base, "size", run.n)
			continue
		}
		if err := d.slots.take(run); err != nil {
			d.log.Warn("pinned scheduling table overlaps another: the first Apply writes it again", "service", s.spec.Key, "err", err)
			continue
		}
		pushed, err := d.readSlots(run)
		if err != nil {
			return err
		}
		s.tbl, s.pushed = run, pushed
	}
	// a ring's run held RingSize slots, of which the whole cycles are in
	// use: the rest is taken back too (when free), so the first Apply
	// finds the ring's run as large as its layout and leaves it in place
	for _, id := range ids {
		s := byID[id]
		if n := ringCapacity(s.layout.mode, s.tblLen, d.opts.RingSize); s.tbl.n > 0 && n > s.tbl.n {
			if d.slots.take(extent{s.tbl.end(), n - s.tbl.n}) == nil {
				s.tbl.n = n
			}
		}
	}
	if len(byID) > 0 {
		d.log.Info("adopted pinned state", "services", len(byID))
	}
	return nil
}
