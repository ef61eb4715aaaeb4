package vrrp

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestProcessMatch(t *testing.T) {
	haproxy := []string{"/usr/sbin/haproxy", "-Ws", "-f", "/etc/haproxy/haproxy.cfg", "-p", "/run/haproxy.pid"}
	full := func(ptype string, params ...string) ProcessMatch {
		return ProcessMatch{Process: "/usr/sbin/haproxy", FullCommand: true, Params: params, ParamMatch: ptype}
	}
	for _, c := range []struct {
		m    ProcessMatch
		comm string
		argv []string
		want bool
	}{
		// the kernel name
		{ProcessMatch{Process: "haproxy"}, "haproxy", haproxy, true},
		{ProcessMatch{Process: "nginx"}, "haproxy", haproxy, false},
		{ProcessMatch{Process: "/usr/sbin/haproxy"}, "haproxy", haproxy, false},
		// the command line: argv[0] as it is, then the arguments
		{ProcessMatch{Process: "haproxy", FullCommand: true}, "haproxy", haproxy, false},
		{full(""), "haproxy", haproxy, true}, // full_command alone: any arguments
		{full("exact", haproxy[1:]...), "haproxy", haproxy, true},
		{full("exact", "-Ws"), "haproxy", haproxy, false},                         // exact: all of them
		{full("exact"), "haproxy", haproxy, false},                                // a bare param_match without parameters: none
		{full("exact"), "haproxy", []string{"/usr/sbin/haproxy"}, true},           //
		{full("partial", "-Ws", "-f"), "haproxy", haproxy, true},                  // the first ones
		{full("partial", "-f"), "haproxy", haproxy, false},                        // not anywhere
		{full("partial", "-Ws", "-"), "haproxy", haproxy, false},                  // whole arguments
		{full("initial", "-Ws", "-f", "/etc/haproxy/"), "haproxy", haproxy, true}, // the last one may be a start
		{full("initial", "-W", "-f"), "haproxy", haproxy, false},                  // only the last
		{full("partial"), "haproxy", haproxy, true},                               // no parameters: any
		{full("initial"), "haproxy", haproxy, true},
		{full("partial", "-Ws"), "haproxy", nil, false}, // no command line (a kernel thread)
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
		{ProcessMatch{Process: "/usr/sbin/haproxy", FullCommand: true, Params: []string{"-f", "b.cfg"}, ParamMatch: "exact"}, 1},
		{ProcessMatch{Process: "/usr/sbin/haproxy", FullCommand: true}, 2},
		{ProcessMatch{Process: "/usr/sbin/haproxy", FullCommand: true, Params: []string{"-f"}, ParamMatch: "partial"}, 2},
		{ProcessMatch{Process: "nginx"}, 1},
		{ProcessMatch{Process: "a) b"}, 1},
		{ProcessMatch{Process: "/bin/odd", FullCommand: true}, 1},
		{ProcessMatch{Process: "sshd"}, 0},
	} {
		if got := countProcesses(c.m); got != c.want {
			t.Errorf("%+v: %d processes, want %d", c.m, got, c.want)
		}
	}
}

