package config

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Regression tests for problems found in review.

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestSetRealServerWeightKeepsEverything(t *testing.T) {
	src := `# header
virtual_server 10.0.0.1 80 {
    lb_algo rr          # keep the alias
    # owner ops-team
    real_server 10.0.0.2 80 {
        weight 1  # rack 7
        BFD_CHECK {
            name x
        }
    }
    real_server 10.0.0.3 80 {
        TCP_CHECK {
        }
    }
}
`
	dir := writeTree(t, map[string]string{"govs.conf": src})
	p := filepath.Join(dir, "govs.conf")
	cfg, ds := ParseFile(p, nil)
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	files, err := cfg.SetRealServerWeight(cfg.VirtualServers[0].RealServers[0], 5)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(src, "weight 1  # rack 7", "weight 5  # rack 7", 1)
	if got := string(files[p]); got != want {
		t.Errorf("edit changed more than the weight:\n%s", got)
	}
	files, err = cfg.SetRealServerWeight(cfg.VirtualServers[0].RealServers[1], 0)
	if err != nil {
		t.Fatal(err)
	}
	cfg2, ds2 := Parse(p, files[p], nil)
	if ds2.HasErrors() || cfg2.VirtualServers[0].RealServers[1].Weight != 0 || cfg2.VirtualServers[0].RealServers[0].Weight != 1 {
		t.Errorf("inserted weight: %v\n%s", ds2.Err(), files[p])
	}
	if !strings.Contains(string(files[p]), "    real_server 10.0.0.3 80 {\n        weight 0\n        TCP_CHECK {") {
		t.Errorf("inserted weight line badly placed:\n%s", files[p])
	}
	// an edit made on disk since the load is not overwritten
	edited := src + "# added by hand\n"
	if err := os.WriteFile(p, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.SetRealServerWeight(cfg.VirtualServers[0].RealServers[0], 7); err == nil || !strings.Contains(err.Error(), "changed on disk") {
		t.Errorf("weight edit of a file changed on disk: err %v, want a refusal", err)
	}
	if got, _ := os.ReadFile(p); string(got) != edited {
		t.Errorf("file changed by a refused edit:\n%s", got)
	}
}

func TestIncludeInsideBlockNotDuplicated(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"govs.conf": "virtual_server 10.0.0.1 80 {\n    include rs.conf\n}\n",
		"rs.conf":   "real_server 10.0.0.2 80 {\n    weight 2\n}\n",
	})
	p := filepath.Join(dir, "govs.conf")
	cfg, ds := ParseFile(p, nil)
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	out, err := cfg.WriteFiles()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(out[p]), "virtual_server") != 1 {
		t.Errorf("block with include duplicated:\n%s", out[p])
	}
	// The weight lives in the included file: a surgical edit goes there.
	files, err := cfg.SetRealServerWeight(cfg.VirtualServers[0].RealServers[0], 7)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(files[filepath.Join(dir, "rs.conf")]); got != "real_server 10.0.0.2 80 {\n    weight 7\n}\n" {
		t.Errorf("included file edit: %q", got)
	}
	// Editing the block through the generic writer is refused.
	cfg.VirtualServers[0].Scheduler = "rr"
	if _, err := cfg.WriteFiles(); err == nil || !strings.Contains(err.Error(), "contains an include") {
		t.Errorf("edit of a block with an include: %v", err)
	}
}

func TestTwoGlobalDefsNotDuplicated(t *testing.T) {
	src := "global_defs {\n    notification_email {\n        a@x\n    }\n}\nglobal_defs {\n    router_id r1\n}\n"
	dir := writeTree(t, map[string]string{"govs.conf": src})
	p := filepath.Join(dir, "govs.conf")
	cfg, _ := ParseFile(p, nil)
	out, err := cfg.WriteFiles()
	if err != nil || string(out[p]) != src {
		t.Fatalf("unedited two global_defs: %v\n%s", err, out[p])
	}
	cfg.Global.RouterID = "r2"
	for i := 0; i < 3; i++ {
		out, err = cfg.WriteFiles()
		if err != nil {
			t.Fatal(err)
		}
		cfg2, _ := Parse(p, out[p], nil)
		if len(cfg2.Global.NotificationEmail) != 1 || cfg2.Global.RouterID != "r2" {
			t.Fatalf("round %d: %+v\n%s", i, cfg2.Global, out[p])
		}
		cfg = cfg2
	}
}

