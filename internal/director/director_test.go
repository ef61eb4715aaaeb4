package director

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/bfd"
	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/health"
	"github.com/govs/govs/internal/notify"
	"github.com/govs/govs/internal/vrrp"
)

// fakeDP records what the director applies.
type fakeDP struct {
	mu      sync.Mutex
	applied [][]dataplane.Service
	closed  bool
}

func (f *fakeDP) Apply(_ context.Context, s []dataplane.Service) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, s)
	return nil
}

func (f *fakeDP) last() []dataplane.Service {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.applied) == 0 {
		return nil
	}
	return f.applied[len(f.applied)-1]
}

func (f *fakeDP) Stats(context.Context) (dataplane.Snapshot, error) {
	return dataplane.Snapshot{Time: time.Now()}, nil
}
func (f *fakeDP) Conns(context.Context, func(dataplane.Conn) bool) error { return nil }

// ImportConns takes nothing (the xdp dataplane's connection sync).
func (f *fakeDP) ImportConns(context.Context, []dataplane.Conn) (int, error) { return 0, nil }
func (f *fakeDP) Close() error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	return nil
}

// fakeHealth makes every check of a target pass or fail on demand.
type fakeHealth struct {
	mu   sync.Mutex
	down map[netip.AddrPort]bool
}

func (h *fakeHealth) set(a string, up bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.down[netip.MustParseAddrPort(a)] = !up
}

func (h *fakeHealth) newChecker(s health.Spec) (health.Checker, error) {
	return health.CheckerFunc(func(ctx context.Context) health.Result {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.down[s.Target] {
			return health.Result{Err: errors.New("connect: connection refused")}
		}
		return health.Result{}
	}), nil
}

type fixture struct {
	t    *testing.T
	dp   *fakeDP
	hc   *fakeHealth
	d    *Director
	file string
	log  *logBuf
}

// logBuf is the director's log, for tests that look at what it says.
type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// timeoutDP is a fakeDP that takes new timeouts while it runs
// (dataplane.TimeoutSetter), or refuses them with fail.
type timeoutDP struct {
	fakeDP
	set  []dataplane.Timeouts
	fail error
}

func (f *timeoutDP) SetTimeouts(t dataplane.Timeouts) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.set = append(f.set, t)
	return nil
}

func (f *timeoutDP) sets() []dataplane.Timeouts {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.set)
}

func start(t *testing.T, conf string) *fixture {
	t.Helper()
	return startOn(t, conf, nil)
}

// startOn is start with td as the dataplane (a plain fakeDP when nil).
func startOn(t *testing.T, conf string, td *timeoutDP) *fixture {
	t.Helper()
	return startFull(t, conf, td, "")
}

