package config

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Parse parses keepalived.conf syntax from data; name is used in
// positions and to resolve relative includes. The returned Config is
// usable (with defaults applied) even when diagnostics contain errors, but
// callers must not act on a config with errors.
func Parse(name string, data []byte, opts *ParseOptions) (*Config, Diagnostics) {
	d := &diagList{}
	sp := &syntaxParser{opts: opts, diags: d, vars: map[string]string{}}
	if m := randomSeed.FindSubmatch(data); m != nil {
		// random_seed (global_defs) seeds ${_RANDOM}; read before the
		// substitution, which comes first
		if seed, err := strconv.ParseUint(string(m[1]), 10, 64); err == nil {
			sp.rand = rand.New(rand.NewPCG(seed, seed))
		}
	}
	nodes := sp.parseFile(name, data)
	b := &builder{d: d, cfg: &Config{}}
	for _, n := range nodes {
		b.top(n)
	}
	b.cfg.applyDefaults()
	for _, f := range sp.files {
		b.cfg.Files = append(b.cfg.Files, f.name)
	}
	b.cfg.src = newSourceSet(sp.files, b.cfg)
	b.cfg.src.condInclude = sp.sawCondInclude
	d.ds.Sort()
	return b.cfg, d.ds
}

// randomSeed finds a random_seed line of the main file.
var randomSeed = regexp.MustCompile(`(?m)^[ \t]*random_seed[ \t]+([0-9]+)[ \t]*(?:[#!].*)?\r?$`)

// ParseFile reads and parses the file at path.
func ParseFile(path string, opts *ParseOptions) (*Config, Diagnostics) {
	data, err := opts.readFile(path)
	if err != nil {
		return &Config{}, Diagnostics{{Pos: Pos{File: path}, Severity: Error, Msg: err.Error()}}
	}
	return Parse(path, data, opts)
}

// Load parses the file at path and validates the result: the returned
// diagnostics hold every problem found by both passes.
func Load(path string, opts *ParseOptions) (*Config, Diagnostics) {
	cfg, ds := ParseFile(path, opts)
	ds = append(ds, cfg.Validate()...)
	ds.Sort()
	return cfg, ds
}

// LoadBytes is Load for configuration read from memory (e.g. stdin).
func LoadBytes(name string, data []byte, opts *ParseOptions) (*Config, Diagnostics) {
	cfg, ds := Parse(name, data, opts)
	ds = append(ds, cfg.Validate()...)
	ds.Sort()
	return cfg, ds
}

func (b *builder) top(n *Node) {
	switch n.Keyword() {
	case "global_defs":
		if b.needBlock(n) {
			if b.cfg.Global.Pos.Line == 0 {
				b.cfg.Global.Pos = n.Pos
			}
			b.global(n)
		}
	case "vrrp_script":
		if s := b.vrrpScript(n); s != nil {
			b.cfg.VRRPScripts = append(b.cfg.VRRPScripts, s)
		}
	case "vrrp_track_file", "track_file":
		if t := b.trackFile(n); t != nil {
			b.cfg.VRRPTrackFiles = append(b.cfg.VRRPTrackFiles, t)
		}
	case "vrrp_track_process":
		if t := b.trackProcess(n); t != nil {
			b.cfg.VRRPTrackProcesses = append(b.cfg.VRRPTrackProcesses, t)
		}
	case "bfd_instance":
		if bi := b.bfdInstance(n); bi != nil {
			b.cfg.BFDInstances = append(b.cfg.BFDInstances, bi)
		}
	case "vrrp_sync_group":
		if g := b.syncGroup(n); g != nil {
			b.cfg.SyncGroups = append(b.cfg.SyncGroups, g)
		}
	case "vrrp_instance":
		if vi := b.vrrpInstance(n); vi != nil {
			b.cfg.VRRPInstances = append(b.cfg.VRRPInstances, vi)
		}
	case "virtual_server_group":
		if g := b.vsGroup(n); g != nil {
			b.cfg.VirtualServerGroups = append(b.cfg.VirtualServerGroups, g)
		}
	case "virtual_server":
		if vs := b.virtualServer(n); vs != nil {
			b.cfg.VirtualServers = append(b.cfg.VirtualServers, vs)
		}
	case "net_namespace":
		// keepalived reads it outside global_defs too
		b.str(n, &b.cfg.NetNamespaceTop)
	case "instance":
		// keepalived keeps the first
		if b.cfg.InstanceName != "" {
			b.d.warnf(n.Pos, "instance: given already (%q); the first one applies, as keepalived", b.cfg.InstanceName)
		} else {
			b.str(n, &b.cfg.InstanceName)
		}
	case "garp_group":
		if g := b.garpGroup(n); g != nil {
			b.cfg.GarpGroups = append(b.cfg.GarpGroups, g)
		}
	case "child_wait_time":
		// how long keepalived waits for its child processes at a stop;
		// govs has none
		var secs int
		b.intv(n, 0, 1<<31-1, &secs)
	case "use_pid_dir":
		if b.noBlock(n) {
			b.d.warnf(n.Pos, "use_pid_dir: govs writes a pid file only where --pid-file says (keepalived's -p); ignored")
		}
	case "linkbeat_use_polling", "linkbeat_interfaces":
		b.d.warnf(n.Pos, "%s: govs follows link state through netlink (as keepalived without it); polling MII/ethtool is not implemented, ignored", n.Keyword())
	case "govs_snat_pool":
		if p := b.snatPool(n); p != nil {
			b.cfg.SNATPools = append(b.cfg.SNATPools, p)
		}
	case "govs_bgp":
		if b.needBlock(n) && b.args(n, 0, 0) {
			if b.cfg.BGP != nil {
				b.d.errorf(n.Pos, "govs_bgp: a second block (the first is at line %d); one block holds every neighbor", b.cfg.BGP.Pos.Line)
			} else {
				b.cfg.BGP = b.bgp(n)
			}
		}
	case "static_ipaddress", "static_routes", "static_rules":
		if b.needBlock(n) {
			sb := &StaticBlock{Pos: n.Pos, Kind: n.Keyword()}
			switch sb.Kind {
			case "static_ipaddress":
				sb.VIPs = b.vipAddrs(n)
			case "static_routes":
				sb.Routes = b.routes(n)
			default:
				sb.Rules = b.rules(n)
			}
			b.cfg.Statics = append(b.cfg.Statics, sb)
		}
	case "track_group":
		if b.needBlock(n) {
			if g := b.trackGroup(n); g != nil {
				b.cfg.TrackGroups = append(b.cfg.TrackGroups, g)
			}
		}
	case "interface_up_down_delays":
		if b.needBlock(n) {
			b.cfg.InterfaceDelays = append(b.cfg.InterfaceDelays, b.ifDelays(n))
		}
	default:
		b.unsupported(n, "")
	}
}

// ifDelays reads interface_up_down_delays { IF DOWN [UP] } (seconds,
// fractions allowed, 0..255 as in keepalived).
func (b *builder) ifDelays(n *Node) *InterfaceDelays {
	out := &InterfaceDelays{Pos: n.Pos}
	for _, e := range n.Block {
		if len(e.Words) < 2 || len(e.Words) > 3 || len(e.Block) > 0 {
			b.d.errorf(e.Pos, "interface_up_down_delays: want INTERFACE DOWN_DELAY [UP_DELAY] on one line")
			continue
		}
		d := InterfaceDelay{Pos: e.Pos, Name: e.Words[0].Text}
		ok := true
		for i, dst := range []*Duration{&d.Down, &d.Up} {
			if i+1 >= len(e.Words) {
				break
			}
			v, good := b.durWord(e.Words[i+1], "interface_up_down_delays "+d.Name)
			if good && v.D() > 255*time.Second {
				b.d.errorf(e.Words[i+1].Pos, "interface_up_down_delays %s: %s is more than 255 seconds", d.Name, e.Words[i+1].Text)
				good = false
			}
			ok = ok && good
			*dst = v
		}
		if ok {
			out.Entries = append(out.Entries, d)
		}
	}
	return out
}

// named returns the NAME of "KEYWORD NAME { ... }".
func (b *builder) named(n *Node) (string, bool) {
	if !b.needBlock(n) {
		return "", false
	}
	if len(n.Words) != 2 {
		b.d.errorf(n.Pos, "%s takes one name before its block", n.Keyword())
		return "", false
	}
	return n.Words[1].Text, true
}

