package vrrp

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"time"
)

// Defaults taken from keepalived.conf(5) (keepalived 2.2/2.4).
const (
	DefaultAdvertInterval        = time.Second
	DefaultVersion               = 2
	DefaultPriority              = 100
	DefaultDownTimerAdverts      = 3
	DefaultGARPMasterDelay       = 5 * time.Second
	DefaultGARPMasterRepeat      = 5
	DefaultGARPMasterRefreshRep  = 1
	DefaultScriptInterval        = time.Second
	DefaultScriptRise            = 1
	DefaultScriptFall            = 1
	MulticastGroup4              = "224.0.0.18"
	MulticastGroup6              = "ff02::12"
	PriorityOwner                = 255
	PriorityStop                 = 0
	maxTrackWeight               = 253
	maxAuthPassLen               = 8
	maxAdvertCentiseconds        = 4095
	defaultTransitionHistorySize = 32
)

// InstanceConfig mirrors keepalived's vrrp_instance block. The zero value of
// an optional field means keepalived's default; call WithDefaults to fill
// them in.
type InstanceConfig struct {
	Name string `json:"name"`
	// State is the initial state: "MASTER" or "BACKUP" (default BACKUP).
	State     string `json:"state,omitempty"`
	Interface string `json:"interface"`
	VRID      int    `json:"virtual_router_id"`
	// Priority 1..255; 255 is the address owner. Default 100.
	Priority int `json:"priority,omitempty"`
	// AdvertInterval is advert_int; fractional values are allowed for
	// VRRPv3 (centisecond resolution), VRRPv2 rounds to whole seconds.
	AdvertInterval time.Duration `json:"advert_int,omitempty"`
	// Version 2 or 3 (default 2; IPv6 instances are always 3).
	Version int `json:"version,omitempty"`
	// NoPreempt is keepalived's nopreempt (preempt is the default).
	NoPreempt    bool          `json:"nopreempt,omitempty"`
	PreemptDelay time.Duration `json:"preempt_delay,omitempty"`
	// NoAccept is RFC 5798's Accept_Mode off (no_accept, or strict
	// mode's default): while the instance holds its addresses the host
	// drops packets addressed to them (and sent from them), except the
	// virtual services' traffic (LinuxSystem.SetFirewall, which the
	// director calls with the instances). The director sets it only
	// below priority 255 (the address owner always accepts).
	NoAccept bool `json:"no_accept,omitempty"`
	// DownTimerAdverts is down_timer_adverts (default 3).
	DownTimerAdverts int `json:"down_timer_adverts,omitempty"`

	// UnicastSrcIP is the source address of adverts (unicast_src_ip or
	// mcast_src_ip); unset means the interface's primary address (IPv4) or
	// link-local address (IPv6).
	UnicastSrcIP netip.Addr `json:"unicast_src_ip,omitzero"`
	// McastSrcIP is keepalived's mcast_src_ip, an alias of UnicastSrcIP
	// (UnicastSrcIP wins when both are set).
	McastSrcIP netip.Addr `json:"mcast_src_ip,omitzero"`
	// UnicastPeers switches the instance to unicast adverts.
	UnicastPeers []netip.Addr `json:"unicast_peer,omitempty"`
	// CheckUnicastSrc (check_unicast_src) drops unicast adverts whose
	// source is not one of UnicastPeers.
	CheckUnicastSrc bool `json:"check_unicast_src,omitempty"`
	// UnicastPeerTTL are the unicast_peer min_ttl/max_ttl ranges: an
	// advert from that peer whose TTL (hop limit) is outside its range is
	// dropped.
	UnicastPeerTTL []PeerTTL `json:"unicast_peer_ttl,omitempty"`
	// UnicastTTL is the TTL of unicast adverts (default 255).
	UnicastTTL int `json:"unicast_ttl,omitempty"`
	// MulticastGroup overrides 224.0.0.18 / ff02::12 (mcast_dst_ip).
	MulticastGroup netip.Addr `json:"mcast_dst_ip,omitzero"`
	// OldUnicastChecksum (old_unicast_checksum) is about the checksum of
	// IPv4 VRRPv3 unicast adverts. keepalived before 1.3.6 made its
	// pseudo-header with the multicast group (OldChecksumGroup) as the
	// destination instead of the peer. "config": send and expect that
	// checksum. "": expect the standard one, and switch to the old one
	// for good when a peer's advert checks only that way (as keepalived
	// does). "never": do not switch.
	OldUnicastChecksum string `json:"old_unicast_checksum,omitempty"`
	// LogUnknownVRIDs (log_unknown_vrids) logs adverts on the instance's
	// interface whose VRID no instance there has.
	LogUnknownVRIDs bool `json:"log_unknown_vrids,omitempty"`
	// RxBufSize and RxBufMTUs make the advert socket's receive buffer:
	// RxBufSize bytes plus RxBufMTUs times the interface's MTU (both 0:
	// the system's). The director sums there, as keepalived does for a
	// socket, what each instance sharing it asks for (kernel_rx_buf_size,
	// vrrp_rx_bufs_policy); see AdvertLen.
	RxBufSize int `json:"rx_buf_size,omitempty"`
	RxBufMTUs int `json:"rx_buf_mtus,omitempty"`
	// OldChecksumGroup is that destination: the global IPv4 group
	// (vrrp_mcast_group4), not mcast_dst_ip; unset means 224.0.0.18.
	OldChecksumGroup netip.Addr `json:"old_checksum_group,omitzero"`

	// AuthPass is authentication { auth_type PASS; auth_pass X } (VRRPv2
	// only, at most 8 bytes); with AuthAH (auth_type AH, IPv4 VRRPv2
	// only) it is the key of the IPsec AH header the adverts carry
	// instead (ah.go).
	AuthPass string `json:"auth_pass,omitempty"`
	AuthAH   bool   `json:"auth_ah,omitempty"`

	VirtualIPs []VirtualIP `json:"virtual_ipaddress,omitempty"`
	// VirtualIPsExcluded are installed and announced like VirtualIPs but
	// not carried in adverts (any address family).
	VirtualIPsExcluded []VirtualIP    `json:"virtual_ipaddress_excluded,omitempty"`
	VirtualRoutes      []VirtualRoute `json:"virtual_routes,omitempty"`
	// VirtualRules are policy-routing rules installed with the virtual
	// routes (virtual_rules).
	VirtualRules []VirtualRule `json:"virtual_rules,omitempty"`

	TrackInterfaces []TrackInterface `json:"track_interface,omitempty"`
	TrackScripts    []TrackScript    `json:"track_script,omitempty"`
	TrackFiles      []TrackFile      `json:"track_file,omitempty"`
	TrackProcesses  []TrackProcess   `json:"track_process,omitempty"`
	TrackBFDs       []TrackBFD       `json:"track_bfd,omitempty"`
	// NotifyPriorityChanges (notify_priority_changes) notifies every
	// change of the effective priority that comes without a change of
	// state (the notify script, with the current state).
	NotifyPriorityChanges bool `json:"notify_priority_changes,omitempty"`
	// TrackSrcIP (track_src_ip): when the adverts' source address goes
	// away the instance stays in FAULT until that address is back;
	// without it, another source is chosen when none is configured.
	TrackSrcIP bool `json:"track_src_ip,omitempty"`
	// UnicastFaultNoPeer (unicast_fault_no_peer): an instance without
	// unicast peers stays in FAULT instead of advertising by multicast.
	UnicastFaultNoPeer bool `json:"unicast_fault_no_peer,omitempty"`
	// DontTrackPrimary stops the implicit FAULT on Interface going down.
	DontTrackPrimary bool `json:"dont_track_primary,omitempty"`

	GARPMasterDelay         time.Duration `json:"garp_master_delay,omitempty"`
	GARPMasterRepeat        int           `json:"garp_master_repeat,omitempty"`
	GARPMasterRefresh       time.Duration `json:"garp_master_refresh,omitempty"`
	GARPMasterRefreshRepeat int           `json:"garp_master_refresh_repeat,omitempty"`
	// GARPDelay paces gratuitous ARPs (vrrp_garp_interval) and
	// unsolicited neighbour advertisements (vrrp_gna_interval) on the
	// interfaces no garp_group lists: one packet per interval on each
	// interface, whatever instance sends it (default 0: no pause).
	GARPDelay GARPDelay `json:"garp_delay,omitzero"`
	// GARPGroups are the garp_group intervals of the interfaces a group
	// lists; the interfaces of one group share one pace (Pace).
	GARPGroups map[string]GARPDelay `json:"garp_groups,omitempty"`
	// GARPLowerPrioRepeat is how many GARPs a MASTER sends when it hears
	// a lower priority master (split brain healing); 0 means
	// GARPMasterRepeat unless NoLowerPrioGARP.
	GARPLowerPrioRepeat int `json:"garp_lower_prio_repeat,omitempty"`
	// GARPLowerPrioDelay, when not 0, sends a second such burst this long
	// after the first (garp_lower_prio_delay).
	GARPLowerPrioDelay time.Duration `json:"garp_lower_prio_delay,omitempty"`
	// LowerPrioNoAdvert: a MASTER does not answer a lower priority advert
	// with an immediate advert of its own.
	LowerPrioNoAdvert bool `json:"lower_prio_no_advert,omitempty"`
	// HigherPrioSendAdvert: a MASTER sends one more advert before it
	// yields to a higher priority one.
	HigherPrioSendAdvert bool `json:"higher_prio_send_advert,omitempty"`
	// GARPExtraIf (garp_extra_if), when not 0, sends one GARP/NA this
	// often while MASTER for the virtual addresses on an interface the
	// adverts do not go out of: by default only those on the use_vmac
	// interface (when the adverts go out of the parent), with
	// GARPExtraIfAll those on any other interface too. Switches learn
	// the MAC of such an interface from nothing else.
	GARPExtraIf    time.Duration `json:"garp_extra_if,omitempty"`
	GARPExtraIfAll bool          `json:"garp_extra_if_all,omitempty"`
	// NoGARPDelay disables the delayed second burst (keepalived:
	// garp_master_delay 0).
	NoGARPDelay bool `json:"-"`
	// NoLowerPrioGARP: no GARPs for a lower priority master (keepalived:
	// garp_lower_prio_repeat 0).
	NoLowerPrioGARP bool `json:"-"`

	Notify    NotifyScripts `json:"notify,omitzero"`
	SMTPAlert bool          `json:"smtp_alert,omitempty"`

	// VMAC is the name of the use_vmac interface, "" without use_vmac: a
	// macvlan on Interface with the VRRP virtual MAC (VMACAddr when set,
	// else 00:00:5e:00:01:VRID, 00:00:5e:00:02:VRID for IPv6). It holds
	// the virtual addresses (those without a dev of their own) and,
	// unless VMACXmitBase, sends and receives the adverts.
	VMAC         string           `json:"use_vmac,omitempty"`
	VMACAddr     net.HardwareAddr `json:"vmac_address,omitempty"`
	VMACXmitBase bool             `json:"vmac_xmit_base,omitempty"`
	// PromoteSecondaries sets the interface's promote_secondaries sysctl
	// (IPv4) while the instance's socket is open, as keepalived's
	// promote_secondaries: deleting one address of a subnet (a VIP)
	// then keeps the others of that subnet. The value it had comes back
	// when the last socket that set it closes.
	PromoteSecondaries bool `json:"promote_secondaries,omitempty"`

	// defaulted is set by WithDefaults so it is idempotent.
	defaulted bool
}

