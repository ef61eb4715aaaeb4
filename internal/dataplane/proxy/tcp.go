package proxy

import (
	"errors"
	"io"
	"math"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/sched"
)

// tcpRelay is one proxied TCP connection.
type tcpRelay struct {
	p      *Proxy
	svc    *service
	rs     *realServer
	client *net.TCPConn
	server *net.TCPConn
	flow   sched.Flow
	local  netip.AddrPort // proxy side toward the real server

	scheduled bool         // flow came from the scheduler (Release on end)
	last      atomic.Int64 // unix nanoseconds of the last data moved
	halfDone  atomic.Int32 // directions that reached EOF
	finWait   atomic.Bool
	timer     *time.Timer
	abortOnce sync.Once
}

// handleTCP schedules an accepted connection, connects to the chosen real
// server and relays until both sides are done.
func (p *Proxy) handleTCP(l *listener, c *net.TCPConn) {
	svc := l.owner.Load()
	cfg := svc.cfg.Load()
	client := addrPortOf(c.RemoteAddr())
	vip := addrPortOf(c.LocalAddr())
	flow := sched.Flow{Proto: sched.TCP, Src: client, Dst: vip, Mark: svc.key.FWMark}

	rs, scheduled := svc.pick(cfg, flow)
	if rs == nil {
		// No real server can take it: IPVS drops the SYN; a proxy can
		// only close the accepted connection.
		c.SetLinger(0)
		c.Close()
		return
	}
	rs.dest.ConnOpened(false) // SYN_RECV until the real server answers

	r := &tcpRelay{p: p, svc: svc, rs: rs, client: c, flow: flow, scheduled: scheduled}
	d := net.Dialer{Timeout: p.opts.DialTimeout, KeepAlive: -1}
	sc, err := d.DialContext(p.ctx, "tcp", target(rs, flow).String())
	if err != nil {
		p.log.Debug("connect to real server", "vs", svc.key.String(), "rs", rs.dest.Addr.String(), "err", err)
		rs.dest.ConnClosed(false)
		if scheduled {
			svc.sched.Release(flow)
		}
		rs.dialFailures.Add(1) // after the connection counts are updated
		c.SetLinger(0)
		c.Close()
		return
	}
	r.server = sc.(*net.TCPConn)
	r.local = addrPortOf(sc.LocalAddr())
	rs.dest.ConnStateChanged(false, true)
	r.touch()
	r.timer = time.AfterFunc(math.MaxInt64, r.checkIdle)
	if !p.conns.add(r) {
		// Close is running: do not start relaying.
		r.abort()
	}
	r.checkIdle() // arms the idle timer

	if v := cfg.svc.ProxyProtocol; v != 0 {
		if _, err := r.server.Write(proxyHeader(v, dataplane.TCP, client, vip)); err != nil {
			r.abort()
		}
	}

	done := make(chan struct{})
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		r.pump(r.server, r.client, true)
		close(done)
	}()
	r.pump(r.client, r.server, false)
	<-done
	r.finish()
}

// pump copies src to dst until EOF, then half-closes dst; on an error it
// aborts the whole relay.
func (r *tcpRelay) pump(dst, src *net.TCPConn, in bool) {
	var err error
	if r.p.opts.NoSplice {
		err = r.p.copyBuffered(dst, src, r, in)
	} else {
		err = r.p.copyFast(dst, src, r, in)
	}
	if err != nil {
		r.abort()
		return
	}
	if r.halfDone.Load() == 1 {
		// The other direction already ended: finish closes both sockets,
		// which sends the FIN without a separate shutdown.
		r.halfDone.Add(1)
		return
	}
	if e := dst.CloseWrite(); e != nil {
		r.abort()
		return
	}
	if r.halfDone.Add(1) == 1 {
		// First FIN: the connection leaves ESTABLISHED; IPVS then applies
		// the (shorter) tcpfin timeout.
		r.finWait.Store(true)
		r.rs.dest.ConnStateChanged(true, false)
		r.touch()
		r.checkIdle() // arms the idle timer for the FIN timeout
	}
}

// account records n bytes moved in one read.
func (r *tcpRelay) account(n int, in bool) {
	r.touch()
	if in {
		r.svc.counters.inPkts.Add(1)
		r.svc.counters.inBytes.Add(uint64(n))
		r.rs.counters.inPkts.Add(1)
		r.rs.counters.inBytes.Add(uint64(n))
	} else {
		r.svc.counters.outPkts.Add(1)
		r.svc.counters.outBytes.Add(uint64(n))
		r.rs.counters.outPkts.Add(1)
		r.rs.counters.outBytes.Add(uint64(n))
	}
}

func (r *tcpRelay) touch() { r.last.Store(time.Now().UnixNano()) }

func (r *tcpRelay) timeout() time.Duration { return r.timeoutOf(r.p.timeouts()) }

// timeoutOf is the relay's idle timeout under t.
func (r *tcpRelay) timeoutOf(t dataplane.Timeouts) time.Duration {
	if r.finWait.Load() {
		return t.TCPFin
	}
	return t.TCP
}

// checkIdle runs when the idle timer fires: it aborts a relay that moved
// nothing for its timeout, or re-arms the timer.
func (r *tcpRelay) checkIdle() {
	for {
		t := r.p.timeouts()
		idle := time.Since(time.Unix(0, r.last.Load()))
		to := r.timeoutOf(t)
		if idle >= to {
			r.abort()
			return
		}
		r.timer.Reset(to - idle)
		// SetTimeouts checks every relay after it changes the timeouts;
		// if it did so between the load above and this Reset, that
		// check was undone: check again by the new ones.
		if r.p.timeouts() == t {
			return
		}
	}
}

// abort closes both sockets; the pumps then return.
func (r *tcpRelay) abort() {
	r.abortOnce.Do(func() {
		r.client.SetLinger(0)
		r.client.Close()
		if r.server != nil {
			r.server.SetLinger(0)
			r.server.Close()
		}
	})
}

// finish releases everything once both pumps returned.
func (r *tcpRelay) finish() {
	r.timer.Stop()
	r.client.Close()
	r.server.Close()
	r.p.conns.remove(r)
	r.rs.dest.ConnClosed(!r.finWait.Load())
	if r.scheduled {
		r.svc.sched.Release(r.flow)
	}
}

func (r *tcpRelay) info(now time.Time) (dataplane.Conn, bool) {
	state := "ESTABLISHED"
	if r.finWait.Load() {
		state = "FIN_WAIT"
	}
	exp := r.timeout() - now.Sub(time.Unix(0, r.last.Load()))
	if exp < 0 {
		exp = 0
	}
	return dataplane.Conn{
		Proto:   dataplane.TCP,
		Client:  r.flow.Src,
		Virtual: r.flow.Dst,
		Real:    target(r.rs, r.flow),
		Local:   r.local,
		State:   state,
		Expires: exp,
		FWMark:  r.svc.key.FWMark,
	}, true
}

// copyBuffered relays through a pooled user-space buffer.
func (p *Proxy) copyBuffered(dst, src *net.TCPConn, r *tcpRelay, in bool) error {
	bp := p.bufs.Get().(*[]byte)
	defer p.bufs.Put(bp)
	buf := *bp
	for {
		n, err := src.Read(buf)
		if n > 0 {
			r.account(n, in)
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// addrPortOf returns the address of a TCP or UDP net.Addr, IPv4-mapped
// IPv6 addresses unmapped.
func addrPortOf(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