func (b *builder) global(n *Node) {
	g := &b.cfg.Global
	for _, c := range n.Block {
		switch c.Keyword() {
		case "router_id":
			b.str(c, &g.RouterID)
		case "notification_email":
			g.NotificationEmail = append(g.NotificationEmail, b.blockWords(c)...)
		case "notification_email_from":
			b.str(c, &g.NotificationEmailFrom)
		case "smtp_server":
			if b.noBlock(c) && b.args(c, 1, 2) {
				g.SMTPServer = c.Words[1].Text
				if len(c.Words) == 3 {
					g.SMTPPort, _ = b.portWord(c.Words[2], "smtp_server port")
				}
			}
		case "smtp_connect_timeout":
			b.dur(c, &g.SMTPConnectTimeout)
		case "smtp_helo_name":
			b.str(c, &g.SMTPHeloName)
		case "no_email_faults":
			b.flag(c, &g.NoEmailFaults)
		case "smtp_alert":
			b.flagPtr(c, &g.SMTPAlert)
		case "smtp_alert_vrrp":
			b.flagPtr(c, &g.SMTPAlertVRRP)
		case "smtp_alert_checker":
			b.flagPtr(c, &g.SMTPAlertChecker)
		case "checker_log_all_failures":
			b.flag(c, &g.CheckerLogAllFailures)
		case "enable_script_security":
			b.flag(c, &g.EnableScriptSecurity)
		case "script_user":
			b.rest(c, &g.ScriptUser)
		case "notify_fifo", "vrrp_notify_fifo", "lvs_notify_fifo":
			if sc := b.script(c); sc != nil {
				f := fifoOf(g, c.Keyword())
				f.Path, f.Owner = sc.Cmd, sc.User
			}
		case "notify_fifo_script", "vrrp_notify_fifo_script", "lvs_notify_fifo_script":
			if sc := b.script(c); sc != nil {
				fifoOf(g, strings.TrimSuffix(c.Keyword(), "_script")).Script = sc
			}
		case "startup_script_timeout":
			b.dur(c, &g.StartupScriptTimeout)
		case "shutdown_script_timeout":
			b.dur(c, &g.ShutdownScriptTimeout)
		case "startup_script":
			g.StartupScript = b.script(c)
		case "shutdown_script":
			g.ShutdownScript = b.script(c)
		case "lvs_flush":
			b.flag(c, &g.LVSFlush)
		case "lvs_flush_onstop", "lvs_flush_on_stop":
			if b.noBlock(c) {
				g.LVSFlushOnStop = true
			}
		case "lvs_timeouts":
			b.lvsTimeouts(c)
		case "lvs_sync_daemon":
			b.syncDaemon(c)
		case "vrrp_version":
			b.intv(c, 2, 3, &g.VRRPVersion)
		case "json_version":
			b.intv(c, 1, 2, &g.JSONVersion)
		case "vrrp_notify_priority_changes":
			b.flag(c, &g.VRRPNotifyPriorityChanges)
		case "fifo_write_vrrp_states_on_reload":
			b.flag(c, &g.FIFOWriteVRRPStatesOnReload)
		case "umask":
			b.umask(c, &g.Umask)
		case "vrrp_no_swap":
			b.flag(c, &g.VRRPNoSwap)
		case "checker_no_swap":
			b.flag(c, &g.CheckerNoSwap)
		case "bfd_no_swap":
			b.flag(c, &g.BFDNoSwap)
		case "include_check":
			// read by the syntax layer for the includes after it
			// (syntaxParser.setIncludeCheck)
		case "random_seed":
			// read by Parse before the substitution (${_RANDOM})
			b.str(c, &g.RandomSeed)
			if _, err := strconv.ParseUint(g.RandomSeed, 10, 64); g.RandomSeed != "" && err != nil {
				b.d.errorf(c.Pos, "random_seed %q is not an unsigned number", g.RandomSeed)
			}
		case "log_unknown_vrids":
			b.flag(c, &g.LogUnknownVRIDs)
		case "vrrp_rx_bufs_policy":
			if b.noBlock(c) && b.args(c, 1, 1) {
				switch w := c.Words[1]; strings.ToUpper(w.Text) {
				case "MTU", "ADVERT":
					g.VRRPRxBufsPolicy = strings.ToUpper(w.Text)
				default:
					if _, err := strconv.ParseUint(w.Text, 10, 31); err != nil {
						b.d.errorf(w.Pos, "vrrp_rx_bufs_policy %q: not MTU, ADVERT or a size in bytes", w.Text)
					} else {
						g.VRRPRxBufsPolicy = w.Text
					}
				}
			}
		case "vrrp_rx_bufs_multiplier":
			b.intv(c, 1, 1<<20, &g.VRRPRxBufsMultiplier)
		case "process_names":
			b.flag(c, &g.ProcessNames)
		case "process_name":
			if b.str(c, &g.ProcessName); len(g.ProcessName) > 15 {
				b.d.warnf(c.Pos, "process_name %q: the kernel keeps 15 bytes of a process's name: %q", g.ProcessName, g.ProcessName[:15])
			}
		case "vrrp_process_name", "checker_process_name", "bfd_process_name":
			b.d.warnf(c.Pos, "%s is not applied: govs is one process (keepalived's vrrp, checker and bfd processes are goroutines of it); process_name names it", c.Keyword())
		case "data_use_instance":
			b.flag(c, &g.DataUseInstance)
		case "reload_time_file":
			if b.str(c, &g.ReloadTimeFile); g.ReloadTimeFile != "" && !filepath.IsAbs(g.ReloadTimeFile) {
				b.d.errorf(c.Pos, "reload_time_file %q is not an absolute path", g.ReloadTimeFile)
			}
		case "reload_repeat":
			b.flag(c, &g.ReloadRepeat)
		case "reload_file":
			if b.noBlock(c) && b.args(c, 0, 1) {
				g.HasReloadFile = true
				if len(c.Words) == 2 {
					g.ReloadFile = c.Words[1].Text
					if !filepath.IsAbs(g.ReloadFile) {
						b.d.errorf(c.Pos, "reload_file %q is not an absolute path", g.ReloadFile)
					}
				}
			}
		case "rs_init_notifies":
			b.flag(c, &g.RSInitNotifies)
		case "no_checker_emails":
			b.flag(c, &g.NoCheckerEmails)
		case "tmp_config_directory":
			// keepalived's copy of the configuration for its child
			// processes; govs reads the files once per load, in memory
			var dir string
			b.str(c, &dir)
		case "config_save_dir":
			b.d.warnf(c.Pos, "config_save_dir (keepalived's debugging copies of the configuration around reloads) is not implemented; ignored")
		case "vrrp_netlink_cmd_rcv_bufs", "vrrp_netlink_cmd_rcv_bufs_force", "vrrp_netlink_monitor_rcv_bufs", "vrrp_netlink_monitor_rcv_bufs_force",
			"lvs_netlink_cmd_rcv_bufs", "lvs_netlink_cmd_rcv_bufs_force", "lvs_netlink_monitor_rcv_bufs", "lvs_netlink_monitor_rcv_bufs_force",
			"process_monitor_rcv_bufs", "process_monitor_rcv_bufs_force":
			b.d.warnf(c.Pos, "%s: govs sizes its netlink sockets itself; ignored", c.Keyword())
		case "linkbeat_use_polling":
			b.d.warnf(c.Pos, "%s: govs follows link state through netlink (as keepalived without it); polling MII/ethtool is not implemented, ignored", c.Keyword())
		case "dynamic_interfaces", "reload_check_config":
			// what govs always does: an instance whose interface is
			// missing waits in FAULT for it (and follows it when it is
			// made anew); a reload is checked before anything changes
		case "vrrp_priority", "checker_priority", "bfd_priority",
			"vrrp_rt_priority", "checker_rt_priority", "bfd_rt_priority",
			"vrrp_rlimit_rttime", "checker_rlimit_rttime", "bfd_rlimit_rttime",
			"vrrp_cpu_affinity", "checker_cpu_affinity", "bfd_cpu_affinity",
			"max_auto_priority", "min_auto_priority_delay":
			b.d.warnf(c.Pos, "%s is not applied: govs is one process (keepalived's vrrp, checker and bfd processes are goroutines of it); give the govs service its priority and CPUs with systemd's Nice=, CPUSchedulingPolicy=, CPUSchedulingPriority= and CPUAffinity=", c.Keyword())
		case "enable_snmp_vrrp", "enable_snmp_keepalived":
			b.flag(c, &g.SNMPVRRP)
		case "enable_snmp_rfcv2":
			b.flag(c, &g.SNMPRFCv2)
		case "enable_snmp_rfcv3":
			b.flag(c, &g.SNMPRFCv3)
		case "enable_snmp_rfc":
			b.flag(c, &g.SNMPRFCv2)
			g.SNMPRFCv3 = g.SNMPRFCv2
		case "snmp_socket":
			if b.str(c, &g.SNMPSocket); g.SNMPSocket != "" {
				if _, _, err := SNMPSocketAddr(g.SNMPSocket); err != nil {
					b.d.errorf(c.Pos, "snmp_socket: %v", err)
				}
			}
		case "enable_snmp_checker":
			b.flag(c, &g.SNMPChecker)
		case "enable_traps":
			b.flag(c, &g.SNMPTraps)
		case "snmp_vs_stats_update_interval", "snmp_rs_stats_update_interval":
			// keepalived's cache of the kernel's counters; govs reads
			// them at each request (within 100 ms)
		case "enable_dbus", "dbus_service_name":
			b.d.warnf(c.Pos, "%s: govs has no DBus interface; the API (govs status, govs reload, /api/v1/state) does what keepalived's DBus methods do", c.Keyword())
		case "vrrp_mcast_group4":
			b.str(c, &g.VRRPMcastGroup4)
			if a, err := netip.ParseAddr(g.VRRPMcastGroup4); g.VRRPMcastGroup4 != "" && (err != nil || !a.Is4() || !a.IsMulticast()) {
				b.d.errorf(c.Pos, "vrrp_mcast_group4 %q is not an IPv4 multicast address", g.VRRPMcastGroup4)
			}
		case "vrrp_down_timer_adverts":
			b.intv(c, 1, 100, &g.VRRPDownTimerAdverts)
		case "vrrp_mcast_group6":
			b.str(c, &g.VRRPMcastGroup6)
			if a, err := netip.ParseAddr(g.VRRPMcastGroup6); g.VRRPMcastGroup6 != "" && (err != nil || !a.Is6() || a.Is4In6() || !a.IsMulticast()) {
				b.d.errorf(c.Pos, "vrrp_mcast_group6 %q is not an IPv6 multicast address", g.VRRPMcastGroup6)
			}
		case "vrrp_strict":
			b.flag(c, &g.VRRPStrict)
		case "vrrp_garp_interval":
			b.dur(c, &g.VRRPGarpInterval)
		case "vrrp_gna_interval":
			b.dur(c, &g.VRRPGnaInterval)
		case "default_interface":
			b.str(c, &g.DefaultInterface)
		case "vmac_prefix":
			b.str(c, &g.VMACPrefix)
		case "net_namespace":
			b.str(c, &g.NetNamespace)
		case "vrrp_garp_master_delay", "vrrp_garp_master_repeat", "vrrp_garp_master_refresh",
			"vrrp_garp_master_refresh_repeat", "vrrp_garp_lower_prio_delay", "vrrp_garp_lower_prio_repeat":
			b.garpSetting(c, strings.TrimPrefix(c.Keyword(), "vrrp_"), &g.VRRPDefaults.GarpSettings)
		case "vrrp_min_garp":
			b.flag(c, &g.VRRPDefaults.MinGARP)
		case "vrrp_lower_prio_no_advert":
			b.flag(c, &g.VRRPDefaults.LowerPrioNoAdvert)
		case "vrrp_garp_extra_if", "vrrp_vmac_garp_intvl":
			b.garpExtraIf(c, 1, &g.VRRPDefaults.GarpExtraIf)
		case "vrrp_higher_prio_send_advert":
			b.flag(c, &g.VRRPDefaults.HigherPrioSendAdvert)
		case "vrrp_check_unicast_src":
			b.flag(c, &g.VRRPDefaults.CheckUnicastSrc)
		case "vrrp_skip_check_adv_addr":
			b.flag(c, &g.VRRPDefaults.SkipCheckAdvAddr)
		case "vrrp_startup_delay":
			b.dur(c, &g.VRRPStartupDelay)
		case "govs_dataplane":
			b.str(c, &g.Govs.Dataplane)
		case "govs_interface", "govs_interfaces":
			b.words(c, &g.Govs.Interfaces)
		case "govs_xdp_mode":
			b.str(c, &g.Govs.XDPMode)
		case "govs_api_socket":
			b.str(c, &g.Govs.APISocket)
		case "govs_api_listen":
			b.str(c, &g.Govs.APIListen)
		case "govs_web_listen":
			b.str(c, &g.Govs.WebListen)
		case "govs_web_password":
			b.str(c, &g.Govs.WebPassword)
		case "govs_web_tls":
			if b.noBlock(c) && b.args(c, 2, 2) {
				g.Govs.WebTLSCert, g.Govs.WebTLSKey = c.Words[1].Text, c.Words[2].Text
			}
		case "govs_config_sync_listen":
			b.str(c, &g.Govs.ConfigSyncListen)
		case "govs_config_sync_peer", "govs_config_sync_peers":
			b.words(c, &g.Govs.ConfigSyncPeers)
		case "govs_config_sync_secret":
			b.str(c, &g.Govs.ConfigSyncSecret)
		case "govs_web_allow":
			b.words(c, &g.Govs.WebAllow)
		case "govs_metrics_listen":
			b.str(c, &g.Govs.MetricsListen)
		case "govs_conn_table_size":
			b.intv(c, 1024, 1<<28, &g.Govs.ConnTableSize)
		case "govs_log_level":
			b.str(c, &g.Govs.LogLevel)
		case "govs_sloppy_tcp":
			b.flagPtr(c, &g.Govs.SloppyTCP)
		case "govs_masquerade":
			if b.noBlock(c) && b.args(c, 1, -1) {
				for _, w := range c.Words[1:] {
					if _, err := netip.ParsePrefix(w.Text); err != nil {
						b.d.errorf(w.Pos, "govs_masquerade: %q is not a network (e.g. 10.0.1.0/24)", w.Text)
						continue
					}
					g.Govs.Masquerade = append(g.Govs.Masquerade, w.Text)
				}
			}
		default:
			b.unsupported(c, "global_defs")
		}
	}
}

