package lvscf

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/health"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func testFiles(t testing.TB) []string {
	files, err := filepath.Glob("testdata/*.cf")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/*.cf: %v", err)
	}
	return files
}

// TestGolden converts every testdata/*.cf and compares the configuration
// (.conf) and the report (.report) with the golden files; run with
// -update to rewrite them. The output must load without errors.
func TestGolden(t *testing.T) {
	for _, path := range testFiles(t) {
		name := filepath.Base(path)
		t.Run(strings.TrimSuffix(name, ".cf"), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			cfg, rep := Import(name, data, Options{})
			if rep.HasErrors() {
				t.Errorf("report has errors:\n%s", rep)
			}
			out := Render(name, cfg, Options{})
			golden(t, strings.TrimSuffix(path, ".cf")+".conf", out)
			golden(t, strings.TrimSuffix(path, ".cf")+".report", []byte(rep.String()))
			if _, ds := config.LoadBytes("<import>", out, nil); ds.HasErrors() {
				t.Errorf("converted configuration does not load:\n%s\n%s", ds.Errors(), out)
			}
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

// TestModel checks the decisions that matter on the converted model
// itself, not only through the golden text.
func TestModel(t *testing.T) {
	load := func(t *testing.T, file string, opts Options) (*config.Config, Report) {
		t.Helper()
		data, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		cfg, rep := Import(file, data, opts)
		if rep.HasErrors() {
			t.Fatalf("unexpected errors:\n%s", rep)
		}
		return cfg, rep
	}
	t.Run("nat-fwmark", func(t *testing.T) {
		cfg, _ := load(t, "nat-fwmark.cf", Options{})
		vi := cfg.VRRPInstances[0]
		if vi.UnicastSrcIP != netip.MustParseAddr("203.0.113.2") || len(vi.UnicastPeers) != 1 || vi.UnicastPeers[0].Addr != netip.MustParseAddr("203.0.113.3") {
			t.Errorf("unicast: src %v peers %v", vi.UnicastSrcIP, vi.UnicastPeers)
		}
		if vi.Interface != "eth0" || vi.AdvertInt.D().Seconds() != 2 || vi.State != "MASTER" {
			t.Errorf("instance: %+v", vi)
		}
		wantVIPs := []string{"203.0.113.10/24 eth0 eth0:1", "10.11.12.10/24 eth1 eth1:1"}
		var gotVIPs []string
		for _, v := range vi.VIPs {
			gotVIPs = append(gotVIPs, v.Prefix.String()+" "+v.Dev+" "+v.Label)
		}
		if diff := cmp.Diff(wantVIPs, gotVIPs); diff != "" {
			t.Errorf("VIPs (-want +got):\n%s", diff)
		}
		if len(vi.TrackIfaces) != 2 {
			t.Errorf("track_interface: %v", vi.TrackIfaces)
		}
		if s := cfg.Global.LVSSyncDaemon; s == nil || s.Interface != "eth1" || s.ID == nil || *s.ID != 7 || s.Instance != InstanceName {
			t.Errorf("sync daemon: %+v", s)
		}
		if len(cfg.VirtualServers) != 1 {
			t.Fatalf("want the two virtuals with fwmark 80 merged into one service, got %d", len(cfg.VirtualServers))
		}
		vs := cfg.VirtualServers[0]
		if vs.FWMark != 80 || vs.Method != config.MethodNAT || vs.Persistence.D().Seconds() != 600 || vs.PersistenceGranularity != "255.255.255.0" || !vs.QuiesceServer || !vs.InhibitOnFailure {
			t.Errorf("service: %+v", vs)
		}
		if len(vs.RealServers) != 3 {
			t.Fatalf("real servers: %d", len(vs.RealServers))
		}
		web1 := vs.RealServers[0]
		if len(web1.Checks) != 2 || web1.Checks[0].ConnectPort != 80 || web1.Checks[1].ConnectPort != 443 {
			t.Errorf("web1 checks: want ports 80 and 443, got %+v", web1.Checks)
		}
		if c := web1.Checks[0]; c.Kind != config.CheckTCP || !c.UseRegex || c.Send != `GET /health HTTP/1.0\r\nHost: www.example.com\r\n\r\n` {
			t.Errorf("send kept escaped: %+v", c)
		}
		if web3 := vs.RealServers[2]; web3.Weight != 0 {
			t.Errorf("inactive server: weight %d, want 0", web3.Weight)
		}
	})
	t.Run("backup", func(t *testing.T) {
		cfg, _ := load(t, "nat-fwmark.cf", Options{Backup: true, VRID: 9})
		vi := cfg.VRRPInstances[0]
		if vi.UnicastSrcIP != netip.MustParseAddr("203.0.113.3") || vi.UnicastPeers[0].Addr != netip.MustParseAddr("203.0.113.2") || vi.State != "BACKUP" || vi.Priority != BackupPriority || vi.VirtualRouterID != 9 {
			t.Errorf("backup instance: %+v", vi)
		}
	})
	t.Run("dr", func(t *testing.T) {
		cfg, rep := load(t, "dr.cf", Options{})
		if len(cfg.VirtualServers) != 2 {
			t.Fatalf("want www and dns (smtp is inactive), got %d services", len(cfg.VirtualServers))
		}
		www, dns := cfg.VirtualServers[0], cfg.VirtualServers[1]
		if www.Method != config.MethodDR || www.RealServers[1].Port != 0 {
			t.Errorf("DR real server port must be dropped: %+v", www.RealServers[1])
		}
		if c := www.RealServers[0].Checks[0]; c.Kind != config.CheckMisc || c.MiscPath != "/usr/local/libexec/check_http %h" || c.Expect != "OK" {
			t.Errorf("send_program: %+v", c)
		}
		if c := dns.RealServers[0].Checks[0]; c.Kind != config.CheckUDP || c.Payload != "7374617475730a" {
			t.Errorf("udp check: %+v", c)
		}
		for _, ip := range []string{"198.51.100.25"} {
			for _, v := range cfg.VRRPInstances[0].VIPs {
				if v.Prefix.Addr().String() == ip {
					t.Errorf("address of the inactive virtual was added")
				}
			}
		}
		if !strings.Contains(rep.String(), `dr.cf:61: warning: virtual "smtp" is deactivated`) {
			t.Errorf("inactive virtual not reported:\n%s", rep)
		}
	})
}

// TestParseErrors is the error table of the parser: each input gives an
// error (or warning) on the given line with the given text.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantLine int
		wantSev  config.Severity
		wantMsg  string
	}{
		{"missing brace", "virtual web {\n  port = 80\n", 1, config.Error, `missing "}" to close virtual block "web"`},
		{"stray brace", "primary = 1.2.3.4\n}\n", 2, config.Error, `unexpected "}" with no open block`},
		{"unterminated", "virtual web {\n send = \"GET /\n}\n", 2, config.Error, "send: unterminated quoted string"},
		{"escaped quote at end", "expect = \"abc\\\"\n", 1, config.Error, "unterminated quoted string"},
		{"text after quote", "send = \"a\" b\n", 1, config.Error, `unexpected text "b" after the closing quote`},
		{"no equals", "primary 1.2.3.4\n", 1, config.Error, `expected "key = value" or "virtual NAME {", got "primary"`},
		{"block without name", "virtual {\n}\n", 1, config.Error, "virtual block needs a name"},
		{"name two words", "virtual my web {\n}\n", 1, config.Error, "block name must be one word"},
		{"server at top", "server s1 {\n address = 1.2.3.4\n}\n", 1, config.Error, `server block "s1" outside a virtual block`},
		{"nested virtual", "virtual a {\n virtual b {\n }\n}\n", 2, config.Error, `virtual block "b" inside a virtual block`},
		{"unknown block", "\n\nweird x {\n a = 1\n}\n", 3, config.Warning, `unknown block "weird"`},
		{"duplicate key", "keepalive = 1\nkeepalive = 2\n", 2, config.Warning, "keepalive set again (first at line 1)"},
		{"stray quote", "primary = 1.2\"3\n", 1, config.Error, "stray quote"},
		{"brace text", "virtual a {\n} x\n", 2, config.Error, `unexpected text "x" after "}"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ds := Parse("t.cf", []byte(tt.in))
			for _, d := range ds {
				if d.Pos.Line == tt.wantLine && d.Severity == tt.wantSev && strings.Contains(d.Msg, tt.wantMsg) {
					return
				}
			}
			t.Errorf("want %s on line %d containing %q, got:\n%v", tt.wantSev, tt.wantLine, tt.wantMsg, ds)
		})
	}
}

// TestParseValues checks comments, quoting and escapes.
func TestParseValues(t *testing.T) {
	in := "# comment\n" +
		"primary = 192.0.2.1   # trailing comment\n" +
		"virtual v {\n" +
		"\tsend = \"GET / HTTP/1.0\\r\\n\\r\\n\"  # keep \\r\\n escaped\n" +
		"\texpect = \"say \\\"hi\\\" # not a comment\"\n" +
		"\tserver s {\n" +
		"\t\taddress = 192.0.2.5\n" +
		"\t}\n" +
		"}\n"
	f, ds := Parse("v.cf", []byte(in))
	if len(ds) != 0 {
		t.Fatalf("unexpected diagnostics: %v", ds)
	}
	if got := f.Get("primary"); got == nil || got.Value != "192.0.2.1" || got.Pos.Line != 2 || got.ValPos.Col != 11 {
		t.Errorf("primary: %+v", got)
	}
	v := f.Blocks[0]
	if got := v.Get("send").Value; got != `GET / HTTP/1.0\r\n\r\n` {
		t.Errorf("send = %q", got)
	}
	if got := v.Get("expect").Value; got != `say \"hi\" # not a comment` {
		t.Errorf("expect = %q", got)
	}
	if len(v.Blocks) != 1 || v.Blocks[0].Get("address").Pos.Line != 7 {
		t.Errorf("server block: %+v", v.Blocks)
	}
	if got := health.Unescape(v.Get("send").Value); got != "GET / HTTP/1.0\r\n\r\n" {
		t.Errorf("unescape = %q", got)
	}
}

// TestConvertErrors is the error table of the converter.
func TestConvertErrors(t *testing.T) {
	const head = "primary = 192.0.2.1\nbackup_active = 1\nbackup = 192.0.2.2\nnetwork = direct\n"
	tests := []struct {
		name     string
		in       string
		wantLine int
		wantLvl  Level
		wantMsg  string
	}{
		{"bad network", "network = bridge\n", 1, Error, `network = "bridge": want nat, direct or tunnel`},
		{"bad keepalive", "keepalive = 0\n", 1, Error, "keepalive = \"0\": want an integer in 1..255"},
		{"unknown global", "hard_shutdown = 1\n", 1, Warning, `unknown global key "hard_shutdown"`},
		{"unknown virtual key", head + "virtual v {\n address = 192.0.2.9 eth0\n port = 80\n sorry_server = 1.2.3.4\n server s {\n address = 192.0.2.10\n }\n}\n", 8, Warning, `unknown virtual "v" key "sorry_server"`},
		{"unknown server key", head + "virtual v {\n address = 192.0.2.9 eth0\n port = 80\n server s {\n address = 192.0.2.10\n backup = 1\n }\n}\n", 10, Warning, `unknown server "s" key "backup"`},
		{"bad vip", head + "virtual v {\n address = 192.0.2.300 eth0\n port = 80\n}\n", 6, Error, `"192.0.2.300" is not an IP address`},
		{"bad mask", head + "virtual v {\n address = 192.0.2.9 eth0\n vip_nmask = 255.0.255.0\n port = 80\n}\n", 7, Error, "vip_nmask: netmask 255.0.255.0 is not contiguous"},
		{"no port", head + "virtual v {\n address = 192.0.2.9 eth0\n}\n", 5, Error, `virtual "v" has neither port nor fwmark`},
		{"no address", head + "virtual v {\n port = 80\n}\n", 5, Error, `virtual "v" has no address`},
		{"bad scheduler", head + "virtual v {\n address = 192.0.2.9 eth0\n port = 80\n scheduler = fastest\n server s {\n address = 192.0.2.10\n }\n}\n", 8, Error, `scheduler = "fastest": unknown`},
		{"bad protocol", head + "virtual v {\n address = 192.0.2.9 eth0\n port = 80\n protocol = sctp\n}\n", 8, Error, `protocol = "sctp": want tcp or udp`},
		{"server without address", head + "virtual v {\n address = 192.0.2.9 eth0\n port = 80\n server s {\n weight = 1\n }\n}\n", 8, Error, `server "s" has no address`},
		{"bad weight", head + "virtual v {\n address = 192.0.2.9 eth0\n port = 80\n server s {\n address = 192.0.2.10\n weight = 70000\n }\n}\n", 10, Error, "weight = \"70000\": want an integer in 0..65535"},
		{"family", head + "virtual v {\n address = 192.0.2.9 eth0\n port = 80\n server s {\n address = 2001:db8::1\n }\n}\n", 9, Error, "is not of the family of the virtual address"},
		{"duplicate service", head + "virtual a {\n address = 192.0.2.9 eth0\n port = 80\n server s {\n address = 192.0.2.10\n }\n}\nvirtual b {\n address = 192.0.2.9 eth0\n port = 80\n server s {\n address = 192.0.2.10\n }\n}\n", 12, Error, `TCP 192.0.2.9:80 is already virtual "a" (line 5)`},
		{"bad regex", head + "virtual v {\n address = 192.0.2.9 eth0\n port = 80\n expect = \"(\"\n use_regex = 1\n server s {\n address = 192.0.2.10\n }\n}\n", 8, Error, "expect is not a valid regular expression"},
		{"final backslash", head + "virtual v {\n address = 192.0.2.9 eth0\n port = 80\n send = \"a\\\\\"\n server s {\n address = 192.0.2.10\n }\n}\n", 8, Error, "final backslash"},
		{"bad device", head + "virtual v {\n address = 192.0.2.9 eth0:1:2\n port = 80\n}\n", 6, Error, `"eth0:1:2" is not a network device name`},
		{"bad bool", "monitor_links = maybe\n", 1, Error, `monitor_links = "maybe": want 0 or 1`},
		{"same routers", "primary = 192.0.2.1\nbackup_active = 1\nbackup = 192.0.2.1\n", 1, Error, "primary and backup are the same address"},
		{"port 0", head + "virtual v {\n address = 192.0.2.9 eth0\n port = 0\n server s {\n address = 192.0.2.10\n }\n}\n", 7, Error, "port = 0 (all ports) needs persistent"},
		{"failover", "failover f {\n active = 1\n}\n", 1, Warning, `failover "f" not converted`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rep := Import("t.cf", []byte(tt.in), Options{})
			for _, it := range rep {
				if it.Pos.Line == tt.wantLine && it.Level == tt.wantLvl && strings.Contains(it.Msg, tt.wantMsg) {
					return
				}
			}
			t.Errorf("want %s on line %d containing %q, got:\n%s", tt.wantLvl, tt.wantLine, tt.wantMsg, rep)
		})
	}
}

// TestEveryKeyReported checks that each line with a key of testdata
// appears in the report or maps silently only for the keys whose mapping
// is the identity.
func TestEveryKeyReported(t *testing.T) {
	mergedKeys := map[string]bool{"protocol": true, "scheduler": true, "persistent": true, "pmask": true,
		"timeout": true, "reentry": true, "quiesce_server": true, "load_monitor": true}
	silent := map[string]bool{"active": true, "address": false, "port": true, "weight": true, "scheduler": true,
		"protocol": true, "vip_nmask": true, "nat_nmask": true, "expect": true, "use_regex": true,
		"load_monitor": true, "quiesce_server": true, "persistent": false, "pmask": false,
		"backup": true, "backup_active": true, "syncd_iface": true, "syncd_id": true, "send": true}
	for _, path := range testFiles(t) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(path)
		f, _ := Parse(name, data)
		_, rep := Import(name, data, Options{})
		lines := map[int]bool{}
		for _, it := range rep {
			lines[it.Pos.Line] = true
		}
		marks := map[string]bool{}
		check := func(es []*Entry, merged bool) {
			for _, e := range es {
				// A virtual merged into an earlier one with the same fwmark
				// reports only the settings that differ.
				if merged && mergedKeys[e.Key] {
					continue
				}
				if !silent[e.Key] && !lines[e.Pos.Line] {
					t.Errorf("%s:%d: key %q has no report line", name, e.Pos.Line, e.Key)
				}
			}
		}
		check(f.Entries, false)
		for _, b := range f.Blocks {
			if b.Kind != "virtual" {
				continue
			}
			if a := b.Get("active"); a != nil && a.Value == "0" {
				continue
			}
			merged := false
			if m := b.Get("fwmark"); m != nil {
				merged = marks[m.Value]
				marks[m.Value] = true
			}
			check(b.Entries, merged)
		}
	}
}

// FuzzParse feeds arbitrary text to the parser and the converter: they
// never panic, every error has a line, and a conversion without errors
// renders to a configuration that loads without errors. Without -fuzz,
// go test runs the seed corpus (testdata and the error tables) as a normal
// test.
func FuzzParse(f *testing.F) {
	for _, path := range testFiles(f) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("virtual a {\n server b {\n server c {\n"))
	f.Add([]byte("}\n}\nvirtual {\n"))
	f.Add([]byte("send = \"\\\"\nexpect = \"\\\\\"\n"))
	f.Add([]byte("network = nat\nvirtual v {\n address = 192.0.2.1 eth0:1\n port = 80\n send = \"a\\\"b\\\\c\\x\"\n expect = \"$X # !{}\"\n server s {\n  address = 192.0.2.2\n  port = 81\n }\n}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, rep := Import("f.cf", data, Options{})
		for _, it := range rep {
			if it.Level == Error && it.Pos.Line <= 0 {
				t.Fatalf("error without a line: %v", it)
			}
		}
		if rep.HasErrors() {
			return
		}
		out := Render("f.cf", cfg, Options{})
		if _, ds := config.LoadBytes("<import>", out, nil); ds.HasErrors() {
			t.Fatalf("conversion without errors does not load:\n%s\n--- input\n%s\n--- output\n%s", ds.Errors(), data, out)
		}
		if !bytes.HasPrefix(out, []byte("! ")) {
			t.Fatalf("missing header")
		}
	})
}
