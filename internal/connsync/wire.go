// Package connsync synchronises connection state between directors: the
// MASTER sends its connection table to the BACKUP so that a takeover
// forwards established connections to the real servers they already use
// (keepalived's lvs_sync_daemon, which starts the kernel's IPVS sync
// daemon).
//
// The messages are those of the kernel's IPVS sync protocol, version 1
// (net/netfilter/ipvs/ip_vs_sync.c, Linux 2.6.39 and later): UDP
// datagrams to the multicast group 224.0.0.81, port 8848, TTL 1 by
// default, each a header followed by connection records.
package connsync

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Protocol constants of IPVS sync version 1.
const (
	// DefaultPort is the kernel's IP_VS_SYNC_PORT.
	DefaultPort = 8848
	// protoVersion is SYNC_PROTO_VER.
	protoVersion = 1

	headerLen = 8  // struct ip_vs_sync_mesg
	conn4Len  = 36 // struct ip_vs_sync_v4
	conn6Len  = 72 // struct ip_vs_sync_v6

	typeInet6 = 1 // STYPE_F_INET6

	// sizeMask and verShift split a record's ver_size field.
	sizeMask = 0x0fff
	verShift = 12

	// Options after a record: type, length, data.
	optSeqData = 1
	optPEData  = 2
	optPEName  = 3
	// optParam marks an option a receiver that does not know it skips
	// (IPVS_OPT_F_PARAM); without it an unknown option makes the record
	// unusable.
	optParam = 0x40
	// optLocal is govs's own option: the director's source address and
	// port toward the real server of a source-NAT connection (address,
	// then port, network order). It carries optParam, so kernel IPVS
	// skips it.
	optLocal = optParam | 0x10
)

// DefaultGroup4 is the kernel's IP_VS_SYNC_GROUP.
var DefaultGroup4 = netip.MustParseAddr("224.0.0.81")

// Connection flags (IP_VS_CONN_F_*) carried in a record.
const (
	FlagMasq      = 0x0000
	FlagTunnel    = 0x0002
	FlagDRoute    = 0x0003
	FlagFwdMask   = 0x0007
	FlagNoOutput  = 0x0080
	FlagInactive  = 0x0100
	FlagSeqMask   = 0x0600
	FlagNoCPort   = 0x0800
	FlagTemplate  = 0x1000
	FlagOnePacket = 0x2000
	// backupMask are the flags a receiver keeps
	// (IP_VS_CONN_F_BACKUP_MASK).
	backupMask = FlagFwdMask | FlagNoOutput | FlagInactive | FlagSeqMask | FlagNoCPort | FlagTemplate
)

// Entry is one connection (or persistence template) record.
type Entry struct {
	Proto uint8
	Flags uint32
	// State is the IPVS state number (TCP: IP_VS_TCP_S_*; UDP and
	// templates: 0).
	State   uint16
	Client  netip.AddrPort
	Virtual netip.AddrPort
	Real    netip.AddrPort
	FWMark  uint32
	// Timeout is in seconds; 0 lets the receiver pick its own for the
	// state.
	Timeout uint32
	// Local is the source the director uses toward the real server
	// (source NAT); invalid when there is none.
	Local netip.AddrPort
}

// Template reports whether e is a persistence template.
func (e Entry) Template() bool { return e.Flags&FlagTemplate != 0 }

// v6 says whether e is an IPv6 record (16-byte addresses, v4-mapped
// ones among them).
func (e Entry) v6() bool { return e.Client.Addr().Is6() }

// recordLen is the length of e's record, options included, before
// padding.
func (e Entry) recordLen() int {
	n := conn4Len
	if e.v6() {
		n = conn6Len
	}
	if e.Local.IsValid() {
		n += 2 + localLen(e.v6())
	}
	return n
}

func localLen(v6 bool) int {
	if v6 {
		return 18
	}
	return 6
}

// check says why e cannot be encoded, or nil.
func (e Entry) check() error {
	if !e.Client.IsValid() || !e.Virtual.IsValid() || !e.Real.IsValid() {
		return errors.New("client, virtual and real addresses are required")
	}
	v6 := e.v6()
	for _, a := range []netip.AddrPort{e.Virtual, e.Real, e.Local} {
		if a.IsValid() && a.Addr().Is6() != v6 {
			return fmt.Errorf("addresses of different families (%s, %s)", e.Client, a)
		}
	}
	return nil
}

