package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/api"
)

// TestNetNamespace: govs started in the root namespace with a
// configuration naming net_namespace runs in that namespace, as
// keepalived does: its VRRP instance holds the VIP there (not in the root
// namespace) and its proxy serves clients of that network; the API
// answers on its socket.
func TestNetNamespace(t *testing.T) {
	l := newVRRPLab(t)
	l.start("r1", govsBin, "demo", "backend", "10.77.0.11:8080", "r1")
	l.start("r2", govsBin, "demo", "backend", "10.77.0.12:8080", "r2")
	conf := filepath.Join(l.dir, "d1.conf")
	body := fmt.Sprintf(vrrpDirectorConf, "d1", "MASTER", 150)
	if err := os.WriteFile(conf, []byte("net_namespace "+l.prefix+"d1\n"+body), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(l.dir, "d1.sock")
	cmd := exec.Command(govsBin, "run", "-f", conf, "--api-socket", sock, "--lame-duck", "300ms")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("govs:\n%s", buf.String())
		}
	})
	waitState(t, api.NewClient(sock), "MASTER", 10*time.Second)
	out, err := exec.Command("ip", "-n", l.prefix+"d1", "-o", "addr", "show", "dev", "eth0").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "10.77.0.50/24") {
		t.Fatalf("the VIP is not in the namespace: %v\n%s", err, out)
	}
	if out, _ := exec.Command("ip", "-o", "addr", "show").CombinedOutput(); strings.Contains(string(out), "10.77.0.50/") {
		t.Fatalf("the VIP is in the root namespace:\n%s", out)
	}
	if ok, failed, _ := l.clientLoop(500 * time.Millisecond); ok == 0 || failed != 0 {
		t.Fatalf("through the VIP: %d ok, %d failed", ok, failed)
	}
}
