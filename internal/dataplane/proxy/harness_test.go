package proxy

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"testing"

	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/dataplane/dataplanetest"
)

// loopback is the conformance harness of the proxy: everything on
// 127.0.0.0/8, which Linux answers on as a whole. Clients are
// 127.0.1.1, 127.0.1.2 and 127.0.2.1; VIPs 127.0.20.1 on free ports;
// real servers 127.0.10.(n+1) on free ports.
type loopback struct {
	opts Options
}

func skipUnlessLoopback8(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("needs all of 127.0.0.0/8 on loopback (Linux)")
	}
}

func (h loopback) NewDataplane(t *testing.T) dataplane.Dataplane {
	skipUnlessLoopback8(t)
	p, err := New(h.opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// freePort returns a port of addr that is free for proto right now.
func freePort(t *testing.T, proto dataplane.Proto, addr netip.Addr) netip.AddrPort {
	t.Helper()
	switch proto {
	case dataplane.UDP:
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 0)))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return addrPortOf(c.LocalAddr())
	default:
		l, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(addr, 0)))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return addrPortOf(l.Addr())
	}
}

func (loopback) VIP(t *testing.T, proto dataplane.Proto) netip.AddrPort {
	return freePort(t, proto, netip.MustParseAddr("127.0.20.1"))
}

func rsAddr(rs int) netip.Addr { return netip.AddrFrom4([4]byte{127, 0, 10, byte(rs + 1)}) }

func (loopback) ListenTCP(t *testing.T, rs int, _ netip.AddrPort) (net.Listener, netip.AddrPort) {
	l, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(rsAddr(rs), 0)))
	if err != nil {
		t.Fatal(err)
	}
	return l, addrPortOf(l.Addr())
}

func (loopback) ListenUDP(t *testing.T, rs int, _ netip.AddrPort) (net.PacketConn, netip.AddrPort) {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(rsAddr(rs), 0)))
	if err != nil {
		t.Fatal(err)
	}
	return c, addrPortOf(c.LocalAddr())
}

var loopbackClients = []netip.Addr{
	netip.MustParseAddr("127.0.1.1"),
	netip.MustParseAddr("127.0.1.2"),
	netip.MustParseAddr("127.0.2.1"),
}

func (loopback) Clients() []netip.Addr { return loopbackClients }

func (loopback) Dial(ctx context.Context, c int, network string, vip netip.AddrPort) (net.Conn, error) {
	var d net.Dialer
	src := loopbackClients[c]
	if network == "udp" {
		d.LocalAddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
	} else {
		d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
	}
	return d.DialContext(ctx, network, vip.String())
}

func (loopback) Caps() dataplanetest.Caps {
	return dataplanetest.Caps{Method: dataplane.SNAT, PayloadBytes: true}
}

func TestConformance(t *testing.T) {
	dataplanetest.Run(t, loopback{})
}

func TestConformanceGoroutines(t *testing.T) {
	dataplanetest.Run(t, loopback{opts: Options{Goroutines: true}})
}

func TestConformanceNoSplice(t *testing.T) {
	dataplanetest.Run(t, loopback{opts: Options{NoSplice: true, AcceptLoops: 2}})
}
