package connsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
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

	mu     sync.Mutex
	role   Role
	stops  map[Role]func()
	closed bool

	msgsSent, connsSent, sendErrs          atomic.Uint64
	msgsRecv, connsRecv, imported, unknown atomic.Uint64
	malformed, otherID                     atomic.Uint64
	lastErr                                atomic.Pointer[string]
	lastLogged                             atomic.Int64
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
	d := &Daemon{cfg: cfg.WithDefaults(), dp: dp, log: log, stops: map[Role]func(){}}
	d.imp, _ = dp.(Importer)
	return d, nil
}

// Config is the daemon's configuration, defaults filled in.
func (d *Daemon) Config() Config { return d.cfg }

// CanReceive says whether the dataplane can take synchronised
// connections.
func (d *Daemon) CanReceive() bool { return d.imp != nil }

// SetRole starts and stops the sender and the receiver to match r.
func (d *Daemon) SetRole(r Role) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || r == d.role {
		return
	}
	for _, one := range []Role{RoleMaster, RoleBackup} {
		if d.role&one != 0 && r&one == 0 {
			d.stops[one]()
			delete(d.stops, one)
		}
	}
	for _, one := range []Role{RoleMaster, RoleBackup} {
		if r&one != 0 && d.role&one == 0 {
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			run := d.runMaster
			if one == RoleBackup {
				run = d.runBackup
			}
			go func() { defer close(done); run(ctx) }()
			d.stops[one] = func() { cancel(); <-done }
		}
	}
	d.log.Info("connection sync", "role", r.String(), "interface", d.cfg.Interface, "group", d.cfg.Group, "port", d.cfg.Port, "syncid", d.cfg.SyncID)
	d.role = r
}

// Role is the current role.
func (d *Daemon) Role() Role {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.role
}

// Close stops both roles.
func (d *Daemon) Close() {
	d.SetRole(0)
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
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
}

// refreshAfter is how far the connection's expiry here may run ahead of
// the one the backup has before it is sent again: activity that keeps a
// connection alive here is reported at least this often (IPVS resends
// by packet counts, sync_threshold "3 50").
func (s sent) refreshAfter() time.Duration {
	return min(time.Minute, s.until.Sub(s.at)/2)
}

// changes is the sender's memory of what it sent.
type changes struct {
	sent  map[connKey]sent
	round uint64
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
		if !had || s.real != c.Real || s.local != c.Local || s.state != e.State || until.Sub(s.until) > s.refreshAfter() {
			out = append(out, e)
			s = sent{real: c.Real, local: c.Local, state: e.State, at: now, until: until}
		}
		s.round = ch.round
		ch.sent[k] = s
		return true
	})
	if err != nil {
		return nil, err
	}
	for k, s := range ch.sent {
		if s.round != ch.round {
			delete(ch.sent, k)
		}
	}
	return out, nil
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
	var ch changes
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
		entries, err := ch.collect(ctx, d.dp, start)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			d.fail("read connections", err)
		} else if err := d.send(ctx, c, dst, entries); err != nil {
			d.fail("send", err)
			// sent records the backup may have missed go again
			ch.sent = nil
			c.Close()
			c = nil
		}
		// the table's read is at most a tenth of the time
		pause = max(d.cfg.Interval, 10*time.Since(start))
		if !wait(ctx, pause) {
			return
		}
	}
}

// burst is how many messages go out before the sender yields a
// millisecond, so that a whole table sent at once does not overflow the
// receiver's socket buffer (some 40 connections a message: up to 2.5
// million a second).
const burst = 64

func (d *Daemon) send(ctx context.Context, c *net.UDPConn, dst *net.UDPAddr, entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	msgs, err := Encode(d.cfg.SyncID, entries, d.cfg.MaxLen)
	if err != nil {
		return err // entryOf made them: a bug
	}
	for i, m := range msgs {
		if i > 0 && i%burst == 0 && !wait(ctx, time.Millisecond) {
			return nil
		}
		if _, err := c.WriteToUDP(m, dst); err != nil {
			d.sendErrs.Add(1)
			return err
		}
		d.msgsSent.Add(1)
		d.connsSent.Add(uint64(m[4]))
	}
	return nil
}

// recvBuffer is the receiving socket's buffer: a master's first full
// sending arrives in bursts of many messages.
const recvBuffer = 4 << 20

// runBackup takes the master's messages into the dataplane until ctx
// ends.
func (d *Daemon) runBackup(ctx context.Context) {
	if d.imp == nil {
		d.fail("receive", errors.New("this dataplane cannot take synchronised connections (the xdp dataplane can)"))
		return
	}
	for ctx.Err() == nil {
		ifi, err := net.InterfaceByName(d.cfg.Interface)
		var c *net.UDPConn
		if err == nil {
			network := "udp4"
			if d.cfg.Group.Is6() {
				network = "udp6"
			}
			c, err = net.ListenMulticastUDP(network, ifi, net.UDPAddrFromAddrPort(netip.AddrPortFrom(d.cfg.Group, uint16(d.cfg.Port))))
		}
		if err != nil {
			d.fail("open receiving socket", err)
			if !wait(ctx, time.Second) {
				return
			}
			continue
		}
		_ = c.SetReadBuffer(recvBuffer)
		stop := context.AfterFunc(ctx, func() { c.Close() })
		d.receive(ctx, c)
		stop()
		c.Close()
	}
}

func (d *Daemon) receive(ctx context.Context, c *net.UDPConn) {
	buf := make([]byte, 65536)
	var conns []dataplane.Conn
	for {
		n, err := c.Read(buf)
		if err != nil {
			if ctx.Err() == nil {
				d.fail("receive", err)
				wait(ctx, time.Second)
			}
			return
		}
		d.msgsRecv.Add(1)
		m, err := Decode(buf[:n])
		if err != nil {
			d.malformed.Add(1)
			d.fail("malformed message", err)
			continue
		}
		if d.cfg.SyncID != 0 && m.SyncID != d.cfg.SyncID {
			d.otherID.Add(1)
			continue
		}
		d.connsRecv.Add(uint64(len(m.Entries) + m.Skipped))
		conns = conns[:0]
		for _, e := range m.Entries {
			if cn, ok := connOf(e); ok {
				conns = append(conns, cn)
			}
		}
		took, err := d.imp.ImportConns(ctx, conns)
		d.imported.Add(uint64(took))
		d.unknown.Add(uint64(len(m.Entries) + m.Skipped - took))
		if err != nil {
			d.fail("import", err)
		}
	}
}
