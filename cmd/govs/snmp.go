package main

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/govs/govs/internal/agentx"
	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/director"
	"github.com/govs/govs/internal/snmpmib"
	"github.com/govs/govs/internal/statefiles"
	"github.com/govs/govs/internal/vrrp"
)

// snmpSubagent returns what serves the MIBs the configuration enables
// (all with --snmp) over AgentX, and with enable_traps sends their
// notifications, until its context is done; nil when no MIB is enabled.
// The choice is made at start, as keepalived's.
func snmpSubagent(cfg *config.Config, all bool, d *director.Director, log *slog.Logger) func(context.Context) {
	g := cfg.Global
	var trees []agentx.OID
	if all || g.SNMPVRRP || g.SNMPChecker {
		trees = append(trees, snmpmib.Global)
	}
	if all || g.SNMPVRRP {
		trees = append(trees, snmpmib.VRRP)
	}
	checker := all || g.SNMPChecker
	if checker {
		trees = append(trees, snmpmib.Check)
	}
	trapped := snmpmib.Trapped{VRRP: all || g.SNMPVRRP, Check: checker, RFCv2: all || g.SNMPRFCv2, RFCv3: all || g.SNMPRFCv3}
	if all || g.SNMPRFCv2 {
		trees = append(trees, snmpmib.VRRPv2MIB)
	}
	if all || g.SNMPRFCv3 {
		trees = append(trees, snmpmib.VRRPv3MIB)
	}
	if len(trees) == 0 {
		return nil
	}
	network, address, err := config.SNMPSocketAddr(g.SNMPSocket)
	if err != nil { // checked when the configuration was read
		log.Error("snmp", "err", err)
		return nil
	}
	opts := snmpmib.Options{Version: version, Start: time.Now(), Traps: g.SNMPTraps}
	// one snapshot serves the requests of a walk that come within
	// 100 ms of each other
	var mu sync.Mutex
	var last []agentx.Var
	var at time.Time
	snapshot := func() []agentx.Var {
		mu.Lock()
		defer mu.Unlock()
		if time.Since(at) < 100*time.Millisecond {
			return append([]agentx.Var(nil), last...)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		in, err := d.StateFilesInput(ctx, checker)
		if err != nil {
			log.Warn("snmp: reading the state", "err", err)
			return nil
		}
		last, at = snmpmib.Vars(in, opts), time.Now()
		if checker {
			last = append(last, snmpmib.CheckVars(in)...)
		}
		return append([]agentx.Var(nil), last...)
	}
	sub := &agentx.Subagent{Network: network, Address: address, ID: snmpmib.Keepalived, Description: "govs " + version,
		Subtrees: trees, Snapshot: snapshot, Log: log}
	if !g.SNMPTraps {
		return sub.Run
	}
	// the director's events, in order, to a goroutine that sends them
	// (the director must not wait for the master)
	events := make(chan director.Event, 1024)
	var dropped atomic.Uint64
	d.SetEventSink(func(ev director.Event) {
		select {
		case events <- ev:
		default:
			dropped.Add(1)
		}
	})
	return func(ctx context.Context) {
		// the subagent outlives ctx a moment: the traps of the stop
		// (the instances' STOP) go out first
		subCtx, stopSub := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { sub.Run(subCtx); close(done) }()
		defer func() { stopSub(); <-done }()
		tr := &trapSender{sub: sub, d: d, t: trapped, opts: opts, log: log}
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				deadline := time.Now().Add(time.Second)
				sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				tr.send(sctx, drain(events, nil))
				cancel()
				for len(tr.pending) > 0 && time.Now().Before(deadline) {
					time.Sleep(50 * time.Millisecond)
					tr.flush()
				}
				return
			case ev := <-events:
				tr.send(ctx, drain(events, []director.Event{ev}))
			case <-tick.C:
				tr.flush()
				if n := dropped.Swap(0); n > 0 {
					log.Warn("snmp: traps dropped: too many events at once", "events", n)
				}
			}
		}
	}
}

// drain appends the events waiting in ch to evs.
func drain(ch chan director.Event, evs []director.Event) []director.Event {
	for {
		select {
		case ev := <-ch:
			evs = append(evs, ev)
		default:
			return evs
		}
	}
}

// trapSender turns the director's events into notifications and sends
// them, holding them (1,024 at most) while the subagent has no session
// (at start, before it registered; while the master is away).
type trapSender struct {
	sub     *agentx.Subagent
	d       *director.Director
	t       snmpmib.Trapped
	opts    snmpmib.Options
	log     *slog.Logger
	pending []snmpmib.Notification
}

// send makes the notifications of a batch of events from one snapshot.
func (tr *trapSender) send(ctx context.Context, evs []director.Event) {
	if len(evs) == 0 {
		return
	}
	services := false
	for _, ev := range evs {
		services = services || ev.Kind == "RS" || ev.Kind == "QUORUM"
	}
	in, err := tr.d.StateFilesInput(ctx, services)
	if err != nil && services {
		// the VRRP events' traps need no dataplane counters
		tr.log.Warn("snmp: trap: reading the virtual servers", "err", err)
		services = false
		in, err = tr.d.StateFilesInput(ctx, false)
	}
	if err != nil {
		tr.log.Warn("snmp: trap: reading the state", "err", err)
		return
	}
	// the director tells of a transition as it makes it: the snapshot
	// may be a moment behind (the instance's status is published just
	// after); wait for it, briefly
	for try := 0; try < 10 && !caughtUp(in, evs); try++ {
		time.Sleep(20 * time.Millisecond)
		if next, err := tr.d.StateFilesInput(ctx, services); err == nil {
			in = next
		}
	}
	vars := snmpmib.Vars(in, tr.opts)
	if services {
		vars = append(vars, snmpmib.CheckVars(in)...)
	}
	for _, ev := range evs {
		sev := snmpmib.Event{Kind: ev.Kind, Name: ev.Name, State: vrrpState(ev.State), Service: ev.Service, RealServer: ev.RealServer, Up: ev.Up}
		tr.pending = append(tr.pending, snmpmib.Notifications(in, vars, sev, tr.t)...)
	}
	if over := len(tr.pending) - 1024; over > 0 {
		tr.log.Warn("snmp: traps dropped: no session with the agentx master", "traps", over)
		tr.pending = tr.pending[over:]
	}
	tr.flush()
}

// caughtUp says whether in shows the last state each instance of evs
// went to.
func caughtUp(in *statefiles.Input, evs []director.Event) bool {
	last := map[string]string{}
	for _, ev := range evs {
		if ev.Kind == "INSTANCE" {
			last[ev.Name] = ev.State
		}
	}
	for _, st := range in.VRRP.Instances {
		if want, ok := last[st.Name]; ok && strings.ToUpper(st.State.String()) != want {
			return false
		}
	}
	return true
}

// flush sends what is pending, if there is a session.
func (tr *trapSender) flush() {
	if ok, _ := tr.sub.Connected(); !ok {
		return
	}
	for len(tr.pending) > 0 {
		n := tr.pending[0]
		if err := tr.sub.Notify(n.Trap, n.Objs); err != nil {
			return // sent again with the next flush
		}
		tr.pending = tr.pending[1:]
	}
}

// vrrpState reads a state's name as the director's events give it.
func vrrpState(s string) vrrp.State {
	switch s {
	case "MASTER":
		return vrrp.StateMaster
	case "BACKUP":
		return vrrp.StateBackup
	case "FAULT":
		return vrrp.StateFault
	case "STOP":
		return vrrp.StateStop
	}
	return vrrp.StateInit
}
