package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/govs/govs/internal/bgp/bgptest"
)

// browser starts a headless Chromium for one test (skipped without one).
func browser(t *testing.T) context.Context {
	t.Helper()
	exe := ""
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(n); err == nil {
			exe = p
			break
		}
	}
	if exe == "" {
		t.Skip("no Chromium on this machine (scripts/setup.sh installs Debian's chromium): the browser test of the web UI cannot run")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, tcancel := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { tcancel(); cancel(); acancel() })
	return ctx
}

// webLab starts govs with the web UI (password correct-horse) over two
// healthy backends and returns it, the backends, the virtual service's
// address and the UI's.
func webLab(t *testing.T, extra ...string) (*daemon, *backend, *backend, string, string) {
	t.Helper()
	a, b := newBackend(t, "a"), newBackend(t, "b")
	vip, webAddr := freeAddr(t), freeAddr(t)
	conf := t.TempDir() + "/govs.conf"
	os.WriteFile(conf, []byte(webConf(vip, webAddr, a, b)+strings.Join(extra, "")), 0o644)
	setWebPassword(t, conf, "correct-horse", webAddr)
	d := startGovsFile(t, conf)
	d.waitHealthy(t, a.addr, true)
	d.waitHealthy(t, b.addr, true)
	return d, a, b, vip, webAddr
}