func TestMixedIndentationIsValid(t *testing.T) {
	src := "virtual_server 10.0.0.1 80 {\n        lb_algo rr\n\treal_server 10.0.0.2 80 {\n\t}\ninclude_none_here 1\n}\n"
	src = strings.Replace(src, "include_none_here 1\n", "", 1)
	_, ds := LoadBytes("t.conf", []byte(src), nil)
	if ds.HasErrors() {
		t.Errorf("balanced braces with odd indentation rejected:\n%s", diagStrings(ds))
	}
}

func TestVariableBombBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("$A=xx\n")
	for i := 0; i < 40; i++ {
		b.WriteString("$A=$A$A\n")
	}
	b.WriteString("global_defs {\n    router_id $A\n}\n")
	start := time.Now()
	_, ds := Parse("bomb.conf", []byte(b.String()), nil)
	if !ds.HasErrors() || !strings.Contains(ds.Error(), "variable expansion longer than") {
		t.Errorf("no expansion error:\n%s", diagStrings(ds))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("expansion took %v", d)
	}
}

func TestScriptUserAndDollar(t *testing.T) {
	cfg, ds := LoadBytes("t.conf", []byte(`global_defs {
    govs_web_password "$2a$04$TApAnaXQin8wZfUdWbq37.8XGhn1IkIaAcVvFqwQPS4JFq7BPDoyq"
}
vrrp_instance V {
    interface eth0
    virtual_router_id 1
    notify_master /etc/keepalived/master.sh keepalived_script
    notify_backup "/etc/keepalived/backup.sh arg" nobody nogroup
    virtual_ipaddress {
        192.0.2.1
    }
}
`), nil)
	// no diagnostic: no warning about the $ words, and the hash read
	// whole is a valid one
	if len(ds) != 0 {
		t.Fatalf("diagnostics:\n%s", diagStrings(ds))
	}
	if cfg.Global.Govs.WebPassword != "$2a$04$TApAnaXQin8wZfUdWbq37.8XGhn1IkIaAcVvFqwQPS4JFq7BPDoyq" {
		t.Errorf("password %q", cfg.Global.Govs.WebPassword)
	}
	m, bk := cfg.VRRPInstances[0].Notify.Master, cfg.VRRPInstances[0].Notify.Backup
	if m.Cmd != "/etc/keepalived/master.sh" || m.User != "keepalived_script" || bk.Cmd != "/etc/keepalived/backup.sh arg" || bk.User != "nobody nogroup" {
		t.Errorf("scripts %+v %+v", m, bk)
	}
}

func TestFwmarkDRPortAndDuplicates(t *testing.T) {
	_, ds := LoadBytes("t.conf", []byte("virtual_server fwmark 1 {\n    lb_kind DR\n    real_server 10.0.0.2 80 {\n        TCP_CHECK {\n        }\n    }\n}\n"), nil)
	if ds.HasErrors() {
		t.Errorf("fwmark DR with a check port rejected:\n%s", diagStrings(ds))
	}
	_, ds = LoadBytes("t.conf", []byte("virtual_server 10.0.0.1 80 {\n    real_server 10.0.0.2 {\n    }\n    real_server 10.0.0.2 80 {\n    }\n}\n"), nil)
	if !strings.Contains(diagStrings(ds), "listed twice") {
		t.Errorf("same real server (port defaulted) not reported:\n%s", diagStrings(ds))
	}
	_, ds = LoadBytes("t.conf", []byte("virtual_server_group G {\n    10.0.0.0/16 80\n}\nvirtual_server group G {\n}\n"), nil)
	if !strings.Contains(diagStrings(ds), "spans more than 4096 addresses") {
		t.Errorf("huge group range not reported:\n%s", diagStrings(ds))
	}
}

func TestDurationRoundTrip(t *testing.T) {
	cfg, _ := Parse("t.conf", []byte("vrrp_instance V {\n    advert_int 16.22\n}\n"), nil)
	if got := cfg.VRRPInstances[0].AdvertInt.D(); got != 16220*time.Millisecond {
		t.Errorf("advert_int 16.22 = %v", got)
	}
}