// fifoOf returns the notify FIFO of global_defs that keyword names,
// making it.
func fifoOf(g *GlobalDefs, keyword string) *NotifyFIFO {
	p := &g.NotifyFIFO
	switch keyword {
	case "vrrp_notify_fifo":
		p = &g.VRRPNotifyFIFO
	case "lvs_notify_fifo":
		p = &g.LVSNotifyFIFO
	}
	if *p == nil {
		*p = &NotifyFIFO{}
	}
	return *p
}

func (b *builder) lvsTimeouts(n *Node) {
	if !b.noBlock(n) || !b.args(n, 2, 6) {
		return
	}
	ws := n.Words[1:]
	for i := 0; i < len(ws); i += 2 {
		if i+1 >= len(ws) {
			b.d.errorf(ws[i].Pos, "lvs_timeouts: %q needs a value", ws[i].Text)
			return
		}
		v, ok := b.durWord(ws[i+1], "lvs_timeouts "+ws[i].Text)
		if !ok {
			continue
		}
		switch ws[i].Text {
		case "tcp":
			b.cfg.Global.LVSTimeouts.TCP = v
		case "tcpfin":
			b.cfg.Global.LVSTimeouts.TCPFin = v
		case "udp":
			b.cfg.Global.LVSTimeouts.UDP = v
		default:
			b.d.errorf(ws[i].Pos, "lvs_timeouts: unknown timeout %q (tcp, tcpfin or udp)", ws[i].Text)
		}
	}
}

func (b *builder) syncDaemon(n *Node) {
	if !b.noBlock(n) || !b.args(n, 1, -1) {
		return
	}
	s := &SyncD{Interface: n.Words[1].Text}
	ws := n.Words[2:]
	if len(ws) > 0 && ws[0].Text != "inst" && ws[0].Text != "id" && ws[0].Text != "maxlen" && ws[0].Text != "port" && ws[0].Text != "ttl" && ws[0].Text != "group" {
		s.Instance = ws[0].Text
		ws = ws[1:]
	}
	for i := 0; i < len(ws); i += 2 {
		if i+1 >= len(ws) {
			b.d.errorf(ws[i].Pos, "lvs_sync_daemon: %q needs a value", ws[i].Text)
			return
		}
		v := ws[i+1]
		switch ws[i].Text {
		case "inst":
			s.Instance = v.Text
		case "id":
			if id, ok := b.intWord(v, "lvs_sync_daemon id", 0, 255); ok {
				s.ID = &id
			}
		case "maxlen":
			s.MaxLen, _ = b.intWord(v, "lvs_sync_daemon maxlen", 1, 65507)
		case "port":
			s.Port, _ = b.intWord(v, "lvs_sync_daemon port", 1, 65535)
		case "ttl":
			s.TTL, _ = b.intWord(v, "lvs_sync_daemon ttl", 1, 255)
		case "group":
			s.Group = v.Text
		default:
			b.d.errorf(ws[i].Pos, "lvs_sync_daemon: unknown option %q", ws[i].Text)
		}
	}
	b.cfg.Global.LVSSyncDaemon = s
}

func (b *builder) vrrpScript(n *Node) *VRRPScript {
	name, ok := b.named(n)
	if !ok {
		return nil
	}
	s := &VRRPScript{Pos: n.Pos, Name: name}
	for _, c := range n.Block {
		switch c.Keyword() {
		case "script":
			if sc := b.script(c); sc != nil {
				s.Script = sc.Cmd
				if sc.User != "" {
					s.User = sc.User
				}
			}
		case "interval":
			b.dur(c, &s.Interval)
		case "timeout":
			b.dur(c, &s.Timeout)
		case "weight":
			if b.noBlock(c) && b.args(c, 1, 2) {
				s.Weight, _ = b.intWord(c.Words[1], "weight", -254, 254)
				if len(c.Words) == 3 {
					if c.Words[2].Text != "reverse" {
						b.d.errorf(c.Words[2].Pos, "weight: expected \"reverse\", got %q", c.Words[2].Text)
					}
					s.Reverse = true
				}
			}
		case "rise":
			b.intv(c, 1, 1<<20, &s.Rise)
		case "fall":
			b.intv(c, 1, 1<<20, &s.Fall)
		case "user":
			b.rest(c, &s.User)
		case "init_fail":
			b.flag(c, &s.InitFail)
		default:
			b.unsupported(c, "vrrp_script")
		}
	}
	return s
}

func (b *builder) trackFile(n *Node) *TrackFile {
	name, ok := b.named(n)
	if !ok {
		return nil
	}
	// keepalived: a track_file's weight defaults to 1 (the value read
	// is added to the priority)
	t := &TrackFile{Pos: n.Pos, Name: name, Weight: 1}
	for _, c := range n.Block {
		switch c.Keyword() {
		case "file":
			b.str(c, &t.File)
		case "weight":
			if b.noBlock(c) && b.args(c, 1, 2) {
				t.Weight, _ = b.intWord(c.Words[1], "weight", -254, 254)
				t.Reverse = len(c.Words) == 3 && c.Words[2].Text == "reverse"
			}
		case "init_file":
			if b.noBlock(c) && b.args(c, 0, 2) {
				in := &InitFile{}
				ok := true
				for _, w := range c.Words[1:] {
					if w.Text == "overwrite" {
						in.Overwrite = true
					} else if in.Value, ok = b.intWord(w, "init_file", math.MinInt32, math.MaxInt32); !ok {
						break
					}
				}
				if ok {
					t.InitFile = in
				}
			}
		default:
			b.unsupported(c, n.Keyword())
		}
	}
	return t
}

// trackProcess reads a vrrp_track_process block.
func (b *builder) trackProcess(n *Node) *TrackProcess {
	name, ok := b.named(n)
	if !ok {
		return nil
	}
	t := &TrackProcess{Pos: n.Pos, Name: name}
	for _, c := range n.Block {
		switch c.Keyword() {
		case "process":
			if b.noBlock(c) && b.args(c, 1, -1) {
				t.Process = c.Words[1].Text
				t.Params = nil
				for _, w := range c.Words[2:] {
					t.Params = append(t.Params, w.Text)
				}
			}
		case "param_match":
			// keepalived's: none (exact), initial or partial
			if b.noBlock(c) && b.args(c, 0, 1) {
				t.ParamMatch = "exact"
				if len(c.Words) == 2 {
					switch w := c.Words[1]; w.Text {
					case "initial", "partial":
						t.ParamMatch = w.Text
					case "exact":
						// govs's own spelling in its first version
						b.d.warnf(w.Pos, "param_match exact is not keepalived's: a bare param_match means the same")
					default:
						b.d.errorf(w.Pos, "param_match must be initial or partial (or nothing, for all arguments exactly), got %q", w.Text)
					}
				}
			}
		case "full_command":
			// the name is argv[0] of the command line
			if b.noBlock(c) && b.args(c, 0, 0) {
				t.FullCommand = true
			}
		case "weight":
			if b.noBlock(c) && b.args(c, 1, 2) {
				t.Weight, _ = b.intWord(c.Words[1], "weight", -254, 254) // keepalived's range for a process
				if len(c.Words) == 3 {
					if c.Words[2].Text != "reverse" {
						b.d.errorf(c.Words[2].Pos, "weight: unexpected %q (only reverse may follow)", c.Words[2].Text)
					}
					t.Reverse = true
				}
			}
		case "quorum":
			b.intv(c, 1, 65535, &t.Quorum)
		case "quorum_max":
			b.intv(c, 0, 65535, &t.QuorumMax)
			t.HasQuorumMax = true
		case "delay":
			var d Duration
			b.dur(c, &d)
			t.ForkDelay, t.TerminateDelay = d, d
		case "fork_delay":
			b.dur(c, &t.ForkDelay)
		case "terminate_delay":
			b.dur(c, &t.TerminateDelay)
		default:
			b.unsupported(c, n.Keyword())
		}
	}
	return t
}

// tracks reads a track_interface/track_script/track_file block:
// "NAME [weight N] [reverse]" per line.
func (b *builder) tracks(n *Node) []Track {
	if !b.needBlock(n) {
		return nil
	}
	var out []Track
	for _, c := range n.Block {
		t := Track{Name: c.Keyword()}
		ws := c.Words[1:]
		for i := 0; i < len(ws); i++ {
			switch ws[i].Text {
			case "weight":
				if i+1 >= len(ws) {
					b.d.errorf(ws[i].Pos, "weight needs a value")
					continue
				}
				t.Weight, _ = b.intWord(ws[i+1], "weight", -254, 254)
				t.HasWeight = true
				i++
			case "reverse":
				t.Reverse, t.NoReverse = true, false
			case "noreverse":
				t.Reverse, t.NoReverse = false, true
			default:
				// keepalived also accepts a bare weight after the name.
				if _, err := strconv.Atoi(ws[i].Text); err == nil && !t.HasWeight {
					t.Weight, _ = b.intWord(ws[i], "weight", -254, 254)
					t.HasWeight = true
					continue
				}
				b.d.errorf(ws[i].Pos, "%s: unexpected %q", n.Keyword(), ws[i].Text)
			}
		}
		out = append(out, t)
	}
	return out
}

func (b *builder) notifier(c *Node, nf *Notifiers) bool {
	switch c.Keyword() {
	case "notify_master":
		nf.Master = b.script(c)
	case "notify_backup":
		nf.Backup = b.script(c)
	case "notify_fault":
		nf.Fault = b.script(c)
	case "notify_stop":
		nf.Stop = b.script(c)
	case "notify_deleted":
		// with or without a script
		if len(c.Words) == 1 && b.noBlock(c) {
			nf.Deleted = &Script{Pos: c.Pos}
		} else {
			nf.Deleted = b.script(c)
		}
	case "notify":
		nf.Any = b.script(c)
	case "notify_master_rx_lower_pri":
		nf.MasterRxLowerPri = b.script(c)
	default:
		return false
	}
	return true
}

