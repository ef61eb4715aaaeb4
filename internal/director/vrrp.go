package director

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/vrrp"
)

// vrrpOptions maps the configuration's VRRP part onto the vrrp package's
// types.
func vrrpOptions(cfg *config.Config) ([]vrrp.InstanceConfig, []vrrp.ScriptConfig, []vrrp.SyncGroupConfig) {
	g := cfg.Global
	files := map[string]*config.TrackFile{}
	for _, t := range cfg.VRRPTrackFiles {
		files[t.Name] = t
	}
	bfds := map[string]*config.BFDInstance{}
	for _, b := range cfg.BFDInstances {
		bfds[b.Name] = b
	}
	procs := map[string]*config.TrackProcess{}
	for _, t := range cfg.VRRPTrackProcesses {
		procs[t.Name] = t
	}
	scriptOf := map[string]*config.VRRPScript{}
	for _, s := range cfg.VRRPScripts {
		scriptOf[s.Name] = s
	}
	// addTracks adds the script, file, process and BFD lines of an
	// instance or a sync group, each with its definition
	addTracks := func(ic *vrrp.InstanceConfig, scripts, fs, ps, bs []config.Track) {
		for _, t := range scripts {
			ic.TrackScripts = append(ic.TrackScripts, trackScript(t, scriptOf[t.Name]))
		}
		for _, t := range fs {
			ic.TrackFiles = append(ic.TrackFiles, trackFile(t, files[t.Name]))
		}
		for _, t := range ps {
			ic.TrackProcesses = append(ic.TrackProcesses, trackProcess(t, procs[t.Name]))
		}
		for _, t := range bs {
			ic.TrackBFDs = append(ic.TrackBFDs, trackBFD(t, bfds[t.Name]))
		}
	}
	var insts []vrrp.InstanceConfig
	prios := cfg.RulePriorities()
	weights := cfg.TrackWeightRules()
	staticTracks := cfg.StaticTrackInterfaces()
	// the sync groups of each instance (once, not a scan of every group
	// per instance: templated configurations have thousands of each)
	groupsOf := map[string][]*config.SyncGroup{}
	for _, sg := range cfg.SyncGroups {
		for _, m := range sg.Group {
			groupsOf[m] = append(groupsOf[m], sg)
		}
	}
	// keepalived paces gratuitous ARPs by vrrp_garp_interval and
	// unsolicited neighbour advertisements by vrrp_gna_interval on each
	// interface; a garp_group sets both for the interfaces it lists
	// instead (the first group that lists one, as keepalived), which
	// then share one pace
	garpGroups := map[string]vrrp.GARPDelay{}
	for i, gg := range cfg.GarpGroups {
		d := vrrp.GARPDelay{Pace: fmt.Sprintf("garp_group %d", i+1), ARP: gg.GarpInterval.D(), NA: gg.GnaInterval.D()}
		for _, ifname := range append([]string{gg.Interface}, gg.Interfaces...) {
			if _, taken := garpGroups[ifname]; ifname != "" && !taken {
				garpGroups[ifname] = d
			}
		}
	}
	for _, vi := range cfg.VRRPInstances {
		set := g.InstanceSettings(vi)
		ic := vrrp.InstanceConfig{
			Name:                    vi.Name,
			State:                   vi.State,
			Interface:               vi.Interface,
			VRID:                    vi.VirtualRouterID,
			Priority:                vi.BasePriority(),
			AdvertInterval:          vi.AdvertInt.D(),
			Version:                 vi.Version,
			NoPreempt:               vi.NoPreempt,
			PreemptDelay:            vi.PreemptDelay.D(),
			UnicastSrcIP:            vi.UnicastSrcIP,
			McastSrcIP:              vi.McastSrcIP,
			UnicastTTL:              vi.UnicastTTL,
			DontTrackPrimary:        vi.DontTrackPrimary,
			TrackSrcIP:              vi.TrackSrcIP,
			GARPMasterDelay:         set.GarpMasterDelay.D(),
			GARPMasterRepeat:        set.GarpMasterRepeat,
			GARPMasterRefresh:       set.GarpMasterRefresh.D(),
			GARPMasterRefreshRepeat: set.GarpMasterRefreshRepeat,
			GARPDelay:               vrrp.GARPDelay{ARP: g.VRRPGarpInterval.D(), NA: g.VRRPGnaInterval.D()},
			GARPGroups:              garpGroups,
			GARPLowerPrioRepeat:     set.GarpLowerPrioRepeat,
			GARPLowerPrioDelay:      set.GarpLowerPrioDelay.D(),
			LowerPrioNoAdvert:       set.LowerPrioNoAdvert,
			HigherPrioSendAdvert:    set.HigherPrioSendAdvert,
			NoGARPDelay:             set.GarpMasterDelay == 0,
			NoLowerPrioGARP:         set.GarpLowerPrioRepeat == 0,
			SMTPAlert:               vi.SMTPAlert,
			Notify:                  notifyScripts(vi.Notify),
		}
		if ic.Version == 0 {
			ic.Version = g.VRRPVersion
		}
		strict := g.StrictMode(vi)
		if strict {
			// as keepalived (Validate warns): MASTER only for the
			// address owner, no preempt_delay, adverts not from the
			// parent of a use_vmac interface
			ic.State = "BACKUP"
			if ic.Priority == vrrp.PriorityOwner {
				ic.State = "MASTER"
			}
			ic.PreemptDelay = 0
		}
		ic.NoAccept = !g.AcceptMode(vi)
		ic.CheckUnicastSrc = set.CheckUnicastSrc
		if x := set.GarpExtraIf; x != nil {
			ic.GARPExtraIf, ic.GARPExtraIfAll = x.Interval.D(), x.All
		}
		ic.UnicastFaultNoPeer = vi.UnicastFaultNoPeer
		ic.NotifyPriorityChanges = vi.NotifyPrioChange || g.VRRPNotifyPriorityChanges
		if vi.UseVMAC {
			ic.VMAC, ic.VMACXmitBase = vi.VMACInterface(g.VMACPrefix), vi.VMACXmitBase && !strict
			if mac, err := net.ParseMAC(vi.VMACAddr); err == nil {
				ic.VMACAddr = mac
			}
		}
		for _, p := range vi.UnicastPeers {
			if p.MinTTL != 0 || p.MaxTTL != 0 {
				// keepalived's defaults: min_ttl 0, max_ttl 255
				r := vrrp.PeerTTL{Addr: p.Addr, Min: p.MinTTL, Max: p.MaxTTL}
				if r.Max == 0 {
					r.Max = 255
				}
				ic.UnicastPeerTTL = append(ic.UnicastPeerTTL, r)
				// as keepalived: a TTL range turns on the source check
				ic.CheckUnicastSrc = true
			}
			ic.UnicastPeers = append(ic.UnicastPeers, p.Addr)
		}
		ic.VirtualIPs = vipList(vi.VIPs)
		ic.VirtualIPsExcluded = vipList(vi.VIPsExcluded)
		// the multicast group is the family's (the family as the
		// instance reads it: its addresses, else its source or peers)
		group := g.VRRPMcastGroup4
		if ic.IsIPv6() {
			group = g.VRRPMcastGroup6
		}
		ic.LogUnknownVRIDs = g.LogUnknownVRIDs
		// the receive buffer: this instance's part (rxBufSums adds up
		// the parts of the instances that share a socket in keepalived)
		ic.RxBufSize = vi.KernelRxBufSize
		if a, err := netip.ParseAddr(group); err == nil {
			ic.MulticastGroup = a
		}
		if vi.McastDstIP.IsValid() {
			ic.MulticastGroup = vi.McastDstIP
		}
		ic.OldUnicastChecksum = vi.OldUnicastChecksum
		if a, err := netip.ParseAddr(g.VRRPMcastGroup4); err == nil && a.Is4() && a.IsMulticast() {
			ic.OldChecksumGroup = a // the global group, as keepalived
		}
		ic.DownTimerAdverts = cmp.Or(vi.DownTimerAdverts, g.VRRPDownTimerAdverts)
		// (a use_vmac interface gets it anyway: keepalived ignores it)
		ic.PromoteSecondaries = vi.PromoteSecondaries && !vi.UseVMAC
		// as keepalived: no authentication without a password, with
		// VRRPv3, for IPv6 or in strict mode (warned by Validate); the family as the
		// instance reads it (its addresses, else its source or peers)
		if vi.Auth != nil && vi.Auth.Pass != "" && ic.Version == 2 && !ic.IsIPv6() && !strict &&
			(strings.EqualFold(vi.Auth.Type, "PASS") || strings.EqualFold(vi.Auth.Type, "AH")) {
			ic.AuthPass = vi.Auth.Pass
			if len(ic.AuthPass) > 8 {
				ic.AuthPass = ic.AuthPass[:8]
			}
			if ic.AuthAH = strings.EqualFold(vi.Auth.Type, "AH"); ic.AuthAH && strings.EqualFold(ic.State, "MASTER") && ic.Priority != vrrp.PriorityOwner {
				// keepalived: an initial state MASTER is cleared with AH
				// (but for the address owner): the AH sequence number
				// is learnt from an advert before taking over
				ic.State = "BACKUP"
			}
		}
		ic.VirtualRoutes = routeList(vi.Routes)
		ic.VirtualRules = ruleList(vi.Rules, prios)
		for _, t := range vi.TrackIfaces {
			if t.Name == vi.Interface {
				// keepalived 2.2.7: "Ignoring track_interface IF since
				// own interface" (its own line only: a sync group's or a
				// track_group's entry for it counts)
				continue
			}
			ic.TrackInterfaces = append(ic.TrackInterfaces, vrrp.TrackInterface{Name: t.Name, Weight: t.Weight, Reverse: t.Reverse})
		}
		addTracks(&ic, vi.TrackScripts, vi.TrackFiles, vi.TrackProcs, vi.TrackBFDs)
		// a name an instance tracks twice: keepalived 2.2.7 ignores the
		// second line ("duplicate track_script s - ignoring"; an
		// interface's second line too, silently: seen in a namespace)
		ic.TrackInterfaces = firstOfName(ic.TrackInterfaces, func(t vrrp.TrackInterface) string { return t.Name })
		ic.TrackScripts = firstOfName(ic.TrackScripts, func(t vrrp.TrackScript) string { return t.Name })
		ic.TrackFiles = firstOfName(ic.TrackFiles, func(t vrrp.TrackFile) string { return t.Name })
		ic.TrackProcesses = firstOfName(ic.TrackProcesses, func(t vrrp.TrackProcess) string { return t.Name })
		ic.TrackBFDs = firstOfName(ic.TrackBFDs, func(t vrrp.TrackBFD) string { return t.Name })
		if why := weights.Ignored(vi); why != "" {
			ignoreTrackWeights(&ic, why, scriptOf)
		}
		// A sync group's trackers apply to every member: any of them
		// failing puts the member, and so the whole group, in FAULT.
		for _, sg := range groupsOf[vi.Name] {
			n0 := len(ic.TrackInterfaces)
			s0, f0, b0, p0 := len(ic.TrackScripts), len(ic.TrackFiles), len(ic.TrackBFDs), len(ic.TrackProcesses)
			for _, t := range sg.TrackIfaces {
				ic.TrackInterfaces = append(ic.TrackInterfaces, vrrp.TrackInterface{Name: t.Name, Weight: t.Weight, Reverse: t.Reverse})
			}
			// as an instance's: the line's weight, else the definition's
			// (keepalived 2.2.7: a group's track_script without a weight
			// lowers the members' priorities by the vrrp_script's)
			addTracks(&ic, sg.TrackScripts, sg.TrackFiles, sg.TrackProcs, sg.TrackBFDs)
			if weights.GroupHasOwner(sg) {
				// keepalived: "Cannot have weighted track … with member
				// having priority 255 - setting weight 0" (with the line's
				// or the definition's reverse, as it stays)
				for i := n0; i < len(ic.TrackInterfaces); i++ {
					ic.TrackInterfaces[i].Weight = 0
				}
				for i := s0; i < len(ic.TrackScripts); i++ {
					ic.TrackScripts[i].Weight, ic.TrackScripts[i].WeightSet = 0, true
				}
				for i := f0; i < len(ic.TrackFiles); i++ {
					ic.TrackFiles[i].Weight = 0
				}
				for i := b0; i < len(ic.TrackBFDs); i++ {
					ic.TrackBFDs[i].Weight = 0
				}
				for i := p0; i < len(ic.TrackProcesses); i++ {
					ic.TrackProcesses[i].Weight = 0
				}
			}
			// an object the member tracks itself is tracked once, as
			// keepalived 2.2.7 adds the group's (add_vrrp_to_track_*):
			// the member's weighted entry takes the group's weight and
			// reverse (a process only its weight), an unweighted one
			// stays as it is
			ic.TrackInterfaces = mergeGroup(ic.TrackInterfaces, n0, func(t *vrrp.TrackInterface) (string, *int, *bool) { return t.Name, &t.Weight, &t.Reverse }, false)
			ic.TrackScripts = mergeGroup(ic.TrackScripts, s0, func(t *vrrp.TrackScript) (string, *int, *bool) { return t.Name, &t.Weight, &t.Reverse }, false)
			ic.TrackFiles = mergeGroup(ic.TrackFiles, f0, func(t *vrrp.TrackFile) (string, *int, *bool) { return t.Name, &t.Weight, &t.Reverse }, false)
			ic.TrackBFDs = mergeGroup(ic.TrackBFDs, b0, func(t *vrrp.TrackBFD) (string, *int, *bool) { return t.Name, &t.Weight, &t.Reverse }, false)
			ic.TrackProcesses = mergeGroup(ic.TrackProcesses, p0, func(t *vrrp.TrackProcess) (string, *int, *bool) { return t.Name, &t.Weight, &t.Reverse }, true)
		}
		// track_group: the interfaces of the group's static entries are
		// tracked with weight 0 (FAULT while down); one the instance
		// tracks already gets weight 0, as keepalived 2.2.7 does
		for _, dev := range staticTracks[vi.Name] {
			found := false
			for i := range ic.TrackInterfaces {
				if t := &ic.TrackInterfaces[i]; t.Name == dev {
					// (an unweighted one, reversed or not, stays as it
					// is, as keepalived's add_vrrp_to_interface keeps it)
					if t.Weight != 0 {
						t.Listed = &vrrp.TrackInterface{Name: t.Name, Weight: t.Weight, Reverse: t.Reverse}
						t.Weight, t.Reverse = 0, false
					}
					found = true
				}
			}
			if !found {
				ic.TrackInterfaces = append(ic.TrackInterfaces, vrrp.TrackInterface{Name: dev, Static: true})
			}
		}
		insts = append(insts, ic)
	}
	rxBufSums(insts, &cfg.Global)
	var scripts []vrrp.ScriptConfig
	for _, s := range cfg.VRRPScripts {
		scripts = append(scripts, vrrp.ScriptConfig{
			Name: s.Name, Script: s.Script, Interval: s.Interval.D(), Timeout: s.Timeout.D(),
			Weight: s.Weight, Reverse: s.Reverse, Rise: s.Rise, Fall: s.Fall, InitFail: s.InitFail, User: s.User,
		})
	}
	var groups []vrrp.SyncGroupConfig
	for _, sg := range cfg.SyncGroups {
		groups = append(groups, vrrp.SyncGroupConfig{Name: sg.Name, Members: sg.Group, Notify: notifyScripts(sg.Notify), SMTPAlert: sg.SMTPAlert})
	}
	return insts, scripts, groups
}

