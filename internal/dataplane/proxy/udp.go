package proxy

import (
	"errors"
	"math"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/sched"
)

// maxDatagram is the largest UDP payload over IPv4 or IPv6.
const maxDatagram = 65535

// sessionKey identifies a UDP session: the client, plus the real server
// for one-packet scheduling where each datagram is scheduled on its own.
type sessionKey struct {
	client netip.AddrPort
	rs     netip.AddrPort
}

// udpSession relays datagrams of one client to one real server through a
// connected socket; replies go back through the listener's socket so
// they come from the virtual address.
type udpSession struct {
	p         *Proxy
	l         *listener
	key       sessionKey
	svc       *service
	rs        *realServer
	conn      *net.UDPConn
	flow      sched.Flow
	local     netip.AddrPort
	scheduled bool

	last      atomic.Int64
	timer     *time.Timer
	abortOnce sync.Once
}

// serveUDP reads client datagrams until the listener is closed.
func (p *Proxy) serveUDP(l *listener) {
	buf := make([]byte, maxDatagram)
	vip := l.key.addr
	for {
		n, client, err := l.udp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		client = netip.AddrPortFrom(client.Addr().Unmap(), client.Port())
		s := p.udpSession(l, client, vip)
		if s == nil {
			continue // no real server: dropped, as IPVS does
		}
		s.touch()
		s.svc.counters.inPkts.Add(1)
		s.svc.counters.inBytes.Add(uint64(n))
		s.rs.counters.inPkts.Add(1)
		s.rs.counters.inBytes.Add(uint64(n))
		if _, err := s.conn.Write(buf[:n]); err != nil && !errors.Is(err, syscall.ECONNREFUSED) {
			s.abort()
		}
	}
}

// udpSession returns the session for a datagram from client, scheduling
// and opening a new one when needed; nil means drop the datagram.
func (p *Proxy) udpSession(l *listener, client, vip netip.AddrPort) *udpSession {
	svc := l.owner.Load()
	cfg := svc.cfg.Load()
	onePacket := cfg.svc.OnePacket
	if !onePacket {
		l.mu.Lock()
		s := l.sessions[sessionKey{client: client}]
		l.mu.Unlock()
		if s != nil {
			return s
		}
	}
	flow := sched.Flow{Proto: sched.UDP, Src: client, Dst: vip, Mark: svc.key.FWMark}
	rs, scheduled := svc.pick(cfg, flow)
	if rs == nil {
		return nil
	}
	key := sessionKey{client: client}
	if onePacket {
		key.rs = rs.dest.Addr
		l.mu.Lock()
		s := l.sessions[key]
		l.mu.Unlock()
		if s != nil {
			if scheduled {
				svc.sched.Release(flow)
			}
			return s
		}
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(target(rs, flow)))
	if err != nil {
		rs.dialFailures.Add(1)
		if scheduled {
			svc.sched.Release(flow)
		}
		return nil
	}
	s := &udpSession{p: p, l: l, key: key, svc: svc, rs: rs, conn: c, flow: flow, scheduled: scheduled, local: addrPortOf(c.LocalAddr())}
	s.touch()
	s.timer = time.AfterFunc(math.MaxInt64, s.checkIdle)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		c.Close()
		if scheduled {
			svc.sched.Release(flow)
		}
		return nil
	}
	l.sessions[key] = s
	l.mu.Unlock()
	rs.dest.ConnOpened(false) // IPVS counts UDP entries as inactive
	if !p.conns.add(s) {
		s.abort()
	}
	s.checkIdle() // arms the idle timer
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		s.replies()
	}()
	return s
}

// replies relays datagrams from the real server back to the client until
// the session is closed.
func (s *udpSession) replies() {
	defer s.finish()
	buf := make([]byte, maxDatagram)
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				continue // an ICMP error for an earlier datagram
			}
			return
		}
		s.touch()
		s.svc.counters.outPkts.Add(1)
		s.svc.counters.outBytes.Add(uint64(n))
		s.rs.counters.outPkts.Add(1)
		s.rs.counters.outBytes.Add(uint64(n))
		if _, err := s.l.udp.WriteToUDPAddrPort(buf[:n], s.key.client); err != nil && errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

func (s *udpSession) touch() { s.last.Store(time.Now().UnixNano()) }

func (s *udpSession) checkIdle() {
	for {
		t := s.p.timeouts()
		idle := time.Since(time.Unix(0, s.last.Load()))
		if idle >= t.UDP {
			s.abort()
			return
		}
		s.timer.Reset(t.UDP - idle)
		// as tcpRelay.checkIdle: a SetTimeouts between the load and the
		// Reset is checked again
		if s.p.timeouts() == t {
			return
		}
	}
}

func (s *udpSession) abort() {
	s.abortOnce.Do(func() { s.conn.Close() })
}

func (s *udpSession) finish() {
	s.timer.Stop()
	s.abort()
	s.l.mu.Lock()
	if s.l.sessions[s.key] == s {
		delete(s.l.sessions, s.key)
	}
	s.l.mu.Unlock()
	s.p.conns.remove(s)
	s.rs.dest.ConnClosed(false)
	if s.scheduled {
		s.svc.sched.Release(s.flow)
	}
}

func (s *udpSession) info(now time.Time) (dataplane.Conn, bool) {
	exp := s.p.timeouts().UDP - now.Sub(time.Unix(0, s.last.Load()))
	if exp < 0 {
		exp = 0
	}
	return dataplane.Conn{
		Proto:   dataplane.UDP,
		Client:  s.key.client,
		Virtual: s.flow.Dst,
		Real:    target(s.rs, s.flow),
		Local:   s.local,
		State:   "UDP",
		Expires: exp,
		FWMark:  s.svc.key.FWMark,
	}, true
}