// TestVirtualRouteSrcFirst: "src IP PREFIX" (keepalived's order) takes
// the prefix as the destination, as "PREFIX src IP" and "src IP to
// PREFIX" do.
func TestVirtualRouteSrcFirst(t *testing.T) {
	for _, line := range []string{
		"src 10.0.0.1 192.0.2.0/24 via 10.0.0.254",
		"192.0.2.0/24 src 10.0.0.1 via 10.0.0.254",
		"src 10.0.0.1 to 192.0.2.0/24 via 10.0.0.254",
	} {
		src := "vrrp_instance V {\n    interface eth0\n    virtual_router_id 1\n    virtual_ipaddress {\n        10.0.0.100\n    }\n    virtual_routes {\n        " + line + "\n    }\n}\n"
		cfg, ds := LoadBytes("t.conf", []byte(src), nil)
		if ds.HasErrors() {
			t.Errorf("%q: %v", line, ds.Err())
			continue
		}
		r := cfg.VRRPInstances[0].Routes[0]
		if r.To != netip.MustParsePrefix("192.0.2.0/24") || r.Src != netip.MustParseAddr("10.0.0.1") || r.Via != netip.MustParseAddr("10.0.0.254") {
			t.Errorf("%q: route %+v", line, r)
		}
	}
}

// TestInitFileWords: init_file [VALUE] [overwrite], as keepalived takes
// it, and written back the same.
func TestInitFileWords(t *testing.T) {
	for line, want := range map[string]*InitFile{
		"init_file":              {},
		"init_file 5":            {Value: 5},
		"init_file overwrite":    {Overwrite: true},
		"init_file -3 overwrite": {Value: -3, Overwrite: true},
	} {
		src := "track_file tf {\n    file /run/tf\n    " + line + "\n}\n"
		cfg, ds := LoadBytes("t.conf", []byte(src), nil)
		if ds.HasErrors() {
			t.Errorf("%q: %v", line, ds.Err())
			continue
		}
		if got := cfg.VRRPTrackFiles[0].InitFile; got == nil || *got != *want {
			t.Errorf("%q: %+v, want %+v", line, got, want)
		}
	}
	if _, ds := LoadBytes("t.conf", []byte("track_file tf {\n    file /run/tf\n    init_file x\n}\n"), nil); !ds.HasErrors() || !strings.Contains(ds.Error(), "init_file") {
		t.Errorf("init_file x: %v", ds)
	}
}

// TestVirtualRouteTableNames: a virtual_routes table given by name is
// looked up as iproute2 does (built-in names, rt_tables, then
// rt_tables.d/*.conf, /etc over /usr/share); a number is taken as it
// is; a name found nowhere is an error at its word, not a route put in
// the main table.
func TestVirtualRouteTableNames(t *testing.T) {
	usr, etc := t.TempDir(), t.TempDir()
	write := func(path, text string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(usr, "rt_tables"), "255\tlocal\n254\tmain\n# 10 commented\n77 onlyusr\n")
	write(filepath.Join(usr, "rt_tables.d", "vendor.conf"), "300 vendor\n")
	write(filepath.Join(usr, "rt_tables.d", "lb.conf"), "199 lb\n198 gone\n")
	write(filepath.Join(etc, "rt_tables"), "100 isp1 # first uplink\n0x65\tisp2\nbad line\n")
	write(filepath.Join(etc, "rt_tables.d", "lb.conf"), "200 lb\n")
	write(filepath.Join(etc, "rt_tables.d", "more.conf"), "301 vendor\n")
	old := rtTablesDirs
	rtTablesDirs = []string{usr, etc}
	t.Cleanup(func() { rtTablesDirs = old })

	// /etc's rt_tables is read instead of /usr/share's (onlyusr is
	// not a name), /etc's lb.conf instead of /usr/share's (gone is not
	// either); the .d files in name order (vendor.conf, read after
	// more.conf, names vendor 300)
	for word, want := range map[string]int{"isp1": 100, "isp2": 101, "lb": 200, "vendor": 300, "main": 254, "local": 255, "42": 42, "0x10": 16} {
		src := "vrrp_instance V {\n    interface eth0\n    virtual_router_id 1\n    virtual_ipaddress {\n        10.0.0.100\n    }\n    virtual_routes {\n        192.0.2.0/24 via 10.0.0.254 table " + word + "\n    }\n}\n"
		cfg, ds := LoadBytes("t.conf", []byte(src), nil)
		if ds.HasErrors() {
			t.Errorf("table %s: %v", word, ds.Err())
			continue
		}
		if r := cfg.VRRPInstances[0].Routes[0]; r.TableID != want || r.Table != word {
			t.Errorf("table %s: got id %d (%q), want %d", word, r.TableID, r.Table, want)
		}
	}
	// FRR's rt_protos.d/frr.conf names 196 "static": the name still
	// stands for the lowest number, 4, as in iproute2
	write(filepath.Join(etc, "rt_protos.d", "frr.conf"), "186 bgp\n196 static\n197 frrstatic\n")
	for name, want := range map[string]int{"static": 4, "bgp": 186, "frrstatic": 197} {
		if id, ok := routeProto(name); !ok || id != want {
			t.Errorf("proto %s = %d (%v), want %d", name, id, ok, want)
		}
	}
	for _, name := range []string{"onlyusr", "gone"} {
		if _, ok := routeTable(name); ok {
			t.Errorf("table %q resolved from a file iproute2 does not read", name)
		}
	}
	src := "vrrp_instance V {\n    interface eth0\n    virtual_router_id 1\n    virtual_ipaddress {\n        10.0.0.100\n    }\n    virtual_routes {\n        192.0.2.0/24 via 10.0.0.254 table nosuch\n    }\n}\n"
	_, ds := LoadBytes("t.conf", []byte(src), nil)
	if !ds.HasErrors() {
		t.Fatal("an unknown table name was accepted")
	}
	if msg := ds.Err().Error(); !strings.Contains(msg, "t.conf:8") || !strings.Contains(msg, `"nosuch"`) {
		t.Errorf("error %q does not name the place and the table", msg)
	}
}

