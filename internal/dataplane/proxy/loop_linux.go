package proxy

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/dataplane"
)

// The Linux TCP engine: a few event loops (one per CPU by default), each
// an epoll set over raw non-blocking sockets, accepting, connecting and
// relaying without a goroutine per connection. Per connection it makes
// about the system calls HAProxy makes: accept4, socket, setsockopt,
// connect, two epoll registrations, reads and sends (or splices for bulk
// data), one shutdown and two closes.

// Kinds of epoll registrations, in the low bits of the event data.
const (
	kindWake = iota
	kindListener
	kindClient
	kindServer
	kindBits = 2
)

// copyBufSize is the loop's copy buffer; a read that fills it switches
// the direction to splice.
const copyBufSize = 16 << 10

// loop is one event loop.
type loop struct {
	p      *Proxy
	epfd   int
	wakeFd int // eventfd

	mu     sync.Mutex // guards cmds; and relays for readers other than the loop
	cmds   []func()
	relays map[uint64]*lrelay
	lis    map[uint64]*listener // loop goroutine only

	nextID   uint64 // loop goroutine only
	now      int64  // unix ns, updated after every epoll_wait
	pipes    []*pipe
	buf      []byte // copy buffer shared by the loop's relays
	stopping bool
	backoff  []*listener   // listeners paused after accept errors
	exited   chan struct{} // closed when run returns
}

// loopsAvailable reports whether this platform has the event-loop engine.
func loopsAvailable() bool { return true }

func newLoop(p *Proxy) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	// Non-blocking, so that os.NewFile hands it to Go's netpoller.
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("epoll: %w", err)
	}
	wfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	lp := &loop{p: p, epfd: epfd, wakeFd: wfd, relays: make(map[uint64]*lrelay), lis: make(map[uint64]*listener), exited: make(chan struct{}), buf: make([]byte, copyBufSize)}
	if err := lp.ctl(unix.EPOLL_CTL_ADD, wfd, unix.EPOLLIN, kindWake); err != nil {
		lp.closeFds()
		return nil, err
	}
	return lp, nil
}

func (lp *loop) closeFds() {
	unix.Close(lp.epfd)
	unix.Close(lp.wakeFd)
}

// ctl changes the epoll registration of fd; data is id<<kindBits|kind.
func (lp *loop) ctl(op, fd int, events uint32, data uint64) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(uint32(data)), Pad: int32(uint32(data >> 32))}
	if err := rawEpollCtl(lp.epfd, op, fd, &ev); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

// post runs fn on the loop goroutine.
func (lp *loop) post(fn func()) {
	lp.mu.Lock()
	lp.cmds = append(lp.cmds, fn)
	lp.mu.Unlock()
	var one = [8]byte{1}
	unix.Write(lp.wakeFd, one[:])
}

// call runs fn on the loop goroutine and waits for it (or for the loop
// to end).
func (lp *loop) call(fn func()) {
	done := make(chan struct{})
	lp.post(func() {
		fn()
		close(done)
	})
	select {
	case <-done:
	case <-lp.exited:
	}
}

// scanInterval is how often a loop checks idle and connect timeouts.
func (p *Proxy) scanInterval() time.Duration {
	t := min(p.timeouts().TCP, p.timeouts().TCPFin, p.opts.DialTimeout) / 4
	return max(10*time.Millisecond, min(t, time.Second))
}

