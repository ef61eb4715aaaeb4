package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copyTestdata copies the testdata configurations (and their includes)
// into a temporary directory and returns it.
func copyTestdata(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	err := filepath.WalkDir("testdata", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("testdata", p)
		if d.IsDir() {
			if rel == "fuzz" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Every object of the test configurations goes through the web UI's
// path unchanged: its JSON set back in place writes nothing. This is what
// makes editing a few fields of an object safe: the fields the form does
// not show travel through JSON intact.
func TestUpdateJSONRoundTrip(t *testing.T) {
	dir := copyTestdata(t)
	confs, _ := filepath.Glob(filepath.Join(dir, "*.conf"))
	if len(confs) < 3 {
		t.Fatalf("want the testdata configurations, found %v", confs)
	}
	for _, path := range confs {
		cfg, ds := Load(path, nil)
		if ds.HasErrors() {
			t.Fatalf("%s: %v", path, ds.Err())
		}
		var edits []Edit
		edits = append(edits, Edit{Op: "set", Kind: "global_defs", Object: mustJSON(t, cfg.Global)})
		for i, vi := range cfg.VRRPInstances {
			edits = append(edits, Edit{Op: "set", Kind: "vrrp_instance", Index: i, Object: mustJSON(t, vi)})
		}
		for i, vs := range cfg.VirtualServers {
			edits = append(edits, Edit{Op: "set", Kind: "virtual_server", Index: i, Object: mustJSON(t, vs)})
			for j, rs := range vs.RealServers {
				edits = append(edits, Edit{Op: "set", Kind: "real_server", VS: i, Index: j, Object: mustJSON(t, rs)})
			}
		}
		before := readAll(t, dir)
		for _, e := range edits {
			res, err := Update(path, nil, cfg.Revision(), e.Apply)
			if err != nil {
				t.Fatalf("%s: %s %d/%d: %v", filepath.Base(path), e.Kind, e.VS, e.Index, err)
			}
			if len(res.Files) != 0 || res.Revision != cfg.Revision() {
				t.Errorf("%s: %s %d/%d set to itself wrote %v", filepath.Base(path), e.Kind, e.VS, e.Index, res.Files)
			}
		}
		if after := readAll(t, dir); !equalFiles(before, after) {
			t.Errorf("%s: files changed by edits that change nothing", path)
		}
	}
}

func readAll(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out[p], _ = os.ReadFile(p)
		}
		return nil
	})
	return out
}

func equalFiles(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

const updateConf = `# the director of the web farm
global_defs {
    router_id lb1   # this host
}

! first service
virtual_server 10.0.0.1 80 {
    lb_algo rr
    lb_kind DR
    real_server 10.0.1.1 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
        }
    }
}

# second service, left alone by edits of the first
virtual_server 10.0.0.2 53 {
    protocol UDP
    real_server 10.0.1.2 53 {
    }
}
`

func writeConf(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "govs.conf")
	if err := os.WriteFile(p, []byte(text), 0o640); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUpdateEdits(t *testing.T) {
	path := writeConf(t, updateConf)
	cfg, ds := Load(path, nil)
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	rev := cfg.Revision()

	// a field changed: that block alone is rendered anew
	vs := *cfg.VirtualServers[0]
	vs.Scheduler = "wlc"
	vs.Name = "web"
	res, err := Update(path, nil, rev, Edit{Op: "set", Kind: "virtual_server", Index: 0, Object: mustJSON(t, &vs)}.Apply)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != 1 || res.Revision == rev {
		t.Fatalf("wrote %v, revision %s (was %s)", res.Files, res.Revision, rev)
	}
	got, _ := os.ReadFile(path)
	for _, keep := range []string{"# the director of the web farm", "router_id lb1   # this host", "! first service",
		"# second service, left alone by edits of the first\nvirtual_server 10.0.0.2 53 {\n    protocol UDP\n"} {
		if !strings.Contains(string(got), keep) {
			t.Errorf("lost %q:\n%s", keep, got)
		}
	}
	if !strings.Contains(string(got), "lvs_sched wlc") || strings.Contains(string(got), "lb_algo rr") {
		t.Errorf("scheduler not changed:\n%s", got)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640 kept", fi.Mode().Perm())
	}
	if res.Config.VirtualServers[0].Name != "web" {
		t.Errorf("loaded back name %q", res.Config.VirtualServers[0].Name)
	}

	// the old revision is refused now
	if _, err := Update(path, nil, rev, Edit{Op: "delete", Kind: "virtual_server", Index: 1}.Apply); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale revision: err %v, want ErrConflict", err)
	}
	rev = res.Revision

	// an invalid object: refused with the problems, nothing written
	before, _ := os.ReadFile(path)
	bad := *res.Config.VirtualServers[0]
	bad.Scheduler = "fastest"
	_, err = Update(path, nil, rev, Edit{Op: "set", Kind: "virtual_server", Index: 0, Object: mustJSON(t, &bad)}.Apply)
	var inv *InvalidError
	if !errors.As(err, &inv) || !strings.Contains(inv.Problems.Err().Error(), "fastest") {
		t.Fatalf("invalid scheduler: err %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("refused edit changed the file")
	}

	// a field that does not exist in the model
	_, err = Update(path, nil, rev, Edit{Op: "set", Kind: "virtual_server", Index: 0, Object: json.RawMessage(`{"lb_algo":"rr"}`)}.Apply)
	if err == nil || !strings.Contains(err.Error(), `unknown field "lb_algo"`) {
		t.Fatalf("unknown field: err %v", err)
	}
	// indexes out of range
	for _, e := range []Edit{
		{Op: "delete", Kind: "virtual_server", Index: 2},
		{Op: "set", Kind: "real_server", VS: 5, Index: 0, Object: json.RawMessage(`{}`)},
		{Op: "delete", Kind: "vrrp_instance", Index: 0},
		{Op: "add", Kind: "global_defs", Object: json.RawMessage(`{}`)},
		{Op: "move", Kind: "virtual_server"},
		{Op: "set", Kind: "static_routes", Object: json.RawMessage(`{}`)},
	} {
		if _, err := Update(path, nil, rev, e.Apply); err == nil {
			t.Errorf("%+v: no error", e)
		}
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("refused edits changed the file")
	}

	// add a real server to the second service, then delete the first
	// service: the second keeps its text, the new server is in it
	res, err = Update(path, nil, rev, Edit{Op: "add", Kind: "real_server", VS: 1,
		Object: json.RawMessage(`{"addr":"10.0.1.3","port":53,"weight":2}`)}.Apply)
	if err != nil {
		t.Fatal(err)
	}
	res, err = Update(path, nil, res.Revision, Edit{Op: "delete", Kind: "virtual_server", Index: 0}.Apply)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(path)
	if strings.Contains(string(got), "10.0.0.1") || !strings.Contains(string(got), "real_server 10.0.1.3 53") ||
		!strings.Contains(string(got), "router_id lb1   # this host") {
		t.Errorf("after add and delete:\n%s", got)
	}
	if n := len(res.Config.VirtualServers); n != 1 || len(res.Config.VirtualServers[0].RealServers) != 2 {
		t.Errorf("loaded back %d services", n)
	}

	// a new service appended at the end of the main file
	res, err = Update(path, nil, res.Revision, Edit{Op: "add", Kind: "virtual_server",
		Object: json.RawMessage(`{"addr":"10.0.0.9","ports":[{"from":443,"to":443}],"protocol":["TCP"],"lvs_sched":"sh","lvs_method":"NAT","quorum":1,"real_servers":[{"addr":"10.0.1.9","weight":1}]}`)}.Apply)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(path)
	if !strings.Contains(string(got), "virtual_server 10.0.0.9 443 {") {
		t.Errorf("added service missing:\n%s", got)
	}
}

// A file written by someone else between the read and the write is not
// overwritten.
func TestUpdateConcurrentWriter(t *testing.T) {
	path := writeConf(t, updateConf)
	_, err := Update(path, nil, "", func(c *Config) error {
		c.VirtualServers[0].Scheduler = "lc"
		return os.WriteFile(path, []byte(updateConf+"\n# hand edit\n"), 0o640)
	})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("err %v, want ErrConflict", err)
	}
	if got, _ := os.ReadFile(path); !strings.HasSuffix(string(got), "# hand edit\n") {
		t.Error("the other writer's text was overwritten")
	}
}

