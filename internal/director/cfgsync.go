package director

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/configsync"
)

// The configuration sync (govs_config_sync_*): after every change of the
// configuration files that this director put in force (an edit through
// the API or the web UI, a reload after a hand edit), the files go to the
// peers, which check, write and reload them. What a peer sent is not sent
// on. A peer that cannot be reached gets the change again every
// cfgSyncRetry until it takes it.

// cfgSyncRetry is how often a push that failed is tried again.
var cfgSyncRetry = 30 * time.Second

type fromPeerKey struct{}

// cfgSync is the director's side of the configuration sync.
type cfgSync struct {
	mu sync.Mutex
	// rev and files are the files in force (what is sent: not what a
	// hand edit has put on disk since)
	rev   string
	files map[string][]byte
	// history are the revisions this director has had (in force, or
	// taken from a peer), the latest last, at most cfgSyncHistory: a
	// peer with one of them takes a change built on it
	history []string
	peers   map[string]*pusher
	// stateGen orders the writes of the state file (saveStateLocked),
	// stateWG waits for them at stop; enabled says the sync is
	// configured (no state file otherwise)
	stateGen uint64
	stateMu  sync.Mutex
	stateWG  sync.WaitGroup
	enabled  bool
	last     *api.ConfigSyncReceived
	replay   configsync.Replay
	ctx      context.Context
	cancel   context.CancelFunc
}

// pusher sends the files in force to one peer, again until it has them.
type pusher struct {
	addr   string
	kick   chan struct{}
	cancel context.CancelFunc
	// send serialises the pusher's sends and govs config-push's (a
	// one-slot semaphore, so that config-push can give up waiting)
	send chan struct{}
	// known is the revision the peer is known to have ("" unknown);
	// pending says it must get the files in force; force replaces its
	// files whatever they are
	known   string
	pending bool
	force   bool
	st      api.ConfigSyncPeer
}

// cfgSyncHistory bounds the revisions a push names as its bases.
const cfgSyncHistory = 32

// cfgSyncState is what the state file keeps.
type cfgSyncFile struct {
	Acked   map[string]string `json:"acked"`
	History []string          `json:"history"`
}

// addHistoryLocked records a revision this director has had. cs.mu is
// held.
func (cs *cfgSync) addHistoryLocked(rev string) {
	if rev == "" {
		return
	}
	cs.history = slices.DeleteFunc(cs.history, func(r string) bool { return r == rev })
	cs.history = append(cs.history, rev)
	if len(cs.history) > cfgSyncHistory {
		cs.history = cs.history[len(cs.history)-cfgSyncHistory:]
	}
}

// cfgSyncStateFile keeps the revision each peer acknowledged and the
// revisions this director has had, so that a change made while govs was
// stopped (a hand edit, then a restart) still reaches the peers.
func (d *Director) cfgSyncStateFile() string {
	return filepath.Join(filepath.Dir(d.opts.ConfigFile), ".govs-config-sync.json")
}

