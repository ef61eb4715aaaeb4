package bfd

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"
)

// Config is one session: keepalived's bfd_instance.
type Config struct {
	Name string `json:"name"`
	// Peer is neighbor_ip; Source is source_ip (unset: the kernel's
	// choice toward Peer).
	Peer   netip.Addr `json:"neighbor_ip"`
	Source netip.Addr `json:"source_ip,omitzero"`
	// MinRx is the required minimum receive interval, MinTx the desired
	// minimum transmit interval while Up, IdleTx the one while not Up
	// (defaults 10 ms, 10 ms and 1 s).
	MinRx  time.Duration `json:"min_rx"`
	MinTx  time.Duration `json:"min_tx"`
	IdleTx time.Duration `json:"idle_tx"`
	// Multiplier is how many intervals without a packet bring the
	// session down (default 5).
	Multiplier int `json:"multiplier"`
	// Passive: send nothing until the peer has sent.
	Passive bool `json:"passive,omitempty"`
	// TTL is the outgoing TTL (IPv4, default 255) or hop limit (IPv6,
	// default 64), as keepalived's; MaxHops how far below TTL a
	// received one may be (default 0, as keepalived measures it; -1
	// disables the check).
	TTL     int `json:"ttl"`
	MaxHops int `json:"max_hops,omitempty"`
}

// The defaults, as keepalived's.
const (
	DefaultMinRx      = 10 * time.Millisecond
	DefaultMinTx      = 10 * time.Millisecond
	DefaultIdleTx     = time.Second
	DefaultMultiplier = 5
	DefaultTTL        = 255
	DefaultHopLimit   = 64
)

// WithDefaults fills the unset fields.
func (c Config) WithDefaults() Config {
	if c.MinRx == 0 {
		c.MinRx = DefaultMinRx
	}
	if c.MinTx == 0 {
		c.MinTx = DefaultMinTx
	}
	if c.IdleTx == 0 {
		c.IdleTx = DefaultIdleTx
	}
	if c.Multiplier == 0 {
		c.Multiplier = DefaultMultiplier
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
		if !c.Peer.Unmap().Is4() {
			c.TTL = DefaultHopLimit
		}
	}
	return c
}

// Validate reports what a session cannot run with.
func (c *Config) Validate() error {
	var errs []error
	bad := func(f string, a ...any) { errs = append(errs, fmt.Errorf(f, a...)) }
	if !c.Peer.IsValid() || c.Peer.IsUnspecified() || c.Peer.IsMulticast() {
		bad("neighbor_ip %v is not a unicast address", c.Peer)
	}
	if c.Peer.Unmap().IsLinkLocalUnicast() || c.Source.Unmap().IsLinkLocalUnicast() {
		bad("link-local addresses are not supported (use the neighbor's global address)")
	}
	if c.Source.IsValid() && c.Source.Unmap().Is4() != c.Peer.Unmap().Is4() {
		bad("source_ip %s and neighbor_ip %s are of different families", c.Source, c.Peer)
	}
	for _, iv := range []struct {
		name string
		d    time.Duration
		min  time.Duration
	}{{"min_rx", c.MinRx, time.Millisecond}, {"min_tx", c.MinTx, time.Millisecond}, {"idle_tx", c.IdleTx, time.Second}} {
		if iv.d < iv.min || iv.d > time.Duration(1<<32-1)*time.Microsecond {
			bad("%s %v out of range %v..4294s", iv.name, iv.d, iv.min)
		}
	}
	if c.Multiplier < 1 || c.Multiplier > 255 {
		bad("multiplier %d out of range 1..255", c.Multiplier)
	}
	if c.TTL < 1 || c.TTL > 255 {
		bad("ttl %d out of range 1..255", c.TTL)
	}
	if c.MaxHops < -1 || c.MaxHops > 255 {
		bad("max_hops %d out of range -1..255", c.MaxHops)
	}
	return errors.Join(errs...)
}

