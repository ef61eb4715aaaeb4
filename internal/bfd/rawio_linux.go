package bfd

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The control packets are sent and read with raw system calls that do
// not block (MSG_DONTWAIT; the runtime's poller waits for a packet). Go's
// syscall.Syscall would tell the scheduler of every call, which wakes its
// monitor thread (sysmon) whenever the process was idle: with keepalived's
// 10 ms intervals that was several wake-ups per packet, most of govs's
// CPU for a BFD session (TestBFDSoak, docs/BENCHMARKS.md).

var errNoRawConn = errors.New("not a socket")

func rawConn(c net.PacketConn) (syscall.RawConn, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, errNoRawConn
	}
	return sc.SyscallConn()
}

// sendTo sends b to dst, port controlPort.
func sendTo(c net.PacketConn, b []byte, dst netip.Addr) error {
	rc, err := rawConn(c)
	if err != nil {
		return err
	}
	var (
		sa4   unix.RawSockaddrInet4
		sa6   unix.RawSockaddrInet6
		sa    unsafe.Pointer
		salen uintptr
	)
	if dst = dst.Unmap(); dst.Is4() {
		sa4.Family = unix.AF_INET
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:], controlPort)
		sa4.Addr = dst.As4()
		sa, salen = unsafe.Pointer(&sa4), unix.SizeofSockaddrInet4
	} else {
		sa6.Family = unix.AF_INET6
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa6.Port))[:], controlPort)
		sa6.Addr = dst.As16()
		sa, salen = unsafe.Pointer(&sa6), unix.SizeofSockaddrInet6
	}
	var serr error
	err = rc.Write(func(fd uintptr) bool {
		_, _, e := unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
			unix.MSG_DONTWAIT, uintptr(sa), salen)
		switch e {
		case 0:
		case unix.EAGAIN:
			return false // the poller waits until it can be sent
		default:
			serr = e
		}
		return true
	})
	if err != nil {
		return err
	}
	return serr
}

// rawPacket is what recvFrom read with a packet.
type rawPacket struct {
	n   int
	ttl int // -1 when unknown
	dst netip.Addr
	src netip.Addr
}

// packetReader reads the packets of a listening socket.
func packetReader(conn net.PacketConn, v6 bool) (func(b []byte) (rawPacket, error), error) {
	rc, err := rawConn(conn)
	if err != nil {
		return nil, err
	}
	oob := make([]byte, 128)
	return func(b []byte) (rawPacket, error) { return recvFrom(rc, b, oob) }, nil
}

// recvFrom reads one packet with its TTL (hop limit) and destination
// address (the socket has IP_RECVTTL and IP_PKTINFO, or their IPv6
// equivalents, on).
func recvFrom(rc syscall.RawConn, b, oob []byte) (rawPacket, error) {
	p := rawPacket{ttl: -1}
	var rerr error
	err := rc.Read(func(fd uintptr) bool {
		var from unix.RawSockaddrAny
		iov := unix.Iovec{Base: &b[0]}
		iov.SetLen(len(b))
		msg := unix.Msghdr{Name: (*byte)(unsafe.Pointer(&from)), Namelen: unix.SizeofSockaddrAny, Iov: &iov, Control: &oob[0]}
		msg.SetIovlen(1)
		msg.SetControllen(len(oob))
		n, _, e := unix.RawSyscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&msg)), unix.MSG_DONTWAIT)
		switch e {
		case 0:
		case unix.EAGAIN:
			return false // wait for a packet
		default:
			rerr = e
			return true
		}
		p.n = int(n)
		switch from.Addr.Family {
		case unix.AF_INET:
			p.src = netip.AddrFrom4((*unix.RawSockaddrInet4)(unsafe.Pointer(&from)).Addr)
		case unix.AF_INET6:
			p.src = netip.AddrFrom16((*unix.RawSockaddrInet6)(unsafe.Pointer(&from)).Addr).Unmap()
		}
		cms, err := unix.ParseSocketControlMessage(oob[:msg.Controllen])
		if err != nil {
			return true // no TTL known: the session's check decides
		}
		for _, cm := range cms {
			switch {
			case cm.Header.Level == unix.IPPROTO_IP && cm.Header.Type == unix.IP_TTL && len(cm.Data) >= 4,
				cm.Header.Level == unix.IPPROTO_IPV6 && cm.Header.Type == unix.IPV6_HOPLIMIT && len(cm.Data) >= 4:
				p.ttl = int(*(*int32)(unsafe.Pointer(&cm.Data[0])))
			case cm.Header.Level == unix.IPPROTO_IP && cm.Header.Type == unix.IP_PKTINFO && len(cm.Data) >= unix.SizeofInet4Pktinfo:
				p.dst = netip.AddrFrom4((*unix.Inet4Pktinfo)(unsafe.Pointer(&cm.Data[0])).Addr)
			case cm.Header.Level == unix.IPPROTO_IPV6 && cm.Header.Type == unix.IPV6_PKTINFO && len(cm.Data) >= unix.SizeofInet6Pktinfo:
				p.dst = netip.AddrFrom16((*unix.Inet6Pktinfo)(unsafe.Pointer(&cm.Data[0])).Addr).Unmap()
			}
		}
		return true
	})
	if err != nil {
		return p, err
	}
	return p, rerr
}