// typeInto empties a form field and types text into it, as a user would
// (the page sees the keystrokes).
func typeInto(sel, text string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).value = ''`, sel)),
		chromedp.SendKeys(chromedp.CSS(sel), text),
	)
}

// shot saves a screenshot into GOVS_SCREENSHOTS (when set) for a human to
// look at.
func shot(t *testing.T, ctx context.Context, name string) {
	dir := os.Getenv("GOVS_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
}

// The web UI in a browser, as an operator uses it: log in (a wrong
// password first), watch the live routing table, change a real server's
// weight in the form (written to the file, in force at once), see an
// invalid change refused with its reason and nothing written, log out.
func TestWebUIBrowser(t *testing.T) {
	ctx := browser(t)
	// a BGP router (GoBGP) the director announces the VIP to: the
	// control panel shows the session
	router := bgptest.NewRouter(t, 65000, 65001, "127.0.0.2")
	// and a BFD session to a neighbor that never answers (shown Down)
	d, a, b, vip, webAddr := webLab(t, router.Config("announce_delay 0"), "bfd_instance UI_BFD {\n    neighbor_ip 127.0.0.3\n}\n")
	for i := 0; i < 20; i++ {
		get("http://" + vip + "/")
	}

	svc := fmt.Sprintf(`tr.svc[data-service="tcp/%s"]`, vip)
	err := chromedp.Do(ctx,
		chromedp.Navigate("http://"+webAddr+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#login-password`)),
		chromedp.SendKeys(chromedp.CSS(`#login-password`), "wrong-horse"),
		chromedp.Click(chromedp.CSS(`#login-submit`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#login-error').textContent.length > 0`, chromedp.WithPollingTimeout(10*time.Second)),
	)
	if err != nil {
		t.Fatalf("login page: %v", err)
	}
	loginErr, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#login-error`)))
	if err != nil {
		t.Fatalf("login page: %v", err)
	}
	if !strings.Contains(loginErr, "wrong password") {
		t.Errorf("wrong password said %q", loginErr)
	}
	err = chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#login-password').value = ''`),
		chromedp.SendKeys(chromedp.CSS(`#login-password`), "correct-horse"),
		chromedp.Click(chromedp.CSS(`#login-submit`)),
		chromedp.WaitVisible(chromedp.CSS(svc)),
		// live: the real servers' rows come with the stream
		chromedp.Poll[chromedp.Void](`document.querySelectorAll('#lvs-table tr.rs').length == 2`, chromedp.WithPollingTimeout(10*time.Second)),
	)
	if err != nil {
		t.Fatalf("after login: %v", err)
	}
	table, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#lvs-table`)))
	if err != nil {
		t.Fatalf("after login: %v", err)
	}
	for _, want := range []string{a.addr, b.addr, "wrr", "Masq"} {
		if !strings.Contains(table, want) {
			t.Errorf("routing table lacks %q:\n%s", want, table)
		}
	}
	vipHost, _, _ := net.SplitHostPort(vip)
	if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](`document.querySelector('#bgp-line').textContent.includes('established')`, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		line, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#bgp-line`)))
		t.Errorf("the control panel's BGP line does not show the session established: %v\n%s", err, line)
	}
	if bfdLine, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#bfd-line`))); err != nil || !strings.Contains(bfdLine, "UI_BFD → 127.0.0.3: Down") {
		t.Errorf("the control panel's BFD line: %q %v", bfdLine, err)
	}
	bgpLine, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#bgp-line`)))
	if !strings.Contains(bgpLine, "announcing "+vipHost+"/32") || !strings.Contains(bgpLine, "127.0.0.1 AS 65000") {
		t.Errorf("BGP line: %q, want the VIP's route and the neighbor", bgpLine)
	}
	if _, ok := router.RIB(t)[vipHost+"/32"]; !ok {
		t.Errorf("the router did not learn %s/32: %v", vipHost, router.RIB(t))
	}
	shot(t, ctx, "control")

	// maintenance from the control panel: withdraw, then announce again
	learned := func() bool { _, ok := router.RIB(t)[vipHost+"/32"]; return ok }
	err = chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`),
		chromedp.Click(chromedp.CSS(`#bgp-toggle`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#bgp-line').textContent.includes('withdrawn for maintenance')`, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#bgp-toggle').textContent == 'Announce the routes again'`, chromedp.WithPollingTimeout(5*time.Second)),
	)
	if err != nil {
		t.Errorf("withdraw from the control panel: %v", err)
	}
	bgptest.WaitFor(t, "route withdrawn from the UI", func() (bool, string) { return !learned(), fmt.Sprint(router.RIB(t)) })
	shot(t, ctx, "control-bgp-withdrawn")
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#bgp-toggle`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#bgp-line').textContent.includes('announcing `+vipHost+`/32')`, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#bgp-toggle').textContent.startsWith('Withdraw the routes')`, chromedp.WithPollingTimeout(5*time.Second)),
		// dismiss its message: the next step waits for a message of its own
		chromedp.Poll[chromedp.Void](`document.querySelector('#message').textContent.includes('announced again')`, chromedp.WithPollingTimeout(5*time.Second)),
		chromedp.Click(chromedp.CSS(`#message button.close`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#message').hidden`, chromedp.WithPollingTimeout(5*time.Second)),
	)
	if err != nil {
		t.Errorf("announce from the control panel: %v", err)
	}
	bgptest.WaitFor(t, "route announced again from the UI", func() (bool, string) { return learned(), fmt.Sprint(router.RIB(t)) })

	// the second real server's weight, through the forms
	rsRow := `#rs-table tr[data-rs-index="1"]`
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`button.tab[data-tab="virtual"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#vs-table tr[data-vs-index="0"] button.vs-edit`)),
		chromedp.Click(chromedp.CSS(`#vs-table tr[data-vs-index="0"] button.vs-edit`)),
		chromedp.WaitVisible(chromedp.CSS(rsRow+` button.rs-edit`)),
		chromedp.Click(chromedp.CSS(rsRow+` button.rs-edit`)),
		chromedp.WaitVisible(chromedp.CSS(`#rs-form input[name="weight"]`)),
		typeInto(`#rs-form input[name="weight"]`, "5"),
		chromedp.Click(chromedp.CSS(`#rs-save`)),
		chromedp.WaitVisible(chromedp.CSS(`#message.ok`)),
	)
	if err != nil {
		t.Fatalf("weight through the form: %v", err)
	}
	text, _ := os.ReadFile(d.conf)
	if !strings.Contains(string(text), "router_id e2e-web   # the UI shows it") {
		t.Errorf("file after the edit:\n%s", text)
	}
	listing, _, _ := d.run(t, "list", "-n")
	if !regexp.MustCompile(`127\.0\.0\.1:` + port(b.addr) + `\s+Masq\s+5\s`).MatchString(listing) {
		t.Errorf("govs list after the form's save:\n%s", listing)
	}
	shot(t, ctx, "virtual-saved")

	// an invalid persistence netmask: refused with the reason, nothing
	// written, what was typed still in the form
	err = chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`#vs-form input[name="persistence_granularity"]`)),
		typeInto(`#vs-form input[name="persistence_granularity"]`, "255.0.255.0"),
		chromedp.Click(chromedp.CSS(`#vs-save`)),
		chromedp.WaitVisible(chromedp.CSS(`#message.error`)),
	)
	if err != nil {
		t.Fatalf("invalid change: %v", err)
	}
	msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#message`)))
	if err != nil {
		t.Fatal(err)
	}
	typed, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`#vs-form input[name="persistence_granularity"]`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "persistence_granularity") || typed != "255.0.255.0" {
		t.Errorf("invalid change: message %q, form kept %q", msg, typed)
	}
	if after, _ := os.ReadFile(d.conf); string(after) != string(text) {
		t.Errorf("refused change written:\n%s", after)
	}
	shot(t, ctx, "virtual-refused")

	// logout: back to the login form, the API closed
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#logout`)),
		chromedp.WaitVisible(chromedp.CSS(`#login-password`)),
	)
	if err != nil {
		t.Fatalf("logout: %v", err)
	}
}

