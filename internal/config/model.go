package config

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration that reads and prints as seconds in
// keepalived style and as a Go duration string in JSON.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// seconds renders the duration as keepalived writes it: seconds, with a
// fraction only when needed.
func (d Duration) seconds() string {
	return strconv.FormatFloat(time.Duration(d).Seconds(), 'f', -1, 64)
}

// Keepalived's defaults (keepalived.conf(5); see docs/configuration.md).
const (
	DefaultDelayLoop          = Duration(60 * time.Second)
	DefaultConnectTimeout     = Duration(5 * time.Second)
	DefaultRetry              = 1
	DefaultDelayBeforeRetry   = Duration(1 * time.Second)
	DefaultHTTPDelayBefore    = Duration(3 * time.Second)
	DefaultPersistenceTimeout = Duration(360 * time.Second)
	DefaultScheduler          = "wlc"
	DefaultWeight             = 1
	DefaultPriority           = 100
	DefaultAdvertInt          = Duration(time.Second)
	DefaultGarpMasterDelay    = Duration(5 * time.Second)
	DefaultGarpMasterRepeat   = 5
	DefaultGarpRefreshRepeat  = 1
	DefaultVRRPScriptInterval = Duration(time.Second)
	DefaultSMTPConnectTimeout = Duration(30 * time.Second)
	DefaultAPISocket          = "/run/govs/govs.sock"
	DefaultWebListen          = ":3636"
)

// Method is a forwarding method as written in the config (lb_kind).
type Method string

const (
	MethodNAT  Method = "NAT"
	MethodDR   Method = "DR"
	MethodTUN  Method = "TUN"
	MethodSNAT Method = "SNAT"
)

// Proto is a transport protocol name: TCP, UDP or SCTP.
type Proto string

const (
	ProtoTCP  Proto = "TCP"
	ProtoUDP  Proto = "UDP"
	ProtoSCTP Proto = "SCTP"
)

// Config is a whole govs configuration.
type Config struct {
	Global GlobalDefs `json:"global_defs"`
	// NetNamespaceTop is a net_namespace outside global_defs (kept as
	// written there by the writer).
	NetNamespaceTop string `json:"net_namespace,omitempty"`
	// InstanceName is the top-level instance NAME: with data_use_instance
	// it is part of the state files' names.
	InstanceName string `json:"instance,omitempty"`
	// GarpGroups are garp_group blocks: the gratuitous ARP / unsolicited
	// NA intervals of the instances on those interfaces.
	GarpGroups          []*GarpGroup          `json:"garp_groups,omitempty"`
	VRRPScripts         []*VRRPScript         `json:"vrrp_scripts,omitempty"`
	VRRPTrackFiles      []*TrackFile          `json:"vrrp_track_files,omitempty"`
	VRRPTrackProcesses  []*TrackProcess       `json:"vrrp_track_processes,omitempty"`
	BFDInstances        []*BFDInstance        `json:"bfd_instances,omitempty"`
	SyncGroups          []*SyncGroup          `json:"vrrp_sync_groups,omitempty"`
	VRRPInstances       []*VRRPInstance       `json:"vrrp_instances,omitempty"`
	VirtualServerGroups []*VirtualServerGroup `json:"virtual_server_groups,omitempty"`
	SNATPools           []*SNATPool           `json:"snat_pools,omitempty"`
	// BGP is the govs_bgp block (nil: no BGP).
	BGP            *BGP             `json:"bgp,omitempty"`
	VirtualServers []*VirtualServer `json:"virtual_servers,omitempty"`
	// InterfaceDelays are interface_up_down_delays blocks.
	InterfaceDelays []*InterfaceDelays `json:"interface_up_down_delays,omitempty"`
	// Statics are static_ipaddress, static_routes and static_rules
	// blocks.
	Statics []*StaticBlock `json:"statics,omitempty"`
	// TrackGroups are track_group blocks: the VRRP instances that track
	// the interfaces of the static addresses, routes and rules naming
	// the group.
	TrackGroups []*TrackGroup `json:"track_groups,omitempty"`

	// Files are the files read, the main one first.
	Files []string `json:"files,omitempty"`

	src *sourceSet // original text, for the writer
}

// StaticBlock is a static_ipaddress, static_routes or static_rules
// block: addresses, routes or rules installed while govs runs, whatever
// the VRRP states, in the syntax of their virtual_* counterparts.
type StaticBlock struct {
	Pos    Pos       `json:"-"`
	Kind   string    `json:"kind"` // static_ipaddress, static_routes or static_rules
	VIPs   []VIPAddr `json:"addresses,omitempty"`
	Routes []Route   `json:"routes,omitempty"`
	Rules  []Rule    `json:"rules,omitempty"`
}

// GarpGroup is a garp_group block: garp_interval and gna_interval for
// the instances whose interface is listed (interface IF, or interfaces
// { IF … }), instead of the global vrrp_garp_interval and
// vrrp_gna_interval.
type GarpGroup struct {
	Pos          Pos      `json:"-"`
	GarpInterval Duration `json:"garp_interval,omitempty"`
	GnaInterval  Duration `json:"gna_interval,omitempty"`
	// Interface is the interface line, Interfaces the interfaces block.
	Interface  string   `json:"interface,omitempty"`
	Interfaces []string `json:"interfaces,omitempty"`
}

// TrackGroup is a track_group NAME { group { INSTANCE … } } block.
// The instances of a group track (as a track_interface of weight 0)
// the interface of each static address (its dev), route (its dev) and
// rule (its iif) that names the group: FAULT while it is down.
type TrackGroup struct {
	Pos       Pos      `json:"-"`
	Name      string   `json:"name"`
	Instances []string `json:"group"`
}

// StaticTrackInterfaces maps each VRRP instance of a track_group to the
// interfaces it tracks for the static entries naming the group (in the
// order written, each once): an address's dev (else the global
// default_interface, else eth0), a route's dev, a rule's iif. Entries
// with no_track, and groups or instances not defined, give none.
func (c *Config) StaticTrackInterfaces() map[string][]string {
	if len(c.TrackGroups) == 0 {
		return nil
	}
	members := map[string][]string{}
	for _, g := range c.TrackGroups {
		if _, dup := members[g.Name]; !dup {
			members[g.Name] = g.Instances
		}
	}
	out := map[string][]string{}
	add := func(group string, noTrack bool, dev string) {
		if group == "" || noTrack || dev == "" {
			return
		}
		for _, inst := range members[group] {
			if !slices.Contains(out[inst], dev) {
				out[inst] = append(out[inst], dev)
			}
		}
	}
	for _, b := range c.Statics {
		for _, a := range b.VIPs {
			add(a.TrackGroup, a.NoTrack, cmp.Or(a.Dev, c.Global.StaticDev()))
		}
		for _, r := range b.Routes {
			add(r.TrackGroup, r.NoTrack, r.OIF())
		}
		for _, r := range b.Rules {
			add(r.TrackGroup, r.NoTrack, r.Iif)
		}
	}
	return out
}

// OIF is the route's own dev (keepalived's oif): Dev, or for a multipath
// route, whose paths took it, the dev written before its first path.
func (r *Route) OIF() string {
	if r.Dev != "" || len(r.Nexthops) == 0 {
		return r.Dev
	}
	for i := 0; i+1 < len(r.Words); i++ {
		switch r.Words[i] {
		case "nexthop", "or":
			return ""
		case "dev", "oif":
			return r.Words[i+1]
		}
	}
	return ""
}

// InterfaceDelays is an interface_up_down_delays block: `IF DOWN [UP]`
// lines. A link of IF going down counts for VRRP only once it stayed
// down DOWN seconds, and coming up once it stayed up UP seconds.
type InterfaceDelays struct {
	Pos     Pos              `json:"-"`
	Entries []InterfaceDelay `json:"entries"`
}

// InterfaceDelay is one line of interface_up_down_delays.
type InterfaceDelay struct {
	Pos  Pos      `json:"-"`
	Name string   `json:"interface"`
	Down Duration `json:"down"`
	Up   Duration `json:"up,omitempty"`
}

