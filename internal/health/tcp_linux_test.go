package health

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestTCPConnectSlowPath makes the handshake wait: a listener whose accept
// queue is full drops SYNs, so connect stays in progress and the check
// waits in the netpoller — until its timeout, or until the queue drains
// and the retransmitted SYN (after 1 s) is answered.
func TestTCPConnectSlowPath(t *testing.T) {
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(lfd)
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(lfd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(lfd)
	if err != nil {
		t.Fatal(err)
	}
	target := netip.AddrPortFrom(loop4, uint16(sa.(*unix.SockaddrInet4).Port))
	// fill the accept queue
	var fill []net.Conn
	for range 3 {
		if c, err := net.DialTimeout("tcp", target.String(), 200*time.Millisecond); err == nil {
			fill = append(fill, c)
		}
	}
	defer func() {
		for _, c := range fill {
			c.Close()
		}
	}()
	if len(fill) == 0 {
		t.Fatal("could not connect to the listener at all")
	}

	r := checkOnce(t, Spec{Kind: TCP, Target: target, ConnectTimeout: 300 * time.Millisecond})
	wantResult(t, r, "connect: timeout")

	// drain the queue from now on
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			nfd, _, err := unix.Accept(lfd)
			if err != nil {
				return
			}
			unix.Close(nfd)
		}
	}()
	defer func() { _ = unix.Shutdown(lfd, unix.SHUT_RDWR); <-done }()
	r = checkOnce(t, Spec{Kind: TCP, Target: target, ConnectTimeout: 5 * time.Second})
	wantResult(t, r, "")
	if r.Duration < 500*time.Millisecond {
		t.Logf("connect finished after %v: the SYN was not dropped, slow path not exercised", r.Duration)
	}
}

// TestTCPRawMatchesNet compares the raw connect with package net's.
func TestTCPRawMatchesNet(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	open := ln.Addr().(*net.TCPAddr).AddrPort()
	closed := netip.AddrPortFrom(loop4, freePort(t, "tcp"))
	for _, s := range []Spec{
		{Kind: TCP, Target: open},
		{Kind: TCP, Target: closed},
		{Kind: TCP, Target: open, BindTo: netip.MustParseAddr("127.0.0.3")},
		{Kind: TCP, Target: netip.MustParseAddrPort("[::1]:1")},
	} {
		s = s.Defaults()
		raw, viaNet := connectOnly(t.Context(), &s), netConnectOnly(t.Context(), &s)
		if fmt.Sprint(raw) != fmt.Sprint(viaNet) {
			t.Errorf("%s: raw %v, net %v", s.ConnectAddr(), raw, viaNet)
		}
	}
}
