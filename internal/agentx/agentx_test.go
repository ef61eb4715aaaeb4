package agentx

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// master is a minimal AgentX master for the tests: it accepts one
// subagent at a time and sends it requests.
type master struct {
	t  *testing.T
	c  *conn
	bo binary.ByteOrder
}

func (m *master) expect(typ byte) *header {
	m.t.Helper()
	m.c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	h, err := m.c.read()
	if err != nil || h.typ != typ {
		m.t.Fatalf("read: type %v, want %d (%v)", h, typ, err)
	}
	return h
}

func (m *master) respond(h *header, session uint32, errCode uint16) {
	p := make([]byte, 8)
	binary.BigEndian.PutUint16(p[4:], errCode)
	if err := m.c.write(pduResponse, 0, session, h.trans, h.packet, p); err != nil {
		m.t.Fatal(err)
	}
}

// ask sends a request PDU and returns the response's error and
// variables.
func (m *master) ask(typ byte, payload []byte) (uint16, []Var) {
	m.t.Helper()
	m.c.packet++
	if err := m.c.write(typ, 0, 7, 99, m.c.packet, payload); err != nil {
		m.t.Fatal(err)
	}
	h := m.expect(pduResponse)
	if h.packet != m.c.packet || h.trans != 99 || h.session != 7 {
		m.t.Fatalf("response ids %d/%d/%d", h.session, h.trans, h.packet)
	}
	bo := byteOrder(h.flags)
	p := h.payload
	errCode := bo.Uint16(p[4:])
	p = p[8:]
	var vars []Var
	for len(p) > 0 {
		typ := bo.Uint16(p)
		name, _, rest, err := getOID(p[4:], bo)
		if err != nil {
			m.t.Fatal(err)
		}
		v := Var{Name: name, Type: typ}
		switch typ {
		case TypeInteger, TypeCounter32, TypeGauge32, TypeTimeTicks:
			v.Value, rest = int64(int32(bo.Uint32(rest))), rest[4:]
		case TypeCounter64:
			v.Value, rest = bo.Uint64(rest), rest[8:]
		case TypeOctetString, TypeIPAddress:
			var s []byte
			s, rest, err = getString(rest, bo)
			if err != nil {
				m.t.Fatal(err)
			}
			v.Value = s
		}
		vars = append(vars, v)
		p = rest
	}
	return errCode, vars
}

func ranges(rs ...searchRange) []byte {
	var b bytes.Buffer
	for _, r := range rs {
		putOID(&b, r.start, r.include)
		putOID(&b, r.end, false)
	}
	return b.Bytes()
}