// Script is a program to run with its user (keepalived's "SCRIPT [user]").
type Script struct {
	Cmd  string `json:"cmd"`
	User string `json:"user,omitempty"`
	Pos  Pos    `json:"-"`
}

// GlobalDefs is the global_defs block plus govs's own global options.
type GlobalDefs struct {
	Pos                   Pos      `json:"-"`
	RouterID              string   `json:"router_id,omitempty"`
	NotificationEmail     []string `json:"notification_email,omitempty"`
	NotificationEmailFrom string   `json:"notification_email_from,omitempty"`
	SMTPServer            string   `json:"smtp_server,omitempty"` // host or IP
	SMTPPort              uint16   `json:"smtp_port,omitempty"`   // 0 = 25
	SMTPConnectTimeout    Duration `json:"smtp_connect_timeout"`
	// RandomSeed is random_seed: ${_RANDOM}'s seed, for the same values
	// at every read (Parse reads it from the main file first).
	RandomSeed string `json:"random_seed,omitempty"`
	// LogUnknownVRIDs (log_unknown_vrids) logs adverts whose VRID no
	// instance on that interface has.
	LogUnknownVRIDs bool `json:"log_unknown_vrids,omitempty"`
	// VRRPRxBufsPolicy (vrrp_rx_bufs_policy MTU|ADVERT|SIZE) sizes the
	// advert sockets' receive buffers: "MTU" or "ADVERT" times
	// VRRPRxBufsMultiplier (0: 3), or a number of bytes; "": the
	// system's. An instance's kernel_rx_buf_size comes first.
	VRRPRxBufsPolicy     string `json:"vrrp_rx_bufs_policy,omitempty"`
	VRRPRxBufsMultiplier int    `json:"vrrp_rx_bufs_multiplier,omitempty"`
	// ProcessName is the name govs's process takes (process_name NAME;
	// process_names: "keepalived", the name of keepalived's parent).
	ProcessName  string `json:"process_name,omitempty"`
	ProcessNames bool   `json:"process_names,omitempty"`
	// DataUseInstance (data_use_instance) puts the network namespace and
	// the instance name in the names of the .data state files.
	DataUseInstance bool `json:"data_use_instance,omitempty"`
	// ReloadTimeFile (reload_time_file) names a file holding a time at
	// which govs reloads; ReloadRepeat (reload_repeat) keeps the file
	// after the reload (a time without a date then repeats daily).
	ReloadTimeFile string `json:"reload_time_file,omitempty"`
	ReloadRepeat   bool   `json:"reload_repeat,omitempty"`
	// ReloadFile (reload_file [FILE]) is made empty while a reload reads
	// the configuration and removed after; HasReloadFile without a name
	// is /run/keepalived.reload.
	ReloadFile    string `json:"reload_file,omitempty"`
	HasReloadFile bool   `json:"has_reload_file,omitempty"`
	// RSInitNotifies (rs_init_notifies): a real server that starts up
	// alive runs its notify_up and is written to the notify FIFOs.
	RSInitNotifies bool `json:"rs_init_notifies,omitempty"`
	// NoCheckerEmails (no_checker_emails): mail only when a real server
	// is added or removed, which is all govs mails about real servers.
	NoCheckerEmails bool `json:"no_checker_emails,omitempty"`
	// SMTPHeloName is smtp_helo_name (default: the host name).
	SMTPHeloName string `json:"smtp_helo_name,omitempty"`
	// NoEmailFaults (no_email_faults): no mail when a VRRP instance or
	// group enters FAULT.
	NoEmailFaults    bool  `json:"no_email_faults,omitempty"`
	SMTPAlert        *bool `json:"smtp_alert,omitempty"`
	SMTPAlertVRRP    *bool `json:"smtp_alert_vrrp,omitempty"`
	SMTPAlertChecker *bool `json:"smtp_alert_checker,omitempty"`
	// CheckerLogAllFailures (checker_log_all_failures) logs every failed
	// check attempt, as each checker's log_all_failures.
	CheckerLogAllFailures bool    `json:"checker_log_all_failures,omitempty"`
	EnableScriptSecurity  bool    `json:"enable_script_security,omitempty"`
	ScriptUser            string  `json:"script_user,omitempty"`
	StartupScript         *Script `json:"startup_script,omitempty"`
	ShutdownScript        *Script `json:"shutdown_script,omitempty"`
	// StartupScriptTimeout, ShutdownScriptTimeout: 0 means keepalived's
	// 10 s.
	StartupScriptTimeout  Duration `json:"startup_script_timeout,omitempty"`
	ShutdownScriptTimeout Duration `json:"shutdown_script_timeout,omitempty"`
	LVSFlush              bool     `json:"lvs_flush,omitempty"`
	LVSFlushOnStop        bool     `json:"lvs_flush_onstop,omitempty"`
	LVSTimeouts           Timeouts `json:"lvs_timeouts"`
	LVSSyncDaemon         *SyncD   `json:"lvs_sync_daemon,omitempty"`
	VRRPVersion           int      `json:"vrrp_version"`
	// VRRPNotifyPriorityChanges (vrrp_notify_priority_changes) sets
	// notify_priority_changes in every instance.
	VRRPNotifyPriorityChanges bool `json:"vrrp_notify_priority_changes,omitempty"`
	// FIFOWriteVRRPStatesOnReload (fifo_write_vrrp_states_on_reload)
	// writes every VRRP instance's and sync group's state to the notify
	// FIFOs after a reload.
	FIFOWriteVRRPStatesOnReload bool `json:"fifo_write_vrrp_states_on_reload,omitempty"`
	// Umask (umask) is govs's file creation mask (nil: keepalived's 0177
	// for its state files, the process's own otherwise).
	Umask *uint32 `json:"umask,omitempty"`
	// VRRPNoSwap, CheckerNoSwap, BFDNoSwap (vrrp_no_swap, checker_no_swap,
	// bfd_no_swap): keepalived locks that process's memory in RAM; govs is
	// one process, which any of them locks.
	VRRPNoSwap    bool `json:"vrrp_no_swap,omitempty"`
	CheckerNoSwap bool `json:"checker_no_swap,omitempty"`
	BFDNoSwap     bool `json:"bfd_no_swap,omitempty"`
	// SNMP: enable_snmp_vrrp (KEEPALIVED-MIB's global and vrrp groups;
	// also enable_snmp_keepalived), enable_snmp_rfcv2 (VRRP-MIB),
	// enable_snmp_rfcv3 (VRRPv3-MIB), enable_snmp_rfc (both), served
	// over AgentX at snmp_socket ("": unix:/var/agentx/master).
	SNMPVRRP    bool `json:"enable_snmp_vrrp,omitempty"`
	SNMPChecker bool `json:"enable_snmp_checker,omitempty"` // its check group

	SNMPRFCv2  bool   `json:"enable_snmp_rfcv2,omitempty"`
	SNMPRFCv3  bool   `json:"enable_snmp_rfcv3,omitempty"`
	SNMPSocket string `json:"snmp_socket,omitempty"`
	// SNMPTraps (enable_traps) sends keepalived's notifications for the
	// MIBs served.
	SNMPTraps bool `json:"enable_traps,omitempty"`
	// JSONVersion (json_version) is the layout of keepalived.json: 1 (a
	// list of instances) or 2 (an object whose "vrrp" is that list); 0
	// is 1.
	JSONVersion     int    `json:"json_version,omitempty"`
	VRRPMcastGroup4 string `json:"vrrp_mcast_group4,omitempty"`
	// VRRPDownTimerAdverts is vrrp_down_timer_adverts: every instance's
	// down_timer_adverts unless it has its own (0: 3).
	VRRPDownTimerAdverts int      `json:"vrrp_down_timer_adverts,omitempty"`
	VRRPMcastGroup6      string   `json:"vrrp_mcast_group6,omitempty"`
	VRRPStrict           bool     `json:"vrrp_strict,omitempty"`
	VRRPGarpInterval     Duration `json:"vrrp_garp_interval,omitempty"`
	VRRPGnaInterval      Duration `json:"vrrp_gna_interval,omitempty"`
	VRRPStartupDelay     Duration `json:"vrrp_startup_delay,omitempty"`
	// VMACPrefix is vmac_prefix: the name of a use_vmac interface without
	// one of its own is VMACPrefix.VRID ("" = "vrrp").
	VMACPrefix string `json:"vmac_prefix,omitempty"`
	// NetNamespace (net_namespace) is the network namespace govs runs
	// in (see Config.NetNamespace).
	NetNamespace string `json:"net_namespace,omitempty"`
	// DefaultInterface (default_interface) is the device of the static
	// addresses, and of the static routes with neither dev nor via, that
	// name none ("": eth0, as keepalived).
	DefaultInterface string `json:"default_interface,omitempty"`
	// VRRPDefaults are the vrrp_garp_*, vrrp_min_garp and vrrp_*_advert
	// globals: the defaults of the instance settings of the same names.
	VRRPDefaults VRRPDefaults `json:"vrrp_defaults,omitzero"`
	// NotifyFIFO (all events), VRRPNotifyFIFO (VRRP) and LVSNotifyFIFO
	// (real and virtual servers) are keepalived's notify FIFOs.
	NotifyFIFO     *NotifyFIFO `json:"notify_fifo,omitempty"`
	VRRPNotifyFIFO *NotifyFIFO `json:"vrrp_notify_fifo,omitempty"`
	LVSNotifyFIFO  *NotifyFIFO `json:"lvs_notify_fifo,omitempty"`
	Govs           GovsGlobal  `json:"govs"`
}

