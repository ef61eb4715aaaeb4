package notify

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/govs/govs/internal/notify/smtpsink"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		in      string
		want    Command
		wantErr bool
	}{
		{in: "/bin/notify.sh", want: Command{Path: "/bin/notify.sh", Args: []string{}}},
		{in: "/bin/x  a b", want: Command{Path: "/bin/x", Args: []string{"a", "b"}}},
		{in: "/bin/x 'two words' c", want: Command{Path: "/bin/x", Args: []string{"two words", "c"}}},
		{in: `/bin/x a\ b`, want: Command{Path: "/bin/x", Args: []string{"a b"}}},
		{in: "/bin/sh -c 'echo $1'", want: Command{Path: "/bin/sh", Args: []string{"-c", "echo $1"}}},
		{in: "", wantErr: true},
		{in: "'' x", wantErr: true},
		{in: "/bin/x 'open", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseCommand(tt.in, "", "")
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v", err)
			}
			if tt.wantErr {
				return
			}
			if got.Args == nil {
				got.Args = []string{}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func script(t *testing.T, dir, name, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// openDir makes a root-owned temp dir that other users can traverse.
func openDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	for p := d; p != "/tmp" && p != "/" && p != "."; p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func TestRunnerSecurity(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("script security and script_user need root")
	}
	dir := openDir(t)
	ok := script(t, dir, "ok.sh", "id -u", 0o755)
	groupW := script(t, dir, "groupw.sh", "id -u", 0o775)
	owned := script(t, dir, "owned.sh", "id -u", 0o755)
	if err := os.Chown(owned, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	wdir := filepath.Join(dir, "world")
	if err := os.Mkdir(wdir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(wdir, 0o777); err != nil {
		t.Fatal(err)
	}
	inWorld := script(t, wdir, "x.sh", "id -u", 0o755)
	sdir := filepath.Join(dir, "sticky")
	if err := os.Mkdir(sdir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sdir, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	inSticky := script(t, sdir, "x.sh", "id -u", 0o755)

	tests := []struct {
		name     string
		runner   Runner
		cmd      Command
		wantErr  error
		wantUser string
	}{
		{"secure as root", Runner{Security: true}, Command{Path: ok}, nil, "0"},
		{"group writable", Runner{Security: true}, Command{Path: groupW}, ErrInsecure, ""},
		{"owned by nobody", Runner{Security: true}, Command{Path: owned}, ErrInsecure, ""},
		{"world writable dir", Runner{Security: true}, Command{Path: inWorld}, ErrInsecure, ""},
		{"sticky dir, root-owned file", Runner{Security: true}, Command{Path: inSticky}, nil, "0"},
		{"insecure but security off", Runner{}, Command{Path: groupW}, nil, "0"},
		{"insecure run as nobody", Runner{Security: true}, Command{Path: groupW, User: "nobody"}, nil, "65534"},
		{"script_user default", Runner{Security: true, DefaultUser: "nobody"}, Command{Path: owned}, nil, "65534"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tt.runner.Run(t.Context(), tt.cmd)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if err == nil {
				if got := strings.TrimSpace(string(out.Output)); got != tt.wantUser {
					t.Errorf("ran as uid %q, want %q", got, tt.wantUser)
				}
			}
		})
	}
}

func TestRunnerTimeoutAndExit(t *testing.T) {
	dir := t.TempDir()
	r := &Runner{KillGrace: 200 * time.Millisecond}
	// ignores SIGTERM: needs the SIGKILL after the grace
	stubborn := script(t, dir, "stubborn.sh", "trap '' TERM\nsleep 300 &\nwait", 0o755)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	out, err := r.Run(ctx, Command{Path: stubborn})
	if err == nil || !out.TimedOut || !strings.Contains(err.Error(), "timeout, process group killed") {
		t.Fatalf("got %+v, %v; want timeout", out, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("run took %v", d)
	}
	_, err = r.Run(t.Context(), Command{Path: "/bin/sh", Args: []string{"-c", "exit 7"}})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 7 {
		t.Errorf("err %v, want exit status 7", err)
	}
}

func TestMailerAndNotifier(t *testing.T) {
	sink, err := smtpsink.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	m := &Mailer{
		Server: sink.Addr(), HeloName: "lb1.example.test", From: "govs@lb1.example.test",
		To: []string{"ops@example.test", "oncall@example.test"}, RouterID: "LVS_MAIN",
		Now: func() time.Time { return time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC) },
	}
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	n := &Notifier{Runner: &Runner{}, Mailer: m}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- n.Run(ctx) }()
	subj, body := RealServerMail("[10.0.0.2]:80", "[192.0.2.10]:80", false, "connect: connection refused")
	for i, state := range []string{"down", "up", "down"} {
		n.Enqueue(Notification{
			Scripts: []Command{{Path: "/bin/sh", Args: []string{"-c", `sleep 0.0$1; echo "$2" >> "$3"`, "sh", string(rune('3' - i)), state, log}}},
			Mail:    i == 0, Subject: subj, Body: body,
		})
	}
	select {
	case <-sink.Received():
	case <-time.After(10 * time.Second):
		t.Fatal("no mail received")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(log)
		if strings.Count(string(b), "\n") == 3 {
			if got := string(b); got != "down\nup\ndown\n" {
				t.Errorf("scripts ran out of order: %q", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("scripts did not all run: %q", b)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done

	msgs := sink.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	got := msgs[0]
	if got.Helo != "lb1.example.test" || got.From != "govs@lb1.example.test" ||
		!cmp.Equal(got.To, []string{"ops@example.test", "oncall@example.test"}) {
		t.Errorf("envelope %+v", got)
	}
	for _, want := range []string{
		"Subject: [LVS_MAIN] Realserver [10.0.0.2]:80 of virtual server [192.0.2.10]:80 - DOWN\r\n",
		"To: ops@example.test, oncall@example.test\r\n",
		"Date: Sat, 21 Nov 2026 12:00:00 +0000\r\n",
		"\r\n\r\n=> CHECK failed on service : connect: connection refused <=\r\n",
	} {
		if !strings.Contains(got.Data, want) {
			t.Errorf("message lacks %q:\n%s", want, got.Data)
		}
	}
	if err := (&Mailer{Server: sink.Addr()}).Send(t.Context(), "x", "y"); !errors.Is(err, ErrNoRecipients) {
		t.Errorf("no recipients: %v", err)
	}
}

func TestMailerServerDown(t *testing.T) {
	sink, err := smtpsink.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := sink.Addr()
	sink.Close()
	err = (&Mailer{Server: addr, To: []string{"a@example.test"}, ConnectTimeout: time.Second}).Send(t.Context(), "s", "b")
	if err == nil || !strings.Contains(err.Error(), "smtp connect") {
		t.Errorf("err %v, want smtp connect failure", err)
	}
}

func TestVRRPHelpers(t *testing.T) {
	if got := VRRPNotifyArgs(false, "VI_1", "master", 100); !cmp.Equal(got, []string{"INSTANCE", "VI_1", "MASTER", "100"}) {
		t.Errorf("args %v", got)
	}
	s, b := VRRPMail("VI_1", "master")
	if s != "VRRP Instance VI_1 - Entering MASTER state" || !strings.Contains(b, "owning VRRP VIPs") {
		t.Errorf("%q %q", s, b)
	}
	s, _ = QuorumMail("[192.0.2.10]:80", true, 3, 2, 1)
	if s != "Virtualserver [192.0.2.10]:80 - UP" {
		t.Errorf("%q", s)
	}
}

// TestMailerAgainstPythonSMTPD sends an alert to Python's smtpd
// DebuggingServer (an independent SMTP implementation; the module exists
// up to Python 3.11 and was removed in 3.12).
func TestMailerAgainstPythonSMTPD(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	if err := exec.Command(py, "-W", "ignore", "-c", "import smtpd").Run(); err != nil {
		t.Skip("python3 has no smtpd module (removed in Python 3.12); the Go sink tests cover the mailer")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var out syncBuffer
	cmd := exec.Command(py, "-W", "ignore", "-u", "-m", "smtpd", "-n", "-c", "DebuggingServer", addr)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	m := &Mailer{Server: addr, To: []string{"ops@example.test"}, From: "lb@example.test", RouterID: "LVS_PY", ConnectTimeout: time.Second}
	subj, body := QuorumMail("[192.0.2.10]:80", false, 0, 1, 0)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err = m.Send(t.Context(), subj, body)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // server still starting
	}
	if err != nil {
		t.Fatalf("send: %v\n%s", err, out.String())
	}
	for !strings.Contains(out.String(), "END MESSAGE") {
		if time.Now().After(deadline) {
			t.Fatalf("message not printed by smtpd:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []string{"Subject: [LVS_PY] Virtualserver [192.0.2.10]:80 - DOWN", "=> Lost quorum"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("smtpd output lacks %q:\n%s", want, out.String())
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
