package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/api"
)

// TestVRRPFailoverClientLoop runs two govs directors with VRRP and the
// proxy dataplane in network namespaces, two real servers and a client
// that opens a new connection to the VIP every 20 ms, and fails the
// master over twice: a clean stop (SIGTERM: priority 0 adverts) and a
// crash (SIGKILL: the backup waits for the master-down interval).

func sh(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func nsExec(ns string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
}

type vrrpLab struct {
	t      *testing.T
	prefix string
	nss    []string
	dir    string
}

func newVRRPLab(t *testing.T) *vrrpLab {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2")
	}
	l := &vrrpLab{t: t, prefix: fmt.Sprintf("gv%d", os.Getpid()%10000), dir: t.TempDir()}
	t.Cleanup(l.teardown)
	br := l.ns("br")
	sh(t, "ip", "-n", br, "link", "add", "br0", "type", "bridge")
	sh(t, "ip", "-n", br, "link", "set", "br0", "up")
	for i, h := range []struct{ name, addr string }{
		{"cl", "10.77.0.100/24"}, {"d1", "10.77.0.1/24"}, {"d2", "10.77.0.2/24"}, {"r1", "10.77.0.11/24"}, {"r2", "10.77.0.12/24"},
	} {
		ns := l.ns(h.name)
		host := fmt.Sprintf("%sv%d", l.prefix, i)
		sh(t, "ip", "link", "add", host, "netns", br, "type", "veth", "peer", "name", "eth0", "netns", ns)
		sh(t, "ip", "-n", br, "link", "set", host, "master", "br0", "up")
		sh(t, "ip", "-n", ns, "addr", "add", h.addr, "dev", "eth0")
		sh(t, "ip", "-n", ns, "link", "set", "eth0", "up")
		sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	return l
}

func (l *vrrpLab) ns(name string) string {
	full := l.prefix + name
	sh(l.t, "ip", "netns", "add", full)
	l.nss = append(l.nss, full)
	return full
}

func (l *vrrpLab) teardown() {
	for _, ns := range l.nss {
		// Kill what still runs in the namespace, then remove it.
		if out, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil {
			for _, p := range strings.Fields(string(out)) {
				exec.Command("kill", "-9", p).Run()
			}
		}
		exec.Command("ip", "netns", "del", ns).Run()
	}
}

func (l *vrrpLab) start(name string, args ...string) *exec.Cmd {
	l.t.Helper()
	return startNS(l.t, l.prefix+name, name, args...)
}

// startNS starts args in namespace ns, killed at the test's end; its
// output is logged under label when the test failed.
func startNS(t *testing.T, ns, label string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := nsExec(ns, args...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s %v:\n%s", label, args, buf.String())
		}
	})
	return cmd
}

const vrrpDirectorConf = `global_defs {
    router_id %s
    govs_dataplane proxy
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
        10.77.0.50/24 dev eth0
    }
}
virtual_server 10.77.0.50 80 {
    lb_algo rr
    lb_kind NAT
    delay_loop 0.5
    real_server 10.77.0.11 8080 {
        TCP_CHECK {
            connect_timeout 0.5
        }
    }
    real_server 10.77.0.12 8080 {
        TCP_CHECK {
            connect_timeout 0.5
        }
    }
}
`

func (l *vrrpLab) director(name, state string, prio int) (*exec.Cmd, *api.Client) {
	conf := filepath.Join(l.dir, name+".conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(vrrpDirectorConf, name, state, prio)), 0o644); err != nil {
		l.t.Fatal(err)
	}
	sock := filepath.Join(l.dir, name+".sock")
	cmd := l.start(name, govsBin, "run", "-f", conf, "--api-socket", sock, "--lame-duck", "300ms")
	return cmd, api.NewClient(sock)
}

