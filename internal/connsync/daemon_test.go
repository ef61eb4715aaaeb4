package connsync

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/govs/govs/internal/dataplane"
)

// fakeDP is a connection table; it records what it is given to import.
type fakeDP struct {
	mu       sync.Mutex
	conns    []dataplane.Conn
	imported []dataplane.Conn
	accept   func(dataplane.Conn) bool
}

func (f *fakeDP) Apply(context.Context, []dataplane.Service) error { return nil }
func (f *fakeDP) Stats(context.Context) (dataplane.Snapshot, error) {
	return dataplane.Snapshot{}, nil
}
func (f *fakeDP) Close() error { return nil }
func (f *fakeDP) Conns(_ context.Context, fn func(dataplane.Conn) bool) error {
	f.mu.Lock()
	cs := append([]dataplane.Conn(nil), f.conns...)
	f.mu.Unlock()
	for _, c := range cs {
		if !fn(c) {
			break
		}
	}
	return nil
}
func (f *fakeDP) ImportConns(_ context.Context, cs []dataplane.Conn) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range cs {
		if f.accept == nil || f.accept(c) {
			f.imported = append(f.imported, c)
			n++
		}
	}
	return n, nil
}

func (f *fakeDP) set(cs ...dataplane.Conn) {
	f.mu.Lock()
	f.conns = cs
	f.mu.Unlock()
}

func conn(client, state string, exp time.Duration) dataplane.Conn {
	return dataplane.Conn{Proto: dataplane.TCP, Client: ap(client), Virtual: ap("10.0.0.100:80"), Real: ap("10.0.0.11:80"),
		State: state, Expires: exp, Method: dataplane.DR}
}

func clients(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Client.String()+"/"+tcpStates[e.State])
	}
	return out
}

