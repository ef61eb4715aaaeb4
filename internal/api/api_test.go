package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/dataplane"
)

type fakeBackend struct {
	reloadErr error
	changes   []any
}

func (f *fakeBackend) State(context.Context) (*State, error) {
	return &State{Version: "t", Services: []Service{{ID: "tcp/192.0.2.1:80"}}}, nil
}

func (f *fakeBackend) Conns(_ context.Context, fn func(Conn) bool) error {
	for i := 0; i < 3; i++ {
		if !fn(Conn{Proto: "TCP", Client: fmt.Sprintf("198.51.100.1:%d", 1000+i)}) {
			break
		}
	}
	return nil
}

func (f *fakeBackend) Reload(context.Context) error { return f.reloadErr }

func (f *fakeBackend) ChangeService(_ context.Context, c ServiceChange) error {
	if c.Service == "tcp/192.0.2.9:80" {
		return fmt.Errorf("%w: service %s", ErrNotFound, c.Service)
	}
	f.changes = append(f.changes, c)
	return nil
}

func (f *fakeBackend) ChangeRealServer(_ context.Context, c RealServerChange) error {
	if c.Weight != nil && *c.Weight > 65535 {
		return fmt.Errorf("%w: weight", ErrBadRequest)
	}
	f.changes = append(f.changes, c)
	return nil
}

func (f *fakeBackend) SetTimeouts(_ context.Context, t Timeouts) error {
	f.changes = append(f.changes, t)
	return nil
}

func (f *fakeBackend) ConfigDoc(context.Context) (*ConfigDoc, error) {
	return &ConfigDoc{Files: []string{"/etc/govs/govs.conf"}, Revision: "r1", Config: []byte(`{}`)}, nil
}

func (f *fakeBackend) EditConfig(_ context.Context, e ConfigEdit) (*ConfigEditResult, error) {
	switch e.Revision {
	case "r1":
	case "bad":
		return nil, &InvalidError{Msg: "invalid", Problems: []string{"govs.conf:3:5: error: lvs_sched \"x\": unknown scheduler"}}
	default:
		return nil, fmt.Errorf("%w: revision %s", ErrConflict, e.Revision)
	}
	f.changes = append(f.changes, e)
	return &ConfigEditResult{Result: "saved", Revision: "r2", Files: []string{"/etc/govs/govs.conf"}}, nil
}

func (f *fakeBackend) SetBGPAnnounce(context.Context, bool) error { return nil }

func (f *fakeBackend) PushConfig(context.Context, bool) ([]ConfigSyncPeer, error) {
	return nil, fmt.Errorf("%w: no peers", ErrBadRequest)
}

