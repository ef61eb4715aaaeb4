package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/api"
)

// These tests run the built binary as a user would: govs run with a
// config on loopback, traffic through the virtual service, govs list,
// reload with SIGHUP and with govs reload.

var govsBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "govs-e2e")
	if err != nil {
		panic(err)
	}
	govsBin = filepath.Join(dir, "govs")
	out, err := exec.Command("go", "build", "-o", govsBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build govs: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// backend is an HTTP server answering its name, that can be stopped and
// started again on the same address.
type backend struct {
	name string
	addr string
	mu   sync.Mutex
	srv  *http.Server
}

func newBackend(t *testing.T, name string) *backend {
	t.Helper()
	b := &backend{name: name, addr: freeAddr(t)}
	b.start(t)
	t.Cleanup(b.stop)
	return b
}

func (b *backend) start(t *testing.T) {
	t.Helper()
	var l net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if l, err = net.Listen("tcp", b.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("backend %s: %v", b.name, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, b.name)
	})}
	b.mu.Lock()
	b.srv = srv
	b.mu.Unlock()
	go srv.Serve(l)
}

func (b *backend) stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.srv != nil {
		b.srv.Close()
		b.srv = nil
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

type daemon struct {
	cmd    *exec.Cmd
	sock   string
	conf   string
	log    *bytes.Buffer
	logMu  *sync.Mutex
	client *api.Client
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func startGovs(t *testing.T, conf string) *daemon {
	t.Helper()
	dir := t.TempDir()
	d := &daemon{sock: filepath.Join(dir, "govs.sock"), conf: filepath.Join(dir, "govs.conf"), log: &bytes.Buffer{}, logMu: &sync.Mutex{}}
	if err := os.WriteFile(d.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(govsBin, "run", "-f", d.conf, "--dataplane", "proxy", "--api-socket", d.sock, "--lame-duck", "0s")
	d.cmd.Stdout = lockedWriter{d.logMu, d.log}
	d.cmd.Stderr = lockedWriter{d.logMu, d.log}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { d.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			d.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("govs log:\n%s", d.logText())
		}
	})
	d.client = api.NewClient(d.sock)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := d.client.State(context.Background()); err == nil {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("govs did not start:\n%s", d.logText())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *daemon) logText() string {
	d.logMu.Lock()
	defer d.logMu.Unlock()
	return d.log.String()
}

func (d *daemon) run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(govsBin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), "GOVS_SOCKET="+d.sock)
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// get sends one request on a new connection and returns who answered.
func get(url string) (string, error) {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b)), err
}

func distribution(t *testing.T, url string, n int) (map[string]int, int) {
	t.Helper()
	got := map[string]int{}
	failed := 0
	for i := 0; i < n; i++ {
		who, err := get(url)
		if err != nil {
			failed++
			continue
		}
		got[who]++
	}
	return got, failed
}

