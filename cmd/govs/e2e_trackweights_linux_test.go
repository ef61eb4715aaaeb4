package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// trackWeightsConf exercises what keepalived 2.2.7 does with tracker
// weights: reverse (the adjustment turned round), a sync group member's
// weighted interfaces (applied, though keepalived logs that it ignores
// them), an address owner's (not tracked: no FAULT), a sync group's own
// trackers, weight 0 reverse on a file. vx0 is down, vy0 up.
const trackWeightsConf = `global_defs {
    router_id W
    script_user root
}
vrrp_script ok {
    script /bin/true
    interval 1
}
vrrp_script bad {
    script /bin/false
    interval 1
}
vrrp_sync_group G {
    group {
        S1
        S2
    }
    notify @DIR@/notify.sh
}
vrrp_instance S1 {
    interface veth0
    state BACKUP
    virtual_router_id 81
    priority 100
    track_interface {
        vx0 weight -10
        vy0 weight 7
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.81/24
    }
}
vrrp_instance S2 {
    interface veth0
    state BACKUP
    virtual_router_id 82
    priority 100
    track_interface {
        vy0 weight 5 reverse
        vx0 weight -3 reverse
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.82/24
    }
}
vrrp_instance R {
    interface veth0
    state BACKUP
    virtual_router_id 83
    priority 100
    track_script {
        ok weight 10 reverse
        bad weight -20 reverse
    }
    track_interface {
        vy0 weight -6 reverse
        vx0 weight 4 reverse
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.83/24
    }
}
vrrp_script up5r {
    script /bin/true
    interval 1
    weight 5 reverse
}
vrrp_track_file zero {
    file @ZERO@
}
vrrp_track_file thousand {
    file @DIR@/thousand
}
vrrp_sync_group K {
    group {
        K1
        K2
    }
    notify @DIR@/notify.sh
    track_script {
        up5r
    }
}
vrrp_instance K1 {
    interface veth0
    state MASTER
    virtual_router_id 87
    priority 255
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.87/24
    }
}
vrrp_instance K2 {
    interface veth0
    state BACKUP
    virtual_router_id 88
    priority 100
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.88/24
    }
}
vrrp_instance L1 {
    interface veth0
    state BACKUP
    virtual_router_id 89
    priority 100
    track_script {
        up5r weight 10
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.89/24
    }
}
vrrp_instance X {
    interface veth0
    state BACKUP
    virtual_router_id 90
    priority 100
    track_interface {
        veth0 weight 10 reverse
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.90/24
    }
}
vrrp_instance DUP {
    interface veth0
    state BACKUP
    virtual_router_id 92
    priority 100
    track_script {
        up5r
        up5r weight 10
    }
    track_interface {
        vy0 weight 3
        vy0 weight 6
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.92/24
    }
}
vrrp_instance CAP {
    interface veth0
    state BACKUP
    virtual_router_id 91
    priority 100
    track_file {
        thousand weight 1
    }
    track_script {
        bad weight -200
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.91/24
    }
}
vrrp_sync_group H {
    group {
        T1
        T2
    }
    notify @DIR@/notify.sh
    track_interface {
        vx0 weight -8
    }
    track_script {
        ok weight 6 reverse
    }
    track_file {
        zero weight 0 reverse
    }
}
vrrp_instance T1 {
    interface veth0
    state BACKUP
    virtual_router_id 85
    priority 100
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.85/24
    }
}
vrrp_instance T2 {
    interface veth0
    state BACKUP
    virtual_router_id 86
    priority 50
    track_file {
        zero weight 0
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.86/24
    }
}
vrrp_instance O {
    interface veth0
    state MASTER
    virtual_router_id 84
    priority 255
    track_interface {
        vx0 weight -10
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.84/24
    }
}
`

