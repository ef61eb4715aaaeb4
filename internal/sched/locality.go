package sched

import (
	"net/netip"
	"time"
)

// Constants of ip_vs_lblc.c and ip_vs_lblcr.c.
const (
	// DefaultLocalityExpiration is how long an lblc/lblcr entry lives
	// unused (DEFAULT_EXPIRATION, sysctl lblc_expiration), and how long an
	// lblcr server set must stay unchanged before its most loaded member
	// is dropped.
	DefaultLocalityExpiration = 24 * time.Hour
	// localityEntryTimeout is the idle time after which entries are
	// collected when the table holds more than localityMaxSize entries
	// (ENTRY_TIMEOUT).
	localityEntryTimeout = 6 * time.Minute
	// localityMaxSize is IP_VS_LBLC_TAB_SIZE × 16.
	localityMaxSize = 1024 * 16
	// gcBatch bounds the expired entries removed per call, so no pick
	// pays for a large sweep. IPVS runs a timer every minute instead.
	gcBatch = 8
)

// locEntry maps a destination address to scheduler state V; entries sit
// on a list ordered by last use, most recent first, so the expired ones
// are always at the tail.
type locEntry[V any] struct {
	addr       netip.Addr
	lastuse    time.Time
	val        V
	prev, next *locEntry[V]
}

// locTable is the destination-address table of lblc and lblcr. Not safe
// for concurrent use; the scheduler holds its mutex.
type locTable[V any] struct {
	m          map[netip.Addr]*locEntry[V]
	head, tail *locEntry[V]
}

func newLocTable[V any]() locTable[V] {
	return locTable[V]{m: make(map[netip.Addr]*locEntry[V])}
}

func (t *locTable[V]) get(a netip.Addr) *locEntry[V] { return t.m[a] }

func (t *locTable[V]) unlink(e *locEntry[V]) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		t.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		t.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (t *locTable[V]) pushFront(e *locEntry[V]) {
	e.next = t.head
	if t.head != nil {
		t.head.prev = e
	}
	t.head = e
	if t.tail == nil {
		t.tail = e
	}
}

// touch marks e used at now.
func (t *locTable[V]) touch(e *locEntry[V], now time.Time) {
	e.lastuse = now
	if t.head != e {
		t.unlink(e)
		t.pushFront(e)
	}
}

func (t *locTable[V]) add(a netip.Addr, v V, now time.Time) *locEntry[V] {
	e := &locEntry[V]{addr: a, lastuse: now, val: v}
	t.m[a] = e
	t.pushFront(e)
	return e
}

func (t *locTable[V]) remove(e *locEntry[V]) {
	t.unlink(e)
	delete(t.m, e.addr)
}

// expire removes up to gcBatch entries unused for exp, or, while the table
// is over its maximum size, unused for localityEntryTimeout.
func (t *locTable[V]) expire(now time.Time, exp time.Duration) {
	for range gcBatch {
		e := t.tail
		if e == nil {
			return
		}
		idle := now.Sub(e.lastuse)
		if idle < exp && (len(t.m) <= localityMaxSize || idle < localityEntryTimeout) {
			return
		}
		t.remove(e)
	}
}

// filter keeps the entries for which keep returns true.
func (t *locTable[V]) filter(keep func(*locEntry[V]) bool) {
	for e := t.head; e != nil; {
		next := e.next
		if !keep(e) {
			t.remove(e)
		}
		e = next
	}
}

func (t *locTable[V]) len() int { return len(t.m) }

// lblcOverloaded is the "is_overloaded" test of lblc and lblcr: the server
// has more active connections than its weight and some server in the
// service has fewer than half its weight.
func lblcOverloaded(d *Dest, dests []*Dest) bool {
	if d.ActiveConns() <= int64(d.Weight()) {
		return false
	}
	for _, o := range dests {
		if o.ActiveConns()*2 < int64(o.Weight()) {
			return true
		}
	}
	return false
}

func expirationOf(o Options) time.Duration {
	if o.Expiration <= 0 {
		return DefaultLocalityExpiration
	}
	return o.Expiration
}

func destSet(dests []*Dest) map[*Dest]struct{} {
	m := make(map[*Dest]struct{}, len(dests))
	for _, d := range dests {
		m[d] = struct{}{}
	}
	return m
}
