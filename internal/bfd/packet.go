// Package bfd runs Bidirectional Forwarding Detection sessions (RFC 5880
// asynchronous mode over single-hop UDP, RFC 5881), as keepalived's
// bfd_instance blocks describe them: VRRP instances track them
// (track_bfd) to leave MASTER when a neighbour (a router, the peer
// director) stops answering, in tens of milliseconds rather than after
// the advert timeout.
package bfd

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// State is a session state (RFC 5880 §4.1).
type State uint8

// The states.
const (
	AdminDown State = iota
	Down
	Init
	Up
)

func (s State) String() string {
	switch s {
	case AdminDown:
		return "AdminDown"
	case Down:
		return "Down"
	case Init:
		return "Init"
	case Up:
		return "Up"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Diag is the diagnostic code: why the session last left Up.
type Diag uint8

// The diagnostics this package sets or reads.
const (
	DiagNone             Diag = 0
	DiagDetectionExpired Diag = 1
	DiagNeighborDown     Diag = 3
	DiagAdminDown        Diag = 7
)

var diagNames = []string{"none", "control detection time expired", "echo function failed",
	"neighbor signaled session down", "forwarding plane reset", "path down", "concatenated path down",
	"administratively down", "reverse concatenated path down"}

func (d Diag) String() string {
	if int(d) < len(diagNames) {
		return diagNames[d]
	}
	return fmt.Sprintf("diagnostic %d", uint8(d))
}

const (
	packetLen   = 24
	version     = 1
	controlPort = 3784
	// single-hop sources come from 49152-65535 (RFC 5881 §4)
	sourcePortMin, sourcePorts = 49152, 16384
)

// Packet is a BFD control packet without authentication. Intervals are
// in microseconds, as on the wire.
type Packet struct {
	Diag                 Diag
	State                State
	Poll, Final          bool
	ControlIndependent   bool
	Demand               bool
	DetectMult           uint8
	MyDiscr, YourDiscr   uint32
	DesiredMinTx         uint32
	RequiredMinRx        uint32
	RequiredMinEchoRx    uint32
	authPresent, multipt bool
}

// Marshal encodes p as a version 1 packet of 24 bytes.
func (p *Packet) Marshal() []byte {
	b := make([]byte, packetLen)
	b[0] = version<<5 | byte(p.Diag)&0x1f
	b[1] = byte(p.State)<<6 | flag(p.Poll)<<5 | flag(p.Final)<<4 | flag(p.ControlIndependent)<<3 | flag(p.Demand)<<1
	b[2] = p.DetectMult
	b[3] = packetLen
	binary.BigEndian.PutUint32(b[4:], p.MyDiscr)
	binary.BigEndian.PutUint32(b[8:], p.YourDiscr)
	binary.BigEndian.PutUint32(b[12:], p.DesiredMinTx)
	binary.BigEndian.PutUint32(b[16:], p.RequiredMinRx)
	binary.BigEndian.PutUint32(b[20:], p.RequiredMinEchoRx)
	return b
}

func flag(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// Errors of Parse: the reception checks of RFC 5880 §6.8.6 that need no
// session.
var (
	ErrShort      = errors.New("shorter than a control packet")
	ErrVersion    = errors.New("not version 1")
	ErrLength     = errors.New("length field does not match the packet")
	ErrAuth       = errors.New("authentication present but none configured")
	ErrDetectMult = errors.New("detect multiplier 0")
	ErrMultipoint = errors.New("multipoint bit set")
	ErrMyDiscr    = errors.New("my discriminator 0")
	ErrYourDiscr  = errors.New("your discriminator 0 in state Init or Up")
)

// Parse decodes and checks a received control packet.
func Parse(b []byte) (Packet, error) {
	var p Packet
	if len(b) < packetLen {
		return p, ErrShort
	}
	if b[0]>>5 != version {
		return p, ErrVersion
	}
	if n := int(b[3]); n < packetLen || n > len(b) {
		return p, ErrLength
	}
	p.Diag = Diag(b[0] & 0x1f)
	p.State = State(b[1] >> 6)
	p.Poll = b[1]&0x20 != 0
	p.Final = b[1]&0x10 != 0
	p.ControlIndependent = b[1]&0x08 != 0
	p.authPresent = b[1]&0x04 != 0
	p.Demand = b[1]&0x02 != 0
	p.multipt = b[1]&0x01 != 0
	p.DetectMult = b[2]
	p.MyDiscr = binary.BigEndian.Uint32(b[4:])
	p.YourDiscr = binary.BigEndian.Uint32(b[8:])
	p.DesiredMinTx = binary.BigEndian.Uint32(b[12:])
	p.RequiredMinRx = binary.BigEndian.Uint32(b[16:])
	p.RequiredMinEchoRx = binary.BigEndian.Uint32(b[20:])
	switch {
	case p.authPresent:
		return p, ErrAuth
	case p.DetectMult == 0:
		return p, ErrDetectMult
	case p.multipt:
		return p, ErrMultipoint
	case p.MyDiscr == 0:
		return p, ErrMyDiscr
	case p.YourDiscr == 0 && (p.State == Init || p.State == Up):
		return p, ErrYourDiscr
	}
	return p, nil
}
