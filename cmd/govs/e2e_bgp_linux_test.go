package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/dataplane/xdp"
)

const bgpDirectorConf = `global_defs {
    router_id %[1]s
    govs_dataplane xdp
    govs_interface eth0
    %[2]s
}
govs_bgp {
    local_as 65001
    hold_time 9
    keepalive 3
    connect_retry 1
    neighbor 10.77.0.254 {
        remote_as 65000
        %[3]s
    }
}
virtual_server 10.99.0.10 80 {
    lb_algo mh
    mh-port
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

// birdConf makes BIRD the routers' side: eBGP from both directors,
// their routes merged into one multipath route in the kernel (ECMP).
const birdConf = `router id 10.77.0.254;
protocol device { scan time 1; }
protocol kernel {
    ipv4 { import none; export all; };
    merge paths on;
}
template bgp director {
    local 10.77.0.254 as 65000;
    hold time 9;
    connect retry time 1;
    connect delay time 1;
    error wait time 1, 5;
    ipv4 { import all; export none; };
}
protocol bgp d1 from director { neighbor 10.77.0.1 as 65001; }
protocol bgp d2 from director { neighbor 10.77.0.2 as 65001; }
`

// birdBFD adds BFD on the directors' sessions: a director that dies is
// out of the ECMP group in about 3 × 100 ms.
const birdBFD = `protocol bfd {
    interface "eth0" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; };
}
template bgp director2 from director { bfd on; }
`

// frrConf makes FRR the routers' side, as in docs/bgp.md: eBGP from
// both directors, multipath over them (zebra installs it).
const frrConf = `frr defaults traditional
hostname rt
router bgp 65000
 bgp router-id 10.77.0.254
 no bgp ebgp-requires-policy
 neighbor directors peer-group
 neighbor directors remote-as 65001
 neighbor directors timers 3 9
 neighbor directors timers connect 1
 neighbor 10.77.0.1 peer-group directors
 neighbor 10.77.0.2 peer-group directors
 address-family ipv4 unicast
  maximum-paths 8
 exit-address-family
