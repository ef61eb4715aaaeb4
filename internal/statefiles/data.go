package statefiles

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"slices"
	"strings"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/vrrp"
)

// writeGlobal writes the global definitions both data files begin with.
func writeGlobal(w *bufio.Writer, in *Input) {
	fmt.Fprintln(w, "------< Global definitions >------")
	var routerID, defIf string
	lvsFlush, flushOnStop, strict, security := false, false, false, false
	version := 2
	mc4, mc6 := "224.0.0.18", "ff02::12"
	if in.Config != nil {
		g := &in.Config.Global
		routerID, defIf = g.RouterID, g.DefaultInterface
		lvsFlush, flushOnStop, strict, security = g.LVSFlush, g.LVSFlushOnStop, g.VRRPStrict, g.EnableScriptSecurity
		if g.VRRPVersion != 0 {
			version = g.VRRPVersion
		}
		if g.VRRPMcastGroup4 != "" {
			mc4 = g.VRRPMcastGroup4
		}
		if g.VRRPMcastGroup6 != "" {
			mc6 = g.VRRPMcastGroup6
		}
	}
	if routerID == "" {
		routerID, _ = os.Hostname()
		routerID, _, _ = strings.Cut(routerID, ".")
	}
	if defIf == "" {
		defIf = "eth0"
	}
	fmt.Fprintf(w, " Router ID = %s\n", routerID)
	fmt.Fprintf(w, " Default interface = %s\n", defIf)
	fmt.Fprintf(w, " LVS flush = %t\n", lvsFlush)
	fmt.Fprintf(w, " LVS flush on stop = %s\n", onOff(flushOnStop, "enabled", "disabled"))
	fmt.Fprintf(w, " VRRP IPv4 mcast group = %s\n", mc4)
	fmt.Fprintf(w, " VRRP IPv6 mcast group = %s\n", mc6)
	fmt.Fprintf(w, " VRRP default protocol version = %d\n", version)
	fmt.Fprintf(w, " VRRP strict mode = %t\n", strict)
	fmt.Fprintf(w, " Script security %s\n", onOff(security, "enabled", "disabled"))
	var g config.GlobalDefs
	if in.Config != nil {
		g = in.Config.Global
	}
	fmt.Fprintf(w, " rs_init_notifies = %d\n", b2i(g.RSInitNotifies))
	fmt.Fprintf(w, " no_checker_emails = %d\n", b2i(g.NoCheckerEmails))
	switch p := g.VRRPRxBufsPolicy; p {
	case "":
	case "MTU", "ADVERT":
		fmt.Fprintf(w, " rx_bufs_policy = %s\n", p)
	default:
		fmt.Fprintf(w, " rx_bufs_size = %s\n", p)
	}
	fmt.Fprintf(w, " rx_bufs_multiples = %d\n", cmp.Or(g.VRRPRxBufsMultiplier, 3))
	if g.LogUnknownVRIDs {
		fmt.Fprintln(w, " log_unknown_vrids")
	}
}

// Data writes keepalived.data: the global definitions, then the VRRP
// instances, sync groups and scripts.
func Data(out io.Writer, in *Input) error {
	w := bufio.NewWriter(out)
	writeGlobal(w, in)
	insts := in.VRRP.Instances
	if len(insts) > 0 {
		fmt.Fprintln(w, "------< VRRP Topology >------")
		for i := range insts {
			writeInstance(w, &insts[i], in)
		}
	}
	if len(in.VRRP.SyncGroups) > 0 {
		fmt.Fprintln(w, "------< VRRP Sync groups >------")
		for _, g := range in.VRRP.SyncGroups {
			fmt.Fprintf(w, " VRRP Sync Group = %s, %s\n", g.Name, stateName(GroupState(g, insts)))
			fmt.Fprintln(w, "   VRRP member instances :")
			for _, m := range g.Members {
				fmt.Fprintf(w, "     %s\n", m)
			}
			fmt.Fprintf(w, "   Using smtp notification = %s\n", onOff(g.SMTPAlert, "yes", "no"))
			if in.Config != nil {
				for _, sg := range in.Config.SyncGroups {
					if sg.Name == g.Name {
						notifyLines(w, sg.Notify, in)
					}
				}
			}
		}
	}
	if len(in.VRRP.Scripts) > 0 {
		fmt.Fprintln(w, "------< VRRP Scripts >------")
		for _, s := range in.VRRP.Scripts {
			writeScript(w, s, in)
		}
	}
	return w.Flush()
}

