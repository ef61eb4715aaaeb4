package bfd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Status is what a session shows (API, CLI, metrics).
type Status struct {
	Name        string        `json:"name"`
	Peer        netip.Addr    `json:"neighbor_ip"`
	Source      netip.Addr    `json:"source_ip,omitzero"`
	State       string        `json:"state"`
	RemoteState string        `json:"remote_state"`
	Diag        string        `json:"diagnostic"`
	RemoteDiag  string        `json:"remote_diagnostic"`
	LocalDiscr  uint32        `json:"local_discriminator"`
	RemoteDiscr uint32        `json:"remote_discriminator"`
	TxInterval  time.Duration `json:"tx_interval_ns"`
	DetectTime  time.Duration `json:"detect_time_ns"`
	Since       time.Time     `json:"since"`
	Ups         uint64        `json:"ups"`
	Error       string        `json:"error,omitempty"` // the session cannot send
}

// Daemon runs the sessions: one goroutine owns them, listeners on UDP
// port 3784 (IPv4 and IPv6, opened as sessions need them) feed it the
// packets, each session sends from a socket of its own (source port
// 49152-65535, TTL 255 or IPv6 hop limit 64 by default, keepalived's).
type Daemon struct {
	log *slog.Logger

	mu       sync.Mutex
	sessions map[string]*live
	byDiscr  map[uint32]*live
	watchers map[string][]chan struct{}
	ln4, ln6 *listener
	// lnErr4 and lnErr6: why a listener could not open (shown with the
	// sessions of its family)
	lnErr4, lnErr6 string
	lnRetryAt      time.Time // when to try a listener that failed again
	closed         bool

	wake chan struct{}
	done chan struct{}
	wg   sync.WaitGroup
	// Counters of packets the listeners dropped, by reason.
	drops map[string]uint64
}

// live is a running session and its socket.
type live struct {
	s    *session
	conn *sendConn
	err  string
	// dialAt: when to try opening the socket again (its source may
	// not be an address of the host yet)
	dialAt time.Time
}

type received struct {
	p        Packet
	src, dst netip.Addr
	ttl      int
}

// NewDaemon starts a daemon with no session.
func NewDaemon(log *slog.Logger) *Daemon {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Daemon{log: log, sessions: map[string]*live{}, byDiscr: map[uint32]*live{}, watchers: map[string][]chan struct{}{},
		wake: make(chan struct{}, 1), done: make(chan struct{}), drops: map[string]uint64{}}
	d.wg.Go(d.loop)
	return d
}

