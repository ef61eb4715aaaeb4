package config

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files")

func dumpJSON(t testing.TB, c *Config) string {
	t.Helper()
	c2 := *c
	c2.Files = nil // file names differ between a file and its rendering
	b, err := json.MarshalIndent(&c2, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

func diagStrings(ds Diagnostics) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.conf")
	if len(files) < 3 {
		t.Fatalf("expected testdata/*.conf, found %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, ds := Load(f, nil)
			if ds.HasErrors() {
				t.Fatalf("unexpected errors:\n%s", diagStrings(ds))
			}
			base := strings.TrimSuffix(f, ".conf")
			golden(t, base+".json", dumpJSON(t, cfg))
			golden(t, base+".diag", diagStrings(ds))
		})
	}
}

// TestSeed004 pins down the model of the seed's real deployment.
func TestSeed004(t *testing.T) {
	for _, tt := range []struct {
		file      string
		state     string
		prio      int
		src, peer string
	}{
		{"../../examples/seed004-master.conf", "MASTER", 150, "192.168.66.23", "192.168.66.24"},
		{"../../examples/seed004-backup.conf", "BACKUP", 50, "192.168.66.24", "192.168.66.23"},
	} {
		t.Run(filepath.Base(tt.file), func(t *testing.T) {
			cfg, ds := Load(tt.file, nil)
			if len(ds) != 0 {
				t.Fatalf("diagnostics:\n%s", diagStrings(ds))
			}
			vi := cfg.VRRPInstances[0]
			got := fmt.Sprintf("%s %s %d %d %s %s %s %s", vi.Name, vi.State, vi.Priority, vi.VirtualRouterID, vi.UnicastSrcIP, vi.UnicastPeers[0].Addr, vi.VIPs[0].Prefix, vi.VIPs[0].Dev)
			want := fmt.Sprintf("SMB %s %d 20 %s %s 172.26.127.20/28 ens3", tt.state, tt.prio, tt.src, tt.peer)
			if got != want {
				t.Errorf("instance = %q, want %q", got, want)
			}
			if set := cfg.Global.InstanceSettings(vi); set.GarpMasterDelay.D().Seconds() != 2 || set.GarpMasterRepeat != 2 || set.GarpMasterRefreshRepeat != 1 {
				t.Errorf("garp settings = %+v", set)
			}
			if !cfg.Global.LVSFlush || !cfg.Global.LVSFlushOnStop || cfg.Global.RouterID != "ha-smbqualif" {
				t.Errorf("global_defs = %+v", cfg.Global)
			}
			if len(cfg.VirtualServers) != 2 {
				t.Fatalf("%d virtual servers", len(cfg.VirtualServers))
			}
			for _, vs := range cfg.VirtualServers {
				if vs.Scheduler != "rr" || vs.Method != MethodDR || len(vs.RealServers) != 2 {
					t.Errorf("virtual server %s: sched %s method %s rs %d", vs.Addr, vs.Scheduler, vs.Method, len(vs.RealServers))
				}
				for _, rs := range vs.RealServers {
					c := rs.Checks[0]
					if c.Kind != CheckTCP || c.ConnectPort != 445 || c.ConnectTimeout == nil || c.ConnectTimeout.D().Seconds() != 1 {
						t.Errorf("check of %s = %+v", rs.Addr, c)
					}
				}
			}
		})
	}
}

