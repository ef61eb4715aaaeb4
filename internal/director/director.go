// Package director is govs's engine: it turns the configuration (desired
// state) and the health of real servers (observed state) into the list of
// effective virtual services, hands it to a dataplane, and owns start,
// reload, runtime changes and stop.
package director

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/bfd"
	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/connsync"
	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/health"
	"github.com/govs/govs/internal/notify"
	"github.com/govs/govs/internal/vrrp"
)

// Options configure a Director.
type Options struct {
	// ConfigFile is re-read by Reload.
	ConfigFile string
	// ConfigID is the config-id its conditional (@ID) lines are read
	// with ("": config.DefaultConfigID).
	ConfigID string
	// Dataplane moves the packets; the director owns it after New.
	Dataplane dataplane.Dataplane
	// DataplaneName is reported in the state ("proxy", "xdp", ...).
	DataplaneName string
	// XDPMode is reported in the state with the xdp dataplane ("native"
	// or "generic").
	XDPMode string
	// Log receives operational messages; nil discards them.
	Log *slog.Logger
	// Version is reported in the state.
	Version string
	// ConnTableSize is reported by govs list (ipvsadm's "size=").
	ConnTableSize int
	// RateInterval is the rate estimator period (default 2 s, as IPVS).
	RateInterval time.Duration
	// NewChecker overrides health checker construction (tests).
	NewChecker func(health.Spec) (health.Checker, error)
	// VRRPSystem does VRRP's I/O (vrrp.NewLinuxSystem). When set and the
	// configuration has vrrp_instance blocks, the director runs them and
	// balances only the virtual addresses this node holds.
	VRRPSystem vrrp.System
}

// Director runs virtual services. Create it with New, then Run.
type Director struct {
	events   atomic.Pointer[func(Event)] // SetEventSink
	opts     Options
	log      *slog.Logger
	dp       dataplane.Dataplane
	sup      *health.Supervisor
	notifier *notify.Notifier
	fifos    *fifos // notify FIFOs, fixed until restart
	started  time.Time
	kick     chan struct{}
	node     *vrrp.Node // nil without VRRP
	vrrpSig  string     // the VRRP configuration the node runs
	// bfd runs the bfd_instance sessions (nil until there is one;
	// guarded by mu)
	bfd *bfd.Daemon
	// notifiers of the instances and groups of the VRRP configuration
	// before the last reload ("INSTANCE name", "GROUP name"), for the
	// notifications of those the reload removed
	retiredNotify map[string]config.Notifiers
	vrrpCfg       *config.Config
	// rxLowerRunning: instances whose notify_master_rx_lower_pri script
	// runs now (guarded by mu)
	rxLowerRunning map[string]bool
	// notifySig is the script security and mail configuration the
	// notifier was built with (fixed until restart).
	notifySig string
	// govs is the govs_ part of global_defs govs run started with: it
	// reads those settings once (startOnlyChanged).
	govs config.GovsGlobal
	// flushOnStop is lvs_flush_onstop as govs run started with it: the
	// dataplane was opened to keep or remove its program and pins at
	// stop by it, and Stop flushes the services by the same value.
	flushOnStop bool
	// sloppyTCP is config.SloppyTCP as govs run started with it (the
	// dataplane takes it when it opens)
	sloppyTCP bool
	resign    chan struct{}
	nodeDone  chan struct{}

	pmu sync.Mutex // serialises --persist edits of the file
	// reloadMu serialises reloads (SIGHUP, the API, --persist), so that
	// the file read last is the one put in force
	reloadMu sync.Mutex
	// tmu serialises timeout changes (reload, SetTimeouts) and guards
	// fileTimeouts
	tmu          sync.Mutex
	fileTimeouts config.Timeouts // lvs_timeouts of the file last put in force

	mu           sync.Mutex
	cfg          *config.Config
	timeouts     config.Timeouts // in force in the dataplane
	specs        []*vsSpec
	states       map[dataplane.ServiceKey]*health.ServiceState
	decisions    map[dataplane.ServiceKey]health.Decision
	health       map[string]*rsHealth
	vsOff        map[dataplane.ServiceKey]bool
	rsOverride   map[rsKey]*override
	configLoaded time.Time
	reloadErr    string
	applyErr     error

	// applyMu serializes reconcile: computing the services and applying
	// them happen as one step, so an older computation is never applied
	// after a newer one.
	applyMu sync.Mutex

	// the connection-sync daemon (syncd.go), nil without
	// lvs_sync_daemon; syncInst is its VRRP instance, syncRunning says
	// that Run has started (guarded by mu)
	// cs is the configuration sync (cfgsync.go)
	cs *cfgSync

	// the BGP speaker (bgp.go), guarded by bmu; bcfgMu serialises
	// its configuration changes
	bmu    sync.Mutex
	bcfgMu sync.Mutex
	bgp    bgpState
	// bgpHealthy: since when each virtual address has had a service up
	// by its health (guarded by mu; bgpRoutesLocked)
	bgpHealthy map[netip.Prefix]time.Time

	syncd       *connsync.Daemon
	syncInst    string
	syncRunning bool
	syncMu      sync.Mutex // serialises updateSyncRole

	rmu    sync.Mutex
	prev   dataplane.Snapshot
	rates  map[rateKey]rates
	closed bool
}

