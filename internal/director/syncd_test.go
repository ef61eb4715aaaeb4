package director

import (
	"context"
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

// importDP is a fakeDP that can take connections.
type importDP struct{ fakeDP }

func (f *importDP) ImportConns(context.Context, []dataplane.Conn) (int, error) { return 0, nil }

// TestSyncDaemonRoles: without VRRP the daemon sends and, when the
// dataplane can take connections, receives; a dataplane that cannot is
// warned about; the daemon's problems show in the state; a reload that
// drops lvs_sync_daemon stops it and one that changes it starts anew.
func TestSyncDaemonRoles(t *testing.T) {
	conf := "global_defs {\n    lvs_sync_daemon nosuch0 id 5\n}\n" + base
	f := start(t, conf)
	waitSync := func(what string, ok func(*connsync.Stats, string) bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			st, err := f.d.State(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if st.Sync == nil {
				if ok(nil, "") {
					return
				}
			} else if ok(&connsync.Stats{Role: st.Sync.Role, LastError: st.Sync.LastError}, st.Sync.Interface) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: state %+v", what, st.Sync)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitSync("master, no such interface", func(s *connsync.Stats, _ string) bool {
		return s != nil && s.Role == "master" && strings.Contains(s.LastError, "nosuch0")
	})
	if !strings.Contains(f.log.String(), "cannot take a peer's connections") {
		t.Errorf("no warning that the dataplane cannot receive:\n%s", f.log.String())
	}
	// a BACKUP that cannot receive does not keep services of addresses
	// held elsewhere (no VRRP here: nothing is held elsewhere anyway)
	f.d.mu.Lock()
	keeps := f.d.keepsServices()
	f.d.mu.Unlock()
	if keeps {
		t.Error("a dataplane that cannot take connections keeps services")
	}

	if err := os.WriteFile(f.file, []byte("global_defs {\n    lvs_sync_daemon nosuch1\n}\n"+base), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitSync("changed by reload", func(s *connsync.Stats, iface string) bool {
		return s != nil && iface == "nosuch1" && strings.Contains(s.LastError, "nosuch1")
	})
	if err := os.WriteFile(f.file, []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.d.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitSync("removed by reload", func(s *connsync.Stats, _ string) bool { return s == nil })
}

// A dataplane that can take connections gets both roles without VRRP and
// keeps its services.
func TestSyncDaemonImporter(t *testing.T) {
	td := &importDP{}
	cfg, ds := config.LoadBytes("t.conf", []byte("global_defs {\n    lvs_sync_daemon nosuch0\n}\n"+base), nil)
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	d, err := New(cfg, Options{Dataplane: td, NewChecker: (&fakeHealth{down: map[netip.AddrPort]bool{}}).newChecker, RateInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		<-done
		d.Stop(context.Background())
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, _ := d.State(context.Background())
		if st != nil && st.Sync != nil && st.Sync.Role == "master+backup" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("roles: %+v", st.Sync)
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.mu.Lock()
	keeps := d.keepsServices()
	d.mu.Unlock()
	if !keeps {
		t.Error("a dataplane that takes connections does not keep its services")
	}
}
