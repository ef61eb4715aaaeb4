package vrrp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeNet connects fake systems: every advert sent by one conn is
// delivered to the conns of the other hosts.
type fakeNet struct {
	mu    sync.Mutex
	conns []*fakeConn
}

type fakeSystem struct {
	net  *fakeNet
	addr netip.Addr

	mu       sync.Mutex
	vips     map[netip.Prefix]bool
	announce int
	// sent are the addresses announced, one per packet, with the time
	sent    []sentAnnounce
	links   map[string]bool
	watch   func(string, bool)
	vmacs   map[string]int // use_vmac interfaces: times set up
	vmacOps []string
	// goneAddrs are addresses LocalAddrs leaves out, tentativeAddrs
	// those it says are under duplicate address detection
	goneAddrs      map[netip.Addr]bool
	tentativeAddrs map[netip.Addr]bool
}

func newFakeSystem(n *fakeNet, addr string) *fakeSystem {
	return &fakeSystem{net: n, addr: netip.MustParseAddr(addr), vips: map[netip.Prefix]bool{}, links: map[string]bool{}}
}

type fakeConn struct {
	sys    *fakeSystem
	vrid   int
	peers  []netip.Addr // unicast_peer: the first is the destination
	ch     chan Packet
	closed chan struct{}
	once   sync.Once
}

func (s *fakeSystem) OpenConn(ctx context.Context, cfg *InstanceConfig) (Conn, error) {
	// as LinuxSystem: no socket without its source address
	s.mu.Lock()
	src := cmp.Or(cfg.UnicastSrcIP, s.addr)
	gone := s.goneAddrs[src]
	s.mu.Unlock()
	if gone {
		return nil, fmt.Errorf("%w: source address %s gone", ErrNotYet, src)
	}
	c := &fakeConn{sys: s, vrid: cfg.VRID, peers: cfg.UnicastPeers, ch: make(chan Packet, 64), closed: make(chan struct{})}
	s.net.mu.Lock()
	s.net.conns = append(s.net.conns, c)
	s.net.mu.Unlock()
	return c, nil
}

func (s *fakeSystem) AddAddresses(ctx context.Context, cfg *InstanceConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range cfg.VirtualIPs {
		s.vips[v.Prefix] = true
	}
	return nil
}

func (s *fakeSystem) RestoreRoutes(ctx context.Context, cfg *InstanceConfig) (int, error) {
	return 0, nil
}

func (s *fakeSystem) RemoveAddresses(ctx context.Context, cfg *InstanceConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range cfg.VirtualIPs {
		delete(s.vips, v.Prefix)
	}
	return nil
}

func (s *fakeSystem) Announce(ctx context.Context, cfg *InstanceConfig) error {
	s.mu.Lock()
	s.announce++
	for _, v := range allVIPs(cfg) {
		s.sent = append(s.sent, sentAnnounce{v.Prefix, time.Now()})
	}
	s.mu.Unlock()
	return nil
}

type sentAnnounce struct {
	addr netip.Prefix
	at   time.Time
}

func (s *fakeSystem) SetupVMAC(ctx context.Context, cfg *InstanceConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.vmacs == nil {
		s.vmacs = map[string]int{}
	}
	s.vmacs[cfg.VMAC]++
	s.vmacOps = append(s.vmacOps, "setup "+cfg.VMAC+"@"+cfg.Interface)
	return nil
}

func (s *fakeSystem) RemoveVMAC(ctx context.Context, cfg *InstanceConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.vmacs, cfg.VMAC)
	s.vmacOps = append(s.vmacOps, "remove "+cfg.VMAC+"@"+cfg.Interface)
	return nil
}

func (s *fakeSystem) LocalAddrs(ctx context.Context) (map[netip.Addr]AddrState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[netip.Addr]AddrState{s.addr: AddrUsable}
	for p := range s.vips {
		out[p.Addr()] = AddrUsable
	}
	for a := range s.tentativeAddrs {
		out[a] = AddrTentative
	}
	for a := range s.goneAddrs {
		delete(out, a)
	}
	return out, nil
}

func (s *fakeSystem) LinkIndex(ctx context.Context, name string) (int, error) {
	return 1, nil
}

func (s *fakeSystem) LinkUp(ctx context.Context, name string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	up, ok := s.links[name]
	return up || !ok, nil
}

