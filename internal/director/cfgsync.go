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
	"sort"
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
	mu     sync.Mutex
	rev    string // revision of the files in force
	peers  map[string]*pusher
	last   *api.ConfigSyncReceived
	replay configsync.Replay
	ctx    context.Context
	cancel context.CancelFunc
}

// pusher sends the files to one peer, again until it takes them.
type pusher struct {
	addr string
	kick chan struct{}
	// want is the push not delivered yet: prev is the revision the peer
	// is known to have (the oldest undelivered one)
	want *pushReq
	st   api.ConfigSyncPeer
}

type pushReq struct {
	prev  string
	force bool
}

func (d *Director) initCfgSync(cfg *config.Config) {
	cs := &cfgSync{peers: map[string]*pusher{}}
	cs.ctx, cs.cancel = context.WithCancel(context.Background())
	if d.opts.ConfigFile != "" {
		if _, rev, err := configsync.Files(d.opts.ConfigFile, cfg); err == nil {
			cs.rev = rev
		}
	}
	d.cs = cs
}

// cfgSyncReloaded is called after a reload put cfg in force: when its
// files changed and the change was not a peer's, they go to the peers.
func (d *Director) cfgSyncReloaded(ctx context.Context, cfg *config.Config) {
	if d.cs == nil || d.opts.ConfigFile == "" {
		return
	}
	_, rev, err := configsync.Files(d.opts.ConfigFile, cfg)
	if err != nil {
		if len(cfg.Global.Govs.ConfigSyncPeers) > 0 {
			d.log.Warn("configuration sync: the files cannot be sent", "err", err)
		}
		return
	}
	d.cs.mu.Lock()
	prev := d.cs.rev
	d.cs.rev = rev
	d.cs.mu.Unlock()
	if rev == prev || ctx.Value(fromPeerKey{}) != nil {
		return
	}
	d.pushAll(cfg, pushReq{prev: prev})
}

