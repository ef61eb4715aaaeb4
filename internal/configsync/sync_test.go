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
	b, err := Seal("a shared secret!", m)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "router_id") {
		t.Error("the files travel in clear")
	}
	var rp Replay
	got, err := Open("a shared secret!", b, time.Now(), &rp)
	if err != nil || got.Revision != m.Revision || string(got.Files["govs.conf"]) != confA {
		t.Fatalf("open: %v %+v", err, got)
	}
	if _, err := Open("a shared secret!", b, time.Now(), &rp); err == nil || !strings.Contains(err.Error(), "replay") {
		t.Errorf("replay: %v", err)
	}
	if _, err := Open("another secret!!!", b, time.Now(), nil); !errors.Is(err, ErrRefused) {
		t.Errorf("wrong secret: %v", err)
	}
	bad := append([]byte{}, b...)
	bad[len(bad)-1] ^= 1
	if _, err := Open("a shared secret!", bad, time.Now(), nil); !errors.Is(err, ErrRefused) {
		t.Errorf("altered: %v", err)
	}
	if _, err := Open("a shared secret!", b, time.Now().Add(10*time.Minute), nil); err == nil || !strings.Contains(err.Error(), "clocks differ") {
		t.Errorf("old: %v", err)
	}
	if _, err := Open("a shared secret!", b[:10], time.Now(), nil); !errors.Is(err, ErrRefused) {
		t.Errorf("short: %v", err)
	}
	if _, err := Seal("short", m); err == nil {
		t.Error("a short secret sealed")
	}
	for _, name := range []string{"../etc/passwd", "/etc/passwd", "a/../../x", "./govs.conf"} {
		m2 := *m
		m2.Files = map[string][]byte{"govs.conf": []byte(confA), name: []byte("x")}
		m2.Revision = Revision(m2.Files, m2.Main)
		b2, _ := Seal("a shared secret!", &m2)
		if _, err := Open("a shared secret!", b2, time.Now(), nil); err == nil || !strings.Contains(err.Error(), "not a clean path under") {
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
	m.Prevs = []string{prev}
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
	m2.Prevs = []string{m.Revision}
	os.WriteFile(filepath.Join(filepath.Dir(lb1), "govs.conf"), []byte(strings.Replace(confA, "router_id lb", "router_id lbx", 1)), 0o644)
	m2 = message(t, lb1)
	m2.Prevs = []string{m.Revision}
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
	m3.Revision, m3.Prevs, m3.Force = Revision(m3.Files, m3.Main), []string{m2.Revision}, false
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
	m.Prevs = []string{prev}
	if _, err := Apply(lb2, &config.ParseOptions{ConfigID: "lb2"}, m); err != nil {
		t.Fatal(err)
	}
	cfg, _ := config.Load(lb2, &config.ParseOptions{ConfigID: "lb2"})
	if vi := cfg.VRRPInstances[0]; vi.VirtualRouterID != 10 || vi.Priority != 100 || vi.State != "BACKUP" {
		t.Errorf("lb2 reads %+v", vi)
	}
}

// What the review of the sync found, on the receiving side.
func TestApplyGuards(t *testing.T) {
	// main files of other names: the same revision, and the sync works
	a := writeTree(t, map[string]string{"govs.conf": confA, "services/web.conf": svc1})
	bdir := t.TempDir()
	b := filepath.Join(bdir, "keepalived.conf")
	os.MkdirAll(filepath.Join(bdir, "services"), 0o755)
	os.WriteFile(b, []byte(confA), 0o600)
	os.WriteFile(filepath.Join(bdir, "services/web.conf"), []byte(svc1), 0o644)
	prev := message(t, a).Revision
	if m := message(t, b); m.Revision != prev {
		t.Fatalf("the same files under other main names: revisions %s and %s", m.Revision, prev)
	}
	os.WriteFile(filepath.Join(filepath.Dir(a), "services/dns.conf"), []byte("virtual_server 10.0.0.2 53 {\n    protocol UDP\n}\n"), 0o644)
	m := message(t, a)
	m.Prevs = []string{prev}
	if _, err := Apply(b, nil, m); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(bdir, "services/dns.conf")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("a new file takes the main file's mode (0600): %v %v", fi.Mode(), err)
	}
	if m2 := message(t, b); m2.Revision != m.Revision {
		t.Errorf("after the sync: revisions %s and %s", m2.Revision, m.Revision)
	}

	// a file the configuration does not read is not written
	m3 := *m
	m3.Files = map[string][]byte{}
	for k, v := range m.Files {
		m3.Files[k] = v
	}
	m3.Files["notes.txt"] = []byte("x")
	m3.Prevs, m3.Revision = []string{m.Revision}, Revision(m3.Files, m3.Main)
	if _, err := Apply(b, nil, &m3); err == nil || !strings.Contains(err.Error(), "not read by the configuration") {
		t.Errorf("an unread file: %v", err)
	}

	// a new file through a symbolic link out of the directory
	out := t.TempDir()
	os.Symlink(out, filepath.Join(bdir, "linked"))
	m4 := *m
	m4.Files = map[string][]byte{"govs.conf": []byte(confA + "include linked/x.conf\n"), "linked/x.conf": []byte("virtual_server 10.0.0.5 80 {\n}\n")}
	for k, v := range m.Files {
		if k != "govs.conf" {
			m4.Files[k] = v
		}
	}
	m4.Prevs, m4.Revision = []string{m.Revision}, Revision(m4.Files, m4.Main)
	if _, err := Apply(b, nil, &m4); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("through a link: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "x.conf")); err == nil {
		t.Error("written through the link")
	}

	// a new file through a link that points out, under a directory not
	// made yet; a new file that is a link here
	m6 := *m
	m6.Files = map[string][]byte{"govs.conf": []byte(confA + "include linked/sub/x.conf\ninclude extra.conf\n"), "linked/sub/x.conf": []byte("virtual_server 10.0.0.5 80 {\n}\n"), "extra.conf": []byte("\n")}
	for k, v := range m.Files {
		if k != "govs.conf" {
			m6.Files[k] = v
		}
	}
	m6.Prevs, m6.Revision = []string{m.Revision}, Revision(m6.Files, m6.Main)
	if _, err := Apply(b, nil, &m6); err == nil || !strings.Contains(err.Error(), "outside") {
		t.Errorf("through a link, a new directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(out, "sub")); err == nil {
		t.Error("a directory made through the link")
	}
	victim := filepath.Join(out, "victim")
	os.WriteFile(victim, []byte("keep\n"), 0o644)
	os.Symlink(victim, filepath.Join(bdir, "extra.conf"))
	delete(m6.Files, "linked/sub/x.conf")
	m6.Files["govs.conf"] = []byte(confA + "include extra.conf\n")
	m6.Revision = Revision(m6.Files, m6.Main)
	if _, err := Apply(b, nil, &m6); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("a new file that is a link: %v", err)
	}
	if v, _ := os.ReadFile(victim); string(v) != "keep\n" {
		t.Error("written through the link")
	}
	os.Remove(filepath.Join(bdir, "extra.conf"))

	// a file here that a new include pattern of the sender matches
	os.MkdirAll(filepath.Join(bdir, "more"), 0o755)
	os.WriteFile(filepath.Join(bdir, "more/stale.conf"), []byte("virtual_server 10.0.0.7 80 {\n}\n"), 0o644)
	m7 := *m
	m7.Files = map[string][]byte{"govs.conf": []byte(confA + "include more/*.conf\n"), "more/new.conf": []byte("virtual_server 10.0.0.8 80 {\n}\n")}
	for k, v := range m.Files {
		if k != "govs.conf" {
			m7.Files[k] = v
		}
	}
	m7.Prevs, m7.Revision = []string{m.Revision}, Revision(m7.Files, m7.Main)
	var inv *config.InvalidError
	if _, err := Apply(b, nil, &m7); !errors.As(err, &inv) || !strings.Contains(inv.Problems.Err().Error(), "stale.conf is here") {
		t.Errorf("a stale file matching a new pattern: %v", err)
	}

	// a forced push keeps what it replaces
	os.WriteFile(b, []byte(confA+"# changed on b\n"), 0o600)
	m5 := message(t, a)
	m5.Prevs, m5.Force = []string{prev}, true
	os.RemoveAll(filepath.Join(bdir, "more"))
	res, err := Apply(b, nil, m5)
	if err != nil || res.Replaced == "" {
		t.Fatalf("forced: %+v %v", res, err)
	}
	if kept, _ := os.ReadFile(filepath.Join(bdir, ".keepalived.conf.replaced-by-sync")); !strings.Contains(string(kept), "# changed on b") {
		t.Errorf("the replaced file was not kept: %q", kept)
	}

	// conditional includes: refused with the reason
	c := writeTree(t, map[string]string{"govs.conf": "@lb1 include lb1.conf\n", "lb1.conf": svc1})
	cfg, _ := config.Load(c, &config.ParseOptions{ConfigID: "lb1"})
	if _, _, err := Files(c, cfg); err == nil || !strings.Contains(err.Error(), "conditional include") {
		t.Errorf("conditional include: %v", err)
	}
}

func TestReplySeal(t *testing.T) {
	const s = "a shared secret!"
	req, _ := Seal(s, &Message{From: "x", SentAt: time.Now(), Main: "m", Files: map[string][]byte{"m": nil}})
	rep, err := SealReply(s, Nonce(req), map[string]string{"result": "saved"})
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]string
	if err := OpenReply(s, Nonce(req), rep, &v); err != nil || v["result"] != "saved" {
		t.Fatalf("reply: %v %v", v, err)
	}
	other, _ := Seal(s, &Message{From: "x", SentAt: time.Now(), Main: "m"})
	if err := OpenReply(s, Nonce(other), rep, &v); err == nil {
		t.Error("a reply opened for another request")
	}
}
