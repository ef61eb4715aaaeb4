package xdp

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/govs/govs/internal/dataplane"
	"github.com/vishvananda/netns"
)

// TestStalePinnedLink: a link pinned by an earlier govs whose interface
// has since gone (its namespace was deleted, or the veth recreated) is not
// adopted: the new process drops the pin and attaches afresh instead of
// failing with "link has been severed".
func TestStalePinnedLink(t *testing.T) {
	open, run := pinLab(t, "xd-stale", "/sys/fs/bpf/xd-test-stale")
	d, err := open(nil, 4096)
	if err != nil {
		t.Fatalf("first attach: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// the namespace and its interface go away; the pins stay
	run("ip", "netns", "del", "xd-stale")

	var logs bytes.Buffer
	d, err = open(slog.New(slog.NewTextHandler(&logs, nil)), 4096)
	if err != nil {
		t.Fatalf("attach after the interface was recreated: %v", err)
	}
	defer d.Close()
	if !strings.Contains(logs.String(), "pinned xdp link not reusable") {
		t.Errorf("no stale-link warning in the log:\n%s", logs.String())
	}
	out, err := exec.Command("ip", "-n", "xd-stale", "link", "show", pinLabIf).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "xdp") {
		t.Errorf("program not attached to the new %s: %v\n%s", pinLabIf, err, out)
	}
}

// TestIncompatiblePins: maps pinned by a govs with another table size (or
// map layout) are not adopted; the new process starts with empty tables,
// keeps the pinned link and replaces the program in it.
func TestIncompatiblePins(t *testing.T) {
	open, _ := pinLab(t, "xd-incompat", "/sys/fs/bpf/xd-test-incompat")
	d, err := open(nil, 4096)
	if err != nil {
		t.Fatalf("first attach: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	d, err = open(slog.New(slog.NewTextHandler(&logs, nil)), 8192)
	if err != nil {
		t.Fatalf("open with another table size: %v", err)
	}
	defer d.Close()
	for _, want := range []string{"starting with empty tables", "adopted xdp link"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	if n := d.objs.Conn4Tbl.MaxEntries(); n != 8192 {
		t.Errorf("connection table has %d entries, want the new size 8192", n)
	}
}

const pinLabIf = "xdst0"

// pinLab gives a function that (re)creates namespace nsName with a veth
// and opens a dataplane on it in that namespace, pinned under pin with
// KeepOnClose; everything is removed at the end of the test.
func pinLab(t *testing.T, nsName, pin string) (func(*slog.Logger, int) (*Dataplane, error), func(...string)) {
	openOn, run := pinLabOn(t, nsName, pin)
	return func(log *slog.Logger, size int) (*Dataplane, error) { return openOn(log, size, pinLabIf) }, run
}

// pinLabOn is pinLab whose open takes the interfaces to attach to:
// pinLabIf and its veth peer pinLabIf+"p" (down) exist.
func pinLabOn(t *testing.T, nsName, pin string) (func(*slog.Logger, int, ...string) (*Dataplane, error), func(...string)) {
	requireRoot(t)
	requireBPF(t)
	const ifName = pinLabIf
	_ = RemovePinned(pin)
	_ = exec.Command("ip", "netns", "del", nsName).Run()
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	mkveth := func() {
		run("ip", "netns", "add", nsName)
		run("ip", "-n", nsName, "link", "add", ifName, "type", "veth", "peer", "name", ifName+"p")
		run("ip", "-n", nsName, "link", "set", ifName, "up")
	}
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "del", nsName).Run()
		_ = RemovePinned(pin)
	})

	open := func(log *slog.Logger, size int, ifaces ...string) (*Dataplane, error) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		orig, err := netns.Get()
		if err != nil {
			t.Fatal(err)
		}
		defer orig.Close()
		if exec.Command("ip", "netns", "pids", nsName).Run() != nil {
			mkveth()
		}
		h, err := netns.GetFromName(nsName)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = netns.Set(orig) }()
		// no sync during the test: it would delete entries put by hand
		return New(Options{Interfaces: ifaces, PinPath: pin, KeepOnClose: true, ConnTableSize: size, Logger: log,
			SyncInterval: time.Hour})
	}

	return open, run
}

