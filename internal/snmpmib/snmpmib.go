// Package snmpmib maps govs's state onto the MIBs keepalived serves over
// AgentX: KEEPALIVED-MIB (its global and vrrp groups), VRRP-MIB
// (RFC 2787, VRRPv2 instances) and VRRPv3-MIB (RFC 6527), with
// keepalived's indexes and values, so that SNMP monitoring set up for
// keepalived reads govs.
package snmpmib

import (
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/govs/govs/internal/agentx"
	"github.com/govs/govs/internal/statefiles"
	"github.com/govs/govs/internal/vrrp"
)

// The subtrees.
var (
	Keepalived = agentx.MustOID("1.3.6.1.4.1.9586.100.5")
	Global     = Keepalived.Append(1)
	VRRP       = Keepalived.Append(2)
	VRRPv2MIB  = agentx.MustOID("1.3.6.1.2.1.68")
	VRRPv3MIB  = agentx.MustOID("1.3.6.1.2.1.207")
)

// Options are what the variables show besides the state.
type Options struct {
	Version string    // govs's
	Start   time.Time // the subagent's start, for the up times
	Traps   bool      // enable_traps
}

// Vars returns the variables of every subtree above for in.
func Vars(in *statefiles.Input, o Options) []agentx.Var {
	links := linksNow()
	var vs []agentx.Var
	vs = append(vs, globalVars(in, o)...)
	vs = append(vs, vrrpVars(in, links)...)
	vs = append(vs, rfc2787Vars(in, o, links)...)
	vs = append(vs, rfc6527Vars(in, o, links)...)
	return vs
}

func truth(b bool) int {
	if b {
		return 1
	}
	return 2
}

func globalVars(in *statefiles.Input, o Options) []agentx.Var {
	g := in.Config.Global
	routerID := g.RouterID
	if routerID == "" {
		routerID = hostName()
	}
	vs := []agentx.Var{
		agentx.String(Global.Append(1, 0), "govs "+o.Version),
		agentx.String(Global.Append(2, 0), routerID),
	}
	if g.SMTPServer != "" {
		mail := Global.Append(3)
		if a, err := netip.ParseAddr(g.SMTPServer); err == nil {
			vs = append(vs, agentx.Integer(mail.Append(1, 0), addrType(a)), agentx.Bytes(mail.Append(2, 0), a.AsSlice()))
		}
		port := g.SMTPPort
		if port == 0 {
			port = 25
		}
		vs = append(vs, agentx.Gauge(mail.Append(3, 0), uint64(g.SMTPConnectTimeout.D()/time.Second)),
			agentx.String(mail.Append(4, 0), g.NotificationEmailFrom))
		for i, e := range g.NotificationEmail {
			vs = append(vs, agentx.String(mail.Append(5, 1, 2, uint32(i+1)), e))
		}
		vs = append(vs, agentx.Gauge(mail.Append(6, 0), uint64(port)))
		for i, p := range []*bool{g.SMTPAlert, g.SMTPAlertVRRP, g.SMTPAlertChecker} {
			v := 3 // unset
			if p != nil {
				v = truth(*p)
			}
			vs = append(vs, agentx.Integer(mail.Append(uint32(8+i), 0), v))
		}
	}
	vs = append(vs,
		agentx.Integer(Global.Append(4, 0), truth(o.Traps)),
		agentx.Integer(Global.Append(5, 0), 1), // links followed by netlink
		agentx.Integer(Global.Append(6, 0), truth(g.LVSFlush)),
		agentx.Integer(Global.Append(7, 0), 1), // 64-bit counters
		agentx.String(Global.Append(8, 0), g.NetNamespace),
		agentx.Integer(Global.Append(9, 0), 2),  // no DBus
		agentx.Integer(Global.Append(10, 0), 1), // interfaces may come and go
		agentx.Integer(Global.Append(11, 0), truth(g.LVSFlushOnStop)),
	)
	return vs
}

// keepalived's VrrpState numbers: those of its JSON, and unknown (4)
// while stopping.
func stateNum(s vrrp.State) int {
	if s == vrrp.StateStop {
		return 4
	}
	return statefiles.StateNumber(s)
}

func addrType(a netip.Addr) int {
	if a.Is4() || a.Is4In6() {
		return 1
	}
	return 2
}

// scopeNum is the InetScopeType of a scope name.
func scopeNum(s string) int {
	switch s {
	case "host":
		return 1
	case "link":
		return 2
	case "site":
		return 5
	case "nowhere":
		return 0
	}
	return 14 // global
}

func hostName() string {
	h, _ := osHostname()
	return h
}

