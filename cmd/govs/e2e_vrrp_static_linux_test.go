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

// TestStaticTrackGroup: a static address naming a track_group on eth1
// puts the group's instance in FAULT while eth1 is down (as keepalived
// 2.2.7 tracks it); when eth1 comes back the instance returns to MASTER
// and the static address, deleted meanwhile, is put back.
func TestStaticTrackGroup(t *testing.T) {
	l := newVRRPLab(t)
	ns := l.prefix + "d1"
	sh(t, "ip", "-n", ns, "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p")
	sh(t, "ip", "-n", ns, "link", "set", "eth1p", "up")
	sh(t, "ip", "-n", ns, "link", "set", "eth1", "up")
	conf := fmt.Sprintf(vrrpDirectorConf, "d1", "MASTER", 150) +
		"track_group G {\n    group {\n        VI_1\n    }\n}\n" +
		"static_ipaddress {\n    10.78.0.1/24 dev eth1 track_group G\n}\n"
	path := filepath.Join(l.dir, "d1.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(l.dir, "d1.sock")
	l.start("d1", govsBin, "run", "-f", path, "--api-socket", sock)
	c := api.NewClient(sock)
	waitState(t, c, "MASTER", 5*time.Second)
	addrs := func(dev string) string {
		out, _ := nsExec(ns, "ip", "-o", "-4", "addr", "show", "dev", dev).Output()
		return string(out)
	}
	if !strings.Contains(addrs("eth1"), "10.78.0.1/24") {
		t.Fatalf("the static address is not on eth1:\n%s", addrs("eth1"))
	}
	sh(t, "ip", "-n", ns, "link", "set", "eth1", "down")
	waitState(t, c, "FAULT", 3*time.Second)
	if strings.Contains(addrs("eth0"), "10.77.0.50") {
		t.Fatalf("the VIP stays in FAULT:\n%s", addrs("eth0"))
	}
	sh(t, "ip", "-n", ns, "addr", "del", "10.78.0.1/24", "dev", "eth1")
	sh(t, "ip", "-n", ns, "link", "set", "eth1", "up")
	waitState(t, c, "MASTER", 5*time.Second)
	deadline := time.Now().Add(3 * time.Second)
	for !strings.Contains(addrs("eth1"), "10.78.0.1/24") {
		if time.Now().After(deadline) {
			t.Fatalf("the static address was not put back on eth1:\n%s", addrs("eth1"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
