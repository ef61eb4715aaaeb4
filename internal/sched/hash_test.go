package sched

import (
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// siphash24 is reference SipHash-2-4 built on the same round as
// hsiphash32, checked against the published test vectors to pin the round.
func siphash24(k0, k1 uint64, msg []byte) uint64 {
	s := newSipState(k0, k1)
	b := uint64(len(msg)) << 56
	for len(msg) >= 8 {
		m := binary.LittleEndian.Uint64(msg)
		s.v3 ^= m
		s.round()
		s.round()
		s.v0 ^= m
		msg = msg[8:]
	}
	for i, c := range msg {
		b |= uint64(c) << (8 * i)
	}
	s.v3 ^= b
	s.round()
	s.round()
	s.v0 ^= b
	s.v2 ^= 0xff
	for range 4 {
		s.round()
	}
	return s.v0 ^ s.v1 ^ s.v2 ^ s.v3
}

func TestSipRound(t *testing.T) {
	// Key 00 01 .. 0f; messages 00 01 .. (n-1) (Aumasson & Bernstein).
	k0, k1 := uint64(0x0706050403020100), uint64(0x0f0e0d0c0b0a0908)
	msg := []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}
	tests := []struct {
		n    int
		want uint64
	}{
		{0, 0x726fdb47dd0e0e31},
		{15, 0xa129ca6149be45e5},
	}
	for _, tt := range tests {
		if got := siphash24(k0, k1, msg[:tt.n]); got != tt.want {
			t.Errorf("siphash24(%d bytes) = %#x, want %#x", tt.n, got, tt.want)
		}
	}
}

func TestHash32(t *testing.T) {
	// hash_32 takes the top bits of val * 0x61C88647 (mod 2^32).
	tests := []struct {
		val  uint32
		bits uint
		want uint32
	}{
		{1, 8, 0x61},
		{2, 8, 0xc3},
		{0x0a000001, 8, uint32((uint64(0x0a000001) * 0x61C88647 % (1 << 32)) >> 24)},
		{0xffffffff, 10, uint32((uint64(0xffffffff) * 0x61C88647 % (1 << 32)) >> 22)},
	}
	for _, tt := range tests {
		if got := hash32(tt.val, tt.bits); got != tt.want {
			t.Errorf("hash32(%#x, %d) = %#x, want %#x", tt.val, tt.bits, got, tt.want)
		}
	}
	if got, want := addrFold(netip.MustParseAddr("10.1.2.3")), uint32(0x0a010203); got != want {
		t.Errorf("addrFold(v4) = %#x, want %#x", got, want)
	}
	if got, want := addrFold(netip.MustParseAddr("::ffff:10.1.2.3")), uint32(0x0a010203); got != want {
		t.Errorf("addrFold(v4-mapped) = %#x, want %#x", got, want)
	}
	if got, want := addrFold(netip.MustParseAddr("2001:db8:0:1::5")), uint32(0x20010db8^0x1^0x5); got != want {
		t.Errorf("addrFold(v6) = %#x, want %#x", got, want)
	}
}

func TestSHTable(t *testing.T) {
	ds := mkDests(1, 2, 0)
	s := mustNew(t, "sh", Options{}, ds).(*sh)
	var b strings.Builder
	for _, d := range s.t.Load().buckets[:12] {
		b.WriteString(label(ds, d))
	}
	// Each server gets weight consecutive buckets; weight 0 still one.
	if got, want := b.String(), "ABBCABBCABBC"; got != want {
		t.Errorf("first buckets = %s, want %s", got, want)
	}
}

