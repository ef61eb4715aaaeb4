package bfd

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func pair(t *testing.T, passiveB bool) (a, b *session, now time.Time) {
	t.Helper()
	now = time.Unix(1000, 0)
	ca := Config{Name: "a", Peer: netip.MustParseAddr("10.0.0.2")}.WithDefaults()
	cb := Config{Name: "b", Peer: netip.MustParseAddr("10.0.0.1"), Passive: passiveB}.WithDefaults()
	return newSession(ca, 11, now), newSession(cb, 22, now), now
}

// step sends what is due from x to y (through the codec) at now and
// reports how many packets went.
func step(t *testing.T, x, y *session, now time.Time, deliver bool) int {
	t.Helper()
	n := 0
	for x.due(now) && n < 4 {
		p, err := Parse(func() []byte { pk := x.packet(now); return pk.Marshal() }())
		if err != nil {
			t.Fatalf("own packet does not parse: %v", err)
		}
		if p.Poll && p.Final {
			t.Fatal("a packet with both Poll and Final")
		}
		if deliver {
			y.receive(p, now)
		}
		n++
	}
	return n
}

// run advances both sessions in 1 ms steps for d, delivering a→b and
// b→a as asked.
func run(t *testing.T, a, b *session, now time.Time, d time.Duration, ab, ba bool) time.Time {
	t.Helper()
	for end := now.Add(d); now.Before(end); now = now.Add(time.Millisecond) {
		a.expire(now)
		b.expire(now)
		step(t, a, b, now, ab)
		step(t, b, a, now, ba)
	}
	return now
}

// TestSessionUpDown: two sessions come up through Down → Init → Up, end
// their Poll Sequences and send at min_tx; one that stops hearing goes
// down after the detection time (control detection time expired), and
// its peer on hearing Down (neighbor signaled session down); they come
// up again, and AdminDown takes the peer down without a failure.
func TestSessionUpDown(t *testing.T) {
	a, b, now := pair(t, false)
	now = run(t, a, b, now, 20*time.Millisecond, true, true)
	if a.state != Up || b.state != Up {
		t.Fatalf("not up after 20 ms: %v %v", a.state, b.state)
	}
	now = run(t, a, b, now, 50*time.Millisecond, true, true)
	if a.poll || b.poll {
		t.Errorf("Poll Sequence not ended: %v %v", a.poll, b.poll)
	}
	if iv := a.txInterval(); iv != 10*time.Millisecond {
		t.Errorf("tx interval when Up %v, want min_tx 10ms", iv)
	}
	if dt := a.detectTime(); dt != 50*time.Millisecond {
		t.Errorf("detection time %v, want 5 × 10 ms", dt)
	}
	// b's packets stop reaching a
	start := now
	for a.state == Up && now.Sub(start) < time.Second {
		now = run(t, a, b, now, time.Millisecond, true, false)
	}
	if a.state != Down || a.diag != DiagDetectionExpired {
		t.Fatalf("a: %v %v", a.state, a.diag)
	}
	if took := now.Sub(start); took < 40*time.Millisecond || took > 60*time.Millisecond {
		t.Errorf("down after %v, want the 50 ms detection time", took)
	}
	now = run(t, a, b, now, 5*time.Millisecond, true, false)
	if b.state != Down || b.diag != DiagNeighborDown {
		t.Errorf("b after hearing Down: %v %v", b.state, b.diag)
	}
	// a idles at idle_tx while down
	if iv := a.txInterval(); iv != time.Second {
		t.Errorf("tx interval when Down %v, want idle_tx 1s", iv)
	}
	now = run(t, a, b, now, 3*time.Second, true, true)
	if a.state != Up || b.state != Up || a.ups != 2 {
		t.Fatalf("not up again: %v %v ups %d", a.state, b.state, a.ups)
	}
	// as Daemon.Close: AdminDown, one packet saying so
	a.setState(AdminDown, DiagAdminDown, now)
	pk := a.packet(now)
	if pk.State != AdminDown || pk.Diag != DiagAdminDown {
		t.Fatalf("AdminDown packet %+v", pk)
	}
	b.receive(pk, now)
	if b.state != Down || b.diag != DiagNeighborDown {
		t.Errorf("b after AdminDown: %v %v", b.state, b.diag)
	}
	if a.due(now.Add(time.Hour)) {
		t.Error("an AdminDown session sends")
	}
}

// TestSessionPassive: a passive session sends nothing until it heard
// from its peer, then comes up.
func TestSessionPassive(t *testing.T) {
	a, b, now := pair(t, true)
	if n := step(t, b, a, now, true); n != 0 {
		t.Fatalf("passive session sent %d packets unasked", n)
	}
	run(t, a, b, now, 3*time.Second, true, true)
	if a.state != Up || b.state != Up {
		t.Fatalf("%v %v", a.state, b.state)
	}
}

