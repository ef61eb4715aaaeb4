package vrrp

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var (
	t0       = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	localIP  = netip.MustParseAddr("10.0.0.2")
	higherIP = netip.MustParseAddr("10.0.0.3")
	lowerIP  = netip.MustParseAddr("10.0.0.1")
)

func baseConfig() InstanceConfig {
	return InstanceConfig{
		Name: "VI_1", Interface: "eth0", VRID: 51, Priority: 100,
		AdvertInterval: time.Second,
		VirtualIPs:     []VirtualIP{{Prefix: netip.MustParsePrefix("10.0.0.100/32")}},
	}
}

// harness drives a Machine on a fake clock.
type harness struct {
	t   *testing.T
	m   *Machine
	now time.Time
}

func newHarness(t *testing.T, cfg InstanceConfig, trackers ...Tracker) *harness {
	t.Helper()
	m, err := NewMachine(cfg, localIP, trackers)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, m: m, now: t0}
}

func (h *harness) step(ev Event) []Action { return h.m.Step(ev, h.now) }

// advance moves the clock to d after t0 and fires the timers due.
func (h *harness) at(d time.Duration) []Action {
	h.now = t0.Add(d)
	return h.m.Step(EventTimer{}, h.now)
}

func (h *harness) advert(src netip.Addr, prio int) []Action {
	c := h.m.Config()
	a := Advert{Version: c.Version, VRID: uint8(c.VRID), Priority: uint8(prio), Interval: uint16(c.advertUnits())}
	if c.AuthPass != "" {
		a.AuthType, a.AuthData = AuthPass, authPassData(c.AuthPass)
	}
	return h.step(EventAdvert{Src: src, TTL: 255, Advert: a})
}

func (h *harness) wantState(s State) {
	h.t.Helper()
	if got := h.m.State(); got != s {
		h.t.Fatalf("state = %s, want %s (history %v)", got, s, h.m.History())
	}
}

// kinds summarises actions for comparison.
func kinds(acts []Action) []string {
	var out []string
	for _, a := range acts {
		switch a := a.(type) {
		case ActionSendAdvert:
			out = append(out, fmt.Sprintf("advert(%d)", a.Priority))
		case ActionAddAddresses:
			out = append(out, "add")
		case ActionRemoveAddresses:
			out = append(out, "remove")
		case ActionAnnounce:
			out = append(out, fmt.Sprintf("announce(%d)", a.Repeat))
		case ActionTransition:
			out = append(out, fmt.Sprintf("%s->%s", a.From, a.To))
		case ActionNotify:
			if a.RxLowerPri {
				out = append(out, "notify(rx_lower_pri)")
				break
			}
			out = append(out, "notify("+a.State.String()+")")
		case ActionDrop:
			out = append(out, "drop("+string(a.Reason)+")")
		}
	}
	return out
}

func wantActions(t *testing.T, got []Action, want ...string) {
	t.Helper()
	if diff := cmp.Diff(want, kinds(got)); diff != "" {
		t.Fatalf("actions (-want +got):\n%s", diff)
	}
}

