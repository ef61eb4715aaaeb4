package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/dataplane/xdp"
)

// dialFrom opens a TCP connection from network namespace ns.
func dialFrom(t *testing.T, ns, addr string) net.Conn {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		t.Fatal(err)
	}
	defer netns.Set(orig)
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// keptAlive is an HTTP/1.1 connection kept open across requests: a
// request that fails is not retried on another connection.
type keptAlive struct {
	c     net.Conn
	br    *bufio.Reader
	first string // the real server's first answer
}

func (k *keptAlive) get(wait time.Duration) (string, error) {
	k.c.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(k.c, "GET / HTTP/1.1\r\nHost: vip\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(k.br, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("status %s", resp.Status)
	}
	return strings.TrimSpace(string(b)), err
}

// syncDirector starts `govs run` in namespace name of l with conf (its
// XDP objects pinned apart) and returns it and its API client.
func syncDirector(t *testing.T, l *vrrpLab, name, conf string) (*exec.Cmd, *api.Client) {
	t.Helper()
	path := filepath.Join(l.dir, name+".conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	pin := fmt.Sprintf("/sys/fs/bpf/govs-test-sync-%d-%s-%s", os.Getpid(), l.prefix, name)
	t.Cleanup(func() { xdp.RemovePinned(pin) })
	sock := filepath.Join(l.dir, name+".sock")
	cmd := l.start(name, govsBin, "run", "-f", path, "--api-socket", sock, "--xdp-pin-path", pin, "--lame-duck", "0s")
	return cmd, api.NewClient(sock)
}

// waitInPool waits until c's one service has its two real servers in
// the pool (their health checks passed).
func waitInPool(t *testing.T, c *api.Client) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := c.State(t.Context())
		if err == nil && len(st.Services) == 1 && len(st.Services[0].RealServers) == 2 &&
			st.Services[0].RealServers[0].InPool && st.Services[0].RealServers[1].InPool {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the service did not come up: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// openKeptAlive opens n keep-alive connections to vip from namespace ns,
// each answered once (its first answer kept).
func openKeptAlive(t *testing.T, ns, vip string, n int) []*keptAlive {
	t.Helper()
	var conns []*keptAlive
	for i := range n {
		c := dialFrom(t, ns, vip)
		k := &keptAlive{c: c, br: bufio.NewReader(c)}
		body, err := k.get(2 * time.Second)
		if err != nil {
			t.Fatalf("connection %d through the MASTER: %v", i, err)
		}
		k.first = body
		conns = append(conns, k)
	}
	return conns
}

// waitEstablished waits until c's table holds n established connections
// to vip (the BACKUP took them).
func waitEstablished(t *testing.T, c *api.Client, vip string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		est := 0
		cs, _ := c.Conns(t.Context())
		for _, e := range cs {
			if e.Virtual == vip && e.State == "ESTABLISHED" {
				est++
			}
		}
		if est == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the BACKUP holds %d of the %d connections", est, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// askAgain sends one more request on each connection and returns how
// many failed or were answered by another real server than before.
func askAgain(conns []*keptAlive) (failed int, firstErr error) {
	for _, k := range conns {
		body, err := k.get(2 * time.Second)
		if err == nil && body != k.first {
			err = fmt.Errorf("answered by %q, was %q", body, k.first)
		}
		if err != nil {
			failed++
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	return failed, firstErr
}

const syncDirectorConf = `global_defs {
    router_id %s
    govs_dataplane xdp
    govs_interface eth0
    %s
}
vrrp_instance VI_1 {
    state %s
    interface eth0
    virtual_router_id 42
    priority %d
    version 3
    advert_int 0.1
    garp_master_delay 0
    virtual_ipaddress {
        10.77.0.60/24 dev eth0
    }
}
virtual_server 10.77.0.60 80 {
    lb_algo rr
    lb_kind DR
    delay_loop 1
    real_server 10.77.0.11 80 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 10.77.0.12 80 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
`

// TestXDPSyncFailover runs a keepalived-style DR pair as a user would:
// two `govs run` directors on the xdp dataplane with a VRRP instance and
// lvs_sync_daemon, two real servers prepared with `govs realserver
// setup --method dr`, and a client holding HTTP keep-alive connections
// to the VIP. The MASTER is stopped; the BACKUP takes the VIP over and
// the same connections go on, their requests reaching the real servers
// they were on. Without lvs_sync_daemon the same takeover breaks them
// all (the new MASTER's kernel, holding the VIP, resets them).
func TestXDPSyncFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	for _, synced := range []bool{true, false} {
		t.Run(map[bool]string{true: "lvs_sync_daemon", false: "without"}[synced], func(t *testing.T) {
			testXDPSyncFailover(t, synced)
		})
	}
}

func testXDPSyncFailover(t *testing.T, synced bool) {
	l := newVRRPLab(t) // bridge + cl/d1/d2/r1/r2 on 10.77.0.0/24
	attachPassIn(t, l.prefix+"br", l.prefix+"v1", l.prefix+"v2")
	for _, ns := range []string{"cl", "r1", "r2"} {
		sh(t, "ip", "netns", "exec", l.prefix+ns, "ethtool", "-K", "eth0", "tx", "off")
	}
	for i, r := range []string{"r1", "r2"} {
		out, err := exec.Command("nsenter", "--net=/run/netns/"+l.prefix+r, govsBin, "realserver", "setup", "--method", "dr", "--vip", "10.77.0.60", "--interface", "eth0").CombinedOutput()
		if err != nil {
			t.Fatalf("govs realserver setup in %s: %v\n%s", r, err, out)
		}
		l.start(r, govsBin, "demo", "backend", "0.0.0.0:80", fmt.Sprintf("rs%d", i+1))
	}
	syncLine := ""
	if synced {
		syncLine = "lvs_sync_daemon eth0 VI_1"
	}
	d1, c1 := syncDirector(t, l, "d1", fmt.Sprintf(syncDirectorConf, "d1", syncLine, "MASTER", 150))
	_, c2 := syncDirector(t, l, "d2", fmt.Sprintf(syncDirectorConf, "d2", syncLine, "BACKUP", 100))
	waitState(t, c1, "MASTER", 10*time.Second)
	waitState(t, c2, "BACKUP", 5*time.Second)
	// the health checks pass before the connections are opened
	waitInPool(t, c1)
	if synced {
		for _, c := range []struct {
			sock string
			want string
		}{{filepath.Join(l.dir, "d1.sock"), "master sync daemon (mcast=eth0, syncid=42, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)"},
			{filepath.Join(l.dir, "d2.sock"), "backup sync daemon (mcast=eth0, syncid=42, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)"}} {
			out, err := exec.Command(govsBin, "list", "--daemon", "-s", c.sock).CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != c.want {
				t.Errorf("govs list --daemon: %v\n%s\nwant %s", err, out, c.want)
			}
		}
	}

	const n = 6
	conns := openKeptAlive(t, l.prefix+"cl", "10.77.0.60:80", n)
	seen := map[string]int{}
	for _, k := range conns {
		seen[k.first]++
	}
	if seen["rs1"] != n/2 || seen["rs2"] != n/2 {
		t.Fatalf("answers %v, want %d from each real server (rr)", seen, n/2)
	}
	inPkts := func(c *api.Client) uint64 {
		st, err := c.State(t.Context())
		if err != nil || len(st.Services) == 0 {
			return 0
		}
		return st.Services[0].Stats.InPkts
	}
	if synced {
		waitEstablished(t, c2, "10.77.0.60:80", n)
		if st, err := c2.State(t.Context()); err != nil || st.Sync == nil {
			t.Errorf("the BACKUP's state has no sync daemon: %v", err)
		} else {
			s1, _ := c1.State(t.Context())
			t.Logf("BACKUP: %d connections received, %d taken; MASTER: %+v", st.Sync.ConnsReceived, st.Sync.ConnsImported, s1.Sync)
		}
		status, err := exec.Command(govsBin, "status", "-s", filepath.Join(l.dir, "d2.sock")).CombinedOutput()
		if err != nil || !strings.Contains(string(status), "connection sync backup on eth0 (syncid 42, 224.0.0.81:8848)") {
			t.Errorf("govs status on the BACKUP: %v\n%s", err, status)
		}
	} else {
		time.Sleep(1500 * time.Millisecond)
	}
	before := inPkts(c2)

	d1.Process.Signal(syscall.SIGTERM) // priority 0: the BACKUP takes over at once
	waitState(t, c2, "MASTER", 3*time.Second)
	time.Sleep(300 * time.Millisecond) // the new MASTER's gratuitous ARP
	failed, firstErr := askAgain(conns)
	after := inPkts(c2)
	t.Logf("after the takeover: %d of %d kept-alive connections broken (first error: %v); the new MASTER forwarded %d packets", failed, n, firstErr, after-before)
	if synced {
		if failed != 0 {
			t.Errorf("%d of %d connections broken by the takeover: %v", failed, n, firstErr)
		}
		if after-before < n {
			t.Errorf("the new MASTER forwarded %d packets, want the connections' (≥ %d): the requests did not go through it", after-before, n)
		}
	} else if failed != n {
		t.Errorf("without lvs_sync_daemon %d of %d connections broke, want all: the test does not show what the sync does", failed, n)
	}
	// new connections go through the new MASTER
	c := dialFrom(t, l.prefix+"cl", "10.77.0.60:80")
	if _, err := (&keptAlive{c: c, br: bufio.NewReader(c)}).get(2 * time.Second); err != nil {
		t.Errorf("new connection after the takeover: %v", err)
	}
}

const syncNATConf = `global_defs {
    router_id %[1]s
    govs_dataplane xdp
    govs_interface eth0 eth1
    %[4]s
}
vrrp_sync_group VG {
    group {
        VI_PUB
        VI_PRIV
    }
}
vrrp_instance VI_PUB {
    state %[2]s
    interface eth0
    virtual_router_id 51
    priority %[3]d
    version 3
    advert_int 0.1
    garp_master_delay 0
    virtual_ipaddress {
        10.77.0.60/24 dev eth0
    }
}
vrrp_instance VI_PRIV {
    state %[2]s
    interface eth1
    virtual_router_id 52
    priority %[3]d
    version 3
    advert_int 0.1
    garp_master_delay 0
    virtual_ipaddress {
        10.78.0.1/24 dev eth1
    }
}
virtual_server 10.77.0.60 80 {
    lb_algo rr
    lb_kind NAT
    delay_loop 1
    real_server 10.78.0.11 8080 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 10.78.0.12 8080 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
`

// TestXDPSyncFailoverNAT is the seed's NAT layout (RHEL LVS, two arms)
// run as keepalived users run it: two `govs run` directors on the xdp
// dataplane, a vrrp_sync_group moving the public VIP and the real
// servers' gateway address together, lvs_sync_daemon on the private
// side. HTTP keep-alive connections held through the MASTER go on
// through the BACKUP after the MASTER stops, answered by the same real
// servers, their packets and replies counted by the new MASTER (the
// stopped one keeps its program attached, so this shows the traffic
// went the new way). Without lvs_sync_daemon the same takeover breaks
// them all.
func TestXDPSyncFailoverNAT(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	for _, synced := range []bool{true, false} {
		t.Run(map[bool]string{true: "lvs_sync_daemon", false: "without"}[synced], func(t *testing.T) {
			testXDPSyncFailoverNAT(t, synced)
		})
	}
}

func testXDPSyncFailoverNAT(t *testing.T, synced bool) {
	l := &vrrpLab{t: t, prefix: fmt.Sprintf("gn%d", os.Getpid()%10000), dir: t.TempDir()}
	t.Cleanup(l.teardown)
	br := l.ns("br")
	for _, b := range []string{"pub", "priv"} {
		sh(t, "ip", "-n", br, "link", "add", b, "type", "bridge")
		sh(t, "ip", "-n", br, "link", "set", b, "up")
	}
	port := 0
	plug := func(host, ifname, bridge, addr string) string {
		port++
		peer := fmt.Sprintf("%sp%d", l.prefix, port)
		sh(t, "ip", "link", "add", peer, "netns", br, "type", "veth", "peer", "name", ifname, "netns", l.prefix+host)
		sh(t, "ip", "-n", br, "link", "set", peer, "master", bridge, "up")
		sh(t, "ip", "-n", l.prefix+host, "addr", "add", addr, "dev", ifname)
		sh(t, "ip", "-n", l.prefix+host, "link", "set", ifname, "up")
		return peer
	}
	for _, h := range []string{"cl", "d1", "d2", "r1", "r2"} {
		l.ns(h)
		sh(t, "ip", "-n", l.prefix+h, "link", "set", "lo", "up")
	}
	plug("cl", "eth0", "pub", "10.77.0.100/24")
	var dirPeers []string
	for i, d := range []string{"d1", "d2"} {
		dirPeers = append(dirPeers, plug(d, "eth0", "pub", fmt.Sprintf("10.77.0.%d/24", 2+i)), plug(d, "eth1", "priv", fmt.Sprintf("10.78.0.%d/24", 2+i)))
		// accept_local off (the default): a reply the program leaves
		// to the kernel (no neighbour entry for the client yet, as on a
		// new MASTER that never talked to it) has the VIP as source and
		// is dropped as a martian. The BACKUP resolves the next hops of
		// the connections it takes so that none is left (2 of 6
		// connections stalled here before it did).
		sh(t, "ip", "netns", "exec", l.prefix+d, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.all.send_redirects=0",
			"net.ipv4.conf.eth1.accept_local=0")
	}
	for i, r := range []string{"r1", "r2"} {
		plug(r, "eth0", "priv", fmt.Sprintf("10.78.0.%d/24", 11+i))
		sh(t, "ip", "-n", l.prefix+r, "route", "add", "default", "via", "10.78.0.1")
		l.start(r, govsBin, "demo", "backend", fmt.Sprintf("10.78.0.%d:8080", 11+i), r)
	}
	for _, ns := range []string{"cl", "r1", "r2"} {
		sh(t, "ip", "netns", "exec", l.prefix+ns, "ethtool", "-K", "eth0", "tx", "off")
	}
	// the directors' XDP_TX and redirected frames land on NAPI-mode peers
	attachPassIn(t, br, dirPeers...)

	syncLine := ""
	if synced {
		syncLine = "lvs_sync_daemon eth1 VI_PUB"
	}
	d1, c1 := syncDirector(t, l, "d1", fmt.Sprintf(syncNATConf, "d1", "MASTER", 150, syncLine))
	_, c2 := syncDirector(t, l, "d2", fmt.Sprintf(syncNATConf, "d2", "BACKUP", 100, syncLine))
	waitStates := func(c *api.Client, want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			st, err := c.State(t.Context())
			if err == nil && len(st.VRRP) == 2 && st.VRRP[0].State == want && st.VRRP[1].State == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("VRRP states %+v, want both %s (%v)", st, want, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitStates(c1, "MASTER")
	waitStates(c2, "BACKUP")
	waitInPool(t, c1)

	const n = 6
	conns := openKeptAlive(t, l.prefix+"cl", "10.77.0.60:80", n)
	if synced {
		waitEstablished(t, c2, "10.77.0.60:80", n)
	} else {
		time.Sleep(time.Second)
	}
	counters := func() (in, out uint64) {
		st, err := c2.State(t.Context())
		if err != nil || len(st.Services) == 0 {
			return 0, 0
		}
		return st.Services[0].Stats.InPkts, st.Services[0].Stats.OutPkts
	}
	in0, out0 := counters()
	d1.Process.Signal(syscall.SIGTERM)
	waitStates(c2, "MASTER")
	time.Sleep(300 * time.Millisecond) // the gratuitous ARPs
	failed, firstErr := askAgain(conns)
	in1, out1 := counters()
	t.Logf("NAT takeover: %d of %d kept-alive connections broken (first error: %v); the new MASTER forwarded %d packets and translated %d replies",
		failed, n, firstErr, in1-in0, out1-out0)
	if synced {
		if failed != 0 {
			t.Errorf("%d of %d NAT connections broken by the takeover: %v", failed, n, firstErr)
		}
		if in1-in0 < n || out1-out0 < n {
			t.Errorf("the new MASTER forwarded %d packets and %d replies, want at least %d each: the connections did not go through it", in1-in0, out1-out0, n)
		}
	} else if failed != n {
		t.Errorf("without lvs_sync_daemon %d of %d connections broke, want all: the test does not show what the sync does", failed, n)
	}
}