// rxBufSums sets each instance's advert socket receive buffer as
// keepalived 2.2.7 sizes the socket the instance shares with others
// (its socket pool: the same interface, family, protocol and multicast
// group or unicast source): the sum, over them, of each one's
// kernel_rx_buf_size, else the vrrp_rx_bufs_policy size, else its
// advert's length or the interface's MTU times vrrp_rx_bufs_multiplier
// (default 3). govs has a socket per instance, and each reads every
// advert of the interface, as keepalived's shared socket does: each gets
// the sum. insts hold their kernel_rx_buf_size in RxBufSize.
func rxBufSums(insts []vrrp.InstanceConfig, g *config.GlobalDefs) {
	type pool struct {
		dev, vmac, src string
		v6, ah         bool
	}
	key := func(ic *vrrp.InstanceConfig) pool {
		p := pool{dev: ic.Interface, vmac: ic.VMAC, v6: ic.IsIPv6(), ah: ic.AuthAH}
		if len(ic.UnicastPeers) > 0 {
			p.src = "unicast " + cmp.Or(ic.UnicastSrcIP, ic.McastSrcIP).String()
		} else {
			p.src = ic.MulticastGroup.String()
		}
		return p
	}
	mult := cmp.Or(g.VRRPRxBufsMultiplier, 3)
	type sum struct{ bytes, mtus int }
	sums := map[pool]sum{}
	for i := range insts {
		ic := &insts[i]
		s := sums[key(ic)]
		switch p := g.VRRPRxBufsPolicy; {
		case ic.RxBufSize > 0:
			s.bytes += ic.RxBufSize
		case p == "MTU":
			s.mtus += mult
		case p == "ADVERT":
			s.bytes += mult * vrrp.AdvertLen(ic)
		case p != "":
			n, _ := strconv.Atoi(p)
			s.bytes += n
		}
		sums[key(ic)] = s
	}
	for i := range insts {
		s := sums[key(&insts[i])]
		insts[i].RxBufSize, insts[i].RxBufMTUs = s.bytes, s.mtus
	}
}