func TestMasterDownInterval(t *testing.T) {
	tests := []struct {
		name    string
		version int
		prio    int
		advert  time.Duration
		want    time.Duration
	}{
		// RFC 3768: 3*Advertisement_Interval + (256-Priority)/256 s.
		{"v2 prio 100", 2, 100, time.Second, 3*time.Second + 156*time.Second/256},
		{"v2 prio 254", 2, 254, 2 * time.Second, 6*time.Second + 2*time.Second/256},
		// RFC 5798: 3*Master_Adver_Interval + ((256-Priority)*Master_Adver_Interval)/256.
		{"v3 prio 100 1s", 3, 100, time.Second, 3*time.Second + 156*time.Second/256},
		{"v3 prio 100 100ms", 3, 100, 100 * time.Millisecond, 300*time.Millisecond + 156*100*time.Millisecond/256},
		{"v3 prio 1 10ms", 3, 1, 10 * time.Millisecond, 30*time.Millisecond + 255*10*time.Millisecond/256},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := baseConfig()
			c.Version, c.Priority, c.AdvertInterval = tt.version, tt.prio, tt.advert
			h := newHarness(t, c)
			if got := h.m.MasterDownInterval(); got != tt.want {
				t.Fatalf("MasterDownInterval = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAdvertIntervalUnits(t *testing.T) {
	tests := []struct {
		version int
		in      time.Duration
		want    time.Duration
	}{
		{2, 1500 * time.Millisecond, 2 * time.Second}, // v2 rounds to seconds
		{2, 200 * time.Millisecond, time.Second},      // at least 1 s
		{3, 1234 * time.Millisecond, 1230 * time.Millisecond},
		{3, 100 * time.Millisecond, 100 * time.Millisecond},
		{3, 5 * time.Millisecond, 10 * time.Millisecond}, // at least 1 cs
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("v%d/%v", tt.version, tt.in), func(t *testing.T) {
			c := baseConfig()
			c.Version, c.AdvertInterval = tt.version, tt.in
			c = c.WithDefaults()
			if got := c.effectiveAdvertInterval(); got != tt.want {
				t.Fatalf("got %v want %v", got, tt.want)
			}
		})
	}
}

// RFC 5798 §6.4.1: Initialize.
func TestStartup(t *testing.T) {
	t.Run("owner becomes master", func(t *testing.T) {
		c := baseConfig()
		c.Priority = 255
		h := newHarness(t, c)
		wantActions(t, h.step(EventStartup{}), "INIT->MASTER", "add", "advert(255)", "announce(5)", "notify(MASTER)")
		if d := h.m.NextDeadline(); d != t0.Add(time.Second) {
			t.Fatalf("advert timer at %v", d.Sub(t0))
		}
	})
	t.Run("non-owner becomes backup", func(t *testing.T) {
		h := newHarness(t, baseConfig())
		wantActions(t, h.step(EventStartup{}), "INIT->BACKUP", "notify(BACKUP)")
		if d := h.m.NextDeadline(); d != t0.Add(h.m.MasterDownInterval()) {
			t.Fatalf("master down timer at %v", d.Sub(t0))
		}
	})
	t.Run("state MASTER claims after one interval", func(t *testing.T) {
		c := baseConfig()
		c.State = "MASTER"
		h := newHarness(t, c)
		h.step(EventStartup{})
		h.wantState(StateBackup)
		wantActions(t, h.at(999*time.Millisecond))
		wantActions(t, h.at(time.Second), "BACKUP->MASTER", "add", "advert(100)", "announce(5)", "notify(MASTER)")
	})
	t.Run("failed tracker starts in fault", func(t *testing.T) {
		h := newHarness(t, baseConfig(), Tracker{Key: "interface:eth0", OK: false})
		wantActions(t, h.step(EventStartup{}), "INIT->FAULT", "notify(FAULT)")
	})
}

// RFC 5798 §6.4.2: Backup.
func TestBackup(t *testing.T) {
	mdi := func(h *harness) time.Duration { return h.m.MasterDownInterval() }
	t.Run("master down timer expires", func(t *testing.T) {
		h := newHarness(t, baseConfig())
		h.step(EventStartup{})
		wantActions(t, h.at(mdi(h)-time.Millisecond))
		wantActions(t, h.at(mdi(h)), "BACKUP->MASTER", "add", "advert(100)", "announce(5)", "notify(MASTER)")
	})
	t.Run("higher priority advert resets timer", func(t *testing.T) {
		h := newHarness(t, baseConfig())
		h.step(EventStartup{})
		h.now = t0.Add(2 * time.Second)
		wantActions(t, h.advert(higherIP, 150))
		if d := h.m.NextDeadline(); d != h.now.Add(mdi(h)) {
			t.Fatalf("timer not reset: %v", d.Sub(t0))
		}
		if a, p := h.m.MasterAddr(); a != higherIP || p != 150 {
			t.Fatalf("master = %v/%d", a, p)
		}
		wantActions(t, h.at(2*time.Second+mdi(h)-time.Millisecond))
		h.wantState(StateBackup)
	})
	t.Run("equal priority advert resets timer", func(t *testing.T) {
		h := newHarness(t, baseConfig())
		h.step(EventStartup{})
		h.now = t0.Add(2 * time.Second)
		h.advert(lowerIP, 100)
		if d := h.m.NextDeadline(); d != h.now.Add(mdi(h)) {
			t.Fatalf("timer not reset")
		}
	})
	t.Run("priority zero means skew time", func(t *testing.T) {
		h := newHarness(t, baseConfig())
		h.step(EventStartup{})
		h.now = t0.Add(time.Second)
		h.advert(higherIP, 0)
		skew := 156 * time.Second / 256
		wantActions(t, h.at(time.Second+skew-time.Millisecond))
		wantActions(t, h.at(time.Second+skew), "BACKUP->MASTER", "add", "advert(100)", "announce(5)", "notify(MASTER)")
	})
	t.Run("lower priority advert is discarded with preempt", func(t *testing.T) {
		h := newHarness(t, baseConfig())
		h.step(EventStartup{})
		for i := range 5 {
			h.now = t0.Add(time.Duration(i) * 500 * time.Millisecond)
			h.advert(lowerIP, 50)
		}
		wantActions(t, h.at(mdi(h)), "BACKUP->MASTER", "add", "advert(100)", "announce(5)", "notify(MASTER)")
	})
	t.Run("nopreempt accepts lower priority master", func(t *testing.T) {
		c := baseConfig()
		c.NoPreempt = true
		h := newHarness(t, c)
		h.step(EventStartup{})
		for i := range 10 {
			h.now = t0.Add(time.Duration(i) * time.Second)
			h.advert(lowerIP, 50)
			wantActions(t, h.at(time.Duration(i)*time.Second+time.Millisecond))
		}
		h.wantState(StateBackup)
	})
	t.Run("preempt_delay", func(t *testing.T) {
		c := baseConfig()
		c.PreemptDelay = 5 * time.Second
		// Lower priority adverts every second are accepted for 5 s
		// after the first one, then discarded; the down timer then runs
		// out from the last accepted one.
		h2 := newHarness(t, c)
		h2.step(EventStartup{})
		for i := range 5 {
			h2.now = t0.Add(time.Duration(i) * time.Second)
			h2.advert(lowerIP, 50)
		}
		h2.now = t0.Add(5 * time.Second)
		h2.advert(lowerIP, 50) // now >= preemptAt: discarded
		want := 4*time.Second + h2.m.MasterDownInterval()
		if d := h2.m.NextDeadline(); d != t0.Add(want) {
			t.Fatalf("master down at %v, want %v", d.Sub(t0), want)
		}
		wantActions(t, h2.at(want), "BACKUP->MASTER", "add", "advert(100)", "announce(5)", "notify(MASTER)")
	})
	t.Run("v3 backup learns master interval", func(t *testing.T) {
		c := baseConfig()
		c.Version = 3
		h := newHarness(t, c)
		h.step(EventStartup{})
		a := Advert{Version: 3, VRID: 51, Priority: 200, Interval: 50} // 500 ms
		h.step(EventAdvert{Src: higherIP, TTL: 255, Advert: a})
		want := 1500*time.Millisecond + 156*500*time.Millisecond/256
		if got := h.m.MasterDownInterval(); got != want {
			t.Fatalf("MasterDownInterval %v want %v", got, want)
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		h := newHarness(t, baseConfig())
		h.step(EventStartup{})
		wantActions(t, h.step(EventShutdown{}), "BACKUP->STOP", "notify(STOP)")
		if !h.m.NextDeadline().IsZero() {
			t.Fatal("timers left after shutdown")
		}
	})
}

func becomeMaster(t *testing.T, c InstanceConfig) *harness {
	t.Helper()
	h := newHarness(t, c)
	h.step(EventStartup{})
	h.at(h.m.MasterDownInterval())
	h.wantState(StateMaster)
	return h
}

// RFC 5798 §6.4.3: Master.
func TestMaster(t *testing.T) {
	t.Run("advert timer", func(t *testing.T) {
		h := becomeMaster(t, baseConfig())
		start := h.now.Sub(t0)
		for i := 1; i <= 3; i++ {
			wantActions(t, h.at(start+time.Duration(i)*time.Second), "advert(100)")
		}
	})
	t.Run("priority zero advert is answered at once", func(t *testing.T) {
		h := becomeMaster(t, baseConfig())
		wantActions(t, h.advert(higherIP, 0), "advert(100)")
		h.wantState(StateMaster)
	})
	t.Run("higher priority advert", func(t *testing.T) {
		h := becomeMaster(t, baseConfig())
		wantActions(t, h.advert(lowerIP, 101), "MASTER->BACKUP", "remove", "notify(BACKUP)")
		if a, p := h.m.MasterAddr(); a != lowerIP || p != 101 {
			t.Fatalf("master %v/%d", a, p)
		}
	})
	t.Run("equal priority higher address wins", func(t *testing.T) {
		h := becomeMaster(t, baseConfig())
		wantActions(t, h.advert(higherIP, 100), "MASTER->BACKUP", "remove", "notify(BACKUP)")
	})
	t.Run("split brain: lower master makes us reassert", func(t *testing.T) {
		h := becomeMaster(t, baseConfig())
		h.now = h.now.Add(100 * time.Millisecond)
		wantActions(t, h.advert(lowerIP, 100), "advert(100)", "announce(5)", "notify(MASTER)")
		// rate limited to once per master down interval
		h.now = h.now.Add(time.Second)
		wantActions(t, h.advert(lowerIP, 50), "advert(100)")
		h.now = h.now.Add(h.m.MasterDownInterval())
		wantActions(t, h.advert(lowerIP, 50), "advert(100)", "announce(5)", "notify(MASTER)")
		h.wantState(StateMaster)
	})
	t.Run("lower_prio_no_advert and garp_lower_prio_repeat", func(t *testing.T) {
		c := baseConfig()
		c.LowerPrioNoAdvert = true
		c.GARPLowerPrioRepeat = 2
		h := becomeMaster(t, c)
		wantActions(t, h.advert(lowerIP, 50), "announce(2)", "notify(MASTER)")
	})
	t.Run("notify_master_rx_lower_pri", func(t *testing.T) {
		c := baseConfig()
		c.Notify.MasterRxLowerPri = "/bin/rx"
		h := becomeMaster(t, c)
		wantActions(t, h.advert(lowerIP, 50), "advert(100)", "notify(rx_lower_pri)", "announce(5)", "notify(MASTER)")
		// on every such advert, where the re-announcement waits a down interval
		h.now = h.now.Add(time.Second)
		wantActions(t, h.advert(lowerIP, 50), "advert(100)", "notify(rx_lower_pri)")
		// as keepalived: the same priority from a lower address counts
		// as lower; a higher priority does not
		h.now = h.now.Add(time.Second)
		wantActions(t, h.advert(lowerIP, 100), "advert(100)", "notify(rx_lower_pri)")
		h.now = h.now.Add(time.Second)
		for _, a := range h.advert(higherIP, 200) {
			if n, ok := a.(ActionNotify); ok && n.RxLowerPri {
				t.Fatal("notify_master_rx_lower_pri for an advert of a higher priority")
			}
		}
	})
	t.Run("garp_lower_prio_delay", func(t *testing.T) {
		c := baseConfig()
		c.GARPLowerPrioRepeat = 2
		c.GARPLowerPrioDelay = 3 * time.Second
		h := becomeMaster(t, c)
		start := h.now
		wantActions(t, h.advert(lowerIP, 50), "advert(100)", "announce(2)", "notify(MASTER)")
		// the adverts go on; the second burst comes 3 s after the first
		var bursts []time.Duration
		for range 40 {
			h.now = h.now.Add(100 * time.Millisecond)
			for _, a := range h.step(EventTimer{}) {
				if an, ok := a.(ActionAnnounce); ok {
					if an.Repeat != 2 || an.Reason != "garp_lower_prio_delay" {
						t.Fatalf("announce %+v", an)
					}
					bursts = append(bursts, h.now.Sub(start))
				}
			}
		}
		if len(bursts) != 1 || bursts[0] != 3*time.Second {
			t.Fatalf("second bursts at %v, want one at 3s", bursts)
		}
	})
	t.Run("garp_lower_prio_repeat 0", func(t *testing.T) {
		// no GARPs for a lower priority master, and no second burst
		c := baseConfig()
		c.NoLowerPrioGARP = true
		c.GARPLowerPrioDelay = time.Second
		h := becomeMaster(t, c)
		wantActions(t, h.advert(lowerIP, 50), "advert(100)", "notify(MASTER)")
		for range 30 {
			h.now = h.now.Add(100 * time.Millisecond)
			for _, a := range h.step(EventTimer{}) {
				if an, ok := a.(ActionAnnounce); ok {
					t.Fatalf("announce %+v", an)
				}
			}
		}
	})
	t.Run("garp_lower_prio_delay not put off", func(t *testing.T) {
		// a delay longer than the re-announcements' spacing (one master
		// down interval): the second burst still comes its delay after
		// the first, not after the latest re-announcement
		c := baseConfig()
		c.GARPLowerPrioRepeat = 1
		c.GARPLowerPrioDelay = 5 * time.Second
		h := becomeMaster(t, c)
		start := h.now
		var second []time.Duration
		for range 100 {
			h.now = h.now.Add(100 * time.Millisecond)
			acts := h.step(EventTimer{})
			if (h.now.Sub(start))%time.Second == 0 {
				acts = append(acts, h.advert(lowerIP, 50)...)
			}
			for _, a := range acts {
				if an, ok := a.(ActionAnnounce); ok && an.Reason == "garp_lower_prio_delay" {
					second = append(second, h.now.Sub(start))
				}
			}
		}
		if len(second) == 0 || second[0] > 6*time.Second {
			t.Fatalf("second bursts at %v, want the first by 6s", second)
		}
	})
	t.Run("higher_prio_send_advert", func(t *testing.T) {
		c := baseConfig()
		c.HigherPrioSendAdvert = true
		h := becomeMaster(t, c)
		wantActions(t, h.advert(lowerIP, 200), "advert(100)", "MASTER->BACKUP", "remove", "notify(BACKUP)")
	})
	t.Run("shutdown sends priority zero", func(t *testing.T) {
		h := becomeMaster(t, baseConfig())
		wantActions(t, h.step(EventShutdown{}), "advert(0)", "remove", "MASTER->STOP", "notify(STOP)")
	})
	t.Run("garp delay and refresh", func(t *testing.T) {
		c := baseConfig()
		c.Priority = 255
		c.GARPMasterDelay = 2 * time.Second
		c.GARPMasterRepeat = 2
		c.GARPMasterRefresh = 10 * time.Second
		c.GARPMasterRefreshRepeat = 3
		h := newHarness(t, c)
		wantActions(t, h.step(EventStartup{}), "INIT->MASTER", "add", "advert(255)", "announce(2)", "notify(MASTER)")
		wantActions(t, h.at(time.Second), "advert(255)")
		wantActions(t, h.at(2*time.Second), "advert(255)", "announce(2)")
		wantActions(t, h.at(3*time.Second), "advert(255)")
		for s := 4; s < 10; s++ {
			h.at(time.Duration(s) * time.Second)
		}
		wantActions(t, h.at(10*time.Second), "advert(255)", "announce(3)")
		for s := 11; s < 20; s++ {
			h.at(time.Duration(s) * time.Second)
		}
		wantActions(t, h.at(20*time.Second), "advert(255)", "announce(3)")
	})
}

func TestReceiveChecks(t *testing.T) {
	tests := []struct {
		name   string
		cfg    func(*InstanceConfig)
		advert func(*Advert)
		src    netip.Addr
		ttl    int
		want   DropReason
	}{
		{name: "ok", want: ""},
		{name: "vrid", advert: func(a *Advert) { a.VRID = 52 }, want: DropVRID},
		{name: "ttl", ttl: 254, want: DropTTL},
		{name: "ttl ignored for unicast", cfg: func(c *InstanceConfig) { c.UnicastPeers = []netip.Addr{higherIP} }, ttl: 64, want: ""},
		{name: "unicast source not a peer, unchecked", cfg: func(c *InstanceConfig) { c.UnicastPeers = []netip.Addr{lowerIP} }, want: ""},
		{name: "unicast source not a peer, check_unicast_src", cfg: func(c *InstanceConfig) {
			c.UnicastPeers, c.CheckUnicastSrc = []netip.Addr{lowerIP}, true
		}, want: DropPeer},
		{name: "unicast source a peer, check_unicast_src", cfg: func(c *InstanceConfig) {
			c.UnicastPeers, c.CheckUnicastSrc = []netip.Addr{lowerIP, higherIP}, true
		}, ttl: 64, want: ""},
		{name: "peer TTL under min_ttl", cfg: func(c *InstanceConfig) {
			c.UnicastPeers = []netip.Addr{higherIP}
			c.UnicastPeerTTL = []PeerTTL{{Addr: higherIP, Min: 250, Max: 255}}
		}, ttl: 64, want: DropTTL},
		{name: "peer TTL over max_ttl", cfg: func(c *InstanceConfig) {
			c.UnicastPeers = []netip.Addr{higherIP}
			c.UnicastPeerTTL = []PeerTTL{{Addr: higherIP, Min: 0, Max: 64}}
		}, ttl: 65, want: DropTTL},
		{name: "peer TTL in range", cfg: func(c *InstanceConfig) {
			c.UnicastPeers = []netip.Addr{higherIP}
			c.UnicastPeerTTL = []PeerTTL{{Addr: higherIP, Min: 250, Max: 255}}
		}, ttl: 252, want: ""},
		{name: "another peer's TTL range", cfg: func(c *InstanceConfig) {
			c.UnicastPeers = []netip.Addr{lowerIP, higherIP}
			c.UnicastPeerTTL = []PeerTTL{{Addr: lowerIP, Min: 250, Max: 255}}
		}, ttl: 64, want: ""},
		{name: "version", advert: func(a *Advert) { a.Version = 3; a.Interval = 100 }, want: DropVersion},
		{name: "own packet", src: localIP, want: DropOwnPacket},
		{name: "v2 interval mismatch", advert: func(a *Advert) { a.Interval = 2 }, want: DropInterval},
		{name: "auth pass ok", cfg: func(c *InstanceConfig) { c.AuthPass = "secret" },
			advert: func(a *Advert) { a.AuthType, a.AuthData = AuthPass, authPassData("secret") }, want: ""},
		{name: "auth pass wrong", cfg: func(c *InstanceConfig) { c.AuthPass = "secret" },
			advert: func(a *Advert) { a.AuthType, a.AuthData = AuthPass, authPassData("secreT") }, want: DropAuth},
		{name: "auth missing", cfg: func(c *InstanceConfig) { c.AuthPass = "secret" }, want: DropAuthType},
		{name: "auth unexpected", advert: func(a *Advert) { a.AuthType = AuthPass }, want: DropAuthType},
		{name: "auth AH expected", cfg: func(c *InstanceConfig) { c.AuthAH, c.AuthPass = true, "secret" },
			advert: func(a *Advert) { a.AuthType, a.AuthData = AuthPass, authPassData("secret") }, want: DropAuthType},
		{name: "v3 interval differs is fine", cfg: func(c *InstanceConfig) { c.Version = 3 },
			advert: func(a *Advert) { a.Version, a.Interval = 3, 7 }, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := baseConfig()
			if tt.cfg != nil {
				tt.cfg(&c)
			}
			h := newHarness(t, c)
			h.step(EventStartup{})
			a := Advert{Version: 2, VRID: 51, Priority: 200, Interval: 1}
			if tt.advert != nil {
				tt.advert(&a)
			}
			src, ttl := tt.src, tt.ttl
			if !src.IsValid() {
				src = higherIP
			}
			if ttl == 0 {
				ttl = 255
			}
			acts := h.step(EventAdvert{Src: src, TTL: ttl, Advert: a})
			var got DropReason
			for _, x := range acts {
				if d, ok := x.(ActionDrop); ok {
					got = d.Reason
				}
			}
			if got != tt.want {
				t.Fatalf("drop = %q, want %q", got, tt.want)
			}
			if addr, _ := h.m.MasterAddr(); (tt.want == "") != (addr == src) {
				t.Fatalf("master addr %v after %q", addr, tt.want)
			}
		})
	}
}

func TestTracking(t *testing.T) {
	t.Run("weight zero interface failure: master to fault and back", func(t *testing.T) {
		h := newHarness(t, baseConfig(), Tracker{Key: "interface:eth0", OK: true})
		h.step(EventStartup{})
		h.at(h.m.MasterDownInterval())
		h.wantState(StateMaster)
		wantActions(t, h.step(EventTrack{Key: "interface:eth0", OK: false}),
			"MASTER->FAULT", "advert(0)", "remove", "notify(FAULT)")
		wantActions(t, h.advert(higherIP, 200)) // FAULT ignores adverts
		if !h.m.NextDeadline().IsZero() {
			t.Fatal("timers running in FAULT")
		}
		wantActions(t, h.step(EventTrack{Key: "interface:eth0", OK: true}), "FAULT->BACKUP", "notify(BACKUP)")
	})
	t.Run("owner leaves fault as master", func(t *testing.T) {
		c := baseConfig()
		c.Priority = 255
		h := newHarness(t, c, Tracker{Key: "interface:eth0", OK: false})
		h.step(EventStartup{})
		h.wantState(StateFault)
		wantActions(t, h.step(EventTrack{Key: "interface:eth0", OK: true}),
			"FAULT->MASTER", "add", "advert(255)", "announce(5)", "notify(MASTER)")
	})
	t.Run("backup to fault", func(t *testing.T) {
		h := newHarness(t, baseConfig(), Tracker{Key: "script:chk", OK: true})
		h.step(EventStartup{})
		wantActions(t, h.step(EventTrack{Key: "script:chk", OK: false}), "BACKUP->FAULT", "notify(FAULT)")
	})
	t.Run("unknown key is ignored", func(t *testing.T) {
		h := newHarness(t, baseConfig())
		h.step(EventStartup{})
		wantActions(t, h.step(EventTrack{Key: "script:other", OK: false}))
	})
	tests := []struct {
		name    string
		tracker Tracker
		ev      EventTrack
		want    int
		fault   bool
	}{
		{"positive weight ok", Tracker{Key: "k", Weight: 20, OK: false}, EventTrack{Key: "k", OK: true}, 120, false},
		{"positive weight failed", Tracker{Key: "k", Weight: 20, OK: true}, EventTrack{Key: "k", OK: false}, 100, false},
		{"negative weight failed", Tracker{Key: "k", Weight: -30, OK: true}, EventTrack{Key: "k", OK: false}, 70, false},
		{"negative weight ok", Tracker{Key: "k", Weight: -30, OK: false}, EventTrack{Key: "k", OK: true}, 100, false},
		// keepalived 2.2.7's reverse, seen in a namespace: the
		// adjustment turned round, counted when it would count without
		{"reverse negative up", Tracker{Key: "k", Weight: -30, Reverse: true, OK: false}, EventTrack{Key: "k", OK: true}, 100, false},
		{"reverse negative down", Tracker{Key: "k", Weight: -30, Reverse: true, OK: true}, EventTrack{Key: "k", OK: false}, 130, false},
		{"reverse positive up", Tracker{Key: "k", Weight: 20, Reverse: true, OK: false}, EventTrack{Key: "k", OK: true}, 80, false},
		{"reverse positive down", Tracker{Key: "k", Weight: 20, Reverse: true, OK: true}, EventTrack{Key: "k", OK: false}, 100, false},
		{"reverse weight 0 up faults", Tracker{Key: "k", Reverse: true, OK: false}, EventTrack{Key: "k", OK: true}, 100, true},
		{"clamped high", Tracker{Key: "k", Weight: 200, OK: false}, EventTrack{Key: "k", OK: true}, 254, false},
		{"clamped low", Tracker{Key: "k", Weight: -200, OK: true}, EventTrack{Key: "k", OK: false}, 1, false},
		{"file value times weight", Tracker{Key: "k", Weight: 5, Valued: true}, EventTrack{Key: "k", Value: -4}, 80, false},
		{"file weight 0 nonzero faults", Tracker{Key: "k", Valued: true}, EventTrack{Key: "k", Value: 1}, 100, true},
		{"file weight 0 reverse: zero faults", Tracker{Key: "k", Reverse: true, Valued: true, Value: 5}, EventTrack{Key: "k", Value: 0}, 100, true},
		{"file weight 0 reverse: nonzero ok", Tracker{Key: "k", Reverse: true, Valued: true}, EventTrack{Key: "k", Value: 3}, 100, false},
		{"file -254 faults", Tracker{Key: "k", Weight: 1, Valued: true}, EventTrack{Key: "k", Value: -254}, 100, true},
		{"file reverse", Tracker{Key: "k", Weight: 2, Reverse: true, Valued: true}, EventTrack{Key: "k", Value: 10}, 80, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, baseConfig(), tt.tracker)
			h.step(EventStartup{})
			h.step(tt.ev)
			if got := h.m.EffectivePriority(); got != tt.want {
				t.Fatalf("effective priority %d want %d", got, tt.want)
			}
			if (h.m.State() == StateFault) != tt.fault {
				t.Fatalf("state %s, fault %v", h.m.State(), tt.fault)
			}
		})
	}
	t.Run("one file adds at most 253", func(t *testing.T) {
		// keepalived 2.2.7: 100 + 253 (not 1000) - 200
		h := newHarness(t, baseConfig(), Tracker{Key: "file:f", Weight: 1, Valued: true, Value: 1000}, Tracker{Key: "script:s", Weight: -200, OK: false})
		h.step(EventStartup{})
		if got := h.m.EffectivePriority(); got != 153 {
			t.Fatalf("effective priority %d want 153", got)
		}
	})
	t.Run("master re-advertises a changed priority", func(t *testing.T) {
		h := newHarness(t, baseConfig(), Tracker{Key: "script:chk", Weight: -60, OK: true})
		h.step(EventStartup{})
		h.at(h.m.MasterDownInterval())
		wantActions(t, h.step(EventTrack{Key: "script:chk", OK: false}), "advert(40)")
		// a peer at 80 now preempts us
		wantActions(t, h.advert(lowerIP, 80), "MASTER->BACKUP", "remove", "notify(BACKUP)")
	})
	t.Run("backup with raised priority preempts", func(t *testing.T) {
		h := newHarness(t, baseConfig(), Tracker{Key: "script:chk", Weight: 60, OK: false})
		h.step(EventStartup{})
		h.advert(higherIP, 120) // accepted: 120 >= 100
		h.step(EventTrack{Key: "script:chk", OK: true})
		h.now = t0.Add(time.Second)
		h.advert(higherIP, 120) // discarded now: 120 < 160
		if d := h.m.NextDeadline(); d != t0.Add(3*time.Second+156*time.Second/256) {
			t.Fatalf("down timer was reset by a lower priority advert: %v", d.Sub(t0))
		}
		wantActions(t, h.at(h.m.NextDeadline().Sub(t0)), "BACKUP->MASTER", "add", "advert(160)", "announce(5)", "notify(MASTER)")
	})
}