func writeInstance(w *bufio.Writer, st *vrrp.InstanceStatus, in *Input) {
	cfg := st.Config()
	p := func(format string, a ...any) { fmt.Fprintf(w, "   "+format+"\n", a...) }
	fmt.Fprintf(w, " VRRP Instance = %s\n", st.Name)
	p("VRRP Version = %d", cfg.Version)
	if st.SyncGroup != "" {
		p("Sync group = %s", st.SyncGroup)
	}
	if cfg.IsIPv6() {
		p("Using Native IPv6")
	}
	p("State = %s", stateName(ShownState(st)))
	if st.State == vrrp.StateBackup && st.MasterAddr.IsValid() {
		p("Master router = %s", st.MasterAddr)
		p("Master priority = %d", st.MasterPriority)
		if cfg.Version == 3 {
			p("Master advert int = %.2f sec", st.MasterAdvertInterval.Seconds())
		}
	}
	p("Wantstate = %s", stateName(WantState(st)))
	last := lastTransition(st)
	if last.IsZero() {
		p("Last transition = 0.000000")
	} else {
		p("Last transition = %s (%s)", epoch(last), last.Local().Format("Mon Jan _2 15:04:05.000000 2006"))
	}
	p("Master down timer = %d usecs", st.MasterDown.Microseconds())
	p("Interface = %s", cfg.Interface)
	if cfg.VMAC != "" {
		up := "false"
		if ifi, err := net.InterfaceByName(cfg.VMAC); err == nil && ifi.Flags&net.FlagUp != 0 {
			up = "true"
		}
		p("Use VMAC, i/f name %s, is_up = %s, xmit_base = %s", cfg.VMAC, up, onOff(cfg.VMACXmitBase, "true", "false"))
	}
	if cfg.DontTrackPrimary {
		p("VRRP interface tracking disabled")
	}
	if st.LocalAddr.IsValid() {
		if cfg.UnicastSrcIP.IsValid() || cfg.McastSrcIP.IsValid() {
			p("Using src_ip = %s (from configuration)", st.LocalAddr)
		} else {
			p("Using src_ip = %s", st.LocalAddr)
		}
	}
	if len(cfg.UnicastPeers) == 0 {
		if mc := Multicast(&cfg); mc.Is4() {
			p("Multicast address %s", mc)
		} else if ifi, err := net.InterfaceByName(cfg.Interface); err == nil {
			p("Multicast address %s, ifindex %d", mc, ifi.Index)
		}
	}
	p("Gratuitous ARP delay = %d", secs(cfg.GARPMasterDelay))
	p("Gratuitous ARP repeat = %d", cfg.GARPMasterRepeat)
	p("Gratuitous ARP refresh = %d", secs(cfg.GARPMasterRefresh))
	p("Gratuitous ARP refresh repeat = %d", cfg.GARPMasterRefreshRepeat)
	p("Gratuitous ARP lower priority delay = %d", secs(cfg.GARPLowerPrioDelay))
	p("Gratuitous ARP lower priority repeat = %d", cfg.GARPLowerPrioRepeat)
	p("Down timer adverts = %d", cfg.DownTimerAdverts)
	p("Send advert after receive lower priority advert = %t", !cfg.LowerPrioNoAdvert)
	p("Send advert after receive higher priority advert = %t", cfg.HigherPrioSendAdvert)
	p("Virtual Router ID = %d", cfg.VRID)
	p("Priority = %d", cfg.Priority)
	p("Effective priority = %d", st.EffectivePriority)
	p("Total priority = %d", st.EffectivePriority)
	if cfg.Version == 3 {
		p("Advert interval = %d milli-sec", cfg.AdvertInterval.Milliseconds())
		if st.State == vrrp.StateBackup && st.MasterAdvertInterval > 0 {
			p("Master advert interval = %d milli-sec", st.MasterAdvertInterval.Milliseconds())
		}
	} else {
		p("Advert interval = %d sec", secs(cfg.AdvertInterval))
	}
	p("Accept = %s", onOff(!cfg.NoAccept, "enabled", "disabled"))
	p("Preempt = %s", onOff(!cfg.NoPreempt, "enabled", "disabled"))
	if cfg.PreemptDelay > 0 {
		p("Preempt delay = %g secs", cfg.PreemptDelay.Seconds())
	}
	if cfg.Version == 2 {
		switch {
		case cfg.AuthAH:
			p("Authentication type = IPSEC_AH")
		case cfg.AuthPass != "":
			p("Authentication type = SIMPLE_PASSWORD")
			p("Password = %s", cfg.AuthPass)
		default:
			p("Authentication type = none")
		}
	}
	set := st.State == vrrp.StateMaster
	if len(cfg.VirtualIPs) > 0 {
		p("Virtual IP (%d):", len(cfg.VirtualIPs))
		for _, v := range cfg.VirtualIPs {
			p("  %s", vipLine(v, &cfg, set))
		}
	}
	if len(cfg.VirtualIPsExcluded) > 0 {
		p("Virtual IP Excluded :")
		for _, v := range cfg.VirtualIPsExcluded {
			p("  %s", vipLine(v, &cfg, set))
		}
	}
	if len(cfg.UnicastPeers) > 0 {
		ttl := cfg.UnicastTTL
		if ttl == 0 {
			ttl = 255
		}
		p("Unicast TTL = %d", ttl)
		p("Check unicast src : %s", onOff(cfg.CheckUnicastSrc, "yes", "no"))
		p("Unicast Peer :")
		for _, a := range cfg.UnicastPeers {
			lo, hi := 0, 255
			for _, r := range cfg.UnicastPeerTTL {
				if r.Addr == a {
					lo, hi = r.Min, r.Max
				}
			}
			p("  %s min_ttl %d max_ttl %d", a, lo, hi)
		}
		p("Unicast checksum compatibility = %s", cmp.Or(st.UnicastChecksum, "no"))
	}
	type tracked struct {
		name    string
		weight  int
		reverse bool
	}
	list := func(title string, ts []tracked) {
		if len(ts) > 0 {
			p("%s :", title)
			for _, t := range ts {
				p("  %s %s", t.name, weightText(t.weight, t.reverse))
			}
		}
	}
	var ifs, scripts, files, procs, bfds []tracked
	for _, t := range cfg.ListedTrackInterfaces() {
		ifs = append(ifs, tracked{t.Name, t.Weight, t.Reverse})
	}
	for _, t := range cfg.TrackScripts {
		scripts = append(scripts, tracked{t.Name, scriptWeight(t, in.VRRP.Scripts), t.Reverse})
	}
	for _, t := range cfg.TrackFiles {
		files = append(files, tracked{t.Name, t.Weight, t.Reverse})
	}
	for _, t := range cfg.TrackProcesses {
		procs = append(procs, tracked{t.Name, t.Weight, t.Reverse})
	}
	for _, t := range cfg.TrackBFDs {
		bfds = append(bfds, tracked{t.Name, t.Weight, t.Reverse})
	}
	list("Tracked interfaces", ifs)
	list("Tracked scripts", scripts)
	list("Tracked files", files)
	list("Tracked processes", procs)
	list("Tracked BFDs", bfds)
	p("Using smtp notification = %s", onOff(cfg.SMTPAlert, "yes", "no"))
	p("Notify deleted = %s", onOff(cfg.Notify.Deleted != "", "Deleted", "Fault"))
	if vi := configInstance(in, st.Name); vi != nil {
		notifyLines(w, vi.Notify, in)
	}
	p("Notify priority changes = %t", cfg.NotifyPriorityChanges)
}

