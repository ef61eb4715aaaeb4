package connsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/govs/govs/internal/dataplane"
)

// Importer is a dataplane that can take connections made elsewhere into
// its connection table (the xdp dataplane). It returns how many it took;
// the others belong to services or real servers it does not have.
type Importer interface {
	ImportConns(ctx context.Context, conns []dataplane.Conn) (int, error)
}

// Config is lvs_sync_daemon's.
type Config struct {
	Interface string
	// SyncID is put in sent messages; a receiver with a non-zero one
	// ignores messages with another (as IPVS: 0 takes every message).
	SyncID uint8
	// MaxLen is the largest UDP payload sent; 0 is the kernel's default
	// for a 1500-byte MTU.
	MaxLen int
	Group  netip.Addr // invalid: 224.0.0.81
	Port   int        // 0: 8848
	TTL    int        // 0: 1
	// Interval is how often the sender looks for new and changed
	// connections (0: one second). A table that takes long to read is
	// read less often (at most a tenth of the time is spent reading).
	Interval time.Duration
}

// WithDefaults is c with the kernel's defaults filled in.
func (c Config) WithDefaults() Config {
	if !c.Group.IsValid() {
		c.Group = DefaultGroup4
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.TTL == 0 {
		c.TTL = 1
	}
	if c.MaxLen == 0 {
		c.MaxLen = 1500 - 28
		if c.Group.Is6() {
			c.MaxLen = 1500 - 48
		}
	}
	c.MaxLen = max(c.MaxLen, minMaxLen)
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	return c
}

// minMaxLen fits one IPv6 record with govs's option.
const minMaxLen = headerLen + conn6Len + 2 + 18

// Role says what the daemon does: send (MASTER), receive (BACKUP), both
// or neither.
type Role uint8

const (
	RoleMaster Role = 1 << iota
	RoleBackup
)

func (r Role) String() string {
	switch r {
	case 0:
		return "none"
	case RoleMaster:
		return "master"
	case RoleBackup:
		return "backup"
	}
	return "master+backup"
}

// Stats are the daemon's counters since it started.
type Stats struct {
	Role             string `json:"role"`
	MessagesSent     uint64 `json:"messages_sent"`
	ConnsSent        uint64 `json:"conns_sent"`
	SendErrors       uint64 `json:"send_errors"`
	MessagesReceived uint64 `json:"messages_received"`
	ConnsReceived    uint64 `json:"conns_received"`
	ConnsImported    uint64 `json:"conns_imported"`
	// ConnsNotTaken are received connections the dataplane did not
	// take: of services or real servers this director does not have, or
	// in states it does not keep.
	ConnsNotTaken uint64 `json:"conns_not_taken"`
	// Malformed are messages dropped as malformed or of another
	// protocol version; OtherSyncID those of another sync ID.
	Malformed   uint64 `json:"malformed"`
	OtherSyncID uint64 `json:"other_sync_id"`
	// Dropped are messages the kernel dropped before the receiver read
	// them, its socket buffer full (SO_RXQ_OVFL).
	Dropped uint64 `json:"dropped"`
	// LastError is the last error met (opening a socket, sending,
	// importing), empty when none.
	LastError string `json:"last_error,omitempty"`
}

// Daemon sends this director's connections (master role) or takes the
// peer's (backup role).
type Daemon struct {
	cfg Config
	dp  dataplane.Dataplane
	imp Importer
	log *slog.Logger

	// mu serialises role changes; role is read without it (Stats).
	mu      sync.Mutex
	role    atomic.Uint32
	cancels map[Role]context.CancelFunc
	closed  bool
	wg      sync.WaitGroup // every role's goroutine

	msgsSent, connsSent, sendErrs          atomic.Uint64
	msgsRecv, connsRecv, imported, unknown atomic.Uint64
	malformed, otherID, dropped            atomic.Uint64
	lastErr                                atomic.Pointer[string]
	lastLogged                             atomic.Int64

	// smu guards snd, the running sender (nil while not master).
	smu sync.Mutex
	snd *Sender
}

// noteImported tells a sender running beside the receiver (both roles)
// that conns came from the peer as they are: they are not sent back
// unless they change here, which would otherwise echo every connection
// once.
func (d *Daemon) noteImported(conns []dataplane.Conn, now time.Time) {
	d.smu.Lock()
	snd := d.snd
	d.smu.Unlock()
	if snd != nil {
		snd.noteImported(conns, now)
	}
}

// New makes a daemon for cfg over dp, with no role yet. The backup role
// needs a dataplane that can import connections.
func New(cfg Config, dp dataplane.Dataplane, log *slog.Logger) (*Daemon, error) {
	if cfg.Interface == "" {
		return nil, errors.New("lvs_sync_daemon: an interface is required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Daemon{cfg: cfg.WithDefaults(), dp: dp, log: log, cancels: map[Role]context.CancelFunc{}}
	d.imp, _ = dp.(Importer)
	return d, nil
}

// Config is the daemon's configuration, defaults filled in.
func (d *Daemon) Config() Config { return d.cfg }

// CanReceive says whether the dataplane can take synchronised
// connections.
func (d *Daemon) CanReceive() bool { return d.imp != nil }

// SetRole starts and stops the sender and the receiver to match r. It
// does not wait for a stopped role's goroutine (a sender may be reading
// the table): that one ends on its own, and Close waits for all.
func (d *Daemon) SetRole(r Role) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.setRoleLocked(r)
}

func (d *Daemon) setRoleLocked(r Role) {
	old := d.Role()
	if r == old {
		return
	}
	for _, one := range []Role{RoleMaster, RoleBackup} {
		if old&one != 0 && r&one == 0 {
			d.cancels[one]()
			delete(d.cancels, one)
		}
	}
	for _, one := range []Role{RoleMaster, RoleBackup} {
		if r&one != 0 && old&one == 0 {
			ctx, cancel := context.WithCancel(context.Background())
			run := d.runMaster
			if one == RoleBackup {
				run = d.runBackup
			}
			d.wg.Add(1)
			go func() { defer d.wg.Done(); run(ctx) }()
			d.cancels[one] = cancel
		}
	}
	d.log.Info("connection sync", "role", r.String(), "interface", d.cfg.Interface, "group", d.cfg.Group, "port", d.cfg.Port, "syncid", d.cfg.SyncID)
	d.role.Store(uint32(r))
}

// Role is the current role.
func (d *Daemon) Role() Role { return Role(d.role.Load()) }

// Close stops both roles and waits for their goroutines; the daemon takes
// no role after it.
func (d *Daemon) Close() {
	d.mu.Lock()
	if !d.closed {
		d.setRoleLocked(0)
		d.closed = true
	}
	d.mu.Unlock()
	d.wg.Wait()
}

// Stats returns the counters.
func (d *Daemon) Stats() Stats {
	s := Stats{
		Role:             d.Role().String(),
		MessagesSent:     d.msgsSent.Load(),
		ConnsSent:        d.connsSent.Load(),
		SendErrors:       d.sendErrs.Load(),
		MessagesReceived: d.msgsRecv.Load(),
		ConnsReceived:    d.connsRecv.Load(),
		ConnsImported:    d.imported.Load(),
		ConnsNotTaken:    d.unknown.Load(),
		Malformed:        d.malformed.Load(),
		OtherSyncID:      d.otherID.Load(),
		Dropped:          d.dropped.Load(),
	}
	if e := d.lastErr.Load(); e != nil {
		s.LastError = *e
	}
	return s
}

// fail records err and logs it, at most every ten seconds.
func (d *Daemon) fail(what string, err error) {
	msg := what + ": " + err.Error()
	d.lastErr.Store(&msg)
	d.logLimited(what, err)
}

// logLimited logs err, at most every ten seconds.
func (d *Daemon) logLimited(what string, err error) {
	msg := what + ": " + err.Error()
	now := time.Now().UnixNano()
	if last := d.lastLogged.Load(); now-last > int64(10*time.Second) && d.lastLogged.CompareAndSwap(last, now) {
		d.log.Warn("connection sync", "err", msg)
	}
}

// wait sleeps for t, or returns false when ctx ends first.
func wait(ctx context.Context, t time.Duration) bool {
	tm := time.NewTimer(t)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// sendSocket opens the multicast sending socket on the interface: the
// group as destination, the interface's address as source, loopback
// off, the TTL.
func (d *Daemon) sendSocket() (*net.UDPConn, error) {
	ifi, err := net.InterfaceByName(d.cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", d.cfg.Interface, err)
	}
	network := "udp4"
	if d.cfg.Group.Is6() {
		network = "udp6"
	}
	c, err := net.ListenUDP(network, nil)
	if err != nil {
		return nil, err
	}
	if d.cfg.Group.Is6() {
		p := ipv6.NewPacketConn(c)
		err = errors.Join(p.SetMulticastInterface(ifi), p.SetMulticastHopLimit(d.cfg.TTL), p.SetMulticastLoopback(false))
	} else {
		p := ipv4.NewPacketConn(c)
		err = errors.Join(p.SetMulticastInterface(ifi), p.SetMulticastTTL(d.cfg.TTL), p.SetMulticastLoopback(false))
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("multicast settings on %s: %w", d.cfg.Interface, err)
	}
	return c, nil
}

// connKey identifies a connection between two reads of the table.
type connKey struct {
	proto    dataplane.Proto
	client   netip.AddrPort
	virtual  netip.AddrPort
	fwmark   uint32
	template bool
}

// sent is what the backup was last told about a connection.
type sent struct {
	real, local netip.AddrPort
	state       uint16
	at, until   time.Time // when it was sent, and when it expires there
	round       uint64
	// imported: it came from the peer (both roles), which resends it
	// itself; sent from here only once it changes here
	imported bool
}

// refreshAfter is how far the connection's expiry here may run ahead of
// the one the backup has before it is sent again: activity that keeps a
// connection alive here is reported at least this often (IPVS resends
// by packet counts, sync_threshold "3 50").
func (s sent) refreshAfter() time.Duration {
	return min(time.Minute, s.until.Sub(s.at)/2)
}

// resendAfter is how long after it was last sent a connection is sent
// again even if nothing changed: a message the backup missed (UDP, a full
// socket buffer) is made good within it.
const resendAfter = 5 * time.Minute

// changes is the sender's memory of what it sent.
type changes struct {
	sent  map[connKey]sent
	round uint64
}

// note records c as sent at now (see Daemon.noteImported).
func (ch *changes) note(c dataplane.Conn, now time.Time) {
	e, ok := entryOf(c)
	if !ok {
		return
	}
	if ch.sent == nil {
		ch.sent = map[connKey]sent{}
	}
	k := connKey{c.Proto, c.Client, c.Virtual, c.FWMark, c.Template}
	ch.sent[k] = sent{real: e.Real, local: c.Local, state: e.State, at: now, until: now.Add(c.Expires), round: ch.round, imported: true}
}

// collect reads the table and returns the records to send: connections
// new since the last round, changed (state, real server, source), or
// whose expiry ran ahead of the copy's. Connections gone from the table
// are forgotten.
func (ch *changes) collect(ctx context.Context, dp dataplane.Dataplane, now time.Time) ([]Entry, error) {
	if ch.sent == nil {
		ch.sent = map[connKey]sent{}
	}
	ch.round++
	var out []Entry
	err := dp.Conns(ctx, func(c dataplane.Conn) bool {
		e, ok := entryOf(c)
		if !ok {
			return true
		}
		k := connKey{c.Proto, c.Client, c.Virtual, c.FWMark, c.Template}
		until := now.Add(c.Expires)
		s, had := ch.sent[k]
		if !had || s.real != e.Real || s.local != c.Local || s.state != e.State || until.Sub(s.until) > s.refreshAfter() ||
			(!s.imported && now.Sub(s.at) >= resendAfter) {
			out = append(out, e)
			s = sent{real: e.Real, local: c.Local, state: e.State, at: now, until: until}
		}
		s.round = ch.round
		ch.sent[k] = s
		return true
	})
	if err != nil {
		// some were marked sent and will not be: all go next round
		ch.sent = nil
		return nil, err
	}
	for k, s := range ch.sent {
		if s.round != ch.round {
			delete(ch.sent, k)
		}
	}
	return out, nil
}

// Sender decides what a MASTER sends: it remembers what it sent, reads
// the table each round and encodes what changed (collect). The zero
// value sends the whole table in its first round.
type Sender struct {
	SyncID uint8
	MaxLen int
	ch     changes

	pmu     sync.Mutex // guards pending
	pending []noted
	last    []Entry // the last round's, in message order
}

// noted are connections taken from the peer, to be marked as sent at
// the next round.
type noted struct {
	at    time.Time
	conns []dataplane.Conn
}

func (s *Sender) noteImported(conns []dataplane.Conn, now time.Time) {
	s.pmu.Lock()
	defer s.pmu.Unlock()
	if len(s.pending) < 4096 { // a round that does not come soon sends them back once
		s.pending = append(s.pending, noted{now, slices.Clone(conns)})
	}
}

// Round reads dp's table and returns the messages to send and the
// number of connections in them. Only one round runs at a time.
func (s *Sender) Round(ctx context.Context, dp dataplane.Dataplane, now time.Time) ([][]byte, int, error) {
	s.pmu.Lock()
	pending := s.pending
	s.pending = nil
	s.pmu.Unlock()
	for _, n := range pending {
		for _, c := range n.conns {
			s.ch.note(c, n.at)
		}
	}
	entries, err := s.ch.collect(ctx, dp, now)
	s.last = entries
	if err != nil || len(entries) == 0 {
		return nil, 0, err
	}
	msgs, err := Encode(s.SyncID, entries, s.MaxLen)
	return msgs, len(entries), err
}

// Unsent says that the last round's messages from unsent on did not go
// out: their connections are sent again next round (the others are not).
func (s *Sender) Unsent(msgs [][]byte) {
	n := 0
	for _, m := range msgs {
		n += int(m[4])
	}
	for _, e := range s.last[max(0, len(s.last)-n):] {
		delete(s.ch.sent, connKey{dataplane.Proto(e.Proto), e.Client, tableVirtual(e), e.FWMark, e.Template()})
	}
}

// runMaster sends the connection table's changes until ctx ends. A
// fresh master sends its whole table first.
func (d *Daemon) runMaster(ctx context.Context) {
	var c *net.UDPConn
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	dst := net.UDPAddrFromAddrPort(netip.AddrPortFrom(d.cfg.Group, uint16(d.cfg.Port)))
	snd := &Sender{SyncID: d.cfg.SyncID, MaxLen: d.cfg.MaxLen}
	d.smu.Lock()
	d.snd = snd
	d.smu.Unlock()
	defer func() {
		d.smu.Lock()
		if d.snd == snd { // a newer master may have replaced it
			d.snd = nil
		}
		d.smu.Unlock()
	}()
	pause := d.cfg.Interval
	for {
		if c == nil {
			var err error
			if c, err = d.sendSocket(); err != nil {
				d.fail("open sending socket", err)
				c = nil
				if !wait(ctx, time.Second) {
					return
				}
				continue
			}
		}
		start := time.Now()
		msgs, _, err := snd.Round(ctx, d.dp, start)
		took := time.Since(start)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			d.fail("read connections", err)
		} else if n, err := d.send(ctx, c, dst, msgs); err != nil {
			if ctx.Err() != nil {
				return
			}
			// what did not go out goes next round (a new socket)
			d.fail("send", err)
			snd.Unsent(msgs[n:])
			c.Close()
			c = nil
		}
		// the table's read is at most a tenth of the time
		pause = max(d.cfg.Interval, 10*took)
		if !wait(ctx, pause) {
			return
		}
	}
}

// A whole table sent at once (a new MASTER's first round) goes out at
// most burst messages every burstGap: some 5,000 messages, 200,000
// connections a second, half of what an xdp BACKUP takes in
// (BenchmarkSyncImport: 2 to 2.5 µs a connection on the project's machine),
// so that its socket buffer does not overflow. A round of changes under
// burst messages goes at once.
const (
	burst    = 16
	burstGap = 3 * time.Millisecond
)

// send sends msgs and returns how many went out.
func (d *Daemon) send(ctx context.Context, c *net.UDPConn, dst *net.UDPAddr, msgs [][]byte) (int, error) {
	for i, m := range msgs {
		if i > 0 && i%burst == 0 && !wait(ctx, burstGap) {
			return i, ctx.Err()
		}
		if _, err := c.WriteToUDP(m, dst); err != nil {
			d.sendErrs.Add(1)
			return i, err
		}
		d.msgsSent.Add(1)
		d.connsSent.Add(uint64(m[4]))
	}
	return len(msgs), nil
}

// recvBuffer is the receiving socket's buffer (SO_RCVBUFFORCE, past
// net.core.rmem_max: govs runs as root): a master's first full sending
// arrives in bursts of many messages.
const recvBuffer = 8 << 20

// batchMessages is how many messages already waiting the receiver reads
// before it hands their connections to the dataplane in one call.
const batchMessages = 64

// ifaceCheck is how often a quiet receiver checks that its interface is
// still the one it joined the group on (a re-created interface loses the
// membership).
const ifaceCheck = 5 * time.Second

// runBackup takes the master's messages into the dataplane until ctx
// ends.
func (d *Daemon) runBackup(ctx context.Context) {
	if d.imp == nil {
		d.fail("receive", errors.New("this dataplane cannot take synchronised connections (the xdp dataplane can)"))
		return
	}
	for ctx.Err() == nil {
		c, ifindex, err := d.recvSocket()
		if err != nil {
			d.fail("open receiving socket", err)
			if !wait(ctx, time.Second) {
				return
			}
			continue
		}
		stop := context.AfterFunc(ctx, func() { c.Close() })
		d.receive(ctx, c, ifindex)
		stop()
		c.Close()
	}
}

// recvSocket joins the group on the interface, as the kernel's backup
// socket does: bound to the group address (not the wildcard, which would
// take unicast datagrams to any of the director's addresses from anywhere
// they can be routed) and to the interface, receiving no other group.
func (d *Daemon) recvSocket() (*net.UDPConn, int, error) {
	ifi, err := net.InterfaceByName(d.cfg.Interface)
	if err != nil {
		return nil, 0, fmt.Errorf("interface %s: %w", d.cfg.Interface, err)
	}
	// (the net package binds a multicast address's socket to the
	// wildcard: groupSocket binds it itself)
	c, err := groupSocket(netip.AddrPortFrom(d.cfg.Group, uint16(d.cfg.Port)), ifi)
	if err != nil {
		return nil, 0, err
	}
	gaddr := &net.UDPAddr{IP: d.cfg.Group.AsSlice()}
	if d.cfg.Group.Is6() {
		err = ipv6.NewPacketConn(c).JoinGroup(ifi, gaddr)
	} else {
		err = ipv4.NewPacketConn(c).JoinGroup(ifi, gaddr)
	}
	if err != nil {
		c.Close()
		return nil, 0, fmt.Errorf("join %s on %s: %w", d.cfg.Group, ifi.Name, err)
	}
	if forceRecvBuffer(c, recvBuffer) != nil {
		_ = c.SetReadBuffer(recvBuffer) // capped by net.core.rmem_max
	}
	_ = countDrops(c)
	return c, ifi.Index, nil
}

// receive reads messages until the socket fails or its interface is
// gone, and imports them by batches.
func (d *Daemon) receive(ctx context.Context, c *net.UDPConn, ifindex int) {
	buf := make([]byte, 65536)
	oob := make([]byte, 64)
	var conns []dataplane.Conn
	var entries, skipped int
	var drops uint32 // the socket's count (SO_RXQ_OVFL) at the last message
	checked := time.Now()
	// flush hands what the batch decoded to the dataplane (also when the
	// role ends or the socket fails: what arrived is not thrown away)
	flush := func() {
		if entries+skipped == 0 {
			return
		}
		d.connsRecv.Add(uint64(entries + skipped))
		took, err := d.imp.ImportConns(context.WithoutCancel(ctx), conns)
		d.noteImported(conns, time.Now())
		d.imported.Add(uint64(took))
		d.unknown.Add(uint64(entries + skipped - took))
		if err != nil {
			d.fail("import", err)
		}
		conns, entries, skipped = conns[:0], 0, 0
	}
	defer flush()
	for {
		// wait for a message, then take those already there
		_ = c.SetReadDeadline(time.Now().Add(ifaceCheck))
		for got := 0; got < batchMessages; got++ {
			n, oobn, _, _, err := c.ReadMsgUDP(buf, oob)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				d.fail("receive", err)
				flush()
				wait(ctx, time.Second)
				return
			}
			if total, ok := dropCount(oob[:oobn]); ok && total != drops {
				d.dropped.Add(uint64(total - drops))
				drops = total
			}
			// the next read takes what waits, or gives up soon (a past
			// deadline would not even look)
			_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
			d.msgsRecv.Add(1)
			m, err := Decode(buf[:n])
			if err != nil {
				d.malformed.Add(1)
				d.logLimited("malformed message", err) // not LastError: a stray sender must not hide ours
				continue
			}
			if d.cfg.SyncID != 0 && m.SyncID != d.cfg.SyncID {
				d.otherID.Add(1)
				continue
			}
			entries += len(m.Entries)
			skipped += m.Skipped
			for _, e := range m.Entries {
				if cn, ok := connOf(e); ok {
					conns = append(conns, cn)
				}
			}
		}
		flush()
		// now and then: is the interface still the one joined? (a
		// lookup lists every link: not at every batch)
		if time.Since(checked) >= ifaceCheck {
			checked = time.Now()
			if ifi, err := net.InterfaceByName(d.cfg.Interface); err != nil || ifi.Index != ifindex {
				d.log.Info("connection sync: interface changed, joining the group again", "interface", d.cfg.Interface)
				return
			}
		}
	}
}