func TestSyncEvents(t *testing.T) {
	t.Run("fault and recovery", func(t *testing.T) {
		h := becomeMaster(t, baseConfig())
		acts := h.step(EventSync{Group: "G", State: StateFault})
		wantActions(t, acts, "MASTER->FAULT", "advert(0)", "remove", "notify(FAULT)")
		if tr := acts[0].(ActionTransition); !tr.BySync || !strings.Contains(tr.Reason, "sync group G") {
			t.Fatalf("transition %+v", tr)
		}
		wantActions(t, h.step(EventTrack{Key: "interface:eth0", OK: true})) // still group fault
		wantActions(t, h.step(EventSync{Group: "G", State: StateBackup}), "FAULT->BACKUP", "notify(BACKUP)")
	})
	t.Run("forced master and backup", func(t *testing.T) {
		h := newHarness(t, baseConfig())
		h.step(EventStartup{})
		wantActions(t, h.step(EventSync{Group: "G", State: StateMaster}), "BACKUP->MASTER", "add", "advert(100)", "announce(5)", "notify(MASTER)")
		wantActions(t, h.step(EventSync{Group: "G", State: StateMaster}))
		wantActions(t, h.step(EventSync{Group: "G", State: StateBackup}), "MASTER->BACKUP", "remove", "notify(BACKUP)")
	})
	t.Run("fault ignores forced master", func(t *testing.T) {
		h := newHarness(t, baseConfig(), Tracker{Key: "interface:eth0", OK: false})
		h.step(EventStartup{})
		wantActions(t, h.step(EventSync{Group: "G", State: StateMaster}))
		wantActions(t, h.step(EventSync{Group: "G", State: StateBackup}))
		h.wantState(StateFault)
	})
}