// TestParamMatchExactWarns: "param_match exact" (govs's first spelling)
// is taken as a bare param_match, with a warning.
func TestParamMatchExactWarns(t *testing.T) {
	src := "vrrp_track_process p {\n    process /usr/bin/x a\n    param_match exact\n}\n"
	cfg, ds := LoadBytes("t.conf", []byte(src), nil)
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	if p := cfg.VRRPTrackProcesses[0]; p.ParamMatch != "exact" || !strings.Contains(ds.Error(), "param_match exact is not keepalived's") {
		t.Errorf("param_match %q, diagnostics %v", p.ParamMatch, ds)
	}
}

// TestTrackProcessErrors: a vrrp_track_process block's mistakes, and a
// reference to one that is not defined, are errors at their place.
func TestTrackProcessErrors(t *testing.T) {
	inst := "vrrp_instance V {\n    interface eth0\n    virtual_router_id 1\n    virtual_ipaddress {\n        10.0.0.100\n    }\n    track_process {\n        %s\n    }\n}\n"
	for _, c := range []struct{ src, want string }{
		{"vrrp_track_process p {\n    weight 2\n}\n" + fmt.Sprintf(inst, "p"), `vrrp_track_process "p" has no process`},
		{"vrrp_track_process p {\n    process x\n    quorum 3\n    quorum_max 2\n}\n" + fmt.Sprintf(inst, "p"), "quorum_max 2 is less than quorum 3"},
		{"vrrp_track_process p {\n    process x y\n    param_match fuzzy\n}\n" + fmt.Sprintf(inst, "p"), `param_match must be initial or partial (or nothing, for all arguments exactly), got "fuzzy"`},
		{"vrrp_track_process p {\n    process x\n    weight 300\n}\n" + fmt.Sprintf(inst, "p"), "weight"},
		{"vrrp_track_process p {\n    process x\n    quorum 2\n    quorum_max 0\n}\n" + fmt.Sprintf(inst, "p"), "quorum_max 0 is less than quorum 2"},
		{"vrrp_track_process p {\n    process x\n}\n" + fmt.Sprintf(inst, "q"), `track_process "q" is not a defined vrrp_track_process`},
		{"vrrp_track_process p {\n    process x\n}\nvrrp_track_process p {\n    process y\n}\n" + fmt.Sprintf(inst, "p"), `vrrp_track_process "p" defined twice`},
	} {
		_, ds := LoadBytes("t.conf", []byte(c.src), nil)
		if !ds.HasErrors() || !strings.Contains(ds.Err().Error(), c.want) {
			t.Errorf("%q: got %v, want an error with %q", c.src, ds.Err(), c.want)
		}
	}
}

