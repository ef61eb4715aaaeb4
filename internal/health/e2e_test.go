package health

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestSupervisorFailureInjection runs the supervisor with real checkers
// against real peers and breaks them one way each; every breakage must
// give a down transition carrying the right reason, and repair an up.
func TestSupervisorFailureInjection(t *testing.T) {
	ng := startNginx(t)
	dir := t.TempDir()
	index := filepath.Join(ng.root, "index.html")
	body, err := os.ReadFile(index)
	if err != nil {
		t.Fatal(err)
	}

	// slow HTTP server: answers after `delay`.
	var delay atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(time.Duration(delay.Load())):
		case <-r.Context().Done():
		}
		_, _ = w.Write([]byte("slow but fine\n"))
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	slow := ln.Addr().(*net.TCPAddr).AddrPort()
	delay.Store(int64(100 * time.Millisecond)) // slow, within the timeout

	silent := silentListener(t)
	flag := filepath.Join(dir, "hang")
	hang := writeScript(t, dir, "maybe-hang.sh", `if [ -e `+flag+` ]; then sleep 300; fi`)

	timing := func(s Spec) Spec {
		s.DelayLoop, s.ConnectTimeout = 200*time.Millisecond, 600*time.Millisecond
		s.Retry, s.DelayBeforeRetry, s.Warmup = intp(1), 50*time.Millisecond, durp(0)
		return s
	}
	url := func(u URLSpec) *HTTPSpec { return &HTTPSpec{URLs: []URLSpec{u}} }
	servers := []Server{
		{ID: "stops", Checks: []Spec{timing(Spec{Kind: TCP, Target: ng.http})}},
		{ID: "status", Checks: []Spec{timing(Spec{Kind: HTTPGet, Target: ng.http, HTTP: url(URLSpec{Path: "/status.html"})})}},
		{ID: "digest", Checks: []Spec{timing(Spec{Kind: SSLGet, Target: ng.https, HTTP: url(URLSpec{Path: "/index.html", Digest: HTTPDigest(body)})})}},
		{ID: "slow", Checks: []Spec{timing(Spec{Kind: HTTPGet, Target: slow})}},
		{ID: "silent", Checks: []Spec{timing(Spec{Kind: HTTPGet, Target: silent, Alpha: true})}},
		{ID: "script", Checks: []Spec{timing(Spec{Kind: Misc, Misc: &MiscSpec{Path: hang, Timeout: 500 * time.Millisecond}})}},
	}
	sup := NewSupervisor(SupervisorConfig{})
	if err := sup.Update(servers); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- sup.Run(ctx) }()
	defer func() { cancel(); <-done }()

	state := map[string]Transition{}
	// await reads transitions until id reaches up; it fails the test after
	// a generous bound so a broken supervisor cannot hang the suite.
	await := func(id string, up bool) Transition {
		t.Helper()
		timeout := time.After(15 * time.Second)
		for {
			if tr, ok := state[id]; ok && tr.Up == up {
				delete(state, id)
				return tr
			}
			select {
			case tr := <-sup.Transitions():
				t.Logf("transition %s up=%v: %s", tr.ID, tr.Up, tr.Reason)
				state[tr.ID] = tr
			case <-timeout:
				t.Fatalf("%s did not become up=%v", id, up)
			}
		}
	}
	for _, s := range servers {
		want := !s.Checks[0].Alpha
		if tr := await(s.ID, want); tr.Reason != "added" && !strings.Contains(tr.Reason, "alpha") {
			t.Errorf("%s initial reason %q", s.ID, tr.Reason)
		}
	}

	// accepts but never answers: alpha server never comes up; flip it to
	// a real nginx later is not needed — check its last result instead.
	time.Sleep(1500 * time.Millisecond)
	for _, st := range sup.Status() {
		if st.ID == "silent" {
			if st.Up || st.Checks[0].Last.Err == nil || !strings.Contains(st.Checks[0].Last.Err.Error(), "read response: timeout") {
				t.Errorf("silent server status %+v", st)
			}
		}
		if st.ID == "slow" && !st.Up {
			t.Errorf("slow-but-in-time server is down: %+v", st.Checks[0].Last)
		}
	}

	tests := []struct {
		id, reason  string
		break_, fix func()
	}{
		{"status", "url /status.html: status 404 not in 200-299, 1 of 1 retries",
			func() { _ = os.Rename(filepath.Join(ng.root, "status.html"), filepath.Join(ng.root, "status.off")) },
			func() { _ = os.Rename(filepath.Join(ng.root, "status.off"), filepath.Join(ng.root, "status.html")) }},
		{"digest", "url /index.html: digest " + HTTPDigest([]byte("defaced\n")) + ", want " + HTTPDigest(body),
			func() { _ = os.WriteFile(index, []byte("defaced\n"), 0o644) },
			func() { _ = os.WriteFile(index, body, 0o644) }},
		{"slow", "read response: timeout, 1 of 1 retries",
			func() { delay.Store(int64(2 * time.Second)) },
			func() { delay.Store(0) }},
		{"script", "timeout, process group killed",
			func() { _ = os.WriteFile(flag, nil, 0o644) },
			func() { _ = os.Remove(flag) }},
		{"stops", "TCP_CHECK " + ng.http.String() + ": connect: connection refused, 1 of 1 retries",
			func() { ng.stop() },
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			tt.break_()
			tr := await(tt.id, false)
			if !strings.Contains(tr.Reason, tt.reason) {
				t.Errorf("reason %q, want it to contain %q", tr.Reason, tt.reason)
			}
			if tt.fix == nil {
				return
			}
			tt.fix()
			if tr := await(tt.id, true); tr.Reason == "" {
				t.Error("up transition without reason")
			}
		})
	}
}