func TestHistoryBounded(t *testing.T) {
	h := newHarness(t, baseConfig())
	h.step(EventStartup{})
	for range 50 {
		h.step(EventSync{Group: "G", State: StateMaster})
		h.step(EventSync{Group: "G", State: StateBackup})
	}
	hist := h.m.History()
	if len(hist) != defaultTransitionHistorySize {
		t.Fatalf("history len %d", len(hist))
	}
	if last := hist[len(hist)-1]; last.To != StateBackup {
		t.Fatalf("last %+v", last)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*InstanceConfig)
		want string
	}{
		{"ok", func(*InstanceConfig) {}, ""},
		{"vrid", func(c *InstanceConfig) { c.VRID = 0 }, "virtual_router_id 0"},
		{"priority", func(c *InstanceConfig) { c.Priority = 256 }, "priority 256"},
		{"state", func(c *InstanceConfig) { c.State = "FOO" }, "state \"FOO\""},
		{"auth v3", func(c *InstanceConfig) { c.Version = 3; c.AuthPass = "x" }, "not allowed with VRRPv3"},
		{"auth long", func(c *InstanceConfig) { c.AuthPass = "123456789" }, "longer than 8"},
		{"no vip", func(c *InstanceConfig) { c.VirtualIPs = nil }, "no virtual_ipaddress"},
		{"mixed family", func(c *InstanceConfig) {
			c.VirtualIPs = append(c.VirtualIPs, VirtualIP{Prefix: netip.MustParsePrefix("2001:db8::1/128")})
		}, "mixed address families"},
		{"scope", func(c *InstanceConfig) { c.VirtualIPs[0].Scope = "moon" }, "unknown scope"},
		{"v3 interval", func(c *InstanceConfig) { c.Version = 3; c.AdvertInterval = time.Minute }, "above VRRPv3 maximum"},
		{"weight", func(c *InstanceConfig) { c.TrackInterfaces = []TrackInterface{{Name: "x", Weight: 300}} }, "out of range -253..253"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := baseConfig()
			tt.mod(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c := InstanceConfig{Name: "x", Interface: "eth0", VRID: 1,
		VirtualIPs: []VirtualIP{{Prefix: netip.MustParsePrefix("2001:db8::1/128")}}}.WithDefaults()
	want := InstanceConfig{Name: "x", Interface: "eth0", VRID: 1, VirtualIPs: c.VirtualIPs,
		State: "BACKUP", Priority: 100, AdvertInterval: time.Second, Version: 3, DownTimerAdverts: 3,
		GARPMasterDelay: 5 * time.Second, GARPMasterRepeat: 5, GARPMasterRefreshRepeat: 1, GARPLowerPrioRepeat: 5,
		UnicastTTL: 255, defaulted: true}
	if diff := cmp.Diff(want, c, cmp.AllowUnexported(InstanceConfig{}), cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); diff != "" {
		t.Fatalf("(-want +got)\n%s", diff)
	}
}

// garp_extra_if: one announcement of the extra-interface addresses every
// interval while MASTER, none once BACKUP.
func TestGARPExtraIf(t *testing.T) {
	c := baseConfig()
	c.GARPExtraIf = 2 * time.Second
	h := becomeMaster(t, c)
	start := h.now
	var at []time.Duration
	for range 50 {
		h.now = h.now.Add(100 * time.Millisecond)
		for _, a := range h.step(EventTimer{}) {
			if an, ok := a.(ActionAnnounce); ok && an.Extra {
				if an.Repeat != 1 || an.Reason != "garp_extra_if" {
					t.Fatalf("announce %+v", an)
				}
				at = append(at, h.now.Sub(start))
			}
		}
	}
	if !slices.Equal(at, []time.Duration{2 * time.Second, 4 * time.Second}) {
		t.Fatalf("extra announcements at %v, want 2s and 4s", at)
	}
	h.advert(lowerIP, 200)
	h.wantState(StateBackup)
	for range 50 {
		h.now = h.now.Add(100 * time.Millisecond)
		for _, a := range h.step(EventTimer{}) {
			if an, ok := a.(ActionAnnounce); ok && an.Extra {
				t.Fatalf("BACKUP announced %+v", an)
			}
		}
	}
}

// extraIfVIPs: by default the addresses on the use_vmac interface when
// the adverts go out of its parent; with all, those on any interface the
// adverts do not go out of.
func TestExtraIfVIPs(t *testing.T) {
	vips := []VirtualIP{{Prefix: netip.MustParsePrefix("10.0.0.100/24")}, {Prefix: netip.MustParsePrefix("10.1.0.100/24"), Dev: "eth1"}}
	for _, tt := range []struct {
		name string
		mod  func(*InstanceConfig)
		want []string
	}{
		{"plain", func(*InstanceConfig) {}, nil},
		{"plain all", func(c *InstanceConfig) { c.GARPExtraIfAll = true }, []string{"10.1.0.100/24@eth1"}},
		{"vmac", func(c *InstanceConfig) { c.VMAC = "vrrp.51" }, nil},
		{"vmac xmit_base", func(c *InstanceConfig) { c.VMAC, c.VMACXmitBase = "vrrp.51", true }, []string{"10.0.0.100/24@vrrp.51"}},
		{"vmac xmit_base all", func(c *InstanceConfig) { c.VMAC, c.VMACXmitBase, c.GARPExtraIfAll = "vrrp.51", true, true },
			[]string{"10.0.0.100/24@vrrp.51", "10.1.0.100/24@eth1"}},
	} {
		c := baseConfig()
		c.VirtualIPs = vips
		tt.mod(&c)
		var got []string
		for _, v := range c.extraIfVIPs().VirtualIPs {
			got = append(got, v.Prefix.String()+"@"+v.Dev)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestWaitForScript: an instance tracking a vrrp_script of weight 0 that
// has no result yet stays in INIT at startup, with no FAULT and nothing
// notified, as keepalived 2.2.7 (seen in a namespace: no "Entering FAULT
// STATE"); the first result starts it, in BACKUP or in FAULT. A weighted
// pending script does not hold it back.
func TestWaitForScript(t *testing.T) {
	for _, ok := range []bool{true, false} {
		h := newHarness(t, baseConfig(), Tracker{Key: "script:s", OK: true, Pending: true})
		wantActions(t, h.step(EventStartup{}))
		h.wantState(StateInit)
		if !h.m.Waiting() {
			t.Fatal("not waiting")
		}
		acts := h.step(EventTrack{Key: "script:s", OK: ok})
		if ok {
			h.wantState(StateBackup)
		} else {
			h.wantState(StateFault)
		}
		if h.m.Waiting() || len(acts) == 0 {
			t.Fatalf("result %v: waiting %v, actions %v", ok, h.m.Waiting(), kinds(acts))
		}
	}
	h := newHarness(t, baseConfig(), Tracker{Key: "script:s", Weight: 10, Pending: true})
	h.step(EventStartup{})
	h.wantState(StateBackup)
	if h.m.EffectivePriority() != 100 {
		t.Fatalf("a pending weighted script counts %d", h.m.EffectivePriority()-100)
	}
	// a script a reload started (Loose) does not hold the start back
	h = newHarness(t, baseConfig(), Tracker{Key: "script:s", OK: true, Pending: true, Loose: true})
	h.step(EventStartup{})
	h.wantState(StateBackup)
	// stopped while waiting: the result starts nothing
	h = newHarness(t, baseConfig(), Tracker{Key: "script:s", OK: true, Pending: true})
	h.step(EventStartup{})
	h.step(EventShutdown{})
	h.step(EventTrack{Key: "script:s", OK: true})
	h.wantState(StateStop)
}
