// Package dataplanetest is the conformance suite every dataplane passes:
// scheduling distribution, persistence, weight 0, thresholds, sorry
// server, counters, the connection list, Apply as a diff, and UDP
// sessions. A Harness tells the suite how to create the dataplane under
// test and how clients and real servers reach it (loopback addresses for
// the userspace proxy, network namespaces for XDP).
//
// The suite runs the real servers itself, as small Go servers on sockets
// the harness opens: a TCP server writes its identity line ("rs0\n") on
// accept and then echoes what it reads until EOF; a UDP server answers
// each datagram with its identity followed by the datagram.
package dataplanetest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govs/govs/internal/dataplane"
)

// Harness adapts the suite to one dataplane and one test network.
type Harness interface {
	// NewDataplane returns a fresh dataplane with no services. The suite
	// closes it at the end of the case.
	NewDataplane(t *testing.T) dataplane.Dataplane
	// VIP returns a virtual address and port not used yet in this test,
	// reachable by every client, for a service of protocol proto.
	VIP(t *testing.T, proto dataplane.Proto) netip.AddrPort
	// ListenTCP opens the socket of real server number rs (0..4) for a
	// service on vip and returns it with the address to configure as
	// RealServer.Addr. The suite closes the listener.
	ListenTCP(t *testing.T, rs int, vip netip.AddrPort) (net.Listener, netip.AddrPort)
	// ListenUDP is ListenTCP for UDP.
	ListenUDP(t *testing.T, rs int, vip netip.AddrPort) (net.PacketConn, netip.AddrPort)
	// Clients returns the client source addresses, at least three of one
	// family: the first two share their first 24 bits (IPv4) or 64 bits
	// (IPv6), the third differs from them within that prefix.
	Clients() []netip.Addr
	// Dial connects client number c to vip ("tcp" or "udp"); a UDP
	// connection is a connected datagram socket.
	Dial(ctx context.Context, c int, network string, vip netip.AddrPort) (net.Conn, error)
	// Caps describes what the dataplane and network can show.
	Caps() Caps
}

// Caps are the capabilities of a harness.
type Caps struct {
	// Method is the forwarding method configured on real servers.
	Method dataplane.Method
	// PayloadBytes: byte counters count payload exactly (a proxy). Else
	// they count packets with headers and are checked as lower bounds.
	PayloadBytes bool
	// OneWay: the dataplane sees only client→server packets (DR, TUN),
	// so out counters are not checked.
	OneWay bool
	// NoUDP skips the UDP case.
	NoUDP bool
}

// Run runs every conformance case as a subtest.
func Run(t *testing.T, h Harness) {
	cases := []struct {
		name string
		fn   func(*env)
	}{
		{"rr", testRR},
		{"wrr", testWRR},
		{"wlc", testWLC},
		{"persistence", testPersistence},
		{"persistence-mask", testPersistenceMask},
		{"weight0", testWeight0},
		{"thresholds", testThresholds},
		{"sorry", testSorry},
		{"counters", testCounters},
		{"conns", testConns},
		{"apply-diff", testApplyDiff},
		{"udp", testUDP},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "udp" && h.Caps().NoUDP {
				t.Skip("harness has no UDP")
			}
			e := &env{t: t, h: h, caps: h.Caps()}
			e.dp = h.NewDataplane(t)
			t.Cleanup(func() {
				if err := e.dp.Close(); err != nil {
					t.Errorf("close dataplane: %v", err)
				}
			})
			c.fn(e)
		})
	}
}

// env is the state of one case.
type env struct {
	t    *testing.T
	h    Harness
	caps Caps
	dp   dataplane.Dataplane
}

// backend is a real server run by the suite.
type backend struct {
	id   string
	addr netip.AddrPort
}

// backends starts n TCP real servers for a service on vip.
func (e *env) backends(n int, vip netip.AddrPort) []backend {
	e.t.Helper()
	bs := make([]backend, n)
	for i := range n {
		ln, addr := e.h.ListenTCP(e.t, i, vip)
		id := fmt.Sprintf("rs%d", i)
		bs[i] = backend{id: id, addr: addr}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			serveTCP(ln, id)
		}()
		e.t.Cleanup(func() {
			ln.Close()
			wg.Wait()
		})
	}
	return bs
}