func (s *fakeSystem) WatchLinks(ctx context.Context, fn func(string, bool)) error {
	s.mu.Lock()
	s.watch = fn
	s.mu.Unlock()
	<-ctx.Done()
	return nil
}

func (s *fakeSystem) setLink(name string, up bool) {
	s.mu.Lock()
	s.links[name] = up
	fn := s.watch
	s.mu.Unlock()
	fn(name, up)
}

func (s *fakeSystem) hasVIP(p string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.vips[netip.MustParsePrefix(p)]
}

func (c *fakeConn) LocalAddr() netip.Addr { return c.sys.addr }

func (c *fakeConn) Device() (string, int) { return "", 0 }

func (c *fakeConn) Send(a *Advert) error {
	select {
	case <-c.closed:
		return errors.New("closed")
	default:
	}
	dst := netip.MustParseAddr(MulticastGroup4)
	if len(c.peers) > 0 {
		dst = c.peers[0]
	}
	b, err := a.Marshal(c.sys.addr, dst)
	if err != nil {
		return err
	}
	c.sys.net.mu.Lock()
	defer c.sys.net.mu.Unlock()
	for _, o := range c.sys.net.conns {
		if o.sys == c.sys {
			continue
		}
		select {
		case <-o.closed:
		case o.ch <- Packet{Src: c.sys.addr, Dst: dst, TTL: 255, Data: b}:
		}
	}
	return nil
}

func (c *fakeConn) Recv() (Packet, error) {
	select {
	case p := <-c.ch:
		return p, nil
	case <-c.closed:
		return Packet{}, net.ErrClosed
	}
}

func (c *fakeConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

type recordNotifier struct {
	mu  sync.Mutex
	evs []NotifyEvent
}

func (r *recordNotifier) Notify(ctx context.Context, ev NotifyEvent) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
}

func (r *recordNotifier) states(typ, name string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.evs {
		if e.Type == typ && e.Name == name {
			out = append(out, e.State.String())
		}
	}
	return out
}

func startNode(t *testing.T, opts Options) (*Node, context.CancelFunc, chan error) {
	t.Helper()
	// the node tests run on synctest's fake clock: watchers must not
	// wait on file descriptors (see osEvents)
	was := osEvents
	osEvents = false
	t.Cleanup(func() { osEvents = was })
	n, err := NewNode(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	return n, cancel, done
}

func stateOf(n *Node, name string) InstanceStatus {
	for _, s := range n.Status() {
		if s.Name == name {
			return s
		}
	}
	return InstanceStatus{}
}

func TestNodeFailover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fnet := &fakeNet{}
		sa, sb := newFakeSystem(fnet, "10.0.0.1"), newFakeSystem(fnet, "10.0.0.2")
		cfgA := baseConfig()
		cfgA.Priority = 150
		cfgA.State = "MASTER"
		cfgB := baseConfig()
		var changes []State
		var chMu sync.Mutex
		rn := &recordNotifier{}
		a, cancelA, doneA := startNode(t, Options{Instances: []InstanceConfig{cfgA}, System: sa})
		b, cancelB, doneB := startNode(t, Options{Instances: []InstanceConfig{cfgB}, System: sb, Notifier: rn,
			OnChange: func(s InstanceStatus) { chMu.Lock(); changes = append(changes, s.State); chMu.Unlock() }})
		defer cancelB()

		time.Sleep(5 * time.Second)
		if s := stateOf(a, "VI_1"); s.State != StateMaster || !sa.hasVIP("10.0.0.100/32") {
			t.Fatalf("A: %+v", s)
		}
		sb0 := stateOf(b, "VI_1")
		if sb0.State != StateBackup || sb0.MasterAddr != sa.addr || sb0.MasterPriority != 150 || sb.hasVIP("10.0.0.100/32") {
			t.Fatalf("B: %+v", sb0)
		}
		if !a.Owns(netip.MustParseAddr("10.0.0.100")) || b.Owns(netip.MustParseAddr("10.0.0.100")) {
			t.Fatal("Owns disagrees with the roles")
		}

		// Graceful stop of A: priority 0 advert, B takes over after skew.
		stopAt := time.Now()
		cancelA()
		if err := <-doneA; err != nil {
			t.Fatal(err)
		}
		if sa.hasVIP("10.0.0.100/32") {
			t.Fatal("A kept the VIP after stop")
		}
		time.Sleep(time.Second)
		sbs := stateOf(b, "VI_1")
		if sbs.State != StateMaster || !sb.hasVIP("10.0.0.100/32") {
			t.Fatalf("B after A stopped: %+v", sbs)
		}
		last := sbs.Transitions[len(sbs.Transitions)-1]
		if took := last.Time.Sub(stopAt); took != 156*time.Second/256 {
			t.Fatalf("takeover took %v, want skew time %v", took, 156*time.Second/256)
		}
		if sbs.Counters.AdvertsReceived == 0 || sbs.Counters.BecameMaster != 1 {
			t.Fatalf("counters %+v", sbs.Counters)
		}
		cancelB()
		<-doneB
		if got, want := rn.states("INSTANCE", "VI_1"), []string{"BACKUP", "MASTER", "STOP"}; !slices.Equal(got, want) {
			t.Fatalf("notifications %v want %v", got, want)
		}
		chMu.Lock()
		defer chMu.Unlock()
		if want := []State{StateBackup, StateMaster, StateStop}; !slices.Equal(changes, want) {
			t.Fatalf("OnChange %v want %v", changes, want)
		}
	})
}