// garpGroup reads garp_group { garp_interval S; gna_interval S;
// interface IF | interfaces { IF … } }.
func (b *builder) garpGroup(n *Node) *GarpGroup {
	if !b.needBlock(n) || !b.args(n, 0, 0) {
		return nil
	}
	g := &GarpGroup{Pos: n.Pos}
	for _, c := range n.Block {
		switch c.Keyword() {
		case "garp_interval":
			b.dur(c, &g.GarpInterval)
		case "gna_interval":
			b.dur(c, &g.GnaInterval)
		case "interface":
			b.str(c, &g.Interface)
		case "interfaces":
			if b.args(c, 0, 0) {
				g.Interfaces = append(g.Interfaces, b.blockWords(c)...)
			}
		default:
			b.unsupported(c, "garp_group")
		}
	}
	if g.Interface != "" && len(g.Interfaces) > 0 {
		b.d.errorf(n.Pos, "garp_group: give interface or interfaces, not both (as keepalived)")
	}
	if g.Interface == "" && len(g.Interfaces) == 0 {
		b.d.errorf(n.Pos, "garp_group: no interface")
	}
	return g
}

// trackGroup reads track_group NAME { group { INSTANCE … } }.
func (b *builder) trackGroup(n *Node) *TrackGroup {
	name, ok := b.named(n)
	if !ok {
		return nil
	}
	g := &TrackGroup{Pos: n.Pos, Name: name}
	for _, c := range n.Block {
		if c.Keyword() != "group" {
			b.d.warnf(c.Pos, "unsupported keyword %q in track_group", c.Keyword())
			continue
		}
		if b.args(c, 0, 0) {
			g.Instances = append(g.Instances, b.blockWords(c)...)
		}
	}
	return g
}

func (b *builder) syncGroup(n *Node) *SyncGroup {
	name, ok := b.named(n)
	if !ok {
		return nil
	}
	g := &SyncGroup{Pos: n.Pos, Name: name}
	for _, c := range n.Block {
		if b.notifier(c, &g.Notify) {
			continue
		}
		switch c.Keyword() {
		case "group":
			g.Group = append(g.Group, b.blockWords(c)...)
		case "smtp_alert":
			b.flag(c, &g.SMTPAlert)
		case "track_script":
			g.TrackScripts = b.tracks(c)
		case "track_interface":
			g.TrackIfaces = b.tracks(c)
		case "track_file":
			g.TrackFiles = b.tracks(c)
		case "track_process":
			g.TrackProcs = b.tracks(c)
		case "track_bfd":
			g.TrackBFDs = b.tracks(c)
		case "sync_group_tracking_weight":
			b.flag(c, &g.TrackingWeight)
		case "global_tracking":
			b.flag(c, &g.TrackingWeight)
			b.d.warnf(c.Pos, "global_tracking is deprecated (in keepalived too): read as sync_group_tracking_weight; track_interface, track_script and track_file on the sync group are the way")
		default:
			b.unsupported(c, "vrrp_sync_group")
		}
	}
	return g
}

func (b *builder) vrrpInstance(n *Node) *VRRPInstance {
	name, ok := b.named(n)
	if !ok {
		return nil
	}
	vi := &VRRPInstance{Pos: n.Pos, Name: name, Priority: -1}
	for _, c := range n.Block {
		if b.notifier(c, &vi.Notify) {
			continue
		}
		switch c.Keyword() {
		case "state":
			if w, ok := b.one(c); ok {
				s := strings.ToUpper(w.Text)
				if s != "MASTER" && s != "BACKUP" {
					b.d.errorf(w.Pos, "state must be MASTER or BACKUP, got %q", w.Text)
				}
				vi.State = s
			}
		case "interface":
			b.str(c, &vi.Interface)
		case "virtual_router_id":
			b.intv(c, 1, 255, &vi.VirtualRouterID)
		case "priority":
			b.intv(c, 1, 255, &vi.Priority)
		case "advert_int":
			b.dur(c, &vi.AdvertInt)
		case "version":
			b.intv(c, 2, 3, &vi.Version)
		case "nopreempt":
			b.flag(c, &vi.NoPreempt)
		case "preempt":
			var p bool
			b.flag(c, &p)
			vi.NoPreempt = !p
		case "preempt_delay":
			b.dur(c, &vi.PreemptDelay)
		case "unicast_src_ip":
			b.addr(c, &vi.UnicastSrcIP)
		case "mcast_src_ip":
			b.addr(c, &vi.McastSrcIP)
		case "unicast_fault_no_peer":
			b.flag(c, &vi.UnicastFaultNoPeer)
		case "old_unicast_checksum":
			// keepalived's VRRPv3 unicast checksum before 1.3.6: the
			// pseudo-header took the multicast group, not the peer
			if b.noBlock(c) && b.args(c, 0, 1) {
				switch args := c.Args(); {
				case len(args) == 0:
					vi.OldUnicastChecksum = "config"
				case args[0].Text == "never":
					vi.OldUnicastChecksum = "never"
				default:
					b.d.errorf(args[0].Pos, "old_unicast_checksum takes never or nothing, not %q", args[0].Text)
				}
			}
		case "mcast_dst_ip":
			b.addr(c, &vi.McastDstIP)
			if vi.McastDstIP.IsValid() && !vi.McastDstIP.IsMulticast() {
				b.d.errorf(c.Pos, "mcast_dst_ip %s is not a multicast address", vi.McastDstIP)
			}
		case "down_timer_adverts":
			b.intv(c, 1, 100, &vi.DownTimerAdverts)
		case "promote_secondaries":
			b.flag(c, &vi.PromoteSecondaries)
		case "kernel_rx_buf_size":
			b.intv(c, 1, 1<<30, &vi.KernelRxBufSize)
		case "linkbeat_use_polling":
			b.d.warnf(c.Pos, "%s: govs follows link state through netlink (as keepalived without it); polling MII/ethtool is not implemented, ignored", c.Keyword())
		case "lvs_sync_daemon_interface":
			// keepalived's older spelling of lvs_sync_daemon IF INSTANCE
			var ifname string
			b.str(c, &ifname)
			if ifname != "" {
				if s := b.cfg.Global.LVSSyncDaemon; s != nil && s.Instance != name {
					b.d.warnf(c.Pos, "lvs_sync_daemon_interface: the connection sync is already set (lvs_sync_daemon %s %s); this one replaces it", s.Interface, s.Instance)
				}
				b.cfg.Global.LVSSyncDaemon = &SyncD{Interface: ifname, Instance: name, fromInstance: true}
				vi.syncIf = ifname
				b.d.warnf(c.Pos, "lvs_sync_daemon_interface is deprecated (in keepalived too): read as lvs_sync_daemon %s %s in global_defs", ifname, name)
			}
		case "check_unicast_src":
			b.flag(c, &vi.CheckUnicastSrc)
		case "notify_priority_changes":
			b.flag(c, &vi.NotifyPrioChange)
		case "unicast_ttl":
			b.intv(c, 1, 255, &vi.UnicastTTL)
		case "unicast_peer":
			if b.needBlock(c) {
				for _, e := range c.Block {
					vi.UnicastPeers = append(vi.UnicastPeers, b.unicastPeers(e)...)
				}
			}
		case "authentication":
			if b.needBlock(c) {
				vi.Auth = &Auth{}
				for _, e := range c.Block {
					switch e.Keyword() {
					case "auth_type":
						b.str(e, &vi.Auth.Type)
					case "auth_pass":
						b.str(e, &vi.Auth.Pass)
					default:
						b.unsupported(e, "authentication")
					}
				}
			}
		case "track_interface":
			vi.TrackIfaces = b.tracks(c)
		case "track_script":
			vi.TrackScripts = b.tracks(c)
		case "track_file":
			vi.TrackFiles = b.tracks(c)
		case "track_process":
			vi.TrackProcs = b.tracks(c)
		case "track_bfd":
			vi.TrackBFDs = b.tracks(c)
		case "dont_track_primary":
			b.flag(c, &vi.DontTrackPrimary)
		case "track_src_ip":
			b.flag(c, &vi.TrackSrcIP)
		case "virtual_ipaddress":
			vi.VIPs = b.vipAddrs(c)
		case "virtual_ipaddress_excluded":
			vi.VIPsExcluded = b.vipAddrs(c)
		case "virtual_routes":
			vi.Routes = b.routes(c)
		case "virtual_rules":
			vi.Rules = b.rules(c)
		case "smtp_alert":
			b.flag(c, &vi.SMTPAlert)
		case "accept":
			b.flagPtr(c, &vi.Accept)
		case "no_accept":
			f := false
			if b.noBlock(c) {
				vi.Accept = &f
			}
		case "strict_mode":
			b.flagPtr(c, &vi.Strict)
		case "use_vmac":
			b.useVMAC(c, vi)
		case "vmac_xmit_base":
			b.flag(c, &vi.VMACXmitBase)
		case "native_ipv6":
			b.flag(c, &vi.NativeIPv6)
		case "garp_master_delay", "garp_master_repeat", "garp_master_refresh",
			"garp_master_refresh_repeat", "garp_lower_prio_delay", "garp_lower_prio_repeat":
			b.garpSetting(c, c.Keyword(), &vi.GarpSettings)
		case "lower_prio_no_advert":
			b.flagPtr(c, &vi.LowerPrioNoAdvert)
		case "garp_extra_if", "vmac_garp_intvl":
			b.garpExtraIf(c, 0, &vi.GarpExtraIf)
		case "higher_prio_send_advert":
			b.flagPtr(c, &vi.HigherPrioSendAdvert)
		case "skip_check_adv_addr":
			b.flagPtr(c, &vi.SkipCheckAdvAddr)
		default:
			b.unsupported(c, "vrrp_instance")
		}
	}
	if vi.Priority < 0 && strings.EqualFold(vi.State, "MASTER") {
		b.d.warnf(n.Pos, "vrrp_instance %q: state MASTER without priority is priority 255, the address owner (as keepalived has it): it takes over at once and ignores track weights and nopreempt; give a priority below 255 to let a better director win", name)
	}
	return vi
}

// useVMAC reads use_vmac [INTERFACE] [MAC], in either order.
func (b *builder) useVMAC(c *Node, vi *VRRPInstance) {
	if !b.noBlock(c) {
		return
	}
	vi.UseVMAC = true
	for _, w := range c.Words[1:] {
		if mac, err := net.ParseMAC(w.Text); err == nil {
			switch {
			case vi.VMACAddr != "":
				b.d.errorf(w.Pos, "use_vmac: a second MAC address %q", w.Text)
			case len(mac) != 6:
				b.d.errorf(w.Pos, "use_vmac: %q is not an Ethernet address", w.Text)
			case mac[0]&1 != 0:
				b.d.errorf(w.Pos, "use_vmac: %q is a multicast address", w.Text)
			default:
				vi.VMACAddr = mac.String()
			}
			continue
		}
		switch {
		case vi.VMACName != "":
			b.d.errorf(w.Pos, "use_vmac: %q is neither a MAC address nor the only interface name", w.Text)
		case len(w.Text) > 15 || strings.ContainsAny(w.Text, "/: \t") || w.Text == "." || w.Text == "..":
			b.d.errorf(w.Pos, "use_vmac: %q is not a valid interface name (at most 15 characters, no '/', ':' or blanks)", w.Text)
		default:
			vi.VMACName = w.Text
		}
	}
}