// TestTrackWeightsAsKeepalived runs keepalived 2.2.7 and govs on the same
// configuration, each in a namespace of its own with the same links, and
// compares every instance's state and effective priority in their
// keepalived.data.
func TestTrackWeightsAsKeepalived(t *testing.T) {
	// what keepalived 2.2.7 shows (seen): S1 100-10 (vx0 down) +7 (vy0
	// up); S2 100-5 (vy0 up, turned round) +3 (vx0 down, turned round);
	// R 100-10 (ok, turned round) +20 (bad, turned round), vy0's -6
	// counts only while down and vx0's 4 only while up; the owner
	// MASTER though vx0 is down (govs before this session: R 98, and
	// S1, S2 and O in FAULT). T1 and T2: the group's trackers on both,
	// 100-8-6 and 50-8-6, and its track_file of weight 0 reverse in
	// FAULT on a zero value (keepalived reads the group's trackers only
	// when defined before it)
	// K1 and K2: a group with an address owner tracks its script with
	// weight 0 and the script's reverse: in FAULT while it succeeds. L1:
	// a line's weight keeps the script's reverse. X: its own interface
	// is not tracked. CAP: one file adds at most 253 (100+253-200).
	compareAsKeepalived(t, trackWeightsConf, map[string]string{"thousand": "1000\n"}, 6*time.Second, map[string]string{"S1": "MASTER 97", "S2": "MASTER 98", "R": "MASTER 110",
		"O": "MASTER 255", "T1": "FAULT 86", "T2": "FAULT 36", "K1": "FAULT 255", "K2": "FAULT 100", "L1": "MASTER 90", "X": "MASTER 100", "CAP": "MASTER 153", "DUP": "MASTER 98"})
}

// dataFile sends proc (keepalived or govs) SIGUSR1 and returns the
// keepalived.data it writes at path, once written (keepalived writes it
// in place: read until two reads agree).
func dataFile(t *testing.T, proc *exec.Cmd, path string) string {
	t.Helper()
	before, _ := os.Stat(path)
	proc.Process.Signal(syscall.SIGUSR1)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if fi, err := os.Stat(path); err == nil && fi.Size() > 0 && (before == nil || fi.ModTime().After(before.ModTime()) || !os.SameFile(fi, before)) {
			prev := ""
			for range 50 {
				b, _ := os.ReadFile(path)
				if len(b) > 0 && string(b) == prev {
					return prev
				}
				prev = string(b)
				time.Sleep(100 * time.Millisecond)
			}
			return prev
		}
	}
	t.Fatalf("%s not written", path)
	return ""
}

// compareAsKeepalived runs keepalived 2.2.7 and govs on conf (@ZERO@ is
// a file holding 0, @DIR@ the directory of files, written first), each
// in a namespace of its own with the same links (veth0 with 10.9.0.1/24,
// vx0 down, vy0 up), waits settle, and compares every instance's state
// and effective priority in their keepalived.data with want (what
// keepalived was seen to show).
func compareAsKeepalived(t *testing.T, confText string, files map[string]string, settle time.Duration, want map[string]string) {
	t.Helper()
	compareStepsAsKeepalived(t, confText, files, []kaStep{{settle: settle, want: want}})
}

// kaStep is one step of compareStepsAsKeepalived: do (if not nil) runs
// in each side's namespace ns with its directory of files dir, then
// after settle both data files are compared, keepalived's with want.
type kaStep struct {
	do     func(ns, dir string)
	reload string // a new configuration, loaded by SIGHUP
	settle time.Duration
	want   map[string]string
}