// RuleStartPriority is the priority keepalived gives the first rule of a
// family that has none; the next ones get one less each, in the order
// of the configuration.
const RuleStartPriority = 16384

// RulePriorities numbers the virtual_rules and static_rules that give no
// priority as keepalived does: from RuleStartPriority down, per family,
// in the order they were read (an included file's rules where its
// include is).
func (c *Config) RulePriorities() map[*Rule]int {
	var rules []*Rule
	for _, b := range c.Statics {
		for i := range b.Rules {
			rules = append(rules, &b.Rules[i])
		}
	}
	for _, vi := range c.VRRPInstances {
		for i := range vi.Rules {
			rules = append(rules, &vi.Rules[i])
		}
	}
	slices.SortStableFunc(rules, func(a, b *Rule) int { return a.seq - b.seq })
	out := map[*Rule]int{}
	next := [2]int{RuleStartPriority, RuleStartPriority}
	for _, r := range rules {
		if r.Priority != 0 {
			continue
		}
		f := 0
		if r.Inet6 || r.From.Addr().Is6() || r.To.Addr().Is6() {
			f = 1
		}
		out[r] = next[f]
		next[f]--
	}
	return out
}

// NetNamespace is the network namespace govs runs in: global_defs'
// net_namespace, else a top-level one ("": the namespace it was started
// in). It cannot change on a reload.
func (c *Config) NetNamespace() string {
	if c.Global.NetNamespace != "" {
		return c.Global.NetNamespace
	}
	return c.NetNamespaceTop
}

// SloppyTCP says whether a dataplane schedules TCP packets that match
// no connection even without SYN: govs_sloppy_tcp, else on with govs_bgp
// (active-active directors take over each other's connections).
func (c *Config) SloppyTCP() bool {
	if v := c.Global.Govs.SloppyTCP; v != nil {
		return *v
	}
	return c.BGP != nil
}

// StaticDev is the device of static addresses and routes that name none.
func (g *GlobalDefs) StaticDev() string {
	if g.DefaultInterface != "" {
		return g.DefaultInterface
	}
	return "eth0"
}

// VRRPDefaults are global_defs' defaults of instance settings; nil or
// false is keepalived's own default.
type VRRPDefaults struct {
	GarpSettings
	// GarpExtraIf is vrrp_garp_extra_if [all] SECS.
	GarpExtraIf *GarpExtraIf `json:"vrrp_garp_extra_if,omitempty"`
	// MinGARP (vrrp_min_garp): the defaults of the settings above that
	// are not set become one GARP/NA message, with no delayed second
	// burst.
	MinGARP              bool `json:"vrrp_min_garp,omitempty"`
	LowerPrioNoAdvert    bool `json:"vrrp_lower_prio_no_advert,omitempty"`
	HigherPrioSendAdvert bool `json:"vrrp_higher_prio_send_advert,omitempty"`
	// CheckUnicastSrc turns check_unicast_src on in every instance with
	// unicast peers.
	CheckUnicastSrc  bool `json:"vrrp_check_unicast_src,omitempty"`
	SkipCheckAdvAddr bool `json:"vrrp_skip_check_adv_addr,omitempty"`
}

// GarpSettings are the GARP settings an instance sets, and global_defs
// sets for the instances with the vrrp_ prefix (nil: not set).
type GarpSettings struct {
	GarpMasterDelay         *Duration `json:"garp_master_delay,omitempty"`
	GarpMasterRepeat        *int      `json:"garp_master_repeat,omitempty"`
	GarpMasterRefresh       *Duration `json:"garp_master_refresh,omitempty"`
	GarpMasterRefreshRepeat *int      `json:"garp_master_refresh_repeat,omitempty"`
	GarpLowerPrioDelay      *Duration `json:"garp_lower_prio_delay,omitempty"`
	GarpLowerPrioRepeat     *int      `json:"garp_lower_prio_repeat,omitempty"`
}

// GarpExtraIf is garp_extra_if: a GARP/NA every Interval while MASTER
// for the virtual addresses on the use_vmac interface when the adverts
// go out of its parent, or with All on any interface the adverts do not
// go out of.
type GarpExtraIf struct {
	Interval Duration `json:"interval"`
	All      bool     `json:"all,omitempty"`
}

func (g *GarpExtraIf) words(kw string) []string {
	w := []string{kw}
	if g.All {
		w = append(w, "all")
	}
	return append(w, strconv.Itoa(int(g.Interval.D()/time.Second)))
}

// InstanceSettings are the GARP and advert settings in effect for one
// VRRP instance: its own where it sets them, else global_defs', else
// keepalived's defaults.
type InstanceSettings struct {
	GarpMasterDelay         Duration
	GarpMasterRepeat        int
	GarpMasterRefresh       Duration
	GarpMasterRefreshRepeat int
	// GarpLowerPrioDelay and GarpLowerPrioRepeat default to the global
	// garp_master_delay and garp_master_repeat (keepalived's rule: the
	// global ones, not the instance's).
	GarpLowerPrioDelay   Duration
	GarpLowerPrioRepeat  int
	LowerPrioNoAdvert    bool
	HigherPrioSendAdvert bool
	CheckUnicastSrc      bool
	// GarpExtraIf: garp_extra_if, else the global one (nil: off).
	GarpExtraIf *GarpExtraIf
}

// InstanceSettings resolves vi's GARP and advert settings against g.
func (g *GlobalDefs) InstanceSettings(vi *VRRPInstance) InstanceSettings {
	d := g.VRRPDefaults
	dur := func(v *Duration, def Duration) Duration {
		if v != nil {
			return *v
		}
		return def
	}
	num := func(v *int, def int) int {
		if v != nil {
			return *v
		}
		return def
	}
	flag := func(v *bool, def bool) bool {
		if v != nil {
			return *v
		}
		return def
	}
	delay, repeat := DefaultGarpMasterDelay, DefaultGarpMasterRepeat
	if d.MinGARP {
		delay, repeat = 0, 1
	}
	// a repeat of 0 is 1, as keepalived takes it (Validate warns)
	delay, repeat = dur(d.GarpMasterDelay, delay), max(num(d.GarpMasterRepeat, repeat), 1)
	s := InstanceSettings{
		GarpMasterDelay:         dur(vi.GarpMasterDelay, delay),
		GarpMasterRepeat:        max(num(vi.GarpMasterRepeat, repeat), 1),
		GarpMasterRefresh:       dur(vi.GarpMasterRefresh, dur(d.GarpMasterRefresh, 0)),
		GarpMasterRefreshRepeat: num(vi.GarpMasterRefreshRepeat, num(d.GarpMasterRefreshRepeat, DefaultGarpRefreshRepeat)),
		GarpLowerPrioDelay:      dur(vi.GarpLowerPrioDelay, dur(d.GarpLowerPrioDelay, delay)),
		GarpLowerPrioRepeat:     num(vi.GarpLowerPrioRepeat, num(d.GarpLowerPrioRepeat, repeat)),
		LowerPrioNoAdvert:       flag(vi.LowerPrioNoAdvert, d.LowerPrioNoAdvert),
		HigherPrioSendAdvert:    flag(vi.HigherPrioSendAdvert, d.HigherPrioSendAdvert),
		CheckUnicastSrc:         vi.CheckUnicastSrc || d.CheckUnicastSrc && len(vi.UnicastPeers) > 0,
		GarpExtraIf:             cmp.Or(vi.GarpExtraIf, d.GarpExtraIf),
	}
	if g.StrictMode(vi) {
		// as keepalived in strict mode, whatever is set (Validate
		// warns): no gratuitous ARPs on a lower priority advert, no
		// answer to one, no advert before giving way to a higher one
		s.GarpLowerPrioDelay, s.GarpLowerPrioRepeat = 0, 0
		s.LowerPrioNoAdvert, s.HigherPrioSendAdvert = true, false
	}
	return s
}