// NotifyScripts are the notify_* scripts of an instance or sync group,
// passed through untouched to the Notifier.
type NotifyScripts struct {
	Master string `json:"notify_master,omitempty"`
	Backup string `json:"notify_backup,omitempty"`
	Fault  string `json:"notify_fault,omitempty"`
	Stop   string `json:"notify_stop,omitempty"`
	Notify string `json:"notify,omitempty"`
	// MasterRxLowerPri runs on every lower-priority advert a MASTER hears.
	MasterRxLowerPri string `json:"notify_master_rx_lower_pri,omitempty"`
	// Deleted is notify_deleted ("-" without a script): it makes the
	// director notify a deletion by a reload as DELETED.
	Deleted string `json:"notify_deleted,omitempty"`
}

// VirtualIP is one virtual_ipaddress line:
// IP[/MASK] [brd IP] [dev IF] [scope SCOPE] [label LABEL].
type VirtualIP struct {
	Prefix    netip.Prefix `json:"prefix"`
	Broadcast netip.Addr   `json:"brd,omitzero"`
	// Dev defaults to the instance interface.
	Dev string `json:"dev,omitempty"`
	// Scope: "global" (default), "site", "link", "host", "nowhere" or a number.
	Scope string `json:"scope,omitempty"`
	Label string `json:"label,omitempty"`
	// NoDAD adds an IPv6 address without duplicate address detection.
	NoDAD bool `json:"nodad,omitempty"`
	// NoTrack (no_track): a MASTER does not put the address back when
	// someone else deletes it.
	NoTrack bool `json:"no_track,omitempty"`
}

