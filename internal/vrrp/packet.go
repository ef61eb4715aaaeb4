package vrrp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"
)

// IPProto is the IP protocol number of VRRP.
const IPProto = 112

// TTL is the only TTL / hop limit a valid advert may carry (RFC 5798 §5.1.1.3).
const TTL = 255

const (
	headerLen   = 8
	authDataLen = 8
	typeAdvert  = 1
	// AuthNone, AuthPass and AuthAH are the VRRPv2 authentication types
	// (RFC 2338).
	AuthNone = 0
	AuthPass = 1
	AuthAH   = 2
)

// Advert is a decoded VRRP advertisement.
type Advert struct {
	Version  int
	VRID     uint8
	Priority uint8
	// Interval is in wire units: seconds for v2, centiseconds for v3.
	Interval uint16
	// AuthType and AuthData are VRRPv2 only.
	AuthType uint8
	AuthData [authDataLen]byte
	Addrs    []netip.Addr
	// ChecksumDst, when set, stands for the destination in the VRRPv3
	// checksum's pseudo-header (keepalived's old unicast checksum: the
	// multicast group instead of the peer). Not on the wire.
	ChecksumDst netip.Addr
}

// IntervalDuration returns the advertisement interval as a duration.
func (a *Advert) IntervalDuration() time.Duration {
	if a.Version == 2 {
		return time.Duration(a.Interval) * time.Second
	}
	return time.Duration(a.Interval) * 10 * time.Millisecond
}

// DropReason says why a received packet was discarded. The values are
// bounded and used as metric labels.
type DropReason string

// Reasons a packet is dropped.
const (
	DropShort     DropReason = "short"
	DropLength    DropReason = "length"
	DropVersion   DropReason = "version"
	DropType      DropReason = "type"
	DropChecksum  DropReason = "checksum"
	DropTTL       DropReason = "ttl"
	DropVRID      DropReason = "vrid"
	DropAuth      DropReason = "auth"      // a wrong password or AH digest
	DropAuthType  DropReason = "auth_type" // another kind of authentication
	DropInterval  DropReason = "interval"
	DropFamily    DropReason = "family"
	DropOwnPacket DropReason = "own_packet"
	DropPeer      DropReason = "unknown_peer"
	DropReplay    DropReason = "replay" // an AH sequence number seen before
	// DropDestination: sent to a multicast group while the instance is
	// unicast, or to a unicast address while it is multicast
	DropDestination DropReason = "destination"
)

// ParseError is returned for a malformed or unacceptable advertisement.
type ParseError struct {
	Reason DropReason
	Msg    string
}

func (e *ParseError) Error() string { return "vrrp: " + string(e.Reason) + ": " + e.Msg }

func perr(r DropReason, format string, args ...any) error {
	return &ParseError{Reason: r, Msg: fmt.Sprintf(format, args...)}
}

// Marshal encodes the advert. For VRRPv3 the checksum covers the IP
// pseudo-header built from src and dst (RFC 5798 §5.2.8); for VRRPv2 it
// covers the VRRP message only and src/dst are ignored.
func (a *Advert) Marshal(src, dst netip.Addr) ([]byte, error) {
	v6 := src.Is6() && !src.Is4In6()
	if a.Version != 2 && a.Version != 3 {
		return nil, fmt.Errorf("marshal advert: version %d", a.Version)
	}
	if a.Version == 2 && v6 {
		return nil, fmt.Errorf("marshal advert: VRRPv2 over IPv6")
	}
	if len(a.Addrs) > 255 {
		return nil, fmt.Errorf("marshal advert: %d addresses", len(a.Addrs))
	}
	alen := 4
	if v6 {
		alen = 16
	}
	n := headerLen + alen*len(a.Addrs)
	if a.Version == 2 {
		n += authDataLen
	}
	b := make([]byte, n)
	b[0] = byte(a.Version<<4 | typeAdvert)
	b[1] = a.VRID
	b[2] = a.Priority
	b[3] = byte(len(a.Addrs))
	if a.Version == 2 {
		if a.Interval > 255 {
			return nil, fmt.Errorf("marshal advert: v2 interval %d", a.Interval)
		}
		b[4] = a.AuthType
		b[5] = byte(a.Interval)
	} else {
		if a.Interval > maxAdvertCentiseconds {
			return nil, fmt.Errorf("marshal advert: v3 interval %d", a.Interval)
		}
		binary.BigEndian.PutUint16(b[4:], a.Interval)
	}
	off := headerLen
	for _, ip := range a.Addrs {
		// An IPv6 advert's 16-byte field may hold an IPv4-mapped address
		// (ParseAdvert keeps what a peer sent); an IPv4 one takes IPv4
		// addresses, mapped or not.
		ok := ip.Is4() || ip.Is4In6()
		if alen == 16 {
			ok = ip.Is6()
		}
		if !ok {
			return nil, fmt.Errorf("marshal advert: address %s in wrong family", ip)
		}
		if alen == 4 {
			v := ip.As4()
			copy(b[off:], v[:])
		} else {
			v := ip.As16()
			copy(b[off:], v[:])
		}
		off += alen
	}
	if a.Version == 2 {
		copy(b[off:], a.AuthData[:])
	}
	var sum uint16
	if a.Version == 3 {
		if a.ChecksumDst.IsValid() {
			dst = a.ChecksumDst
		}
		sum = checksum(b, pseudoHeaderSum(src, dst, len(b)))
	} else {
		sum = checksum(b, 0)
	}
	binary.BigEndian.PutUint16(b[6:], sum)
	return b, nil
}

