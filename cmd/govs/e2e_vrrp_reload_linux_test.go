package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govs/govs/internal/api"
)

// TestVRRPReload: a reload that changes a MASTER's VRRP settings keeps its
// state. d1 (priority 150) is MASTER, d2 BACKUP, a client opens a
// connection to the VIP every 20 ms. d1's file gains a second virtual
// address: after `reload` d1 holds it at once, with no transition and no
// failed request. Then d1's priority falls to 50 in a reload: d2 preempts
// and takes both addresses.
func TestVRRPReload(t *testing.T) {
	l := newVRRPLab(t)
	l.start("r1", govsBin, "demo", "backend", "10.77.0.11:8080", "r1")
	l.start("r2", govsBin, "demo", "backend", "10.77.0.12:8080", "r2")
	_, c1 := l.director("d1", "MASTER", 150)
	_, c2 := l.director("d2", "BACKUP", 100)
	waitState(t, c1, "MASTER", 10*time.Second)
	waitState(t, c2, "BACKUP", 5*time.Second)
	vrrpOf := func(c *api.Client) api.VRRP {
		t.Helper()
		st, err := c.State(context.Background())
		if err != nil || len(st.VRRP) != 1 {
			t.Fatalf("state: %v %+v", err, st)
		}
		return st.VRRP[0]
	}
	addrs := func(name string) string {
		out, err := nsExec(l.prefix+name, "ip", "-o", "addr", "show", "dev", "eth0").Output()
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	rewrite := func(name string, prio int, extra string) {
		conf := fmt.Sprintf(vrrpDirectorConf, name, "MASTER", prio)
		conf = strings.Replace(conf, "        10.77.0.50/24 dev eth0\n", "        10.77.0.50/24 dev eth0\n"+extra, 1)
		if err := os.WriteFile(filepath.Join(l.dir, name+".conf"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	before := vrrpOf(c1)

	var wg sync.WaitGroup
	var ok, failed int
	var gap time.Duration
	wg.Add(1)
	go func() { defer wg.Done(); ok, failed, gap = l.clientLoop(2 * time.Second) }()
	time.Sleep(500 * time.Millisecond)
	rewrite("d1", 150, "        10.77.0.51/24 dev eth0\n")
	reloadAt := time.Now()
	if err := c1.Reload(context.Background()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	took := time.Since(reloadAt)
	if a := addrs("d1"); !strings.Contains(a, "10.77.0.51/24") || !strings.Contains(a, "10.77.0.50/24") {
		t.Fatalf("d1 right after the reload (%v):\n%s", took, a)
	}
	wg.Wait()
	after := vrrpOf(c1)
	t.Logf("reload adding a VIP to the MASTER: answered in %v; client %d ok, %d failed, longest gap %v; d1 %s, transitions %d before and after",
		took.Round(time.Millisecond), ok, failed, gap, after.State, len(before.Transitions))
	if after.State != "MASTER" || len(after.Transitions) != len(before.Transitions) || len(after.VIPs) != 2 {
		t.Fatalf("d1 after the reload: %+v", after)
	}
	// the counters (also exported as metrics) go through the API
	if after.Counters.AdvertsSent <= before.Counters.AdvertsSent || after.Counters.BecameMaster != 1 {
		t.Fatalf("d1's counters: before %+v, after %+v", before.Counters, after.Counters)
	}
	if s := vrrpOf(c2); s.Counters.AdvertsReceived == 0 {
		t.Fatalf("d2's counters: %+v", s.Counters)
	}
	if failed != 0 || ok < 50 {
		t.Errorf("client during the reload: %d ok, %d failed", ok, failed)
	}
	if s := vrrpOf(c2); s.State != "BACKUP" {
		t.Fatalf("d2 after d1's reload: %s", s.State)
	}

	// d1's priority falls under d2's: d2 takes over (both addresses only
	// once its own file has the second one)
	rewrite("d2", 100, "        10.77.0.51/24 dev eth0\n")
	if err := c2.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	rewrite("d1", 50, "        10.77.0.51/24 dev eth0\n")
	if err := c1.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitState(t, c2, "MASTER", 3*time.Second)
	waitState(t, c1, "BACKUP", 2*time.Second)
	time.Sleep(100 * time.Millisecond)
	if a := addrs("d1"); strings.Contains(a, "10.77.0.5") {
		t.Fatalf("d1 kept an address as BACKUP:\n%s", a)
	}
	if a := addrs("d2"); !strings.Contains(a, "10.77.0.51/24") || !strings.Contains(a, "10.77.0.50/24") {
		t.Fatalf("d2 as MASTER:\n%s", a)
	}
	if ok, failed, _ := l.clientLoop(400 * time.Millisecond); ok == 0 || failed != 0 {
		t.Fatalf("through d2: %d ok, %d failed", ok, failed)
	}
}

// TestVRRPAddedByReload: a govs started without VRRP instances runs the
// one a reload adds (it takes the VIP as the only router), a reload with
// fifo_write_vrrp_states_on_reload writes its state to the FIFO, and a
// reload that removes it again releases the VIP.
func TestVRRPAddedByReload(t *testing.T) {
	l := newVRRPLab(t)
	l.start("r1", govsBin, "demo", "backend", "10.77.0.11:8080", "r1")
	fifo := filepath.Join(l.dir, "vrrp.fifo")
	full := strings.Replace(fmt.Sprintf(vrrpDirectorConf, "d1", "BACKUP", 100),
		"govs_dataplane proxy\n", "govs_dataplane proxy\n    vrrp_notify_fifo "+fifo+"\n", 1)
	// without VRRP the service is on d1's own address (the proxy
	// dataplane binds it)
	plain := full[:strings.Index(full, "vrrp_instance")] +
		strings.Replace(full[strings.Index(full, "virtual_server"):], "virtual_server 10.77.0.50 80", "virtual_server 10.77.0.1 80", 1)
	path := filepath.Join(l.dir, "d1.conf")
	if err := os.WriteFile(path, []byte(plain), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(l.dir, "d1.sock")
	l.start("d1", govsBin, "run", "-f", path, "--api-socket", sock)
	c := api.NewClient(sock)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := c.State(context.Background()); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("govs did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	rf, err := os.Open(fifo)
	if err != nil {
		t.Fatalf("vrrp_notify_fifo: %v", err)
	}
	defer rf.Close()
	if err := os.WriteFile(path, []byte(full), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitState(t, c, "MASTER", 3*time.Second)
	out, err := nsExec(l.prefix+"d1", "ip", "-o", "addr", "show", "dev", "eth0").Output()
	if err != nil || !strings.Contains(string(out), "10.77.0.50/24") {
		t.Fatalf("the VIP after the reload (err %v):\n%s", err, out)
	}
	// a reload with fifo_write_vrrp_states_on_reload writes the states
	// (and changes nothing else)
	states := strings.Replace(full, "govs_dataplane proxy\n", "govs_dataplane proxy\n    fifo_write_vrrp_states_on_reload\n", 1)
	if err := os.WriteFile(path, []byte(states), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(plain), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, err := c.State(context.Background())
	if err != nil || len(st.VRRP) != 0 {
		t.Fatalf("VRRP after the reload that removed it: %v %+v", err, st.VRRP)
	}
	out, _ = nsExec(l.prefix+"d1", "ip", "-o", "addr", "show", "dev", "eth0").Output()
	if strings.Contains(string(out), "10.77.0.50") {
		t.Fatalf("the VIP stayed after its instance was removed:\n%s", out)
	}
	// the vrrp_notify_fifo had the instance's life, as keepalived writes
	// it: nothing for its deletion by the reload (keepalived 2.2.7 writes
	// none; its notify script hears FAULT)
	br := bufio.NewReader(rf)
	for _, want := range []string{`INSTANCE "VI_1" BACKUP 100`, `INSTANCE "VI_1" MASTER 100`, `INSTANCE "VI_1" MASTER 100`} {
		rf.SetReadDeadline(time.Now().Add(2 * time.Second))
		line, err := br.ReadString('\n')
		if err != nil || strings.TrimSuffix(line, "\n") != want {
			t.Fatalf("vrrp_notify_fifo line %q (%v), want %q", line, err, want)
		}
	}
	rf.SetReadDeadline(time.Now().Add(time.Second))
	if line, err := br.ReadString('\n'); err == nil {
		t.Errorf("vrrp_notify_fifo line for the deleted instance: %q", line)
	}
}