// Encode packs entries into messages of at most maxLen bytes (UDP
// payload) for sync ID syncID, at most 255 records each. An entry that
// cannot be encoded is an error naming it; nothing is returned then.
func Encode(syncID uint8, entries []Entry, maxLen int) ([][]byte, error) {
	if maxLen < headerLen+conn6Len+2+18 {
		return nil, fmt.Errorf("maximum message length %d is too small (at least %d)", maxLen, headerLen+conn6Len+20)
	}
	var out [][]byte
	var msg []byte
	count := 0
	flush := func() {
		if count == 0 {
			return
		}
		binary.BigEndian.PutUint16(msg[2:], uint16(len(msg)))
		msg[4] = byte(count)
		out = append(out, msg)
		msg, count = nil, 0
	}
	for i, e := range entries {
		if err := e.check(); err != nil {
			return nil, fmt.Errorf("connection %d (%s -> %s): %w", i, e.Client, e.Virtual, err)
		}
		n := e.recordLen()
		pad := (4 - len(msg)%4) % 4
		if msg != nil && (len(msg)+pad+n > maxLen || count == 255) {
			flush()
			pad = 0
		}
		if msg == nil {
			msg = make([]byte, headerLen, maxLen)
			msg[1] = syncID
			msg[5] = protoVersion
		}
		msg = append(msg, make([]byte, pad)...)
		msg = appendRecord(msg, e, n)
		count++
	}
	flush()
	return out, nil
}

func appendRecord(b []byte, e Entry, n int) []byte {
	v6 := e.v6()
	var typ byte
	if v6 {
		typ = typeInet6
	}
	b = append(b, typ, e.Proto)
	b = binary.BigEndian.AppendUint16(b, uint16(n&sizeMask)) // version 0
	b = binary.BigEndian.AppendUint32(b, e.Flags)
	b = binary.BigEndian.AppendUint16(b, e.State)
	b = binary.BigEndian.AppendUint16(b, e.Client.Port())
	b = binary.BigEndian.AppendUint16(b, e.Virtual.Port())
	b = binary.BigEndian.AppendUint16(b, e.Real.Port())
	b = binary.BigEndian.AppendUint32(b, e.FWMark)
	b = binary.BigEndian.AppendUint32(b, e.Timeout)
	for _, a := range []netip.AddrPort{e.Client, e.Virtual, e.Real} {
		b = appendAddr(b, a.Addr(), v6)
	}
	if e.Local.IsValid() {
		b = append(b, optLocal, byte(localLen(v6)))
		b = appendAddr(b, e.Local.Addr(), v6)
		b = binary.BigEndian.AppendUint16(b, e.Local.Port())
	}
	return b
}

func appendAddr(b []byte, a netip.Addr, v6 bool) []byte {
	if v6 {
		s := a.As16()
		return append(b, s[:]...)
	}
	s := a.As4()
	return append(b, s[:]...)
}

// Message is a decoded message.
type Message struct {
	SyncID  uint8
	Entries []Entry
	// Skipped counts records that were well formed but could not be
	// used: an option govs does not know that the sender marked as
	// required.
	Skipped int
}

