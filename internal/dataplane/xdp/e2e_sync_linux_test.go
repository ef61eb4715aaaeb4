package xdp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/connsync"
	"github.com/govs/govs/internal/dataplane"
)

// stream is a long-lived connection through the VIP to a real server's
// /stream handler, which echoes what it is sent.
type stream struct {
	c  net.Conn
	br *bufio.Reader
}

func openStream(t *testing.T, dial func(ctx context.Context, network, addr string) (net.Conn, error), vip string) *stream {
	t.Helper()
	c, err := dial(context.Background(), "tcp", vip+":80")
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST /stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
	return &stream{c: c, br: bufio.NewReader(c)}
}

// echo sends a line and waits for it to come back within wait.
func (s *stream) echo(i int, wait time.Duration) error {
	line := fmt.Sprintf("ping-%03d\n", i)
	s.c.SetDeadline(time.Now().Add(wait))
	if _, err := fmt.Fprintf(s.c, "%x\r\n%s\r\n", len(line), line); err != nil {
		return err
	}
	for {
		l, err := s.br.ReadString('\n')
		if err != nil {
			return err
		}
		if strings.Contains(l, line[:8]) {
			return nil
		}
	}
}

// TestConnSyncFailover: two XDP directors in DR mode, the first sending
// its connections (connsync, the IPVS sync protocol over multicast), the
// second taking them. Long-lived connections opened through the first
// go on through the second once the VIP's traffic moves there and the
// first is killed: the second forwards their packets to the real servers
// they were on. Without the sync the same connections break, the second
// director having no entry for them (a TCP packet without SYN is not
// scheduled).
func TestConnSyncFailover(t *testing.T) {
	for _, synced := range []bool{true, false} {
		t.Run(map[bool]string{true: "synced", false: "not-synced"}[synced], func(t *testing.T) {
			l := newLab(t, 2)
			l.serveHTTP("rs1", "rs1")
			l.serveHTTP("rs2", "rs2")
			l.addNS("dir2")
			l.attachPass("br", l.plug("dir2", labNet+".3"))
			for _, p := range []string{"/sys/fs/bpf/xd-sync-a", "/sys/fs/bpf/xd-sync-b"} {
				_ = RemovePinned(p)
				t.Cleanup(func() { _ = RemovePinned(p) })
			}
			sc := &connsync.Config{Interface: "eth0", SyncID: 7, Interval: 200 * time.Millisecond}
			svcs := labServices(dataplane.DR, 2)
			a, _ := startChildLines(t, childEnv{NS: "dir", PinPath: "/sys/fs/bpf/xd-sync-a", Services: svcs, Sync: sc, Role: connsync.RoleMaster, Exec: true})
			role := connsync.RoleBackup
			if !synced {
				role = 0
			}
			_, bLines := startChildLines(t, childEnv{NS: "dir2", PinPath: "/sys/fs/bpf/xd-sync-b", Services: svcs, Sync: sc, Role: role, Exec: true})

			const n = 8
			dial := l.dialer()
			var ss []*stream
			for i := range n {
				s := openStream(t, dial, labVIPDR)
				if err := s.echo(i, 3*time.Second); err != nil {
					t.Fatalf("connection %d through the first director: %v", i, err)
				}
				ss = append(ss, s)
			}
			if synced {
				waitImported(t, bLines, n)
			} else {
				time.Sleep(time.Second)
			}
			// the takeover: the VIP's traffic goes to the second director,
			// the first is killed
			l.in("cl", "ip", "route", "replace", labVIPDR+"/32", "via", labNet+".3")
			_ = a.Process.Kill()
			_ = a.Wait()
			failed, firstErr := echoAll(ss, synced)
			t.Logf("%d of %d connections broken by the takeover (first error: %v)", failed, n, firstErr)
			if synced && failed != 0 {
				t.Errorf("%d of %d long-lived connections broken by the takeover: %v", failed, n, firstErr)
			}
			if !synced && failed != n {
				t.Errorf("without sync %d of %d connections broke, want all: the test does not show what sync does", failed, n)
			}
			// new connections go through the second director
			if body, err := get(l.httpClient(), "http://"+labVIPDR+"/"); err != nil || (body != "rs1" && body != "rs2") {
				t.Errorf("new request after the takeover: %q, %v", body, err)
			}
		})
	}
}

