package proxy

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/sched"
)

// counters are IPVS-style statistics updated by relays.
type counters struct {
	conns, inPkts, outPkts, inBytes, outBytes atomic.Uint64
}

func (c *counters) load() dataplane.Counters {
	return dataplane.Counters{
		Conns:    c.conns.Load(),
		InPkts:   c.inPkts.Load(),
		OutPkts:  c.outPkts.Load(),
		InBytes:  c.inBytes.Load(),
		OutBytes: c.outBytes.Load(),
	}
}

// realServer is the runtime state of one real server (or sorry server)
// of a service. It is reused across Applies by address so that counters
// and the scheduler's connection counts survive configuration changes.
type realServer struct {
	dest         *sched.Dest
	counters     counters
	dialFailures atomic.Uint64
}

func (rs *realServer) stats() dataplane.RealServerStats {
	return dataplane.RealServerStats{
		Addr:          rs.dest.Addr,
		Counters:      rs.counters.load(),
		ActiveConns:   rs.dest.ActiveConns(),
		InactiveConns: rs.dest.InactiveConns(),
		PersistConns:  rs.dest.PersistConns(),
	}
}

// serviceConfig is an immutable view of a service's configuration that
// the data path reads without locks.
type serviceConfig struct {
	svc    dataplane.Service
	listen []listenKey
	sched  sched.ServiceConfig
	real   []*realServer // config order
	byDest map[*sched.Dest]*realServer
	sorry  *realServer
}

// service is the runtime state of one virtual service.
type service struct {
	key      dataplane.ServiceKey
	sched    *sched.Service
	cfg      atomic.Pointer[serviceConfig]
	counters counters

	mu sync.Mutex
	// known holds every real server this service has had, so a removed
	// server that comes back keeps its counters and relays that outlive
	// its removal can still be found; entries without connections are
	// dropped when the server leaves the configuration.
	known map[netip.AddrPort]*realServer
}

// lookup returns the real server of a scheduled destination.
func (s *service) lookup(cfg *serviceConfig, d *sched.Dest) *realServer {
	if rs := cfg.byDest[d]; rs != nil {
		return rs
	}
	// A persistence template may still point at a destination that left
	// the configuration.
	s.mu.Lock()
	defer s.mu.Unlock()
	if rs := s.known[d.Addr]; rs != nil && rs.dest == d {
		return rs
	}
	rs := &realServer{dest: d}
	s.known[d.Addr] = rs
	return rs
}

