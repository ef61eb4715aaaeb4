// Package agentx is an SNMP AgentX subagent (RFC 2741): it connects to
// the master agent (net-snmp's snmpd with "master agentx"), registers
// subtrees and answers the master's Get, GetNext and GetBulk requests
// from a snapshot of variables. It is read-only: sets are refused with
// notWritable. keepalived reports its MIBs the same way.
package agentx

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// OID is an object identifier.
type OID []uint32

// ParseOID reads "1.3.6.1..." (a leading dot allowed).
func ParseOID(s string) (OID, error) {
	var o OID
	for _, p := range strings.Split(strings.TrimPrefix(s, "."), ".") {
		v, err := strconv.ParseUint(p, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("oid %q: %w", s, err)
		}
		o = append(o, uint32(v))
	}
	return o, nil
}

// MustOID is ParseOID for constants.
func MustOID(s string) OID {
	o, err := ParseOID(s)
	if err != nil {
		panic(err)
	}
	return o
}

func (o OID) String() string {
	var b strings.Builder
	for _, v := range o {
		b.WriteByte('.')
		b.WriteString(strconv.FormatUint(uint64(v), 10))
	}
	return b.String()
}

// Compare orders OIDs lexicographically.
func (o OID) Compare(p OID) int { return slices.Compare(o, p) }

// HasPrefix says whether p is o or one of its ancestors.
func (o OID) HasPrefix(p OID) bool { return len(o) >= len(p) && slices.Equal(o[:len(p)], p) }

// Append returns o followed by subs, in a new slice.
func (o OID) Append(subs ...uint32) OID {
	return append(slices.Clip(o), subs...)
}

// Types of values (RFC 2741 §5.4).
const (
	TypeInteger          = 2
	TypeOctetString      = 4
	TypeNull             = 5
	TypeOID              = 6
	TypeIPAddress        = 64
	TypeCounter32        = 65
	TypeGauge32          = 66
	TypeTimeTicks        = 67
	TypeCounter64        = 70
	typeNoSuchObject     = 128
	typeNoSuchInstance   = 129
	typeEndOfMibView     = 130
	errNotWritable       = 17
	errProcessing        = 268
	pduOpen              = 1
	pduClose             = 2
	pduRegister          = 3
	pduGet               = 5
	pduGetNext           = 6
	pduGetBulk           = 7
	pduTestSet           = 8
	pduCommitSet         = 9
	pduUndoSet           = 10
	pduCleanupSet        = 11
	pduNotify            = 12
	pduResponse          = 18
	flagNonDefaultCtx    = 0x08
	flagNetworkByteOrder = 0x10
	closeShutdown        = 5
	headerLen            = 20
	maxPayload           = 1 << 20
)

// Var is one variable: its name, type and value (int64 for the integer
// types, []byte for octet strings and IP addresses, OID for OIDs).
type Var struct {
	Name  OID
	Type  uint16
	Value any
}

// Integer, String, Gauge, Counter, Counter64, TimeTicks, IPAddress make
// Vars.
func Integer(name OID, v int) Var        { return Var{name, TypeInteger, int64(v)} }
func String(name OID, s string) Var      { return Var{name, TypeOctetString, []byte(s)} }
func Bytes(name OID, b []byte) Var       { return Var{name, TypeOctetString, b} }
func Gauge(name OID, v uint64) Var       { return Var{name, TypeGauge32, int64(uint32(v))} }
func Counter(name OID, v uint64) Var     { return Var{name, TypeCounter32, int64(uint32(v))} }
func Counter64(name OID, v uint64) Var   { return Var{name, TypeCounter64, v} }
func TimeTicks(name OID, v uint64) Var   { return Var{name, TypeTimeTicks, int64(uint32(v))} }
func IPAddress(name OID, ip [4]byte) Var { return Var{name, TypeIPAddress, ip[:]} }

// Snapshot returns the variables of the registered subtrees now, in any
// order.
type Snapshot func() []Var

