package api

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/net/netutil"
)

// Backend is what the API exposes: implemented by the director.
type Backend interface {
	State(ctx context.Context) (*State, error)
	Conns(ctx context.Context, fn func(Conn) bool) error
	Reload(ctx context.Context) error
	ChangeService(ctx context.Context, c ServiceChange) error
	ChangeRealServer(ctx context.Context, c RealServerChange) error
	// SetTimeouts changes the connection timeouts in force, as ipvsadm
	// --set does: a field of 0 keeps the current value.
	SetTimeouts(ctx context.Context, t Timeouts) error
	// ConfigDoc reads the configuration file as it is on disk now.
	ConfigDoc(ctx context.Context) (*ConfigDoc, error)
	// EditConfig changes one object of the configuration file (written
	// only when the result loads without errors) and reloads it.
	EditConfig(ctx context.Context, e ConfigEdit) (*ConfigEditResult, error)
	// PushConfig sends the configuration files to the sync peers now.
	PushConfig(ctx context.Context, force bool) ([]ConfigSyncPeer, error)
	// SetBGPAnnounce withdraws every BGP route (false: maintenance)
	// or announces them again (true).
	SetBGPAnnounce(ctx context.Context, announce bool) error
}

// ErrNotFound is returned by a Backend for an unknown service or server.
var ErrNotFound = errors.New("not found")

// ErrBadRequest wraps errors caused by the request.
var ErrBadRequest = errors.New("bad request")

// ErrConflict wraps errors of a change made against a configuration
// that has changed since it was read.
var ErrConflict = errors.New("conflict")

// InvalidError is a request refused for the problems it lists (a
// configuration change that would not load): a bad request.
type InvalidError struct {
	Msg      string
	Problems []string
}

func (e *InvalidError) Error() string { return e.Msg }

// Is makes an InvalidError an ErrBadRequest.
func (e *InvalidError) Is(target error) bool { return target == ErrBadRequest }

// Handler returns the HTTP handler of the API (paths under /api/v1/).
// Extra handlers (metrics, web UI) may be mounted by the caller.
func Handler(b Backend, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/state", func(w http.ResponseWriter, r *http.Request) {
		st, err := b.State(r.Context())
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("GET /api/v1/conns", func(w http.ResponseWriter, r *http.Request) {
		conns := []Conn{}
		err := b.Conns(r.Context(), func(c Conn) bool {
			conns = append(conns, c)
			return len(conns) < 1_000_000
		})
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, conns)
	})
	mux.HandleFunc("POST /api/v1/reload", func(w http.ResponseWriter, r *http.Request) {
		slowReply(w)
		if err := b.Reload(r.Context()); err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"result": "reloaded"})
	})
	mux.HandleFunc("POST /api/v1/service", func(w http.ResponseWriter, r *http.Request) {
		var c ServiceChange
		if !readJSON(w, r, &c) {
			return
		}
		if err := b.ChangeService(r.Context(), c); err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"result": "ok"})
	})
	mux.HandleFunc("POST /api/v1/realserver", func(w http.ResponseWriter, r *http.Request) {
		slowReply(w)
		var c RealServerChange
		if !readJSON(w, r, &c) {
			return
		}
		if err := b.ChangeRealServer(r.Context(), c); err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"result": "ok"})
	})
	mux.HandleFunc("POST /api/v1/bgp", func(w http.ResponseWriter, r *http.Request) {
		var c BGPChange
		if !readJSON(w, r, &c) {
			return
		}
		if c.Announce == nil {
			writeErr(w, fmt.Errorf("%w: nothing to change (set announce)", ErrBadRequest))
			return
		}
		if err := b.SetBGPAnnounce(r.Context(), *c.Announce); err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"result": "ok"})
	})
	mux.HandleFunc("POST /api/v1/timeouts", func(w http.ResponseWriter, r *http.Request) {
		var t Timeouts
		if !readJSON(w, r, &t) {
			return
		}
		if err := t.Check(); err != nil {
			writeErr(w, err)
			return
		}
		if err := b.SetTimeouts(r.Context(), t); err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"result": "ok"})
	})
	mux.HandleFunc("GET /api/v1/config", func(w http.ResponseWriter, r *http.Request) {
		doc, err := b.ConfigDoc(r.Context())
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, doc)
	})
	mux.HandleFunc("POST /api/v1/config/push", func(w http.ResponseWriter, r *http.Request) {
		slowReply(w)
		var p ConfigPush
		if !readJSON(w, r, &p) {
			return
		}
		peers, err := b.PushConfig(r.Context(), p.Force)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, peers)
	})
	mux.HandleFunc("POST /api/v1/config/edit", func(w http.ResponseWriter, r *http.Request) {
		slowReply(w)
		var e ConfigEdit
		if !readJSON(w, r, &e) {
			return
		}
		res, err := b.EditConfig(r.Context(), e)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
	return mux
}

// slowReply gives a route that may wait for a file edit and a reload
// (each bounded) more time to answer than the server's write timeout.
func slowReply(w http.ResponseWriter) {
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(10 * time.Minute))
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, errBody{Error: fmt.Sprintf("request body: %v", err)})
		return false
	}
	return true
}

