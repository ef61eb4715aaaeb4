// Package proxy is the userspace dataplane: a TCP and UDP proxy that
// listens on every virtual address and port, picks a real server with the
// IPVS schedulers and persistence of internal/sched, and relays bytes
// between the client and the real server.
//
// It needs no privileges and runs anywhere Go runs. Real servers see the
// proxy's address as the source (SNAT semantics); an optional PROXY
// protocol header (v1 or v2) tells them the client's address.
//
// On Linux TCP runs on a few epoll event loops over raw sockets (about
// HAProxy's system calls per connection; bulk data moves with splice(2)
// and never enters user space). Options.Goroutines, and every other
// platform, use two goroutines per connection over package net instead.
// UDP uses a goroutine per socket and per session.
//
// Counters follow IPVS where a proxy can: Conns counts scheduled
// connections (including ones whose real server then refused), bytes are
// payload bytes (client→real server is "in", real server→client is "out"),
// and packets are the number of reads that returned data in each direction
// (one splice or read call each), an estimate of segments from below.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/govs/govs/internal/dataplane"
)

// Options configure a Proxy. The zero value is usable.
type Options struct {
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
	// Timeouts are the idle timeouts of TCP relays (TCP while both
	// directions are open, TCPFin after one side closed) and UDP
	// sessions. Zero fields take dataplane.DefaultTimeouts.
	Timeouts dataplane.Timeouts
	// DialTimeout bounds connecting to a real server (default 5 s).
	DialTimeout time.Duration
	// MaxListeners caps the number of sockets one service may open
	// (VIPs × ports × protocols of a multi-port or firewall-mark service);
	// default 1024.
	MaxListeners int
	// Goroutines selects the portable TCP engine: two goroutines per
	// connection over Go's net package. The default on Linux is a few
	// epoll event loops over raw sockets that splice(2) between them,
	// which costs fewer system calls and context switches per
	// connection; other platforms always use goroutines.
	Goroutines bool
	// Loops is the number of event loops of the Linux engine (default
	// GOMAXPROCS).
	Loops int
	// AcceptLoops is the number of accept goroutines per TCP listener of
	// the goroutine engine (default 1). On Linux values above 1 open that
	// many SO_REUSEPORT sockets so the kernel spreads connections.
	AcceptLoops int
	// NoSplice relays TCP through user-space buffers (goroutine engine)
	// even where splice(2) is available, for comparison and debugging.
	NoSplice bool
}

// Proxy is the userspace dataplane. It implements dataplane.Dataplane.
type Proxy struct {
	log  *slog.Logger
	opts Options

	ctx    context.Context // cancelled by Close; aborts dials
	cancel context.CancelFunc

	applyMu sync.Mutex // serialises Apply and Close

	mu        sync.Mutex // guards the fields below
	services  map[dataplane.ServiceKey]*service
	order     []dataplane.ServiceKey // order of the last Apply, for Stats
	listeners map[listenKey]*listener
	closed    bool

	// to holds the timeouts in force (Options.Timeouts until SetTimeouts)
	to    atomic.Pointer[dataplane.Timeouts]
	conns connTable
	loops []*loop // event loops of the Linux TCP engine; none = goroutines
	ids   atomic.Uint64
	pipes *pipePool
	bufs  sync.Pool // *[]byte relay buffers
	wg    sync.WaitGroup
}

var (
	_ dataplane.Dataplane     = (*Proxy)(nil)
	_ dataplane.TimeoutSetter = (*Proxy)(nil)
)

// SetTimeouts changes the idle timeouts of the relays and UDP sessions
// (dataplane.TimeoutSetter).
func (p *Proxy) SetTimeouts(t dataplane.Timeouts) error {
	t = t.OrDefault()
	p.to.Store(&t)
	// Idle timers armed for the old timeouts are checked now, so that a
	// shorter timeout does not wait for the old one (the event loops'
	// relays are checked by their periodic scans).
	for _, r := range p.conns.snapshot() {
		if c, ok := r.(interface{ checkIdle() }); ok {
			c.checkIdle()
		}
	}
	return nil
}

// timeouts are the timeouts in force.
func (p *Proxy) timeouts() dataplane.Timeouts { return *p.to.Load() }

// New returns a Proxy with no services. Call Apply to configure it and
// Close to stop it.
func New(opts Options) (*Proxy, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	opts.Timeouts = opts.Timeouts.OrDefault()
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.MaxListeners <= 0 {
		opts.MaxListeners = 1024
	}
	if opts.AcceptLoops <= 0 {
		opts.AcceptLoops = 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		log:       opts.Logger,
		opts:      opts,
		ctx:       ctx,
		cancel:    cancel,
		services:  make(map[dataplane.ServiceKey]*service),
		listeners: make(map[listenKey]*listener),
		conns:     connTable{m: make(map[relay]struct{})},
		pipes:     newPipePool(256),
	}
	p.to.Store(&opts.Timeouts)
	p.bufs.New = func() any {
		b := make([]byte, 32<<10)
		return &b
	}
	if !opts.Goroutines && !opts.NoSplice && loopsAvailable() {
		n := opts.Loops
		if n <= 0 {
			n = runtime.GOMAXPROCS(0)
		}
		if err := p.startLoops(n); err != nil {
			cancel()
			p.wg.Wait()
			return nil, fmt.Errorf("start event loops: %w", err)
		}
	}
	return p, nil
}

