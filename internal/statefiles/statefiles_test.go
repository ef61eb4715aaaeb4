package statefiles

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/vrrp"
)

// TestWriteFile: the file appears whole with mode 0600, replaces a link
// planted at its name instead of writing through it, and a failed render
// leaves the old file and no temporary file.
func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere")
	if err := os.WriteFile(target, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, StatsFile)); err != nil {
		t.Fatal(err)
	}
	write := func(s string) error {
		return WriteFile(dir, StatsFile, Mode(nil), func(w io.Writer) error { _, err := io.WriteString(w, s); return err })
	}
	if err := write("one\n"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(filepath.Join(dir, StatsFile))
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file: %v %v", fi.Mode(), err)
	}
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Errorf("written through the link: %q", b)
	}
	err = WriteFile(dir, StatsFile, Mode(nil), func(w io.Writer) error { io.WriteString(w, "half"); return errors.New("boom") })
	if err == nil || !strings.Contains(err.Error(), StatsFile) {
		t.Errorf("failed render: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, StatsFile)); string(b) != "one\n" {
		t.Errorf("after a failed write: %q", b)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("files left: %v", ents)
	}
}

// statusOf makes an instance's status, with its configuration, the way
// a vrrp.Node shows it.
func statusOf(t *testing.T, cfg vrrp.InstanceConfig, scripts ...vrrp.ScriptConfig) vrrp.InstanceStatus {
	t.Helper()
	n, err := vrrp.NewNode(vrrp.Options{Instances: []vrrp.InstanceConfig{cfg}, Scripts: scripts, System: struct{ vrrp.System }{}})
	if err != nil {
		t.Fatal(err)
	}
	return n.Dump().Instances[0]
}