func TestWebKeywords(t *testing.T) {
	const hash = `"$2a$04$TApAnaXQin8wZfUdWbq37.8XGhn1IkIaAcVvFqwQPS4JFq7BPDoyq"`
	for _, c := range []struct{ body, want string }{
		{"govs_web_listen :3636\n    govs_web_password " + hash, ""},
		{"govs_web_listen :3636", "govs_web_listen is set but govs_web_password is not"},
		{"govs_web_listen 3636\n    govs_web_password " + hash, `govs_web_listen "3636": want HOST:PORT`},
		{"govs_web_password secret", "govs_web_password: not a bcrypt hash"},
		{"govs_web_allow 10.0.0.0/8 bogus", `govs_web_allow "bogus": not an address or prefix`},
		// a warning: the web UI does not start with it, the rest does
		{"govs_web_tls /nonexistent/cert.pem /nonexistent/key.pem", "warning: govs_web_tls: open /nonexistent/cert.pem"},
		{"govs_config_sync_peer 10.0.0.2:3637 10.0.0.3:3637\n    govs_config_sync_listen 10.0.0.1:3637\n    govs_config_sync_secret \"sixteen-chars-at-least\"", ""},
		{"govs_config_sync_peer 10.0.0.2:3637\n    govs_config_sync_secret short", "needs a secret of at least 16 characters"},
		{"govs_config_sync_peer 10.0.0.2\n    govs_config_sync_secret \"sixteen-chars-at-least\"", `govs_config_sync: "10.0.0.2": want HOST:PORT`},
		{"govs_config_sync_secret \"sixteen-chars-at-least\"", "the configuration sync does nothing"},
	} {
		cfg, ds := LoadBytes("t.conf", []byte("global_defs {\n    "+c.body+"\n}\n"), nil)
		got := diagStrings(ds)
		if c.want == "" && len(ds) != 0 || c.want != "" && !strings.Contains(got, c.want) {
			t.Errorf("%q: diagnostics %q, want %q", c.body, got, c.want)
		}
		if c.want == "" || strings.HasPrefix(c.body, "govs_web_tls") || strings.HasPrefix(c.body, "govs_config_sync_peer 10.0.0.2:") {
			// the writer renders what was read
			again, ds2 := Parse("t2.conf", Format(cfg), nil)
			if Format(again) == nil || !bytes.Equal(Format(again), Format(cfg)) || len(ds2) != 0 {
				t.Errorf("%q: round trip:\n%s", c.body, Format(cfg))
			}
		}
	}
}

