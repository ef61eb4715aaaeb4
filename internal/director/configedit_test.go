package director

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/dataplane"
)

// The web UI's path: read the file, change one object, and the director
// runs the new configuration; a stale or invalid change writes nothing.
func TestEditConfig(t *testing.T) {
	f := start(t, "# operator comment\n"+conf(""))
	ctx := context.Background()
	doc, err := f.d.ConfigDoc(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Files) != 1 || doc.Files[0] != f.file || doc.Revision == "" {
		t.Fatalf("doc %+v", doc)
	}
	var cfg config.Config
	if err := json.Unmarshal(doc.Config, &cfg); err != nil {
		t.Fatal(err)
	}
	rs := cfg.VirtualServers[0].RealServers[1]
	rs.Weight = 7
	obj, _ := json.Marshal(rs)
	res, err := f.d.EditConfig(ctx, api.ConfigEdit{Revision: doc.Revision, Op: "set", Kind: "real_server", VS: 0, Index: 1, Object: obj})
	if err != nil {
		t.Fatal(err)
	}
	if res.Result != "saved" || res.ReloadError != "" || res.Revision == doc.Revision {
		t.Fatalf("result %+v", res)
	}
	f.waitFor("weight 7", func(s []dataplane.Service) bool { return len(s) == 1 && weights(s[0])["10.0.0.2:8080"] == 7 })
	b, _ := os.ReadFile(f.file)
	if !strings.HasPrefix(string(b), "# operator comment\n") {
		t.Errorf("comment lost:\n%s", b)
	}

	// the old revision is refused
	_, err = f.d.EditConfig(ctx, api.ConfigEdit{Revision: doc.Revision, Op: "set", Kind: "real_server", VS: 0, Index: 1, Object: obj})
	if !errors.Is(err, api.ErrConflict) {
		t.Fatalf("stale revision: %v", err)
	}
	// an invalid change: the problems, nothing written, nothing applied
	vs := cfg.VirtualServers[0]
	vs.Scheduler = "nope"
	obj, _ = json.Marshal(vs)
	n := len(f.dp.applied)
	_, err = f.d.EditConfig(ctx, api.ConfigEdit{Revision: res.Revision, Op: "set", Kind: "virtual_server", Index: 0, Object: obj})
	var inv *api.InvalidError
	if !errors.As(err, &inv) || !errors.Is(err, api.ErrBadRequest) || len(inv.Problems) == 0 || !strings.Contains(inv.Problems[0], `"nope"`) {
		t.Fatalf("invalid scheduler: %v", err)
	}
	if b2, _ := os.ReadFile(f.file); string(b2) != string(b) {
		t.Error("refused change written")
	}
	if len(f.dp.applied) != n {
		t.Error("refused change applied")
	}
	// a malformed request
	for _, e := range []api.ConfigEdit{
		{Op: "set", Kind: "virtual_server", Object: obj},
		{Revision: res.Revision, Op: "set", Kind: "virtual_server", Index: 3, Object: obj},
		{Revision: res.Revision, Op: "set", Kind: "virtual_server", Object: json.RawMessage(`{"weight":1}`)},
	} {
		if _, err := f.d.EditConfig(ctx, e); !errors.Is(err, api.ErrBadRequest) {
			t.Errorf("%+v: %v, want a bad request", e, err)
		}
	}
	// a new service runs after the save
	res, err = f.d.EditConfig(ctx, api.ConfigEdit{Revision: res.Revision, Op: "add", Kind: "virtual_server",
		Object: json.RawMessage(`{"addr":"192.0.2.11","ports":[{"from":443,"to":443}],"protocol":["TCP"],"lvs_sched":"rr","lvs_method":"NAT","real_servers":[{"addr":"10.0.0.3","port":443,"weight":1}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	f.waitFor("two services", func(s []dataplane.Service) bool { return len(s) == 2 })
	// the same object again changes nothing and does not reload
	doc, _ = f.d.ConfigDoc(ctx)
	json.Unmarshal(doc.Config, &cfg)
	obj, _ = json.Marshal(cfg.VirtualServers[1])
	if res, err = f.d.EditConfig(ctx, api.ConfigEdit{Revision: doc.Revision, Op: "set", Kind: "virtual_server", Index: 1, Object: obj}); err != nil || res.Result != "unchanged" {
		t.Errorf("unchanged set: %+v %v", res, err)
	}
}

// What an edit through the API cannot change: govs's listeners, the web
// UI's password and TLS, script security; and the password's hash is not
// shown.
func TestEditConfigProtected(t *testing.T) {
	const hash = `$2a$04$TApAnaXQin8wZfUdWbq37.8XGhn1IkIaAcVvFqwQPS4JFq7BPDoyq`
	f := start(t, "global_defs {\n    router_id lb1\n    enable_script_security\n    govs_web_password \""+hash+"\"\n}\n"+conf(""))
	ctx := context.Background()
	doc, err := f.d.ConfigDoc(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(doc.Config), "$2a$") {
		t.Errorf("the password hash is shown: %s", doc.Config)
	}
	var cfg config.Config
	json.Unmarshal(doc.Config, &cfg)
	g := cfg.Global
	g.RouterID = "lb2"
	g.EnableScriptSecurity = false
	g.ScriptUser = "root"
	g.Govs.APIListen = "0.0.0.0:9000"
	g.ReloadFile, g.HasReloadFile = "/etc/passwd", true
	g.ReloadTimeFile = "/etc/shadow"
	g.ProcessName = "kworker"
	obj, _ := json.Marshal(&g)
	if _, err := f.d.EditConfig(ctx, api.ConfigEdit{Revision: doc.Revision, Op: "set", Kind: "global_defs", Object: obj}); err != nil {
		t.Fatal(err)
	}
	back, ds := config.Load(f.file, nil)
	if ds.HasErrors() {
		t.Fatal(ds.Err())
	}
	bg := back.Global
	if bg.HasReloadFile || bg.ReloadFile != "" || bg.ReloadTimeFile != "" || bg.ProcessName != "" {
		t.Errorf("after the edit: reload_file %v %q, reload_time_file %q, process_name %q", bg.HasReloadFile, bg.ReloadFile, bg.ReloadTimeFile, bg.ProcessName)
	}
	if bg.RouterID != "lb2" || !bg.EnableScriptSecurity || bg.ScriptUser != "" || bg.Govs.APIListen != "" || bg.Govs.WebPassword != hash {
		t.Errorf("after the edit: router_id %q, enable_script_security %v, script_user %q, api_listen %q, password %q",
			bg.RouterID, bg.EnableScriptSecurity, bg.ScriptUser, bg.Govs.APIListen, bg.Govs.WebPassword)
	}
}