// scriptWeight is the weight a track_script entry applies: its own, else
// the script's.
func scriptWeight(t vrrp.TrackScript, scripts []vrrp.ScriptConfig) int {
	if t.WeightSet {
		return t.Weight
	}
	for _, s := range scripts {
		if s.Name == t.Name {
			return s.Weight
		}
	}
	return 0
}

func writeScript(w *bufio.Writer, s vrrp.ScriptConfig, in *Input) {
	p := func(format string, a ...any) { fmt.Fprintf(w, "   "+format+"\n", a...) }
	fmt.Fprintf(w, " VRRP Script = %s\n", s.Name)
	p("Command = %s", QuoteCommand(s.Script))
	p("Interval = %d sec", secs(s.Interval))
	p("Timeout = %d sec", secs(s.Timeout))
	p("Weight = %d%s", s.Weight, onOff(s.Reverse, " reverse", ""))
	p("Rise = %d", s.Rise)
	p("Fall = %d", s.Fall)
	p("Status = %s", ScriptStatus(s.Name, in.VRRP.Instances))
	p("Tracking instances :")
	for _, st := range in.VRRP.Instances {
		cfg := st.Config()
		for _, t := range cfg.TrackScripts {
			if t.Name == s.Name {
				p("  %s, %s", st.Name, weightText(scriptWeight(t, in.VRRP.Scripts), t.Reverse))
			}
		}
	}
	p("State = %s", onOff(slices.Contains(in.VRRP.Running, s.Name), "running", "idle"))
}

