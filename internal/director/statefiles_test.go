package director

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/statefiles"
	"github.com/govs/govs/internal/vrrp"
)

// noSystem lets a vrrp.Node be made (never run) for its Dump.
type noSystem struct{ vrrp.System }

// TestStateFilesAsKeepalived writes govs's state files for the
// configuration keepalived 2.2.7 wrote its own for
// (internal/statefiles/testdata/keepalived-2.2.7), with the instances in
// the state keepalived's were in then, and compares them with
// keepalived's: keepalived.stats and keepalived.json byte for byte, and
// every line of keepalived.data's global, instance and script blocks in
// keepalived's order and with its values (keepalived shows lines about
// its internals govs does not have: those are not compared).
func TestStateFilesAsKeepalived(t *testing.T) {
	dir := filepath.Join("..", "statefiles", "testdata", "keepalived-2.2.7")
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	cfg := mustLoad(t, read("ka.conf"))
	insts, scripts, groups := vrrpOptions(cfg)
	node, err := vrrp.NewNode(vrrp.Options{Instances: insts, Scripts: scripts, SyncGroups: groups, System: noSystem{}})
	if err != nil {
		t.Fatal(err)
	}
	d := node.Dump()
	// the state keepalived's instances were in (keepalived.json)
	at := func(sec, usec int64) time.Time { return time.Unix(sec, usec*1000) }
	for i, s := range []struct {
		src  string
		last time.Time
	}{{"10.9.0.1", at(1796662495, 400881)}, {"fe80::c876:a9ff:fe0b:793c", at(1796662495, 605002)}} {
		st := &d.Instances[i]
		st.State, st.EffectivePriority = vrrp.StateMaster, st.BasePriority
		st.LocalAddr = netip.MustParseAddr(s.src)
		st.Transitions = []vrrp.Transition{{Time: s.last, From: vrrp.StateBackup, To: vrrp.StateMaster}}
		st.Counters = vrrp.Counters{AdvertsSent: 3, BecameMaster: 1}
		// what the machine computes: 3 adverts + the skew of its priority
		st.MasterDown = 3*time.Second + time.Duration(256-st.BasePriority)*time.Second/256
		st.Trackers = append(st.Trackers, vrrp.Tracker{Key: "script:chk_x", OK: true})
	}
	in := &statefiles.Input{Config: cfg, VRRP: d}

	var stats, js, data bytes.Buffer
	if err := statefiles.WriteStats(&stats, in, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := stats.String(), read("keepalived.stats"); got != want {
		t.Errorf("keepalived.stats:\n%s\nkeepalived's:\n%s", got, want)
	}
	if err := statefiles.WriteJSON(&js, in, nil, 0); err != nil {
		t.Fatal(err)
	}
	// keepalived shows the script's path resolved (/bin is a link)
	if got, want := js.String(), strings.ReplaceAll(read("keepalived.json"), `\/usr\/bin\/true`, `\/bin\/true`); got != want {
		t.Errorf("keepalived.json:\n%s\nkeepalived's:\n%s", got, want)
	}

	if err := statefiles.Data(&data, in); err != nil {
		t.Fatal(err)
	}
	// the time in brackets is the local time zone's; the script's
	// command is resolved by keepalived; its timeout 0 is "not set"
	// (then the interval), which govs shows as the value in force
	norm := regexp.MustCompile(`(Last transition = \S+) \(.*\)`)
	skip := map[string]bool{"   Command = '/usr/bin/true'": true, "   Timeout = 0 sec": true, "   Command = '/bin/true'": true, "   Timeout = 1 sec": true}
	blocks := func(s string) map[string][]string {
		out := map[string][]string{}
		key := ""
		for _, l := range strings.Split(norm.ReplaceAllString(s, "$1"), "\n") {
			switch {
			case strings.HasPrefix(l, "------<"):
				key = l
			case strings.HasPrefix(l, " VRRP Instance = "), strings.HasPrefix(l, " VRRP Script = "):
				key = l
			case key != "" && l != "" && !skip[l]:
				out[key] = append(out[key], l)
			}
		}
		return out
	}
	got, want := blocks(data.String()), blocks(read("keepalived.data"))
	for _, k := range []string{"------< Global definitions >------", " VRRP Instance = VI_1", " VRRP Instance = VI_6", " VRRP Script = chk_x"} {
		g, w := got[k], want[k]
		if len(g) < 5 {
			t.Errorf("%s: %d lines in govs's keepalived.data:\n%s", k, len(g), data.String())
			continue
		}
		// govs's lines in keepalived's, in its order
		j := 0
		for _, l := range g {
			for j < len(w) && w[j] != l {
				j++
			}
			if j == len(w) {
				t.Errorf("%s: line %q is not in keepalived's block (in its order):\n%s", k, l, strings.Join(w, "\n"))
				break
			}
		}
	}
	if !strings.Contains(data.String(), "------< VRRP Topology >------\n VRRP Instance = VI_1\n") {
		t.Errorf("no VRRP Topology section:\n%s", data.String())
	}

	// the configuration's json_version 2 wraps the list
	cfg.Global.JSONVersion = 2
	js.Reset()
	if err := statefiles.WriteJSON(&js, in, nil, cfg.Global.JSONVersion); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(js.String(), `{"vrrp":[{"data":{"iname":"VI_1",`) {
		t.Errorf("json_version 2: %.80s", js.String())
	}
}

// TestGlobalNotifyPriorityChanges: vrrp_notify_priority_changes in
// global_defs turns notify_priority_changes on in every instance.
func TestGlobalNotifyPriorityChanges(t *testing.T) {
	inst := "vrrp_instance %s {\n    interface eth0\n    virtual_router_id %d\n    virtual_ipaddress {\n        10.0.0.%d\n    }\n}\n"
	for _, global := range []bool{false, true} {
		src := fmt.Sprintf(inst, "A", 1, 1) + fmt.Sprintf(inst, "B", 2, 2)
		if global {
			src = "global_defs {\n    vrrp_notify_priority_changes\n}\n" + src
		}
		insts, _, _ := vrrpOptions(mustLoad(t, src))
		for _, ic := range insts {
			if ic.NotifyPriorityChanges != global {
				t.Errorf("global %v: instance %s NotifyPriorityChanges %v", global, ic.Name, ic.NotifyPriorityChanges)
			}
		}
	}
}