func vrrpVars(in *statefiles.Input, links map[string]net.Interface) []agentx.Var {
	var vs []agentx.Var
	d := in.VRRP
	groupOf := map[string]string{}
	for gi, g := range d.SyncGroups {
		e := VRRP.Append(1, 1)
		n := uint32(gi + 1)
		nf := g.Notify
		vs = append(vs,
			agentx.String(e.Append(2, n), g.Name),
			agentx.Integer(e.Append(3, n), stateNum(statefiles.GroupState(g, d.Instances))),
			agentx.Integer(e.Append(4, n), truth(g.SMTPAlert)),
			agentx.Integer(e.Append(5, n), truth(nf.Master != "" || nf.Backup != "" || nf.Fault != "" || nf.Stop != "" || nf.Notify != "")),
		)
		for col, s := range map[uint32]string{6: nf.Master, 7: nf.Backup, 8: nf.Fault, 9: nf.Notify, 11: nf.Stop} {
			if s != "" {
				vs = append(vs, agentx.String(e.Append(col, n), statefiles.QuoteCommand(s)))
			}
		}
		vs = append(vs, agentx.Integer(e.Append(10, n), 2))
		for k, m := range g.Members {
			groupOf[m] = g.Name
			vs = append(vs, agentx.String(VRRP.Append(2, 1, 2, n, uint32(k+1)), m))
		}
	}
	var lvsSync string
	var lvsSyncIf string
	if s := in.Config.Global.LVSSyncDaemon; s != nil {
		lvsSync, lvsSyncIf = s.Instance, s.Interface
	}
	for i := range d.Instances {
		st := &d.Instances[i]
		cfg := st.Config()
		n := uint32(i + 1)
		e := VRRP.Append(3, 1)
		initial := vrrp.StateBackup
		if strings.EqualFold(cfg.State, "MASTER") {
			initial = vrrp.StateMaster
		}
		adv := uint64(cfg.AdvertInterval / time.Second)
		if cfg.Version == 3 {
			adv = uint64(cfg.AdvertInterval / (10 * time.Millisecond))
		}
		auth := 0
		if cfg.Version == 2 {
			switch {
			case cfg.AuthAH:
				auth = 2
			case cfg.AuthPass != "":
				auth = 1
			}
		}
		nf := cfg.Notify
		accept := 0
		if cfg.Version == 3 {
			accept = truth(!cfg.NoAccept)
		}
		mc := statefiles.Multicast(&cfg)
		vs = append(vs,
			agentx.String(e.Append(2, n), st.Name),
			agentx.Gauge(e.Append(3, n), uint64(cfg.VRID)),
			// (an instance waiting for a script's first result is FAULT
			// there, wanting BACKUP, as in keepalived's data file)
			agentx.Integer(e.Append(4, n), stateNum(statefiles.ShownState(st))),
			agentx.Integer(e.Append(5, n), stateNum(initial)),
			agentx.Integer(e.Append(6, n), stateNum(statefiles.WantState(st))),
			agentx.Integer(e.Append(7, n), cfg.Priority),
			agentx.Integer(e.Append(8, n), st.EffectivePriority),
			agentx.Integer(e.Append(9, n), truth(st.State == vrrp.StateMaster)),
			agentx.String(e.Append(10, n), cfg.Interface),
			agentx.Integer(e.Append(11, n), truth(len(cfg.TrackInterfaces) > 0)),
			agentx.Gauge(e.Append(12, n), adv),
			agentx.Integer(e.Append(13, n), truth(!cfg.NoPreempt)),
			agentx.Gauge(e.Append(14, n), uint64(cfg.PreemptDelay/time.Second)),
			agentx.Integer(e.Append(15, n), auth),
			agentx.Integer(e.Append(16, n), truth(lvsSync == st.Name)),
		)
		if lvsSync == st.Name {
			vs = append(vs, agentx.String(e.Append(17, n), lvsSyncIf))
		}
		if g := groupOf[st.Name]; g != "" {
			vs = append(vs, agentx.String(e.Append(18, n), g))
		}
		vs = append(vs,
			agentx.Gauge(e.Append(19, n), uint64(cfg.GARPMasterDelay/time.Second)),
			agentx.Integer(e.Append(20, n), truth(cfg.SMTPAlert)),
			agentx.Integer(e.Append(21, n), truth(nf.Master != "" || nf.Backup != "" || nf.Fault != "" || nf.Stop != "" || nf.Notify != "" || nf.MasterRxLowerPri != "")),
		)
		for col, s := range map[uint32]string{22: nf.Master, 23: nf.Backup, 24: nf.Fault, 25: nf.Stop, 26: nf.Notify, 31: nf.MasterRxLowerPri} {
			if s != "" {
				vs = append(vs, agentx.String(e.Append(col, n), statefiles.QuoteCommand(s)))
			}
		}
		vs = append(vs,
			agentx.Integer(e.Append(27, n), accept),
			agentx.Integer(e.Append(28, n), truth(cfg.PromoteSecondaries)), // promote_secondaries
			agentx.Integer(e.Append(29, n), 2),                             // no link polling
			agentx.Integer(e.Append(30, n), cfg.Version),
			agentx.Integer(e.Append(33, n), truth(nf.Deleted != "")), // notify_deleted
		)
		if len(cfg.UnicastPeers) == 0 {
			vs = append(vs, agentx.Integer(e.Append(34, n), addrType(mc)), agentx.Bytes(e.Append(35, n), mc.AsSlice()))
		}
		for j, t := range cfg.ListedTrackInterfaces() {
			te := VRRP.Append(4, 1)
			vs = append(vs, agentx.String(te.Append(1, n, uint32(j+1)), t.Name),
				agentx.Integer(te.Append(2, n, uint32(j+1)), t.Weight), agentx.Integer(te.Append(3, n, uint32(j+1)), truth(t.Reverse)))
		}
		for j, t := range cfg.TrackScripts {
			te := VRRP.Append(5, 1)
			w := t.Weight
			if !t.WeightSet {
				for _, s := range d.Scripts {
					if s.Name == t.Name {
						w = s.Weight
					}
				}
			}
			vs = append(vs, agentx.String(te.Append(2, n, uint32(j+1)), t.Name),
				agentx.Integer(te.Append(3, n, uint32(j+1)), w), agentx.Integer(te.Append(4, n, uint32(j+1)), truth(t.Reverse)))
		}
		j := uint32(0)
		set := st.State == vrrp.StateMaster
		for k, list := range [][]vrrp.VirtualIP{cfg.VirtualIPs, cfg.VirtualIPsExcluded} {
			for _, v := range list {
				j++
				vs = append(vs, addressVars(n, j, v, &cfg, set, k == 0, links)...)
			}
		}
	}
	for si, s := range d.Scripts {
		e := VRRP.Append(9, 1)
		n := uint32(si + 1)
		result := 1 // init
		switch statefiles.ScriptStatus(s.Name, d.Instances) {
		case "GOOD":
			result = 3
		case "BAD":
			result = 2
		case "INIT/FAILED":
			result = 5 // keepalived's initfail
		}
		vs = append(vs,
			agentx.String(e.Append(2, n), s.Name),
			agentx.String(e.Append(3, n), statefiles.QuoteCommand(s.Script)),
			agentx.Integer(e.Append(4, n), int(s.Interval/time.Second)),
			agentx.Integer(e.Append(5, n), s.Weight),
			agentx.Integer(e.Append(6, n), result),
			agentx.Gauge(e.Append(7, n), uint64(s.Rise)),
			agentx.Gauge(e.Append(8, n), uint64(s.Fall)),
			agentx.Integer(e.Append(9, n), truth(s.Reverse)),
		)
	}
	return vs
}

