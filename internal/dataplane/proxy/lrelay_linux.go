package proxy

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/sched"
)

// lrelay is a TCP relay driven by an event loop. All fields except the
// atomics and those under mu belong to the loop goroutine.
type lrelay struct {
	lp        *loop
	id        uint64
	svc       *service
	rs        *realServer
	flow      sched.Flow
	scheduled bool
	proxyHdr  int // PROXY protocol version, 0 = none

	cfd, sfd   int
	connecting bool
	start      int64 // unix ns of the accept
	c2s, s2c   direction
	done       bool

	last        atomic.Int64 // unix ns of the last data moved
	finWait     atomic.Bool
	established atomic.Bool

	mu     sync.Mutex // guards closed and local against Conns
	closed bool
	local  netip.AddrPort
}

// direction is one half of a relay: src → dst. It starts by copying
// through the loop's buffer (cheapest for the small transfers most
// connections are) and switches to splice(2) through a pipe once a read
// fills the buffer, so bulk data stays in the kernel.
type direction struct {
	src, dst int
	buf      []byte // copy mode: bytes read but not yet written
	pipe     *pipe  // splice mode when set
	pending  int    // splice mode: bytes in the pipe not yet written
	bulk     bool   // switch to splice once buf is flushed
	readable bool   // src may have data (edge seen, not drained since)
	writable bool   // dst may take data
	hup      bool   // src reported a hang-up: read until EOF
	eof      bool
	shut     bool
	in       bool // client → real server
}

const spliceFlags = unix.SPLICE_F_MOVE | unix.SPLICE_F_NONBLOCK

// start schedules an accepted connection and starts connecting to the
// real server.
func (lp *loop) start(l *listener, cfd int, client netip.AddrPort) {
	svc := l.owner.Load()
	cfg := svc.cfg.Load()
	vip := l.key.addr
	flow := sched.Flow{Proto: sched.TCP, Src: client, Dst: vip, Mark: svc.key.FWMark}
	rs, scheduled := svc.pick(cfg, flow)
	if rs == nil {
		resetClose(cfd)
		return
	}
	rs.dest.ConnOpened(false) // SYN_RECV until the real server answers

	lp.nextID++
	r := &lrelay{lp: lp, id: lp.nextID, svc: svc, rs: rs, flow: flow, scheduled: scheduled,
		proxyHdr: cfg.svc.ProxyProtocol, cfd: cfd, sfd: -1, connecting: true, start: lp.now}
	r.last.Store(lp.now)

	fam := unix.AF_INET
	if rs.dest.Addr.Addr().Is6() {
		fam = unix.AF_INET6
	}
	sfd, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		r.dialFailed(err)
		return
	}
	r.sfd = sfd
	rawSetsockoptInt(sfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	err = rawConnect(sfd, target(rs, flow))
	if err != nil && !errors.Is(err, unix.EINPROGRESS) {
		r.dialFailed(err)
		return
	}
	const ev = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET
	if e := lp.ctl(unix.EPOLL_CTL_ADD, sfd, ev, r.id<<kindBits|kindServer); e != nil {
		r.dialFailed(e)
		return
	}
	if e := lp.ctl(unix.EPOLL_CTL_ADD, cfd, ev, r.id<<kindBits|kindClient); e != nil {
		r.dialFailed(e)
		return
	}
	lp.mu.Lock()
	lp.relays[r.id] = r
	lp.mu.Unlock()
	if err == nil {
		// Connected at once, before any event: assume everything.
		r.c2s.readable, r.c2s.writable, r.s2c.readable, r.s2c.writable = true, true, true, true
		r.connected()
	}
}

// resetClose closes fd with a reset rather than a FIN.
func resetClose(fd int) {
	unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	rawClose(fd)
}

// dialFailed ends a relay whose real server could not be reached.
func (r *lrelay) dialFailed(err error) {
	r.lp.p.log.Debug("connect to real server", "vs", r.svc.key.String(), "rs", r.rs.dest.Addr.String(), "err", err)
	r.connecting = false
	r.release(true, false)
	r.rs.dialFailures.Add(1) // after the connection counts are updated
}

