package director

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/bgp/bgptest"
	"github.com/govs/govs/internal/dataplane"
)

// TestBGPAnnouncesServicesUp: the director announces the host route of
// every virtual address with a service up, withdraws it when the
// service's quorum is lost, follows reloads that remove or bring back
// govs_bgp, and withdraws everything for good on WithdrawBGP (a stop).
func TestBGPAnnouncesServicesUp(t *testing.T) {
	r := bgptest.NewRouter(t, 65000, 65001, "127.0.0.2")
	block := r.Config("announce_delay 0")
	second := `
virtual_server 192.0.2.20 80 {
    lb_algo mh
    delay_loop 0.05
    real_server 10.0.0.3 8080 {
        TCP_CHECK {
            connect_timeout 0.05
            retry 0
        }
    }
}
`
	withBGP := conf("") + second + block
	f := start(t, withBGP)
	ctx := context.Background()
	routes := func() []string {
		var out []string
		for p := range r.RIB(t) {
			out = append(out, p)
		}
		slices.Sort(out)
		return out
	}
	want := func(what string, w ...string) {
		t.Helper()
		bgptest.WaitFor(t, what, func() (bool, string) {
			got := routes()
			return slices.Equal(got, w), fmt.Sprint(got)
		})
	}
	want("both virtual addresses announced", "192.0.2.10/32", "192.0.2.20/32")
	if rts := r.RIB(t)["192.0.2.10/32"]; len(rts) != 1 || rts[0].NextHop != "127.0.0.2" || rts[0].ASPath != "65001" {
		t.Errorf("route to 192.0.2.10: %+v, want next hop 127.0.0.2, AS path 65001", rts)
	}

	// the only real server of 192.0.2.20 fails: its quorum is lost
	f.hc.set("10.0.0.3:8080", false)
	want("192.0.2.20 withdrawn with its quorum", "192.0.2.10/32")
	st, err := f.d.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := st.BGP
	if b == nil || b.LocalAS != 65001 || b.RouterID != "10.0.0.2" || !slices.Equal(b.Routes, []string{"192.0.2.10/32"}) ||
		len(b.Neighbors) != 1 || b.Neighbors[0].State != "established" || b.Neighbors[0].Since.IsZero() {
		t.Errorf("state bgp: %+v", b)
	}
	f.hc.set("10.0.0.3:8080", true)
	want("192.0.2.20 back", "192.0.2.10/32", "192.0.2.20/32")

	// a reload without govs_bgp closes the session; with it again, the
	// routes come back
	if err := os.WriteFile(f.file, []byte(conf("")+second), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.d.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	want("no route without govs_bgp")
	if st, _ := f.d.State(ctx); st.BGP != nil {
		t.Errorf("state bgp after govs_bgp was removed: %+v", st.BGP)
	}
	if err := os.WriteFile(f.file, []byte(withBGP), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.d.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	want("routes back with govs_bgp", "192.0.2.10/32", "192.0.2.20/32")

	// a deactivated service is not announced
	off := false
	if err := f.d.ChangeService(ctx, api.ServiceChange{Service: "tcp/192.0.2.20:80", Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	want("deactivated service withdrawn", "192.0.2.10/32")

	// maintenance: govs bgp --withdraw, then --announce
	if err := f.d.SetBGPAnnounce(ctx, false); err != nil {
		t.Fatal(err)
	}
	want("every route withdrawn for maintenance")
	if st, _ := f.d.State(ctx); st.BGP == nil || !st.BGP.Drained || st.BGP.Withdrawn {
		t.Errorf("state while drained: %+v", st.BGP)
	}
	if err := f.d.SetBGPAnnounce(ctx, true); err != nil {
		t.Fatal(err)
	}
	want("routes back after --announce", "192.0.2.10/32")

	// stopping: everything withdrawn, and nothing announced again
	if !f.d.WithdrawBGP() {
		t.Error("WithdrawBGP reported no route to withdraw")
	}
	want("every route withdrawn at stop")
	f.hc.set("10.0.0.2:8080", false)
	f.hc.set("10.0.0.2:8080", true)
	f.d.Kick()
	st, _ = f.d.State(ctx)
	if st.BGP == nil || !st.BGP.Withdrawn || len(st.BGP.Routes) != 0 {
		t.Errorf("state after WithdrawBGP: %+v", st.BGP)
	}
	if got := routes(); len(got) != 0 {
		t.Errorf("routes announced again after WithdrawBGP: %v", got)
	}
	if !strings.Contains(f.log.String(), "bgp: withdrawn") {
		t.Errorf("no withdrawal in the log:\n%s", f.log.String())
	}
}

// TestBGPSorryServerKeepsRoute: a service whose quorum is lost but whose
// sorry server answers stays announced (the sorry server is what a
// keepalived user set it for); without one, it is withdrawn.
func TestBGPSorryServerKeepsRoute(t *testing.T) {
	r := bgptest.NewRouter(t, 65000, 65001, "127.0.0.2")
	block := r.Config("announce_delay 0")
	f := start(t, conf("sorry_server 10.0.0.9 8080")+block)
	has := func() (bool, string) {
		_, ok := r.RIB(t)["192.0.2.10/32"]
		return ok, fmt.Sprint(r.RIB(t))
	}
	bgptest.WaitFor(t, "announced", has)
	f.hc.set("10.0.0.1:8080", false)
	f.hc.set("10.0.0.2:8080", false)
	f.waitFor("sorry server", func(s []dataplane.Service) bool { return len(s) == 1 && s[0].Sorry != nil })
	time.Sleep(500 * time.Millisecond)
	if ok, rib := has(); !ok {
		t.Errorf("route withdrawn while the sorry server answers: %s", rib)
	}
}

// TestBGPAnnounceWithoutBGP: govs bgp --withdraw on a director without
// govs_bgp is a bad request that says why.
func TestBGPAnnounceWithoutBGP(t *testing.T) {
	f := start(t, conf(""))
	err := f.d.SetBGPAnnounce(context.Background(), false)
	if !errors.Is(err, api.ErrBadRequest) || !strings.Contains(err.Error(), "no govs_bgp") {
		t.Errorf("SetBGPAnnounce without govs_bgp: %v", err)
	}
}

// TestBGPStartFailureShown: a speaker that cannot start (its listen
// port taken) says why in the state, and its neighbors count as down.
func TestBGPStartFailureShown(t *testing.T) {
	busy, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.Addr().(*net.TCPAddr).Port
	f := start(t, conf("")+fmt.Sprintf("govs_bgp {\n local_as 65001\n router_id 10.0.0.2\n listen_port %d\n neighbor ::1 {\n  remote_as 65000\n }\n}\n", port))
	var b *api.BGP
	bgptest.WaitFor(t, "start error in the state", func() (bool, string) {
		st, err := f.d.State(context.Background())
		if err != nil {
			return false, err.Error()
		}
		b = st.BGP
		return b != nil && strings.Contains(b.LastError, "bgp: start"), fmt.Sprintf("%+v", b)
	})
	if len(b.Neighbors) != 1 || b.Neighbors[0].Address != "::1" || b.Neighbors[0].State != "idle" || b.Running {
		t.Errorf("neighbors of a speaker that did not start: %+v", b)
	}
	// maintenance on a speaker that does not run changes nothing
	if err := f.d.SetBGPAnnounce(context.Background(), false); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("withdraw on a speaker that does not run: %v", err)
	}
	if st, _ := f.d.State(context.Background()); st.BGP.Drained {
		t.Error("drained set by a refused withdrawal")
	}
}

// TestBGPAnnounceDelay: an address whose service comes up is announced
// only after announce_delay; a withdrawal is at once, and the next
// announcement is held again.
func TestBGPAnnounceDelay(t *testing.T) {
	r := bgptest.NewRouter(t, 65000, 65001, "127.0.0.2")
	block := r.Config("announce_delay 1.5")
	started := time.Now()
	f := start(t, conf("")+block)
	has := func() bool {
		_, ok := r.RIB(t)["192.0.2.10/32"]
		return ok
	}
	bgptest.WaitFor(t, "announced after the delay", func() (bool, string) { return has(), fmt.Sprint(r.RIB(t)) })
	if d := time.Since(started); d < 1500*time.Millisecond {
		t.Errorf("announced %v after start, before announce_delay 1.5 s", d)
	}
	f.hc.set("10.0.0.1:8080", false)
	f.hc.set("10.0.0.2:8080", false)
	bgptest.WaitFor(t, "withdrawn with the quorum", func() (bool, string) { return !has(), fmt.Sprint(r.RIB(t)) })
	up := time.Now()
	f.hc.set("10.0.0.1:8080", true)
	f.hc.set("10.0.0.2:8080", true)
	bgptest.WaitFor(t, "announced again after the delay", func() (bool, string) { return has(), fmt.Sprint(r.RIB(t)) })
	if d := time.Since(up); d < 1500*time.Millisecond {
		t.Errorf("announced again %v after the quorum came back, before announce_delay 1.5 s", d)
	}
	// a service deactivated and activated again had its checks running
	// all along: it is announced again at once
	ctx := context.Background()
	off, on := false, true
	if err := f.d.ChangeService(ctx, api.ServiceChange{Service: "tcp/192.0.2.10:80", Enabled: &off}); err != nil {
		t.Fatal(err)
	}
	bgptest.WaitFor(t, "withdrawn when deactivated", func() (bool, string) { return !has(), fmt.Sprint(r.RIB(t)) })
	back := time.Now()
	if err := f.d.ChangeService(ctx, api.ServiceChange{Service: "tcp/192.0.2.10:80", Enabled: &on}); err != nil {
		t.Fatal(err)
	}
	bgptest.WaitFor(t, "announced when activated", func() (bool, string) { return has(), fmt.Sprint(r.RIB(t)) })
	if d := time.Since(back); d >= 1500*time.Millisecond {
		t.Errorf("a service activated again waited %v: its health had not changed, no hold-down is due", d)
	}
}