// Decode reads one message. A malformed message is an error naming the
// offset and what is wrong with it; the records before it are not
// returned either (the kernel drops the rest of such a message; a
// message cut short is best not trusted at all).
func Decode(b []byte) (Message, error) {
	var m Message
	if len(b) < headerLen {
		return m, fmt.Errorf("message of %d bytes is shorter than its %d-byte header", len(b), headerLen)
	}
	if size := int(binary.BigEndian.Uint16(b[2:])); size != len(b) {
		return m, fmt.Errorf("header says %d bytes, the datagram has %d", size, len(b))
	}
	m.SyncID = b[1]
	if b[0] != 0 || int8(b[5]) != protoVersion || b[6] != 0 || b[7] != 0 {
		return m, fmt.Errorf("not a version 1 message (first byte %d, version %d): version 0 (sync_version=0) is not supported", b[0], int8(b[5]))
	}
	n := int(b[4])
	off := headerLen
	for i := range n {
		if off+conn4Len > len(b) {
			return Message{SyncID: m.SyncID}, fmt.Errorf("record %d at byte %d: message ends before the record", i, off)
		}
		vs := binary.BigEndian.Uint16(b[off+2:])
		size := int(vs & sizeMask)
		if vs>>verShift != 0 {
			return Message{SyncID: m.SyncID}, fmt.Errorf("record %d at byte %d: unknown record version %d", i, off, vs>>verShift)
		}
		if size < conn4Len {
			return Message{SyncID: m.SyncID}, fmt.Errorf("record %d at byte %d: its size %d is less than a record's %d", i, off, size, conn4Len)
		}
		if off+size > len(b) {
			return Message{SyncID: m.SyncID}, fmt.Errorf("record %d at byte %d: its %d bytes run past the message's end", i, off, size)
		}
		e, ok, err := decodeRecord(b[off : off+size])
		if err != nil {
			return Message{SyncID: m.SyncID}, fmt.Errorf("record %d at byte %d: %w", i, off, err)
		}
		if ok {
			m.Entries = append(m.Entries, e)
		} else {
			m.Skipped++
		}
		off += (size + 3) &^ 3
	}
	return m, nil
}

// decodeRecord reads one record; ok is false for a record with an
// unknown required option.
func decodeRecord(r []byte) (e Entry, ok bool, err error) {
	v6 := false
	switch r[0] {
	case 0:
	case typeInet6:
		v6 = true
	default:
		return e, false, fmt.Errorf("unknown record type %d", r[0])
	}
	fixed := conn4Len
	alen := 4
	if v6 {
		fixed, alen = conn6Len, 16
	}
	if len(r) < fixed {
		return e, false, fmt.Errorf("record of %d bytes is shorter than the %d an IPv%s record needs", len(r), fixed, map[bool]string{false: "4", true: "6"}[v6])
	}
	e.Proto = r[1]
	e.Flags = binary.BigEndian.Uint32(r[4:]) & backupMask
	e.State = binary.BigEndian.Uint16(r[8:])
	cport := binary.BigEndian.Uint16(r[10:])
	vport := binary.BigEndian.Uint16(r[12:])
	dport := binary.BigEndian.Uint16(r[14:])
	e.FWMark = binary.BigEndian.Uint32(r[16:])
	e.Timeout = binary.BigEndian.Uint32(r[20:])
	addr := func(i int) netip.Addr {
		a, _ := netip.AddrFromSlice(r[24+i*alen : 24+(i+1)*alen])
		return a
	}
	e.Client = netip.AddrPortFrom(addr(0), cport)
	e.Virtual = netip.AddrPortFrom(addr(1), vport)
	e.Real = netip.AddrPortFrom(addr(2), dport)
	ok = true
	seen := map[byte]bool{}
	for p := fixed; p < len(r); {
		if p+2 > len(r) {
			return e, false, fmt.Errorf("option at byte %d: no room for its type and length", p)
		}
		typ, l := r[p], int(r[p+1])
		p += 2
		if l == 0 || p+l > len(r) {
			return e, false, fmt.Errorf("option %d at byte %d: length %d does not fit the record", typ, p-2, l)
		}
		base := typ &^ optParam
		if seen[base] {
			return e, false, fmt.Errorf("option %d at byte %d given twice", typ, p-2)
		}
		seen[base] = true
		switch {
		case base == optSeqData:
			// sequence offsets of IPVS application helpers (FTP in
			// NAT mode): govs's FTP helper does not resize payloads,
			// so there is nothing to take from them
			if l != 24 {
				return e, false, fmt.Errorf("sequence option at byte %d has length %d, not 24", p-2, l)
			}
		case base == optPEData || base == optPEName:
			// persistence-engine data (SIP Call-ID): govs has no
			// persistence engines; the connection is still usable
		case typ == optLocal:
			if l != localLen(v6) {
				return e, false, fmt.Errorf("local address option at byte %d has length %d, not %d", p-2, l, localLen(v6))
			}
			a, _ := netip.AddrFromSlice(r[p : p+alen])
			e.Local = netip.AddrPortFrom(a, binary.BigEndian.Uint16(r[p+alen:]))
		case typ&optParam == 0:
			ok = false // a required option govs does not know
		}
		p += l
	}
	return e, ok, nil
}
