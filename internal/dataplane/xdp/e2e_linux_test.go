package xdp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govs/govs/internal/connsync"
	"github.com/govs/govs/internal/dataplane"
)

func labServices(method dataplane.Method, n int) []dataplane.Service {
	mk := func(vip string) dataplane.Service {
		s := dataplane.Service{Key: dataplane.ServiceKey{Proto: dataplane.TCP, Addr: netip.MustParseAddr(vip), Port: 80}, Scheduler: "rr"}
		for i := 1; i <= n; i++ {
			s.RealServers = append(s.RealServers, dataplane.RealServer{
				Addr: netip.AddrPortFrom(netip.MustParseAddr(fmt.Sprintf("%s.%d", labNet, 10+i)), 80), Weight: 1, Method: method,
			})
		}
		return s
	}
	if method == dataplane.TUN {
		return []dataplane.Service{mk(labVIPTUN)}
	}
	return []dataplane.Service{mk(labVIPDR)}
}

// TestEndToEnd: a client fetches over HTTP through the XDP director in
// direct routing and in tunnel mode; both real servers answer; replies
// go straight to the client (the director counts no outbound packet and
// never sees a reply).
func TestEndToEnd(t *testing.T) {
	l := newLab(t, 2)
	l.serveHTTP("rs1", "rs1")
	l.serveHTTP("rs2", "rs2")
	for i := 1; i <= 2; i++ {
		ns := fmt.Sprintf("rs%d", i)
		l.inNS(ns, func() {
			dc, err := NewDecap(DecapOptions{Interface: "eth0", VIPs: []netip.Addr{netip.MustParseAddr(labVIPTUN)}, PinPath: "/sys/fs/bpf/xd-e2e-decap-" + ns})
			if err != nil {
				t.Fatalf("decap in %s: %v", ns, err)
			}
			t.Cleanup(func() {
				if err := dc.Close(); err != nil {
					t.Errorf("close decap: %v", err)
				}
			})
		})
	}
	d := l.newDirector(Options{Interfaces: []string{"eth0"}, PinPath: "/sys/fs/bpf/xd-e2e", SyncInterval: 200 * time.Millisecond})
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("close director: %v", err)
		}
	})
	svcs := append(labServices(dataplane.DR, 2), labServices(dataplane.TUN, 2)...)
	if err := d.Apply(context.Background(), svcs); err != nil {
		t.Fatalf("apply: %v", err)
	}
	c := l.httpClient()
	for _, tt := range []struct {
		name, vip, exit string
	}{
		{"dr", labVIPDR, "tx_dr"},
		{"tun", labVIPTUN, "tx_tun"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := d.Exits()
			seen := map[string]int{}
			for i := range 20 {
				body, err := get(c, "http://"+tt.vip+"/")
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				seen[body]++
			}
			if seen["rs1"] != 10 || seen["rs2"] != 10 {
				t.Errorf("answers %v, want 10 from each real server (rr)", seen)
			}
			after, _ := d.Exits()
			if n := after[tt.exit] - before[tt.exit]; n < 20*3 {
				t.Errorf("%s +%d, want at least 3 packets per request", tt.exit, n)
			}
			st, err := d.Stats(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range st.Services {
				if s.Key.Addr.String() == tt.vip && (s.Conns != 20 || s.OutPkts != 0 || s.InPkts < 60) {
					t.Errorf("service counters %+v: want 20 connections, ≥60 packets in, none out", s.Counters)
				}
			}
		})
	}
	// the real servers decapsulated the tunnelled packets
	for i := 1; i <= 2; i++ {
		out := l.in(fmt.Sprintf("rs%d", i), "ip", "-s", "link", "show", "eth0")
		if !strings.Contains(out, "xdp") {
			t.Errorf("rs%d: no xdp program on eth0", i)
		}
	}
}

// childEnv carries the configuration of a director child process.
type childEnv struct {
	NS, PinPath string
	Services    []dataplane.Service
	// Sync runs a connection-sync daemon in Role (connsync.Role) beside
	// the director; its counters are printed as "sync {json}" lines.
	Sync *connsync.Config `json:",omitempty"`
	Role connsync.Role    `json:",omitempty"`
	// Exec runs the child inside NS as a whole (ip netns exec), as a
	// director with sockets of its own must be.
	Exec bool `json:",omitempty"`
	// Interfaces the director attaches to (default eth0); Prefix is the
	// lab's namespace prefix (default "xd").
	Interfaces []string `json:",omitempty"`
	Prefix     string   `json:",omitempty"`
}