func (s *service) lookupAddr(cfg *serviceConfig, a netip.AddrPort) *realServer {
	for _, rs := range cfg.real {
		if rs.dest.Addr == a {
			return rs
		}
	}
	if cfg.sorry != nil && cfg.sorry.dest.Addr == a {
		return cfg.sorry
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.known[a]
}

// templates reports the service's persistence templates to fn.
func (s *service) templates(fn func(dataplane.Conn) bool) bool {
	more := true
	proto := s.key.Proto
	if s.key.FWMark != 0 {
		proto = 0 // IPVS shows firewall-mark templates with protocol IP
	}
	s.sched.Templates(func(t sched.Template) bool {
		c := dataplane.Conn{
			Proto:    proto,
			Client:   netip.AddrPortFrom(t.Client, 0),
			Virtual:  t.Virtual,
			State:    "NONE",
			Expires:  t.Expires,
			Template: true,
			FWMark:   s.key.FWMark,
		}
		if t.Dest != nil {
			c.Real = t.Dest.Addr
		}
		more = fn(c)
		return more
	})
	return more
}

// plan is the desired configuration of one service during an Apply,
// built without touching the running state.
type plan struct {
	key    dataplane.ServiceKey
	cur    *service // nil for a new service
	svc    *service // cur, or a fresh one not yet visible
	cfg    *serviceConfig
	weight []int // per cfg.real: weight to set on commit
	upper  []uint32
	lower  []uint32
	failed bool
}

// schedFlags maps ipvsadm flag names to sched flags.
func schedFlags(names []string) sched.Flags {
	var f sched.Flags
	for _, n := range names {
		switch n {
		case "sh-fallback", "mh-fallback":
			f.Fallback = true
		case "sh-port", "mh-port":
			f.Port = true
		}
	}
	return f
}

// newPlan validates s and prepares its runtime configuration. cur is the
// running service with the same key, if any; it is not modified.
func (p *Proxy) newPlan(s dataplane.Service, cur *service) (*plan, error) {
	listen, err := listenKeys(s, p.opts.MaxListeners)
	if err != nil {
		return nil, err
	}
	if s.ProxyProtocol != 0 && s.ProxyProtocol != 1 && s.ProxyProtocol != 2 {
		return nil, fmt.Errorf("proxy protocol version %d: want 1 or 2", s.ProxyProtocol)
	}
	scfg := sched.ServiceConfig{
		Scheduler:   s.Scheduler,
		Options:     sched.Options{Flags: schedFlags(s.SchedFlags), TableSize: s.MHTableSize},
		Persistence: s.Persistence,
		PersistMask: s.PersistMask,
		MultiPort:   s.Key.FWMark != 0 || len(listen) > 1,
	}
	if scfg.Scheduler == "" {
		scfg.Scheduler = "wlc"
	}
	pl := &plan{key: s.Key, cur: cur, svc: cur}
	if cur == nil {
		ss, err := sched.NewService(scfg)
		if err != nil {
			return nil, fmt.Errorf("scheduler: %w", err)
		}
		pl.svc = &service{key: s.Key, sched: ss, known: make(map[netip.AddrPort]*realServer)}
	} else if _, err := sched.NewService(scfg); err != nil {
		// Validate on a throw-away instance; Reconfigure runs on commit.
		return nil, fmt.Errorf("scheduler: %w", err)
	}
	cfg := &serviceConfig{svc: s, listen: listen, sched: scfg, byDest: make(map[*sched.Dest]*realServer, len(s.RealServers))}
	seen := make(map[netip.AddrPort]bool, len(s.RealServers))
	for _, r := range s.RealServers {
		if !r.Addr.IsValid() {
			return nil, fmt.Errorf("real server %s: need an address", r.Addr)
		}
		if r.Addr.Port() == 0 && len(s.Ports) == 0 {
			return nil, fmt.Errorf("real server %s: need a port (port 0, the client's port, only on multi-port services)", r.Addr)
		}
		if seen[r.Addr] {
			return nil, fmt.Errorf("real server %s listed twice", r.Addr)
		}
		seen[r.Addr] = true
		rs := pl.svc.existing(r.Addr)
		if rs == nil {
			rs = &realServer{dest: sched.NewDest(r.Addr, r.Weight)}
		}
		cfg.real = append(cfg.real, rs)
		cfg.byDest[rs.dest] = rs
		pl.weight = append(pl.weight, r.Weight)
		pl.upper = append(pl.upper, r.UThreshold)
		pl.lower = append(pl.lower, r.LThreshold)
	}
	if s.Sorry != nil {
		if !s.Sorry.Addr.IsValid() || s.Sorry.Addr.Port() == 0 {
			return nil, fmt.Errorf("sorry server %s: need an address and a port", s.Sorry.Addr)
		}
		var old *serviceConfig
		if cur != nil {
			old = cur.cfg.Load()
		}
		if old != nil && old.sorry != nil && old.sorry.dest.Addr == s.Sorry.Addr {
			cfg.sorry = old.sorry
		} else {
			cfg.sorry = &realServer{dest: sched.NewDest(s.Sorry.Addr, 1)}
		}
	}
	pl.cfg = cfg
	return pl, nil
}

// existing returns the runtime state of a real server the service already
// knows (configured now, or removed but remembered), or nil.
func (s *service) existing(a netip.AddrPort) *realServer {
	if cfg := s.cfg.Load(); cfg != nil {
		for _, rs := range cfg.real {
			if rs.dest.Addr == a {
				return rs
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.known[a]
}

// commit makes the plan the running configuration of its service.
func (pl *plan) commit() error {
	s := pl.svc
	for i, rs := range pl.cfg.real {
		rs.dest.SetWeight(pl.weight[i])
		rs.dest.SetThresholds(pl.upper[i], pl.lower[i])
	}
	var err error
	if pl.cur != nil {
		if e := s.sched.Reconfigure(pl.cfg.sched); e != nil {
			err = fmt.Errorf("reconfigure scheduler: %w", e)
		}
	}
	dests := make([]*sched.Dest, len(pl.cfg.real))
	for i, rs := range pl.cfg.real {
		dests[i] = rs.dest
	}
	s.sched.Update(dests)

	s.mu.Lock()
	in := make(map[netip.AddrPort]bool, len(pl.cfg.real))
	for _, rs := range pl.cfg.real {
		in[rs.dest.Addr] = true
		s.known[rs.dest.Addr] = rs
	}
	for a, rs := range s.known {
		if !in[a] && rs.dest.ActiveConns()+rs.dest.InactiveConns() == 0 {
			delete(s.known, a)
		}
	}
	s.mu.Unlock()
	s.cfg.Store(pl.cfg)
	return err
}

// maxPorts bounds one port range before multiplying by VIPs and protocols.
const maxPorts = 65535

// listenKeys lists the sockets a service needs: every (protocol, VIP,
// port) it matches.
func listenKeys(s dataplane.Service, max int) ([]listenKey, error) {
	k := s.Key
	protos := s.Protos
	vips := s.VIPs
	ports := s.Ports
	if k.FWMark != 0 {
		if len(vips) == 0 || len(ports) == 0 {
			return nil, fmt.Errorf("firewall-mark service needs VIPs and ports for the proxy dataplane (it cannot read marks)")
		}
		if len(protos) == 0 {
			protos = []dataplane.Proto{dataplane.TCP, dataplane.UDP}
		}
	} else {
		if len(protos) == 0 {
			protos = []dataplane.Proto{k.Proto}
		}
		if len(vips) == 0 {
			vips = []netip.Addr{k.Addr}
		}
		if len(ports) == 0 {
			if k.Port == 0 {
				return nil, fmt.Errorf("port 0 (every port) is not supported by the proxy dataplane; list the ports")
			}
			ports = []dataplane.PortRange{{From: k.Port, To: k.Port}}
		}
	}
	nports := 0
	for _, r := range ports {
		if r.From == 0 || r.To < r.From {
			return nil, fmt.Errorf("bad port range %d-%d", r.From, r.To)
		}
		nports += int(r.To-r.From) + 1
		if nports > maxPorts {
			break
		}
	}
	if n := len(vips) * nports * len(protos); n > max {
		return nil, fmt.Errorf("service needs %d listening sockets (%d VIPs × %d ports × %d protocols), more than the limit of %d", n, len(vips), nports, len(protos), max)
	}
	var keys []listenKey
	seen := make(map[listenKey]bool)
	for _, pr := range protos {
		if pr != dataplane.TCP && pr != dataplane.UDP {
			return nil, fmt.Errorf("protocol %s is not supported by the proxy dataplane", pr)
		}
		for _, v := range vips {
			if !v.IsValid() {
				return nil, fmt.Errorf("invalid virtual address")
			}
			for _, r := range ports {
				for port := int(r.From); port <= int(r.To); port++ {
					lk := listenKey{proto: pr, addr: netip.AddrPortFrom(v.Unmap(), uint16(port))}
					if !seen[lk] {
						seen[lk] = true
						keys = append(keys, lk)
					}
				}
			}
		}
	}
	return keys, nil
}

// target is where a flow scheduled to rs connects: the real server's
// address and port, or with port 0 (multi-port and firewall-mark services,
// as IPVS does) the port the client connected to.
func target(rs *realServer, flow sched.Flow) netip.AddrPort {
	if rs.dest.Addr.Port() != 0 {
		return rs.dest.Addr
	}
	return netip.AddrPortFrom(rs.dest.Addr.Addr(), flow.Dst.Port())
}

// pick chooses the real server for a new flow: the scheduler's choice
// (scheduled is true and the flow must be Released when it ends), else the
// sorry server, else nil. A chosen flow is counted as a connection of the
// service and of the server.
func (svc *service) pick(cfg *serviceConfig, flow sched.Flow) (rs *realServer, scheduled bool) {
	if d, err := svc.sched.Schedule(flow); err == nil {
		rs, scheduled = svc.lookup(cfg, d), true
	} else if cfg.sorry != nil {
		rs = cfg.sorry
	} else {
		return nil, false
	}
	svc.counters.conns.Add(1)
	rs.counters.conns.Add(1)
	return rs, scheduled
}