// logIn opens the UI and logs in with webLab's password.
func logIn(webAddr string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Navigate("http://"+webAddr+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#login-password`)),
		chromedp.SendKeys(chromedp.CSS(`#login-password`), "correct-horse"),
		chromedp.Click(chromedp.CSS(`#login-submit`)),
		chromedp.WaitVisible(chromedp.CSS(`#lvs-table tr.svc`)),
	)
}

// listSave opens a list editor's form (id: its box; ADD, or EDIT on the
// row named edit), types the fields (name, value) into it as a user
// would, saves, and waits for the page's message (want: ok or error).
func listSave(id, edit, want string, fields ...[2]string) chromedp.Action[chromedp.Void] {
	open := "#" + id + " button.list-add"
	if edit != "" {
		open = fmt.Sprintf(`#%s-table tr[data-name=%q] button.list-edit`, id, edit)
	}
	steps := []chromedp.Action[chromedp.Void]{clickAt(open), chromedp.WaitVisible(chromedp.CSS("#" + id + `-form [name="name"]`))}
	for _, f := range fields {
		steps = append(steps, typeInto(fmt.Sprintf(`#%s-form [name=%q]`, id, f[0]), f[1]))
	}
	steps = append(steps, clearMessage, clickAt("#"+id+`-form button[type="submit"]`),
		// any message, then the one wanted (a wrong one fails at once;
		// the test then shows it)
		chromedp.WaitVisible(chromedp.CSS(`#message.ok, #message.error`)),
		chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.querySelector('#message').classList.contains(%q)`, want), chromedp.WithPollingTimeout(time.Second)))
	return chromedp.Steps(steps...)
}

// clickAt brings an element to the middle of the window, then clicks
// it: a button near the top of a long panel may otherwise lie under the
// sticky top bar, which would take the click.
func clickAt(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).scrollIntoView({block: 'center'})`, sel)),
		chromedp.Click(chromedp.CSS(sel)),
	)
}

// clearMessage hides the message area, so that waiting for the next
// message does not see the last one.
var clearMessage = chromedp.Evaluate[chromedp.Void](`(() => { const m = document.querySelector('#message'); m.className = ''; m.hidden = true; })()`)