// VirtualRoute is one virtual_routes line:
// [src IP] [to] PREFIX [via GW] [dev IF] [table N] [metric N] [scope S],
// or "blackhole PREFIX" (Type "blackhole", "unreachable", "prohibit").
type VirtualRoute struct {
	Dst    netip.Prefix `json:"to"`
	Src    netip.Addr   `json:"src,omitzero"`
	Via    netip.Addr   `json:"via,omitzero"`
	Dev    string       `json:"dev,omitempty"`
	Table  int          `json:"table,omitempty"`
	Metric int          `json:"metric,omitempty"`
	Scope  string       `json:"scope,omitempty"`
	Type   string       `json:"type,omitempty"`
	// NoTrack (no_track): a MASTER does not put the route back when
	// someone else deletes it.
	NoTrack bool `json:"no_track,omitempty"`
	// Nexthops make it a multipath route (Via and Dev unset).
	Nexthops []VirtualNexthop `json:"nexthops,omitempty"`
	Onlink   bool             `json:"onlink,omitempty"`
	// Proto is the route's protocol number (0: the kernel's default,
	// boot).
	Proto int `json:"proto,omitempty"`
	// Metrics of ip-route (0: not set).
	MTU      int  `json:"mtu,omitempty"`
	MTULock  bool `json:"mtu_lock,omitempty"`
	AdvMSS   int  `json:"advmss,omitempty"`
	Hoplimit int  `json:"hoplimit,omitempty"`
	InitCwnd int  `json:"initcwnd,omitempty"`
	InitRwnd int  `json:"initrwnd,omitempty"`
}

// VirtualNexthop is one path of a multipath route.
type VirtualNexthop struct {
	Via    netip.Addr `json:"via,omitzero"`
	Dev    string     `json:"dev,omitempty"`
	Weight int        `json:"weight,omitempty"` // 1..256, 0: 1
	Onlink bool       `json:"onlink,omitempty"`
}