// trackBFD is a track_bfd line with its bfd_instance: the line's weight
// when given, else the bfd_instance's.
// ignoreTrackWeights applies, to the trackers of an instance in a sync
// group (without sync_group_tracking_weight) or of an address owner,
// what keepalived 2.2.7 does with their weights (config.Validate warns
// of each, config.TrackWeights): weighted scripts and BFD
// sessions are not tracked; a file of weight 0 or 1 (its line's, else
// its block's) is tracked with weight 0, one of another weight not at
// all. A weighted interface: an address owner's is not tracked at all;
// a sync group member's keeps its weight, for keepalived 2.2.7, though
// it logs "ignoring ... tracked interface weight due to SYNC group" and
// its data file shows weight 0, still changes the priority by it (seen
// in a namespace: the interface down lowers it by a negative weight,
// with no FAULT; up adds a positive one).
func ignoreTrackWeights(ic *vrrp.InstanceConfig, why string, scripts map[string]*config.VRRPScript) {
	ic.TrackScripts = slices.DeleteFunc(ic.TrackScripts, func(t vrrp.TrackScript) bool {
		w := t.Weight
		if s := scripts[t.Name]; !t.WeightSet && s != nil {
			w = s.Weight
		}
		return w != 0
	})
	ic.TrackBFDs = slices.DeleteFunc(ic.TrackBFDs, func(t vrrp.TrackBFD) bool { return t.Weight != 0 })
	// a file's weight (its line's, else its block's, default 1): 0 or 1
	// is tracked with weight 0, another is not tracked
	ic.TrackFiles = slices.DeleteFunc(ic.TrackFiles, func(t vrrp.TrackFile) bool { return t.Weight != 0 && t.Weight != 1 })
	for i := range ic.TrackFiles {
		ic.TrackFiles[i].Weight = 0
	}
	if why == "address owner" {
		ic.TrackInterfaces = slices.DeleteFunc(ic.TrackInterfaces, func(t vrrp.TrackInterface) bool { return t.Weight != 0 })
	}
}