// A changed block keeps the text of its statements that still hold:
// comments, keyword spellings (lb_algo) and indentation (tabs here); only
// the changed statement is written anew, in its place.
func TestUpdateKeepsStatements(t *testing.T) {
	const text = "virtual_server 10.0.0.1 80 {\n" +
		"\tlb_algo rr   # round robin on purpose\n" +
		"\t# the web servers\n" +
		"\treal_server 10.0.1.1 80 {\n\t\tweight 1\n\t}\n" +
		"\treal_server 10.0.1.2 80 {   # the big one\n\t\tweight 3\n\t}\n" +
		"\tlb_kind NAT\n" +
		"}\n"
	path := writeConf(t, text)
	cfg, _ := Load(path, nil)
	rs := *cfg.VirtualServers[0].RealServers[0]
	rs.Weight = 2
	if _, err := Update(path, nil, cfg.Revision(), Edit{Op: "set", Kind: "real_server", Index: 0, Object: mustJSON(t, &rs)}.Apply); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := strings.Replace(text, "\t\tweight 1\n", "\t\tweight 2\n", 1)
	if string(got) != want {
		t.Errorf("after a weight change:\n%s\nwant:\n%s", got, want)
	}
	// a deleted server takes its lines with it; an added one goes after
	// the last real server; a changed scheduler takes lb_algo's place
	cfg, _ = Load(path, nil)
	vs := *cfg.VirtualServers[0]
	vs.Scheduler = "wlc"
	vs.RealServers = []*RealServer{vs.RealServers[1], {Addr: netip.MustParseAddr("10.0.1.3"), Port: 80, Weight: 1}}
	if _, err := Update(path, nil, cfg.Revision(), Edit{Op: "set", Kind: "virtual_server", Object: mustJSON(t, &vs)}.Apply); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(path)
	want = "virtual_server 10.0.0.1 80 {\n" +
		"\tlvs_sched wlc\n" +
		"\t# the web servers\n" +
		"\treal_server 10.0.1.2 80 {   # the big one\n\t\tweight 3\n\t}\n" +
		"\treal_server 10.0.1.3 80 {\n\t\tweight 1\n\t}\n" +
		"\tlb_kind NAT\n" +
		"}\n"
	if string(got) != want {
		t.Errorf("after delete, add and a new scheduler:\n%s\nwant:\n%s", got, want)
	}
}

// In the test configurations, a real server's weight changed through the
// UI's path changes nothing outside that real_server block.
func TestUpdateWeightTouchesOnlyItsBlock(t *testing.T) {
	dir := copyTestdata(t)
	confs, _ := filepath.Glob(filepath.Join(dir, "*.conf"))
	edits, refused := 0, 0
	for _, path := range confs {
		cfg, ds := Load(path, nil)
		if ds.HasErrors() {
			t.Fatal(ds.Err())
		}
		for i, vs := range cfg.VirtualServers {
			for j := range vs.RealServers {
				cfg, _ := Load(path, nil)
				before := readAll(t, dir)
				rs := cfg.VirtualServers[i].RealServers[j]
				n := *rs
				n.Weight++
				res, err := Update(path, nil, cfg.Revision(), Edit{Op: "set", Kind: "real_server", VS: i, Index: j, Object: mustJSON(t, &n)}.Apply)
				if err != nil && strings.Contains(err.Error(), "uses variables") {
					// refused: rendering it would replace the variables
					if after := readAll(t, dir); !equalFiles(before, after) {
						t.Errorf("%s: refused edit wrote", rs.Pos)
					}
					refused++
					continue
				}
				if err != nil {
					t.Fatalf("%s: real server %s: %v", filepath.Base(path), rs.Addr, err)
				}
				if len(res.Files) != 1 || res.Files[0] != rs.Pos.File {
					t.Fatalf("%s: wrote %v", rs.Pos, res.Files)
				}
				// the block's lines, from its first to its closing brace
				var node *Node
				for _, f := range cfg.src.files {
					for _, it := range f.items {
						if node == nil {
							node = findNode(it.node, rs.Pos, "real_server")
						}
					}
				}
				if node == nil {
					t.Fatalf("%s: block not found", rs.Pos)
				}
				old := before[rs.Pos.File]
				blockLines := bytes.Count(old[node.start:node.end], []byte("\n")) + 1
				after, _ := os.ReadFile(rs.Pos.File)
				gone := map[string]int{}
				for _, l := range strings.Split(string(old), "\n") {
					gone[l]++
				}
				for _, l := range strings.Split(string(after), "\n") {
					gone[l]--
				}
				lost := 0
				for _, c := range gone {
					if c > 0 {
						lost += c
					}
				}
				if w := res.Config.VirtualServers[i].RealServers[j].Weight; w != n.Weight {
					t.Errorf("%s: weight %d read back, want %d", rs.Pos, w, n.Weight)
				}
				if lost > blockLines {
					t.Errorf("%s: weight change lost %d lines (the block has %d):\n%s", rs.Pos, lost, blockLines, after)
				}
				edits++
			}
		}
	}
	if edits < 5 || refused == 0 {
		t.Fatalf("%d real servers edited, %d refused (a block with variables); want at least 5 and 1", edits, refused)
	}
}

