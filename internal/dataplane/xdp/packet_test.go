package xdp

import (
	"encoding/binary"
	"net/netip"
)

// Hand-built frames for BPF_PROG_TEST_RUN: no packet library, every
// field spelled out, checksums computed here independently of the BPF
// code.

var (
	clientMAC   = [6]byte{0x02, 0xc1, 0, 0, 0, 1}
	directorMAC = [6]byte{0x02, 0xd1, 0, 0, 0, 1}
)

const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// pkt describes one test frame.
type pkt struct {
	src, dst   netip.AddrPort
	proto      uint8 // 6, 17, 1, 58, or anything for raw
	flags      uint8 // TCP flags
	payload    []byte
	df         bool
	mf         bool
	fragOff    uint16
	ttl        uint8
	tos        uint8
	v6ext      uint8 // IPv6: insert an extension header of this type first
	etherType  uint16
	l4override []byte // raw L4 bytes (ICMP messages)
}

func csumAdd(sum uint32, b []byte) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	return sum
}

func csumFold(sum uint32) uint16 {
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

func pseudo(src, dst netip.Addr, proto uint8, length int) uint32 {
	var s uint32
	s = csumAdd(s, src.AsSlice())
	s = csumAdd(s, dst.AsSlice())
	s += uint32(proto) + uint32(length)
	return s
}

func (p pkt) l4() []byte {
	if p.l4override != nil {
		return p.l4override
	}
	switch p.proto {
	case 6:
		b := make([]byte, 20+len(p.payload))
		binary.BigEndian.PutUint16(b[0:], p.src.Port())
		binary.BigEndian.PutUint16(b[2:], p.dst.Port())
		binary.BigEndian.PutUint32(b[4:], 1000)
		binary.BigEndian.PutUint32(b[8:], 0)
		b[12] = 5 << 4
		b[13] = p.flags
		binary.BigEndian.PutUint16(b[14:], 65535)
		copy(b[20:], p.payload)
		binary.BigEndian.PutUint16(b[16:], csumFold(csumAdd(pseudo(p.src.Addr(), p.dst.Addr(), 6, len(b)), b)))
		return b
	case 17:
		b := make([]byte, 8+len(p.payload))
		binary.BigEndian.PutUint16(b[0:], p.src.Port())
		binary.BigEndian.PutUint16(b[2:], p.dst.Port())
		binary.BigEndian.PutUint16(b[4:], uint16(len(b)))
		copy(b[8:], p.payload)
		binary.BigEndian.PutUint16(b[6:], csumFold(csumAdd(pseudo(p.src.Addr(), p.dst.Addr(), 17, len(b)), b)))
		return b
	}
	return append([]byte(nil), p.payload...)
}

// ip returns the IP packet (no Ethernet header).
func (p pkt) ip() []byte {
	l4 := p.l4()
	ttl := p.ttl
	if ttl == 0 {
		ttl = 61
	}
	if p.src.Addr().Is4() {
		h := make([]byte, 20, 20+len(l4))
		h[0] = 0x45
		h[1] = p.tos
		binary.BigEndian.PutUint16(h[2:], uint16(20+len(l4)))
		binary.BigEndian.PutUint16(h[4:], 0x1234)
		frag := p.fragOff
		if p.df {
			frag |= 0x4000
		}
		if p.mf {
			frag |= 0x2000
		}
		binary.BigEndian.PutUint16(h[6:], frag)
		h[8] = ttl
		h[9] = p.proto
		copy(h[12:], p.src.Addr().AsSlice())
		copy(h[16:], p.dst.Addr().AsSlice())
		binary.BigEndian.PutUint16(h[10:], csumFold(csumAdd(0, h)))
		return append(h, l4...)
	}
	next := p.proto
	var ext []byte
	if p.v6ext != 0 {
		ext = make([]byte, 8)
		ext[0] = p.proto
		if p.v6ext == 44 { // fragment header
			binary.BigEndian.PutUint16(ext[2:], p.fragOff<<3|1)
		}
		next = p.v6ext
	}
	h := make([]byte, 40, 40+len(ext)+len(l4))
	binary.BigEndian.PutUint32(h[0:], 6<<28|uint32(p.tos)<<20)
	binary.BigEndian.PutUint16(h[4:], uint16(len(ext)+len(l4)))
	h[6] = next
	h[7] = ttl
	copy(h[8:], p.src.Addr().AsSlice())
	copy(h[24:], p.dst.Addr().AsSlice())
	return append(append(h, ext...), l4...)
}

// frame returns the Ethernet frame client → director.
func (p pkt) frame() []byte {
	et := p.etherType
	if et == 0 {
		et = 0x0800
		if p.src.Addr().Is6() {
			et = 0x86dd
		}
	}
	b := make([]byte, 14)
	copy(b[0:], directorMAC[:])
	copy(b[6:], clientMAC[:])
	binary.BigEndian.PutUint16(b[12:], et)
	return append(b, p.ip()...)
}

// icmpErr4 builds an ICMPv4 error quoting the first 28 bytes of inner.
func icmpErr4(typ, code uint8, inner []byte) []byte {
	q := inner[:min(len(inner), 28)]
	b := make([]byte, 8+len(q))
	b[0], b[1] = typ, code
	copy(b[8:], q)
	binary.BigEndian.PutUint16(b[2:], csumFold(csumAdd(0, b)))
	return b
}

// icmpErr6 builds an ICMPv6 error quoting the first 48 bytes of inner.
func icmpErr6(src, dst netip.Addr, typ, code uint8, inner []byte) []byte {
	q := inner[:min(len(inner), 48)]
	b := make([]byte, 8+len(q))
	b[0], b[1] = typ, code
	copy(b[8:], q)
	binary.BigEndian.PutUint16(b[2:], csumFold(csumAdd(pseudo(src, dst, 58, len(b)), b)))
	return b
}

// ipv4HeaderOK verifies an IPv4 header checksum.
func ipv4HeaderOK(h []byte) bool {
	ihl := int(h[0]&0x0f) * 4
	return csumFold(csumAdd(0, h[:ihl])) == 0
}
