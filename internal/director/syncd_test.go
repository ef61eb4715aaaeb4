package director

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/connsync"
	"github.com/govs/govs/internal/dataplane"
)

func TestSyncConfig(t *testing.T) {
	inst := "\nvrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n    priority 100\n    virtual_ipaddress {\n        10.0.0.100\n    }\n}\n"
	for _, c := range []struct {
		line string
		want connsync.Config
	}{
		{"lvs_sync_daemon eth1 VI_1", connsync.Config{Interface: "eth1", SyncID: 51}},
		{"lvs_sync_daemon eth1 VI_1 id 0", connsync.Config{Interface: "eth1", SyncID: 0}},
		{"lvs_sync_daemon eth1", connsync.Config{Interface: "eth1", SyncID: 0}},
		{"lvs_sync_daemon eth1 inst VI_1 id 3 maxlen 1400 port 9000 ttl 4 group ff02::81", connsync.Config{Interface: "eth1", SyncID: 3, MaxLen: 1400, Port: 9000, TTL: 4, Group: netip.MustParseAddr("ff02::81")}},
	} {
		cfg, ds := config.LoadBytes("t.conf", []byte("global_defs {\n    "+c.line+"\n}\n"+inst), nil)
		if ds.HasErrors() {
			t.Fatalf("%s: %v", c.line, ds.Err())
		}
		got, ok := syncConfig(cfg)
		if !ok || got != c.want {
			t.Errorf("%s: %+v, want %+v", c.line, got, c.want)
		}
	}
	if _, ok := syncConfig(&config.Config{}); ok {
		t.Error("a configuration without lvs_sync_daemon has a sync daemon")
	}
}

// plainDP is a dataplane that cannot take connections (as the proxy).
type plainDP struct{ f *fakeDP }

func (p plainDP) Apply(ctx context.Context, s []dataplane.Service) error { return p.f.Apply(ctx, s) }
func (p plainDP) Stats(ctx context.Context) (dataplane.Snapshot, error)  { return p.f.Stats(ctx) }
func (p plainDP) Conns(ctx context.Context, fn func(dataplane.Conn) bool) error {
	return p.f.Conns(ctx, fn)
}
func (p plainDP) Close() error { return p.f.Close() }

// TestSyncDaemonRoles: without VRRP the daemon sends and receives; its
// problems show in the state; the dataplane keeps its services; a reload
// that changes lvs_sync_daemon starts it anew, one that drops it stops it.
func TestSyncDaemonRoles(t *testing.T) {
	conf := "global_defs {\n    lvs_sync_daemon nosuch0 id 5\n}\n" + base
	f := start(t, conf)
	waitSync := func(what string, ok func(role, iface, lastErr string, present bool) bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			st, err := f.d.State(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if st.Sync == nil && ok("", "", "", false) || st.Sync != nil && ok(st.Sync.Role, st.Sync.Interface, st.Sync.LastError, true) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: state %+v", what, st.Sync)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitSync("both roles, no such interface", func(role, _, lastErr string, ok bool) bool {
		return ok && role == "master+backup" && strings.Contains(lastErr, "nosuch0")
	})
	f.d.mu.Lock()
	keeps := f.d.keepsServices()
	f.d.mu.Unlock()
	if !keeps {
		t.Error("a dataplane that takes connections does not keep its services")
	}
	if err := os.WriteFile(f.file, []byte("global_defs {\n    lvs_sync_daemon nosuch1\n}\n"+base), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitSync("changed by reload", func(_, iface, lastErr string, ok bool) bool {
		return ok && iface == "nosuch1" && strings.Contains(lastErr, "nosuch1")
	})
	if err := os.WriteFile(f.file, []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitSync("removed by reload", func(_, _, _ string, ok bool) bool { return !ok })
}

// A dataplane whose connections cannot move (the proxy's are sockets)
// gets no sync daemon, and says why.
func TestSyncDaemonNeedsImporter(t *testing.T) {
	cfg, ds := config.LoadBytes("t.conf", []byte("global_defs {\n    lvs_sync_daemon nosuch0\n}\n"+base), nil)
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	lb := &logBuf{}
	d, err := New(cfg, Options{Dataplane: plainDP{&fakeDP{}}, DataplaneName: "proxy", Log: slog.New(slog.NewTextHandler(lb, nil)),
		NewChecker: (&fakeHealth{down: map[netip.AddrPort]bool{}}).newChecker, RateInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop(context.Background())
	st, err := d.State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Sync != nil || !strings.Contains(lb.String(), "lvs_sync_daemon is not started: the proxy dataplane") {
		t.Errorf("sync %+v; log:\n%s", st.Sync, lb.String())
	}
}