func (d *Director) initCfgSync(cfg *config.Config) {
	cs := &cfgSync{peers: map[string]*pusher{}}
	cs.ctx, cs.cancel = context.WithCancel(context.Background())
	d.cs = cs
	if d.opts.ConfigFile == "" {
		return
	}
	var saved cfgSyncFile
	if b, err := os.ReadFile(d.cfgSyncStateFile()); err == nil {
		json.Unmarshal(b, &saved)
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, r := range saved.History {
		cs.addHistoryLocked(r)
	}
	if files, rev, err := configsync.Files(d.opts.ConfigFile, cfg); err == nil {
		cs.rev, cs.files = rev, files
		cs.addHistoryLocked(rev)
	}
	d.syncPeersLocked(cfg)
	for addr, p := range cs.peers {
		if k := saved.Acked[addr]; k != "" {
			p.known = k
			if k != cs.rev && cs.rev != "" {
				// changed while govs was stopped
				p.pending, p.st.Pending = true, true
				kickPusher(p)
			}
		}
	}
}

// syncPeersLocked starts a pusher for each configured peer and stops
// those of peers no longer configured. cs.mu is held.
func (d *Director) syncPeersLocked(cfg *config.Config) {
	cs := d.cs
	cs.enabled = len(cfg.Global.Govs.ConfigSyncPeers) > 0 || cfg.Global.Govs.ConfigSyncListen != ""
	want := map[string]bool{}
	for _, addr := range cfg.Global.Govs.ConfigSyncPeers {
		want[addr] = true
		if cs.peers[addr] == nil {
			ctx, cancel := context.WithCancel(cs.ctx)
			p := &pusher{addr: addr, kick: make(chan struct{}, 1), send: make(chan struct{}, 1), cancel: cancel}
			p.st.Addr = addr
			cs.peers[addr] = p
			go d.runPusher(ctx, p)
		}
	}
	for addr, p := range cs.peers {
		if !want[addr] {
			p.cancel()
			delete(cs.peers, addr)
		}
	}
}

func kickPusher(p *pusher) {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// cfgSyncReloaded is called after a reload put cfg in force: when its
// files changed and the change was not a peer's, they go to the peers.
func (d *Director) cfgSyncReloaded(ctx context.Context, cfg *config.Config) {
	if d.cs == nil || d.opts.ConfigFile == "" {
		return
	}
	cs := d.cs
	cs.mu.Lock()
	defer cs.mu.Unlock()
	d.syncPeersLocked(cfg)
	files, rev, err := configsync.Files(d.opts.ConfigFile, cfg)
	if err != nil {
		cs.rev, cs.files = "", nil
		if len(cfg.Global.Govs.ConfigSyncPeers) > 0 {
			d.log.Warn("configuration sync: the files cannot be sent", "err", err)
		}
		return
	}
	prev := cs.rev
	cs.rev, cs.files = rev, files
	cs.addHistoryLocked(rev)
	d.saveStateLocked()
	if rev == prev || ctx.Value(fromPeerKey{}) != nil {
		return
	}
	for _, p := range cs.peers {
		p.pending, p.st.Pending = true, true
		kickPusher(p)
	}
}

func (d *Director) runPusher(ctx context.Context, p *pusher) {
	cs := d.cs
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		}
		for {
			cs.mu.Lock()
			if !p.pending || cs.files == nil || p.known == cs.rev {
				p.pending, p.st.Pending = false, false
				cs.mu.Unlock()
				break
			}
			files, rev, prevs, force := cs.files, cs.rev, slices.Clone(cs.history), p.force
			cs.mu.Unlock()
			select {
			case p.send <- struct{}{}:
			case <-ctx.Done():
				return
			}
			res, err := d.pushTo(ctx, p.addr, files, rev, prevs, force)
			<-p.send
			if ctx.Err() != nil {
				return
			}
			cs.mu.Lock()
			p.st.LastAttempt = time.Now()
			if err == nil {
				p.known, p.force = res.Revision, false
				p.st.LastSuccess, p.st.Error, p.st.Result, p.st.Revision = p.st.LastAttempt, "", res.Result, res.Revision
				if res.ReloadError != "" {
					p.st.Error = "written there, but its reload failed: " + res.ReloadError
				}
				d.saveStateLocked()
				cs.mu.Unlock()
				d.log.Info("configuration sync: files sent", "peer", p.addr, "result", res.Result, "revision", res.Revision, "reload_error", res.ReloadError)
				continue // the files may have changed meanwhile
			}
			p.st.Error = err.Error()
			cs.mu.Unlock()
			d.log.Warn("configuration sync: the peer did not take the files; trying again", "peer", p.addr, "err", err, "in", cfgSyncRetry)
			select {
			case <-ctx.Done():
				return
			case <-p.kick:
			case <-time.After(cfgSyncRetry):
			}
		}
	}
}