func (b *builder) unicastPeers(e *Node) []UnicastPeer {
	var out []UnicastPeer
	ws := e.Words
	for i := 0; i < len(ws); i++ {
		switch ws[i].Text {
		case "min_ttl", "max_ttl":
			if len(out) == 0 || i+1 >= len(ws) {
				b.d.errorf(ws[i].Pos, "%s needs a peer before it and a value after it", ws[i].Text)
				return out
			}
			v, _ := b.intWord(ws[i+1], ws[i].Text, 0, 255)
			if ws[i].Text == "min_ttl" {
				out[len(out)-1].MinTTL = v
			} else {
				out[len(out)-1].MaxTTL = v
			}
			i++
		default:
			if a, ok := b.addrWord(ws[i], "unicast_peer"); ok {
				out = append(out, UnicastPeer{Addr: a})
			}
		}
	}
	return out
}

// staticTrack reports whether a track_group word w is in a static_*
// block (block), and warns that it is ignored elsewhere (as keepalived
// ignores it).
func (b *builder) staticTrack(block *Node, w Word) bool {
	if strings.HasPrefix(block.Keyword(), "static_") {
		return true
	}
	b.d.warnf(w.Pos, "%s: track_group is for static_ipaddress, static_routes and static_rules entries; ignored here", block.Keyword())
	return false
}

// vipAddrs reads virtual_ipaddress entries:
// IP[/MASK] [brd IP] [dev IF] [scope S] [label L] [peer IP] [no_track] ...
func (b *builder) vipAddrs(n *Node) []VIPAddr {
	if !b.needBlock(n) {
		return nil
	}
	var out []VIPAddr
	for _, e := range n.Block {
		v := VIPAddr{Pos: e.Pos}
		p, ok := parsePrefixOrAddr(e.Words[0].Text)
		if !ok {
			b.d.errorf(e.Pos, "virtual_ipaddress: %q is not an address or address/prefix", e.Words[0].Text)
			continue
		}
		v.Prefix = p
		ws := e.Words[1:]
		for i := 0; i < len(ws); i++ {
			key := ws[i].Text
			val := func() string {
				if i+1 >= len(ws) {
					b.d.errorf(ws[i].Pos, "%s needs a value", key)
					return ""
				}
				i++
				return ws[i].Text
			}
			switch key {
			case "brd", "broadcast":
				v.Brd = val()
			case "dev":
				v.Dev = val()
			case "scope":
				v.Scope = val()
			case "label":
				v.Label = val()
			case "peer":
				v.Peer = val()
			case "no_track":
				v.NoTrack = true
			case "track_group":
				if g := val(); g != "" {
					if b.staticTrack(n, ws[i]) {
						v.TrackGroup = g
					}
				}
			case "-nodad", "nodad":
				v.NoDAD = true
			case "home", "mngtmpaddr", "noprefixroute", "autojoin":
				v.Extra = append(v.Extra, key)
			case "preferred_lft":
				v.Extra = append(v.Extra, key, val())
			default:
				b.d.warnf(ws[i].Pos, "unsupported virtual_ipaddress option %q", key)
			}
		}
		out = append(out, v)
	}
	return out
}

func parsePrefixOrAddr(s string) (netip.Prefix, bool) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p, err == nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, a.BitLen()), true
}

func (b *builder) routes(n *Node) []Route {
	if !b.needBlock(n) {
		return nil
	}
	var out []Route
	for _, e := range n.Block {
		r := Route{Pos: e.Pos}
		ws := e.Words
		for _, w := range ws {
			r.Words = append(r.Words, w.Text)
		}
		for i := 0; i < len(ws); i++ {
			next := func() (Word, bool) {
				if i+1 >= len(ws) {
					b.d.errorf(ws[i].Pos, "%s needs a value", ws[i].Text)
					return Word{}, false
				}
				i++
				return ws[i], true
			}
			switch ws[i].Text {
			case "src":
				if w, ok := next(); ok {
					r.Src, _ = b.addrWord(w, "src")
				}
			case "to":
				if w, ok := next(); ok {
					r.To, _ = b.prefixWord(w, "to")
				}
			case "via", "gw":
				if w, ok := next(); ok {
					r.Via, _ = b.addrWord(w, "via")
				}
			case "dev", "oif":
				if w, ok := next(); ok {
					r.Dev = w.Text
				}
			case "table":
				if w, ok := next(); ok {
					r.Table = w.Text
					r.TableID, _ = b.tableWord(w, "virtual_routes")
				}
			case "metric", "preference", "priority":
				// (ip route's three names of the metric)
				if w, ok := next(); ok {
					r.Metric, _ = b.intWord(w, "metric", 0, 1<<31-1)
				}
			case "scope":
				if w, ok := next(); ok {
					r.Scope = w.Text
				}
			case "blackhole", "unreachable", "prohibit":
				r.Type = ws[i].Text
			case "no_track":
				r.NoTrack = true
			case "track_group":
				if w, ok := next(); ok && b.staticTrack(n, ws[i-1]) {
					r.TrackGroup = w.Text
				}
			case "onlink":
				r.Onlink = true
			case "inet", "inet6":
				// the family is the destination's
			case "or":
				// keepalived's older multipath: via A or B …
				if w, ok := next(); ok {
					if len(r.Nexthops) == 0 {
						if !r.Via.IsValid() {
							b.d.errorf(ws[i-1].Pos, "virtual_routes: or needs a via before it")
						}
						r.Nexthops = append(r.Nexthops, Nexthop{Via: r.Via, Dev: r.Dev})
						r.Via, r.Dev = netip.Addr{}, ""
					}
					a, _ := b.addrWord(w, "or")
					r.Nexthops = append(r.Nexthops, Nexthop{Via: a})
				}
			case "nexthop":
				nh, at := Nexthop{}, ws[i].Pos
				for i+1 < len(ws) {
					kw := ws[i+1].Text
					if kw != "via" && kw != "gw" && kw != "dev" && kw != "weight" && kw != "onlink" {
						break
					}
					i++
					if kw == "onlink" {
						nh.Onlink = true
						continue
					}
					w, ok := next()
					if !ok {
						break
					}
					switch kw {
					case "via", "gw":
						nh.Via, _ = b.addrWord(w, "nexthop via")
					case "dev":
						nh.Dev = w.Text
					case "weight":
						nh.Weight, _ = b.intWord(w, "nexthop weight", 1, 256)
					}
				}
				if !nh.Via.IsValid() && nh.Dev == "" {
					b.d.errorf(at, "virtual_routes: nexthop needs via or dev")
				}
				r.Nexthops = append(r.Nexthops, nh)
			case "proto", "protocol":
				if w, ok := next(); ok {
					r.Proto = w.Text
					if id, known := routeProto(w.Text); known {
						r.ProtoID = id
					} else {
						b.d.errorf(w.Pos, "virtual_routes: proto %q is not a number 0..255 nor a name iproute2 knows", w.Text)
					}
				}
			case "mtu", "advmss", "hoplimit", "initcwnd", "initrwnd":
				kw := ws[i].Text
				w, ok := next()
				if ok && kw == "mtu" && w.Text == "lock" {
					r.MTULock = true
					w, ok = next()
				}
				if ok {
					hi := 1<<31 - 1
					if kw == "hoplimit" {
						hi = 255
					}
					v, _ := b.intWord(w, kw, 0, hi)
					*map[string]*int{"mtu": &r.MTU, "advmss": &r.AdvMSS, "hoplimit": &r.Hoplimit, "initcwnd": &r.InitCwnd, "initrwnd": &r.InitRwnd}[kw] = v
				}
			default:
				// the destination: first, after a route type, or the
				// first address or prefix after src (keepalived's
				// "src IP PREFIX")
				if _, isPrefix := parsePrefixOrAddr(ws[i].Text); i == 0 || (i == 1 && r.Type != "") || !r.To.IsValid() && isPrefix {
					r.To, _ = b.prefixWord(ws[i], "route")
					continue
				}
				b.d.warnf(ws[i].Pos, "virtual_routes: %q is not supported by govs and is ignored", ws[i].Text)
			}
		}
		if !r.To.IsValid() {
			b.d.errorf(e.Pos, "virtual_routes: route has no destination")
			continue
		}
		if m := r.To.Masked(); m != r.To {
			b.d.warnf(e.Pos, "virtual_routes: %s has host bits set: the route is to %s", r.To, m)
		}
		if len(r.Nexthops) > 0 && (r.Via.IsValid() || r.Type != "") {
			b.d.errorf(e.Pos, "virtual_routes: a route with nexthops has no via or type of its own")
			continue
		}
		if len(r.Nexthops) > 0 {
			// a dev or onlink of the route goes to its paths (the kernel
			// takes neither on a multipath route)
			for j := range r.Nexthops {
				if r.Nexthops[j].Dev == "" {
					r.Nexthops[j].Dev = r.Dev
				}
				r.Nexthops[j].Onlink = r.Nexthops[j].Onlink || r.Onlink
			}
			r.Dev, r.Onlink = "", false
		}
		out = append(out, r)
	}
	return out
}