// run is the loop goroutine. It never blocks in epoll_wait: the epoll
// descriptor is itself registered with Go's netpoller, so an idle loop
// parks like any goroutine waiting for a socket, and no thread sits in a
// blocking system call.
func (lp *loop) run() {
	defer close(lp.exited)
	defer unix.Close(lp.wakeFd)
	f := os.NewFile(uintptr(lp.epfd), "epoll")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		lp.p.log.Error("event loop", "err", err)
		return
	}
	events := make([]unix.EpollEvent, 256)
	next := time.Now().Add(lp.p.scanInterval())
	pollable := f.SetReadDeadline(next) == nil
	for {
		var n int
		var werr error
		err := rc.Read(func(fd uintptr) bool {
			for {
				n, werr = rawEpollPoll(int(fd), events)
				if !errors.Is(werr, unix.EINTR) {
					break
				}
			}
			return n > 0 || werr != nil
		})
		if err == nil {
			err = werr
		}
		now := time.Now()
		lp.now = now.UnixNano()
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			n = 0
		default:
			lp.p.log.Error("epoll_wait", "err", err)
			lp.stop()
			return
		}
		for i := 0; i < n; i++ {
			data := uint64(uint32(events[i].Fd)) | uint64(uint32(events[i].Pad))<<32
			id := data >> kindBits
			switch data & (1<<kindBits - 1) {
			case kindWake:
				lp.wake()
				if lp.stopping {
					lp.stop()
					return
				}
			case kindListener:
				if l := lp.lis[id]; l != nil {
					lp.accept(l)
				}
			case kindClient:
				if r := lp.relays[id]; r != nil {
					r.event(false, events[i].Events)
				}
			case kindServer:
				if r := lp.relays[id]; r != nil {
					r.event(true, events[i].Events)
				}
			}
		}
		if !now.Before(next) {
			lp.scan()
			next = now.Add(lp.p.scanInterval()) // the timeouts may have changed (SetTimeouts)
			if pollable {
				f.SetReadDeadline(next)
			}
		}
	}
}

func (lp *loop) wake() {
	var buf [8]byte
	unix.Read(lp.wakeFd, buf[:])
	lp.mu.Lock()
	cmds := lp.cmds
	lp.cmds = nil
	lp.mu.Unlock()
	for _, fn := range cmds {
		fn()
	}
}

// stop ends every relay of the loop.
func (lp *loop) stop() {
	for _, r := range lp.relays {
		r.finish(true)
	}
	for _, p := range lp.pipes {
		p.close()
	}
	lp.pipes = nil
}

// addListener and removeListener run on the loop goroutine.
func (lp *loop) addListener(l *listener) {
	if err := lp.ctl(unix.EPOLL_CTL_ADD, l.fd, unix.EPOLLIN|unix.EPOLLEXCLUSIVE, l.id<<kindBits|kindListener); err != nil {
		lp.p.log.Error("watch listener", "addr", l.key.String(), "err", err)
		return
	}
	lp.lis[l.id] = l
}

func (lp *loop) removeListener(l *listener) {
	if lp.lis[l.id] == nil {
		return
	}
	delete(lp.lis, l.id)
	for i, b := range lp.backoff {
		if b == l {
			lp.backoff = append(lp.backoff[:i], lp.backoff[i+1:]...)
			return // not in the epoll set while backing off
		}
	}
	unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_DEL, l.fd, nil)
}

// accept takes up to a batch of connections from l.
func (lp *loop) accept(l *listener) {
	for range 64 {
		fd, client, err := accept4(l.fd)
		switch {
		case err == nil:
			lp.start(l, fd, client)
		case errors.Is(err, unix.EAGAIN):
			return
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.ECONNABORTED):
		default:
			// Out of file descriptors and the like: stop watching the
			// listener until the next scan, or the level-triggered
			// event would spin.
			lp.p.log.Warn("accept", "addr", l.key.String(), "err", err)
			unix.EpollCtl(lp.epfd, unix.EPOLL_CTL_DEL, l.fd, nil)
			lp.backoff = append(lp.backoff, l)
			return
		}
	}
}

// scan enforces the idle and connect timeouts and resumes listeners that
// were paused.
func (lp *loop) scan() {
	for _, l := range lp.backoff {
		if lp.lis[l.id] == l {
			if err := lp.ctl(unix.EPOLL_CTL_ADD, l.fd, unix.EPOLLIN|unix.EPOLLEXCLUSIVE, l.id<<kindBits|kindListener); err != nil {
				lp.p.log.Error("watch listener", "addr", l.key.String(), "err", err)
			}
		}
	}
	lp.backoff = lp.backoff[:0]
	dial := int64(lp.p.opts.DialTimeout)
	for _, r := range lp.relays {
		if r.connecting {
			if lp.now-r.start >= dial {
				r.dialFailed(unix.ETIMEDOUT)
			}
			continue
		}
		if lp.now-r.last.Load() >= int64(r.timeout()) {
			r.finish(true)
		}
	}
}