type errBody struct {
	Error    string   `json:"error"`
	Problems []string `json:"problems,omitempty"`
}

func writeErr(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, ErrConflict):
		code = http.StatusConflict
	case errors.Is(err, ErrBadRequest):
		code = http.StatusBadRequest
	}
	body := errBody{Error: err.Error()}
	var inv *InvalidError
	if errors.As(err, &inv) {
		body.Problems = inv.Problems
	}
	writeJSON(w, code, body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// WithoutConfig is h without the configuration routes (/api/v1/config
// and below), for listeners without authentication: writing the file can
// run programs as root (health checks, notify scripts).
func WithoutConfig(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p == "/api/v1/config" || strings.HasPrefix(p, "/api/v1/config/") {
			writeJSON(w, http.StatusForbidden, errBody{Error: "the configuration routes are served on the API's unix socket and behind the web UI's login only"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Server serves a handler on a unix socket (mode 0600, root-only when run
// as root) and optionally on TCP listeners.
type Server struct {
	Name   string   // what it serves, in its log line ("api" when empty)
	Socket string   // unix socket path; empty = none
	Listen []string // TCP addresses; may be empty
	// TLSCert and TLSKey (PEM files), when set, make the TCP listeners
	// serve HTTPS.
	TLSCert, TLSKey string
	// Bound are TCP listeners bound already (govs run binds its listeners
	// before it opens the dataplane, so that a bad address stops it
	// before anything is set up); served like those of Listen.
	Bound []net.Listener
	// MaxConns bounds the open TCP connections (0: no bound).
	MaxConns int
	// Accept, when set, is asked about each TCP client before anything
	// is read from it; a refused client's connection is closed.
	Accept  func(remote net.Addr) bool
	Handler http.Handler
	Log     *slog.Logger
}

// Run serves until ctx is done, then shuts down and returns.
func (s *Server) Run(ctx context.Context) error {
	var lns []net.Listener
	closeAll := func() {
		for _, l := range lns {
			l.Close()
		}
	}
	if s.Socket != "" {
		if err := os.MkdirAll(filepath.Dir(s.Socket), 0o755); err != nil {
			return fmt.Errorf("api socket: %w", err)
		}
		// A stale socket from a previous run is removed; a live one
		// means another govs is running.
		if c, err := net.DialTimeout("unix", s.Socket, 200*time.Millisecond); err == nil {
			c.Close()
			return fmt.Errorf("api socket %s: another govs is listening on it", s.Socket)
		}
		os.Remove(s.Socket)
		l, err := net.Listen("unix", s.Socket)
		if err != nil {
			return fmt.Errorf("api socket: %w", err)
		}
		if err := os.Chmod(s.Socket, 0o600); err != nil {
			l.Close()
			return fmt.Errorf("api socket: %w", err)
		}
		lns = append(lns, l)
	}
	name := s.Name
	if name == "" {
		name = "api"
	}
	var tlsConf *tls.Config
	if s.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(s.TLSCert, s.TLSKey)
		if err != nil {
			closeAll()
			return fmt.Errorf("%s: %w", name, err)
		}
		// HTTP/2 too: a browser's live streams (one per tab) do not
		// take up its few HTTP/1.1 connections
		tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	}
	tcp := append([]net.Listener{}, s.Bound...)
	for _, a := range s.Listen {
		l, err := net.Listen("tcp", a)
		if err != nil {
			closeAll()
			for _, b := range tcp {
				b.Close()
			}
			return fmt.Errorf("%s listen %s: %w", name, a, err)
		}
		tcp = append(tcp, l)
	}
	for _, l := range tcp {
		if s.Accept != nil {
			l = &filterListener{Listener: l, accept: s.Accept}
		}
		if s.MaxConns > 0 {
			l = netutil.LimitListener(l, s.MaxConns)
		}
		if tlsConf != nil {
			l = tls.NewListener(l, tlsConf)
		}
		lns = append(lns, l)
	}
	srv := &http.Server{Handler: s.Handler, ReadHeaderTimeout: 10 * time.Second,
		// a request is read within 30 s and answered within 2 min (a
		// reload included); long streams (the web UI's /events) set
		// their own deadlines; idle connections go after 2 min
		ReadTimeout: 30 * time.Second, WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute,
		// streams end when the server stops
		BaseContext: func(net.Listener) context.Context { return ctx }}
	errc := make(chan error, len(lns))
	for _, l := range lns {
		go func(l net.Listener) { errc <- srv.Serve(l) }(l)
		if s.Log != nil {
			s.Log.Info(name+" listening", "addr", l.Addr().String())
		}
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	if s.Socket != "" {
		os.Remove(s.Socket)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// filterListener closes the connections of clients accept refuses.
type filterListener struct {
	net.Listener
	accept func(net.Addr) bool
}

func (f *filterListener) Accept() (net.Conn, error) {
	for {
		c, err := f.Listener.Accept()
		if err != nil || f.accept(c.RemoteAddr()) {
			return c, err
		}
		c.Close()
	}
}