// NotifyFIFO is a notify FIFO: `KIND FILE [USER [GROUP]]` and
// `KIND_script SCRIPT [USER [GROUP]]`, the script started with the FIFO's
// path as its argument to read it.
type NotifyFIFO struct {
	Path   string  `json:"path,omitempty"`
	Owner  string  `json:"owner,omitempty"` // "user[ group]" of a FIFO govs creates
	Script *Script `json:"script,omitempty"`
}

// Timeouts are lvs_timeouts (ipvsadm --set): zero means the default.
type Timeouts struct {
	TCP    Duration `json:"tcp,omitempty"`
	TCPFin Duration `json:"tcpfin,omitempty"`
	UDP    Duration `json:"udp,omitempty"`
}

// SyncD is lvs_sync_daemon: connection-state synchronisation.
type SyncD struct {
	Interface string `json:"interface"`
	Instance  string `json:"instance,omitempty"`
	// ID is the sync ID; nil: the instance's virtual_router_id (0
	// without an instance), as in keepalived.
	ID     *int   `json:"id,omitempty"`
	MaxLen int    `json:"maxlen,omitempty"`
	Port   int    `json:"port,omitempty"`
	TTL    int    `json:"ttl,omitempty"`
	Group  string `json:"group,omitempty"`

	// fromInstance: read from a vrrp_instance's deprecated
	// lvs_sync_daemon_interface, and written there (not in global_defs)
	fromInstance bool
}

// GovsGlobal are govs-only global options, written in global_defs with a
// govs_ prefix so that they never clash with keepalived keywords.
type GovsGlobal struct {
	// Dataplane is auto (default), proxy, xdp or ipvs.
	Dataplane  string   `json:"dataplane,omitempty"`
	Interfaces []string `json:"interfaces,omitempty"`
	// XDPMode is how the XDP dataplane attaches: native (default) or
	// generic.
	XDPMode     string   `json:"xdp_mode,omitempty"`
	APISocket   string   `json:"api_socket,omitempty"`
	APIListen   string   `json:"api_listen,omitempty"`
	WebListen   string   `json:"web_listen,omitempty"`
	WebPassword string   `json:"web_password_hash,omitempty"` // bcrypt hash
	WebAllow    []string `json:"web_allow,omitempty"`         // CIDRs allowed to reach the UI
	// WebTLSCert and WebTLSKey are PEM files: the UI serves HTTPS.
	WebTLSCert string `json:"web_tls_cert,omitempty"`
	WebTLSKey  string `json:"web_tls_key,omitempty"`
	// ConfigSyncListen takes the peers' configuration files there;
	// ConfigSyncPeers are sent this director's; ConfigSyncSecret seals
	// both ways.
	ConfigSyncListen string   `json:"config_sync_listen,omitempty"`
	ConfigSyncPeers  []string `json:"config_sync_peers,omitempty"`
	ConfigSyncSecret string   `json:"config_sync_secret,omitempty"`
	MetricsListen    string   `json:"metrics_listen,omitempty"`
	ConnTableSize    int      `json:"conn_table_size,omitempty"`
	LogLevel         string   `json:"log_level,omitempty"`
	// Masquerade lists real-server networks whose own outgoing traffic
	// (updates, active FTP data) the director masquerades (nftables).
	Masquerade []string `json:"masquerade,omitempty"`
	// SloppyTCP schedules TCP packets that match no connection even
	// without SYN (IPVS's sloppy_tcp sysctl), so a director takes over
	// connections another director began. nil: on with govs_bgp
	// (active-active), off otherwise.
	SloppyTCP *bool `json:"sloppy_tcp,omitempty"`
}

// VRRPScript is a vrrp_script block.
type VRRPScript struct {
	Pos      Pos      `json:"-"`
	Name     string   `json:"name"`
	Script   string   `json:"script"`
	Interval Duration `json:"interval"`
	Timeout  Duration `json:"timeout,omitempty"`
	Weight   int      `json:"weight,omitempty"`
	Reverse  bool     `json:"reverse,omitempty"`
	Rise     int      `json:"rise,omitempty"`
	Fall     int      `json:"fall,omitempty"`
	User     string   `json:"user,omitempty"`
	InitFail bool     `json:"init_fail,omitempty"`
}

// TrackFile is a vrrp_track_file block: a file whose number adjusts
// priority.
type TrackFile struct {
	Pos  Pos    `json:"-"`
	Name string `json:"name"`
	File string `json:"file"`
	// Weight is 1 when the block gives none, as keepalived's.
	Weight  int  `json:"weight"`
	Reverse bool `json:"reverse,omitempty"`
	// InitFile is init_file [VALUE] [overwrite]: VALUE (default 0) is
	// written into the file when it does not exist, and over it at start
	// with overwrite. nil: no init_file.
	InitFile *InitFile `json:"init_file,omitempty"`
}

// TrackProcess is a vrrp_track_process block: processes whose count,
// within the quorum or not, adjusts priority like a vrrp_script.
type TrackProcess struct {
	Pos     Pos    `json:"-"`
	Name    string `json:"name"`
	Process string `json:"process"`
	// Params are the words after the process name on the process line:
	// the arguments to match (ParamMatch: exact, the default, initial or
	// partial). With Params, ParamMatch or FullCommand the name is
	// matched against the command line's argv[0], otherwise against the
	// kernel's process name.
	Params         []string `json:"params,omitempty"`
	ParamMatch     string   `json:"param_match,omitempty"`
	FullCommand    bool     `json:"full_command,omitempty"`
	Weight         int      `json:"weight,omitempty"`
	Reverse        bool     `json:"reverse,omitempty"`
	Quorum         int      `json:"quorum,omitempty"` // 0: 1
	QuorumMax      int      `json:"quorum_max,omitempty"`
	HasQuorumMax   bool     `json:"has_quorum_max,omitempty"` // quorum_max 0 (with quorum 1): up while none runs
	ForkDelay      Duration `json:"fork_delay,omitempty"`
	TerminateDelay Duration `json:"terminate_delay,omitempty"`
}

// InitFile is a track file's init_file.
type InitFile struct {
	Value     int  `json:"value"`
	Overwrite bool `json:"overwrite,omitempty"`
}

// SyncGroup is a vrrp_sync_group block.
type SyncGroup struct {
	Pos          Pos       `json:"-"`
	Name         string    `json:"name"`
	Group        []string  `json:"group"`
	Notify       Notifiers `json:"notify"`
	SMTPAlert    bool      `json:"smtp_alert,omitempty"`
	TrackScripts []Track   `json:"track_script,omitempty"`
	TrackIfaces  []Track   `json:"track_interface,omitempty"`
	TrackFiles   []Track   `json:"track_file,omitempty"`
	TrackProcs   []Track   `json:"track_process,omitempty"`
	TrackBFDs    []Track   `json:"track_bfd,omitempty"`
	// TrackingWeight (sync_group_tracking_weight, or the deprecated
	// global_tracking) lets the members' own trackers keep their
	// weights (TrackWeights.Ignored).
	TrackingWeight bool `json:"sync_group_tracking_weight,omitempty"`
}