// Stats returns the counters of every configured service and its real
// servers, in the order of the last Apply. A service's sorry server, when
// configured, is listed after its real servers.
func (p *Proxy) Stats(ctx context.Context) (dataplane.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return dataplane.Snapshot{}, err
	}
	p.mu.Lock()
	svcs := make([]*service, 0, len(p.order))
	for _, k := range p.order {
		if s := p.services[k]; s != nil {
			svcs = append(svcs, s)
		}
	}
	p.mu.Unlock()
	snap := dataplane.Snapshot{Time: time.Now(), Services: make([]dataplane.ServiceStats, 0, len(svcs))}
	for _, s := range svcs {
		cfg := s.cfg.Load()
		st := dataplane.ServiceStats{Key: s.key, Counters: s.counters.load()}
		for _, rs := range cfg.real {
			st.RealServers = append(st.RealServers, rs.stats())
		}
		if cfg.sorry != nil {
			st.RealServers = append(st.RealServers, cfg.sorry.stats())
		}
		snap.Services = append(snap.Services, st)
	}
	return snap, nil
}

// DialFailures returns how many connections to the real server addr of
// service key failed (refused, unreachable or timed out). The dataplane
// counters have no field for it yet.
func (p *Proxy) DialFailures(key dataplane.ServiceKey, addr netip.AddrPort) uint64 {
	p.mu.Lock()
	s := p.services[key]
	p.mu.Unlock()
	if s == nil {
		return 0
	}
	if rs := s.lookupAddr(s.cfg.Load(), addr); rs != nil {
		return rs.dialFailures.Load()
	}
	return 0
}

// Conns walks the live relays (TCP connections and UDP sessions, those of
// removed services that are still draining included) and then the
// persistence templates of the configured services.
func (p *Proxy) Conns(ctx context.Context, fn func(dataplane.Conn) bool) error {
	now := time.Now()
	for _, r := range append(p.conns.snapshot(), p.loopConns()...) {
		if err := ctx.Err(); err != nil {
			return err
		}
		c, ok := r.info(now)
		if !ok {
			continue
		}
		if !fn(c) {
			return nil
		}
	}
	p.mu.Lock()
	svcs := make([]*service, 0, len(p.order))
	for _, k := range p.order {
		if s := p.services[k]; s != nil {
			svcs = append(svcs, s)
		}
	}
	p.mu.Unlock()
	for _, s := range svcs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !s.templates(fn) {
			return nil
		}
	}
	return nil
}

// Close stops every listener, ends every relay and waits for all
// goroutines. It is safe to call more than once.
func (p *Proxy) Close() error {
	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	ls := make([]*listener, 0, len(p.listeners))
	for _, l := range p.listeners {
		ls = append(ls, l)
	}
	p.listeners = map[listenKey]*listener{}
	p.services = map[dataplane.ServiceKey]*service{}
	p.order = nil
	p.mu.Unlock()

	p.cancel()
	var errs []error
	for _, l := range ls {
		if err := l.close(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, r := range p.conns.close() {
		r.abort()
	}
	p.stopLoops()
	p.wg.Wait()
	p.pipes.close()
	return errors.Join(errs...)
}

// relay is a live TCP relay or UDP session.
type relay interface {
	info(now time.Time) (dataplane.Conn, bool)
	abort()
}

// connTable holds the live relays for Conns and Close.
type connTable struct {
	mu     sync.Mutex
	m      map[relay]struct{}
	closed bool
}

// add registers r; it returns false once the table is closed.
func (t *connTable) add(r relay) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.m[r] = struct{}{}
	return true
}

// close refuses further relays and returns the live ones.
func (t *connTable) close() []relay {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	return t.snapshot()
}

func (t *connTable) remove(r relay) {
	t.mu.Lock()
	delete(t.m, r)
	t.mu.Unlock()
}

func (t *connTable) snapshot() []relay {
	t.mu.Lock()
	rs := make([]relay, 0, len(t.m))
	for r := range t.m {
		rs = append(rs, r)
	}
	t.mu.Unlock()
	return rs
}

// listenKey is one socket the proxy listens on.
type listenKey struct {
	proto dataplane.Proto
	addr  netip.AddrPort
}

func (k listenKey) String() string { return fmt.Sprintf("%s %s", k.proto, k.addr) }
