package sched

import "sync/atomic"

// dh: destination hashing (ip_vs_dh.c). Like sh but keyed by the
// destination address the client asked for (useful for cache clusters
// behind a firewall mark), and the table ignores weights: the servers take
// one bucket each in turn. An unavailable server yields nil.
type dh struct {
	bits uint
	t    atomic.Pointer[hashTable]
}

func newDH(o Options) (Scheduler, error) {
	b, err := tableBits(o)
	if err != nil {
		return nil, err
	}
	s := &dh{bits: b}
	s.t.Store(&hashTable{bits: b, buckets: make([]*Dest, 1<<b)})
	return s, nil
}

func (s *dh) Name() string { return "dh" }

func (s *dh) Update(dests []*Dest) {
	t := &hashTable{bits: s.bits, buckets: make([]*Dest, 1<<s.bits)}
	if len(dests) > 0 {
		for i := range t.buckets {
			t.buckets[i] = dests[i%len(dests)]
		}
	}
	s.t.Store(t)
}

func (s *dh) Pick(f Flow) *Dest {
	return s.t.Load().get(addrFold(f.Dst.Addr()), false)
}
