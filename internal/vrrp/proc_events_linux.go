package vrrp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// The proc connector (linux/cn_proc.h, linux/connector.h): a netlink
// socket of family NETLINK_CONNECTOR joined to group CN_IDX_PROC, told to
// listen, then receiving a message per fork, exec, exit, rename... of
// every process. It needs CAP_NET_ADMIN, and the kernel takes a listen
// request only from the initial pid and user namespaces (it ignores
// others without a word): the listen is confirmed by the kernel's ack
// (PROC_EVENT_NONE), or not used.
const (
	cnIdxProc       = 1
	cnValProc       = 1
	procCnMcastOn   = 1
	procCnMcastOff  = 2
	procEventNone   = 0x00000000
	procEventFork   = 0x00000001
	procEventExec   = 0x00000002
	procEventComm   = 0x00000200
	procEventExit   = 0x80000000
	nlmsgHdrLen     = 16
	cnMsgLen        = 20 // id.idx, id.val, seq, ack, len u16, flags u16
	procEventHdrLen = 16 // what, cpu, timestamp_ns
	// procDrain bounds the datagrams one next reads: under a fork storm
	// it still returns, so that delays end and a stop is seen
	procDrain = 512
	// procAckWait is how long the kernel's ack of the listen is waited
	// for
	procAckWait = time.Second
)

type procConnector struct {
	f   *os.File // the socket, non-blocking, in the runtime's poller
	buf []byte
}

// procEvent is one event about a process (not a thread): a fork (parent
// set), an exec or a rename, or an exit.
type procEvent struct {
	what        uint32
	pid, parent string
}

// openProcEvents subscribes to the kernel's process events and waits for
// the kernel to confirm it.
func openProcEvents() (procEventSource, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_CONNECTOR)
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: cnIdxProc}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	// only the kernel's messages (port 0)
	if err := unix.Connect(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 1<<20)
	seq := uint32(time.Now().UnixNano())
	if err := procListen(fd, procCnMcastOn, seq); err != nil {
		unix.Close(fd)
		return nil, err
	}
	p := &procConnector{f: os.NewFile(uintptr(fd), "proc connector"), buf: make([]byte, 1<<16)}
	if err := p.awaitAck(seq); err != nil {
		p.Close() // IGNORE too: the listen may have been taken, its ack lost
		return nil, err
	}
	return p, nil
}

// procListen sends PROC_CN_MCAST_LISTEN or _IGNORE.
func procListen(fd int, op, seq uint32) error {
	msg := make([]byte, nlmsgHdrLen+cnMsgLen+4)
	binary.NativeEndian.PutUint32(msg[0:], uint32(len(msg)))
	binary.NativeEndian.PutUint16(msg[4:], unix.NLMSG_DONE)
	binary.NativeEndian.PutUint32(msg[8:], seq)
	binary.NativeEndian.PutUint32(msg[12:], uint32(os.Getpid()))
	binary.NativeEndian.PutUint32(msg[16:], cnIdxProc)
	binary.NativeEndian.PutUint32(msg[20:], cnValProc)
	binary.NativeEndian.PutUint32(msg[24:], seq) // cn_msg.seq
	binary.NativeEndian.PutUint32(msg[28:], seq) // cn_msg.ack: the kernel's ack carries it plus one
	binary.NativeEndian.PutUint16(msg[32:], 4)   // data length
	binary.NativeEndian.PutUint32(msg[36:], op)
	return unix.Send(fd, msg, 0)
}

// awaitAck reads until the kernel's ack of the listen request seq (a
// PROC_EVENT_NONE whose cn_msg ack is ours plus one; its seq is the
// kernel's own count), without an error.
func (p *procConnector) awaitAck(seq uint32) error {
	_ = p.f.SetReadDeadline(time.Now().Add(procAckWait))
	for {
		n, err := p.f.Read(p.buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return errors.New("the kernel did not confirm the process-event listen (a pid or user namespace other than the initial one, or a kernel without CONFIG_PROC_EVENTS)")
		}
		if errors.Is(err, unix.ENOBUFS) {
			continue
		}
		if err != nil {
			return err
		}
		if ok, ackErr := procAck(p.buf[:n], seq); ok {
			if ackErr != 0 {
				return fmt.Errorf("process-event listen refused: %w", unix.Errno(ackErr))
			}
			return nil
		}
	}
}

// procAck says whether b holds the ack of request seq, and its error.
func procAck(b []byte, seq uint32) (bool, uint32) {
	if len(b) < nlmsgHdrLen+cnMsgLen+procEventHdrLen+4 {
		return false, 0
	}
	cn := b[nlmsgHdrLen:]
	ev := cn[cnMsgLen:]
	if binary.NativeEndian.Uint32(cn) != cnIdxProc || binary.NativeEndian.Uint32(cn[12:]) != seq+1 ||
		binary.NativeEndian.Uint32(ev) != procEventNone {
		return false, 0
	}
	return true, binary.NativeEndian.Uint32(ev[procEventHdrLen:])
}

// Close stops the kernel's listening for this socket (it counts its
// listeners, and builds events while it has one), then closes it.
func (p *procConnector) Close() error {
	if rc, err := p.f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { _ = procListen(int(fd), procCnMcastOff, 0) })
	}
	return p.f.Close()
}

// next reads the events there are (up to procDrain datagrams), waiting
// up to timeout (or the end of ctx) for the first.
func (p *procConnector) next(ctx context.Context, timeout time.Duration) (evs []procEvent, overflow bool, err error) {
	_ = p.f.SetReadDeadline(time.Now().Add(timeout))
	stop := context.AfterFunc(ctx, func() { _ = p.f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	for range procDrain {
		if ctx.Err() != nil {
			return evs, overflow, nil
		}
		n, err := p.f.Read(p.buf)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			return evs, overflow, nil
		case errors.Is(err, unix.ENOBUFS):
			overflow = true
		case err != nil:
			return nil, false, err
		default:
			evs = append(evs, parseProcEvents(p.buf[:n])...)
		}
		// then what else is there, without waiting (unless stopped)
		if ctx.Err() == nil {
			_ = p.f.SetReadDeadline(time.Now().Add(time.Millisecond))
		}
	}
	return evs, overflow, nil
}

// parseProcEvents reads the events of one datagram about processes (not
// threads): forks into being, execs and renames, and ends.
func parseProcEvents(b []byte) (out []procEvent) {
	for len(b) >= nlmsgHdrLen {
		l := int(binary.NativeEndian.Uint32(b))
		if l < nlmsgHdrLen || l > len(b) {
			return
		}
		m := b[nlmsgHdrLen:l]
		b = b[min(len(b), (l+3)&^3):]
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
		switch what := binary.NativeEndian.Uint32(ev); what {
		case procEventFork: // parent pid, tgid, child pid, tgid
			parent, _ := pidTgid(0)
			if child, proc := pidTgid(8); proc && parent != "" {
				out = append(out, procEvent{what: what, pid: child, parent: parent})
			}
		case procEventExec, procEventComm:
			if p, _ := pidTgid(0); p != "" {
				out = append(out, procEvent{what: what, pid: p})
			}
		case procEventExit:
			if p, proc := pidTgid(0); proc {
				out = append(out, procEvent{what: what, pid: p})
			}
		}
	}
	return
}
