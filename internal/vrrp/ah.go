package vrrp

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"net/netip"
	"sync"
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

// ahCounter is an instance's AH sequence number, as keepalived keeps
// it: one number that the adverts it sends increment and that the
// adverts it accepts raise. A packet is accepted only with a number
// above it (anti-replay); after a takeover the new MASTER goes on above
// the numbers the old one sent, so each side accepts the other's. It
// outlives the instance's sockets (LinuxSystem.ahCounters).
//
// govs's adverts go at least from floor (the Unix time when the counter
// was made): peers that saw the numbers of a govs that then restarted
// accept the new one's (adverts go at most about once a second), while
// the counter itself starts at 0, so that a govs starting as BACKUP
// accepts a keepalived MASTER's low numbers at once.
type ahCounter struct {
	mu    sync.Mutex
	seq   uint32
	floor uint32
}

// next is the number of the next advert sent.
func (c *ahCounter) next() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seq < ahSeqMax {
		// keepalived stops at the top instead of going round
		c.seq = max(c.seq+1, c.floor)
	}
	return c.seq
}

// accept raises the counter to seq, or reports seq as a replay.
func (c *ahCounter) accept(seq uint32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if seq <= c.seq {
		return false
	}
	c.seq = seq
	return true
}

// ahSeqMax is where keepalived's sequence numbers stop (it then stops
// sending).
const ahSeqMax = 0xFFFFFFFD

// ahCheck verifies an AH packet (ipPayload: the AH header and the VRRP
// packet) received with iphdr for the instance of VRID vrid: another
// VRID's packet is not checked (its key may differ, and its numbers are
// not this instance's); then its ICV, its SPI (the source address) and
// its sequence number against cnt, which it raises — unless check is
// false: then the caller accepts seq itself (ahCounter.accept) once it
// knows the packet is one it takes. It returns the VRRP packet and its
// sequence number, or the reason to drop (with the VRRP packet still for
// DropVRID); skip reports a packet that is not VRRP in AH at all.
func ahCheck(key [authDataLen]byte, vrid uint8, iphdr, ipPayload []byte, src netip.Addr, unicast bool, cnt *ahCounter, check bool) (vrrp []byte, seq uint32, drop DropReason, skip bool) {
	if len(ipPayload) < ahLen || ipPayload[0] != IPProto {
		return nil, 0, "", true // other IPsec traffic
	}
	if ipPayload[1] != ahLen/4-2 || len(ipPayload) < ahLen+headerLen {
		return nil, 0, DropLength, false
	}
	ah, vrrp := ipPayload[:ahLen], ipPayload[ahLen:]
	if vrrp[1] != vrid {
		return vrrp, 0, DropVRID, false // (for log_unknown_vrids)
	}
	want := ahICV(key, iphdr, ah, vrrp, unicast)
	if !hmac.Equal(want[:], ah[12:ahLen]) {
		return nil, 0, DropAuth, false
	}
	if s := src.As4(); [4]byte(ah[4:8]) != s {
		return nil, 0, DropAuth, false
	}
	seq = binary.BigEndian.Uint32(ah[8:12])
	if check && !cnt.accept(seq) {
		return nil, seq, DropReplay, false
	}
	return vrrp, seq, "", false
}
