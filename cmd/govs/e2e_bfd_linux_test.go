package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/bfd"
)

const bfdGovsConf = `global_defs {
    router_id d1
    govs_dataplane proxy
}
bfd_instance ROUTER {
    neighbor_ip 10.77.0.11
    source_ip 10.77.0.1
    min_rx 30
    min_tx 30
    multiplier 3
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 42
    priority 100
    version 3
    advert_int 0.1
    track_bfd {
        ROUTER
    }
    virtual_ipaddress {
        10.77.0.50/24 dev eth0
    }
}
virtual_server 10.77.0.50 80 {
    lb_algo rr
    lb_kind NAT
    real_server 10.77.0.11 8080 {
        BFD_CHECK {
            name ROUTER
        }
    }
}
`

// bfdSession is the director's only BFD session as its API shows it
// (zero when there is not exactly one).
func bfdSession(c *api.Client) bfd.Status {
	st, err := c.State(context.Background())
	if err != nil || len(st.BFD) != 1 {
		return bfd.Status{}
	}
	return st.BFD[0]
}

// waitUntil polls ok every 10 ms for up to within and returns how long
// it took; otherwise it fails the test with what and show().
func waitUntil(t *testing.T, what string, within time.Duration, ok func() bool, show func() string) time.Duration {
	t.Helper()
	begin := time.Now()
	for time.Since(begin) < within {
		if ok() {
			return time.Since(begin)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v (%s)", what, within, show())
	return 0
}

const bfdKeepalivedConf = `bfd_instance GOVS {
    neighbor_ip 10.77.0.1
    source_ip 10.77.0.11
    min_rx 30
    min_tx 30
    multiplier 3
}
`

// TestBFDKeepalivedInterop runs a govs director whose VRRP instance
// tracks a BFD session (track_bfd) to keepalived's BFD (bfd_instance, in
// another namespace), and whose real server is checked by it
// (BFD_CHECK): the session comes up, the instance becomes MASTER and the
// server healthy; keepalived killed (SIGKILL: no AdminDown) takes the session
// down by its detection time and the instance to FAULT within a second;
// keepalived back brings both back; keepalived stopped (SIGTERM) takes
// the session down too; a reload changing min_rx keeps the session up
// and a reload removing it (and its track_bfd and BFD_CHECK) moves no
// VRRP state, and sends AdminDown, which keepalived logs as the neighbor
// signaling the session down.
func TestBFDKeepalivedInterop(t *testing.T) {
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Skip("needs keepalived (its BFD is the peer)")
	}
	l := newVRRPLab(t)
	kconf := filepath.Join(l.dir, "keepalived.conf")
	if err := os.WriteFile(kconf, []byte(bfdKeepalivedConf), 0o644); err != nil {
		t.Fatal(err)
	}
	var klog *os.File
	startKeepalived := func() *exec.Cmd {
		t.Helper()
		// pid files a killed keepalived left
		for _, f := range []string{"k.pid", "kv.pid", "kc.pid", "kb.pid"} {
			os.Remove(filepath.Join(l.dir, f))
		}
		var err error
		klog, err = os.CreateTemp(l.dir, "keepalived-*.log")
		if err != nil {
			t.Fatal(err)
		}
		cmd := nsExec(l.prefix+"r1", "keepalived", "-n", "-l", "-D", "-f", kconf,
			"-p", filepath.Join(l.dir, "k.pid"), "-r", filepath.Join(l.dir, "kv.pid"), "-c", filepath.Join(l.dir, "kc.pid"), "-b", filepath.Join(l.dir, "kb.pid"))
		cmd.Stdout, cmd.Stderr = klog, klog
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			// SIGTERM first: keepalived writes its log out when it exits
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(2 * time.Second):
				cmd.Process.Kill()
				<-done
			}
			if t.Failed() {
				b, _ := os.ReadFile(klog.Name())
				t.Logf("keepalived:\n%s", b)
			}
		})
		return cmd
	}
	crashKeepalived := func() {
		t.Helper()
		// every process: keepalived's BFD runs in a child of its own
		out, _ := exec.Command("ip", "netns", "pids", l.prefix+"r1").Output()
		for _, p := range strings.Fields(string(out)) {
			exec.Command("kill", "-9", p).Run()
		}
	}
	k := startKeepalived()

	conf := filepath.Join(l.dir, "d1.conf")
	if err := os.WriteFile(conf, []byte(bfdGovsConf), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(l.dir, "d1.sock")
	d1 := l.start("d1", govsBin, "run", "-f", conf, "--api-socket", sock, "--lame-duck", "100ms")
	c := api.NewClient(sock)
	session := func() bfd.Status { return bfdSession(c) }
	waitFor := func(what string, within time.Duration, ok func() bool) time.Duration {
		t.Helper()
		return waitUntil(t, what, within, ok, func() string { return fmt.Sprintf("session %+v", session()) })
	}
	// BFD_CHECK: the real server's health follows the session
	healthy := func() bool {
		st, err := c.State(context.Background())
		return err == nil && len(st.Services) == 1 && len(st.Services[0].RealServers) == 1 && st.Services[0].RealServers[0].Healthy
	}
	waitFor("session up", 10*time.Second, func() bool { return session().State == "Up" })
	waitState(t, c, "MASTER", 5*time.Second)
	waitFor("real server healthy by BFD_CHECK", 2*time.Second, healthy)
	s := session()
	if s.RemoteState != "Up" || s.TxInterval != 30*time.Millisecond || s.DetectTime != 90*time.Millisecond {
		t.Errorf("session when up: %+v", s)
	}
	out, _ := exec.Command(govsBin, "status", "-s", sock).CombinedOutput()
	if !strings.Contains(string(out), "ROUTER") || !strings.Contains(string(out), "10.77.0.11") {
		t.Errorf("govs status shows no BFD session:\n%s", out)
	}

	// keepalived dies: no AdminDown, the detection time (90 ms) tells
	crashKeepalived()
	k.Wait()
	took := waitFor("FAULT after keepalived died", 3*time.Second, func() bool {
		st, err := c.State(context.Background())
		return err == nil && len(st.VRRP) == 1 && st.VRRP[0].State == "FAULT"
	})
	t.Logf("keepalived killed: VRRP in FAULT after %v", took)
	if took > time.Second {
		t.Errorf("FAULT after %v, want within the detection time and a poll", took)
	}
	if s := session(); s.State != "Down" || s.Diag != "control detection time expired" {
		t.Errorf("session after the peer died: %+v", s)
	}
	waitFor("real server down by BFD_CHECK", time.Second, func() bool { return !healthy() })

	// back
	k = startKeepalived()
	waitFor("session up again", 10*time.Second, func() bool { return session().State == "Up" })
	waitState(t, c, "MASTER", 5*time.Second)
	waitFor("real server healthy again", 2*time.Second, healthy)

	// keepalived stopped cleanly (2.2.7 sends no AdminDown then: the
	// detection time tells)
	k.Process.Signal(syscall.SIGTERM)
	waitFor("session down on keepalived's stop", 5*time.Second, func() bool { return session().State == "Down" })
	t.Logf("keepalived stopped: session down, %s", session().Diag)
	waitState(t, c, "FAULT", 2*time.Second)

	k.Wait()
	k = startKeepalived()
	waitFor("session up a third time", 10*time.Second, func() bool { return session().State == "Up" })
	waitState(t, c, "MASTER", 5*time.Second)
	// transitions counts those made since a time (the list is capped)
	transitions := func(since time.Time) int {
		st, err := c.State(context.Background())
		if err != nil || len(st.VRRP) != 1 {
			return -1
		}
		n := 0
		for _, tr := range st.VRRP[0].Transitions {
			if tr.Time.After(since) {
				n++
				t.Logf("transition %s → %s at %s: %s", tr.From, tr.To, tr.Time.Format("15:04:05.000"), tr.Reason)
			}
		}
		return n
	}
	reloads, ups := time.Now(), session().Ups

	// a reload changing min_rx: the session stays up (a Poll Sequence),
	// nothing moves
	if err := os.WriteFile(conf, []byte(strings.Replace(bfdGovsConf, "min_rx 30", "min_rx 60", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	d1.Process.Signal(syscall.SIGHUP)
	waitFor("detection time from the new min_rx", 5*time.Second, func() bool { return session().DetectTime == 180*time.Millisecond })
	if s := session(); s.State != "Up" || s.Ups != ups || transitions(reloads) != 0 {
		t.Errorf("reload of min_rx: session %+v, %d VRRP transitions", s, transitions(reloads))
	}

	// a reload removing the session and what tracks it: no failover
	noBFD := strings.Replace(bfdGovsConf, "    track_bfd {\n        ROUTER\n    }\n", "", 1)
	noBFD = strings.Replace(noBFD, "        BFD_CHECK {\n            name ROUTER\n        }\n", "        TCP_CHECK {\n            connect_timeout 1\n        }\n", 1)
	noBFD = noBFD[:strings.Index(noBFD, "bfd_instance")] + noBFD[strings.Index(noBFD, "vrrp_instance"):]
	if err := os.WriteFile(conf, []byte(noBFD), 0o644); err != nil {
		t.Fatal(err)
	}
	d1.Process.Signal(syscall.SIGHUP)
	waitFor("session removed by the reload", 5*time.Second, func() bool {
		st, err := c.State(context.Background())
		return err == nil && len(st.BFD) == 0
	})
	time.Sleep(500 * time.Millisecond)
	if n := transitions(reloads); n != 0 {
		t.Errorf("reload removing the session: %d VRRP transitions", n)
	}

	// govs stopped cleanly
	d1.Process.Signal(syscall.SIGTERM)
	d1.Wait()
	time.Sleep(300 * time.Millisecond)
	// keepalived's log reaches its file when it exits
	k.Process.Signal(syscall.SIGTERM)
	k.Wait()
	b, _ := os.ReadFile(klog.Name())
	// the session removed by the reload: AdminDown from govs
	if !strings.Contains(string(b), "(GOVS) Entering Up state") ||
		!strings.Contains(string(b), "(GOVS) Entering Down state (Local diagnostic - Neighbor Signaled Session Down, Remote diagnostic - Administratively Down)") {
		t.Errorf("keepalived did not take the session down on govs's AdminDown:\n%s", b)
	}
}

const bfdFRRConf = `bfd
 peer 10.77.0.1 local-address 10.77.0.11
  receive-interval 30
  transmit-interval 30
  detect-multiplier 3
 !
!
`

// TestBFDFRRInterop runs the same govs director against FRR's bfdd, the
// BFD of routers: the session comes up on both sides (FRR's own view
// says so); govs stopped sends AdminDown, which FRR shows as the
// remote's diagnostic; govs started again comes up again, and bfdd
// killed puts the tracking instance in FAULT within a second.
func TestBFDFRRInterop(t *testing.T) {
	l := newVRRPLab(t)
	dir := startFRR(t, l, "r1", "bfdd", bfdFRRConf)
	peers := func() string {
		out, _ := nsExec(l.prefix+"r1", "vtysh", "--vty_socket", dir, "-c", "show bfd peers").CombinedOutput()
		return string(out)
	}
	conf := filepath.Join(l.dir, "d1.conf")
	if err := os.WriteFile(conf, []byte(bfdGovsConf), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(l.dir, "d1.sock")
	start := func() (*exec.Cmd, *api.Client) {
		d := l.start("d1", govsBin, "run", "-f", conf, "--api-socket", sock, "--lame-duck", "100ms")
		return d, api.NewClient(sock)
	}
	d1, c := start()
	session := func() bfd.Status { return bfdSession(c) }
	waitFor := func(what string, within time.Duration, ok func() bool) time.Duration {
		t.Helper()
		return waitUntil(t, what, within, ok, func() string { return fmt.Sprintf("govs: %+v\nFRR:\n%s", session(), peers()) })
	}
	waitFor("session up", 10*time.Second, func() bool { return session().State == "Up" })
	waitState(t, c, "MASTER", 5*time.Second)
	waitFor("FRR sees it up", 5*time.Second, func() bool { return strings.Contains(peers(), "Status: up") })
	if s := session(); s.TxInterval != 30*time.Millisecond || s.DetectTime != 90*time.Millisecond {
		t.Errorf("session %+v", s)
	}

	d1.Process.Signal(syscall.SIGTERM)
	d1.Wait()
	waitFor("FRR sees the AdminDown", 3*time.Second, func() bool {
		p := peers()
		return strings.Contains(p, "Status: down") && strings.Contains(p, "Remote diagnostics: administratively down")
	})

	_, c = start()
	waitFor("session up again", 10*time.Second, func() bool { return session().State == "Up" })
	waitState(t, c, "MASTER", 5*time.Second)
	out, _ := exec.Command("ip", "netns", "pids", l.prefix+"r1").Output()
	for _, p := range strings.Fields(string(out)) {
		if comm, _ := os.ReadFile("/proc/" + p + "/comm"); strings.TrimSpace(string(comm)) == "bfdd" {
			exec.Command("kill", "-9", p).Run()
		}
	}
	took := waitFor("FAULT after bfdd died", 3*time.Second, func() bool {
		st, err := c.State(context.Background())
		return err == nil && len(st.VRRP) == 1 && st.VRRP[0].State == "FAULT"
	})
	t.Logf("bfdd killed: VRRP in FAULT after %v", took)
}

// TestBFDKeepalivedInteropIPv6: an IPv6 session between govs and
// keepalived's BFD, both with their default hop limit (keepalived's 64):
// it comes up, and keepalived killed takes it down by its detection
// time.
func TestBFDKeepalivedInteropIPv6(t *testing.T) {
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Skip("needs keepalived (its BFD is the peer)")
	}
	l := newVRRPLab(t)
	for ns, a := range map[string]string{"d1": "2001:db8:77::1/64", "r1": "2001:db8:77::11/64"} {
		sh(t, "ip", "-n", l.prefix+ns, "addr", "add", a, "dev", "eth0", "nodad")
	}
	kconf := filepath.Join(l.dir, "keepalived.conf")
	if err := os.WriteFile(kconf, []byte("bfd_instance GOVS6 {\n    neighbor_ip 2001:db8:77::1\n    source_ip 2001:db8:77::11\n    min_rx 30\n    min_tx 30\n    multiplier 3\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l.start("r1", "keepalived", "-n", "-l", "-D", "-f", kconf,
		"-p", filepath.Join(l.dir, "k.pid"), "-r", filepath.Join(l.dir, "kv.pid"), "-c", filepath.Join(l.dir, "kc.pid"), "-b", filepath.Join(l.dir, "kb.pid"))
	conf := filepath.Join(l.dir, "d1.conf")
	if err := os.WriteFile(conf, []byte("global_defs {\n    govs_dataplane proxy\n}\nbfd_instance R6 {\n    neighbor_ip 2001:db8:77::11\n    source_ip 2001:db8:77::1\n    min_rx 30\n    min_tx 30\n    multiplier 3\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(l.dir, "d1.sock")
	l.start("d1", govsBin, "run", "-f", conf, "--api-socket", sock)
	c := api.NewClient(sock)
	state := func() string {
		st, err := c.State(context.Background())
		if err != nil || len(st.BFD) != 1 {
			return ""
		}
		return st.BFD[0].State
	}
	deadline := time.Now().Add(10 * time.Second)
	for state() != "Up" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if s := state(); s != "Up" {
		st, _ := c.State(context.Background())
		t.Fatalf("IPv6 session %q: %+v", s, st.BFD)
	}
	out, _ := exec.Command("ip", "netns", "pids", l.prefix+"r1").Output()
	for _, p := range strings.Fields(string(out)) {
		exec.Command("kill", "-9", p).Run()
	}
	begin := time.Now()
	for state() != "Down" && time.Since(begin) < 3*time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	if s := state(); s != "Down" {
		t.Fatalf("IPv6 session %q after keepalived died", s)
	}
	t.Logf("keepalived killed: IPv6 session down after %v", time.Since(begin).Round(time.Millisecond))
}

// TestBFDSoak (GOVS_BFD_SOAK=SECONDS, root): govs and keepalived's BFD at
// keepalived's default intervals (10 ms × 5: a 50 ms detection time)
// for that long; it reports how often each side took the session down
// (a false failure would fail a VRRP instance over). Not in CI: it is a
// measurement (docs/BENCHMARKS.md).
func TestBFDSoak(t *testing.T) {
	secs, _ := strconv.Atoi(os.Getenv("GOVS_BFD_SOAK"))
	if secs <= 0 {
		t.Skip("set GOVS_BFD_SOAK=SECONDS to run the BFD soak")
	}
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Skip("needs keepalived")
	}
	l := newVRRPLab(t)
	kconf := filepath.Join(l.dir, "keepalived.conf")
	os.WriteFile(kconf, []byte("bfd_instance GOVS {\n    neighbor_ip 10.77.0.1\n    source_ip 10.77.0.11\n}\n"), 0o644)
	klog, _ := os.Create(filepath.Join(l.dir, "keepalived.log"))
	k := nsExec(l.prefix+"r1", "keepalived", "-n", "-l", "-D", "-f", kconf,
		"-p", filepath.Join(l.dir, "k.pid"), "-r", filepath.Join(l.dir, "kv.pid"), "-c", filepath.Join(l.dir, "kc.pid"), "-b", filepath.Join(l.dir, "kb.pid"))
	k.Stdout, k.Stderr = klog, klog
	if err := k.Start(); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(l.dir, "d1.conf")
	os.WriteFile(conf, []byte("global_defs {\n    govs_dataplane proxy\n}\nbfd_instance R {\n    neighbor_ip 10.77.0.11\n    source_ip 10.77.0.1\n}\n"), 0o644)
	sock := filepath.Join(l.dir, "d1.sock")
	d := l.start("d1", govsBin, "run", "-f", conf, "--api-socket", sock)
	c := api.NewClient(sock)
	waitUntil(t, "session up", 10*time.Second, func() bool { return bfdSession(c).State == "Up" }, func() string { return fmt.Sprint(bfdSession(c)) })
	// a process's CPU time (user + system clock ticks of /proc/PID/stat)
	cpuOf := func(pid int) float64 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0
		}
		f := strings.Fields(string(b)[strings.LastIndexByte(string(b), ')')+2:])
		u, _ := strconv.ParseFloat(f[11], 64)
		s, _ := strconv.ParseFloat(f[12], 64)
		return (u + s) / 100 // USER_HZ
	}
	// keepalived's BFD process, the peer measured in the same run
	kb, _ := os.ReadFile(filepath.Join(l.dir, "kb.pid"))
	kpid, _ := strconv.Atoi(strings.TrimSpace(string(kb)))
	ups0, cpu0, kcpu0 := bfdSession(c).Ups, cpuOf(d.Process.Pid), cpuOf(kpid)
	time.Sleep(time.Duration(secs) * time.Second)
	s := bfdSession(c)
	used, kused := cpuOf(d.Process.Pid)-cpu0, cpuOf(kpid)-kcpu0
	k.Process.Signal(syscall.SIGTERM)
	k.Wait()
	b, _ := os.ReadFile(klog.Name())
	kdown := strings.Count(string(b), "(GOVS) Entering Down state")
	t.Logf("%d s at 10 ms × 5: govs took the session down %d times (state now %s, last %s); keepalived %d times; CPU: govs (the whole process) %.2f s (%.1f %% of a core), keepalived's BFD process %.2f s (%.1f %%)",
		secs, s.Ups-ups0, s.State, s.Diag, kdown, used, 100*used/float64(secs), kused, 100*kused/float64(secs))
}
