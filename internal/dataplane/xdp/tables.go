package xdp

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
	"strings"

	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/sched"
)

// Scheduling in BPF. Every service owns a table of slots, each naming a
// real server (or none). The program turns a new flow into a slot and the
// Go side fills the slots from internal/sched, so both share one
// definition of every scheduler:
//
//   - sh, dh: slot = Linux hash_32(key, 8) of the client (sh, plus the
//     source port with sh-port) or virtual (dh) address, as ip_vs_sh/dh.
//     Slot b is filled with sched's Pick for a representative flow whose
//     key hashes to b, so the choice per flow is exactly sched's
//     (fallback included: it depends on the bucket only).
//   - mh: slot = hsiphash(key) mod M as ip_vs_mh; slot b is filled with
//     sched's Pick for a representative key that lands in b. Exact while
//     the slot's server is available; with mh-fallback the fallback server
//     is the representative's.
//   - every other scheduler (rr, wrr, lc, wlc, sed, nq, fo, ovf, twos,
//     lblc, lblcr): a ring of RingSize slots walked by a per-CPU cursor.
//     The ring is the sequence of choices sched would make for the next
//     RingSize new connections, simulated from the live active/inactive
//     counts; it is recomputed every SyncInterval.

// BPF scheduling modes (enum sched_mode in bpf/lb.h).
const (
	modeCursor  = 0
	modeHashSrc = 1
	modeHashDst = 2
	modeHashMH  = 3
)

// goldenRatio32 is the multiplier of Linux hash_32.
const goldenRatio32 = 0x61C88647

// goldenInverse is the multiplicative inverse of goldenRatio32 mod 2^32.
var goldenInverse = inverse32(goldenRatio32)

// inverse32 returns the inverse of the odd number a modulo 2^32 (Newton).
func inverse32(a uint32) uint32 {
	x := a // correct to 3 bits for odd a
	for range 5 {
		x *= 2 - a*x
	}
	return x
}

// tableLayout is how one service's table is indexed.
type tableLayout struct {
	mode uint8
	bits uint32 // hash_32 bits for sh/dh
	size uint32
}

func (l tableLayout) hashed() bool { return l.mode != modeCursor }

// layoutFor returns the table layout of a service's scheduler.
func layoutFor(s dataplane.Service, ringSize int) (tableLayout, error) {
	switch strings.ToLower(s.Scheduler) {
	case "sh":
		return tableLayout{mode: modeHashSrc, bits: 8, size: 256}, nil
	case "dh":
		return tableLayout{mode: modeHashDst, bits: 8, size: 256}, nil
	case "mh":
		m := s.MHTableSize
		if m == 0 {
			m = sched.DefaultMaglevTableSize
		}
		return tableLayout{mode: modeHashMH, size: uint32(m)}, nil
	case "", "rr", "wrr", "lc", "wlc", "sed", "nq", "fo", "ovf", "twos", "lblc", "lblcr":
		return tableLayout{mode: modeCursor, size: uint32(ringSize)}, nil
	}
	return tableLayout{}, fmt.Errorf("scheduler %q not supported by the xdp dataplane", s.Scheduler)
}

// schedOptions maps a service's scheduler flags to sched.Options.
func schedOptions(s dataplane.Service) sched.Options {
	var o sched.Options
	for _, f := range s.SchedFlags {
		switch strings.ToLower(f) {
		case "sh-fallback", "mh-fallback", "flag-1":
			o.Flags.Fallback = true
		case "sh-port", "mh-port", "flag-2":
			o.Flags.Port = true
		}
	}
	o.TableSize = s.MHTableSize
	return o
}

// hashPort reports whether the source port is part of the hash key.
func hashPort(s dataplane.Service) bool { return schedOptions(s).Flags.Port }

// mhHash is the kernel's hsiphash of one 32-bit value on 64-bit machines
// (SipHash-1-3 over one 8-byte block, truncated) with ip_vs_mh's fixed
// keys; it must equal mh_hash in bpf/lb.c.
func mhHash(v uint32) uint32 {
	const k = 2654435761
	v0 := uint64(0x736f6d6570736575) ^ k
	v1 := uint64(0x646f72616e646f6d) ^ k
	v2 := uint64(0x6c7967656e657261) ^ k
	v3 := uint64(0x7465646279746573) ^ k
	b := uint64(4)<<56 | uint64(v)
	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13) ^ v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16) ^ v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21) ^ v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17) ^ v2
		v2 = bits.RotateLeft64(v2, 32)
	}
	v3 ^= b
	round()
	v0 ^= b
	v2 ^= 0xff
	round()
	round()
	round()
	return uint32(v0 ^ v1 ^ v2 ^ v3)
}