// TestStatsClear: the counters govs keeps grow; after a clear the file
// shows them from the clear on, and an instance whose counters restarted
// (a reload replaced it) shows them as they are.
func TestStatsClear(t *testing.T) {
	st := statusOf(t, vrrp.InstanceConfig{Name: "VI_1", Interface: "eth0", VRID: 7,
		VirtualIPs: []vrrp.VirtualIP{{Prefix: mustPrefix("10.0.0.1/32")}}})
	st.Counters = vrrp.Counters{AdvertsSent: 10, AdvertsReceived: 4, ReleasedMaster: 1, PriorityZeroSent: 1,
		Dropped: map[vrrp.DropReason]uint64{vrrp.DropShort: 1, vrrp.DropLength: 2, vrrp.DropAuthType: 3, vrrp.DropAuth: 4, vrrp.DropReplay: 1}}
	in := &Input{VRRP: vrrp.Dump{Instances: []vrrp.InstanceStatus{st}}}
	var c Clearer
	render := func() string {
		var b bytes.Buffer
		if err := WriteStats(&b, in, &c); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	first := render()
	for _, want := range []string{"VRRP Instance: VI_1\n", "    Received: 4\n    Sent: 10\n", "  Released master: 1\n",
		"    Length: 3\n", "    Type Mismatch: 3\n    Failure: 5\n", "  Priority Zero:\n    Received: 0\n    Sent: 1\n"} {
		if !strings.Contains(first, want) {
			t.Errorf("stats lack %q:\n%s", want, first)
		}
	}
	c.Clear(in.VRRP.Instances)
	in.VRRP.Instances[0].Counters.AdvertsSent = 13
	if got := render(); !strings.Contains(got, "    Received: 0\n    Sent: 3\n") || !strings.Contains(got, "    Length: 0\n") {
		t.Errorf("after the clear:\n%s", got)
	}
	// made anew by a reload: its counters start again, the clear's
	// baseline is not theirs
	in.VRRP.Instances[0].Counters = vrrp.Counters{AdvertsSent: 20}
	in.VRRP.Instances[0].Started = in.VRRP.Instances[0].Started.Add(time.Minute)
	if got := render(); !strings.Contains(got, "    Sent: 20\n") {
		t.Errorf("after a restart of the counters:\n%s", got)
	}
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// TestDataStates: a BACKUP shows its master and the master's interval, a
// FAULT instance wants FAULT (as keepalived's),
// the addresses are "set" only on a MASTER, a sync group is in FAULT
// with a member in FAULT, and a script's status follows the trackers.
func TestDataStates(t *testing.T) {
	chk := vrrp.ScriptConfig{Name: "chk", Script: "/bin/false x", Interval: 2e9, Timeout: 1e9, Weight: -5, Rise: 1, Fall: 1}
	backup := statusOf(t, vrrp.InstanceConfig{Name: "B", Interface: "eth0", VRID: 1, Priority: 100, Version: 3,
		AdvertInterval: 1e9, TrackScripts: []vrrp.TrackScript{{Name: "chk"}},
		VirtualIPs: []vrrp.VirtualIP{{Prefix: mustPrefix("10.0.0.1/24"), Label: "eth0:1"}}}, chk)
	backup.State, backup.EffectivePriority = vrrp.StateBackup, 100
	backup.MasterAddr, backup.MasterPriority, backup.MasterAdvertInterval = mustPrefix("10.0.0.2/32").Addr(), 200, 500e6
	backup.MasterDown = 1804687500 // 3 x 0.5 s + (256-100)/256 x 0.5 s
	backup.Trackers = []vrrp.Tracker{{Key: "script:chk", OK: false}}
	owner := statusOf(t, vrrp.InstanceConfig{Name: "O", Interface: "eth0", VRID: 2, Priority: 255,
		VirtualIPs: []vrrp.VirtualIP{{Prefix: mustPrefix("10.0.1.1/32")}}})
	owner.State = vrrp.StateFault
	in := &Input{Config: &config.Config{}, VRRP: vrrp.Dump{
		Instances:  []vrrp.InstanceStatus{backup, owner},
		Scripts:    []vrrp.ScriptConfig{chk},
		SyncGroups: []vrrp.SyncGroupConfig{{Name: "G", Members: []string{"B", "O"}}},
		Running:    []string{"chk"},
	}}
	var b bytes.Buffer
	if err := Data(&b, in); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		" VRRP Instance = B\n   VRRP Version = 3\n   State = BACKUP\n   Master router = 10.0.0.2\n   Master priority = 200\n   Master advert int = 0.50 sec\n   Wantstate = BACKUP\n",
		"   Master down timer = 1804687 usecs\n",
		"   Advert interval = 1000 milli-sec\n   Master advert interval = 500 milli-sec\n",
		"     10.0.0.1/24 dev eth0 scope global label eth0:1\n",
		" VRRP Instance = O\n   VRRP Version = 2\n   State = FAULT\n   Wantstate = FAULT\n",
		"   Authentication type = none\n",
		"     10.0.1.1 dev eth0 scope global\n",
		"------< VRRP Sync groups >------\n VRRP Sync Group = G, FAULT\n   VRRP member instances :\n     B\n     O\n",
		" VRRP Script = chk\n   Command = '/bin/false' 'x'\n   Interval = 2 sec\n   Timeout = 1 sec\n   Weight = -5\n",
		"   Status = BAD\n   Tracking instances :\n     B, weight -5\n   State = running\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("keepalived.data lacks\n%s\nin\n%s", want, out)
		}
	}
}

