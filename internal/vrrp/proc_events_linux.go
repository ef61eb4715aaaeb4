package vrrp

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// The proc connector (linux/cn_proc.h, linux/connector.h): a netlink
// socket of family NETLINK_CONNECTOR joined to group CN_IDX_PROC, told to
// listen, then receiving a message per fork, exec, exit, rename... of
// every process. It needs CAP_NET_ADMIN.
const (
	cnIdxProc       = 1
	cnValProc       = 1
	procCnMcastOn   = 1
	procEventFork   = 0x00000001
	procEventExec   = 0x00000002
	procEventComm   = 0x00000200
	procEventExit   = 0x80000000
	nlmsgHdrLen     = 16
	cnMsgLen        = 20
	procEventHdrLen = 16 // what, cpu, timestamp_ns
)

type procConnector struct {
	f   *os.File // the socket, non-blocking, in the runtime's poller
	buf []byte
}

// openProcEvents subscribes to the kernel's process events.
func openProcEvents() (procEventSource, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_CONNECTOR)
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: cnIdxProc}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 1<<20)
	msg := make([]byte, nlmsgHdrLen+cnMsgLen+4)
	binary.NativeEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:], unix.NLMSG_DONE)
	binary.NativeEndian.PutUint32(msg[12:], uint32(os.Getpid()))
	binary.NativeEndian.PutUint32(msg[16:], cnIdxProc)
	binary.NativeEndian.PutUint32(msg[20:], cnValProc)
	binary.NativeEndian.PutUint16(msg[32:], 4) // data length
	binary.NativeEndian.PutUint32(msg[36:], procCnMcastOn)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &procConnector{f: os.NewFile(uintptr(fd), "proc connector"), buf: make([]byte, 1<<16)}, nil
}

func (p *procConnector) Close() error { return p.f.Close() }

// next reads the events there are, waiting up to timeout (or the end of
// ctx) for the first.
func (p *procConnector) next(ctx context.Context, timeout time.Duration) (changed, ended []string, overflow bool, err error) {
	_ = p.f.SetReadDeadline(time.Now().Add(timeout))
	stop := context.AfterFunc(ctx, func() { _ = p.f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	if ctx.Err() != nil {
		return nil, nil, false, nil
	}
	for {
		n, err := p.f.Read(p.buf)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			return changed, ended, overflow, nil
		case errors.Is(err, unix.ENOBUFS):
			overflow = true
		case err != nil:
			return nil, nil, false, err
		default:
			c, e := parseProcEvents(p.buf[:n])
			changed, ended = append(changed, c...), append(ended, e...)
		}
		// then what else is there, without waiting
		_ = p.f.SetReadDeadline(time.Now().Add(time.Millisecond))
	}
}

// parseProcEvents reads the events of one datagram: processes (not
// threads) that forked into being, exec'd or were renamed, and those that
// ended.
func parseProcEvents(b []byte) (changed, ended []string) {
	for len(b) >= nlmsgHdrLen {
		l := int(binary.NativeEndian.Uint32(b))
		if l < nlmsgHdrLen || l > len(b) {
			return
		}
		m := b[nlmsgHdrLen:l]
		b = b[(l+3)&^3:]
		if len(m) < cnMsgLen+procEventHdrLen+8 || binary.NativeEndian.Uint32(m) != cnIdxProc {
			continue
		}
		ev := m[cnMsgLen:]
		data := ev[procEventHdrLen:]
		pidTgid := func(off int) (string, bool) {
			if len(data) < off+8 {
				return "", false
			}
			pid, tgid := binary.NativeEndian.Uint32(data[off:]), binary.NativeEndian.Uint32(data[off+4:])
			return strconv.FormatUint(uint64(tgid), 10), pid == tgid
		}
		switch binary.NativeEndian.Uint32(ev) {
		case procEventFork: // parent pid, tgid, child pid, tgid
			if child, proc := pidTgid(8); proc {
				changed = append(changed, child)
			}
		case procEventExec, procEventComm:
			if p, _ := pidTgid(0); p != "" {
				changed = append(changed, p)
			}
		case procEventExit:
			if p, proc := pidTgid(0); proc {
				ended = append(ended, p)
			}
		}
	}
	return
}