// waitHealthy polls the API until the real server has the wanted health.
func (d *daemon) waitHealthy(t *testing.T, rs string, healthy bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		st, err := d.client.State(context.Background())
		if err == nil {
			for _, s := range st.Services {
				for _, r := range s.RealServers {
					if r.Addr == rs && r.Healthy == healthy {
						return
					}
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("real server %s never became healthy=%v", rs, healthy)
}

func threeBackendConf(vip string, a, b, c *backend) string {
	return fmt.Sprintf(`global_defs {
    router_id e2e
}
virtual_server 127.0.0.1 %s {
    lb_algo wrr
    lb_kind NAT
    delay_loop 0.3
    real_server 127.0.0.1 %s {
        weight 3
        TCP_CHECK {
            connect_timeout 0.5
            retry 0
        }
    }
    real_server 127.0.0.1 %s {
        weight 2
        HTTP_GET {
            url {
                path /
            }
            connect_timeout 0.5
            retry 0
        }
    }
    real_server 127.0.0.1 %s {
        weight 1
        TCP_CHECK {
            connect_timeout 0.5
            retry 0
        }
    }
}
`, port(vip), port(a.addr), port(b.addr), port(c.addr))
}

func TestBalancingHealthAndReentry(t *testing.T) {
	a, b, c := newBackend(t, "a"), newBackend(t, "b"), newBackend(t, "c")
	vip := freeAddr(t)
	d := startGovs(t, threeBackendConf(vip, a, b, c))
	url := "http://" + vip + "/"

	got, failed := distribution(t, url, 60)
	if failed != 0 || got["a"] != 30 || got["b"] != 20 || got["c"] != 10 {
		t.Fatalf("wrr 3:2:1 over 60 requests: got %v, %d failed", got, failed)
	}

	out, _, code := d.run(t, "list", "-n")
	if code != 0 || !strings.Contains(out, "TCP  "+vip+" wrr") || !strings.Contains(out, "  -> "+b.addr) {
		t.Fatalf("govs list -n (exit %d):\n%s", code, out)
	}
	out, _, _ = d.run(t, "list", "-n", "--stats", "--exact")
	if !strings.Contains(out, "60") {
		t.Errorf("stats do not count 60 connections:\n%s", out)
	}

	// Prometheus metrics on the API socket.
	uc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.sock)
	}}}
	resp, err := uc.Get("http://govs/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf(`govs_realserver_connections_total{server=%q,service="tcp/%s"} 30`, a.addr, vip); !strings.Contains(string(mb), want) {
		t.Errorf("metrics lack %s:\n%s", want, mb)
	}

	// b dies: its HTTP check fails, it leaves the pool, traffic continues.
	b.stop()
	d.waitHealthy(t, b.addr, false)
	got, failed = distribution(t, url, 30)
	if failed != 0 || got["b"] != 0 || got["a"]+got["c"] != 30 {
		t.Fatalf("after b stopped: got %v, %d failed", got, failed)
	}
	st, _ := d.client.State(context.Background())
	for _, r := range st.Services[0].RealServers {
		if r.Addr == b.addr && (r.InPool || !strings.Contains(r.Reason, "HTTP_GET")) {
			t.Errorf("b in pool=%v reason=%q", r.InPool, r.Reason)
		}
	}

	// b comes back and re-enters the pool.
	b.start(t)
	d.waitHealthy(t, b.addr, true)
	got, failed = distribution(t, url, 60)
	if failed != 0 || got["b"] != 20 {
		t.Fatalf("after b came back: got %v, %d failed", got, failed)
	}

	// Drain a at run time: no new connections to it.
	if _, stderr, code := d.run(t, "set", "-t", vip, "-r", a.addr, "--drain"); code != 0 {
		t.Fatalf("govs set --drain: %s", stderr)
	}
	got, failed = distribution(t, url, 30)
	if failed != 0 || got["a"] != 0 {
		t.Fatalf("after draining a: got %v, %d failed", got, failed)
	}
	out, _, _ = d.run(t, "list", "-n")
	if !strings.Contains(out, fmt.Sprintf("  -> %-28s %-7s %-6d", a.addr, "Masq", 0)) {
		t.Errorf("drained server not shown with weight 0:\n%s", out)
	}
}