// mergeGroup folds a sync group's trackers, list[from:], into an
// instance's own, list[:from]: one of a name the instance tracks already
// changes that entry (when weighted: the group's weight, and reverse
// unless keepReverse) instead of being added.
func mergeGroup[T any](list []T, from int, key func(*T) (name string, weight *int, reverse *bool), keepReverse bool) []T {
	out := list[:from]
	for i := from; i < len(list); i++ {
		g := list[i]
		gn, gw, gr := key(&g)
		merged := false
		for j := range from {
			n, w, r := key(&out[j])
			if n != gn {
				continue
			}
			if *w != 0 {
				*w = *gw
				if !keepReverse {
					*r = *gr
				}
			}
			merged = true
			break
		}
		if !merged {
			out = append(out, g)
		}
	}
	return out
}

// firstOfName keeps the first entry of each name, in order.
func firstOfName[T any](list []T, name func(T) string) []T {
	seen := map[string]bool{}
	var out []T
	for _, t := range list {
		if !seen[name(t)] {
			seen[name(t)] = true
			out = append(out, t)
		}
	}
	return out
}

// trackScript is a track_script line with its vrrp_script: the line's
// weight when given, else the script's, and the line's reverse or
// noreverse, else the script's (keepalived 2.2.7: a line "weight 10" of
// a "weight 5 reverse" script is turned round).
func trackScript(t config.Track, s *config.VRRPScript) vrrp.TrackScript {
	ts := vrrp.TrackScript{Name: t.Name, Weight: t.Weight, WeightSet: t.HasWeight, Reverse: t.Reverse}
	switch {
	case s == nil:
	case t.HasWeight:
		ts.Reverse = t.ReverseOf(s.Reverse)
	default:
		ts.Weight, ts.Reverse, ts.WeightSet = s.Weight, s.Reverse, true
	}
	return ts
}