// pushAll hands a push to every peer's pusher.
func (d *Director) pushAll(cfg *config.Config, req pushReq) {
	cs := d.cs
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, addr := range cfg.Global.Govs.ConfigSyncPeers {
		p := cs.peers[addr]
		if p == nil {
			p = &pusher{addr: addr, kick: make(chan struct{}, 1)}
			p.st.Addr = addr
			cs.peers[addr] = p
			go d.runPusher(p)
		}
		if p.want == nil {
			r := req
			p.want = &r
		} else {
			// the peer has not taken the last one: it still has its prev
			p.want.force = p.want.force || req.force
		}
		p.st.Pending = true
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
}

func (d *Director) runPusher(p *pusher) {
	cs := d.cs
	for {
		select {
		case <-cs.ctx.Done():
			return
		case <-p.kick:
		}
		for {
			cs.mu.Lock()
			want := p.want
			cs.mu.Unlock()
			if want == nil {
				break
			}
			res, err := d.pushTo(cs.ctx, p.addr, *want)
			cs.mu.Lock()
			p.st.LastAttempt = time.Now()
			if err == nil {
				p.st.LastSuccess, p.st.Error, p.st.Result, p.st.Revision = p.st.LastAttempt, "", res.Result, res.Revision
				if p.want == want {
					p.want = nil
					p.st.Pending = false
				}
				cs.mu.Unlock()
				d.log.Info("configuration sync: files sent", "peer", p.addr, "result", res.Result, "revision", res.Revision, "reload_error", res.ReloadError)
				continue
			}
			p.st.Error = err.Error()
			cs.mu.Unlock()
			d.log.Warn("configuration sync: the peer did not take the files; trying again", "peer", p.addr, "err", err, "in", cfgSyncRetry)
			select {
			case <-cs.ctx.Done():
				return
			case <-p.kick:
			case <-time.After(cfgSyncRetry):
			}
		}
	}
}

// syncReply is a peer's answer.
type syncReply struct {
	Result      string   `json:"result"`
	Revision    string   `json:"revision"`
	Written     []string `json:"written,omitempty"`
	Removed     []string `json:"removed,omitempty"`
	ReloadError string   `json:"reload_error,omitempty"`
	Error       string   `json:"error,omitempty"`
	Problems    []string `json:"problems,omitempty"`
}

// pushTo sends the files as they are on disk now to one peer.
func (d *Director) pushTo(ctx context.Context, addr string, req pushReq) (*syncReply, error) {
	cfg, ds := config.ParseFile(d.opts.ConfigFile, d.parseOptions())
	files, rev, err := configsync.Files(d.opts.ConfigFile, cfg)
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", err, ds.Err())
	}
	g := d.Config().Global
	from := g.RouterID
	if from == "" {
		from, _ = os.Hostname()
	}
	m := &configsync.Message{From: from, SentAt: time.Now(), Main: relMain(d.opts.ConfigFile), Files: files,
		Revision: rev, Prev: req.prev, Force: req.force}
	body, err := configsync.Seal(g.Govs.ConfigSyncSecret, m)
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
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var rep syncReply
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&rep); err != nil {
		return nil, fmt.Errorf("%s: %s, unreadable answer: %v", addr, resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK {
		msg := rep.Error
		if len(rep.Problems) > 0 {
			msg += ": " + fmt.Sprint(rep.Problems)
		}
		return nil, fmt.Errorf("%s refused the files (%s): %s", addr, resp.Status, msg)
	}
	return &rep, nil
}

func relMain(main string) string {
	return filepath.Base(main)
}

// PushConfig sends the configuration files to every peer now and
// returns what each answered (govs config-push). force replaces the
// peers' files even when they were changed there.
func (d *Director) PushConfig(ctx context.Context, force bool) ([]api.ConfigSyncPeer, error) {
	cfg := d.Config()
	peers := cfg.Global.Govs.ConfigSyncPeers
	if len(peers) == 0 {
		return nil, fmt.Errorf("%w: no govs_config_sync_peer in the configuration", api.ErrBadRequest)
	}
	d.cs.mu.Lock()
	prev := d.cs.rev
	d.cs.mu.Unlock()
	var out []api.ConfigSyncPeer
	for _, addr := range peers {
		st := api.ConfigSyncPeer{Addr: addr, LastAttempt: time.Now()}
		res, err := d.pushTo(ctx, addr, pushReq{prev: prev, force: force})
		if err != nil {
			st.Error = err.Error()
		} else {
			st.LastSuccess, st.Result, st.Revision = st.LastAttempt, res.Result, res.Revision
			if res.ReloadError != "" {
				st.Error = "written, but the reload failed: " + res.ReloadError
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// ConfigSyncHandler takes the peers' files (POST /sync/v1/config), for
// the govs_config_sync_listen listener.
func (d *Director) ConfigSyncHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /sync/v1/config", func(w http.ResponseWriter, r *http.Request) {
		reply := func(code int, rep syncReply) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			json.NewEncoder(w).Encode(rep)
		}
		secret := d.Config().Global.Govs.ConfigSyncSecret
		if secret == "" {
			reply(http.StatusForbidden, syncReply{Error: "no govs_config_sync_secret here"})
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 16<<20))
		if err != nil {
			reply(http.StatusBadRequest, syncReply{Error: err.Error()})
			return
		}
		m, err := configsync.Open(secret, body, time.Now(), &d.cs.replay)
		if err != nil {
			d.log.Warn("configuration sync: refused a message", "client", r.RemoteAddr, "err", err)
			reply(http.StatusForbidden, syncReply{Error: err.Error()})
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
		reply(code, rep)
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
	case err != nil:
		d.log.Error("configuration sync: files not written", "from", m.From, "err", err)
		return syncReply{Error: err.Error()}, http.StatusInternalServerError
	}
	rep := syncReply{Result: "unchanged", Revision: res.Revision, Written: res.Written, Removed: res.Removed}
	if len(res.Written) == 0 && len(res.Removed) == 0 {
		return rep, http.StatusOK
	}
	rep.Result = "saved"
	d.log.Info("configuration sync: files taken from a peer", "from", m.From, "written", res.Written, "removed", res.Removed, "forced", m.Force)
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
		d.cs.cancel()
	}
}