func TestErrors(t *testing.T) {
	for _, tt := range []struct {
		name, input string
		wantLine    int
		wantMsg     string
	}{
		{"missing brace at EOF", "global_defs {\n  router_id x\n", 1, `missing "}" to close "global_defs"`},
		{"missing brace of real_server", "virtual_server 10.0.0.1 80 {\n    real_server 10.0.0.2 80 {\n        weight 1\n    real_server 10.0.0.3 80 {\n        weight 1\n    }\n}\n", 2, `missing "}" to close "real_server"`},
		{"stray close", "}\n", 1, `unexpected "}"`},
		{"unterminated quote", "global_defs {\n router_id \"abc\n}\n", 2, "unterminated quoted string"},
		{"weight range", "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  weight 70000\n }\n}\n", 3, "weight 70000 out of range 0..65535"},
		{"bad address", "virtual_server 10.0.0.300 80 {\n}\n", 1, `"10.0.0.300" is not an IP address`},
		{"bad port list", "virtual_server 10.0.0.1 80-70 {\n}\n", 1, "runs backwards"},
		{"unknown method", "virtual_server 10.0.0.1 80 {\n lb_kind XYZ\n}\n", 2, `unknown forwarding method "XYZ"`},
		{"unknown scheduler", "virtual_server 10.0.0.1 80 {\n lb_algo fast\n}\n", 1, `unknown scheduler "fast"`},
		{"DR port differs", "virtual_server 10.0.0.1 80 {\n lb_kind DR\n real_server 10.0.0.2 8080 {\n }\n}\n", 3, "must equal the virtual port"},
		{"duplicate service", "virtual_server 10.0.0.1 80 {\n}\nvirtual_server 10.0.0.1 80 {\n}\n", 3, "TCP 10.0.0.1:80 is already served"},
		{"overlapping range", "virtual_server 10.0.0.1 80 {\n}\nvirtual_server 10.0.0.1 70-90 {\n}\n", 3, "already served"},
		{"duplicate vrid on a group", "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n mcast_dst_ip 224.0.0.100\n}\nvrrp_instance B {\n interface eth0\n virtual_router_id 5\n mcast_dst_ip 224.0.0.100\n}\n", 6, "virtual_router_id 5 already used on eth0"},
		{"duplicate vrid", "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n}\nvrrp_instance B {\n interface eth0\n virtual_router_id 5\n}\n", 5, "virtual_router_id 5 already used on eth0"},
		{"bad netmask", "virtual_server 10.0.0.1 80 {\n persistence_timeout 60\n persistence_granularity 255.0.255.0\n}\n", 1, "not contiguous"},
		{"unknown keyword", "global_defs {\n frobnicate 1\n}\n", 2, `warning: unsupported keyword "frobnicate" in global_defs`},
		{"include missing", "includea nothere/*.conf\n", 1, `includea "nothere/*.conf": no such file`},
		{"vip not in vrrp", "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  10.0.0.1\n }\n}\nvirtual_server 10.0.0.9 80 {\n}\n", 8, "warning: virtual_server 10.0.0.9 80: address 10.0.0.9 is not a virtual_ipaddress"},
		{"threshold order", "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  uthreshold 10\n  lthreshold 20\n }\n}\n", 2, "lthreshold 20 must be below uthreshold 10"},
		{"http without url", "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  HTTP_GET {\n  }\n }\n}\n", 3, "needs at least one url"},
		{"bad digest", "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  HTTP_GET {\n   url {\n    path /\n    digest zz\n   }\n  }\n }\n}\n", 3, "is not an MD5"},
		{"sync group member", "vrrp_sync_group G {\n group {\n  NOPE\n }\n}\n", 1, `unknown vrrp_instance "NOPE"`},
		{"track script", "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n track_script {\n  nope\n }\n}\n", 1, `track_script "nope" is not a defined vrrp_script`},
		{"port 0 without persistence", "virtual_server 10.0.0.1 {\n}\n", 1, "port 0 (all ports) needs persistence_timeout"},
		{"mixed families", "virtual_server 10.0.0.1 80 {\n real_server 2001:db8::1 80 {\n }\n}\n", 2, "address family differs"},
		{"undefined variable", "global_defs {\n router_id $NOPE\n}\n", 2, "warning: undefined variable $NOPE"},
		{"bad dataplane", "global_defs {\n govs_dataplane turbo\n}\n", 1, `govs_dataplane "turbo"`},
		{"bad xdp mode", "global_defs {\n govs_xdp_mode offload\n}\n", 1, `govs_xdp_mode "offload": must be native or generic`},
		{"block for flag", "global_defs {\n lvs_flush {\n }\n}\n", 2, "lvs_flush does not take a block"},
		{"static address without dev", "static_ipaddress {\n 10.0.0.5/24\n}\n", 2, "warning: static_ipaddress 10.0.0.5/24: no dev IF and no global default_interface: on eth0"},
		{"bad mcast group", "global_defs {\n vrrp_mcast_group4 10.1.1.1\n}\n", 2, `vrrp_mcast_group4 "10.1.1.1" is not an IPv4 multicast address`},
		{"bad mcast group6", "global_defs {\n vrrp_mcast_group6 224.0.0.18\n}\n", 2, `vrrp_mcast_group6 "224.0.0.18" is not an IPv6 multicast address`},
		{"track group undefined", "static_ipaddress {\n 10.0.0.5/24 dev eth0 track_group G\n}\n", 2, `static_ipaddress 10.0.0.5/24: track_group "G" is not defined`},
		{"native_ipv6 with IPv4", "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n native_ipv6\n unicast_src_ip 10.0.0.1\n unicast_peer {\n  10.0.0.2\n }\n virtual_ipaddress {\n  10.0.0.100/24\n }\n}\n", 1, `vrrp_instance "A": native_ipv6 with IPv4 addresses`},
		{"native_ipv6 without addresses", "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n native_ipv6\n}\n", 1, `vrrp_instance "A": VRRPv3 needs at least one virtual_ipaddress`},
		{"track group later", "static_ipaddress {\n 10.0.0.5/24 dev eth0 track_group G\n}\ntrack_group G {\n group {\n  A\n }\n}\nvrrp_instance A {\n interface eth0\n virtual_router_id 5\n}\n", 2, `track_group "G" is defined after this line`},
		{"track group twice", "track_group G {\n group {\n  A\n }\n}\ntrack_group G {\n group {\n  A\n }\n}\nvrrp_instance A {\n interface eth0\n virtual_router_id 5\n}\n", 6, `track_group "G" defined twice`},
		{"track group on a vip", "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  10.0.0.1 track_group G\n }\n}\n", 5, "virtual_ipaddress: track_group is for static_ipaddress, static_routes and static_rules entries; ignored here"},
		{"script defined after", "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n track_script {\n  s\n }\n}\nvrrp_script s {\n script /bin/true\n}\n", 1, `track_script s is defined after it (at test.conf:8:1): keepalived 2.2.7 does not find it and tracks nothing ("track script s not found, ignoring")`},
		{"script twice", "vrrp_script s {\n script /bin/true\n}\nvrrp_instance A {\n interface eth0\n virtual_router_id 5\n track_script {\n  s\n  s weight 5\n }\n}\n", 4, `track_script s is given twice: the second is ignored, as keepalived 2.2.7`},
		{"old checksum mode", "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n old_unicast_checksum always\n}\n", 4, `old_unicast_checksum takes never or nothing, not "always"`},
		{"old checksum multicast", "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n version 3\n old_unicast_checksum\n}\n", 1, `warning: vrrp_instance "A": old_unicast_checksum applies to IPv4 VRRPv3 unicast adverts only`},
		{"vmac multicast", "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n use_vmac 01:00:5e:00:00:01\n}\n", 4, `use_vmac: "01:00:5e:00:00:01" is a multicast address`},
		{"vmac long name", "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n use_vmac a_very_long_interface\n}\n", 4, "is not a valid interface name"},
		{"vmac same default", "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n use_vmac\n}\nvrrp_instance B {\n interface eth1\n virtual_router_id 5\n use_vmac\n}\n", 6, "use_vmac interface vrrp.5 is also that of \"A\""},
		{"bgp without local_as", "govs_bgp {\n neighbor 10.0.0.1 {\n  remote_as 1\n }\n}\n", 1, "govs_bgp: local_as is missing"},
		{"bgp without neighbor", "govs_bgp {\n local_as 1\n}\n", 1, "govs_bgp: no neighbor"},
		{"bgp neighbor without remote_as", "govs_bgp {\n local_as 1\n neighbor 10.0.0.1 {\n }\n}\n", 3, "neighbor 10.0.0.1 has no remote_as"},
		{"bgp neighbor twice", "govs_bgp {\n local_as 1\n neighbor 10.0.0.1 {\n  remote_as 2\n }\n neighbor 10.0.0.1 {\n  remote_as 2\n }\n}\n", 6, "neighbor 10.0.0.1 given twice"},
		{"bgp bad community", "govs_bgp {\n local_as 1\n community 70000:1\n}\n", 3, `community: "70000:1" is not a community`},
		{"bgp ipv6 router id", "govs_bgp {\n local_as 1\n router_id 2001:db8::1\n}\n", 1, "router_id 2001:db8::1 must be an IPv4 address"},
		{"bgp hold time", "govs_bgp {\n local_as 1\n hold_time 2\n}\n", 3, "hold_time 2 out of range 3..65535"},
		{"bgp second block", "govs_bgp {\n local_as 1\n}\ngovs_bgp {\n local_as 2\n}\n", 4, "govs_bgp: a second block (the first is at line 1)"},
		{"bgp local address family", "govs_bgp {\n local_as 1\n neighbor 10.0.0.1 {\n  remote_as 2\n  local_address 2001:db8::1\n }\n}\n", 3, "local_address 2001:db8::1 is of the other address family"},
		{"bgp passive without listen_port", "govs_bgp {\n local_as 1\n neighbor 10.0.0.1 {\n  remote_as 2\n  passive\n }\n}\n", 3, "neighbor 10.0.0.1 is passive but govs_bgp has no listen_port"},
		{"bgp bfd multihop", "govs_bgp {\n local_as 1\n neighbor 10.0.0.1 {\n  remote_as 2\n  ebgp_multihop 2\n  bfd\n }\n}\n", 3, "bfd is single-hop (RFC 5881): not with ebgp_multihop"},
		{"bgp bfd interval without bfd", "govs_bgp {\n local_as 1\n neighbor 10.0.0.1 {\n  remote_as 2\n  bfd_interval 50\n }\n}\n", 3, "warning: govs_bgp: neighbor 10.0.0.1: bfd_interval or bfd_multiplier without bfd"},
		{"bgp announce delay under delay_loop", "govs_bgp {\n local_as 1\n neighbor 10.0.0.1 {\n  remote_as 2\n }\n}\nvirtual_server 10.0.0.9 80 {\n lb_algo mh\n delay_loop 10\n real_server 10.0.1.1 80 {\n }\n real_server 10.0.1.2 80 {\n }\n}\n", 7, "announce_delay 3s is shorter than its delay_loop 10s"},
		{"bgp ipv6 neighbors without router id", "govs_bgp {\n local_as 1\n neighbor 2001:db8::1 {\n  remote_as 2\n }\n}\n", 1, "govs_bgp: set router_id"},
		{"bgp nat", "govs_bgp {\n local_as 1\n neighbor 10.0.0.1 {\n  remote_as 2\n }\n}\nvirtual_server 10.0.0.9 80 {\n lb_algo mh\n lb_kind NAT\n}\n", 7, "warning: virtual_server 10.0.0.9 80: lb_kind NAT with govs_bgp"},
		{"bgp scheduler", "govs_bgp {\n local_as 1\n neighbor 10.0.0.1 {\n  remote_as 2\n }\n}\nvirtual_server 10.0.0.9 80 {\n lb_algo rr\n real_server 10.0.1.1 80 {\n }\n real_server 10.0.1.2 80 {\n }\n}\n", 7, "warning: virtual_server 10.0.0.9 80: lb_algo rr with govs_bgp"},
		{"bgp keepalive over hold time", "govs_bgp {\n local_as 1\n keepalive 100\n neighbor 10.0.0.1 {\n  remote_as 2\n }\n}\n", 4, "keepalive 100 is not below hold_time 90"},
		{"bgp prepend to ibgp", "govs_bgp {\n local_as 1\n as_path_prepend 2\n neighbor 10.0.0.1 {\n  remote_as 1\n }\n}\n", 4, "as_path_prepend with the iBGP neighbor 10.0.0.1"},
		{"bgp mapped neighbor", "govs_bgp {\n local_as 1\n neighbor ::ffff:10.0.0.1 {\n  remote_as 2\n }\n}\n", 3, "write an IPv4 neighbor as IPv4 (10.0.0.1)"},
		{"bgp long password", "govs_bgp {\n local_as 1\n neighbor 10.0.0.1 {\n  remote_as 2\n  password " + strings.Repeat("x", 81) + "\n }\n}\n", 3, "password of 81 bytes"},
		{"bgp as range", "govs_bgp {\n local_as 4294967296\n}\n", 2, `local_as: "4294967296" is not a number in 1..4294967295`},
		{"bgp fwmark", "govs_bgp {\n local_as 1\n neighbor 10.0.0.1 {\n  remote_as 2\n }\n}\nvirtual_server fwmark 5 {\n persistence_timeout 60\n}\n", 7, "warning: virtual_server fwmark 5: a firewall-mark service has no address of its own"},
		{"bgp no neighbor of the family", "govs_bgp {\n local_as 1\n neighbor 10.0.0.1 {\n  remote_as 2\n }\n}\nvirtual_server 2001:db8::10 80 {\n lb_algo mh\n}\n", 7, "no govs_bgp neighbor of its address family"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, ds := LoadBytes("test.conf", []byte(tt.input), nil)
			for _, d := range ds {
				if d.Pos.Line == tt.wantLine && strings.Contains(d.String(), tt.wantMsg) {
					return
				}
			}
			t.Errorf("want line %d %q, got:\n%s", tt.wantLine, tt.wantMsg, diagStrings(ds))
		})
	}
}