// selectValue picks an option of a select as a user would (the page sees
// the change).
func selectValue(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.value = %q;
		e.dispatchEvent(new Event('input', {bubbles: true})); e.dispatchEvent(new Event('change', {bubbles: true})); })()`, sel, value))
}

// More of the panels, in a browser: GLOBAL SETTINGS saves router_id,
// a real server is drained at run time, and MONITORING SCRIPTS turns the
// TCP checks into HTTP checks on every real server of the service.
func TestWebUIBrowserPanels(t *testing.T) {
	ctx := browser(t)
	d, a, b, _, webAddr := webLab(t)
	err := chromedp.Do(ctx,
		logIn(webAddr),
		// GLOBAL SETTINGS
		chromedp.Click(chromedp.CSS(`button.tab[data-tab="global"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#global-form input[name="router_id"]`)),
		typeInto(`#global-form input[name="router_id"]`, "lb-renamed"),
		chromedp.Click(chromedp.CSS(`#global-save`)),
		chromedp.WaitVisible(chromedp.CSS(`#message.ok`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#router-id').textContent === 'lb-renamed'`, chromedp.WithPollingTimeout(10*time.Second)),
	)
	if err != nil {
		t.Fatalf("global settings: %v", err)
	}
	text, _ := os.ReadFile(d.conf)
	// the changed statement is written anew (its comment goes); the
	// rest keeps its text
	if !strings.Contains(string(text), "    router_id lb-renamed\n") || !strings.HasPrefix(string(text), "# web farm, edited through the web UI\n") {
		t.Errorf("file after the global save:\n%s", text)
	}

	// drain the first real server at run time
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`button.tab[data-tab="virtual"]`)),
		chromedp.Click(chromedp.CSS(`#vs-table tr[data-vs-index="0"] button.vs-edit`)),
		chromedp.WaitVisible(chromedp.CSS(`#rs-table tr[data-rs-index="0"] button.rs-drain`)),
		clearMessage,
		chromedp.Click(chromedp.CSS(`#rs-table tr[data-rs-index="0"] button.rs-drain`)),
		chromedp.WaitVisible(chromedp.CSS(`#message.ok`)),
	)
	if err != nil {
		t.Fatalf("drain: %v", err)
	}
	listing, _, _ := d.run(t, "list", "-n")
	if !regexp.MustCompile(`127\.0\.0\.1:` + port(a.addr) + `\s+Masq\s+0\s`).MatchString(listing) {
		t.Errorf("govs list after the drain:\n%s", listing)
	}

	// MONITORING SCRIPTS: an HTTP check for every real server
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`button.subtab[data-subtab="checks"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#check-table button.check-edit`)),
		chromedp.Click(chromedp.CSS(`#check-table button.check-edit`)),
		chromedp.WaitVisible(chromedp.CSS(`#check-form select[name="kind"]`)),
		selectValue(`#check-form select[name="kind"]`, "HTTP_GET"),
		chromedp.WaitVisible(chromedp.CSS(`#check-form input[name="url_path"]`)),
		typeInto(`#check-form input[name="url_path"]`, "/health"),
		chromedp.Click(chromedp.CSS(`#check-apply-all`)),
		clearMessage,
		chromedp.Click(chromedp.CSS(`#check-save`)),
		chromedp.WaitVisible(chromedp.CSS(`#message.ok`)),
	)
	if err != nil {
		t.Fatalf("monitoring scripts: %v", err)
	}
	shot(t, ctx, "checks-saved")
	text, _ = os.ReadFile(d.conf)
	if n := strings.Count(string(text), "HTTP_GET {"); n != 2 || strings.Contains(string(text), "TCP_CHECK") || strings.Count(string(text), "path /health") != 2 {
		t.Errorf("file after applying the check to every real server:\n%s", text)
	}
	// the backends answer every path: both stay up under the new check
	d.waitHealthy(t, a.addr, true)
	d.waitHealthy(t, b.addr, true)
}

