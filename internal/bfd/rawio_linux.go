package bfd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
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

// sendConn is a session's sending socket.
type sendConn struct {
	net.PacketConn
	rc syscall.RawConn
}

func newSendConn(c net.PacketConn) (*sendConn, error) {
	rc, err := rawConn(c)
	if err != nil {
		return nil, err
	}
	return &sendConn{PacketConn: c, rc: rc}, nil
}

// sendTo sends b to dst.
func (c *sendConn) sendTo(b []byte, dst netip.AddrPort) error {
	var (
		sa4   unix.RawSockaddrInet4
		sa6   unix.RawSockaddrInet6
		sa    unsafe.Pointer
		salen uintptr
	)
	if ip := dst.Addr().Unmap(); ip.Is4() {
		sa4.Family = unix.AF_INET
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:], dst.Port())
		sa4.Addr = ip.As4()
		sa, salen = unsafe.Pointer(&sa4), unix.SizeofSockaddrInet4
	} else {
		sa6.Family = unix.AF_INET6
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa6.Port))[:], dst.Port())
		sa6.Addr = ip.As16()
		sa, salen = unsafe.Pointer(&sa6), unix.SizeofSockaddrInet6
	}
	var serr error
	err := c.rc.Write(func(fd uintptr) bool {
		for {
			_, _, e := unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
				unix.MSG_DONTWAIT, uintptr(sa), salen)
			switch e {
			case 0:
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // the poller waits until it can be sent
			default:
				serr = fmt.Errorf("sendto %s: %w", dst, e)
			}
			return true
		}
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

// errTruncated is a packet or its control data cut short: dropped (its
// TTL may be unknown).
var errTruncated = errors.New("truncated packet")

// packetReader asks for the TTL (hop limit) and destination of each
// packet of a listening socket (IP_RECVTTL and IP_PKTINFO, or their
// IPv6 equivalents) and reads its packets with them.
func packetReader(conn net.PacketConn, v6 bool) (func(b []byte) (rawPacket, error), error) {
	var err error
	if v6 {
		err = ipv6.NewPacketConn(conn).SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst, true)
	} else {
		err = ipv4.NewPacketConn(conn).SetControlMessage(ipv4.FlagTTL|ipv4.FlagDst, true)
	}
	if err != nil {
		return nil, fmt.Errorf("ttl and destination of packets: %w", err)
	}
	rc, err := rawConn(conn)
	if err != nil {
		return nil, err
	}
	oob := make([]byte, 128)
	return func(b []byte) (rawPacket, error) {
		for {
			p, err := recvFrom(rc, b, oob)
			if err != errTruncated {
				return p, err
			}
		}
	}, nil
}

// recvFrom reads one packet with its TTL and destination address.
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
		var n uintptr
		for {
			var e syscall.Errno
			n, _, e = unix.RawSyscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&msg)), unix.MSG_DONTWAIT)
			switch e {
			case 0:
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // wait for a packet
			default:
				rerr = e
				return true
			}
			break
		}
		if msg.Flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
			rerr = errTruncated
			return true
		}
		p.n = int(n)
		switch from.Addr.Family {
		case unix.AF_INET:
			p.src = netip.AddrFrom4((*unix.RawSockaddrInet4)(unsafe.Pointer(&from)).Addr)
		case unix.AF_INET6:
			p.src = netip.AddrFrom16((*unix.RawSockaddrInet6)(unsafe.Pointer(&from)).Addr).Unmap()
		}
		for c := oob[:msg.Controllen]; len(c) >= unix.SizeofCmsghdr; {
			h, data, rest, err := unix.ParseOneSocketControlMessage(c)
			if err != nil {
				break
			}
			c = rest
			switch {
			case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_TTL && len(data) >= 4,
				h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_HOPLIMIT && len(data) >= 4:
				p.ttl = int(*(*int32)(unsafe.Pointer(&data[0])))
			case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
				p.dst = netip.AddrFrom4((*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0])).Addr)
			case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
				p.dst = netip.AddrFrom16((*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0])).Addr).Unmap()
			}
		}
		return true
	})
	if err != nil {
		return p, err
	}
	return p, rerr
}