// onDefaultDev says whether the route goes on the instance's interface
// for want of a via, a dev, a type or nexthops of its own.
func (r *VirtualRoute) onDefaultDev() bool {
	return r.Dev == "" && !r.Via.IsValid() && r.Type == "" && len(r.Nexthops) == 0
}

func (r VirtualRoute) equal(o VirtualRoute) bool { return reflect.DeepEqual(r, o) }

// VirtualRule is a virtual_rules entry: an `ip rule` selector and its
// action (look up Table, or Type blackhole, unreachable or prohibit).
type VirtualRule struct {
	From netip.Prefix `json:"from,omitzero"` // zero: all
	To   netip.Prefix `json:"to,omitzero"`
	// IPv6 is the family when neither From nor To says it.
	IPv6     bool   `json:"ipv6,omitempty"`
	Not      bool   `json:"not,omitempty"`
	Table    int    `json:"table,omitempty"`
	Priority int    `json:"priority,omitempty"` // 0: the kernel chooses
	FWMark   uint32 `json:"fwmark,omitempty"`
	// FWMask applies to FWMark when HasMask.
	FWMask  uint32    `json:"fwmask,omitempty"`
	HasMask bool      `json:"has_mask,omitempty"`
	Tos     int       `json:"tos,omitempty"`
	Iif     string    `json:"iif,omitempty"`
	Oif     string    `json:"oif,omitempty"`
	IPProto int       `json:"ipproto,omitempty"`
	Sport   [2]uint16 `json:"sport,omitzero"` // first, last; zero: any
	Dport   [2]uint16 `json:"dport,omitzero"`
	Type    string    `json:"type,omitempty"` // "", blackhole, unreachable or prohibit
	// NoTrack: as VirtualRoute.NoTrack.
	NoTrack bool `json:"no_track,omitempty"`
}

// TrackInterface is a track_interface entry: IF [weight W [reverse]].
// Weight 0 means the instance goes to FAULT when the interface is down.
type TrackInterface struct {
	Name    string `json:"name"`
	Weight  int    `json:"weight,omitempty"`
	Reverse bool   `json:"reverse,omitempty"`
	// Static: tracked only for a track_group's static entry;
	// keepalived does not list it among the instance's tracked
	// interfaces (keepalived.data, JSON, SNMP).
	Static bool `json:"static,omitempty"`
	// Listed, when set, is the entry as the instance's own line says it
	// (a track_group zeroed its weight; keepalived lists it as written).
	Listed *TrackInterface `json:"listed,omitempty"`
}

// ListedTrackInterfaces are the tracked interfaces keepalived lists for
// the instance: its own, as its lines say them; not those only a
// track_group adds.
func (c *InstanceConfig) ListedTrackInterfaces() []TrackInterface {
	var out []TrackInterface
	for _, t := range c.TrackInterfaces {
		switch {
		case t.Static:
		case t.Listed != nil:
			out = append(out, *t.Listed)
		default:
			out = append(out, t)
		}
	}
	return out
}

// TrackScript is a track_script entry naming a vrrp_script; Weight
// overrides the script's own weight when WeightSet.
type TrackScript struct {
	Name      string `json:"name"`
	Weight    int    `json:"weight,omitempty"`
	WeightSet bool   `json:"weight_set,omitempty"`
	Reverse   bool   `json:"reverse,omitempty"`
}

// TrackFile is a track_file entry: a file holding an integer that is
// multiplied by Weight and added to the priority (weight 0: any non-zero
// value means FAULT; a product <= -254 means FAULT).
type TrackFile struct {
	Name    string `json:"name"`
	Path    string `json:"file"`
	Weight  int    `json:"weight,omitempty"`
	Reverse bool   `json:"reverse,omitempty"`
	// Init is the value used while the file is missing (keepalived:
	// init_file value, default 0).
	Init int `json:"init,omitempty"`
}

// PeerTTL is the range of TTLs accepted from one unicast peer.
type PeerTTL struct {
	Addr netip.Addr `json:"addr"`
	Min  int        `json:"min_ttl"`
	Max  int        `json:"max_ttl"`
}

// TrackProcess is a track_process entry: a vrrp_track_process block's
// processes, up while their count is within its quorum. Weight as for a
// track_script: added while up (positive), subtracted while down
// (negative), FAULT while down (0); Reverse turns the adjustment round
// (Tracker.contribution).
type TrackProcess struct {
	Name    string       `json:"name"`
	Weight  int          `json:"weight,omitempty"`
	Reverse bool         `json:"reverse,omitempty"`
	Match   ProcessMatch `json:"match"`
}

// TrackBFD is a track_bfd entry: a BFD session (bfd_instance), up while
// the session is Up. Weight as for a track_process; a session starts
// down, as keepalived's.
type TrackBFD struct {
	Name    string `json:"name"`
	Weight  int    `json:"weight,omitempty"`
	Reverse bool   `json:"reverse,omitempty"`
}

// BFDWatcher tells the state of BFD sessions (bfd.Daemon).
type BFDWatcher interface {
	// Watch calls fn with whether the session is Up, at once and on
	// every change, until ctx is done.
	Watch(ctx context.Context, name string, fn func(up bool))
	// Up reports whether the session is Up now.
	Up(name string) (up, known bool)
}

