package sched

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sync/atomic"
)

// DefaultMaglevTableSize is the default mh lookup table size M: 4093,
// the table of a stock kernel's ip_vs_mh (primes[CONFIG_IP_VS_MH_TAB_INDEX
// - 8], the option's default 12), the size a keepalived.conf (which
// cannot set M) gets from IPVS. The kernel fills its table from its list
// of servers, newest first (list_add_rcu at the head), and so does the
// scheduler for servers added in config order (kernelOrder). Maglev (NSDI'16 §3.4) suggests M > 100·N for even
// shares: with more than about 40 servers, or for finer weights, set
// mh_table_size (65537 is Maglev's, Katran's and Envoy's).
const DefaultMaglevTableSize = 4093

// The fixed hsiphash keys of ip_vs_mh.c (generate_hash_secret). Every
// director computes the same table from the same servers.
const (
	mhKey1 = 2654435761
	mhKey2 = 2654446892
)

// mhTabBits is IP_VS_MH_TAB_BITS (CONFIG_IP_VS_MH_TAB_INDEX 12 / 2):
// weight/gcd is shifted right until it fits in this many bits, so no
// server takes more than 63 slots per turn.
const mhTabBits = 6

// mh: Maglev hashing (ip_vs_mh.c, after Eisenbud et al., NSDI'16 §3.4).
// Each server gets a permutation of the table slots from two hashes of its
// address and port (offset and skip); the servers take turns claiming
// their next free preferred slot until the table is full. Weights are
// honoured the IPVS way: a server claims (weight/gcd)>>shift slots per
// turn, where shift keeps the largest turn under 64. The weight used is
// the last non-zero one (Dest.LastWeight), so quiescing a server (weight 0)
// does not rebuild the table: its slots stay, and lookups landing there
// yield nil, or with mh-fallback the next available server found by
// re-hashing with increasing offsets.
//
// The client address (and source port with mh-port) is hashed with the
// kernel's hsiphash and fixed keys, so for M = 4093 or 8191 (where the
// weights' shift is the kernel's) the table is the one a 64-bit Linux
// builds from the same servers in the same order — the kernel's order is
// its list's, newest first (DefaultMaglevTableSize).
type mh struct {
	flags Flags
	size  int
	t     atomic.Pointer[[]*Dest]
}

func newMH(o Options) (Scheduler, error) {
	m := o.TableSize
	if m == 0 {
		m = DefaultMaglevTableSize
	}
	if err := checkTableSize(m); err != nil {
		return nil, err
	}
	s := &mh{flags: o.Flags, size: m}
	empty := make([]*Dest, m)
	s.t.Store(&empty)
	return s, nil
}

func checkTableSize(m int) error {
	if m < 2 || m > 1<<24 {
		return fmt.Errorf("maglev table size %d out of range 2..%d", m, 1<<24)
	}
	for d := 2; d*d <= m; d++ {
		if m%d == 0 {
			return fmt.Errorf("maglev table size %d is not prime", m)
		}
	}
	return nil
}

func (s *mh) Name() string { return "mh" }

// Update rebuilds the table from dests in the order of the kernel's
// list of them (kernelOrder).
func (s *mh) Update(dests []*Dest) {
	t, err := MaglevTable(kernelOrder(dests), s.size)
	if err != nil {
		// More servers than slots: IPVS refuses the change (-EINVAL);
		// keep serving from the previous table.
		return
	}
	s.t.Store(&t)
}

// kernelOrder is dests (in config order) in the order of the list of
// servers an IPVS service holds once keepalived has added them, which
// ip_vs_mh walks to fill its table: ip_vs_ctl adds a server at the head
// of the list (list_add_rcu), and keepalived adds them in config order,
// so the list is the reverse. It depends on dests alone, so every govs
// director given the same servers builds the same table. The kernel's
// list also keeps a history govs does not: a server removed after a
// failed check (without inhibit_on_failure) and added again moves to its
// front, where here it goes back to its place.
func kernelOrder(dests []*Dest) []*Dest {
	r := slices.Clone(dests)
	slices.Reverse(r)
	return r
}

// mhKey is the 32-bit value mh hashes for a flow: the client source
// port (with mh-port, TCP/UDP/SCTP only, else 0) plus the folded client
// address, modulo 2^32.
func mhKey(f Flow, port bool) uint32 {
	var p uint16
	if port {
		p = srcPort(f)
	}
	return uint32(p) + addrFold(f.Src.Addr())
}

// MaglevSlot is the index in an mh table of size m that flow f hashes to
// (before any fallback): hsiphash(key) mod m, key as in the package
// documentation. A dataplane holding the table (a BPF map) can check its
// own hashing against it.
func MaglevSlot(f Flow, port bool, m int) int {
	return int(hsiphash32(mhKey(f, port), mhKey1, mhKey1) % uint32(m))
}

func (s *mh) Pick(f Flow) *Dest {
	t := *s.t.Load()
	key := mhKey(f, s.flags.Port)
	m := uint32(len(t))
	ihash := hsiphash32(key, mhKey1, mhKey1) % m
	d := t[ihash]
	if d == nil {
		return nil
	}
	if d.Available() {
		return d
	}
	if !s.flags.Fallback {
		return nil
	}
	for off := uint32(0); off < m; off++ {
		roff := (off + ihash) % m
		d = t[hsiphash32(roff+key, mhKey1, mhKey1)%m]
		if d == nil {
			return nil
		}
		if d.Available() {
			return d
		}
	}
	return nil
}

// ErrTableTooSmall is returned by MaglevTable when there are more servers
// than table slots.
var ErrTableTooSmall = errors.New("more servers than maglev table slots")

// MaglevTable builds the mh lookup table of size m (which should be prime)
// for dests in order, as ip_vs_mh.c does: slot i holds the server flows
// hashing to i go to, nil when no server has a non-zero last weight. It is
// exported so dataplanes (the XDP maps) can load the very table the
// userspace scheduler uses.
func MaglevTable(dests []*Dest, m int) ([]*Dest, error) {
	if len(dests) > m {
		return nil, ErrTableTooSmall
	}
	table := make([]*Dest, m)
	g, maxw := 0, 0
	for _, d := range dests {
		if w := d.LastWeight(); w > 0 {
			g = gcd(w, g)
			maxw = max(maxw, w)
		}
	}
	if g < 1 {
		return table, nil
	}
	shift := max(bits.Len(uint(maxw/g))-mhTabBits, 0)

	type setup struct {
		perm, skip uint32
		turns      int
	}
	ds := make([]setup, len(dests))
	mm := uint32(m)
	for i, d := range dests {
		key := uint32(d.Addr.Port()) + addrFold(d.Addr.Addr())
		offset := hsiphash32(key, mhKey1, mhKey1) % mm
		skip := hsiphash32(key, mhKey2, mhKey2)%(mm-1) + 1
		lw := d.LastWeight()
		turns := (lw / g) >> shift
		if turns == 0 && lw != 0 {
			turns = 1
		}
		ds[i] = setup{perm: offset, skip: skip, turns: turns}
	}

	taken := make([]bool, m) // measured faster than a bitmap here
	n := 0
	for n < m {
		for i := range ds {
			s := &ds[i]
			for range s.turns {
				c := s.perm
				for taken[c] {
					s.perm += s.skip
					if s.perm >= mm {
						s.perm -= mm
					}
					c = s.perm
				}
				taken[c] = true
				table[c] = dests[i]
				if n++; n == m {
					return table, nil
				}
			}
		}
	}
	return table, nil
}
