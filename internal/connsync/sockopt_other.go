//go:build !linux

package connsync

import (
	"errors"
	"net"
	"net/netip"
)

var errNotLinux = errors.New("not supported outside Linux")

func groupSocket(netip.AddrPort, *net.Interface) (*net.UDPConn, error) { return nil, errNotLinux }

func forceRecvBuffer(*net.UDPConn, int) error { return errNotLinux }

func countDrops(*net.UDPConn) error { return errNotLinux }

func dropCount([]byte) (uint32, bool) { return 0, false }