// Notifiers are the notify_* scripts of a VRRP instance or sync group.
type Notifiers struct {
	Master *Script `json:"master,omitempty"`
	Backup *Script `json:"backup,omitempty"`
	Fault  *Script `json:"fault,omitempty"`
	Stop   *Script `json:"stop,omitempty"`
	Any    *Script `json:"notify,omitempty"`
	// MasterRxLowerPri (notify_master_rx_lower_pri) runs, without
	// arguments, on every advert of a lower priority a MASTER instance
	// hears.
	MasterRxLowerPri *Script `json:"master_rx_lower_pri,omitempty"`
	// Deleted is notify_deleted: an instance a reload deletes is
	// notified as DELETED, not keepalived's default FAULT; Deleted.Cmd
	// (may be empty) runs then.
	Deleted *Script `json:"deleted,omitempty"`
}

// Track is one entry of track_interface, track_script or track_file.
type Track struct {
	Name      string `json:"name"`
	Weight    int    `json:"weight,omitempty"`
	Reverse   bool   `json:"reverse,omitempty"`
	HasWeight bool   `json:"has_weight,omitempty"`
	// NoReverse: the line says noreverse. A line with a weight but
	// neither word keeps its definition's reverse (keepalived 2.2.7);
	// see ReverseOf.
	NoReverse bool `json:"noreverse,omitempty"`
}

// ReverseOf is whether the line's adjustment is turned round, given its
// definition's reverse (a vrrp_script's, a track_file block's…): the
// line's word when it has one, else the definition's.
func (t Track) ReverseOf(def bool) bool {
	switch {
	case t.Reverse:
		return true
	case t.NoReverse:
		return false
	}
	return def
}

// kindTracks is one kind of track line of an instance or a sync group:
// the keyword (track_interface, track_script…) and its lines.
type kindTracks struct {
	Kind   string
	Tracks []Track
}

func kindLines(ifaces, scripts, files, procs, bfds []Track) []kindTracks {
	return []kindTracks{{"track_interface", ifaces}, {"track_script", scripts}, {"track_file", files}, {"track_process", procs}, {"track_bfd", bfds}}
}

// trackLines are the instance's track lines, kind by kind, in the order
// the writer puts them.
func (vi *VRRPInstance) trackLines() []kindTracks {
	return kindLines(vi.TrackIfaces, vi.TrackScripts, vi.TrackFiles, vi.TrackProcs, vi.TrackBFDs)
}

// trackLines are the sync group's track lines, as VRRPInstance.trackLines.
func (g *SyncGroup) trackLines() []kindTracks {
	return kindLines(g.TrackIfaces, g.TrackScripts, g.TrackFiles, g.TrackProcs, g.TrackBFDs)
}

// UnicastPeer is an entry of unicast_peer.
type UnicastPeer struct {
	Addr   netip.Addr `json:"addr"`
	MinTTL int        `json:"min_ttl,omitempty"`
	MaxTTL int        `json:"max_ttl,omitempty"`
}

// VIPAddr is an entry of virtual_ipaddress.
type VIPAddr struct {
	Pos     Pos          `json:"-"`
	Prefix  netip.Prefix `json:"prefix"`
	Brd     string       `json:"brd,omitempty"`
	Dev     string       `json:"dev,omitempty"`
	Scope   string       `json:"scope,omitempty"`
	Label   string       `json:"label,omitempty"`
	Peer    string       `json:"peer,omitempty"`
	NoTrack bool         `json:"no_track,omitempty"`
	NoDAD   bool         `json:"nodad,omitempty"`
	Extra   []string     `json:"extra,omitempty"` // other ip-address flags kept as written
	// TrackGroup (track_group, static addresses only) is the
	// track_group whose instances track Dev.
	TrackGroup string `json:"track_group,omitempty"`
}

// Route is an entry of virtual_routes, kept as its ip-route words plus the
// fields govs acts on.
type Route struct {
	Pos   Pos          `json:"-"`
	To    netip.Prefix `json:"to"`
	Src   netip.Addr   `json:"src,omitempty"`
	Via   netip.Addr   `json:"via,omitempty"`
	Dev   string       `json:"dev,omitempty"`
	Table string       `json:"table,omitempty"` // as written: a number or a name
	// TableID is Table's number: the name looked up in iproute2's
	// rt_tables files when the config was loaded (0: the main table).
	TableID int    `json:"table_id,omitempty"`
	Metric  int    `json:"metric,omitempty"`
	Scope   string `json:"scope,omitempty"`
	Type    string `json:"type,omitempty"` // blackhole, unreachable or prohibit; "" for a unicast route
	// NoTrack (no_track): a MASTER does not put the route back when it
	// goes.
	NoTrack bool `json:"no_track,omitempty"`
	// TrackGroup (static routes only): as VIPAddr.TrackGroup, for Dev.
	TrackGroup string `json:"track_group,omitempty"`
	// Nexthops make a multipath route: "via A or B" (keepalived's older
	// words) or "nexthop via A [dev IF] [weight N] [onlink] nexthop …".
	Nexthops []Nexthop `json:"nexthops,omitempty"`
	Onlink   bool      `json:"onlink,omitempty"`
	// Proto is the route's protocol as written (a number or an iproute2
	// name), ProtoID its number.
	Proto   string `json:"proto,omitempty"`
	ProtoID int    `json:"proto_id,omitempty"`
	// Route metrics of ip-route: mtu [lock] N, advmss, hoplimit,
	// initcwnd, initrwnd (0: not set).
	MTU      int      `json:"mtu,omitempty"`
	MTULock  bool     `json:"mtu_lock,omitempty"`
	AdvMSS   int      `json:"advmss,omitempty"`
	Hoplimit int      `json:"hoplimit,omitempty"`
	InitCwnd int      `json:"initcwnd,omitempty"`
	InitRwnd int      `json:"initrwnd,omitempty"`
	Words    []string `json:"words"`
}

// Nexthop is one path of a multipath route.
type Nexthop struct {
	Via    netip.Addr `json:"via,omitzero"`
	Dev    string     `json:"dev,omitempty"`
	Weight int        `json:"weight,omitempty"` // 1..256, 0: 1
	Onlink bool       `json:"onlink,omitempty"`
}

// Rule is an entry of virtual_rules, kept as its ip-rule words plus the
// fields govs acts on.
type Rule struct {
	Pos      Pos          `json:"-"`
	From     netip.Prefix `json:"from,omitzero"` // zero: all
	To       netip.Prefix `json:"to,omitzero"`
	Inet6    bool         `json:"inet6,omitempty"` // the family when from and to are both all
	Not      bool         `json:"not,omitempty"`
	Table    string       `json:"table,omitempty"` // as written
	TableID  int          `json:"table_id,omitempty"`
	Priority int          `json:"priority,omitempty"`
	FWMark   uint32       `json:"fwmark,omitempty"`
	FWMask   uint32       `json:"fwmask,omitempty"`
	HasMask  bool         `json:"has_mask,omitempty"`
	Tos      int          `json:"tos,omitempty"`
	Iif      string       `json:"iif,omitempty"`
	Oif      string       `json:"oif,omitempty"`
	IPProto  int          `json:"ipproto,omitempty"`
	Sport    [2]uint16    `json:"sport,omitzero"`
	Dport    [2]uint16    `json:"dport,omitzero"`
	Type     string       `json:"type,omitempty"`     // blackhole, unreachable or prohibit
	NoTrack  bool         `json:"no_track,omitempty"` // as Route.NoTrack
	// TrackGroup (static rules only): as VIPAddr.TrackGroup, for Iif.
	TrackGroup string   `json:"track_group,omitempty"`
	Words      []string `json:"words"`
	seq        int      // the order it was read in, included files in place
}

// Auth is the VRRPv2 authentication block.
type Auth struct {
	Type string `json:"auth_type"` // PASS or AH
	Pass string `json:"auth_pass"`
}