// serveTCP accepts until ln is closed; every connection gets the
// identity line and then an echo of what it sends.
func serveTCP(ln net.Listener, id string) {
	var wg sync.WaitGroup
	defer wg.Wait()
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	defer func() {
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		mu.Lock()
		conns[c] = true
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				c.Close()
			}()
			if _, err := io.WriteString(c, id+"\n"); err != nil {
				return
			}
			io.Copy(c, c)
			if tc, ok := c.(interface{ CloseWrite() error }); ok {
				tc.CloseWrite()
			}
		}()
	}
}

// udpBackends starts n UDP real servers for a service on vip.
func (e *env) udpBackends(n int, vip netip.AddrPort) []backend {
	e.t.Helper()
	bs := make([]backend, n)
	for i := range n {
		pc, addr := e.h.ListenUDP(e.t, i, vip)
		id := fmt.Sprintf("rs%d", i)
		bs[i] = backend{id: id, addr: addr}
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 2048)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					continue
				}
				pc.WriteTo(append([]byte(id+":"), buf[:n]...), from)
			}
		}()
		e.t.Cleanup(func() {
			pc.Close()
			<-done
		})
	}
	return bs
}

// service builds a TCP service on vip over bs with the given weights.
func (e *env) service(vip netip.AddrPort, proto dataplane.Proto, scheduler string, bs []backend, weights ...int) dataplane.Service {
	s := dataplane.Service{
		Key:       dataplane.ServiceKey{Proto: proto, Addr: vip.Addr(), Port: vip.Port()},
		Scheduler: scheduler,
	}
	for i, b := range bs {
		w := 1
		if i < len(weights) {
			w = weights[i]
		}
		s.RealServers = append(s.RealServers, dataplane.RealServer{Addr: b.addr, Weight: w, Method: e.caps.Method})
	}
	return s
}

func (e *env) apply(svcs ...dataplane.Service) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.dp.Apply(ctx, svcs); err != nil {
		e.t.Fatalf("apply: %v", err)
	}
}

func (e *env) stats() dataplane.Snapshot {
	e.t.Helper()
	s, err := e.dp.Stats(context.Background())
	if err != nil {
		e.t.Fatalf("stats: %v", err)
	}
	return s
}

// serviceStats returns the stats of the service with key k.
func (e *env) serviceStats(k dataplane.ServiceKey) dataplane.ServiceStats {
	e.t.Helper()
	for _, s := range e.stats().Services {
		if s.Key == k {
			return s
		}
	}
	e.t.Fatalf("stats: no service %s", k)
	return dataplane.ServiceStats{}
}

func (e *env) conns() []dataplane.Conn {
	e.t.Helper()
	var cs []dataplane.Conn
	if err := e.dp.Conns(context.Background(), func(c dataplane.Conn) bool {
		cs = append(cs, c)
		return true
	}); err != nil {
		e.t.Fatalf("conns: %v", err)
	}
	return cs
}

// conn is a client TCP connection through the dataplane.
type conn struct {
	c  net.Conn
	r  *bufio.Reader
	id string // the real server that answered
}

// open connects client c to vip and reads the identity line. It returns
// nil when no real server answered within timeout.
func (e *env) open(client int, vip netip.AddrPort, timeout time.Duration) *conn {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := e.h.Dial(ctx, client, "tcp", vip)
	if err != nil {
		return nil
	}
	c.SetReadDeadline(time.Now().Add(timeout))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		c.Close()
		return nil
	}
	c.SetReadDeadline(time.Time{})
	cn := &conn{c: c, r: r, id: strings.TrimSuffix(line, "\n")}
	e.t.Cleanup(func() { c.Close() })
	return cn
}

// mustOpen is open that fails the test when nothing answers.
func (e *env) mustOpen(client int, vip netip.AddrPort) *conn {
	e.t.Helper()
	c := e.open(client, vip, 2*time.Second)
	if c == nil {
		e.t.Fatalf("client %d: no real server answered on %s", client, vip)
	}
	return c
}

// hit opens a connection, notes the real server and closes it.
func (e *env) hit(client int, vip netip.AddrPort) string {
	e.t.Helper()
	c := e.mustOpen(client, vip)
	c.c.Close()
	return c.id
}

// echo checks that c still relays both ways.
func (c *conn) echo(msg string) error {
	c.c.SetDeadline(time.Now().Add(2 * time.Second))
	defer c.c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c.c, msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c.r, buf); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if string(buf) != msg {
		return fmt.Errorf("echo %q, want %q", buf, msg)
	}
	return nil
}

// count tallies hits per real server identity.
func count(ids []string) map[string]int {
	m := map[string]int{}
	for _, id := range ids {
		m[id]++
	}
	return m
}

// eventually retries fn until it returns nil or 3 s passed.
func eventually(t *testing.T, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