// trackFile is a track_file line with its definition f (nil: none).
func trackFile(t config.Track, f *config.TrackFile) vrrp.TrackFile {
	tf := vrrp.TrackFile{Name: t.Name, Weight: t.Weight, Reverse: t.Reverse}
	if f != nil {
		tf.Path = f.File
		tf.Reverse = t.ReverseOf(f.Reverse)
		if !t.HasWeight {
			tf.Weight, tf.Reverse = f.Weight, f.Reverse
		}
	}
	return tf
}

func trackBFD(t config.Track, b *config.BFDInstance) vrrp.TrackBFD {
	tb := vrrp.TrackBFD{Name: t.Name, Weight: t.Weight, Reverse: t.Reverse}
	if b != nil {
		tb.Reverse = t.ReverseOf(b.Reverse)
		if !t.HasWeight {
			tb.Weight, tb.Reverse = b.Weight, b.Reverse
		}
	}
	return tb
}

// trackProcess is a track_process line with its vrrp_track_process
// block (nil when there is none: validation has refused the config).
// The line's weight, when given, overrides the block's, as for
// track_script.
func trackProcess(t config.Track, p *config.TrackProcess) vrrp.TrackProcess {
	tp := vrrp.TrackProcess{Name: t.Name, Weight: t.Weight, Reverse: t.Reverse}
	if p == nil {
		return tp
	}
	tp.Reverse = t.ReverseOf(p.Reverse)
	if !t.HasWeight {
		tp.Weight, tp.Reverse = p.Weight, p.Reverse
	}
	tp.Match = vrrp.ProcessMatch{
		Process:     p.Process,
		FullCommand: p.FullCommand || len(p.Params) > 0 || p.ParamMatch != "",
		Params:      p.Params, ParamMatch: p.ParamMatch,
	}
	// arguments on the process line are matched exactly unless
	// param_match says otherwise; full_command alone takes any
	if len(p.Params) > 0 && p.ParamMatch == "" {
		tp.Match.ParamMatch = "exact"
	}
	tp.Match.Quorum, tp.Match.QuorumMax, tp.Match.HasQuorumMax = max(p.Quorum, 1), p.QuorumMax, p.HasQuorumMax
	tp.Match.ForkDelay, tp.Match.TerminateDelay = p.ForkDelay.D(), p.TerminateDelay.D()
	if p.HasQuorumMax && p.QuorumMax == 0 {
		tp.Match.Quorum = 0 // keepalived's: up while no such process runs
	}
	return tp
}

