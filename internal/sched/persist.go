package sched

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// ErrNoDest is returned by Schedule when no real server can take the flow.
var ErrNoDest = errors.New("no real server available")

// ServiceConfig is the scheduling part of a virtual service.
type ServiceConfig struct {
	Scheduler string // IPVS name; "" = wlc
	Options   Options
	// Persistence is the persistence timeout (ipvsadm -p); 0 = off.
	Persistence time.Duration
	// PersistMask is the number of prefix bits of the client address a
	// template is keyed by (ipvsadm -M); 0 = the full address (32 for
	// IPv4, 128 for IPv6). A mask longer than an IPv4 address is applied
	// as 32.
	PersistMask int
	// MultiPort is set for firewall-mark and port-list services: one
	// template per client covers every port and protocol of the virtual
	// address (the IPVS fwmark / port-0 template), so FTP control and data,
	// or HTTP and HTTPS, reach the same server.
	MultiPort bool
	// ExpireQuiescentTemplate is the IPVS sysctl expire_quiescent_template:
	// a template whose server has weight 0 is dropped and the client
	// scheduled afresh. Off (IPVS default): it keeps the quiesced server.
	ExpireQuiescentTemplate bool
	// Now is the clock for template expiry; nil = time.Now. Unless
	// Options.Clock is set, lblc and lblcr use it too.
	Now func() time.Time
}

// Service is a virtual service as the scheduler sees it: a destination set,
// a scheduler and, with persistence, the client templates. It is safe for
// concurrent use. Expired templates are collected lazily, a few per call;
// it starts no goroutine.
type Service struct {
	mu        sync.RWMutex
	cfg       ServiceConfig
	now       func() time.Time
	sched     Scheduler
	dests     []*Dest
	present   map[*Dest]struct{}
	templates map[tkey]*template
	// Idle templates (no live connection), most recently idle first.
	idleHead, idleTail *template
}

// tkey identifies a template: masked client, virtual address and port
// (port 0 for MultiPort) and protocol (0 for MultiPort).
type tkey struct {
	client netip.Addr
	virt   netip.AddrPort
	proto  uint8
}

type template struct {
	key       tkey
	dest      *Dest
	conns     int
	idleSince time.Time // valid when conns == 0
	prev      *template
	next      *template
}

// Template is a persistence template as Templates reports it.
type Template struct {
	Client  netip.Addr     // client address masked by PersistMask
	Virtual netip.AddrPort // port 0 when MultiPort
	Dest    *Dest
	// Expires is the time left once idle; while the template has live
	// connections it is the full persistence timeout (the countdown
	// starts when the last one is released).
	Expires time.Duration
	Conns   int // live connections scheduled through the template
}

// NewService returns a service with no destinations.
func NewService(cfg ServiceConfig) (*Service, error) {
	s := &Service{templates: make(map[tkey]*template), present: map[*Dest]struct{}{}}
	if err := s.Reconfigure(cfg); err != nil {
		return nil, err
	}
	return s, nil
}

func validate(cfg ServiceConfig) error {
	if cfg.Persistence < 0 {
		return fmt.Errorf("persistence timeout %v is negative", cfg.Persistence)
	}
	if cfg.PersistMask < 0 || cfg.PersistMask > 128 {
		return fmt.Errorf("persistence mask /%d out of range 0..128", cfg.PersistMask)
	}
	return nil
}

func schedName(cfg ServiceConfig) string {
	if cfg.Scheduler == "" {
		return Default
	}
	return strings.ToLower(cfg.Scheduler)
}

// sameScheduler reports whether a reconfiguration can keep the running
// scheduler (and its state: rr position, lblc tables).
func sameScheduler(a, b ServiceConfig) bool {
	oa, ob := a.Options, b.Options
	return schedName(a) == schedName(b) && oa.Flags == ob.Flags &&
		oa.TableSize == ob.TableSize && oa.HashBits == ob.HashBits &&
		oa.Expiration == ob.Expiration
}

// Reconfigure changes the scheduler or persistence settings. The
// destinations stay. A scheduler whose name and options are unchanged
// keeps its state (a changed Options.Clock or Options.Rand alone is not
// applied). Templates stay while persistence stays on with the same mask
// and MultiPort; otherwise they are dropped.
func (s *Service) Reconfigure(cfg ServiceConfig) error {
	if err := validate(cfg); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	first := s.sched == nil
	if first || !sameScheduler(s.cfg, cfg) {
		opts := cfg.Options
		if opts.Clock == nil && cfg.Now != nil {
			opts.Clock = &FuncClock{F: cfg.Now}
		}
		sc, err := New(schedName(cfg), opts)
		if err != nil {
			return err
		}
		sc.Update(s.dests)
		s.sched = sc
	}
	if !first && (cfg.Persistence == 0 || cfg.PersistMask != s.cfg.PersistMask ||
		cfg.MultiPort != s.cfg.MultiPort) {
		s.dropAll()
	}
	s.cfg = cfg
	s.now = cfg.Now
	if s.now == nil {
		s.now = time.Now
	}
	return nil
}

// Update replaces the destination set (in config order). Templates that
// point at a removed destination are dropped. Call it after changing a
// weight too: sh, dh, mh and wrr compute their tables here, as IPVS does on
// every server change.
func (s *Service) Update(dests []*Dest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dests = append(s.dests[:0:0], dests...)
	s.present = destSet(s.dests)
	s.sched.Update(s.dests)
	for _, t := range s.templates {
		if _, ok := s.present[t.dest]; !ok {
			s.drop(t)
		}
	}
}

