package sched

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// destIdentity compares Dests by identity and netip values by value.
var destIdentity = cmp.Options{
	cmp.Comparer(func(a, b *Dest) bool { return a == b }),
	cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{}),
}

func newSvc(t *testing.T, cfg ServiceConfig, ds []*Dest) *Service {
	t.Helper()
	s, err := NewService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Update(ds)
	return s
}

func mustSchedule(t *testing.T, s *Service, f Flow) *Dest {
	t.Helper()
	d, err := s.Schedule(f)
	if err != nil {
		t.Fatalf("Schedule(%v): %v", f, err)
	}
	return d
}

func TestNewServiceErrors(t *testing.T) {
	for _, cfg := range []ServiceConfig{
		{Scheduler: "bogus"},
		{Persistence: -time.Second},
		{PersistMask: 129},
		{Scheduler: "mh", Options: Options{TableSize: 100}},
	} {
		if _, err := NewService(cfg); err == nil {
			t.Errorf("NewService(%+v): no error", cfg)
		}
	}
	s := newSvc(t, ServiceConfig{}, mkDests(1))
	if got := s.Scheduler(); got != "wlc" {
		t.Errorf("default scheduler = %q, want wlc", got)
	}
}

func TestNoPersistence(t *testing.T) {
	ds := mkDests(1, 1)
	s := newSvc(t, ServiceConfig{Scheduler: "rr"}, ds)
	f := flow("203.0.113.1:1000")
	got := ""
	for range 4 {
		got += label(ds, mustSchedule(t, s, f))
		s.Release(f)
	}
	if got != "ABAB" {
		t.Errorf("sequence = %s, want ABAB", got)
	}
	var n int
	s.Templates(func(Template) bool { n++; return true })
	if n != 0 {
		t.Errorf("%d templates without persistence", n)
	}
	s.Update(nil)
	if _, err := s.Schedule(f); !errors.Is(err, ErrNoDest) {
		t.Errorf("no servers: err = %v, want ErrNoDest", err)
	}
}

// With rr every new template goes to the next server, so two clients
// sharing a server shows they share a template.
func TestPersistenceMasks(t *testing.T) {
	tests := []struct {
		name   string
		mask   int
		a, b   string // two clients
		shared bool
	}{
		{"v4 full same host", 0, "10.1.1.5:1000", "10.1.1.5:2000", true},
		{"v4 full other host", 0, "10.1.1.5:1000", "10.1.1.6:1000", false},
		{"v4 /24 same net", 24, "10.1.1.5:1000", "10.1.1.200:1000", true},
		{"v4 /24 other net", 24, "10.1.1.5:1000", "10.1.2.5:1000", false},
		{"v4 /16", 16, "10.1.1.5:1000", "10.1.250.5:1000", true},
		{"v4 mask > 32 is /32", 64, "10.1.1.5:1000", "10.1.1.6:1000", false},
		{"v4-mapped is v4", 24, "[::ffff:10.1.1.5]:1000", "10.1.1.9:1000", true},
		{"v6 full", 0, "[2001:db8:1:2::5]:1000", "[2001:db8:1:2::6]:1000", false},
		{"v6 /64 same", 64, "[2001:db8:1:2::5]:1000", "[2001:db8:1:2:ffff::6]:1000", true},
		{"v6 /64 other", 64, "[2001:db8:1:2::5]:1000", "[2001:db8:1:3::5]:1000", false},
		{"v6 /48 same", 48, "[2001:db8:1:2::5]:1000", "[2001:db8:1:ff::5]:1000", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := mkDests(1, 1, 1)
			s := newSvc(t, ServiceConfig{Scheduler: "rr", Persistence: time.Minute, PersistMask: tt.mask}, ds)
			fa, fb := flow(tt.a), flow(tt.b)
			da := mustSchedule(t, s, fa)
			db := mustSchedule(t, s, fb)
			if (da == db) != tt.shared {
				t.Errorf("%s -> %s, %s -> %s; shared template = %v, want %v", tt.a, label(ds, da), tt.b, label(ds, db), da == db, tt.shared)
			}
			// The template sticks for further connections.
			for range 3 {
				if d := mustSchedule(t, s, fa); d != da {
					t.Fatalf("client %s moved from %s to %s", tt.a, label(ds, da), label(ds, d))
				}
			}
		})
	}
}

