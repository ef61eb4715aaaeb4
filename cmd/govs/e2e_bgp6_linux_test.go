package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/dataplane/xdp"
)

const bgp6DirectorConf = `global_defs {
    router_id %[1]s
    govs_dataplane xdp
    govs_interface eth0
}
govs_bgp {
    local_as 65001
    router_id %[2]s
    hold_time 9
    keepalive 3
    connect_retry 1
    neighbor 2001:db8:77::fe {
        remote_as 65000
    }
}
virtual_server 2001:db8:99::10 80 {
    lb_algo mh
    mh-port
    lb_kind DR
    delay_loop 1
    real_server 2001:db8:77::11 80 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 2001:db8:77::12 80 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
`

const bird6Conf = `router id 10.77.0.254;
protocol device { scan time 1; }
protocol kernel {
    ipv6 { import none; export all; };
    merge paths on;
}
template bgp director {
    local 2001:db8:77::fe as 65000;
    hold time 9;
    connect retry time 1;
    connect delay time 1;
    error wait time 1, 5;
    ipv6 { import all; export none; };
}
protocol bgp d1 from director { neighbor 2001:db8:77::1 as 65001; }
protocol bgp d2 from director { neighbor 2001:db8:77::2 as 65001; }
`

const bgp6VIP = "2001:db8:99::10"

// TestBGPActiveActiveIPv6 is TestBGPActiveActive's first run over IPv6:
// the directors announce an IPv6 virtual address on IPv6 sessions
// (MP_REACH_NLRI, next hop self) to BIRD, which spreads a client's
// connections over both; one director stops, and every connection goes
// on through the other, answered by the same real server.
func TestBGPActiveActiveIPv6(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	if _, err := exec.LookPath("bird"); err != nil {
		t.Skip("needs BIRD 2 (bird, birdc) as the router: scripts/setup.sh installs bird2")
	}
	l := bgpLab(t)
	attachPassIn(t, l.prefix+"br", l.prefix+"v1", l.prefix+"v2")
	for _, h := range []struct{ ns, dev, addr string }{
		{"d1", "eth0", "2001:db8:77::1"}, {"d2", "eth0", "2001:db8:77::2"}, {"r1", "eth0", "2001:db8:77::11"}, {"r2", "eth0", "2001:db8:77::12"},
		{"rt", "eth0", "2001:db8:77::fe"}, {"rt", "eth1", "2001:db8:88::1"}, {"ex", "eth0", "2001:db8:88::2"},
	} {
		sh(t, "ip", "-n", l.prefix+h.ns, "-6", "addr", "add", h.addr+"/64", "dev", h.dev, "nodad")
	}
	sh(t, "ip", "-n", l.prefix+"ex", "-6", "route", "add", "default", "via", "2001:db8:88::1")
	for _, kv := range []string{"net.ipv6.conf.all.forwarding=1", "net.ipv6.fib_multipath_hash_policy=1"} {
		sh(t, "ip", "netns", "exec", l.prefix+"rt", "sysctl", "-qw", kv)
	}
	for i, r := range []string{"r1", "r2"} {
		out, err := exec.Command("nsenter", "--net=/run/netns/"+l.prefix+r, govsBin, "realserver", "setup", "--method", "dr", "--vip", bgp6VIP, "--interface", "eth0").CombinedOutput()
		if err != nil {
			t.Fatalf("govs realserver setup in %s: %v\n%s", r, err, out)
		}
		sh(t, "ip", "-n", l.prefix+r, "-6", "route", "add", "default", "via", "2001:db8:77::fe")
		l.start(r, govsBin, "demo", "backend", "[::]:80", fmt.Sprintf("rs%d", i+1))
	}
	conf := filepath.Join(l.dir, "bird6.conf")
	if err := os.WriteFile(conf, []byte(bird6Conf), 0o644); err != nil {
		t.Fatal(err)
	}
	ctl := filepath.Join(l.dir, "bird6.ctl")
	l.start("rt", "bird", "-f", "-c", conf, "-s", ctl, "-P", filepath.Join(l.dir, "bird6.pid"))
	show := []string{"birdc", "-s", ctl, "show", "protocols", "all"}

	start := func(name, id string) (*exec.Cmd, *api.Client) {
		path := filepath.Join(l.dir, name+".conf")
		if err := os.WriteFile(path, []byte(fmt.Sprintf(bgp6DirectorConf, name, id)), 0o644); err != nil {
			t.Fatal(err)
		}
		pin := fmt.Sprintf("/sys/fs/bpf/govs-test-bgp6-%d-%s-%s", os.Getpid(), l.prefix, name)
		t.Cleanup(func() { xdp.RemovePinned(pin) })
		sock := filepath.Join(l.dir, name+".sock")
		return l.start(name, govsBin, "run", "-f", path, "--api-socket", sock, "--xdp-pin-path", pin, "--lame-duck", "2s"), api.NewClient(sock)
	}
	d1, c1 := start("d1", "10.77.0.1")
	_, c2 := start("d2", "10.77.0.2")
	waitInPool(t, c1)
	waitInPool(t, c2)
	hops := func() []string {
		out, _ := exec.Command("ip", "-n", l.prefix+"rt", "-6", "route", "show", bgp6VIP+"/128").CombinedOutput()
		var got []string
		for _, f := range strings.Fields(string(out)) {
			if f == "2001:db8:77::1" || f == "2001:db8:77::2" {
				got = append(got, f)
			}
		}
		return got
	}
	waitHops := func(n int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if len(hops()) == n {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		view, _ := exec.Command("ip", append([]string{"netns", "exec", l.prefix + "rt"}, show...)...).CombinedOutput()
		rt, _ := exec.Command("ip", "-n", l.prefix+"rt", "-6", "route").CombinedOutput()
		t.Fatalf("the router's route to %s has next hops %v, want %d\n%s\n%s", bgp6VIP, hops(), n, rt, view)
	}
	waitHops(2)

	const n = 12
	conns := openKeptAlive(t, l.prefix+"ex", "["+bgp6VIP+"]:80", n)
	on1, on2 := len(clientPorts6(t, c1)), len(clientPorts6(t, c2))
	t.Logf("the router sent %d connections to d1 and %d to d2", on1, on2)
	if on1+on2 != n || on1 == 0 || on2 == 0 {
		t.Fatalf("connections: %d on d1, %d on d2, want %d spread over both (ECMP)", on1, on2, n)
	}
	d1.Process.Signal(syscall.SIGTERM)
	waitHops(1)
	if failed, firstErr := askAgain(conns); failed != 0 {
		t.Errorf("%d of %d IPv6 connections broken when d1 left: %v", failed, n, firstErr)
	}
}

// clientPorts6 counts the established connections to the IPv6 VIP in
// c's table, by client port.
func clientPorts6(t *testing.T, c *api.Client) map[string]bool {
	t.Helper()
	cs, err := c.Conns(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range cs {
		if e.Virtual == "["+bgp6VIP+"]:80" && e.State == "ESTABLISHED" && !e.Template {
			out[e.Client] = true
		}
	}
	return out
}