// Configure puts the sessions cfgs in force: new ones start (Down),
// missing ones stop, changed intervals of a session to the same peer
// and source are taken without a reset (an Up session runs a Poll
// Sequence), a new peer or source restarts it. It refuses an invalid
// set whole.
func (d *Daemon) Configure(cfgs []Config) error {
	var errs []error
	names := map[string]bool{}
	for i := range cfgs {
		cfgs[i] = cfgs[i].WithDefaults()
		if err := cfgs[i].Validate(); err != nil {
			errs = append(errs, fmt.Errorf("bfd_instance %s: %w", cfgs[i].Name, err))
		}
		if names[cfgs[i].Name] {
			errs = append(errs, fmt.Errorf("bfd_instance %s given twice", cfgs[i].Name))
		}
		names[cfgs[i].Name] = true
		// a first packet (your discriminator 0) is told apart by its
		// source and destination only
		for _, o := range cfgs[:i] {
			if o.Peer == cfgs[i].Peer && (o.Source == cfgs[i].Source || !o.Source.IsValid() || !cfgs[i].Source.IsValid()) {
				errs = append(errs, fmt.Errorf("bfd_instance %s: the same neighbor as bfd_instance %s, and no source_ip tells them apart", cfgs[i].Name, o.Name))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("bfd: daemon closed")
	}
	now := time.Now()
	for name, l := range d.sessions {
		if !names[name] {
			d.adminDownLocked(l, now)
			d.stopLocked(l)
			delete(d.sessions, name)
			d.notifyLocked(name)
		}
	}
	var v4, v6 bool
	for _, c := range cfgs {
		if c.Peer.Unmap().Is4() {
			v4 = true
		} else {
			v6 = true
		}
		l := d.sessions[c.Name]
		if l != nil && (l.s.cfg.Peer != c.Peer || l.s.cfg.Source != c.Source || l.s.cfg.TTL != c.TTL) {
			d.adminDownLocked(l, now)
			d.stopLocked(l)
			delete(d.sessions, c.Name)
			d.notifyLocked(c.Name)
			l = nil
		}
		if l != nil {
			l.s.reconfigure(c, now)
			continue
		}
		l = &live{s: newSession(c, d.newDiscrLocked(), now)}
		d.dialLocked(l, now)
		d.sessions[c.Name] = l
		d.byDiscr[l.s.localDiscr] = l
		d.log.Info("bfd session added", "bfd_instance", c.Name, "neighbor", c.Peer, "min_rx", c.MinRx, "min_tx", c.MinTx, "multiplier", c.Multiplier)
	}
	var lerr error
	if v4 && d.ln4 == nil {
		d.ln4, lerr = d.listen(false)
		d.lnErr4 = errString(lerr)
	}
	if v6 && d.ln6 == nil {
		var err error
		d.ln6, err = d.listen(true)
		d.lnErr6 = errString(err)
		lerr = errors.Join(lerr, err)
	}
	d.poke()
	return lerr
}

// retryListenLocked opens the listeners that failed, for the families
// the sessions still have.
func (d *Daemon) retryListenLocked() {
	var v4, v6 bool
	for _, l := range d.sessions {
		if l.s.cfg.Peer.Unmap().Is4() {
			v4 = true
		} else {
			v6 = true
		}
	}
	if d.lnErr4 != "" && d.ln4 == nil {
		if !v4 {
			d.lnErr4 = ""
		} else if ln, err := d.listen(false); err == nil {
			d.ln4, d.lnErr4 = ln, ""
			d.log.Info("bfd: listening again", "family", "ipv4")
		}
	}
	if d.lnErr6 != "" && d.ln6 == nil {
		if !v6 {
			d.lnErr6 = ""
		} else if ln, err := d.listen(true); err == nil {
			d.ln6, d.lnErr6 = ln, ""
			d.log.Info("bfd: listening again", "family", "ipv6")
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// dialLocked opens a session's socket; a failure is retried every
// second (tick).
func (d *Daemon) dialLocked(l *live, now time.Time) {
	pc, err := dial(l.s.cfg)
	var conn *sendConn
	if err == nil {
		if conn, err = newSendConn(pc); err != nil {
			pc.Close()
		}
	}
	if err != nil {
		if l.err != err.Error() {
			d.log.Error("bfd: session socket", "bfd_instance", l.s.cfg.Name, "err", err)
		}
		l.err, l.dialAt = err.Error(), now.Add(time.Second)
		return
	}
	l.conn, l.err = conn, ""
}

// adminDownLocked tells an Up or Init peer that the session ends on
// purpose (a reload removed or restarted it, or govs stops): the peer
// takes it down as "neighbor signaled session down", not as a failure.
func (d *Daemon) adminDownLocked(l *live, now time.Time) {
	if l.s.state != Up && l.s.state != Init {
		return
	}
	l.s.setState(AdminDown, DiagAdminDown, now)
	d.send(l, now)
}

func (d *Daemon) newDiscrLocked() uint32 {
	for {
		x := rand.Uint32()
		if x != 0 && d.byDiscr[x] == nil {
			return x
		}
	}
}

func (d *Daemon) stopLocked(l *live) {
	delete(d.byDiscr, l.s.localDiscr)
	if l.conn != nil {
		l.conn.Close()
	}
}

func (d *Daemon) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// dial opens a session's sending socket: bound to its source (if any)
// and a port of 49152-65535, with its TTL.
func dial(c Config) (net.PacketConn, error) {
	network, host := "udp4", "0.0.0.0"
	if !c.Peer.Unmap().Is4() {
		network, host = "udp6", "::"
	}
	if c.Source.IsValid() {
		host = c.Source.Unmap().String()
	}
	var last error
	start := rand.IntN(sourcePorts)
	for i := range 64 {
		port := sourcePortMin + (start+i*257)%sourcePorts
		conn, err := net.ListenPacket(network, net.JoinHostPort(host, fmt.Sprint(port)))
		if err != nil {
			last = err
			continue
		}
		if network == "udp4" {
			err = ipv4.NewPacketConn(conn).SetTTL(c.TTL)
		} else {
			err = ipv6.NewPacketConn(conn).SetHopLimit(c.TTL)
		}
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("set ttl: %w", err)
		}
		return conn, nil
	}
	return nil, fmt.Errorf("no source port free in %d-%d: %w", sourcePortMin, sourcePortMin+sourcePorts-1, last)
}

// listener reads the control packets of one family on port 3784.
type listener struct{ conn net.PacketConn }

func (d *Daemon) listen(v6 bool) (*listener, error) {
	network, addr := "udp4", fmt.Sprintf("0.0.0.0:%d", controlPort)
	if v6 {
		network, addr = "udp6", fmt.Sprintf("[::]:%d", controlPort)
	}
	conn, err := net.ListenPacket(network, addr)
	if err != nil {
		return nil, fmt.Errorf("bfd: listen on %s: %w", addr, err)
	}
	// each packet comes with its TTL or hop limit and the address it
	// was sent to
	read, err := packetReader(conn, v6)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("bfd: %s: %w", addr, err)
	}
	d.wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			p, err := read(buf)
			if err != nil {
				return // closed
			}
			d.deliver(buf[:p.n], p)
		}
	})
	return &listener{conn: conn}, nil
}