// session is the state of one session (RFC 5880 §6.8.1) with its
// timers, on an explicit clock: the daemon feeds it packets and the
// time.
type session struct {
	cfg                     Config
	state, remoteState      State
	diag, remoteDiag        Diag
	localDiscr, remoteDiscr uint32
	remoteMinRx             time.Duration // bfd.RemoteMinRxInterval
	remoteMinTx             time.Duration
	remoteMult              uint8
	// poll: a Poll Sequence is running (our intervals changed): our
	// packets carry P until the peer answers with F; final: the next
	// packet answers the peer's Poll
	poll, final bool
	// prev is the configuration before a reconfiguration whose Poll
	// Sequence runs: until it ends, the faster of the two transmit
	// intervals and the longer detection time are used (RFC 5880 §6.8.3)
	prev *Config
	// heard: a packet came since the session last went down (a passive
	// session sends only then)
	heard    bool
	detectAt time.Time // zero: no detection running
	nextTx   time.Time
	since    time.Time // last state change
	ups      uint64
}

func newSession(cfg Config, discr uint32, now time.Time) *session {
	return &session{cfg: cfg, state: Down, localDiscr: discr, remoteMinRx: time.Microsecond, since: now, nextTx: now}
}

// desiredTx is bfd.DesiredMinTxInterval: min_tx while Up, idle_tx
// otherwise (RFC 5880 §6.8.3 wants a slow rate while not Up).
func (s *session) desiredTx() time.Duration {
	if s.state == Up {
		return s.cfg.MinTx
	}
	return s.cfg.IdleTx
}

// txInterval is the interval between periodic packets; 0 when the peer
// asked for none (a required minimum receive interval of 0).
func (s *session) txInterval() time.Duration {
	if s.remoteMinRx == 0 {
		return 0
	}
	tx := s.desiredTx()
	if s.prev != nil && s.state == Up {
		// a slower min_tx waits for the Poll Sequence's end (a faster
		// one applies at once)
		tx = min(tx, s.prev.MinTx)
	}
	return max(tx, s.remoteMinRx)
}

// detectTime is the time without a packet after which an Init or Up
// session goes down (asynchronous mode, RFC 5880 §6.8.4).
func (s *session) detectTime() time.Duration {
	rx := s.cfg.MinRx
	if s.prev != nil {
		rx = max(rx, s.prev.MinRx)
	}
	return time.Duration(s.remoteMult) * max(rx, s.remoteMinTx)
}

// setState changes the state; it reports whether it changed.
func (s *session) setState(st State, diag Diag, now time.Time) bool {
	if st == s.state {
		return false
	}
	s.state, s.since = st, now
	if diag != DiagNone || st == Up {
		s.diag = diag
	}
	// the peer learns the new state at once rather than an idle
	// interval later (as FRR and keepalived do)
	s.nextTx = now
	switch st {
	case Up:
		s.ups++
		// our transmit interval drops from idle_tx to min_tx
		s.poll = true
	case Down:
		s.poll, s.heard, s.prev = false, false, nil
		s.remoteDiscr = 0
		s.detectAt = time.Time{}
	}
	return true
}