func TestReloadBrokenConfigKeepsServing(t *testing.T) {
	a, b, c := newBackend(t, "a"), newBackend(t, "b"), newBackend(t, "c")
	vip := freeAddr(t)
	conf := threeBackendConf(vip, a, b, c)
	d := startGovs(t, conf)
	url := "http://" + vip + "/"

	// A bounded load loop runs through the reloads.
	var failures, total int
	var mu sync.Mutex
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		deadline := time.Now().Add(20 * time.Second)
		for i := 0; i < 5000 && time.Now().Before(deadline); i++ {
			select {
			case <-stop:
				return
			default:
			}
			_, err := get(url)
			mu.Lock()
			total++
			if err != nil {
				failures++
			}
			mu.Unlock()
		}
	}()
	time.Sleep(300 * time.Millisecond)

	// Break the file: remove the closing brace of the second real server.
	broken := strings.Replace(conf, "            retry 0\n        }\n    }\n    real_server", "            retry 0\n        }\n    real_server", 1)
	if broken == conf {
		t.Fatal("test did not break the config")
	}
	if err := os.WriteFile(d.conf, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := d.run(t, "reload")
	if code != 1 || !strings.Contains(stderr, "reload refused") || !strings.Contains(stderr, d.conf+":8:5: error: missing \"}\"") {
		t.Errorf("govs reload of a broken config: exit %d, stderr:\n%s", code, stderr)
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(500 * time.Millisecond)
	close(stop)
	<-done
	mu.Lock()
	defer mu.Unlock()
	if total < 10 || failures != 0 {
		t.Fatalf("load during broken reloads: %d requests, %d failed", total, failures)
	}
	st, err := d.client.State(context.Background())
	if err != nil || len(st.Services) != 1 || len(st.Services[0].RealServers) != 3 || !strings.Contains(st.LastReloadError, "missing") {
		t.Fatalf("state after refused reload: %+v, %v", st, err)
	}
	if !strings.Contains(d.logText(), "reload refused") {
		t.Errorf("refused reload not logged")
	}
}

func TestReloadAddsServiceKeepsConnections(t *testing.T) {
	// An echo real server for a long-lived connection.
	el, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer el.Close()
	go func() {
		for {
			c, err := el.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	web := newBackend(t, "web")
	vip1, vip2 := freeAddr(t), freeAddr(t)
	conf1 := fmt.Sprintf("virtual_server 127.0.0.1 %s {\n    lb_algo rr\n    real_server 127.0.0.1 %s {\n    }\n}\n", port(vip1), port(el.Addr().String()))
	d := startGovs(t, conf1)

	conn, err := net.Dial("tcp", vip1)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	echo := func(msg string) {
		t.Helper()
		conn.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := fmt.Fprintln(conn, msg); err != nil {
			t.Fatalf("write on long-lived connection: %v", err)
		}
		line, err := r.ReadString('\n')
		if err != nil || strings.TrimSpace(line) != msg {
			t.Fatalf("echo %q: got %q, %v", msg, line, err)
		}
	}
	echo("before reload")

	conf2 := conf1 + fmt.Sprintf("virtual_server 127.0.0.1 %s {\n    lb_algo rr\n    real_server 127.0.0.1 %s {\n    }\n}\n", port(vip2), port(web.addr))
	if err := os.WriteFile(d.conf, []byte(conf2), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, stderr, code := d.run(t, "reload"); code != 0 {
		t.Fatalf("reload: %s %s", out, stderr)
	}
	echo("after reload")
	if who, err := get("http://" + vip2 + "/"); err != nil || who != "web" {
		t.Fatalf("new service: %q %v", who, err)
	}
	st, _ := d.client.State(context.Background())
	if len(st.Services) != 2 || st.Services[0].Stats.Conns != 1 {
		b, _ := json.Marshal(st)
		t.Fatalf("state after reload: %s", b)
	}
	echo("still alive")
}

func TestCheckCommand(t *testing.T) {
	run := func(stdin string, args ...string) (string, string, int) {
		cmd := exec.Command(govsBin, args...)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return out.String(), errb.String(), code
	}
	if _, stderr, code := run("", "check", "-f", "../../examples/seed004-master.conf"); code != 0 {
		t.Errorf("seed004-master: exit %d: %s", code, stderr)
	}
	src, _ := os.ReadFile("../../examples/seed004-master.conf")
	// Remove the closing brace of the first real_server (line 47).
	lines := strings.Split(string(src), "\n")
	var kept []string
	for i, l := range lines {
		if i+1 == 47 && l == "    }" {
			continue
		}
		kept = append(kept, l)
	}
	if len(kept) == len(lines) {
		t.Fatal("line 47 of seed004-master.conf is no longer the real_server's closing brace")
	}
	_, stderr, code := run(strings.Join(kept, "\n"), "check", "-f", "-")
	if code != 1 || !strings.Contains(stderr, "<stdin>:41:5: error: missing \"}\" to close \"real_server\"") {
		t.Errorf("missing brace: exit %d:\n%s", code, stderr)
	}
	if _, _, code := run("", "check", "--bogus"); code != 2 {
		t.Errorf("usage error: exit %d, want 2", code)
	}
	// conditional lines follow --config-id
	cond := "vrrp_instance VI {\n    interface eth0\n    virtual_router_id 9\n    @lb1 priority 150\n    @^lb1 priority 100\n    virtual_ipaddress {\n        10.0.0.9\n    }\n}\n"
	for id, want := range map[string]string{"lb1": `"priority": 150`, "lb2": `"priority": 100`} {
		if out, stderr, code := run(cond, "check", "-f", "-", "--config-id", id, "--dump"); code != 0 || !strings.Contains(out, want) {
			t.Errorf("--config-id %s: exit %d, want %s in:\n%s%s", id, code, want, out, stderr)
		}
	}
	out, _, code := run("virtual_server 10.0.0.1 80 {\n}\n", "check", "-f", "-", "--dump")
	if code != 0 || !strings.Contains(out, `"lvs_sched": "wlc"`) {
		t.Errorf("--dump: exit %d\n%s", code, out)
	}
}