// ProcessMatch says which processes a track_process counts and when the
// count is up, as keepalived's vrrp_track_process has it.
type ProcessMatch struct {
	// Process is compared with the process's kernel name
	// (/proc/PID/comm, at most 15 characters) or, when the command
	// line is matched (FullCommand), with its argv[0].
	Process string `json:"process"`
	// FullCommand matches argv[0] and the arguments (argv[1:]) as
	// ParamMatch says: set when the process line has arguments, or by
	// param_match or full_command.
	FullCommand bool     `json:"full_command,omitempty"`
	Params      []string `json:"params,omitempty"`
	// ParamMatch: "" (the arguments are not looked at), "exact" (the
	// arguments are Params; no Params, no arguments), "partial" (the
	// arguments start with Params) or "initial" (as partial, but the
	// last of Params need only be the start of its argument). Without
	// Params, partial and initial take any arguments. Params need
	// FullCommand and a ParamMatch other than "".
	ParamMatch string `json:"param_match,omitempty"`
	// Quorum is the fewest processes that make it up (0: up with none
	// at all; the config's default is 1); QuorumMax, when HasQuorumMax,
	// the most.
	Quorum       int  `json:"quorum"`
	QuorumMax    int  `json:"quorum_max,omitempty"`
	HasQuorumMax bool `json:"has_quorum_max,omitempty"`
	// ForkDelay is how long a rise of the count that changes the state
	// (to the quorum, or past quorum_max) waits before it takes effect;
	// TerminateDelay the same for a fall (under the quorum, or back to
	// quorum_max). A change back before the delay is over cancels it.
	ForkDelay      time.Duration `json:"fork_delay,omitempty"`
	TerminateDelay time.Duration `json:"terminate_delay,omitempty"`
}

// ScriptConfig mirrors keepalived's vrrp_script block.
type ScriptConfig struct {
	Name string `json:"name"`
	// Script is the command line, split on blanks (keepalived does not use
	// a shell either); quote with "double quotes".
	Script   string        `json:"script"`
	Interval time.Duration `json:"interval,omitempty"` // default 1s
	// Timeout defaults to Interval.
	Timeout  time.Duration `json:"timeout,omitempty"`
	Weight   int           `json:"weight,omitempty"`
	Reverse  bool          `json:"reverse,omitempty"`
	Rise     int           `json:"rise,omitempty"` // default 1
	Fall     int           `json:"fall,omitempty"` // default 1
	InitFail bool          `json:"init_fail,omitempty"`
	User     string        `json:"user,omitempty"`
}

// SyncGroupConfig mirrors vrrp_sync_group: the member instances change
// state together.
type SyncGroupConfig struct {
	Name      string        `json:"name"`
	Members   []string      `json:"group"`
	Notify    NotifyScripts `json:"notify,omitzero"`
	SMTPAlert bool          `json:"smtp_alert,omitempty"`
}

// WithDefaults returns a copy with keepalived's defaults filled in.
func (c InstanceConfig) WithDefaults() InstanceConfig {
	if c.defaulted {
		return c
	}
	c.defaulted = true
	if c.State == "" {
		c.State = "BACKUP"
	}
	if c.Priority == 0 {
		c.Priority = DefaultPriority
	}
	if c.AdvertInterval == 0 {
		c.AdvertInterval = DefaultAdvertInterval
	}
	if c.Version == 0 {
		c.Version = DefaultVersion
	}
	if c.IsIPv6() {
		c.Version = 3
	}
	if c.DownTimerAdverts == 0 {
		c.DownTimerAdverts = DefaultDownTimerAdverts
	}
	if c.GARPMasterDelay == 0 && !c.NoGARPDelay {
		c.GARPMasterDelay = DefaultGARPMasterDelay
	}
	if c.GARPMasterRepeat == 0 {
		c.GARPMasterRepeat = DefaultGARPMasterRepeat
	}
	if c.GARPMasterRefreshRepeat == 0 {
		c.GARPMasterRefreshRepeat = DefaultGARPMasterRefreshRep
	}
	if c.GARPLowerPrioRepeat == 0 && !c.NoLowerPrioGARP {
		c.GARPLowerPrioRepeat = c.GARPMasterRepeat
	}
	if c.UnicastTTL == 0 {
		c.UnicastTTL = TTL
	}
	if !c.UnicastSrcIP.IsValid() {
		c.UnicastSrcIP = c.McastSrcIP
	}
	return c
}

// IsIPv6 reports whether the instance speaks VRRP over IPv6 (decided by
// its first virtual address, like keepalived).
func (c *InstanceConfig) IsIPv6() bool {
	if len(c.VirtualIPs) > 0 {
		return c.VirtualIPs[0].Prefix.Addr().Is6()
	}
	if c.UnicastSrcIP.IsValid() {
		return c.UnicastSrcIP.Is6()
	}
	if c.McastSrcIP.IsValid() {
		return c.McastSrcIP.Is6()
	}
	return len(c.UnicastPeers) > 0 && c.UnicastPeers[0].Is6()
}

