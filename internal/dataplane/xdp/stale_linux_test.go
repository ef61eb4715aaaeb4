package xdp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/govs/govs/internal/dataplane"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
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
	d, key := openWithConn(t, open)
	var err error
	counted := make([]lbCounters, d.ncpu)
	counted[0].Pkts = 7
	if err := d.statsReal().Put(uint32(5), counted); err != nil {
		t.Fatal(err)
	}
	connID, cpuID := mapID(t, d.objs.Conn4Tbl), mapID(t, d.objs.CpuData)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	oldFail(t, pin)

	var logs bytes.Buffer
	d, err = open(slog.New(slog.NewTextHandler(&logs, nil)), 4096)
	if err != nil {
		t.Fatalf("open over an old snat_fail map: %v", err)
	}
	if !strings.Contains(logs.String(), "counter maps do not match") || !strings.Contains(logs.String(), "maps=snat_fail\n") ||
		strings.Contains(logs.String(), "starting with empty tables") {
		t.Errorf("log does not say that snat_fail alone was replaced:\n%s", logs.String())
	}
	if id := mapID(t, d.objs.Conn4Tbl); id != connID {
		t.Errorf("connection table is map %d, want the adopted map %d", id, connID)
	}
	if id := mapID(t, d.objs.CpuData); id != cpuID {
		t.Errorf("cpu_data is map %d, want the adopted map %d", id, cpuID)
	}
	adoptedConn(t, d, key)
	if got, err := d.readCounters(d.statsReal(), 5); err != nil || got.InPkts != 7 {
		t.Errorf("real server counters after snat_fail was replaced: %+v, %v; want the 7 packets kept", got, err)
	}
	if _, err := d.failCount(1); err != nil {
		t.Errorf("snat_fail unreadable: %v", err)
	}

	// stats_svc: the real servers' counters in cpu_data start again
	// with it (a service's counters are their sum)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	oldPin(t, pin, "stats_svc", &ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 32, MaxEntries: 1024})
	logs.Reset()
	d, err = open(slog.New(slog.NewTextHandler(&logs, nil)), 4096)
	if err != nil {
		t.Fatalf("open over an old stats_svc map: %v", err)
	}
	if !strings.Contains(logs.String(), "maps=stats_svc\n") {
		t.Errorf("log does not say that stats_svc was replaced:\n%s", logs.String())
	}
	if got, err := d.readCounters(d.statsReal(), 5); err != nil || got != (dataplane.Counters{}) {
		t.Errorf("real server counters after stats_svc was replaced: %+v, %v; want zero", got, err)
	}
	if id := mapID(t, d.objs.CpuData); id != cpuID {
		t.Errorf("cpu_data is map %d, want the adopted map %d", id, cpuID)
	}
	if id := mapID(t, d.objs.Conn4Tbl); id != connID {
		t.Errorf("connection table is map %d, want the adopted map %d", id, connID)
	}

	// A state map that does not match too (another table size): every
	// table starts empty, as in TestIncompatiblePins.
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	oldFail(t, pin)
	logs.Reset()
	d, err = open(slog.New(slog.NewTextHandler(&logs, nil)), 8192)
	if err != nil {
		t.Fatalf("open over an old snat_fail map and another table size: %v", err)
	}
	defer d.Close()
	if strings.Contains(logs.String(), "counter maps do not match") || !strings.Contains(logs.String(), "starting with empty tables") {
		t.Errorf("log does not say that every table starts empty:\n%s", logs.String())
	}
	if id := mapID(t, d.objs.Conn4Tbl); id == connID {
		t.Errorf("connection table of another size adopted (map %d)", id)
	}
}

// openWithConn opens a pin lab's dataplane and puts one connection in
// its table, for a restart to adopt (adoptedConn).
func openWithConn(t *testing.T, open func(*slog.Logger, int) (*Dataplane, error)) (*Dataplane, lbFlowKey4) {
	t.Helper()
	d, err := open(nil, 4096)
	if err != nil {
		t.Fatalf("first attach: %v", err)
	}
	key := lbFlowKey4{Saddr: [4]uint8{192, 0, 2, 1}, Daddr: [4]uint8{192, 0, 2, 2}, Sport: 1, Dport: 2, Proto: 17}
	if err := d.objs.Conn4Tbl.Put(key, lbConn{State: 5}); err != nil {
		t.Fatal(err)
	}
	return d, key
}

func adoptedConn(t *testing.T, d *Dataplane, key lbFlowKey4) {
	t.Helper()
	var c lbConn
	if err := d.objs.Conn4Tbl.Lookup(key, &c); err != nil || c.State != 5 {
		t.Errorf("adopted connection: %+v, %v", c, err)
	}
}

