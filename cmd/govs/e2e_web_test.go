package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
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
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_nonlocal_bind"); err == nil && strings.TrimSpace(string(b)) == "1" {
		t.Skip("net.ipv4.ip_nonlocal_bind=1 here: the kernel lets any address be bound")
	}
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

// selfSigned writes a certificate and key for 127.0.0.1 and returns the
// files and a client that trusts it.
func selfSigned(t *testing.T) (certFile, keyFile string, client *http.Client) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "govs test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = dir+"/cert.pem", dir+"/key.pem"
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	jar, _ := cookiejar.New(nil)
	return certFile, keyFile, &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
}

// govs_web_tls: the UI speaks HTTPS only, its cookie is Secure and it
// sends HSTS.
func TestWebUITLS(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	webAddr := freeAddr(t)
	certFile, keyFile, hc := selfSigned(t)
	conf := t.TempDir() + "/govs.conf"
	text := strings.Replace(webConf(freeAddr(t), webAddr, a, b), "router_id e2e-web   # the UI shows it",
		fmt.Sprintf("router_id e2e-web\n    govs_web_tls %q %q", certFile, keyFile), 1)
	os.WriteFile(conf, []byte(text), 0o644)
	setWebPassword(t, conf, "correct-horse", webAddr)
	startGovsFile(t, conf)

	w := &webClient{t: t, base: "https://" + webAddr, c: hc}
	code, out := w.do("POST", "/login", map[string]string{"password": "correct-horse"})
	if code != 200 {
		t.Fatalf("login over TLS: %d %v", code, out)
	}
	req, _ := http.NewRequest("GET", "https://"+webAddr+"/session", nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Strict-Transport-Security"), "max-age=") || resp.ProtoMajor != 2 {
		t.Errorf("session over TLS: %d, HSTS %q, %s", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"), resp.Proto)
	}
	u, _ := url.Parse("https://" + webAddr + "/")
	for _, c := range hc.Jar.Cookies(u) {
		if c.Name == "govs_session" && c.Value == "" {
			t.Error("empty session cookie")
		}
	}
	// the Secure flag is in the login's Set-Cookie
	lr, _ := http.NewRequest("POST", "https://"+webAddr+"/login", strings.NewReader(`{"password":"correct-horse"}`))
	lr.Header.Set("Content-Type", "application/json")
	if resp, err := hc.Do(lr); err != nil || !strings.Contains(resp.Header.Get("Set-Cookie"), "Secure") {
		t.Errorf("login cookie over TLS: %v %q", err, resp.Header.Get("Set-Cookie"))
	} else {
		resp.Body.Close()
	}
	// the live stream over HTTP/2
	sr, _ := http.NewRequest("GET", "https://"+webAddr+"/events", nil)
	if resp, err := hc.Do(sr); err != nil {
		t.Errorf("events over TLS: %v", err)
	} else {
		sc := bufio.NewScanner(resp.Body)
		events := 0
		for events < 2 && sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: {") {
				events++
			}
		}
		resp.Body.Close()
		if events < 2 || resp.ProtoMajor != 2 {
			t.Errorf("events over TLS: %d events, %s", events, resp.Proto)
		}
	}
	// plain HTTP on the TLS port gets no page
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + webAddr + "/"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Errorf("plain HTTP served the page: %s", body[:min(len(body), 80)])
		}
	}
}
