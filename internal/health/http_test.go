package health

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func checkOnce(t *testing.T, s Spec) Result {
	t.Helper()
	s = s.Defaults()
	if err := s.Validate(); err != nil {
		t.Fatalf("spec: %v", err)
	}
	c, err := New(s, Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), s.AttemptTimeout())
	defer cancel()
	return c.Check(ctx)
}

func TestHTTPAgainstNginx(t *testing.T) {
	ng := startNginx(t)
	index, err := os.ReadFile(filepath.Join(ng.root, "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	digest := HTTPDigest(index)
	if g := genhash(t, "-s", "127.0.0.1", "-p", strconv.Itoa(int(ng.http.Port())), "-u", "/index.html"); g != "" && g != digest {
		t.Fatalf("our digest %s differs from keepalived genhash %s", digest, g)
	}
	if g := genhash(t, "-S", "-s", "127.0.0.1", "-p", strconv.Itoa(int(ng.https.Port())), "-u", "/index.html"); g != "" && g != digest {
		t.Fatalf("our digest %s differs from genhash over TLS %s", digest, g)
	}
	url := func(path string, mod func(*URLSpec)) *HTTPSpec {
		u := URLSpec{Path: path}
		if mod != nil {
			mod(&u)
		}
		return &HTTPSpec{URLs: []URLSpec{u}}
	}
	tests := []struct {
		name    string
		kind    Kind
		http    *HTTPSpec
		wantErr string // "" = pass
	}{
		{"status 200", HTTPGet, url("/index.html", nil), ""},
		{"digest", HTTPGet, url("/index.html", func(u *URLSpec) { u.Digest = digest }), ""},
		{"wrong digest", HTTPGet, url("/index.html", func(u *URLSpec) { u.Digest = strings.Repeat("0", 32) }), "digest " + digest},
		{"wrong status", HTTPGet, url("/missing", nil), "status 404 not in 200-299"},
		{"status range", HTTPGet, url("/teapot", func(u *URLSpec) { u.StatusCodes = []StatusRange{{200, 200}, {400, 499}} }), ""},
		{"regex", HTTPGet, url("/status.html", func(u *URLSpec) { u.Regex = "service (OK|DEGRADED)" }), ""},
		{"regex miss", HTTPGet, url("/status.html", func(u *URLSpec) { u.Regex = "DOWN" }), "does not match regex"},
		{"regex_no_match", HTTPGet, url("/status.html", func(u *URLSpec) { u.Regex = "OK"; u.RegexNoMatch = true }), "body matches regex"},
		{"http 1.1 vhost", HTTPGet, &HTTPSpec{Protocol: "1.1", VirtualHost: "www.example.test", URLs: []URLSpec{{Path: "/", Digest: digest}}}, ""},
		{"http 1.0C", HTTPGet, &HTTPSpec{Protocol: "1.0C", URLs: []URLSpec{{Path: "/"}}}, ""},
		{"two urls, second bad", HTTPGet, &HTTPSpec{URLs: []URLSpec{{Path: "/"}, {Path: "/nope"}}}, "url /nope: status 404"},
		{"ssl no verify", SSLGet, url("/index.html", func(u *URLSpec) { u.Digest = digest }), ""},
		{"ssl sni verify with ca", SSLGet, &HTTPSpec{SNI: true, SNIName: "www.example.test", Verify: true, CAFile: ng.cert, URLs: []URLSpec{{Path: "/"}}}, ""},
		{"ssl verify unknown ca", SSLGet, &HTTPSpec{SNI: true, SNIName: "www.example.test", Verify: true, URLs: []URLSpec{{Path: "/"}}}, "tls handshake: certificate"},
		{"ssl verify wrong name", SSLGet, &HTTPSpec{SNI: true, SNIName: "other.example.test", Verify: true, CAFile: ng.cert, URLs: []URLSpec{{Path: "/"}}}, "tls handshake: certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := ng.http
			if tt.kind == SSLGet {
				target = ng.https
			}
			r := checkOnce(t, Spec{Kind: tt.kind, Target: target, ConnectTimeout: 3 * time.Second, HTTP: tt.http})
			switch {
			case tt.wantErr == "" && r.Err != nil:
				t.Errorf("unexpected failure: %v", r.Err)
			case tt.wantErr != "" && (r.Err == nil || !strings.Contains(r.Err.Error(), tt.wantErr)):
				t.Errorf("result %+v, want error containing %q", r, tt.wantErr)
			}
		})
	}
	t.Run("server stopped", func(t *testing.T) {
		ng.stop()
		r := checkOnce(t, Spec{Kind: HTTPGet, Target: ng.http, ConnectTimeout: time.Second})
		if r.Err == nil || r.Err.Error() != "connect: connection refused" {
			t.Errorf("got %v, want connect: connection refused", r.Err)
		}
	})
}
