package vrrp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestReconfigureMachine(t *testing.T) {
	master := func(t *testing.T, trackers ...Tracker) *harness {
		h := newHarness(t, baseConfig(), trackers...)
		h.step(EventStartup{})
		h.at(4 * time.Second)
		h.wantState(StateMaster)
		return h
	}
	t.Run("master, new priority: an advert at once, no transition", func(t *testing.T) {
		h := master(t)
		c := baseConfig()
		c.Priority = 120
		wantActions(t, h.m.Reconfigure(c, localIP, nil, false, h.now), "advert(120)")
		h.wantState(StateMaster)
		if h.m.EffectivePriority() != 120 {
			t.Fatalf("effective priority %d", h.m.EffectivePriority())
		}
		if _, p := h.m.MasterAddr(); p != 120 {
			t.Fatalf("master priority %d", p)
		}
	})
	t.Run("master, new address: an advert at once", func(t *testing.T) {
		h := master(t)
		c := baseConfig()
		c.VirtualIPs = append(c.VirtualIPs, VirtualIP{Prefix: netip.MustParsePrefix("10.0.0.101/32")})
		wantActions(t, h.m.Reconfigure(c, localIP, nil, false, h.now), "advert(100)")
	})
	t.Run("master, nothing advertised changed: nothing sent", func(t *testing.T) {
		h := master(t)
		c := baseConfig()
		c.NoPreempt = true
		wantActions(t, h.m.Reconfigure(c, localIP, nil, false, h.now))
	})
	t.Run("master, a new interval: the next advert after the new one", func(t *testing.T) {
		h := master(t)
		c := baseConfig()
		c.AdvertInterval = 3 * time.Second
		at := h.now
		wantActions(t, h.m.Reconfigure(c, localIP, nil, false, h.now), "advert(100)")
		if d := h.m.NextDeadline(); d != at.Add(3*time.Second) {
			t.Fatalf("next deadline %v after the reload, want 3s", d.Sub(at))
		}
	})
	t.Run("backup becomes the address owner", func(t *testing.T) {
		h := newHarness(t, baseConfig())
		h.step(EventStartup{})
		c := baseConfig()
		c.Priority = 255
		wantActions(t, h.m.Reconfigure(c, localIP, nil, false, h.now), "BACKUP->MASTER", "add", "advert(255)", "announce(5)", "notify(MASTER)")
	})
	t.Run("backup keeps waiting: no action", func(t *testing.T) {
		h := newHarness(t, baseConfig())
		h.step(EventStartup{})
		h.advert(higherIP, 150)
		c := baseConfig()
		c.Priority = 200
		wantActions(t, h.m.Reconfigure(c, localIP, nil, false, h.now))
		h.wantState(StateBackup)
	})
	t.Run("a tracker that fails moves a master to FAULT", func(t *testing.T) {
		h := master(t)
		wantActions(t, h.m.Reconfigure(baseConfig(), localIP, []Tracker{{Key: "script:chk", OK: false}}, false, h.now),
			"MASTER->FAULT", "advert(0)", "remove", "notify(FAULT)")
	})
	t.Run("FAULT left when the failing tracker is no longer tracked", func(t *testing.T) {
		h := newHarness(t, baseConfig(), Tracker{Key: "script:chk", OK: false})
		h.step(EventStartup{})
		h.wantState(StateFault)
		wantActions(t, h.m.Reconfigure(baseConfig(), localIP, nil, false, h.now), "FAULT->BACKUP", "notify(BACKUP)")
	})
	t.Run("tracker weights of the new configuration count", func(t *testing.T) {
		h := master(t, Tracker{Key: "file:f", Valued: true, Weight: 5, Value: 2})
		if h.m.EffectivePriority() != 110 {
			t.Fatalf("before: %d", h.m.EffectivePriority())
		}
		wantActions(t, h.m.Reconfigure(baseConfig(), localIP, []Tracker{{Key: "file:f", Valued: true, Weight: -5, Value: 2}}, false, h.now), "advert(90)")
	})
}