func TestNodeCrashTakeover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fnet := &fakeNet{}
		sa, sb := newFakeSystem(fnet, "10.0.0.1"), newFakeSystem(fnet, "10.0.0.2")
		cfgA := baseConfig()
		cfgA.Priority = 150
		a, cancelA, doneA := startNode(t, Options{Instances: []InstanceConfig{cfgA}, System: sa})
		b, cancelB, doneB := startNode(t, Options{Instances: []InstanceConfig{baseConfig()}, System: sb})
		time.Sleep(10 * time.Second)
		if stateOf(a, "VI_1").State != StateMaster || stateOf(b, "VI_1").State != StateBackup {
			t.Fatal("roles not settled")
		}
		// Crash: A's sockets disappear without a priority 0 advert.
		fnet.mu.Lock()
		for _, c := range fnet.conns {
			if c.sys == sa {
				c.Close()
			}
		}
		fnet.conns = slices.DeleteFunc(fnet.conns, func(c *fakeConn) bool { return c.sys == sa })
		fnet.mu.Unlock()
		crash := time.Now()
		time.Sleep(5 * time.Second)
		s := stateOf(b, "VI_1")
		last := s.Transitions[len(s.Transitions)-1]
		mdi := 3*time.Second + 156*time.Second/256
		if last.To != StateMaster || last.Time.Sub(crash) > mdi {
			t.Fatalf("takeover %+v after %v, want within %v", last, last.Time.Sub(crash), mdi)
		}
		cancelB()
		<-doneB
		cancelA()
		<-doneA
	})
}

func TestNodeSyncGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fnet := &fakeNet{}
		s := newFakeSystem(fnet, "10.0.0.1")
		c1 := baseConfig()
		c2 := baseConfig()
		c2.Name, c2.Interface, c2.VRID = "VI_2", "eth1", 52
		c2.VirtualIPs = []VirtualIP{{Prefix: netip.MustParsePrefix("192.168.0.1/32")}}
		rn := &recordNotifier{}
		n, cancel, done := startNode(t, Options{
			Instances:  []InstanceConfig{c1, c2},
			SyncGroups: []SyncGroupConfig{{Name: "G", Members: []string{"VI_1", "VI_2"}}},
			System:     s, Notifier: rn,
		})
		time.Sleep(5 * time.Second)
		for _, name := range []string{"VI_1", "VI_2"} {
			if st := stateOf(n, name); st.State != StateMaster {
				t.Fatalf("%s: %s", name, st.State)
			}
		}
		s.setLink("eth1", false)
		time.Sleep(10 * time.Millisecond)
		for _, name := range []string{"VI_1", "VI_2"} {
			if st := stateOf(n, name); st.State != StateFault {
				t.Fatalf("%s after eth1 down: %s", name, st.State)
			}
		}
		if s.hasVIP("10.0.0.100/32") || s.hasVIP("192.168.0.1/32") {
			t.Fatal("addresses kept in FAULT")
		}
		s.setLink("eth1", true)
		time.Sleep(10 * time.Millisecond)
		for _, name := range []string{"VI_1", "VI_2"} {
			if st := stateOf(n, name); st.State != StateBackup {
				t.Fatalf("%s after eth1 up: %s", name, st.State)
			}
		}
		time.Sleep(5 * time.Second)
		for _, name := range []string{"VI_1", "VI_2"} {
			if st := stateOf(n, name); st.State != StateMaster {
				t.Fatalf("%s at the end: %s", name, st.State)
			}
		}
		cancel()
		<-done
		if got, want := rn.states("GROUP", "G"), []string{"BACKUP", "MASTER", "FAULT", "BACKUP", "MASTER"}; !slices.Equal(got, want) {
			t.Fatalf("group notifications %v, want %v", got, want)
		}
	})
}