// What the review of the UI's write path found: each is refused with a
// reason, or written as the operator means it.
func TestUpdateHardCases(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	secret := write("secret.txt", "TOPSECRET\n")
	load := func(p string) *Config {
		cfg, ds := Load(p, &ParseOptions{ConfigID: "lb1"})
		if ds.HasErrors() {
			t.Fatal(ds.Err())
		}
		return cfg
	}
	opts := &ParseOptions{ConfigID: "lb1"}
	vsEdit := func(cfg *Config, i int, f func(*VirtualServer)) Edit {
		vs := *cfg.VirtualServers[i]
		f(&vs)
		return Edit{Op: "set", Kind: "virtual_server", Index: i, Object: mustJSON(t, &vs)}
	}

	// text that would end the statement, or open another
	main := write("inject.conf", "virtual_server 10.0.0.1 80 {\n    real_server 10.0.1.1 80 {\n    }\n}\n")
	cfg := load(main)
	for _, bad := range []func(*VirtualServer){
		func(vs *VirtualServer) { vs.Name = "x\ninclude " + secret },
		func(vs *VirtualServer) { vs.Method = Method("NAT } include " + secret + " {") },
		func(vs *VirtualServer) { vs.SchedFlags = []string{"flag-1 } include " + secret} },
	} {
		_, err := Update(main, opts, cfg.Revision(), vsEdit(cfg, 0, bad).Apply)
		if err == nil || strings.Contains(err.Error(), "TOPSECRET") {
			t.Errorf("injection: err %v", err)
		}
		var inv *InvalidError
		if errors.As(err, &inv) && strings.Contains(inv.Problems.Err().Error(), "TOPSECRET") {
			t.Errorf("injection read the file: %v", inv.Problems.Err())
		}
	}

	// a new file matching an include pattern between the read and the
	// write; an include two levels down; a file included on an @ID line
	write("conf.d/a.conf", "virtual_server 10.0.0.2 80 {\n    real_server 10.0.1.2 80 {\n        include ../checks.inc\n    }\n}\n")
	write("checks.inc", "TCP_CHECK {\n}\n")
	write("lb1.conf", "virtual_server 10.0.0.3 80 {\n    real_server 10.0.1.3 80 {\n    }\n}\n")
	main = write("main.conf", "include conf.d/*.conf\n@lb1 include lb1.conf\nvirtual_server 10.0.0.4 80 {\n    real_server 10.0.1.4 80 {\n    }\n}\n")
	cfg = load(main)
	_, err := Update(main, opts, cfg.Revision(), func(c *Config) error {
		write("conf.d/b.conf", "virtual_server 10.0.0.5 80 {\n}\n")
		c.VirtualServers[2].Scheduler = "rr"
		return nil
	})
	var inv *InvalidError
	if !errors.As(err, &inv) || !strings.Contains(inv.Problems.Err().Error(), "conf.d/b.conf was not part of the configuration") {
		t.Errorf("new included file: err %v", err)
	}
	os.Remove(filepath.Join(dir, "conf.d/b.conf"))
	for i, want := range map[int]string{0: "include", 1: "conditional"} {
		_, err := Update(main, opts, cfg.Revision(), vsEdit(cfg, i, func(vs *VirtualServer) { vs.Scheduler = "rr" }).Apply)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("virtual server %d: err %v, want %q", i, err, want)
		}
	}
	if _, err := Update(main, opts, cfg.Revision(), vsEdit(cfg, 2, func(vs *VirtualServer) { vs.Scheduler = "rr" }).Apply); err != nil {
		t.Errorf("the plain service: %v", err)
	}

	// statements that render nothing of their own (nat_mask, preempt)
	// stay unless their keyword is said anew; explicit defaults stay
	// while they hold
	vrrp := write("vrrp.conf", "vrrp_instance VI {\n    state BACKUP\n    interface eth0\n    preempt\n    priority 100   # same on both\n    advert_int 1\n    virtual_router_id 7\n    virtual_ipaddress {\n        192.0.2.1/24\n    }\n}\nvirtual_server 10.0.0.1 80 {\n    nat_mask 255.255.255.0   # for keepalived 1.x\n    quorum 1\n    real_server 10.0.1.1 80 {\n    }\n}\n")
	cfg = load(vrrp)
	vi := *cfg.VRRPInstances[0]
	vi.Interface = "eth1"
	res, err := Update(vrrp, opts, cfg.Revision(), Edit{Op: "set", Kind: "vrrp_instance", Object: mustJSON(t, &vi)}.Apply)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(vrrp)
	if !strings.Contains(string(got), "    interface eth1\n    preempt\n    priority 100   # same on both\n    advert_int 1\n") {
		t.Errorf("interface change:\n%s", got)
	}
	vi = *res.Config.VRRPInstances[0]
	vi.NoPreempt = true
	res, err = Update(vrrp, opts, res.Revision, Edit{Op: "set", Kind: "vrrp_instance", Object: mustJSON(t, &vi)}.Apply)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(vrrp)
	if strings.Contains(string(got), "    preempt\n") || !strings.Contains(string(got), "    nopreempt\n    priority 100   # same on both\n") {
		t.Errorf("nopreempt:\n%s", got)
	}
	res, err = Update(vrrp, opts, res.Revision, vsEdit(res.Config, 0, func(vs *VirtualServer) { vs.Quorum = 2 }).Apply)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(vrrp)
	if !strings.Contains(string(got), "    nat_mask 255.255.255.0   # for keepalived 1.x\n    quorum 2\n") || strings.Contains(string(got), "quorum 1") {
		t.Errorf("quorum:\n%s", got)
	}

	// a real server added without a weight gets keepalived's 1
	res, err = Update(vrrp, opts, res.Revision, Edit{Op: "add", Kind: "real_server", Object: json.RawMessage(`{"addr":"10.0.1.9","port":80}`)}.Apply)
	if err != nil {
		t.Fatal(err)
	}
	if w := res.Config.VirtualServers[0].RealServers[1].Weight; w != 1 {
		t.Errorf("added real server's weight %d", w)
	}

	// a symbolic link stays one; CRLF files get CRLF lines
	real := write("avail/web.conf", "virtual_server 10.0.0.1 80 {\r\n    lb_algo rr\r\n    real_server 10.0.1.1 80 {\r\n    }\r\n}\r\n")
	link := filepath.Join(dir, "web.conf")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	cfg = load(link)
	if _, err := Update(link, opts, cfg.Revision(), vsEdit(cfg, 0, func(vs *VirtualServer) { vs.Name = "web" }).Apply); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", fi.Mode(), err)
	}
	got, _ = os.ReadFile(real)
	if !strings.Contains(string(got), "    snmp_name web\r\n") || strings.Contains(strings.ReplaceAll(string(got), "\r\n", ""), "\n") {
		t.Errorf("CRLF file after the edit: %q", got)
	}
}