func TestAddrDelta(t *testing.T) {
	a, b := baseConfig(), baseConfig()
	a.VirtualIPs = append(a.VirtualIPs, VirtualIP{Prefix: netip.MustParsePrefix("10.0.0.101/32")})
	b.VirtualIPs = []VirtualIP{{Prefix: netip.MustParsePrefix("10.0.0.100/32"), Label: "eth0:1"}}
	a.VirtualRoutes = []VirtualRoute{{Dst: netip.MustParsePrefix("10.9.0.0/16"), Via: netip.MustParseAddr("10.0.0.1")}}
	b.VirtualRoutes = a.VirtualRoutes
	b.VirtualRules = []VirtualRule{{From: netip.MustParsePrefix("10.0.0.100/32"), Table: 100}}
	d, empty := addrDelta(&a, &b)
	if empty || len(d.VirtualRoutes)+len(d.VirtualRules) != 0 {
		t.Fatalf("a - b: %+v", d)
	}
	// the label changed: the address is removed in its old form
	if got := vipPrefixes(&d); !slices.Equal(got, []netip.Prefix{netip.MustParsePrefix("10.0.0.100/32"), netip.MustParsePrefix("10.0.0.101/32")}) {
		t.Fatalf("a - b addresses %v", got)
	}
	d, _ = addrDelta(&b, &a)
	if len(d.VirtualIPs) != 1 || d.VirtualIPs[0].Label != "eth0:1" || len(d.VirtualRules) != 1 || len(d.VirtualRoutes) != 0 {
		t.Fatalf("b - a: %+v", d)
	}
	if _, empty := addrDelta(&a, &a); !empty {
		t.Fatal("a - a not empty")
	}
}

func reloadOpts(cfgs ...InstanceConfig) Options { return Options{Instances: cfgs} }

func TestNodeReloadKeepsMaster(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fnet := &fakeNet{}
		sa, sb := newFakeSystem(fnet, "10.0.0.1"), newFakeSystem(fnet, "10.0.0.2")
		cfgA := baseConfig()
		cfgA.Priority = 150
		rn := &recordNotifier{}
		a, cancelA, doneA := startNode(t, Options{Instances: []InstanceConfig{cfgA}, System: sa, Notifier: rn})
		b, cancelB, doneB := startNode(t, Options{Instances: []InstanceConfig{baseConfig()}, System: sb})
		time.Sleep(10 * time.Second)
		if stateOf(a, "VI_1").State != StateMaster || stateOf(b, "VI_1").State != StateBackup {
			t.Fatal("roles not settled")
		}
		before := stateOf(a, "VI_1")

		next := cfgA
		next.Priority = 160
		next.VirtualIPs = []VirtualIP{{Prefix: netip.MustParsePrefix("10.0.0.101/32")}, {Prefix: netip.MustParsePrefix("10.0.0.102/32")}}
		if err := a.Reload(context.Background(), reloadOpts(next)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond) // well within one advert interval
		after := stateOf(a, "VI_1")
		if after.State != StateMaster || len(after.Transitions) != len(before.Transitions) {
			t.Fatalf("A after the reload: %s, transitions %v", after.State, after.Transitions)
		}
		if sa.hasVIP("10.0.0.100/32") || !sa.hasVIP("10.0.0.101/32") || !sa.hasVIP("10.0.0.102/32") {
			t.Fatalf("A's addresses: %v", sa.vips)
		}
		if after.BasePriority != 160 || after.EffectivePriority != 160 || !slices.Equal(after.VirtualIPs, vipPrefixes(&next)) {
			t.Fatalf("A's status: %+v", after)
		}
		if got := after.Counters.Announcements - before.Counters.Announcements; got != DefaultGARPMasterRepeat {
			t.Fatalf("%d announcements for the new addresses, want %d", got, DefaultGARPMasterRepeat)
		}
		if s := stateOf(b, "VI_1"); s.MasterPriority != 160 {
			t.Fatalf("B heard priority %d at once, want 160", s.MasterPriority)
		}
		if !a.Owns(netip.MustParseAddr("10.0.0.101")) || a.Owns(netip.MustParseAddr("10.0.0.100")) {
			t.Fatal("Owns does not follow the reloaded addresses")
		}
		// no notification for a reload that changed no state
		if got := rn.states("INSTANCE", "VI_1"); !slices.Equal(got, []string{"BACKUP", "MASTER"}) {
			t.Fatalf("notifications %v", got)
		}
		cancelA()
		<-doneA
		cancelB()
		<-doneB
	})
}

func TestNodeReloadLowerPriorityHandsOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fnet := &fakeNet{}
		sa, sb := newFakeSystem(fnet, "10.0.0.1"), newFakeSystem(fnet, "10.0.0.2")
		cfgA := baseConfig()
		cfgA.Priority = 150
		a, cancelA, doneA := startNode(t, Options{Instances: []InstanceConfig{cfgA}, System: sa})
		b, cancelB, doneB := startNode(t, Options{Instances: []InstanceConfig{baseConfig()}, System: sb})
		time.Sleep(10 * time.Second)
		cfgA.Priority = 50
		if err := a.Reload(context.Background(), reloadOpts(cfgA)); err != nil {
			t.Fatal(err)
		}
		// B preempts the lower master after its master-down interval
		time.Sleep(5 * time.Second)
		if sa, sb := stateOf(a, "VI_1"), stateOf(b, "VI_1"); sa.State != StateBackup || sb.State != StateMaster {
			t.Fatalf("after A's priority fell to 50: A %s, B %s", sa.State, sb.State)
		}
		if sa.hasVIP("10.0.0.100/32") || !sb.hasVIP("10.0.0.100/32") {
			t.Fatal("the address did not move")
		}
		cancelA()
		<-doneA
		cancelB()
		<-doneB
	})
}

func TestNodeReloadInstances(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fnet := &fakeNet{}
		s := newFakeSystem(fnet, "10.0.0.1")
		rn := &recordNotifier{}
		c1 := baseConfig()
		c2 := baseConfig()
		c2.Name, c2.VRID = "VI_2", 52
		c2.VirtualIPs = []VirtualIP{{Prefix: netip.MustParsePrefix("10.0.0.200/32")}}
		n, cancel, done := startNode(t, Options{Instances: []InstanceConfig{c1, c2}, System: s, Notifier: rn})
		time.Sleep(5 * time.Second)

		// VI_1 goes, VI_2 keeps running, VI_3 comes; VI_2's old address
		// moves to VI_3
		c3 := baseConfig()
		c3.Name, c3.VRID = "VI_3", 53
		c3.VirtualIPs = c2.VirtualIPs
		c2.VirtualIPs = []VirtualIP{{Prefix: netip.MustParsePrefix("10.0.0.201/32")}}
		if err := n.Reload(context.Background(), reloadOpts(c2, c3)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
		if got := rn.states("INSTANCE", "VI_1"); !slices.Equal(got, []string{"BACKUP", "MASTER", "STOP"}) {
			t.Fatalf("VI_1 notifications %v", got)
		}
		// the last says the reload deleted it (keepalived: FAULT, or
		// DELETED with notify_deleted)
		rn.mu.Lock()
		var deleted []string
		for _, e := range rn.evs {
			if e.Deleted {
				deleted = append(deleted, e.Name+"="+e.State.String())
			}
		}
		rn.mu.Unlock()
		if !slices.Equal(deleted, []string{"VI_1=STOP"}) {
			t.Errorf("notifications of deletion: %v", deleted)
		}
		if s.hasVIP("10.0.0.100/32") || s.hasVIP("10.0.0.200/32") || !s.hasVIP("10.0.0.201/32") {
			t.Fatalf("addresses right after the reload: %v", s.vips)
		}
		var names []string
		for _, st := range n.Status() {
			names = append(names, st.Name+"="+st.State.String())
		}
		if !slices.Equal(names, []string{"VI_2=MASTER", "VI_3=BACKUP"}) {
			t.Fatalf("instances %v", names)
		}
		time.Sleep(5 * time.Second)
		if st := stateOf(n, "VI_3"); st.State != StateMaster || !s.hasVIP("10.0.0.200/32") {
			t.Fatalf("VI_3 after its master-down interval: %s, addresses %v", st.State, s.vips)
		}
		if got := rn.states("INSTANCE", "VI_2"); !slices.Equal(got, []string{"BACKUP", "MASTER"}) {
			t.Fatalf("VI_2 notifications %v", got)
		}
		cancel()
		<-done
	})
}

// failSystem refuses to open sockets on interface "bad" (no such
// interface) and "perm" (no permission).
type failSystem struct{ *fakeSystem }

func (f failSystem) OpenConn(ctx context.Context, cfg *InstanceConfig) (Conn, error) {
	switch cfg.Interface {
	case "bad":
		return nil, errors.New("no such interface")
	case "perm":
		return nil, fmt.Errorf("open raw socket: %w", os.ErrPermission)
	}
	return f.fakeSystem.OpenConn(ctx, cfg)
}

func TestNodeReloadRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fnet := &fakeNet{}
		fs := newFakeSystem(fnet, "10.0.0.1")
		n, cancel, done := startNode(t, Options{Instances: []InstanceConfig{baseConfig()}, System: failSystem{fs}})
		time.Sleep(5 * time.Second)
		before := n.Status()

		dup := baseConfig()
		dup.Name = "VI_2"
		err := n.Reload(context.Background(), reloadOpts(baseConfig(), dup))
		if err == nil || !strings.Contains(err.Error(), "already used by VI_1") {
			t.Fatalf("duplicate VRID: %v", err)
		}
		bad := baseConfig()
		bad.Name, bad.Interface, bad.VRID = "VI_2", "bad", 60
		moved := baseConfig()
		moved.VirtualIPs = []VirtualIP{{Prefix: netip.MustParsePrefix("10.0.0.150/32")}}
		// VI_1 would also change: a refused reload changes nothing
		if err := n.Reload(context.Background(), reloadOpts(moved, bad)); err == nil || !strings.Contains(err.Error(), "vrrp_instance VI_2: no such interface") {
			t.Fatalf("socket failure: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
		after := n.Status()
		if len(after) != 1 || after[0].State != StateMaster || !slices.Equal(after[0].VirtualIPs, before[0].VirtualIPs) ||
			!fs.hasVIP("10.0.0.100/32") || fs.hasVIP("10.0.0.150/32") {
			t.Fatalf("state after refused reloads: %+v, addresses %v", after, fs.vips)
		}
		cancel()
		<-done
		if err := n.Reload(context.Background(), reloadOpts(baseConfig())); !errors.Is(err, ErrStopped) {
			t.Fatalf("reload after Run: %v", err)
		}
	})
}

func TestNodeReloadBeforeRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeSystem(&fakeNet{}, "10.0.0.1")
		n, err := NewNode(Options{Instances: []InstanceConfig{baseConfig()}, System: s})
		if err != nil {
			t.Fatal(err)
		}
		c := baseConfig()
		c.Name = "VI_9"
		if err := n.Reload(context.Background(), reloadOpts(c)); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- n.Run(ctx) }()
		time.Sleep(5 * time.Second)
		if st := n.Status(); len(st) != 1 || st[0].Name != "VI_9" || st[0].State != StateMaster {
			t.Fatalf("status %+v", st)
		}
		cancel()
		<-done
	})
}