// rules reads virtual_rules entries, `ip rule` words:
// [not] [from PREFIX|all] [to PREFIX|all] [table N|NAME] [priority N]
// [fwmark N[/MASK]] [tos N] [iif IF] [oif IF] [ipproto P] [sport N[-M]]
// [dport N[-M]] [blackhole|unreachable|prohibit] [inet6].
func (b *builder) rules(n *Node) []Rule {
	if !b.needBlock(n) {
		return nil
	}
	var out []Rule
	for _, e := range n.Block {
		b.ruleSeq++
		r := Rule{Pos: e.Pos, seq: b.ruleSeq}
		ws := e.Words
		for _, w := range ws {
			r.Words = append(r.Words, w.Text)
		}
		ok := true
		for i := 0; i < len(ws) && ok; i++ {
			next := func() (Word, bool) {
				if i+1 >= len(ws) {
					b.d.errorf(ws[i].Pos, "virtual_rules: %s needs a value", ws[i].Text)
					ok = false
					return Word{}, false
				}
				i++
				return ws[i], true
			}
			num := func(what string, max int) int {
				w, has := next()
				if !has {
					return 0
				}
				v, err := strconv.ParseUint(w.Text, 0, 32)
				if err != nil || v > uint64(max) { // compared unsigned: int(v) wraps on 32-bit systems
					b.d.errorf(w.Pos, "virtual_rules: %s %q is not a number from 0 to %d", what, w.Text, max)
					ok = false
				}
				return int(v)
			}
			switch ws[i].Text {
			case "not":
				r.Not = true
			case "from", "to":
				kw := ws[i].Text
				w, has := next()
				if !has {
					continue
				}
				if w.Text == "all" {
					continue
				}
				p, good := parsePrefixOrAddr(w.Text)
				if !good {
					b.d.errorf(w.Pos, "virtual_rules: %s %q is not an address, a prefix or all", kw, w.Text)
					ok = false
					continue
				}
				if kw == "from" {
					r.From = p
				} else {
					r.To = p
				}
			case "table", "lookup":
				if w, has := next(); has {
					r.Table = w.Text
					var found bool
					if r.TableID, found = b.tableWord(w, "virtual_rules"); !found {
						ok = false
					}
				}
			case "priority", "preference", "pref":
				// an int: up to 2^31-1 on 32-bit systems
				r.Priority = num("priority", min(1<<32-1, math.MaxInt))
				if ok && r.Priority == 0 {
					b.d.errorf(ws[i].Pos, "virtual_rules: priority 0 is the local table's rule; use 1 or more")
					ok = false
				}
			case "fwmark":
				w, has := next()
				if !has {
					continue
				}
				mark, mask, hasMask := strings.Cut(w.Text, "/")
				m, err := strconv.ParseUint(mark, 0, 32)
				var k uint64
				if err == nil && hasMask {
					k, err = strconv.ParseUint(mask, 0, 32)
				}
				if err != nil {
					b.d.errorf(w.Pos, "virtual_rules: fwmark %q is not N or N/MASK", w.Text)
					ok = false
					continue
				}
				r.FWMark, r.FWMask, r.HasMask = uint32(m), uint32(k), hasMask
			case "tos", "dsfield":
				r.Tos = num("tos", 255)
			case "iif", "iifname":
				if w, has := next(); has {
					r.Iif = w.Text
				}
			case "oif", "oifname":
				if w, has := next(); has {
					r.Oif = w.Text
				}
			case "ipproto":
				w, has := next()
				if !has {
					continue
				}
				switch strings.ToLower(w.Text) {
				case "tcp":
					r.IPProto = 6
				case "udp":
					r.IPProto = 17
				case "sctp":
					r.IPProto = 132
				case "icmp":
					r.IPProto = 1
				case "ipv6-icmp", "icmpv6":
					r.IPProto = 58
				default:
					v, err := strconv.ParseUint(w.Text, 0, 8)
					if err != nil {
						b.d.errorf(w.Pos, "virtual_rules: ipproto %q is not tcp, udp, sctp, icmp, ipv6-icmp or a number", w.Text)
						ok = false
					}
					r.IPProto = int(v)
				}
			case "sport", "dport":
				kw := ws[i].Text
				w, has := next()
				if !has {
					continue
				}
				first, last, isRange := strings.Cut(w.Text, "-")
				f, err1 := strconv.ParseUint(first, 10, 16)
				l := f
				var err2 error
				if isRange {
					l, err2 = strconv.ParseUint(last, 10, 16)
				}
				if err1 != nil || err2 != nil || l < f {
					b.d.errorf(w.Pos, "virtual_rules: %s %q is not a port or a range N-M", kw, w.Text)
					ok = false
					continue
				}
				if kw == "sport" {
					r.Sport = [2]uint16{uint16(f), uint16(l)}
				} else {
					r.Dport = [2]uint16{uint16(f), uint16(l)}
				}
			case "blackhole", "unreachable", "prohibit":
				r.Type = ws[i].Text
			case "type":
				if w, has := next(); has {
					switch w.Text {
					case "blackhole", "unreachable", "prohibit":
						r.Type = w.Text
					default:
						b.d.errorf(w.Pos, "virtual_rules: type %q is not blackhole, unreachable or prohibit", w.Text)
						ok = false
					}
				}
			case "inet6":
				r.Inet6 = true
			case "inet":
				// the default
			case "no_track":
				r.NoTrack = true
			case "track_group":
				if w, has := next(); has && b.staticTrack(n, ws[i-1]) {
					r.TrackGroup = w.Text
				}
			default:
				b.d.errorf(ws[i].Pos, "virtual_rules: unknown word %q", ws[i].Text)
				ok = false
			}
		}
		if !ok {
			continue
		}
		if r.Type == "" && r.TableID == 0 {
			b.d.errorf(e.Pos, "virtual_rules: a rule needs a table or a type (blackhole, unreachable, prohibit)")
			continue
		}
		if r.From.IsValid() && r.To.IsValid() && r.From.Addr().Is6() != r.To.Addr().Is6() {
			b.d.errorf(e.Pos, "virtual_rules: from %s and to %s are of different families", r.From, r.To)
			continue
		}
		out = append(out, r)
	}
	return out
}

// tableWord resolves a `table` word of virtual_routes or virtual_rules
// (routeTable), an error at the word when it names no table.
func (b *builder) tableWord(w Word, what string) (int, bool) {
	id, ok := routeTable(w.Text)
	if !ok {
		b.d.errorf(w.Pos, "%s: table %q is not a number nor a name in %s (rt_tables, rt_tables.d/*.conf)", what, w.Text, strings.Join(rtTablesDirs, " or "))
	}
	return id, ok
}

func (b *builder) prefixWord(w Word, what string) (netip.Prefix, bool) {
	if w.Text == "default" {
		return netip.MustParsePrefix("0.0.0.0/0"), true
	}
	p, ok := parsePrefixOrAddr(w.Text)
	if !ok {
		b.d.errorf(w.Pos, "%s: %q is not an address or prefix", what, w.Text)
	}
	return p, ok
}

func (b *builder) vsGroup(n *Node) *VirtualServerGroup {
	name, ok := b.named(n)
	if !ok {
		return nil
	}
	g := &VirtualServerGroup{Pos: n.Pos, Name: name}
	for _, e := range n.Block {
		ent := VSGroupEntry{Pos: e.Pos}
		if e.Keyword() == "fwmark" {
			if !b.args(e, 1, 2) {
				continue
			}
			m, ok := b.u32Word(e.Words[1], "fwmark", 1)
			if !ok {
				continue
			}
			ent.FWMark = m
			if len(e.Words) == 3 {
				ent.V6 = e.Words[2].Text == "inet6"
			}
			g.Entries = append(g.Entries, ent)
			continue
		}
		if len(e.Words) > 2 {
			b.d.errorf(e.Pos, "virtual_server_group entry takes an address or range and a port")
			continue
		}
		first, last, ok := parseAddrRange(e.Words[0].Text)
		if !ok {
			b.d.errorf(e.Pos, "virtual_server_group: %q is not an address, range (a.b.c.d-e) or prefix", e.Words[0].Text)
			continue
		}
		ent.First, ent.Last = first, last
		if len(e.Words) == 2 {
			ent.Port, _ = b.portWord(e.Words[1], "port")
		}
		g.Entries = append(g.Entries, ent)
	}
	return g
}

// parseAddrRange reads "a.b.c.d", "a.b.c.d-e" (last part of the address
// varies), "a.b.c.d/nn" or "x::y-z".
func parseAddrRange(s string) (first, last netip.Addr, ok bool) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return first, last, false
		}
		p = p.Masked()
		first = p.Addr()
		// Last address: set the host bits.
		bs := first.AsSlice()
		for i := p.Bits(); i < len(bs)*8; i++ {
			bs[i/8] |= 0x80 >> (i % 8)
		}
		last, _ = netip.AddrFromSlice(bs)
		return first, last, true
	}
	base, end, isRange := strings.Cut(s, "-")
	a, err := netip.ParseAddr(base)
	if err != nil {
		return first, last, false
	}
	if !isRange {
		return a, a, true
	}
	bs := a.AsSlice()
	var v uint64
	if a.Is4() {
		v, err = strconv.ParseUint(end, 10, 8)
		if err != nil || byte(v) < bs[3] {
			return first, last, false
		}
		bs[3] = byte(v)
	} else {
		v, err = strconv.ParseUint(end, 16, 16)
		cur := uint64(bs[14])<<8 | uint64(bs[15])
		if err != nil || v < cur {
			return first, last, false
		}
		bs[14], bs[15] = byte(v>>8), byte(v)
	}
	l, _ := netip.AddrFromSlice(bs)
	return a, l, true
}

// maxPoolAddrs bounds the addresses of one SNAT pool.
const maxPoolAddrs = 65536

func (b *builder) snatPool(n *Node) *SNATPool {
	name, ok := b.named(n)
	if !ok {
		return nil
	}
	p := &SNATPool{Pos: n.Pos, Name: name}
	for _, c := range n.Block {
		switch c.Keyword() {
		case "address", "addresses":
			if b.noBlock(c) && b.args(c, 1, -1) {
				for _, w := range c.Words[1:] {
					first, last, ok := parseAddrRange(w.Text)
					if !ok {
						b.d.errorf(w.Pos, "address: %q is not an address, range or prefix", w.Text)
						continue
					}
					if n := rangeSize(first, last); n > maxPoolAddrs {
						b.d.errorf(w.Pos, "address %q: %d addresses, more than the %d a pool may hold", w.Text, n, maxPoolAddrs)
						continue
					}
					for a := first; ; a = a.Next() {
						p.Addresses = append(p.Addresses, a)
						if a == last {
							break
						}
					}
				}
			}
		case "port_range":
			if b.noBlock(c) && b.args(c, 2, 2) {
				lo, ok1 := b.portWord(c.Words[1], "port_range")
				hi, ok2 := b.portWord(c.Words[2], "port_range")
				if ok1 && ok2 {
					p.PortMin, p.PortMax = lo, hi
				}
			}
		default:
			b.unsupported(c, "govs_snat_pool")
		}
	}
	return p
}

// bgp reads a govs_bgp block.
func (b *builder) bgp(n *Node) *BGP {
	g := &BGP{Pos: n.Pos}
	for _, c := range n.Block {
		switch c.Keyword() {
		case "local_as":
			b.u32(c, 1, &g.LocalAS)
		case "router_id":
			b.addr(c, &g.RouterID)
		case "listen_port":
			b.intv(c, 0, 65535, &g.ListenPort)
		case "hold_time":
			b.intv(c, 3, 65535, &g.HoldTime)
		case "keepalive":
			b.intv(c, 1, 21845, &g.Keepalive)
		case "connect_retry":
			b.intv(c, 1, 3600, &g.ConnectRetry)
		case "next_hop":
			b.addr(c, &g.NextHop)
		case "next_hop6":
			b.addr(c, &g.NextHop6)
		case "community", "communities":
			if b.noBlock(c) && b.args(c, 1, -1) {
				for _, w := range c.Words[1:] {
					if _, err := ParseCommunity(w.Text); err != nil {
						b.d.errorf(w.Pos, "%s: %v", c.Keyword(), err)
						continue
					}
					g.Communities = append(g.Communities, w.Text)
				}
			}
		case "med":
			g.MED = new(uint32)
			b.u32(c, 0, g.MED)
		case "local_pref", "local_preference":
			g.LocalPref = new(uint32)
			b.u32(c, 0, g.LocalPref)
		case "as_path_prepend":
			b.intv(c, 0, 16, &g.Prepend)
		case "announce_delay":
			b.durPtr(c, &g.AnnounceDelay)
		case "neighbor":
			if nb := b.bgpNeighbor(c); nb != nil {
				g.Neighbors = append(g.Neighbors, nb)
			}
		default:
			b.unsupported(c, "govs_bgp")
		}
	}
	return g
}

// u32 reads one number in min..4294967295 (an AS number, MED, local
// preference).
func (b *builder) u32(n *Node, min uint32, dst *uint32) {
	w, ok := b.one(n)
	if !ok {
		return
	}
	v, err := strconv.ParseUint(w.Text, 10, 32)
	if err != nil || uint32(v) < min {
		b.d.errorf(w.Pos, "%s: %q is not a number in %d..4294967295", n.Keyword(), w.Text, min)
		return
	}
	*dst = uint32(v)
}

