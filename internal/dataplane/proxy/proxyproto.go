package proxy

import (
	"encoding/binary"
	"net/netip"
	"strconv"

	"github.com/govs/govs/internal/dataplane"
)

// proxyV2Sig is the 12-byte signature that starts a PROXY protocol v2
// header (haproxy doc/proxy-protocol.txt, section 2.2).
var proxyV2Sig = [12]byte{0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A}

// proxyHeader encodes a PROXY protocol header of version 1 (text) or 2
// (binary) announcing a connection from src to dst. Both addresses must
// be of one family (the proxy accepts on dst, so they are).
//
// v1: "PROXY TCP4 <src> <dst> <sport> <dport>\r\n" (TCP6 for IPv6).
// v2: signature, 0x21 (version 2, command PROXY), family/transport byte
// (0x11 TCP/IPv4, 0x21 TCP/IPv6, 0x12 UDP/IPv4, 0x22 UDP/IPv6), a
// big-endian length, then source address, destination address, source
// port and destination port in network byte order.
func proxyHeader(version int, proto dataplane.Proto, src, dst netip.AddrPort) []byte {
	v6 := src.Addr().Is6() && !src.Addr().Is4In6()
	s, d := src.Addr().Unmap(), dst.Addr().Unmap()
	if version == 1 {
		fam := "TCP4"
		if v6 {
			fam = "TCP6"
		}
		b := make([]byte, 0, 108) // the v1 maximum
		b = append(b, "PROXY "...)
		b = append(b, fam...)
		b = append(b, ' ')
		b = s.AppendTo(b)
		b = append(b, ' ')
		b = d.AppendTo(b)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(src.Port()), 10)
		b = append(b, ' ')
		b = strconv.AppendUint(b, uint64(dst.Port()), 10)
		return append(b, '\r', '\n')
	}
	fam := byte(0x10) // AF_INET
	alen := 12
	if v6 {
		fam = 0x20 // AF_INET6
		alen = 36
	}
	if proto == dataplane.UDP {
		fam |= 0x2 // DGRAM
	} else {
		fam |= 0x1 // STREAM
	}
	b := make([]byte, 0, 16+alen)
	b = append(b, proxyV2Sig[:]...)
	b = append(b, 0x21, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(alen))
	if v6 {
		s16, d16 := s.As16(), d.As16()
		b = append(b, s16[:]...)
		b = append(b, d16[:]...)
	} else {
		s4, d4 := s.As4(), d.As4()
		b = append(b, s4[:]...)
		b = append(b, d4[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, src.Port())
	b = binary.BigEndian.AppendUint16(b, dst.Port())
	return b
}