// The sender sends what is new or changed, and refreshes what stays
// alive, not every connection every round.
func TestCollectChanges(t *testing.T) {
	dp := &fakeDP{}
	var ch changes
	t0 := time.Unix(1000, 0)
	a := conn("10.0.0.1:1000", "SYN_RECV", 60*time.Second)
	b := conn("10.0.0.2:1000", "ESTABLISHED", 900*time.Second)
	dp.set(a, b)
	step := func(now time.Time, want ...string) {
		t.Helper()
		got, err := ch.collect(context.Background(), dp, now)
		if err != nil {
			t.Fatal(err)
		}
		if g := clients(got); len(g) != len(want) || (len(g) > 0 && !equalStrings(g, want)) {
			t.Fatalf("at %v: sent %v, want %v", now.Sub(t0), g, want)
		}
	}
	step(t0, "10.0.0.1:1000/SYN_RECV", "10.0.0.2:1000/ESTABLISHED")
	step(t0.Add(time.Second)) // nothing changed
	// a's state changes; b is kept alive by traffic (its expiry moves
	// with the clock) but is not sent again until a minute has gone
	a.State = "ESTABLISHED"
	a.Expires = 900 * time.Second
	dp.set(a, b)
	step(t0.Add(2*time.Second), "10.0.0.1:1000/ESTABLISHED")
	step(t0.Add(30 * time.Second))
	step(t0.Add(61*time.Second), "10.0.0.2:1000/ESTABLISHED")
	// an idle connection (expiry not moving) is not refreshed
	b.Expires = 900*time.Second - 60*time.Second
	dp.set(a, b)
	step(t0.Add(121*time.Second), "10.0.0.1:1000/ESTABLISHED")
	// a connection that goes and comes back is sent again
	dp.set(a)
	step(t0.Add(122 * time.Second))
	dp.set(a, b)
	step(t0.Add(123*time.Second), "10.0.0.2:1000/ESTABLISHED")
	// another real server is a change
	b.Real = ap("10.0.0.12:80")
	dp.set(a, b)
	step(t0.Add(124*time.Second), "10.0.0.2:1000/ESTABLISHED")
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Connections go through the record and come back as they were, the
// states the wire cannot carry left out.
func TestConnRecordRoundTrip(t *testing.T) {
	in := []dataplane.Conn{
		conn("10.0.0.1:1000", "ESTABLISHED", 899*time.Second+time.Millisecond),
		{Proto: dataplane.UDP, Client: ap("10.0.0.2:53"), Virtual: ap("10.0.0.100:53"), Real: ap("10.0.0.12:53"), State: "UDP", Expires: 300 * time.Second, Method: dataplane.NAT},
		{Proto: dataplane.TCP, Client: ap("[2001:db8::1]:5"), Virtual: ap("[2001:db8::100]:80"), Real: ap("[2001:db8::11]:80"),
			Local: ap("[2001:db8::3]:40000"), State: "FIN_WAIT", Expires: 120 * time.Second, Method: dataplane.SNAT},
		{Proto: dataplane.TCP, Client: ap("10.1.0.0:0"), Virtual: ap("10.0.0.100:80"), Real: ap("10.0.0.11:80"), State: "NONE", Expires: 300 * time.Second, Template: true, Method: dataplane.TUN},
		{Proto: 0, Client: ap("10.1.0.0:0"), Real: ap("10.0.0.11:80"), State: "NONE", Expires: 300 * time.Second, Template: true, FWMark: 9, Method: dataplane.DR},
		{Proto: dataplane.TCP, Client: ap("10.0.0.5:999"), Virtual: ap("10.0.0.100:8080"), Real: ap("10.0.0.13:0"), State: "ESTABLISHED", Expires: 900 * time.Second, Method: dataplane.NAT},
	}
	want := append([]dataplane.Conn(nil), in...)
	want[0].Expires = 900 * time.Second // whole seconds, rounded up
	want[5].Real = ap("10.0.0.13:8080") // IPVS's dest->port ?: vport
	var es []Entry
	for _, c := range in {
		e, ok := entryOf(c)
		if !ok {
			t.Fatalf("%+v not sent", c)
		}
		es = append(es, e)
	}
	// the kernel's template of a firewall-mark service: the mark as
	// the virtual address, no NO_CPORT flag
	if es[4].Virtual != ap("0.0.0.9:0") || es[4].Flags != FlagDRoute|FlagTemplate || es[3].Flags != FlagTunnel|FlagTemplate {
		t.Errorf("templates on the wire: %+v, %+v", es[3], es[4])
	}
	msgs, err := Encode(0, es, 1472)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Decode(msgs[0])
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range m.Entries {
		c, ok := connOf(e)
		if !ok || c != want[i] {
			t.Errorf("record %d: %+v (%v), want %+v", i, c, ok, want[i])
		}
	}
	if e := (conn("10.0.0.1:1", "NOSUCH", time.Second)); true {
		if _, ok := entryOf(e); ok {
			t.Error("an unknown TCP state was sent")
		}
	}
	if _, ok := connOf(Entry{Proto: 6, State: 0, Client: ap("10.0.0.1:1"), Virtual: ap("10.0.0.2:2"), Real: ap("10.0.0.3:3")}); ok {
		t.Error("TCP state NONE taken for a connection")
	}
	if _, ok := connOf(Entry{Proto: 132, Client: ap("10.0.0.1:1"), Virtual: ap("10.0.0.2:2"), Real: ap("10.0.0.3:3")}); ok {
		t.Error("an SCTP connection taken")
	}
}

// A connection taken from the peer is not sent back by a sender running
// beside the receiver, until it changes here.
func TestCollectSkipsImported(t *testing.T) {
	dp := &fakeDP{}
	var ch changes
	t0 := time.Unix(1000, 0)
	a := conn("10.0.0.1:1000", "ESTABLISHED", 900*time.Second)
	b := conn("10.0.0.2:1000", "ESTABLISHED", 900*time.Second)
	dp.set(a)
	if got, _ := ch.collect(context.Background(), dp, t0); len(got) != 1 {
		t.Fatalf("first round sent %v", clients(got))
	}
	ch.note(b, t0.Add(time.Second)) // b arrives from the peer
	dp.set(a, b)
	if got, _ := ch.collect(context.Background(), dp, t0.Add(time.Second)); len(got) != 0 {
		t.Fatalf("an imported connection was sent back: %v", clients(got))
	}
	b.State = "FIN_WAIT"
	b.Expires = 120 * time.Second
	dp.set(a, b)
	if got, _ := ch.collect(context.Background(), dp, t0.Add(2*time.Second)); len(got) != 1 || got[0].Client != b.Client {
		t.Fatalf("an imported connection that changed here was not sent: %v", clients(got))
	}
}

// An idle connection taken from the peer is not sent back when the
// five-minute resend comes (the peer resends it itself); one of ours is.
func TestResendSkipsImported(t *testing.T) {
	dp := &fakeDP{}
	var s Sender
	s.MaxLen = 1472
	t0 := time.Unix(1000, 0)
	ours := conn("10.0.0.1:1000", "ESTABLISHED", 900*time.Second)
	peer := conn("10.0.0.2:1000", "ESTABLISHED", 900*time.Second)
	dp.set(ours)
	if _, n, _ := s.Round(context.Background(), dp, t0); n != 1 {
		t.Fatalf("first round sent %d", n)
	}
	s.noteImported([]dataplane.Conn{peer}, t0)
	// both idle: their expiries do not move
	idle := func(c dataplane.Conn, at time.Time) dataplane.Conn {
		c.Expires -= at.Sub(t0)
		return c
	}
	at := t0.Add(resendAfter + time.Second)
	dp.set(idle(ours, at), idle(peer, at))
	_, _, err := s.Round(context.Background(), dp, at)
	if err != nil {
		t.Fatal(err)
	}
	if got := clients(s.last); len(got) != 1 || got[0] != "10.0.0.1:1000/ESTABLISHED" {
		t.Fatalf("the resend round sent %v, want only our own connection", got)
	}
}

// Connections of messages that did not go out are sent again next round,
// the others are not.
func TestUnsent(t *testing.T) {
	dp := &fakeDP{}
	var cs []dataplane.Conn
	for i := range 100 {
		cs = append(cs, conn(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, 0, byte(i)}), 1000).String(), "ESTABLISHED", 900*time.Second))
	}
	dp.set(cs...)
	s := Sender{MaxLen: 1472} // 40 records a message: 3 messages
	t0 := time.Unix(1000, 0)
	msgs, n, err := s.Round(context.Background(), dp, t0)
	if err != nil || n != 100 || len(msgs) != 3 {
		t.Fatalf("%d messages, %d connections, %v", len(msgs), n, err)
	}
	s.Unsent(msgs[1:]) // only the first went out
	_, n, _ = s.Round(context.Background(), dp, t0.Add(time.Second))
	if n != 60 {
		t.Fatalf("after a failed send %d connections sent again, want the 60 of the two lost messages", n)
	}
	if s.last[0].Client != cs[40].Client {
		t.Errorf("resent from %s, want %s", s.last[0].Client, cs[40].Client)
	}
}