// connected starts relaying once the real server accepted.
func (r *lrelay) connected() {
	r.connecting = false
	r.established.Store(true)
	r.rs.dest.ConnStateChanged(false, true)
	r.c2s.src, r.c2s.dst, r.c2s.in = r.cfd, r.sfd, true
	r.s2c.src, r.s2c.dst = r.sfd, r.cfd
	// Readiness of both sockets was recorded from their events while
	// connecting (registering a socket reports its current state).
	if r.proxyHdr != 0 {
		r.c2s.buf = proxyHeader(r.proxyHdr, dataplane.TCP, r.flow.Src, r.flow.Dst)
	}
	r.pump()
}

// event handles epoll events of one of the relay's sockets.
func (r *lrelay) event(server bool, ev uint32) {
	if r.done {
		return
	}
	if r.connecting {
		if !server {
			// The client's data waits in its socket until the real
			// server answers; remember the readiness (a hang-up above
			// all: its edge does not come again).
			r.mark(false, ev)
			return
		}
		if ev&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			soerr, err := unix.GetsockoptInt(r.sfd, unix.SOL_SOCKET, unix.SO_ERROR)
			if err == nil && soerr != 0 {
				err = unix.Errno(soerr)
			}
			r.dialFailed(err)
			return
		}
		if ev&unix.EPOLLOUT == 0 {
			return
		}
		r.mark(server, ev)
		r.connected()
		return
	}
	r.mark(server, ev)
	r.pump()
}

// mark records readiness from epoll events of the client or server
// socket, so that move only calls read or write when they can succeed.
func (r *lrelay) mark(server bool, ev uint32) {
	in, out := &r.c2s, &r.s2c // directions reading from / writing to the socket
	if server {
		in, out = &r.s2c, &r.c2s
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		in.readable = true
	}
	if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		in.hup = true
	}
	if ev&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		out.writable = true
	}
}

// pump moves what it can in both directions and ends the relay when both
// are done or one failed.
func (r *lrelay) pump() {
	if err := r.move(&r.c2s); err != nil {
		r.finish(true)
		return
	}
	if err := r.move(&r.s2c); err != nil {
		r.finish(true)
		return
	}
	if r.c2s.shut && r.s2c.shut {
		r.finish(false)
	}
}

// move relays src → dst until one side would block.
func (r *lrelay) move(d *direction) error {
	for {
		// Flush what is waiting.
		if d.pipe != nil && d.pending > 0 {
			if !d.writable {
				return nil
			}
			n, err := rawSplice(d.pipe.r, d.dst, d.pending)
			switch {
			case err == nil:
				d.pending -= n
				continue
			case errors.Is(err, unix.EAGAIN):
				d.writable = false
				return nil // wait until dst is writable
			case errors.Is(err, unix.EINTR):
				continue
			default:
				return err
			}
		}
		if len(d.buf) > 0 {
			if !d.writable {
				return nil
			}
			n, err := send(d.dst, d.buf)
			switch {
			case err == nil:
				d.buf = d.buf[n:]
				if len(d.buf) > 0 {
					d.writable = false // short write: the socket buffer is full
					return nil
				}
				continue
			case errors.Is(err, unix.EAGAIN):
				d.writable = false
				return nil
			case errors.Is(err, unix.EINTR):
				continue
			default:
				return err
			}
		}
		if d.eof {
			if !d.shut {
				d.shut = true
				r.halfClosed(d)
			}
			return nil
		}
		if !d.readable {
			return nil
		}
		if d.bulk && d.pipe == nil {
			if p, err := r.lp.getPipe(); err == nil {
				d.pipe = p
			}
			d.bulk = false
		}
		if d.pipe != nil {
			n, err := rawSplice(d.src, d.pipe.w, d.pipe.size)
			switch {
			case err == nil && n == 0:
				d.eof = true
			case err == nil:
				d.pending = n
				r.last.Store(r.lp.now)
				r.account(n, d.in)
			case errors.Is(err, unix.EAGAIN):
				d.readable = false
				return nil // wait for data
			case errors.Is(err, unix.EINTR):
			default:
				return err
			}
			continue
		}
		buf := r.lp.buf
		n, err := rawRead(d.src, buf)
		switch {
		case err == nil && n == 0:
			d.eof = true
			continue
		case err == nil:
		case errors.Is(err, unix.EAGAIN):
			d.readable = false
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		default:
			return err
		}
		r.last.Store(r.lp.now)
		r.account(n, d.in)
		if n == len(buf) {
			d.bulk = true
		} else if !d.hup {
			// A short read emptied the receive queue; new data brings a
			// new edge. (After a hang-up no edge follows: read to EOF.)
			d.readable = false
		}
		m := 0
		if d.writable {
			m, err = send(d.dst, buf[:n])
			switch {
			case err == nil:
				if m < n {
					d.writable = false // the socket buffer is full
				}
			case errors.Is(err, unix.EAGAIN):
				d.writable = false
			case errors.Is(err, unix.EINTR):
			default:
				return err
			}
		}
		if m < n {
			d.buf = append(d.buf[:0:0], buf[m:n]...)
		}
	}
}