// The blocks edited as lists (vrrp_script, virtual_server_group), in a
// browser: a script added goes into the file before the services, a
// rename is written, a virtual_server_group is added and the service
// switched onto it through its form (it keeps serving), and deleting the
// group while the service uses it is refused with the reason, the file
// unchanged.
func TestWebUIBrowserLists(t *testing.T) {
	ctx := browser(t)
	d, a, b, vip, webAddr := webLab(t)
	err := chromedp.Do(ctx,
		logIn(webAddr),
		// REDUNDANCY: a new vrrp_script
		chromedp.Click(chromedp.CSS(`button.tab[data-tab="redundancy"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#vrrp-scripts button.list-add`)),
		listSave("vrrp-scripts", "", "ok", [2]string{"name", "chk_up"}, [2]string{"script", "/bin/true"}, [2]string{"interval", "2"}, [2]string{"weight", "-10"}),
		chromedp.WaitVisible(chromedp.CSS(`#vrrp-scripts-table tr[data-name="chk_up"]`)),
	)
	if err != nil {
		t.Fatalf("add a vrrp_script: %v", err)
	}
	text, _ := os.ReadFile(d.conf)
	if s, v := strings.Index(string(text), "vrrp_script chk_up {\n    script /bin/true\n    interval 2\n    weight -10\n}\n"), strings.Index(string(text), "virtual_server 127.0.0.1"); s < 0 || s > v {
		t.Fatalf("file after adding the script (want it before the services):\n%s", text)
	}
	// rename it
	err = chromedp.Do(ctx,
		listSave("vrrp-scripts", "chk_up", "ok", [2]string{"name", "chk_web"}),
		chromedp.WaitVisible(chromedp.CSS(`#vrrp-scripts-table tr[data-name="chk_web"]`)),
	)
	if err != nil {
		t.Fatalf("rename the vrrp_script: %v", err)
	}
	if text, _ = os.ReadFile(d.conf); !strings.Contains(string(text), "vrrp_script chk_web {") || strings.Contains(string(text), "chk_up") {
		t.Errorf("file after the rename:\n%s", text)
	}
	shot(t, ctx, "redundancy-scripts")
	// a sync group of an instance the file does not have: refused by
	// the server with the reason, the form kept
	err = chromedp.Do(ctx,
		listSave("sync-groups", "", "error", [2]string{"name", "G"}, [2]string{"group", "VI_web"}, [2]string{"track_script", "chk_web weight 5"}),
	)
	if err != nil {
		t.Fatalf("sync group form: %v", err)
	}
	if msg, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#message`))); !strings.Contains(msg, `vrrp_sync_group "G": unknown vrrp_instance "VI_web"`) {
		t.Errorf("sync group of an unknown instance: message %q", msg)
	}
	if after, _ := os.ReadFile(d.conf); string(after) != string(text) {
		t.Errorf("refused sync group written:\n%s", after)
	}
	shot(t, ctx, "redundancy-sync-refused")

	// VIRTUAL SERVERS: a virtual_server_group of the service's address,
	// then the service moved onto it
	vipHost, vipPort, _ := net.SplitHostPort(vip)
	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`button.tab[data-tab="virtual"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#vs-groups button.list-add`)),
		chromedp.Click(chromedp.CSS(`#vs-groups button.list-add`)),
		chromedp.WaitVisible(chromedp.CSS(`#vs-groups-form textarea[name="entries"]`)),
		typeInto(`#vs-groups-form input[name="name"]`, "web"),
		// a line the page cannot read: said at once, nothing sent
		typeInto(`#vs-groups-form textarea[name="entries"]`, vipHost+" "+vipPort+" extra"),
		clearMessage,
		chromedp.Click(chromedp.CSS(`#vs-groups-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#message.error`)),
	)
	if err != nil {
		t.Fatalf("virtual_server_group form: %v", err)
	}
	if msg, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#message`))); !strings.Contains(msg, `unknown word "extra"`) {
		t.Errorf("bad entry line: message %q", msg)
	}
	err = chromedp.Do(ctx,
		typeInto(`#vs-groups-form textarea[name="entries"]`, vipHost+" "+vipPort),
		clearMessage,
		chromedp.Click(chromedp.CSS(`#vs-groups-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#message.ok`)),
		chromedp.WaitVisible(chromedp.CSS(`#vs-groups-table tr[data-name="web"]`)),
		chromedp.Click(chromedp.CSS(`#vs-table tr[data-vs-index="0"] button.vs-edit`)),
		chromedp.WaitVisible(chromedp.CSS(`#vs-form input[name="group"]`)),
		typeInto(`#vs-form input[name="group"]`, "web"),
		chromedp.Poll[chromedp.Void](`document.querySelector('#vs-form input[name="addr"]').disabled`, chromedp.WithPollingTimeout(5*time.Second)),
		clearMessage,
		chromedp.Click(chromedp.CSS(`#vs-save`)),
		chromedp.WaitVisible(chromedp.CSS(`#message.ok`)),
	)
	if err != nil {
		t.Fatalf("service onto the group: %v", err)
	}
	text, _ = os.ReadFile(d.conf)
	g, v := strings.Index(string(text), "virtual_server_group web {\n    "+vipHost+" "+vipPort+"\n}\n"), strings.Index(string(text), "virtual_server group web {\n    lb_algo wrr\n")
	if g < 0 || v < 0 || g > v {
		t.Fatalf("file after moving the service onto the group:\n%s", text)
	}
	listing, _, _ := d.run(t, "list", "-n")
	for _, rs := range []string{a.addr, b.addr} {
		if !strings.Contains(listing, rs) {
			t.Errorf("govs list after the move lacks %s:\n%s", rs, listing)
		}
	}
	served := 0
	for i := 0; i < 10; i++ {
		if body, err := get("http://" + vip + "/"); err == nil && body != "" {
			served++
		}
	}
	if served != 10 {
		t.Errorf("through the group's address: %d of 10 requests answered", served)
	}
	shot(t, ctx, "virtual-groups")

	// the group cannot go while the service uses it
	err = chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`window.confirm = () => true`),
		clearMessage,
		chromedp.Click(chromedp.CSS(`#vs-groups-table tr[data-name="web"] button.list-delete`)),
		chromedp.WaitVisible(chromedp.CSS(`#message.error`)),
	)
	if err != nil {
		t.Fatalf("delete the used group: %v", err)
	}
	msg, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#message`)))
	if !strings.Contains(msg, `unknown virtual_server_group "web"`) {
		t.Errorf("deleting the used group: message %q", msg)
	}
	if after, _ := os.ReadFile(d.conf); string(after) != string(text) {
		t.Errorf("refused deletion written:\n%s", after)
	}

	// the group renamed while the service's editor (and a real server's
	// form) is open: the service follows, in the file and in its open
	// forms, which save afterwards
	err = chromedp.Do(ctx,
		clickAt(`#rs-table tr[data-rs-index="0"] button.rs-edit`),
		chromedp.WaitVisible(chromedp.CSS(`#rs-form input[name="weight"]`)),
		listSave("vs-groups", "web", "ok", [2]string{"name", "www"}),
		chromedp.Poll[chromedp.Void](`document.querySelector('#vs-form input[name="group"]').value === 'www'`, chromedp.WithPollingTimeout(5*time.Second)),
		typeInto(`#rs-form input[name="weight"]`, "3"),
		clearMessage,
		clickAt(`#rs-save`),
		chromedp.WaitVisible(chromedp.CSS(`#message.ok, #message.error`)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#message').classList.contains('ok')`, chromedp.WithPollingTimeout(time.Second)),
	)
	if err != nil {
		t.Fatalf("group renamed: %v", err)
	}
	if text, _ = os.ReadFile(d.conf); !strings.Contains(string(text), "virtual_server group www {") {
		t.Errorf("file after the group's rename:\n%s", text)
	}

	// back from the group to the address and port, through the form;
	// then the group, unused, goes
	err = chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`#vs-form input[name="group"]`)),
		typeInto(`#vs-form input[name="group"]`, ""),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#vs-form input[name="group"]').dispatchEvent(new Event('input', {bubbles: true}))`),
		chromedp.Poll[chromedp.Void](`!document.querySelector('#vs-form input[name="addr"]').disabled`, chromedp.WithPollingTimeout(5*time.Second)),
		typeInto(`#vs-form input[name="addr"]`, vipHost),
		typeInto(`#vs-form input[name="port"]`, vipPort),
		clearMessage,
		chromedp.Click(chromedp.CSS(`#vs-save`)),
		chromedp.WaitVisible(chromedp.CSS(`#message.ok`)),
		clearMessage,
		chromedp.Click(chromedp.CSS(`#vs-groups-table tr[data-name="www"] button.list-delete`)),
		chromedp.WaitVisible(chromedp.CSS(`#message.ok`)),
	)
	if err != nil {
		msg, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#message`)))
		t.Fatalf("back to the address: %v (%s)", err, msg)
	}
	text, _ = os.ReadFile(d.conf)
	if !strings.Contains(string(text), "virtual_server "+vipHost+" "+vipPort+" {\n    lb_algo wrr\n") || strings.Contains(string(text), "virtual_server_group") {
		t.Errorf("file after going back to the address and deleting the group:\n%s", text)
	}
	if body, err := get("http://" + vip + "/"); err != nil || body == "" {
		t.Errorf("through the address again: %q %v", body, err)
	}
}
