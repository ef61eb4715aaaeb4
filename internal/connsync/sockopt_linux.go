package connsync

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// groupSocket opens a UDP socket bound to the group address and port
// (not the wildcard) and to ifi, with recvSocketOptions.
func groupSocket(group netip.AddrPort, ifi *net.Interface) (*net.UDPConn, error) {
	fam := unix.AF_INET
	if group.Addr().Is6() {
		fam = unix.AF_INET6
	}
	fd, err := unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	var sa unix.Sockaddr
	if fam == unix.AF_INET6 {
		sa6 := &unix.SockaddrInet6{Port: int(group.Port()), Addr: group.Addr().As16()}
		if group.Addr().IsLinkLocalMulticast() {
			sa6.ZoneId = uint32(ifi.Index)
		}
		sa = sa6
	} else {
		sa = &unix.SockaddrInet4{Port: int(group.Port()), Addr: group.Addr().As4()}
	}
	if err := recvSocketOptions(fd, ifi.Name, fam == unix.AF_INET6); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind %s: %w", group, err)
	}
	f := os.NewFile(uintptr(fd), "connsync "+group.String())
	pc, err := net.FilePacketConn(f)
	f.Close() // pc holds its own descriptor
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

// recvSocketOptions prepares a receiving socket before its bind: the
// address shared with other receivers of the group (SO_REUSEADDR), the
// interface (SO_BINDTODEVICE), and only the groups it joins itself
// (IP_MULTICAST_ALL off: Linux otherwise delivers every group any socket
// of the host joined to a socket bound to that group's port).
func recvSocketOptions(fd int, ifname string, v6 bool) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fmt.Errorf("SO_REUSEADDR: %w", err)
	}
	if err := unix.BindToDevice(fd, ifname); err != nil {
		return fmt.Errorf("SO_BINDTODEVICE %s: %w", ifname, err)
	}
	if v6 {
		// (Linux 4.20 and later: without it the socket also gets the
		// groups other sockets of the host joined on its port)
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_ALL, 0)
		return nil
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0); err != nil {
		return fmt.Errorf("IP_MULTICAST_ALL: %w", err)
	}
	return nil
}

// forceRecvBuffer sets the receive buffer past net.core.rmem_max
// (CAP_NET_ADMIN).
func forceRecvBuffer(c *net.UDPConn, n int) error {
	return control(c, func(fd int) error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n) })
}

// countDrops asks the kernel to report, with each message, how many it
// dropped on the socket so far (SO_RXQ_OVFL).
func countDrops(c *net.UDPConn) error {
	return control(c, func(fd int) error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1) })
}

// dropCount reads the SO_RXQ_OVFL count from a message's control data.
func dropCount(oob []byte) (uint32, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_RXQ_OVFL && len(m.Data) >= 4 {
			return binary.NativeEndian.Uint32(m.Data), true
		}
	}
	return 0, false
}

func control(c *net.UDPConn, fn func(fd int) error) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}