// halfClosed forwards the end of one direction. When the other direction
// already ended, closing both sockets in finish sends the FIN.
func (r *lrelay) halfClosed(d *direction) {
	other := &r.s2c
	if d == &r.s2c {
		other = &r.c2s
	}
	if other.shut {
		return
	}
	rawShutdown(d.dst, unix.SHUT_WR)
	r.finWait.Store(true)
	r.rs.dest.ConnStateChanged(true, false)
	r.last.Store(r.lp.now)
}

func (r *lrelay) account(n int, in bool) {
	c, rc := &r.svc.counters, &r.rs.counters
	if in {
		c.inPkts.Add(1)
		c.inBytes.Add(uint64(n))
		rc.inPkts.Add(1)
		rc.inBytes.Add(uint64(n))
	} else {
		c.outPkts.Add(1)
		c.outBytes.Add(uint64(n))
		rc.outPkts.Add(1)
		rc.outBytes.Add(uint64(n))
	}
}

func (r *lrelay) timeout() time.Duration {
	if r.finWait.Load() {
		return r.lp.p.timeouts().TCPFin
	}
	return r.lp.p.timeouts().TCP
}

// finish ends an established relay; reset sends RSTs (errors, timeouts,
// Close) instead of FINs.
func (r *lrelay) finish(reset bool) {
	if r.done {
		return
	}
	r.release(reset, r.established.Load() && !r.finWait.Load())
}

// release closes the sockets and undoes the accounting of a relay.
func (r *lrelay) release(reset, active bool) {
	r.done = true
	r.mu.Lock()
	r.closed = true
	if reset {
		resetClose(r.cfd)
		if r.sfd >= 0 {
			resetClose(r.sfd)
		}
	} else {
		rawClose(r.cfd)
		rawClose(r.sfd)
	}
	r.mu.Unlock()
	for _, d := range []*direction{&r.c2s, &r.s2c} {
		if d.pipe == nil {
			continue
		}
		if d.pending == 0 {
			r.lp.putPipe(d.pipe)
		} else {
			d.pipe.close()
		}
		d.pipe = nil
	}
	r.lp.mu.Lock()
	delete(r.lp.relays, r.id)
	r.lp.mu.Unlock()
	r.rs.dest.ConnClosed(active)
	if r.scheduled {
		r.svc.sched.Release(r.flow)
	}
}

// abort ends the relay from another goroutine.
func (r *lrelay) abort() { r.lp.post(func() { r.finish(true) }) }

func (r *lrelay) info(now time.Time) (dataplane.Conn, bool) {
	state := "ESTABLISHED"
	if r.finWait.Load() {
		state = "FIN_WAIT"
	} else if !r.established.Load() {
		state = "SYN_RECV" // still connecting to the real server
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return dataplane.Conn{}, false
	}
	if !r.local.IsValid() && r.sfd >= 0 {
		if sa, err := unix.Getsockname(r.sfd); err == nil {
			r.local = addrPortOfSockaddr(sa)
		}
	}
	local := r.local
	r.mu.Unlock()
	exp := r.timeout() - now.Sub(time.Unix(0, r.last.Load()))
	return connInfo(dataplane.TCP, r.flow.Src, r.flow.Dst, target(r.rs, r.flow), local, state, exp, r.svc.key.FWMark), true
}