// deliver checks a packet and applies it to its session.
func (d *Daemon) deliver(b []byte, rp rawPacket) {
	p, err := Parse(b)
	if err != nil {
		d.drop(err.Error())
		return
	}
	if !rp.src.IsValid() {
		return
	}
	// handled here rather than handed to the loop: a goroutine wake-up
	// less per packet (the loop is woken only when something is due
	// sooner than it planned)
	if d.handle(received{p: p, src: rp.src.Unmap(), dst: rp.dst.Unmap(), ttl: rp.ttl}) {
		d.poke()
	}
}

func (d *Daemon) drop(reason string) {
	d.mu.Lock()
	d.drops[reason]++
	d.mu.Unlock()
}

// loop runs the sessions' timers and packets.
func (d *Daemon) loop() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-d.done:
			return
		case <-d.wake:
		case <-timer.C:
		}
		next := d.tick()
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if next.IsZero() {
			timer.Reset(time.Hour)
		} else {
			timer.Reset(max(time.Until(next), 0))
		}
	}
}

// handle finds the session of a received packet (RFC 5880 §6.8.6: by
// your discriminator, else by the source address while it is 0) and
// applies it; it reports whether the loop must look at the timers again
// (a packet is due now, or the state changed).
func (d *Daemon) handle(r received) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false
	}
	var l *live
	if r.p.YourDiscr != 0 {
		l = d.byDiscr[r.p.YourDiscr]
	} else {
		for _, s := range d.sessions {
			if s.s.cfg.Peer.Unmap() == r.src && (!s.s.cfg.Source.IsValid() || !r.dst.IsValid() || s.s.cfg.Source.Unmap() == r.dst) {
				l = s
				break
			}
		}
	}
	switch {
	case l == nil:
		d.drops["no session"]++
		return false
	case l.s.cfg.Peer.Unmap() != r.src:
		d.drops["wrong source"]++
		return false
	case l.s.cfg.MaxHops >= 0 && r.ttl >= 0 && r.ttl+l.s.cfg.MaxHops < l.s.cfg.TTL:
		// single hop: it arrives with the TTL it was sent with, which
		// keepalived takes to be this session's own (RFC 5881 §5: 255)
		d.drops["ttl"]++
		return false
	}
	now := time.Now()
	before := l.s.next()
	changed := l.s.receive(r.p, now)
	if changed {
		d.changedLocked(l)
	}
	// the loop sleeps until the earliest deadline it knew: woken when
	// this one came sooner (a Final to send, the first detection time)
	next := l.s.next()
	return changed || l.s.due(now) || !next.IsZero() && (before.IsZero() || next.Before(before))
}

// tick expires and sends what is due; it returns when it is needed next.
func (d *Daemon) tick() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	var next time.Time
	if d.lnErr4 != "" || d.lnErr6 != "" {
		// port 3784 taken (another BFD daemon on the host): tried again
		if !now.Before(d.lnRetryAt) {
			d.retryListenLocked()
			d.lnRetryAt = now.Add(5 * time.Second)
		}
		if d.lnErr4 != "" || d.lnErr6 != "" {
			next = d.lnRetryAt
		}
	}
	for _, l := range d.sessions {
		if l.conn == nil && !now.Before(l.dialAt) {
			d.dialLocked(l, now)
		}
		if l.conn == nil && (next.IsZero() || l.dialAt.Before(next)) {
			next = l.dialAt
		}
		if l.s.expire(now) {
			d.changedLocked(l)
		}
		for l.s.due(now) {
			d.send(l, now)
		}
		if t := l.s.next(); !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return next
}

