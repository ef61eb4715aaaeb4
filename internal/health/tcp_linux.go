package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// connectOnly is TCP_CHECK's connect with raw non-blocking syscalls: the
// handshake to a local or fast server has often completed when connect
// returns, and then a zero-timeout poll confirms it without registering
// the socket with the netpoller. Otherwise the socket goes to Go's
// netpoller to wait for the handshake. Half the system calls of package
// net's dial, which matters at thousands of checks per second.
func connectOnly(ctx context.Context, s *Spec) error {
	ra := netip4or6(s)
	family := unix.AF_INET
	if !ra.Addr().Is4() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return &stepError{step: "connect", msg: "socket: " + err.Error(), err: err}
	}
	closeFD := func() {
		_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
		_ = unix.Close(fd)
	}
	if err := rawSocketOptions(fd, s, family); err != nil {
		_ = unix.Close(fd)
		return err
	}
	sa, err := sockaddr(ra)
	if err != nil {
		_ = unix.Close(fd)
		return &stepError{step: "connect", msg: err.Error(), err: err}
	}
	switch err := unix.Connect(fd, sa); {
	case err == nil:
		closeFD()
		return nil
	case !errors.Is(err, unix.EINPROGRESS):
		_ = unix.Close(fd)
		return errnoErr(err)
	}
	if done, err := connectDone(fd); done {
		closeFD()
		return err
	}
	// Slow path: wait for writability through the netpoller.
	f := os.NewFile(uintptr(fd), "tcp-check")
	defer func() {
		_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
		_ = f.Close()
	}()
	if dl, ok := ctx.Deadline(); ok {
		_ = f.SetWriteDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	rc, err := f.SyscallConn()
	if err != nil {
		return &stepError{step: "connect", msg: err.Error(), err: err}
	}
	var cerr error
	werr := rc.Write(func(fd uintptr) bool {
		var done bool
		done, cerr = connectDone(int(fd))
		return done
	})
	if werr != nil {
		if errors.Is(werr, os.ErrDeadlineExceeded) {
			return &stepError{step: "connect", msg: "timeout", err: werr}
		}
		return &stepError{step: "connect", msg: werr.Error(), err: werr}
	}
	return cerr
}

// connectDone polls a connecting socket without blocking: done is false
// while the handshake is in progress.
func connectDone(fd int) (done bool, err error) {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	n, perr := unix.Poll(pfd, 0)
	if perr != nil && !errors.Is(perr, unix.EINTR) {
		return true, errnoErr(perr)
	}
	if n == 0 || pfd[0].Revents == 0 {
		return false, nil
	}
	soerr, gerr := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if gerr != nil {
		return true, errnoErr(gerr)
	}
	if soerr != 0 {
		return true, errnoErr(unix.Errno(soerr))
	}
	return true, nil
}

func errnoErr(err error) error {
	var en unix.Errno
	if errors.As(err, &en) && en == unix.ETIMEDOUT {
		return &stepError{step: "connect", msg: "timeout", err: err}
	}
	return &stepError{step: "connect", msg: err.Error(), err: err}
}

// rawSocketOptions applies fwmark, bind_if and bindto/bind_port.
func rawSocketOptions(fd int, s *Spec, family int) error {
	if s.FWMark != 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(s.FWMark)); err != nil {
			return &stepError{step: "connect", msg: fmt.Sprintf("set fwmark %d: %v", s.FWMark, err), err: err}
		}
	}
	if s.BindIf != "" {
		if err := unix.BindToDevice(fd, s.BindIf); err != nil {
			return &stepError{step: "connect", msg: fmt.Sprintf("bind to device %s: %v", s.BindIf, err), err: err}
		}
	}
	la := localAddr(s)
	if !la.IsValid() {
		return nil
	}
	if s.BindPort != 0 {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	}
	if la.Addr().Is4() != (family == unix.AF_INET) {
		return &stepError{step: "connect", msg: "bindto family differs from the connect address"}
	}
	sa, err := sockaddr(la)
	if err != nil {
		return &stepError{step: "connect", msg: err.Error(), err: err}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return &stepError{step: "connect", msg: "bind " + la.String() + ": " + err.Error(), err: err}
	}
	return nil
}

func netip4or6(s *Spec) netip.AddrPort {
	return netip.AddrPortFrom(s.Addr().Unmap(), s.Port())
}

func sockaddr(ap netip.AddrPort) (unix.Sockaddr, error) {
	a := ap.Addr()
	if a.Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}, nil
	}
	sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
	if z := a.Zone(); z != "" {
		ifi, err := net.InterfaceByName(z)
		if err != nil {
			return nil, fmt.Errorf("zone %s: %w", z, err)
		}
		sa.ZoneId = uint32(ifi.Index)
	}
	return sa, nil
}
