package connsync

import (
	"encoding/binary"
	"net"

	"golang.org/x/sys/unix"
)

func bindToDevice(c *net.UDPConn, ifname string) error {
	return control(c, func(fd int) error { return unix.BindToDevice(fd, ifname) })
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
