package xdp

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govs/govs/internal/dataplane"
)

// TestEndToEndSNATPool: one-arm source NAT with a per-service pool. The
// pool's two addresses are extra addresses of the director's interface
// (the kernel answers ARP for them; the program translates the replies
// to them); the real servers see a pool address and a port of the
// pool's range, Conns lists that binding, and an address of the pool
// that the director does not hold is warned about.
func TestEndToEndSNATPool(t *testing.T) {
	l := newLab(t, 2)
	l.serveHTTP("rs1", "rs1")
	l.serveHTTP("rs2", "rs2")
	poolA, poolB := labNet+".3", labNet+".4"
	l.in("dir", "ip", "addr", "add", poolA+"/24", "dev", "eth0")
	l.in("dir", "ip", "addr", "add", poolB+"/24", "dev", "eth0")
	l.in("dir", "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.eth0.send_redirects=0")
	var logbuf syncBuffer
	d := l.newDirector(Options{Interfaces: []string{"eth0"}, PinPath: "/sys/fs/bpf/xd-e2e-snatpool", SyncInterval: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logbuf, nil))})
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	pool := &dataplane.SourcePool{Name: "lab", Addresses: ips(poolA, poolB), PortMin: 30000, PortMax: 30999}
	svcs := labServices(dataplane.SNAT, 2)
	svcs[0].SourcePool = pool
	if err := d.Apply(context.Background(), svcs); err != nil {
		t.Fatalf("apply: %v", err)
	}
	c := l.httpClient()
	seen := map[string]int{}
	sources := map[netip.Addr]int{}
	for i := range 20 {
		body, err := get(c, "http://"+labVIPDR+"/from")
		if err != nil {
			ex, _ := d.Exits()
			t.Fatalf("request %d: %v\nexits %v", i, err, nonZero(ex))
		}
		var who, from string
		fmt.Sscan(body, &who, &from)
		seen[who]++
		ap, err := netip.ParseAddrPort(from)
		if err != nil || !inPool(ap, pool) {
			t.Errorf("real server saw %q, want an address and port of pool %v %d-%d", from, pool.Addresses, pool.PortMin, pool.PortMax)
			continue
		}
		sources[ap.Addr()]++
	}
	if seen["rs1"] != 10 || seen["rs2"] != 10 {
		t.Errorf("answers %v, want 10 each", seen)
	}
	t.Logf("sources seen by the real servers: %v", sources)
	if cn := heldConn(t, l, d); !inPool(cn.Local, pool) {
		t.Errorf("conn %+v: want Local in the pool", cn)
	}
	if strings.Contains(logbuf.String(), "not assigned") {
		t.Errorf("warned about pool addresses the director holds:\n%s", logbuf.String())
	}
	// a pool address the director does not hold is warned about
	svcs[0].SourcePool = &dataplane.SourcePool{Name: "foreign", Addresses: ips(poolA, "10.77.9.9")}
	if err := d.Apply(context.Background(), svcs); err != nil {
		t.Fatalf("apply: %v", err)
	}
	if out := logbuf.String(); !strings.Contains(out, "not assigned to any interface") || !strings.Contains(out, "first=10.77.9.9") {
		t.Errorf("no warning about 10.77.9.9:\n%s", out)
	}
}

// syncBuffer is a bytes.Buffer safe for the sync loop's logging and the
// test's reading.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