// VRRPInstance is a vrrp_instance block.
type VRRPInstance struct {
	// syncIf is the instance's deprecated lvs_sync_daemon_interface, kept
	// so that the writer writes it back where it was
	syncIf string

	Pos             Pos           `json:"-"`
	Name            string        `json:"name"`
	State           string        `json:"state,omitempty"` // MASTER or BACKUP (initial)
	Interface       string        `json:"interface"`
	VirtualRouterID int           `json:"virtual_router_id"`
	Priority        int           `json:"priority"`
	AdvertInt       Duration      `json:"advert_int"`
	Version         int           `json:"version,omitempty"` // 0 = global vrrp_version
	NoPreempt       bool          `json:"nopreempt,omitempty"`
	PreemptDelay    Duration      `json:"preempt_delay,omitempty"`
	UnicastSrcIP    netip.Addr    `json:"unicast_src_ip,omitempty"`
	UnicastPeers    []UnicastPeer `json:"unicast_peer,omitempty"`
	UnicastTTL      int           `json:"unicast_ttl,omitempty"`
	CheckUnicastSrc bool          `json:"check_unicast_src,omitempty"`
	// UnicastFaultNoPeer (unicast_fault_no_peer): with no unicast peer
	// the instance stays in FAULT instead of advertising by multicast.
	UnicastFaultNoPeer bool `json:"unicast_fault_no_peer,omitempty"`
	// OldUnicastChecksum (old_unicast_checksum [never]): "config" sends
	// and expects the VRRPv3 unicast checksum of keepalived before 1.3.6,
	// "never" turns off detecting it; "" detects it.
	OldUnicastChecksum string `json:"old_unicast_checksum,omitempty"`
	// McastDstIP (mcast_dst_ip) is the instance's multicast group
	// instead of vrrp_mcast_group4/6.
	McastDstIP netip.Addr `json:"mcast_dst_ip,omitzero"`
	// DownTimerAdverts (down_timer_adverts) is the master-down timer in
	// adverts (1-100; 0: vrrp_down_timer_adverts, else 3).
	DownTimerAdverts int `json:"down_timer_adverts,omitempty"`
	// PromoteSecondaries sets the interface's promote_secondaries
	// (IPv4), so that deleting one address of a subnet keeps the others.
	PromoteSecondaries bool `json:"promote_secondaries,omitempty"`
	// KernelRxBufSize (kernel_rx_buf_size) is the advert socket's receive
	// buffer in bytes (0: vrrp_rx_bufs_policy).
	KernelRxBufSize  int        `json:"kernel_rx_buf_size,omitempty"`
	NotifyPrioChange bool       `json:"notify_priority_changes,omitempty"`
	McastSrcIP       netip.Addr `json:"mcast_src_ip,omitempty"`
	Auth             *Auth      `json:"authentication,omitempty"`
	TrackIfaces      []Track    `json:"track_interface,omitempty"`
	TrackScripts     []Track    `json:"track_script,omitempty"`
	TrackFiles       []Track    `json:"track_file,omitempty"`
	TrackProcs       []Track    `json:"track_process,omitempty"`
	TrackBFDs        []Track    `json:"track_bfd,omitempty"`
	DontTrackPrimary bool       `json:"dont_track_primary,omitempty"`
	TrackSrcIP       bool       `json:"track_src_ip,omitempty"`
	VIPs             []VIPAddr  `json:"virtual_ipaddress,omitempty"`
	VIPsExcluded     []VIPAddr  `json:"virtual_ipaddress_excluded,omitempty"`
	Routes           []Route    `json:"virtual_routes,omitempty"`
	Rules            []Rule     `json:"virtual_rules,omitempty"`
	Notify           Notifiers  `json:"notify"`
	SMTPAlert        bool       `json:"smtp_alert,omitempty"`
	// Accept is accept (true) or no_accept (false); nil: the default,
	// see GlobalDefs.AcceptMode.
	Accept *bool `json:"accept,omitempty"`
	// Strict is strict_mode [BOOL]; nil: global_defs' vrrp_strict.
	Strict *bool `json:"strict_mode,omitempty"`
	// UseVMAC is use_vmac: the virtual addresses live on a macvlan
	// interface carrying the VRRP virtual MAC (00:00:5e:00:01:VRID, or
	// :02: for IPv6), named VMACName (default vrrp.VRID), with VMACAddr
	// instead of that MAC when set; adverts go out of it unless
	// VMACXmitBase (vmac_xmit_base).
	UseVMAC      bool   `json:"use_vmac,omitempty"`
	VMACName     string `json:"vmac_interface,omitempty"`
	VMACAddr     string `json:"vmac_address,omitempty"`
	VMACXmitBase bool   `json:"vmac_xmit_base,omitempty"`
	// NativeIPv6 (native_ipv6) makes an instance without addresses an
	// IPv6 (VRRPv3) one; with IPv4 addresses it is an error.
	NativeIPv6 bool `json:"native_ipv6,omitempty"`

	// The GARP and advert settings below are the instance's own (nil:
	// not set, the global_defs default applies; see
	// GlobalDefs.InstanceSettings for the values in effect).
	GarpSettings
	LowerPrioNoAdvert    *bool `json:"lower_prio_no_advert,omitempty"`
	HigherPrioSendAdvert *bool `json:"higher_prio_send_advert,omitempty"`
	// GarpExtraIf is garp_extra_if [all] SECS (0: off).
	GarpExtraIf *GarpExtraIf `json:"garp_extra_if,omitempty"`
	// SkipCheckAdvAddr is skip_check_adv_addr, kept so that a rewrite
	// keeps it: govs never drops an advert for its address list, so
	// skipping that check changes nothing.
	SkipCheckAdvAddr *bool `json:"skip_check_adv_addr,omitempty"`
}

// isIPv6 is the instance's family as VRRP reads it: its first virtual
// address's, else its source's, else its first unicast peer's.
func (vi *VRRPInstance) isIPv6() bool {
	v6, known := vi.addrFamily()
	return v6 || !known && vi.NativeIPv6
}

// addrFamily is the family the instance's addresses give it (its first
// virtual address, else its source, else its first peer); known is false
// when it has none.
func (vi *VRRPInstance) addrFamily() (v6, known bool) {
	switch {
	case len(vi.VIPs) > 0:
		return vi.VIPs[0].Prefix.Addr().Is6(), true
	case vi.UnicastSrcIP.IsValid():
		return vi.UnicastSrcIP.Is6(), true
	case vi.McastSrcIP.IsValid():
		return vi.McastSrcIP.Is6(), true
	case len(vi.UnicastPeers) > 0:
		return vi.UnicastPeers[0].Addr.Is6(), true
	}
	return false, false
}

// VMACInterface is the name of the instance's use_vmac interface: the
// one configured, else PREFIX.VRID with global_defs' vmac_prefix
// (keepalived's default "vrrp").
func (vi *VRRPInstance) VMACInterface(prefix string) string {
	if vi.VMACName != "" {
		return vi.VMACName
	}
	if prefix == "" {
		prefix = "vrrp"
	}
	return fmt.Sprintf("%s.%d", prefix, vi.VirtualRouterID)
}

// VSGroupEntry is one line of a virtual_server_group: an address range
// with a port, or a firewall mark.
type VSGroupEntry struct {
	Pos    Pos        `json:"-"`
	First  netip.Addr `json:"first,omitempty"`
	Last   netip.Addr `json:"last,omitempty"` // == First for one address
	Port   uint16     `json:"port,omitempty"`
	FWMark uint32     `json:"fwmark,omitempty"`
	V6     bool       `json:"inet6,omitempty"` // fwmark family
}

// VirtualServerGroup is a virtual_server_group block.
type VirtualServerGroup struct {
	Pos     Pos            `json:"-"`
	Name    string         `json:"name"`
	Entries []VSGroupEntry `json:"entries"`
}

// SNATPool is a govs_snat_pool block: the source addresses and ports a
// source-NAT (full-NAT) service rewrites client sources to.
type SNATPool struct {
	Pos       Pos          `json:"-"`
	Name      string       `json:"name"`
	Addresses []netip.Addr `json:"addresses"`
	PortMin   uint16       `json:"port_min"`
	PortMax   uint16       `json:"port_max"`
}