// compareStepsAsKeepalived is compareAsKeepalived with changes made while
// both run: the files are each side's own (so that a step may change
// them), in its own directory.
func compareStepsAsKeepalived(t *testing.T, confText string, files map[string]string, steps []kaStep) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Skip("needs keepalived (scripts/setup.sh installs it)")
	}
	dir := t.TempDir()
	// each side's configuration and files in a directory of its own
	writeConf := func(fdir, confText string) string {
		conf := filepath.Join(fdir, "keepalived.conf")
		text := strings.ReplaceAll(strings.ReplaceAll(confText, "@ZERO@", filepath.Join(fdir, "zero")), "@DIR@", fdir)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return conf
	}
	sideConf := func(name string) (conf, fdir string) {
		fdir = filepath.Join(dir, name+"-files")
		if err := os.Mkdir(fdir, 0o755); err != nil {
			t.Fatal(err)
		}
		zero := filepath.Join(fdir, "zero")
		if err := os.WriteFile(zero, []byte("0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		// a notify script a configuration may name: it notes its
		// arguments
		notify := "#!/bin/sh\necho \"$@\" >> " + filepath.Join(fdir, "notes") + "\n"
		if err := os.WriteFile(filepath.Join(fdir, "notify.sh"), []byte(notify), 0o755); err != nil {
			t.Fatal(err)
		}
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(fdir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return writeConf(fdir, confText), fdir
	}
	kconf, kfiles := sideConf("k")
	gconf, gfiles := sideConf("g")
	prefix := fmt.Sprintf("tw%d", os.Getpid()%10000)
	side := func(name string) string {
		ns := prefix + name
		sh(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
		for _, pair := range [][2]string{{"veth0", "veth1"}, {"vx0", "vx1"}, {"vy0", "vy1"}} {
			sh(t, "ip", "-n", ns, "link", "add", pair[0], "type", "veth", "peer", "name", pair[1])
		}
		for _, l := range []string{"veth0", "veth1", "vy0", "vy1"} {
			sh(t, "ip", "-n", ns, "link", "set", l, "up")
		}
		sh(t, "ip", "-n", ns, "addr", "add", "10.9.0.1/24", "dev", "veth0")
		return ns
	}
	start := func(ns string, args ...string) *exec.Cmd {
		return startNS(t, ns, ns, args...)
	}
	kns, gns := side("k"), side("g")
	// keepalived writes its data file in $TMPDIR: one of its own, so
	// that no other keepalived on the host writes over it
	kdir := filepath.Join(dir, "k-state")
	if err := os.Mkdir(kdir, 0o755); err != nil {
		t.Fatal(err)
	}
	kp := start(kns, "env", "TMPDIR="+kdir, "keepalived", "-P", "-n", "-l", "-D", "-f", kconf, "-p", filepath.Join(dir, "k.pid"), "-r", filepath.Join(dir, "k-vrrp.pid"))
	gdir := filepath.Join(dir, "g-state")
	if err := os.Mkdir(gdir, 0o755); err != nil {
		t.Fatal(err)
	}
	gp := start(gns, govsBin, "run", "-f", gconf, "--dataplane", "proxy", "--api-socket", filepath.Join(dir, "g.sock"), "--state-dir", gdir)
	read := func(proc *exec.Cmd, path string) string { return dataFile(t, proc, path) }
	re := regexp.MustCompile(`(?m)^ VRRP Instance = (\S+)\n(?:   .*\n)*?   State = (\S+)\n(?:   .*\n)*?   Effective priority = (\d+)`)
	states := func(data string) map[string]string {
		out := map[string]string{}
		for _, m := range re.FindAllStringSubmatch(data, -1) {
			out[m[1]] = m[2] + " " + m[3]
		}
		return out
	}
	for i, st := range steps {
		if st.do != nil {
			st.do(kns, kfiles)
			st.do(gns, gfiles)
		}
		if st.reload != "" {
			writeConf(kfiles, st.reload)
			writeConf(gfiles, st.reload)
			kp.Process.Signal(syscall.SIGHUP)
			gp.Process.Signal(syscall.SIGHUP)
		}
		// (the BACKUPs become MASTER after 3 adverts, the scripts run
		// each second)
		time.Sleep(st.settle)
		kdata := read(kp, filepath.Join(kdir, "keepalived.data"))
		gdata := read(gp, filepath.Join(gdir, "keepalived.data"))
		ks, gs := states(kdata), states(gdata)
		for name, w := range st.want {
			if ks[name] != w {
				t.Errorf("step %d: keepalived %s: %q, expected %q (keepalived's own behaviour changed?)", i, name, ks[name], w)
			}
		}
		if len(ks) < len(st.want) || len(ks) == 0 {
			t.Errorf("step %d: keepalived shows %d instances, want %d", i, len(ks), len(st.want))
		}
		for name := range ks {
			if gs[name] != ks[name] {
				t.Errorf("step %d: %s: govs %q, keepalived %q", i, name, gs[name], ks[name])
			}
		}
		// the notify script's calls, by instance or group, in order (the
		// calls of different ones may interleave)
		notes := func(fdir string) map[string][]string {
			b, _ := os.ReadFile(filepath.Join(fdir, "notes"))
			out := map[string][]string{}
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if f := strings.Fields(l); len(f) >= 3 {
					out[f[0]+" "+f[1]] = append(out[f[0]+" "+f[1]], l)
				}
			}
			return out
		}
		kn, gn := notes(kfiles), notes(gfiles)
		for name, kl := range kn {
			if !slices.Equal(gn[name], kl) {
				t.Errorf("step %d: %s notified %q by govs, %q by keepalived", i, name, gn[name], kl)
			}
		}
		for name, gl := range gn {
			if kn[name] == nil {
				t.Errorf("step %d: %s notified %q by govs, nothing by keepalived", i, name, gl)
			}
		}
		t.Logf("step %d: keepalived %v, govs %v", i, ks, gs)
		t.Logf("step %d: notes keepalived %q, govs %q", i, kn, gn)
		if t.Failed() {
			t.Logf("keepalived:\n%s\ngovs:\n%s", kdata, gdata)
			return
		}
	}
}

// scriptStatesConf: vrrp_scripts before their first result (a script
// still running: keepalived's INIT, INIT/FAILED with init_fail) and
// after one result despite rise or fall 100.
const scriptStatesConf = `global_defs {
    router_id W
    script_user root
}
vrrp_script slow {
    script "/bin/sleep 20"
    interval 20
    timeout 15
}
vrrp_script slowfail {
    script "/bin/sleep 20"
    interval 20
    timeout 15
    init_fail
}
vrrp_script risen {
    script /bin/true
    interval 1
    rise 100
}
vrrp_script fallen {
    script /bin/false
    interval 1
    fall 100
}
vrrp_script risefail {
    script /bin/true
    interval 1
    rise 3
    init_fail
}
vrrp_instance I13 {
    interface veth0
    state BACKUP
    virtual_router_id 113
    priority 100
    track_script {
        risefail
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.113/24
    }
}
vrrp_instance I1 {
    interface veth0
    state BACKUP
    virtual_router_id 91
    priority 100
    track_script {
        slow weight 10
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.91/24
    }
}
vrrp_instance I2 {
    interface veth0
    state BACKUP
    virtual_router_id 92
    priority 100
    track_script {
        slow weight -10
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.92/24
    }
}
vrrp_instance I3 {
    interface veth0
    state BACKUP
    virtual_router_id 93
    priority 100
    track_script {
        slow
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.93/24
    }
}
vrrp_instance I4 {
    interface veth0
    state BACKUP
    virtual_router_id 94
    priority 100
    track_script {
        slowfail weight 10
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.94/24
    }
}
vrrp_instance I5 {
    interface veth0
    state BACKUP
    virtual_router_id 95
    priority 100
    track_script {
        slowfail weight -10
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.95/24
    }
}
vrrp_instance I6 {
    interface veth0
    state BACKUP
    virtual_router_id 96
    priority 100
    track_script {
        slowfail
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.96/24
    }
}
vrrp_instance I7 {
    interface veth0
    state BACKUP
    virtual_router_id 97
    priority 100
    track_script {
        risen weight 10
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.97/24
    }
}
vrrp_instance I8 {
    interface veth0
    state BACKUP
    virtual_router_id 98
    priority 100
    track_script {
        risen weight -10
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.98/24
    }
}
vrrp_instance I9 {
    interface veth0
    state BACKUP
    virtual_router_id 99
    priority 100
    track_script {
        risen
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.99/24
    }
}
vrrp_instance I10 {
    interface veth0
    state BACKUP
    virtual_router_id 100
    priority 100
    track_script {
        fallen weight 10
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.100/24
    }
}
vrrp_instance I11 {
    interface veth0
    state BACKUP
    virtual_router_id 101
    priority 100
    track_script {
        fallen weight -10
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.101/24
    }
}
vrrp_instance I12 {
    interface veth0
    state BACKUP
    virtual_router_id 102
    priority 100
    track_script {
        fallen
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.102/24
    }
}
vrrp_instance J1 {
    interface veth0
    state BACKUP
    virtual_router_id 71
    priority 100
    track_script {
        slow weight 0 reverse
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.71/24
    }
}
vrrp_instance J2 {
    interface veth0
    state BACKUP
    virtual_router_id 72
    priority 100
    track_script {
        slow weight 10 reverse
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.72/24
    }
}
vrrp_instance J3 {
    interface veth0
    state BACKUP
    virtual_router_id 73
    priority 100
    track_script {
        slow weight -10 reverse
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.73/24
    }
}
`

// TestScriptStatesAsKeepalived: what keepalived 2.2.7 does with a
// vrrp_script's state, seen in a namespace and compared with govs. Before
// the first result a weight-0 script (reverse or not) puts the instance
// in FAULT and a weighted one counts nothing, init_fail or not (I1-I6,
// J1-J3); the first result decides at once, whatever rise and fall (I7-I12).
// govs before this session: I1 110, I3 and J1 MASTER, I5 90, I10 110,
// I11 100, I12 MASTER.
func TestScriptStatesAsKeepalived(t *testing.T) {
	compareAsKeepalived(t, scriptStatesConf, nil, 5*time.Second, map[string]string{
		"I1": "MASTER 100", "I2": "MASTER 100", "I3": "FAULT 100", "I4": "MASTER 100", "I5": "MASTER 100", "I6": "FAULT 100",
		"I7": "MASTER 110", "I8": "MASTER 100", "I9": "MASTER 100", "I10": "MASTER 100", "I11": "MASTER 90", "I12": "FAULT 100",
		"J1": "FAULT 100", "J2": "MASTER 100", "J3": "MASTER 100",
		// init_fail with rise 3: good after one success (keepalived 2.2.7
		// starts every tracked script as INIT)
		"I13": "MASTER 100"})
}

// trackFileConf: track_file values as keepalived 2.2.7 reads them.
const trackFileConf = `global_defs {
    router_id W
}
vrrp_track_file five {
    file @DIR@/five
}
vrrp_track_file neg {
    file @DIR@/neg
}
vrrp_track_file big {
    file @DIR@/big
}
vrrp_track_file abc {
    file @DIR@/abc
}
vrrp_track_file empty {
    file @DIR@/empty
}
vrrp_track_file missing {
    file @DIR@/missing
}
vrrp_track_file spaces {
    file @DIR@/spaces
}
vrrp_track_file eight {
    file @DIR@/eight
}
vrrp_track_file minus10 {
    file @DIR@/minus10
}
vrrp_track_file hex {
    file @DIR@/hex
}
vrrp_track_file octal {
    file @DIR@/octal
}
vrrp_track_file float {
    file @DIR@/float
}
vrrp_instance F1 {
    interface veth0
    state BACKUP
    virtual_router_id 100
    priority 100
    track_file {
        five weight 2
    }
    virtual_ipaddress {
        10.9.0.100/24
    }
}
vrrp_instance F2 {
    interface veth0
    state BACKUP
    virtual_router_id 101
    priority 100
    track_file {
        neg weight 1
    }
    virtual_ipaddress {
        10.9.0.101/24
    }
}
vrrp_instance F3 {
    interface veth0
    state BACKUP
    virtual_router_id 102
    priority 100
    track_file {
        big weight 1
    }
    virtual_ipaddress {
        10.9.0.102/24
    }
}
vrrp_instance F4 {
    interface veth0
    state BACKUP
    virtual_router_id 103
    priority 100
    track_file {
        abc weight 1
    }
    virtual_ipaddress {
        10.9.0.103/24
    }
}
vrrp_instance F5 {
    interface veth0
    state BACKUP
    virtual_router_id 104
    priority 100
    track_file {
        empty weight 1
    }
    virtual_ipaddress {
        10.9.0.104/24
    }
}
vrrp_instance F6 {
    interface veth0
    state BACKUP
    virtual_router_id 105
    priority 100
    track_file {
        missing weight 1
    }
    virtual_ipaddress {
        10.9.0.105/24
    }
}
vrrp_instance F7 {
    interface veth0
    state BACKUP
    virtual_router_id 106
    priority 100
    track_file {
        spaces weight 1
    }
    virtual_ipaddress {
        10.9.0.106/24
    }
}
vrrp_instance F8 {
    interface veth0
    state BACKUP
    virtual_router_id 107
    priority 100
    track_file {
        eight weight 1
    }
    virtual_ipaddress {
        10.9.0.107/24
    }
}
vrrp_instance F9 {
    interface veth0
    state BACKUP
    virtual_router_id 108
    priority 100
    track_file {
        five weight 0
    }
    virtual_ipaddress {
        10.9.0.108/24
    }
}
vrrp_instance F10 {
    interface veth0
    state BACKUP
    virtual_router_id 109
    priority 100
    track_file {
        missing weight 0
    }
    virtual_ipaddress {
        10.9.0.109/24
    }
}
vrrp_instance F11 {
    interface veth0
    state BACKUP
    virtual_router_id 110
    priority 250
    track_file {
        five weight 2
    }
    virtual_ipaddress {
        10.9.0.110/24
    }
}
vrrp_instance F12 {
    interface veth0
    state BACKUP
    virtual_router_id 111
    priority 5
    track_file {
        minus10 weight 1
    }
    virtual_ipaddress {
        10.9.0.111/24
    }
}
vrrp_instance F13 {
    interface veth0
    state BACKUP
    virtual_router_id 112
    priority 100
    track_file {
        float weight 2
    }
    virtual_ipaddress {
        10.9.0.112/24
    }
}
vrrp_instance F14 {
    interface veth0
    state BACKUP
    virtual_router_id 113
    priority 100
    track_file {
        big weight 0
    }
    virtual_ipaddress {
        10.9.0.113/24
    }
}
vrrp_instance F15 {
    interface veth0
    state BACKUP
    virtual_router_id 114
    priority 100
    track_file {
        neg weight 0
    }
    virtual_ipaddress {
        10.9.0.114/24
    }
}
vrrp_instance F16 {
    interface veth0
    state BACKUP
    virtual_router_id 116
    priority 100
    track_file {
        hex weight 1
    }
    virtual_ipaddress {
        10.9.0.116/24
    }
}
vrrp_instance F17 {
    interface veth0
    state BACKUP
    virtual_router_id 117
    priority 100
    track_file {
        octal weight 1
    }
    virtual_ipaddress {
        10.9.0.117/24
    }
}
`

// TestTrackFileValuesAsKeepalived: what keepalived 2.2.7 makes of a
// track file's content (numbers, signs, blanks, text, an empty or missing
// file, a fraction, values out of range) and of the priority's bounds,
// compared with govs.
func TestTrackFileValuesAsKeepalived(t *testing.T) {
	files := map[string]string{"five": "5\n", "neg": "-300\n", "big": "300\n", "abc": "abc\n", "empty": "", "spaces": "  7  \n",
		"eight": "8 trailing\n", "minus10": "-10\n", "float": "2.5\n", "hex": "0x10\n", "octal": "010\n"}
	// as keepalived 2.2.7 showed: strtol with base 0 (hex, octal, a
	// fraction cut, text and empty read as 0, a missing file 0), a value
	// of weight 0 other than 0 in FAULT, -254 or less in FAULT, the
	// priority within 1..254 (govs before this session read "2.5",
	// "0x10" and "010" as 0 or 10)
	compareAsKeepalived(t, trackFileConf, files, 5*time.Second, map[string]string{
		"F1": "MASTER 110", "F2": "FAULT 100", "F3": "MASTER 254", "F4": "MASTER 100", "F5": "MASTER 100", "F6": "MASTER 100",
		"F7": "MASTER 107", "F8": "MASTER 108", "F9": "FAULT 100", "F10": "MASTER 100", "F11": "MASTER 254", "F12": "MASTER 1",
		"F13": "MASTER 104", "F14": "FAULT 100", "F15": "FAULT 100", "F16": "MASTER 116", "F17": "MASTER 108"})
}

// syncGroupConf: sync groups whose members fail or weigh differently.
const syncGroupConf = `global_defs {
    router_id W
    script_user root
}
vrrp_script bad {
    script /bin/false
    interval 1
}
vrrp_script good {
    script /bin/true
    interval 1
    weight 20
}
vrrp_sync_group G {
    group {
        A1
        A2
    }
    notify @DIR@/notify.sh
}
vrrp_instance A1 {
    interface veth0
    state BACKUP
    virtual_router_id 131
    priority 100
    track_script {
        bad
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.131/24
    }
}
vrrp_instance A2 {
    interface veth0
    state BACKUP
    virtual_router_id 132
    priority 100
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.132/24
    }
}
vrrp_sync_group W {
    group {
        B1
        B2
    }
    sync_group_tracking_weight
    notify @DIR@/notify.sh
}
vrrp_instance B1 {
    interface veth0
    state BACKUP
    virtual_router_id 133
    priority 100
    track_script {
        good
    }
    track_interface {
        vx0 weight -7
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.133/24
    }
}
vrrp_instance B2 {
    interface veth0
    state BACKUP
    virtual_router_id 134
    priority 90
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.134/24
    }
}
`

// TestSyncGroupsAsKeepalived: a member in FAULT takes its group there;
// with sync_group_tracking_weight the members' weights apply; compared
// with keepalived 2.2.7.
func TestSyncGroupsAsKeepalived(t *testing.T) {
	compareAsKeepalived(t, syncGroupConf, nil, 6*time.Second, map[string]string{
		"A1": "FAULT 100", "A2": "FAULT 100", "B1": "MASTER 113", "B2": "MASTER 90"})
}

// trackChangesConf: trackers that change while both run (a file's
// value, an interface coming up, a script starting to succeed).
const trackChangesConf = `global_defs {
    router_id W
    script_user root
}
vrrp_script s {
    script "/bin/sh -c 'test -e @DIR@/ok'"
    interval 1
    rise 2
    fall 2
    weight 10
}
vrrp_track_file f {
    file @DIR@/f
}
vrrp_instance R1 {
    interface veth0
    state BACKUP
    virtual_router_id 141
    priority 100
    track_file {
        f weight 3 reverse
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.141/24
    }
}
vrrp_instance R2 {
    interface veth0
    state BACKUP
    virtual_router_id 142
    priority 100
    track_file {
        f weight 0 reverse
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.142/24
    }
}
vrrp_instance R3 {
    interface veth0
    state BACKUP
    virtual_router_id 143
    priority 100
    track_interface {
        vx0 weight -10 reverse
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.143/24
    }
}
vrrp_instance R4 {
    interface veth0
    state BACKUP
    virtual_router_id 144
    priority 100
    track_interface {
        vx0 weight 0 reverse
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.144/24
    }
}
vrrp_instance R5 {
    interface veth0
    state BACKUP
    virtual_router_id 145
    priority 100
    track_script {
        s
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.145/24
    }
}
`

// TestTrackChangesAsKeepalived: keepalived 2.2.7 and govs follow the
// same changes alike: a track file's value (weight 3 reverse, weight 0
// reverse), an interface coming up (reverse weights), a script that
// starts to succeed (rise 2 after its first result failed).
func TestTrackChangesAsKeepalived(t *testing.T) {
	compareStepsAsKeepalived(t, trackChangesConf, map[string]string{"f": "0\n"}, []kaStep{
		{settle: 5 * time.Second, want: map[string]string{"R1": "MASTER 100", "R2": "FAULT 100", "R3": "MASTER 110", "R4": "MASTER 100", "R5": "MASTER 100"}},
		{do: func(ns, dir string) {
			os.WriteFile(filepath.Join(dir, "f"), []byte("5\n"), 0o644)
			os.WriteFile(filepath.Join(dir, "ok"), nil, 0o644)
			sh(t, "ip", "-n", ns, "link", "set", "vx0", "up")
			sh(t, "ip", "-n", ns, "link", "set", "vx1", "up")
		}, settle: 5 * time.Second, want: map[string]string{"R1": "MASTER 85", "R2": "MASTER 100", "R3": "MASTER 100", "R4": "FAULT 100", "R5": "MASTER 110"}},
		// a number outside 32 bits: ignored, the last value (5) kept
		{do: func(ns, dir string) {
			os.WriteFile(filepath.Join(dir, "f"), []byte("4294967296\n"), 0o644)
		}, settle: 3 * time.Second, want: map[string]string{"R1": "MASTER 85", "R2": "MASTER 100", "R3": "MASTER 100", "R4": "FAULT 100", "R5": "MASTER 110"}},
	})
}

// reloadBefore and reloadAfter: a configuration and its change by a
// reload: a priority and a weight changed, a script added to a running
// instance (weighted) and another (weight 0, slow) to a new instance, an
// instance removed.
const reloadBefore = `global_defs {
    router_id W
    script_user root
}
vrrp_script ok {
    script /bin/true
    interval 1
}
vrrp_instance A {
    interface veth0
    state BACKUP
    virtual_router_id 151
    priority 100
    track_interface {
        vy0 weight 5
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.151/24
    }
}
vrrp_instance B {
    interface veth0
    state BACKUP
    virtual_router_id 152
    priority 100
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.152/24
    }
}
vrrp_instance D {
    interface veth0
    state BACKUP
    virtual_router_id 154
    priority 100
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.154/24
    }
}
`

const reloadAfter = `global_defs {
    router_id W
    script_user root
}
vrrp_script ok {
    script /bin/true
    interval 1
}
vrrp_script slow {
    script "/bin/sleep 20"
    interval 20
    timeout 15
}
vrrp_instance A {
    interface veth0
    state BACKUP
    virtual_router_id 151
    priority 120
    track_interface {
        vy0 weight 8
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.151/24
    }
}
vrrp_instance C {
    interface veth0
    state BACKUP
    virtual_router_id 153
    priority 100
    track_script {
        slow
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.153/24
    }
}
vrrp_instance D {
    interface veth0
    state BACKUP
    virtual_router_id 154
    priority 100
    track_script {
        ok weight 7
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.154/24
    }
}
`

// TestReloadAsKeepalived: the same reload (SIGHUP) on keepalived 2.2.7
// and govs gives the same states and priorities.
func TestReloadAsKeepalived(t *testing.T) {
	compareStepsAsKeepalived(t, reloadBefore, nil, []kaStep{
		{settle: 5 * time.Second, want: map[string]string{"A": "MASTER 105", "B": "MASTER 100", "D": "MASTER 100"}},
		// A: 120+8; C: its slow weight-0 script, pending, does not hold
		// it (keepalived's INIT/RELOAD); D: 100+7; B gone
		{reload: reloadAfter, settle: 4 * time.Second, want: map[string]string{"A": "MASTER 128", "C": "MASTER 100", "D": "MASTER 107"}},
	})
}

// reloadGroupWaitBefore and ...After: a sync group whose member waits
// for its slow script's first result, and a reload that adds a member
// to it meanwhile.
const reloadGroupWaitBefore = `global_defs {
    router_id W
    script_user root
}
vrrp_script slow {
    script "/bin/sleep 30"
    interval 60
    timeout 12
}
vrrp_sync_group G {
    group {
        C
    }
}
vrrp_instance C {
    interface veth0
    state BACKUP
    virtual_router_id 161
    priority 100
    track_script {
        slow
    }
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.161/24
    }
}
`

var reloadGroupWaitAfter = strings.Replace(reloadGroupWaitBefore, "        C\n", "        C\n        E\n", 1) + `vrrp_instance E {
    interface veth0
    state BACKUP
    virtual_router_id 162
    priority 100
    notify @DIR@/notify.sh
    virtual_ipaddress {
        10.9.0.162/24
    }
}
`

// TestReloadGroupWaitAsKeepalived: a member a reload adds to a sync
// group whose member still waits for its script's first result, on
// keepalived 2.2.7 and govs alike.
func TestReloadGroupWaitAsKeepalived(t *testing.T) {
	compareStepsAsKeepalived(t, reloadGroupWaitBefore, nil, []kaStep{
		{settle: 2 * time.Second, want: map[string]string{"C": "FAULT 100"}},
		{reload: reloadGroupWaitAfter, settle: 5 * time.Second, want: map[string]string{"C": "FAULT 100", "E": "FAULT 100"}},
		// the script times out (a failure): the group goes to FAULT
		{settle: 8 * time.Second, want: map[string]string{"C": "FAULT 100", "E": "FAULT 100"}},
	})
}