func TestSourceHashing(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	flows := randFlows(r, 100000)
	for _, name := range []string{"sh", "mh"} {
		t.Run(name+" stable", func(t *testing.T) {
			ds := mkDests(1, 1, 2)
			s := mustNew(t, name, Options{}, ds)
			s2 := mustNew(t, name, Options{}, mkDests(1, 1, 2)) // another director
			for _, f := range flows[:2000] {
				d := s.Pick(f)
				g := f
				g.Src = netip.AddrPortFrom(f.Src.Addr(), f.Src.Port()+1) // port ignored
				if s.Pick(g) != d {
					t.Fatalf("%v: client port changed the server", f)
				}
				if d2 := s2.Pick(f); d2.Addr != d.Addr {
					t.Fatalf("%v: directors disagree: %v vs %v", f, d, d2)
				}
			}
		})
		t.Run(name+" distribution", func(t *testing.T) {
			ds := mkDests(1, 1, 2)
			s := mustNew(t, name, Options{}, ds)
			checkShares(t, shares(s, ds, flows), weightShares(1, 1, 2), 0.01)
		})
		t.Run(name+" port", func(t *testing.T) {
			ds := mkDests(1, 1, 1, 1)
			s := mustNew(t, name, Options{Flags: Flags{Port: true}}, ds)
			seen := map[*Dest]bool{}
			f := flow("203.0.113.7:1000")
			for p := range 64 {
				f.Src = netip.AddrPortFrom(f.Src.Addr(), uint16(1000+p))
				seen[s.Pick(f)] = true
			}
			if len(seen) < 3 {
				t.Errorf("%s-port: 64 source ports reached %d servers", name, len(seen))
			}
			// ICMP has no port: always the address hash.
			g := Flow{Proto: 1, Src: netip.MustParseAddrPort("203.0.113.7:0"), Dst: vip4}
			want := s.Pick(g)
			g.Src = netip.MustParseAddrPort("203.0.113.7:99")
			if s.Pick(g) != want {
				t.Error("port hashed for a protocol without ports")
			}
		})
		t.Run(name+" fallback", func(t *testing.T) {
			ds := mkDests(1, 1, 1, 1)
			plain := mustNew(t, name, Options{}, ds)
			fb := mustNew(t, name, Options{Flags: Flags{Fallback: true}}, ds)
			before := make([]*Dest, 5000)
			for i, f := range flows[:5000] {
				before[i] = fb.Pick(f)
			}
			ds[1].SetWeight(0) // quiesce B; tables are not rebuilt
			moved := 0
			for i, f := range flows[:5000] {
				got := fb.Pick(f)
				switch {
				case before[i] == ds[1]:
					if got == nil || got == ds[1] {
						t.Fatalf("fallback: %v -> %v", f, got)
					}
					moved++
					if plain.Pick(f) != nil {
						t.Fatalf("no fallback: %v got a server, want nil", f)
					}
				case got != before[i]:
					t.Fatalf("%v moved from %v to %v though its server is up", f, before[i], got)
				}
			}
			if moved == 0 {
				t.Fatal("no flow hashed to the quiesced server")
			}
		})
	}
}

func TestDestinationHashing(t *testing.T) {
	ds := mkDests(1, 5, 1, 1)
	s := mustNew(t, "dh", Options{}, ds).(*dh)
	// Weights are ignored: one bucket per server in turn.
	var b strings.Builder
	for _, d := range s.t.Load().buckets[:8] {
		b.WriteString(label(ds, d))
	}
	if got, want := b.String(), "ABCDABCD"; got != want {
		t.Errorf("buckets = %s, want %s", got, want)
	}
	flows := randFlows(rand.New(rand.NewPCG(1, 1)), 3000)
	byDst := map[netip.Addr]*Dest{}
	for _, f := range flows {
		d := s.Pick(f)
		if prev, ok := byDst[f.Dst.Addr()]; ok && prev != d {
			t.Fatalf("destination %v went to %v and %v", f.Dst.Addr(), prev, d)
		}
		byDst[f.Dst.Addr()] = d
	}
	if len(byDst) < 200 {
		t.Fatalf("only %d destination addresses", len(byDst))
	}
}

func addrsOf(table []*Dest) []string {
	out := make([]string, len(table))
	for i, d := range table {
		if d == nil {
			out[i] = "-"
			continue
		}
		out[i] = d.Addr.String()
	}
	return out
}