// saveStateLocked writes what each peer acknowledged and the history,
// in the background (not while cs.mu is held; the latest write wins).
// cs.mu is held.
func (d *Director) saveStateLocked() {
	cs := d.cs
	if !cs.enabled || d.opts.ConfigFile == "" || cs.ctx.Err() != nil {
		return
	}
	st := cfgSyncFile{Acked: map[string]string{}, History: slices.Clone(cs.history)}
	for addr, p := range cs.peers {
		if p.known != "" {
			st.Acked[addr] = p.known
		}
	}
	b, _ := json.Marshal(st)
	cs.stateGen++
	gen := cs.stateGen
	cs.stateWG.Add(1)
	go func() {
		defer cs.stateWG.Done()
		cs.stateMu.Lock()
		defer cs.stateMu.Unlock()
		cs.mu.Lock()
		latest := cs.stateGen == gen
		cs.mu.Unlock()
		if !latest {
			return // a newer state follows
		}
		if err := config.WriteFileAtomic(d.cfgSyncStateFile(), b); err != nil {
			d.log.Warn("configuration sync: cannot keep what the peers have", "err", err)
		}
	}()
}

// syncClient sends the pushes: straight to the peer, never through a
// proxy of govs's environment.
var syncClient = &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}

// syncReply is a peer's answer.
type syncReply struct {
	Result      string   `json:"result"`
	Revision    string   `json:"revision"`
	Written     []string `json:"written,omitempty"`
	Removed     []string `json:"removed,omitempty"`
	Replaced    string   `json:"replaced,omitempty"`
	ReloadError string   `json:"reload_error,omitempty"`
	Error       string   `json:"error,omitempty"`
	Problems    []string `json:"problems,omitempty"`
}

// pushTo sends files (revision rev) to one peer; prevs are the
// revisions this director has had.
func (d *Director) pushTo(ctx context.Context, addr string, files map[string][]byte, rev string, prevs []string, force bool) (*syncReply, error) {
	g := d.Config().Global
	from := g.RouterID
	if from == "" {
		from, _ = os.Hostname()
	}
	m := &configsync.Message{From: from, SentAt: time.Now(), Main: filepath.Base(d.opts.ConfigFile), Files: files,
		Revision: rev, Prevs: prevs, Force: force}
	secret := g.Govs.ConfigSyncSecret
	body, err := configsync.Seal(secret, m)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	hr, err := http.NewRequestWithContext(rctx, http.MethodPost, "http://"+addr+"/sync/v1/config", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/octet-stream")
	resp, err := syncClient.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	var rep syncReply
	if err := configsync.OpenReply(secret, configsync.Nonce(body), rb, &rep); err != nil {
		// not sealed for this request: an error said before the peer
		// could trust the message, or not the peer at all
		var plain syncReply
		if json.Unmarshal(rb, &plain) == nil && plain.Error != "" {
			return nil, fmt.Errorf("%s refused the files (%s): %s", addr, resp.Status, plain.Error)
		}
		return nil, fmt.Errorf("%s: %s, an answer that is not sealed with the secret for this request", addr, resp.Status)
	}
	if resp.StatusCode != http.StatusOK {
		msg := rep.Error
		if len(rep.Problems) > 0 {
			msg += ": " + strings.Join(rep.Problems, "; ")
		}
		return nil, fmt.Errorf("%s refused the files (%s): %s", addr, resp.Status, msg)
	}
	return &rep, nil
}

// PushConfig sends the files in force to every peer now and returns what
// each answered (govs config-push). Without force a peer takes them only
// when it has what it was last known to have; force replaces its files
// whatever they are (it keeps the ones it replaces beside them).
func (d *Director) PushConfig(ctx context.Context, force bool) ([]api.ConfigSyncPeer, error) {
	cfg := d.Config()
	if len(cfg.Global.Govs.ConfigSyncPeers) == 0 {
		return nil, fmt.Errorf("%w: no govs_config_sync_peer in the configuration", api.ErrBadRequest)
	}
	cs := d.cs
	cs.mu.Lock()
	files, rev, prevs := cs.files, cs.rev, slices.Clone(cs.history)
	var targets []*pusher
	for _, addr := range cfg.Global.Govs.ConfigSyncPeers {
		if p := cs.peers[addr]; p != nil {
			targets = append(targets, p)
		}
	}
	cs.mu.Unlock()
	if files == nil {
		return nil, fmt.Errorf("%w: the configuration in force cannot be sent (see the log)", api.ErrBadRequest)
	}
	// all peers at once, each within cfgSyncPushTimeout: one that does
	// not answer does not hold up the others' answers
	out := make([]api.ConfigSyncPeer, len(targets))
	var wg sync.WaitGroup
	for i, p := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = d.pushOne(ctx, p, files, rev, prevs, force)
		}()
	}
	wg.Wait()
	return out, nil
}