func TestPersistenceTemplateKey(t *testing.T) {
	ds := mkDests(1, 1, 1)
	s := newSvc(t, ServiceConfig{Scheduler: "rr", Persistence: time.Minute, PersistMask: 24}, ds)
	mustSchedule(t, s, flow("10.1.1.5:1000"))
	mustSchedule(t, s, flow("10.1.1.7:1001"))
	v6 := Flow{Proto: TCP, Src: netip.MustParseAddrPort("[2001:db8::1]:5"), Dst: vip6}
	mustSchedule(t, s, v6)
	var got []Template
	s.Templates(func(tp Template) bool { got = append(got, tp); return true })
	sort.Slice(got, func(i, j int) bool { return got[i].Client.Less(got[j].Client) })
	want := []Template{
		{Client: netip.MustParseAddr("10.1.1.0"), Virtual: vip4, Dest: ds[0], Expires: time.Minute, Conns: 2},
		// The mask is a prefix length for either family: /24 of a v6 client.
		{Client: netip.MustParseAddr("2001:d00::"), Virtual: vip6, Dest: ds[1], Expires: time.Minute, Conns: 1},
	}
	if diff := cmp.Diff(want, got, destIdentity); diff != "" {
		t.Errorf("templates (-want +got):\n%s", diff)
	}
	if ds[0].PersistConns() != 1 || ds[1].PersistConns() != 1 || ds[2].PersistConns() != 0 {
		t.Errorf("PersistConns = %d %d %d, want 1 1 0", ds[0].PersistConns(), ds[1].PersistConns(), ds[2].PersistConns())
	}
}

// FTP (21 + passive data port) and HTTP+HTTPS: one template per client
// with MultiPort, one per port without.
func TestMultiPort(t *testing.T) {
	ports := []uint16{21, 40001, 80, 443}
	for _, multi := range []bool{true, false} {
		t.Run(fmt.Sprint("multiport=", multi), func(t *testing.T) {
			ds := mkDests(1, 1, 1, 1, 1)
			s := newSvc(t, ServiceConfig{Scheduler: "rr", Persistence: time.Minute, MultiPort: multi}, ds)
			seen := map[*Dest]bool{}
			for i, p := range ports {
				f := Flow{Proto: TCP, Src: netip.MustParseAddrPort("203.0.113.5:3000"), Dst: netip.AddrPortFrom(vip4.Addr(), p)}
				if i == 1 {
					f.Proto = UDP // protocols share a MultiPort template too
				}
				seen[mustSchedule(t, s, f)] = true
			}
			n := 0
			var virt netip.AddrPort
			s.Templates(func(tp Template) bool { n++; virt = tp.Virtual; return true })
			if multi {
				if len(seen) != 1 || n != 1 || virt.Port() != 0 {
					t.Errorf("servers %d templates %d virtual %v, want 1 1 port 0", len(seen), n, virt)
				}
			} else if len(seen) != len(ports) || n != len(ports) {
				t.Errorf("servers %d templates %d, want %d each", len(seen), n, len(ports))
			}
		})
	}
}

func TestTemplateExpiry(t *testing.T) {
	clk := newFakeClock()
	ds := mkDests(1, 1)
	s := newSvc(t, ServiceConfig{Scheduler: "rr", Persistence: 300 * time.Second, Now: clk.Now}, ds)
	f := flow("203.0.113.1:1000")

	a := mustSchedule(t, s, f) // A, conns 1
	mustSchedule(t, s, f)      // conns 2
	clk.Advance(time.Hour)     // live connections: no expiry
	if d := mustSchedule(t, s, f); d != a {
		t.Fatal("template expired while it had connections")
	}
	s.Release(f)
	s.Release(f)
	s.Release(f) // last one: countdown starts now
	clk.Advance(299 * time.Second)
	expires := time.Duration(-1)
	s.Templates(func(tp Template) bool { expires = tp.Expires; return true })
	if expires != time.Second {
		t.Errorf("Expires = %v, want 1s", expires)
	}
	if d := mustSchedule(t, s, f); d != a {
		t.Fatal("template expired early")
	}
	s.Release(f) // restart: 300s from now
	clk.Advance(300 * time.Second)
	if d := mustSchedule(t, s, f); d == a {
		t.Fatal("template outlived its timeout")
	}
	if a.PersistConns() != 0 || ds[1].PersistConns() != 1 {
		t.Errorf("PersistConns = %d %d, want 0 1", a.PersistConns(), ds[1].PersistConns())
	}
	s.Release(f)
	s.Release(f) // extra release is ignored
}

func TestTemplateGCBounded(t *testing.T) {
	clk := newFakeClock()
	ds := mkDests(1)
	s := newSvc(t, ServiceConfig{Scheduler: "rr", Persistence: time.Minute, Now: clk.Now}, ds)
	for i := range 100 {
		f := flow(fmt.Sprintf("10.0.%d.%d:1", i/200, i%200+1))
		mustSchedule(t, s, f)
		s.Release(f)
	}
	clk.Advance(time.Minute)
	mustSchedule(t, s, flow("10.9.9.9:1"))
	s.mu.Lock()
	n := len(s.templates)
	s.mu.Unlock()
	if want := 100 - gcBatch + 1; n != want {
		t.Errorf("templates after one call = %d, want %d", n, want)
	}
	live := 0
	s.Templates(func(Template) bool { live++; return true })
	if live != 1 {
		t.Errorf("Templates reported %d, want only the live one", live)
	}
	for range 20 {
		mustSchedule(t, s, flow("10.9.9.9:1"))
	}
	if ds[0].PersistConns() != 1 {
		t.Errorf("PersistConns = %d after collection, want 1", ds[0].PersistConns())
	}
}