// Dests returns a copy of the destination set.
func (s *Service) Dests() []*Dest {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]*Dest(nil), s.dests...)
}

// Scheduler is the name of the scheduler in use.
func (s *Service) Scheduler() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.sched.Name()
}

// Schedule picks the destination for a new connection of flow f: the
// client's template if persistence is on and one is valid, else the
// scheduler's choice (creating a template). Every successful Schedule of
// a persistent service must be paired with one Release when the
// connection ends, or its template never expires.
func (s *Service) Schedule(f Flow) (*Dest, error) {
	s.mu.RLock()
	if s.cfg.Persistence == 0 {
		d := s.sched.Pick(f)
		s.mu.RUnlock()
		if d == nil {
			return nil, ErrNoDest
		}
		return d, nil
	}
	s.mu.RUnlock()

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.Persistence == 0 { // reconfigured in between
		if d := s.sched.Pick(f); d != nil {
			return d, nil
		}
		return nil, ErrNoDest
	}
	now := s.now()
	s.collect(now)
	key := s.key(f)
	if t := s.templates[key]; t != nil {
		if s.valid(t, now) {
			if t.conns == 0 {
				s.unlinkIdle(t)
			}
			t.conns++
			return t.dest, nil
		}
		s.drop(t)
	}
	d := s.sched.Pick(f)
	if d == nil {
		return nil, ErrNoDest
	}
	t := &template{key: key, dest: d, conns: 1}
	s.templates[key] = t
	d.persist.Add(1)
	return d, nil
}

// Release records the end of a connection scheduled for f. When the
// client's template has no live connection left its expiry countdown
// (Persistence) starts from now.
func (s *Service) Release(f Flow) {
	s.mu.RLock()
	off := s.cfg.Persistence == 0
	s.mu.RUnlock()
	if off {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.Persistence == 0 {
		return
	}
	t := s.templates[s.key(f)]
	if t == nil || t.conns == 0 {
		return
	}
	if t.conns--; t.conns == 0 {
		t.idleSince = s.now()
		s.pushIdle(t)
	}
}

// Reenter is Piranha's quiesce_server: a real server coming back into
// service starts with zeroed connection counters, so the least-connection
// schedulers do not hold its old (possibly stale) load against it and it
// takes its share at once. The director calls it when a health check
// brings d back.
func (s *Service) Reenter(d *Dest) { d.ResetConns() }

// Templates calls fn for every live template until fn returns false. fn
// runs without the service lock held.
func (s *Service) Templates(fn func(Template) bool) {
	s.mu.RLock()
	now := s.now()
	out := make([]Template, 0, len(s.templates))
	for _, t := range s.templates {
		exp := s.cfg.Persistence
		if t.conns == 0 {
			exp -= now.Sub(t.idleSince)
			if exp <= 0 {
				continue
			}
		}
		out = append(out, Template{Client: t.key.client, Virtual: t.key.virt, Dest: t.dest, Expires: exp, Conns: t.conns})
	}
	s.mu.RUnlock()
	for _, t := range out {
		if !fn(t) {
			return
		}
	}
}

// key builds the template key of f under the current configuration.
func (s *Service) key(f Flow) tkey {
	client := f.Src.Addr().Unmap()
	bits := s.cfg.PersistMask
	if bits == 0 || bits > client.BitLen() {
		bits = client.BitLen()
	}
	if p, err := client.Prefix(bits); err == nil {
		client = p.Addr()
	}
	if s.cfg.MultiPort {
		return tkey{client: client, virt: netip.AddrPortFrom(f.Dst.Addr().Unmap(), 0)}
	}
	return tkey{client: client, virt: netip.AddrPortFrom(f.Dst.Addr().Unmap(), f.Dst.Port()), proto: f.Proto}
}

// valid is ip_vs_check_template: the server is still in the service, the
// template has not expired, and (with expire_quiescent_template) the
// server is not quiesced. An overloaded or quiesced server is kept.
func (s *Service) valid(t *template, now time.Time) bool {
	if _, ok := s.present[t.dest]; !ok {
		return false
	}
	if t.conns == 0 && now.Sub(t.idleSince) >= s.cfg.Persistence {
		return false
	}
	if s.cfg.ExpireQuiescentTemplate && t.dest.Weight() == 0 {
		return false
	}
	return true
}

// collect drops up to gcBatch expired templates (oldest idle first).
func (s *Service) collect(now time.Time) {
	for range gcBatch {
		t := s.idleTail
		if t == nil || now.Sub(t.idleSince) < s.cfg.Persistence {
			return
		}
		s.drop(t)
	}
}

func (s *Service) drop(t *template) {
	if t.conns == 0 {
		s.unlinkIdle(t)
	}
	delete(s.templates, t.key)
	t.dest.persist.Add(-1)
}

func (s *Service) dropAll() {
	for _, t := range s.templates {
		s.drop(t)
	}
}

func (s *Service) pushIdle(t *template) {
	t.prev, t.next = nil, s.idleHead
	if s.idleHead != nil {
		s.idleHead.prev = t
	}
	s.idleHead = t
	if s.idleTail == nil {
		s.idleTail = t
	}
}

func (s *Service) unlinkIdle(t *template) {
	if t.prev != nil {
		t.prev.next = t.next
	} else if s.idleHead == t {
		s.idleHead = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	} else if s.idleTail == t {
		s.idleTail = t.prev
	}
	t.prev, t.next = nil, nil
}
