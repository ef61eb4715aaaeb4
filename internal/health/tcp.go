package health

import (
	"context"
	"net"
)

// tcpChecker is TCP_CHECK: the server passes when a connection opens.
type tcpChecker struct{ s Spec }

func newTCP(s Spec) *tcpChecker { return &tcpChecker{s: s} }

func (c *tcpChecker) Check(ctx context.Context) Result {
	if err := connectOnly(ctx, &c.s); err != nil {
		return Result{Err: err}
	}
	return Result{Msg: "connected"}
}

// netConnectOnly is the portable connect check through package net.
func netConnectOnly(ctx context.Context, s *Spec) error {
	conn, err := dial(ctx, s, "tcp")
	if err != nil {
		return connectErr(err)
	}
	abort(conn)
	return nil
}

// abort closes a check connection with a reset (SO_LINGER 0) so that
// thousands of checks per second leave no TIME_WAIT sockets behind.
func abort(conn net.Conn) {
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// connectErr shortens net's "dial tcp a->b: connect: x" to "connect: x".
func connectErr(err error) error { return netErr("connect", err) }
