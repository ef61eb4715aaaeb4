//go:build !linux

package proxy

import (
	"net"
	"syscall"
)

type pipePool struct{}

func newPipePool(int) *pipePool { return &pipePool{} }

func (*pipePool) close() {}

// reusePortControl is not available here: one socket, several accept loops.
func reusePortControl() func(network, address string, c syscall.RawConn) error { return nil }

// copyFast has no splice(2) outside Linux and copies through a buffer.
func (p *Proxy) copyFast(dst, src *net.TCPConn, r *tcpRelay, in bool) error {
	return p.copyBuffered(dst, src, r, in)
}