func TestServerAndClientOverUnixSocket(t *testing.T) {
	b := &fakeBackend{}
	sock := filepath.Join(t.TempDir(), "api.sock")
	ctx, cancel := context.WithCancel(context.Background())
	srv := &Server{Socket: sock, Handler: Handler(b, nil)}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	c := NewClient(sock)
	var st *State
	var err error
	for i := 0; i < 100; i++ {
		if st, err = c.State(context.Background()); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil || st.Version != "t" || len(st.Services) != 1 {
		t.Fatalf("state: %+v %v", st, err)
	}
	conns, err := c.Conns(context.Background())
	if err != nil || len(conns) != 3 {
		t.Errorf("conns: %v %v", conns, err)
	}
	off := false
	if err := c.ChangeService(context.Background(), ServiceChange{Service: "tcp/192.0.2.1:80", Enabled: &off}); err != nil {
		t.Error(err)
	}
	if err := c.ChangeService(context.Background(), ServiceChange{Service: "tcp/192.0.2.9:80", Enabled: &off}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("unknown service: %v", err)
	}
	w := 70000
	if err := c.ChangeRealServer(context.Background(), RealServerChange{Service: "tcp/192.0.2.1:80", Server: "10.0.0.1:80", Weight: &w}); err == nil || !strings.Contains(err.Error(), "bad request") {
		t.Errorf("bad weight: %v", err)
	}
	if err := c.SetTimeouts(context.Background(), Timeouts{TCP: 100, UDP: 20}); err != nil {
		t.Error(err)
	}
	if got := b.changes[len(b.changes)-1]; got != (Timeouts{TCP: 100, UDP: 20}) {
		t.Errorf("timeouts passed as %+v", got)
	}
	n := len(b.changes)
	for _, bad := range []Timeouts{{UDP: -1}, {TCP: MaxTimeout + 1}} {
		if err := c.SetTimeouts(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "must be 0..10000000 seconds") {
			t.Errorf("timeouts %+v: %v", bad, err)
		}
	}
	if len(b.changes) != n {
		t.Errorf("a refused timeout change reached the backend")
	}
	b.reloadErr = errors.New("reload refused: x.conf:3:1: error: boom")
	if err := c.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "x.conf:3:1") {
		t.Errorf("reload error not passed through: %v", err)
	}
	// A second server on the same socket refuses to start.
	if err := (&Server{Socket: sock, Handler: Handler(b, nil)}).Run(context.Background()); err == nil || !strings.Contains(err.Error(), "another govs") {
		t.Errorf("second server: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestServiceIDRoundTrip(t *testing.T) {
	for _, s := range []string{"tcp/192.0.2.1:80", "udp/[2001:db8::1]:53", "sctp/10.0.0.1:9", "fwm/5", "fwm6/7"} {
		k, err := ParseServiceID(s)
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		if got := ServiceID(k); got != s {
			t.Errorf("round trip %s -> %s", s, got)
		}
	}
	for _, s := range []string{"", "tcp", "tcp/1.2.3.4", "icmp/1.2.3.4:1", "fwm/0", "fwm/x"} {
		if _, err := ParseServiceID(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	k, _ := ParseServiceID("tcp/192.0.2.1:80")
	if k != (dataplane.ServiceKey{Proto: dataplane.TCP, Addr: k.Addr, Port: 80}) || k.String() != "TCP  192.0.2.1:80" {
		t.Errorf("key %+v %q", k, k.String())
	}
}

func TestConfigEndpoints(t *testing.T) {
	b := &fakeBackend{}
	h := Handler(b, nil)
	do := func(method, path, body string) (int, map[string]any) {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var out map[string]any
		json.Unmarshal(w.Body.Bytes(), &out)
		return w.Code, out
	}
	if code, out := do("GET", "/api/v1/config", ""); code != 200 || out["revision"] != "r1" {
		t.Errorf("GET config: %d %v", code, out)
	}
	if code, out := do("POST", "/api/v1/config/edit", `{"revision":"r1","op":"set","kind":"virtual_server","object":{}}`); code != 200 || out["result"] != "saved" {
		t.Errorf("edit: %d %v", code, out)
	}
	code, out := do("POST", "/api/v1/config/edit", `{"revision":"bad","op":"set","kind":"virtual_server","object":{}}`)
	if probs, _ := out["problems"].([]any); code != 400 || len(probs) != 1 || !strings.Contains(probs[0].(string), "unknown scheduler") {
		t.Errorf("invalid edit: %d %v", code, out)
	}
	if code, out := do("POST", "/api/v1/config/edit", `{"revision":"r0","op":"set","kind":"virtual_server","object":{}}`); code != 409 {
		t.Errorf("stale edit: %d %v", code, out)
	}
	if code, out := do("POST", "/api/v1/config/edit", `{"revision":"r1","op":"set","kind":"virtual_server","objet":{}}`); code != 400 || !strings.Contains(out["error"].(string), "objet") {
		t.Errorf("misspelt field: %d %v", code, out)
	}
}

// The TCP listener (no authentication) does not serve the configuration
// routes; the rest of the API it does.
func TestWithoutConfig(t *testing.T) {
	h := WithoutConfig(Handler(&fakeBackend{}, nil))
	for path, want := range map[string]int{"/api/v1/config": 403, "/api/v1/config/edit": 403, "/api/v1/state": 200, "/api/v1/configuration": 404} {
		method := "GET"
		if path == "/api/v1/config/edit" {
			method = "POST"
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, path, strings.NewReader(`{}`)))
		if w.Code != want {
			t.Errorf("%s %s: %d, want %d", method, path, w.Code, want)
		}
	}
}
