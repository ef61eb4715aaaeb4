package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/dataplane/proxy"
	"github.com/govs/govs/internal/dataplane/xdp"
	"github.com/govs/govs/internal/director"
	"github.com/govs/govs/internal/metrics"
	"github.com/govs/govs/internal/statefiles"
	"github.com/govs/govs/internal/vrrp"
	"github.com/govs/govs/internal/web"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// defaultSocket is where the API listens and the CLI connects by default.
func defaultSocket() string {
	if v := os.Getenv("GOVS_SOCKET"); v != "" {
		return v
	}
	if os.Geteuid() == 0 {
		return config.DefaultAPISocket
	}
	return fmt.Sprintf("%s/govs-%d/govs.sock", os.TempDir(), os.Geteuid())
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("run", "run [-f FILE] [flags]\n\nRun the director: balance the configured virtual services over their\nhealthy real servers. SIGHUP (or govs reload) reloads the configuration;\nSIGTERM/SIGINT stop after a lame-duck period (with govs_bgp, every route is\nwithdrawn first).", stderr)
	file := fs.String("f", DefaultConfig, "configuration `file` (keepalived.conf syntax)")
	dpName := fs.String("dataplane", "", "dataplane: auto, proxy or xdp (ipvs is not built yet; default: the config's govs_dataplane, else auto)")
	var ifaces stringList
	fs.Var(&ifaces, "interface", "interface for the XDP dataplane (repeatable; default: the config's govs_interface)")
	socket := fs.String("api-socket", "", "API unix socket `path` (default: the config's govs_api_socket, else "+defaultSocket()+")")
	listen := fs.String("api-listen", "", "also serve the API on this TCP `address` (default: the config's govs_api_listen)")
	webListen := fs.String("web-listen", "", "serve the web UI on this TCP `address` (default: the config's govs_web_listen; needs govs_web_password)")
	metricsListen := fs.String("metrics-listen", "", "serve Prometheus /metrics on this TCP `address` (default: the config's govs_metrics_listen; /metrics is always on the API socket)")
	logLevel := fs.String("log-level", "", "debug, info, warn or error (default: the config's govs_log_level, else info)")
	lameDuck := fs.Duration("lame-duck", 2*time.Second, "on SIGTERM, keep forwarding this long before stopping (after withdrawing the BGP routes)")
	xdpMode := fs.String("xdp-mode", "", "how the XDP dataplane attaches: native (in the driver) or generic (after the socket buffer is built; any interface, slower) (default: the config's govs_xdp_mode, else native)")
	configID := fs.String("config-id", "", "the `id` the config's conditional lines (@ID, @^ID) are read with, as keepalived's -i (default: the host name up to its first dot)")
	pinPath := fs.String("xdp-pin-path", "", "bpffs directory where the XDP dataplane pins its programs and maps (default "+xdp.DefaultPinPath+")")
	pidFile := fs.String("pid-file", "", "write the process id into this `file`, as keepalived's -p (for scripts and exporters that signal keepalived)")
	snmpAll := fs.Bool("snmp", false, "serve every SNMP MIB govs has (KEEPALIVED-MIB's global, vrrp and check groups, VRRP-MIB, VRRPv3-MIB) over AgentX, as keepalived's -x; without it the config's enable_snmp_* keywords choose")
	stateDir := fs.String("state-dir", statefiles.DefaultDir, "`directory` of keepalived's state files, written on keepalived's signals: keepalived.data and keepalived_check.data on SIGUSR1, keepalived.stats on SIGUSR2 (and on signal 63, which then counts from 0 again), keepalived.json on signal 36 (govs signum)")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "govs run: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *configID == "" {
		// fixed at start, as keepalived's: a later change of the host
		// name does not change what a reload reads
		*configID = config.DefaultConfigID()
	}
	cfg, diags := config.Load(*file, &config.ParseOptions{ConfigID: *configID})
	printDiags := func() {
		for _, d := range diags {
			fmt.Fprintln(stderr, d)
		}
	}
	if diags.HasErrors() {
		printDiags()
		fmt.Fprintf(stderr, "govs run: %s: %d error(s), not starting\n", *file, len(diags.Errors()))
		return 1
	}
	// taken from before the pid file names this process: what a script
	// sends once it can read it is acted on (when the loop below starts)
	// instead of killing govs or going unseen
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, append([]os.Signal{syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT}, stateFileSignals...)...)
	defer signal.Stop(sigs)
	if fi, err := os.Stat(*stateDir); err != nil {
		fmt.Fprintf(stderr, "govs run: --state-dir: %v\n", err)
		return 1
	} else if !fi.IsDir() {
		fmt.Fprintf(stderr, "govs run: --state-dir %s: not a directory\n", *stateDir)
		return 1
	}
	netns := cfg.NetNamespace()
	if netns != "" {
		// as keepalived: the whole of govs runs in that namespace (it
		// starts again there, and prints the warnings then)
		if err := enterNetns(netns); err != nil {
			printDiags()
			fmt.Fprintf(stderr, "govs run: %v\n", err)
			return 1
		}
	}
	// after the namespace's re-exec, which would drop the lock and the
	// signal handlers with the old image
	if *pidFile != "" {
		remove, err := writePidFile(*pidFile)
		if err != nil {
			printDiags()
			fmt.Fprintf(stderr, "govs run: %v\n", err)
			return 1
		}
		defer remove()
	}
	printDiags()
	g := cfg.Global.Govs
	wlisten := *webListen
	if wlisten == "" {
		wlisten = g.WebListen
	} else if g.WebPassword == "" {
		fmt.Fprintf(stderr, "govs run: --web-listen: the web UI needs a password and %s sets none (govs web-password -f %s sets one)\n", *file, *file)
		return 1
	}
	level := slog.LevelInfo
	lv := *logLevel
	if lv == "" {
		lv = g.LogLevel
	}
	if lv != "" {
		if err := level.UnmarshalText([]byte(lv)); err != nil {
			fmt.Fprintf(stderr, "govs run: log level %q: %v\n", lv, err)
			return 2
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if m := cfg.Global.Umask; m != nil {
		setUmask(*m)
	}
	if cfg.Global.NoSwap() {
		// keepalived locks its vrrp, checker or bfd process; govs is one
		if err := lockMemory(); err != nil {
			log.Warn("vrrp_no_swap, checker_no_swap or bfd_no_swap: memory not locked", "err", err)
		} else {
			log.Info("memory locked in RAM (no swap)")
		}
	}
	if len(ifaces) == 0 {
		ifaces = g.Interfaces
	}
	name := *dpName
	if name == "" {
		name = g.Dataplane
	}
	timeouts := director.DataplaneTimeouts(cfg.Global.LVSTimeouts)
	mode, err := xdpModeOf(*xdpMode, g.XDPMode)
	if err != nil {
		fmt.Fprintf(stderr, "govs run: %v\n", err)
		return 2
	}
	// as keepalived: startup_script before anything is set up,
	// shutdown_script once everything stopped (deferred: it runs after
	// the director's Stop at the end), the latter from the configuration
	// in force then (a reload may have changed it)
	director.RunHook(context.Background(), cfg, director.StartupHook, log)
	var d *director.Director
	defer func() {
		final := cfg
		if d != nil {
			final = d.Config()
		}
		director.RunHook(context.Background(), final, director.ShutdownHook, log)
	}()
	// the TCP listeners are bound after startup_script (which may bring
	// their address up) and before the dataplane is opened: an address
	// this host does not have (a VIP, on the backup) or a port in use
	// stops govs here, not with the dataplane attached
	var listens []string
	if *listen != "" {
		listens = append(listens, *listen)
	} else if g.APIListen != "" {
		listens = append(listens, g.APIListen)
	}
	mlisten := *metricsListen
	if mlisten == "" {
		mlisten = g.MetricsListen
	}
	bound := map[string][]net.Listener{}
	defer func() {
		for _, ls := range bound {
			for _, l := range ls {
				l.Close()
			}
		}
	}()
	if wlisten != "" && g.WebTLSCert != "" {
		// a web UI that cannot serve its certificate does not start;
		// the director does (its forwarding does not depend on it)
		if _, err := tls.LoadX509KeyPair(g.WebTLSCert, g.WebTLSKey); err != nil {
			log.Error("the web UI does not start: govs_web_tls", "err", err)
			wlisten = ""
		}
	}
	for _, b := range []struct {
		what  string
		addrs []string
	}{{"api", listens}, {"metrics", []string{mlisten}}, {"web UI", []string{wlisten}}, {"configuration sync", []string{g.ConfigSyncListen}}} {
		for _, a := range b.addrs {
			if a == "" {
				continue
			}
			l, err := net.Listen("tcp", a)
			if err != nil {
				fmt.Fprintf(stderr, "govs run: %s listen %s: %v (an address of this host, or :PORT; not a VIP, which the backup does not hold)\n", b.what, a, err)
				return 1
			}
			bound[b.what] = append(bound[b.what], l)
		}
	}
	pin := *pinPath
	if pin == "" && netns != "" {
		// bpffs is shared by the namespaces: one pin directory each
		pin = xdp.DefaultPinPath + "-" + netnsTag(netns)
	}
	dp, chosen, size, err := openDataplane(name, ifaces, cfg, timeouts, xdpSetup{pin: pin, mode: mode}, log)
	if err != nil {
		fmt.Fprintf(stderr, "govs run: %v\n", err)
		return 1
	}
	// the attach mode the state reports: only with the xdp dataplane
	xdpModeName := ""
	if chosen == "xdp" {
		xdpModeName = mode.String()
	} else if *xdpMode != "" || g.XDPMode != "" {
		log.Warn("xdp mode set but the dataplane is not xdp: it has no effect", "dataplane", chosen)
	}
	// VRRP's system (a netlink handle) is opened even without instances,
	// so that a reload can add some
	var vsys vrrp.System
	if s, err := vrrp.NewLinuxSystem(vrrp.LinuxOptions{Logger: log}); err == nil {
		vsys = s
	} else if len(cfg.VRRPInstances) > 0 || len(cfg.Statics) > 0 {
		dp.Close()
		fmt.Fprintf(stderr, "govs run: vrrp: %v\n", err)
		return 1
	} else {
		log.Warn("vrrp: no system for VRRP: instances added by a reload start only at a restart", "err", err)
	}
	d, err = director.New(cfg, director.Options{
		ConfigFile:    *file,
		ConfigID:      *configID,
		Dataplane:     dp,
		DataplaneName: chosen,
		XDPMode:       xdpModeName,
		Log:           log,
		Version:       version,
		ConnTableSize: size,
		VRRPSystem:    vsys,
	})
	if err != nil {
		dp.Close()
		fmt.Fprintf(stderr, "govs run: %v\n", err)
		return 1
	}
	sock := *socket
	if sock == "" {
		sock = g.APISocket
	}
	if sock == "" {
		sock = defaultSocket()
		if netns != "" && os.Getenv("GOVS_SOCKET") == "" {
			// one govs per namespace, each with its own socket
			sock = strings.TrimSuffix(sock, ".sock") + "-" + netnsTag(netns) + ".sock"
		}
	}
	for _, a := range listens {
		if host, _, err := net.SplitHostPort(a); err != nil || !isLoopback(host) {
			log.Warn("the API on TCP has no authentication: anyone who reaches it can reload, drain and persist weights; bind it to loopback or firewall it", "listen", a)
		}
	}
	if wlisten != "" && g.WebTLSCert == "" {
		if host, _, err := net.SplitHostPort(wlisten); err != nil || !isLoopback(host) {
			log.Warn("the web UI serves plain HTTP on a network address: its password (which runs programs as root through health checks) crosses the network in clear; set govs_web_tls or bind it to loopback and use an SSH tunnel", "listen", wlisten)
		}
	}
	// the unix socket (mode 0600) serves the whole API; TCP listeners,
	// without authentication, serve it without the configuration routes
	newMux := func(apiH http.Handler) *http.ServeMux {
		mux := http.NewServeMux()
		mux.Handle("/api/", apiH)
		mux.Handle("GET /metrics", metrics.Handler(d.State, dp))
		return mux
	}
	srv := &api.Server{Socket: sock, Handler: newMux(api.Handler(d, log)), Log: log}
	var tsrv *api.Server
	if len(listens) > 0 {
		tsrv = &api.Server{Name: "api (TCP, no configuration routes)", Bound: bound["api"], Handler: newMux(api.WithoutConfig(api.Handler(d, log))), Log: log, MaxConns: 256}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dumps := &stateFiles{dir: *stateDir, d: d, log: log}

	log.Info("govs starting", "version", version, "config", *file, "dataplane", chosen, "services", d.DescribeServices())
	grp, gctx := errgroup.WithContext(ctx)
	// before the director runs: its first events are traps too
	if run := snmpSubagent(cfg, *snmpAll, d, log); run != nil {
		grp.Go(func() error { run(gctx); return nil })
	}
	grp.Go(func() error { return d.Run(gctx) })
	grp.Go(func() error { return srv.Run(gctx) })
	var stopping atomic.Bool // no scheduled reload in the lame duck
	grp.Go(func() error {
		rc := &reloadClock{reload: d.Reload, global: func() config.GlobalDefs { return d.Config().Global }, stopping: stopping.Load, log: log, now: time.Now}
		rc.run(gctx)
		return nil
	})
	if tsrv != nil {
		grp.Go(func() error { return tsrv.Run(gctx) })
	}
	if mlisten != "" {
		msrv := &api.Server{Name: "metrics", Bound: bound["metrics"], Handler: metrics.Handler(d.State, dp), Log: log}
		grp.Go(func() error { return msrv.Run(gctx) })
	}
	if g.ConfigSyncListen != "" {
		csrv := &api.Server{Name: "configuration sync", Bound: bound["configuration sync"], Handler: d.ConfigSyncHandler(), Log: log, MaxConns: 16}
		grp.Go(func() error { return csrv.Run(gctx) })
	}
	if wlisten != "" {
		ui := web.New(web.Options{API: api.Handler(d, log), State: d.State, Settings: func() web.Settings { return webSettings(d.Config()) },
			Log: log, Version: version})
		wsrv := &api.Server{Name: "web UI", Bound: bound["web UI"], Handler: ui, Log: log, TLSCert: g.WebTLSCert, TLSKey: g.WebTLSKey,
			MaxConns: 256, Accept: ui.Accept}
		grp.Go(func() error { return wsrv.Run(gctx) })
	}
	grp.Go(func() error {
		for {
			select {
			case <-gctx.Done():
				return nil
			case s := <-sigs:
				if dumps.handle(gctx, s) {
					continue
				}
				if s == syscall.SIGHUP {
					log.Info("SIGHUP: reloading configuration")
					if err := d.Reload(gctx); err != nil {
						log.Error("reload", "err", err)
					}
					continue
				}
				stopping.Store(true)
				log.Info("stopping: lame duck", "signal", s.String(), "for", lameDuck.String())
				if d.WithdrawBGP() {
					log.Info("bgp: every route withdrawn: the routers move new flows to the other directors while this one keeps forwarding for the lame duck")
				}
				if d.HasVRRP() {
					log.Info("stopping vrrp: priority 0 adverts hand the virtual addresses to the peer")
					rctx, rcancel := context.WithTimeout(gctx, 5*time.Second)
					d.Resign(rctx)
					rcancel()
				}
			wait:
				for deadline := time.After(*lameDuck); ; {
					select {
					case <-deadline:
						break wait
					case s2 := <-sigs:
						if dumps.handle(gctx, s2) {
							continue
						}
						if s2 == syscall.SIGHUP {
							log.Info("SIGHUP while stopping: no reload")
							continue
						}
						log.Info("second signal: stopping now")
						break wait
					}
				}
				cancel()
				return nil
			}
		}
	})
	err = grp.Wait()
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if serr := d.Stop(sctx); serr != nil {
		err = errors.Join(err, serr)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Error("govs stopped", "err", err)
		return 1
	}
	log.Info("govs stopped")
	return 0
}

// openDataplane builds the dataplane called name ("" and "auto" choose):
// xdp when it can run (root, interfaces configured), else the userspace
// proxy. It returns the dataplane, the name chosen and the connection
// table size to report.
func openDataplane(name string, ifaces []string, cfg *config.Config, t dataplane.Timeouts, xs xdpSetup, log *slog.Logger) (dataplane.Dataplane, string, int, error) {
	size := cfg.Global.Govs.ConnTableSize
	switch name {
	case "", "auto":
		switch {
		case os.Geteuid() != 0:
			log.Info("dataplane auto: proxy (not root, XDP needs root)")
		case len(ifaces) == 0:
			log.Info("dataplane auto: proxy (no interface configured for XDP: govs_interface or --interface)")
		default:
			err := lockXDP(xs.pin)
			if errors.Is(err, errXDPBusy) {
				return nil, "", 0, err
			}
			if err == nil {
				var dp dataplane.Dataplane
				if dp, err = xdp.New(xdpOptions(ifaces, cfg, t, xs, log)); err == nil {
					log.Info("dataplane auto: xdp", "interfaces", strings.Join(ifaces, ","))
					return dp, "xdp", tableSize(size, xdp.DefaultConnTableSize), nil
				}
				unlockXDP()
			}
			log.Warn("dataplane auto: proxy (XDP cannot attach)", "err", err)
		}
		return openProxy(t, log, size)
	case "proxy":
		return openProxy(t, log, size)
	case "xdp":
		if len(ifaces) == 0 {
			return nil, "", 0, errors.New("dataplane xdp: no interface (set govs_interface in global_defs or pass --interface)")
		}
		if err := lockXDP(xs.pin); err != nil {
			return nil, "", 0, err
		}
		dp, err := xdp.New(xdpOptions(ifaces, cfg, t, xs, log))
		if err != nil {
			return nil, "", 0, fmt.Errorf("dataplane xdp: %w", err)
		}
		return dp, "xdp", tableSize(size, xdp.DefaultConnTableSize), nil
	case "ipvs":
		return nil, "", 0, fmt.Errorf("dataplane ipvs: %w (the kernel IPVS backend is not built yet; use proxy or xdp)", dataplane.ErrNotSupported)
	}
	return nil, "", 0, fmt.Errorf("unknown dataplane %q (auto, proxy, xdp or ipvs)", name)
}

// xdpLock holds the XDP pin directory's lock while govs runs.
var xdpLock *os.File

// errXDPBusy: another govs holds the XDP pin directory.
var errXDPBusy = errors.New("another govs runs the XDP dataplane with these pins")

// lockXDP takes an exclusive lock for the XDP pin directory, before
// anything there is touched: a second govs with the same pins would
// adopt (or, with lvs_flush, remove) the running one's maps and attach
// over its program. The lock file is named for the mount namespace (ip
// netns exec mounts its own bpffs) and the pin path.
func lockXDP(pin string) error {
	if pin == "" {
		pin = xdp.DefaultPinPath
	}
	if abs, err := filepath.Abs(pin); err == nil {
		pin = abs
	}
	mnt, _ := os.Readlink("/proc/self/ns/mnt")
	dir := "/run/govs"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("dataplane xdp: lock: %w", err)
	}
	name := filepath.Join(dir, "xdp-"+url.PathEscape(mnt+pin)+".lock")
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("dataplane xdp: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("dataplane xdp: %w pinned at %s (lock %s held): stop it first, or give this one its own --xdp-pin-path", errXDPBusy, pin, name)
	}
	xdpLock = f
	return nil
}

// unlockXDP lets the lock go (the XDP dataplane did not open).
func unlockXDP() {
	if xdpLock != nil {
		xdpLock.Close()
		xdpLock = nil
	}
}

// xdpSetup is how the XDP dataplane is attached: its bpffs directory
// ("" for the default) and the attach mode.
type xdpSetup struct {
	pin  string
	mode xdp.Mode
}

// xdpModeOf is the attach mode the --xdp-mode flag asks for, else the
// config's govs_xdp_mode, else native. Generic is never chosen silently.
func xdpModeOf(flag, cfg string) (xdp.Mode, error) {
	v, from := flag, "--xdp-mode"
	if v == "" {
		v, from = cfg, "govs_xdp_mode"
	}
	switch v {
	case "", "native":
		return xdp.Native, nil
	case "generic":
		return xdp.Generic, nil
	}
	return xdp.Native, fmt.Errorf("%s %q: must be native or generic", from, v)
}

// xdpOptions maps the configuration onto the XDP dataplane: the pinned
// program keeps forwarding across a restart of govs unless
// lvs_flush_onstop asks for a clean stop. Source-NAT pools travel with
// each service (dataplane.Service.SourcePool), not here.
func xdpOptions(ifaces []string, cfg *config.Config, t dataplane.Timeouts, xs xdpSetup, log *slog.Logger) xdp.Options {
	pin := xs.pin
	if cfg.Global.LVSFlush {
		// lvs_flush: start from an empty table instead of adopting the
		// connections a previous govs left pinned.
		p := pin
		if p == "" {
			p = xdp.DefaultPinPath
		}
		if err := xdp.RemovePinned(p); err != nil {
			log.Warn("lvs_flush: removing pinned XDP state", "path", p, "err", err)
		} else {
			log.Info("lvs_flush: pinned XDP state removed", "path", p)
		}
	}
	o := xdp.Options{
		PinPath:       pin,
		Interfaces:    ifaces,
		Mode:          xs.mode,
		Logger:        log,
		Timeouts:      t,
		ConnTableSize: cfg.Global.Govs.ConnTableSize,
		KeepOnClose:   !cfg.Global.LVSFlushOnStop,
		SloppyTCP:     cfg.SloppyTCP(),
	}
	for _, m := range cfg.Global.Govs.Masquerade {
		if p, err := netip.ParsePrefix(m); err == nil {
			o.Masquerade = append(o.Masquerade, p)
		}
	}
	return o
}

func openProxy(t dataplane.Timeouts, log *slog.Logger, size int) (dataplane.Dataplane, string, int, error) {
	dp, err := proxy.New(proxy.Options{Logger: log, Timeouts: t})
	if err != nil {
		return nil, "", 0, fmt.Errorf("dataplane proxy: %w", err)
	}
	return dp, "proxy", tableSize(size, 4096), nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

func tableSize(configured, def int) int {
	if configured > 0 {
		return configured
	}
	return def
}

// webSettings are the web UI's settings in the configuration that runs.
func webSettings(cfg *config.Config) web.Settings {
	g := cfg.Global.Govs
	allow, err := web.ParseAllow(g.WebAllow)
	// validated with the configuration; if it were not, nobody gets in
	return web.Settings{PasswordHash: g.WebPassword, Allow: allow, DenyAll: err != nil}
}