// VirtualMAC is the MAC address of the instance's use_vmac interface.
func (c *InstanceConfig) VirtualMAC() net.HardwareAddr {
	if len(c.VMACAddr) == 6 {
		return c.VMACAddr
	}
	mac := net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, byte(c.VRID)}
	if c.IsIPv6() {
		mac[4] = 0x02
	}
	return mac
}

// addrDev is the interface of the virtual addresses and routes that name
// none: the use_vmac interface, else the instance's.
// GARPDelay is the pause between two gratuitous ARPs (ARP) and between
// two unsolicited neighbour advertisements (NA) keepalived keeps on an
// interface, or on the interfaces of a garp_group together (Pace names
// the group; empty: the interface alone).
type GARPDelay struct {
	Pace string        `json:"pace,omitempty"`
	ARP  time.Duration `json:"garp_interval,omitempty"`
	NA   time.Duration `json:"gna_interval,omitempty"`
}

// GARPPace is the pace a gratuitous ARP (an unsolicited NA when v6) on
// dev keeps: a key shared by everything sent under the same pace, and
// its interval. A VMAC interface's packets keep the pace of the
// interface under it, as keepalived's.
func (c *InstanceConfig) GARPPace(dev string, v6 bool) (key string, every time.Duration) {
	if c.VMAC != "" && dev == c.VMAC {
		dev = c.Interface
	}
	d, ok := c.GARPGroups[dev]
	if !ok {
		d = c.GARPDelay
	}
	if d.Pace == "" {
		d.Pace = "interface " + dev
	}
	if v6 {
		return d.Pace + " na", d.NA
	}
	return d.Pace + " arp", d.ARP
}

func (c *InstanceConfig) addrDev() string {
	if c.VMAC != "" {
		return c.VMAC
	}
	return c.Interface
}

// extraIfVIPs is cfg with only the virtual addresses garp_extra_if
// refreshes (see GARPExtraIf), each with its device.
func (c *InstanceConfig) extraIfVIPs() InstanceConfig {
	d := *c
	d.VirtualIPs, d.VirtualIPsExcluded, d.VirtualRoutes, d.VirtualRules = nil, nil, nil, nil
	adv := c.advertDev()
	for _, v := range allVIPs(c) {
		v = c.withDev(v)
		if v.Dev == adv || !c.GARPExtraIfAll && (c.VMAC == "" || v.Dev != c.VMAC) {
			continue
		}
		d.VirtualIPs = append(d.VirtualIPs, v)
	}
	return d
}

// withDev is v with the device it goes on when it names none.
func (c *InstanceConfig) withDev(v VirtualIP) VirtualIP {
	if v.Dev == "" {
		v.Dev = c.addrDev()
	}
	return v
}

// vmacLinkLocalSource reports whether the adverts' source is the
// link-local address an IPv6 instance's VMAC interface has while MASTER
// (vmacAddr), not one of the host's own.
func (c *InstanceConfig) vmacLinkLocalSource() bool {
	return c.VMAC != "" && c.IsIPv6() && (!c.UnicastSrcIP.IsValid() || c.UnicastSrcIP.IsLinkLocalUnicast())
}

// advertDev is the interface the adverts are sent and received on. With
// unicast peers it is always the instance's: unicast adverts come to its
// own MAC, which the VMAC interface never sees (keepalived sets
// vmac_xmit_base for them too).
func (c *InstanceConfig) advertDev() string {
	if c.VMAC != "" && !c.VMACXmitBase && len(c.UnicastPeers) == 0 {
		return c.VMAC
	}
	return c.Interface
}

// advertCentis is the advert interval in the unit of the wire format:
// centiseconds for v3, seconds for v2.
// multicastGroup is the group a multicast instance advertises to
// (MulticastGroup, else the family's default); none for a unicast one.
func (c *InstanceConfig) multicastGroup() netip.Addr {
	switch {
	case len(c.UnicastPeers) > 0:
		return netip.Addr{}
	case c.MulticastGroup.IsValid():
		return c.MulticastGroup
	case c.IsIPv6():
		return netip.MustParseAddr(MulticastGroup6)
	}
	return netip.MustParseAddr(MulticastGroup4)
}

// rxBufSize is the receive buffer the advert socket asks for on an
// interface of that MTU (0: the system's).
func (c *InstanceConfig) rxBufSize(mtu int) int {
	return c.RxBufSize + c.RxBufMTUs*mtu
}

// AdvertLen is the length of the instance's adverts as its socket reads
// them, as keepalived's vrrp_adv_len counts it (vrrp_rx_bufs_policy
// ADVERT): for IPv4 the IP header (and an AH header) and the VRRP
// message; for IPv6 the VRRP message.
func AdvertLen(c *InstanceConfig) int {
	d := c.WithDefaults()
	alen := 4
	if d.IsIPv6() {
		alen = 16
	}
	n := headerLen + alen*min(len(d.VirtualIPs), 255)
	if d.Version == 2 {
		n += authDataLen
	}
	if !d.IsIPv6() {
		n += 20
		if d.AuthAH {
			n += 24
		}
	}
	return n
}