// slotOf is the slot the BPF program computes for hash key x.
func (l tableLayout) slotOf(x uint32) uint32 {
	if l.mode == modeHashMH {
		return mhHash(x) % l.size
	}
	return (x * goldenRatio32) >> (32 - l.bits)
}

// representatives returns, for every slot of a hashed layout, a key that
// lands in it. For hash_32 the key is computed by inverting the
// multiplication; for mh it is found by search (about M·ln M hashes).
func (l tableLayout) representatives() ([]uint32, error) {
	reps := make([]uint32, l.size)
	if l.mode != modeHashMH {
		for b := range reps {
			reps[b] = (uint32(b) << (32 - l.bits)) * goldenInverse
		}
		return reps, nil
	}
	found := make([]bool, l.size)
	left := int(l.size)
	limit := uint64(l.size) * 64
	for x := uint64(1); left > 0 && x < limit; x++ {
		s := mhHash(uint32(x)) % l.size
		if !found[s] {
			found[s], reps[s] = true, uint32(x)
			left--
		}
	}
	if left > 0 {
		return nil, fmt.Errorf("no representative key for %d of %d maglev slots", left, l.size)
	}
	return reps, nil
}

// repAddr is an address whose IPVS fold is x, in the service's family.
func repAddr(x uint32, v6 bool) netip.Addr {
	if v6 {
		var b [16]byte
		binary.BigEndian.PutUint32(b[12:], x)
		return netip.AddrFrom16(b)
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], x)
	return netip.AddrFrom4(b)
}

// fillHashed returns the destination of every slot of a hashed layout.
func fillHashed(l tableLayout, reps []uint32, s sched.Scheduler, proto uint8, vip netip.AddrPort, v6 bool) []*sched.Dest {
	out := make([]*sched.Dest, l.size)
	for b, x := range reps {
		a := repAddr(x, v6)
		f := sched.Flow{Proto: proto, Src: netip.AddrPortFrom(a, 0), Dst: vip}
		if l.mode == modeHashDst {
			f.Dst = netip.AddrPortFrom(a, vip.Port())
		}
		out[b] = s.Pick(f)
	}
	return out
}

// fillRing simulates the next n new connections: each pick is counted as
// an opened connection while the ring is built, so least-connection
// schedulers and thresholds see the ring's own load, then the counts are
// restored. Simulated connections count as active: within a sync
// interval a new TCP connection is established after one round trip, and
// counting them inactive would let lc/wlc (active×256) and sed/nq (active
// only) send a whole ring to one server.
func fillRing(n int, s sched.Scheduler, dests []*sched.Dest, proto uint8, vip netip.AddrPort, v6 bool) []*sched.Dest {
	if p := ringPeriod(s.Name(), dests); p > 0 && p <= n {
		n -= n % p
	}
	out := make([]*sched.Dest, n)
	client := netip.AddrPortFrom(repAddr(1, v6), 0)
	// the simulated connections must not leave a server overloaded
	// (the threshold rule keeps an overload until the count falls to
	// the lower threshold, which closing them does not undo)
	was := make([]bool, len(dests))
	for i, d := range dests {
		was[i] = d.Overloaded()
	}
	defer func() {
		for i, d := range dests {
			d.RestoreOverload(was[i])
		}
	}()
	for i := range out {
		d := s.Pick(sched.Flow{Proto: proto, Src: client, Dst: vip})
		out[i] = d
		if d != nil {
			d.ConnOpened(true)
		}
	}
	for _, d := range out {
		if d != nil {
			d.ConnClosed(true)
		}
	}
	return out
}

// ringPeriod is the length of one full cycle of rr and wrr over the
// available servers (0 when unknown), so the ring holds whole cycles.
func ringPeriod(name string, dests []*sched.Dest) int {
	switch name {
	case "rr":
		n := 0
		for _, d := range dests {
			if d.Available() {
				n++
			}
		}
		return n
	case "wrr":
		g, sum := 0, 0
		for _, d := range dests {
			if d.Available() {
				g = gcd(g, d.Weight())
			}
		}
		if g == 0 {
			return 0
		}
		for _, d := range dests {
			if d.Available() {
				sum += d.Weight() / g
			}
		}
		return sum
	}
	return 0
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
