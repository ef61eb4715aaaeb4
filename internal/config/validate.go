package config

import (
	"cmp"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Schedulers lists the IPVS scheduler names a virtual server may use.
var schedulers = map[string]bool{
	"rr": true, "wrr": true, "lc": true, "wlc": true, "lblc": true, "lblcr": true,
	"dh": true, "sh": true, "sed": true, "nq": true, "fo": true, "ovf": true,
	"mh": true, "twos": true,
}

// Validate checks the model for semantic problems and returns every one
// found (it does not stop at the first).
func (c *Config) Validate() Diagnostics {
	v := &validator{cfg: c, d: &diagList{}}
	v.global()
	v.vrrp()
	v.bfd()
	v.ifDelays()
	v.statics()
	v.trackGroups()
	v.garpGroups()
	v.trackOrder()
	v.sharedRoutes()
	for r, prio := range v.cfg.RulePriorities() {
		v.d.warnf(r.Pos, "rule without priority: it gets %d, as keepalived numbers them (from %d down in the order written); give it one to order the rules as you mean", prio, RuleStartPriority)
	}
	v.groups()
	v.virtualServers()
	v.bgp()
	v.d.ds.Sort()
	return v.d.ds
}

type validator struct {
	cfg *Config
	d   *diagList
}

func (v *validator) global() {
	g := &v.cfg.Global
	if g.SNMPTraps && !g.SNMPEnabled() {
		v.d.warnf(g.Pos, "enable_traps without enable_snmp_vrrp, enable_snmp_checker or enable_snmp_rfc*: no trap is sent unless govs runs with --snmp")
	}
	switch g.Govs.Dataplane {
	case "", "auto", "proxy", "xdp", "ipvs":
	default:
		v.d.errorf(g.Pos, "govs_dataplane %q: must be auto, proxy, xdp or ipvs", g.Govs.Dataplane)
	}
	switch g.Govs.XDPMode {
	case "", "native", "generic":
	default:
		v.d.errorf(g.Pos, "govs_xdp_mode %q: must be native or generic", g.Govs.XDPMode)
	}
	switch strings.ToLower(g.Govs.LogLevel) {
	case "", "debug", "info", "warn", "error":
	default:
		v.d.errorf(g.Pos, "govs_log_level %q: must be debug, info, warn or error", g.Govs.LogLevel)
	}
	if a := g.Govs.WebListen; a != "" {
		if _, _, err := net.SplitHostPort(a); err != nil {
			v.d.errorf(g.Pos, "govs_web_listen %q: want HOST:PORT or :PORT (%v)", a, err)
		}
		if g.Govs.WebPassword == "" {
			v.d.errorf(g.Pos, "govs_web_listen is set but govs_web_password is not: the web UI needs a password (govs web-password -f FILE sets one)")
		}
	}
	if cs := g.Govs; cs.ConfigSyncListen != "" || len(cs.ConfigSyncPeers) > 0 || cs.ConfigSyncSecret != "" {
		for _, a := range append([]string{cs.ConfigSyncListen}, cs.ConfigSyncPeers...) {
			if _, _, err := net.SplitHostPort(a); a != "" && err != nil {
				v.d.errorf(g.Pos, "govs_config_sync: %q: want HOST:PORT (%v)", a, err)
			}
		}
		if len(cs.ConfigSyncSecret) < 16 {
			v.d.errorf(g.Pos, "govs_config_sync_secret: the configuration sync needs a secret of at least 16 characters, the same on every director")
		}
		if cs.ConfigSyncListen == "" && len(cs.ConfigSyncPeers) == 0 {
			v.d.warnf(g.Pos, "govs_config_sync_secret without govs_config_sync_listen or govs_config_sync_peer: the configuration sync does nothing")
		}
	}
	// the certificate and key are read by govs run at start (a reload,
	// the web UI's edits and the configuration sync do not depend on
	// them; a renewal in two steps does not freeze reloads)
	if (g.Govs.WebTLSCert == "") != (g.Govs.WebTLSKey == "") {
		v.d.errorf(g.Pos, "govs_web_tls: want a certificate file and a key file")
	} else if g.Govs.WebTLSCert != "" {
		if _, err := tls.LoadX509KeyPair(g.Govs.WebTLSCert, g.Govs.WebTLSKey); err != nil {
			v.d.warnf(g.Pos, "govs_web_tls: %v: the web UI will not start with it", err)
		}
	}
	if h := g.Govs.WebPassword; h != "" {
		if _, err := bcrypt.Cost([]byte(h)); err != nil {
			v.d.errorf(g.Pos, "govs_web_password: not a bcrypt hash (%v); govs web-password -f FILE sets one", err)
		}
	}
	for _, a := range g.Govs.WebAllow {
		if _, ok := parsePrefixOrAddr(a); !ok {
			v.d.errorf(g.Pos, "govs_web_allow %q: not an address or prefix", a)
		}
	}
	if len(g.NotificationEmail) > 0 && g.SMTPServer == "" {
		v.d.warnf(g.Pos, "notification_email is set but smtp_server is not: no alert mail can be sent")
	}
	if s := g.LVSSyncDaemon; s != nil {
		if s.Instance != "" && v.instance(s.Instance) == nil {
			v.d.errorf(g.Pos, "lvs_sync_daemon: unknown vrrp_instance %q", s.Instance)
		}
		if s.Group != "" {
			if a, err := netip.ParseAddr(s.Group); err != nil || !a.IsMulticast() {
				v.d.errorf(g.Pos, "lvs_sync_daemon: group %q is not a multicast address", s.Group)
			}
		}
	}
	if r := g.VRRPDefaults.GarpMasterRepeat; r != nil && *r == 0 {
		v.d.warnf(g.Pos, "vrrp_garp_master_repeat 0 is taken as 1, as keepalived does")
	}
	vmacs := map[string]string{}
	for _, vi := range v.cfg.VRRPInstances {
		if r := vi.GarpMasterRepeat; r != nil && *r == 0 {
			v.d.warnf(vi.Pos, "vrrp_instance %q: garp_master_repeat 0 is taken as 1, as keepalived does", vi.Name)
		}
		if vi.UseVMAC {
			name := vi.VMACInterface(g.VMACPrefix)
			if len(name) > 15 || strings.ContainsAny(name, "/: \t") {
				v.d.errorf(vi.Pos, "vrrp_instance %q: use_vmac interface name %q is not a valid interface name (at most 15 characters, no '/', ':' or blanks; vmac_prefix?)", vi.Name, name)
			}
			if name == vi.Interface {
				v.d.errorf(vi.Pos, "vrrp_instance %q: use_vmac interface %s is the instance's own interface (vmac_prefix?)", vi.Name, name)
			}
			if other, ok := vmacs[name]; ok {
				v.d.errorf(vi.Pos, "vrrp_instance %q: use_vmac interface %s is also that of %q (give one a name of its own: use_vmac NAME)", vi.Name, name, other)
			}
			vmacs[name] = vi.Name
		}
		v.strictChecks(vi)
		for _, p := range vi.UnicastPeers {
			if p.MaxTTL != 0 && p.MinTTL > p.MaxTTL {
				v.d.errorf(vi.Pos, "vrrp_instance %q: unicast_peer %s: min_ttl %d is more than max_ttl %d", vi.Name, p.Addr, p.MinTTL, p.MaxTTL)
			}
		}
		if vi.UseVMAC && !vi.VMACXmitBase && len(vi.UnicastPeers) > 0 {
			v.d.warnf(vi.Pos, "vrrp_instance %q: use_vmac with unicast_peer: adverts go through %s itself, as with vmac_xmit_base (unicast adverts come to its own MAC)", vi.Name, vi.Interface)
		}
		if vi.VMACXmitBase && !vi.UseVMAC {
			v.d.warnf(vi.Pos, "vrrp_instance %q: vmac_xmit_base without use_vmac has no effect", vi.Name)
		}
		if vi.UseVMAC && vi.VMACName != "" && vi.VMACName == vi.Interface {
			v.d.errorf(vi.Pos, "vrrp_instance %q: use_vmac interface %s is the instance's own interface", vi.Name, vi.VMACName)
		}
		if vi.CheckUnicastSrc && len(vi.UnicastPeers) == 0 {
			v.d.warnf(vi.Pos, "vrrp_instance %q: check_unicast_src without unicast_peer has no effect (multicast adverts are checked by their TTL of 255)", vi.Name)
		}
		if x := vi.GarpExtraIf; x != nil && x.Interval > 0 && !x.All && !(vi.UseVMAC && (vi.VMACXmitBase || len(vi.UnicastPeers) > 0)) {
			v.d.warnf(vi.Pos, "vrrp_instance %q: garp_extra_if without all has no effect here: it refreshes the use_vmac interface's addresses when the adverts leave by its parent (vmac_xmit_base or unicast); the adverts refresh the others", vi.Name)
		}
		if vi.Auth != nil && vi.Auth.Pass == "" {
			v.d.warnf(vi.Pos, "vrrp_instance %q: authentication without auth_pass is ignored, as keepalived does", vi.Name)
		}
		if vi.Auth != nil && strings.EqualFold(vi.Auth.Type, "AH") {
			if strings.EqualFold(vi.State, "MASTER") && vi.Auth.Pass != "" && !vi.isIPv6() && (vi.Version == 2 || vi.Version == 0 && v.cfg.Global.VRRPVersion != 3) {
				v.d.warnf(vi.Pos, "vrrp_instance %q: state MASTER with auth_type AH starts as BACKUP, as keepalived does", vi.Name)
			}
		}
	}
	for _, vs := range v.cfg.VirtualServers {
		if vs.Omega {
			v.d.warnf(vs.Pos, "virtual_server %s: omega is accepted but has no effect yet in govs", vs.ID())
		}
	}
}

// statics checks that static addresses and routes say where they go: no
// VRRP instance gives them an interface.
func (v *validator) statics() {
	vipOf := map[netip.Addr]string{}
	for _, vi := range v.cfg.VRRPInstances {
		for _, l := range [][]VIPAddr{vi.VIPs, vi.VIPsExcluded} {
			for _, a := range l {
				vipOf[a.Prefix.Addr()] = vi.Name
			}
		}
	}
	for _, b := range v.cfg.Statics {
		for _, a := range b.VIPs {
			if a.Dev == "" && v.cfg.Global.DefaultInterface == "" {
				v.d.warnf(a.Pos, "static_ipaddress %s: no dev IF and no global default_interface: on eth0, as keepalived", a.Prefix)
			}
			if name, ok := vipOf[a.Prefix.Addr()]; ok {
				v.d.errorf(a.Pos, "static_ipaddress %s is also a virtual address of vrrp_instance %q: a BACKUP would hold it too", a.Prefix, name)
			}
		}
		for _, r := range b.Routes {
			if r.Dev == "" && !r.Via.IsValid() && r.Type == "" && len(r.Nexthops) == 0 && v.cfg.Global.DefaultInterface == "" {
				v.d.warnf(r.Pos, "static_routes %s: no dev IF, via GW or global default_interface: on eth0, as keepalived", r.To)
			}
		}
	}
}

// trackOrder warns of a vrrp_script, track_file, vrrp_track_process or
// bfd_instance defined after an instance or sync group that tracks it:
// keepalived 2.2.7 looks it up as it reads the track line and tracks
// nothing then ("track script s not found, ignoring..."); govs tracks
// it. (Only within one file: the order of included files is not
// compared.)
func (v *validator) trackOrder() {
	defs := map[string]map[string]Pos{"track_script": {}, "track_file": {}, "track_process": {}, "track_bfd": {}}
	for _, s := range v.cfg.VRRPScripts {
		defs["track_script"][s.Name] = s.Pos
	}
	for _, f := range v.cfg.VRRPTrackFiles {
		defs["track_file"][f.Name] = f.Pos
	}
	for _, p := range v.cfg.VRRPTrackProcesses {
		defs["track_process"][p.Name] = p.Pos
	}
	for _, b := range v.cfg.BFDInstances {
		defs["track_bfd"][b.Name] = b.Pos
	}
	check := func(owner string, at Pos, kind string, ts []Track) {
		seen := map[string]bool{}
		for _, t := range ts {
			if seen[t.Name] {
				v.d.warnf(at, "%s: %s %s is given twice: the second is ignored, as keepalived 2.2.7 (\"duplicate %s %s - ignoring\")", owner, kind, t.Name, kind, t.Name)
			}
			seen[t.Name] = true
			if def, ok := defs[kind][t.Name]; ok && def.File == at.File && def.Line > at.Line {
				v.d.warnf(at, "%s: %s %s is defined after it (at %s): keepalived 2.2.7 does not find it and tracks nothing (\"%s %s not found, ignoring\"); govs tracks it; define it first",
					owner, kind, t.Name, def, strings.ReplaceAll(kind, "_", " "), t.Name)
			}
		}
	}
	for _, vi := range v.cfg.VRRPInstances {
		owner := fmt.Sprintf("vrrp_instance %q", vi.Name)
		for _, l := range vi.trackLines() {
			check(owner, vi.Pos, l.Kind, l.Tracks)
		}
	}
	for _, g := range v.cfg.SyncGroups {
		owner := fmt.Sprintf("vrrp_sync_group %q", g.Name)
		for _, l := range g.trackLines() {
			check(owner, g.Pos, l.Kind, l.Tracks)
		}
	}
}

// garpGroups warns of an interface a second garp_group lists: the first
// one's intervals apply, as keepalived 2.2.7 ("garp_group already
// specified for IF - ignoring").
func (v *validator) garpGroups() {
	first := map[string]*GarpGroup{}
	for _, g := range v.cfg.GarpGroups {
		for _, name := range append([]string{g.Interface}, g.Interfaces...) {
			if name == "" {
				continue
			}
			if f := first[name]; f != nil && f != g {
				v.d.warnf(g.Pos, "garp_group: %s is in the garp_group at %s already; that one's intervals apply, as keepalived", name, f.Pos)
				continue
			}
			first[name] = g
		}
	}
}

// multicastGroup is the group vi advertises to: its mcast_dst_ip, else
// the global vrrp_mcast_group4/6, else the family's default; "" for a
// unicast instance.
func (g *GlobalDefs) multicastGroup(vi *VRRPInstance) string {
	switch {
	case len(vi.UnicastPeers) > 0:
		return ""
	case vi.McastDstIP.IsValid():
		return vi.McastDstIP.String()
	case vi.isIPv6():
		return cmp.Or(g.VRRPMcastGroup6, "ff02::12")
	}
	return cmp.Or(g.VRRPMcastGroup4, "224.0.0.18")
}

// trackGroups checks track_group blocks and the static entries that
// name them, as keepalived 2.2.7 does: a group named but not defined is
// an error; an unknown instance, a group without instances, and an
// entry that is no_track or has no interface to track are warned about.
func (v *validator) trackGroups() {
	groups := map[string]*TrackGroup{}
	insts := map[string]bool{}
	for _, vi := range v.cfg.VRRPInstances {
		insts[vi.Name] = true
	}
	for _, g := range v.cfg.TrackGroups {
		if o := groups[g.Name]; o != nil {
			v.d.errorf(g.Pos, "track_group %q defined twice (first at %s)", g.Name, o.Pos)
			continue
		}
		groups[g.Name] = g
		known := 0
		for _, name := range g.Instances {
			if insts[name] {
				known++
			} else {
				v.d.warnf(g.Pos, "track_group %q: vrrp_instance %q does not exist; ignored, as keepalived", g.Name, name)
			}
		}
		if known == 0 {
			v.d.warnf(g.Pos, "track_group %q has no vrrp instances: it tracks nothing", g.Name)
		}
	}
	check := func(pos Pos, what, group string, noTrack bool, dev string) {
		switch g := groups[group]; {
		case group == "":
		case g == nil:
			v.d.errorf(pos, "%s: track_group %q is not defined", what, group)
		case g.Pos.File == pos.File && g.Pos.Line > pos.Line:
			v.d.warnf(pos, "%s: track_group %q is defined after this line (at %s): keepalived 2.2.7 finds no such group and tracks nothing here; define it first", what, group, g.Pos)
		case noTrack:
			v.d.warnf(pos, "%s: track_group with no_track: not tracked, as keepalived", what)
		case dev == "":
			v.d.warnf(pos, "%s: track_group without an interface (dev, or iif for a rule): nothing to track", what)
		}
	}
	for _, b := range v.cfg.Statics {
		for _, a := range b.VIPs {
			check(a.Pos, "static_ipaddress "+a.Prefix.String(), a.TrackGroup, a.NoTrack, cmp.Or(a.Dev, "default"))
		}
		for _, r := range b.Routes {
			check(r.Pos, "static_routes "+r.To.String(), r.TrackGroup, r.NoTrack, r.OIF())
		}
		for _, r := range b.Rules {
			check(r.Pos, "static_rules", r.TrackGroup, r.NoTrack, r.Iif)
		}
	}
}

// sharedRoutes warns about a route that two holders (VRRP instances, the
// static set) give differently: the same destination, table and metric
// is one route for the kernel, and each would put back its own over the
// other's.
func (v *validator) sharedRoutes() {
	type id struct {
		dst           netip.Prefix
		table, metric int
	}
	type seen struct {
		owner string
		r     *Route
	}
	first := map[id]seen{}
	check := func(owner string, rs []Route) {
		for i := range rs {
			r := &rs[i]
			t, m := r.TableID, r.Metric
			if t == 0 {
				t = 254 // main
			}
			if m == 0 && r.To.Addr().Is6() {
				m = 1024 // the kernel's
			}
			k := id{r.To.Masked(), t, m}
			s, ok := first[k]
			if !ok {
				first[k] = seen{owner, r}
				continue
			}
			if s.owner != owner && (s.r.Via != r.Via || s.r.Dev != r.Dev || s.r.Type != r.Type || !slices.Equal(s.r.Nexthops, r.Nexthops)) {
				v.d.warnf(r.Pos, "route %s is also %s's with another path: the same destination, table and metric are one route, and each would put back its own over the other's", r.To, s.owner)
			}
		}
	}
	for _, b := range v.cfg.Statics {
		check("static_routes", b.Routes)
	}
	for _, vi := range v.cfg.VRRPInstances {
		check(fmt.Sprintf("vrrp_instance %q", vi.Name), vi.Routes)
	}
}

// ifDelays checks that an interface has one interface_up_down_delays
// line.
func (v *validator) ifDelays() {
	seen := map[string]bool{}
	for _, b := range v.cfg.InterfaceDelays {
		for _, e := range b.Entries {
			if seen[e.Name] {
				v.d.errorf(e.Pos, "interface_up_down_delays: %s has delays already", e.Name)
			}
			seen[e.Name] = true
		}
	}
}

func (v *validator) instance(name string) *VRRPInstance {
	for _, vi := range v.cfg.VRRPInstances {
		if vi.Name == name {
			return vi
		}
	}
	return nil
}

// trackDefs are the definitions trackers name, by name.
type trackDefs struct {
	scripts map[string]*VRRPScript
	bfds    map[string]*BFDInstance
	files   map[string]*TrackFile
}

// weightOf is a track line's weight and reverse as keepalived 2.2.7
// takes them: its own weight when it gives one (with its reverse or
// noreverse, else the definition's), else its definition's (kind
// track_script, track_file or track_bfd; another kind: the line's).
func (d trackDefs) weightOf(kind string, t Track) (int, bool) {
	var defW int
	var defRev, found bool
	switch kind {
	case "track_script":
		if s := d.scripts[t.Name]; s != nil {
			defW, defRev, found = s.Weight, s.Reverse, true
		}
	case "track_file":
		if f := d.files[t.Name]; f != nil {
			defW, defRev, found = f.Weight, f.Reverse, true
		}
	case "track_bfd":
		if b := d.bfds[t.Name]; b != nil {
			defW, defRev, found = b.Weight, b.Reverse, true
		}
	}
	switch {
	case !found:
		return t.Weight, t.Reverse
	case t.HasWeight:
		return t.Weight, t.ReverseOf(defRev)
	}
	return defW, defRev
}

func (c *Config) trackDefs() trackDefs {
	d := trackDefs{scripts: map[string]*VRRPScript{}, bfds: map[string]*BFDInstance{}, files: map[string]*TrackFile{}}
	for _, s := range c.VRRPScripts {
		d.scripts[s.Name] = s
	}
	for _, b := range c.BFDInstances {
		d.bfds[b.Name] = b
	}
	for _, f := range c.VRRPTrackFiles {
		d.files[f.Name] = f
	}
	return d
}

// trackWeights warns of what an instance in a sync group, or an address
// owner, does with its trackers' weights (TrackWeights.Ignored).
func (v *validator) trackWeights(vi *VRRPInstance, why string, defs trackDefs) {
	if why == "" {
		return
	}
	how := "set its weight to 0"
	if why == "SYNC group" {
		how = "set its weight to 0, track it on the vrrp_sync_group, or set sync_group_tracking_weight there"
	}
	for _, kt := range []struct {
		kind string
		ts   []Track
	}{{"track_script", vi.TrackScripts}, {"track_bfd", vi.TrackBFDs}} {
		for _, t := range kt.ts {
			if w, _ := defs.weightOf(kt.kind, t); w != 0 {
				v.d.warnf(vi.Pos, "vrrp_instance %q: %s %s has a weight and is not tracked (%s), as keepalived ignores it; %s", vi.Name, kt.kind, t.Name, why, how)
			}
		}
	}
	for _, t := range vi.TrackFiles {
		w, _ := defs.weightOf("track_file", t)
		switch w {
		case 0:
		case 1:
			v.d.warnf(vi.Pos, "vrrp_instance %q: track_file %s: its weight 1 is not used (%s), as keepalived: a value other than 0 (with reverse, a value of 0) puts the instance in FAULT; specify weight 0", vi.Name, t.Name, why)
		default:
			v.d.warnf(vi.Pos, "vrrp_instance %q: track_file %s has weight %d and is not tracked (%s), as keepalived ignores it; %s", vi.Name, t.Name, w, why, how)
		}
	}
	for _, t := range vi.TrackIfaces {
		switch {
		case t.Weight == 0:
		case why == "address owner" || vi.AddressOwner():
			v.d.warnf(vi.Pos, "vrrp_instance %q: track_interface %s has a weight and is not tracked (address owner), as keepalived ignores it: no FAULT when it is down; %s", vi.Name, t.Name, how)
		default:
			d := t.Weight
			if t.Reverse {
				d = -d
			}
			v.d.warnf(vi.Pos, "vrrp_instance %q: track_interface %s: keepalived 2.2.7 says it ignores its weight (%s) but applies it all the same, and so does govs: the priority changes by %+d while it is %s, no FAULT; %s",
				vi.Name, t.Name, why, d, map[bool]string{true: "up", false: "down"}[t.Weight > 0], how)
		}
	}
}

func (v *validator) vrrp() {
	scripts := map[string]bool{}
	for _, s := range v.cfg.VRRPScripts {
		if scripts[s.Name] {
			v.d.errorf(s.Pos, "vrrp_script %q defined twice", s.Name)
		}
		scripts[s.Name] = true
		if s.Script == "" {
			v.d.errorf(s.Pos, "vrrp_script %q has no script", s.Name)
		}
	}
	files := map[string]bool{}
	for _, t := range v.cfg.VRRPTrackFiles {
		files[t.Name] = true
		if t.File == "" {
			v.d.errorf(t.Pos, "track_file %q has no file", t.Name)
		}
	}
	procs := map[string]bool{}
	for _, t := range v.cfg.VRRPTrackProcesses {
		if procs[t.Name] {
			v.d.errorf(t.Pos, "vrrp_track_process %q defined twice", t.Name)
		}
		procs[t.Name] = true
		if t.Process == "" {
			v.d.errorf(t.Pos, "vrrp_track_process %q has no process", t.Name)
		}
		// quorum_max 0 with no quorum above 1: up while none runs
		if t.HasQuorumMax && (t.QuorumMax != 0 || t.Quorum > 1) && t.QuorumMax < max(t.Quorum, 1) {
			v.d.errorf(t.Pos, "vrrp_track_process %q: quorum_max %d is less than quorum %d", t.Name, t.QuorumMax, max(t.Quorum, 1))
		}
		if len(t.Params) == 0 && t.ParamMatch == "" && !t.FullCommand && len(t.Process) > 15 {
			v.d.warnf(t.Pos, "vrrp_track_process %q: process %q is longer than a kernel process name (15 characters) and never matches one; use full_command or param_match to match the command line", t.Name, t.Process)
		}
	}
	names := map[string]bool{}
	// one virtual router per VRID on an interface and family, and per
	// multicast group (mcast_dst_ip lets two share a VRID on other
	// groups, as keepalived 2.2.7); unicast instances have no group
	type vridKey struct {
		iface string
		vrid  int
		v6    bool
		group string
	}
	vrids := map[vridKey]*VRRPInstance{}
	weights, defs := v.cfg.TrackWeightRules(), v.cfg.trackDefs()
	for _, g := range v.cfg.SyncGroups {
		if !weights.GroupHasOwner(g) {
			continue
		}
		for _, l := range g.trackLines() {
			kind := l.Kind
			for _, t := range l.Tracks {
				if w, rev := defs.weightOf(kind, t); w != 0 {
					v.d.warnf(g.Pos, "vrrp_sync_group %q: %s %s: its weight %d is not used (a member is the address owner), as keepalived: its %s puts the group in FAULT",
						g.Name, kind, t.Name, w, map[bool]string{false: "failure", true: "success (reverse)"}[rev])
				}
			}
		}
	}
	for _, vi := range v.cfg.VRRPInstances {
		v.trackWeights(vi, weights.Ignored(vi), defs)
		if names[vi.Name] {
			v.d.errorf(vi.Pos, "vrrp_instance %q defined twice", vi.Name)
		}
		names[vi.Name] = true
		if vi.Interface == "" {
			v.d.errorf(vi.Pos, "vrrp_instance %q: no interface", vi.Name)
		}
		if vi.VirtualRouterID == 0 {
			v.d.errorf(vi.Pos, "vrrp_instance %q: no virtual_router_id", vi.Name)
		}
		v6 := len(vi.VIPs) > 0 && vi.VIPs[0].Prefix.Addr().Is6()
		for _, a := range vi.VIPs[min(1, len(vi.VIPs)):] {
			if a.Prefix.Addr().Is6() != v6 {
				v.d.errorf(a.Pos, "vrrp_instance %q: virtual_ipaddress mixes IPv4 and IPv6 (use virtual_ipaddress_excluded for the other family)", vi.Name)
				break
			}
		}
		if v6, known := vi.addrFamily(); vi.NativeIPv6 && known && !v6 {
			v.d.errorf(vi.Pos, "vrrp_instance %q: native_ipv6 with IPv4 addresses (keepalived 2.2.7: \"Cannot specify native_ipv6 with IPv4 addresses\")", vi.Name)
		}
		for _, t := range vi.TrackIfaces {
			if t.Name == vi.Interface && (t.Weight != 0 || t.Reverse || vi.DontTrackPrimary) {
				v.d.warnf(vi.Pos, "vrrp_instance %q: track_interface %s is its own interface: not tracked with a weight or reverse, as keepalived 2.2.7 (\"Ignoring track_interface %s since own interface\"); it is tracked anyway unless dont_track_primary", vi.Name, t.Name, t.Name)
			}
		}
		if vi.PromoteSecondaries && vi.UseVMAC {
			v.d.warnf(vi.Pos, "vrrp_instance %q: promote_secondaries is ignored with use_vmac (the VMAC interface has it set), as keepalived ignores it", vi.Name)
		}
		if vi.OldUnicastChecksum != "" && (len(vi.UnicastPeers) == 0 || vi.isIPv6() || v.cfg.Global.InstanceVersion(vi) != 3) {
			v.d.warnf(vi.Pos, "vrrp_instance %q: old_unicast_checksum applies to IPv4 VRRPv3 unicast adverts only; not used here", vi.Name)
		}
		if g := vi.McastDstIP; g.IsValid() {
			// as keepalived: the group's family is the instance's (its
			// first address, else its source or peers); an IPv6 group
			// is link-local (ff02::/16)
			fam6 := vi.isIPv6()
			switch {
			case g.Is6() != fam6:
				v.d.errorf(vi.Pos, "vrrp_instance %q: mcast_dst_ip %s is not of the instance's address family", vi.Name, g)
			case fam6 && !g.IsLinkLocalMulticast():
				v.d.errorf(vi.Pos, "vrrp_instance %q: mcast_dst_ip %s is not a link-local multicast address (ff02::/16)", vi.Name, g)
			}
		}
		if vi.VirtualRouterID != 0 && vi.Interface != "" {
			k := vridKey{vi.Interface, vi.VirtualRouterID, v6, v.cfg.Global.multicastGroup(vi)}
			if other, dup := vrids[k]; dup {
				v.d.errorf(vi.Pos, "vrrp_instance %q: virtual_router_id %d already used on %s by vrrp_instance %q (%s)", vi.Name, vi.VirtualRouterID, vi.Interface, other.Name, other.Pos)
			} else {
				vrids[k] = vi
			}
		}
		if vi.Priority == 255 && vi.State == "BACKUP" {
			v.d.warnf(vi.Pos, "vrrp_instance %q: priority 255 (address owner) with state BACKUP; it will become MASTER at once", vi.Name)
		}
		if vi.AdvertInt <= 0 {
			v.d.errorf(vi.Pos, "vrrp_instance %q: advert_int must be positive", vi.Name)
		}
		ver := vi.Version
		if ver == 0 {
			ver = v.cfg.Global.VRRPVersion
		}
		if v6 && ver == 2 && vi.Version == 2 {
			v.d.errorf(vi.Pos, "vrrp_instance %q: VRRP version 2 has no IPv6 (use version 3)", vi.Name)
		}
		if ver == 3 && vi.Auth != nil {
			v.d.warnf(vi.Pos, "vrrp_instance %q: VRRPv3 has no authentication; the authentication block is ignored", vi.Name)
		} else if vi.Auth != nil && vi.isIPv6() {
			v.d.warnf(vi.Pos, "vrrp_instance %q: an IPv6 instance has no authentication; the authentication block is ignored", vi.Name)
		}
		if vi.Auth != nil {
			if t := strings.ToUpper(vi.Auth.Type); t != "PASS" && t != "AH" {
				v.d.errorf(vi.Pos, "vrrp_instance %q: auth_type must be PASS or AH", vi.Name)
			}
			if len(vi.Auth.Pass) > 8 {
				v.d.warnf(vi.Pos, "vrrp_instance %q: auth_pass longer than 8 characters is truncated (as keepalived does)", vi.Name)
			}
		}
		if vi.UnicastSrcIP.IsValid() {
			for _, p := range vi.UnicastPeers {
				if p.Addr.Is4() != vi.UnicastSrcIP.Is4() {
					v.d.errorf(vi.Pos, "vrrp_instance %q: unicast_peer %s and unicast_src_ip %s are of different families", vi.Name, p.Addr, vi.UnicastSrcIP)
				}
			}
		}
		for _, t := range vi.TrackScripts {
			if !scripts[t.Name] {
				v.d.errorf(vi.Pos, "vrrp_instance %q: track_script %q is not a defined vrrp_script", vi.Name, t.Name)
			}
		}
		for _, t := range vi.TrackFiles {
			if !files[t.Name] {
				v.d.errorf(vi.Pos, "vrrp_instance %q: track_file %q is not a defined track_file", vi.Name, t.Name)
			}
		}
		for _, t := range vi.TrackProcs {
			if !procs[t.Name] {
				v.d.errorf(vi.Pos, "vrrp_instance %q: track_process %q is not a defined vrrp_track_process", vi.Name, t.Name)
			}
		}
	}
	for _, g := range v.cfg.SyncGroups {
		if g.Notify.MasterRxLowerPri != nil {
			v.d.warnf(g.Pos, "vrrp_sync_group %q: notify_master_rx_lower_pri runs for vrrp_instance blocks only, not for a sync group", g.Name)
		}
	}
	inGroup := map[string]string{}
	for _, g := range v.cfg.SyncGroups {
		for _, m := range g.Group {
			if v.instance(m) == nil {
				v.d.errorf(g.Pos, "vrrp_sync_group %q: unknown vrrp_instance %q", g.Name, m)
			}
			if other, dup := inGroup[m]; dup {
				v.d.errorf(g.Pos, "vrrp_instance %q is in vrrp_sync_group %q and %q", m, other, g.Name)
			}
			inGroup[m] = g.Name
		}
		for _, t := range g.TrackScripts {
			if !scripts[t.Name] {
				v.d.errorf(g.Pos, "vrrp_sync_group %q: track_script %q is not a defined vrrp_script", g.Name, t.Name)
			}
		}
		for _, t := range g.TrackProcs {
			if !procs[t.Name] {
				v.d.errorf(g.Pos, "vrrp_sync_group %q: track_process %q is not a defined vrrp_track_process", g.Name, t.Name)
			}
		}
	}
}

// MaxGroupRange is the largest address range a virtual_server_group entry
// may span (each address is a service of its own).
const MaxGroupRange = 4096

func (v *validator) groups() {
	seen := map[string]bool{}
	for _, g := range v.cfg.VirtualServerGroups {
		for _, e := range g.Entries {
			if e.FWMark == 0 && rangeSize(e.First, e.Last) > MaxGroupRange {
				v.d.errorf(e.Pos, "virtual_server_group %q: range %s spans more than %d addresses", g.Name, addrRangeString(e.First, e.Last), MaxGroupRange)
			}
		}
		if seen[g.Name] {
			v.d.errorf(g.Pos, "virtual_server_group %q defined twice", g.Name)
		}
		seen[g.Name] = true
		if len(g.Entries) == 0 {
			v.d.errorf(g.Pos, "virtual_server_group %q is empty", g.Name)
		}
	}
	pools := map[string]bool{}
	for _, p := range v.cfg.SNATPools {
		if pools[p.Name] {
			v.d.errorf(p.Pos, "govs_snat_pool %q defined twice", p.Name)
		}
		pools[p.Name] = true
		if len(p.Addresses) == 0 {
			v.d.errorf(p.Pos, "govs_snat_pool %q has no address", p.Name)
		}
		if p.PortMin > p.PortMax {
			v.d.errorf(p.Pos, "govs_snat_pool %q: port_range %d %d runs backwards", p.Name, p.PortMin, p.PortMax)
		}
	}
}

// bgp checks the govs_bgp block.
func (v *validator) bgp() {
	g := v.cfg.BGP
	if g == nil {
		return
	}
	if g.LocalAS == 0 {
		v.d.errorf(g.Pos, "govs_bgp: local_as is missing (the AS number this director speaks for)")
	}
	if g.RouterID.IsValid() && !g.RouterID.Is4() {
		v.d.errorf(g.Pos, "govs_bgp: router_id %s must be an IPv4 address (a BGP identifier is 32 bits)", g.RouterID)
	}
	if g.NextHop.IsValid() && !g.NextHop.Is4() {
		v.d.errorf(g.Pos, "govs_bgp: next_hop %s is for IPv4 routes and must be an IPv4 address (next_hop6 is for IPv6)", g.NextHop)
	}
	if g.NextHop6.IsValid() && (!g.NextHop6.Is6() || g.NextHop6.Is4In6()) {
		v.d.errorf(g.Pos, "govs_bgp: next_hop6 %s must be an IPv6 address", g.NextHop6)
	}
	if len(g.Neighbors) == 0 {
		v.d.errorf(g.Pos, "govs_bgp: no neighbor (neighbor ADDRESS { remote_as N })")
	}
	if !g.RouterID.IsValid() && len(g.Neighbors) > 0 && !slices.ContainsFunc(g.Neighbors, func(n *BGPNeighbor) bool { return n.Address.Is4() }) {
		v.d.errorf(g.Pos, "govs_bgp: set router_id: it is taken from the route to the first IPv4 neighbor, and every neighbor is IPv6")
	}
	seen := map[netip.Addr]bool{}
	families := map[bool]bool{} // IPv4 → has a neighbor
	for _, nb := range g.Neighbors {
		if nb.Address.Is4In6() {
			v.d.errorf(nb.Pos, "govs_bgp: neighbor %s: write an IPv4 neighbor as IPv4 (%s)", nb.Address, nb.Address.Unmap())
		}
		families[nb.Address.Is4()] = true
		if seen[nb.Address] {
			v.d.errorf(nb.Pos, "govs_bgp: neighbor %s given twice", nb.Address)
		}
		seen[nb.Address] = true
		if nb.RemoteAS == 0 {
			v.d.errorf(nb.Pos, "govs_bgp: neighbor %s has no remote_as", nb.Address)
		}
		ibgp := nb.RemoteAS != 0 && nb.RemoteAS == g.LocalAS
		if nb.Passive && g.ListenPort == 0 {
			v.d.errorf(nb.Pos, "govs_bgp: neighbor %s is passive but govs_bgp has no listen_port: the session could never come up", nb.Address)
		}
		if nb.LocalAddress.IsValid() && nb.LocalAddress.Is4() != nb.Address.Is4() {
			v.d.errorf(nb.Pos, "govs_bgp: neighbor %s: local_address %s is of the other address family", nb.Address, nb.LocalAddress)
		}
		if len(nb.Password) > 80 {
			v.d.errorf(nb.Pos, "govs_bgp: neighbor %s: password of %d bytes, more than the 80 a TCP MD5 key may have", nb.Address, len(nb.Password))
		}
		hold, ka := BGPTimers(g, nb)
		switch {
		case ka >= hold:
			v.d.errorf(nb.Pos, "govs_bgp: neighbor %s: keepalive %d is not below hold_time %d: the session would drop between keepalives", nb.Address, ka, hold)
		case ka*3 > hold:
			v.d.warnf(nb.Pos, "govs_bgp: neighbor %s: keepalive %d is more than a third of hold_time %d: the session may drop after one lost keepalive", nb.Address, ka, hold)
		}
		if !nb.BFD && (nb.BFDInterval != 0 || nb.BFDMultiplier != 0) {
			v.d.warnf(nb.Pos, "govs_bgp: neighbor %s: bfd_interval or bfd_multiplier without bfd: BFD is off", nb.Address)
		}
		if nb.BFD && nb.Multihop != 0 {
			v.d.errorf(nb.Pos, "govs_bgp: neighbor %s: bfd is single-hop (RFC 5881): not with ebgp_multihop", nb.Address)
		}
		if nb.Multihop != 0 && ibgp {
			v.d.warnf(nb.Pos, "govs_bgp: neighbor %s: ebgp_multihop has no effect on an iBGP session (remote_as = local_as)", nb.Address)
		}
		if g.Prepend > 0 && ibgp {
			v.d.errorf(nb.Pos, "govs_bgp: as_path_prepend with the iBGP neighbor %s: it would see its own AS in the path and drop the routes (prepending is for eBGP)", nb.Address)
		}
		if g.LocalPref != nil && nb.RemoteAS != 0 && !ibgp {
			v.d.warnf(nb.Pos, "govs_bgp: neighbor %s is eBGP: local_pref is not sent to it (only to iBGP neighbors)", nb.Address)
		}
	}
	for _, vs := range v.cfg.VirtualServers {
		if vs.FWMark != 0 {
			v.d.warnf(vs.Pos, "virtual_server %s: a firewall-mark service has no address of its own: govs_bgp announces nothing for it (announce its addresses through a service on them)", vs.ID())
			continue
		}
		if vs.Addr.IsValid() && len(g.Neighbors) > 0 && !families[vs.Addr.Unmap().Is4()] {
			v.d.warnf(vs.Pos, "virtual_server %s: no govs_bgp neighbor of its address family: its address is not announced", vs.ID())
		}
		delay := DefaultBGPAnnounceDelay
		if g.AnnounceDelay != nil {
			delay = g.AnnounceDelay.D()
		}
		dl := DefaultDelayLoop.D()
		if vs.DelayLoop != nil {
			dl = vs.DelayLoop.D()
		}
		if vs.Scheduler == "mh" && len(vs.RealServers) > 1 && dl > delay {
			v.d.warnf(vs.Pos, "virtual_server %s: govs_bgp's announce_delay %v is shorter than its delay_loop %v: a director that starts or comes back may be announced before its checks have found which real servers are down, and route some moved connections to another real server than the other directors do", vs.ID(), delay, dl)
		}
		for _, m := range vsMethods(vs) {
			if m == MethodNAT || m == MethodSNAT {
				v.d.warnf(vs.Pos, "virtual_server %s: lb_kind %s with govs_bgp: replies go back through the director that translated the connection, so a connection the routers move to another director breaks; active-active without resets needs DR or TUN", vs.ID(), m)
				break
			}
		}
		// directors that share a virtual service behind ECMP agree on
		// a flow's real server only if the choice depends on the packet
		// alone
		switch vs.Scheduler {
		case "mh", "sh":
		default:
			if len(vs.RealServers) < 2 {
				continue
			}
			sched := vs.Scheduler
			if sched == "" {
				sched = DefaultScheduler
			}
			v.d.warnf(vs.Pos, "virtual_server %s: lb_algo %s with govs_bgp: active-active directors pick the same real server for a connection only with mh (or sh); a connection the routers move to another director is reset", vs.ID(), sched)
		}
	}
}

func (v *validator) group(name string) *VirtualServerGroup {
	for _, g := range v.cfg.VirtualServerGroups {
		if g.Name == name {
			return g
		}
	}
	return nil
}

// svcKey identifies what a virtual server matches, to find duplicates.
type svcKey struct {
	proto  Proto
	addr   netip.Addr
	port   uint16
	fwmark uint32
	v6     bool
}

func (v *validator) keys(vs *VirtualServer) []svcKey {
	var out []svcKey
	add := func(addr netip.Addr, ports []PortRange) {
		for _, p := range vs.Protocols {
			for _, r := range ports {
				for port := int(r.From); port <= int(r.To); port++ {
					out = append(out, svcKey{proto: p, addr: addr, port: uint16(port)})
					if len(out) > 1<<20 {
						return
					}
				}
			}
		}
	}
	switch {
	case vs.FWMark != 0:
		out = append(out, svcKey{fwmark: vs.FWMark, v6: vs.IPFamily == "inet6"})
	case vs.Group != "":
		g := v.group(vs.Group)
		if g == nil {
			return nil
		}
		for _, e := range g.Entries {
			if e.FWMark != 0 {
				out = append(out, svcKey{fwmark: e.FWMark, v6: e.V6})
				continue
			}
			for a, i := e.First, 0; i < MaxGroupRange; a, i = a.Next(), i+1 {
				add(a, []PortRange{{e.Port, e.Port}})
				if a == e.Last {
					break
				}
			}
		}
	default:
		add(vs.Addr, vs.Ports)
	}
	return out
}

// ID names the virtual server as its header does: "ADDR PORTS",
// "fwmark N" or "group NAME". It is stable across reloads.
func (vs *VirtualServer) ID() string {
	switch {
	case vs.FWMark != 0:
		return "fwmark " + strconv.FormatUint(uint64(vs.FWMark), 10)
	case vs.Group != "":
		return "group " + vs.Group
	}
	return vs.Addr.String() + " " + portListString(vs.Ports)
}

func (v *validator) virtualServers() {
	taken := map[svcKey]*VirtualServer{}
	var vips []netip.Prefix
	for _, vi := range v.cfg.VRRPInstances {
		for _, a := range vi.VIPs {
			vips = append(vips, netip.PrefixFrom(a.Prefix.Addr(), a.Prefix.Addr().BitLen()))
		}
		for _, a := range vi.VIPsExcluded {
			vips = append(vips, netip.PrefixFrom(a.Prefix.Addr(), a.Prefix.Addr().BitLen()))
		}
	}
	// a service on a static address is not on a VIP, and is no mistake
	var statics []netip.Prefix
	for _, b := range v.cfg.Statics {
		for _, a := range b.VIPs {
			statics = append(statics, netip.PrefixFrom(a.Prefix.Addr(), a.Prefix.Addr().BitLen()))
		}
	}
	pools := map[string]bool{}
	for _, p := range v.cfg.SNATPools {
		pools[p.Name] = true
	}
	for _, vs := range v.cfg.VirtualServers {
		name := vs.ID()
		if vs.Group != "" && v.group(vs.Group) == nil {
			v.d.errorf(vs.Pos, "virtual_server %s: unknown virtual_server_group %q", name, vs.Group)
		}
		reported := false
		for _, k := range v.keys(vs) {
			if other, dup := taken[k]; dup && other != vs && !reported {
				what := fmt.Sprintf("%s %s:%d", k.proto, k.addr, k.port)
				if k.fwmark != 0 {
					what = fmt.Sprintf("fwmark %d", k.fwmark)
				}
				v.d.errorf(vs.Pos, "virtual_server %s: %s is already served by the virtual_server at %s", name, what, other.Pos)
				reported = true
			}
			taken[k] = vs
		}
		if !schedulers[vs.Scheduler] {
			v.d.errorf(vs.Pos, "virtual_server %s: unknown scheduler %q (rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos)", name, vs.Scheduler)
		}
		for _, f := range vs.SchedFlags {
			if (strings.HasPrefix(f, "sh-") && vs.Scheduler != "sh") || (strings.HasPrefix(f, "mh-") && vs.Scheduler != "mh") {
				v.d.warnf(vs.Pos, "virtual_server %s: %s has no effect with scheduler %s", name, f, vs.Scheduler)
			}
		}
		if vs.MHTableSize != 0 && !isPrime(vs.MHTableSize) {
			v.d.errorf(vs.Pos, "virtual_server %s: mh_table_size %d is not a prime", name, vs.MHTableSize)
		}
		vport, single := v.singlePort(vs)
		if vs.FWMark == 0 && vs.Group == "" && vport == 0 && single && vs.Persistence == 0 {
			v.d.errorf(vs.Pos, "virtual_server %s: port 0 (all ports) needs persistence_timeout, as in IPVS", name)
		}
		if vs.PersistenceGranularity != "" {
			v6 := vs.Addr.Is6() || vs.IPFamily == "inet6"
			if _, err := MaskBits(vs.PersistenceGranularity, v6); err != nil {
				v.d.errorf(vs.Pos, "virtual_server %s: persistence_granularity: %v", name, err)
			}
		}
		if vs.PersistenceEngine != "" && vs.PersistenceEngine != "sip" {
			v.d.errorf(vs.Pos, "virtual_server %s: unknown persistence_engine %q (sip)", name, vs.PersistenceEngine)
		} else if vs.PersistenceEngine == "sip" {
			v.d.warnf(vs.Pos, "virtual_server %s: persistence_engine sip is accepted but has no effect yet in govs", name)
		}
		if vs.Quorum < 0 || vs.Hysteresis < 0 || vs.Hysteresis > vs.Quorum && vs.Quorum > 0 {
			v.d.errorf(vs.Pos, "virtual_server %s: hysteresis %d must be between 0 and quorum %d", name, vs.Hysteresis, vs.Quorum)
		}
		if vs.SNATPool != "" && !pools[vs.SNATPool] {
			v.d.errorf(vs.Pos, "virtual_server %s: unknown govs_snat_pool %q", name, vs.SNATPool)
		}
		if vs.Sorry != nil && !vs.Sorry.Addr.IsValid() {
			v.d.errorf(vs.Sorry.Pos, "virtual_server %s: sorry_server_lvs_method without sorry_server", name)
		}
		if vs.Addr.IsValid() && len(vips) > 0 && !covered(vips, vs.Addr) && !covered(statics, vs.Addr) {
			v.d.warnf(vs.Pos, "virtual_server %s: address %s is not a virtual_ipaddress of any vrrp_instance", name, vs.Addr)
		}
		v.realServers(vs, name, vport, single)
	}
}

// singlePort returns the one virtual port a service listens on, and
// false when it has several (port list, range, fwmark, mixed group).
func (v *validator) singlePort(vs *VirtualServer) (uint16, bool) {
	switch {
	case vs.FWMark != 0:
		return 0, false
	case vs.Group != "":
		g := v.group(vs.Group)
		if g == nil || len(g.Entries) == 0 {
			return 0, false
		}
		p := g.Entries[0].Port
		for _, e := range g.Entries {
			if e.FWMark != 0 || e.Port != p {
				return 0, false
			}
		}
		return p, true
	case len(vs.Ports) == 1 && vs.Ports[0].From == vs.Ports[0].To:
		return vs.Ports[0].From, true
	}
	return 0, false
}

func covered(vips []netip.Prefix, a netip.Addr) bool {
	for _, p := range vips {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (v *validator) realServers(vs *VirtualServer, name string, vport uint16, single bool) {
	seen := map[netip.AddrPort]*RealServer{}
	for _, rs := range vs.RealServers {
		port := rs.Port
		if port == 0 {
			port = vport
		}
		key := netip.AddrPortFrom(rs.Addr, port)
		if other, dup := seen[key]; dup {
			v.d.errorf(rs.Pos, "virtual_server %s: real_server %s listed twice (first at %s)", name, key, other.Pos)
		}
		seen[key] = rs
		if rs.Weight < 0 || rs.Weight > 65535 {
			v.d.errorf(rs.Pos, "real_server %s: weight %d outside 0..65535", rs.Addr, rs.Weight)
		}
		if rs.UThreshold < 0 || rs.UThreshold > 65535 || rs.LThreshold < 0 || rs.LThreshold > 65535 {
			v.d.errorf(rs.Pos, "real_server %s: thresholds must be within 0..65535", rs.Addr)
		}
		if rs.LThreshold != 0 && rs.UThreshold != 0 && rs.LThreshold >= rs.UThreshold {
			v.d.errorf(rs.Pos, "real_server %s: lthreshold %d must be below uthreshold %d", rs.Addr, rs.LThreshold, rs.UThreshold)
		}
		m := rs.Method
		if m == "" {
			m = vs.Method
		}
		if (m == MethodDR || m == MethodTUN) && rs.Port != 0 {
			switch {
			case single && vport != 0 && rs.Port != vport:
				v.d.errorf(rs.Pos, "real_server %s port %d: with %s the real server port must equal the virtual port %d; only NAT and SNAT can change it", rs.Addr, rs.Port, m, vport)
			case !single || vport == 0:
				// keepalived allows it: the port is where checks connect.
				v.d.warnf(rs.Pos, "real_server %s port %d: with %s on a multi-port service the port is used only by health checks", rs.Addr, rs.Port, m)
			}
		}
		if vs.Addr.IsValid() && rs.Addr.Is4() != vs.Addr.Is4() && m != MethodTUN {
			v.d.errorf(rs.Pos, "real_server %s: address family differs from the virtual address %s", rs.Addr, vs.Addr)
		}
		for _, c := range rs.Checks {
			v.check(vs, rs, c, single)
		}
	}
}

func (v *validator) check(vs *VirtualServer, rs *RealServer, c *Check, single bool) {
	where := fmt.Sprintf("%s of real_server %s", c.Kind, rs.Addr)
	needsPort := c.Kind != CheckMisc && c.Kind != CheckPing && c.Kind != CheckFile && c.Kind != CheckBFD
	if needsPort && c.ConnectPort == 0 && rs.Port == 0 && !single {
		v.d.errorf(c.Pos, "%s: no port to check (set connect_port: the virtual server has no single port)", where)
	}
	switch c.Kind {
	case CheckHTTP, CheckSSL:
		if len(c.URLs) == 0 {
			v.d.errorf(c.Pos, "%s: needs at least one url { path ... }", where)
		}
		for _, u := range c.URLs {
			if u.Path == "" {
				v.d.errorf(c.Pos, "%s: url without path", where)
			}
			if u.Digest != "" {
				if b, err := hex.DecodeString(u.Digest); err != nil || len(b) != 16 {
					v.d.errorf(c.Pos, "%s: digest %q is not an MD5 in hex (32 hex digits, as genhash prints)", where, u.Digest)
				}
			}
			if u.Regex != "" {
				if _, err := regexp.Compile(u.Regex); err != nil {
					v.d.errorf(c.Pos, "%s: regex: %v", where, err)
				}
			}
		}
	case CheckMisc:
		if c.MiscPath == "" {
			v.d.errorf(c.Pos, "%s: misc_path is required", where)
		}
	case CheckBFD:
		found := false
		for _, bi := range v.cfg.BFDInstances {
			found = found || bi.Name == c.BFDName
		}
		switch {
		case c.BFDName == "":
			v.d.errorf(c.Pos, "%s: name (of a bfd_instance) is required", where)
		case !found:
			v.d.errorf(c.Pos, "%s: %q is not a defined bfd_instance", where, c.BFDName)
		}
	case CheckFile:
		if c.TrackFile == "" {
			v.d.errorf(c.Pos, "%s: track_file is required", where)
		} else {
			found := false
			for _, t := range v.cfg.VRRPTrackFiles {
				found = found || t.Name == c.TrackFile
			}
			if !found {
				v.d.errorf(c.Pos, "%s: track_file %q is not a defined track_file", where, c.TrackFile)
			}
		}
	case CheckUDP:
		if c.Payload != "" {
			if _, err := hex.DecodeString(c.Payload); err != nil {
				v.d.errorf(c.Pos, "%s: payload %q is not hex", where, c.Payload)
			}
		}
		if c.RequireReply != "" {
			ok := len(c.RequireReply)%2 == 0
			for _, r := range strings.ToLower(c.RequireReply) {
				ok = ok && (r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r == 'x')
			}
			if !ok {
				v.d.errorf(c.Pos, "%s: require_reply %q is not hex (X for any nibble)", where, c.RequireReply)
			}
		}
		if c.MaxReplyLength != 0 && c.MinReplyLength > c.MaxReplyLength {
			v.d.errorf(c.Pos, "%s: min_reply_length above max_reply_length", where)
		}
	}
	if c.UseRegex && c.Expect != "" {
		if _, err := regexp.Compile(c.Expect); err != nil {
			v.d.errorf(c.Pos, "%s: expect: %v", where, err)
		}
	}
	if (c.Send != "" || c.UseRegex) && c.Expect == "" && c.Kind == CheckTCP {
		v.d.warnf(c.Pos, "%s: send without expect only checks that the write succeeds", where)
	}
}

// MaskBits converts a persistence netmask (dotted IPv4 mask, or a prefix
// length) into a prefix length.
func MaskBits(s string, v6 bool) (int, error) {
	if n, err := strconv.Atoi(strings.TrimPrefix(s, "/")); err == nil {
		max := 32
		if v6 {
			max = 128
		}
		if n < 1 || n > max {
			return 0, fmt.Errorf("prefix length %d out of range 1..%d", n, max)
		}
		return n, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return 0, fmt.Errorf("%q is not a netmask (e.g. 255.255.255.0) or prefix length", s)
	}
	b := a.As4()
	m := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	bits := 0
	for m&0x80000000 != 0 {
		bits++
		m <<= 1
	}
	if m != 0 || bits == 0 {
		return 0, fmt.Errorf("netmask %s is not contiguous", s)
	}
	return bits, nil
}

// rangeSize counts the addresses first..last, saturating above 1<<20.
func rangeSize(first, last netip.Addr) int {
	n := 0
	for a := first; n <= 1<<20; a = a.Next() {
		n++
		if a == last || !a.IsValid() {
			break
		}
	}
	return n
}

func isPrime(n int) bool {
	if n < 2 {
		return false
	}
	for i := 2; i*i <= n; i++ {
		if n%i == 0 {
			return false
		}
	}
	return true
}

// vsMethods lists the forwarding methods of a virtual server: its own
// and its real servers' (a real server may set its own lb_kind).
func vsMethods(vs *VirtualServer) []Method {
	out := []Method{vs.Method}
	for _, rs := range vs.RealServers {
		if rs.Method != "" {
			out = append(out, rs.Method)
		}
	}
	return out
}