func TestProcessQuorumAndDelays(t *testing.T) {
	m := ProcessMatch{Process: "x", Quorum: 2, QuorumMax: 3, HasQuorumMax: true}
	for n, want := range map[int]bool{0: false, 1: false, 2: true, 3: true, 4: false} {
		if m.up(n) != want {
			t.Errorf("quorum 2-3, %d processes: up %v", n, !want)
		}
	}
	none := ProcessMatch{Process: "x", Quorum: 0, QuorumMax: 0, HasQuorumMax: true} // up while none runs
	if !none.up(0) || none.up(1) {
		t.Error("quorum_max 0 is not up with none and down with one")
	}

	t0 := time.Unix(1000, 0)
	m = ProcessMatch{Process: "x", Quorum: 1, QuorumMax: 2, HasQuorumMax: true, ForkDelay: 2 * time.Second, TerminateDelay: 3 * time.Second}
	p := processTracker{m: m, ok: true, count: 1}
	steps := []struct {
		at      time.Duration
		n       int
		changed bool
		ok      bool
	}{
		{0, 1, false, true},
		{1 * time.Second, 0, false, true},         // fell under the quorum: terminate delay, 3 s
		{3 * time.Second, 0, false, true},         //
		{3500 * time.Millisecond, 1, false, true}, // rose back while it ran: cancelled, at once (still up)
		{5 * time.Second, 0, false, true},         // fell again: a new delay
		{8 * time.Second, 0, true, false},         // 3 s down
		{9 * time.Second, 1, false, false},        // rose to the quorum: fork delay, 2 s
		{11 * time.Second, 1, true, true},         //
		{12 * time.Second, 3, false, true},        // rose past quorum_max (a fork): the fork delay too
		{13 * time.Second, 2, false, true},        // fell back while it ran: cancelled at once, still up
		{16 * time.Second, 2, false, true},        // and nothing left to happen
		{17 * time.Second, 3, false, true},        // past quorum_max again
		{19 * time.Second, 3, true, false},        // 2 s over
		{20 * time.Second, 2, false, false},       // fell to quorum_max: terminate delay, 3 s
		{23 * time.Second, 2, true, true},
	}
	for _, s := range steps {
		if ch := p.observe(s.n, t0.Add(s.at)); ch != s.changed || p.ok != s.ok {
			t.Fatalf("at %v with %d: changed %v ok %v, want %v %v", s.at, s.n, ch, p.ok, s.changed, s.ok)
		}
	}

	for _, bad := range []ProcessMatch{{}, {Process: "x", ParamMatch: "fuzzy"}, {Process: "x", Params: []string{"a"}, ParamMatch: "exact"},
		{Process: "x", FullCommand: true, Params: []string{"a"}}, {Process: "x", Quorum: 3, QuorumMax: 2, HasQuorumMax: true}, {Process: "x", TerminateDelay: -1}} {
		if bad.check() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TestWatchProcess: a tracked process seen up, then down once killed, by
// the kernel's process events (root, the initial namespaces) and by
// counting.
func TestWatchProcess(t *testing.T) {
	t.Run("events", func(t *testing.T) {
		ev, err := openProcEvents()
		if err != nil {
			t.Skipf("no process events here: %v", err)
		}
		ev.Close()
		testWatchProcess(t, false)
	})
	t.Run("poll", func(t *testing.T) { testWatchProcess(t, true) })
}

func testWatchProcess(t *testing.T, poll bool) {
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
	// until the child has exec'd sleep, its command line is the test's
	cmdline := filepath.Join("/proc", fmt.Sprint(cmd.Process.Pid), "cmdline")
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if b, _ := os.ReadFile(cmdline); strings.Contains(string(b), arg) {
			break
		}
		if time.Now().After(end) {
			t.Fatal("sleep did not start within 5 s")
		}
	}
	tp := TrackProcess{Name: "sleeper", Match: ProcessMatch{Process: sleep, FullCommand: true, Params: []string{arg}, ParamMatch: "exact", Quorum: 1}}
	ctx, cancel := context.WithCancel(context.Background())
	states := make(chan bool, 8)
	done := make(chan struct{})
	watch := func(ctx context.Context, tp TrackProcess, emit func(bool)) {
		ev, err := openProcEvents()
		if err != nil {
			t.Error(err)
			return
		}
		defer ev.Close()
		if err := watchProcessEvents(ctx, tp, ev, emit); err != nil {
			t.Error(err)
		}
	}
	if poll {
		watch = pollProcess
	}
	go func() {
		defer close(done)
		watch(ctx, tp, func(ok bool) { states <- ok })
	}()
	defer func() {
		cancel()
		<-done
	}()
	wait := func(want bool) { t.Helper(); expectState(t, states, want) }
	wait(true)
	killed := time.Now()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	wait(false)
	t.Logf("seen down %v after the kill", time.Since(killed).Round(time.Millisecond))
}

// TestProcessEventsFollow: with process events, processes that start and
// end are followed one by one (the count is kept from the events, not by
// counting again): a quorum of 2 goes up with the second and down when
// one of them ends; a process that lives a fifth of a second, which
// counting once a second would likely miss, is seen up, then down.
func TestProcessEventsFollow(t *testing.T) {
	ev, err := openProcEvents()
	if err != nil {
		t.Skipf("no process events here: %v", err)
	}
	defer ev.Close()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep command")
	}
	arg := "1000.4343"
	tp := TrackProcess{Name: "two", Match: ProcessMatch{Process: sleep, FullCommand: true, Params: []string{arg}, ParamMatch: "exact", Quorum: 2}}
	ctx, cancel := context.WithCancel(context.Background())
	states := make(chan bool, 8)
	done := make(chan struct{})
	go func() {
		defer close(done)
		watchProcessEvents(ctx, tp, ev, func(ok bool) { states <- ok })
	}()
	defer func() {
		cancel()
		<-done
	}()
	wait := func(want bool) { t.Helper(); expectState(t, states, want) }
	wait(false) // the first count: none
	var cmds []*exec.Cmd
	for range 2 {
		c := exec.Command(sleep, arg)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
		defer func() { _ = c.Process.Kill(); _ = c.Wait() }()
	}
	wait(true)
	_ = cmds[0].Process.Kill()
	_ = cmds[0].Wait()
	wait(false)
	brief := exec.Command(sleep, arg)
	if err := brief.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	_ = brief.Process.Kill()
	_ = brief.Wait()
	wait(true)
	wait(false)
}

// expectState waits (5 s at most) for the next state a watcher reports
// and checks it.
func expectState(t *testing.T, states <-chan bool, want bool) {
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