func TestQuiescentTemplate(t *testing.T) {
	for _, expire := range []bool{false, true} {
		t.Run(fmt.Sprint("expire_quiescent_template=", expire), func(t *testing.T) {
			ds := mkDests(1, 1)
			s := newSvc(t, ServiceConfig{Scheduler: "rr", Persistence: time.Minute, ExpireQuiescentTemplate: expire}, ds)
			f := flow("203.0.113.1:1000")
			a := mustSchedule(t, s, f)
			a.SetWeight(0)
			d := mustSchedule(t, s, f)
			if expire && d == a {
				t.Error("template to a quiesced server kept with expire_quiescent_template")
			}
			if !expire && d != a {
				t.Error("template to a quiesced server dropped (IPVS keeps it)")
			}
			// A new client never reaches the quiesced server.
			if d := mustSchedule(t, s, flow("203.0.113.2:1000")); d == a {
				t.Error("new client sent to a quiesced server")
			}
		})
	}
}

func TestUpdateDropsTemplates(t *testing.T) {
	ds := mkDests(1, 1)
	s := newSvc(t, ServiceConfig{Scheduler: "rr", Persistence: time.Minute}, ds)
	f := flow("203.0.113.1:1000")
	a := mustSchedule(t, s, f)
	var other *Dest
	for _, d := range ds {
		if d != a {
			other = d
		}
	}
	s.Update([]*Dest{other})
	if a.PersistConns() != 0 {
		t.Errorf("removed server PersistConns = %d", a.PersistConns())
	}
	if d := mustSchedule(t, s, f); d != other {
		t.Errorf("after removal Schedule = %v, want %v", d, other)
	}
	if diff := cmp.Diff([]*Dest{other}, s.Dests(), destIdentity); diff != "" {
		t.Errorf("Dests (-want +got):\n%s", diff)
	}
}

func TestReconfigure(t *testing.T) {
	ds := mkDests(1, 1, 1)
	cfg := ServiceConfig{Scheduler: "rr", Persistence: time.Minute}
	s := newSvc(t, cfg, ds)
	f := flow("203.0.113.1:1000")
	a := mustSchedule(t, s, f)
	count := func() int {
		n := 0
		s.Templates(func(Template) bool { n++; return true })
		return n
	}

	cfg.Persistence = 2 * time.Minute
	if err := s.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	if count() != 1 || mustSchedule(t, s, f) != a {
		t.Fatal("templates lost on a timeout change")
	}
	cfg.Scheduler = "wrr" // new scheduler, templates stay
	if err := s.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	if s.Scheduler() != "wrr" || mustSchedule(t, s, f) != a {
		t.Fatal("scheduler change lost the template")
	}
	if err := s.Reconfigure(ServiceConfig{Scheduler: "nope"}); err == nil {
		t.Fatal("bad scheduler accepted")
	}
	cfg.Persistence = 0
	if err := s.Reconfigure(cfg); err != nil {
		t.Fatal(err)
	}
	if count() != 0 || a.PersistConns() != 0 {
		t.Fatalf("persistence off: %d templates, PersistConns %d", count(), a.PersistConns())
	}
}

func TestReenter(t *testing.T) {
	ds := mkLoaded(load{1, 50, 10}, load{1, 5, 0})
	s := newSvc(t, ServiceConfig{Scheduler: "lc"}, ds)
	if got := mustSchedule(t, s, flow("203.0.113.1:1")); got != ds[1] {
		t.Fatalf("before re-entry: %s", label(ds, got))
	}
	s.Reenter(ds[0])
	if got := mustSchedule(t, s, flow("203.0.113.1:1")); got != ds[0] {
		t.Fatalf("after re-entry: %s, want A with fresh counters", label(ds, got))
	}
}

func TestServiceConcurrent(t *testing.T) {
	clk := newFakeClock()
	ds := mkDests(1, 2, 3)
	s := newSvc(t, ServiceConfig{Scheduler: "wlc", Persistence: time.Second, PersistMask: 24, Now: clk.Now}, ds)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 3))
			for _, f := range randFlows(r, 500) {
				if d, err := s.Schedule(f); err == nil {
					d.ConnOpened(true)
					d.ConnClosed(true)
					s.Release(f)
				}
				clk.Advance(time.Millisecond)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 20 {
			s.Update(ds[:1+i%3])
			_ = s.Reconfigure(ServiceConfig{Scheduler: []string{"wlc", "rr", "mh"}[i%3], Persistence: time.Second, PersistMask: 24, Now: clk.Now})
			s.Templates(func(Template) bool { return true })
		}
	}()
	wg.Wait()
}