func TestNodeDropsMalformed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fnet := &fakeNet{}
		s := newFakeSystem(fnet, "10.0.0.2")
		n, cancel, done := startNode(t, Options{Instances: []InstanceConfig{baseConfig()}, System: s})
		synctest.Wait()
		c := fnet.conns[0]
		good, _ := (&Advert{Version: 2, VRID: 51, Priority: 200, Interval: 1}).Marshal(netip.Addr{}, netip.Addr{})
		bad := append([]byte(nil), good...)
		bad[6] ^= 0xff
		for _, p := range []Packet{
			{Src: lowerIP, TTL: 255, Data: []byte{1, 2, 3}},
			{Src: lowerIP, TTL: 255, Data: bad},
			{Src: lowerIP, TTL: 64, Data: good},
			{Src: lowerIP, TTL: 255, Data: good},
		} {
			c.ch <- p
		}
		synctest.Wait()
		st := stateOf(n, "VI_1")
		want := map[DropReason]uint64{DropShort: 1, DropChecksum: 1, DropTTL: 1}
		for k, v := range want {
			if st.Counters.Dropped[k] != v {
				t.Fatalf("dropped %v, want %v", st.Counters.Dropped, want)
			}
		}
		if st.MasterAddr != lowerIP {
			t.Fatalf("valid advert not accepted: %+v", st)
		}
		cancel()
		<-done
	})
}

// TestNodeOldUnicastChecksum: an IPv4 VRRPv3 unicast advert made with
// keepalived's checksum before 1.3.6 (the pseudo-header's destination is
// 224.0.0.18, not the peer) switches an instance to that checksum for
// good, as keepalived 2.2.7 does, unless old_unicast_checksum never;
// old_unicast_checksum alone expects and sends it from the start.
func TestNodeOldUnicastChecksum(t *testing.T) {
	self := netip.MustParseAddr("10.0.0.2")
	group := netip.MustParseAddr(MulticastGroup4)
	advert := func(old bool, vrid uint8) []byte {
		a := Advert{Version: 3, VRID: vrid, Priority: 200, Interval: 100, Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.100")}}
		if old {
			a.ChecksumDst = group
		}
		b, err := a.Marshal(lowerIP, self)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// checksOld says whether b's checksum holds with the old
	// pseudo-header and not with the standard one
	checksOld := func(b []byte, src, dst netip.Addr) bool {
		_, errOld := ParseAdvert(b, false, src, group, false)
		_, errNew := ParseAdvert(b, false, src, dst, false)
		return errOld == nil && errNew != nil
	}
	for _, tc := range []struct {
		mode      string
		otherVRID bool   // first, an old-checksum advert of VRID 52
		sendOld   []bool // the adverts the peer sends, in turn
		dropped   uint64 // checksum drops
		master    bool   // the peer's adverts taken
		want      string // UnicastChecksum after
	}{
		{mode: "", sendOld: []bool{false, true, false}, dropped: 1, master: true, want: "auto"},
		{mode: "", sendOld: []bool{false}, master: true, want: "no"},
		// another router's advert does not switch this one
		{mode: "", otherVRID: true, sendOld: []bool{false}, master: true, want: "no"},
		{mode: "never", sendOld: []bool{true}, dropped: 1, want: "never"},
		{mode: "config", sendOld: []bool{false, true}, dropped: 1, master: true, want: "config"},
	} {
		t.Run(fmt.Sprintf("%s/%s/%v", tc.want, tc.mode, tc.otherVRID), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fnet := &fakeNet{}
				s := newFakeSystem(fnet, self.String())
				cfg := baseConfig()
				cfg.Version, cfg.UnicastPeers, cfg.OldUnicastChecksum = 3, []netip.Addr{lowerIP}, tc.mode
				n, cancel, done := startNode(t, Options{Instances: []InstanceConfig{cfg}, System: s})
				synctest.Wait()
				// the peer: a conn of another host that hears our adverts
				peer := &fakeConn{sys: newFakeSystem(fnet, lowerIP.String()), ch: make(chan Packet, 64), closed: make(chan struct{})}
				fnet.mu.Lock()
				c := fnet.conns[0]
				fnet.conns = append(fnet.conns, peer)
				fnet.mu.Unlock()
				if tc.otherVRID {
					c.ch <- Packet{Src: lowerIP, Dst: self, TTL: 255, Data: advert(true, 52)}
					synctest.Wait()
				}
				for _, old := range tc.sendOld {
					c.ch <- Packet{Src: lowerIP, Dst: self, TTL: 255, Data: advert(old, 51)}
					synctest.Wait()
				}
				st := stateOf(n, "VI_1")
				if got := st.Counters.Dropped[DropChecksum]; got != tc.dropped {
					t.Fatalf("checksum drops %d, want %d (%v)", got, tc.dropped, st.Counters.Dropped)
				}
				if (st.MasterAddr == lowerIP) != tc.master {
					t.Fatalf("master %v, want the peer's adverts taken: %v", st.MasterAddr, tc.master)
				}
				if st.UnicastChecksum != tc.want {
					t.Fatalf("unicast checksum %q, want %q", st.UnicastChecksum, tc.want)
				}
				// the peer goes quiet: the instance becomes MASTER and
				// advertises with the checksum it settled on
				time.Sleep(5 * time.Second)
				synctest.Wait()
				if st := stateOf(n, "VI_1"); st.State != StateMaster {
					t.Fatalf("state %v, want MASTER", st.State)
				}
				var sent Packet
				select {
				case sent = <-peer.ch:
				default:
					t.Fatal("no advert sent")
				}
				if old := tc.want == "auto" || tc.want == "config"; checksOld(sent.Data, self, lowerIP) != old {
					t.Fatalf("sent advert with the old checksum: %v, want %v", !old, old)
				}
				if _, err := ParseAdvert(sent.Data, false, self, lowerIP, false); (err == nil) == checksOld(sent.Data, self, lowerIP) {
					t.Fatalf("sent advert checks both ways or neither: %v", err)
				}
				cancel()
				<-done
			})
		})
	}
}

