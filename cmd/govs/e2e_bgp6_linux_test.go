package main

import (
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
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

// bird6Conf is birdConf over IPv6: the sessions and the kernel's
// multipath route in the ipv6 channel.
var bird6Conf = strings.NewReplacer("ipv4", "ipv6", "local 10.77.0.254 as", "local 2001:db8:77::fe as",
	"neighbor 10.77.0.1 as", "neighbor 2001:db8:77::1 as", "neighbor 10.77.0.2 as", "neighbor 2001:db8:77::2 as").Replace(birdConf)

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
	show := startBird(t, l, bird6Conf)

	d1, c1 := bgpDirector(t, l, "d1", fmt.Sprintf(bgp6DirectorConf, "d1", "10.77.0.1"))
	_, c2 := bgpDirector(t, l, "d2", fmt.Sprintf(bgp6DirectorConf, "d2", "10.77.0.2"))
	waitInPool(t, c1)
	waitInPool(t, c2)
	waitNextHops(t, l, show, bgp6VIP+"/128", "2001:db8:77::1", "2001:db8:77::2")

	const n = 12
	conns := openKeptAlive(t, l.prefix+"ex", "["+bgp6VIP+"]:80", n)
	on1, on2 := len(clientPorts(t, c1, "["+bgp6VIP+"]:80")), len(clientPorts(t, c2, "["+bgp6VIP+"]:80"))
	t.Logf("the router sent %d connections to d1 and %d to d2", on1, on2)
	if on1+on2 != n || on1 == 0 || on2 == 0 {
		t.Fatalf("connections: %d on d1, %d on d2, want %d spread over both (ECMP)", on1, on2, n)
	}
	d1.Process.Signal(syscall.SIGTERM)
	waitNextHops(t, l, show, bgp6VIP+"/128", "2001:db8:77::2")
	if failed, firstErr := askAgain(conns); failed != 0 {
		t.Errorf("%d of %d IPv6 connections broken when d1 left: %v", failed, n, firstErr)
	}
}
