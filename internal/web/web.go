// Package web is govs's web UI, Piranha's configuration tool rebuilt: the
// same panels (control/monitoring, global settings, redundancy, virtual
// servers, real servers, monitoring scripts), live. It serves the static
// pages, a password login (bcrypt hash from govs_web_password) with
// sessions, access control by client address (govs_web_allow), the JSON
// API behind both, and a stream of the director's state (Server-Sent
// Events). It holds no state of the director's: every page reads the API.
package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/govs/govs/internal/api"
)

//go:embed static
var static embed.FS

// Settings are the UI's settings from the configuration, read at every
// request so that a reload puts a new password or allow list in force.
type Settings struct {
	// PasswordHash is the bcrypt hash of the password; empty refuses
	// every login.
	PasswordHash string
	// Allow are the client addresses allowed to reach the UI; empty
	// allows all.
	Allow []netip.Prefix
	// DenyAll refuses every client (an allow list that could not be
	// read).
	DenyAll bool
}

// Options configure the UI.
type Options struct {
	// API serves /api/v1/ (api.Handler); it is reached through the UI's
	// login and CSRF checks.
	API http.Handler
	// State reads the director's state for the live stream.
	State func(ctx context.Context) (*api.State, error)
	// Settings returns the settings in force.
	Settings func() Settings
	Log      *slog.Logger
	Version  string

	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
	// Idle ends a session unused this long (default 30 min); MaxAge ends
	// any session this old (default 12 h).
	Idle, MaxAge time.Duration
	// EventInterval is the live stream's period (default 1 s).
	EventInterval time.Duration
}

const (
	cookieName = "govs_session"
	// maxSessions bounds the session table; the oldest session goes
	// when a login would pass it.
	maxSessions = 256
	// maxStreams bounds the live streams open at once.
	maxStreams = 64
	// failure limits of logins from one client address
	freeFailures = 5
	maxLockout   = 5 * time.Minute
	failWindow   = 15 * time.Minute
	// maxClients bounds the clients whose failures are remembered; past
	// it, a client whose lockout is over makes room, and while all are
	// locked out new clients wait
	maxClients = 4096
)

type session struct {
	csrf    string
	hash    string // the password hash it logged in with
	created time.Time
	used    time.Time
}

type failures struct {
	n        int
	last     time.Time
	inFlight bool // a login of this client is being checked
}

// UI is the web UI's handler.
type UI struct {
	o   Options
	mux *http.ServeMux

	mu       sync.Mutex
	sessions map[string]*session
	fails    map[netip.Addr]*failures // by client key (clientKey)
	streams  int
	// warn lines about refused clients and failed logins: at most one a
	// second, the others counted in the next
	lastWarn   time.Time
	quietWarns int

	// bcryptSem bounds the password comparisons running at once: each
	// costs tens of milliseconds of CPU by design.
	bcryptSem chan struct{}
}

// New returns the UI's handler.
func New(o Options) *UI {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Idle == 0 {
		o.Idle = 30 * time.Minute
	}
	if o.MaxAge == 0 {
		o.MaxAge = 12 * time.Hour
	}
	if o.EventInterval == 0 {
		o.EventInterval = time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	u := &UI{o: o, mux: http.NewServeMux(), sessions: map[string]*session{}, fails: map[netip.Addr]*failures{},
		bcryptSem: make(chan struct{}, 2)}
	sub, _ := fs.Sub(static, "static")
	files := http.FileServerFS(sub)
	u.mux.Handle("GET /{$}", files)
	u.mux.Handle("GET /app.js", files)
	u.mux.Handle("GET /app.css", files)
	u.mux.HandleFunc("POST /login", u.login)
	u.mux.HandleFunc("POST /logout", u.logout)
	u.mux.HandleFunc("GET /session", u.authed(u.sessionInfo))
	u.mux.HandleFunc("GET /events", u.authed(u.events))
	u.mux.Handle("/api/v1/", u.authed(func(w http.ResponseWriter, r *http.Request, _ *session) {
		w.Header().Set("Cache-Control", "no-store")
		o.API.ServeHTTP(w, r)
	}))
	return u
}

func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	if r.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	ip, ok := clientAddr(r)
	if !ok || !u.allowed(ip) {
		u.warn("web: refused a client not in govs_web_allow", "client", r.RemoteAddr, "path", r.URL.Path)
		http.Error(w, fmt.Sprintf("forbidden: %s is not in govs_web_allow", ip), http.StatusForbidden)
		return
	}
	u.mux.ServeHTTP(w, r)
}

// Accept tells whether a TCP client may connect at all (api.Server's
// Accept): one not in govs_web_allow is closed before TLS or HTTP.
func (u *UI) Accept(remote net.Addr) bool {
	ap, err := netip.ParseAddrPort(remote.String())
	if err == nil && u.allowed(ap.Addr().Unmap()) {
		return true
	}
	u.warn("web: refused a connection from a client not in govs_web_allow", "client", remote.String())
	return false
}