type rsKey struct {
	svc dataplane.ServiceKey
	rs  netip.AddrPort
}

type override struct {
	weight   *int
	disabled bool
}

type rsHealth struct {
	up     bool
	weight *int
	reason string
	since  time.Time
}

type rateKey struct {
	svc dataplane.ServiceKey
	rs  netip.AddrPort // zero for the service total
}

type rates struct{ cps, inpps, outpps, inbps, outbps uint64 }

// New builds a director for a validated configuration. It does not start
// anything; Run does.
func New(cfg *config.Config, opts Options) (*Director, error) {
	if opts.Dataplane == nil {
		return nil, errors.New("director: no dataplane")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.RateInterval <= 0 {
		opts.RateInterval = 2 * time.Second
	}
	d := &Director{
		opts:       opts,
		log:        opts.Log,
		dp:         opts.Dataplane,
		started:    time.Now(),
		kick:       make(chan struct{}, 1),
		states:     map[dataplane.ServiceKey]*health.ServiceState{},
		decisions:  map[dataplane.ServiceKey]health.Decision{},
		health:     map[string]*rsHealth{},
		vsOff:      map[dataplane.ServiceKey]bool{},
		rsOverride: map[rsKey]*override{},
		rates:      map[rateKey]rates{},
	}
	runner := &notify.Runner{Security: cfg.Global.EnableScriptSecurity}
	runner.DefaultUser, runner.DefaultGroup = splitUser(cfg.Global.ScriptUser)
	d.notifier = &notify.Notifier{Runner: runner, OnError: func(n notify.Notification, err error) {
		d.log.Warn("notification failed", "subject", n.Subject, "err", err)
	}}
	d.notifier.Mailer = mailer(cfg)
	fifos, err := openFIFOs(cfg.Global, d.log)
	if err != nil {
		return nil, err
	}
	d.fifos = fifos
	d.notifySig = notifySignature(cfg)
	d.govs = cfg.Global.Govs
	d.flushOnStop = cfg.Global.LVSFlushOnStop
	d.sloppyTCP = cfg.SloppyTCP()
	d.timeouts = cfg.Global.LVSTimeouts
	d.fileTimeouts = cfg.Global.LVSTimeouts
	d.sup = health.NewSupervisor(health.SupervisorConfig{
		NewChecker: opts.NewChecker,
		Options:    health.Options{Scripts: runner, BFD: bfdWatcher{d}},
		// log_all_failures, checker_log_all_failures
		OnFailure: func(id, label string, err error, attempt, attempts int) {
			d.log.Warn("health check failed", "server", id, "check", label, "err", err, "attempt", attempt, "of", attempts)
		},
	})
	d.resign = make(chan struct{})
	d.nodeDone = make(chan struct{})
	d.cfg = cfg
	// before the VRRP node and the checks read the files
	initTrackFiles(cfg, true, d.log)
	d.configureBFD(bfdConfigs(cfg)) // before the node: its instances watch the sessions
	node, err := d.newNode(cfg)
	if err != nil {
		d.fifos.Close()
		d.closeBFD()
		return nil, fmt.Errorf("vrrp: %w", err)
	}
	d.node = node
	d.startSync(cfg)
	if err := d.load(cfg); err != nil {
		d.fifos.Close()
		d.closeBFD()
		return nil, err
	}
	d.initCfgSync(cfg)
	setProcessName(&cfg.Global, d.log)
	d.bgp.cfg = cfg.BGP
	return d, nil
}

func notifySignature(cfg *config.Config) string {
	g := cfg.Global
	return vrrpSignature(g.EnableScriptSecurity, g.ScriptUser, g.SMTPServer, g.SMTPPort, g.NotificationEmail, g.NotificationEmailFrom, g.SMTPConnectTimeout, g.RouterID,
		g.NotifyFIFO, g.VRRPNotifyFIFO, g.LVSNotifyFIFO, g.SMTPHeloName, g.NoEmailFaults)
}

// startOnlyChanged names the govs_ keywords of global_defs whose values
// differ between a and b. govs run reads them once, at start (the
// dataplane, its interfaces and attach mode, table size, listeners, log
// level, masquerade networks): a reload that changes one says so. The web
// UI's password and allow list are not among them: the UI reads them at
// every request.
func startOnlyChanged(a, b config.GovsGlobal) []string {
	var out []string
	add := func(name string, same bool) {
		if !same {
			out = append(out, name)
		}
	}
	add("govs_dataplane", a.Dataplane == b.Dataplane)
	add("govs_interface", slices.Equal(a.Interfaces, b.Interfaces))
	add("govs_xdp_mode", a.XDPMode == b.XDPMode)
	add("govs_api_socket", a.APISocket == b.APISocket)
	add("govs_api_listen", a.APIListen == b.APIListen)
	add("govs_web_listen", a.WebListen == b.WebListen)
	add("govs_web_tls", a.WebTLSCert == b.WebTLSCert && a.WebTLSKey == b.WebTLSKey)
	add("govs_config_sync_listen", a.ConfigSyncListen == b.ConfigSyncListen)
	add("govs_metrics_listen", a.MetricsListen == b.MetricsListen)
	add("govs_conn_table_size", a.ConnTableSize == b.ConnTableSize)
	add("govs_log_level", a.LogLevel == b.LogLevel)
	add("govs_masquerade", slices.Equal(a.Masquerade, b.Masquerade))
	return out
}

func splitUser(s string) (user, group string) {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' || s[i] == ' ' {
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

func mailer(cfg *config.Config) *notify.Mailer {
	g := cfg.Global
	if g.SMTPServer == "" || len(g.NotificationEmail) == 0 {
		return nil
	}
	server := g.SMTPServer
	if g.SMTPPort != 0 {
		server = net.JoinHostPort(g.SMTPServer, strconv.Itoa(int(g.SMTPPort)))
	}
	return &notify.Mailer{
		Server:         server,
		From:           g.NotificationEmailFrom,
		To:             g.NotificationEmail,
		ConnectTimeout: g.SMTPConnectTimeout.D(),
		RouterID:       g.RouterID,
		HeloName:       g.SMTPHeloName,
	}
}

// load installs cfg: new specs, health servers, service states. Called by
// New and by Reload with a validated config.
func (d *Director) load(cfg *config.Config) error {
	specs, err := buildSpecs(cfg)
	if err != nil {
		return err
	}
	resolveFiles(cfg, specs)
	// Refuse invalid checks before anything changes, so that a refused
	// reload leaves every running check as it was.
	if err := checkSpecs(specs); err != nil {
		return fmt.Errorf("health checks: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	oldCfg, oldSpecs := d.cfg, d.specs
	d.cfg, d.specs = cfg, specs
	if err := d.sup.Update(d.healthServersLocked()); err != nil {
		d.cfg, d.specs = oldCfg, oldSpecs
		return fmt.Errorf("health checks: %w", err)
	}
	seen := map[string]bool{}
	for _, s := range specs {
		for _, r := range s.reals {
			seen[r.id] = true
		}
	}
	d.configLoaded = time.Now()
	keys := map[dataplane.ServiceKey]bool{}
	for _, s := range specs {
		keys[s.svc.Key] = true
		if st, ok := d.states[s.svc.Key]; ok {
			st.SetSpec(s.quorum)
		} else {
			d.states[s.svc.Key] = health.NewServiceState(s.quorum)
		}
		for _, r := range s.reals {
			if _, ok := d.health[r.id]; !ok {
				up := true
				for _, c := range r.checks {
					if c.Alpha {
						up = false
					}
				}
				reason := "no check failed yet"
				if len(r.checks) == 0 {
					reason = "no health check configured"
				} else if !up {
					reason = "alpha: down until a check succeeds"
				}
				d.health[r.id] = &rsHealth{up: up, reason: reason, since: time.Now()}
			}
		}
	}
	for k := range d.states {
		if !keys[k] {
			delete(d.states, k)
			delete(d.decisions, k)
			delete(d.vsOff, k)
		}
	}
	for id := range d.health {
		if !seen[id] {
			delete(d.health, id)
		}
	}
	for k := range d.rsOverride {
		if !keys[k.svc] {
			delete(d.rsOverride, k)
		}
	}
	return nil
}

// Run runs health checks, notifications and the reconcile loop until ctx
// is done. It returns after its goroutines have exited; the dataplane is
// left as it is (Stop releases it).
func (d *Director) Run(ctx context.Context) error {
	if ctx.Err() != nil {
		return nil // stopped before it started
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return d.sup.Run(ctx) })
	g.Go(func() error { return d.notifier.Run(ctx) })
	// the FIFO readers outlive ctx: Stop ends them once the last lines
	// (the VRRP instances' STOP) were read
	d.fifos.start(d.notifier.Runner, d.log)
	g.Go(func() error { return d.loop(ctx) })
	d.mu.Lock()
	d.syncRunning = true
	d.mu.Unlock()
	d.updateSyncRole()
	d.startBGP(ctx)
	if d.node != nil {
		// the no_accept rules are in place before any instance can
		// take its addresses (the loop's reconcile keeps them after)
		d.refreshFirewall()
		nctx, cancel := context.WithCancel(ctx)
		g.Go(func() error {
			defer close(d.nodeDone)
			defer cancel()
			go func() {
				select {
				case <-d.resign:
					cancel()
				case <-nctx.Done():
				}
			}()
			// vrrp_startup_delay: the instances stay in INIT (and hold
			// no address) this long after govs starts
			d.mu.Lock()
			delay := d.vrrpCfg.Global.VRRPStartupDelay.D()
			d.mu.Unlock()
			if delay > 0 {
				d.log.Info("vrrp: vrrp_startup_delay", "delay", delay)
				select {
				case <-time.After(delay):
				case <-nctx.Done():
					// stopped (or resigned) within the delay: the
					// instances never start, so nothing is claimed,
					// announced or notified on the way out
					return nil
				}
			}
			err := d.node.Run(nctx)
			d.ownershipChanged()
			if ctx.Err() == nil && err != nil {
				return fmt.Errorf("vrrp: %w", err)
			}
			return nil
		})
	} else {
		close(d.nodeDone)
	}
	err := g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func (d *Director) loop(ctx context.Context) error {
	if err := d.reconcile(ctx); err != nil {
		d.log.Error("apply services", "err", err)
	}
	tick := time.NewTicker(d.opts.RateInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case t, ok := <-d.sup.Transitions():
			if !ok {
				return nil
			}
			d.transition(t)
			// Apply every transition queued so far in one go.
			for more := true; more; {
				select {
				case t := <-d.sup.Transitions():
					d.transition(t)
				default:
					more = false
				}
			}
			if err := d.reconcile(ctx); err != nil {
				d.log.Error("apply services", "err", err)
			}
		case <-d.kick:
			if err := d.reconcile(ctx); err != nil {
				d.log.Error("apply services", "err", err)
			}
		case <-tick.C:
			d.estimate(ctx)
		}
	}
}

func (d *Director) transition(t health.Transition) {
	d.mu.Lock()
	defer d.mu.Unlock()
	h, ok := d.health[t.ID]
	if !ok {
		return
	}
	if h.up != t.Up {
		state := "down"
		if t.Up {
			state = "up"
		}
		d.log.Info("real server "+state, "rs", t.ID, "reason", t.Reason)
	}
	h.up, h.weight, h.reason, h.since = t.Up, t.Weight, t.Reason, t.Time
	if h.since.IsZero() {
		h.since = time.Now()
	}
}

// Resign stops VRRP (priority 0 adverts so the peer takes over at once,
// virtual addresses removed) while the rest keeps running: the first step
// of a lame-duck stop. It returns when VRRP has stopped or ctx is done.
func (d *Director) Resign(ctx context.Context) {
	if d.node == nil {
		return
	}
	d.rmu.Lock()
	select {
	case <-d.resign:
	default:
		close(d.resign)
	}
	d.rmu.Unlock()
	select {
	case <-d.nodeDone:
	case <-ctx.Done():
	}
}

// Config is the configuration in force (the last one loaded).
func (d *Director) Config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// HasVRRP reports whether the director runs VRRP instances.
func (d *Director) HasVRRP() bool { return d.node != nil && len(d.node.Status()) > 0 }

// healthServersLocked lists the health-checked servers, without those of
// ha_suspend virtual servers whose address this node does not hold.
func (d *Director) healthServersLocked() []health.Server {
	var servers []health.Server
	seen := map[string]bool{}
	for _, s := range d.specs {
		if s.vs.HASuspend && !d.owns(s.svc.Key.Addr) {
			continue
		}
		for _, r := range s.reals {
			if seen[r.id] {
				continue
			}
			seen[r.id] = true
			servers = append(servers, health.Server{ID: r.id, Weight: r.dp.Weight, Checks: r.checks})
		}
	}
	return servers
}

// Kick asks the loop to reconcile soon.
func (d *Director) Kick() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// effective computes the services for the dataplane and the notifications
// due, under d.mu.
func (d *Director) effective() ([]dataplane.Service, []notify.Notification) {
	var out []dataplane.Service
	var notes []notify.Notification
	notified := map[*config.VirtualServer]bool{}
	for _, s := range d.specs {
		key := s.svc.Key
		var states []health.RealServerState
		byID := map[string]rsSpec{}
		for _, r := range s.reals {
			ov := d.rsOverride[rsKey{key, r.dp.Addr}]
			if ov != nil && ov.disabled {
				continue
			}
			h := d.health[r.id]
			w := r.dp.Weight
			if h != nil && h.weight != nil {
				w = *h.weight
			}
			if ov != nil && ov.weight != nil {
				w = *ov.weight
			}
			up := h == nil || h.up
			states = append(states, health.RealServerState{ID: r.id, Up: up, Weight: w, InhibitOnFailure: r.inhibit})
			byID[r.id] = r
		}
		st := d.states[key]
		dec := st.Update(states)
		d.decisions[key] = dec
		if !notified[s.vs] {
			notified[s.vs] = true
			notes = append(notes, d.notes(s, dec)...)
		}
		if d.vsOff[key] || !d.ownsService(s) {
			continue
		}
		svc := s.svc
		svc.RealServers = nil
		svc.Sorry = nil
		for _, e := range dec.Servers {
			if e.Sorry {
				if s.sorry != nil && e.Weight > 0 {
					sorry := *s.sorry
					sorry.Weight = e.Weight
					svc.Sorry = &sorry
				}
				continue
			}
			r := byID[e.ID]
			rs := r.dp
			rs.Weight = e.Weight
			svc.RealServers = append(svc.RealServers, rs)
		}
		out = append(out, svc)
	}
	return out, notes
}

// ownsService reports whether this node balances s now (see owns).
func (d *Director) ownsService(s *vsSpec) bool {
	if d.keepsServices() {
		return true
	}
	if !d.owns(s.svc.Key.Addr) {
		return false
	}
	for _, v := range s.svc.VIPs {
		if !d.owns(v) {
			return false
		}
	}
	return true
}

// notes turns service events into notifications (scripts and mails).
func (d *Director) notes(s *vsSpec, dec health.Decision) []notify.Notification {
	var out []notify.Notification
	for _, ev := range dec.Events {
		switch ev.Kind {
		case health.ServerUp, health.ServerDown:
			var r *rsSpec
			for i := range s.reals {
				if s.reals[i].id == ev.ID {
					r = &s.reals[i]
				}
			}
			if r == nil {
				continue
			}
			up := ev.Kind == health.ServerUp
			d.fifos.LVS("RS " + fifoAddr(r.dp.Addr, s) + " " + fifoVS(s) + " " + notify.UpDown(up))
			d.emit(Event{Kind: "RS", Service: api.ServiceID(s.svc.Key), RealServer: r.dp.Addr.String(), Up: up})
			// (rs_init_notifies: scripts and FIFOs, no mail, as keepalived)
			n := notify.Notification{Mail: r.alert && !ev.Init}
			reason := ""
			if h := d.health[r.id]; h != nil {
				reason = h.reason
			}
			n.Subject, n.Body = notify.RealServerMail(r.dp.Addr.String(), s.vsLabel, up, reason)
			if up && r.notifyUp != nil {
				n.Scripts = append(n.Scripts, *r.notifyUp)
			}
			if !up && r.notifyDn != nil {
				n.Scripts = append(n.Scripts, *r.notifyDn)
			}
			if len(n.Scripts) > 0 || n.Mail {
				out = append(out, n)
			}
		case health.QuorumUp, health.QuorumDown:
			up := ev.Kind == health.QuorumUp
			d.fifos.LVS("VS " + fifoVS(s) + " " + notify.UpDown(up))
			d.emit(Event{Kind: "QUORUM", Service: api.ServiceID(s.svc.Key), Up: up})
			d.log.Info("quorum "+map[bool]string{true: "up", false: "down"}[up], "vs", s.vsLabel, "live_weight", ev.LiveWeight, "quorum", s.vs.Quorum)
			n := notify.Notification{Mail: s.vs.SMTPAlert != nil && *s.vs.SMTPAlert}
			n.Subject, n.Body = notify.QuorumMail(s.vsLabel, up, ev.LiveWeight, s.vs.Quorum, s.vs.Hysteresis)
			script := s.vs.QuorumDown
			if up {
				script = s.vs.QuorumUp
			}
			if c := scriptCmd(script); c != nil {
				n.Scripts = append(n.Scripts, *c)
			}
			if len(n.Scripts) > 0 || n.Mail {
				out = append(out, n)
			}
		}
	}
	return out
}

// reconcile computes the effective services and applies them.
func (d *Director) reconcile(ctx context.Context) error {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	d.mu.Lock()
	svcs, notes := d.effective()
	routes, since := d.bgpRoutesLocked(svcs)
	fwInsts, fwSvcs, fwOK := d.firewallLocked()
	d.mu.Unlock()
	for _, n := range notes {
		d.notifier.Enqueue(n)
	}
	err := d.dp.Apply(ctx, svcs)
	d.mu.Lock()
	d.applyErr = err
	d.mu.Unlock()
	if fwOK {
		d.setFirewall(fwInsts, fwSvcs)
	}
	// what is announced is what the dataplane balances
	d.setBGPRoutes(routes, since, err == nil)
	return err
}

// Reload re-reads the configuration file. A configuration with errors is
// refused (its diagnostics are returned and logged) and the running state
// is kept; a valid one is applied as a difference.
func (d *Director) Reload(ctx context.Context) error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	// reload_file (the running configuration's): empty while the files
	// are read, removed after, so that a tool that changes them can
	// wait for the reload to have read them
	read := beginReloadFile(d.Config(), d.log)
	cfg, diags := config.Load(d.opts.ConfigFile, &config.ParseOptions{ConfigID: d.opts.ConfigID})
	read()
	for _, dg := range diags {
		if dg.Severity == config.Error {
			d.log.Error("config", "diag", dg.String())
		} else {
			d.log.Warn("config", "diag", dg.String())
		}
	}
	if diags.HasErrors() {
		err := fmt.Errorf("reload refused, running configuration kept: %w", diags.Err())
		d.mu.Lock()
		d.reloadErr = err.Error()
		d.mu.Unlock()
		return err
	}
	prev := d.Config()
	if old := prev.NetNamespace(); cfg.NetNamespace() != old {
		d.log.Warn("net_namespace cannot change on a reload (as in keepalived): govs stays where it runs until it restarts", "running_in", old, "config", cfg.NetNamespace())
	}
	if cfg.InstanceName != prev.InstanceName {
		d.log.Warn("instance cannot change on a reload (as in keepalived): the running name stays until govs restarts", "running", prev.InstanceName, "config", cfg.InstanceName)
		cfg.InstanceName = prev.InstanceName
	}
	// VRRP: checked before anything is applied, put in force after the
	// virtual services (see reloadVRRP)
	var vrrpNext *vrrp.Options
	var vrrpSig string
	if d.node != nil || len(cfg.VRRPInstances) > 0 || len(cfg.Statics) > 0 {
		insts, scripts, groups := vrrpOptions(cfg)
		delays, static := linkDelays(cfg), staticOptions(cfg)
		if vrrpSig = vrrpSignature(insts, scripts, groups, delays, static); vrrpSig != d.vrrpSig {
			if d.node == nil {
				d.log.Warn("vrrp instances added to a govs that runs without VRRP (no VRRP system could be opened at start): they start when govs restarts (virtual services are reloaded now)")
			} else {
				vrrpNext = &vrrp.Options{Instances: insts, Scripts: scripts, SyncGroups: groups, LinkDelays: delays, Static: static}
				if err := vrrp.CheckOptions(*vrrpNext); err != nil {
					err = fmt.Errorf("reload refused, running configuration kept: vrrp: %w", err)
					d.mu.Lock()
					d.reloadErr = err.Error()
					d.mu.Unlock()
					return err
				}
			}
		}
	}
	if err := d.load(cfg); err != nil {
		err = fmt.Errorf("reload refused, running configuration kept: %w", err)
		d.mu.Lock()
		d.reloadErr = err.Error()
		d.mu.Unlock()
		return err
	}
	// after the load: a refused reload writes no file
	initTrackFiles(cfg, false, d.log)
	setProcessName(&cfg.Global, d.log)
	var vrrpErr error
	// new and changed sessions before the node's reload (its instances
	// watch them), removed ones once no instance does: the instances
	// the node runs until its reload succeeds still track them
	newBFD := bfdConfigs(cfg)
	d.configureBFD(keepRunningBFD(newBFD, d.vrrpConfig()))
	if vrrpNext != nil {
		vrrpErr = d.reloadVRRP(ctx, cfg, *vrrpNext, vrrpSig)
	}
	if vrrpErr == nil {
		d.configureBFD(newBFD)
	}
	d.mu.Lock()
	d.reloadErr = ""
	if vrrpErr != nil {
		d.reloadErr = vrrpErr.Error()
	}
	d.mu.Unlock()
	if pg, g := prev.Global, cfg.Global; pg.SNMPVRRP != g.SNMPVRRP || pg.SNMPChecker != g.SNMPChecker || pg.SNMPRFCv2 != g.SNMPRFCv2 || pg.SNMPRFCv3 != g.SNMPRFCv3 || pg.SNMPSocket != g.SNMPSocket || pg.SNMPTraps != g.SNMPTraps {
		d.log.Warn("enable_snmp_* or snmp_socket changed: the SNMP subagent keeps its settings until govs restarts")
	}
	if cfg.Global.FIFOWriteVRRPStatesOnReload && d.node != nil {
		d.writeVRRPStates()
	}
	if d.notifySig != notifySignature(cfg) {
		d.log.Warn("enable_script_security, script_user, router_id, the notification e-mail settings or the notify fifos changed: they take effect when govs restarts")
	}
	d.setTimeouts(cfg.Global.LVSTimeouts)
	d.startSync(cfg)
	changed := startOnlyChanged(d.govs, cfg.Global.Govs)
	if cfg.Global.LVSFlushOnStop != d.flushOnStop {
		changed = append(changed, "lvs_flush_onstop")
	}
	if cfg.SloppyTCP() != d.sloppyTCP {
		// its default follows govs_bgp
		changed = append(changed, "govs_sloppy_tcp")
	}
	if len(changed) > 0 {
		d.log.Warn("global_defs settings changed that govs reads at start: they take effect when govs restarts", "keywords", strings.Join(changed, ","))
	}
	d.log.Info("configuration reloaded", "file", d.opts.ConfigFile, "virtual_servers", len(cfg.VirtualServers))
	d.cfgSyncReloaded(ctx, cfg)
	d.setBGPConfig(ctx, cfg.BGP)
	if err := d.reconcile(ctx); err != nil {
		return errors.Join(vrrpErr, fmt.Errorf("apply reloaded configuration: %w", err))
	}
	return vrrpErr
}

// setTimeouts puts the lvs_timeouts of a reloaded configuration in force
// when the file changed them (timeouts set at run time stay otherwise):
// in a dataplane that can change them while it runs, or else with a
// warning that they wait for a restart.
func (d *Director) setTimeouts(t config.Timeouts) {
	d.tmu.Lock()
	defer d.tmu.Unlock()
	if t == d.fileTimeouts {
		return
	}
	if _, ok := d.dp.(dataplane.TimeoutSetter); !ok {
		d.log.Warn("lvs_timeouts changed: this dataplane takes them when govs restarts", "dataplane", d.opts.DataplaneName)
		return
	}
	if err := d.applyTimeoutsLocked(t); err != nil {
		// fileTimeouts stays: the next reload tries again
		d.log.Error("lvs_timeouts changed but could not be applied: the previous ones stay in force", "err", err)
		return
	}
	d.fileTimeouts = t
}

// applyTimeoutsLocked puts t in force in the dataplane (a
// dataplane.TimeoutSetter). d.tmu is held.
func (d *Director) applyTimeoutsLocked(t config.Timeouts) error {
	if err := d.dp.(dataplane.TimeoutSetter).SetTimeouts(DataplaneTimeouts(t)); err != nil {
		return err
	}
	d.mu.Lock()
	d.timeouts = t
	d.mu.Unlock()
	to := DataplaneTimeouts(t).OrDefault()
	d.log.Info("connection timeouts changed", "tcp", to.TCP, "tcpfin", to.TCPFin, "udp", to.UDP)
	return nil
}

// Stop releases the dataplane: with lvs_flush_onstop the services are
// removed first. It is safe to call more than once.
func (d *Director) Stop(ctx context.Context) error {
	d.rmu.Lock()
	if d.closed {
		d.rmu.Unlock()
		return nil
	}
	d.closed = true
	d.rmu.Unlock()
	var errs []error
	d.stopBGP(ctx)
	d.stopSync()
	d.stopCfgSync()
	if d.flushOnStop {
		if err := d.dp.Apply(ctx, nil); err != nil {
			errs = append(errs, fmt.Errorf("flush services: %w", err))
		}
	}
	if err := d.dp.Close(); err != nil {
		errs = append(errs, err)
	}
	if d.node != nil {
		if err := d.node.RemoveStatic(ctx); err != nil {
			errs = append(errs, fmt.Errorf("static addresses: %w", err))
		}
	}
	// after VRRP: the BFD peers hear AdminDown, not a failure
	d.closeBFD()
	// the instances released their addresses: their rules go
	if d.node != nil {
		d.setFirewall(nil, nil)
	}
	if err := d.fifos.stop(d.log); err != nil {
		errs = append(errs, fmt.Errorf("notify fifos: %w", err))
	}
	return errors.Join(errs...)
}

// Hook is global_defs' startup_script or shutdown_script.
type Hook int

// The hooks.
const (
	StartupHook Hook = iota
	ShutdownHook
)

// RunHook runs cfg's startup_script or shutdown_script and waits for it,
// at most its timeout (keepalived's default 10 s), as the script user
// with script security. `govs run` runs the first before it sets
// anything up and the second after everything stopped, as keepalived
// does. A failure is logged, not fatal.
func RunHook(ctx context.Context, cfg *config.Config, h Hook, log *slog.Logger) {
	g := cfg.Global
	what, s, timeout := "startup_script", g.StartupScript, g.StartupScriptTimeout.D()
	if h == ShutdownHook {
		what, s, timeout = "shutdown_script", g.ShutdownScript, g.ShutdownScriptTimeout.D()
	}
	c := scriptCmd(s)
	if c == nil {
		return
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	runner := &notify.Runner{Security: g.EnableScriptSecurity}
	runner.DefaultUser, runner.DefaultGroup = splitUser(g.ScriptUser)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	start := time.Now()
	if _, err := runner.Run(sctx, *c); err != nil {
		log.Warn(what+" failed", "script", c.String(), "err", err)
		return
	}
	log.Info(what+" ran", "script", c.String(), "took", time.Since(start).Round(time.Millisecond))
}

// estimate updates the rates from the dataplane counters.
func (d *Director) estimate(ctx context.Context) {
	// rates need the counters, not fresh connection counts
	snap, err := d.dp.Stats(dataplane.CountersOnly(ctx))
	if err != nil {
		return
	}
	d.rmu.Lock()
	defer d.rmu.Unlock()
	prev := d.prev
	d.prev = snap
	if prev.Time.IsZero() {
		return
	}
	dt := snap.Time.Sub(prev.Time).Seconds()
	if dt <= 0 {
		return
	}
	old := map[rateKey]dataplane.Counters{}
	for _, s := range prev.Services {
		old[rateKey{svc: s.Key}] = s.Counters
		for _, r := range s.RealServers {
			old[rateKey{s.Key, r.Addr}] = r.Counters
		}
	}
	rate := func(now, before uint64) uint64 {
		if now < before {
			return 0
		}
		return uint64(float64(now-before)/dt + 0.5)
	}
	calc := func(k rateKey, c dataplane.Counters) {
		o := old[k]
		d.rates[k] = rates{rate(c.Conns, o.Conns), rate(c.InPkts, o.InPkts), rate(c.OutPkts, o.OutPkts), rate(c.InBytes, o.InBytes), rate(c.OutBytes, o.OutBytes)}
	}
	clear(d.rates)
	for _, s := range snap.Services {
		calc(rateKey{svc: s.Key}, s.Counters)
		for _, r := range s.RealServers {
			calc(rateKey{s.Key, r.Addr}, r.Counters)
		}
	}
}