// TestSubagent: the subagent opens a session and registers its subtrees;
// Get, GetNext and GetBulk are answered from the snapshot within those
// subtrees (noSuchObject, endOfMibView past the end), a set is refused
// as not writable, and when the master goes the subagent connects again.
func TestSubagent(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "master")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tree := MustOID("1.3.6.1.4.1.9586.100.5.2")
	vars := []Var{
		Integer(tree.Append(3, 1, 4, 2), 1),
		String(tree.Append(3, 1, 2, 1), "VI_1"),
		Integer(tree.Append(3, 1, 4, 1), 2),
		String(tree.Append(3, 1, 2, 2), "VI_6"),
		Counter64(tree.Append(9, 1), 1<<40),
		Integer(MustOID("1.3.6.1.4.1.9586.100.5.3.1"), 5), // not registered
	}
	s := &Subagent{Network: "unix", Address: sock, ID: MustOID("1.3.6.1.4.1.9586.100.5"), Description: "test",
		Subtrees: []OID{tree}, Snapshot: func() []Var { return slices.Clone(vars) }, Retry: 50 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	accept := func() *master {
		t.Helper()
		l.(*net.UnixListener).SetDeadline(time.Now().Add(5 * time.Second))
		c, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		m := &master{t: t, c: &conn{c: c, r: bufio.NewReader(c)}}
		open := m.expect(pduOpen)
		id, _, rest, err := getOID(open.payload[4:], binary.BigEndian)
		if err != nil || !slices.Equal(id, s.ID) {
			t.Fatalf("open: id %v %v", id, err)
		}
		if d, _, _ := getString(rest, binary.BigEndian); string(d) != "test" {
			t.Errorf("open: description %q", d)
		}
		m.respond(open, 7, 0)
		reg := m.expect(pduRegister)
		if reg.session != 7 {
			t.Errorf("register in session %d", reg.session)
		}
		if sub, _, _, _ := getOID(reg.payload[4:], binary.BigEndian); !slices.Equal(sub, tree) {
			t.Errorf("registered %v", sub)
		}
		// a request before the Register's response is answered too
		if _, got := m.ask(pduGet, ranges(searchRange{start: tree.Append(3, 1, 2, 1)})); len(got) != 1 || string(got[0].Value.([]byte)) != "VI_1" {
			t.Errorf("get while registering: %+v", got)
		}
		m.respond(reg, 7, 0)
		return m
	}
	m := accept()
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if ok, _ := s.Connected(); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not connected")
		}
	}

	// Get: one there, a row not in a column that is, an object not there
	_, got := m.ask(pduGet, ranges(searchRange{start: tree.Append(3, 1, 2, 2)}, searchRange{start: tree.Append(3, 1, 2, 3)},
		searchRange{start: tree.Append(7, 1)}))
	if len(got) != 3 || string(got[0].Value.([]byte)) != "VI_6" || got[1].Type != typeNoSuchInstance || got[2].Type != typeNoSuchObject {
		t.Errorf("get: %+v", got)
	}
	// GetNext from the subtree's root, excluding and including the start
	_, got = m.ask(pduGetNext, ranges(searchRange{start: tree}, searchRange{start: tree.Append(3, 1, 4, 1), include: true}, searchRange{start: tree.Append(3, 1, 4, 1)}))
	if len(got) != 3 || got[0].Name.Compare(tree.Append(3, 1, 2, 1)) != 0 || got[1].Value != int64(2) || got[2].Value != int64(1) {
		t.Errorf("getnext: %+v", got)
	}
	// a GetNext bounded by an end before the next variable, and one past
	// the last: endOfMibView (the unregistered variable is never shown)
	_, got = m.ask(pduGetNext, ranges(searchRange{start: tree.Append(3, 1, 4, 2), end: tree.Append(9)}, searchRange{start: tree.Append(9, 1)}))
	if len(got) != 2 || got[0].Type != typeEndOfMibView || got[1].Type != typeEndOfMibView {
		t.Errorf("getnext at the end: %+v", got)
	}
	// GetBulk: one non-repeater, then the rest of the table walked
	var bulk bytes.Buffer
	bulk.Write([]byte{0, 1, 0, 10})
	bulk.Write(ranges(searchRange{start: tree}, searchRange{start: tree.Append(3, 1, 4)}))
	_, got = m.ask(pduGetBulk, bulk.Bytes())
	var names []string
	for _, v := range got {
		names = append(names, v.Name.String())
	}
	want := []string{tree.Append(3, 1, 2, 1).String(), tree.Append(3, 1, 4, 1).String(), tree.Append(3, 1, 4, 2).String(),
		tree.Append(9, 1).String(), tree.Append(9, 1).String()}
	if !slices.Equal(names, want) || got[3].Value != uint64(1<<40) || got[4].Type != typeEndOfMibView {
		t.Errorf("getbulk:\n%q\nwant\n%q", names, want)
	}
	// a notification: sysUpTime, snmpTrapOID, then the objects
	trap := MustOID("1.3.6.1.4.1.9586.100.5.2.10.0.2")
	if err := s.Notify(trap, []Var{String(tree.Append(3, 1, 2), "VI_1"), Integer(tree.Append(3, 1, 4), 2)}); err != nil {
		t.Fatal(err)
	}
	nh := m.expect(pduNotify)
	if nh.session != 7 {
		t.Errorf("notify in session %d", nh.session)
	}
	var vbs []string
	p := nh.payload
	for len(p) > 0 {
		typ := binary.BigEndian.Uint16(p)
		name, _, rest, err := getOID(p[4:], binary.BigEndian)
		if err != nil {
			t.Fatal(err)
		}
		switch typ {
		case TypeTimeTicks, TypeInteger:
			rest = rest[4:]
		case TypeOID:
			var v OID
			v, _, rest, _ = getOID(rest, binary.BigEndian)
			if v.Compare(trap) != 0 {
				t.Errorf("snmpTrapOID %v", v)
			}
		case TypeOctetString:
			_, rest, _ = getString(rest, binary.BigEndian)
		}
		vbs = append(vbs, name.String())
		p = rest
	}
	if want := []string{sysUpTime.String(), snmpTrapOID.String(), tree.Append(3, 1, 2).String(), tree.Append(3, 1, 4).String()}; !slices.Equal(vbs, want) {
		t.Errorf("notify varbinds %q, want %q", vbs, want)
	}
	m.respond(nh, 7, 0) // the master's response is taken in stride
	// sets are refused
	if code, _ := m.ask(pduTestSet, nil); code != errNotWritable {
		t.Errorf("testset: error %d", code)
	}
	// the master goes and comes back: the subagent registers again (a
	// notification meanwhile fails)
	m.c.c.Close()
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if ok, _ := s.Connected(); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("still connected")
		}
	}
	if err := s.Notify(trap, nil); err == nil {
		t.Error("notify without a session")
	}
	m = accept()
	if _, got = m.ask(pduGet, ranges(searchRange{start: tree.Append(3, 1, 2, 1)})); len(got) != 1 || string(got[0].Value.([]byte)) != "VI_1" {
		t.Errorf("get after reconnecting: %+v", got)
	}
	// a request in a context govs does not serve finds nothing there
	var ctxReq bytes.Buffer
	putString(&ctxReq, []byte("other"))
	ctxReq.Write(ranges(searchRange{start: tree.Append(3, 1, 2, 1)}))
	m.c.packet++
	if err := m.c.write(pduGet, flagNonDefaultCtx, 7, 99, m.c.packet, ctxReq.Bytes()); err != nil {
		t.Fatal(err)
	}
	if h := m.expect(pduResponse); bytes.Contains(h.payload, []byte("VI_1")) {
		t.Errorf("non-default context answered from the default one: %x", h.payload)
	}
	// a string longer than the packet is refused, not read past
	var long bytes.Buffer
	long.Write([]byte{0xff, 0xff, 0xff, 0xf0})
	if _, _, err := getString(long.Bytes(), binary.BigEndian); err == nil {
		t.Error("a string of 4 GiB read from 4 bytes")
	}
	// a little-endian request is read as such
	var le bytes.Buffer
	oid := tree.Append(3, 1, 2, 2)
	le.Write([]byte{byte(len(oid) - 5), byte(oid[4]), 0, 0})
	for _, v := range oid[5:] {
		le.Write(binary.LittleEndian.AppendUint32(nil, v))
	}
	le.Write([]byte{0, 0, 0, 0})
	hdr := make([]byte, headerLen)
	hdr[0], hdr[1] = 1, pduGet
	binary.LittleEndian.PutUint32(hdr[4:], 7)
	binary.LittleEndian.PutUint32(hdr[12:], 500)
	binary.LittleEndian.PutUint32(hdr[16:], uint32(le.Len()))
	m.c.c.Write(append(hdr, le.Bytes()...))
	h := m.expect(pduResponse)
	if h.packet != 500 || !bytes.Contains(h.payload, []byte("VI_6")) {
		t.Errorf("little-endian get: packet %d payload %x", h.packet, h.payload)
	}
}

func TestParseOID(t *testing.T) {
	o, err := ParseOID(".1.3.6.1.2.1.68")
	if err != nil || o.String() != ".1.3.6.1.2.1.68" || !o.Append(1).HasPrefix(o) || o.HasPrefix(o.Append(1)) {
		t.Errorf("%v %v", o, err)
	}
	if _, err := ParseOID("1.x"); err == nil {
		t.Error("1.x parsed")
	}
}