// bgpNeighbor reads neighbor ADDRESS { ... } inside govs_bgp.
func (b *builder) bgpNeighbor(n *Node) *BGPNeighbor {
	if !b.needBlock(n) || !b.args(n, 1, 1) {
		return nil
	}
	a, ok := b.addrWord(n.Words[1], "neighbor")
	if !ok {
		return nil
	}
	nb := &BGPNeighbor{Pos: n.Pos, Address: a}
	for _, c := range n.Block {
		switch c.Keyword() {
		case "remote_as":
			b.u32(c, 1, &nb.RemoteAS)
		case "local_address":
			b.addr(c, &nb.LocalAddress)
		case "port":
			b.port(c, &nb.Port)
		case "password":
			b.str(c, &nb.Password)
		case "passive":
			b.flag(c, &nb.Passive)
		case "ebgp_multihop":
			b.intv(c, 1, 255, &nb.Multihop)
		case "hold_time":
			b.intv(c, 3, 65535, &nb.HoldTime)
		case "keepalive":
			b.intv(c, 1, 21845, &nb.Keepalive)
		case "connect_retry":
			b.intv(c, 1, 3600, &nb.ConnectRetry)
		case "bfd":
			b.flag(c, &nb.BFD)
		case "bfd_interval":
			b.intv(c, 10, 60000, &nb.BFDInterval)
		case "bfd_multiplier":
			b.intv(c, 2, 255, &nb.BFDMultiplier)
		default:
			b.unsupported(c, "neighbor")
		}
	}
	return nb
}

// Well-known BGP communities (RFC 1997, RFC 8326).
var wellKnownCommunities = map[string]uint32{
	"no-export":           0xFFFFFF01,
	"no-advertise":        0xFFFFFF02,
	"no-export-subconfed": 0xFFFFFF03,
	"graceful-shutdown":   0xFFFF0000,
}

// ParseCommunity reads a BGP community: "ASN:VALUE" (each 0..65535) or a
// well-known name.
func ParseCommunity(s string) (uint32, error) {
	if v, ok := wellKnownCommunities[strings.ToLower(s)]; ok {
		return v, nil
	}
	hi, lo, ok := strings.Cut(s, ":")
	if ok {
		h, err1 := strconv.ParseUint(hi, 10, 16)
		l, err2 := strconv.ParseUint(lo, 10, 16)
		if err1 == nil && err2 == nil {
			return uint32(h)<<16 | uint32(l), nil
		}
	}
	return 0, fmt.Errorf("%q is not a community (ASN:VALUE with both 0..65535, or no-export, no-advertise, no-export-subconfed, graceful-shutdown)", s)
}

// method reads lvs_method / lb_kind: NAT|DR|TUN|SNAT [type ...] [csum].
func (b *builder) method(n *Node) (Method, *Tunnel, bool) {
	if !b.noBlock(n) || !b.args(n, 1, -1) {
		return "", nil, false
	}
	w := n.Words[1]
	var m Method
	switch strings.ToUpper(w.Text) {
	case "NAT", "MASQ":
		m = MethodNAT
	case "DR", "ROUTE", "GATEWAY":
		m = MethodDR
	case "TUN", "TUNNEL", "IPIP":
		m = MethodTUN
	case "SNAT", "FNAT", "FULLNAT":
		m = MethodSNAT
	default:
		b.d.errorf(w.Pos, "unknown forwarding method %q (NAT, DR, TUN or SNAT)", w.Text)
		return "", nil, false
	}
	if len(n.Words) == 2 {
		return m, nil, true
	}
	if m != MethodTUN {
		b.d.errorf(n.Words[2].Pos, "%s takes options only with TUN", n.Keyword())
		return m, nil, true
	}
	t := &Tunnel{}
	ws := n.Words[2:]
	for i := 0; i < len(ws); i++ {
		switch ws[i].Text {
		case "type":
			if i+1 >= len(ws) {
				b.d.errorf(ws[i].Pos, "type needs ipip, gue or gre")
				break
			}
			i++
			switch ws[i].Text {
			case "ipip", "gue", "gre":
				t.Type = ws[i].Text
			default:
				b.d.errorf(ws[i].Pos, "unknown tunnel type %q (ipip, gue or gre)", ws[i].Text)
			}
		case "port":
			if i+1 >= len(ws) {
				b.d.errorf(ws[i].Pos, "port needs a value")
				break
			}
			i++
			t.Port, _ = b.portWord(ws[i], "tunnel port")
		case "nocsum", "csum", "remcsum":
			t.Csum = ws[i].Text
		default:
			b.d.errorf(ws[i].Pos, "unknown tunnel option %q", ws[i].Text)
		}
	}
	return m, t, true
}

// checkDefault handles the checker timing keywords allowed at virtual
// server, real server and checker level.
func (b *builder) checkDefault(c *Node, cd *CheckDefaults) bool {
	switch c.Keyword() {
	case "delay_loop":
		b.durPtr(c, &cd.DelayLoop)
	case "connect_timeout":
		b.durPtr(c, &cd.ConnectTimeout)
	case "retry", "nb_get_retry":
		b.intPtr(c, 0, 1<<20, &cd.Retry)
	case "delay_before_retry":
		b.durPtr(c, &cd.DelayBeforeRetry)
	case "warmup":
		b.durPtr(c, &cd.Warmup)
	case "alpha":
		b.flagPtr(c, &cd.Alpha)
	default:
		return false
	}
	return true
}

func (b *builder) virtualServer(n *Node) *VirtualServer {
	if !b.needBlock(n) {
		return nil
	}
	vs := &VirtualServer{Pos: n.Pos, Quorum: -1}
	ws := n.Words[1:]
	switch {
	case len(ws) == 2 && ws[0].Text == "fwmark":
		m, ok := b.u32Word(ws[1], "fwmark", 1)
		if !ok {
			return nil
		}
		vs.FWMark = m
	case len(ws) == 2 && ws[0].Text == "group":
		vs.Group = ws[1].Text
	case len(ws) == 1 || len(ws) == 2:
		a, ok := b.addrWord(ws[0], "virtual_server")
		if !ok {
			return nil
		}
		vs.Addr = a
		if len(ws) == 2 {
			if vs.Ports, ok = b.portList(ws[1]); !ok {
				return nil
			}
		} else {
			vs.Ports = []PortRange{{0, 0}}
		}
	default:
		b.d.errorf(n.Pos, "virtual_server takes IP [PORT], fwmark N or group NAME")
		return nil
	}
	for _, c := range n.Block {
		if b.checkDefault(c, &vs.CheckDefaults) {
			continue
		}
		switch c.Keyword() {
		case "real_server":
			if rs := b.realServer(c); rs != nil {
				vs.RealServers = append(vs.RealServers, rs)
			}
		case "protocol":
			if b.noBlock(c) && b.args(c, 1, 3) {
				for _, w := range c.Words[1:] {
					switch p := Proto(strings.ToUpper(w.Text)); p {
					case ProtoTCP, ProtoUDP, ProtoSCTP:
						vs.Protocols = append(vs.Protocols, p)
					default:
						b.d.errorf(w.Pos, "unknown protocol %q (TCP, UDP or SCTP)", w.Text)
					}
				}
			}
		case "ip_family":
			if w, ok := b.one(c); ok {
				if w.Text != "inet" && w.Text != "inet6" {
					b.d.errorf(w.Pos, "ip_family must be inet or inet6")
				}
				vs.IPFamily = w.Text
			}
		case "lvs_sched", "lb_algo":
			b.str(c, &vs.Scheduler)
		case "lvs_method", "lb_kind":
			if m, t, ok := b.method(c); ok {
				vs.Method, vs.Tunnel = m, t
			}
		case "sh-port", "sh-fallback", "mh-port", "mh-fallback", "flag-1", "flag-2", "flag-3":
			if b.noBlock(c) && b.args(c, 0, 0) {
				vs.SchedFlags = append(vs.SchedFlags, c.Keyword())
			}
		case "ops":
			b.flag(c, &vs.OnePacket)
		case "hashed":
			b.unsupported(c, "virtual_server")
		case "govs_mh_table_size", "mh_table_size":
			b.intv(c, 7, 1<<24, &vs.MHTableSize)
		case "persistence_timeout":
			if b.noBlock(c) && b.args(c, 0, 1) {
				if len(c.Words) == 1 {
					vs.Persistence = DefaultPersistenceTimeout
				} else if d, ok := b.durWord(c.Words[1], "persistence_timeout"); ok {
					vs.Persistence = d
				}
			}
		case "persistence_granularity":
			b.str(c, &vs.PersistenceGranularity)
		case "persistence_engine":
			b.str(c, &vs.PersistenceEngine)
		case "quorum":
			b.intv(c, 0, 1<<30, &vs.Quorum)
		case "hysteresis":
			b.intv(c, 0, 1<<30, &vs.Hysteresis)
		case "quorum_up":
			vs.QuorumUp = b.script(c)
		case "quorum_down":
			vs.QuorumDown = b.script(c)
		case "sorry_server":
			if b.noBlock(c) && b.args(c, 1, 2) {
				a, ok := b.addrWord(c.Words[1], "sorry_server")
				if ok {
					if vs.Sorry == nil {
						vs.Sorry = &SorryServer{}
					}
					vs.Sorry.Pos, vs.Sorry.Addr = c.Pos, a
					if len(c.Words) == 3 {
						vs.Sorry.Port, _ = b.portWord(c.Words[2], "sorry_server port")
					}
				}
			}
		case "sorry_server_lvs_method":
			if m, _, ok := b.method(c); ok {
				if vs.Sorry == nil {
					vs.Sorry = &SorryServer{Pos: c.Pos}
				}
				vs.Sorry.Method = m
			}
		case "sorry_server_inhibit":
			b.flag(c, &vs.SorryServerInhibit)
		case "inhibit_on_failure":
			b.flag(c, &vs.InhibitOnFailure)
		case "omega":
			b.flag(c, &vs.Omega)
		case "ha_suspend":
			b.flag(c, &vs.HASuspend)
		case "virtualhost":
			b.str(c, &vs.Virtualhost)
		case "smtp_alert":
			b.flagPtr(c, &vs.SMTPAlert)
		case "snmp_name", "govs_name", "name":
			b.str(c, &vs.Name)
		case "service_timeout", "timeout":
			b.dur(c, &vs.ServiceTimeout)
		case "reentry":
			b.dur(c, &vs.Reentry)
		case "quiesce_server":
			b.flag(c, &vs.QuiesceServer)
		case "proxy_protocol":
			b.intv(c, 1, 2, &vs.ProxyProtocol)
		case "snat_pool":
			b.str(c, &vs.SNATPool)
		default:
			b.unsupported(c, "virtual_server")
		}
	}
	return vs
}