// staticOptions maps static_ipaddress, static_routes and static_rules.
func staticOptions(cfg *config.Config) vrrp.StaticConfig {
	var st vrrp.StaticConfig
	dev := cfg.Global.StaticDev()
	prios := cfg.RulePriorities()
	for _, b := range cfg.Statics {
		st.Addresses = append(st.Addresses, vipList(b.VIPs)...)
		st.Routes = append(st.Routes, routeList(b.Routes)...)
		st.Rules = append(st.Rules, ruleList(b.Rules, prios)...)
	}
	for i := range st.Addresses {
		if st.Addresses[i].Dev == "" {
			st.Addresses[i].Dev = dev
		}
	}
	for i, r := range st.Routes {
		if r.Dev == "" && !r.Via.IsValid() && r.Type == "" && len(r.Nexthops) == 0 {
			st.Routes[i].Dev = dev
		}
	}
	return st
}

func routeList(rs []config.Route) []vrrp.VirtualRoute {
	var out []vrrp.VirtualRoute
	for _, r := range rs {
		vr := vrrp.VirtualRoute{Dst: r.To, Src: r.Src, Via: r.Via, Dev: r.Dev, Table: r.TableID, Metric: r.Metric, Scope: r.Scope, Type: r.Type, NoTrack: r.NoTrack,
			Onlink: r.Onlink, Proto: r.ProtoID, MTU: r.MTU, MTULock: r.MTULock, AdvMSS: r.AdvMSS, Hoplimit: r.Hoplimit, InitCwnd: r.InitCwnd, InitRwnd: r.InitRwnd}
		for _, nh := range r.Nexthops {
			vr.Nexthops = append(vr.Nexthops, vrrp.VirtualNexthop{Via: nh.Via, Dev: nh.Dev, Weight: nh.Weight, Onlink: nh.Onlink})
		}
		out = append(out, vr)
	}
	return out
}