// oldFail replaces the snat_fail map pinned under pin by one of another
// layout (32-bit counters).
func oldFail(t *testing.T, pin string) {
	t.Helper()
	oldPin(t, pin, "snat_fail", &ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 4, MaxEntries: 1024})
}

// TestLegacyPinsMigrated: the pins of a govs from before cpu_data (its
// real servers in real_tbl, its counters in stats_real, exits and events)
// are taken over into cpu_data and removed; the connections are adopted.
// A cpu_data already pinned (a start that died half way, or a downgrade
// in between) is overwritten. Real-server counters of another layout
// start again from zero, and the services' with them.
func TestLegacyPinsMigrated(t *testing.T) {
	const pin = "/sys/fs/bpf/xd-test-legacypins"
	open, _ := pinLab(t, "xd-legacypins", pin)
	d, key := openWithConn(t, open)
	var err error
	// what a cpu_data of an earlier start holds: gone from real_tbl since
	if err := d.reals().putAll(6, &lbReal{Gen: 99, Svc: 1}); err != nil {
		t.Fatal(err)
	}
	connID, ncpu := mapID(t, d.objs.Conn4Tbl), uint32(d.ncpu)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	legacy := func(name string, typ ebpf.MapType, valueSize, entries uint32, flags uint32, put func(m *ebpf.Map) error) {
		t.Helper()
		_ = os.Remove(filepath.Join(pin, name))
		m, err := ebpf.NewMap(&ebpf.MapSpec{Type: typ, KeySize: 4, ValueSize: valueSize, MaxEntries: entries, Flags: flags})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if err := put(m); err != nil {
			t.Fatal(err)
		}
		if err := m.Pin(filepath.Join(pin, name)); err != nil {
			t.Fatal(err)
		}
	}
	want := lbReal{Dmac: [6]uint8{2, 0, 0, 0, 0, 9}, Ifindex: 3, Svc: 2, Gen: 11, Family: 4, Method: 1, Valid: 1, Port: 80, Mtu: 1500,
		Addr: [16]uint8{10, 0, 0, 9}}
	realTbl := func() {
		legacy("real_tbl", ebpf.Array, 64, maxReals, 0, func(m *ebpf.Map) error { return m.Put(uint32(5), want) })
	}
	realTbl()
	legacy("stats_real", ebpf.Array, 40, maxReals*ncpu, unix.BPF_F_MMAPABLE, func(m *ebpf.Map) error {
		return m.Put((ncpu-1)*maxReals+5, lbCounters{Conns: 2, Pkts: 10, Bytes: 1000})
	})
	txDR := uint32(slices.Index(exitNames[:], "tx_dr"))
	legacy("exits", ebpf.Array, 8, exitSlots*ncpu, unix.BPF_F_MMAPABLE, func(m *ebpf.Map) error { return m.Put(txDR, uint64(42)) })
	legacy("events", ebpf.Array, 8, evSlots*ncpu, unix.BPF_F_MMAPABLE, func(m *ebpf.Map) error { return m.Put((ncpu-1)*evSlots, uint64(3)) })

	var logs bytes.Buffer
	d, err = open(slog.New(slog.NewTextHandler(&logs, nil)), 4096)
	if err != nil {
		t.Fatalf("open over a previous govs's pins: %v", err)
	}
	if !strings.Contains(logs.String(), "took over") || !strings.Contains(logs.String(), "real_servers=1 counters=true") ||
		strings.Contains(logs.String(), "not taken over") {
		t.Errorf("log does not say that everything was taken over:\n%s", logs.String())
	}
	mem, err := d.objs.CpuData.Memory()
	if err != nil {
		t.Fatal(err)
	}
	for c := range d.ncpu {
		for id, w := range map[uint32]lbReal{5: want, 6: {}} {
			var got lbReal
			buf := make([]byte, 64)
			if _, err := mem.ReadAt(buf, d.reals().off(c, id)); err != nil {
				t.Fatal(err)
			}
			if err := binary.Read(bytes.NewReader(buf), binary.NativeEndian, &got); err != nil || got != w {
				t.Errorf("CPU %d's copy of real server %d: %+v (%v), want %+v", c, id, got, err, w)
			}
		}
	}
	if got, err := d.readCounters(d.statsReal(), 5); err != nil || got.Conns != 2 || got.InPkts != 10 || got.InBytes != 1000 {
		t.Errorf("real server 5's counters: %+v, %v; want the previous govs's", got, err)
	}
	if ex, err := d.Exits(); err != nil || ex["tx_dr"] != 42 {
		t.Errorf("tx_dr exits: %d, %v; want 42", ex["tx_dr"], err)
	}
	if ev, err := d.Events(); err != nil || ev["conn_new"] != 3 {
		t.Errorf("conn_new events: %d, %v; want 3", ev["conn_new"], err)
	}
	for _, n := range legacyPins {
		if pinExists(pin, n) {
			t.Errorf("the previous govs's %s is still pinned", n)
		}
	}
	if id := mapID(t, d.objs.Conn4Tbl); id != connID {
		t.Errorf("connection table is map %d, want the adopted map %d", id, connID)
	}
	adoptedConn(t, d, key)

	// an older govs, whose stats_real was a per-CPU array: its counters
	// and the services' start again
	svcCounted := make([]lbCounters, d.ncpu)
	svcCounted[0].Pkts = 5
	if err := d.objs.StatsSvc.Put(uint32(2), svcCounted); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	realTbl()
	legacy("stats_real", ebpf.PerCPUArray, 40, maxReals, 0, func(*ebpf.Map) error { return nil })
	logs.Reset()
	d, err = open(slog.New(slog.NewTextHandler(&logs, nil)), 4096)
	if err != nil {
		t.Fatalf("open over an older govs's pins: %v", err)
	}
	defer d.Close()
	if !strings.Contains(logs.String(), "counters not taken over") || !strings.Contains(logs.String(), "counters=false") {
		t.Errorf("log does not say that the counters start again:\n%s", logs.String())
	}
	if got, err := d.readCounters(d.statsReal(), 5); err != nil || got != (dataplane.Counters{}) {
		t.Errorf("real server 5's counters: %+v, %v; want zero", got, err)
	}
	if got, err := d.readCounters(d.objs.StatsSvc, 2); err != nil || got != (dataplane.Counters{}) {
		t.Errorf("service 2's counters: %+v, %v; want zero", got, err)
	}
	if r, err := d.readReal(5); err != nil || r != want {
		t.Errorf("real server 5: %+v, %v; want %+v", r, err, want)
	}
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

// TestTxFlagOnlyWhenSole: real servers are marked to leave by XDP_TX
// (REAL_F_TX, setXmit) only by a govs whose program is attached to one
// interface and runs on no other: not with two interfaces (then they
// are marked REAL_F_REDIR: xmitOn lists both), not while a link of the
// previous govs that another process holds keeps its program on the
// second one (then with neither mark), and only then once it is gone.
func TestTxFlagOnlyWhenSole(t *testing.T) {
	const pin = "/sys/fs/bpf/xd-test-txflag"
	open, _ := pinLabOn(t, "xd-txflag", pin)
	d, err := open(nil, 4096, pinLabIf, pinLabIf+"p")
	if err != nil {
		t.Fatalf("attach to both ends: %v", err)
	}
	if len(d.xmitOn) != 2 {
		t.Errorf("attached to two interfaces, xmitOn %v; want both", d.xmitOn)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// another process's handle on the second interface's link
	held, err := link.LoadPinnedLink(filepath.Join(pin, "link_"+pinLabIf+"p"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	d, err = open(slog.New(slog.NewTextHandler(&logs, nil)), 4096, pinLabIf)
	if err != nil {
		_ = held.Close()
		t.Fatalf("open with one interface: %v", err)
	}
	if d.xmitOn != nil {
		t.Errorf("a govs program still runs on %sp, yet xmitOn %v", pinLabIf, d.xmitOn)
	}
	if !strings.Contains(logs.String(), "still attached to another interface") {
		t.Errorf("no warning about the program left on %sp:\n%s", pinLabIf, logs.String())
	}
	_ = held.Close() // the last reference: the program leaves the interface
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d, err = open(nil, 4096, pinLabIf)
	if err != nil {
		t.Fatalf("open with one interface: %v", err)
	}
	defer d.Close()
	l, err := d.nl.LinkByName(pinLabIf)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint32(l.Attrs().Index); !slices.Equal(d.xmitOn, []uint32{want}) {
		t.Errorf("attached to %s alone, xmitOn %v; want its index %d", pinLabIf, d.xmitOn, want)
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
			var err error
			if r, err = d2.readReal(rs.id); err != nil {
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
	syncAt(t, d2, true) // a sync that re-resolves every next hop
	if valid() != 1 {
		t.Error("a sync whose resolution was pending marked the real server invalid")
	}
	noRoute = true
	syncAt(t, d2, true)
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
	syncAt(t, d2, false)
	if n := templates(d2.objs.PersistTbl); n != 1 {
		t.Errorf("%d templates after the adopting govs's first sync, want 1", n)
	}
}

// TestAdoptedTableCleared: a restarted govs knows the scheduling tables
// it adopted, so removing an adopted service frees its run of sched_tbl
// for the services that come next.
func TestAdoptedTableCleared(t *testing.T) {
	x := newTDP(t, Options{KeepOnClose: true})
	x.apply(svc(dataplane.TCP, vip4, 80, "mh", rsv(rs1, 1, dataplane.DR), rsv(rs2, 1, dataplane.DR)))
	if free := x.d.slots.Free(); free != schedSlots-4093 {
		t.Fatalf("%d sched_tbl slots free after Apply, want %d", free, schedSlots-4093)
	}
	d2 := restart(t, x, func(a netip.Addr, m dataplane.Method) nexthop {
		return nexthop{addr: a, err: errors.New("not resolved")}
	})
	if free := d2.slots.Free(); free != schedSlots-4093 {
		t.Fatalf("%d sched_tbl slots free after the restart, want %d (the adopted table's run taken)", free, schedSlots-4093)
	}
	if err := d2.Apply(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if free := d2.slots.Free(); free != schedSlots {
		t.Errorf("%d sched_tbl slots free after the adopted service was removed, want all %d", free, schedSlots)
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

// syncAt runs d's sync, as the round that resolves every next hop again
// when checkNH is set.
func syncAt(t *testing.T, d *Dataplane, checkNH bool) {
	t.Helper()
	d.mu.Lock()
	d.nhChecked = time.Now()
	if checkNH {
		d.nhChecked = time.Time{}
	}
	err := d.syncLocked()
	d.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
}

// TestHashSchedTblMigrated: the scheduling tables a govs from before
// the flat sched_tbl pinned in a hash keyed by (service, slot), with no
// base in svc_cfgs, are moved into runs of the array by the next start,
// which then forwards new flows as the previous program did and removes
// the hash.
func TestHashSchedTblMigrated(t *testing.T) {
	x := newTDP(t, Options{KeepOnClose: true})
	rs3 := netip.MustParseAddrPort("10.0.0.3:80")
	// first (service 1, so the migration places it first): three rr
	// servers, whose whole cycles use 1023 of the ring's 1024 slots
	x.apply(svc(dataplane.UDP, vip4, 54, "rr", rsv(rs1, 1, dataplane.DR), rsv(rs2, 1, dataplane.DR), rsv(rs3, 1, dataplane.DR)))
	x.apply(svc(dataplane.UDP, vip4, 54, "rr", rsv(rs1, 1, dataplane.DR), rsv(rs2, 1, dataplane.DR), rsv(rs3, 1, dataplane.DR)),
		svc(dataplane.TCP, vip4, 80, "mh", rsv(rs1, 1, dataplane.DR), rsv(rs2, 1, dataplane.DR), rsv(rs3, 1, dataplane.DR)),
		svc(dataplane.UDP, vip4, 53, "rr", rsv(rs2, 1, dataplane.DR)))
	// where the mh service sends a few new flows
	chosen := func(run func([]byte) (uint32, []byte)) []string {
		var out []string
		for i := range 8 {
			p := syn(client(10+i), 40000, vip4, 80)
			v, frame := run(p.frame())
			if v != xdpTX {
				t.Fatalf("flow %d: verdict %d", i, v)
			}
			out = append(out, fmt.Sprintf("%x", frame[:6]))
		}
		return out
	}
	before := chosen(x.run)
	// an earlier govs's pins: tables in a hash, bases 0
	pin := x.d.opts.PinPath
	old, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 8, ValueSize: 4, MaxEntries: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	for _, s := range x.d.svcs {
		for i, v := range s.pushed {
			if err := old.Put(legacyTblKey{s.id, uint32(i)}, v); err != nil {
				t.Fatal(err)
			}
		}
		var c lbSvcCfg
		if err := x.d.objs.SvcCfgs.Lookup(s.id, &c); err != nil {
			t.Fatal(err)
		}
		c.TblBase = 0
		if err := x.d.objs.SvcCfgs.Put(s.id, &c); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(pin, "sched_tbl")); err != nil {
		t.Fatal(err)
	}
	if err := old.Pin(filepath.Join(pin, "sched_tbl")); err != nil {
		t.Fatal(err)
	}
	x.dropFlowCache()
	x.deleteConns()

	d2 := restart(t, x, resolvedNH)
	if pinExists(pin, legacySchedPin) || pinExists(pin, "sched_tbl") && mapType(t, filepath.Join(pin, "sched_tbl")) != ebpf.Array {
		t.Errorf("the hash is still pinned after the migration")
	}
	runs := map[uint32]extent{}
	for _, s := range d2.svcs {
		runs[s.id] = s.tbl
		if s.tbl.n != ringCapacity(s.layout.mode, s.tblLen, 1024) || s.tblLen == 0 {
			t.Errorf("service %s adopted with run %+v for %d slots", s.spec.Key, s.tbl, s.tblLen)
		}
		want := x.d.svcs[s.spec.Key].pushed
		if !slices.Equal(s.pushed, want) {
			t.Errorf("service %s: migrated table differs from the hash's", s.spec.Key)
		}
	}
	if len(runs) != 3 || runs[1].base == runs[2].base || runs[2].base == runs[3].base || runs[1].base == runs[3].base {
		t.Errorf("runs %v: want three services in runs of their own", runs)
	}
	after := chosen(func(f []byte) (uint32, []byte) {
		out := make([]byte, len(f)+512)
		v, err := d2.objs.GovsLb.Run(&ebpf.RunOptions{Data: f, DataOut: out})
		if err != nil {
			t.Fatal(err)
		}
		return v, out
	})
	if !slices.Equal(before, after) {
		t.Errorf("new flows went to %v before the migration and to %v after", before, after)
	}
	// the migrated runs are as large as the layouts: the first Apply
	// leaves every table where it is
	var svcs []dataplane.Service
	for _, s := range x.d.svcs {
		svcs = append(svcs, s.spec)
	}
	if err := d2.Apply(context.Background(), svcs); err != nil {
		t.Fatal(err)
	}
	for _, s := range d2.svcs {
		if s.tbl != runs[s.id] {
			t.Errorf("service %s moved from %+v to %+v by the first Apply", s.spec.Key, runs[s.id], s.tbl)
		}
	}
}

func mapType(t *testing.T, path string) ebpf.MapType {
	t.Helper()
	m, err := ebpf.LoadPinnedMap(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	return m.Type()
}

// TestAdoptedTablesStay: a restarted govs takes back each table's whole
// run, so the first Apply of the same configuration rewrites every
// table where it is (no move, no interim configuration): a ring that
// uses 1023 of its 1024 slots (three servers) included.
func TestAdoptedTablesStay(t *testing.T) {
	x := newTDP(t, Options{KeepOnClose: true})
	rs3 := netip.MustParseAddrPort("10.0.0.3:80")
	svcs := []dataplane.Service{
		svc(dataplane.TCP, vip4, 80, "rr", rsv(rs1, 1, dataplane.DR), rsv(rs2, 1, dataplane.DR), rsv(rs3, 1, dataplane.DR)),
		svc(dataplane.TCP, vip4, 81, "mh", rsv(rs1, 1, dataplane.DR), rsv(rs2, 1, dataplane.DR)),
		svc(dataplane.UDP, vip4, 53, "wrr", rsv(rs1, 2, dataplane.DR), rsv(rs2, 1, dataplane.DR)),
	}
	x.apply(svcs...)
	runs := func(d *Dataplane) map[dataplane.ServiceKey]extent {
		out := map[dataplane.ServiceKey]extent{}
		for k, s := range d.svcs {
			out[k] = s.tbl
		}
		return out
	}
	before := runs(x.d)
	if n := x.d.svcs[svcs[0].Key].tblLen; n != 1023 {
		t.Fatalf("three rr servers use %d ring slots, want 1023 (whole cycles)", n)
	}
	d2 := restart(t, x, resolvedNH)
	if got := runs(d2); !maps.Equal(got, before) {
		t.Errorf("adopted runs %v, want the previous process's %v", got, before)
	}
	free := d2.slots.Free()
	if err := d2.Apply(context.Background(), svcs); err != nil {
		t.Fatal(err)
	}
	if got := runs(d2); !maps.Equal(got, before) {
		t.Errorf("runs after the first Apply %v, want %v", got, before)
	}
	if f := d2.slots.Free(); f != free {
		t.Errorf("%d free slots after the first Apply, %d before", f, free)
	}
}

// resolvedNH resolves every real server, as newTDP's resolver does.
func resolvedNH(a netip.Addr, _ dataplane.Method) nexthop {
	return nexthop{addr: a, ok: true, ifindex: 1, dmac: realMAC(a), smac: directorMAC, mtu: 1500}
}
