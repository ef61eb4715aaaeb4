package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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

// TestVRRPStartupDelayStop: govs stopped within vrrp_startup_delay never
// starts its instances: no notify script runs (a start and stop of the
// instances would run it for BACKUP, then STOP).
func TestVRRPStartupDelayStop(t *testing.T) {
	l := newVRRPLab(t)
	notes := filepath.Join(l.dir, "notes")
	script := filepath.Join(l.dir, "notify.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$@\" >> "+notes+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := strings.Replace(fmt.Sprintf(vrrpDirectorConf, "d1", "BACKUP", 100),
		"govs_dataplane proxy\n", "govs_dataplane proxy\n    vrrp_startup_delay 3\n", 1)
	conf = strings.Replace(conf, "    garp_master_delay 0\n", "    garp_master_delay 0\n    notify "+script+"\n", 1)
	path := filepath.Join(l.dir, "d1.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(l.dir, "d1.sock")
	cmd := l.start("d1", govsBin, "run", "-f", path, "--api-socket", sock)
	c := api.NewClient(sock)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := c.State(t.Context()); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("govs did not stop within 10 s of SIGTERM")
	}
	time.Sleep(300 * time.Millisecond) // a notify script still running
	if b, err := os.ReadFile(notes); err == nil {
		t.Fatalf("notify ran for instances stopped within the startup delay:\n%s", b)
	}
}
