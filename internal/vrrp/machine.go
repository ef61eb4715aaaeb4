package vrrp

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Tracker is one tracked object as the state machine sees it: a key, a
// weight and its current state. Kind-specific details (how an interface
// or script is observed) live in the adapters.
type Tracker struct {
	Key     string `json:"key"`
	Weight  int    `json:"weight"`
	Reverse bool   `json:"reverse,omitempty"`
	// Valued trackers (track_file) contribute Value*Weight; the others
	// contribute by OK.
	Valued bool `json:"valued,omitempty"`
	OK     bool `json:"ok"`
	Value  int  `json:"value,omitempty"`
	// Pending: no result yet (a vrrp_script whose first run has not
	// ended: keepalived's INIT and INIT/FAILED). A weight-0 tracker is
	// failed meanwhile, a weighted one counts nothing, as keepalived
	// 2.2.7 (seen in a namespace). Any event for the key ends it.
	Pending bool `json:"pending,omitempty"`
	// Loose: pending since a reload started its script, when a weight-0
	// tracker does not fail either (keepalived's INIT/RELOAD).
	Loose bool `json:"loose,omitempty"`
}

// fault reports whether the tracker forces FAULT, and its priority delta.
func (t *Tracker) contribution() (fault bool, delta int) {
	if t.Pending {
		return t.Weight == 0 && !t.Loose, 0
	}
	if t.Valued {
		v := t.Value
		if t.Weight == 0 {
			// a non-zero value fails; with reverse a zero one does
			// (keepalived 2.2.7's update_track_file_status)
			return (v != 0) != t.Reverse, 0
		}
		d := v * t.Weight
		if t.Reverse {
			d = -d
		}
		if d <= -254 {
			return true, 0
		}
		// one file adds at most 253, as keepalived 2.2.7
		return false, min(d, 253)
	}
	// as keepalived 2.2.7 (seen in a namespace, for scripts and
	// interfaces): a positive weight counts while the object is up, a
	// negative one while it is down, and reverse turns the adjustment
	// round (weight 10 reverse: -10 while up; -10 reverse: +10 while
	// down); weight 0 faults while down, with reverse while up
	if t.Weight == 0 {
		return t.OK == t.Reverse, 0
	}
	if t.Weight > 0 == t.OK {
		if t.Reverse {
			return false, -t.Weight
		}
		return false, t.Weight
	}
	return false, 0
}

// Machine is the pure VRRP state machine of one instance. It does no I/O
// and reads no clock: Step gets the time with each event and returns the
// actions to execute. It is not safe for concurrent use.
type Machine struct {
	cfg      InstanceConfig
	local    netip.Addr
	advert   time.Duration
	trackers []Tracker

	state    State
	eff      int
	fault    bool
	syncFail bool
	// waitStart: started while a weight-0 tracker had no result yet
	// (a vrrp_script still on its first run); it stays in INIT, as
	// keepalived does, without a FAULT and its notifications, until
	// that result (track)
	waitStart bool
	// quietSync: the start follows a wait of its sync group
	// (EventStartup.AfterWait)
	quietSync bool

	masterAdver time.Duration
	masterDown  time.Time
	adverAt     time.Time
	garpDelayAt time.Time
	lowerPrioAt time.Time // the second burst after a lower priority advert
	refreshAt   time.Time
	extraAt     time.Time // next garp_extra_if burst
	preemptAt   time.Time
	reannounced time.Time

	masterAddr netip.Addr
	masterPrio int
	lastAdvert time.Time
	history    []Transition
}

// NewMachine returns a machine in INIT. local is the address adverts are
// sent from; it breaks ties between equal priorities. trackers carry their
// initial state.
func NewMachine(cfg InstanceConfig, local netip.Addr, trackers []Tracker) (*Machine, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Machine{
		cfg:      cfg,
		local:    local,
		advert:   cfg.effectiveAdvertInterval(),
		trackers: append([]Tracker(nil), trackers...),
	}
	m.masterAdver = m.advert
	m.recompute()
	return m, nil
}

// State returns the current state.
func (m *Machine) State() State { return m.state }

// Config returns the defaulted configuration.
func (m *Machine) Config() InstanceConfig { return m.cfg }