// oldChecksumFamily says whether the instance's adverts are the kind
// whose checksum old_unicast_checksum is about: IPv4 VRRPv3 unicast.
func (c *InstanceConfig) oldChecksumFamily() bool {
	return c.Version == 3 && !c.IsIPv6() && len(c.UnicastPeers) > 0
}

// oldChecksumDst is the pseudo-header destination of the old checksum.
func (c *InstanceConfig) oldChecksumDst() netip.Addr {
	if c.OldChecksumGroup.IsValid() {
		return c.OldChecksumGroup
	}
	return netip.MustParseAddr(MulticastGroup4)
}

func (c *InstanceConfig) advertUnits() int {
	if c.Version == 2 {
		s := int(math.Round(c.AdvertInterval.Seconds()))
		return max(1, min(s, 255))
	}
	cs := int(math.Round(float64(c.AdvertInterval) / float64(10*time.Millisecond)))
	return max(1, min(cs, maxAdvertCentiseconds))
}

// effectiveAdvertInterval is the interval actually used on the wire.
func (c *InstanceConfig) effectiveAdvertInterval() time.Duration {
	if c.Version == 2 {
		return time.Duration(c.advertUnits()) * time.Second
	}
	return time.Duration(c.advertUnits()) * 10 * time.Millisecond
}

// Validate reports every problem of a (defaulted) instance configuration.
func (c *InstanceConfig) Validate() error {
	d := c.WithDefaults()
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("vrrp_instance %s: "+format, append([]any{c.Name}, args...)...))
	}
	if d.Name == "" {
		bad("missing name")
	}
	if d.Interface == "" {
		bad("missing interface")
	}
	if d.VRID < 1 || d.VRID > 255 {
		bad("virtual_router_id %d out of range 1-255", d.VRID)
	}
	if d.Priority < 1 || d.Priority > 255 {
		bad("priority %d out of range 1-255", d.Priority)
	}
	if d.State != "MASTER" && d.State != "BACKUP" {
		bad("state %q must be MASTER or BACKUP", d.State)
	}
	if d.Version != 2 && d.Version != 3 {
		bad("version %d must be 2 or 3", d.Version)
	}
	if d.AdvertInterval <= 0 {
		bad("advert_int must be positive")
	}
	if d.Version == 3 && d.AdvertInterval > maxAdvertCentiseconds*10*time.Millisecond {
		bad("advert_int %s above VRRPv3 maximum 40.95s", d.AdvertInterval)
	}
	if d.Version == 2 && d.AdvertInterval > 255*time.Second {
		bad("advert_int %s above VRRPv2 maximum 255s", d.AdvertInterval)
	}
	if len(d.AuthPass) > maxAuthPassLen {
		bad("auth_pass longer than %d characters", maxAuthPassLen)
	}
	if (d.AuthPass != "" || d.AuthAH) && d.Version == 3 {
		bad("authentication is not allowed with VRRPv3")
	}
	if d.AuthAH && d.IsIPv6() {
		bad("auth_type AH is for IPv4 instances only")
	}
	if len(d.VirtualIPs) == 0 && len(d.VirtualIPsExcluded) == 0 {
		bad("no virtual_ipaddress")
	}
	v6 := d.IsIPv6()
	for _, v := range d.VirtualIPs {
		if !v.Prefix.IsValid() {
			bad("invalid virtual_ipaddress")
			continue
		}
		if v.Prefix.Addr().Is6() != v6 {
			bad("virtual_ipaddress %s: mixed address families (use virtual_ipaddress_excluded)", v.Prefix)
		}
		if _, err := parseScope(v.Scope); err != nil {
			bad("virtual_ipaddress %s: %v", v.Prefix, err)
		}
	}
	for _, v := range d.VirtualIPsExcluded {
		if !v.Prefix.IsValid() {
			bad("invalid virtual_ipaddress_excluded")
		} else if _, err := parseScope(v.Scope); err != nil {
			bad("virtual_ipaddress_excluded %s: %v", v.Prefix, err)
		}
	}
	if d.VMAC != "" {
		if len(d.VMAC) > 15 || d.VMAC == d.Interface {
			bad("use_vmac interface %q: not a name of its own of at most 15 characters", d.VMAC)
		}
		if len(d.VMACAddr) != 0 && (len(d.VMACAddr) != 6 || d.VMACAddr[0]&1 != 0) {
			bad("use_vmac address %s is not a unicast Ethernet address", d.VMACAddr)
		}
	}
	if d.UnicastTTL < 1 || d.UnicastTTL > 255 {
		bad("unicast_ttl %d out of range 1-255", d.UnicastTTL)
	}
	if d.RxBufSize < 0 || d.RxBufMTUs < 0 {
		bad("rx buffer of %d bytes and %d MTUs: below 0", d.RxBufSize, d.RxBufMTUs)
	}
	switch d.OldUnicastChecksum {
	case "", "config", "never":
	default:
		bad("old_unicast_checksum %q: not config, never or empty", d.OldUnicastChecksum)
	}
	if g := d.OldChecksumGroup; g.IsValid() && !(g.Is4() && g.IsMulticast()) {
		bad("old checksum group %s: not an IPv4 multicast address", g)
	}
	if d.UnicastSrcIP.IsValid() && d.UnicastSrcIP.Is6() != v6 {
		bad("unicast_src_ip %s: wrong address family", d.UnicastSrcIP)
	}
	for _, p := range d.UnicastPeers {
		if p.Is6() != v6 {
			bad("unicast_peer %s: wrong address family", p)
		}
	}
	for _, r := range d.UnicastPeerTTL {
		if !slices.Contains(d.UnicastPeers, r.Addr) {
			bad("unicast_peer_ttl %s: not a unicast_peer", r.Addr)
		}
		if r.Min < 0 || r.Max > 255 || r.Min > r.Max {
			bad("unicast_peer %s: TTL range %d-%d is not within 0-255 or is empty", r.Addr, r.Min, r.Max)
		}
	}
	for _, t := range d.TrackInterfaces {
		if t.Weight < -maxTrackWeight || t.Weight > maxTrackWeight {
			bad("track_interface %s: weight %d out of range -253..253", t.Name, t.Weight)
		}
	}
	for _, t := range d.TrackScripts {
		if t.Weight < -maxTrackWeight || t.Weight > maxTrackWeight {
			bad("track_script %s: weight %d out of range -253..253", t.Name, t.Weight)
		}
	}
	for _, t := range d.TrackFiles {
		if t.Path == "" {
			bad("track_file %s: missing file", t.Name)
		}
	}
	for _, t := range d.TrackProcesses {
		// keepalived takes -254..254 for a tracked process, one more than
		// for a script
		if t.Weight < -maxTrackWeight-1 || t.Weight > maxTrackWeight+1 {
			bad("track_process %s: weight %d out of range -254..254", t.Name, t.Weight)
		}
		if err := t.Match.check(); err != nil {
			bad("track_process %s: %v", t.Name, err)
		}
	}
	for _, r := range d.VirtualRules {
		if r.From.IsValid() && r.To.IsValid() && r.From.Addr().Is6() != r.To.Addr().Is6() {
			bad("virtual_rules from %s to %s: mixed address families", r.From, r.To)
		}
		switch r.Type {
		case "", "blackhole", "unreachable", "prohibit":
		default:
			bad("virtual_rules: unknown type %q", r.Type)
		}
		if r.Type == "" && r.Table == 0 {
			bad("virtual_rules: a rule needs a table or a type (blackhole, unreachable, prohibit)")
		}
		if r.Sport[0] > r.Sport[1] || r.Dport[0] > r.Dport[1] {
			bad("virtual_rules: a port range ends before it starts")
		}
	}
	for _, r := range d.VirtualRoutes {
		if !r.Dst.IsValid() {
			bad("virtual_routes: missing destination")
		}
		if _, err := parseScope(r.Scope); err != nil {
			bad("virtual_routes %s: %v", r.Dst, err)
		}
		switch r.Type {
		case "", "unicast", "blackhole", "unreachable", "prohibit":
		default:
			bad("virtual_routes %s: unknown type %q", r.Dst, r.Type)
		}
		if len(r.Nexthops) > 0 && (r.Via.IsValid() || r.Dev != "" || r.Type != "") {
			bad("virtual_routes %s: a multipath route has no via, dev or type of its own", r.Dst)
		}
		for _, nh := range r.Nexthops {
			if !nh.Via.IsValid() && nh.Dev == "" {
				bad("virtual_routes %s: a nexthop needs via or dev", r.Dst)
			}
		}
	}
	return errors.Join(errs...)
}

