package xdp

import (
	"net/netip"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/dataplane"
)

// onCPU moves the test's (locked) thread to cpu; newTDP pinned it to 0.
func (x *tdp) onCPU(cpu int) {
	x.t.Helper()
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		x.t.Fatalf("pin to cpu %d: %v", cpu, err)
	}
}

// needCPU1 skips the test unless its thread can be moved to CPU 1, and
// leaves it on CPU 0.
func (x *tdp) needCPU1() {
	x.t.Helper()
	var one unix.CPUSet
	one.Set(1)
	if err := unix.SchedSetaffinity(0, &one); err != nil || x.d.ncpu < 2 {
		x.t.Skipf("needs a CPU 1 to run on (possible CPUs %d, pinning: %v)", x.d.ncpu, err)
	}
	x.onCPU(0)
}

// TestCountersOnEveryCPU: packets the program handles on another CPU
// than 0 land in that CPU's block of cpu_data (the real servers'
// counters, exits, events), and Exits,
// Events and Stats sum every block. The other tests run on CPU 0 only.
func TestCountersOnEveryCPU(t *testing.T) {
	x := newTDP(t, Options{})
	x.needCPU1()
	x.apply(svc(dataplane.UDP, vip4, 53, "rr", pool(1)...))
	p := pkt{src: netip.AddrPortFrom(client(1), 5000), dst: netip.AddrPortFrom(vip4, 53), proto: 17, payload: []byte("abc")}
	for range 2 {
		x.expect(p.frame(), xdpTX, "tx_dr")
	}
	x.onCPU(1)
	for range 3 {
		x.expect(p.frame(), xdpTX, "tx_dr")
	}
	p2 := p // a second flow, new on CPU 1
	p2.src = netip.AddrPortFrom(client(2), 5000)
	x.expect(p2.frame(), xdpTX, "tx_dr")
	x.onCPU(0)

	var per []uint64
	if err := x.d.exits().Lookup(uint32(slices.Index(exitNames[:], "tx_dr")), &per); err != nil {
		t.Fatal(err)
	}
	if len(per) != x.d.ncpu || per[0] != 2 || per[1] != 4 {
		t.Errorf("tx_dr per CPU %v, want 2 on CPU 0 and 4 on CPU 1", per)
	}
	if err := x.d.events().Lookup(uint32(slices.Index(eventNames[:], "conn_new")), &per); err != nil {
		t.Fatal(err)
	}
	if len(per) != x.d.ncpu || per[0] != 1 || per[1] != 1 {
		t.Errorf("conn_new per CPU %v, want one on each", per)
	}
	if got := x.events()["conn_new"]; got != 2 {
		t.Errorf("conn_new %d, want 2", got)
	}
	var id uint32
	for _, s := range x.d.svcs {
		id = s.order[0].id
	}
	var pc []lbCounters
	if err := x.d.statsReal().Lookup(id, &pc); err != nil {
		t.Fatal(err)
	}
	if len(pc) != x.d.ncpu || pc[0].Pkts != 2 || pc[1].Pkts != 4 || pc[0].Conns != 1 || pc[1].Conns != 1 {
		t.Errorf("real server's counters per CPU %+v, want 2 and 4 packets, a connection on each", pc)
	}
	st := x.stats()
	if len(st.Services) != 1 || len(st.Services[0].RealServers) != 1 {
		t.Fatalf("stats: %+v", st)
	}
	want := dataplane.Counters{Conns: 2, InPkts: 6, InBytes: 6 * uint64(len(p.frame())-14)}
	if got := st.Services[0].RealServers[0].Counters; got != want {
		t.Errorf("real server's counters %+v, want %+v (both CPUs' blocks summed)", got, want)
	}
	if got := x.exits()["tx_dr"]; got != 6 {
		t.Errorf("tx_dr %d, want 6", got)
	}
}
