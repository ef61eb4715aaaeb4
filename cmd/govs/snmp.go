package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/govs/govs/internal/agentx"
	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/director"
	"github.com/govs/govs/internal/snmpmib"
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
		in, err := d.StateFilesInput(context.Background(), checker)
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
	events := make(chan director.Event, 256)
	d.SetEventSink(func(ev director.Event) {
		select {
		case events <- ev:
		default:
			log.Warn("snmp: trap dropped: too many waiting", "kind", ev.Kind, "name", ev.Name)
		}
	})
	return func(ctx context.Context) {
		done := make(chan struct{})
		go func() { sub.Run(ctx); close(done) }()
		defer func() { <-done }()
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-events:
				sendTraps(ctx, sub, d, ev, trapped, opts, log)
			}
		}
	}
}

// sendTraps sends the notifications of one director event.
func sendTraps(ctx context.Context, sub *agentx.Subagent, d *director.Director, ev director.Event, t snmpmib.Trapped, opts snmpmib.Options, log *slog.Logger) {
	services := ev.Kind == "RS" || ev.Kind == "QUORUM"
	in, err := d.StateFilesInput(ctx, services)
	if err != nil {
		log.Warn("snmp: trap: reading the state", "err", err)
		return
	}
	vars := snmpmib.Vars(in, opts)
	if services {
		vars = append(vars, snmpmib.CheckVars(in)...)
	}
	sev := snmpmib.Event{Kind: ev.Kind, Name: ev.Name, State: vrrpState(ev.State), Service: ev.Service, RealServer: ev.RealServer}
	for _, n := range snmpmib.Notifications(in, vars, sev, t) {
		if err := sub.Notify(n.Trap, n.Objs); err != nil {
			log.Warn("snmp: trap not sent", "trap", n.Trap.String(), "err", err)
		}
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