// TestMaglevGolden pins the table for a fixed input: a change to the hash
// or the population order shows up here (and would break agreement
// between directors running different govs versions).
func TestMaglevGolden(t *testing.T) {
	ds := mkDests(1, 2, 3, 0)
	table, err := MaglevTable(ds, 251)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i, d := range table {
		fmt.Fprintf(&b, "%s", label(ds, d))
		if i%50 == 49 {
			b.WriteByte('\n')
		}
	}
	got := b.String() + "\n"
	path := filepath.Join("testdata", "mh_251.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
	// Weights 1:2:3 give exactly that many slots per turn; D has none.
	cnt := map[string]int{}
	for _, c := range strings.ReplaceAll(got, "\n", "") {
		cnt[string(c)]++
	}
	if diff := cmp.Diff(map[string]int{"A": 42, "B": 84, "C": 125}, cnt); diff != "" {
		t.Errorf("slot counts (-want +got):\n%s", diff)
	}
}

// maglevPaperSize is the M of the Maglev paper (NSDI'16), for the tests
// of its properties (shares, disruption), which it states for M > 100·N.
const maglevPaperSize = 65537

func TestMaglevDeterministic(t *testing.T) {
	a, _ := MaglevTable(mkDests(3, 1, 4, 1, 5), DefaultMaglevTableSize)
	b, _ := MaglevTable(mkDests(3, 1, 4, 1, 5), DefaultMaglevTableSize)
	if diff := cmp.Diff(addrsOf(a), addrsOf(b)); diff != "" {
		t.Errorf("two builds differ (-a +b):\n%s", diff)
	}
}

func TestMaglevRemap(t *testing.T) {
	for _, n := range []int{10, 100} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			ws := make([]int, n)
			for i := range ws {
				ws[i] = 1
			}
			ds := mkDests(ws...)
			before, _ := MaglevTable(ds, maglevPaperSize)
			for _, rm := range []int{0, n / 2, n - 1} {
				rest := append(append([]*Dest(nil), ds[:rm]...), ds[rm+1:]...)
				after, _ := MaglevTable(rest, maglevPaperSize)
				changed := 0
				for i := range before {
					if before[i] != after[i] {
						changed++
					}
				}
				frac := float64(changed) / float64(len(before))
				limit := 1/float64(n) + 0.01
				t.Logf("N=%d remove #%d: %.4f of slots remapped (limit %.4f)", n, rm, frac, limit)
				if frac > limit {
					t.Errorf("removing server %d of %d remapped %.4f of keys, limit %.4f", rm, n, frac, limit)
				}
			}
		})
	}
}

func TestMaglevWeightedShares(t *testing.T) {
	ws := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10} // M = 65537 > 100·N
	ds := mkDests(ws...)
	table, _ := MaglevTable(ds, maglevPaperSize)
	cnt := map[*Dest]int{}
	for _, d := range table {
		cnt[d]++
	}
	want := weightShares(ws...)
	for i, d := range ds {
		got := float64(cnt[d]) / float64(len(table))
		if rel := got/want[i] - 1; rel > 0.01 || rel < -0.01 {
			t.Errorf("table share of %c = %.5f, want %.5f ± 1%%", 'A'+i, got, want[i])
		}
	}
	s := mustNew(t, "mh", Options{}, ds)
	checkShares(t, shares(s, ds, randFlows(rand.New(rand.NewPCG(9, 9)), 100000)), want, 0.01)
}

// Large weights are scaled down to at most 63 turns (IPVS rshift); a tiny
// weight next to a huge one still gets one turn.
func TestMaglevWeightShift(t *testing.T) {
	ds := mkDests(1000, 1)
	table, _ := MaglevTable(ds, 251)
	cnt := map[*Dest]int{}
	for _, d := range table {
		cnt[d]++
	}
	// gcd 1, 1000 needs 10 bits: shift 4, turns 62 and 1.
	// 251 = 3 full rounds of 63 + 62 slots: A fills the table in round 4
	// before B's turn, so B has 3.
	if got, want := cnt[ds[1]], 3; got != want {
		t.Errorf("B slots = %d, want %d", got, want)
	}
}