// TestIncompatibleCounterPins: when only counter maps pinned by an
// earlier govs do not match (an upgrade changed their layout), those are
// replaced and the rest is adopted: the connection table is the same
// kernel map, with its entries.
func TestIncompatibleCounterPins(t *testing.T) {
	const pin = "/sys/fs/bpf/xd-test-counterpins"
	open, _ := pinLab(t, "xd-counterpins", pin)
	d, err := open(nil, 4096)
	if err != nil {
		t.Fatalf("first attach: %v", err)
	}
	key := lbFlowKey4{Saddr: [4]uint8{192, 0, 2, 1}, Daddr: [4]uint8{192, 0, 2, 2}, Sport: 1, Dport: 2, Proto: 17}
	if err := d.objs.Conn4Tbl.Put(key, lbConn{State: 5}); err != nil {
		t.Fatal(err)
	}
	connID, realsID := mapID(t, d.objs.Conn4Tbl), mapID(t, d.objs.StatsReal)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	oldExits(t, pin)

	var logs bytes.Buffer
	d, err = open(slog.New(slog.NewTextHandler(&logs, nil)), 4096)
	if err != nil {
		t.Fatalf("open over an old exits map: %v", err)
	}
	if !strings.Contains(logs.String(), "counter maps do not match") || !strings.Contains(logs.String(), "maps=exits\n") ||
		strings.Contains(logs.String(), "starting with empty tables") {
		t.Errorf("log does not say that exits alone was replaced:\n%s", logs.String())
	}
	if id := mapID(t, d.objs.Conn4Tbl); id != connID {
		t.Errorf("connection table is map %d, want the adopted map %d", id, connID)
	}
	if id := mapID(t, d.objs.StatsReal); id != realsID {
		t.Errorf("stats_real is map %d, want the adopted map %d", id, realsID)
	}
	var c lbConn
	if err := d.objs.Conn4Tbl.Lookup(key, &c); err != nil || c.State != 5 {
		t.Errorf("adopted connection: %+v, %v", c, err)
	}
	if d.objs.Exits.Type() != ebpf.Array || d.objs.Exits.MaxEntries() != exitSlots*uint32(d.ncpu) {
		t.Errorf("exits is a %v of %d entries, want this govs's layout", d.objs.Exits.Type(), d.objs.Exits.MaxEntries())
	}
	if _, err := d.Exits(); err != nil {
		t.Errorf("exits unreadable: %v", err)
	}

	// stats_svc alone: stats_real goes with it (a service's counters
	// are their sum)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	oldPin(t, pin, "stats_svc", &ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 32, MaxEntries: 1024})
	logs.Reset()
	d, err = open(slog.New(slog.NewTextHandler(&logs, nil)), 4096)
	if err != nil {
		t.Fatalf("open over an old stats_svc map: %v", err)
	}
	if !strings.Contains(logs.String(), "maps=stats_real,stats_svc\n") {
		t.Errorf("log does not say that stats_real and stats_svc were replaced:\n%s", logs.String())
	}
	if id := mapID(t, d.objs.StatsReal); id == realsID {
		t.Errorf("stats_real (map %d) kept while stats_svc was replaced", id)
	}
	if id := mapID(t, d.objs.Conn4Tbl); id != connID {
		t.Errorf("connection table is map %d, want the adopted map %d", id, connID)
	}

	// A state map that does not match too (another table size): every
	// table starts empty, as in TestIncompatiblePins.
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	oldExits(t, pin)
	logs.Reset()
	d, err = open(slog.New(slog.NewTextHandler(&logs, nil)), 8192)
	if err != nil {
		t.Fatalf("open over an old exits map and another table size: %v", err)
	}
	defer d.Close()
	if strings.Contains(logs.String(), "counter maps do not match") || !strings.Contains(logs.String(), "starting with empty tables") {
		t.Errorf("log does not say that every table starts empty:\n%s", logs.String())
	}
	if id := mapID(t, d.objs.Conn4Tbl); id == connID {
		t.Errorf("connection table of another size adopted (map %d)", id)
	}
}

