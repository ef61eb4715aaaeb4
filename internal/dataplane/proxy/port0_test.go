package proxy

import (
	"context"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/govs/govs/internal/dataplane"
)

// A multi-port service (FTP control + passive range, the firewall-mark
// case) whose real server has port 0 connects to the port the client
// used, as IPVS does.
func TestMultiPortRealServerPortZero(t *testing.T) {
	vip := netip.MustParseAddr("127.0.0.71")
	rsAddr := netip.MustParseAddr("127.0.0.72")
	var ports []uint16
	for _, p := range []uint16{0, 0} {
		_ = p
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, uint16(l.Addr().(*net.TCPAddr).Port))
		l.Close()
	}
	for _, port := range ports {
		l, err := net.Listen("tcp", netip.AddrPortFrom(rsAddr, port).String())
		if err != nil {
			t.Skipf("cannot listen on %s:%d: %v", rsAddr, port, err)
		}
		defer l.Close()
		go func(l net.Listener, port uint16) {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Write([]byte{byte(port), byte(port >> 8)})
				c.Close()
			}
		}(l, port)
	}
	p, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	svc := dataplane.Service{
		Key:         dataplane.ServiceKey{Proto: dataplane.TCP, Addr: vip, Port: ports[0]},
		VIPs:        []netip.Addr{vip},
		Protos:      []dataplane.Proto{dataplane.TCP},
		Ports:       []dataplane.PortRange{{From: ports[0], To: ports[0]}, {From: ports[1], To: ports[1]}},
		Scheduler:   "rr",
		Persistence: time.Minute,
		PersistMask: 32,
		RealServers: []dataplane.RealServer{{Addr: netip.AddrPortFrom(rsAddr, 0), Weight: 1}},
	}
	if err := p.Apply(context.Background(), []dataplane.Service{svc}); err != nil {
		t.Fatal(err)
	}
	for _, port := range ports {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(vip, port).String(), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(2 * time.Second))
		b, err := io.ReadAll(c)
		c.Close()
		if err != nil || len(b) != 2 || uint16(b[0])|uint16(b[1])<<8 != port {
			t.Errorf("via VIP port %d reached %v (%v)", port, b, err)
		}
	}
	// A single-port service still needs a real server port.
	bad := dataplane.Service{Key: dataplane.ServiceKey{Proto: dataplane.TCP, Addr: vip, Port: 1}, Scheduler: "rr",
		RealServers: []dataplane.RealServer{{Addr: netip.AddrPortFrom(rsAddr, 0), Weight: 1}}}
	if err := p.Apply(context.Background(), []dataplane.Service{svc, bad}); err == nil {
		t.Errorf("single-port service with real server port 0 accepted")
	}
}