// TestValidateReportsAll checks that validation does not stop at the first
// problem.
func TestValidateReportsAll(t *testing.T) {
	in := "virtual_server 10.0.0.1 80 {\n lb_algo nope\n lb_kind DR\n real_server 10.0.0.2 81 {\n }\n real_server 10.0.0.2 81 {\n }\n}\nvirtual_server 10.0.0.1 80 {\n}\n"
	_, ds := LoadBytes("t.conf", []byte(in), nil)
	if n := len(ds.Errors()); n < 4 {
		t.Errorf("got %d errors, want at least 4 (scheduler, 2× DR port, duplicate rs, duplicate vs):\n%s", n, diagStrings(ds))
	}
}

// TestRoundTrip: parse → Format → parse gives the same model.
func TestRoundTrip(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.conf")
	examples, _ := filepath.Glob("../../examples/*.conf")
	files = append(files, examples...)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, ds := ParseFile(f, nil)
			if ds.HasErrors() {
				t.Fatal(diagStrings(ds))
			}
			out := Format(cfg)
			cfg2, ds2 := Parse("rendered.conf", out, nil)
			if ds2.HasErrors() {
				t.Fatalf("rendering does not parse:\n%s\n%s", diagStrings(ds2), out)
			}
			if diff := cmp.Diff(dumpJSON(t, cfg), dumpJSON(t, cfg2)); diff != "" {
				t.Errorf("model changed through Format (-parsed +reparsed):\n%s", diff)
			}
		})
	}
}

// TestWriteFilesPreserves: unedited blocks keep their text and comments;
// an edited block is rendered anew; the result parses to the edited model.
func TestWriteFilesPreserves(t *testing.T) {
	cfg, ds := ParseFile("testdata/full.conf", nil)
	if ds.HasErrors() {
		t.Fatal(diagStrings(ds))
	}
	orig, _ := os.ReadFile("testdata/full.conf")
	inc, _ := os.ReadFile("testdata/inc/extra.conf")

	// Nothing edited: every file is byte-identical.
	out, err := cfg.WriteFiles()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out["testdata/full.conf"], orig) {
		t.Errorf("unedited write changed full.conf:\n%s", cmp.Diff(string(orig), string(out["testdata/full.conf"])))
	}
	if !bytes.Equal(out["testdata/inc/extra.conf"], inc) {
		t.Errorf("unedited write changed the included file")
	}

	// Edit one real server's weight (of a service without variables:
	// the writer refuses to render one with), delete the sync group, and
	// add a virtual server.
	cfg.VirtualServers[2].RealServers[0].Weight = 7
	cfg.SyncGroups = nil
	cfg.VirtualServers = append(cfg.VirtualServers, &VirtualServer{
		Addr: cfg.VirtualServers[0].Addr, Ports: []PortRange{{8443, 8443}}, Protocols: []Proto{ProtoTCP},
		Scheduler: "rr", Method: MethodNAT, Quorum: 1,
		RealServers: []*RealServer{{Addr: cfg.VirtualServers[0].RealServers[0].Addr, Port: 8443, Weight: 1}},
	})
	out, err = cfg.WriteFiles()
	if err != nil {
		t.Fatal(err)
	}
	got := string(out["testdata/full.conf"])
	for _, keep := range []string{"# A configuration that uses most of what govs reads.", "router_id lb1                 # trailing comment", "${VIP}/24 brd 192.0.2.255", "include inc/*.conf"} {
		if !strings.Contains(got, keep) {
			t.Errorf("edited write lost %q", keep)
		}
	}
	if strings.Contains(got, "vrrp_sync_group") {
		t.Errorf("deleted sync group still written")
	}
	if !strings.Contains(got, "virtual_server 192.0.2.10 8443 {") {
		t.Errorf("new virtual server not written:\n%s", got)
	}
	if !bytes.Equal(out["testdata/inc/extra.conf"], inc) {
		t.Errorf("edit of full.conf changed the included file")
	}
	// The written files parse back to the edited model.
	files := out
	opts := &ParseOptions{
		ReadFile: func(name string) ([]byte, error) {
			if b, ok := files[name]; ok {
				return b, nil
			}
			return nil, os.ErrNotExist
		},
	}
	cfg2, ds2 := Parse("testdata/full.conf", out["testdata/full.conf"], opts)
	if ds2.HasErrors() {
		t.Fatal(diagStrings(ds2))
	}
	if diff := cmp.Diff(dumpJSON(t, cfg), dumpJSON(t, cfg2)); diff != "" {
		t.Errorf("written files do not parse to the edited model (-edited +reparsed):\n%s", diff)
	}
}

func TestSaveFilesAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "govs.conf")
	if err := os.WriteFile(p, []byte("# keep me\nvirtual_server 10.0.0.1 80 {\n    real_server 10.0.0.2 80 {\n    }\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, ds := ParseFile(p, nil)
	if ds.HasErrors() {
		t.Fatal(diagStrings(ds))
	}
	cfg.VirtualServers[0].RealServers[0].Weight = 5
	if err := cfg.SaveFiles(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	if !strings.Contains(string(b), "# keep me") || !strings.Contains(string(b), "weight 5") {
		t.Errorf("saved file:\n%s", b)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode changed to %v", fi.Mode().Perm())
	}
	// A write into a directory that cannot be written leaves the old file.
	if os.Geteuid() != 0 {
		os.Chmod(dir, 0o500)
		defer os.Chmod(dir, 0o700)
		if err := WriteFileAtomic(p, []byte("broken")); err == nil {
			t.Errorf("write into a read-only directory succeeded")
		}
		if b2, _ := os.ReadFile(p); !bytes.Equal(b, b2) {
			t.Errorf("failed write changed the file")
		}
	}
}

func TestVariablesAndIncludes(t *testing.T) {
	files := map[string]string{
		"/etc/govs/main.conf":     "$PORT=8080\n$RS=real_server 10.0.0.2 ${PORT} {\ninclude conf.d/*.conf\n",
		"/etc/govs/conf.d/a.conf": "virtual_server 10.0.0.1 $PORT {\n  $RS\n  }\n}\n",
		"/etc/govs/conf.d/b.conf": "virtual_server 10.0.0.1 81 { # inline\n}\n",
	}
	opts := memFiles(files)
	cfg, ds := Parse("/etc/govs/main.conf", []byte(files["/etc/govs/main.conf"]), opts)
	if ds.HasErrors() {
		t.Fatal(diagStrings(ds))
	}
	if len(cfg.VirtualServers) != 2 || cfg.VirtualServers[0].Port() != 8080 || cfg.VirtualServers[0].RealServers[0].Port != 8080 || cfg.VirtualServers[1].Port() != 81 {
		t.Fatalf("got %s", dumpJSON(t, cfg))
	}
	if got := cfg.VirtualServers[1].Pos.String(); got != "/etc/govs/conf.d/b.conf:1:1" {
		t.Errorf("position in included file = %s", got)
	}
	if len(cfg.Files) != 3 {
		t.Errorf("files = %v", cfg.Files)
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.conf")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Add([]byte("virtual_server 1.2.3.4 80 { real_server 1.2.3.5 80 { TCP_CHECK { } } }"))
	f.Add([]byte("$A=$A$A\nx $A {\"\n}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		opts := &ParseOptions{
			ReadFile: func(string) ([]byte, error) { return nil, os.ErrNotExist },
			Glob:     func(string) ([]string, error) { return nil, nil },
		}
		cfg, ds := Parse("fuzz.conf", data, opts)
		ds = append(ds, cfg.Validate()...)
		for _, d := range ds {
			if d.Pos.File == "" {
				t.Fatalf("diagnostic without a position: %v", d)
			}
		}
		if ds.HasErrors() {
			return
		}
		out := Format(cfg)
		cfg2, ds2 := Parse("fuzz.conf", out, opts)
		if ds2.HasErrors() {
			t.Fatalf("rendering of a valid config does not parse:\n%s\n--- input\n%q\n--- rendering\n%s", diagStrings(ds2), data, out)
		}
		if a, b := dumpJSON(t, cfg), dumpJSON(t, cfg2); a != b {
			t.Fatalf("round trip changed the model:\n%s", cmp.Diff(a, b))
		}
	})
}

// TestVRRPGlobalDefaults: global_defs' vrrp_garp_*, vrrp_min_garp and
// vrrp_*_advert set the instance settings an instance does not set
// itself, and a rewrite keeps every instance's own value, also one equal
// to keepalived's built-in default.
func TestVRRPGlobalDefaults(t *testing.T) {
	src := `global_defs {
    vrrp_garp_master_delay 10
    vrrp_garp_master_repeat 2
    vrrp_garp_master_refresh 60
    vrrp_garp_lower_prio_repeat 3
    vrrp_lower_prio_no_advert
    vrrp_check_unicast_src
    vrrp_skip_check_adv_addr
}
vrrp_instance A {
    interface eth0
    virtual_router_id 1
    garp_master_delay 5
    garp_master_repeat 5
    garp_master_refresh 0
    lower_prio_no_advert off
    unicast_peer {
        10.0.0.2
    }
    virtual_ipaddress {
        10.0.0.100
    }
}
vrrp_instance B {
    interface eth0
    virtual_router_id 2
    skip_check_adv_addr
    higher_prio_send_advert
    unicast_fault_no_peer
    virtual_ipaddress {
        10.0.0.101
    }
}
`
	cfg, ds := LoadBytes("t.conf", []byte(src), nil)
	if ds.HasErrors() || len(ds) != 0 {
		t.Fatalf("diagnostics:\n%s", diagStrings(ds))
	}
	check := func(cfg *Config) {
		t.Helper()
		a := cfg.Global.InstanceSettings(cfg.VRRPInstances[0])
		b := cfg.Global.InstanceSettings(cfg.VRRPInstances[1])
		wantA := InstanceSettings{GarpMasterDelay: Duration(5 * time.Second), GarpMasterRepeat: 5,
			GarpMasterRefreshRepeat: 1,
			// the lower-priority defaults follow the global master
			// delay, not the instance's own
			GarpLowerPrioDelay: Duration(10 * time.Second), GarpLowerPrioRepeat: 3,
			CheckUnicastSrc: true}
		wantB := InstanceSettings{GarpMasterDelay: Duration(10 * time.Second), GarpMasterRepeat: 2,
			GarpMasterRefresh: Duration(time.Minute), GarpMasterRefreshRepeat: 1,
			GarpLowerPrioDelay: Duration(10 * time.Second), GarpLowerPrioRepeat: 3,
			LowerPrioNoAdvert: true, HigherPrioSendAdvert: true}
		if a != wantA {
			t.Errorf("A = %+v\nwant %+v", a, wantA)
		}
		if b != wantB {
			t.Errorf("B = %+v\nwant %+v", b, wantB)
		}
	}
	check(cfg)
	// the rendering keeps A's own values equal to the built-in defaults
	// and parses back to the same
	out := Format(cfg)
	for _, line := range []string{"garp_master_delay 5", "garp_master_repeat 5", "garp_master_refresh 0", "lower_prio_no_advert off", "skip_check_adv_addr\n", "vrrp_skip_check_adv_addr\n", "unicast_fault_no_peer\n"} {
		if !strings.Contains(string(out), line) {
			t.Errorf("rendering lost %q:\n%s", line, out)
		}
	}
	cfg2, ds2 := LoadBytes("t.conf", out, nil)
	if ds2.HasErrors() || dumpJSON(t, cfg) != dumpJSON(t, cfg2) {
		t.Fatalf("round trip: %v\n%s", diagStrings(ds2), out)
	}
	check(cfg2)
}

// TestVRRPMinGARP: vrrp_min_garp makes the defaults one GARP with no
// second burst, for the lower-priority ones too; values set explicitly
// stay.
func TestVRRPMinGARP(t *testing.T) {
	src := `global_defs {
    vrrp_min_garp
    vrrp_garp_lower_prio_delay 2
}
vrrp_instance A {
    interface eth0
    virtual_router_id 1
    garp_lower_prio_repeat 0
    virtual_ipaddress {
        10.0.0.100
    }
}
vrrp_instance B {
    interface eth0
    virtual_router_id 2
    virtual_ipaddress {
        10.0.0.101
    }
}
`
	cfg, ds := LoadBytes("t.conf", []byte(src), nil)
	if ds.HasErrors() || len(ds) != 0 {
		t.Fatalf("diagnostics:\n%s", diagStrings(ds))
	}
	a := cfg.Global.InstanceSettings(cfg.VRRPInstances[0])
	b := cfg.Global.InstanceSettings(cfg.VRRPInstances[1])
	want := InstanceSettings{GarpMasterRepeat: 1, GarpMasterRefreshRepeat: 1, GarpLowerPrioDelay: Duration(2 * time.Second), GarpLowerPrioRepeat: 1}
	if b != want {
		t.Errorf("B = %+v\nwant %+v", b, want)
	}
	want.GarpLowerPrioRepeat = 0
	if a != want {
		t.Errorf("A = %+v\nwant %+v", a, want)
	}
	// without any global: keepalived's defaults
	cfg.Global.VRRPDefaults = VRRPDefaults{}
	want = InstanceSettings{GarpMasterDelay: DefaultGarpMasterDelay, GarpMasterRepeat: DefaultGarpMasterRepeat, GarpMasterRefreshRepeat: DefaultGarpRefreshRepeat,
		GarpLowerPrioDelay: DefaultGarpMasterDelay, GarpLowerPrioRepeat: DefaultGarpMasterRepeat}
	if b := cfg.Global.InstanceSettings(cfg.VRRPInstances[1]); b != want {
		t.Errorf("no globals: B = %+v\nwant %+v", b, want)
	}
}

// TestGarpMasterRepeatZero: a garp_master_repeat of 0 (global or the
// instance's) is 1 with a warning, as in keepalived; the lower-priority
// repeat that follows the global one is 1 too, not none.
func TestGarpMasterRepeatZero(t *testing.T) {
	src := "global_defs {\n    vrrp_garp_master_repeat 0\n}\n" +
		"vrrp_instance A {\n    interface eth0\n    virtual_router_id 1\n    virtual_ipaddress {\n        10.0.0.100\n    }\n}\n" +
		"vrrp_instance B {\n    interface eth0\n    virtual_router_id 2\n    garp_master_repeat 0\n    virtual_ipaddress {\n        10.0.0.101\n    }\n}\n"
	cfg, ds := LoadBytes("t.conf", []byte(src), nil)
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	if n := strings.Count(diagStrings(ds), "is taken as 1"); n != 2 {
		t.Errorf("%d warnings, want 2:\n%s", n, diagStrings(ds))
	}
	for _, vi := range cfg.VRRPInstances {
		if s := cfg.Global.InstanceSettings(vi); s.GarpMasterRepeat != 1 || s.GarpLowerPrioRepeat != 1 {
			t.Errorf("%s: %+v", vi.Name, s)
		}
	}
}

// TestSMTPCheckHosts: an SMTP_CHECK's host blocks (keepalived's older
// syntax) are checkers of their own beside the SMTP_CHECK, with its
// settings and their own connection; a rewrite keeps all of them.
func TestSMTPCheckHosts(t *testing.T) {
	src := `virtual_server 10.0.0.1 25 {
    lb_kind NAT
    real_server 172.16.1.11 25 {
        SMTP_CHECK {
            connect_timeout 10
            helo_name foo.bar.com
            host {
                connect_ip 172.16.1.12
            }
            host {
                connect_ip 192.168.155.10
                connect_port 2525
                connect_timeout 3
            }
        }
    }
}
`
	cfg, ds := LoadBytes("t.conf", []byte(src), nil)
	if ds.HasErrors() || len(ds) != 0 {
		t.Fatalf("diagnostics:\n%s", diagStrings(ds))
	}
	var got []string
	for _, c := range cfg.VirtualServers[0].RealServers[0].Checks {
		got = append(got, fmt.Sprintf("%s %v:%d %s %v", c.Kind, c.ConnectIP, c.ConnectPort, c.HeloName, c.ConnectTimeout.D()))
	}
	want := []string{"SMTP_CHECK invalid IP:0 foo.bar.com 10s", "SMTP_CHECK 172.16.1.12:0 foo.bar.com 10s", "SMTP_CHECK 192.168.155.10:2525 foo.bar.com 3s"}
	if !slices.Equal(got, want) {
		t.Errorf("checks:\n%q\nwant\n%q", got, want)
	}
	cfg2, ds2 := LoadBytes("t.conf", Format(cfg), nil)
	if ds2.HasErrors() || dumpJSON(t, cfg) != dumpJSON(t, cfg2) {
		t.Fatalf("round trip: %v\n%s", diagStrings(ds2), Format(cfg))
	}
}

// TestRulePriorities: rules without a priority are numbered as keepalived
// does, from 16384 down per family in the order written, with a warning.
func TestRulePriorities(t *testing.T) {
	src := `static_rules {
    from 10.0.0.0/8 table 100
}
vrrp_instance A {
    interface eth0
    virtual_router_id 1
    virtual_ipaddress {
        10.0.0.100
    }
    virtual_rules {
        from 10.1.0.0/16 table 101
        from 2001:db8::/32 table 102
        from 10.2.0.0/16 table 103 priority 500
        to 10.3.0.0/16 table 104
    }
}
`
	cfg, ds := LoadBytes("t.conf", []byte(src), nil)
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	if n := strings.Count(diagStrings(ds), "rule without priority"); n != 4 {
		t.Errorf("%d warnings, want 4:\n%s", n, diagStrings(ds))
	}
	p := cfg.RulePriorities()
	rs := cfg.VRRPInstances[0].Rules
	got := []int{p[&cfg.Statics[0].Rules[0]], p[&rs[0]], p[&rs[1]], p[&rs[2]], p[&rs[3]]}
	if want := []int{16384, 16383, 16384, 0, 16382}; !slices.Equal(got, want) {
		t.Errorf("priorities %v, want %v", got, want)
	}
	// the rendering keeps the rules as written
	if out := string(Format(cfg)); strings.Contains(out, "16384") {
		t.Errorf("a computed priority was written:\n%s", out)
	}
}

// TestRouteWords: multipath (keepalived's "or" and "nexthop"), onlink,
// proto and route metrics are read; a word govs does not know is a
// warning, not silently dropped.
func TestRouteWords(t *testing.T) {
	src := `vrrp_instance A {
    interface eth0
    virtual_router_id 1
    virtual_ipaddress {
        10.0.0.100
    }
    virtual_routes {
        192.168.113.0/24 via 192.168.100.252 dev eth1 or 192.168.100.253
        10.70.0.0/16 nexthop via 10.0.0.2 weight 2 nexthop via 10.0.0.3 dev eth1 onlink
        10.71.0.0/16 via 192.0.2.1 dev eth0 onlink proto static mtu lock 1400 advmss 1360 hoplimit 9 initcwnd 10 initrwnd 20
        10.72.0.0/16 via 10.0.0.254 realms 5
    }
}
`
	cfg, ds := LoadBytes("t.conf", []byte(src), nil)
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	if d := diagStrings(ds); strings.Count(d, "is not supported by govs and is ignored") != 2 || !strings.Contains(d, `"realms"`) {
		t.Errorf("diagnostics:\n%s", d)
	}
	rs := cfg.VRRPInstances[0].Routes
	if got, want := rs[0].Nexthops, []Nexthop{{Via: netip.MustParseAddr("192.168.100.252"), Dev: "eth1"}, {Via: netip.MustParseAddr("192.168.100.253")}}; !slices.Equal(got, want) || rs[0].Via.IsValid() || rs[0].Dev != "" {
		t.Errorf("or: %+v", rs[0])
	}
	if got, want := rs[1].Nexthops, []Nexthop{{Via: netip.MustParseAddr("10.0.0.2"), Weight: 2}, {Via: netip.MustParseAddr("10.0.0.3"), Dev: "eth1", Onlink: true}}; !slices.Equal(got, want) {
		t.Errorf("nexthop: %+v", rs[1])
	}
	r := rs[2]
	if !r.Onlink || r.ProtoID != 4 || r.MTU != 1400 || !r.MTULock || r.AdvMSS != 1360 || r.Hoplimit != 9 || r.InitCwnd != 10 || r.InitRwnd != 20 {
		t.Errorf("options: %+v", r)
	}
	cfg2, ds2 := LoadBytes("t.conf", Format(cfg), nil)
	if ds2.HasErrors() || dumpJSON(t, cfg) != dumpJSON(t, cfg2) {
		t.Fatalf("round trip: %v\n%s", diagStrings(ds2), Format(cfg))
	}
}

// TestGarpExtraIf: garp_extra_if [all] SECS in an instance, else the
// global vrrp_garp_extra_if; 0 in the instance turns a global one off.
func TestGarpExtraIf(t *testing.T) {
	src := "global_defs {\n    vrrp_garp_extra_if all 100\n}\n" +
		"vrrp_instance A {\n    interface eth0\n    virtual_router_id 1\n    virtual_ipaddress {\n        10.0.0.100\n    }\n}\n" +
		"vrrp_instance B {\n    interface eth0\n    virtual_router_id 2\n    garp_extra_if 30\n    virtual_ipaddress {\n        10.0.0.101\n    }\n}\n" +
		"vrrp_instance C {\n    interface eth0\n    virtual_router_id 3\n    garp_extra_if 0\n    virtual_ipaddress {\n        10.0.0.102\n    }\n}\n"
	cfg, ds := LoadBytes("t.conf", []byte(src), nil)
	// B's (no use_vmac, no all) does nothing: warned
	if ds.HasErrors() || len(ds) != 1 || !strings.Contains(diagStrings(ds), `"B": garp_extra_if without all has no effect`) {
		t.Fatalf("diagnostics:\n%s", diagStrings(ds))
	}
	want := []GarpExtraIf{{Interval: Duration(100 * time.Second), All: true}, {Interval: Duration(30 * time.Second)}, {}}
	for i, vi := range cfg.VRRPInstances {
		if got := cfg.Global.InstanceSettings(vi).GarpExtraIf; got == nil || *got != want[i] {
			t.Errorf("%s: %+v, want %+v", vi.Name, got, want[i])
		}
	}
	out := Format(cfg)
	for _, l := range []string{"vrrp_garp_extra_if all 100\n", "garp_extra_if 30\n", "garp_extra_if 0\n"} {
		if !strings.Contains(string(out), l) {
			t.Errorf("rendering lost %q:\n%s", l, out)
		}
	}
	cfg2, ds2 := LoadBytes("t.conf", out, nil)
	if ds2.HasErrors() || dumpJSON(t, cfg) != dumpJSON(t, cfg2) {
		t.Fatalf("round trip: %v\n%s", diagStrings(ds2), out)
	}
	if _, ds := LoadBytes("t.conf", []byte("global_defs {\n    vrrp_garp_extra_if 0\n}\n"), nil); !ds.HasErrors() {
		t.Error("a global vrrp_garp_extra_if 0 was taken")
	}
}

// TestSharedRouteWarning: two holders giving one route (destination,
// table, metric) different paths are warned about; the same route in
// two instances is not.
func TestSharedRouteWarning(t *testing.T) {
	inst := func(name, vrid, route string) string {
		return "vrrp_instance " + name + " {\n    interface eth0\n    virtual_router_id " + vrid + "\n    virtual_ipaddress {\n        10.0.0." + vrid + "\n    }\n    virtual_routes {\n        " + route + "\n    }\n}\n"
	}
	src := inst("A", "1", "10.5.0.0/16 via 10.0.0.254") + inst("B", "2", "10.5.0.0/16 via 10.0.0.253") +
		inst("C", "3", "10.6.0.0/16 via 10.0.0.254") + inst("D", "4", "10.6.0.0/16 via 10.0.0.254")
	_, ds := LoadBytes("t.conf", []byte(src), nil)
	if n := strings.Count(diagStrings(ds), "is also"); n != 1 || !strings.Contains(diagStrings(ds), `route 10.5.0.0/16 is also vrrp_instance "A"'s`) {
		t.Errorf("diagnostics:\n%s", diagStrings(ds))
	}
}

// TestNetNamespace: net_namespace in global_defs or on its own line.
func TestNetNamespaceKeyword(t *testing.T) {
	for src, want := range map[string]string{
		"net_namespace blue\n":                        "blue",
		"global_defs {\n    net_namespace green\n}\n": "green",
		"": "",
	} {
		cfg, ds := LoadBytes("t.conf", []byte(src), nil)
		if ds.HasErrors() || len(ds) != 0 || cfg.NetNamespace() != want {
			t.Errorf("%q: %q, %s", src, cfg.NetNamespace(), diagStrings(ds))
		}
		cfg2, _ := LoadBytes("t.conf", Format(cfg), nil)
		if cfg2.NetNamespace() != want {
			t.Errorf("%q: round trip lost it", src)
		}
	}
}

// TestSMTPCheckHostSettings: as keepalived, a host starts from the
// connection settings written before it; a checker setting written in a
// host block is the whole SMTP_CHECK's.
func TestSMTPCheckHostSettings(t *testing.T) {
	src := `virtual_server 10.0.0.1 25 {
    lb_kind NAT
    real_server 172.16.1.11 25 {
        SMTP_CHECK {
            connect_port 2525
            host {
                connect_ip 172.16.1.12
                retry 7
            }
            connect_timeout 9
        }
    }
}
`
	cfg, ds := LoadBytes("t.conf", []byte(src), nil)
	if ds.HasErrors() || len(ds) != 0 {
		t.Fatalf("diagnostics:\n%s", diagStrings(ds))
	}
	cs := cfg.VirtualServers[0].RealServers[0].Checks
	if len(cs) != 2 {
		t.Fatalf("%d checks", len(cs))
	}
	main, host := cs[0], cs[1]
	if main.ConnectPort != 2525 || main.ConnectTimeout == nil || main.ConnectTimeout.D() != 9*time.Second || main.Retry == nil || *main.Retry != 7 {
		t.Errorf("SMTP_CHECK: %+v", main)
	}
	if host.ConnectIP.String() != "172.16.1.12" || host.ConnectPort != 2525 || host.ConnectTimeout != nil || host.Retry == nil || *host.Retry != 7 {
		t.Errorf("host: port %d timeout %v retry %v", host.ConnectPort, host.ConnectTimeout, host.Retry)
	}
}

// TestSyncDaemonKeyword: lvs_sync_daemon's sync ID is the instance's
// VRID unless given (an explicit 0 stays 0: no filtering), through a
// round trip too; the group must be a multicast address.
func TestSyncDaemonKeyword(t *testing.T) {
	inst := "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n    priority 100\n    virtual_ipaddress {\n        10.0.0.100\n    }\n}\n"
	for _, c := range []struct {
		line string
		id   *int
		err  string
	}{
		{line: "lvs_sync_daemon eth1 VI_1"},
		{line: "lvs_sync_daemon eth1 inst VI_1 id 0", id: new(0)},
		{line: "lvs_sync_daemon eth1 VI_1 id 9 maxlen 1400 port 8850 ttl 2 group 239.1.1.1", id: new(9)},
		{line: "lvs_sync_daemon eth1 VI_1 group 10.1.1.1", err: `group "10.1.1.1" is not a multicast address`},
		{line: "lvs_sync_daemon eth1 VI_9", err: `unknown vrrp_instance "VI_9"`},
	} {
		src := "global_defs {\n    " + c.line + "\n}\n" + inst
		cfg, ds := LoadBytes("t.conf", []byte(src), nil)
		if c.err != "" {
			if !strings.Contains(diagStrings(ds), c.err) {
				t.Errorf("%s: %s, want %q", c.line, diagStrings(ds), c.err)
			}
			continue
		}
		if ds.HasErrors() || len(ds) != 0 {
			t.Errorf("%s: %s", c.line, diagStrings(ds))
			continue
		}
		for _, cf := range []*Config{cfg, func() *Config { c2, _ := LoadBytes("t.conf", Format(cfg), nil); return c2 }()} {
			s := cf.Global.LVSSyncDaemon
			if s == nil || s.Interface != "eth1" || s.Instance != "VI_1" || (s.ID == nil) != (c.id == nil) || (s.ID != nil && *s.ID != *c.id) {
				t.Errorf("%s: read as %+v", c.line, s)
			}
		}
	}
}

// keepalived's older vrrp_instance keyword lvs_sync_daemon_interface is
// the global lvs_sync_daemon with that instance.
func TestSyncDaemonInterfaceKeyword(t *testing.T) {
	src := "vrrp_instance VI_7 {\n    interface eth0\n    virtual_router_id 7\n    priority 100\n    lvs_sync_daemon_interface eth1\n    virtual_ipaddress {\n        10.0.0.100\n    }\n}\n"
	cfg, ds := LoadBytes("t.conf", []byte(src), nil)
	if ds.HasErrors() || !strings.Contains(diagStrings(ds), "lvs_sync_daemon_interface is deprecated") {
		t.Fatalf("diagnostics: %s", diagStrings(ds))
	}
	if s := cfg.Global.LVSSyncDaemon; s == nil || s.Interface != "eth1" || s.Instance != "VI_7" || s.ID != nil {
		t.Fatalf("read as %+v", s)
	}
	cfg2, ds2 := LoadBytes("t.conf", Format(cfg), nil)
	if ds2.HasErrors() || cfg2.Global.LVSSyncDaemon == nil || cfg2.Global.LVSSyncDaemon.Instance != "VI_7" {
		t.Fatalf("round trip: %+v %s", cfg2.Global.LVSSyncDaemon, diagStrings(ds2))
	}
}

// TestBGPBlock reads every keyword of govs_bgp into the model, and the
// sloppy TCP default that follows it.
func TestBGPBlock(t *testing.T) {
	in := `global_defs {
    router_id lb1
}
govs_bgp {
    local_as 4200000001
    router_id 10.0.0.11
    listen_port 1179
    hold_time 30
    keepalive 10
    connect_retry 2
    next_hop 10.0.0.11
    next_hop6 2001:db8::11
    community 65001:100 no-export
    med 5
    local_pref 200
    as_path_prepend 2
    announce_delay 5
    neighbor 10.0.0.1 {
        remote_as 65000
        local_address 10.0.0.11
        port 1179
        password "s3cret word"
        passive
        ebgp_multihop 2
        hold_time 9
        keepalive 3
        connect_retry 1
    }
    neighbor 10.0.0.5 {
        remote_as 65000
        bfd
        bfd_interval 100
        bfd_multiplier 4
    }
    neighbor 2001:db8::1 {
        remote_as 65010
    }
}
`
	cfg, ds := LoadBytes("bgp.conf", []byte(in), nil)
	if ds.HasErrors() {
		t.Fatal(diagStrings(ds))
	}
	b := cfg.BGP
	if b == nil {
		t.Fatal("no BGP block in the model")
	}
	if b.LocalAS != 4200000001 || b.RouterID.String() != "10.0.0.11" || b.ListenPort != 1179 || b.HoldTime != 30 || b.Keepalive != 10 || b.ConnectRetry != 2 ||
		b.NextHop.String() != "10.0.0.11" || b.NextHop6.String() != "2001:db8::11" || *b.MED != 5 || *b.LocalPref != 200 || b.Prepend != 2 {
		t.Errorf("global settings: %+v", b)
	}
	if len(b.Communities) != 2 {
		t.Fatalf("communities %v", b.Communities)
	}
	if v, _ := ParseCommunity(b.Communities[0]); v != 65001<<16|100 {
		t.Errorf("community %s = %#x", b.Communities[0], v)
	}
	if v, _ := ParseCommunity(b.Communities[1]); v != 0xFFFFFF01 {
		t.Errorf("no-export = %#x", v)
	}
	if b.AnnounceDelay == nil || b.AnnounceDelay.D() != 5*time.Second {
		t.Errorf("announce_delay %v", b.AnnounceDelay)
	}
	if nb := b.Neighbors[1]; !nb.BFD || nb.BFDInterval != 100 || nb.BFDMultiplier != 4 {
		t.Errorf("bfd neighbor: %+v", nb)
	}
	if len(b.Neighbors) != 3 {
		t.Fatalf("neighbors %+v", b.Neighbors)
	}
	n := b.Neighbors[0]
	if n.Address.String() != "10.0.0.1" || n.RemoteAS != 65000 || n.LocalAddress.String() != "10.0.0.11" || n.Port != 1179 || n.Password != "s3cret word" ||
		!n.Passive || n.Multihop != 2 || n.HoldTime != 9 || n.Keepalive != 3 || n.ConnectRetry != 1 {
		t.Errorf("neighbor: %+v", n)
	}
	if !cfg.SloppyTCP() {
		t.Error("govs_bgp without govs_sloppy_tcp: sloppy TCP should be on")
	}
	// the rendering reads back the same
	cfg2, ds2 := Parse("rendered.conf", Format(cfg), nil)
	if ds2.HasErrors() {
		t.Fatal(diagStrings(ds2))
	}
	if diff := cmp.Diff(dumpJSON(t, cfg), dumpJSON(t, cfg2)); diff != "" {
		t.Errorf("govs_bgp changed through Format:\n%s", diff)
	}

	off, ds := LoadBytes("off.conf", []byte("global_defs {\n govs_sloppy_tcp off\n}\n"+in[strings.Index(in, "govs_bgp"):]), nil)
	if ds.HasErrors() {
		t.Fatal(diagStrings(ds))
	}
	if off.SloppyTCP() {
		t.Error("govs_sloppy_tcp off with govs_bgp: sloppy TCP should be off")
	}
	plain, _ := LoadBytes("plain.conf", []byte("global_defs {\n router_id x\n}\n"), nil)
	if plain.SloppyTCP() {
		t.Error("no govs_bgp: sloppy TCP should be off")
	}
}

// TestProcessKeywords: keepalived's global_defs keywords for its state
// files, FIFOs and processes are read (and written back) where govs acts
// on them, accepted where govs always behaves so, and warned about with
// what to use instead where govs has no equivalent.
func TestProcessKeywords(t *testing.T) {
	src := `global_defs {
    json_version 2
    vrrp_notify_priority_changes
    fifo_write_vrrp_states_on_reload
    umask IWGRP | IWOTH
    checker_no_swap
    dynamic_interfaces allow_if_changes
    reload_check_config
    vrrp_rt_priority 50
    max_auto_priority
    enable_traps
    enable_dbus
    enable_snmp_keepalived
    enable_snmp_rfc
    snmp_socket tcp:localhost:705
}
`
	cfg, ds := LoadBytes("t.conf", []byte(src), nil)
	if ds.HasErrors() {
		t.Fatalf("diagnostics:\n%s", diagStrings(ds))
	}
	g := &cfg.Global
	if g.JSONVersion != 2 || !g.VRRPNotifyPriorityChanges || !g.FIFOWriteVRRPStatesOnReload || g.Umask == nil || *g.Umask != 0o22 ||
		!g.NoSwap() || g.VRRPNoSwap || !g.SNMPVRRP || !g.SNMPRFCv2 || !g.SNMPRFCv3 || g.SNMPSocket != "tcp:localhost:705" || !g.SNMPTraps {
		t.Errorf("global_defs: %+v", g)
	}
	warns := diagStrings(ds)
	for _, want := range []string{
		"t.conf:9:5: warning: vrrp_rt_priority is not applied: govs is one process",
		"t.conf:10:5: warning: max_auto_priority is not applied",
		"t.conf:12:5: warning: enable_dbus: govs has no DBus interface",
	} {
		if !strings.Contains(warns, want) {
			t.Errorf("diagnostics lack %q:\n%s", want, warns)
		}
	}
	if len(ds) != 3 {
		t.Errorf("%d diagnostics, want 3 (dynamic_interfaces and reload_check_config are what govs does):\n%s", len(ds), warns)
	}
	out := Format(cfg)
	cfg2, ds2 := LoadBytes("t.conf", out, nil)
	if ds2.HasErrors() || dumpJSON(t, cfg) != dumpJSON(t, cfg2) || !strings.Contains(string(out), "umask 0022") {
		t.Fatalf("round trip: %v\n%s", diagStrings(ds2), out)
	}
	for _, bad := range []string{"umask 0999", "umask IWFOO", "json_version 3", "snmp_socket tcp:nohost", "snmp_socket unix:"} {
		if _, ds := LoadBytes("t.conf", []byte("global_defs {\n    "+bad+"\n}\n"), nil); !ds.HasErrors() {
			t.Errorf("%s: no error", bad)
		}
	}
	_, ds = LoadBytes("t.conf", []byte("global_defs {\n    umask 0177\n}\n"), nil)
	if ds.HasErrors() {
		t.Errorf("umask 0177: %s", diagStrings(ds))
	}
}

// TestOldUnicastChecksum: old_unicast_checksum [never] is read, written
// back and warned about where it does nothing.
func TestOldUnicastChecksum(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{"old_unicast_checksum", "config"},
		{"old_unicast_checksum never", "never"},
		{"", ""},
	} {
		in := "vrrp_instance A {\n interface eth0\n virtual_router_id 5\n version 3\n " + tc.line + "\n unicast_peer {\n  10.0.0.2\n }\n virtual_ipaddress {\n  10.0.0.100\n }\n}\n"
		cfg, ds := LoadBytes("t.conf", []byte(in), nil)
		if len(ds) != 0 {
			t.Fatalf("%q: %s", tc.line, diagStrings(ds))
		}
		if got := cfg.VRRPInstances[0].OldUnicastChecksum; got != tc.want {
			t.Fatalf("%q: read as %q, want %q", tc.line, got, tc.want)
		}
		out := Format(cfg)
		if tc.line != "" && !strings.Contains(string(out), "    "+tc.line+"\n") {
			t.Fatalf("%q not written:\n%s", tc.line, out)
		}
		cfg2, ds2 := Parse("rendered.conf", out, nil)
		if ds2.HasErrors() || cfg2.VRRPInstances[0].OldUnicastChecksum != tc.want {
			t.Fatalf("%q: rendering reads back as %q: %s", tc.line, cfg2.VRRPInstances[0].OldUnicastChecksum, diagStrings(ds2))
		}
	}
}

// TestKeepalivedProcessKeywords: global_defs and top-level keywords of
// keepalived 2.2.7 that govs reads (or accepts, or warns about), and the
// writer gives them back.
func TestKeepalivedProcessKeywords(t *testing.T) {
	in := `instance lb1
child_wait_time 7
use_pid_dir
linkbeat_use_polling
global_defs {
    log_unknown_vrids
    vrrp_rx_bufs_policy advert
    vrrp_rx_bufs_multiplier 5
    process_name govs-lb
    process_names
    vrrp_process_name v
    data_use_instance
    reload_time_file /run/reload-at
    reload_repeat
    reload_file
    rs_init_notifies
    no_checker_emails
    tmp_config_directory /var/tmp
    config_save_dir /var/tmp/saves
    vrrp_netlink_monitor_rcv_bufs 1048576
}
garp_group {
    garp_interval 0.5
    gna_interval 0.25
    interfaces {
        eth0
        eth1
    }
}
vrrp_instance A {
    interface eth0
    virtual_router_id 5
    kernel_rx_buf_size 65536
    linkbeat_use_polling
    virtual_ipaddress {
        10.0.0.1
    }
}
`
	cfg, ds := LoadBytes("t.conf", []byte(in), nil)
	if ds.HasErrors() {
		t.Fatal(diagStrings(ds))
	}
	var warned []string
	for _, d := range ds {
		warned = append(warned, fmt.Sprintf("%d", d.Pos.Line))
	}
	// use_pid_dir, linkbeat_use_polling (twice), vrrp_process_name,
	// config_save_dir, vrrp_netlink_monitor_rcv_bufs
	if want := []string{"3", "4", "11", "19", "20", "34"}; !slices.Equal(warned, want) {
		t.Errorf("warnings on lines %v, want %v:\n%s", warned, want, diagStrings(ds))
	}
	check := func(cfg *Config) {
		t.Helper()
		g := cfg.Global
		if cfg.InstanceName != "lb1" || !g.LogUnknownVRIDs || g.VRRPRxBufsPolicy != "ADVERT" || g.VRRPRxBufsMultiplier != 5 ||
			g.ProcessName != "govs-lb" || !g.ProcessNames || !g.DataUseInstance || g.ReloadTimeFile != "/run/reload-at" || !g.ReloadRepeat ||
			!g.HasReloadFile || g.ReloadFile != "" || !g.RSInitNotifies || !g.NoCheckerEmails || cfg.VRRPInstances[0].KernelRxBufSize != 65536 {
			t.Errorf("read as %+v (instance %q, kernel_rx_buf_size %d)", g, cfg.InstanceName, cfg.VRRPInstances[0].KernelRxBufSize)
		}
		if len(cfg.GarpGroups) != 1 || cfg.GarpGroups[0].GarpInterval.D() != 500*time.Millisecond || cfg.GarpGroups[0].GnaInterval.D() != 250*time.Millisecond ||
			!slices.Equal(cfg.GarpGroups[0].Interfaces, []string{"eth0", "eth1"}) {
			t.Errorf("garp_group read as %+v", cfg.GarpGroups)
		}
	}
	check(cfg)
	out := Format(cfg)
	cfg2, ds2 := Parse("rendered.conf", out, nil)
	if ds2.HasErrors() {
		t.Fatalf("%s\n%s", diagStrings(ds2), out)
	}
	check(cfg2)
	for _, bad := range []struct{ in, msg string }{
		{"global_defs {\n    vrrp_rx_bufs_policy lots\n}\n", `vrrp_rx_bufs_policy "lots": not MTU, ADVERT or a size in bytes`},
		{"global_defs {\n    reload_time_file run/at\n}\n", `reload_time_file "run/at" is not an absolute path`},
		{"garp_group {\n    interface eth0\n    interfaces {\n        eth1\n    }\n}\n", "garp_group: give interface or interfaces, not both"},
	} {
		_, ds := LoadBytes("t.conf", []byte(bad.in), nil)
		if !strings.Contains(diagStrings(ds), bad.msg) {
			t.Errorf("%q: want %q, got\n%s", bad.in, bad.msg, diagStrings(ds))
		}
	}
}

// TestSharedVRIDGroups: two instances may share a VRID on one interface
// when their multicast groups differ (mcast_dst_ip, or one on the global
// group), as keepalived 2.2.7 allows.
func TestSharedVRIDGroups(t *testing.T) {
	in := "global_defs {\n vrrp_mcast_group4 224.0.0.50\n}\nvrrp_instance A {\n interface eth0\n virtual_router_id 5\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n" +
		"vrrp_instance B {\n interface eth0\n virtual_router_id 5\n mcast_dst_ip 224.0.0.100\n virtual_ipaddress {\n  10.0.0.2\n }\n}\n"
	if _, ds := LoadBytes("t.conf", []byte(in), nil); len(ds) != 0 {
		t.Fatal(diagStrings(ds))
	}
	// B on the global group is A's router again
	_, ds := LoadBytes("t.conf", []byte(strings.Replace(in, "mcast_dst_ip 224.0.0.100", "mcast_dst_ip 224.0.0.50", 1)), nil)
	if !strings.Contains(diagStrings(ds), "virtual_router_id 5 already used on eth0") {
		t.Fatalf("same group: %s", diagStrings(ds))
	}
}