// oldExits replaces the exits map pinned under pin by one of the layout
// govs had before 2026-12-05 (a per-CPU array of 28 counters).
func oldExits(t *testing.T, pin string) {
	t.Helper()
	oldPin(t, pin, "exits", &ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 28})
}

// oldPin replaces the map pinned under pin as name by a new one of spec.
func oldPin(t *testing.T, pin, name string, spec *ebpf.MapSpec) {
	t.Helper()
	if err := os.Remove(filepath.Join(pin, name)); err != nil {
		t.Fatal(err)
	}
	old, err := ebpf.NewMap(spec)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := old.Pin(filepath.Join(pin, name)); err != nil {
		t.Fatal(err)
	}
}

func mapID(t *testing.T, m *ebpf.Map) ebpf.MapID {
	t.Helper()
	info, err := m.Info()
	if err != nil {
		t.Fatal(err)
	}
	id, ok := info.ID()
	if !ok {
		t.Fatal("no map ID")
	}
	return id
}

// TestDetachUnconfigured: a link a previous govs pinned for an interface
// the new one is not given is detached (its program would go on
// forwarding there); the configured interface's link is adopted.
func TestDetachUnconfigured(t *testing.T) {
	const pin = "/sys/fs/bpf/xd-test-unconfigured"
	open, _ := pinLabOn(t, "xd-unconfigured", pin)
	d, err := open(nil, 4096, pinLabIf, pinLabIf+"p")
	if err != nil {
		t.Fatalf("attach to both ends: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	d, err = open(slog.New(slog.NewTextHandler(&logs, nil)), 4096, pinLabIf)
	if err != nil {
		t.Fatalf("open with one interface: %v", err)
	}
	defer d.Close()
	for _, want := range []string{"adopted xdp link\" interface=" + pinLabIf + "\n", "no longer configured\" interface=" + pinLabIf + "p\n"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	if _, err := os.Stat(filepath.Join(pin, "link_"+pinLabIf+"p")); !os.IsNotExist(err) {
		t.Errorf("the unconfigured interface's link is still pinned (%v)", err)
	}
	for ifname, want := range map[string]bool{pinLabIf: true, pinLabIf + "p": false} {
		out, err := exec.Command("ip", "-n", "xd-unconfigured", "link", "show", ifname).CombinedOutput()
		if err != nil {
			t.Fatalf("ip link show %s: %v\n%s", ifname, err, out)
		}
		if got := strings.Contains(string(out), "xdp"); got != want {
			t.Errorf("%s has an XDP program: %v, want %v\n%s", ifname, got, want, out)
		}
	}
}

// TestAdoptKeepsNextHop: a restarted govs adopts the next hops its
// predecessor forwarded with, and neither its first Apply nor a sync
// marks a real server invalid because the kernel's neighbour entry has
// aged out meanwhile (resolve reports it pending): the server's flows go
// on being forwarded. A failure that is not a pending neighbour (no
// route) still invalidates it.
func TestAdoptKeepsNextHop(t *testing.T) {
	x := newTDP(t, Options{KeepOnClose: true})
	s := svc(dataplane.TCP, vip4, 80, "rr", rsv(rs1, 1, dataplane.DR))
	x.apply(s)
	p := syn(client(1), 40000, vip4, 80)
	x.expect(p.frame(), xdpTX, "tx_dr")

	wantLayout := x.d.svcs[s.Key].layout
	noRoute := false
	d2 := restart(t, x, func(a netip.Addr, m dataplane.Method) nexthop {
		return nexthop{addr: a, ifindex: 1, pending: !noRoute, err: errors.New("not resolved")}
	})
	// the adopted table's layout is known, so the first Apply of the
	// same configuration updates the table in place rather than
	// clearing it (new flows would find no server meanwhile)
	if got := d2.svcs[s.Key].layout; got != wantLayout {
		t.Errorf("adopted layout %+v, want %+v", got, wantLayout)
	}
	if err := d2.Apply(context.Background(), []dataplane.Service{s}); err != nil {
		t.Fatal(err)
	}
	valid := func() uint8 {
		t.Helper()
		var r lbReal
		for _, rs := range d2.svcs[s.Key].reals {
			if err := d2.objs.RealTbl.Lookup(rs.id, &r); err != nil {
				t.Fatal(err)
			}
		}
		return r.Valid
	}
	if valid() != 1 {
		t.Fatal("the restarted govs marked the adopted real server invalid")
	}
	p.flags = tcpACK
	if v, _, err := d2.objs.GovsLb.Benchmark(p.frame(), 1, nil); err != nil || v != xdpTX {
		t.Errorf("adopted connection: verdict %d, err %v, want XDP_TX", v, err)
	}
	syncAt(t, d2, 9) // the next sync re-resolves every next hop
	if valid() != 1 {
		t.Error("a sync whose resolution was pending marked the real server invalid")
	}
	noRoute = true
	syncAt(t, d2, 9)
	if valid() != 0 {
		t.Error("a sync that found no route kept the real server valid")
	}
}

// TestAdoptKeepsTemplates: until Apply brings an adopted service's
// full configuration, a sync keeps its persistence templates, whose
// timeout it takes from the pinned service configuration.
func TestAdoptKeepsTemplates(t *testing.T) {
	x := newTDP(t, Options{KeepOnClose: true})
	s := svc(dataplane.TCP, vip4, 80, "rr", rsv(rs1, 1, dataplane.DR))
	s.Persistence = 300 * time.Second
	x.apply(s)
	x.expect(syn(client(1), 40000, vip4, 80).frame(), xdpTX, "tx_dr")
	templates := func(m *ebpf.Map) int { return countEntries[lbPersistKey, lbPersistVal](t, m) }
	if n := templates(x.d.objs.PersistTbl); n != 1 {
		t.Fatalf("%d templates after a persistent connection, want 1", n)
	}
	d2 := restart(t, x, func(a netip.Addr, m dataplane.Method) nexthop {
		return nexthop{addr: a, err: errors.New("not resolved")}
	})
	syncAt(t, d2, 0)
	if n := templates(d2.objs.PersistTbl); n != 1 {
		t.Errorf("%d templates after the adopting govs's first sync, want 1", n)
	}
}

// TestAdoptedTableCleared: a restarted govs knows the scheduling tables
// it adopted, so removing an adopted service clears its table instead
// of leaving its entries to fill sched_tbl.
func TestAdoptedTableCleared(t *testing.T) {
	x := newTDP(t, Options{KeepOnClose: true})
	x.apply(svc(dataplane.TCP, vip4, 80, "mh", rsv(rs1, 1, dataplane.DR), rsv(rs2, 1, dataplane.DR)))
	entries := func(m *ebpf.Map) int { return countEntries[lbTblKey, uint32](t, m) }
	if n := entries(x.d.objs.SchedTbl); n == 0 {
		t.Fatal("no scheduling entries after Apply")
	}
	d2 := restart(t, x, func(a netip.Addr, m dataplane.Method) nexthop {
		return nexthop{addr: a, err: errors.New("not resolved")}
	})
	if err := d2.Apply(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if n := entries(d2.objs.SchedTbl); n != 0 {
		t.Errorf("%d scheduling entries left after the adopted service was removed, want 0", n)
	}
}

// countEntries is the number of entries of the hash map m.
func countEntries[K, V any](t *testing.T, m *ebpf.Map) int {
	t.Helper()
	var k K
	var v V
	n := 0
	it := m.Iterate()
	for it.Next(&k, &v) {
		n++
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// restart opens a second director on x's pinned state, as a restarted
// govs would (x's was made with KeepOnClose), with next hops from
// resolve; it is closed at the end of the test.
func restart(t *testing.T, x *tdp, resolve func(netip.Addr, dataplane.Method) nexthop) *Dataplane {
	t.Helper()
	// x keeps its pins on close: they go once both have closed
	pin := x.d.opts.PinPath
	t.Cleanup(func() { _ = RemovePinned(pin) })
	d, err := newDataplane(Options{PinPath: x.d.opts.PinPath, SyncInterval: time.Hour, ConnTableSize: 4096}, resolve)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// syncAt runs d's sync as its round number rounds+1 would.
func syncAt(t *testing.T, d *Dataplane, rounds int) {
	t.Helper()
	d.mu.Lock()
	d.rounds = rounds
	err := d.syncLocked()
	d.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
}
