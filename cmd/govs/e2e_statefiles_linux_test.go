package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// kaInstance is what a reader of keepalived's files (the way Prometheus
// exporters for keepalived read them) takes from keepalived.data and
// keepalived.stats for one VRRP instance.
type kaInstance struct {
	keys  map[string]string // "   Key = value" lines of the instance block
	vips  []string          // the items under "Virtual IP (N):"
	stats map[string]int    // "Section/Key" (or "Key" at the top level) of keepalived.stats
}

// readKeepalivedData parses the VRRP instance blocks of keepalived.data:
// " VRRP Instance = NAME", then lines of three spaces ("Key = value", or
// "Key:" opening a list) and list items of five.
func readKeepalivedData(t *testing.T, path string) map[string]*kaInstance {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]*kaInstance{}
	var cur *kaInstance
	list := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, " VRRP Instance = "):
			cur = &kaInstance{keys: map[string]string{}}
			out[strings.TrimPrefix(l, " VRRP Instance = ")] = cur
		case cur != nil && strings.HasPrefix(l, "     "):
			if strings.HasPrefix(list, "Virtual IP (") {
				cur.vips = append(cur.vips, strings.TrimSpace(l))
			}
		case cur != nil && strings.HasPrefix(l, "   "):
			if k, v, ok := strings.Cut(strings.TrimSpace(l), " = "); ok {
				cur.keys[k], list = v, ""
			} else {
				list = strings.TrimSuffix(strings.TrimSpace(l), ":")
			}
		default:
			cur = nil
		}
	}
	return out
}

// readKeepalivedStats parses keepalived.stats into the instances' stats.
func readKeepalivedStats(t *testing.T, path string) map[string]map[string]int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]int{}
	var cur map[string]int
	section := ""
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, "VRRP Instance: "):
			cur = map[string]int{}
			out[strings.TrimPrefix(l, "VRRP Instance: ")] = cur
		case strings.HasPrefix(l, "    "):
			k, v, _ := strings.Cut(strings.TrimSpace(l), ": ")
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("keepalived.stats: %q: %v", l, err)
			}
			cur[section+"/"+k] = n
		case strings.HasPrefix(l, "  ") && strings.HasSuffix(l, ":"):
			section = strings.TrimSuffix(strings.TrimSpace(l), ":")
		case strings.HasPrefix(l, "  "):
			k, v, _ := strings.Cut(strings.TrimSpace(l), ": ")
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("keepalived.stats: %q: %v", l, err)
			}
			cur[k], section = n, ""
		}
	}
	return out
}

