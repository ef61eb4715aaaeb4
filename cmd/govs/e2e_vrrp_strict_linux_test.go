package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/vrrp"
)

const strictInstanceConf = `global_defs {
    router_id d1
    govs_dataplane proxy
    vrrp_strict
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 42
    priority 100
    version 3
    advert_int 0.1
    %s
    virtual_ipaddress {
        10.77.0.50/24 dev eth0
    }
}
`

// strictDirectorConf is d1's configuration in strict mode with extra
// lines in its instance, and the VRRP lab's service (vrrpDirectorConf's)
// on ports 80 and 8000-8001.
func strictDirectorConf(extra string) string {
	vs := vrrpDirectorConf[strings.Index(vrrpDirectorConf, "virtual_server"):]
	vs = strings.Replace(vs, "virtual_server 10.77.0.50 80 {", "virtual_server 10.77.0.50 80,8000-8001 {", 1)
	return fmt.Sprintf(strictInstanceConf, extra) + vs
}

// TestVRRPStrictNoAccept runs govs with vrrp_strict on the proxy
// dataplane: the instance (priority 100, not the address owner) is in
// no_accept mode, so as MASTER the host drops what is addressed to the
// VIP (ping, a service of the host itself) while the virtual service on
// the VIP is balanced. A reload adding accept lifts the drop, one taking
// it away puts it back, and a stop removes the rules with the address.
func TestVRRPStrictNoAccept(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs nft (no_accept is made with nftables)")
	}
	l := newVRRPLab(t)
	l.start("r1", govsBin, "demo", "backend", "10.77.0.11:8080", "r1")
	l.start("r2", govsBin, "demo", "backend", "10.77.0.12:8080", "r2")
	// a service of the director host itself, on every address
	l.start("d1", govsBin, "demo", "backend", "0.0.0.0:2222", "host")
	conf := filepath.Join(l.dir, "d1.conf")
	write := func(extra string) {
		t.Helper()
		if err := os.WriteFile(conf, []byte(strictDirectorConf(extra)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	out, err := exec.Command(govsBin, "check", "-f", conf).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "strict mode implies no_accept") {
		t.Errorf("govs check: %v\n%s", err, out)
	}
	sock := filepath.Join(l.dir, "d1.sock")
	d1 := l.start("d1", govsBin, "run", "-f", conf, "--api-socket", sock, "--lame-duck", "100ms")
	c := api.NewClient(sock)
	waitState(t, c, "MASTER", 10*time.Second)

	fetch := func(url string) bool {
		return nsExec(l.prefix+"cl", govsBin, "demo", "client", "-timeout", "700ms", url, "1").Run() == nil
	}
	ping := func(addr string) bool {
		return nsExec(l.prefix+"cl", "ping", "-c", "1", "-W", "1", addr).Run() == nil
	}
	// until is how long a reload may take to show
	until := func(want bool, what func() bool) bool {
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if what() == want {
				return true
			}
			time.Sleep(100 * time.Millisecond)
		}
		return false
	}
	table := func() (string, bool) {
		out, err := nsExec(l.prefix+"d1", "nft", "list", "table", "inet", vrrp.FirewallTable).CombinedOutput()
		return string(out), err == nil
	}
	noAccept := func(phase string) {
		t.Helper()
		for i := range 4 {
			if !fetch("http://10.77.0.50/") {
				t.Errorf("%s: request %d to the virtual service failed", phase, i)
			}
		}
		// the other ports of the multi-port service
		if !fetch("http://10.77.0.50:8001/") {
			t.Errorf("%s: the virtual service's port 8001 failed", phase)
		}
		if fetch("http://10.77.0.50:2222/") {
			t.Errorf("%s: the host's own service answered on the VIP", phase)
		}
		if !fetch("http://10.77.0.1:2222/") {
			t.Errorf("%s: the host's own service did not answer on its own address", phase)
		}
		if ping("10.77.0.50") {
			t.Errorf("%s: the VIP answered a ping", phase)
		}
		if !ping("10.77.0.1") {
			t.Errorf("%s: the director's own address did not answer a ping", phase)
		}
		if rules, ok := table(); !ok || !strings.Contains(rules, "10.77.0.50") || !strings.Contains(rules, "drop") {
			t.Errorf("%s: table %s:\n%s", phase, vrrp.FirewallTable, rules)
		}
	}
	noAccept("no_accept")
	st, _ := exec.Command(govsBin, "status", "-s", sock).CombinedOutput()
	if !strings.Contains(string(st), "VI_1: no_accept") {
		t.Errorf("govs status does not say no_accept:\n%s", st)
	}

	// accept (VRRPv3): the host takes the VIP's packets again
	write("accept")
	d1.Process.Signal(syscall.SIGHUP)
	if !until(true, func() bool { return fetch("http://10.77.0.50:2222/") }) {
		t.Errorf("accept: the host's own service does not answer on the VIP")
	}
	if !ping("10.77.0.50") {
		t.Errorf("accept: the VIP does not answer a ping")
	}
	if rules, ok := table(); ok {
		t.Errorf("accept: table %s left:\n%s", vrrp.FirewallTable, rules)
	}
	if s, err := c.State(context.Background()); err != nil || len(s.VRRP) != 1 || s.VRRP[0].NoAccept || s.VRRP[0].State != "MASTER" {
		t.Errorf("accept: state %+v %v", s.VRRP, err)
	}

	// back to strict mode's default
	write("")
	d1.Process.Signal(syscall.SIGHUP)
	if !until(false, func() bool { return fetch("http://10.77.0.50:2222/") }) {
		t.Errorf("no_accept again: the host's own service still answers on the VIP")
	}
	noAccept("no_accept again")

	// a stop removes the address and its rules
	d1.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- d1.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("govs did not stop")
	}
	if rules, ok := table(); ok {
		t.Errorf("after the stop: table %s left:\n%s", vrrp.FirewallTable, rules)
	}
}
