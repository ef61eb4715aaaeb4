package web

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/govs/govs/internal/api"
)

type fixture struct {
	ui       *UI
	now      time.Time
	settings Settings
	mu       sync.Mutex
	apiCalls []string
}

func newFixture(t *testing.T, password string) *fixture {
	t.Helper()
	f := &fixture{now: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}
	if password != "" {
		h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		f.settings.PasswordHash = string(h)
	}
	apiH := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.apiCalls = append(f.apiCalls, r.Method+" "+r.URL.Path)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"result":"ok"}`)
	})
	f.ui = New(Options{
		API:      apiH,
		State:    func(context.Context) (*api.State, error) { return &api.State{Version: "test-1"}, nil },
		Settings: func() Settings { f.mu.Lock(); defer f.mu.Unlock(); return f.settings },
		Now:      func() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now },
		Version:  "test-1",
		// the live stream's period, short for the stream test
		EventInterval: 20 * time.Millisecond,
	})
	return f
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// req sends one request from client address from; cookie and csrf may
// be empty.
func (f *fixture) req(method, path, body, from, cookie, csrf string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.RemoteAddr = from
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if cookie != "" {
		r.AddCookie(&http.Cookie{Name: cookieName, Value: cookie})
	}
	if csrf != "" {
		r.Header.Set("X-CSRF-Token", csrf)
	}
	w := httptest.NewRecorder()
	f.ui.ServeHTTP(w, r)
	return w
}

const client = "198.51.100.7:40000"

// login logs in and returns the session cookie and CSRF token.
func (f *fixture) login(t *testing.T, password string) (string, string) {
	t.Helper()
	w := f.req("POST", "/login", `{"password":"`+password+`"}`, client, "", "")
	if w.Code != 200 {
		t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	var cookie string
	for _, c := range w.Result().Cookies() {
		if c.Name == cookieName {
			cookie = c.Value
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
				t.Errorf("session cookie %+v: want HttpOnly and SameSite=Strict", c)
			}
		}
	}
	var body struct{ CSRF string }
	json.Unmarshal(w.Body.Bytes(), &body)
	if cookie == "" || body.CSRF == "" {
		t.Fatalf("login gave cookie %q csrf %q", cookie, body.CSRF)
	}
	return cookie, body.CSRF
}

func TestPagesAndHeaders(t *testing.T) {
	f := newFixture(t, "s3cret-pw")
	for _, p := range []string{"/", "/app.js", "/app.css"} {
		w := f.req("GET", p, "", client, "", "")
		if w.Code != 200 || w.Body.Len() == 0 {
			t.Errorf("GET %s: %d, %d bytes", p, w.Code, w.Body.Len())
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: CSP %q", p, csp)
		}
	}
	if w := f.req("GET", "/", "", client, "", ""); !strings.Contains(w.Body.String(), "/app.js") {
		t.Errorf("index does not load app.js:\n%s", w.Body)
	}
	if w := f.req("GET", "/nothing", "", client, "", ""); w.Code != 404 {
		t.Errorf("GET /nothing: %d", w.Code)
	}
}

func TestLoginSessionAndCSRF(t *testing.T) {
	f := newFixture(t, "s3cret-pw")
	// nothing but the pages without a session
	for _, p := range []string{"/api/v1/state", "/events", "/session"} {
		if w := f.req("GET", p, "", client, "", ""); w.Code != 401 {
			t.Errorf("GET %s without a session: %d", p, w.Code)
		}
	}
	if w := f.req("GET", "/api/v1/state", "", client, "forged", ""); w.Code != 401 {
		t.Errorf("unknown cookie: %d", w.Code)
	}
	if w := f.req("POST", "/login", `{"password":"nope"}`, client, "", ""); w.Code != 401 || !strings.Contains(w.Body.String(), "wrong password") {
		t.Errorf("wrong password: %d %s", w.Code, w.Body)
	}
	// a form post (what another site could make a browser send)
	r := httptest.NewRequest("POST", "/login", strings.NewReader("password=s3cret-pw"))
	r.RemoteAddr = client
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	f.ui.ServeHTTP(w, r)
	if w.Code != http.StatusUnsupportedMediaType {
		t.Errorf("form login: %d", w.Code)
	}

	cookie, csrf := f.login(t, "s3cret-pw")
	if w := f.req("GET", "/api/v1/state", "", client, cookie, ""); w.Code != 200 {
		t.Errorf("GET with session: %d %s", w.Code, w.Body)
	}
	if w := f.req("GET", "/session", "", client, cookie, ""); !strings.Contains(w.Body.String(), csrf) {
		t.Errorf("session: %s", w.Body)
	}
	// changes need the CSRF token
	if w := f.req("POST", "/api/v1/reload", "{}", client, cookie, ""); w.Code != 403 {
		t.Errorf("POST without CSRF token: %d", w.Code)
	}
	if w := f.req("POST", "/api/v1/reload", "{}", client, cookie, "wrong"); w.Code != 403 {
		t.Errorf("POST with a wrong CSRF token: %d", w.Code)
	}
	if w := f.req("POST", "/api/v1/reload", "{}", client, cookie, csrf); w.Code != 200 {
		t.Errorf("POST with CSRF token: %d %s", w.Code, w.Body)
	}
	f.mu.Lock()
	calls := strings.Join(f.apiCalls, ",")
	f.mu.Unlock()
	if calls != "GET /api/v1/state,POST /api/v1/reload" {
		t.Errorf("API saw %q", calls)
	}

	// idle: the session ends after 30 minutes unused, not before
	f.advance(29 * time.Minute)
	if w := f.req("GET", "/session", "", client, cookie, ""); w.Code != 200 {
		t.Errorf("after 29 min: %d", w.Code)
	}
	f.advance(31 * time.Minute)
	if w := f.req("GET", "/session", "", client, cookie, ""); w.Code != 401 {
		t.Errorf("after 31 idle min: %d", w.Code)
	}

	// a new password (a reload) ends the sessions of the old one
	cookie, _ = f.login(t, "s3cret-pw")
	h, _ := bcrypt.GenerateFromPassword([]byte("another-pw"), bcrypt.MinCost)
	f.mu.Lock()
	f.settings.PasswordHash = string(h)
	f.mu.Unlock()
	if w := f.req("GET", "/session", "", client, cookie, ""); w.Code != 401 {
		t.Errorf("after a password change: %d", w.Code)
	}

	// logout
	cookie, csrf = f.login(t, "another-pw")
	if w := f.req("POST", "/logout", "", client, cookie, ""); w.Code != 403 {
		t.Errorf("logout without CSRF token: %d", w.Code)
	}
	if w := f.req("POST", "/logout", "", client, cookie, csrf); w.Code != 200 {
		t.Errorf("logout: %d", w.Code)
	}
	if w := f.req("GET", "/session", "", client, cookie, ""); w.Code != 401 {
		t.Errorf("after logout: %d", w.Code)
	}
}

func TestLoginLockout(t *testing.T) {
	f := newFixture(t, "s3cret-pw")
	for i := 0; i < freeFailures; i++ {
		if w := f.req("POST", "/login", `{"password":"guess"}`, client, "", ""); w.Code != 401 {
			t.Fatalf("failure %d: %d", i+1, w.Code)
		}
	}
	// locked: even the right password waits
	w := f.req("POST", "/login", `{"password":"s3cret-pw"}`, client, "", "")
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("locked out: %d Retry-After %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	// another client is not locked out
	if w := f.req("POST", "/login", `{"password":"s3cret-pw"}`, "198.51.100.8:1", "", ""); w.Code != 200 {
		t.Errorf("other client: %d", w.Code)
	}
	// one more failure doubles the wait
	f.advance(time.Second)
	f.req("POST", "/login", `{"password":"guess"}`, client, "", "")
	if w := f.req("POST", "/login", `{"password":"s3cret-pw"}`, client, "", ""); w.Header().Get("Retry-After") != "2" {
		t.Errorf("after a 6th failure: %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	f.advance(2 * time.Second)
	f.login(t, "s3cret-pw")
}

func TestNoPassword(t *testing.T) {
	f := newFixture(t, "")
	if w := f.req("POST", "/login", `{"password":""}`, client, "", ""); w.Code != 401 || !strings.Contains(w.Body.String(), "govs_web_password") {
		t.Errorf("login without a password set: %d %s", w.Code, w.Body)
	}
}

func TestAllow(t *testing.T) {
	f := newFixture(t, "s3cret-pw")
	allow, err := ParseAllow([]string{"10.0.0.0/8", "2001:db8::1"})
	if err != nil {
		t.Fatal(err)
	}
	f.settings.Allow = allow
	for from, want := range map[string]int{
		"10.1.2.3:5000":          200,
		"[::ffff:10.1.2.3]:5000": 200,
		"[2001:db8::1]:5000":     200,
		"[2001:db8::2]:5000":     403,
		client:                   403,
	} {
		w := f.req("GET", "/", "", from, "", "")
		if w.Code != want {
			t.Errorf("from %s: %d, want %d", from, w.Code, want)
		}
		if want == 403 && !strings.Contains(w.Body.String(), "govs_web_allow") {
			t.Errorf("from %s: %s", from, w.Body)
		}
	}
	if _, err := ParseAllow([]string{"10.0.0.0/33"}); err == nil {
		t.Error("bad prefix taken")
	}
	if p, _ := ParseAllow([]string{"10.1.2.3/8"}); p[0] != netip.MustParsePrefix("10.0.0.0/8") {
		t.Errorf("prefix not masked: %v", p)
	}
}

// The live stream sends the state every period while the session lives,
// and says so when it ends.
func TestEvents(t *testing.T) {
	f := newFixture(t, "s3cret-pw")
	srv := httptest.NewServer(f.ui)
	defer srv.Close()
	cookie, _ := f.login(t, "s3cret-pw")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/events", nil)
	req.AddCookie(&http.Cookie{Name: cookieName, Value: cookie})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	events := 0
	for sc.Scan() && events < 3 {
		line := sc.Text()
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var st api.State
			if err := json.Unmarshal([]byte(data), &st); err != nil || st.Version != "test-1" {
				t.Fatalf("event data %q: %v", data, err)
			}
			events++
		}
	}
	if events < 3 {
		t.Fatalf("%d state events, want 3 (%v)", events, sc.Err())
	}
	// the session ends (a password change): the stream says so and ends
	f.mu.Lock()
	f.settings.PasswordHash = "$2a$04$" + strings.Repeat("x", 53)
	f.mu.Unlock()
	sawExpired := false
	for sc.Scan() {
		if sc.Text() == "event: expired" {
			sawExpired = true
		}
	}
	if !sawExpired {
		t.Errorf("stream ended without an expired event (%v)", sc.Err())
	}
}

// Failures count per IPv6 /64, and a client has one attempt in flight at
// a time, so that parallel guesses do not slip past the lockout.
func TestLoginLockoutKeys(t *testing.T) {
	f := newFixture(t, "s3cret-pw")
	for i := 0; i < freeFailures; i++ {
		from := fmt.Sprintf("[2001:db8:1:2::%x]:5000", i+1)
		if w := f.req("POST", "/login", `{"password":"guess"}`, from, "", ""); w.Code != 401 {
			t.Fatalf("failure %d: %d", i+1, w.Code)
		}
	}
	if w := f.req("POST", "/login", `{"password":"s3cret-pw"}`, "[2001:db8:1:2::99]:5000", "", ""); w.Code != http.StatusTooManyRequests {
		t.Errorf("another address of the same /64: %d", w.Code)
	}
	if w := f.req("POST", "/login", `{"password":"s3cret-pw"}`, "[2001:db8:1:3::1]:5000", "", ""); w.Code != 200 {
		t.Errorf("another /64: %d", w.Code)
	}
	key := clientKey(netip.MustParseAddr("198.51.100.9"))
	if wait, busy := f.ui.begin(key, f.now); wait != 0 || busy != "" {
		t.Fatalf("first attempt: %v %q", wait, busy)
	}
	if w := f.req("POST", "/login", `{"password":"s3cret-pw"}`, "198.51.100.9:1", "", ""); w.Code != http.StatusTooManyRequests ||
		!strings.Contains(w.Body.String(), "being checked") {
		t.Errorf("second attempt in flight: %d %s", w.Code, w.Body)
	}
	f.ui.end(key, attemptFailed, f.now)
	if w := f.req("POST", "/login", `{"password":"s3cret-pw"}`, "198.51.100.9:1", "", ""); w.Code != 200 {
		t.Errorf("after the first ended: %d %s", w.Code, w.Body)
	}
}

func TestAcceptAndDenyAll(t *testing.T) {
	f := newFixture(t, "s3cret-pw")
	f.settings.Allow, _ = ParseAllow([]string{"127.0.0.1"})
	if !f.ui.Accept(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}) || f.ui.Accept(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 1}) {
		t.Error("Accept does not follow govs_web_allow")
	}
	f.settings = Settings{PasswordHash: f.settings.PasswordHash, DenyAll: true}
	if w := f.req("GET", "/", "", client, "", ""); w.Code != 403 {
		t.Errorf("DenyAll: %d", w.Code)
	}
}

// Only a wrong password counts, and old failures are forgotten.
func TestLoginFailuresCount(t *testing.T) {
	f := newFixture(t, "s3cret-pw")
	key := clientKey(netip.MustParseAddr("198.51.100.7"))
	for i := 0; i < 2*freeFailures; i++ {
		if wait, busy := f.ui.begin(key, f.now); wait != 0 || busy != "" {
			t.Fatalf("attempt %d: %v %q", i, wait, busy)
		}
		f.ui.end(key, attemptNone, f.now) // no slot in time: not a failure
	}
	for i := 0; i < freeFailures; i++ {
		f.req("POST", "/login", `{"password":"guess"}`, client, "", "")
	}
	if w := f.req("POST", "/login", `{"password":"s3cret-pw"}`, client, "", ""); w.Code != http.StatusTooManyRequests {
		t.Fatalf("after %d failures: %d", freeFailures, w.Code)
	}
	f.advance(failWindow + time.Second)
	if w := f.req("POST", "/login", `{"password":"guess"}`, client, "", ""); w.Code != 401 {
		t.Errorf("a failure after the window: %d (the old ones should be forgotten)", w.Code)
	}
	if w := f.req("POST", "/login", `{"password":"s3cret-pw"}`, client, "", ""); w.Code != 200 {
		t.Errorf("then the right password: %d", w.Code)
	}
}