// Subagent serves subtrees to a master agent.
type Subagent struct {
	// Network and Address of the master's AgentX socket: "unix",
	// "/var/agentx/master" or "tcp", "localhost:705".
	Network, Address string
	// ID and Description identify the subagent to the master.
	ID          OID
	Description string
	// Subtrees are registered at the master; Snapshot answers for them.
	Subtrees []OID
	Snapshot Snapshot
	Log      *slog.Logger
	// Retry is the pause before connecting again (default 5 s).
	Retry time.Duration

	mu        sync.Mutex
	connected bool
	lastErr   string
	cur       *conn     // the registered session's, for Notify
	started   time.Time // Run's start: the notifications' sysUpTime
}

// The objects every notification begins with (SNMPv2-MIB).
var (
	sysUpTime   = MustOID("1.3.6.1.2.1.1.3.0")
	snmpTrapOID = MustOID("1.3.6.1.6.3.1.1.4.1.0")
)

// Notify sends the notification trap with objs through the master
// (which sends it to its trap sinks). It fails when there is no session.
func (s *Subagent) Notify(trap OID, objs []Var) error {
	s.mu.Lock()
	c := s.cur
	s.mu.Unlock()
	if c == nil {
		return errors.New("snmp: no session with the agentx master")
	}
	var b bytes.Buffer
	s.mu.Lock()
	up := time.Since(s.started)
	s.mu.Unlock()
	putVar(&b, TimeTicks(sysUpTime, uint64(up/(10*time.Millisecond))))
	putVar(&b, Var{Name: snmpTrapOID, Type: TypeOID, Value: trap})
	for _, v := range objs {
		putVar(&b, v)
	}
	session, packet := c.ids()
	return c.write(pduNotify, 0, session, 0, packet, b.Bytes())
}

// Connected reports whether the subagent has a session with the master,
// and the last error otherwise.
func (s *Subagent) Connected() (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connected, s.lastErr
}

