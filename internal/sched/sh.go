package sched

import (
	"fmt"
	"sync/atomic"
)

// hashTable is the bucket table of sh and dh: 1<<bits slots, each holding
// a server. It is immutable once built; Update swaps in a new one.
type hashTable struct {
	bits    uint
	buckets []*Dest
}

func tableBits(o Options) (uint, error) {
	switch {
	case o.HashBits == 0:
		return 8, nil
	case o.HashBits < 1 || o.HashBits > 20:
		return 0, fmt.Errorf("hash table bits %d out of range 1..20", o.HashBits)
	}
	return uint(o.HashBits), nil
}

// sh: source hashing (ip_vs_sh.c). A 256-bucket table (Options.HashBits)
// is filled by walking the servers in order, giving each as many
// consecutive buckets as its weight (a weight-0 server still gets one),
// round after round until the table is full. The client address (and
// source port with sh-port) hashed with Linux hash_32 selects the bucket.
// An unavailable server yields nil, or with sh-fallback the first
// available one found by re-hashing with offsets 0, 1, 2, ...
//
// Weights are read when the table is built: after SetWeight call Update
// (IPVS rebuilds the table on every server change too). Availability is
// read live.
type sh struct {
	flags Flags
	bits  uint
	t     atomic.Pointer[hashTable]
}

func newSH(o Options) (Scheduler, error) {
	b, err := tableBits(o)
	if err != nil {
		return nil, err
	}
	s := &sh{flags: o.Flags, bits: b}
	s.t.Store(&hashTable{bits: b, buckets: make([]*Dest, 1<<b)})
	return s, nil
}

func (s *sh) Name() string { return "sh" }

func (s *sh) Update(dests []*Dest) {
	t := &hashTable{bits: s.bits, buckets: make([]*Dest, 1<<s.bits)}
	if len(dests) > 0 {
		p, count := 0, 0
		for i := range t.buckets {
			d := dests[p]
			t.buckets[i] = d
			if count++; count >= d.Weight() {
				p, count = (p+1)%len(dests), 0
			}
		}
	}
	s.t.Store(t)
}

func (s *sh) Pick(f Flow) *Dest {
	var port uint16
	if s.flags.Port {
		port = srcPort(f)
	}
	return s.t.Load().get(uint32(port)+addrFold(f.Src.Addr()), s.flags.Fallback)
}

// get returns the server of the bucket key hashes to, if available; with
// fallback it walks offsets from the original hash as ip_vs_sh does.
func (t *hashTable) get(key uint32, fallback bool) *Dest {
	mask := uint32(len(t.buckets) - 1)
	ihash := hash32(key, t.bits) & mask
	d := t.buckets[ihash]
	if d == nil {
		return nil
	}
	if d.Available() {
		return d
	}
	if !fallback {
		return nil
	}
	for off := uint32(0); off <= mask; off++ {
		roff := (off + ihash) & mask
		d = t.buckets[(roff+hash32(key, t.bits))&mask]
		if d == nil {
			return nil
		}
		if d.Available() {
			return d
		}
	}
	return nil
}
