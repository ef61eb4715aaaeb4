package vrrp

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"net/netip"
	"time"
)

// VRRPv2 over IPsec AH (auth_type AH), as keepalived sends it: an IPv4
// header of protocol 51, an AH header (next header 112, payload length 4,
// SPI = the source address, a sequence number) whose ICV is HMAC-MD5
// truncated to 96 bits and keyed with auth_pass (8 bytes, zero padded),
// then the VRRP packet with authentication type 2 and zero
// authentication data.

const (
	protoAH = 51
	ahLen   = 24 // AH header with a 96-bit ICV
	icvLen  = 12
)

// ahICV computes the ICV over the IPv4 header with its mutable fields
// zeroed (TOS, flags and fragment offset, checksum, and the TTL for
// unicast, which routers may change), the AH header with a zero ICV, and
// the VRRP packet.
func ahICV(key [authDataLen]byte, iphdr, ah, vrrp []byte, unicast bool) [icvLen]byte {
	h := append([]byte(nil), iphdr...)
	h[1] = 0
	h[6], h[7] = 0, 0
	h[10], h[11] = 0, 0
	if unicast {
		h[8] = 0
	}
	a := append([]byte(nil), ah[:ahLen]...)
	clear(a[12:ahLen])
	m := hmac.New(md5.New, key[:])
	m.Write(h)
	m.Write(a)
	m.Write(vrrp)
	var out [icvLen]byte
	copy(out[:], m.Sum(nil))
	return out
}

// ahKey is auth_pass as the AH key.
func ahKey(pass string) [authDataLen]byte {
	var k [authDataLen]byte
	copy(k[:], pass)
	return k
}

// ahHeader builds an AH header for src with seq and a zero ICV.
func ahHeader(src netip.Addr, seq uint32) []byte {
	a := make([]byte, ahLen)
	a[0] = IPProto
	a[1] = ahLen/4 - 2
	s := src.As4()
	copy(a[4:8], s[:])
	binary.BigEndian.PutUint32(a[8:12], seq)
	return a
}

// ahReplay is the anti-replay state of one sender: its highest sequence
// number, and since when its packets have been refused as replays.
type ahReplay struct {
	seq     uint32
	refused time.Time
}

// ahCheck verifies an AH packet (ipPayload: the AH header and the VRRP
// packet) received with iphdr: its ICV, its SPI (the source address) and
// its sequence number against replay. A sender whose packets have all
// been replays for longer than grace is taken to have restarted (its
// numbers start again) and accepted: keepalived would refuse it until
// its numbers pass the old ones, which splits the pair. It returns the
// VRRP packet, or the reason to drop.
func ahCheck(key [authDataLen]byte, iphdr, ipPayload []byte, src netip.Addr, unicast bool, seen map[netip.Addr]*ahReplay, now time.Time, grace time.Duration) ([]byte, DropReason) {
	if len(ipPayload) < ahLen || ipPayload[0] != IPProto || ipPayload[1] != ahLen/4-2 {
		return nil, DropLength
	}
	ah, vrrp := ipPayload[:ahLen], ipPayload[ahLen:]
	want := ahICV(key, iphdr, ah, vrrp, unicast)
	if !hmac.Equal(want[:], ah[12:ahLen]) {
		return nil, DropAuth
	}
	if s := src.As4(); [4]byte(ah[4:8]) != s {
		return nil, DropAuth
	}
	seq := binary.BigEndian.Uint32(ah[8:12])
	r := seen[src]
	if r == nil {
		r = &ahReplay{}
		seen[src] = r
	}
	switch {
	case seq > r.seq:
		r.seq, r.refused = seq, time.Time{}
	case r.refused.IsZero():
		r.refused = now
		return nil, DropReplay
	case now.Sub(r.refused) < grace:
		return nil, DropReplay
	default:
		r.seq, r.refused = seq, time.Time{}
	}
	return vrrp, ""
}