// EffectivePriority is the base priority adjusted by the trackers (1..254
// unless the instance owns the addresses).
func (m *Machine) EffectivePriority() int { return m.eff }

// MasterAddr returns the address of the current master (our own address
// while MASTER) and the priority it advertised.
func (m *Machine) MasterAddr() (netip.Addr, int) { return m.masterAddr, m.masterPrio }

// LastAdvert is when the last accepted advert was received.
func (m *Machine) LastAdvert() time.Time { return m.lastAdvert }

// History returns the last transitions, oldest first.
func (m *Machine) History() []Transition { return append([]Transition(nil), m.history...) }

// Trackers returns the trackers' current states.
func (m *Machine) Trackers() []Tracker { return append([]Tracker(nil), m.trackers...) }

// AdvertInterval is the configured interval as sent on the wire.
func (m *Machine) AdvertInterval() time.Duration { return m.advert }

// MasterDownInterval is the current master-down interval (RFC 5798 §6.1).
func (m *Machine) MasterDownInterval() time.Duration {
	n := time.Duration(m.cfg.DownTimerAdverts)
	if m.cfg.Version == 2 {
		return n*m.advert + m.skew()
	}
	return n*m.masterAdver + m.skew()
}

// skew is Skew_Time: (256-Priority)/256 s for VRRPv2 (RFC 3768 §6.1),
// ((256-Priority)*Master_Adver_Interval)/256 for VRRPv3 (RFC 5798 §6.1).
func (m *Machine) skew() time.Duration {
	p := time.Duration(256 - m.eff)
	if m.cfg.Version == 2 {
		return p * time.Second / 256
	}
	return p * m.masterAdver / 256
}