// The second review's cases.
func TestUpdateHardCases2(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	load := func(p string) *Config {
		cfg, ds := Load(p, nil)
		if ds.HasErrors() {
			t.Fatal(ds.Err())
		}
		return cfg
	}
	// an empty list of real servers, as the UI's new service sends it;
	// the last real server deleted
	p := write("a.conf", "virtual_server 10.0.0.1 80 {\n    real_server 10.0.1.1 80 {\n    }\n}\n")
	cfg := load(p)
	res, err := Update(p, nil, cfg.Revision(), Edit{Op: "add", Kind: "virtual_server",
		Object: json.RawMessage(`{"addr":"10.0.0.9","ports":[{"from":443,"to":443}],"protocol":["TCP"],"lvs_sched":"wlc","lvs_method":"NAT","quorum":1,"real_servers":[]}`)}.Apply)
	if err != nil {
		t.Fatalf("add with no real servers: %v", err)
	}
	if _, err := Update(p, nil, res.Revision, Edit{Op: "delete", Kind: "real_server", VS: 0, Index: 0}.Apply); err != nil {
		t.Fatalf("delete of the last real server: %v", err)
	}

	// a $ that is no variable does not freeze the block
	p = write("b.conf", "virtual_server 10.0.0.1 80 {\n    real_server 10.0.1.1 80 {\n        HTTP_GET {\n            url {\n                path /health\n                regex ^OK$\n            }\n        }\n    }\n}\n")
	cfg = load(p)
	rs := *cfg.VirtualServers[0].RealServers[0]
	rs.Weight = 3
	if _, err := Update(p, nil, cfg.Revision(), Edit{Op: "set", Kind: "real_server", Object: mustJSON(t, &rs)}.Apply); err != nil {
		t.Errorf("a block with a literal $: %v", err)
	}

	// a variable in a second global_defs block: refused
	write("host.conf", "$SYNCIF=eth1\n")
	write("sync.conf", "global_defs {\n    default_interface $SYNCIF\n}\n")
	p = write("c.conf", "include host.conf\nglobal_defs {\n    router_id lb1\n}\ninclude sync.conf\n")
	cfg = load(p)
	g := cfg.Global
	g.RouterID = "lb9"
	if _, err := Update(p, nil, cfg.Revision(), Edit{Op: "set", Kind: "global_defs", Object: mustJSON(t, &g)}.Apply); err == nil || !strings.Contains(err.Error(), "uses variables") {
		t.Errorf("global_defs with a variable in another block: %v", err)
	}

	// lvs_sync_daemon_interface stays in its instance; global_defs is
	// not rewritten by an instance's edit
	const gd = "global_defs {\n    router_id lb1   # keep me\n}\n"
	p = write("d.conf", gd+"vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 7\n    priority 100\n    lvs_sync_daemon_interface eth1   # the LAN\n    virtual_ipaddress {\n        192.0.2.1/24\n    }\n}\n")
	cfg = load(p)
	vi := *cfg.VRRPInstances[0]
	vi.Priority = 150
	if _, err := Update(p, nil, cfg.Revision(), Edit{Op: "set", Kind: "vrrp_instance", Object: mustJSON(t, &vi)}.Apply); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	if !strings.HasPrefix(string(got), gd) || !strings.Contains(string(got), "lvs_sync_daemon_interface eth1   # the LAN") || strings.Count(string(got), "lvs_sync_daemon") != 1 {
		t.Errorf("instance edit with lvs_sync_daemon_interface:\n%s", got)
	}

	// a block rendered whole (its header changed) keeps CRLF line ends
	p = write("e.conf", "virtual_server 10.0.0.1 80 {\r\n    real_server 10.0.1.1 80 {\r\n    }\r\n}\r\n")
	cfg = load(p)
	vs := *cfg.VirtualServers[0]
	vs.Ports = []PortRange{{81, 81}}
	vs.RealServers = []*RealServer{{Addr: vs.RealServers[0].Addr, Port: 81, Weight: 1}}
	if _, err := Update(p, nil, cfg.Revision(), Edit{Op: "set", Kind: "virtual_server", Object: mustJSON(t, &vs)}.Apply); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(p)
	if !strings.Contains(string(got), "virtual_server 10.0.0.1 81 {\r\n") || strings.Contains(strings.ReplaceAll(string(got), "\r\n", ""), "\n") {
		t.Errorf("CRLF after a whole rendering: %q", got)
	}

	// WriteFileAtomic (track files) replaces a symbolic link, never
	// writes through it
	victim := write("victim", "secret\n")
	link := filepath.Join(dir, "track")
	os.Symlink(victim, link)
	if err := WriteFileAtomic(link, []byte("0\n")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "secret\n" {
		t.Errorf("WriteFileAtomic wrote through a symbolic link: victim %q", b)
	}
}

// The web UI's other kinds: a vrrp_script added goes before the instance
// that will track it (keepalived looks it up as it reads the track line),
// with its comment left above the instance; a renamed script, instance or
// virtual_server_group is followed by what names it; a deleted one still
// named is refused, the file left as it was.
func TestUpdateScriptsGroups(t *testing.T) {
	const text = "global_defs {\n    router_id lb1\n}\n\n# the web pair\nvrrp_instance VI {\n    interface eth0\n    virtual_router_id 5\n    priority 100\n    virtual_ipaddress {\n        10.0.0.100/24\n    }\n}\n\n" +
		"virtual_server 10.0.0.100 80 {\n    lb_kind DR\n    real_server 10.0.1.1 80 {\n    }\n}\n"
	path := writeConf(t, text)
	cfg, ds := Load(path, nil)
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	step := func(what string, e Edit) {
		t.Helper()
		res, err := Update(path, nil, cfg.Revision(), e.Apply)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		// no warning either (a script defined after its tracker is one)
		if _, ds := Load(path, nil); len(ds) != 0 {
			t.Errorf("%s: diagnostics %s", what, diagStrings(ds))
		}
		cfg = res.Config
	}
	file := func() string { b, _ := os.ReadFile(path); return string(b) }
	refused := func(what string, e Edit, want string) {
		t.Helper()
		before := file()
		_, err := Update(path, nil, cfg.Revision(), e.Apply)
		if err == nil || !strings.Contains(err.Error()+problemText(err), want) {
			t.Errorf("%s: err %v, want %q", what, err, want)
		}
		if file() != before {
			t.Errorf("%s: the refused edit changed the file", what)
		}
	}

	step("add script", Edit{Op: "add", Kind: "vrrp_script", Object: json.RawMessage(`{"name":"chk_a","script":"/bin/true","interval":"2s","weight":-20}`)})
	got := file()
	if !strings.Contains(got, "router_id lb1\n}\n\nvrrp_script chk_a {\n    script /bin/true\n    interval 2\n    weight -20\n}\n\n# the web pair\nvrrp_instance VI {") {
		t.Fatalf("new script not before the instance and its comment:\n%s", got)
	}
	step("second script", Edit{Op: "add", Kind: "vrrp_script", Object: json.RawMessage(`{"name":"chk_b","script":"/bin/false","interval":"1s"}`)})
	if got := file(); !strings.Contains(got, "}\n\nvrrp_script chk_b {\n    script /bin/false\n    interval 1\n}\n\n# the web pair\n") ||
		strings.Index(got, "chk_a {") > strings.Index(got, "chk_b {") {
		t.Fatalf("second script not after the first:\n%s", got)
	}
	vi := *cfg.VRRPInstances[0]
	vi.TrackScripts = []Track{{Name: "chk_a"}, {Name: "chk_b", Weight: 10, HasWeight: true}}
	step("track them", Edit{Op: "set", Kind: "vrrp_instance", Index: 0, Object: mustJSON(t, &vi)})

	s := *cfg.VRRPScripts[0]
	s.Name = "chk_web"
	step("rename script", Edit{Op: "set", Kind: "vrrp_script", Index: 0, Object: mustJSON(t, &s)})
	if ts := cfg.VRRPInstances[0].TrackScripts; len(ts) != 2 || ts[0].Name != "chk_web" || ts[1].Name != "chk_b" || ts[1].Weight != 10 {
		t.Errorf("track_script after the rename: %+v", ts)
	}
	refused("delete a tracked script", Edit{Op: "delete", Kind: "vrrp_script", Index: 0}, `track_script "chk_web" is not a defined vrrp_script`)

	step("add sync group", Edit{Op: "add", Kind: "vrrp_sync_group", Object: json.RawMessage(`{"name":"G","group":["VI"],"notify":{},"sync_group_tracking_weight":true}`)})
	if got := file(); strings.Index(got, "vrrp_sync_group G {") > strings.Index(got, "vrrp_instance VI {") ||
		strings.Index(got, "vrrp_sync_group G {") < strings.Index(got, "vrrp_script chk_b {") {
		t.Errorf("sync group not between the scripts and the instance:\n%s", got)
	}
	vi = *cfg.VRRPInstances[0]
	vi.Name = "VI_1"
	step("rename instance", Edit{Op: "set", Kind: "vrrp_instance", Index: 0, Object: mustJSON(t, &vi)})
	if g := cfg.SyncGroups[0].Group; len(g) != 1 || g[0] != "VI_1" {
		t.Errorf("sync group members after the rename: %v", g)
	}
	// a new header: its line alone is written anew
	if got := file(); !strings.Contains(got, "# the web pair\nvrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 5\n    priority 100\n    virtual_ipaddress {") {
		t.Errorf("renamed instance not kept as written:\n%s", got)
	}
	refused("sync group of an unknown instance", Edit{Op: "set", Kind: "vrrp_sync_group", Index: 0,
		Object: json.RawMessage(`{"name":"G","group":["VI_1","nope"],"notify":{},"sync_group_tracking_weight":true}`)}, `unknown vrrp_instance "nope"`)

	step("add group", Edit{Op: "add", Kind: "virtual_server_group", Object: json.RawMessage(`{"name":"web","entries":[{"first":"10.0.0.100","last":"10.0.0.101","port":80}]}`)})
	if got := file(); strings.Index(got, "virtual_server_group web {") > strings.Index(got, "virtual_server 10.0.0.100 80 {") {
		t.Errorf("group not before the virtual server:\n%s", got)
	}
	vs := *cfg.VirtualServers[0]
	vs.Addr, vs.Ports, vs.Group = netip.Addr{}, nil, "web"
	step("use group", Edit{Op: "set", Kind: "virtual_server", Index: 0, Object: mustJSON(t, &vs)})
	if got := file(); !strings.Contains(got, "virtual_server group web {\n    lb_kind DR\n    real_server 10.0.1.1 80 {\n    }\n}\n") {
		t.Errorf("virtual server's statements not kept under its new header:\n%s", got)
	}
	g := *cfg.VirtualServerGroups[0]
	g.Name = "www"
	step("rename group", Edit{Op: "set", Kind: "virtual_server_group", Index: 0, Object: mustJSON(t, &g)})
	if cfg.VirtualServers[0].Group != "www" || !strings.Contains(file(), "virtual_server group www {") {
		t.Errorf("virtual server after the group's rename:\n%s", file())
	}
	refused("delete a used group", Edit{Op: "delete", Kind: "virtual_server_group", Index: 0}, `unknown virtual_server_group "www"`)
	refused("unknown kind", Edit{Op: "add", Kind: "track_group", Object: json.RawMessage(`{}`)}, "want global_defs, vrrp_script")
}

func problemText(err error) string {
	var inv *InvalidError
	if errors.As(err, &inv) {
		return inv.Problems.Err().Error()
	}
	return ""
}

// Where a new block goes in files a review found hard: before a block of
// conditional (@ID) lines (not taking its mark), after the include line
// that brought the last of its kind, and before instances an include
// above global_defs brings. A renamed block keeps the comment after its
// brace. The web UI's other checks: names, a group entry without last.
func TestUpdatePlacementHard(t *testing.T) {
	loadNoDiag := func(t *testing.T, path, id string) {
		t.Helper()
		if _, ds := Load(path, &ParseOptions{ConfigID: id}); len(ds) != 0 {
			t.Errorf("as %q: %s\n%s", id, diagStrings(ds), mustRead(t, path))
		}
	}
	script := Edit{Op: "add", Kind: "vrrp_script", Object: json.RawMessage(`{"name":"chk_a","script":"/bin/true","interval":"1s"}`)}
	track := func(t *testing.T, path string, opts *ParseOptions) {
		t.Helper()
		cfg, _ := Load(path, opts)
		vi := *cfg.VRRPInstances[0]
		vi.TrackScripts = append(vi.TrackScripts, Track{Name: "chk_a"})
		if _, err := Update(path, opts, cfg.Revision(), Edit{Op: "set", Kind: "vrrp_instance", Index: 0, Object: mustJSON(t, &vi)}.Apply); err != nil {
			t.Fatal(err)
		}
	}
	const inst = "vrrp_instance VI {\n    interface eth0\n    virtual_router_id 5\n    priority 100\n    advert_int 1\n    virtual_ipaddress {\n        10.0.0.100/24\n    }\n}\n"

	t.Run("conditional block", func(t *testing.T) {
		lines := strings.Split(strings.TrimSuffix(inst, "\n"), "\n")
		text := "@lb1 " + strings.Join(lines, "\n@lb1 ") + "\n@lb2 " + strings.Join(lines, "\n@lb2 ") + "\n"
		path := writeConf(t, text)
		opts := &ParseOptions{ConfigID: "lb1"}
		cfg, _ := Load(path, opts)
		if _, err := Update(path, opts, cfg.Revision(), script.Apply); err != nil {
			t.Fatal(err)
		}
		if got := mustRead(t, path); !strings.HasPrefix(got, "vrrp_script chk_a {\n    script /bin/true\n    interval 1\n}\n\n@lb1 vrrp_instance VI {\n") {
			t.Errorf("new script not before the conditional block, on lines of its own:\n%s", got)
		}
		loadNoDiag(t, path, "lb1")
		loadNoDiag(t, path, "lb2")
	})
	t.Run("after the include of its kind", func(t *testing.T) {
		path := writeConf(t, "include s.conf\n"+inst)
		os.WriteFile(filepath.Join(filepath.Dir(path), "s.conf"), []byte("vrrp_script chk_z {\n    script /bin/true\n}\n"), 0o644)
		cfg, _ := Load(path, nil)
		if _, err := Update(path, nil, cfg.Revision(), script.Apply); err != nil {
			t.Fatal(err)
		}
		track(t, path, nil)
		if got := mustRead(t, path); !strings.HasPrefix(got, "include s.conf\n\nvrrp_script chk_a {") {
			t.Errorf("new script not right after the include of the scripts:\n%s", got)
		}
		loadNoDiag(t, path, "")
	})
	t.Run("before instances included above global_defs", func(t *testing.T) {
		path := writeConf(t, "include i.conf\n\n# the globals\nglobal_defs {\n    router_id lb1\n}\n")
		os.WriteFile(filepath.Join(filepath.Dir(path), "i.conf"), []byte(inst), 0o644)
		cfg, _ := Load(path, nil)
		if _, err := Update(path, nil, cfg.Revision(), script.Apply); err != nil {
			t.Fatal(err)
		}
		if got := mustRead(t, path); !strings.HasPrefix(got, "vrrp_script chk_a {") {
			t.Errorf("new script not before the include of the instances:\n%s", got)
		}
		// the instance is in the included file: tracking it there
		// writes that file
		track(t, path, nil)
		loadNoDiag(t, path, "")
	})
	t.Run("renamed header keeps its comment", func(t *testing.T) {
		path := writeConf(t, strings.Replace(inst, "VI {", "VI { # the web pair", 1))
		cfg, _ := Load(path, nil)
		vi := *cfg.VRRPInstances[0]
		vi.Name = "VI_web"
		if _, err := Update(path, nil, cfg.Revision(), Edit{Op: "set", Kind: "vrrp_instance", Index: 0, Object: mustJSON(t, &vi)}.Apply); err != nil {
			t.Fatal(err)
		}
		if got, want := mustRead(t, path), strings.Replace(inst, "VI {", "VI_web { # the web pair", 1); got != want {
			t.Errorf("got\n%s\nwant\n%s", got, want)
		}
	})
	t.Run("names and entries", func(t *testing.T) {
		path := writeConf(t, "vrrp_script chk {\n    script /bin/true\n}\n"+inst+"virtual_server_group g {\n    10.0.0.1 80\n}\n")
		cfg, _ := Load(path, nil)
		before := mustRead(t, path)
		for _, c := range []struct {
			e    Edit
			want string
		}{
			{Edit{Op: "add", Kind: "vrrp_script", Object: json.RawMessage(`{"name":"","script":"/bin/true"}`)}, "vrrp_script: a name is required"},
			{Edit{Op: "add", Kind: "vrrp_script", Object: json.RawMessage(`{"name":"chk","script":"/bin/true"}`)}, `vrrp_script "chk": the configuration has one of that name already`},
			{Edit{Op: "add", Kind: "vrrp_sync_group", Object: json.RawMessage(`{}`)}, "vrrp_sync_group: a name is required"},
			{Edit{Op: "add", Kind: "virtual_server_group", Object: json.RawMessage(`{"name":"h","entries":[{"first":"10.0.0.9","last":"10.0.0.2","port":80}]}`)}, "is not a range"},
			{Edit{Op: "add", Kind: "virtual_server_group", Object: json.RawMessage(`{"name":"h","entries":[{"first":"10.0.0.9","last":"2001:db8::1","port":80}]}`)}, "is not a range"},
			{Edit{Op: "add", Kind: "virtual_server_group", Object: json.RawMessage(`{"name":"h","entries":[{"port":80}]}`)}, "no address and no fwmark"},
		} {
			_, err := Update(path, nil, cfg.Revision(), c.e.Apply)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: err %v, want %q", c.e.Object, err, c.want)
			}
			if got := mustRead(t, path); got != before {
				t.Errorf("%s: the refused edit wrote the file", c.e.Object)
			}
		}
		// a script's user and group: words of their own
		if _, err := Update(path, nil, cfg.Revision(), Edit{Op: "add", Kind: "vrrp_script",
			Object: json.RawMessage(`{"name":"u","script":"/bin/true","interval":"1s","user":"nobody nogroup"}`)}.Apply); err != nil {
			t.Fatal(err)
		}
		if got := mustRead(t, path); !strings.Contains(got, "}\n\nvrrp_script u {\n    script /bin/true\n    user nobody nogroup\n    interval 1\n}\n\nvrrp_instance VI {") {
			t.Errorf("script with a user:\n%s", got)
		}
		cfg, _ = Load(path, nil)
		// an entry without last is one address (the API may send it)
		if _, err := Update(path, nil, cfg.Revision(), Edit{Op: "add", Kind: "virtual_server_group",
			Object: json.RawMessage(`{"name":"h","entries":[{"first":"10.0.0.9","port":80}]}`)}.Apply); err != nil {
			t.Fatal(err)
		}
		if got := mustRead(t, path); !strings.Contains(got, "virtual_server_group h {\n    10.0.0.9 80\n}\n") {
			t.Errorf("group of one address:\n%s", got)
		}
	})
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// vrrp_track_file and govs_snat_pool through edits: a renamed track file
// is followed by the instance's track_file line and the real server's
// FILE_CHECK; a renamed pool by the service; deleting one still used is
// refused.
func TestUpdateTrackFilePool(t *testing.T) {
	const text = "vrrp_track_file drain {\n    file /run/drain\n    weight 2\n}\n\n" +
		"vrrp_track_process web {\n    process nginx\n    weight 3\n}\n\n" +
		"bfd_instance gw {\n    neighbor_ip 10.0.0.254\n}\n\n" +
		"vrrp_instance VI {\n    interface eth0\n    virtual_router_id 5\n    priority 100\n    advert_int 1\n    track_file {\n        drain\n    }\n    track_process {\n        web\n    }\n    track_bfd {\n        gw\n    }\n    virtual_ipaddress {\n        10.0.0.100/24\n    }\n}\n\n" +
		"govs_snat_pool outside {\n    address 198.51.100.1-3\n    port_range 10000 60000\n}\n\n" +
		"virtual_server 10.0.0.100 80 {\n    lb_kind SNAT\n    snat_pool outside\n    real_server 10.0.1.1 80 {\n        FILE_CHECK {\n            track_file drain\n        }\n    }\n}\n"
	path := writeConf(t, text)
	cfg, ds := Load(path, nil)
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	tf := *cfg.VRRPTrackFiles[0]
	tf.Name = "maint"
	res, err := Update(path, nil, cfg.Revision(), Edit{Op: "set", Kind: "vrrp_track_file", Index: 0, Object: mustJSON(t, &tf)}.Apply)
	if err != nil {
		t.Fatal(err)
	}
	cfg = res.Config
	if got := cfg.VRRPInstances[0].TrackFiles; len(got) != 1 || got[0].Name != "maint" {
		t.Errorf("instance's track_file after the rename: %+v", got)
	}
	if got := cfg.VirtualServers[0].RealServers[0].Checks[0].TrackFile; got != "maint" {
		t.Errorf("FILE_CHECK's track_file after the rename: %q", got)
	}
	tp := *cfg.VRRPTrackProcesses[0]
	tp.Name = "nginx"
	res, err = Update(path, nil, cfg.Revision(), Edit{Op: "set", Kind: "vrrp_track_process", Index: 0, Object: mustJSON(t, &tp)}.Apply)
	if err != nil {
		t.Fatal(err)
	}
	cfg = res.Config
	if got := cfg.VRRPInstances[0].TrackProcs; len(got) != 1 || got[0].Name != "nginx" {
		t.Errorf("instance's track_process after the rename: %+v", got)
	}
	bi := *cfg.BFDInstances[0]
	bi.Name = "router"
	res, err = Update(path, nil, cfg.Revision(), Edit{Op: "set", Kind: "bfd_instance", Index: 0, Object: mustJSON(t, &bi)}.Apply)
	if err != nil {
		t.Fatal(err)
	}
	cfg = res.Config
	if got := cfg.VRRPInstances[0].TrackBFDs; len(got) != 1 || got[0].Name != "router" {
		t.Errorf("instance's track_bfd after the rename: %+v", got)
	}
	p := *cfg.SNATPools[0]
	p.Name = "out"
	res, err = Update(path, nil, cfg.Revision(), Edit{Op: "set", Kind: "govs_snat_pool", Index: 0, Object: mustJSON(t, &p)}.Apply)
	if err != nil {
		t.Fatal(err)
	}
	cfg = res.Config
	if cfg.VirtualServers[0].SNATPool != "out" {
		t.Errorf("service's pool after the rename: %q", cfg.VirtualServers[0].SNATPool)
	}
	got := mustRead(t, path)
	for _, want := range []string{"vrrp_track_file maint {\n    file /run/drain\n    weight 2\n}\n", "    track_file {\n        maint\n    }\n",
		"govs_snat_pool out {\n    address 198.51.100.1-3\n", "    snat_pool out\n", "            track_file maint\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("file lacks %q:\n%s", want, got)
		}
	}
	for _, kind := range []string{"vrrp_track_file", "govs_snat_pool"} {
		if _, err := Update(path, nil, cfg.Revision(), Edit{Op: "delete", Kind: kind, Index: 0}.Apply); err == nil {
			t.Errorf("deleting the used %s: no error", kind)
		}
	}
	if mustRead(t, path) != got {
		t.Error("a refused deletion wrote the file")
	}
}
