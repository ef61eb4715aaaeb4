//go:build !linux

package connsync

import (
	"errors"
	"net"
)

var errNotLinux = errors.New("not supported outside Linux")

func bindToDevice(*net.UDPConn, string) error { return nil }

func forceRecvBuffer(*net.UDPConn, int) error { return errNotLinux }

func countDrops(*net.UDPConn) error { return errNotLinux }

func dropCount([]byte) (uint32, bool) { return 0, false }