// NextDeadline is the earliest pending timer, or the zero time.
func (m *Machine) NextDeadline() time.Time {
	var d time.Time
	for _, t := range []time.Time{m.masterDown, m.adverAt, m.garpDelayAt, m.lowerPrioAt, m.refreshAt, m.extraAt} {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	return d
}

func (m *Machine) recompute() {
	fault := false
	delta := 0
	for i := range m.trackers {
		f, d := m.trackers[i].contribution()
		fault = fault || f
		delta += d
	}
	m.fault = fault
	if m.cfg.Priority == PriorityOwner {
		m.eff = PriorityOwner
		return
	}
	m.eff = max(1, min(m.cfg.Priority+delta, PriorityOwner-1))
}

// Step feeds one event at time now and returns the actions to execute.
func (m *Machine) Step(ev Event, now time.Time) []Action {
	var out []Action
	switch ev := ev.(type) {
	case EventStartup:
		m.quietSync = ev.AfterWait
		out = m.startup(now, out)
	case EventShutdown:
		out = m.shutdown(now, ev.Deleted, out)
	case EventTimer:
		out = m.timer(now, out)
	case EventAdvert:
		out = m.advertReceived(ev, now, out)
	case EventTrack:
		out = m.track(ev, now, out)
	case EventSync:
		out = m.sync(ev, now, out)
	}
	return out
}

// pendingFault says whether a weight-0 tracker has no result yet.
func (m *Machine) pendingFault() bool {
	for i := range m.trackers {
		if t := &m.trackers[i]; t.Pending && t.Weight == 0 && !t.Loose {
			return true
		}
	}
	return false
}

// Waiting says whether the machine waits in INIT for a tracker's first
// result (a vrrp_script whose first run has not ended).
func (m *Machine) Waiting() bool { return m.waitStart }

func (m *Machine) startup(now time.Time, out []Action) []Action {
	if m.state != StateInit && m.state != StateStop {
		return out
	}
	if m.pendingFault() {
		m.waitStart = true
		return out
	}
	m.waitStart = false
	switch {
	case m.fault:
		return m.toFault(now, "tracked object failed at startup", false, out)
	case m.syncFail && m.quietSync:
		// its group waited for another member, which went to FAULT:
		// FAULT without a notification of its own, as keepalived (the
		// group's FAULT was notified)
		n := len(out)
		out = m.toFault(now, "sync group in FAULT at startup", true, out)
		tail := slices.DeleteFunc(out[n:], func(a Action) bool { _, ok := a.(ActionNotify); return ok })
		return out[:n+len(tail)]
	case m.syncFail:
		// a member of its sync group is in FAULT already
		return m.toFault(now, "sync group in FAULT at startup", true, out)
	case m.cfg.Priority == PriorityOwner:
		return m.toMaster(now, "address owner (priority 255)", false, out)
	}
	out = m.toBackup(now, "startup", false, out)
	if m.cfg.State == "MASTER" {
		// keepalived's "state MASTER": claim mastership after one advert
		// interval unless a better master speaks first.
		m.masterDown = now.Add(m.advert)
	}
	return out
}

func (m *Machine) shutdown(now time.Time, deleted bool, out []Action) []Action {
	if m.state == StateStop {
		return out
	}
	m.waitStart = false
	if m.state == StateMaster {
		out = append(out, ActionSendAdvert{Priority: PriorityStop}, ActionRemoveAddresses{})
	}
	reason := "shutdown"
	if deleted {
		reason = "deleted by reload"
	}
	wasFault := m.state == StateFault
	out = m.transition(now, StateStop, reason, false, out)
	m.clearTimers()
	return append(out, ActionNotify{State: StateStop, Priority: m.eff, Deleted: deleted, WasFault: deleted && wasFault})
}

func (m *Machine) timer(now time.Time, out []Action) []Action {
	switch m.state {
	case StateBackup:
		if !m.masterDown.IsZero() && !now.Before(m.masterDown) {
			return m.toMaster(now, "master down timer expired", false, out)
		}
	case StateMaster:
		if !m.adverAt.IsZero() && !now.Before(m.adverAt) {
			out = append(out, ActionSendAdvert{Priority: uint8(m.eff)})
			m.adverAt = now.Add(m.advert)
		}
		if !m.garpDelayAt.IsZero() && !now.Before(m.garpDelayAt) {
			out = append(out, ActionAnnounce{Repeat: m.cfg.GARPMasterRepeat, Reason: "garp_master_delay"})
			m.garpDelayAt = time.Time{}
		}
		if !m.lowerPrioAt.IsZero() && !now.Before(m.lowerPrioAt) {
			out = append(out, ActionAnnounce{Repeat: m.cfg.GARPLowerPrioRepeat, Reason: "garp_lower_prio_delay"})
			m.lowerPrioAt = time.Time{}
		}
		if !m.refreshAt.IsZero() && !now.Before(m.refreshAt) {
			out = append(out, ActionAnnounce{Repeat: m.cfg.GARPMasterRefreshRepeat, Reason: "garp_master_refresh"})
			m.refreshAt = now.Add(m.cfg.GARPMasterRefresh)
		}
		if !m.extraAt.IsZero() && !now.Before(m.extraAt) {
			out = append(out, ActionAnnounce{Repeat: 1, Reason: "garp_extra_if", Extra: true})
			m.extraAt = now.Add(m.cfg.GARPExtraIf)
		}
	}
	return out
}

// validate applies the receive checks of RFC 5798 §7.1 / RFC 3768 §7.1
// that need the instance's configuration.
func (m *Machine) validate(ev EventAdvert) DropReason {
	a := &ev.Advert
	switch {
	case a.VRID != uint8(m.cfg.VRID):
		return DropVRID
	case ev.Src == m.local:
		return DropOwnPacket
	case len(m.cfg.UnicastPeers) == 0 && ev.TTL >= 0 && ev.TTL != TTL:
		return DropTTL
	case a.Version != m.cfg.Version:
		return DropVersion
	}
	if len(m.cfg.UnicastPeers) > 0 {
		src := ev.Src.Unmap()
		if m.cfg.CheckUnicastSrc && !slices.Contains(m.cfg.UnicastPeers, src) {
			return DropPeer
		}
		for _, r := range m.cfg.UnicastPeerTTL {
			if r.Addr == src && ev.TTL >= 0 && (ev.TTL < r.Min || ev.TTL > r.Max) {
				return DropTTL
			}
		}
	}
	if a.Version == 2 {
		want := uint8(AuthNone)
		switch {
		case m.cfg.AuthAH:
			want = AuthAH // the AH header was checked by the socket (ahCheck)
		case m.cfg.AuthPass != "":
			want = AuthPass
		}
		switch {
		case a.AuthType != want:
			return DropAuthType
		case want == AuthPass && a.AuthData != authPassData(m.cfg.AuthPass):
			return DropAuth
		}
		if a.IntervalDuration() != m.advert {
			return DropInterval
		}
	}
	return ""
}

func (m *Machine) advertReceived(ev EventAdvert, now time.Time, out []Action) []Action {
	if r := m.validate(ev); r != "" {
		return append(out, ActionDrop{Reason: r, Src: ev.Src})
	}
	a := &ev.Advert
	prio := int(a.Priority)
	switch m.state {
	case StateBackup:
		m.lastAdvert = now
		if prio == PriorityStop {
			// The master resigned: take over after Skew_Time.
			m.masterDown = now.Add(m.skew())
			m.masterAddr, m.masterPrio = ev.Src, prio
			return out
		}
		accept := m.cfg.NoPreempt || prio >= m.eff
		if !accept && m.cfg.PreemptDelay > 0 {
			if m.preemptAt.IsZero() {
				m.preemptAt = now.Add(m.cfg.PreemptDelay)
			}
			accept = now.Before(m.preemptAt)
		}
		m.masterAddr, m.masterPrio = ev.Src, prio
		if !accept {
			// Lower priority master and we preempt: let the master-down
			// timer run out.
			return out
		}
		if prio >= m.eff {
			m.preemptAt = time.Time{}
		}
		if m.cfg.Version == 3 {
			m.masterAdver = a.IntervalDuration()
		}
		m.masterDown = now.Add(m.MasterDownInterval())
	case StateMaster:
		if prio == PriorityStop {
			out = append(out, ActionSendAdvert{Priority: uint8(m.eff)})
			m.adverAt = now.Add(m.advert)
			return out
		}
		if prio > m.eff || (prio == m.eff && addrGreater(ev.Src, m.local)) {
			if m.cfg.HigherPrioSendAdvert {
				out = append(out, ActionSendAdvert{Priority: uint8(m.eff)})
			}
			m.lastAdvert = now
			if m.cfg.Version == 3 {
				m.masterAdver = a.IntervalDuration()
			}
			out = m.toBackup(now, fmt.Sprintf("higher priority advert from %s (priority %d)", ev.Src, prio), false, out)
			m.masterAddr, m.masterPrio = ev.Src, prio
			return out
		}
		// Another master with a lower priority: a split brain that is
		// healing. Assert mastership at once, and re-announce the
		// addresses and re-notify so caches and scripts follow
		// (keepalived #166, #1884) — at most once per down interval.
		if !m.cfg.LowerPrioNoAdvert {
			out = append(out, ActionSendAdvert{Priority: uint8(m.eff)})
			m.adverAt = now.Add(m.advert)
		}
		// keepalived runs notify_master_rx_lower_pri on every such advert
		if m.cfg.Notify.MasterRxLowerPri != "" {
			out = append(out, ActionNotify{State: StateMaster, Priority: m.eff, RxLowerPri: true})
		}
		if m.reannounced.IsZero() || now.Sub(m.reannounced) >= m.MasterDownInterval() {
			m.reannounced = now
			// (garp_lower_prio_repeat 0: no GARPs, and no second burst)
			if m.cfg.GARPLowerPrioRepeat > 0 {
				out = append(out, ActionAnnounce{Repeat: m.cfg.GARPLowerPrioRepeat, Reason: fmt.Sprintf("lower priority master %s", ev.Src)})
				// a second burst already due is not put off by a later one
				if m.cfg.GARPLowerPrioDelay > 0 && m.lowerPrioAt.IsZero() {
					m.lowerPrioAt = now.Add(m.cfg.GARPLowerPrioDelay)
				}
			}
			out = append(out, ActionNotify{State: StateMaster, Priority: m.eff, Repeat: true})
		}
	}
	return out
}

func (m *Machine) track(ev EventTrack, now time.Time, out []Action) []Action {
	found := false
	for i := range m.trackers {
		t := &m.trackers[i]
		if t.Key == ev.Key {
			t.OK, t.Value, t.Pending, t.Loose = ev.OK, ev.Value, false, false
			found = true
		}
	}
	if !found {
		return out
	}
	oldEff := m.eff
	m.recompute()
	if m.waitStart && !m.pendingFault() {
		return m.startup(now, out)
	}
	switch m.state {
	case StateBackup, StateMaster:
		if m.fault {
			return m.toFault(now, "tracked object "+ev.Key+" failed", false, out)
		}
		if m.state == StateMaster && m.eff != oldEff {
			out = append(out, ActionSendAdvert{Priority: uint8(m.eff)})
			m.adverAt = now.Add(m.advert)
		}
	case StateFault:
		if !m.fault && !m.syncFail {
			return m.leaveFault(now, "tracked objects recovered", false, out)
		}
	}
	return out
}

func (m *Machine) leaveFault(now time.Time, reason string, bySync bool, out []Action) []Action {
	if m.cfg.Priority == PriorityOwner {
		return m.toMaster(now, reason, bySync, out)
	}
	return m.toBackup(now, reason, bySync, out)
}

func (m *Machine) sync(ev EventSync, now time.Time, out []Action) []Action {
	reason := "sync group " + ev.Group
	switch ev.State {
	case StateFault:
		m.syncFail = true
		if m.state == StateBackup || m.state == StateMaster {
			return m.toFault(now, reason, true, out)
		}
	case StateBackup:
		m.syncFail = false
		switch {
		case m.state == StateFault && !m.fault:
			return m.leaveFault(now, reason, true, out)
		case m.state == StateMaster:
			return m.toBackup(now, reason, true, out)
		}
	case StateMaster:
		m.syncFail = false
		if m.state == StateBackup {
			return m.toMaster(now, reason, true, out)
		}
	}
	return out
}

func (m *Machine) clearTimers() {
	m.masterDown, m.adverAt, m.garpDelayAt, m.refreshAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	m.lowerPrioAt, m.extraAt = time.Time{}, time.Time{}
	m.preemptAt = time.Time{}
}

func (m *Machine) transition(now time.Time, to State, reason string, bySync bool, out []Action) []Action {
	from := m.state
	m.state = to
	m.history = append(m.history, Transition{Time: now, From: from, To: to, Reason: reason})
	if len(m.history) > defaultTransitionHistorySize {
		m.history = append(m.history[:0:0], m.history[len(m.history)-defaultTransitionHistorySize:]...)
	}
	return append(out, ActionTransition{From: from, To: to, Reason: reason, BySync: bySync})
}

func (m *Machine) toMaster(now time.Time, reason string, bySync bool, out []Action) []Action {
	out = m.transition(now, StateMaster, reason, bySync, out)
	m.clearTimers()
	m.masterAddr, m.masterPrio = m.local, m.eff
	m.reannounced = time.Time{}
	out = append(out,
		ActionAddAddresses{},
		ActionSendAdvert{Priority: uint8(m.eff)},
		ActionAnnounce{Repeat: m.cfg.GARPMasterRepeat, Reason: "became master"},
		ActionNotify{State: StateMaster, Priority: m.eff})
	m.adverAt = now.Add(m.advert)
	if m.cfg.GARPMasterDelay > 0 {
		m.garpDelayAt = now.Add(m.cfg.GARPMasterDelay)
	}
	if m.cfg.GARPMasterRefresh > 0 {
		m.refreshAt = now.Add(m.cfg.GARPMasterRefresh)
	}
	if m.cfg.GARPExtraIf > 0 {
		m.extraAt = now.Add(m.cfg.GARPExtraIf)
	}
	return out
}

func (m *Machine) toBackup(now time.Time, reason string, bySync bool, out []Action) []Action {
	wasMaster := m.state == StateMaster
	out = m.transition(now, StateBackup, reason, bySync, out)
	m.clearTimers()
	if wasMaster {
		out = append(out, ActionRemoveAddresses{})
	}
	m.masterAddr, m.masterPrio = netip.Addr{}, 0
	m.masterDown = now.Add(m.MasterDownInterval())
	return append(out, ActionNotify{State: StateBackup, Priority: m.eff})
}

func (m *Machine) toFault(now time.Time, reason string, bySync bool, out []Action) []Action {
	wasMaster := m.state == StateMaster
	out = m.transition(now, StateFault, reason, bySync, out)
	m.clearTimers()
	if wasMaster {
		out = append(out, ActionSendAdvert{Priority: PriorityStop}, ActionRemoveAddresses{})
	}
	m.masterAddr, m.masterPrio = netip.Addr{}, 0
	return append(out, ActionNotify{State: StateFault, Priority: m.eff})
}

// addrGreater compares two addresses as unsigned integers (RFC 5798
// §6.4.3: the larger primary address wins a tie).
func addrGreater(a, b netip.Addr) bool { return a.Compare(b) > 0 }

// setLocal sets the advert source the machine compares with, once the
// instance's socket opened late (Node.retryOpen).
func (m *Machine) setLocal(a netip.Addr) {
	m.local = a
}

// Reconfigure puts a reloaded configuration of the same virtual router
// in force and keeps the state: local is the (possibly new) advert
// source, trackers the trackers in their current state, syncFail whether
// the instance's sync group (as reloaded) holds it in FAULT. A MASTER that
// now advertises something else (priority, interval, addresses,
// authentication) sends an advert at once; trackers that now fail move
// the instance to FAULT, and a FAULT whose trackers now pass leaves it; a
// BACKUP that became the address owner (priority 255) takes over. The
// addresses themselves are the caller's: the machine does not know what
// the previous configuration installed.
func (m *Machine) Reconfigure(cfg InstanceConfig, local netip.Addr, trackers []Tracker, syncFail bool, now time.Time) []Action {
	cfg = cfg.WithDefaults()
	old, oldAdvert, oldEff := m.cfg, m.advert, m.eff
	m.cfg, m.local = cfg, local
	m.syncFail = syncFail
	m.advert = cfg.effectiveAdvertInterval()
	m.trackers = append([]Tracker(nil), trackers...)
	m.recompute()
	var out []Action
	switch m.state {
	case StateFault:
		if !m.fault && !m.syncFail {
			return m.leaveFault(now, "tracked objects pass after reload", false, out)
		}
		return out
	case StateBackup, StateMaster:
		if m.fault {
			return m.toFault(now, "tracked object failed after reload", false, out)
		}
		if m.syncFail {
			return m.toFault(now, "sync group in FAULT after reload", true, out)
		}
	default:
		if m.waitStart && !m.pendingFault() {
			// the script it waited for is gone or weighted now
			return m.startup(now, out)
		}
		return out
	}
	if cfg.PreemptDelay != old.PreemptDelay {
		m.preemptAt = time.Time{}
	}
	if m.state == StateBackup {
		// (an owner already was could only be BACKUP by its group's
		// choice, which the reload does not overrule)
		if cfg.Priority == PriorityOwner && old.Priority != PriorityOwner {
			return m.toMaster(now, "address owner (priority 255) after reload", false, out)
		}
		return out
	}
	m.masterAdver = m.advert
	m.masterAddr, m.masterPrio = m.local, m.eff
	if m.eff != oldEff || m.advert != oldAdvert || old.AuthPass != cfg.AuthPass || old.AuthAH != cfg.AuthAH ||
		!slices.EqualFunc(old.VirtualIPs, cfg.VirtualIPs, func(a, b VirtualIP) bool { return a.Prefix.Addr() == b.Prefix.Addr() }) {
		out = append(out, ActionSendAdvert{Priority: uint8(m.eff)})
		m.adverAt = now.Add(m.advert)
	}
	if cfg.GARPMasterRefresh != old.GARPMasterRefresh {
		m.refreshAt = time.Time{}
		if cfg.GARPMasterRefresh > 0 {
			m.refreshAt = now.Add(cfg.GARPMasterRefresh)
		}
	}
	if cfg.GARPExtraIf != old.GARPExtraIf {
		m.extraAt = time.Time{}
		if cfg.GARPExtraIf > 0 {
			m.extraAt = now.Add(cfg.GARPExtraIf)
		}
	}
	return out
}