// WithDefaults returns a copy of s with keepalived's defaults.
func (s ScriptConfig) WithDefaults() ScriptConfig {
	if s.Interval <= 0 {
		s.Interval = DefaultScriptInterval
	}
	if s.Timeout <= 0 {
		s.Timeout = s.Interval
	}
	if s.Rise <= 0 {
		s.Rise = DefaultScriptRise
	}
	if s.Fall <= 0 {
		s.Fall = DefaultScriptFall
	}
	return s
}

// Validate reports the problems of a vrrp_script.
func (s *ScriptConfig) Validate() error {
	var errs []error
	if s.Name == "" {
		errs = append(errs, errors.New("vrrp_script: missing name"))
	}
	if s.Script == "" {
		errs = append(errs, fmt.Errorf("vrrp_script %s: missing script", s.Name))
	}
	if s.Weight < -maxTrackWeight || s.Weight > maxTrackWeight {
		errs = append(errs, fmt.Errorf("vrrp_script %s: weight %d out of range -253..253", s.Name, s.Weight))
	}
	return errors.Join(errs...)
}

// parseScope maps an iproute2 scope name to its number.
func parseScope(s string) (uint8, error) {
	switch s {
	case "", "global", "universe":
		return 0, nil
	case "site":
		return 200, nil
	case "link":
		return 253, nil
	case "host":
		return 254, nil
	case "nowhere":
		return 255, nil
	}
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil || n < 0 || n > 255 {
		return 0, fmt.Errorf("unknown scope %q", s)
	}
	return uint8(n), nil
}