// ruleList maps rules; one without a priority gets its number from
// auto (config.RulePriorities).
func ruleList(rs []config.Rule, auto map[*config.Rule]int) []vrrp.VirtualRule {
	var out []vrrp.VirtualRule
	for i, r := range rs {
		prio := r.Priority
		if prio == 0 {
			prio = auto[&rs[i]]
		}
		out = append(out, vrrp.VirtualRule{
			From: r.From, To: r.To, IPv6: r.Inet6, Not: r.Not, Table: r.TableID, Priority: prio,
			FWMark: r.FWMark, FWMask: r.FWMask, HasMask: r.HasMask, Tos: r.Tos, Iif: r.Iif, Oif: r.Oif,
			IPProto: r.IPProto, Sport: r.Sport, Dport: r.Dport, Type: r.Type, NoTrack: r.NoTrack,
		})
	}
	return out
}

func vipList(vs []config.VIPAddr) []vrrp.VirtualIP {
	var out []vrrp.VirtualIP
	for _, v := range vs {
		vip := vrrp.VirtualIP{Prefix: v.Prefix, Dev: v.Dev, Scope: v.Scope, Label: v.Label, NoDAD: v.NoDAD, NoTrack: v.NoTrack}
		if b, err := netip.ParseAddr(v.Brd); err == nil {
			vip.Broadcast = b
		}
		out = append(out, vip)
	}
	return out
}

