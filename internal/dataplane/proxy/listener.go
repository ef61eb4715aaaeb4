package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/govs/govs/internal/dataplane"
)

// listener is one listening socket (or, for TCP with several accept
// loops, one SO_REUSEPORT group of sockets). Its owner is the service
// that new connections are scheduled for; Apply may hand a listener to
// another service without closing it.
type listener struct {
	p     *Proxy
	key   listenKey
	id    uint64
	owner atomic.Pointer[service]
	fd    int // raw listening socket of the event-loop engine, or -1
	tcp   []*net.TCPListener
	udp   *net.UDPConn

	mu       sync.Mutex // guards sessions and closed
	sessions map[sessionKey]*udpSession
	closed   bool
}

// listen opens the socket(s) for k without serving them yet.
func (p *Proxy) listen(k listenKey) (*listener, error) {
	l := &listener{p: p, key: k, fd: -1, id: p.ids.Add(1)}
	switch {
	case k.proto == dataplane.TCP && len(p.loops) > 0:
		fd, err := listenRaw(k.addr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", k, err)
		}
		l.fd = fd
	case k.proto == dataplane.TCP:
		n := p.opts.AcceptLoops
		// No TCP keep-alive: the idle timeout ends dead relays, and each
		// keep-alive option costs a system call per connection.
		lc := net.ListenConfig{KeepAlive: -1}
		if n > 1 {
			if ctl := reusePortControl(); ctl != nil {
				lc.Control = ctl
			} else {
				n = 1
			}
		}
		for range n {
			ln, err := lc.Listen(context.Background(), "tcp", k.addr.String())
			if err != nil {
				for _, o := range l.tcp {
					o.Close()
				}
				return nil, fmt.Errorf("listen on %s: %w", k, err)
			}
			l.tcp = append(l.tcp, ln.(*net.TCPListener))
		}
	case k.proto == dataplane.UDP:
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(k.addr))
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", k, err)
		}
		l.udp = c
		l.sessions = make(map[sessionKey]*udpSession)
	default:
		return nil, fmt.Errorf("protocol %s not supported", k.proto)
	}
	return l, nil
}

// serve starts the accept or read loops of l.
func (p *Proxy) serve(l *listener) {
	if l.fd >= 0 {
		p.watchListener(l)
		return
	}
	if l.udp != nil {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serveUDP(l)
		}()
		return
	}
	loops := p.opts.AcceptLoops
	for i := range loops {
		ln := l.tcp[i%len(l.tcp)]
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.acceptLoop(l, ln)
		}()
	}
}

// close stops accepting on l. TCP relays already accepted continue; UDP
// sessions end because their replies leave through the closed socket.
func (l *listener) close() error {
	var errs []error
	if l.fd >= 0 {
		if err := l.p.closeRawListener(l); err != nil {
			errs = append(errs, err)
		}
	}
	for _, ln := range l.tcp {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if l.udp != nil {
		l.mu.Lock()
		l.closed = true
		ss := make([]*udpSession, 0, len(l.sessions))
		for _, s := range l.sessions {
			ss = append(ss, s)
		}
		l.mu.Unlock()
		if err := l.udp.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
		for _, s := range ss {
			s.abort()
		}
	}
	return errors.Join(errs...)
}

// acceptLoop accepts TCP connections until the listener is closed.
func (p *Proxy) acceptLoop(l *listener, ln *net.TCPListener) {
	var delay time.Duration
	for {
		c, err := ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off and retry.
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay *= 2; delay > time.Second {
				delay = time.Second
			}
			p.log.Warn("accept", "addr", l.key.String(), "err", err)
			select {
			case <-time.After(delay):
			case <-p.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handleTCP(l, c)
		}()
	}
}