// TestVirtualRulesErrors: a virtual_rules line that cannot be installed
// is an error at its place, not a rule dropped or put elsewhere.
func TestVirtualRulesErrors(t *testing.T) {
	inst := "vrrp_instance V {\n    interface eth0\n    virtual_router_id 1\n    virtual_ipaddress {\n        10.0.0.100\n    }\n    virtual_rules {\n        %s\n    }\n}\n"
	for line, want := range map[string]string{
		"from 10.0.0.0/8":                          "needs a table or a type",
		"from 10.0.0.0/8 table nosuch":             `table "nosuch" is not a number nor a name`,
		"from 10.0.0.0/8 to 2001:db8::/32 table 5": "different families",
		"from nowhere table 5":                     `from "nowhere" is not an address, a prefix or all`,
		"fwmark 1/x table 5":                       `fwmark "1/x" is not N or N/MASK`,
		"dport 90-80 table 5":                      `dport "90-80" is not a port or a range`,
		"ipproto gre2 table 5":                     `ipproto "gre2"`,
		"from all table 5 realms 3":                `unknown word "realms"`,
		"from all table":                           "table needs a value",
		"from all table 5 priority 0":              "priority 0 is the local table's rule",
	} {
		_, ds := LoadBytes("t.conf", []byte(fmt.Sprintf(inst, line)), nil)
		if !ds.HasErrors() || !strings.Contains(ds.Err().Error(), want) || !strings.Contains(ds.Err().Error(), "t.conf:8") {
			t.Errorf("%q: got %v, want an error at t.conf:8 with %q", line, ds.Err(), want)
		}
	}
	cfg, ds := LoadBytes("t.conf", []byte(fmt.Sprintf(inst, "from all inet6 blackhole")), nil)
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	if r := cfg.VRRPInstances[0].Rules[0]; !r.Inet6 || r.Type != "blackhole" || r.From.IsValid() {
		t.Errorf("from all inet6 blackhole: %+v", r)
	}
}

// TestConditionalLines: keepalived's conditional configuration. "@ID"
// lines count only for that config-id, "@^ID" ones for every other; a
// $NAME=value may follow; a rewrite keeps every host's lines of the
// blocks it does not touch and refuses to re-render one that has some.
func TestConditionalLines(t *testing.T) {
	src := `@high $PRIO=170
@low $PRIO=85
global_defs {
    @high router_id lb-high
    @low router_id lb-low
}
vrrp_instance VI_0 {
    interface eth0
    virtual_router_id 1
    priority $PRIO
    unicast_peer {
        @^high 10.0.0.1
        @^low 10.0.0.2
    }
    virtual_ipaddress {
        10.1.0.254/32
    }
}
virtual_server 10.1.0.254 80 {
    lb_kind DR
    real_server 10.0.0.10 80 {
    }
}
`
	dir := writeTree(t, map[string]string{"govs.conf": src})
	p := filepath.Join(dir, "govs.conf")
	for _, tt := range []struct {
		id, router string
		prio       int
		peer       string
	}{{"high", "lb-high", 170, "10.0.0.2"}, {"low", "lb-low", 85, "10.0.0.1"}} {
		cfg, ds := Load(p, &ParseOptions{ConfigID: tt.id})
		if ds.HasErrors() || len(ds) != 0 {
			t.Fatalf("%s: %s", tt.id, diagStrings(ds))
		}
		vi := cfg.VRRPInstances[0]
		if cfg.Global.RouterID != tt.router || vi.Priority != tt.prio || len(vi.UnicastPeers) != 1 || vi.UnicastPeers[0].Addr.String() != tt.peer {
			t.Errorf("%s: router_id %q, priority %d, peers %v", tt.id, cfg.Global.RouterID, vi.Priority, vi.UnicastPeers)
		}
		// another block is edited: the conditional ones stay as written
		cfg.VirtualServers[0].Scheduler = "rr"
		out, err := cfg.WriteFiles()
		if err != nil {
			t.Fatal(err)
		}
		if got := string(out[p]); !strings.Contains(got, "    @high router_id lb-high\n    @low router_id lb-low\n") || !strings.Contains(got, "        @^high 10.0.0.1\n") || !strings.Contains(got, "lvs_sched rr") {
			t.Errorf("%s: rewrite lost conditional lines or the edit:\n%s", tt.id, got)
		}
		// a block with conditional lines is not re-rendered
		vi.Priority = 99
		if _, err := cfg.WriteFiles(); err == nil || !strings.Contains(err.Error(), "conditional (@ID) lines") {
			t.Errorf("%s: edit of a block with conditional lines: %v", tt.id, err)
		}
	}
	// neither id: no router_id, both peers
	cfg, _ := Load(p, &ParseOptions{ConfigID: "other"})
	if cfg.Global.RouterID != "" || len(cfg.VRRPInstances[0].UnicastPeers) != 2 {
		t.Errorf("other: router_id %q, peers %v", cfg.Global.RouterID, cfg.VRRPInstances[0].UnicastPeers)
	}
}

