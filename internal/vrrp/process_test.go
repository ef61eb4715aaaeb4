package vrrp

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestProcessMatch(t *testing.T) {
	haproxy := []string{"/usr/sbin/haproxy", "-Ws", "-f", "/etc/haproxy/haproxy.cfg", "-p", "/run/haproxy.pid"}
	for _, c := range []struct {
		m    ProcessMatch
		comm string
		argv []string
		want bool
	}{
		{ProcessMatch{Process: "haproxy"}, "haproxy", haproxy, true},
		{ProcessMatch{Process: "/usr/sbin/haproxy"}, "haproxy", haproxy, true},
		{ProcessMatch{Process: "haproxy"}, "haproxy", nil, true}, // no command line: the kernel name still counts
		{ProcessMatch{Process: "nginx"}, "haproxy", haproxy, false},
		// a name longer than the kernel's 15 characters: argv[0]'s last element
		{ProcessMatch{Process: "my-long-daemon-name"}, "my-long-daemon-", []string{"/opt/bin/my-long-daemon-name"}, true},
		{ProcessMatch{Process: "haproxy", Params: []string{"-Ws"}}, "haproxy", haproxy, false},
		{ProcessMatch{Process: "haproxy", Params: haproxy[1:]}, "haproxy", haproxy, true},
		{ProcessMatch{Process: "haproxy", Params: []string{"-Ws", "-f"}, ParamMatch: "initial"}, "haproxy", haproxy, true},
		{ProcessMatch{Process: "haproxy", Params: []string{"-f"}, ParamMatch: "initial"}, "haproxy", haproxy, false},
		{ProcessMatch{Process: "haproxy", Params: []string{"-f", "/etc/haproxy/haproxy.cfg"}, ParamMatch: "partial"}, "haproxy", haproxy, true},
		{ProcessMatch{Process: "haproxy", Params: []string{"/etc/haproxy/haproxy"}, ParamMatch: "partial"}, "haproxy", haproxy, false}, // whole words
		{ProcessMatch{Process: "haproxy", Params: []string{"-Ws"}}, "haproxy", nil, false},
	} {
		if got := c.m.matches(c.comm, c.argv); got != c.want {
			t.Errorf("%+v against %q %q: %v, want %v", c.m, c.comm, c.argv, got, c.want)
		}
	}
}

// TestCountProcesses counts over a made-up /proc: zombies, other names,
// non-process entries and a process gone while read are not counted.
func TestCountProcesses(t *testing.T) {
	root := t.TempDir()
	add := func(pid, comm, state string, argv ...string) {
		dir := filepath.Join(root, pid)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		files := map[string]string{"comm": comm + "\n", "stat": pid + " (" + comm + ") " + state + " 1 1 1"}
		if argv != nil {
			files["cmdline"] = strings.Join(argv, "\x00") + "\x00"
		}
		for name, text := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	add("100", "haproxy", "S", "/usr/sbin/haproxy", "-f", "a.cfg")
	add("101", "haproxy", "R", "/usr/sbin/haproxy", "-f", "b.cfg")
	add("102", "haproxy", "Z")
	add("103", "nginx", "S", "nginx: master process")
	add("104", "a) b", "S", "/bin/odd")                                    // a name with a parenthesis and a blank
	if err := os.MkdirAll(filepath.Join(root, "105"), 0o755); err != nil { // exited while read: no stat
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	old := procRoot
	procRoot = root
	t.Cleanup(func() { procRoot = old })

	for _, c := range []struct {
		m    ProcessMatch
		want int
	}{
		{ProcessMatch{Process: "haproxy"}, 2},
		{ProcessMatch{Process: "haproxy", Params: []string{"-f", "b.cfg"}}, 1},
		{ProcessMatch{Process: "nginx"}, 1},
		{ProcessMatch{Process: "a) b"}, 1},
		{ProcessMatch{Process: "odd"}, 1},
		{ProcessMatch{Process: "sshd"}, 0},
	} {
		if got := countProcesses(c.m); got != c.want {
			t.Errorf("%+v: %d processes, want %d", c.m, got, c.want)
		}
	}
}

func TestProcessQuorumAndDelays(t *testing.T) {
	m := ProcessMatch{Process: "x", Quorum: 2, QuorumMax: 3}
	for n, want := range map[int]bool{0: false, 1: false, 2: true, 3: true, 4: false} {
		if m.up(n) != want {
			t.Errorf("quorum 2-3, %d processes: up %v", n, !want)
		}
	}
	if !(ProcessMatch{Process: "x"}).up(1) || (ProcessMatch{Process: "x"}).up(0) {
		t.Error("default quorum is not 1")
	}

	t0 := time.Unix(1000, 0)
	p := processTracker{m: ProcessMatch{Process: "x", ForkDelay: 2 * time.Second, TerminateDelay: 3 * time.Second}, ok: true}
	steps := []struct {
		at      time.Duration
		n       int
		changed bool
		ok      bool
	}{
		{0, 1, false, true},
		{1 * time.Second, 0, false, true},  // down for 0 s
		{3 * time.Second, 0, false, true},  // 2 s < 3 s
		{4 * time.Second, 1, false, true},  // back within the delay: nothing happened
		{5 * time.Second, 0, false, true},  // down again, the delay starts over
		{8 * time.Second, 0, true, false},  // 3 s down
		{9 * time.Second, 1, false, false}, // up for 0 s
		{11 * time.Second, 1, true, true},  // 2 s up
	}
	for _, s := range steps {
		if ch := p.observe(s.n, t0.Add(s.at)); ch != s.changed || p.ok != s.ok {
			t.Fatalf("at %v with %d: changed %v ok %v, want %v %v", s.at, s.n, ch, p.ok, s.changed, s.ok)
		}
	}

	for _, bad := range []ProcessMatch{{}, {Process: "x", ParamMatch: "fuzzy"}, {Process: "x", Quorum: 3, QuorumMax: 2}, {Process: "x", TerminateDelay: -1}} {
		if bad.check() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TestWatchProcess tracks a real process: up while it runs, down within
// two polls of its end.
func TestWatchProcess(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep command")
	}
	arg := "1000.4242" // a distinctive argument, so no other sleep counts
	cmd := exec.Command(sleep, arg)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	tp := TrackProcess{Name: "sleeper", Match: ProcessMatch{Process: "sleep", Params: []string{arg}}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	states := make(chan bool, 8)
	go watchProcess(ctx, tp, func(ok bool) { states <- ok })
	wait := func(want bool) {
		t.Helper()
		select {
		case ok := <-states:
			if ok != want {
				t.Fatalf("tracked process up %v, want %v", ok, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no state %v within 5 s", want)
		}
	}
	wait(true)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	wait(false)
}