// ParseAdvert decodes and checks one VRRP message (the IP payload). v6
// says which address family the packet came in on; src and dst are the IP
// header's addresses, needed to verify a VRRPv3 checksum. When
// skipChecksum is set the checksum was already verified by the kernel
// (IPV6_CHECKSUM).
func ParseAdvert(b []byte, v6 bool, src, dst netip.Addr, skipChecksum bool) (Advert, error) {
	var a Advert
	if len(b) < headerLen {
		return a, perr(DropShort, "%d bytes", len(b))
	}
	a.Version = int(b[0] >> 4)
	if typ := b[0] & 0x0f; typ != typeAdvert {
		return a, perr(DropType, "type %d", typ)
	}
	if a.Version != 2 && a.Version != 3 {
		return a, perr(DropVersion, "version %d", a.Version)
	}
	if a.Version == 2 && v6 {
		return a, perr(DropFamily, "VRRPv2 over IPv6")
	}
	a.VRID = b[1]
	a.Priority = b[2]
	count := int(b[3])
	alen := 4
	if v6 {
		alen = 16
	}
	want := headerLen + count*alen
	if a.Version == 2 {
		a.AuthType = b[4]
		a.Interval = uint16(b[5])
		want += authDataLen
	} else {
		a.Interval = binary.BigEndian.Uint16(b[4:]) & 0x0fff
	}
	if len(b) != want {
		return a, perr(DropLength, "%d bytes for %d addresses, want %d", len(b), count, want)
	}
	if a.Interval == 0 {
		return a, perr(DropInterval, "zero advertisement interval")
	}
	if !skipChecksum {
		var init uint32
		if a.Version == 3 {
			if !src.IsValid() || !dst.IsValid() {
				return a, perr(DropChecksum, "no addresses for the pseudo-header")
			}
			init = pseudoHeaderSum(src, dst, len(b))
		}
		if checksum(b, init) != 0 {
			return a, perr(DropChecksum, "bad checksum %#04x", binary.BigEndian.Uint16(b[6:]))
		}
	}
	a.Addrs = make([]netip.Addr, 0, count)
	off := headerLen
	for range count {
		ip, _ := netip.AddrFromSlice(b[off : off+alen])
		a.Addrs = append(a.Addrs, ip)
		off += alen
	}
	if a.Version == 2 {
		copy(a.AuthData[:], b[off:])
	}
	return a, nil
}

// pseudoHeaderSum returns the unfolded one's-complement sum of the IPv4 or
// IPv6 pseudo-header for protocol 112.
func pseudoHeaderSum(src, dst netip.Addr, length int) uint32 {
	var s uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			s += uint32(b[i])<<8 | uint32(b[i+1])
		}
	}
	if src.Is4() || src.Is4In6() {
		a, d := src.Unmap().As4(), dst.Unmap().As4()
		add(a[:])
		add(d[:])
		s += IPProto
		s += uint32(length)
		return s
	}
	a, d := src.As16(), dst.As16()
	add(a[:])
	add(d[:])
	s += uint32(length >> 16)
	s += uint32(length & 0xffff)
	s += IPProto
	return s
}

// checksum computes the Internet checksum of b, starting from init.
func checksum(b []byte, init uint32) uint16 {
	s := init
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// authPassData returns the 8-byte VRRPv2 PASS authentication field.
func authPassData(pass string) [authDataLen]byte {
	var d [authDataLen]byte
	copy(d[:], pass)
	return d
}