// TestSessionPollFinal: a Poll is answered at once with a Final, and a
// Final ends our Poll Sequence; the peer's required receive interval
// slows our transmissions, 0 stops them.
func TestSessionPollFinal(t *testing.T) {
	a, b, now := pair(t, false)
	now = run(t, a, b, now, 100*time.Millisecond, true, true)
	b.reconfigure(Config{Name: "b", Peer: b.cfg.Peer, MinRx: 30 * time.Millisecond, MinTx: 20 * time.Millisecond,
		IdleTx: time.Second, Multiplier: 3, TTL: 255}, now)
	if !b.poll || !b.due(now) {
		t.Fatal("no Poll Sequence started by the new intervals")
	}
	p := b.packet(now)
	if !p.Poll || p.RequiredMinRx != 30000 || p.DesiredMinTx != 20000 || p.DetectMult != 3 {
		t.Fatalf("poll packet %+v", p)
	}
	// until the Final: b sends at its old, faster rate; its detection
	// time already allows for the slower rate it asked a for
	if iv := b.txInterval(); iv != 10*time.Millisecond {
		t.Errorf("b's tx interval during the Poll Sequence %v, want the old 10ms", iv)
	}
	a.receive(p, now)
	if !a.due(now) {
		t.Fatal("no immediate answer to a Poll")
	}
	f := a.packet(now)
	if !f.Final || f.Poll {
		t.Fatalf("answer %+v", f)
	}
	b.receive(f, now)
	if b.poll || b.prev != nil {
		t.Error("Final did not end the Poll Sequence")
	}
	if iv := b.txInterval(); iv != 20*time.Millisecond {
		t.Errorf("b's tx interval after the Poll Sequence %v, want the new 20ms", iv)
	}
	if iv := a.txInterval(); iv != 30*time.Millisecond {
		t.Errorf("a's tx interval %v, want b's min_rx 30ms", iv)
	}
	if dt := a.detectTime(); dt != 60*time.Millisecond {
		t.Errorf("a's detection time %v, want 3 × max(10ms, 20ms)", dt)
	}
	for range 100 {
		if j := a.jittered(); j < 22*time.Millisecond || j > 30*time.Millisecond {
			t.Fatalf("jittered interval %v outside 75-100 %% of 30ms", j)
		}
	}
	p = b.packet(now)
	p.RequiredMinRx = 0
	a.receive(p, now)
	if a.due(now.Add(time.Hour)) {
		t.Error("sends to a peer that asked for no packets")
	}
}

// TestParse: the reception checks of RFC 5880 §6.8.6.
func TestParse(t *testing.T) {
	good := (&Packet{State: Up, DetectMult: 3, MyDiscr: 1, YourDiscr: 2, DesiredMinTx: 10000, RequiredMinRx: 10000, Diag: DiagNeighborDown}).Marshal()
	p, err := Parse(good)
	if err != nil || p.State != Up || p.MyDiscr != 1 || p.YourDiscr != 2 || p.DesiredMinTx != 10000 || p.Diag != DiagNeighborDown {
		t.Fatalf("%+v %v", p, err)
	}
	mod := func(f func(b []byte) []byte) []byte {
		b := append([]byte(nil), good...)
		return f(b)
	}
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"short", good[:23], ErrShort},
		{"version 0", mod(func(b []byte) []byte { b[0] &^= 0xe0; return b }), ErrVersion},
		{"length past the end", mod(func(b []byte) []byte { b[3] = 30; return b }), ErrLength},
		{"length under 24", mod(func(b []byte) []byte { b[3] = 20; return b }), ErrLength},
		{"auth", mod(func(b []byte) []byte { b[1] |= 0x04; return b }), ErrAuth},
		{"detect mult 0", mod(func(b []byte) []byte { b[2] = 0; return b }), ErrDetectMult},
		{"multipoint", mod(func(b []byte) []byte { b[1] |= 0x01; return b }), ErrMultipoint},
		{"my discr 0", mod(func(b []byte) []byte { copy(b[4:8], []byte{0, 0, 0, 0}); return b }), ErrMyDiscr},
		{"your discr 0 when up", mod(func(b []byte) []byte { copy(b[8:12], []byte{0, 0, 0, 0}); return b }), ErrYourDiscr},
	} {
		if _, err := Parse(c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// your discriminator 0 is fine while Down, and a longer buffer
	// with the length field 24 too
	down := (&Packet{State: Down, DetectMult: 3, MyDiscr: 1}).Marshal()
	if _, err := Parse(append(down, 0, 0)); err != nil {
		t.Errorf("Down with your discriminator 0: %v", err)
	}
}

// TestConfig: defaults and what Validate refuses.
func TestConfig(t *testing.T) {
	c := Config{Name: "x", Peer: netip.MustParseAddr("10.0.0.1")}.WithDefaults()
	if c.MinRx != 10*time.Millisecond || c.MinTx != 10*time.Millisecond || c.IdleTx != time.Second || c.Multiplier != 5 || c.TTL != 255 {
		t.Errorf("defaults %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	if c6 := (Config{Name: "y", Peer: netip.MustParseAddr("2001:db8::1")}).WithDefaults(); c6.TTL != 64 {
		t.Errorf("IPv6 hop limit %d, want keepalived's 64", c6.TTL)
	}
	for _, b := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"families", func(c *Config) { c.Source = netip.MustParseAddr("2001:db8::1") }, "different families"},
		{"multiplier", func(c *Config) { c.Multiplier = 0 }, "multiplier 0 out of range"},
		{"multicast", func(c *Config) { c.Peer = netip.MustParseAddr("224.0.0.1") }, "not a unicast address"},
		{"link-local", func(c *Config) { c.Peer = netip.MustParseAddr("fe80::1") }, "link-local"},
		{"idle_tx", func(c *Config) { c.IdleTx = 500 * time.Millisecond }, "idle_tx 500ms out of range"},
		{"min_rx", func(c *Config) { c.MinRx = 100 * time.Microsecond }, "min_rx 100µs out of range"},
		{"max_hops", func(c *Config) { c.MaxHops = -2 }, "max_hops -2 out of range"},
	} {
		bad := c
		b.mod(&bad)
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: %v, want %q", b.name, err, b.want)
		}
	}
}