func (d *Daemon) send(l *live, now time.Time) {
	p := l.s.packet(now)
	if l.conn == nil {
		return
	}
	if err := l.conn.sendTo(p.Marshal(), netip.AddrPortFrom(l.s.cfg.Peer, controlPort)); err != nil {
		if l.err != err.Error() {
			d.log.Warn("bfd: send", "bfd_instance", l.s.cfg.Name, "err", err)
		}
		l.err = err.Error()
		return
	}
	l.err = ""
}

func (d *Daemon) changedLocked(l *live) {
	s := l.s
	d.log.Info("bfd session state", "bfd_instance", s.cfg.Name, "neighbor", s.cfg.Peer, "state", s.state.String(),
		"diagnostic", s.diag.String(), "remote_state", s.remoteState.String())
	d.notifyLocked(s.cfg.Name)
}

func (d *Daemon) notifyLocked(name string) {
	for _, c := range d.watchers[name] {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// Up reports whether the session name is Up; known is false when there
// is no such session.
func (d *Daemon) Up(name string) (up, known bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.sessions[name]
	if l == nil {
		return false, false
	}
	return l.s.state == Up, true
}

// Watch calls fn with whether the session name is Up: once at once, then
// on every change, until ctx is done. A session that does not exist (or
// no longer) counts as down. fn runs on a goroutine of its own, one call
// at a time.
func (d *Daemon) Watch(ctx context.Context, name string, fn func(up bool)) {
	c := make(chan struct{}, 1)
	d.mu.Lock()
	d.watchers[name] = append(d.watchers[name], c)
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.watchers[name] = slices.DeleteFunc(d.watchers[name], func(x chan struct{}) bool { return x == c })
		if len(d.watchers[name]) == 0 {
			delete(d.watchers, name)
		}
		d.mu.Unlock()
	}()
	first, last := true, false
	for {
		up, _ := d.Up(name)
		if first || up != last {
			fn(up)
		}
		first, last = false, up
		select {
		case <-c:
		case <-ctx.Done():
			return
		case <-d.done:
			return
		}
	}
}

// Status lists the sessions by name.
func (d *Daemon) Status() []Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Status, 0, len(d.sessions))
	for _, l := range d.sessions {
		s := l.s
		st := Status{Name: s.cfg.Name, Peer: s.cfg.Peer, Source: s.cfg.Source, State: s.state.String(),
			RemoteState: s.remoteState.String(), Diag: s.diag.String(), RemoteDiag: s.remoteDiag.String(),
			LocalDiscr: s.localDiscr, RemoteDiscr: s.remoteDiscr, TxInterval: s.txInterval(), Since: s.since, Ups: s.ups, Error: l.err}
		if st.Error == "" {
			// nothing arrives without the family's listener
			if s.cfg.Peer.Unmap().Is4() {
				st.Error = d.lnErr4
			} else {
				st.Error = d.lnErr6
			}
		}
		if s.heard {
			st.DetectTime = s.detectTime()
		} else {
			st.RemoteState, st.RemoteDiag = "", ""
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b Status) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

// Drops are the packets the daemon dropped, by reason.
func (d *Daemon) Drops() map[string]uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]uint64, len(d.drops))
	for k, v := range d.drops {
		out[k] = v
	}
	return out
}

// Close stops the sessions (sending AdminDown to Up peers first, so they
// take the session down at once and not as a failure) and the daemon.
func (d *Daemon) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	now := time.Now()
	for name, l := range d.sessions {
		d.adminDownLocked(l, now)
		d.stopLocked(l)
		delete(d.sessions, name)
		d.notifyLocked(name)
	}
	for _, ln := range []*listener{d.ln4, d.ln6} {
		if ln != nil {
			ln.conn.Close()
		}
	}
	d.mu.Unlock()
	close(d.done)
	d.wg.Wait()
	return nil
}