// TestDirectorChild is the director process of TestKill9Restart; it does
// nothing unless started by it.
func TestDirectorChild(t *testing.T) {
	raw := os.Getenv("XD_DIRECTOR_CHILD")
	if raw == "" {
		t.Skip("helper process of TestKill9Restart")
	}
	var env childEnv
	if err := json.Unmarshal([]byte(raw), &env); err != nil {
		t.Fatal(err)
	}
	l := &lab{t: t, prefix: "xd"}
	if env.Prefix != "" {
		l.prefix = env.Prefix
	}
	ifaces := env.Interfaces
	if len(ifaces) == 0 {
		ifaces = []string{"eth0"}
	}
	var d *Dataplane
	l.inNS(env.NS, func() {
		var err error
		d, err = New(Options{Interfaces: ifaces, PinPath: env.PinPath, KeepOnClose: true, SyncInterval: 200 * time.Millisecond})
		if err != nil {
			t.Fatalf("new: %v", err)
		}
	})
	if err := d.Apply(context.Background(), env.Services); err != nil {
		t.Fatalf("apply: %v", err)
	}
	if env.Sync == nil {
		fmt.Println("ready")
		time.Sleep(time.Minute) // until killed
		return
	}
	sd, err := connsync.New(*env.Sync, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	sd.SetRole(env.Role)
	fmt.Println("ready")
	last := ""
	for range 300 { // until killed
		est := 0
		_ = d.Conns(context.Background(), func(c dataplane.Conn) bool {
			if c.State == "ESTABLISHED" {
				est++
			}
			return true
		})
		b, _ := json.Marshal(sd.Stats())
		if line := fmt.Sprintf("sync %d %s", est, b); line != last {
			last = line
			fmt.Println(line)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func startChild(t *testing.T, env childEnv) *exec.Cmd {
	t.Helper()
	cmd, _ := startChildLines(t, env)
	return cmd
}

// startChildLines starts a director child and returns the lines it
// prints after "ready".
func startChildLines(t *testing.T, env childEnv) (*exec.Cmd, <-chan string) {
	t.Helper()
	raw, _ := json.Marshal(env)
	args := []string{os.Args[0], "-test.run=^TestDirectorChild$", "-test.count=1", "-test.v"}
	if env.Exec {
		prefix := env.Prefix
		if prefix == "" {
			prefix = "xd"
		}
		args = append([]string{"ip", "netns", "exec", prefix + env.NS}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "XD_DIRECTOR_CHILD="+string(raw))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ready := make(chan bool, 1)
	lines := make(chan string, 1000)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		isReady := false
		for sc.Scan() {
			if sc.Text() == "ready" && !isReady {
				isReady = true
				ready <- true
				continue
			}
			if isReady {
				select {
				case lines <- sc.Text():
				default: // nobody reads them
				}
			}
		}
		if !isReady {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("director child exited before ready")
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("director child not ready")
	}
	return cmd, lines
}

// TestKill9Restart: the director process is killed with SIGKILL under a
// bounded request loop and a long-lived connection; a new process adopts
// the pinned program and maps. No request fails, the long-lived
// connection survives.
func TestKill9Restart(t *testing.T) {
	l := newLab(t, 2)
	l.serveHTTP("rs1", "rs1")
	l.serveHTTP("rs2", "rs2")
	pin := "/sys/fs/bpf/xd-restart"
	_ = RemovePinned(pin)
	t.Cleanup(func() { _ = RemovePinned(pin) })
	env := childEnv{NS: "dir", PinPath: pin, Services: labServices(dataplane.DR, 2)}
	first := startChild(t, env)

	// long-lived connection: a streaming request echoing lines
	dial := l.dialer()
	conn, err := dial(context.Background(), "tcp", labVIPDR+":80")
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
	br := bufio.NewReader(conn)
	echo := func(i int) error {
		line := fmt.Sprintf("ping-%03d\n", i)
		conn.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := fmt.Fprintf(conn, "%x\r\n%s\r\n", len(line), line); err != nil {
			return err
		}
		for {
			s, err := br.ReadString('\n')
			if err != nil {
				return err
			}
			if strings.Contains(s, line[:8]) {
				return nil
			}
		}
	}
	if err := echo(0); err != nil {
		t.Fatalf("long-lived connection: %v", err)
	}

	// bounded load loop: sequential requests, new connection each
	c := l.httpClient()
	var mu sync.Mutex
	var ok, failed int
	var firstErr error
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		deadline := time.Now().Add(15 * time.Second)
		for i := 0; i < 5000 && time.Now().Before(deadline); i++ {
			select {
			case <-stop:
				return
			default:
			}
			_, err := get(c, "http://"+labVIPDR+"/")
			mu.Lock()
			if err != nil {
				failed++
				if firstErr == nil {
					firstErr = err
				}
			} else {
				ok++
			}
			mu.Unlock()
		}
	}()
	time.Sleep(time.Second)
	if err := first.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = first.Wait()
	time.Sleep(500 * time.Millisecond) // no director process at all
	if err := echo(1); err != nil {
		t.Errorf("long-lived connection broken while no director ran: %v", err)
	}
	second := startChild(t, env)
	time.Sleep(time.Second)
	close(stop)
	<-done
	if err := echo(2); err != nil {
		t.Errorf("long-lived connection broken after the restart: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d requests across kill -9 and restart, %d failed", ok+failed, failed)
	if failed != 0 || ok < 50 {
		t.Errorf("%d ok, %d failed (first error: %v)", ok, failed, firstErr)
	}
	_ = second.Process.Kill()
}