`

const bgpVIP = "10.99.0.10"

// TestBGPActiveActive runs two directors active at once, as DESIGN.md's
// scale-out asks: both `govs run` on the xdp dataplane announce the
// virtual address over BGP to a router (BIRD, and FRR, with ECMP), which spreads
// a client's connections over them; the real servers (DR, set up by
// `govs realserver setup`) answer the client directly through the router.
//
// One director is stopped (SIGTERM): it withdraws its route, the router
// sends everything to the other, and the connections that went through
// the stopped one go on through the other, answered by the same real
// servers (lb_algo mh picks the same one on every director, and sloppy
// TCP lets a director carry on a connection it did not see begin). A
// bounded load of new connections runs through the stop without a
// failure. The stopped director starts again, announces again, and the
// connections moved back to it go on too. With govs_sloppy_tcp off the
// connections moved at the stop break: the test shows what it does. The
// FRR run takes d1 out for maintenance with `govs bgp --withdraw` and
// back with `govs bgp --announce` instead of stopping it.
func TestBGPActiveActive(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	for _, c := range []struct {
		name, router string
		sloppy       bool
		leave        string // how d1 leaves: "stop" (SIGTERM) or "withdraw" (govs bgp)
	}{{"sloppy_tcp", "bird", true, "stop"}, {"without", "bird", false, "stop"}, {"frr_maintenance", "frr", true, "withdraw"}, {"bird_bfd_crash", "bird", true, "crash"}} {
		t.Run(c.name, func(t *testing.T) {
			testBGPActiveActive(t, c.router, c.sloppy, c.leave)
		})
	}
}

// startRouter runs BIRD or FRR (zebra + bgpd) in the router namespace,
// and returns a command that prints its view of the sessions.
func startRouter(t *testing.T, l *vrrpLab, kind string, bfd bool) []string {
	switch kind {
	case "bird":
		text := birdConf
		if bfd {
			// the directors' sessions from a template with BFD on
			text = strings.Replace(birdConf, "protocol bgp d1 from director", birdBFD+"protocol bgp d1 from director2", 1)
			text = strings.Replace(text, "protocol bgp d2 from director", "protocol bgp d2 from director2", 1)
		}
		return startBird(t, l, text)
	default:
		dir := startFRR(t, l, "rt", "bgpd", frrConf, "-S")
		return []string{"vtysh", "--vty_socket", dir, "-c", "show bgp summary", "-c", "show ip bgp " + bgpVIP + "/32"}
	}
}

// startFRR runs FRR's zebra and daemon (bgpd, bfdd) with conf in the
// lab namespace ns; it returns the directory of their vty sockets (for
// vtysh --vty_socket).
func startFRR(t *testing.T, l *vrrpLab, ns, daemon, conf string, args ...string) string {
	t.Helper()
	if _, err := os.Stat("/usr/lib/frr/" + daemon); err != nil {
		t.Skip("needs FRR (zebra, " + daemon + "): scripts/setup.sh installs frr")
	}
	// zebra drops to the frr user: its directory must be reachable by
	// it (the test's own temporary directory is root's only)
	dir, err := os.MkdirTemp("", "govs-frr-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777)
	t.Cleanup(func() { os.RemoveAll(dir) })
	file := filepath.Join(dir, daemon+".conf")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "zebra.conf"), []byte("hostname "+ns+"\n"), 0o644)
	zsock := filepath.Join(dir, "zserv.api")
	common := []string{"-z", zsock, "--vty_socket", dir, "-P", "0", "--log", "stdout"}
	l.start(ns, append([]string{"/usr/lib/frr/zebra", "-f", filepath.Join(dir, "zebra.conf"), "-i", filepath.Join(dir, "zebra.pid"), "-u", "frr", "-g", "frr"}, common...)...)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(zsock); err == nil {
			break
		}
	}
	l.start(ns, append(append([]string{"/usr/lib/frr/" + daemon, "-f", file, "-i", filepath.Join(dir, daemon+".pid")}, args...), common...)...)
	return dir
}

// bgpLab adds to the VRRP lab (bridge 10.77.0.0/24 with d1, d2, r1, r2)
// a router rt on the bridge (10.77.0.254) running BIRD, and behind it a
// client ex (10.88.0.2) that reaches the virtual address only through it.
func bgpLab(t *testing.T) *vrrpLab {
	l := newVRRPLab(t)
	rt, ex := l.ns("rt"), l.ns("ex")
	br := l.prefix + "br"
	host := l.prefix + "v5"
	sh(t, "ip", "link", "add", host, "netns", br, "type", "veth", "peer", "name", "eth0", "netns", rt)
	sh(t, "ip", "-n", br, "link", "set", host, "master", "br0", "up")
	sh(t, "ip", "link", "add", "eth1", "netns", rt, "type", "veth", "peer", "name", "eth0", "netns", ex)
	for _, c := range [][]string{
		{rt, "addr", "add", "10.77.0.254/24", "dev", "eth0"},
		{rt, "addr", "add", "10.88.0.1/24", "dev", "eth1"},
		{ex, "addr", "add", "10.88.0.2/24", "dev", "eth0"},
	} {
		sh(t, append([]string{"ip", "-n", c[0]}, c[1:]...)...)
	}
	for _, ns := range []string{rt, ex} {
		for _, dev := range []string{"lo", "eth0", "eth1"} {
			if ns == ex && dev == "eth1" {
				continue
			}
			sh(t, "ip", "-n", ns, "link", "set", dev, "up")
		}
	}
	sh(t, "ip", "-n", ex, "route", "add", "default", "via", "10.88.0.1")
	for _, kv := range []string{"net.ipv4.ip_forward=1", "net.ipv4.fib_multipath_hash_policy=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"} {
		sh(t, "ip", "netns", "exec", rt, "sysctl", "-qw", kv)
	}
	// checksums filled in by the sender, not left to an offload the
	// veth pair skips (netns-testbed)
	for _, c := range [][2]string{{ex, "eth0"}, {rt, "eth0"}, {rt, "eth1"}, {l.prefix + "r1", "eth0"}, {l.prefix + "r2", "eth0"}} {
		sh(t, "ip", "netns", "exec", c[0], "ethtool", "-K", c[1], "tx", "off")
	}
	return l
}

// startBird runs BIRD with configuration text in the router namespace
// and returns the command that prints its view of the sessions.
func startBird(t *testing.T, l *vrrpLab, text string) []string {
	t.Helper()
	if _, err := exec.LookPath("bird"); err != nil {
		t.Skip("needs BIRD 2 (bird, birdc) as the router: scripts/setup.sh installs bird2")
	}
	conf := filepath.Join(l.dir, "bird.conf")
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	ctl := filepath.Join(l.dir, "bird.ctl")
	l.start("rt", "bird", "-f", "-c", conf, "-s", ctl, "-P", filepath.Join(l.dir, "bird.pid"))
	return []string{"birdc", "-s", ctl, "show", "protocols", "all"}
}

// bgpDirector starts `govs run` in namespace name (its XDP objects
// pinned apart, kept between its runs) and returns it and its client.
func bgpDirector(t *testing.T, l *vrrpLab, name, conf string) (*exec.Cmd, *api.Client) {
	t.Helper()
	path := filepath.Join(l.dir, name+".conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	pin := fmt.Sprintf("/sys/fs/bpf/govs-test-bgp-%d-%s-%s", os.Getpid(), l.prefix, name)
	t.Cleanup(func() { xdp.RemovePinned(pin) })
	sock := filepath.Join(l.dir, name+".sock")
	cmd := l.start(name, govsBin, "run", "-f", path, "--api-socket", sock, "--xdp-pin-path", pin, "--lame-duck", "2s")
	return cmd, api.NewClient(sock)
}

// routerNextHops lists the next hops of the router's route to prefix
// (the VIP's host route), sorted.
func routerNextHops(t *testing.T, l *vrrpLab, prefix string) []string {
	family := "-4"
	if strings.Contains(prefix, ":") {
		family = "-6" // ip route show lists IPv4 routes only otherwise
	}
	out, err := exec.Command("ip", "-n", l.prefix+"rt", family, "route", "show", prefix).CombinedOutput()
	if err != nil {
		t.Fatalf("ip route: %v\n%s", err, out)
	}
	var hops []string
	for _, m := range regexp.MustCompile(`via (\S+)`).FindAllStringSubmatch(string(out), -1) {
		hops = append(hops, m[1])
	}
	slices.Sort(hops)
	return hops
}

// waitNextHops waits (20 s at most) until the router's route to prefix
// goes via want; show prints the router's view of the sessions if not.
func waitNextHops(t *testing.T, l *vrrpLab, show []string, prefix string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var got []string
	for time.Now().Before(deadline) {
		got = routerNextHops(t, l, prefix)
		if strings.Join(got, " ") == strings.Join(want, " ") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	view, _ := exec.Command("ip", append([]string{"netns", "exec", l.prefix + "rt"}, show...)...).CombinedOutput()
	t.Fatalf("the router's route to %s goes via %v, want %v\n%s", prefix, got, want, view)
}

// clientPorts returns the client ports of the established connections
// to virtual (ADDR:PORT as the API writes it) in c's table.
func clientPorts(t *testing.T, c *api.Client, virtual string) map[int]bool {
	t.Helper()
	cs, err := c.Conns(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]bool{}
	for _, e := range cs {
		if e.Virtual != virtual || e.State != "ESTABLISHED" || e.Template {
			continue
		}
		if ap, err := clientPort(e.Client); err == nil {
			out[ap] = true
		}
	}
	return out
}

func clientPort(s string) (int, error) {
	_, p, err := net.SplitHostPort(s)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(p)
}

func testBGPActiveActive(t *testing.T, router string, sloppy bool, leave string) {
	l := bgpLab(t)
	attachPassIn(t, l.prefix+"br", l.prefix+"v1", l.prefix+"v2")
	for i, r := range []string{"r1", "r2"} {
		out, err := exec.Command("nsenter", "--net=/run/netns/"+l.prefix+r, govsBin, "realserver", "setup", "--method", "dr", "--vip", bgpVIP, "--interface", "eth0").CombinedOutput()
		if err != nil {
			t.Fatalf("govs realserver setup in %s: %v\n%s", r, err, out)
		}
		sh(t, "ip", "-n", l.prefix+r, "route", "add", "default", "via", "10.77.0.254")
		l.start(r, govsBin, "demo", "backend", "0.0.0.0:80", fmt.Sprintf("rs%d", i+1))
	}
	show := startRouter(t, l, router, leave == "crash")
	nbExtra := ""
	if leave == "crash" {
		nbExtra = "bfd\n        bfd_interval 100"
	}

	extra := ""
	if !sloppy {
		extra = "govs_sloppy_tcp off"
	}
	d1, c1 := bgpDirector(t, l, "d1", fmt.Sprintf(bgpDirectorConf, "d1", extra, nbExtra))
	_, c2 := bgpDirector(t, l, "d2", fmt.Sprintf(bgpDirectorConf, "d2", extra, nbExtra))
	waitInPool(t, c1)
	waitInPool(t, c2)
	waitNextHops(t, l, show, bgpVIP+"/32", "10.77.0.1", "10.77.0.2")

	status, err := exec.Command(govsBin, "status", "-s", filepath.Join(l.dir, "d1.sock")).CombinedOutput()
	if err != nil || !strings.Contains(string(status), "bgp AS 65001, router id 10.77.0.1, announcing 10.99.0.10/32") ||
		!regexp.MustCompile(`10\.77\.0\.254\s+65000\s+established`).Match(status) {
		t.Errorf("govs status on d1 (router id taken from the address toward the neighbor):\n%s", status)
	}
	t.Logf("govs status on d1:\n%s", status)

	const n = 12
	conns := openKeptAlive(t, l.prefix+"ex", bgpVIP+":80", n)
	seen := map[string]int{}
	for _, k := range conns {
		seen[k.first]++
	}
	onD1 := clientPorts(t, c1, bgpVIP+":80")
	onD2 := clientPorts(t, c2, bgpVIP+":80")
	t.Logf("answers %v; the router sent %d connections to d1 and %d to d2", seen, len(onD1), len(onD2))
	if len(onD1)+len(onD2) != n || len(onD1) == 0 || len(onD2) == 0 {
		t.Fatalf("connections: %d on d1, %d on d2, want %d spread over both (ECMP)", len(onD1), len(onD2), n)
	}
	if seen["rs1"] == 0 || seen["rs2"] == 0 {
		t.Errorf("answers %v: want both real servers", seen)
	}

	// a bounded load of new connections runs through the stop
	load := nsExec(l.prefix+"ex", govsBin, "demo", "client", "-interval", "20ms", "-timeout", "1s", "http://"+bgpVIP+"/", "150")
	loadOut := make(chan string, 1)
	go func() {
		out, _ := load.CombinedOutput()
		loadOut <- string(out)
	}()
	time.Sleep(500 * time.Millisecond)
	sock1 := filepath.Join(l.dir, "d1.sock")
	left := time.Now()
	switch leave {
	case "stop":
		d1.Process.Signal(syscall.SIGTERM)
	case "withdraw":
		out, err := exec.Command(govsBin, "bgp", "--withdraw", "-s", sock1).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "announcing none (withdrawn for maintenance until govs bgp --announce)") {
			t.Errorf("govs bgp --withdraw: %v\n%s", err, out)
		}
	case "crash":
		// d1 dies without a word: its link goes down, its BGP session
		// is left to time out (hold time 9 s); BFD tells the router
		sh(t, "ip", "-n", l.prefix+"d1", "link", "set", "eth0", "down")
	}
	waitNextHops(t, l, show, bgpVIP+"/32", "10.77.0.2")
	if gone := time.Since(left); leave == "crash" {
		t.Logf("the router took d1 out %v after its link went down", gone.Round(10*time.Millisecond))
		if gone > 5*time.Second {
			t.Errorf("d1 was taken out after %v: that is the BGP hold time (9 s), not BFD (3 × 100 ms)", gone)
		}
	}
	failed, firstErr := askAgain(conns)
	t.Logf("after d1 withdrew: %d of %d kept-alive connections broken (first error: %v)", failed, n, firstErr)
	if sloppy {
		if failed != 0 {
			t.Errorf("%d of %d connections broken when d1 left: %v", failed, n, firstErr)
		}
		moved := clientPorts(t, c2, bgpVIP+":80")
		for p := range onD1 {
			if !moved[p] {
				t.Errorf("connection from port %d (was on d1) is not in d2's table: it did not move", p)
			}
		}
	} else if failed != len(onD1) {
		t.Errorf("without sloppy TCP %d connections broke, want the %d that were on d1: the test does not show what sloppy TCP does", failed, len(onD1))
	}
	lo := <-loadOut
	if leave == "crash" {
		// new connections hashed to d1 until BFD takes it out wait
		// for their SYN to be sent again
		t.Logf("new connections through the crash: %s", strings.TrimSpace(lo))
	} else if !strings.Contains(lo, " failed=0") {
		t.Errorf("new connections during the stop failed:\n%s", lo)
	}
	if !sloppy {
		return
	}

	// d1 comes back (started again, or announcing again): the router
	// spreads flows over both again, and the connections it gets back
	// go on
	if leave == "stop" {
		d1.Wait()
		_, c1 = bgpDirector(t, l, "d1", fmt.Sprintf(bgpDirectorConf, "d1", extra, nbExtra))
		waitInPool(t, c1)
	} else if leave == "crash" {
		sh(t, "ip", "-n", l.prefix+"d1", "link", "set", "eth0", "up")
	} else if out, err := exec.Command(govsBin, "bgp", "--announce", "-s", sock1).CombinedOutput(); err != nil || !strings.Contains(string(out), "announcing 10.99.0.10/32") {
		t.Errorf("govs bgp --announce: %v\n%s", err, out)
	}
	waitNextHops(t, l, show, bgpVIP+"/32", "10.77.0.1", "10.77.0.2")
	if leave == "crash" {
		st, err := c1.State(t.Context())
		if err != nil || st.BGP == nil || len(st.BGP.Neighbors) != 1 || st.BGP.Neighbors[0].BFD != "up" || st.BGP.Neighbors[0].LastDown == "" {
			t.Errorf("d1's BGP state after its link came back: %v %+v", err, st.BGP)
		} else {
			t.Logf("d1's session last went down: %s", st.BGP.Neighbors[0].LastDown)
		}
	}
	if failed, firstErr := askAgain(conns); failed != 0 {
		t.Errorf("%d of %d connections broken when d1 came back: %v", failed, n, firstErr)
	}
	back := clientPorts(t, c1, bgpVIP+":80")
	t.Logf("after d1 came back: %d connections on it", len(back))
}
