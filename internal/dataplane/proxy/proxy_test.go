package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/govs/govs/internal/dataplane"
)

// newProxy returns a proxy closed at the end of the test.
func newProxy(t *testing.T, opts Options) *Proxy {
	t.Helper()
	skipUnlessLoopback8(t)
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// tcpServer runs fn for every connection accepted on a fresh loopback
// real server address until the test ends.
func tcpServer(t *testing.T, rs int, fn func(*net.TCPConn)) netip.AddrPort {
	t.Helper()
	l, addr := loopback{}.ListenTCP(t, rs, netip.AddrPort{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fn(c.(*net.TCPConn))
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	return addr
}

func tcpService(vip netip.AddrPort, rss ...netip.AddrPort) dataplane.Service {
	s := dataplane.Service{Key: dataplane.ServiceKey{Proto: dataplane.TCP, Addr: vip.Addr(), Port: vip.Port()}, Scheduler: "rr"}
	for _, a := range rss {
		s.RealServers = append(s.RealServers, dataplane.RealServer{Addr: a, Weight: 1})
	}
	return s
}

func apply(t *testing.T, p *Proxy, svcs ...dataplane.Service) {
	t.Helper()
	if err := p.Apply(context.Background(), svcs); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

func dial(t *testing.T, vip netip.AddrPort) *net.TCPConn {
	t.Helper()
	c, err := loopback{}.Dial(context.Background(), 0, "tcp", vip)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// identify answers with the server's name and then echoes.
func identify(name string) func(*net.TCPConn) {
	return func(c *net.TCPConn) {
		io.WriteString(c, name+"\n")
		io.Copy(c, c)
	}
}

func readLine(t *testing.T, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return strings.TrimSuffix(line, "\n")
}

// waitClosed reports whether c is closed by the peer within d.
func waitClosed(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

func TestHalfClose(t *testing.T) {
	p := newProxy(t, Options{})
	// The server reads the whole request, then answers and closes: the
	// answer must still reach a client that already half-closed.
	rs := tcpServer(t, 0, func(c *net.TCPConn) {
		b, _ := io.ReadAll(c)
		io.WriteString(c, "got "+string(b))
	})
	vip := loopback{}.VIP(t, dataplane.TCP)
	apply(t, p, tcpService(vip, rs))
	c := dial(t, vip)
	io.WriteString(c, "request")
	c.CloseWrite()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil || string(b) != "got request" {
		t.Fatalf("after half-close: %q, %v; want %q", b, err, "got request")
	}
	// While only one direction was open the entry was FIN_WAIT; now it is gone.
	waitFor(t, func() bool { return countConns(p, vip) == 0 })
}

func countConns(p *Proxy, vip netip.AddrPort) int {
	n := 0
	p.Conns(context.Background(), func(c dataplane.Conn) bool {
		if c.Virtual == vip && !c.Template {
			n++
		}
		return true
	})
	return n
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 3s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFinWaitState(t *testing.T) {
	p := newProxy(t, Options{Timeouts: dataplane.Timeouts{TCPFin: 7 * time.Second}})
	// The server closes its side at once and waits for the client.
	rs := tcpServer(t, 0, func(c *net.TCPConn) {
		c.CloseWrite()
		io.Copy(io.Discard, c)
	})
	vip := loopback{}.VIP(t, dataplane.TCP)
	s := tcpService(vip, rs)
	apply(t, p, s)
	c := dial(t, vip)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatal(err)
	}
	var got []dataplane.Conn
	waitFor(t, func() bool {
		got = got[:0]
		p.Conns(context.Background(), func(c dataplane.Conn) bool {
			got = append(got, c)
			return true
		})
		return len(got) == 1 && got[0].State == "FIN_WAIT"
	})
	if got[0].Expires > 7*time.Second || got[0].Expires < 5*time.Second {
		t.Errorf("FIN_WAIT expires in %v, want the tcpfin timeout (7s)", got[0].Expires)
	}
	st := p.statsOf(t, s.Key).RealServers[0]
	if st.ActiveConns != 0 || st.InactiveConns != 1 {
		t.Errorf("half-closed: active %d inactive %d, want 0 and 1", st.ActiveConns, st.InactiveConns)
	}
}

func (p *Proxy) statsOf(t *testing.T, k dataplane.ServiceKey) dataplane.ServiceStats {
	t.Helper()
	snap, err := p.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range snap.Services {
		if s.Key == k {
			return s
		}
	}
	t.Fatalf("no stats for %s", k)
	return dataplane.ServiceStats{}
}

func TestIdleTimeout(t *testing.T) {
	for _, noSplice := range []bool{false, true} {
		p := newProxy(t, Options{Timeouts: dataplane.Timeouts{TCP: 200 * time.Millisecond}, NoSplice: noSplice})
		rs := tcpServer(t, 0, identify("rs0"))
		vip := loopback{}.VIP(t, dataplane.TCP)
		apply(t, p, tcpService(vip, rs))
		c := dial(t, vip)
		readLine(t, c)
		// Traffic keeps it alive past the timeout…
		for range 4 {
			time.Sleep(100 * time.Millisecond)
			io.WriteString(c, "x")
		}
		if countConns(p, vip) != 1 {
			t.Fatalf("active connection timed out")
		}
		// …silence ends it.
		if !waitClosed(c, 2*time.Second) {
			t.Errorf("idle connection not closed after the 200ms timeout (noSplice=%v)", noSplice)
		}
		waitFor(t, func() bool { return countConns(p, vip) == 0 })
	}
}

func TestProxyProtocol(t *testing.T) {
	for _, v := range []int{1, 2} {
		p := newProxy(t, Options{})
		got := make(chan []byte, 1)
		rs := tcpServer(t, 0, func(c *net.TCPConn) {
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			b, _ := io.ReadAll(c)
			got <- b
		})
		vip := loopback{}.VIP(t, dataplane.TCP)
		s := tcpService(vip, rs)
		s.ProxyProtocol = v
		apply(t, p, s)
		c := dial(t, vip)
		io.WriteString(c, "hello")
		c.CloseWrite()
		b := <-got
		client := addrPortOf(c.LocalAddr())
		want := append(proxyHeader(v, dataplane.TCP, client, vip), "hello"...)
		if !bytes.Equal(b, want) {
			t.Errorf("v%d: real server got %q, want %q", v, b, want)
		}
	}
}

func TestProxyHeader(t *testing.T) {
	v4src := netip.MustParseAddrPort("192.0.2.1:40000")
	v4dst := netip.MustParseAddrPort("198.51.100.2:80")
	v6src := netip.MustParseAddrPort("[2001:db8::1]:40000")
	v6dst := netip.MustParseAddrPort("[2001:db8::2]:443")
	sig := "\r\n\r\n\x00\r\nQUIT\n"
	tests := []struct {
		name     string
		version  int
		proto    dataplane.Proto
		src, dst netip.AddrPort
		want     string
	}{
		{"v1 tcp4", 1, dataplane.TCP, v4src, v4dst, "PROXY TCP4 192.0.2.1 198.51.100.2 40000 80\r\n"},
		{"v1 tcp6", 1, dataplane.TCP, v6src, v6dst, "PROXY TCP6 2001:db8::1 2001:db8::2 40000 443\r\n"},
		{"v1 mapped", 1, dataplane.TCP, netip.MustParseAddrPort("[::ffff:192.0.2.1]:1"), netip.MustParseAddrPort("[::ffff:198.51.100.2]:2"), "PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r\n"},
		{"v2 tcp4", 2, dataplane.TCP, v4src, v4dst, sig + "\x21\x11\x00\x0c" + "\xc0\x00\x02\x01" + "\xc6\x33\x64\x02" + "\x9c\x40" + "\x00\x50"},
		{"v2 udp4", 2, dataplane.UDP, v4src, v4dst, sig + "\x21\x12\x00\x0c" + "\xc0\x00\x02\x01" + "\xc6\x33\x64\x02" + "\x9c\x40" + "\x00\x50"},
		{"v2 tcp6", 2, dataplane.TCP, v6src, v6dst, sig + "\x21\x21\x00\x24" +
			"\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01" +
			"\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02" + "\x9c\x40" + "\x01\xbb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(proxyHeader(tt.version, tt.proto, tt.src, tt.dst))
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestRefusedRealServer(t *testing.T) {
	p := newProxy(t, Options{})
	dead := freePort(t, dataplane.TCP, rsAddr(0)) // nothing listens there
	vip := loopback{}.VIP(t, dataplane.TCP)
	s := tcpService(vip, dead)
	apply(t, p, s)
	// The proxy resets the client; on loopback that can even beat the
	// end of connect.
	if c, err := (loopback{}).Dial(context.Background(), 0, "tcp", vip); err == nil {
		defer c.Close()
		if !waitClosed(c, 2*time.Second) {
			t.Fatal("client not closed after the real server refused")
		}
	}
	waitFor(t, func() bool { return p.DialFailures(s.Key, dead) == 1 })
	if n := p.DialFailures(s.Key, dead); n != 1 {
		t.Errorf("dial failures = %d, want 1", n)
	}
	st := p.statsOf(t, s.Key)
	if st.Conns != 1 || st.RealServers[0].ActiveConns != 0 || st.RealServers[0].InactiveConns != 0 {
		t.Errorf("after a refused connection: %+v, want 1 connection counted and none open", st)
	}
}

func TestApplyPortInUse(t *testing.T) {
	p := newProxy(t, Options{})
	rs0 := tcpServer(t, 0, identify("rs0"))
	rs1 := tcpServer(t, 1, identify("rs1"))
	// Someone else holds this port.
	busy, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr("127.0.20.2"), 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyVIP := addrPortOf(busy.Addr())

	a := tcpService(loopback{}.VIP(t, dataplane.TCP), rs0)
	b := tcpService(busyVIP, rs0)
	err = p.Apply(context.Background(), []dataplane.Service{a, b})
	if err == nil || !strings.Contains(err.Error(), b.Key.String()) {
		t.Fatalf("apply with a busy port: err %v, want one naming %s", err, b.Key)
	}
	// A was applied, B not.
	c := dial(t, netip.AddrPortFrom(a.Key.Addr, a.Key.Port))
	if id := readLine(t, c); id != "rs0" {
		t.Errorf("service A answered by %s", id)
	}
	if snap, _ := p.Stats(context.Background()); len(snap.Services) != 1 {
		t.Errorf("stats list %d services, want only A", len(snap.Services))
	}

	// A change of A that needs the busy port fails as a whole: A keeps
	// its real server and port, and its connection.
	a3 := a
	a3.RealServers = []dataplane.RealServer{{Addr: rs1, Weight: 1}}
	a3.Ports = []dataplane.PortRange{{From: a.Key.Port, To: a.Key.Port}, {From: busyVIP.Port(), To: busyVIP.Port()}}
	a3.VIPs = []netip.Addr{a.Key.Addr, busyVIP.Addr()}
	err = p.Apply(context.Background(), []dataplane.Service{a3})
	if err == nil || !strings.Contains(err.Error(), a.Key.String()) {
		t.Fatalf("apply of a change needing a busy port: err %v", err)
	}
	c2 := dial(t, netip.AddrPortFrom(a.Key.Addr, a.Key.Port))
	if id := readLine(t, c2); id != "rs0" {
		t.Errorf("after the failed change service A answered by %s, want rs0 (old configuration)", id)
	}
	io.WriteString(c, "ping")
	if readN(t, c, 4) != "ping" {
		t.Error("connection broke on a failed Apply")
	}
}

func readN(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

func TestRemovedServiceDrains(t *testing.T) {
	p := newProxy(t, Options{})
	rs := tcpServer(t, 0, identify("rs0"))
	vip := loopback{}.VIP(t, dataplane.TCP)
	apply(t, p, tcpService(vip, rs))
	held := dial(t, vip)
	readLine(t, held)
	apply(t, p)
	if _, err := net.DialTimeout("tcp", vip.String(), time.Second); err == nil {
		t.Error("removed service still accepts connections")
	}
	io.WriteString(held, "ping")
	if readN(t, held, 4) != "ping" {
		t.Error("existing connection of a removed service broke")
	}
	if countConns(p, vip) != 1 {
		t.Error("draining connection missing from Conns")
	}
	p.Close()
	if !waitClosed(held, 2*time.Second) {
		t.Error("Close left a relay open")
	}
}

func TestRemovedRealServerDrains(t *testing.T) {
	p := newProxy(t, Options{})
	rs0 := tcpServer(t, 0, identify("rs0"))
	rs1 := tcpServer(t, 1, identify("rs1"))
	vip := loopback{}.VIP(t, dataplane.TCP)
	s := tcpService(vip, rs0, rs1)
	apply(t, p, s)
	held := dial(t, vip)
	if readLine(t, held) != "rs0" {
		t.Fatal("rr did not start with rs0")
	}
	s.RealServers = s.RealServers[1:]
	apply(t, p, s)
	for range 3 {
		c := dial(t, vip)
		if id := readLine(t, c); id != "rs1" {
			t.Errorf("new connection went to %s after rs0 was removed", id)
		}
		c.Close()
	}
	io.WriteString(held, "ping")
	if readN(t, held, 4) != "ping" {
		t.Error("connection to the removed real server broke")
	}
	// Adding it back restores its counters.
	s.RealServers = append(s.RealServers, dataplane.RealServer{Addr: rs0, Weight: 1})
	apply(t, p, s)
	st := p.statsOf(t, s.Key)
	if st.RealServers[1].Addr != rs0 || st.RealServers[1].Conns != 1 || st.RealServers[1].ActiveConns != 1 {
		t.Errorf("re-added rs0: %+v, want its old counters (1 connection, 1 active)", st.RealServers[1])
	}
}

func TestFirewallMarkMultiPort(t *testing.T) {
	p := newProxy(t, Options{})
	rs0 := tcpServer(t, 0, identify("rs0"))
	rs1 := tcpServer(t, 1, identify("rs1"))
	// Three consecutive free ports are not guaranteed; use a list of
	// single-port ranges instead.
	vip := netip.MustParseAddr("127.0.20.3")
	var ports []dataplane.PortRange
	for range 3 {
		pt := freePort(t, dataplane.TCP, vip).Port()
		ports = append(ports, dataplane.PortRange{From: pt, To: pt})
	}
	s := dataplane.Service{
		Key: dataplane.ServiceKey{FWMark: 5}, VIPs: []netip.Addr{vip}, Ports: ports,
		Protos: []dataplane.Proto{dataplane.TCP}, Scheduler: "rr", Persistence: time.Minute,
		RealServers: []dataplane.RealServer{{Addr: rs0, Weight: 1}, {Addr: rs1, Weight: 1}},
	}
	apply(t, p, s)
	// One template covers every port of the firewall-mark service.
	var first string
	for i, pr := range ports {
		c := dial(t, netip.AddrPortFrom(vip, pr.From))
		id := readLine(t, c)
		if i == 0 {
			first = id
		} else if id != first {
			t.Errorf("port %d went to %s, port %d to %s: persistence must span the ports", pr.From, id, ports[0].From, first)
		}
	}
	var tmpl []dataplane.Conn
	p.Conns(context.Background(), func(c dataplane.Conn) bool {
		if c.Template {
			tmpl = append(tmpl, c)
		}
		return true
	})
	if len(tmpl) != 1 || tmpl[0].FWMark != 5 || tmpl[0].Virtual.Port() != 0 {
		t.Errorf("templates %+v, want one firewall-mark template with port 0", tmpl)
	}
}

func TestListenerCap(t *testing.T) {
	p := newProxy(t, Options{MaxListeners: 100})
	s := dataplane.Service{
		Key: dataplane.ServiceKey{FWMark: 1}, VIPs: []netip.Addr{netip.MustParseAddr("127.0.20.4")},
		Ports: []dataplane.PortRange{{From: 10000, To: 10200}}, Scheduler: "rr",
	}
	err := p.Apply(context.Background(), []dataplane.Service{s})
	if err == nil || !strings.Contains(err.Error(), "limit of 100") {
		t.Fatalf("201 ports × TCP+UDP with a cap of 100: err %v", err)
	}
}

// udpEcho starts a UDP server on loopback that sends every datagram
// back, closed when the test ends, and returns its address.
func udpEcho(t *testing.T) netip.AddrPort {
	pc, addr := loopback{}.ListenUDP(t, 0, netip.AddrPort{})
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
	return addr
}

func TestUDPIdleTimeout(t *testing.T) {
	p := newProxy(t, Options{Timeouts: dataplane.Timeouts{UDP: 200 * time.Millisecond}})
	rs := udpEcho(t)
	vip := loopback{}.VIP(t, dataplane.UDP)
	s := dataplane.Service{Key: dataplane.ServiceKey{Proto: dataplane.UDP, Addr: vip.Addr(), Port: vip.Port()}, Scheduler: "rr",
		RealServers: []dataplane.RealServer{{Addr: rs, Weight: 1}}}
	apply(t, p, s)
	c, err := loopback{}.Dial(context.Background(), 0, "udp", vip)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x"))
	readN(t, c, 1)
	if countConns(p, vip) != 1 {
		t.Fatal("no UDP session")
	}
	waitFor(t, func() bool { return countConns(p, vip) == 0 })
	if st := p.statsOf(t, s.Key).RealServers[0]; st.InactiveConns != 0 {
		t.Errorf("expired session still counted: %+v", st)
	}
}

// TestSetTimeouts: timeouts shortened while relays are idle end them
// without waiting for the timeouts they started with (ipvsadm --set).
func TestSetTimeouts(t *testing.T) {
	for _, noSplice := range []bool{false, true} {
		p := newProxy(t, Options{NoSplice: noSplice}) // 900 s, 300 s
		rs := tcpServer(t, 0, identify("rs0"))
		vip := loopback{}.VIP(t, dataplane.TCP)
		apply(t, p, tcpService(vip, rs))
		c := dial(t, vip)
		readLine(t, c)
		urs := udpEcho(t)
		uvip := loopback{}.VIP(t, dataplane.UDP)
		apply(t, p, tcpService(vip, rs), dataplane.Service{Key: dataplane.ServiceKey{Proto: dataplane.UDP, Addr: uvip.Addr(), Port: uvip.Port()},
			Scheduler: "rr", RealServers: []dataplane.RealServer{{Addr: urs, Weight: 1}}})
		u, err := loopback{}.Dial(context.Background(), 0, "udp", uvip)
		if err != nil {
			t.Fatal(err)
		}
		defer u.Close()
		u.Write([]byte("x"))
		readN(t, u, 1)
		if countConns(p, vip) != 1 || countConns(p, uvip) != 1 {
			t.Fatal("no TCP relay or UDP session")
		}
		if err := p.SetTimeouts(dataplane.Timeouts{TCP: 200 * time.Millisecond, UDP: 200 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		if !waitClosed(c, 3*time.Second) {
			t.Errorf("idle TCP relay not closed after the timeout was shortened to 200ms (noSplice=%v)", noSplice)
		}
		waitFor(t, func() bool { return countConns(p, vip) == 0 && countConns(p, uvip) == 0 })
		if got := p.timeouts(); got != (dataplane.Timeouts{TCP: 200 * time.Millisecond, TCPFin: 120 * time.Second, UDP: 200 * time.Millisecond}) {
			t.Errorf("timeouts in force: %+v (zero fields take the defaults)", got)
		}
	}
}

func TestCloseIdempotent(t *testing.T) {
	p := newProxy(t, Options{})
	rs := tcpServer(t, 0, identify("rs0"))
	vip := loopback{}.VIP(t, dataplane.TCP)
	apply(t, p, tcpService(vip, rs))
	c := dial(t, vip)
	readLine(t, c)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(context.Background(), nil); err == nil {
		t.Error("Apply after Close succeeded")
	}
}

func TestInvalidServices(t *testing.T) {
	p := newProxy(t, Options{})
	vip := netip.MustParseAddr("127.0.20.5")
	tests := []struct {
		name string
		svc  dataplane.Service
		want string
	}{
		{"unknown scheduler", dataplane.Service{Key: dataplane.ServiceKey{Proto: dataplane.TCP, Addr: vip, Port: 1}, Scheduler: "nope"}, "scheduler"},
		{"port 0", dataplane.Service{Key: dataplane.ServiceKey{Proto: dataplane.TCP, Addr: vip}}, "port 0"},
		{"sctp", dataplane.Service{Key: dataplane.ServiceKey{Proto: dataplane.SCTP, Addr: vip, Port: 1}}, "SCTP"},
		{"fwmark without ports", dataplane.Service{Key: dataplane.ServiceKey{FWMark: 3}}, "VIPs and ports"},
		{"proxy protocol 3", dataplane.Service{Key: dataplane.ServiceKey{Proto: dataplane.TCP, Addr: vip, Port: 1}, ProxyProtocol: 3}, "proxy protocol"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.Apply(context.Background(), []dataplane.Service{tt.svc})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want one containing %q", err, tt.want)
			}
		})
	}
}