// warn logs at most one line a second; the lines left out are counted in
// the next one.
func (u *UI) warn(msg string, args ...any) {
	now := time.Now()
	u.mu.Lock()
	if now.Sub(u.lastWarn) < time.Second {
		u.quietWarns++
		u.mu.Unlock()
		return
	}
	u.lastWarn = now
	n := u.quietWarns
	u.quietWarns = 0
	u.mu.Unlock()
	if n > 0 {
		args = append(args, "not_logged_before", n)
	}
	u.o.Log.Warn(msg, args...)
}

func clientAddr(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

func (u *UI) allowed(ip netip.Addr) bool {
	st := u.o.Settings()
	if st.DenyAll {
		return false
	}
	allow := st.Allow
	if len(allow) == 0 {
		return true
	}
	for _, p := range allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// login checks the password and opens a session.
func (u *UI) login(w http.ResponseWriter, r *http.Request) {
	// a JSON body only: an HTML form of another site cannot send one
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, "login: want a JSON body (Content-Type: application/json)")
		return
	}
	var req struct {
		Password string `json:"password"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("login: request body: %v", err))
		return
	}
	ip, _ := clientAddr(r)
	key := clientKey(ip)
	now := u.o.Now()
	hash := u.o.Settings().PasswordHash
	if hash == "" {
		writeError(w, http.StatusUnauthorized, "no password is set (govs_web_password): the web UI refuses every login")
		return
	}
	// one attempt at a time per client, none while it is locked out
	switch wait, busy := u.begin(key, now); {
	case wait > 0:
		secs := int((wait + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", fmt.Sprint(secs))
		writeError(w, http.StatusTooManyRequests, fmt.Sprintf("too many failed logins from %s; try again in %d s", ip, secs))
		return
	case busy != "":
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, busy)
		return
	}
	// only a password that bcrypt found wrong counts as a failure (not a
	// wait for a slot, nor a client that went away)
	outcome := attemptNone
	defer func() { u.end(key, outcome, now) }()
	t := time.NewTimer(3 * time.Second)
	defer t.Stop()
	select {
	case u.bcryptSem <- struct{}{}:
	case <-t.C:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "too many logins being checked; try again")
		return
	case <-r.Context().Done():
		return
	}
	err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(req.Password))
	<-u.bcryptSem
	if err != nil {
		outcome = attemptFailed
		u.warn("web: failed login", "client", r.RemoteAddr)
		writeError(w, http.StatusUnauthorized, "wrong password")
		return
	}
	outcome = attemptGood
	s := &session{csrf: randomToken(), hash: hash, created: now, used: now}
	tok := randomToken()
	u.mu.Lock()
	u.expireLocked(now)
	if len(u.sessions) >= maxSessions {
		var oldest string
		for k, v := range u.sessions {
			if oldest == "" || v.used.Before(u.sessions[oldest].used) {
				oldest = k
			}
		}
		delete(u.sessions, oldest)
	}
	u.sessions[tok] = s
	u.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: tok, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	u.o.Log.Info("web: login", "client", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]string{"csrf": s.csrf, "version": u.o.Version})
}

// clientKey is what login failures are counted by: the address, or its
// /64 for IPv6 (one host has a whole /64 to pick addresses from).
func clientKey(ip netip.Addr) netip.Addr {
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

// begin starts a login attempt of client key: it returns how long the
// client must wait (after freeFailures failures, 1 s doubling with each
// further failure, at most maxLockout), or why it cannot try now, or
// neither (the attempt is reserved; end must follow).
func (u *UI) begin(key netip.Addr, now time.Time) (time.Duration, string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	f := u.fails[key]
	if f != nil && !f.inFlight && now.Sub(f.last) > failWindow {
		// failures long past are forgotten
		f.n = 0
	}
	if f == nil {
		for k, g := range u.fails {
			if !g.inFlight && now.Sub(g.last) > failWindow {
				delete(u.fails, k)
			}
		}
		if len(u.fails) >= maxClients {
			// a client whose lockout is over (fewest failures first)
			// makes room; none while all are locked out, so that many
			// addresses do not buy fresh tries
			var pick netip.Addr
			for k, g := range u.fails {
				if g.inFlight || now.Before(g.last.Add(lockFor(g.n))) {
					continue
				}
				if !pick.IsValid() || g.n < u.fails[pick].n {
					pick = k
				}
			}
			if !pick.IsValid() {
				return 0, "too many clients are trying to log in; try again later"
			}
			delete(u.fails, pick)
		}
		f = &failures{}
		u.fails[key] = f
	}
	if f.inFlight {
		return 0, "a login from this address is being checked; try again"
	}
	if wait := f.last.Add(lockFor(f.n)).Sub(now); wait > 0 {
		return wait, ""
	}
	f.inFlight = true
	return 0, ""
}

// The outcomes of a login attempt.
const (
	attemptNone   = iota // no password check (no slot in time, client gone)
	attemptFailed        // a wrong password
	attemptGood          // the right one
)

// lockFor is how long a client with n failures waits after the last:
// nothing for the first freeFailures, then 1 s doubling up to maxLockout.
func lockFor(n int) time.Duration {
	if n < freeFailures {
		return 0
	}
	if k := n - freeFailures; k < 9 {
		return min(time.Second<<k, maxLockout)
	}
	return maxLockout
}

// end ends the attempt begin reserved: a wrong password counts, the
// right one clears the count, no check changes nothing.
func (u *UI) end(key netip.Addr, outcome int, now time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	f := u.fails[key]
	if f == nil {
		return
	}
	f.inFlight = false
	switch {
	case outcome == attemptGood, outcome == attemptNone && f.n == 0:
		delete(u.fails, key)
	case outcome == attemptFailed:
		f.n++
		f.last = now
	}
}

func (u *UI) expireLocked(now time.Time) {
	for k, s := range u.sessions {
		if now.Sub(s.used) > u.o.Idle || now.Sub(s.created) > u.o.MaxAge {
			delete(u.sessions, k)
		}
	}
}

// current returns the request's live session, or nil. A session ends
// when idle or old, and when the password changes.
func (u *UI) current(r *http.Request, touch bool) (string, *session) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return "", nil
	}
	hash := u.o.Settings().PasswordHash
	now := u.o.Now()
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.sessions[c.Value]
	if s == nil {
		return "", nil
	}
	if now.Sub(s.used) > u.o.Idle || now.Sub(s.created) > u.o.MaxAge || s.hash != hash {
		delete(u.sessions, c.Value)
		return "", nil
	}
	if touch {
		s.used = now
	}
	return c.Value, s
}

// authed wraps a handler that needs a session; requests that change
// something must also carry the session's CSRF token.
func (u *UI) authed(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, s := u.current(r, true)
		if s == nil {
			writeError(w, http.StatusUnauthorized, "not logged in (or the session expired)")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			tok := r.Header.Get("X-CSRF-Token")
			if subtle.ConstantTimeCompare([]byte(tok), []byte(s.csrf)) != 1 {
				writeError(w, http.StatusForbidden, "missing or wrong X-CSRF-Token header")
				return
			}
		}
		h(w, r, s)
	}
}

func (u *UI) logout(w http.ResponseWriter, r *http.Request) {
	tok, s := u.current(r, false)
	if s != nil {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("X-CSRF-Token")), []byte(s.csrf)) != 1 {
			writeError(w, http.StatusForbidden, "missing or wrong X-CSRF-Token header")
			return
		}
		u.mu.Lock()
		delete(u.sessions, tok)
		u.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	writeJSON(w, http.StatusOK, map[string]string{"result": "logged out"})
}

func (u *UI) sessionInfo(w http.ResponseWriter, r *http.Request, s *session) {
	writeJSON(w, http.StatusOK, map[string]string{"csrf": s.csrf, "version": u.o.Version})
}

// events streams the director's state every EventInterval (event
// "state"), until the client goes or the session ends (event "expired").
func (u *UI) events(w http.ResponseWriter, r *http.Request, _ *session) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming not supported")
		return
	}
	u.mu.Lock()
	if u.streams >= maxStreams {
		u.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("too many live streams open (%d)", maxStreams))
		return
	}
	u.streams++
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		u.streams--
		u.mu.Unlock()
	}()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	rc := http.NewResponseController(w)
	// the stream outlives the server's read timeout
	rc.SetReadDeadline(time.Time{})
	w.WriteHeader(http.StatusOK)
	t := time.NewTicker(u.o.EventInterval)
	defer t.Stop()
	for {
		// the stream keeps its session alive while it is open; it ends
		// with the session, or when a reload takes its client out of
		// govs_web_allow
		ip, _ := clientAddr(r)
		if _, s := u.current(r, true); s == nil || !u.allowed(ip) {
			fmt.Fprint(w, "event: expired\ndata: {}\n\n")
			fl.Flush()
			return
		}
		sctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		st, err := u.o.State(sctx)
		cancel()
		var b []byte
		if err == nil {
			b, err = json.Marshal(st)
		}
		rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err != nil {
			b, _ = json.Marshal(map[string]string{"error": err.Error()})
			_, err = fmt.Fprintf(w, "event: failure\ndata: %s\n\n", b)
		} else {
			_, err = fmt.Fprintf(w, "event: state\ndata: %s\n\n", b)
		}
		if err != nil {
			return
		}
		fl.Flush()
		// no deadline between writes (under HTTP/2 a deadline that
		// passes resets the stream even while nothing is written)
		rc.SetWriteDeadline(time.Time{})
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
	}
}

// ParseAllow reads govs_web_allow's words: addresses or prefixes.
func ParseAllow(words []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, w := range words {
		if p, err := netip.ParsePrefix(w); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(w)
		if err != nil {
			return nil, fmt.Errorf("govs_web_allow %q: not an address or prefix", w)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// HashPassword returns the bcrypt hash govs_web_password takes.
func HashPassword(pw string) (string, error) {
	if len(pw) < 8 {
		return "", errors.New("the password must have at least 8 characters")
	}
	if len(pw) > 72 {
		return "", errors.New("the password must have at most 72 bytes (bcrypt's limit)")
	}
	b, err := bcrypt.GenerateFromPassword([]byte(pw), 12)
	return string(b), err
}