func TestMaglevTooManyServers(t *testing.T) {
	if _, err := MaglevTable(mkDests(1, 1, 1), 2); err == nil {
		t.Error("3 servers in a 2-slot table: no error")
	}
	// The scheduler keeps its previous table.
	ds := mkDests(1, 1)
	s := mustNew(t, "mh", Options{TableSize: 2}, ds)
	s.Update(mkDests(1, 1, 1))
	if d := s.Pick(flow("203.0.113.1:1")); d != ds[0] && d != ds[1] {
		t.Errorf("after a refused update Pick = %v", d)
	}
}

func TestMaglevSlot(t *testing.T) {
	ds := mkDests(1, 2, 3)
	s := mustNew(t, "mh", Options{TableSize: 251, Flags: Flags{Port: true}}, ds)
	// a first update: the kernel's list has the servers newest first
	table, _ := MaglevTable(reversed(ds), 251)
	for _, f := range randFlows(rand.New(rand.NewPCG(4, 4)), 500) {
		if got, want := s.Pick(f), table[MaglevSlot(f, true, 251)]; got != want {
			t.Fatalf("%v: Pick %v, table[MaglevSlot] %v", f, got, want)
		}
	}
}

func reversed(ds []*Dest) []*Dest {
	r := slices.Clone(ds)
	slices.Reverse(r)
	return r
}

// TestMaglevKernelOrder: the mh scheduler fills its table in the order
// of the list an IPVS service holds after keepalived added the servers in
// config order, newest first (ip_vs_ctl adds at the head): the reverse of
// the config order. The order depends on the servers alone, not on what
// came before, so every govs director given the same servers builds the
// same table: one removed and added again gets its slots back, and a
// weight change keeps the order.
func TestMaglevKernelOrder(t *testing.T) {
	ds := mkDests(1, 1, 1, 1) // A B C D
	a, b, c, d := ds[0], ds[1], ds[2], ds[3]
	s, err := New("mh", Options{TableSize: 251})
	if err != nil {
		t.Fatal(err)
	}
	m := s.(*mh)
	steps := []struct {
		name  string
		dests []*Dest
		want  []*Dest // the kernel's list after keepalived added dests
	}{
		{"config order", []*Dest{a, b, c}, []*Dest{c, b, a}},
		{"b fails (no inhibit_on_failure)", []*Dest{a, c}, []*Dest{c, a}},
		{"b is back: its slots again", []*Dest{a, b, c}, []*Dest{c, b, a}},
		{"d added, a removed", []*Dest{b, c, d}, []*Dest{d, c, b}},
	}
	for _, st := range steps {
		m.Update(st.dests)
		want, _ := MaglevTable(st.want, 251)
		if diff := cmp.Diff(addrsOf(want), addrsOf(*m.t.Load())); diff != "" {
			t.Errorf("%s: table is not the kernel-order one (-want +got):\n%s", st.name, diff)
		}
		fresh := mustNew(t, "mh", Options{TableSize: 251}, st.dests)
		if diff := cmp.Diff(addrsOf(*fresh.(*mh).t.Load()), addrsOf(*m.t.Load())); diff != "" {
			t.Errorf("%s: a fresh scheduler builds another table (-fresh +updated):\n%s", st.name, diff)
		}
	}
	c.SetWeight(5) // a weight change alone keeps the order
	m.Update([]*Dest{b, c, d})
	want, _ := MaglevTable([]*Dest{d, c, b}, 251)
	if diff := cmp.Diff(addrsOf(want), addrsOf(*m.t.Load())); diff != "" {
		t.Errorf("weight change: (-want +got):\n%s", diff)
	}
}