// Run connects to the master, registers, serves requests and connects
// again when the master goes, until ctx is done.
func (s *Subagent) Run(ctx context.Context) {
	retry := s.Retry
	if retry <= 0 {
		retry = 5 * time.Second
	}
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s.mu.Lock()
	s.started = time.Now()
	s.mu.Unlock()
	reported := ""
	for ctx.Err() == nil {
		registered, err := s.session(ctx, log)
		if registered {
			reported = "" // a later loss is told again
		}
		s.mu.Lock()
		s.connected = false
		if err != nil {
			s.lastErr = err.Error()
		}
		s.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if err != nil && err.Error() != reported {
			log.Warn("snmp: agentx master", "socket", s.Network+":"+s.Address, "err", err, "retry", retry.String())
			reported = err.Error()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
	}
}

// conn is one session's connection.
type conn struct {
	c     net.Conn
	r     *bufio.Reader
	start time.Time

	mu      sync.Mutex // the ids, read by the Close sent at shutdown
	session uint32
	packet  uint32
}

// ids returns the session's id and the next packet id.
func (c *conn) ids() (session, packet uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.packet++
	return c.session, c.packet
}

type header struct {
	typ     byte
	flags   byte
	session uint32
	trans   uint32
	packet  uint32
	payload []byte
}

func (c *conn) read() (*header, error) {
	var b [headerLen]byte
	if _, err := io.ReadFull(c.r, b[:]); err != nil {
		return nil, err
	}
	if b[0] != 1 {
		return nil, fmt.Errorf("agentx version %d", b[0])
	}
	h := &header{typ: b[1], flags: b[2]}
	var bo binary.ByteOrder = binary.LittleEndian
	if h.flags&flagNetworkByteOrder != 0 {
		bo = binary.BigEndian
	}
	h.session, h.trans, h.packet = bo.Uint32(b[4:]), bo.Uint32(b[8:]), bo.Uint32(b[12:])
	n := bo.Uint32(b[16:])
	if n > maxPayload || n%4 != 0 {
		return nil, fmt.Errorf("agentx payload of %d bytes", n)
	}
	h.payload = make([]byte, n)
	if _, err := io.ReadFull(c.r, h.payload); err != nil {
		return nil, err
	}
	return h, nil
}

// write sends a PDU in network byte order.
func (c *conn) write(typ byte, flags byte, session, trans, packet uint32, payload []byte) error {
	b := make([]byte, headerLen, headerLen+len(payload))
	b[0], b[1], b[2] = 1, typ, flags|flagNetworkByteOrder
	binary.BigEndian.PutUint32(b[4:], session)
	binary.BigEndian.PutUint32(b[8:], trans)
	binary.BigEndian.PutUint32(b[12:], packet)
	binary.BigEndian.PutUint32(b[16:], uint32(len(payload)))
	c.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := c.c.Write(append(b, payload...))
	return err
}

// request sends a PDU of the session and waits for its response; a
// request of the master that comes meanwhile (a Get for a subtree
// registered a moment before) is answered by serve.
func (c *conn) request(typ byte, payload []byte, serve func(*header) error) (*response, error) {
	session, packet := c.ids()
	if err := c.write(typ, 0, session, 0, packet, payload); err != nil {
		return nil, err
	}
	c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.c.SetReadDeadline(time.Time{})
	for {
		h, err := c.read()
		if err != nil {
			return nil, err
		}
		if h.typ != pduResponse {
			if err := serve(h); err != nil {
				return nil, err
			}
			continue
		}
		if h.packet != packet {
			continue
		}
		r, err := parseResponse(h)
		if err != nil {
			return nil, err
		}
		if typ == pduOpen {
			c.mu.Lock()
			c.session = h.session
			c.mu.Unlock()
		}
		return r, nil
	}
}

type response struct{ errCode uint16 }

func parseResponse(h *header) (*response, error) {
	if len(h.payload) < 8 {
		return nil, errors.New("agentx: short response")
	}
	bo := byteOrder(h.flags)
	return &response{errCode: bo.Uint16(h.payload[4:])}, nil
}

func byteOrder(flags byte) binary.ByteOrder {
	if flags&flagNetworkByteOrder != 0 {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// session runs one connection to the master; registered says whether
// it got as far as registering.
func (s *Subagent) session(ctx context.Context, log *slog.Logger) (registered bool, err error) {
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	nc, err := d.DialContext(dctx, s.Network, s.Address)
	cancel()
	if err != nil {
		return false, err
	}
	c := &conn{c: nc, r: bufio.NewReader(nc), start: time.Now()}
	stop := context.AfterFunc(ctx, func() {
		// a Close PDU, then the connection goes
		session, packet := c.ids()
		c.write(pduClose, 0, session, 0, packet, []byte{closeShutdown, 0, 0, 0})
		nc.Close()
	})
	defer stop()
	defer nc.Close()
	serve := func(h *header) error { return s.serve(c, h) }
	var open bytes.Buffer
	open.Write([]byte{0, 0, 0, 0}) // the master's default timeout (5 s in net-snmp)
	putOID(&open, s.ID, false)
	putString(&open, []byte(s.Description))
	r, err := c.request(pduOpen, open.Bytes(), serve)
	if err != nil {
		return false, fmt.Errorf("open: %w", err)
	}
	if r.errCode != 0 {
		return false, fmt.Errorf("open refused (error %d)", r.errCode)
	}
	for _, t := range s.Subtrees {
		var reg bytes.Buffer
		reg.Write([]byte{0, 127, 0, 0}) // default timeout, priority 127, no range
		putOID(&reg, t, false)
		r, err := c.request(pduRegister, reg.Bytes(), serve)
		if err != nil {
			return false, fmt.Errorf("register %s: %w", t, err)
		}
		if r.errCode != 0 {
			return false, fmt.Errorf("register %s refused (error %d: another subagent has it?)", t, r.errCode)
		}
	}
	s.mu.Lock()
	s.connected, s.lastErr, s.cur = true, "", c
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.cur = nil
		s.mu.Unlock()
	}()
	log.Info("snmp: registered with the agentx master", "socket", s.Network+":"+s.Address, "subtrees", len(s.Subtrees))
	for {
		h, err := c.read()
		if err != nil {
			if ctx.Err() != nil {
				return true, nil
			}
			return true, fmt.Errorf("connection: %w", err)
		}
		if err := s.serve(c, h); err != nil {
			return true, err
		}
	}
}

// serve answers one PDU from the master.
func (s *Subagent) serve(c *conn, h *header) error {
	switch h.typ {
	case pduGet, pduGetNext, pduGetBulk:
	case pduTestSet:
		return c.write(pduResponse, 0, h.session, h.trans, h.packet, responsePayload(c, errNotWritable, 1, nil))
	case pduCommitSet, pduUndoSet:
		return c.write(pduResponse, 0, h.session, h.trans, h.packet, responsePayload(c, errProcessing, 0, nil))
	case pduCleanupSet, pduResponse:
		return nil
	case pduClose:
		return errors.New("closed by the master")
	default:
		return c.write(pduResponse, 0, h.session, h.trans, h.packet, responsePayload(c, errProcessing, 0, nil))
	}
	bo := byteOrder(h.flags)
	p := h.payload
	otherContext := false
	if h.flags&flagNonDefaultCtx != 0 {
		// a context govs does not serve: nothing there
		var err error
		if _, p, err = getString(p, bo); err != nil {
			return c.write(pduResponse, 0, h.session, h.trans, h.packet, responsePayload(c, errProcessing, 0, nil))
		}
		otherContext = true
	}
	nonRep, maxRep := 0, 0
	if h.typ == pduGetBulk {
		if len(p) < 4 {
			return c.write(pduResponse, 0, h.session, h.trans, h.packet, responsePayload(c, errProcessing, 0, nil))
		}
		nonRep, maxRep = int(bo.Uint16(p)), int(bo.Uint16(p[2:]))
		p = p[4:]
	}
	var ranges []searchRange
	for len(p) > 0 {
		var r searchRange
		var err error
		if r.start, r.include, p, err = getOID(p, bo); err != nil {
			return c.write(pduResponse, 0, h.session, h.trans, h.packet, responsePayload(c, errProcessing, 0, nil))
		}
		if r.end, _, p, err = getOID(p, bo); err != nil {
			return c.write(pduResponse, 0, h.session, h.trans, h.packet, responsePayload(c, errProcessing, 0, nil))
		}
		ranges = append(ranges, r)
	}
	var vars []Var
	if !otherContext {
		vars = s.Snapshot()
		slices.SortFunc(vars, func(a, b Var) int { return a.Name.Compare(b.Name) })
		vars = s.registered(vars)
	}
	var out []Var
	switch h.typ {
	case pduGet:
		for _, r := range ranges {
			out = append(out, get(vars, r.start))
		}
	case pduGetNext:
		for _, r := range ranges {
			out = append(out, next(vars, r))
		}
	case pduGetBulk:
		for i, r := range ranges {
			if i < nonRep {
				out = append(out, next(vars, r))
			}
		}
		rep := ranges[min(nonRep, len(ranges)):]
		for n := 0; n < maxRep && len(rep) > 0; n++ {
			done := true
			for i := range rep {
				v := next(vars, rep[i])
				out = append(out, v)
				if v.Type != typeEndOfMibView {
					done = false
					rep[i] = searchRange{start: v.Name, end: rep[i].end}
				}
			}
			if done {
				break
			}
		}
	}
	return c.write(pduResponse, 0, h.session, h.trans, h.packet, responsePayload(c, 0, 0, out))
}

// registered keeps the variables of the registered subtrees.
func (s *Subagent) registered(vars []Var) []Var {
	return slices.DeleteFunc(vars, func(v Var) bool {
		return !slices.ContainsFunc(s.Subtrees, func(t OID) bool { return v.Name.HasPrefix(t) })
	})
}

type searchRange struct {
	start, end OID
	include    bool
}

func get(vars []Var, name OID) Var {
	i, found := slices.BinarySearchFunc(vars, name, func(v Var, n OID) int { return v.Name.Compare(n) })
	if found {
		return vars[i]
	}
	// an object served with other instances (a table's column, a
	// scalar asked with another index): no such instance
	for _, v := range vars[max(i-1, 0):min(i+1, len(vars))] {
		if n := commonPrefix(v.Name, name); n >= len(name)-1 && n > 0 {
			return Var{Name: name, Type: typeNoSuchInstance}
		}
	}
	return Var{Name: name, Type: typeNoSuchObject}
}

// next is the first variable after r's start (or at it, when included)
// and before its end (when it has one).
func next(vars []Var, r searchRange) Var {
	i, found := slices.BinarySearchFunc(vars, r.start, func(v Var, n OID) int { return v.Name.Compare(n) })
	if found && !r.include {
		i++
	}
	if i < len(vars) && (len(r.end) == 0 || vars[i].Name.Compare(r.end) < 0) {
		return vars[i]
	}
	return Var{Name: r.start, Type: typeEndOfMibView}
}

func responsePayload(c *conn, errCode, index uint16, vars []Var) []byte {
	var b bytes.Buffer
	var w [8]byte
	binary.BigEndian.PutUint32(w[:], uint32(time.Since(c.start)/(10*time.Millisecond)))
	binary.BigEndian.PutUint16(w[4:], errCode)
	binary.BigEndian.PutUint16(w[6:], index)
	b.Write(w[:])
	for _, v := range vars {
		putVar(&b, v)
	}
	return b.Bytes()
}

// putOID encodes an OID, with the 1.3.6.1.X prefix compressed.
func putOID(b *bytes.Buffer, o OID, include bool) {
	prefix := byte(0)
	if len(o) >= 5 && o[0] == 1 && o[1] == 3 && o[2] == 6 && o[3] == 1 && o[4] > 0 && o[4] < 256 {
		prefix, o = byte(o[4]), o[5:]
	}
	inc := byte(0)
	if include {
		inc = 1
	}
	b.Write([]byte{byte(len(o)), prefix, inc, 0})
	for _, v := range o {
		b.Write(binary.BigEndian.AppendUint32(nil, v))
	}
}

func getOID(p []byte, bo binary.ByteOrder) (OID, bool, []byte, error) {
	if len(p) < 4 {
		return nil, false, nil, errors.New("short oid")
	}
	n, prefix, include := int(p[0]), p[1], p[2] != 0
	p = p[4:]
	if len(p) < 4*n || n > 128 {
		return nil, false, nil, errors.New("short oid")
	}
	var o OID
	if prefix != 0 {
		o = OID{1, 3, 6, 1, uint32(prefix)}
	}
	for i := range n {
		o = append(o, bo.Uint32(p[4*i:]))
	}
	return o, include, p[4*n:], nil
}

func putString(b *bytes.Buffer, s []byte) {
	b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(s))))
	b.Write(s)
	b.Write(make([]byte, (4-len(s)%4)%4))
}

func getString(p []byte, bo binary.ByteOrder) ([]byte, []byte, error) {
	if len(p) < 4 {
		return nil, nil, errors.New("short string")
	}
	n := uint64(bo.Uint32(p))
	padded := n + (4-n%4)%4
	if padded > uint64(len(p)-4) {
		return nil, nil, errors.New("short string")
	}
	return p[4 : 4+n], p[4+padded:], nil
}

func putVar(b *bytes.Buffer, v Var) {
	b.Write(binary.BigEndian.AppendUint16(nil, v.Type))
	b.Write([]byte{0, 0})
	putOID(b, v.Name, false)
	switch v.Type {
	case TypeInteger, TypeCounter32, TypeGauge32, TypeTimeTicks:
		b.Write(binary.BigEndian.AppendUint32(nil, uint32(v.Value.(int64))))
	case TypeCounter64:
		b.Write(binary.BigEndian.AppendUint64(nil, v.Value.(uint64)))
	case TypeOctetString, TypeIPAddress:
		putString(b, v.Value.([]byte))
	case TypeOID:
		putOID(b, v.Value.(OID), false)
	}
}

// commonPrefix is the length of the prefix a and b share.
func commonPrefix(a, b OID) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