// receive applies a checked packet (RFC 5880 §6.8.6); it reports
// whether the state changed.
func (s *session) receive(p Packet, now time.Time) bool {
	if s.state == AdminDown {
		return false
	}
	s.remoteDiscr = p.MyDiscr
	s.remoteState, s.remoteDiag = p.State, p.Diag
	s.remoteMult = p.DetectMult
	s.remoteMinRx = time.Duration(p.RequiredMinRx) * time.Microsecond
	s.remoteMinTx = time.Duration(p.DesiredMinTx) * time.Microsecond
	if p.Final {
		s.poll, s.prev = false, nil
	}
	changed := false
	switch {
	case p.State == AdminDown:
		changed = s.setState(Down, DiagNeighborDown, now)
	case s.state == Down && p.State == Down:
		changed = s.setState(Init, DiagNone, now)
	case s.state == Down && p.State == Init, s.state == Init && (p.State == Init || p.State == Up):
		changed = s.setState(Up, DiagNone, now)
	case s.state == Up && p.State == Down:
		changed = s.setState(Down, DiagNeighborDown, now)
	}
	if p.State != AdminDown {
		s.remoteDiscr = p.MyDiscr // setState(Down) cleared it
		s.heard = true
		s.detectAt = now.Add(s.detectTime())
	}
	if p.Poll {
		s.final = true
		s.nextTx = now
	}
	if s.nextTx.IsZero() || s.txInterval() > 0 && s.nextTx.After(now.Add(s.txInterval())) {
		s.nextTx = now.Add(s.jittered())
	}
	return changed
}

// expire takes an Init or Up session down once the detection time
// passed without a packet; it reports whether the state changed.
func (s *session) expire(now time.Time) bool {
	if s.detectAt.IsZero() || now.Before(s.detectAt) {
		return false
	}
	s.detectAt = time.Time{}
	if s.state == Init || s.state == Up {
		return s.setState(Down, DiagDetectionExpired, now)
	}
	s.remoteDiscr, s.heard = 0, false
	return false
}

// jittered is the transmit interval less 0-25 % (0-10 % more with a
// multiplier of 1), RFC 5880 §6.8.7.
func (s *session) jittered() time.Duration {
	iv := s.txInterval()
	if iv == 0 {
		return 0
	}
	lo := 0.75
	hi := 1.0
	if s.cfg.Multiplier == 1 {
		hi = 0.9
	}
	return time.Duration(float64(iv) * (lo + rand.Float64()*(hi-lo)))
}

// due reports whether a packet is to be sent at now: the next periodic
// one, or the answer to a Poll. A passive session sends only once it
// heard from the peer.
func (s *session) due(now time.Time) bool {
	if s.state == AdminDown || s.cfg.Passive && !s.heard && !s.final {
		return false
	}
	if s.final {
		return true
	}
	return s.txInterval() > 0 && !now.Before(s.nextTx)
}

// packet builds the next packet to send and schedules the one after.
func (s *session) packet(now time.Time) Packet {
	p := Packet{
		Diag: s.diag, State: s.state, DetectMult: uint8(s.cfg.Multiplier),
		MyDiscr: s.localDiscr, YourDiscr: s.remoteDiscr,
		DesiredMinTx:  uint32(s.desiredTx() / time.Microsecond),
		RequiredMinRx: uint32(s.cfg.MinRx / time.Microsecond),
	}
	if s.final {
		// a Final answers the Poll; it carries no Poll of its own
		p.Final, s.final = true, false
	} else {
		p.Poll = s.poll
	}
	if iv := s.jittered(); iv > 0 && !now.Before(s.nextTx) {
		s.nextTx = now.Add(iv)
	}
	return p
}

// next is when the session needs the clock again (zero: never).
func (s *session) next() time.Time {
	t := s.detectAt
	if s.state != AdminDown && (!s.cfg.Passive || s.heard) && s.txInterval() > 0 && (t.IsZero() || s.nextTx.Before(t)) {
		t = s.nextTx
	}
	return t
}

// reconfigure takes new intervals and settings of the same peer; an Up
// session runs a Poll Sequence for them.
func (s *session) reconfigure(cfg Config, now time.Time) {
	changed := cfg.MinRx != s.cfg.MinRx || cfg.MinTx != s.cfg.MinTx || cfg.IdleTx != s.cfg.IdleTx || cfg.Multiplier != s.cfg.Multiplier
	if changed && s.state == Up {
		if s.prev == nil {
			old := s.cfg
			s.prev = &old
		}
		s.poll = true
		s.nextTx = now
	}
	s.cfg = cfg
}