func TestNewNodeErrors(t *testing.T) {
	sys := newFakeSystem(&fakeNet{}, "10.0.0.1")
	dup := baseConfig()
	dup.Name = "VI_2"
	_, err := NewNode(Options{System: sys,
		Instances: []InstanceConfig{baseConfig(), dup, func() InstanceConfig {
			c := baseConfig()
			c.TrackScripts = []TrackScript{{Name: "nope"}}
			c.Name = "VI_3"
			c.VRID = 9
			return c
		}()},
		SyncGroups: []SyncGroupConfig{{Name: "G", Members: []string{"VI_1", "VI_9"}}},
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"virtual_router_id 51 on eth0 already used", "no such vrrp_script", "no vrrp_instance VI_9"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}

// TestNodeTrackScriptAndFile runs a real vrrp_script (/bin/sh test -e) and
// a track_file on the fake clock: failing the script lowers the master's
// priority below the backup's, which preempts; the file then drives the
// backup's priority down and the first node takes over again.
func TestNodeTrackScriptAndFile(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	dir := t.TempDir()
	healthy := filepath.Join(dir, "healthy")
	weightFile := filepath.Join(dir, "weight")
	os.WriteFile(healthy, nil, 0o644)
	synctest.Test(t, func(t *testing.T) {
		fnet := &fakeNet{}
		sa, sb := newFakeSystem(fnet, "10.0.0.1"), newFakeSystem(fnet, "10.0.0.2")
		cfgA := baseConfig()
		cfgA.Priority = 150
		cfgA.TrackScripts = []TrackScript{{Name: "chk"}}
		scripts := []ScriptConfig{{Name: "chk", Script: "/bin/sh -c 'test -e " + healthy + "'", Weight: -60, Fall: 2, Rise: 2}}
		cfgB := baseConfig()
		cfgB.TrackFiles = []TrackFile{{Name: "w", Path: weightFile, Weight: -10}}
		a, cancelA, doneA := startNode(t, Options{Instances: []InstanceConfig{cfgA}, Scripts: scripts, System: sa})
		b, cancelB, doneB := startNode(t, Options{Instances: []InstanceConfig{cfgB}, System: sb})
		time.Sleep(5 * time.Second)
		if stateOf(a, "VI_1").State != StateMaster || stateOf(b, "VI_1").State != StateBackup {
			t.Fatalf("start: A %s B %s", stateOf(a, "VI_1").State, stateOf(b, "VI_1").State)
		}
		os.Remove(healthy)
		// Two failures (fall 2) take 1.5 s of the fake clock; the script
		// is a real process, so allow for it finishing late on a busy
		// machine (bounded).
		for i := 0; i < 40 && stateOf(a, "VI_1").EffectivePriority != 90; i++ {
			time.Sleep(250 * time.Millisecond)
		}
		if p := stateOf(a, "VI_1").EffectivePriority; p != 90 {
			t.Fatalf("A priority %d after the script failed, want 90", p)
		}
		time.Sleep(5 * time.Second)
		if stateOf(b, "VI_1").State != StateMaster || stateOf(a, "VI_1").State != StateBackup {
			t.Fatalf("B did not preempt: A %s B %s", stateOf(a, "VI_1").State, stateOf(b, "VI_1").State)
		}
		os.WriteFile(weightFile, []byte("3\n"), 0o644) // B: 100 - 30 = 70 < 90
		time.Sleep(2 * time.Second)
		if p := stateOf(b, "VI_1").EffectivePriority; p != 70 {
			t.Fatalf("B priority %d after the file changed, want 70", p)
		}
		time.Sleep(5 * time.Second)
		if stateOf(a, "VI_1").State != StateMaster || stateOf(b, "VI_1").State != StateBackup {
			t.Fatalf("A did not take over again: A %s B %s", stateOf(a, "VI_1").State, stateOf(b, "VI_1").State)
		}
		cancelA()
		cancelB()
		<-doneA
		<-doneB
	})
}

// TestNodeTrackProcess tracks a process over a made-up /proc on the fake
// clock: when the process goes the master's priority drops below the
// backup's, which preempts; when it comes back, after the fork delay, the
// first node takes over again.
func TestNodeTrackProcess(t *testing.T) {
	root := t.TempDir()
	old := procRoot
	procRoot = root
	t.Cleanup(func() { procRoot = old })
	proc := filepath.Join(root, "4242")
	start := func() {
		t.Helper()
		if err := os.MkdirAll(proc, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, text := range map[string]string{"comm": "haproxy\n", "stat": "4242 (haproxy) S 1", "cmdline": "/usr/sbin/haproxy\x00-f\x00/etc/haproxy/haproxy.cfg\x00"} {
			if err := os.WriteFile(filepath.Join(proc, name), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	start()
	synctest.Test(t, func(t *testing.T) {
		fnet := &fakeNet{}
		sa, sb := newFakeSystem(fnet, "10.0.0.1"), newFakeSystem(fnet, "10.0.0.2")
		cfgA := baseConfig()
		cfgA.Priority = 150
		cfgA.TrackProcesses = []TrackProcess{{Name: "haproxy", Weight: -60, Match: ProcessMatch{
			Process: "/usr/sbin/haproxy", FullCommand: true, Params: []string{"-f", "/etc/hap"}, ParamMatch: "initial",
			Quorum: 1, ForkDelay: 3 * time.Second}}}
		a, cancelA, doneA := startNode(t, Options{Instances: []InstanceConfig{cfgA}, System: sa})
		b, cancelB, doneB := startNode(t, Options{Instances: []InstanceConfig{baseConfig()}, System: sb})
		time.Sleep(5 * time.Second)
		if stateOf(a, "VI_1").State != StateMaster || stateOf(b, "VI_1").State != StateBackup {
			t.Fatalf("start: A %s B %s", stateOf(a, "VI_1").State, stateOf(b, "VI_1").State)
		}
		if err := os.RemoveAll(proc); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Millisecond) // one poll, no terminate delay
		if p := stateOf(a, "VI_1").EffectivePriority; p != 90 {
			t.Fatalf("A priority %d after the process went, want 90", p)
		}
		time.Sleep(5 * time.Second)
		if stateOf(b, "VI_1").State != StateMaster || stateOf(a, "VI_1").State != StateBackup {
			t.Fatalf("B did not preempt: A %s B %s", stateOf(a, "VI_1").State, stateOf(b, "VI_1").State)
		}
		start()
		time.Sleep(2 * time.Second) // seen, but within the fork delay
		if p := stateOf(a, "VI_1").EffectivePriority; p != 90 {
			t.Fatalf("A priority %d within the fork delay, want 90", p)
		}
		time.Sleep(2 * time.Second)
		if p := stateOf(a, "VI_1").EffectivePriority; p != 150 {
			t.Fatalf("A priority %d after the fork delay, want 150", p)
		}
		time.Sleep(5 * time.Second)
		if stateOf(a, "VI_1").State != StateMaster || stateOf(b, "VI_1").State != StateBackup {
			t.Fatalf("A did not take over again: A %s B %s", stateOf(a, "VI_1").State, stateOf(b, "VI_1").State)
		}
		cancelA()
		cancelB()
		<-doneA
		<-doneB
	})
}

// TestNodeNotifyPriorityChanges: with notify_priority_changes, a tracked
// file moving the master's priority notifies it in the same state; without
// it, or when the change comes with a change of state, it does not.
func TestNodeNotifyPriorityChanges(t *testing.T) {
	for _, on := range []bool{true, false} {
		weightFile := filepath.Join(t.TempDir(), "w")
		synctest.Test(t, func(t *testing.T) {
			fnet := &fakeNet{}
			sys := newFakeSystem(fnet, "10.0.0.1")
			cfg := baseConfig()
			cfg.Priority = 150
			cfg.NotifyPriorityChanges = on
			cfg.TrackFiles = []TrackFile{{Name: "w", Path: weightFile, Weight: -10}}
			rn := &recordNotifier{}
			n, cancel, done := startNode(t, Options{Instances: []InstanceConfig{cfg}, System: sys, Notifier: rn})
			time.Sleep(5 * time.Second)
			if s := stateOf(n, "VI_1"); s.State != StateMaster {
				t.Fatalf("not master: %+v", s)
			}
			// written whole (rename): a poll in the middle of a write
			// would read an empty file, the value 0
			put := func(v string) {
				os.WriteFile(weightFile+".new", []byte(v), 0o644)
				os.Rename(weightFile+".new", weightFile)
			}
			put("2\n") // 150 - 20
			time.Sleep(2 * time.Second)
			put("30\n") // -300 (<= -254): FAULT, a change of state
			time.Sleep(2 * time.Second)
			cancel()
			<-done
			rn.mu.Lock()
			defer rn.mu.Unlock()
			var prio []string
			for _, e := range rn.evs {
				if e.PriorityChange {
					prio = append(prio, fmt.Sprintf("%s %d", e.State, e.Priority))
				}
			}
			want := []string(nil)
			if on {
				want = []string{"MASTER 130"}
			}
			if !slices.Equal(prio, want) {
				t.Errorf("notify_priority_changes %v: priority notifications %q, want %q (all: %+v)", on, prio, want, rn.evs)
			}
		})
	}
}

// TestNodeSourceTentative: an IPv6 instance's link-local source that
// goes under duplicate address detection again (its link came back) is
// kept, even with track_src_ip, as keepalived keeps it; gone, it puts
// an instance with track_src_ip in FAULT.
func TestNodeSourceTentative(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fnet := &fakeNet{}
		sys := newFakeSystem(fnet, "fe80::1")
		cfg := baseConfig()
		cfg.VirtualIPs = []VirtualIP{{Prefix: netip.MustParsePrefix("fd00::100/64")}}
		cfg.Version, cfg.Priority, cfg.State, cfg.TrackSrcIP = 3, 255, "MASTER", true
		n, cancel, done := startNode(t, Options{Instances: []InstanceConfig{cfg}, System: sys})
		defer func() { cancel(); <-done }()
		time.Sleep(2 * time.Second)
		s0 := stateOf(n, "VI_1")
		if s0.State != StateMaster || s0.LocalAddr != sys.addr {
			t.Fatalf("start: %+v", s0)
		}
		sys.mu.Lock()
		sys.tentativeAddrs = map[netip.Addr]bool{sys.addr: true}
		sys.mu.Unlock()
		time.Sleep(3 * time.Second)
		if s := stateOf(n, "VI_1"); s.State != StateMaster || len(s.Transitions) != len(s0.Transitions) {
			t.Fatalf("source tentative: %+v", s)
		}
		sys.mu.Lock()
		sys.goneAddrs = map[netip.Addr]bool{sys.addr: true}
		sys.mu.Unlock()
		time.Sleep(3 * time.Second)
		if s := stateOf(n, "VI_1"); s.State != StateFault {
			t.Fatalf("source gone: %+v", s)
		}
	})
}

// syncBuffer is a bytes.Buffer safe for a logger's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNodeLogUnknownVRIDs: with log_unknown_vrids an advert whose VRID
// no instance on the interface has is logged once, though every
// instance's socket there reads it; one of another instance's VRID is
// not, nor anything without the option.
func TestNodeLogUnknownVRIDs(t *testing.T) {
	for _, on := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			fnet := &fakeNet{}
			s := newFakeSystem(fnet, "10.0.0.2")
			a, b := baseConfig(), baseConfig()
			b.Name, b.VRID = "VI_2", 52
			b.VirtualIPs = []VirtualIP{{Prefix: netip.MustParsePrefix("10.0.0.101/32")}}
			a.LogUnknownVRIDs, b.LogUnknownVRIDs = on, on
			var logs syncBuffer
			_, cancel, done := startNode(t, Options{Instances: []InstanceConfig{a, b}, System: s,
				Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			synctest.Wait()
			advert := func(vrid uint8) []byte {
				p, _ := (&Advert{Version: 2, VRID: vrid, Priority: 50, Interval: 1}).Marshal(netip.Addr{}, netip.Addr{})
				return p
			}
			fnet.mu.Lock()
			conns := slices.Clone(fnet.conns)
			fnet.mu.Unlock()
			for _, c := range conns {
				c.ch <- Packet{Src: lowerIP, TTL: 255, Data: advert(77)}
				c.ch <- Packet{Src: lowerIP, TTL: 255, Data: advert(52)}
			}
			synctest.Wait()
			got := strings.Count(logs.String(), "log_unknown_vrids")
			if want := map[bool]int{true: 1, false: 0}[on]; got != want || on && !strings.Contains(logs.String(), "vrid=77") {
				t.Errorf("log_unknown_vrids %v: %d lines, want %d:\n%s", on, got, want, logs.String())
			}
			cancel()
			<-done
		})
	}
}

// TestNodeDestinationCheck: as keepalived, a multicast instance drops
// an advert sent to a unicast address and a unicast one an advert sent
// to a multicast group (counted as address-list errors too); and two
// multicast instances may share a VRID on other groups.
func TestNodeDestinationCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fnet := &fakeNet{}
		s := newFakeSystem(fnet, "10.0.0.2")
		mc, uc := baseConfig(), baseConfig()
		uc.Name, uc.VRID, uc.UnicastPeers = "VI_U", 52, []netip.Addr{lowerIP}
		uc.VirtualIPs = []VirtualIP{{Prefix: netip.MustParsePrefix("10.0.0.101/32")}}
		n, cancel, done := startNode(t, Options{Instances: []InstanceConfig{mc, uc}, System: s})
		synctest.Wait()
		fnet.mu.Lock()
		conns := slices.Clone(fnet.conns)
		fnet.mu.Unlock()
		advert := func(vrid uint8) []byte {
			p, _ := (&Advert{Version: 2, VRID: vrid, Priority: 200, Interval: 1, Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.100")}}).Marshal(netip.Addr{}, netip.Addr{})
			return p
		}
		conns[0].ch <- Packet{Src: lowerIP, Dst: netip.MustParseAddr("10.0.0.2"), TTL: 255, Data: advert(51)}
		conns[1].ch <- Packet{Src: lowerIP, Dst: netip.MustParseAddr(MulticastGroup4), TTL: 255, Data: advert(52)}
		synctest.Wait()
		for _, name := range []string{"VI_1", "VI_U"} {
			st := stateOf(n, name)
			if st.Counters.Dropped[DropDestination] != 1 || st.Counters.AddressListErrors != 1 || st.MasterAddr.IsValid() {
				t.Errorf("%s: %+v", name, st.Counters)
			}
		}
		cancel()
		<-done
	})
	a, b := baseConfig(), baseConfig()
	b.Name = "VI_2"
	a.MulticastGroup, b.MulticastGroup = netip.MustParseAddr("224.0.0.100"), netip.MustParseAddr("224.0.0.101")
	if err := CheckOptions(Options{Instances: []InstanceConfig{a, b}}); err != nil {
		t.Errorf("one VRID on two groups: %v", err)
	}
	b.MulticastGroup = a.MulticastGroup
	if err := CheckOptions(Options{Instances: []InstanceConfig{a, b}}); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Errorf("one VRID twice on one group: %v", err)
	}
}