func waitState(t *testing.T, c *api.Client, want string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	last := ""
	for time.Now().Before(deadline) {
		if st, err := c.State(context.Background()); err == nil && len(st.VRRP) == 1 {
			last = st.VRRP[0].State
			if last == want {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("VRRP state %q, want %q", last, want)
}

// clientLoop sends a request on a new connection every 20 ms from the
// client namespace (through a small helper process, so the test process
// stays in its own namespace) and reports the outcome of each.
func (l *vrrpLab) clientLoop(d time.Duration) (ok, failed int, gap time.Duration) {
	n := int(d / (20 * time.Millisecond))
	cmd := nsExec(l.prefix+"cl", govsBin, "demo", "client", "-interval", "20ms", "-timeout", "300ms", "-trace", "http://10.77.0.50/", fmt.Sprint(n))
	out, _ := cmd.Output()
	var last time.Time
	var firstFail time.Time
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || f[0] != "T" && f[0] != "F" {
			continue
		}
		ts, err := time.Parse(time.RFC3339Nano, f[1])
		if err != nil {
			continue
		}
		if f[0] == "T" {
			ok++
			if !firstFail.IsZero() {
				if g := ts.Sub(last); g > gap {
					gap = g
				}
				firstFail = time.Time{}
			}
			last = ts
		} else {
			failed++
			if firstFail.IsZero() {
				firstFail = ts
			}
		}
	}
	return ok, failed, gap
}

func TestVRRPFailoverClientLoop(t *testing.T) {
	l := newVRRPLab(t)
	l.start("r1", govsBin, "demo", "backend", "10.77.0.11:8080", "r1")
	l.start("r2", govsBin, "demo", "backend", "10.77.0.12:8080", "r2")
	d1, c1 := l.director("d1", "MASTER", 150)
	_, c2 := l.director("d2", "BACKUP", 100)
	waitState(t, c1, "MASTER", 10*time.Second)
	waitState(t, c2, "BACKUP", 5*time.Second)

	// Warm up: the service answers through d1.
	if ok, failed, _ := l.clientLoop(400 * time.Millisecond); ok == 0 || failed != 0 {
		t.Fatalf("before failover: %d ok, %d failed", ok, failed)
	}

	var wg sync.WaitGroup
	var ok, failed int
	var gap time.Duration
	wg.Add(1)
	go func() { defer wg.Done(); ok, failed, gap = l.clientLoop(3 * time.Second) }()
	time.Sleep(800 * time.Millisecond)
	d1.Process.Signal(syscall.SIGTERM) // clean stop: priority 0, immediate takeover
	wg.Wait()
	waitState(t, c2, "MASTER", 2*time.Second)
	t.Logf("clean failover (SIGTERM on master): %d requests ok, %d failed, longest gap %v", ok, failed, gap)
	if ok < 50 || failed > 10 {
		t.Errorf("clean failover: %d ok, %d failed", ok, failed)
	}

	// d1 comes back with higher priority and preempts; then it crashes.
	d1, c1 = l.director("d1", "MASTER", 150)
	waitState(t, c1, "MASTER", 10*time.Second)
	waitState(t, c2, "BACKUP", 5*time.Second)
	wg.Add(1)
	go func() { defer wg.Done(); ok, failed, gap = l.clientLoop(3 * time.Second) }()
	time.Sleep(800 * time.Millisecond)
	d1.Process.Signal(syscall.SIGKILL) // crash: no priority-0 advert, VIP stays on d1's (dead) interface config
	wg.Wait()
	waitState(t, c2, "MASTER", 2*time.Second)
	t.Logf("crash failover (SIGKILL on master): %d requests ok, %d failed, longest gap %v", ok, failed, gap)
	if ok < 50 || failed > 40 {
		t.Errorf("crash failover: %d ok, %d failed", ok, failed)
	}
	st, err := c2.State(context.Background())
	if err != nil || len(st.Services) != 1 || st.Services[0].Stats.Conns == 0 {
		b, _ := json.Marshal(st)
		t.Errorf("backup's service after takeover: %s %v", b, err)
	}
}
