package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// webClient talks to the web UI as its pages do: a cookie session and the
// CSRF token on changes.
type webClient struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

func newWebClient(t *testing.T, addr string) *webClient {
	jar, _ := cookiejar.New(nil)
	return &webClient{t: t, base: "http://" + addr, c: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

func (w *webClient) do(method, path string, body any) (int, map[string]any) {
	w.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, w.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if w.csrf != "" {
		req.Header.Set("X-CSRF-Token", w.csrf)
	}
	resp, err := w.c.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

// webConf is a one-service configuration with the web UI on webAddr.
func webConf(vip, webAddr string, a, b *backend) string {
	return fmt.Sprintf(`# web farm, edited through the web UI
global_defs {
    router_id e2e-web   # the UI shows it
}

virtual_server 127.0.0.1 %s {
    lb_algo wrr
    lb_kind NAT
    delay_loop 0.3
    real_server 127.0.0.1 %s {
        weight 1
        TCP_CHECK {
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
`, port(vip), port(a.addr), port(b.addr))
}

// setWebPassword runs govs web-password on the file, the password on
// standard input, as an operator would.
func setWebPassword(t *testing.T, conf, password, listen string) {
	t.Helper()
	cmd := exec.Command(govsBin, "web-password", "-f", conf, "--listen", listen)
	cmd.Stdin = strings.NewReader(password + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("govs web-password: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "govs_web_password written to "+conf) {
		t.Fatalf("govs web-password said:\n%s", out)
	}
}

// startGovsFile is startGovs for a configuration already written.
func startGovsFile(t *testing.T, conf string) *daemon {
	t.Helper()
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	return startGovs(t, string(b))
}

// The web UI as a user meets it, without a browser: the password set by
// govs web-password, a login, the live state, and a configuration change
// that is written (comments kept) and runs.
func TestWebUIEndToEnd(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	vip, webAddr := freeAddr(t), freeAddr(t)
	conf := t.TempDir() + "/govs.conf"
	os.WriteFile(conf, []byte(webConf(vip, webAddr, a, b)), 0o644)
	// without a password the web UI is refused
	chk, err := exec.Command(govsBin, "check", "-f", conf).CombinedOutput()
	if err != nil {
		t.Fatalf("check: %v\n%s", err, chk)
	}
	os.WriteFile(conf+".nopw", []byte(strings.Replace(webConf(vip, webAddr, a, b), "router_id e2e-web", "router_id e2e-web\n    govs_web_listen "+webAddr, 1)), 0o644)
	chk, _ = exec.Command(govsBin, "check", "-f", conf+".nopw").CombinedOutput()
	if !strings.Contains(string(chk), "govs_web_listen is set but govs_web_password is not") {
		t.Errorf("check of a UI without a password:\n%s", chk)
	}
	setWebPassword(t, conf, "correct-horse", webAddr)
	d := startGovsFile(t, conf)
	d.waitHealthy(t, b.addr, true)

	w := newWebClient(t, webAddr)
	if code, _ := w.do("GET", "/api/v1/state", nil); code != 401 {
		t.Fatalf("state without login: %d", code)
	}
	if code, out := w.do("POST", "/login", map[string]string{"password": "wrong-horse"}); code != 401 {
		t.Fatalf("wrong password: %d %v", code, out)
	}
	code, out := w.do("POST", "/login", map[string]string{"password": "correct-horse"})
	if code != 200 {
		t.Fatalf("login: %d %v", code, out)
	}
	w.csrf, _ = out["csrf"].(string)
	code, out = w.do("GET", "/api/v1/state", nil)
	if code != 200 || len(out["services"].([]any)) != 1 {
		t.Fatalf("state: %d %v", code, out)
	}

	// change the second real server's weight through the config API
	code, out = w.do("GET", "/api/v1/config", nil)
	if code != 200 {
		t.Fatalf("config: %d %v", code, out)
	}
	rev := out["revision"].(string)
	rs := out["config"].(map[string]any)["virtual_servers"].([]any)[0].(map[string]any)["real_servers"].([]any)[1].(map[string]any)
	rs["weight"] = 4
	code, out = w.do("POST", "/api/v1/config/edit", map[string]any{"revision": rev, "op": "set", "kind": "real_server", "vs": 0, "index": 1, "object": rs})
	if code != 200 || out["result"] != "saved" {
		t.Fatalf("edit: %d %v", code, out)
	}
	text, _ := os.ReadFile(d.conf)
	if !strings.Contains(string(text), "# web farm, edited through the web UI") || !strings.Contains(string(text), "router_id e2e-web   # the UI shows it") {
		t.Errorf("comments lost:\n%s", text)
	}
	listing, _, _ := d.run(t, "list", "-n")
	if !regexp.MustCompile(`127\.0\.0\.1:` + port(b.addr) + `\s+Masq\s+4\s`).MatchString(listing) {
		t.Errorf("govs list after the edit:\n%s", listing)
	}
	// the same revision again: refused, the file changed since
	if code, out = w.do("POST", "/api/v1/config/edit", map[string]any{"revision": rev, "op": "set", "kind": "real_server", "vs": 0, "index": 1, "object": rs}); code != 409 {
		t.Errorf("stale edit: %d %v", code, out)
	}
	// without the CSRF token: refused
	tok := w.csrf
	w.csrf = ""
	if code, _ = w.do("POST", "/api/v1/reload", map[string]any{}); code != 403 {
		t.Errorf("reload without CSRF token: %d", code)
	}
	w.csrf = tok
	if code, out = w.do("POST", "/api/v1/reload", map[string]any{}); code != 200 {
		t.Errorf("reload: %d %v", code, out)
	}
}

// A listener on an address this host does not have (a VIP, on the
// backup) stops govs at once with the reason, before anything is set up.
func TestRunRefusesAddressNotHere(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	conf := t.TempDir() + "/govs.conf"
	os.WriteFile(conf, []byte(webConf(freeAddr(t), "", a, b)), 0o644)
	setWebPassword(t, conf, "correct-horse", "192.0.2.1:3636") // TEST-NET: on no host; only bound, never sent to
	sock := t.TempDir() + "/govs.sock"
	cmd := exec.Command(govsBin, "run", "-f", conf, "--dataplane", "proxy", "--api-socket", sock)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("govs kept running:\n%s", out)
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "web UI listen 192.0.2.1:3636") {
		t.Errorf("exit %v:\n%s", err, out)
	}
	if _, err := os.Stat(sock); err == nil {
		t.Error("the API socket was made: something was set up before the listener failed")
	}
}
