package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/api"
)

// sharedPairConf is one file for both directors of the VRRP lab: what
// differs is on conditional lines (read with --config-id d1 or d2).
const sharedPairConf = `global_defs {
@d1 router_id d1
@d2 router_id d2
    govs_dataplane proxy
@d1 govs_config_sync_peer 10.77.0.2:3637
@d2 govs_config_sync_listen 10.77.0.2:3637
    govs_config_sync_secret "one secret for the pair"
}
vrrp_instance VI_1 {
@d1 state MASTER
@d1 priority 150
@d2 state BACKUP
@d2 priority 100
    interface eth0
    virtual_router_id 42
    version 3
    advert_int 0.1
    virtual_ipaddress {
        10.77.0.50/24 dev eth0
    }
}
# the service, the same on both
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

// TestConfigSyncPair: two directors in network namespaces with one
// shared file. A weight persisted on d1 with govs set reaches d2 (file
// and running services) by itself; after a hand edit on d2 the next
// change is refused there, and govs config-push --force settles it.
func TestConfigSyncPair(t *testing.T) {
	l := newVRRPLab(t)
	l.start("r1", govsBin, "demo", "backend", "10.77.0.11:8080", "r1")
	l.start("r2", govsBin, "demo", "backend", "10.77.0.12:8080", "r2")
	socks := map[string]string{}
	confs := map[string]string{}
	for _, name := range []string{"d1", "d2"} {
		dir := filepath.Join(l.dir, name)
		os.MkdirAll(dir, 0o755)
		confs[name] = filepath.Join(dir, "govs.conf")
		if err := os.WriteFile(confs[name], []byte(sharedPairConf), 0o644); err != nil {
			t.Fatal(err)
		}
		socks[name] = filepath.Join(l.dir, name+".sock")
		l.start(name, govsBin, "run", "-f", confs[name], "--config-id", name, "--api-socket", socks[name], "--lame-duck", "100ms")
	}
	waitState(t, api.NewClient(socks["d1"]), "MASTER", 10*time.Second)
	waitState(t, api.NewClient(socks["d2"]), "BACKUP", 10*time.Second)
	govs := func(node string, args ...string) (string, int) {
		cmd := exec.Command(govsBin, args...)
		cmd.Env = append(os.Environ(), "GOVS_SOCKET="+socks[node])
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	weightOn := func(node string, w string) {
		t.Helper()
		re := regexp.MustCompile(`10\.77\.0\.12:8080\s+Masq\s+` + w + `\s`)
		deadline := time.Now().Add(10 * time.Second)
		for {
			out, _ := govs(node, "list", "-n")
			if re.MatchString(out) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never ran weight %s:\n%s", node, w, out)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	if out, code := govs("d1", "set", "-t", "10.77.0.50:80", "-r", "10.77.0.12:8080", "-w", "5", "--persist"); code != 0 {
		t.Fatalf("govs set on d1: %s", out)
	}
	weightOn("d2", "5")
	b1, _ := os.ReadFile(confs["d1"])
	b2, _ := os.ReadFile(confs["d2"])
	if string(b1) != string(b2) || !strings.Contains(string(b2), "@d2 priority 100") {
		t.Fatalf("the files differ after the sync:\n%s\n---\n%s", b1, b2)
	}
	if st, err := api.NewClient(socks["d2"]).State(context.Background()); err != nil || st.ConfigSync == nil || st.ConfigSync.LastReceived == nil || st.ConfigSync.LastReceived.From != "d1" {
		t.Errorf("d2's sync state: %+v %v", st.ConfigSync, err)
	}
	// govs status says it on both sides
	deadline0 := time.Now().Add(5 * time.Second)
	for {
		out, _ := govs("d1", "status")
		if strings.Contains(out, "to 10.77.0.2:3637: saved") {
			break
		}
		if time.Now().After(deadline0) {
			t.Fatalf("govs status on d1:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out, _ := govs("d2", "status"); !strings.Contains(out, "configuration sync: files at revision") || !strings.Contains(out, "from d1 (") {
		t.Errorf("govs status on d2:\n%s", out)
	}

	// a hand edit on d2: d1's next change is refused there
	os.WriteFile(confs["d2"], append(b2, []byte("# hand edit on d2\n")...), 0o644)
	if out, code := govs("d1", "set", "-t", "10.77.0.50:80", "-r", "10.77.0.12:8080", "-w", "3", "--persist"); code != 0 {
		t.Fatalf("govs set on d1: %s", out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := api.NewClient(socks["d1"]).State(context.Background())
		if err == nil && st.ConfigSync != nil && len(st.ConfigSync.Peers) == 1 && strings.Contains(st.ConfigSync.Peers[0].Error, "409") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("d1 never saw the conflict: %+v", st.ConfigSync)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if b, _ := os.ReadFile(confs["d2"]); !strings.Contains(string(b), "# hand edit on d2") {
		t.Fatal("the conflicting change overwrote d2's hand edit")
	}
	weightOn("d2", "5")
	// without --force: refused again; with it: d2 takes d1's files
	if out, code := govs("d1", "config-push"); code != 1 || !strings.Contains(out, "409") {
		t.Errorf("config-push without --force: %d %s", code, out)
	}
	if out, code := govs("d1", "config-push", "--force"); code != 0 || !strings.Contains(out, "10.77.0.2:3637: saved") {
		t.Fatalf("config-push --force: %d %s", code, out)
	}
	weightOn("d2", "3")
	if b, _ := os.ReadFile(confs["d2"]); strings.Contains(string(b), "# hand edit on d2") {
		t.Error("the forced push did not replace d2's file")
	}
}