// cfgSyncPushTimeout bounds one push of govs config-push.
const cfgSyncPushTimeout = 20 * time.Second

func (d *Director) pushOne(ctx context.Context, p *pusher, files map[string][]byte, rev string, prevs []string, force bool) api.ConfigSyncPeer {
	cs := d.cs
	{
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfgSyncPushTimeout)
		defer cancel()
		st := api.ConfigSyncPeer{Addr: p.addr, LastAttempt: time.Now()}
		var res *syncReply
		var err error
		select {
		case p.send <- struct{}{}:
			res, err = d.pushTo(ctx, p.addr, files, rev, prevs, force)
			<-p.send
		case <-ctx.Done():
			err = fmt.Errorf("%s: a push to it is in progress and did not end within %s", p.addr, cfgSyncPushTimeout)
		}
		cs.mu.Lock()
		if err != nil {
			st.Error = err.Error()
			if force {
				// the pusher goes on with it until the peer takes it
				p.force, p.pending, p.st.Pending = true, true, true
				kickPusher(p)
			}
		} else {
			st.LastSuccess, st.Result, st.Revision = st.LastAttempt, res.Result, res.Revision
			if res.Replaced != "" {
				st.Result = fmt.Sprintf("%s, replacing its revision %s (kept there as .NAME.replaced-by-sync)", res.Result, res.Replaced)
			}
			if res.ReloadError != "" {
				st.Error = "written there, but its reload failed: " + res.ReloadError
			}
			p.known, p.force = res.Revision, false
			if p.known == cs.rev {
				p.pending = false
			}
			p.st = st
			p.st.Pending = p.pending
			d.saveStateLocked()
		}
		cs.mu.Unlock()
		return st
	}
}

// ConfigSyncHandler takes the peers' files (POST /sync/v1/config), for
// the govs_config_sync_listen listener.
func (d *Director) ConfigSyncHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /sync/v1/config", func(w http.ResponseWriter, r *http.Request) {
		plain := func(code int, msg string) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			json.NewEncoder(w).Encode(syncReply{Error: msg})
		}
		secret := d.Config().Global.Govs.ConfigSyncSecret
		if secret == "" {
			plain(http.StatusForbidden, "no govs_config_sync_secret here")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, configsync.MaxMessage))
		if err != nil {
			plain(http.StatusBadRequest, err.Error())
			return
		}
		m, err := configsync.Open(secret, body, time.Now(), &d.cs.replay)
		if err != nil {
			d.log.Warn("configuration sync: refused a message", "client", r.RemoteAddr, "err", err)
			plain(http.StatusForbidden, err.Error())
			return
		}
		rec := &api.ConfigSyncReceived{From: m.From, Addr: r.RemoteAddr, At: time.Now(), Revision: m.Revision}
		rep, code := d.receive(r.Context(), m)
		rec.Result, rec.Error = rep.Result, rep.Error
		if rep.ReloadError != "" {
			rec.Error = "written, but the reload failed: " + rep.ReloadError
		}
		d.cs.mu.Lock()
		d.cs.last = rec
		d.cs.mu.Unlock()
		// the answer is sealed for this request: the sender knows it
		// comes from a director with the secret
		sealed, err := configsync.SealReply(secret, configsync.Nonce(body), rep)
		if err != nil {
			plain(http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(code)
		w.Write(sealed)
	})
	return mux
}