// newNATSyncLab is the two-arm NAT layout with two directors: a public
// bridge (br1: the client, both directors' eth0) and a private one (br0:
// both directors' eth1, the real servers, HTTP with a /stream echo on
// :8080). The real servers' default route and the client's route to the
// VIP name the first director; a takeover points them at the second, as
// VRRP moving the VIP and the servers' gateway address would.
func newNATSyncLab(t *testing.T) *lab {
	requireRoot(t)
	l := &lab{t: t, prefix: "xds"}
	t.Cleanup(l.close)
	l.addNS("br")
	for _, b := range []string{"br0", "br1"} {
		l.in("br", "ip", "link", "add", b, "type", "bridge")
		l.in("br", "ip", "link", "set", b, "up")
	}
	port := func(ns, ifname, bridge, peer, addr string) {
		l.sh("ip", "link", "add", ifname, "netns", l.name(ns), "type", "veth", "peer", "name", peer, "netns", l.name("br"))
		l.in("br", "ip", "link", "set", peer, "master", bridge, "up")
		l.in(ns, "ip", "addr", "add", addr+"/24", "dev", ifname)
		l.in(ns, "ip", "link", "set", ifname, "up")
	}
	l.addNS("cl")
	port("cl", "eth0", "br1", "xdscl", "10.88.0.10")
	l.in("cl", "ip", "route", "add", "10.88.1.100/32", "via", "10.88.0.2")
	l.in("cl", "ethtool", "-K", "eth0", "tx", "off")
	for i, ns := range []string{"dir", "dir2"} {
		l.addNS(ns)
		port(ns, "eth0", "br1", "xds"+ns+"p", fmt.Sprintf("10.88.0.%d", 2+i))
		port(ns, "eth1", "br0", "xds"+ns+"i", fmt.Sprintf("10.89.0.%d", 1+i))
		l.in(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.all.send_redirects=0")
		// frames the directors transmit must land on NAPI-mode peers
		l.attachPass("br", "xds"+ns+"p")
		l.attachPass("br", "xds"+ns+"i")
	}
	for i := 1; i <= 2; i++ {
		ns := fmt.Sprintf("rs%d", i)
		l.addNS(ns)
		port(ns, "eth0", "br0", "xds"+ns, fmt.Sprintf("10.89.0.%d", 10+i))
		l.in(ns, "ip", "route", "add", "default", "via", "10.89.0.1")
		l.in(ns, "ethtool", "-K", "eth0", "tx", "off")
	}
	return l
}

// TestConnSyncFailoverNAT: NAT (masquerading, two arms) with two
// directors, the first sending its connections, the second taking them
// with their reply entries. After the takeover (the client's route and
// the real servers' gateway move to the second, the first is killed),
// long-lived connections go on: the second rewrites their packets to the
// same real servers and their replies back to the VIP. Without the sync
// they break.
func TestConnSyncFailoverNAT(t *testing.T) {
	for _, synced := range []bool{true, false} {
		t.Run(map[bool]string{true: "synced", false: "not-synced"}[synced], func(t *testing.T) {
			l := newNATSyncLab(t)
			for i := 1; i <= 2; i++ {
				l.serveHTTPOn(fmt.Sprintf("rs%d", i), fmt.Sprintf("rs%d", i), ":8080")
			}
			for _, p := range []string{"/sys/fs/bpf/xds-sync-a", "/sys/fs/bpf/xds-sync-b"} {
				_ = RemovePinned(p)
				t.Cleanup(func() { _ = RemovePinned(p) })
			}
			s := dataplane.Service{Key: dataplane.ServiceKey{Proto: dataplane.TCP, Addr: netip.MustParseAddr("10.88.1.100"), Port: 80}, Scheduler: "rr"}
			for i := 1; i <= 2; i++ {
				s.RealServers = append(s.RealServers, dataplane.RealServer{Addr: netip.MustParseAddrPort(fmt.Sprintf("10.89.0.%d:8080", 10+i)), Weight: 1, Method: dataplane.NAT})
			}
			sc := &connsync.Config{Interface: "eth1", SyncID: 9, Interval: 200 * time.Millisecond}
			ifaces := []string{"eth0", "eth1"}
			a, _ := startChildLines(t, childEnv{NS: "dir", Prefix: "xds", Interfaces: ifaces, PinPath: "/sys/fs/bpf/xds-sync-a",
				Services: []dataplane.Service{s}, Sync: sc, Role: connsync.RoleMaster, Exec: true})
			role := connsync.RoleBackup
			if !synced {
				role = 0
			}
			_, bLines := startChildLines(t, childEnv{NS: "dir2", Prefix: "xds", Interfaces: ifaces, PinPath: "/sys/fs/bpf/xds-sync-b",
				Services: []dataplane.Service{s}, Sync: sc, Role: role, Exec: true})

			const n = 6
			dial := l.dialerFor("cl")
			var ss []*stream
			for i := range n {
				st := openStream(t, dial, "10.88.1.100")
				if err := st.echo(i, 3*time.Second); err != nil {
					t.Fatalf("connection %d through the first director: %v", i, err)
				}
				ss = append(ss, st)
			}
			if synced {
				waitImported(t, bLines, n)
			} else {
				time.Sleep(time.Second)
			}
			l.in("cl", "ip", "route", "replace", "10.88.1.100/32", "via", "10.88.0.3")
			for i := 1; i <= 2; i++ {
				l.in(fmt.Sprintf("rs%d", i), "ip", "route", "replace", "default", "via", "10.89.0.2")
			}
			_ = a.Process.Kill()
			_ = a.Wait()
			failed, firstErr := echoAll(ss, synced)
			t.Logf("%d of %d NAT connections broken by the takeover (first error: %v)", failed, n, firstErr)
			if synced && failed != 0 {
				t.Errorf("%d of %d NAT connections broken by the takeover: %v", failed, n, firstErr)
			}
			if !synced && failed != n {
				t.Errorf("without sync %d of %d NAT connections broke, want all", failed, n)
			}
		})
	}
}

// echoAll echoes once more on each stream after a takeover and returns
// how many failed (the wait is short where they are expected to).
func echoAll(ss []*stream, synced bool) (failed int, firstErr error) {
	wait := 3 * time.Second
	if !synced {
		wait = time.Second
	}
	for i, s := range ss {
		if err := s.echo(100+i, wait); err != nil {
			failed++
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	return failed, firstErr
}

// waitImported waits until a backup child's table holds n established
// connections it took from the other director.
func waitImported(t *testing.T, lines <-chan string, n int) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	var st connsync.Stats
	est := 0
	for est < n {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatal("backup director exited")
			}
			if rest, ok := strings.CutPrefix(line, "sync "); ok {
				if num, js, ok := strings.Cut(rest, " "); ok {
					est, _ = strconv.Atoi(num)
					_ = json.Unmarshal([]byte(js), &st)
				}
			}
		case <-deadline:
			t.Fatalf("backup holds %d established connections (%+v), want %d", est, st, n)
		}
	}
	t.Logf("backup: %d established, %+v", est, st)
}
