package proxy

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/dataplane"
)

// blackhole returns a loopback address whose listener never accepts and
// whose accept queue is full, so the kernel drops further SYNs and a
// connect to it hangs.
func blackhole(t *testing.T) netip.AddrPort {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: rsAddr(8).As4()}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := addrPortOfSockaddr(sa)
	// Fill the accept queue (a backlog of 0 holds one connection).
	for range 2 {
		if c, err := net.DialTimeout("tcp", addr.String(), 200*time.Millisecond); err == nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	return addr
}

func TestDialTimeout(t *testing.T) {
	for _, e := range engines[:2] {
		t.Run(e.name, func(t *testing.T) {
			opts := e.opts
			opts.DialTimeout = 300 * time.Millisecond
			p := newProxy(t, opts)
			dead := blackhole(t)
			vip := loopback{}.VIP(t, dataplane.TCP)
			s := tcpService(vip, dead)
			apply(t, p, s)
			start := time.Now()
			c, err := loopback{}.Dial(context.Background(), 0, "tcp", vip)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if !waitClosed(c, 3*time.Second) {
				t.Fatal("client not closed after the dial timeout")
			}
			if d := time.Since(start); d < 250*time.Millisecond {
				t.Errorf("client closed after %v, before the 300ms dial timeout", d)
			}
			waitFor(t, func() bool { return p.DialFailures(s.Key, dead) == 1 })
			st := p.statsOf(t, s.Key).RealServers[0]
			if st.ActiveConns != 0 || st.InactiveConns != 0 {
				t.Errorf("after the timeout: active %d inactive %d, want 0", st.ActiveConns, st.InactiveConns)
			}
		})
	}
}