// configInstance is the configured vrrp_instance called name.
func configInstance(in *Input, name string) *config.VRRPInstance {
	if in.Config == nil {
		return nil
	}
	for _, vi := range in.Config.VRRPInstances {
		if vi.Name == name {
			return vi
		}
	}
	return nil
}

// notifyLines writes the notify scripts of an instance or sync group as
// keepalived does, with the uid:gid each runs as.
func notifyLines(w *bufio.Writer, nf config.Notifiers, in *Input) {
	for _, s := range []struct {
		what string
		sc   *config.Script
	}{{"Backup", nf.Backup}, {"Master", nf.Master}, {"Fault", nf.Fault}, {"Stop", nf.Stop}, {"Deleted", nf.Deleted}, {"Generic", nf.Any},
		{"Master rx lower pri", nf.MasterRxLowerPri}} {
		if s.sc != nil && s.sc.Cmd != "" {
			fmt.Fprintf(w, "   %s state transition script = %s, uid:gid %s\n", s.what, QuoteCommand(s.sc.Cmd), scriptIDs(in, s.sc.User))
		}
	}
}

// scriptIDs is the uid:gid a script runs as: its own user's
// ("user [group]"), else the global script_user's, else govs's own.
func scriptIDs(in *Input, own string) string {
	who := own
	if who == "" && in.Config != nil {
		who = in.Config.Global.ScriptUser
	}
	self := fmt.Sprintf("%d:%d", os.Geteuid(), os.Getegid())
	f := strings.Fields(strings.ReplaceAll(who, ":", " "))
	if len(f) == 0 {
		return self
	}
	u, err := user.Lookup(f[0])
	if err != nil {
		return self
	}
	gid := u.Gid
	if len(f) > 1 {
		if g, err := user.LookupGroup(f[1]); err == nil {
			gid = g.Gid
		}
	}
	return u.Uid + ":" + gid
}
