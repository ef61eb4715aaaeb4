package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/vishvananda/netns"

	"github.com/govs/govs/internal/api"
)

// forwardInto serves on a loopback port of the test's namespace and
// carries each connection to addr on the loopback of namespace ns (the
// socket is opened from a thread in ns): a browser outside reaches a web
// UI inside without any address outside the two loopbacks.
func forwardInto(t *testing.T, ns, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	dial := func() (net.Conn, error) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		orig, err := netns.Get()
		if err != nil {
			return nil, err
		}
		defer orig.Close()
		h, err := netns.GetFromName(ns)
		if err != nil {
			return nil, err
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			return nil, err
		}
		defer netns.Set(orig)
		return net.DialTimeout("tcp", addr, 2*time.Second)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := dial()
				if err != nil {
					return
				}
				defer u.Close()
				go func() { io.Copy(u, c); u.(*net.TCPConn).CloseWrite() }()
				io.Copy(c, u)
			}()
		}
	}()
	return ln.Addr().String()
}

// VRRP through the web UI, in a browser, on a director in a network
// namespace: a vrrp_script added in the REDUNDANCY panel and tracked by
// the instance through its form raises the live effective priority by
// its weight; its command changed to one that fails takes the weight
// away again; a sync group added there is written before the instance.
func TestWebUIBrowserVRRP(t *testing.T) {
	ctx := browser(t)
	l := newVRRPLab(t)
	conf := filepath.Join(l.dir, "d1.conf")
	os.WriteFile(conf, []byte(`global_defs {
    router_id ui-vrrp
    govs_dataplane proxy
}

# the director pair's address
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 42
    priority 100
    advert_int 0.2
    virtual_ipaddress {
        10.77.0.50/24
    }
}

virtual_server 10.77.0.50 80 {
    lb_kind NAT
    real_server 10.77.0.11 8080 {
    }
}
`), 0o600)
	setWebPassword(t, conf, "correct-horse", "127.0.0.1:3636")
	sock := filepath.Join(l.dir, "d1.sock")
	l.start("d1", govsBin, "run", "-f", conf, "--api-socket", sock)
	cl := api.NewClient(sock)
	waitState(t, cl, "MASTER", 10*time.Second)
	webAddr := forwardInto(t, l.prefix+"d1", "127.0.0.1:3636")

	row := `#vrrp-instances-table tr[data-name="VI_1"]`
	prio := func(want string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.querySelector('%s .live-prio').textContent === %q`, row, want), chromedp.WithPollingTimeout(10*time.Second))
	}
	err := chromedp.Do(ctx,
		logIn(webAddr),
		chromedp.Click(chromedp.CSS(`button.tab[data-tab="redundancy"]`)),
		chromedp.WaitVisible(chromedp.CSS(row)),
		prio("100 / 100"),
		// a script that succeeds, weight 10
		listSave("vrrp-scripts", "", "ok", [2]string{"name", "chk_web"}, [2]string{"script", "/bin/true"}, [2]string{"interval", "0.2"}, [2]string{"weight", "10"}),
		// tracked by the instance, through its form
		listSave("vrrp-instances", "VI_1", "ok", [2]string{"track_script", "chk_web"}),
		prio("100 / 110"),
	)
	if err != nil {
		got, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#panel-redundancy`)))
		text, _ := os.ReadFile(conf)
		t.Fatalf("script tracked through the UI: %v\npanel: %s\nfile:\n%s", err, got, text)
	}
	text, _ := os.ReadFile(conf)
	s, c, v := strings.Index(string(text), "vrrp_script chk_web {"), strings.Index(string(text), "# the director pair's address"), strings.Index(string(text), "vrrp_instance VI_1 {")
	if s < 0 || s > c || c > v || !strings.Contains(string(text), "    track_script {\n        chk_web\n    }\n") {
		t.Errorf("file after tracking the script (the script before the instance and its comment):\n%s", text)
	}
	if tracked, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#vrrp-scripts-table tr[data-name="chk_web"]`))); !strings.Contains(tracked, "VI_1") {
		t.Errorf("the script's row does not say VI_1 tracks it: %q", tracked)
	}
	shot(t, ctx, "redundancy-vrrp-tracked")

	// the script now fails: its weight goes
	err = chromedp.Do(ctx,
		listSave("vrrp-scripts", "chk_web", "ok", [2]string{"script", "/bin/false"}),
		prio("100 / 100"),
	)
	if err != nil {
		t.Fatalf("failing script: %v", err)
	}
	st, err := cl.State(t.Context())
	if err != nil || len(st.VRRP) != 1 || st.VRRP[0].Effective != 100 {
		t.Errorf("API state after the failing script: %+v %v", st, err)
	}

	// a sync group of the instance
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#sync-groups button.list-add`)),
		chromedp.WaitVisible(chromedp.CSS(`#sync-groups-form textarea[name="group"]`)),
		typeInto(`#sync-groups-form input[name="name"]`, "G"),
		typeInto(`#sync-groups-form textarea[name="group"]`, "VI_1"),
		chromedp.Click(chromedp.CSS(`#sync-groups-form input[name="sync_group_tracking_weight"]`)),
		clearMessage,
		chromedp.Click(chromedp.CSS(`#sync-groups-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#message.ok`)),
		chromedp.WaitVisible(chromedp.CSS(`#sync-groups-table tr[data-name="G"]`)),
	)
	if err != nil {
		t.Fatalf("sync group: %v", err)
	}
	text, _ = os.ReadFile(conf)
	if g, v := strings.Index(string(text), "vrrp_sync_group G {\n    group {\n        VI_1\n    }\n    sync_group_tracking_weight\n}\n"), strings.Index(string(text), "vrrp_instance VI_1 {"); g < 0 || g > v {
		t.Errorf("file after the sync group:\n%s", text)
	}
	var group string
	waitUntil(t, "VI_1 in sync group G", 10*time.Second, func() bool {
		st, err := cl.State(t.Context())
		if err == nil && len(st.VRRP) == 1 {
			group = st.VRRP[0].SyncGroup
		}
		return group == "G"
	}, func() string { return "sync group " + group })
	shot(t, ctx, "redundancy-vrrp-sync")

	// a track file, through its editor and the instance's form: its
	// value × weight moves the priority as the file changes
	maint := filepath.Join(l.dir, "maint")
	err = chromedp.Do(ctx,
		listSave("vrrp-track-files", "", "ok", [2]string{"name", "maint"}, [2]string{"file", maint}, [2]string{"weight", "2"}, [2]string{"init_file", "0"}),
		listSave("vrrp-instances", "VI_1", "ok", [2]string{"track_file", "maint"}),
		prio("100 / 100"),
	)
	if err != nil {
		text, _ := os.ReadFile(conf)
		t.Fatalf("track file: %v\n%s", err, text)
	}
	if b, err := os.ReadFile(maint); err != nil || strings.TrimSpace(string(b)) != "0" {
		t.Errorf("init_file: the file holds %q (%v), want 0", b, err)
	}
	os.WriteFile(maint, []byte("5\n"), 0o644)
	if err := chromedp.Do(ctx, prio("100 / 110")); err != nil {
		t.Errorf("the track file's value 5 × weight 2: %v", err)
	}
	if tracked, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#vrrp-track-files-table tr[data-name="maint"]`))); !strings.Contains(tracked, "VI_1") {
		t.Errorf("the track file's row does not say VI_1 tracks it: %q", tracked)
	}
	shot(t, ctx, "redundancy-vrrp-file")

	// a tracked process (govs itself runs), weight 5
	err = chromedp.Do(ctx,
		listSave("vrrp-track-processes", "", "ok", [2]string{"name", "director"}, [2]string{"process", "govs"}, [2]string{"weight", "5"}),
		listSave("vrrp-instances", "VI_1", "ok", [2]string{"track_process", "director"}),
		prio("100 / 115"),
	)
	if err != nil {
		text, _ := os.ReadFile(conf)
		msg, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#message`)))
		t.Fatalf("tracked process: %v (%s)\n%s", err, msg, text)
	}
	if text, _ := os.ReadFile(conf); !strings.Contains(string(text), "vrrp_track_process director {\n    process govs\n    weight 5\n}\n") {
		t.Errorf("file after the tracked process:\n%s", text)
	}

	// a BFD session to a neighbor that runs no BFD (a real server of
	// the lab): down, so its weight -10 comes off
	err = chromedp.Do(ctx,
		listSave("bfd-instances", "", "ok", [2]string{"name", "r1"}, [2]string{"neighbor_ip", "10.77.0.11"}, [2]string{"min_rx", "100"}, [2]string{"min_tx", "100"}),
		listSave("vrrp-instances", "VI_1", "ok", [2]string{"track_bfd", "r1 weight -10"}),
		prio("100 / 105"),
	)
	if err != nil {
		text, _ := os.ReadFile(conf)
		t.Fatalf("tracked BFD session: %v\n%s", err, text)
	}
	if text, _ := os.ReadFile(conf); !strings.Contains(string(text), "bfd_instance r1 {\n    neighbor_ip 10.77.0.11\n    min_rx 100\n    min_tx 100\n}\n") {
		t.Errorf("file after the BFD session:\n%s", text)
	}
	shot(t, ctx, "redundancy-vrrp-all")
}