// TestStateFiles runs two govs directors with VRRP (the VRRP lab) with
// --pid-file and --state-dir, and reads their state files the way
// scripts and exporters written for keepalived do: signal the process
// named by the pid file with keepalived's signal numbers (govs signum),
// then read keepalived.data, keepalived_check.data, keepalived.stats and
// keepalived.json. The BACKUP shows its master; when the MASTER stops,
// the BACKUP counts the priority-0 advert and its becoming MASTER, the
// stopped one counts its priority-0 advert and its release; STATS_CLEAR
// starts the file's counters from 0; the pid file goes with the process.
func TestStateFiles(t *testing.T) {
	l := newVRRPLab(t)
	l.start("r1", govsBin, "demo", "backend", "10.77.0.11:8080", "r1")
	l.start("r2", govsBin, "demo", "backend", "10.77.0.12:8080", "r2")
	type node struct {
		pid, dir string
		cmd      *exec.Cmd
	}
	type spec struct {
		name, state string
		prio        int
	}
	nodes := map[string]*node{}
	startNode := func(d spec) {
		conf := filepath.Join(l.dir, d.name+".conf")
		if err := os.WriteFile(conf, []byte(fmt.Sprintf(vrrpDirectorConf, d.name, d.state, d.prio)), 0o644); err != nil {
			t.Fatal(err)
		}
		n := &node{pid: filepath.Join(l.dir, d.name+".pid"), dir: filepath.Join(l.dir, d.name+"-state")}
		if err := os.Mkdir(n.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		n.cmd = l.start(d.name, govsBin, "run", "-f", conf, "--api-socket", filepath.Join(l.dir, d.name+".sock"),
			"--lame-duck", "100ms", "--pid-file", n.pid, "--state-dir", n.dir)
		nodes[d.name] = n
	}
	signum := func(name string) syscall.Signal {
		out, err := exec.Command(govsBin, "--signum="+name).Output()
		if err != nil {
			t.Fatalf("govs --signum=%s: %v", name, err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil {
			t.Fatalf("govs --signum=%s: %q", name, out)
		}
		return syscall.Signal(n)
	}
	// signal sends sig to the node's pid file's process and waits for
	// the file to be written anew
	signal := func(n *node, sig syscall.Signal, file string) string {
		t.Helper()
		path := filepath.Join(n.dir, file)
		before, _ := os.Stat(path)
		b, err := os.ReadFile(n.pid)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid != n.cmd.Process.Pid {
			t.Fatalf("pid file %s: %q, process %d", n.pid, b, n.cmd.Process.Pid)
		}
		if err := syscall.Kill(pid, sig); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if fi, err := os.Stat(path); err == nil && (before == nil || !os.SameFile(fi, before)) {
				return path
			}
		}
		t.Fatalf("%s not written after signal %d", path, sig)
		return ""
	}
	waitData := func(n *node, want string) map[string]*kaInstance {
		t.Helper()
		var got string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if _, err := os.Stat(n.pid); err != nil {
				continue // not started yet
			}
			data := readKeepalivedData(t, signal(n, signum("DATA"), "keepalived.data"))
			if vi := data["VI_1"]; vi != nil {
				// a BACKUP shows its master once it heard an advert
				if got = vi.keys["State"]; got == want && (want != "BACKUP" || vi.keys["Master router"] != "") {
					return data
				}
			}
		}
		t.Fatalf("%s: state %q, want %s", n.dir, got, want)
		return nil
	}
	// d2 starts once d1 is MASTER: it never was MASTER itself
	startNode(spec{"d1", "MASTER", 150})
	d1 := nodes["d1"]
	waitData(d1, "MASTER")
	startNode(spec{"d2", "BACKUP", 100})
	d2 := nodes["d2"]
	data := waitData(d2, "BACKUP")["VI_1"]
	for k, want := range map[string]string{"Wantstate": "BACKUP", "Interface": "eth0", "Virtual Router ID": "42", "Master router": "10.77.0.1",
		"Master priority": "150", "Priority": "100", "Advert interval": "100 milli-sec", "VRRP Version": "3", "Gratuitous ARP delay": "0"} {
		if data.keys[k] != want {
			t.Errorf("d2 keepalived.data: %s = %q, want %q", k, data.keys[k], want)
		}
	}
	if len(data.vips) != 1 || data.vips[0] != "10.77.0.50/24 dev eth0 scope global" {
		t.Errorf("d2 keepalived.data: virtual addresses %q", data.vips)
	}
	// both real servers healthy (the checks may take a moment)
	var check []byte
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		check, err = os.ReadFile(signal(d2, signum("DATA"), "keepalived_check.data"))
		ok := err == nil && strings.Contains(string(check), " VS VIP = 10.77.0.50, VPORT = 80\n") &&
			strings.Contains(string(check), "   RIP = 10.77.0.11, RPORT = 8080, WEIGHT = 1 EFF WEIGHT = 1\n") &&
			strings.Contains(string(check), "   RIP = 10.77.0.12, RPORT = 8080, WEIGHT = 1 EFF WEIGHT = 1\n")
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("d2 keepalived_check.data: %v\n%s", err, check)
		}
	}
	var js []struct {
		Data struct {
			IName     string   `json:"iname"`
			State     int      `json:"state"`
			WantState int      `json:"wantstate"`
			VRID      int      `json:"vrid"`
			Ifname    string   `json:"ifp_ifname"`
			VIPs      []string `json:"vips"`
		} `json:"data"`
		Stats map[string]int `json:"stats"`
	}
	b, err := os.ReadFile(signal(d2, signum("JSON"), "keepalived.json"))
	if err != nil || json.Unmarshal(b, &js) != nil || len(js) != 1 {
		t.Fatalf("d2 keepalived.json: %v\n%s", err, b)
	}
	if j := js[0]; j.Data.IName != "VI_1" || j.Data.State != 1 || j.Data.WantState != 1 || j.Data.VRID != 42 || j.Data.Ifname != "eth0" ||
		len(j.Data.VIPs) != 1 || j.Stats["advert_rcvd"] == 0 || j.Stats["advert_sent"] != 0 {
		t.Errorf("d2 keepalived.json: %+v", j)
	}

	stats := readKeepalivedStats(t, signal(d2, signum("STATS"), "keepalived.stats"))["VI_1"]
	if stats["Advertisements/Received"] == 0 || stats["Advertisements/Sent"] != 0 || stats["Became master"] != 0 {
		t.Errorf("d2 keepalived.stats as BACKUP: %v", stats)
	}

	// the MASTER stops: priority 0, and d2 takes over
	d1.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- d1.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("d1 did not stop")
	}
	if _, err := os.Stat(d1.pid); !os.IsNotExist(err) {
		t.Errorf("d1's pid file after its stop: %v", err)
	}
	waitData(d2, "MASTER")
	stats = readKeepalivedStats(t, signal(d2, signum("STATS_CLEAR"), "keepalived.stats"))["VI_1"]
	if stats["Priority Zero/Received"] < 1 || stats["Became master"] != 1 || stats["Advertisements/Sent"] == 0 {
		t.Errorf("d2 keepalived.stats after the takeover: %v", stats)
	}
	stats = readKeepalivedStats(t, signal(d2, signum("STATS"), "keepalived.stats"))["VI_1"]
	if stats["Became master"] != 0 || stats["Priority Zero/Received"] != 0 || stats["Advertisements/Sent"] > 50 {
		t.Errorf("d2 keepalived.stats after STATS_CLEAR: %v", stats)
	}
	// a second govs with d2's pid file is refused while d2 runs
	out, err := nsExec(l.prefix+"d2", govsBin, "run", "-f", filepath.Join(l.dir, "d2.conf"), "--api-socket", filepath.Join(l.dir, "x.sock"),
		"--pid-file", d2.pid).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another govs holds it") {
		t.Errorf("second govs on d2's pid file: %v\n%s", err, out)
	}
}