func addressVars(n, j uint32, v vrrp.VirtualIP, cfg *vrrp.InstanceConfig, set, advertised bool, links map[string]net.Interface) []agentx.Var {
	e := VRRP.Append(6, 1)
	a := v.Prefix.Addr()
	dev := v.Dev
	if dev == "" {
		dev = cfg.Interface
		if cfg.VMAC != "" {
			dev = cfg.VMAC
		}
	}
	vs := []agentx.Var{
		agentx.Integer(e.Append(2, n, j), addrType(a)),
		agentx.Bytes(e.Append(3, n, j), a.AsSlice()),
	}
	if a.Is4() {
		brd := [4]byte{}
		if v.Broadcast.IsValid() {
			brd = v.Broadcast.As4()
		}
		vs = append(vs, agentx.Bytes(e.Append(4, n, j), brd[:]))
	}
	vs = append(vs,
		agentx.Gauge(e.Append(5, n, j), uint64(v.Prefix.Bits())),
		agentx.Integer(e.Append(6, n, j), scopeNum(v.Scope)),
	)
	if ifi, ok := links[dev]; ok {
		vs = append(vs, agentx.Integer(e.Append(7, n, j), ifi.Index))
	}
	vs = append(vs, agentx.String(e.Append(8, n, j), dev))
	if v.Label != "" {
		vs = append(vs, agentx.String(e.Append(9, n, j), v.Label))
	}
	vs = append(vs, agentx.Integer(e.Append(10, n, j), truth(set)), agentx.Integer(e.Append(11, n, j), truth(advertised)))
	return vs
}

// linksNow reads the interfaces once, by name.
func linksNow() map[string]net.Interface {
	links := map[string]net.Interface{}
	if ifs, err := net.Interfaces(); err == nil {
		for _, ifi := range ifs {
			links[ifi.Name] = ifi
		}
	}
	return links
}
