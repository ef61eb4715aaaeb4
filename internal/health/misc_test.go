package health

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMiscCheck(t *testing.T) {
	dir := t.TempDir()
	target := netip.MustParseAddrPort("127.0.0.1:8080")
	exit := writeScript(t, dir, "exit.sh", `exit "$1"`)
	args := writeScript(t, dir, "args.sh", `echo "$@" > "$1.out"`)
	tests := []struct {
		name       string
		misc       MiscSpec
		wantErr    string
		wantWeight *int
	}{
		{"exit 0", MiscSpec{Path: exit, Args: []string{"0"}}, "", nil},
		{"exit 1", MiscSpec{Path: exit, Args: []string{"1"}}, "misc_check: exit status 1", nil},
		{"exit 3 not dynamic", MiscSpec{Path: exit, Args: []string{"3"}}, "misc_check: exit status 3", nil},
		{"dynamic exit 12", MiscSpec{Path: exit, Args: []string{"12"}, Dynamic: true}, "", intp(10)},
		{"dynamic exit 1", MiscSpec{Path: exit, Args: []string{"1"}, Dynamic: true}, "exit status 1", nil},
		{"dynamic exit 255", MiscSpec{Path: exit, Args: []string{"255"}, Dynamic: true}, "", intp(253)},
		{"missing program", MiscSpec{Path: filepath.Join(dir, "nope")}, "misc_check: find", nil},
		{"no shell", MiscSpec{Path: "/bin/echo", Args: []string{"$(touch " + dir + "/pwned)"}}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.misc
			r := checkOnce(t, Spec{Kind: Misc, Target: target, Misc: &m})
			wantResult(t, r, tt.wantErr)
			if (tt.wantWeight == nil) != (r.Weight == nil) || tt.wantWeight != nil && *tt.wantWeight != *r.Weight {
				t.Errorf("weight %v, want %v", r.Weight, tt.wantWeight)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Error("an argument was interpreted by a shell")
	}
	t.Run("%h %p", func(t *testing.T) {
		out := filepath.Join(dir, "x")
		r := checkOnce(t, Spec{Kind: Misc, Target: target, Misc: &MiscSpec{Path: args, Args: []string{out, "-H", "%h", "-p", "%p"}}})
		wantResult(t, r, "")
		b, err := os.ReadFile(out + ".out")
		if err != nil {
			t.Fatal(err)
		}
		if got, want := strings.TrimSpace(string(b)), out+" -H 127.0.0.1 -p 8080"; got != want {
			t.Errorf("args %q, want %q", got, want)
		}
	})
}

func TestMiscTimeoutKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	// The script leaves a background child and hangs; both ignore nothing.
	hang := writeScript(t, dir, "hang.sh", `echo $$ > `+pidFile+`
sleep 300 &
sleep 300`)
	start := time.Now()
	r := checkOnce(t, Spec{Kind: Misc, Target: netip.MustParseAddrPort("127.0.0.1:1"),
		Misc: &MiscSpec{Path: hang, Timeout: 500 * time.Millisecond}})
	wantResult(t, r, "timeout, process group killed")
	t.Logf("check returned after %v", time.Since(start))
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("check took %v after a 500ms timeout", d)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pgid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// Processes of the group may linger as zombies for a moment.
	deadline := time.Now().Add(3 * time.Second)
	for {
		err := syscall.Kill(-pgid, 0)
		if errors.Is(err, syscall.ESRCH) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("process group %d still alive after the timeout", pgid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSendProgram(t *testing.T) {
	dir := t.TempDir()
	// Piranha's example shape: a program prints OK or FAIL for %h.
	prog := writeScript(t, dir, "check.sh", `if [ "$1" = 127.0.0.1 ]; then echo OK; else echo FAIL; fi`)
	tests := []struct {
		name    string
		target  string
		se      SendExpectSpec
		wantErr string
	}{
		{"ok", "127.0.0.1:80", SendExpectSpec{Program: []string{prog, "%h"}, Expect: "OK"}, ""},
		{"fail output", "127.0.0.2:80", SendExpectSpec{Program: []string{prog, "%h"}, Expect: "OK"}, `send_program: "OK" not found in output "FAIL"`},
		{"regex", "127.0.0.2:80", SendExpectSpec{Program: []string{prog, "%h"}, Expect: "^(OK|FAIL)$", UseRegex: true}, ""},
		{"no expect: exit status", "127.0.0.1:80", SendExpectSpec{Program: []string{"/bin/false"}}, "exit status 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			se := tt.se
			r := checkOnce(t, Spec{Kind: SendExpect, Target: netip.MustParseAddrPort(tt.target), SendExpect: &se})
			wantResult(t, r, tt.wantErr)
		})
	}
}