// A tracker whose watcher keeps running keeps its state across a reload;
// one whose settings changed starts again from its initial state.
func TestNodeReloadTrackers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "weight")
		if err := os.WriteFile(path, []byte("0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		s := newFakeSystem(&fakeNet{}, "10.0.0.1")
		c := baseConfig()
		c.TrackFiles = []TrackFile{{Name: "w", Path: path, Weight: 10}}
		n, cancel, done := startNode(t, Options{Instances: []InstanceConfig{c}, System: s})
		time.Sleep(5 * time.Second)
		if err := os.WriteFile(path, []byte("2\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		if p := stateOf(n, "VI_1").EffectivePriority; p != 120 {
			t.Fatalf("priority %d with the file at 2", p)
		}
		// same file, new weight and priority: the value is kept
		c.Priority = 50
		c.TrackFiles[0].Weight = 20
		if err := n.Reload(context.Background(), reloadOpts(c)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
		if p := stateOf(n, "VI_1").EffectivePriority; p != 90 {
			t.Fatalf("priority %d after the reload, want 50 + 2×20", p)
		}
		// the file's settings change (its init value): a new watcher,
		// which reads the file itself
		c.TrackFiles[0].Init = 1
		if err := n.Reload(context.Background(), reloadOpts(c)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
		if p := stateOf(n, "VI_1").EffectivePriority; p != 90 {
			t.Fatalf("priority %d after the watcher restarted, want 90", p)
		}
		if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		if p := stateOf(n, "VI_1").EffectivePriority; p != 70 {
			t.Fatalf("priority %d with the file at 1, want 70", p)
		}
		n.mu.Lock()
		running := len(n.status)
		n.mu.Unlock()
		if running != 1 {
			t.Fatalf("%d instances", running)
		}
		cancel()
		<-done
	})
}

func TestNodeReloadSyncGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fnet := &fakeNet{}
		s := newFakeSystem(fnet, "10.0.0.1")
		mk := func(name string, vrid int, vip string) InstanceConfig {
			c := baseConfig()
			c.Name, c.VRID = name, vrid
			c.VirtualIPs = []VirtualIP{{Prefix: netip.MustParsePrefix(vip)}}
			return c
		}
		c1, c2 := mk("VI_1", 51, "10.0.0.100/32"), mk("VI_2", 52, "10.0.0.101/32")
		c2.Interface = "eth1"
		n, cancel, done := startNode(t, Options{
			Instances:  []InstanceConfig{c1, c2},
			SyncGroups: []SyncGroupConfig{{Name: "G", Members: []string{"VI_1", "VI_2"}}},
			System:     s,
		})
		time.Sleep(5 * time.Second)
		before := map[string]int{}
		for _, st := range n.Status() {
			if st.State != StateMaster {
				t.Fatalf("%s: %s", st.Name, st.State)
			}
			before[st.Name] = len(st.Transitions)
		}

		// a new member joins the MASTER group: it becomes MASTER, the
		// others stay
		c3 := mk("VI_3", 53, "10.0.0.102/32")
		err := n.Reload(context.Background(), Options{Instances: []InstanceConfig{c1, c2, c3},
			SyncGroups: []SyncGroupConfig{{Name: "G", Members: []string{"VI_1", "VI_2", "VI_3"}}}})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
		for _, st := range n.Status() {
			if st.State != StateMaster {
				t.Fatalf("after VI_3 joined: %s %s (%v)", st.Name, st.State, st.Transitions)
			}
			if b, ok := before[st.Name]; ok && len(st.Transitions) != b {
				t.Fatalf("%s changed state: %v", st.Name, st.Transitions)
			}
		}
		if !s.hasVIP("10.0.0.102/32") {
			t.Fatal("VI_3's address not installed")
		}

		// VI_2's interface fails: the group goes to FAULT; a reload that
		// drops VI_2 lets the others out of it
		s.setLink("eth1", false)
		time.Sleep(10 * time.Millisecond)
		if st := stateOf(n, "VI_1"); st.State != StateFault {
			t.Fatalf("VI_1 with eth1 down: %s", st.State)
		}
		err = n.Reload(context.Background(), Options{Instances: []InstanceConfig{c1, c3},
			SyncGroups: []SyncGroupConfig{{Name: "G", Members: []string{"VI_1", "VI_3"}}}})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		for _, name := range []string{"VI_1", "VI_3"} {
			if st := stateOf(n, name); st.State != StateMaster {
				t.Fatalf("%s after the failed member was dropped: %s (%v)", name, st.State, st.Transitions)
			}
		}
		cancel()
		<-done
	})
}

// A new sync group made by a reload synchronises its members: the owner's
// MASTER pulls the other one along.
func TestNodeReloadNewSyncGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeSystem(&fakeNet{}, "10.0.0.1")
		n, cancel, done := startNode(t, Options{Instances: []InstanceConfig{baseConfig()}, System: s})
		time.Sleep(5 * time.Second)
		c3, c4 := baseConfig(), baseConfig()
		c3.Name, c3.VRID, c3.Priority = "VI_3", 53, 255
		c4.Name, c4.VRID = "VI_4", 54
		c3.VirtualIPs = []VirtualIP{{Prefix: netip.MustParsePrefix("10.0.0.103/32")}}
		c4.VirtualIPs = []VirtualIP{{Prefix: netip.MustParsePrefix("10.0.0.104/32")}}
		err := n.Reload(context.Background(), Options{Instances: []InstanceConfig{baseConfig(), c3, c4},
			SyncGroups: []SyncGroupConfig{{Name: "G2", Members: []string{"VI_3", "VI_4"}}}})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		for _, name := range []string{"VI_1", "VI_3", "VI_4"} {
			if st := stateOf(n, name); st.State != StateMaster {
				t.Fatalf("%s: %s (%v)", name, st.State, st.Transitions)
			}
		}
		cancel()
		<-done
	})
}