// TestConditionalCorners: an @ID after a brace starts a line as in
// keepalived; an @ID a variable expands to is a mark too; a statement
// using a variable set on a conditional line is not re-rendered; a
// conditional weight line is not edited; a block with conditional lines
// is not deleted by a rewrite.
func TestConditionalCorners(t *testing.T) {
	src := `$IF_MAIN=@main
@main $PRIO=240
@^main $PRIO=100
vrrp_instance VI {
    interface eth0
    virtual_router_id 9
    $IF_MAIN nopreempt
    priority $PRIO
    unicast_peer { @^main 10.0.0.1
    }
    virtual_ipaddress {
        10.0.0.9
    }
}
virtual_server 10.0.0.9 80 {
    lb_kind DR
    real_server 10.0.0.10 80 {
        @main weight 3
    }
}
`
	dir := writeTree(t, map[string]string{"govs.conf": src})
	p := filepath.Join(dir, "govs.conf")
	for _, tt := range []struct {
		id    string
		prio  int
		nopre bool
		peers int
	}{{"main", 240, true, 0}, {"backup", 100, false, 1}} {
		cfg, ds := Load(p, &ParseOptions{ConfigID: tt.id})
		if ds.HasErrors() {
			t.Fatalf("%s: %s", tt.id, diagStrings(ds))
		}
		vi := cfg.VRRPInstances[0]
		if vi.Priority != tt.prio || vi.NoPreempt != tt.nopre || len(vi.UnicastPeers) != tt.peers {
			t.Errorf("%s: priority %d, nopreempt %v, peers %v", tt.id, vi.Priority, vi.NoPreempt, vi.UnicastPeers)
		}
		if _, err := cfg.SetRealServerWeight(cfg.VirtualServers[0].RealServers[0], 7); tt.id == "main" && (err == nil || !strings.Contains(err.Error(), "conditional")) {
			t.Errorf("%s: weight edit of a conditional line: %v", tt.id, err)
		}
		cfg.VRRPInstances = nil
		if _, err := cfg.WriteFiles(); err == nil || !strings.Contains(err.Error(), "conditional") {
			t.Errorf("%s: deleting a block with conditional lines: %v", tt.id, err)
		}
	}
}

// TestRulePrioritiesIncluded: rules are numbered in the order they are
// read, an included file's where its include is.
func TestRulePrioritiesIncluded(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"govs.conf":   "include static.conf\nvrrp_instance A {\n    interface eth0\n    virtual_router_id 1\n    virtual_ipaddress {\n        10.0.0.100\n    }\n    virtual_rules {\n        from 10.1.0.0/16 table 101\n    }\n}\n",
		"static.conf": "static_rules {\n    from 10.0.0.0/8 table 100\n}\n",
	})
	cfg, ds := Load(filepath.Join(dir, "govs.conf"), nil)
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	p := cfg.RulePriorities()
	if s, v := p[&cfg.Statics[0].Rules[0]], p[&cfg.VRRPInstances[0].Rules[0]]; s != 16384 || v != 16383 {
		t.Errorf("static rule %d, virtual rule %d; want 16384, 16383", s, v)
	}
}

// TestRouteProtoNames: a route's proto is a number, a built-in name or
// a name from iproute2's rt_protos files, read as the rt_tables ones.
func TestRouteProtoNames(t *testing.T) {
	etc := t.TempDir()
	if err := os.WriteFile(filepath.Join(etc, "rt_protos"), []byte("# custom\n42 mylb\n300 toobig\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(etc, "rt_protos.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "rt_protos.d", "x.conf"), []byte("77 fromd\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := rtTablesDirs
	rtTablesDirs = []string{t.TempDir(), etc}
	t.Cleanup(func() { rtTablesDirs = old })
	for word, want := range map[string]int{"mylb": 42, "fromd": 77, "static": 4, "bird": 12, "9": 9} {
		if id, ok := routeProto(word); !ok || id != want {
			t.Errorf("proto %s: %d %v, want %d", word, id, ok, want)
		}
	}
	for _, word := range []string{"toobig", "nosuch", "256"} {
		if _, ok := routeProto(word); ok {
			t.Errorf("proto %s resolved", word)
		}
	}
}