func (lp *loop) getPipe() (*pipe, error) {
	if n := len(lp.pipes); n > 0 {
		p := lp.pipes[n-1]
		lp.pipes = lp.pipes[:n-1]
		return p, nil
	}
	return lp.p.pipes.get()
}

func (lp *loop) putPipe(p *pipe) {
	if len(lp.pipes) < 128 {
		lp.pipes = append(lp.pipes, p)
		return
	}
	lp.p.pipes.put(p)
}

// snapshot returns the loop's relays for Conns.
func (lp *loop) snapshot() []*lrelay {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	rs := make([]*lrelay, 0, len(lp.relays))
	for _, r := range lp.relays {
		rs = append(rs, r)
	}
	return rs
}

// listenRaw opens a non-blocking TCP listening socket on a.
func listenRaw(a netip.AddrPort) (int, error) {
	fam := unix.AF_INET
	if a.Addr().Is6() {
		fam = unix.AF_INET6
	}
	fd, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	fail := func(op string, err error) (int, error) {
		unix.Close(fd)
		return -1, fmt.Errorf("%s: %w", op, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fail("setsockopt", err)
	}
	if fam == unix.AF_INET6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			return fail("setsockopt", err)
		}
	}
	// Accepted sockets inherit TCP_NODELAY from the listener.
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
		return fail("setsockopt", err)
	}
	if err := unix.Bind(fd, sockaddr(a)); err != nil {
		return fail("bind", err)
	}
	if err := unix.Listen(fd, 4096); err != nil {
		return fail("listen", err)
	}
	return fd, nil
}

// sockaddr converts a to a fresh unix.Sockaddr (they are not safe to
// share: the syscall package writes into them).
func sockaddr(a netip.AddrPort) unix.Sockaddr {
	if a.Addr().Is4() {
		return &unix.SockaddrInet4{Port: int(a.Port()), Addr: a.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(a.Port()), Addr: a.Addr().As16()}
}

func addrPortOfSockaddr(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port))
	}
	return netip.AddrPort{}
}

// startLoops starts n event loops.
func (p *Proxy) startLoops(n int) error {
	for range n {
		lp, err := newLoop(p)
		if err != nil {
			p.stopLoops()
			return err
		}
		p.loops = append(p.loops, lp)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			lp.run()
		}()
	}
	return nil
}

// stopLoops ends every loop and its relays.
func (p *Proxy) stopLoops() {
	for _, lp := range p.loops {
		lp.post(func() { lp.stopping = true })
	}
}

// loopConns lists the relays of the event loops.
func (p *Proxy) loopConns() []relay {
	var out []relay
	for _, lp := range p.loops {
		for _, r := range lp.snapshot() {
			out = append(out, r)
		}
	}
	return out
}

var _ relay = (*lrelay)(nil)

// connInfo is shared by the engines' Conns entries.
func connInfo(proto dataplane.Proto, client, vip, real, local netip.AddrPort, state string, exp time.Duration, mark uint32) dataplane.Conn {
	return dataplane.Conn{Proto: proto, Client: client, Virtual: vip, Real: real, Local: local, State: state, Expires: max(exp, 0), FWMark: mark}
}

// watchListener hands a raw listener to every loop.
func (p *Proxy) watchListener(l *listener) {
	for _, lp := range p.loops {
		lp.post(func() { lp.addListener(l) })
	}
}

// closeRawListener takes l away from every loop, then closes its socket.
func (p *Proxy) closeRawListener(l *listener) error {
	for _, lp := range p.loops {
		lp.call(func() { lp.removeListener(l) })
	}
	return unix.Close(l.fd)
}
