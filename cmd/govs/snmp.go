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
)

// snmpSubagent is the AgentX subagent serving the MIBs the configuration
// enables (all with --snmp), nil when none is; the choice is made at
// start, as keepalived's.
func snmpSubagent(cfg *config.Config, all bool, d *director.Director, log *slog.Logger) *agentx.Subagent {
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
	opts := snmpmib.Options{Version: version, Start: time.Now()}
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
	return &agentx.Subagent{Network: network, Address: address, ID: snmpmib.Keepalived, Description: "govs " + version,
		Subtrees: trees, Snapshot: snapshot, Log: log}
}