// use_vmac interfaces: an instance replaced by a reload (its interface
// changed) while keeping the default VMAC name has the old interface
// removed before the new one is set up; a start that fails removes what
// it set up.
func TestNodeVMACLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeSystem(&fakeNet{}, "10.0.0.1")
		c := baseConfig()
		c.VMAC = "vrrp.51"
		n, cancel, done := startNode(t, Options{Instances: []InstanceConfig{c}, System: s})
		time.Sleep(5 * time.Second)
		c.Interface = "eth1"
		if err := n.Reload(context.Background(), reloadOpts(c)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		cancel()
		<-done
		want := []string{"setup vrrp.51@eth0", "remove vrrp.51@eth0", "setup vrrp.51@eth1", "remove vrrp.51@eth1"}
		if !slices.Equal(s.vmacOps, want) {
			t.Fatalf("VMAC operations %v, want %v", s.vmacOps, want)
		}

		f := newFakeSystem(&fakeNet{}, "10.0.0.1")
		bad := baseConfig()
		bad.Name, bad.Interface, bad.VRID, bad.VMAC = "VI_2", "perm", 52, "vm2"
		c.VMAC = "vm1"
		nn, err := NewNode(Options{Instances: []InstanceConfig{c, bad}, System: failSystem{f}})
		if err != nil {
			t.Fatal(err)
		}
		if err := nn.Run(context.Background()); !errors.Is(err, os.ErrPermission) {
			t.Fatalf("Run without the permission to open a socket: %v", err)
		}
		if len(f.vmacs) != 0 {
			t.Fatalf("VMAC interfaces left after a failed start: %v (%v)", f.vmacs, f.vmacOps)
		}
	})
}

// lateSystem cannot open the sockets of interface "late0" until ready.
type lateSystem struct {
	*fakeSystem
	ready chan struct{}
}

func (l lateSystem) OpenConn(ctx context.Context, cfg *InstanceConfig) (Conn, error) {
	if cfg.Interface == "late0" {
		select {
		case <-l.ready:
		default:
			return nil, fmt.Errorf("%w: link late0: Link not found", ErrNotYet)
		}
	}
	return l.fakeSystem.OpenConn(ctx, cfg)
}

// An instance whose interface is not there yet starts in FAULT, as in
// keepalived, and runs once it can open its socket; a reload meanwhile
// neither fails nor lets it out of FAULT.
func TestNodeSocketLater(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := lateSystem{newFakeSystem(&fakeNet{}, "10.0.0.1"), make(chan struct{})}
		c := baseConfig()
		c.Interface = "late0"
		n, cancel, done := startNode(t, Options{Instances: []InstanceConfig{c, func() InstanceConfig {
			o := baseConfig()
			o.Name, o.VRID = "VI_2", 52
			o.VirtualIPs = []VirtualIP{{Prefix: netip.MustParsePrefix("10.0.0.200/32")}}
			return o
		}()}, System: ls})
		time.Sleep(5 * time.Second)
		if st := stateOf(n, "VI_1"); st.State != StateFault || ls.hasVIP("10.0.0.100/32") {
			t.Fatalf("VI_1 without its interface: %s", st.State)
		}
		if st := stateOf(n, "VI_2"); st.State != StateMaster {
			t.Fatalf("VI_2 beside it: %s", st.State)
		}
		c.Priority = 120
		o := baseConfig()
		o.Name, o.VRID = "VI_2", 52
		o.VirtualIPs = []VirtualIP{{Prefix: netip.MustParsePrefix("10.0.0.200/32")}}
		if err := n.Reload(context.Background(), reloadOpts(c, o)); err != nil {
			t.Fatalf("reload while VI_1 waits for its socket: %v", err)
		}
		time.Sleep(2 * time.Second)
		if st := stateOf(n, "VI_1"); st.State != StateFault {
			t.Fatalf("VI_1 after the reload: %s", st.State)
		}
		close(ls.ready)
		time.Sleep(5 * time.Second)
		st := stateOf(n, "VI_1")
		if st.State != StateMaster || !ls.hasVIP("10.0.0.100/32") || st.LocalAddr != ls.addr || st.BasePriority != 120 {
			t.Fatalf("VI_1 once its socket opened: %+v", st)
		}
		cancel()
		<-done
	})
}