// A kernel master's template carries the packet's mark even for a
// service that is not a firewall-mark one: it keeps its address; the
// template of a firewall-mark service (the mark as its address) gets
// none, as govs lists it.
func TestTemplateMarks(t *testing.T) {
	port := Entry{Proto: 6, Flags: FlagDRoute | FlagTemplate, FWMark: 7, Client: ap("10.1.0.0:0"), Virtual: ap("10.0.0.100:80"), Real: ap("10.0.0.11:80"), Timeout: 300}
	if c, ok := connOf(port); !ok || c.Virtual != ap("10.0.0.100:80") {
		t.Errorf("marked template of a port service: %+v", c)
	}
	mark := port
	mark.Virtual = ap("0.0.0.7:0")
	if c, ok := connOf(mark); !ok || c.Virtual.IsValid() {
		t.Errorf("template of a firewall-mark service: %+v", c)
	}
	mark6 := Entry{Proto: 0, Flags: FlagDRoute | FlagTemplate, FWMark: 7, Client: ap("[2001:db8::]:0"), Virtual: netip.AddrPortFrom(markAddr(7, true), 0), Real: ap("[2001:db8::11]:80"), Timeout: 300}
	if c, ok := connOf(mark6); !ok || c.Virtual.IsValid() {
		t.Errorf("IPv6 template of a firewall-mark service: %+v", c)
	}
}
