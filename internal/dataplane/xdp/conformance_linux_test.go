package xdp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/dataplane/dataplanetest"
)

// xdpHarness runs the dataplane conformance suite against the XDP
// director in the namespace lab: direct routing, real servers holding the
// VIP on lo, clients with three source addresses.
type xdpHarness struct {
	l      *lab
	method dataplane.Method
	vip    netip.Addr
	ports  atomic.Uint32
	cases  atomic.Uint32
}

var confClients = []netip.Addr{
	netip.MustParseAddr("10.77.0.10"), netip.MustParseAddr("10.77.0.20"), netip.MustParseAddr("10.78.0.10"),
}

func TestConformance(t *testing.T) { runConformance(t, dataplane.DR) }

// TestConformanceSNAT runs the suite with one-arm source NAT: the real
// servers listen on their own address and see the director as client.
func TestConformanceSNAT(t *testing.T) { runConformance(t, dataplane.SNAT) }

func runConformance(t *testing.T, method dataplane.Method) {
	l := newLab(t, 5)
	h := &xdpHarness{l: l, method: method, vip: netip.MustParseAddr("10.77.1.1")}
	if method == dataplane.SNAT {
		l.in("dir", "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.eth0.send_redirects=0")
		l.in("dir", "ip", "route", "add", "10.78.0.0/24", "via", labClient)
	}
	h.ports.Store(1000)
	l.in("cl", "ip", "addr", "add", "10.77.0.20/24", "dev", "eth0")
	l.in("cl", "ip", "addr", "add", "10.78.0.10/32", "dev", "eth0")
	l.in("cl", "ip", "route", "add", "10.77.1.0/24", "via", labDirAddr)
	for i := 1; i <= 5; i++ {
		ns := fmt.Sprintf("rs%d", i)
		l.in(ns, "ip", "addr", "add", h.vip.String()+"/32", "dev", "lo")
		l.in(ns, "ip", "route", "add", "10.78.0.0/24", "via", labClient)
	}
	dataplanetest.Run(t, h)
}

func (h *xdpHarness) NewDataplane(t *testing.T) dataplane.Dataplane {
	pin := fmt.Sprintf("/sys/fs/bpf/xd-conf-%d", h.cases.Add(1))
	_ = RemovePinned(pin)
	var d *Dataplane
	h.l.t = t
	h.l.inNS("dir", func() {
		var err error
		d, err = New(Options{Interfaces: []string{"eth0"}, PinPath: pin, SyncInterval: 100 * time.Millisecond})
		if err != nil {
			t.Fatalf("new director: %v", err)
		}
	})
	return d
}

func (h *xdpHarness) VIP(t *testing.T, proto dataplane.Proto) netip.AddrPort {
	return netip.AddrPortFrom(h.vip, uint16(h.ports.Add(1)))
}

func (h *xdpHarness) rsNS(rs int) string { return fmt.Sprintf("rs%d", rs+1) }

func (h *xdpHarness) ListenTCP(t *testing.T, rs int, vip netip.AddrPort) (net.Listener, netip.AddrPort) {
	var ln net.Listener
	h.l.t = t
	h.l.inNS(h.rsNS(rs), func() {
		var err error
		if ln, err = net.Listen("tcp4", h.listenAddr(rs, vip)); err != nil {
			t.Fatalf("listen: %v", err)
		}
	})
	return ln, netip.AddrPortFrom(netip.MustParseAddr(h.l.rsAddr(rs+1)), vip.Port())
}

func (h *xdpHarness) ListenUDP(t *testing.T, rs int, vip netip.AddrPort) (net.PacketConn, netip.AddrPort) {
	var pc net.PacketConn
	h.l.t = t
	h.l.inNS(h.rsNS(rs), func() {
		var err error
		if pc, err = net.ListenPacket("udp4", h.listenAddr(rs, vip)); err != nil {
			t.Fatalf("listen: %v", err)
		}
	})
	return pc, netip.AddrPortFrom(netip.MustParseAddr(h.l.rsAddr(rs+1)), vip.Port())
}

// listenAddr is where real server rs listens: on the VIP for DR, on its
// own address for SNAT.
func (h *xdpHarness) listenAddr(rs int, vip netip.AddrPort) string {
	if h.method == dataplane.SNAT {
		return netip.AddrPortFrom(netip.MustParseAddr(h.l.rsAddr(rs+1)), vip.Port()).String()
	}
	return vip.String()
}

func (h *xdpHarness) Clients() []netip.Addr { return confClients }

func (h *xdpHarness) Dial(ctx context.Context, c int, network string, vip netip.AddrPort) (net.Conn, error) {
	var conn net.Conn
	var err error
	h.l.inNS("cl", func() {
		d := net.Dialer{}
		if network == "udp" {
			d.LocalAddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(confClients[c], 0))
		} else {
			d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(confClients[c], 0))
		}
		conn, err = d.DialContext(ctx, network, vip.String())
	})
	return conn, err
}

func (h *xdpHarness) Caps() dataplanetest.Caps {
	if h.method == dataplane.SNAT {
		return dataplanetest.Caps{Method: dataplane.SNAT}
	}
	return dataplanetest.Caps{Method: dataplane.DR, OneWay: true}
}