// A sync group whose member waits for its socket stays in FAULT as a
// whole, whatever the order the members start in, until the socket opens.
func TestNodeSocketLaterSyncGroup(t *testing.T) {
	for _, first := range []string{"VI_1", "VI_2"} {
		t.Run(first+" first", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ls := lateSystem{newFakeSystem(&fakeNet{}, "10.0.0.1"), make(chan struct{})}
				c1 := baseConfig()
				c1.Interface = "late0"
				c2 := baseConfig()
				c2.Name, c2.VRID = "VI_2", 52
				c2.VirtualIPs = []VirtualIP{{Prefix: netip.MustParsePrefix("10.0.0.200/32")}}
				insts := []InstanceConfig{c1, c2}
				if first == "VI_2" {
					insts = []InstanceConfig{c2, c1}
				}
				n, cancel, done := startNode(t, Options{Instances: insts, System: ls,
					SyncGroups: []SyncGroupConfig{{Name: "G", Members: []string{"VI_1", "VI_2"}}}})
				time.Sleep(5 * time.Second)
				for _, name := range []string{"VI_1", "VI_2"} {
					if st := stateOf(n, name); st.State != StateFault {
						t.Fatalf("%s while VI_1 waits for its socket: %s (%v)", name, st.State, st.Transitions)
					}
				}
				if ls.hasVIP("10.0.0.200/32") {
					t.Fatal("VI_2 holds its address in FAULT")
				}
				close(ls.ready)
				time.Sleep(5 * time.Second)
				for _, name := range []string{"VI_1", "VI_2"} {
					if st := stateOf(n, name); st.State != StateMaster {
						t.Fatalf("%s once the socket opened: %s (%v)", name, st.State, st.Transitions)
					}
				}
				cancel()
				<-done
			})
		})
	}
}

// A reload that adds an instance whose interface is not there yet starts
// it in FAULT, waiting, as a start does; it runs once the interface comes.
func TestNodeReloadAddsWaitingInstance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ls := lateSystem{newFakeSystem(&fakeNet{}, "10.0.0.1"), make(chan struct{})}
		n, cancel, done := startNode(t, Options{Instances: []InstanceConfig{baseConfig()}, System: ls})
		time.Sleep(5 * time.Second)
		late := baseConfig()
		late.Name, late.Interface, late.VRID = "VI_L", "late0", 60
		late.VirtualIPs = []VirtualIP{{Prefix: netip.MustParsePrefix("10.0.0.160/32")}}
		if err := n.Reload(context.Background(), reloadOpts(baseConfig(), late)); err != nil {
			t.Fatalf("reload adding an instance whose interface is missing: %v", err)
		}
		time.Sleep(2 * time.Second)
		if st := stateOf(n, "VI_L"); st.State != StateFault {
			t.Fatalf("VI_L without its interface: %s", st.State)
		}
		close(ls.ready)
		time.Sleep(5 * time.Second)
		if st := stateOf(n, "VI_L"); st.State != StateMaster || !ls.hasVIP("10.0.0.160/32") {
			t.Fatalf("VI_L once its interface came: %s", st.State)
		}
		if st := stateOf(n, "VI_1"); st.State != StateMaster || len(st.Transitions) != 2 {
			t.Fatalf("VI_1 beside it: %s %v", st.State, st.Transitions)
		}
		cancel()
		<-done
	})
}

// interface_up_down_delays: a link that goes down and comes back within
// the down delay is not seen; one that stays down is, after the delay;
// and coming back waits the up delay.
func TestLinkDelays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeSystem(&fakeNet{}, "10.0.0.1")
		n, cancel, done := startNode(t, Options{Instances: []InstanceConfig{baseConfig()}, System: s,
			LinkDelays: map[string]LinkDelay{"eth0": {Down: 2 * time.Second, Up: time.Second}}})
		time.Sleep(5 * time.Second)
		if st := stateOf(n, "VI_1"); st.State != StateMaster {
			t.Fatalf("start: %s", st.State)
		}
		s.setLink("eth0", false)
		time.Sleep(1500 * time.Millisecond)
		s.setLink("eth0", true)
		time.Sleep(3 * time.Second)
		if st := stateOf(n, "VI_1"); st.State != StateMaster || len(st.Transitions) != 2 {
			t.Fatalf("a 1.5 s flap under a 2 s down delay: %s %v", st.State, st.Transitions)
		}
		s.setLink("eth0", false)
		time.Sleep(1900 * time.Millisecond)
		if st := stateOf(n, "VI_1"); st.State != StateMaster {
			t.Fatalf("down for 1.9 s: %s", st.State)
		}
		time.Sleep(200 * time.Millisecond)
		if st := stateOf(n, "VI_1"); st.State != StateFault {
			t.Fatalf("down for 2.1 s: %s", st.State)
		}
		s.setLink("eth0", true)
		time.Sleep(900 * time.Millisecond)
		if st := stateOf(n, "VI_1"); st.State != StateFault {
			t.Fatalf("up for 0.9 s under a 1 s up delay: %s", st.State)
		}
		time.Sleep(200 * time.Millisecond)
		if st := stateOf(n, "VI_1"); st.State == StateFault {
			t.Fatalf("up for 1.1 s: %s", st.State)
		}
		// a reload while a change waits out its delay keeps what the
		// instances have seen: the flap stays unseen
		time.Sleep(5 * time.Second)
		before := len(stateOf(n, "VI_1").Transitions)
		s.setLink("eth0", false)
		time.Sleep(500 * time.Millisecond)
		c := baseConfig()
		c.Priority = 110
		if err := n.Reload(context.Background(), Options{Instances: []InstanceConfig{c},
			LinkDelays: map[string]LinkDelay{"eth0": {Down: 2 * time.Second, Up: time.Second}}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		s.setLink("eth0", true)
		time.Sleep(3 * time.Second)
		if st := stateOf(n, "VI_1"); st.State != StateMaster || len(st.Transitions) != before {
			t.Fatalf("a flap across a reload: %s %v", st.State, st.Transitions[before:])
		}
		// a reload without the delays: a change counts at once
		if err := n.Reload(context.Background(), reloadOpts(baseConfig())); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		s.setLink("eth0", false)
		time.Sleep(10 * time.Millisecond)
		if st := stateOf(n, "VI_1"); st.State != StateFault {
			t.Fatalf("without delays after the reload: %s", st.State)
		}
		cancel()
		<-done
	})
}