// TestCheckData: the virtual and real servers with their weights and
// health, in keepalived's names, and a checker per configured check.
func TestCheckData(t *testing.T) {
	cfg, diags := config.Parse("t.conf", []byte(`virtual_server 10.0.0.1 80 {
    delay_loop 3
    lb_algo wlc
    lb_kind DR
    quorum 2
    real_server 10.0.0.11 80 {
        weight 3
        HTTP_GET {
            url {
                path /
            }
        }
    }
    real_server 10.0.0.12 80 {
        TCP_CHECK {
        }
    }
}
`), nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	st := &api.State{Version: "v1", Dataplane: "xdp", Services: []api.Service{{
		Proto: "TCP", Addr: "10.0.0.1", Port: 80, Scheduler: "wlc", Method: "DR", Enabled: true, QuorumUp: false,
		Source: cfg.VirtualServers[0].Pos.String(),
		RealServers: []api.RealServer{
			{Addr: "10.0.0.11:80", Method: "Route", Weight: 3, ConfigWeight: 3, Healthy: true, Enabled: true, InPool: true},
			{Addr: "10.0.0.12:80", Method: "Route", Weight: 0, ConfigWeight: 1, Healthy: false, Enabled: true, Reason: "connect: refused"},
		},
	}}}
	var b bytes.Buffer
	if err := CheckData(&b, &Input{Config: cfg, State: st}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"------< LVS Topology >------\n System is govs v1, dataplane xdp\n ------< Virtual server >------\n VS VIP = 10.0.0.1, VPORT = 80\n",
		"   delay_loop = 3.000000\n   lvs_sched = wlc\n",
		"   quorum = 2, hysteresis = 0\n   default forwarding method = DR\n   alive = 1\n   quorum_state_up = 0\n",
		"   RIP = 10.0.0.11, RPORT = 80, WEIGHT = 3 EFF WEIGHT = 3\n   forwarding method = DR\n   alive = 1\n",
		"   RIP = 10.0.0.12, RPORT = 80, WEIGHT = 1 EFF WEIGHT = 0\n   forwarding method = DR\n   alive = 0\n   reason = connect: refused\n",
		" [10.0.0.1]:tcp:80 -> [10.0.0.11]:tcp:80\n   Enabled = yes\n   Up = yes\n   Current weight = 3\n   Keepalive method = HTTP_GET\n",
		" [10.0.0.1]:tcp:80 -> [10.0.0.12]:tcp:80\n   Enabled = yes\n   Up = no\n   Current weight = 0\n   Reason = connect: refused\n   Keepalive method = TCP_CHECK\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("keepalived_check.data lacks\n%s\nin\n%s", want, out)
		}
	}
}

func TestSignum(t *testing.T) {
	for name, want := range map[string]int{"DATA": 10, "STATS": 12, "STATS_CLEAR": 63, "JSON": 36, "RELOAD": 1, "STOP": 15} {
		if n, ok := Signum(name); !ok || n != want {
			t.Errorf("%s: %d %v", name, n, ok)
		}
	}
	if _, ok := Signum("TDUMP"); ok {
		t.Error("TDUMP known")
	}
}

// TestInstanceFileName: data_use_instance's names, as keepalived's
// make_file_name builds them.
func TestInstanceFileName(t *testing.T) {
	for _, tc := range []struct{ name, ns, inst, want string }{
		{"keepalived.data", "", "", "keepalived.data"},
		{"keepalived.data", "blue", "", "keepalived_blue.data"},
		{"keepalived_check.data", "blue", "lb1", "keepalived_check_blue_lb1.data"},
		{"keepalived.data", "", "a/b", "keepalived_a_b.data"},
	} {
		if got := InstanceFileName(tc.name, tc.ns, tc.inst); got != tc.want {
			t.Errorf("%+v: %q", tc, got)
		}
	}
}

// TestWaitingState: an instance waiting in INIT for a script's first
// result is shown in FAULT, wanting BACKUP, as keepalived 2.2.7 shows it
// (data file, JSON, SNMP); any other state as it is.
func TestWaitingState(t *testing.T) {
	w := &vrrp.InstanceStatus{State: vrrp.StateInit, Waiting: true}
	if ShownState(w) != vrrp.StateFault || WantState(w) != vrrp.StateBackup {
		t.Errorf("waiting: shown %v, wanted %v", ShownState(w), WantState(w))
	}
	for _, s := range []vrrp.State{vrrp.StateInit, vrrp.StateBackup, vrrp.StateMaster, vrrp.StateFault} {
		st := &vrrp.InstanceStatus{State: s}
		if ShownState(st) != s || WantState(st) != s {
			t.Errorf("%v: shown %v, wanted %v", s, ShownState(st), WantState(st))
		}
	}
}
