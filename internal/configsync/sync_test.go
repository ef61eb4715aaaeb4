package configsync

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/config"
)

const confA = `global_defs {
    router_id lb   # shared by both directors
}
include services/*.conf
`

const svc1 = "virtual_server 10.0.0.1 80 {\n    real_server 10.0.1.1 80 {\n        weight 1\n    }\n}\n"

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for n, s := range files {
		p := filepath.Join(dir, n)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "govs.conf")
}

func message(t *testing.T, main string) *Message {
	t.Helper()
	cfg, ds := config.Load(main, nil)
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	files, rev, err := Files(main, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &Message{From: "lb1", SentAt: time.Now(), Main: filepath.Base(main), Files: files, Revision: rev}
}

func TestSealOpen(t *testing.T) {
	main := writeTree(t, map[string]string{"govs.conf": confA, "services/web.conf": svc1})
	m := message(t, main)
	if len(m.Files) != 2 || m.Files["services/web.conf"] == nil {
		t.Fatalf("files %v", m.Files)
	}
	b, err := Seal("a shared secret", m)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "router_id") {
		t.Error("the files travel in clear")
	}
	var rp Replay
	got, err := Open("a shared secret", b, time.Now(), &rp)
	if err != nil || got.Revision != m.Revision || string(got.Files["govs.conf"]) != confA {
		t.Fatalf("open: %v %+v", err, got)
	}
	if _, err := Open("a shared secret", b, time.Now(), &rp); err == nil || !strings.Contains(err.Error(), "replay") {
		t.Errorf("replay: %v", err)
	}
	if _, err := Open("another secret!!", b, time.Now(), nil); !errors.Is(err, ErrRefused) {
		t.Errorf("wrong secret: %v", err)
	}
	bad := append([]byte{}, b...)
	bad[len(bad)-1] ^= 1
	if _, err := Open("a shared secret", bad, time.Now(), nil); !errors.Is(err, ErrRefused) {
		t.Errorf("altered: %v", err)
	}
	if _, err := Open("a shared secret", b, time.Now().Add(10*time.Minute), nil); err == nil || !strings.Contains(err.Error(), "clocks differ") {
		t.Errorf("old: %v", err)
	}
	if _, err := Open("a shared secret", b[:10], time.Now(), nil); !errors.Is(err, ErrRefused) {
		t.Errorf("short: %v", err)
	}
	for _, name := range []string{"../etc/passwd", "/etc/passwd", "a/../../x"} {
		m2 := *m
		m2.Files = map[string][]byte{"govs.conf": []byte(confA), name: []byte("x")}
		m2.Revision = Revision(m2.Files)
		b2, _ := Seal("a shared secret", &m2)
		if _, err := Open("a shared secret", b2, time.Now(), nil); err == nil || !strings.Contains(err.Error(), "not a path under") {
			t.Errorf("file %q: %v", name, err)
		}
	}
}

func TestApply(t *testing.T) {
	// lb1 and lb2 in sync; lb1 changes a weight and adds a file
	tree := map[string]string{"govs.conf": confA, "services/web.conf": svc1, "services/old.conf": "virtual_server 10.0.0.3 80 {\n}\n"}
	lb1, lb2 := writeTree(t, tree), writeTree(t, tree)
	prev := message(t, lb1).Revision
	os.WriteFile(filepath.Join(filepath.Dir(lb1), "services/web.conf"), []byte(strings.Replace(svc1, "weight 1", "weight 5", 1)), 0o644)
	os.WriteFile(filepath.Join(filepath.Dir(lb1), "services/dns.conf"), []byte("virtual_server 10.0.0.2 53 {\n    protocol UDP\n}\n"), 0o644)
	os.Remove(filepath.Join(filepath.Dir(lb1), "services/old.conf"))
	m := message(t, lb1)
	m.Prev = prev
	res, err := Apply(lb2, nil, m)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Written) != 2 || len(res.Removed) != 1 || res.Revision != m.Revision {
		t.Errorf("result %+v", res)
	}
	cfg, ds := config.Load(lb2, nil)
	if ds.HasErrors() || len(cfg.VirtualServers) != 2 || cfg.VirtualServers[1].RealServers[0].Weight != 5 && cfg.VirtualServers[0].RealServers[0].Weight != 5 {
		t.Fatalf("lb2 after the sync: %v", ds.Err())
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(lb2), "services/.old.conf.removed-by-sync")); err != nil {
		t.Errorf("removed file not put aside: %v", err)
	}
	// the same again: nothing to do
	if res, err := Apply(lb2, nil, m); err != nil || len(res.Written) != 0 {
		t.Errorf("again: %+v %v", res, err)
	}

	// lb2 edited by hand since: refused, unless forced
	os.WriteFile(lb2, []byte(confA+"# hand edit on lb2\n"), 0o644)
	m2 := message(t, lb1)
	m2.Prev = m.Revision
	os.WriteFile(filepath.Join(filepath.Dir(lb1), "govs.conf"), []byte(strings.Replace(confA, "router_id lb", "router_id lbx", 1)), 0o644)
	m2 = message(t, lb1)
	m2.Prev = m.Revision
	if _, err := Apply(lb2, nil, m2); !errors.Is(err, ErrConflict) {
		t.Fatalf("conflict: %v", err)
	}
	if b, _ := os.ReadFile(lb2); !strings.Contains(string(b), "# hand edit on lb2") {
		t.Error("conflicting push wrote")
	}
	m2.Force = true
	if _, err := Apply(lb2, nil, m2); err != nil {
		t.Fatalf("forced: %v", err)
	}
	if b, _ := os.ReadFile(lb2); !strings.Contains(string(b), "router_id lbx") {
		t.Errorf("forced push not written:\n%s", b)
	}

	// files that do not load are refused whole
	m3 := *m2
	m3.Files = map[string][]byte{"govs.conf": []byte("virtual_server 10.0.0.1 80 {\n    lb_algo nope\n}\n")}
	m3.Revision, m3.Prev, m3.Force = Revision(m3.Files), m2.Revision, false
	before, _ := os.ReadFile(lb2)
	var inv *config.InvalidError
	if _, err := Apply(lb2, nil, &m3); !errors.As(err, &inv) {
		t.Fatalf("invalid: %v", err)
	}
	if after, _ := os.ReadFile(lb2); string(after) != string(before) {
		t.Error("invalid push wrote")
	}
}

// Conditional lines let one file serve both directors: the peer checks
// the files with its own config-id.
func TestApplyConfigID(t *testing.T) {
	text := "vrrp_instance VI {\n    interface eth0\n    virtual_router_id 9\n@lb1 state MASTER\n@lb1 priority 150\n@lb2 state BACKUP\n@lb2 priority 100\n    virtual_ipaddress {\n        192.0.2.1/24\n    }\n}\n"
	lb1 := writeTree(t, map[string]string{"govs.conf": text})
	lb2 := writeTree(t, map[string]string{"govs.conf": text})
	prev := message(t, lb1).Revision
	os.WriteFile(lb1, []byte(strings.Replace(text, "virtual_router_id 9", "virtual_router_id 10", 1)), 0o644)
	m := message(t, lb1)
	m.Prev = prev
	if _, err := Apply(lb2, &config.ParseOptions{ConfigID: "lb2"}, m); err != nil {
		t.Fatal(err)
	}
	cfg, _ := config.Load(lb2, &config.ParseOptions{ConfigID: "lb2"})
	if vi := cfg.VRRPInstances[0]; vi.VirtualRouterID != 10 || vi.Priority != 100 || vi.State != "BACKUP" {
		t.Errorf("lb2 reads %+v", vi)
	}
}