// scriptString is the script's command line; the director's notifier
// looks the script (with its user) up in the configuration by name.
func scriptString(s *config.Script) string {
	if s == nil {
		return ""
	}
	return s.Cmd
}

func notifyScripts(n config.Notifiers) vrrp.NotifyScripts {
	return vrrp.NotifyScripts{
		Master: scriptString(n.Master),
		Backup: scriptString(n.Backup),
		Fault:  scriptString(n.Fault),
		Stop:   scriptString(n.Stop),
		Notify: scriptString(n.Any),

		MasterRxLowerPri: scriptString(n.MasterRxLowerPri),
		Deleted:          deletedString(n.Deleted),
	}
}

// deletedString is notify_deleted for NotifyScripts: "-" when set
// without a script.
func deletedString(s *config.Script) string {
	if s != nil && s.Cmd == "" {
		return "-"
	}
	return scriptString(s)
}

// firewallSystem is the part of a VRRP system that keeps the no_accept
// rules (vrrp.LinuxSystem).
type firewallSystem interface {
	SetFirewall([]vrrp.InstanceConfig, []vrrp.FirewallService) error
}

// firewallLocked are the no_accept instances of the VRRP configuration
// the node runs (a reload whose VRRP part failed keeps the old one) and
// every port of the configured virtual services, active or not: an
// instance turning MASTER activates its services only after it installed
// its addresses, and their first packets must not be dropped meanwhile.
// Nothing without a VRRP node (no rules to keep, and no nft run).
func (d *Director) firewallLocked() ([]vrrp.InstanceConfig, []vrrp.FirewallService, bool) {
	if _, ok := d.opts.VRRPSystem.(firewallSystem); !ok || d.node == nil || d.vrrpCfg == nil {
		return nil, nil, false
	}
	var insts []vrrp.InstanceConfig
	all, _, _ := vrrpOptions(d.vrrpCfg)
	for _, ic := range all {
		if ic.NoAccept {
			insts = append(insts, ic)
		}
	}
	var svcs []vrrp.FirewallService
	for _, s := range d.specs {
		k := s.svc
		protos := k.Protos
		if len(protos) == 0 {
			protos = []dataplane.Proto{k.Key.Proto}
		}
		addrs := k.VIPs
		if len(addrs) == 0 && k.Key.Addr.IsValid() {
			addrs = []netip.Addr{k.Key.Addr}
		}
		ports := k.Ports
		if len(ports) == 0 {
			ports = []dataplane.PortRange{{From: k.Key.Port, To: k.Key.Port}}
		}
		if k.Key.FWMark != 0 {
			svcs = append(svcs, vrrp.FirewallService{FWMark: k.Key.FWMark})
		}
		for _, a := range addrs {
			for _, p := range protos {
				for _, r := range ports {
					svcs = append(svcs, vrrp.FirewallService{Proto: uint8(p), Addr: a, Port: r.From, PortTo: r.To})
				}
			}
		}
	}
	return insts, svcs, true
}

// refreshFirewall puts the no_accept rules in line with the running VRRP
// configuration and the services (at start, and after a reload changed
// what the node runs).
func (d *Director) refreshFirewall() {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	d.mu.Lock()
	insts, svcs, ok := d.firewallLocked()
	d.mu.Unlock()
	if ok {
		d.setFirewall(insts, svcs)
	}
}

// setFirewall loads the no_accept rules: the host drops what is
// addressed to the no_accept instances' addresses, the director still
// forwards its virtual services.
func (d *Director) setFirewall(insts []vrrp.InstanceConfig, svcs []vrrp.FirewallService) {
	fw, ok := d.opts.VRRPSystem.(firewallSystem)
	if !ok {
		return
	}
	if err := fw.SetFirewall(insts, svcs); err != nil {
		d.log.Error("vrrp no_accept rules", "err", err)
	}
}