// startFull is startOn with the config-id the file is read with.
func startFull(t *testing.T, conf string, td *timeoutDP, configID string) *fixture {
	t.Helper()
	f := &fixture{t: t, dp: &fakeDP{}, hc: &fakeHealth{down: map[netip.AddrPort]bool{}}, log: &logBuf{}}
	var dp dataplane.Dataplane = f.dp
	if td != nil {
		f.dp, dp = &td.fakeDP, td
	}
	f.file = filepath.Join(t.TempDir(), "govs.conf")
	if err := os.WriteFile(f.file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, ds := config.Load(f.file, &config.ParseOptions{ConfigID: configID})
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	log := slog.New(slog.NewTextHandler(f.log, nil))
	d, err := New(cfg, Options{ConfigFile: f.file, ConfigID: configID, Dataplane: dp, NewChecker: f.hc.newChecker, RateInterval: time.Hour, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	f.d = d
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		d.Stop(context.Background())
	})
	f.waitFor("first apply", func(s []dataplane.Service) bool { return s != nil })
	return f
}

// waitFor polls the last applied state until ok (bounded).
func (f *fixture) waitFor(what string, ok func([]dataplane.Service) bool) []dataplane.Service {
	f.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if s := f.dp.last(); ok(s) {
			return s
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.t.Fatalf("%s: never happened; last applied %+v", what, f.dp.last())
	return nil
}

func weights(s dataplane.Service) map[string]int {
	m := map[string]int{}
	for _, r := range s.RealServers {
		m[r.Addr.String()] = r.Weight
	}
	return m
}

const base = `
virtual_server 192.0.2.10 80 {
    lb_algo wrr
    delay_loop 0.05
    %s
    real_server 10.0.0.1 8080 {
        weight 3
        TCP_CHECK {
            connect_timeout 0.05
            retry 0
        }
    }
    real_server 10.0.0.2 8080 {
        weight 2
        TCP_CHECK {
            connect_timeout 0.05
            retry 0
        }
    }
}
`

func conf(extra string) string {
	return fmtConf(base, extra)
}

func fmtConf(f, extra string) string {
	out := ""
	for i := 0; i < len(f); i++ {
		if f[i] == '%' && i+1 < len(f) && f[i+1] == 's' {
			out += extra
			i++
			continue
		}
		out += string(f[i])
	}
	return out
}

func TestFailedServerRemovedThenBack(t *testing.T) {
	f := start(t, conf(""))
	s := f.dp.last()
	if len(s) != 1 || s[0].Key.String() != "TCP  192.0.2.10:80" || s[0].Scheduler != "wrr" {
		t.Fatalf("applied %+v", s)
	}
	if w := weights(s[0]); w["10.0.0.1:8080"] != 3 || w["10.0.0.2:8080"] != 2 {
		t.Fatalf("weights %v", w)
	}
	f.hc.set("10.0.0.2:8080", false)
	f.waitFor("removal", func(s []dataplane.Service) bool { return len(s) == 1 && len(s[0].RealServers) == 1 })
	st, _ := f.d.State(context.Background())
	for _, r := range st.Services[0].RealServers {
		if r.Addr == "10.0.0.2:8080" && (r.Healthy || r.InPool || r.Reason == "") {
			t.Errorf("down server state %+v", r)
		}
	}
	f.hc.set("10.0.0.2:8080", true)
	f.waitFor("re-entry", func(s []dataplane.Service) bool { return len(s) == 1 && len(s[0].RealServers) == 2 })
}

func TestInhibitOnFailure(t *testing.T) {
	f := start(t, conf("inhibit_on_failure"))
	f.hc.set("10.0.0.1:8080", false)
	s := f.waitFor("inhibit", func(s []dataplane.Service) bool {
		return len(s) == 1 && len(s[0].RealServers) == 2 && weights(s[0])["10.0.0.1:8080"] == 0
	})
	if weights(s[0])["10.0.0.2:8080"] != 2 {
		t.Errorf("healthy server weight %v", weights(s[0]))
	}
}

func TestSorryServerAndQuorum(t *testing.T) {
	f := start(t, conf("sorry_server 10.0.0.9 8080\n    quorum 4"))
	// Both up: live weight 5 ≥ quorum 4.
	if s := f.dp.last(); s[0].Sorry != nil || len(s[0].RealServers) != 2 {
		t.Fatalf("initial %+v", s[0])
	}
	// One down: live weight 3 < 4 → quorum lost, sorry server takes over.
	f.hc.set("10.0.0.2:8080", false)
	s := f.waitFor("sorry", func(s []dataplane.Service) bool { return s[0].Sorry != nil })
	if s[0].Sorry.Addr.String() != "10.0.0.9:8080" {
		t.Errorf("sorry = %v", s[0].Sorry)
	}
	st, _ := f.d.State(context.Background())
	if st.Services[0].QuorumUp || !st.Services[0].SorryActive {
		t.Errorf("state quorum_up=%v sorry=%v", st.Services[0].QuorumUp, st.Services[0].SorryActive)
	}
	f.hc.set("10.0.0.2:8080", true)
	f.waitFor("quorum back", func(s []dataplane.Service) bool { return s[0].Sorry == nil && len(s[0].RealServers) == 2 })
}

func TestRuntimeChanges(t *testing.T) {
	f := start(t, conf(""))
	ctx := context.Background()
	zero := 0
	if err := f.d.ChangeRealServer(ctx, api.RealServerChange{Service: "tcp/192.0.2.10:80", Server: "10.0.0.1:8080", Weight: &zero}); err != nil {
		t.Fatal(err)
	}
	if w := weights(f.dp.last()[0]); w["10.0.0.1:8080"] != 0 || len(w) != 2 {
		t.Errorf("drain: %v", w)
	}
	off, on := false, true
	if err := f.d.ChangeRealServer(ctx, api.RealServerChange{Service: "tcp/192.0.2.10:80", Server: "10.0.0.2:8080", Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	if w := weights(f.dp.last()[0]); len(w) != 1 {
		t.Errorf("disable: %v", w)
	}
	if err := f.d.ChangeService(ctx, api.ServiceChange{Service: "tcp/192.0.2.10:80", Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	if s := f.dp.last(); len(s) != 0 {
		t.Errorf("service disabled but applied: %+v", s)
	}
	if err := f.d.ChangeService(ctx, api.ServiceChange{Service: "tcp/192.0.2.10:80", Enabled: &on}); err != nil {
		t.Fatal(err)
	}
	if s := f.dp.last(); len(s) != 1 {
		t.Errorf("service re-enabled: %+v", s)
	}
	// Errors name what is wrong.
	for _, tt := range []struct {
		c    api.RealServerChange
		want error
	}{
		{api.RealServerChange{Service: "tcp/192.0.2.10:81", Server: "10.0.0.1:8080", Weight: &zero}, api.ErrNotFound},
		{api.RealServerChange{Service: "tcp/192.0.2.10:80", Server: "10.0.0.7:8080", Weight: &zero}, api.ErrNotFound},
		{api.RealServerChange{Service: "bogus", Server: "10.0.0.1:8080", Weight: &zero}, api.ErrBadRequest},
		{api.RealServerChange{Service: "tcp/192.0.2.10:80", Server: "10.0.0.1:8080"}, api.ErrBadRequest},
	} {
		if err := f.d.ChangeRealServer(ctx, tt.c); !errors.Is(err, tt.want) {
			t.Errorf("%+v: err %v, want %v", tt.c, err, tt.want)
		}
	}
	big := 70000
	if err := f.d.ChangeRealServer(ctx, api.RealServerChange{Service: "tcp/192.0.2.10:80", Server: "10.0.0.1:8080", Weight: &big}); !errors.Is(err, api.ErrBadRequest) {
		t.Errorf("weight 70000: %v", err)
	}
}

func TestPersistWeight(t *testing.T) {
	f := start(t, "# operator comment\n"+conf(""))
	five := 5
	if err := f.d.ChangeRealServer(context.Background(), api.RealServerChange{Service: "tcp/192.0.2.10:80", Server: "10.0.0.2:8080", Weight: &five, Persist: true}); err != nil {
		t.Fatal(err)
	}
	cfg, ds := config.Load(f.file, nil)
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	if w := cfg.VirtualServers[0].RealServers[1].Weight; w != 5 {
		t.Errorf("persisted weight %d", w)
	}
	b, _ := os.ReadFile(f.file)
	if string(b[:19]) != "# operator comment\n" {
		t.Errorf("comment lost:\n%s", b)
	}
}

func TestReload(t *testing.T) {
	f := start(t, conf(""))
	ctx := context.Background()
	// A broken file is refused; the running services stay.
	os.WriteFile(f.file, []byte("virtual_server 192.0.2.10 80 {\n    lb_algo nope\n"), 0o644)
	n := len(f.dp.applied)
	if err := f.d.Reload(ctx); err == nil {
		t.Fatal("broken reload accepted")
	}
	if len(f.dp.applied) != n {
		t.Errorf("refused reload applied something")
	}
	st, _ := f.d.State(ctx)
	if st.LastReloadError == "" || len(st.Services) != 1 {
		t.Errorf("state after refused reload: %+v", st)
	}
	// A valid reload adds a service and keeps the first one unchanged.
	two := conf("") + "virtual_server 192.0.2.10 443 {\n    real_server 10.0.0.1 8443 {\n    }\n}\n"
	os.WriteFile(f.file, []byte(two), 0o644)
	if err := f.d.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	s := f.dp.last()
	if len(s) != 2 || s[0].Key.Port != 80 || s[1].Key.Port != 443 || len(s[0].RealServers) != 2 {
		t.Fatalf("after reload: %+v", s)
	}
	st, _ = f.d.State(ctx)
	if st.LastReloadError != "" {
		t.Errorf("reload error kept: %s", st.LastReloadError)
	}
}

// TestReloadStartOnlySettings: govs run reads the govs_ settings of
// global_defs once; a reload that changes them applies the services
// and says which keywords wait for a restart.
func TestReloadStartOnlySettings(t *testing.T) {
	f := start(t, "global_defs {\n    govs_xdp_mode native\n    govs_interface eth0\n}\n"+conf(""))
	ctx := context.Background()
	two := "global_defs {\n    govs_xdp_mode generic\n    govs_interface eth0 eth1\n}\n" + conf("") +
		"virtual_server 192.0.2.10 443 {\n    real_server 10.0.0.1 8443 {\n    }\n}\n"
	os.WriteFile(f.file, []byte(two), 0o644)
	if err := f.d.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if s := f.dp.last(); len(s) != 2 {
		t.Fatalf("services after reload: %+v", s)
	}
	if log := f.log.String(); !strings.Contains(log, "take effect when govs restarts") || !strings.Contains(log, "keywords=govs_interface,govs_xdp_mode") {
		t.Errorf("reload log does not name the start-only keywords:\n%s", log)
	}
	// the same settings again: nothing to say
	os.WriteFile(f.file, []byte("global_defs {\n    govs_xdp_mode native\n    govs_interface eth0\n}\n"+conf("")), 0o644)
	before := strings.Count(f.log.String(), "keywords=")
	if err := f.d.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(f.log.String(), "keywords="); n != before {
		t.Errorf("a reload to the settings govs started with warned again:\n%s", f.log.String())
	}
}

// TestReloadTimeouts: lvs_timeouts changed by a reload are put in force
// in a dataplane that takes them (ipvsadm --set), and the state shows the
// timeouts in force, also when the dataplane refuses them or cannot take
// them; lvs_flush_onstop is named as waiting for a restart.
func TestReloadTimeouts(t *testing.T) {
	ctx := context.Background()
	timeouts := func(f *fixture) api.Timeouts {
		t.Helper()
		st, err := f.d.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.Timeouts
	}
	reload := func(f *fixture, global string) {
		t.Helper()
		if err := os.WriteFile(f.file, []byte("global_defs {\n"+global+"}\n"+conf("")), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := f.d.Reload(ctx); err != nil {
			t.Fatal(err)
		}
	}
	td := &timeoutDP{}
	f := startOn(t, "global_defs {\n    lvs_timeouts tcp 600\n}\n"+conf(""), td)
	if got, want := timeouts(f), (api.Timeouts{TCP: 600, TCPFin: 120, UDP: 300}); got != want {
		t.Errorf("timeouts at start: %+v, want %+v", got, want)
	}
	reload(f, "    lvs_timeouts tcp 100 tcpfin 10 udp 20\n")
	want := []dataplane.Timeouts{{TCP: 100 * time.Second, TCPFin: 10 * time.Second, UDP: 20 * time.Second}}
	if got := td.sets(); !slices.Equal(got, want) {
		t.Errorf("timeouts set: %+v, want %+v", got, want)
	}
	if got, want := timeouts(f), (api.Timeouts{TCP: 100, TCPFin: 10, UDP: 20}); got != want {
		t.Errorf("timeouts after reload: %+v, want %+v", got, want)
	}
	// at run time (ipvsadm --set): 0 keeps a value
	if err := f.d.SetTimeouts(ctx, api.Timeouts{UDP: 7}); err != nil {
		t.Fatal(err)
	}
	want = append(want, dataplane.Timeouts{TCP: 100 * time.Second, TCPFin: 10 * time.Second, UDP: 7 * time.Second})
	if got := td.sets(); !slices.Equal(got, want) {
		t.Errorf("timeouts set: %+v, want %+v", got, want)
	}
	for _, bad := range []api.Timeouts{{UDP: -1}, {TCP: api.MaxTimeout + 1}} {
		if err := f.d.SetTimeouts(ctx, bad); !errors.Is(err, api.ErrBadRequest) {
			t.Errorf("timeouts %+v: err %v, want a bad request", bad, err)
		}
	}
	reload(f, "    lvs_timeouts tcp 100 tcpfin 10 udp 20\n") // the file unchanged: the run-time ones stay
	if got, want := timeouts(f), (api.Timeouts{TCP: 100, TCPFin: 10, UDP: 7}); got != want {
		t.Errorf("timeouts after a reload of the same file: %+v, want the run-time %+v", got, want)
	}
	reload(f, "") // removed from the file: the defaults
	want = append(want, dataplane.Timeouts{})
	if got := td.sets(); !slices.Equal(got, want) {
		t.Errorf("timeouts set: %+v, want %+v", got, want)
	}
	if got, want := timeouts(f), (api.Timeouts{TCP: 900, TCPFin: 120, UDP: 300}); got != want {
		t.Errorf("timeouts after removal: %+v, want %+v", got, want)
	}
	td.mu.Lock()
	td.fail = errors.New("map update failed")
	td.mu.Unlock()
	reload(f, "    lvs_timeouts udp 5\n")
	if got, want := timeouts(f), (api.Timeouts{TCP: 900, TCPFin: 120, UDP: 300}); got != want {
		t.Errorf("timeouts after a refused change: %+v, want the previous %+v", got, want)
	}
	if !strings.Contains(f.log.String(), "could not be applied") || !strings.Contains(f.log.String(), "map update failed") {
		t.Errorf("a refused timeout change is not logged:\n%s", f.log.String())
	}
	// the same file again, the dataplane taking them now: applied
	td.mu.Lock()
	td.fail = nil
	td.mu.Unlock()
	reload(f, "    lvs_timeouts udp 5\n")
	if got, want := timeouts(f), (api.Timeouts{TCP: 900, TCPFin: 120, UDP: 5}); got != want {
		t.Errorf("timeouts after a reload that retried a refused change: %+v, want %+v", got, want)
	}
	reload(f, "    lvs_flush_onstop\n")
	if !strings.Contains(f.log.String(), "keywords=lvs_flush_onstop") {
		t.Errorf("a changed lvs_flush_onstop is not named as waiting for a restart:\n%s", f.log.String())
	}

	// a dataplane that cannot change them: a warning, the old ones shown
	g := start(t, conf(""))
	reload(g, "    lvs_timeouts udp 5\n")
	if got, want := timeouts(g), (api.Timeouts{TCP: 900, TCPFin: 120, UDP: 300}); got != want {
		t.Errorf("timeouts of a dataplane without SetTimeouts: %+v, want %+v", got, want)
	}
	if !strings.Contains(g.log.String(), "lvs_timeouts changed: this dataplane takes them when govs restarts") {
		t.Errorf("no warning for timeouts a dataplane cannot change:\n%s", g.log.String())
	}
	if err := g.d.SetTimeouts(ctx, api.Timeouts{UDP: 5}); !errors.Is(err, api.ErrBadRequest) {
		t.Errorf("run-time timeouts in a dataplane that cannot change them: err %v, want a bad request", err)
	}
}

func TestStartOnlyChanged(t *testing.T) {
	a := config.GovsGlobal{Dataplane: "xdp", Interfaces: []string{"eth0"}, ConnTableSize: 1 << 20}
	if got := startOnlyChanged(a, a); len(got) != 0 {
		t.Errorf("same settings: %q", got)
	}
	b := a
	b.Interfaces = []string{"eth0", "eth1"}
	b.ConnTableSize = 1 << 21
	b.Masquerade = []string{"10.0.0.0/24"}
	got := strings.Join(startOnlyChanged(a, b), ",")
	if got != "govs_interface,govs_conn_table_size,govs_masquerade" {
		t.Errorf("changed: %s", got)
	}
	// every govs_ setting is compared: a field added to GovsGlobal and
	// left out of startOnlyChanged fails here
	v := reflect.ValueOf(&b).Elem()
	for i := 0; i < v.NumField(); i++ {
		b = config.GovsGlobal{}
		switch f := v.Field(i); f.Kind() {
		case reflect.String:
			f.SetString("x")
		case reflect.Int:
			f.SetInt(1)
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{"x"}))
		case reflect.Pointer:
			f.Set(reflect.New(f.Type().Elem()))
		default:
			t.Fatalf("GovsGlobal.%s: kind %s not covered by this test", v.Type().Field(i).Name, f.Kind())
		}
		if name := v.Type().Field(i).Name; name == "WebPassword" || name == "WebAllow" || name == "ConfigSyncPeers" || name == "ConfigSyncSecret" || name == "SloppyTCP" {
			// the web UI and the configuration sync read these when
			// they use them; Reload compares SloppyTCP's effective
			// value (its default follows govs_bgp)
			if len(startOnlyChanged(config.GovsGlobal{}, b)) != 0 {
				t.Errorf("GovsGlobal.%s is taken at a reload but startOnlyChanged reports it", name)
			}
			continue
		}
		if len(startOnlyChanged(config.GovsGlobal{}, b)) != 1 {
			t.Errorf("GovsGlobal.%s changed is not reported by startOnlyChanged", v.Type().Field(i).Name)
		}
	}
}

func TestServiceShapes(t *testing.T) {
	cfg, ds := config.LoadBytes("t.conf", []byte(`
virtual_server_group G {
    192.0.2.1-2 80
    fwmark 7
}
virtual_server group G {
    lvs_method DR
    real_server 10.0.0.1 {
    }
}
virtual_server 192.0.2.5 21,10000-10010 {
    protocol TCP UDP
    persistence_timeout 60
    persistence_granularity 255.255.255.0
    real_server 10.0.0.2 {
    }
}
`), nil)
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	specs, err := buildSpecs(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, s := range specs {
		keys = append(keys, s.svc.Key.String())
	}
	want := []string{"TCP  192.0.2.1:80", "TCP  192.0.2.2:80", "FWM  7", "TCP  192.0.2.5:21", "UDP  192.0.2.5:21"}
	if len(keys) != len(want) {
		t.Fatalf("keys %q", keys)
	}
	for i := range want {
		if keys[i] != want[i] {
			t.Errorf("key %d = %q, want %q", i, keys[i], want[i])
		}
	}
	ftp := specs[3].svc
	if len(ftp.Ports) != 2 || ftp.Ports[1] != (dataplane.PortRange{From: 10000, To: 10010}) || ftp.PersistMask != 24 || ftp.Persistence != time.Minute {
		t.Errorf("multi-port service %+v", ftp)
	}
	if specs[0].reals[0].dp.Addr.String() != "10.0.0.1:80" || specs[0].reals[0].dp.Method != dataplane.DR {
		t.Errorf("group real server %+v", specs[0].reals[0].dp)
	}
	if specs[0].reals[0].id != specs[1].reals[0].id {
		t.Errorf("group entries must share one health check per real server")
	}
}

// TestFileCheckWeight: a FILE_CHECK's weight reaches the check as
// written, 0 included (0: any non-zero value fails the server), and an
// absent one leaves the multiplier unset (1).
func TestFileCheckWeight(t *testing.T) {
	for _, c := range []struct {
		line string
		want *int
	}{{"", nil}, {"weight 0", new(0)}, {"weight -3 reverse", new(-3)}} {
		src := "track_file tf {\n    file /run/tf\n}\nvirtual_server 192.0.2.10 80 {\n    real_server 10.0.0.1 80 {\n        FILE_CHECK {\n            track_file tf\n            " + c.line + "\n        }\n    }\n}\n"
		cfg, ds := config.LoadBytes("t.conf", []byte(src), nil)
		if ds.HasErrors() {
			t.Fatalf("%q: %v", c.line, ds.Err())
		}
		vs := cfg.VirtualServers[0]
		rs := vs.RealServers[0]
		sp := checkSpec(vs, rs, rs.Checks[0], 80)
		got := sp.File.Weight
		if (got == nil) != (c.want == nil) || got != nil && *got != *c.want {
			t.Errorf("%q: weight %v, want %v", c.line, fmtIntPtr(got), fmtIntPtr(c.want))
		}
	}
}

// TestVirtualRouteTypes: virtual_routes' route types and scope reach the
// VRRP instance as written (unreachable and prohibit were installed as
// blackhole, and scope was dropped).
func TestVirtualRouteTypes(t *testing.T) {
	src := "vrrp_instance V {\n    interface eth0\n    virtual_router_id 1\n    virtual_ipaddress {\n        10.0.0.100\n    }\n    virtual_routes {\n        unreachable 192.0.2.0/24\n        prohibit 192.0.2.128/25\n        blackhole 203.0.113.0/24\n        198.51.100.0/24 dev eth0 scope link table 7\n    }\n}\n"
	cfg := mustLoad(t, src)
	insts, _, _ := vrrpOptions(cfg)
	var got []string
	for _, r := range insts[0].VirtualRoutes {
		got = append(got, fmt.Sprintf("%s %s %s %d", r.Dst, r.Type, r.Scope, r.Table))
	}
	want := []string{"192.0.2.0/24 unreachable  0", "192.0.2.128/25 prohibit  0", "203.0.113.0/24 blackhole  0", "198.51.100.0/24  link 7"}
	if !slices.Equal(got, want) {
		t.Errorf("routes %q, want %q", got, want)
	}
}

// TestInitFile: init_file writes its value into a missing track file at
// start, overwrite replaces an existing one at start only, and a reload
// creates a missing one without touching an existing one.
func TestInitFile(t *testing.T) {
	dir := t.TempDir()
	missing, kept, over := filepath.Join(dir, "missing"), filepath.Join(dir, "kept"), filepath.Join(dir, "over")
	os.WriteFile(kept, []byte("7\n"), 0o644)
	os.WriteFile(over, []byte("7\n"), 0o644)
	tf := func(name, file, init string) string {
		return "track_file " + name + " {\n    file " + file + "\n    init_file " + init + "\n}\n"
	}
	f := start(t, tf("a", missing, "3")+tf("b", kept, "5")+tf("c", over, "-2 overwrite")+conf(""))
	read := func(p string) string {
		b, _ := os.ReadFile(p)
		return string(b)
	}
	if got := read(missing) + read(kept) + read(over); got != "3\n7\n-2\n" {
		t.Errorf("files after start: %q, want missing 3, kept 7, overwritten -2", got)
	}
	os.WriteFile(over, []byte("9\n"), 0o644)
	os.Remove(missing)
	if err := f.d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := read(missing) + read(over); got != "3\n9\n" {
		t.Errorf("files after a reload: %q, want the missing one created again and the operator's 9 kept", got)
	}
}

// TestTimeoutBounds: run-time timeouts take the bound the file's have.
func TestTimeoutBounds(t *testing.T) {
	if api.MaxTimeout != config.MaxDurationSeconds {
		t.Errorf("api.MaxTimeout %d, config.MaxDurationSeconds %d: a timeout the file takes must be settable at run time and back", api.MaxTimeout, config.MaxDurationSeconds)
	}
}

// TestTrackProcessOptions: vrrp_track_process blocks reach the VRRP
// instances: the block's weight unless the track_process line gives one,
// and a sync group's lines on every member with the group's weight.
func TestTrackProcessOptions(t *testing.T) {
	src := `vrrp_track_process hap {
    process haproxy -Ws
    param_match partial
    weight -20 reverse
    quorum 2
    quorum_max 3
    fork_delay 1.5
    terminate_delay 4
}
vrrp_sync_group G {
    group {
        A
    }
    track_process {
        hap
    }
}
vrrp_instance A {
    interface eth0
    virtual_router_id 1
    virtual_ipaddress {
        10.0.0.100
    }
    track_process {
        hap
        hap weight 7
    }
}
`
	cfg := mustLoad(t, src)
	insts, _, _ := vrrpOptions(cfg)
	m := vrrp.ProcessMatch{Process: "haproxy", FullCommand: true, Params: []string{"-Ws"}, ParamMatch: "partial",
		Quorum: 2, QuorumMax: 3, HasQuorumMax: true, ForkDelay: 1500 * time.Millisecond, TerminateDelay: 4 * time.Second}
	want := []vrrp.TrackProcess{
		// the block's weight (the second line, "hap weight 7", is a
		// duplicate keepalived 2.2.7 ignores; the sync group's, the
		// block's too, is merged into the first, as keepalived adds it)
		{Name: "hap", Weight: -20, Reverse: true, Match: m},
	}
	if got := insts[0].TrackProcesses; !reflect.DeepEqual(got, want) {
		t.Errorf("track processes\n got %+v\nwant %+v", got, want)
	}

	// the kernel name without arguments; quorum 1 by default; quorum_max
	// 0: up while none runs
	// arguments without param_match: exactly; full_command alone: any
	src = "vrrp_track_process a {\n    process nginx\n}\nvrrp_track_process b {\n    process /usr/bin/x\n    full_command\n    quorum_max 0\n}\n" +
		"vrrp_track_process c {\n    process /usr/bin/y -f z\n}\n" +
		"vrrp_instance A {\n    interface eth0\n    virtual_router_id 1\n    virtual_ipaddress {\n        10.0.0.100\n    }\n    track_process {\n        a\n        b\n        c\n    }\n}\n"
	cfg = mustLoad(t, src)
	insts, _, _ = vrrpOptions(cfg)
	want = []vrrp.TrackProcess{
		{Name: "a", Match: vrrp.ProcessMatch{Process: "nginx", Quorum: 1}},
		{Name: "b", Match: vrrp.ProcessMatch{Process: "/usr/bin/x", FullCommand: true, Quorum: 0, QuorumMax: 0, HasQuorumMax: true}},
		{Name: "c", Match: vrrp.ProcessMatch{Process: "/usr/bin/y", FullCommand: true, Params: []string{"-f", "z"}, ParamMatch: "exact", Quorum: 1}},
	}
	if got := insts[0].TrackProcesses; !reflect.DeepEqual(got, want) {
		t.Errorf("track processes\n got %+v\nwant %+v", got, want)
	}
}

// TestUnicastPeerChecks: check_unicast_src and the peers' min_ttl/max_ttl
// reach the VRRP instance, a missing bound taking keepalived's default.
func TestUnicastPeerChecks(t *testing.T) {
	src := "vrrp_instance A {\n    interface eth0\n    virtual_router_id 1\n    check_unicast_src\n    unicast_peer {\n        10.0.0.2 min_ttl 250\n        10.0.0.3 max_ttl 64\n        10.0.0.4\n    }\n    virtual_ipaddress {\n        10.0.0.100\n    }\n}\n"
	cfg := mustLoad(t, src)
	insts, _, _ := vrrpOptions(cfg)
	ic := insts[0]
	want := []vrrp.PeerTTL{{Addr: netip.MustParseAddr("10.0.0.2"), Min: 250, Max: 255}, {Addr: netip.MustParseAddr("10.0.0.3"), Min: 0, Max: 64}}
	if !ic.CheckUnicastSrc || len(ic.UnicastPeers) != 3 || !reflect.DeepEqual(ic.UnicastPeerTTL, want) {
		t.Errorf("check %v, peers %v, TTL ranges %+v; want true, 3 peers, %+v", ic.CheckUnicastSrc, ic.UnicastPeers, ic.UnicastPeerTTL, want)
	}
	if err := ic.Validate(); err != nil {
		t.Error(err)
	}
	// a TTL range turns the source check on, as in keepalived
	cfg = mustLoad(t, strings.Replace(src, "    check_unicast_src\n", "", 1))
	if insts, _, _ := vrrpOptions(cfg); !insts[0].CheckUnicastSrc {
		t.Error("min_ttl/max_ttl did not turn check_unicast_src on")
	}
	bad := strings.Replace(src, "10.0.0.2 min_ttl 250", "10.0.0.2 min_ttl 250 max_ttl 100", 1)
	if _, ds := config.LoadBytes("t.conf", []byte(bad), nil); !ds.HasErrors() || !strings.Contains(ds.Err().Error(), "min_ttl 250 is more than max_ttl 100") {
		t.Errorf("min_ttl over max_ttl: %v", ds.Err())
	}
}

// TestVirtualRulesOptions: virtual_rules reach the VRRP instance with
// their table names resolved.
func TestVirtualRulesOptions(t *testing.T) {
	src := "vrrp_instance A {\n    interface eth0\n    virtual_router_id 1\n    virtual_ipaddress {\n        10.0.0.100\n    }\n    virtual_rules {\n        not from 10.1.0.0/16 to 10.2.0.0/16 lookup main priority 50 fwmark 3/0xf tos 8 iif eth0 oif eth1 ipproto udp sport 53 dport 1000-2000\n    }\n}\n"
	cfg := mustLoad(t, src)
	insts, _, _ := vrrpOptions(cfg)
	want := []vrrp.VirtualRule{{From: netip.MustParsePrefix("10.1.0.0/16"), To: netip.MustParsePrefix("10.2.0.0/16"), Not: true,
		Table: 254, Priority: 50, FWMark: 3, FWMask: 0xf, HasMask: true, Tos: 8, Iif: "eth0", Oif: "eth1", IPProto: 17,
		Sport: [2]uint16{53, 53}, Dport: [2]uint16{1000, 2000}}}
	if got := insts[0].VirtualRules; !reflect.DeepEqual(got, want) {
		t.Errorf("rules\n got %+v\nwant %+v", got, want)
	}
	if err := insts[0].Validate(); err != nil {
		t.Error(err)
	}
}

// TestVRRPNotification: a change of state runs its notify_* script, the
// notify script with keepalived's arguments and the mail; a priority
// change in the same state (notify_priority_changes) the notify script
// alone, with the new priority.
func TestVRRPNotification(t *testing.T) {
	nf := config.Notifiers{Master: &config.Script{Cmd: "/bin/m"}, Any: &config.Script{Cmd: "/bin/n x"}}
	describe := func(n notify.Notification) string {
		var s []string
		for _, c := range n.Scripts {
			s = append(s, c.Path+" "+strings.Join(c.Args, " "))
		}
		return fmt.Sprintf("%q mail %v", s, n.Mail)
	}
	note, ok := vrrpNotification(nf, vrrp.NotifyEvent{Type: "INSTANCE", Name: "VI_1", State: vrrp.StateMaster, Priority: 150, SMTPAlert: true})
	if want := `["/bin/m " "/bin/n x INSTANCE VI_1 MASTER 150"] mail true`; !ok || describe(note) != want {
		t.Errorf("state change: %s, want %s", describe(note), want)
	}
	note, ok = vrrpNotification(nf, vrrp.NotifyEvent{Type: "INSTANCE", Name: "VI_1", State: vrrp.StateMaster, Priority: 130, SMTPAlert: true, PriorityChange: true})
	if want := `["/bin/n x INSTANCE VI_1 MASTER 130"] mail false`; !ok || describe(note) != want {
		t.Errorf("priority change: %s, want %s", describe(note), want)
	}
	if _, ok := vrrpNotification(config.Notifiers{Master: nf.Master}, vrrp.NotifyEvent{Type: "INSTANCE", Name: "VI_1", State: vrrp.StateMaster, PriorityChange: true}); ok {
		t.Error("a priority change without a notify script has something to do")
	}
	// notify_master_rx_lower_pri: its script alone, without arguments
	nf.MasterRxLowerPri = &config.Script{Cmd: "/bin/rx"}
	note, ok = vrrpNotification(nf, vrrp.NotifyEvent{Type: "INSTANCE", Name: "VI_1", State: vrrp.StateMaster, Priority: 150, SMTPAlert: true, RxLowerPri: true})
	if want := `["/bin/rx "] mail false`; !ok || describe(note) != want {
		t.Errorf("lower priority advert: %s, want %s", describe(note), want)
	}
	// an instance a reload deleted: FAULT (notify_fault), or DELETED
	// with notify_deleted (its script if it has one)
	del := vrrp.NotifyEvent{Type: "INSTANCE", Name: "VI_1", State: vrrp.StateStop, Priority: 150, Deleted: true}
	nf.Fault, nf.Stop = &config.Script{Cmd: "/bin/f"}, &config.Script{Cmd: "/bin/s"}
	for _, tc := range []struct {
		deleted *config.Script
		state   string
		want    string
	}{
		{nil, "FAULT", `["/bin/n x INSTANCE VI_1 FAULT 150"] mail false`},
		{&config.Script{}, "DELETED", `["/bin/n x INSTANCE VI_1 DELETED 150"] mail false`},
		{&config.Script{Cmd: "/bin/d"}, "DELETED", `["/bin/d " "/bin/n x INSTANCE VI_1 DELETED 150"] mail false`},
	} {
		nf.Deleted = tc.deleted
		note, ok = vrrpNotification(nf, del)
		if st := notifiedState(nf, del); st != tc.state || !ok || describe(note) != tc.want {
			t.Errorf("deleted (notify_deleted %v): %s %s, want %s %s", tc.deleted, st, describe(note), tc.state, tc.want)
		}
	}
	del.SMTPAlert = true
	if note, _ := vrrpNotification(nf, del); note.Mail {
		t.Error("a deletion sends a mail")
	}
	cfg := mustLoad(t, "vrrp_instance A {\n    interface eth0\n    virtual_router_id 1\n    notify_deleted\n    virtual_ipaddress {\n        10.0.0.1\n    }\n}\n"+
		"vrrp_instance B {\n    interface eth0\n    virtual_router_id 2\n    notify_deleted \"/bin/d x\" root\n    virtual_ipaddress {\n        10.0.0.2\n    }\n}\n")
	if a, b := cfg.VRRPInstances[0].Notify.Deleted, cfg.VRRPInstances[1].Notify.Deleted; a == nil || a.Cmd != "" || b == nil || b.Cmd != "/bin/d x" || b.User != "root" {
		t.Errorf("notify_deleted read as %+v and %+v", a, b)
	}
	if f := string(config.Format(cfg)); !strings.Contains(f, "    notify_deleted\n") || !strings.Contains(f, `notify_deleted "/bin/d x" root`) {
		t.Errorf("Format:\n%s", f)
	}
}

// TestGNAInterval: an IPv4 instance's announcements are paced by
// vrrp_garp_interval, an IPv6 one's by vrrp_gna_interval, as keepalived
// paces gratuitous ARPs and neighbour advertisements.
func TestGNAInterval(t *testing.T) {
	src := "global_defs {\n    vrrp_garp_interval 0.01\n    vrrp_gna_interval 0.02\n}\n" +
		"vrrp_instance A {\n    interface eth0\n    virtual_router_id 1\n    virtual_ipaddress {\n        10.0.0.100\n    }\n}\n" +
		"vrrp_instance B {\n    interface eth0\n    virtual_router_id 2\n    virtual_ipaddress {\n        2001:db8::100\n    }\n}\n"
	cfg, ds := config.LoadBytes("t.conf", []byte(src), nil)
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	for _, d := range ds {
		if strings.Contains(d.Msg, "gna") {
			t.Errorf("unexpected diagnostic %v", d)
		}
	}
	insts, _, _ := vrrpOptions(cfg)
	ka, a := insts[0].GARPPace("eth0", false)
	kb, b := insts[1].GARPPace("eth0", true)
	if a != 10*time.Millisecond || b != 20*time.Millisecond {
		t.Errorf("intervals %v (IPv4) and %v (IPv6), want 10ms and 20ms", a, b)
	}
	// one pace per interface and family, whichever instance sends
	if kb2, _ := insts[0].GARPPace("eth0", true); kb2 != kb || ka == kb {
		t.Errorf("paces %q, %q, %q", ka, kb, kb2)
	}
}

// TestGARPGroupPace: the interfaces of one garp_group share a pace (the
// first group that lists an interface), other interfaces each their own
// with the global intervals; a VMAC interface keeps its base's.
func TestGARPGroupPace(t *testing.T) {
	src := "global_defs {\n    vrrp_garp_interval 0.1\n}\n" +
		"garp_group {\n    garp_interval 0.3\n    interfaces {\n        eth1\n        eth2\n    }\n}\n" +
		"garp_group {\n    garp_interval 0.5\n    interface eth2\n}\n" +
		"vrrp_instance A {\n    interface eth1\n    virtual_router_id 1\n    use_vmac\n    virtual_ipaddress {\n        10.0.0.1\n        10.0.3.1/24 dev eth3\n    }\n}\n"
	cfg, ds := config.LoadBytes("t.conf", []byte(src), nil)
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	insts, _, _ := vrrpOptions(cfg)
	ic := insts[0]
	k1, d1 := ic.GARPPace("eth1", false)
	k2, d2 := ic.GARPPace("eth2", false)
	kv, dv := ic.GARPPace(ic.VMAC, false)
	k3, d3 := ic.GARPPace("eth3", false)
	if d1 != 300*time.Millisecond || d2 != d1 || k1 != k2 || kv != k1 || dv != d1 {
		t.Errorf("eth1 %q %v, eth2 %q %v, vmac %q %v: want one pace of 300ms", k1, d1, k2, d2, kv, dv)
	}
	if d3 != 100*time.Millisecond || k3 == k1 {
		t.Errorf("eth3 %q %v: want its own pace of 100ms", k3, d3)
	}
}

// TestRxLowerPriDetached: notify_master_rx_lower_pri runs apart from the
// notification queue (this director's queue is not even running), and
// while an instance's run goes on, the next ones are skipped.
func TestRxLowerPriDetached(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs")
	script := filepath.Join(dir, "rx.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho x >> "+runs+"\nsleep 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 1\n    virtual_ipaddress {\n        10.0.0.100\n    }\n    notify_master_rx_lower_pri " + script + "\n}\n"
	cfg := mustLoad(t, src)
	d, err := New(cfg, Options{Dataplane: &fakeDP{}})
	if err != nil {
		t.Fatal(err)
	}
	n := vrrpNotifier{d}
	ev := vrrp.NotifyEvent{Type: "INSTANCE", Name: "VI_1", State: vrrp.StateMaster, Priority: 100, RxLowerPri: true}
	count := func() int {
		b, _ := os.ReadFile(runs)
		return strings.Count(string(b), "x")
	}
	for range 5 {
		n.Notify(context.Background(), ev)
	}
	deadline := time.Now().Add(5 * time.Second)
	for count() < 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // the run is over
	if c := count(); c != 1 {
		t.Fatalf("%d runs for five adverts during one run, want 1", c)
	}
	n.Notify(context.Background(), ev)
	for count() < 2 && time.Now().Before(deadline.Add(5*time.Second)) {
		time.Sleep(20 * time.Millisecond)
	}
	if c := count(); c != 2 {
		t.Fatalf("%d runs after the first ended, want 2", c)
	}
	// let the last run end before the test does
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		d.mu.Lock()
		busy := len(d.rxLowerRunning)
		d.mu.Unlock()
		if busy == 0 {
			break
		}
	}
}

func TestUseVMACOptions(t *testing.T) {
	src := "vrrp_instance A {\n    interface eth0\n    virtual_router_id 5\n    use_vmac\n    virtual_ipaddress {\n        10.0.0.100\n    }\n}\n" +
		"vrrp_instance B {\n    interface eth1\n    virtual_router_id 6\n    use_vmac 02:11:22:33:44:55 gw6\n    vmac_xmit_base\n    virtual_ipaddress {\n        2001:db8::100\n    }\n}\n" +
		"vrrp_instance C {\n    interface eth1\n    virtual_router_id 7\n    virtual_ipaddress {\n        10.0.0.101\n    }\n}\n"
	cfg, ds := config.LoadBytes("t.conf", []byte(src), nil)
	if ds.HasErrors() || len(ds) != 0 {
		t.Fatalf("diagnostics: %v", ds)
	}
	insts, _, _ := vrrpOptions(cfg)
	a, b, c := insts[0], insts[1], insts[2]
	if a.VMAC != "vrrp.5" || a.VMACXmitBase || a.VirtualMAC().String() != "00:00:5e:00:01:05" {
		t.Errorf("A: %q %v %s", a.VMAC, a.VMACXmitBase, a.VirtualMAC())
	}
	if b.VMAC != "gw6" || !b.VMACXmitBase || b.VirtualMAC().String() != "02:11:22:33:44:55" {
		t.Errorf("B: %q %v %s", b.VMAC, b.VMACXmitBase, b.VirtualMAC())
	}
	if b.VMACAddr = nil; b.VirtualMAC().String() != "00:00:5e:00:02:06" {
		t.Errorf("B's default IPv6 virtual MAC %s", b.VirtualMAC())
	}
	if c.VMAC != "" {
		t.Errorf("C without use_vmac: %q", c.VMAC)
	}
	cfg, ds = config.LoadBytes("t.conf", []byte("global_defs {\n    vmac_prefix gw\n}\n"+src), nil)
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	if insts, _, _ := vrrpOptions(cfg); insts[0].VMAC != "gw.5" || insts[1].VMAC != "gw6" {
		t.Errorf("with vmac_prefix gw: %q and %q", insts[0].VMAC, insts[1].VMAC)
	}
}

// TestNotifyFIFO: with lvs_notify_fifo and notify_fifo, a real server
// going down and up and the quorum falling are written, in order, as
// keepalived's lines, to both; the FIFOs govs made are removed at stop.
func TestNotifyFIFO(t *testing.T) {
	dir := t.TempDir()
	all, lvs := filepath.Join(dir, "all"), filepath.Join(dir, "lvs")
	f := start(t, "global_defs {\n    notify_fifo "+all+"\n    lvs_notify_fifo "+lvs+"\n}\n"+conf("quorum 4"))
	read := func(path string) *bufio.Reader {
		r, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return bufio.NewReader(r)
	}
	ra, rl := read(all), read(lvs)
	f.hc.set("10.0.0.1:8080", false)
	f.waitFor("removal", func(s []dataplane.Service) bool { return len(s) == 1 && len(s[0].RealServers) == 1 })
	f.hc.set("10.0.0.1:8080", true)
	f.waitFor("re-entry", func(s []dataplane.Service) bool { return len(s) == 1 && len(s[0].RealServers) == 2 })
	want := []string{
		"RS [10.0.0.1]:tcp:8080 [192.0.2.10]:tcp:80 DOWN",
		"VS [192.0.2.10]:tcp:80 DOWN",
		"RS [10.0.0.1]:tcp:8080 [192.0.2.10]:tcp:80 UP",
		"VS [192.0.2.10]:tcp:80 UP",
	}
	for _, r := range []*bufio.Reader{ra, rl} {
		for _, w := range want {
			line, err := r.ReadString('\n')
			if err != nil || strings.TrimSuffix(line, "\n") != w {
				t.Fatalf("fifo line %q (%v), want %q", line, err, w)
			}
		}
	}
	if got := vrrpFIFOLine("INSTANCE", "VI_1", "MASTER", 150, false, false); got != `INSTANCE "VI_1" MASTER 150` {
		t.Errorf("instance line %q", got)
	}
	if got := vrrpFIFOLine("GROUP", "G", "BACKUP", 100, false, false); got != `GROUP "G" BACKUP 0` {
		t.Errorf("group line %q", got)
	}
	if got := vrrpFIFOLine("INSTANCE", "VI_1", "BACKUP", 90, false, true); got != `INSTANCE "VI_1" BACKUP_PRIORITY 90` {
		t.Errorf("priority line %q", got)
	}
	if got := vrrpFIFOLine("INSTANCE", "VI_1", "MASTER", 90, true, false); got != `INSTANCE "VI_1" MASTER_RX_LOWER_PRI 90` {
		t.Errorf("rx lower pri line %q", got)
	}
	f.d.Stop(context.Background())
	for _, p := range []string{all, lvs} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left after stop: %v", p, err)
		}
	}
}

// TestNotifyFIFOScript: lvs_notify_fifo_script without lvs_notify_fifo
// reads a FIFO govs makes in the temporary directory, given as its
// argument.
func TestNotifyFIFOScript(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	script := filepath.Join(dir, "reader.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec cat \"$1\" > "+out+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	f := start(t, "global_defs {\n    lvs_notify_fifo_script "+script+"\n}\n"+conf(""))
	time.Sleep(200 * time.Millisecond) // the reader opens the FIFO
	f.hc.set("10.0.0.2:8080", false)
	f.waitFor("removal", func(s []dataplane.Service) bool { return len(s) == 1 && len(s[0].RealServers) == 1 })
	want := "RS [10.0.0.2]:tcp:8080 [192.0.2.10]:tcp:80 DOWN\n"
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(out)
		if string(b) == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the script read %q, want %q", b, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStartupShutdownScripts: RunHook runs startup_script and
// shutdown_script and waits for them; a script over its timeout is
// killed and only logged.
func TestStartupShutdownScripts(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "log")
	hook := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	up := hook("up.sh", "echo up >> "+out)
	down := hook("down.sh", "echo down >> "+out+"; sleep 5; echo late >> "+out)
	cfg, ds := config.LoadBytes("t.conf", []byte("global_defs {\n    startup_script "+up+"\n    shutdown_script "+down+"\n    shutdown_script_timeout 0.3\n}\n"), nil)
	if ds.HasErrors() || len(ds) != 0 {
		t.Fatalf("diagnostics %v", ds)
	}
	var buf logBuf
	log := slog.New(slog.NewTextHandler(&buf, nil))
	RunHook(context.Background(), cfg, StartupHook, log)
	if b, _ := os.ReadFile(out); string(b) != "up\n" {
		t.Fatalf("after startup_script the log holds %q", b)
	}
	begin := time.Now()
	RunHook(context.Background(), cfg, ShutdownHook, log)
	if took := time.Since(begin); took > 3*time.Second {
		t.Fatalf("shutdown_script took %v with a 0.3 s timeout", took)
	}
	if b, _ := os.ReadFile(out); string(b) != "up\ndown\n" {
		t.Fatalf("after shutdown_script the log holds %q", b)
	}
	if !strings.Contains(buf.String(), "shutdown_script failed") || !strings.Contains(buf.String(), "startup_script ran") {
		t.Fatalf("log:\n%s", buf.String())
	}
}

// TestVRRPGlobalInstanceDefaults: the instances get global_defs'
// vrrp_garp_* and vrrp_*_advert values where they set none, their own
// where they do, and a repeat of 0 stays 0 through the VRRP defaults.
func TestVRRPGlobalInstanceDefaults(t *testing.T) {
	src := "global_defs {\n    vrrp_garp_master_delay 0\n    vrrp_garp_lower_prio_repeat 0\n    vrrp_lower_prio_no_advert\n    vrrp_check_unicast_src\n}\n" +
		"vrrp_instance A {\n    interface eth0\n    virtual_router_id 1\n    unicast_peer {\n        10.0.0.2\n    }\n    virtual_ipaddress {\n        10.0.0.100\n    }\n}\n" +
		"vrrp_instance B {\n    interface eth0\n    virtual_router_id 2\n    garp_master_delay 3\n    garp_lower_prio_repeat 2\n    lower_prio_no_advert off\n    virtual_ipaddress {\n        10.0.0.101\n    }\n}\n"
	cfg := mustLoad(t, src)
	insts, _, _ := vrrpOptions(cfg)
	a, b := insts[0].WithDefaults(), insts[1].WithDefaults()
	if a.GARPMasterDelay != 0 || a.GARPLowerPrioRepeat != 0 || a.GARPLowerPrioDelay != 0 || !a.LowerPrioNoAdvert || !a.CheckUnicastSrc {
		t.Errorf("A: delay %v, lower prio repeat %d delay %v, lower_prio_no_advert %v, check_unicast_src %v",
			a.GARPMasterDelay, a.GARPLowerPrioRepeat, a.GARPLowerPrioDelay, a.LowerPrioNoAdvert, a.CheckUnicastSrc)
	}
	if b.GARPMasterDelay != 3*time.Second || b.GARPLowerPrioRepeat != 2 || b.LowerPrioNoAdvert || b.CheckUnicastSrc {
		t.Errorf("B: delay %v, lower prio repeat %d, lower_prio_no_advert %v, check_unicast_src %v",
			b.GARPMasterDelay, b.GARPLowerPrioRepeat, b.LowerPrioNoAdvert, b.CheckUnicastSrc)
	}
}

// TestStaticDefaultInterface: static addresses, and static routes with
// neither dev nor via, go on the global default_interface, else eth0 as
// in keepalived.
func TestStaticDefaultInterface(t *testing.T) {
	body := "static_ipaddress {\n    10.0.0.5/24\n    10.0.0.6/24 dev eth1\n}\nstatic_routes {\n    10.1.0.0/16\n    10.2.0.0/16 via 10.0.0.254\n}\n"
	for _, tt := range []struct{ global, want string }{
		{"global_defs {\n    default_interface bond0\n}\n", "bond0"},
		{"", "eth0"},
	} {
		cfg, ds := config.LoadBytes("t.conf", []byte(tt.global+body), nil)
		if ds.HasErrors() {
			t.Fatal(ds.Err())
		}
		st := staticOptions(cfg)
		got := []string{st.Addresses[0].Dev, st.Addresses[1].Dev, st.Routes[0].Dev, st.Routes[1].Dev}
		if want := []string{tt.want, "eth1", tt.want, ""}; !slices.Equal(got, want) {
			t.Errorf("%q: devices %q, want %q", tt.global, got, want)
		}
	}
}

// TestRulePrioritiesMapped: rules without a priority reach VRRP with
// keepalived's numbers, statics and instances from one count.
func TestRulePrioritiesMapped(t *testing.T) {
	src := "static_rules {\n    from 10.0.0.0/8 table 100\n}\n" +
		"vrrp_instance A {\n    interface eth0\n    virtual_router_id 1\n    virtual_ipaddress {\n        10.0.0.100\n    }\n    virtual_rules {\n        from 10.1.0.0/16 table 101\n        from 10.2.0.0/16 table 102 priority 7\n    }\n}\n"
	cfg := mustLoad(t, src)
	insts, _, _ := vrrpOptions(cfg)
	st := staticOptions(cfg)
	got := []int{st.Rules[0].Priority, insts[0].VirtualRules[0].Priority, insts[0].VirtualRules[1].Priority}
	if want := []int{16384, 16383, 7}; !slices.Equal(got, want) {
		t.Errorf("priorities %v, want %v", got, want)
	}
}

// TestAuthMapping: auth_type AH and PASS reach VRRP for IPv4 VRRPv2 with
// a password; without one, with VRRPv3 or for IPv6 the block is ignored
// (as keepalived does); an AH instance's state MASTER starts as BACKUP
// unless it is the address owner (state MASTER without a priority is
// priority 255).
func TestAuthMapping(t *testing.T) {
	inst := func(name, vrid, extra, vip string) string {
		return "vrrp_instance " + name + " {\n    interface eth0\n    virtual_router_id " + vrid + "\n    state MASTER\n" + extra +
			"    virtual_ipaddress {\n        " + vip + "\n    }\n}\n"
	}
	src := inst("AH", "1", "    priority 100\n    authentication {\n        auth_type AH\n        auth_pass s3cret\n    }\n", "10.0.0.1") +
		inst("AHOWNER", "6", "    authentication {\n        auth_type AH\n        auth_pass s3cret\n    }\n", "10.0.0.6") +
		inst("NOPASS", "2", "    authentication {\n        auth_type AH\n    }\n", "10.0.0.2") +
		inst("V3", "3", "    version 3\n    authentication {\n        auth_type AH\n        auth_pass x\n    }\n", "10.0.0.3") +
		inst("V6", "4", "    authentication {\n        auth_type AH\n        auth_pass x\n    }\n", "2001:db8::4") +
		inst("PASS", "5", "    authentication {\n        auth_type PASS\n        auth_pass p\n    }\n", "10.0.0.5")
	cfg := mustLoad(t, src)
	insts, _, _ := vrrpOptions(cfg)
	var got []string
	for _, ic := range insts {
		got = append(got, fmt.Sprintf("%s:%v:%q:%s", ic.Name, ic.AuthAH, ic.AuthPass, ic.State))
	}
	want := []string{`AH:true:"s3cret":BACKUP`, `AHOWNER:true:"s3cret":MASTER`, `NOPASS:false:"":MASTER`, `V3:false:"":MASTER`, `V6:false:"":MASTER`, `PASS:false:"p":MASTER`}
	if !slices.Equal(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

// TestFamilyByInstance: an instance with no virtual_ipaddress takes its
// family from its source (here IPv6), and so is VRRPv3, which needs one
// (refused, as keepalived does); with one, the IPv6 group and
// vrrp_gna_interval apply.
func TestFamilyByInstance(t *testing.T) {
	src := "global_defs {\n    vrrp_gna_interval 0.02\n    vrrp_mcast_group6 ff02::99\n}\n" +
		"vrrp_instance A {\n    interface eth0\n    virtual_router_id 1\n    mcast_src_ip 2001:db8::1\n    virtual_ipaddress_excluded {\n        2001:db8::100\n    }\n}\n"
	_, ds := config.LoadBytes("t.conf", []byte(src), nil)
	if err := ds.Err(); err == nil || !strings.Contains(err.Error(), `vrrp_instance "A": VRRPv3 needs at least one virtual_ipaddress`) {
		t.Fatalf("an IPv6 instance without virtual_ipaddress: %v", err)
	}
	src = strings.Replace(src, "virtual_ipaddress_excluded", "virtual_ipaddress", 1)
	cfg := mustLoad(t, src)
	insts, _, _ := vrrpOptions(cfg)
	if ic := insts[0]; ic.MulticastGroup != netip.MustParseAddr("ff02::99") {
		t.Errorf("group %v", ic.MulticastGroup)
	} else if _, d := ic.GARPPace("eth0", true); d != 20*time.Millisecond {
		t.Errorf("interval %v", d)
	}
}

// TestStrictOptions: strict mode reaches VRRP as keepalived applies it:
// the initial state by priority, no preempt_delay, authentication or
// vmac_xmit_base, the lower-priority settings forced, and no_accept for
// every instance but the address owner and a VRRPv3 one with accept.
func TestStrictOptions(t *testing.T) {
	inst := func(name, vrid, extra string) string {
		return "vrrp_instance " + name + " {\n    interface eth0\n    virtual_router_id " + vrid + "\n" + extra +
			"    virtual_ipaddress {\n        10.0.0." + vrid + "\n    }\n}\n"
	}
	src := "global_defs {\n    vrrp_strict\n}\n" +
		inst("A", "1", "    state MASTER\n    priority 150\n    preempt_delay 3\n    use_vmac\n    vmac_xmit_base\n    higher_prio_send_advert\n    authentication {\n        auth_type PASS\n        auth_pass p\n    }\n") +
		inst("OWNER", "2", "    state BACKUP\n    priority 255\n") +
		inst("V3", "3", "    version 3\n    accept\n") +
		inst("LOOSE", "4", "    strict_mode off\n    preempt_delay 3\n    no_accept\n")
	cfg := mustLoad(t, src)
	insts, _, _ := vrrpOptions(cfg)
	var got []string
	for _, ic := range insts {
		got = append(got, fmt.Sprintf("%s:%s:%d:%v:%q:%v:%v:%v:%d:%v", ic.Name, ic.State, ic.Priority, ic.PreemptDelay, ic.AuthPass,
			ic.VMACXmitBase, ic.NoAccept, ic.LowerPrioNoAdvert, ic.GARPLowerPrioRepeat, ic.HigherPrioSendAdvert))
	}
	want := []string{
		`A:BACKUP:150:0s:"":false:true:true:0:false`,
		`OWNER:MASTER:255:0s:"":false:false:true:0:false`,
		`V3:BACKUP:100:0s:"":false:false:true:0:false`,
		`LOOSE::100:3s:"":false:true:false:5:false`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

// TestTrackBFDMapping: a track_bfd line takes its bfd_instance's weight
// unless it gives one; a sync group's apply to its members with weight
// 0 unless given, and one a member tracks with a weight takes the
// group's (keepalived 2.2.7's add_vrrp_to_track_bfd); the sessions keep
// their settings.
func TestTrackBFDMapping(t *testing.T) {
	src := "bfd_instance R {\n    neighbor_ip 10.0.0.254\n    weight -20 reverse\n    min_rx 50\n    ttl 254\n}\n" +
		"bfd_instance S {\n    neighbor_ip 10.0.0.253\n}\n" +
		"vrrp_sync_group G {\n    group {\n        A\n    }\n    sync_group_tracking_weight\n    track_bfd {\n        S\n    }\n}\n" +
		"vrrp_instance A {\n    interface eth0\n    virtual_router_id 1\n    track_bfd {\n        R\n        S weight 5\n    }\n    virtual_ipaddress {\n        10.0.0.100\n    }\n}\n"
	cfg := mustLoad(t, src)
	insts, _, _ := vrrpOptions(cfg)
	got := fmt.Sprint(insts[0].TrackBFDs)
	if want := "[{R -20 true} {S 0 false}]"; got != want {
		t.Errorf("track_bfd %s, want %s", got, want)
	}
	bc := bfdConfigs(cfg)
	if len(bc) != 2 || bc[0].MinRx != 50*time.Millisecond || bc[0].TTL != 254 || bc[1].TTL != 0 {
		t.Errorf("sessions %+v", bc)
	}
}

// TestKeepRunningBFD: a reload keeps, until the VRRP part reloaded, the
// dropped sessions the running instances and groups track, not the
// others, and not one whose neighbor a new session has.
func TestKeepRunningBFD(t *testing.T) {
	src := "bfd_instance T {\n    neighbor_ip 10.0.0.1\n}\nbfd_instance G {\n    neighbor_ip 10.0.0.2\n}\nbfd_instance U {\n    neighbor_ip 10.0.0.3\n}\n" +
		"bfd_instance M {\n    neighbor_ip 10.0.0.4\n}\n" +
		"vrrp_sync_group SG {\n    group {\n        A\n    }\n    track_bfd {\n        G\n    }\n}\n" +
		"vrrp_instance A {\n    interface eth0\n    virtual_router_id 1\n    track_bfd {\n        T\n        M\n    }\n    virtual_ipaddress {\n        10.0.0.100\n    }\n}\n"
	running := mustLoad(t, src)
	// the new configuration keeps nothing but a session to M's neighbor
	next := []bfd.Config{{Name: "M2", Peer: netip.MustParseAddr("10.0.0.4")}}
	var got []string
	for _, c := range keepRunningBFD(next, running) {
		got = append(got, c.Name)
	}
	if want := []string{"M2", "T", "G"}; !slices.Equal(got, want) {
		t.Errorf("sessions during the reload %v, want %v", got, want)
	}
}

// mustLoad loads a configuration text that must have no error.
func mustLoad(t *testing.T, src string) *config.Config {
	t.Helper()
	cfg, ds := config.LoadBytes("t.conf", []byte(src), nil)
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	return cfg
}

// TestInstanceGroupTimerPromote: mcast_dst_ip, down_timer_adverts (and
// the global vrrp_down_timer_adverts), promote_secondaries and a
// tracker's explicit noreverse reach the VRRP instances.
func TestInstanceGroupTimerPromote(t *testing.T) {
	src := "global_defs {\n    vrrp_down_timer_adverts 5\n}\nvrrp_script chk {\n    script /bin/true\n}\n" +
		"vrrp_instance A {\n    interface eth0\n    virtual_router_id 1\n    mcast_dst_ip 224.0.0.99\n    down_timer_adverts 7\n    promote_secondaries\n" +
		"    track_script {\n        chk weight 10 noreverse\n    }\n    virtual_ipaddress {\n        10.0.0.100\n    }\n}\n" +
		"vrrp_instance B {\n    interface eth0\n    virtual_router_id 2\n    virtual_ipaddress {\n        10.0.0.101\n    }\n}\n"
	cfg := mustLoad(t, src)
	insts, _, _ := vrrpOptions(cfg)
	a, b := insts[0], insts[1]
	if a.MulticastGroup != netip.MustParseAddr("224.0.0.99") || a.DownTimerAdverts != 7 || !a.PromoteSecondaries ||
		len(a.TrackScripts) != 1 || a.TrackScripts[0].Reverse || a.TrackScripts[0].Weight != 10 {
		t.Errorf("A: group %v, down timer %d, promote %v, track %+v", a.MulticastGroup, a.DownTimerAdverts, a.PromoteSecondaries, a.TrackScripts)
	}
	if b.MulticastGroup.IsValid() || b.DownTimerAdverts != 5 || b.PromoteSecondaries {
		t.Errorf("B: group %v, down timer %d, promote %v", b.MulticastGroup, b.DownTimerAdverts, b.PromoteSecondaries)
	}
	// the writer keeps them
	var got strings.Builder
	for _, f := range []string{"mcast_dst_ip 224.0.0.99", "down_timer_adverts 7", "promote_secondaries", "vrrp_down_timer_adverts 5"} {
		if !strings.Contains(string(config.Format(cfg)), f) {
			got.WriteString(f + "; ")
		}
	}
	if got.Len() > 0 {
		t.Errorf("Format lost: %s", got.String())
	}
	if _, ds := config.LoadBytes("t.conf", []byte("vrrp_instance V {\n    interface eth0\n    virtual_router_id 9\n    mcast_src_ip fe80::1\n    mcast_dst_ip 224.0.0.50\n}\n"), nil); ds.Err() == nil || !strings.Contains(ds.Err().Error(), "mcast_dst_ip 224.0.0.50 is not of the instance's address family") {
		t.Errorf("an IPv6 instance without addresses and an IPv4 group: %v", ds.Err())
	}
	for _, bad := range []string{"mcast_dst_ip 10.0.0.1", "down_timer_adverts 101", "mcast_dst_ip ff02::99"} {
		_, ds := config.LoadBytes("t.conf", []byte(strings.Replace(src, "promote_secondaries", bad, 1)), nil)
		if ds.Err() == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// TestVirtualhostOrder: an HTTP check's Host is its own virtualhost,
// else its real server's, else its virtual server's (keepalived's order).
func TestVirtualhostOrder(t *testing.T) {
	src := "virtual_server 192.0.2.10 80 {\n    virtualhost vs.example\n" +
		"    real_server 10.0.0.1 80 {\n        virtualhost rs.example\n        HTTP_GET {\n            url {\n                path /\n            }\n        }\n        HTTP_GET {\n            virtualhost ck.example\n            url {\n                path /\n            }\n        }\n    }\n" +
		"    real_server 10.0.0.2 80 {\n        HTTP_GET {\n            url {\n                path /\n            }\n        }\n    }\n}\n"
	cfg := mustLoad(t, src)
	vs := cfg.VirtualServers[0]
	var got []string
	for _, rs := range vs.RealServers {
		for _, c := range rs.Checks {
			got = append(got, checkSpec(vs, rs, c, 80).HTTP.VirtualHost)
		}
	}
	if want := []string{"rs.example", "ck.example", "vs.example"}; !slices.Equal(got, want) {
		t.Errorf("hosts %v, want %v", got, want)
	}
	if !strings.Contains(string(config.Format(cfg)), "virtualhost rs.example") {
		t.Error("Format lost the real server's virtualhost")
	}
}

// TestLogAllFailures: a checker's log_all_failures, or the global
// checker_log_all_failures, reaches its health spec; route "priority"
// is the metric, as ip route reads it.
func TestLogAllFailures(t *testing.T) {
	src := "virtual_server 192.0.2.10 80 {\n    real_server 10.0.0.1 80 {\n        TCP_CHECK {\n            log_all_failures\n        }\n        TCP_CHECK {\n            connect_port 81\n        }\n    }\n}\n"
	for _, tc := range []struct {
		global string
		want   []bool
	}{{"", []bool{true, false}}, {"global_defs {\n    checker_log_all_failures\n}\n", []bool{true, true}}} {
		specs, err := buildSpecs(mustLoad(t, tc.global+src))
		if err != nil {
			t.Fatal(err)
		}
		var got []bool
		for _, c := range specs[0].reals[0].checks {
			got = append(got, c.LogAllFailures)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q: %v, want %v", tc.global, got, tc.want)
		}
	}
	cfg := mustLoad(t, "vrrp_instance V {\n    interface eth0\n    virtual_router_id 1\n    virtual_ipaddress {\n        10.0.0.100\n    }\n    virtual_routes {\n        192.0.2.0/24 via 10.0.0.1 priority 7\n    }\n}\n")
	if r := cfg.VRRPInstances[0].Routes[0]; r.Metric != 7 {
		t.Errorf("route metric %d, want 7", r.Metric)
	}
}

// TestSyncGroupTrackWeights: as keepalived 2.2.7, a sync group member's
// own weighted trackers are not used (scripts, files weighted on their
// line, BFD sessions dropped) unless the group has
// sync_group_tracking_weight, but an interface keeps its weight (which
// keepalived says it ignores and applies all the same); govs check
// warns of each.
func TestSyncGroupTrackWeights(t *testing.T) {
	src := "vrrp_script s {\n    script /bin/true\n    weight 10\n}\nvrrp_script z {\n    script /bin/true\n}\n" +
		"track_file f {\n    file /run/f\n}\n" +
		"vrrp_instance A {\n    interface eth0\n    virtual_router_id 1\n    track_script {\n        s\n        z\n    }\n    track_file {\n        f weight 3\n    }\n    track_interface {\n        eth1 weight 7\n    }\n    virtual_ipaddress {\n        10.0.0.1\n    }\n}\n" +
		"vrrp_instance B {\n    interface eth0\n    virtual_router_id 2\n    virtual_ipaddress {\n        10.0.0.2\n    }\n}\n" +
		"vrrp_sync_group G {\n    group {\n        A\n        B\n    }\nTW}\n"
	describe := func(ic vrrp.InstanceConfig) string {
		var s []string
		for _, t := range ic.TrackScripts {
			s = append(s, "script "+t.Name)
		}
		for _, t := range ic.TrackFiles {
			s = append(s, fmt.Sprintf("file %s %d", t.Name, t.Weight))
		}
		for _, t := range ic.TrackInterfaces {
			s = append(s, fmt.Sprintf("interface %s %d", t.Name, t.Weight))
		}
		return strings.Join(s, ", ")
	}
	for _, tc := range []struct{ tw, want, warn string }{
		{"", "script z, interface eth1 7", "track_script s has a weight and is not tracked (SYNC group)"},
		// the group's z is the member's own z, unweighted: it stays so
		{"    track_script {\n        z weight -30\n    }\n", "script z, interface eth1 7", "track_file f has weight 3 and is not tracked (SYNC group)"},
		{"    sync_group_tracking_weight\n", "script s, script z, file f 3, interface eth1 7", ""},
	} {
		cfg, ds := config.LoadBytes("t.conf", []byte(strings.Replace(src, "TW", tc.tw, 1)), nil)
		if ds.HasErrors() {
			t.Fatal(ds.Err())
		}
		insts, _, _ := vrrpOptions(cfg)
		if got := describe(insts[0]); got != tc.want {
			t.Errorf("sync_group_tracking_weight %q: %s, want %s", tc.tw, got, tc.want)
		}
		var warns strings.Builder
		for _, d := range ds {
			warns.WriteString(d.String() + "\n")
		}
		if tc.warn != "" && !strings.Contains(warns.String(), tc.warn) || tc.warn == "" && strings.Contains(warns.String(), "is not tracked") {
			t.Errorf("warnings:\n%s", warns.String())
		}
	}
}

// TestSyncGroupOwnerWeights: keepalived 2.2.7 sets the weights of a sync
// group's own trackers to 0 when a member is the address owner, and
// tracks a member's track_file of weight 1 (its block's default) with
// weight 0; a track_file block without weight has weight 1.
func TestSyncGroupOwnerWeights(t *testing.T) {
	src := "vrrp_script z {\n    script /bin/true\n}\ntrack_file f {\n    file /run/f\n}\n" +
		"vrrp_instance A {\n    interface eth0\n    virtual_router_id 1\n    priority 255\n    track_file {\n        f\n    }\n    virtual_ipaddress {\n        10.0.0.1\n    }\n}\n" +
		"vrrp_instance B {\n    interface eth0\n    virtual_router_id 2\n    virtual_ipaddress {\n        10.0.0.2\n    }\n}\n" +
		"vrrp_sync_group G {\n    group {\n        A\n        B\n    }\n    track_script {\n        z weight -30\n    }\n}\n"
	cfg, ds := config.LoadBytes("t.conf", []byte(src), nil)
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	if w := cfg.VRRPTrackFiles[0].Weight; w != 1 {
		t.Errorf("track_file without weight: %d, want 1", w)
	}
	insts, _, _ := vrrpOptions(cfg)
	for _, ic := range insts {
		for _, s := range ic.TrackScripts {
			if s.Weight != 0 {
				t.Errorf("%s: the group's script weight %d, want 0", ic.Name, s.Weight)
			}
		}
	}
	if tf := insts[0].TrackFiles; len(tf) != 1 || tf[0].Weight != 0 {
		t.Errorf("A's track_file %+v, want one of weight 0", tf)
	}
	var warns []string
	for _, d := range ds {
		warns = append(warns, d.String())
	}
	for _, w := range []string{`vrrp_sync_group "G": track_script z: its weight -30 is not used (a member is the address owner)`, `track_file f: its weight 1 is not used (SYNC group)`} {
		if !strings.Contains(strings.Join(warns, "\n"), w) {
			t.Errorf("no warning %q in\n%s", w, strings.Join(warns, "\n"))
		}
	}
}

// TestMailSettings: smtp_helo_name reaches the mailer; no_email_faults
// and it are part of the notifiers' signature (a reload applies them).
func TestMailSettings(t *testing.T) {
	src := "global_defs {\n    notification_email {\n        ops@example.org\n    }\n    smtp_server 192.0.2.25\n    smtp_helo_name lb1.example.org\n    no_email_faults\n}\n"
	cfg := mustLoad(t, src)
	if m := mailer(cfg); m == nil || m.HeloName != "lb1.example.org" {
		t.Fatalf("mailer %+v", m)
	}
	if !cfg.Global.NoEmailFaults {
		t.Error("no_email_faults not read")
	}
	other := mustLoad(t, strings.Replace(src, "    no_email_faults\n", "", 1))
	if notifySignature(cfg) == notifySignature(other) {
		t.Error("no_email_faults does not change the notifiers' signature")
	}
	if f := string(config.Format(cfg)); !strings.Contains(f, "smtp_helo_name lb1.example.org") || !strings.Contains(f, "no_email_faults") {
		t.Errorf("Format:\n%s", f)
	}
}

// TestStaticTrackGroup: the instances of a track_group track, with
// weight 0, the interfaces of the static entries naming the group (an
// address's dev or the default interface, a route's dev, a rule's iif);
// an interface the instance tracks already gets weight 0, as keepalived
// 2.2.7 does; no_track entries and other instances get none.
func TestStaticTrackGroup(t *testing.T) {
	src := "global_defs {\n    default_interface eth9\n}\n" +
		"track_group G {\n    group {\n        A\n    }\n}\n" +
		"static_ipaddress {\n    192.168.5.1/24 dev eth1 track_group G\n    192.168.6.1/24 track_group G\n    192.168.7.1/24 dev eth5 track_group G no_track\n}\n" +
		"static_routes {\n    192.168.2.0/24 via 192.168.5.100 dev eth2 track_group G\n    192.168.9.0/24 dev eth4 track_group G nexthop via 192.168.5.1 nexthop via 192.168.5.2\n}\n" +
		"static_rules {\n    from 1.1.1.1 table 5 iif eth3 priority 100 track_group G\n}\n" +
		"vrrp_instance A {\n    interface eth0\n    virtual_router_id 1\n    track_interface {\n        eth2 weight -20\n    }\n    virtual_ipaddress {\n        10.0.0.1\n    }\n}\n" +
		"vrrp_instance B {\n    interface eth0\n    virtual_router_id 2\n    virtual_ipaddress {\n        10.0.0.2\n    }\n}\n"
	cfg, ds := config.LoadBytes("t.conf", []byte(src), nil)
	if len(ds) != 1 || !strings.Contains(ds[0].String(), "track_group with no_track: not tracked") {
		t.Fatal(ds)
	}
	insts, _, _ := vrrpOptions(cfg)
	describe := func(ic vrrp.InstanceConfig) string {
		var s []string
		for _, t := range ic.TrackInterfaces {
			s = append(s, fmt.Sprintf("%s %d", t.Name, t.Weight))
		}
		return strings.Join(s, ", ")
	}
	if got, want := describe(insts[0]), "eth2 0, eth1 0, eth9 0, eth4 0, eth3 0"; got != want {
		t.Errorf("A tracks %q, want %q", got, want)
	}
	// keepalived lists only the instance's own, as its line says it
	// (keepalived.data, JSON, SNMP; seen in keepalived 2.2.7's data
	// file: "d1 weight -20" alone)
	if l := insts[0].ListedTrackInterfaces(); len(l) != 1 || l[0].Name != "eth2" || l[0].Weight != -20 {
		t.Errorf("A lists %+v, want eth2 weight -20 alone", l)
	}
	if got := describe(insts[1]); got != "" {
		t.Errorf("B tracks %q, want nothing", got)
	}
	// written back and read again, the same
	out := config.Format(cfg)
	cfg2, ds2 := config.Parse("again.conf", out, nil)
	if ds2.HasErrors() {
		t.Fatalf("%v\n%s", ds2, out)
	}
	insts2, _, _ := vrrpOptions(cfg2)
	if got := describe(insts2[0]); got != describe(insts[0]) {
		t.Errorf("after writing: A tracks %q\n%s", got, out)
	}
}

// TestRSInitNotifies: with rs_init_notifies a real server that starts
// up runs its notify_up (keepalived 2.2.7's do_rs_notifies at start);
// without it, only later changes do.
func TestRSInitNotifies(t *testing.T) {
	for _, init := range []bool{false, true} {
		dir := t.TempDir()
		out := filepath.Join(dir, "out")
		script := filepath.Join(dir, "up.sh")
		if err := os.WriteFile(script, []byte("#!/bin/sh\necho up >> "+out+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		global := ""
		if init {
			global = "global_defs {\n    rs_init_notifies\n}\n"
		}
		src := strings.Replace(conf(""), "        weight 3\n", "        weight 3\n        notify_up "+script+"\n", 1)
		f := start(t, global+src)
		// the notifier runs scripts on its own goroutine: wait for the
		// line, or (without rs_init_notifies) long enough for it
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if b, _ := os.ReadFile(out); len(b) > 0 || !init && time.Now().After(deadline.Add(-2500*time.Millisecond)) {
				break
			}
		}
		b, _ := os.ReadFile(out)
		if got, want := string(b), map[bool]string{false: "", true: "up\n"}[init]; got != want {
			t.Errorf("rs_init_notifies %v: notify_up ran %q, want %q", init, got, want)
		}
		f.d.Stop(context.Background())
	}
}

// TestReloadFile: reload_file exists, empty, while a reload reads the
// configuration and is removed after; its absence is fine.
func TestReloadFile(t *testing.T) {
	dir := t.TempDir()
	rf := filepath.Join(dir, "reloading")
	src := "global_defs {\n    reload_file " + rf + "\n}\n" + conf("")
	f := start(t, src)
	if err := os.WriteFile(rf, []byte("pending"), 0o644); err != nil {
		t.Fatal(err)
	}
	// a file made by the update tool is emptied, then removed
	if err := f.d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(rf); !os.IsNotExist(err) {
		t.Fatalf("reload_file left after the reload: %v", err)
	}
	// while reading, the file is there and empty: an include of it
	// reads as nothing (include_check match: a missing file would be an
	// error, and so would the broken text left in it)
	os.WriteFile(f.file, []byte("global_defs {\n    include_check match\n    reload_file "+rf+"\n}\n"+conf("")+"include "+rf+"\n"), 0o644)
	os.WriteFile(rf, []byte("virtual_server {\n"), 0o644)
	if err := f.d.Reload(context.Background()); err != nil {
		t.Fatalf("reading %s during the reload: %v", rf, err)
	}
	if _, err := os.Stat(rf); !os.IsNotExist(err) {
		t.Fatalf("reload_file left after the second reload: %v", err)
	}
	if got := reloadFile(&config.Config{Global: config.GlobalDefs{HasReloadFile: true}}); got != "/run/keepalived.reload" {
		t.Errorf("default reload_file %q", got)
	}
	if got := reloadFile(&config.Config{InstanceName: "lb1", Global: config.GlobalDefs{HasReloadFile: true}}); got != "/run/keepalived/lb1/keepalived.reload" {
		t.Errorf("default reload_file of instance lb1 %q", got)
	}
	// a FIFO there is left alone, and the reload does not block on it
	os.Remove(rf)
	if err := syscall.Mkfifo(rf, 0o600); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(f.file, []byte(src), 0o644)
	if err := f.d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(rf); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Fatalf("the FIFO went: %v", err)
	}
}

// TestProcessName: process_name names the process (its comm), and
// process_names gives keepalived's name.
func TestProcessName(t *testing.T) {
	orig, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Skip("no /proc/self/comm")
	}
	t.Cleanup(func() { os.WriteFile("/proc/self/comm", orig, 0) })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		g    config.GlobalDefs
		want string
	}{
		{config.GlobalDefs{ProcessName: "a-rather-long-process-name"}, "a-rather-long-p"},
		{config.GlobalDefs{ProcessNames: true}, "keepalived"},
		{config.GlobalDefs{ProcessName: "lb1", ProcessNames: true}, "lb1"},
	} {
		setProcessName(&tc.g, log)
		b, _ := os.ReadFile("/proc/self/comm")
		if got := strings.TrimSpace(string(b)); got != tc.want {
			t.Errorf("%+v: named %q, want %q", tc.g, got, tc.want)
		}
	}
}

// TestVRRPSocketAndGarpOptions: log_unknown_vrids, the receive buffer
// (kernel_rx_buf_size first, else vrrp_rx_bufs_policy) and a garp_group's
// intervals reach the instances.
func TestVRRPSocketAndGarpOptions(t *testing.T) {
	src := "global_defs {\n    log_unknown_vrids\n    vrrp_rx_bufs_policy MTU\n    vrrp_rx_bufs_multiplier 4\n    vrrp_garp_interval 0.1\n    vrrp_mcast_group4 224.0.0.99\n}\n" +
		"garp_group {\n    garp_interval 0.3\n    gna_interval 0.2\n    interface eth1\n}\n" +
		"vrrp_instance A {\n    interface eth0\n    virtual_router_id 1\n    kernel_rx_buf_size 9000\n    mcast_dst_ip 224.0.0.77\n    virtual_ipaddress {\n        10.0.0.1\n    }\n}\n" +
		"vrrp_instance B {\n    interface eth1\n    virtual_router_id 2\n    virtual_ipaddress {\n        10.0.0.2\n    }\n}\n" +
		"vrrp_instance C {\n    interface eth1\n    virtual_router_id 3\n    virtual_ipaddress {\n        2001:db8::3\n    }\n}\n" +
		"vrrp_instance D {\n    interface eth1\n    virtual_router_id 4\n    kernel_rx_buf_size 1000\n    virtual_ipaddress {\n        10.0.0.4\n    }\n}\n"
	cfg, ds := config.LoadBytes("t.conf", []byte(src), nil)
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	insts, _, _ := vrrpOptions(cfg)
	type got struct {
		log          bool
		size, mtus   int
		garpInterval time.Duration
	}
	// the buffers are the sums over keepalived's socket pools: A alone;
	// B and D share IPv4 on eth1 (4 MTUs and D's 1000 bytes); C is IPv6
	want := []got{
		{true, 9000, 0, 100 * time.Millisecond},
		{true, 1000, 4, 300 * time.Millisecond},
		{true, 0, 4, 200 * time.Millisecond},
		{true, 1000, 4, 300 * time.Millisecond},
	}
	for i, ic := range insts {
		_, every := ic.GARPPace(ic.Interface, ic.IsIPv6())
		g := got{ic.LogUnknownVRIDs, ic.RxBufSize, ic.RxBufMTUs, every}
		if g != want[i] {
			t.Errorf("%s: %+v, want %+v", ic.Name, g, want[i])
		}
	}
	// the old unicast checksum's group is the global one, not mcast_dst_ip
	if a := insts[0]; a.OldChecksumGroup.String() != "224.0.0.99" || a.MulticastGroup.String() != "224.0.0.77" {
		t.Errorf("A: old checksum group %s, multicast group %s", a.OldChecksumGroup, a.MulticastGroup)
	}
}

// TestOwnerWeightedInterface: an address owner's weighted
// track_interface is not tracked at all (keepalived 2.2.7: "ignoring eth2
// tracked interface due to address owner"; no FAULT when it goes down,
// seen in a namespace); an unweighted one is.
func TestOwnerWeightedInterface(t *testing.T) {
	src := "vrrp_instance A {\n    interface eth0\n    virtual_router_id 1\n    priority 255\n    track_interface {\n        eth1 weight -10\n        eth2\n    }\n    virtual_ipaddress {\n        10.0.0.1\n    }\n}\n"
	cfg, ds := config.LoadBytes("t.conf", []byte(src), nil)
	if ds.HasErrors() || !strings.Contains(fmt.Sprint(ds), "track_interface eth1 has a weight and is not tracked (address owner)") {
		t.Fatalf("diagnostics: %v", ds)
	}
	insts, _, _ := vrrpOptions(cfg)
	if ti := insts[0].TrackInterfaces; len(ti) != 1 || ti[0].Name != "eth2" || ti[0].Weight != 0 {
		t.Errorf("tracked interfaces %+v, want eth2 alone", ti)
	}
}
