package proxy

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// pipeSize is the capacity asked of each splice pipe; it bounds one move.
const pipeSize = 256 << 10

// pipe is a kernel pipe used as the in-kernel buffer of a splice relay.
type pipe struct {
	r, w int
	size int
}

// pipePool keeps empty pipes for reuse; a pipe with data left in it (after
// an error) is closed instead.
type pipePool struct {
	free chan *pipe
}

func newPipePool(n int) *pipePool { return &pipePool{free: make(chan *pipe, n)} }

func (pp *pipePool) get() (*pipe, error) {
	select {
	case p := <-pp.free:
		return p, nil
	default:
	}
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, err
	}
	p := &pipe{r: fds[0], w: fds[1], size: 64 << 10}
	// A larger pipe moves more per call; the kernel caps unprivileged
	// sizes at fs.pipe-max-size, so failure just keeps the default.
	if n, err := unix.FcntlInt(uintptr(p.w), unix.F_SETPIPE_SZ, pipeSize); err == nil {
		p.size = n
	}
	return p, nil
}

func (pp *pipePool) put(p *pipe) {
	select {
	case pp.free <- p:
	default:
		p.close()
	}
}

func (pp *pipePool) close() {
	for {
		select {
		case p := <-pp.free:
			p.close()
		default:
			return
		}
	}
}

func (p *pipe) close() {
	unix.Close(p.r)
	unix.Close(p.w)
}

// reusePortControl sets SO_REUSEPORT so several sockets share a port.
func reusePortControl() func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}
}

// copyFast relays src to dst with splice(2) through a pipe: the payload
// stays in the kernel. Each splice out of src counts as one packet.
func (p *Proxy) copyFast(dst, src *net.TCPConn, r *tcpRelay, in bool) error {
	pp, err := p.pipes.get()
	if err != nil {
		return p.copyBuffered(dst, src, r, in)
	}
	rc, err := src.SyscallConn()
	if err != nil {
		pp.close()
		return err
	}
	wc, err := dst.SyscallConn()
	if err != nil {
		pp.close()
		return err
	}
	const flags = unix.SPLICE_F_MOVE | unix.SPLICE_F_NONBLOCK
	for {
		var n int64
		var serr error
		err := rc.Read(func(fd uintptr) bool {
			for {
				k, e := unix.Splice(int(fd), nil, pp.w, nil, pp.size, flags) // int on 32-bit systems
				n, serr = int64(k), e
				if serr != unix.EINTR {
					break
				}
			}
			return serr != unix.EAGAIN
		})
		if err == nil {
			err = serr
		}
		if err != nil {
			pp.close()
			return err
		}
		if n == 0 {
			p.pipes.put(pp)
			return nil // EOF
		}
		r.account(int(n), in)
		for n > 0 {
			var m int64
			var werr error
			err := wc.Write(func(fd uintptr) bool {
				for {
					m0, e := unix.Splice(pp.r, nil, int(fd), nil, int(n), flags)
					m, werr = int64(m0), e
					if werr != unix.EINTR {
						break
					}
				}
				return werr != unix.EAGAIN
			})
			if err == nil {
				err = werr
			}
			if err != nil {
				pp.close()
				return err
			}
			n -= m
		}
	}
}