// receive takes a peer's files: written when they fit (see configsync),
// then reloaded, without sending them on.
func (d *Director) receive(ctx context.Context, m *configsync.Message) (syncReply, int) {
	if d.opts.ConfigFile == "" {
		return syncReply{Error: "this director's configuration was not read from a file"}, http.StatusConflict
	}
	d.pmu.Lock()
	defer d.pmu.Unlock()
	res, err := configsync.Apply(d.opts.ConfigFile, d.parseOptions(), m)
	var inv *config.InvalidError
	switch {
	case errors.As(err, &inv):
		rep := syncReply{Error: "the files do not load here: nothing was written"}
		for _, p := range inv.Problems {
			rep.Problems = append(rep.Problems, p.String())
		}
		d.log.Warn("configuration sync: files refused", "from", m.From, "err", rep.Error, "problems", rep.Problems)
		return rep, http.StatusBadRequest
	case errors.Is(err, configsync.ErrConflict):
		d.log.Warn("configuration sync: files refused", "from", m.From, "err", err)
		return syncReply{Error: err.Error()}, http.StatusConflict
	case errors.Is(err, configsync.ErrRefused):
		d.log.Warn("configuration sync: files refused", "from", m.From, "err", err)
		return syncReply{Error: err.Error()}, http.StatusBadRequest
	case err != nil:
		d.log.Error("configuration sync: files not written", "from", m.From, "err", err)
		return syncReply{Error: err.Error()}, http.StatusInternalServerError
	}
	rep := syncReply{Result: "unchanged", Revision: res.Revision, Written: res.Written, Removed: res.Removed, Replaced: res.Replaced}
	d.cs.mu.Lock()
	running := d.cs.rev
	d.cs.mu.Unlock()
	if len(res.Written) == 0 && len(res.Removed) == 0 && running == res.Revision {
		return rep, http.StatusOK
	}
	// these files replace what this director had: a change of its own
	// that its peers have not taken yet is not sent any more (it would
	// undo these), and a later change builds on them
	d.cs.mu.Lock()
	d.cs.addHistoryLocked(res.Revision)
	for _, p := range d.cs.peers {
		p.pending, p.force, p.st.Pending = false, false, false
	}
	d.saveStateLocked()
	d.cs.mu.Unlock()
	if len(res.Written) > 0 || len(res.Removed) > 0 {
		rep.Result = "saved"
		d.log.Info("configuration sync: files taken from a peer", "from", m.From, "written", res.Written, "removed", res.Removed, "forced", m.Force, "replaced", res.Replaced)
	} else {
		// on disk already, not in force (its reload failed before)
		rep.Result = "reloaded"
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	if err := d.Reload(context.WithValue(rctx, fromPeerKey{}, true)); err != nil {
		rep.ReloadError = err.Error()
	}
	return rep, http.StatusOK
}

// cfgSyncState is the sync's part of the API state (nil when off).
func (d *Director) cfgSyncState(cfg *config.Config) *api.ConfigSync {
	g := cfg.Global.Govs
	if d.cs == nil || g.ConfigSyncListen == "" && len(g.ConfigSyncPeers) == 0 {
		return nil
	}
	d.cs.mu.Lock()
	defer d.cs.mu.Unlock()
	st := &api.ConfigSync{Listen: g.ConfigSyncListen, Revision: d.cs.rev, LastReceived: d.cs.last}
	for _, addr := range g.ConfigSyncPeers {
		ps := api.ConfigSyncPeer{Addr: addr}
		if p := d.cs.peers[addr]; p != nil {
			ps = p.st
		}
		st.Peers = append(st.Peers, ps)
	}
	sort.Slice(st.Peers, func(i, j int) bool { return st.Peers[i].Addr < st.Peers[j].Addr })
	return st
}

func (d *Director) stopCfgSync() {
	if d.cs != nil {
		// under cs.mu: no state write starts after this
		d.cs.mu.Lock()
		d.cs.cancel()
		d.cs.mu.Unlock()
		d.cs.stateWG.Wait()
	}
}
