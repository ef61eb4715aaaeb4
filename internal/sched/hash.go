package sched

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// goldenRatio32 is the Linux hash_32 multiplier (include/linux/hash.h).
const goldenRatio32 = 0x61C88647

// hash32 is Linux hash_32(val, bits): the top bits of val × golden ratio.
func hash32(val uint32, nbits uint) uint32 {
	return (val * goldenRatio32) >> (32 - nbits)
}

// addrFold is the 32-bit value IPVS hashes an address by: the IPv4
// address as a number, or the XOR of the four 32-bit words of an IPv6
// address. IPv4-mapped IPv6 addresses fold as IPv4.
func addrFold(a netip.Addr) uint32 {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return binary.BigEndian.Uint32(b[:])
	}
	b := a.As16()
	return binary.BigEndian.Uint32(b[0:4]) ^ binary.BigEndian.Uint32(b[4:8]) ^
		binary.BigEndian.Uint32(b[8:12]) ^ binary.BigEndian.Uint32(b[12:16])
}

// srcPort is the client port sh-port and mh-port hash: the source port
// for TCP, UDP and SCTP, 0 for anything else (ip_vs_sh_get_port).
func srcPort(f Flow) uint16 {
	switch f.Proto {
	case TCP, UDP, SCTP:
		return f.Src.Port()
	}
	return 0
}

// sipState is the SipHash state; round is one SipRound.
type sipState struct{ v0, v1, v2, v3 uint64 }

func newSipState(k0, k1 uint64) sipState {
	return sipState{
		v0: 0x736f6d6570736575 ^ k0,
		v1: 0x646f72616e646f6d ^ k1,
		v2: 0x6c7967656e657261 ^ k0,
		v3: 0x7465646279746573 ^ k1,
	}
}

func (s *sipState) round() {
	s.v0 += s.v1
	s.v1 = bits.RotateLeft64(s.v1, 13)
	s.v1 ^= s.v0
	s.v0 = bits.RotateLeft64(s.v0, 32)
	s.v2 += s.v3
	s.v3 = bits.RotateLeft64(s.v3, 16)
	s.v3 ^= s.v2
	s.v0 += s.v3
	s.v3 = bits.RotateLeft64(s.v3, 21)
	s.v3 ^= s.v0
	s.v2 += s.v1
	s.v1 = bits.RotateLeft64(s.v1, 17)
	s.v1 ^= s.v2
	s.v2 = bits.RotateLeft64(s.v2, 32)
}

// hsiphash32 is the Linux kernel's hsiphash of one 32-bit value on 64-bit
// machines, where HalfSipHash-1-3 is implemented as SipHash-1-3
// (lib/siphash.c): the value and the length (4) form the only message
// block, one compression round, three finalisation rounds, the result
// truncated to 32 bits. It lets the mh table equal the one a 64-bit
// kernel's ip_vs_mh builds from the same servers in the same order.
func hsiphash32(v uint32, k0, k1 uint64) uint32 {
	s := newSipState(k0, k1)
	b := uint64(4)<<56 | uint64(v)
	s.v3 ^= b
	s.round()
	s.v0 ^= b
	s.v2 ^= 0xff
	s.round()
	s.round()
	s.round()
	return uint32(s.v0 ^ s.v1 ^ s.v2 ^ s.v3)
}