// BGP is the govs_bgp block: the director announces the addresses of its
// virtual services that are up to routers over BGP, as host routes, so
// that several active directors share them by ECMP.
type BGP struct {
	Pos      Pos        `json:"-"`
	LocalAS  uint32     `json:"local_as"`
	RouterID netip.Addr `json:"router_id,omitzero"`
	// ListenPort also accepts sessions there (0: govs only connects).
	ListenPort int `json:"listen_port,omitempty"`
	// HoldTime, Keepalive and ConnectRetry (seconds) are the neighbors'
	// defaults (0: 90, hold/3 and 5).
	HoldTime     int `json:"hold_time,omitempty"`
	Keepalive    int `json:"keepalive,omitempty"`
	ConnectRetry int `json:"connect_retry,omitempty"`
	// NextHop and NextHop6 replace this end of the session as the next
	// hop of IPv4 and IPv6 routes.
	NextHop  netip.Addr `json:"next_hop,omitzero"`
	NextHop6 netip.Addr `json:"next_hop6,omitzero"`
	// Communities are "ASN:VALUE" or a well-known name (no-export,
	// no-advertise, no-export-subconfed, graceful-shutdown).
	Communities []string `json:"communities,omitempty"`
	MED         *uint32  `json:"med,omitempty"`
	LocalPref   *uint32  `json:"local_pref,omitempty"`
	// Prepend repeats the local AS this many more times in the AS path.
	Prepend int `json:"as_path_prepend,omitempty"`
	// AnnounceDelay holds the announcement of an address whose service
	// just came up (at start, or after its quorum was lost) this long,
	// so that the health checks find every real server that is up
	// before routers send flows (nil: DefaultBGPAnnounceDelay).
	AnnounceDelay *Duration      `json:"announce_delay,omitempty"`
	Neighbors     []*BGPNeighbor `json:"neighbors"`
}

// DefaultBGPAnnounceDelay is announce_delay's default.
const DefaultBGPAnnounceDelay = 3 * time.Second

// BGP timer defaults (seconds).
const (
	DefaultBGPHoldTime     = 90
	DefaultBGPConnectRetry = 5
)

// BGPTimers are the hold time and keepalive interval (seconds) of
// neighbor n: its own, else the block's; a keepalive not given is a
// third of the hold time in force (so a neighbor's short hold time is
// never paired with the block's long keepalive).
func BGPTimers(b *BGP, n *BGPNeighbor) (hold, keepalive int) {
	hold, keepalive = n.HoldTime, n.Keepalive
	if hold == 0 {
		hold = b.HoldTime
		if keepalive == 0 {
			keepalive = b.Keepalive
		}
	}
	if hold == 0 {
		hold = DefaultBGPHoldTime
	}
	if keepalive == 0 {
		keepalive = max(1, hold/3)
	}
	return hold, keepalive
}

// BGPNeighbor is a neighbor block of govs_bgp: one router.
type BGPNeighbor struct {
	Pos          Pos        `json:"-"`
	Address      netip.Addr `json:"address"`
	RemoteAS     uint32     `json:"remote_as"`
	LocalAddress netip.Addr `json:"local_address,omitzero"`
	Port         uint16     `json:"port,omitempty"` // 0: 179
	Password     string     `json:"password,omitempty"`
	Passive      bool       `json:"passive,omitempty"`
	Multihop     int        `json:"ebgp_multihop,omitempty"`
	HoldTime     int        `json:"hold_time,omitempty"`
	Keepalive    int        `json:"keepalive,omitempty"`
	ConnectRetry int        `json:"connect_retry,omitempty"`
	// BFD runs Bidirectional Forwarding Detection (RFC 5880/5881) with
	// the router, so that it takes a director that dies out of its ECMP
	// group in about BFDInterval × BFDMultiplier instead of the hold
	// time. BFDInterval is in milliseconds (0: 300), BFDMultiplier 0: 3.
	BFD           bool `json:"bfd,omitempty"`
	BFDInterval   int  `json:"bfd_interval,omitempty"`
	BFDMultiplier int  `json:"bfd_multiplier,omitempty"`
}

// PortRange is an inclusive range of ports.
type PortRange struct {
	From uint16 `json:"from"`
	To   uint16 `json:"to"`
}

// Tunnel options of lvs_method TUN.
type Tunnel struct {
	Type string `json:"type,omitempty"` // ipip (default), gue, gre
	Port uint16 `json:"port,omitempty"` // GUE port
	Csum string `json:"csum,omitempty"` // nocsum, csum, remcsum
}

// SorryServer is the server that takes traffic when no real server can.
type SorryServer struct {
	Pos    Pos        `json:"-"`
	Addr   netip.Addr `json:"addr"`
	Port   uint16     `json:"port,omitempty"`
	Method Method     `json:"method,omitempty"`
}

// CheckDefaults are the checker timing options that a virtual server or
// real server may set for the checkers below it. Nil means inherited.
type CheckDefaults struct {
	DelayLoop        *Duration `json:"delay_loop,omitempty"`
	ConnectTimeout   *Duration `json:"connect_timeout,omitempty"`
	Retry            *int      `json:"retry,omitempty"`
	DelayBeforeRetry *Duration `json:"delay_before_retry,omitempty"`
	Warmup           *Duration `json:"warmup,omitempty"`
	Alpha            *bool     `json:"alpha,omitempty"`
}

// VirtualServer is a virtual_server block.
type VirtualServer struct {
	Pos Pos `json:"-"`
	// Exactly one of (Addr and Ports), FWMark or Group identifies the
	// service.
	Addr   netip.Addr  `json:"addr,omitempty"`
	Ports  []PortRange `json:"ports,omitempty"` // one port, or a govs list/range
	FWMark uint32      `json:"fwmark,omitempty"`
	Group  string      `json:"group,omitempty"`

	Name        string   `json:"name,omitempty"`
	Protocols   []Proto  `json:"protocol"` // default [TCP]
	IPFamily    string   `json:"ip_family,omitempty"`
	Scheduler   string   `json:"lvs_sched"`
	SchedFlags  []string `json:"sched_flags,omitempty"`
	MHTableSize int      `json:"mh_table_size,omitempty"`
	OnePacket   bool     `json:"ops,omitempty"`
	Method      Method   `json:"lvs_method"`
	Tunnel      *Tunnel  `json:"tunnel,omitempty"`

	Persistence            Duration `json:"persistence_timeout,omitempty"`
	PersistenceGranularity string   `json:"persistence_granularity,omitempty"`
	PersistenceEngine      string   `json:"persistence_engine,omitempty"`

	CheckDefaults
	Quorum             int          `json:"quorum"`
	Hysteresis         int          `json:"hysteresis,omitempty"`
	QuorumUp           *Script      `json:"quorum_up,omitempty"`
	QuorumDown         *Script      `json:"quorum_down,omitempty"`
	Sorry              *SorryServer `json:"sorry_server,omitempty"`
	SorryServerInhibit bool         `json:"sorry_server_inhibit,omitempty"`
	InhibitOnFailure   bool         `json:"inhibit_on_failure,omitempty"`
	Omega              bool         `json:"omega,omitempty"`
	HASuspend          bool         `json:"ha_suspend,omitempty"`
	Virtualhost        string       `json:"virtualhost,omitempty"`
	SMTPAlert          *bool        `json:"smtp_alert,omitempty"`

	// Piranha (nanny) semantics, govs extensions.
	ServiceTimeout Duration `json:"service_timeout,omitempty"`
	Reentry        Duration `json:"reentry,omitempty"`
	QuiesceServer  bool     `json:"quiesce_server,omitempty"`

	// govs extensions.
	ProxyProtocol int    `json:"proxy_protocol,omitempty"`
	SNATPool      string `json:"snat_pool,omitempty"`

	RealServers []*RealServer `json:"real_servers"`
}

// Port returns the virtual port of a single-port service (0 otherwise).
func (vs *VirtualServer) Port() uint16 {
	if len(vs.Ports) == 1 && vs.Ports[0].From == vs.Ports[0].To {
		return vs.Ports[0].From
	}
	return 0
}

