package director

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/dataplane"
)

// Two directors with one shared file (conditional lines for what
// differs): a change made through the API on lb1 reaches lb2, which
// writes it and runs it; lb2 does not send it back; a hand edit on lb2
// makes the next push a conflict until it is forced.
func TestConfigSyncBetweenDirectors(t *testing.T) {
	// lb2's listener first: lb1's file names it
	var lb2 *fixture
	srv := httptest.NewServer(httpHandlerFunc(func() *Director { return lb2.d }))
	defer srv.Close()
	shared := "global_defs {\n" +
		"@lb1 govs_config_sync_peer " + strings.TrimPrefix(srv.URL, "http://") + "\n" +
		"@lb2 govs_config_sync_listen 127.0.0.1:0\n" +
		"    govs_config_sync_secret \"sixteen-chars-or-more\"\n" +
		"}\n" + conf("")
	lb1 := startFull(t, shared, nil, "lb1")
	lb2 = startFull(t, shared, nil, "lb2")
	ctx := context.Background()

	doc, err := lb1.d.ConfigDoc(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(doc.Config), "sixteen-chars") {
		t.Error("ConfigDoc shows the sync secret")
	}
	var cfg config.Config
	json.Unmarshal(doc.Config, &cfg)
	rs := cfg.VirtualServers[0].RealServers[0]
	rs.Weight = 9
	obj, _ := json.Marshal(rs)
	if _, err := lb1.d.EditConfig(ctx, api.ConfigEdit{Revision: doc.Revision, Op: "set", Kind: "real_server", Object: obj}); err != nil {
		t.Fatal(err)
	}
	lb2.waitFor("lb1's weight on lb2", func(s []dataplane.Service) bool { return len(s) == 1 && weights(s[0])["10.0.0.1:8080"] == 9 })
	b1, _ := os.ReadFile(lb1.file)
	b2, _ := os.ReadFile(lb2.file)
	if string(b1) != string(b2) {
		t.Errorf("the files differ after the sync:\n%s\n---\n%s", b1, b2)
	}
	st, _ := lb1.d.State(ctx)
	waitSync := func(what string, ok func(*api.ConfigSync) bool) *api.ConfigSync {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			st, _ = lb1.d.State(ctx)
			if st.ConfigSync != nil && ok(st.ConfigSync) {
				return st.ConfigSync
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: config sync state %+v", what, st.ConfigSync)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	cs := waitSync("push recorded", func(c *api.ConfigSync) bool { return len(c.Peers) == 1 && c.Peers[0].Result == "saved" })
	if cs.Peers[0].Pending || cs.Peers[0].Error != "" || cs.Peers[0].Revision != cs.Revision {
		t.Errorf("peer state %+v (revision here %s)", cs.Peers[0], cs.Revision)
	}
	st2, _ := lb2.d.State(ctx)
	if st2.ConfigSync == nil || st2.ConfigSync.LastReceived == nil || st2.ConfigSync.LastReceived.From == "" || len(st2.ConfigSync.Peers) != 0 {
		t.Errorf("lb2's sync state %+v", st2.ConfigSync)
	}
	if !strings.Contains(lb2.log.String(), "files taken from a peer") {
		t.Errorf("lb2's log:\n%s", lb2.log.String())
	}

	// a hand edit on lb2, then a change on lb1: refused, and retried
	os.WriteFile(lb2.file, append(b2, []byte("# hand edit on lb2\n")...), 0o644)
	doc, _ = lb1.d.ConfigDoc(ctx)
	json.Unmarshal(doc.Config, &cfg)
	rs = cfg.VirtualServers[0].RealServers[0]
	rs.Weight = 4
	obj, _ = json.Marshal(rs)
	if _, err := lb1.d.EditConfig(ctx, api.ConfigEdit{Revision: doc.Revision, Op: "set", Kind: "real_server", Object: obj}); err != nil {
		t.Fatal(err)
	}
	cs = waitSync("conflict recorded", func(c *api.ConfigSync) bool { return c.Peers[0].Pending && c.Peers[0].Error != "" })
	if !strings.Contains(cs.Peers[0].Error, "409") {
		t.Errorf("conflict: %+v", cs.Peers[0])
	}
	if b, _ := os.ReadFile(lb2.file); !strings.Contains(string(b), "# hand edit on lb2") {
		t.Error("a conflicting push overwrote lb2's hand edit")
	}
	// forced from lb1: lb2 takes it
	res, err := lb1.d.PushConfig(ctx, true)
	if err != nil || len(res) != 1 || !strings.HasPrefix(res[0].Result, "saved, replacing its revision") || res[0].Error != "" {
		t.Fatalf("forced push: %+v %v", res, err)
	}
	lb2.waitFor("forced weight", func(s []dataplane.Service) bool { return len(s) == 1 && weights(s[0])["10.0.0.1:8080"] == 4 })

	// the peer removed from lb1's file: its pusher stops
	b1, _ = os.ReadFile(lb1.file)
	os.WriteFile(lb1.file, []byte(regexp.MustCompile(`(?m)^@lb1 govs_config_sync_peer .*\n`).ReplaceAllString(string(b1), "")), 0o644)
	if err := lb1.d.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	lb1.d.cs.mu.Lock()
	n := len(lb1.d.cs.peers)
	lb1.d.cs.mu.Unlock()
	if n != 0 {
		t.Errorf("%d pushers left after the peer was removed", n)
	}
}

// httpHandlerFunc serves the sync handler of a director made later.
type httpHandlerFunc func() *Director

func (f httpHandlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f().ConfigSyncHandler().ServeHTTP(w, r)
}

// A sync both ways: each director lists the other. A change on either
// reaches the other and is not sent back; two changes in a row on one
// side both arrive.
func TestConfigSyncBothWays(t *testing.T) {
	var d1, d2 *fixture
	s1 := httptest.NewServer(httpHandlerFunc(func() *Director { return d1.d }))
	defer s1.Close()
	s2 := httptest.NewServer(httpHandlerFunc(func() *Director { return d2.d }))
	defer s2.Close()
	shared := "global_defs {\n" +
		"@d1 govs_config_sync_peer " + strings.TrimPrefix(s2.URL, "http://") + "\n" +
		"@d2 govs_config_sync_peer " + strings.TrimPrefix(s1.URL, "http://") + "\n" +
		"    govs_config_sync_secret \"sixteen-chars-or-more\"\n" +
		"}\n" + conf("")
	d1 = startFull(t, shared, nil, "d1")
	d2 = startFull(t, shared, nil, "d2")
	ctx := context.Background()
	setWeight := func(f *fixture, w int) { t.Helper(); editWeight(t, f, 1, w) }
	has := func(f *fixture, w int) func([]dataplane.Service) bool {
		return func(s []dataplane.Service) bool { return len(s) == 1 && weights(s[0])["10.0.0.2:8080"] == w }
	}
	// two changes in a row on d1: the second arrives too
	setWeight(d1, 5)
	setWeight(d1, 6)
	d2.waitFor("d1's second change on d2", has(d2, 6))
	// then d2's change reaches d1
	setWeight(d2, 7)
	d1.waitFor("d2's change on d1", has(d1, 7))
	time.Sleep(200 * time.Millisecond)
	// nothing went back: each took the other's files exactly once per change
	if n := strings.Count(d1.log.String(), "files taken from a peer"); n != 1 {
		t.Errorf("d1 took files %d times:\n%s", n, d1.log.String())
	}
	if n := strings.Count(d2.log.String(), "files taken from a peer"); n < 1 || n > 2 {
		t.Errorf("d2 took files %d times:\n%s", n, d2.log.String())
	}
	for _, f := range []*fixture{d1, d2} {
		st, _ := f.d.State(ctx)
		if p := st.ConfigSync.Peers[0]; p.Error != "" || p.Pending {
			t.Errorf("peer state %+v", p)
		}
	}
	b1, _ := os.ReadFile(d1.file)
	b2, _ := os.ReadFile(d2.file)
	if string(b1) != string(b2) {
		t.Errorf("the files differ:\n%s\n---\n%s", b1, b2)
	}
}

// Three directors, each listing the two others: changes made on any of
// them reach the others, in any order (each push names every revision
// its sender has had, so a peer that took a third director's change
// still takes the next one).
func TestConfigSyncMesh(t *testing.T) {
	ds := make([]*fixture, 3)
	srvs := make([]*httptest.Server, 3)
	for i := range srvs {
		i := i
		srvs[i] = httptest.NewServer(httpHandlerFunc(func() *Director { return ds[i].d }))
		defer srvs[i].Close()
	}
	shared := "global_defs {\n"
	for i := range 3 {
		for j := range 3 {
			if i != j {
				shared += fmt.Sprintf("@d%d govs_config_sync_peer %s\n", i, strings.TrimPrefix(srvs[j].URL, "http://"))
			}
		}
	}
	shared += "    govs_config_sync_secret \"sixteen-chars-or-more\"\n}\n" + conf("")
	for i := range ds {
		ds[i] = startFull(t, shared, nil, fmt.Sprintf("d%d", i))
	}
	ctx := context.Background()
	setWeight := func(f *fixture, w int) { t.Helper(); editWeight(t, f, 1, w) }
	for step, who := range []int{0, 1, 2, 1, 0, 2} {
		w := 10 + step
		setWeight(ds[who], w)
		for _, f := range ds {
			f.waitFor(fmt.Sprintf("step %d (d%d sets %d)", step, who, w), func(s []dataplane.Service) bool {
				return len(s) == 1 && weights(s[0])["10.0.0.2:8080"] == w
			})
		}
	}
	for i, f := range ds {
		st, _ := f.d.State(ctx)
		for _, p := range st.ConfigSync.Peers {
			if strings.Contains(p.Error, "409") {
				t.Errorf("d%d → %s: %s", i, p.Addr, p.Error)
			}
		}
	}
}

// editWeight sets the weight of the first service's real server j
// through the API, as the web UI does.
func editWeight(t *testing.T, f *fixture, j, w int) {
	t.Helper()
	ctx := context.Background()
	doc, err := f.d.ConfigDoc(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var cfg config.Config
	json.Unmarshal(doc.Config, &cfg)
	rs := cfg.VirtualServers[0].RealServers[j]
	rs.Weight = w
	obj, _ := json.Marshal(rs)
	if _, err := f.d.EditConfig(ctx, api.ConfigEdit{Revision: doc.Revision, Op: "set", Kind: "real_server", Index: j, Object: obj}); err != nil {
		t.Fatal(err)
	}
}
