package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/api"
)

// TestVRRPStartupDelay: with vrrp_startup_delay 2 in global_defs, a lone
// director takes the master role (and the VIP) no sooner than 2 s after it
// started; without it, within about half a second (advert_int 0.1).
func TestVRRPStartupDelay(t *testing.T) {
	l := newVRRPLab(t)
	conf := strings.Replace(fmt.Sprintf(vrrpDirectorConf, "d1", "MASTER", 150),
		"govs_dataplane proxy\n", "govs_dataplane proxy\n    vrrp_startup_delay 2\n", 1)
	path := filepath.Join(l.dir, "d1.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(l.dir, "d1.sock")
	start := time.Now()
	l.start("d1", govsBin, "run", "-f", path, "--api-socket", sock)
	c := api.NewClient(sock)
	time.Sleep(time.Second)
	if out, err := nsExec(l.prefix+"d1", "ip", "-o", "addr", "show", "dev", "eth0").Output(); err != nil || strings.Contains(string(out), "10.77.0.50") {
		t.Fatalf("the VIP is held within the startup delay (err %v):\n%s", err, out)
	}
	waitState(t, c, "MASTER", 6*time.Second)
	if took := time.Since(start); took < 2*time.Second {
		t.Fatalf("master %v after start, before the 2 s startup delay", took)
	} else {
		t.Logf("master %v after start (vrrp_startup_delay 2)", took.Round(10*time.Millisecond))
	}
}