// unicast_fault_no_peer: an instance without unicast peers stays in FAULT
// (instead of advertising by multicast) until a reload gives it a peer.
func TestNodeUnicastFaultNoPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sys := newFakeSystem(&fakeNet{}, "10.0.0.1")
		c := baseConfig()
		c.UnicastFaultNoPeer = true
		n, cancel, done := startNode(t, Options{Instances: []InstanceConfig{c}, System: sys})
		time.Sleep(5 * time.Second)
		st := stateOf(n, "VI_1")
		if st.State != StateFault || sys.hasVIP("10.0.0.100/32") {
			t.Fatalf("without a peer: %s", st.State)
		}
		if !slices.ContainsFunc(st.Trackers, func(tr Tracker) bool { return tr.Key == noPeerKey && !tr.OK }) {
			t.Errorf("trackers %+v lack a failed %s", st.Trackers, noPeerKey)
		}
		c.UnicastPeers = []netip.Addr{netip.MustParseAddr("10.0.0.2")}
		if err := n.Reload(context.Background(), reloadOpts(c)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Second)
		if st := stateOf(n, "VI_1"); st.State != StateMaster {
			t.Fatalf("with a peer: %s", st.State)
		}
		cancel()
		<-done
	})
}

// withoutShared keeps out the routes (by destination, table and metric)
// and rules another holder has too.
func TestWithoutShared(t *testing.T) {
	p := netip.MustParsePrefix
	cfg := InstanceConfig{
		VirtualRoutes: []VirtualRoute{{Dst: p("10.1.0.0/16"), Via: netip.MustParseAddr("10.0.0.1")}, {Dst: p("10.2.0.0/16")}, {Dst: p("10.3.0.0/16"), Table: 5}},
		VirtualRules:  []VirtualRule{{From: p("10.0.0.100/32"), Table: 100, Priority: 7}, {From: p("10.0.0.101/32"), Table: 100, Priority: 8}},
	}
	other := InstanceConfig{
		VirtualRoutes: []VirtualRoute{{Dst: p("10.1.0.0/16"), Via: netip.MustParseAddr("10.0.0.2")}, {Dst: p("10.3.0.0/16")}},
		VirtualRules:  []VirtualRule{{From: p("10.0.0.100/32"), Table: 100, Priority: 7, NoTrack: true}},
	}
	got := withoutShared(cfg, []InstanceConfig{other})
	var dsts []string
	for _, r := range got.VirtualRoutes {
		dsts = append(dsts, r.Dst.String())
	}
	if !slices.Equal(dsts, []string{"10.2.0.0/16", "10.3.0.0/16"}) || len(got.VirtualRules) != 1 || got.VirtualRules[0].Priority != 8 {
		t.Errorf("routes %v, rules %+v", dsts, got.VirtualRules)
	}
	if got := withoutShared(cfg, nil); len(got.VirtualRoutes) != 3 || len(got.VirtualRules) != 2 {
		t.Errorf("no holders: %+v", got)
	}
}