// RealServer is a real_server block.
type RealServer struct {
	Pos              Pos        `json:"-"`
	Addr             netip.Addr `json:"addr"`
	Port             uint16     `json:"port,omitempty"` // 0 = the virtual port
	Name             string     `json:"name,omitempty"`
	Weight           int        `json:"weight"`
	Method           Method     `json:"lvs_method,omitempty"` // "" = the virtual server's
	Tunnel           *Tunnel    `json:"tunnel,omitempty"`
	UThreshold       int        `json:"uthreshold,omitempty"`
	LThreshold       int        `json:"lthreshold,omitempty"`
	NotifyUp         *Script    `json:"notify_up,omitempty"`
	NotifyDown       *Script    `json:"notify_down,omitempty"`
	InhibitOnFailure *bool      `json:"inhibit_on_failure,omitempty"`
	SMTPAlert        *bool      `json:"smtp_alert,omitempty"`
	// Virtualhost is the Host of this server's HTTP_GET/SSL_GET checks
	// without their own (before the virtual server's).
	Virtualhost string `json:"virtualhost,omitempty"`
	CheckDefaults
	Checks []*Check `json:"checks,omitempty"`
}

// URL is a url block of HTTP_GET / SSL_GET.
type URL struct {
	Path         string      `json:"path"`
	Digest       string      `json:"digest,omitempty"`
	StatusCodes  []CodeRange `json:"status_code,omitempty"` // default 200-299
	Virtualhost  string      `json:"virtualhost,omitempty"`
	Regex        string      `json:"regex,omitempty"`
	RegexNoMatch bool        `json:"regex_no_match,omitempty"`
}

// CodeRange is an inclusive range of HTTP status codes.
type CodeRange struct{ From, To int }

// Check kinds.
const (
	CheckTCP  = "TCP_CHECK"
	CheckHTTP = "HTTP_GET"
	CheckSSL  = "SSL_GET"
	CheckSMTP = "SMTP_CHECK"
	CheckDNS  = "DNS_CHECK"
	CheckMisc = "MISC_CHECK"
	CheckUDP  = "UDP_CHECK"
	CheckPing = "PING_CHECK"
	CheckFile = "FILE_CHECK"
	CheckBFD  = "BFD_CHECK"
)

// Check is one health checker block of a real server.
type Check struct {
	Pos  Pos    `json:"-"`
	Kind string `json:"kind"`

	ConnectIP   netip.Addr `json:"connect_ip,omitempty"`
	ConnectPort uint16     `json:"connect_port,omitempty"`
	BindTo      netip.Addr `json:"bindto,omitempty"`
	BindPort    uint16     `json:"bind_port,omitempty"`
	BindIf      string     `json:"bind_if,omitempty"`
	FWMark      uint32     `json:"fwmark,omitempty"`
	CheckDefaults
	LogAllFailures bool `json:"log_all_failures,omitempty"`

	// TCP_CHECK with Piranha send/expect (govs extension).
	Send     string `json:"send,omitempty"`
	Expect   string `json:"expect,omitempty"`
	UseRegex bool   `json:"use_regex,omitempty"`

	// HTTP_GET / SSL_GET.
	HTTPProtocol string `json:"http_protocol,omitempty"`
	URLs         []URL  `json:"urls,omitempty"`
	Virtualhost  string `json:"virtualhost,omitempty"`
	EnableSNI    bool   `json:"enable_sni,omitempty"`
	SNIName      string `json:"sni_name,omitempty"`
	TLSVerify    bool   `json:"tls_verify,omitempty"` // govs extension

	// SMTP_CHECK.
	HeloName string `json:"helo_name,omitempty"`

	// DNS_CHECK.
	DNSType string `json:"type,omitempty"`
	DNSName string `json:"name,omitempty"`

	// BFD_CHECK: the bfd_instance followed.
	BFDName string `json:"bfd_name,omitempty"`

	// MISC_CHECK (and Piranha send_program: %h and %p are substituted).
	MiscPath    string   `json:"misc_path,omitempty"`
	MiscTimeout Duration `json:"misc_timeout,omitempty"`
	MiscDynamic bool     `json:"misc_dynamic,omitempty"`
	User        string   `json:"user,omitempty"`

	// UDP_CHECK.
	Payload        string `json:"payload,omitempty"`       // hex
	RequireReply   string `json:"require_reply,omitempty"` // hex, X wildcards
	HasRequire     bool   `json:"has_require_reply,omitempty"`
	MinReplyLength int    `json:"min_reply_length,omitempty"`
	MaxReplyLength int    `json:"max_reply_length,omitempty"`

	// FILE_CHECK.
	TrackFile  string `json:"track_file,omitempty"`
	FileWeight *int   `json:"weight,omitempty"` // nil: not set (multiplier 1); 0 is a value (fail on non-zero)
	Reverse    bool   `json:"reverse,omitempty"`
	Dynamic    bool   `json:"dynamic,omitempty"`
}

// NoSwap says whether govs locks its memory in RAM (any of the
// *_no_swap keywords).
func (g *GlobalDefs) NoSwap() bool { return g.VRRPNoSwap || g.CheckerNoSwap || g.BFDNoSwap }

// SNMPEnabled says whether govs serves an SNMP MIB (over AgentX).
func (g *GlobalDefs) SNMPEnabled() bool {
	return g.SNMPVRRP || g.SNMPChecker || g.SNMPRFCv2 || g.SNMPRFCv3
}

// DefaultSNMPSocket is keepalived's (and net-snmp's) AgentX socket.
const DefaultSNMPSocket = "unix:/var/agentx/master"

// SNMPSocketAddr reads snmp_socket as keepalived does: unix:PATH,
// tcp:HOST:PORT, a path, or HOST:PORT; it returns the network and
// address to dial.
func SNMPSocketAddr(s string) (network, address string, err error) {
	if s == "" {
		s = DefaultSNMPSocket
	}
	switch {
	case strings.HasPrefix(s, "unix:"):
		network, address = "unix", strings.TrimPrefix(s, "unix:")
	case strings.HasPrefix(s, "tcp:"):
		network, address = "tcp", strings.TrimPrefix(s, "tcp:")
	case strings.HasPrefix(s, "/"):
		network, address = "unix", s
	default:
		network, address = "tcp", s
	}
	if network == "tcp" {
		if _, _, err := net.SplitHostPort(address); err != nil {
			return "", "", fmt.Errorf("%q is not unix:PATH or tcp:HOST:PORT", s)
		}
	}
	if address == "" {
		return "", "", fmt.Errorf("%q names no socket", s)
	}
	return network, address, nil
}

// TrackWeights says, for every instance and sync group at once, where
// keepalived does not apply tracker weights (Config.TrackWeightRules).
type TrackWeights struct {
	why    map[string]string // instance name → why
	owners map[*SyncGroup]bool
}

// Ignored says why keepalived does not apply the weights of an
// instance's own trackers: "SYNC group" for a member of a
// vrrp_sync_group without sync_group_tracking_weight, "address owner"
// for priority 255; "" when it applies them. keepalived 2.2.7 then
// drops a track_script or track_bfd with a weight and a track_file of a
// weight other than 0 and 1, and tracks one of weight 1 with weight 0
// ("ignoring ... due to SYNC group" in its log); it logs the same of a
// weighted track_interface of a sync group member but applies its
// weight all the same, and does not track an address owner's.
func (t TrackWeights) Ignored(vi *VRRPInstance) string { return t.why[vi.Name] }

// GroupHasOwner says whether a member of g is an address owner:
// keepalived then sets the weights of g's own trackers to 0.
func (t TrackWeights) GroupHasOwner(g *SyncGroup) bool { return t.owners[g] }

// TrackWeightRules computes TrackWeights, in one pass over the
// instances and groups (a template may make tens of thousands).
func (c *Config) TrackWeightRules() TrackWeights {
	t := TrackWeights{why: map[string]string{}, owners: map[*SyncGroup]bool{}}
	owner := map[string]bool{}
	for _, vi := range c.VRRPInstances {
		if vi.AddressOwner() {
			owner[vi.Name] = true
			t.why[vi.Name] = "address owner"
		}
	}
	for _, g := range c.SyncGroups {
		for _, m := range g.Group {
			if !g.TrackingWeight {
				t.why[m] = "SYNC group"
			}
			t.owners[g] = t.owners[g] || owner[m]
		}
	}
	return t
}

// AddressOwner: priority 255, or state MASTER without a priority.
func (vi *VRRPInstance) AddressOwner() bool {
	return vi.Priority == 255 || vi.Priority < 0 && vi.State == "MASTER"
}