func (b *builder) realServer(n *Node) *RealServer {
	if !b.needBlock(n) {
		return nil
	}
	if len(n.Words) < 2 || len(n.Words) > 3 {
		b.d.errorf(n.Pos, "real_server takes IP [PORT]")
		return nil
	}
	a, ok := b.addrWord(n.Words[1], "real_server")
	if !ok {
		return nil
	}
	rs := &RealServer{Pos: n.Pos, Addr: a, Weight: DefaultWeight}
	if len(n.Words) == 3 {
		if rs.Port, ok = b.portWord(n.Words[2], "real_server port"); !ok {
			return nil
		}
	}
	for _, c := range n.Block {
		if b.checkDefault(c, &rs.CheckDefaults) {
			continue
		}
		switch c.Keyword() {
		case "weight":
			b.intv(c, 0, 65535, &rs.Weight)
		case "lvs_method", "lb_kind":
			if m, t, ok := b.method(c); ok {
				rs.Method, rs.Tunnel = m, t
			}
		case "uthreshold":
			b.intv(c, 0, 65535, &rs.UThreshold)
		case "lthreshold":
			b.intv(c, 0, 65535, &rs.LThreshold)
		case "notify_up":
			rs.NotifyUp = b.script(c)
		case "notify_down":
			rs.NotifyDown = b.script(c)
		case "inhibit_on_failure":
			b.flagPtr(c, &rs.InhibitOnFailure)
		case "smtp_alert":
			b.flagPtr(c, &rs.SMTPAlert)
		case "snmp_name", "name", "govs_name":
			b.str(c, &rs.Name)
		case "virtualhost":
			b.str(c, &rs.Virtualhost)
		case CheckTCP, CheckHTTP, CheckSSL, CheckSMTP, CheckDNS, CheckMisc, CheckUDP, CheckPing, CheckFile, CheckBFD:
			rs.Checks = append(rs.Checks, b.check(c)...)
		default:
			b.unsupported(c, "real_server")
		}
	}
	return rs
}

// check reads a checker block. An SMTP_CHECK's host { … } blocks (the
// older syntax keepalived still reads) are checkers of their own beside
// the SMTP_CHECK itself, as keepalived makes them: a host starts from the
// SMTP_CHECK's connection settings written before it and has its own;
// the checker settings (retry, delay_loop, …) written in a host block are
// the SMTP_CHECK's, for all of them.
func (b *builder) check(n *Node) []*Check {
	if !b.needBlock(n) || !b.args(n, 0, 0) {
		return nil
	}
	ck := &Check{Pos: n.Pos, Kind: n.Keyword()}
	var hosts []*Check // connection settings only; the rest comes from ck
	for _, c := range n.Block {
		if ck.Kind == CheckSMTP && c.Keyword() == "host" {
			if !b.needBlock(c) || !b.args(c, 0, 0) {
				continue
			}
			h := &Check{Pos: c.Pos}
			h.setConn(ck)
			for _, hc := range c.Block {
				if isConnKeyword(hc.Keyword()) {
					b.checkDefault(hc, &h.CheckDefaults)
					b.checkCommon(hc, h)
				} else if !b.checkDefault(hc, &ck.CheckDefaults) && !b.checkCommon(hc, ck) {
					b.unsupported(hc, "SMTP_CHECK host")
				}
			}
			hosts = append(hosts, h)
			continue
		}
		if ck.Kind == CheckBFD {
			// none of the standard checker options, as keepalived
			if c.Keyword() == "name" {
				b.str(c, &ck.BFDName)
			} else {
				b.unsupported(c, ck.Kind)
			}
			continue
		}
		if b.checkDefault(c, &ck.CheckDefaults) {
			continue
		}
		if b.checkCommon(c, ck) {
			continue
		}
		if !b.checkSpecific(c, ck) {
			b.unsupported(c, ck.Kind)
		}
	}
	out := []*Check{ck}
	for _, h := range hosts {
		hc := *ck
		hc.Pos = h.Pos
		hc.setConn(h)
		out = append(out, &hc)
	}
	return out
}

// isConnKeyword says whether a checker keyword is a connection setting
// (keepalived's conn_opts), which an SMTP_CHECK host has its own of.
func isConnKeyword(kw string) bool {
	switch kw {
	case "connect_ip", "connect_port", "bindto", "bind_port", "bind_if", "fwmark", "connect_timeout":
		return true
	}
	return false
}

// setConn copies from's connection settings into c.
func (c *Check) setConn(from *Check) {
	c.ConnectIP, c.ConnectPort, c.BindTo, c.BindPort, c.BindIf, c.FWMark = from.ConnectIP, from.ConnectPort, from.BindTo, from.BindPort, from.BindIf, from.FWMark
	c.ConnectTimeout = from.ConnectTimeout
}

func (b *builder) checkCommon(c *Node, ck *Check) bool {
	switch c.Keyword() {
	case "connect_ip":
		b.addr(c, &ck.ConnectIP)
	case "connect_port":
		b.port(c, &ck.ConnectPort)
	case "bindto":
		b.addr(c, &ck.BindTo)
	case "bind_port":
		b.port(c, &ck.BindPort)
	case "bind_if":
		b.str(c, &ck.BindIf)
	case "fwmark":
		b.u32(c, 0, &ck.FWMark)
	case "log_all_failures":
		b.flag(c, &ck.LogAllFailures)
	default:
		return false
	}
	return true
}

func (b *builder) checkSpecific(c *Node, ck *Check) bool {
	kw := c.Keyword()
	switch ck.Kind {
	case CheckTCP:
		switch kw {
		case "send":
			b.str(c, &ck.Send)
		case "expect":
			b.str(c, &ck.Expect)
		case "use_regex":
			b.flag(c, &ck.UseRegex)
		default:
			return false
		}
	case CheckHTTP, CheckSSL:
		switch kw {
		case "http_protocol":
			if w, ok := b.one(c); ok {
				switch w.Text {
				case "1.0", "1.0C", "1.1":
					ck.HTTPProtocol = w.Text
				default:
					b.d.errorf(w.Pos, "http_protocol must be 1.0, 1.0C or 1.1")
				}
			}
		case "url":
			if u, ok := b.url(c); ok {
				ck.URLs = append(ck.URLs, u)
			}
		case "virtualhost":
			b.str(c, &ck.Virtualhost)
		case "fast_recovery":
			// what govs always does: every url in every attempt
		case "enable_sni":
			b.flag(c, &ck.EnableSNI)
		case "sni_name":
			b.str(c, &ck.SNIName)
		case "tls_verify", "govs_tls_verify":
			b.flag(c, &ck.TLSVerify)
		default:
			return false
		}
	case CheckSMTP:
		switch kw {
		case "helo_name":
			b.str(c, &ck.HeloName)
		default:
			return false
		}
	case CheckDNS:
		switch kw {
		case "type":
			if w, ok := b.one(c); ok {
				t := strings.ToUpper(w.Text)
				switch t {
				case "A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA":
					ck.DNSType = t
				default:
					b.d.errorf(w.Pos, "DNS_CHECK type must be A, NS, CNAME, SOA, MX, TXT or AAAA")
				}
			}
		case "name":
			b.str(c, &ck.DNSName)
		default:
			return false
		}
	case CheckMisc:
		switch kw {
		case "misc_path":
			b.rest(c, &ck.MiscPath)
		case "misc_timeout":
			b.dur(c, &ck.MiscTimeout)
		case "misc_dynamic":
			b.flag(c, &ck.MiscDynamic)
		case "user":
			b.rest(c, &ck.User)
		case "expect":
			b.str(c, &ck.Expect)
		case "use_regex":
			b.flag(c, &ck.UseRegex)
		default:
			return false
		}
	case CheckUDP:
		switch kw {
		case "payload":
			b.str(c, &ck.Payload)
		case "require_reply":
			if b.noBlock(c) && b.args(c, 0, 1) {
				ck.HasRequire = true
				if len(c.Words) == 2 {
					ck.RequireReply = c.Words[1].Text
				}
			}
		case "min_reply_length":
			b.intv(c, 0, 65535, &ck.MinReplyLength)
		case "max_reply_length":
			b.intv(c, 0, 65535, &ck.MaxReplyLength)
		default:
			return false
		}
	case CheckFile:
		switch kw {
		case "track_file", "file":
			b.str(c, &ck.TrackFile)
		case "weight":
			if b.noBlock(c) && b.args(c, 1, 2) {
				if v, ok := b.intWord(c.Words[1], "weight", -254, 254); ok {
					ck.FileWeight = &v
				}
				ck.Reverse = len(c.Words) == 3 && c.Words[2].Text == "reverse"
			}
		case "dynamic":
			b.flag(c, &ck.Dynamic)
		default:
			return false
		}
	default:
		return false
	}
	return true
}

func (b *builder) url(n *Node) (URL, bool) {
	if !b.needBlock(n) {
		return URL{}, false
	}
	var u URL
	for _, c := range n.Block {
		switch c.Keyword() {
		case "path":
			b.str(c, &u.Path)
		case "digest":
			b.str(c, &u.Digest)
		case "status_code":
			if b.noBlock(c) && b.args(c, 1, -1) {
				for _, w := range c.Words[1:] {
					for _, part := range strings.Split(w.Text, ",") {
						r, ok := parseCodeRange(part)
						if !ok {
							b.d.errorf(w.Pos, "status_code: %q is not a code or range (e.g. 200 or 200-299)", part)
							continue
						}
						u.StatusCodes = append(u.StatusCodes, r)
					}
				}
			}
		case "virtualhost":
			b.str(c, &u.Virtualhost)
		case "regex":
			b.str(c, &u.Regex)
		case "regex_no_match":
			b.flag(c, &u.RegexNoMatch)
		default:
			b.unsupported(c, "url")
		}
	}
	return u, true
}

func parseCodeRange(s string) (CodeRange, bool) {
	from, to, isRange := strings.Cut(s, "-")
	f, err := strconv.Atoi(from)
	if err != nil || f < 100 || f > 599 {
		return CodeRange{}, false
	}
	t := f
	if isRange {
		t, err = strconv.Atoi(to)
		if err != nil || t < f || t > 599 {
			return CodeRange{}, false
		}
	}
	return CodeRange{f, t}, true
}

// applyDefaults fills keepalived's defaults into fields left unset.
func (c *Config) applyDefaults() {
	g := &c.Global
	if g.VRRPVersion == 0 {
		g.VRRPVersion = 2
	}
	if g.SMTPConnectTimeout == 0 {
		g.SMTPConnectTimeout = DefaultSMTPConnectTimeout
	}
	for _, s := range c.VRRPScripts {
		if s.Interval == 0 {
			s.Interval = DefaultVRRPScriptInterval
		}
	}
	for _, vi := range c.VRRPInstances {
		if vi.Priority < 0 {
			vi.Priority = 0
			vi.Priority = vi.BasePriority() // 255 for state MASTER, as keepalived
		}
		if vi.AdvertInt == 0 {
			vi.AdvertInt = DefaultAdvertInt
		}
	}
	for _, vs := range c.VirtualServers {
		if vs.Scheduler == "" {
			vs.Scheduler = DefaultScheduler
		}
		if vs.Method == "" {
			vs.Method = MethodNAT
		}
		if len(vs.Protocols) == 0 {
			vs.Protocols = []Proto{ProtoTCP}
		}
		if vs.Quorum < 0 {
			vs.Quorum = 1
		}
	}
}
