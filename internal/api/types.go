// Package api is govs's HTTP/JSON interface: the types every client (the
// CLI, the web UI, scripts) reads, a server that exposes a Backend (the
// director) on a unix socket and optionally on TCP, and a client for it.
// There is one copy of state, the director's; the API only reads it and
// forwards changes.
package api

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/govs/govs/internal/bfd"
	"github.com/govs/govs/internal/dataplane"
)

// State is the whole observable state of a running director.
type State struct {
	Version   string `json:"version"`
	Dataplane string `json:"dataplane"`
	// XDPMode is how the xdp dataplane is attached: native or generic.
	XDPMode       string    `json:"xdp_mode,omitempty"`
	Started       time.Time `json:"started"`
	ConfigFile    string    `json:"config_file"`
	ConfigLoaded  time.Time `json:"config_loaded"`
	ConnTableSize int       `json:"conn_table_size"`
	Timeouts      Timeouts  `json:"timeouts"`
	Services      []Service `json:"services"`
	VRRP          []VRRP    `json:"vrrp,omitempty"`
	// Sync is the connection-sync daemon (lvs_sync_daemon), nil without
	// one.
	Sync *SyncDaemon `json:"sync,omitempty"`
	// LastReloadError is the error of the last refused reload, if any.
	LastReloadError string `json:"last_reload_error,omitempty"`
	// ConfigSync is the configuration sync with the peers, nil when off.
	ConfigSync *ConfigSync `json:"config_sync,omitempty"`
	// BGP is the BGP speaker (govs_bgp), nil without one.
	BGP *BGP `json:"bgp,omitempty"`
	// BFD are the bfd_instance sessions.
	BFD []bfd.Status `json:"bfd,omitempty"`
}

// BGP is the BGP speaker: its sessions and the routes it announces.
type BGP struct {
	LocalAS   uint32        `json:"local_as"`
	RouterID  string        `json:"router_id"`
	Neighbors []BGPNeighbor `json:"neighbors"`
	// Routes are the host routes of the virtual addresses announced now:
	// those with a virtual service up (its quorum met).
	Routes []string `json:"routes"`
	// Withdrawn says that govs is stopping: every route was withdrawn.
	Withdrawn bool `json:"withdrawn,omitempty"`
	// Running says that the speaker runs (it may have failed to start:
	// LastError says why).
	Running bool `json:"running"`
	// Held are the addresses up but not announced yet: their services
	// came up less than announce_delay ago.
	Held []string `json:"held,omitempty"`
	// Drained says that the routes were withdrawn at run time (govs bgp
	// --withdraw, for maintenance) until govs bgp --announce.
	Drained   bool   `json:"drained,omitempty"`
	LastError string `json:"last_error,omitempty"`
}

// BGPChange asks to withdraw every BGP route (Announce false) or to
// announce them again.
type BGPChange struct {
	Announce *bool `json:"announce,omitempty"`
}

// BGPNeighbor is one BGP session.
type BGPNeighbor struct {
	Address  string `json:"address"`
	RemoteAS uint32 `json:"remote_as"`
	// State: idle, connect, active, opensent, openconfirm, established.
	State      string    `json:"state"`
	Since      time.Time `json:"since,omitzero"`
	Advertised uint64    `json:"advertised"`
	Received   uint64    `json:"received"`
	LastDown   string    `json:"last_down,omitempty"`
	// BFD is the BFD session's state (up, down, init, admin-down), ""
	// without BFD.
	BFD string `json:"bfd,omitempty"`
}

// ConfigSync is the configuration sync: where it listens, the revision
// of the files in force, each peer's last push and the last files taken
// from a peer.
type ConfigSync struct {
	Listen       string              `json:"listen,omitempty"`
	Revision     string              `json:"revision"`
	Peers        []ConfigSyncPeer    `json:"peers,omitempty"`
	LastReceived *ConfigSyncReceived `json:"last_received,omitempty"`
}

// ConfigSyncPeer is one peer: the last push, its answer (Result saved or
// unchanged, the revision it has) and Pending while a change has not
// reached it.
type ConfigSyncPeer struct {
	Addr        string    `json:"addr"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	Result      string    `json:"result,omitempty"`
	Revision    string    `json:"revision,omitempty"`
	Pending     bool      `json:"pending,omitempty"`
	Error       string    `json:"error,omitempty"`
}

// ConfigSyncReceived is the last configuration a peer sent here.
type ConfigSyncReceived struct {
	From     string    `json:"from"`
	Addr     string    `json:"addr"`
	At       time.Time `json:"at"`
	Revision string    `json:"revision"`
	Result   string    `json:"result,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// ConfigPush asks for the configuration files to be sent to the peers
// now; Force replaces theirs even when they were changed there.
type ConfigPush struct {
	Force bool `json:"force,omitempty"`
}

// SyncDaemon is the connection-sync daemon: its settings, what it does
// now (Role: master, backup, master+backup or none) and its counters.
type SyncDaemon struct {
	Interface string `json:"interface"`
	Instance  string `json:"instance,omitempty"`
	SyncID    int    `json:"syncid"`
	MaxLen    int    `json:"maxlen"`
	Group     string `json:"group"`
	Port      int    `json:"port"`
	TTL       int    `json:"ttl"`
	Role      string `json:"role"`

	MessagesSent     uint64 `json:"messages_sent"`
	ConnsSent        uint64 `json:"conns_sent"`
	SendErrors       uint64 `json:"send_errors"`
	MessagesReceived uint64 `json:"messages_received"`
	ConnsReceived    uint64 `json:"conns_received"`
	ConnsImported    uint64 `json:"conns_imported"`
	ConnsNotTaken    uint64 `json:"conns_not_taken"`
	Malformed        uint64 `json:"malformed"`
	OtherSyncID      uint64 `json:"other_sync_id"`
	// Dropped are messages the kernel dropped, the receiving socket's
	// buffer full.
	Dropped   uint64 `json:"dropped"`
	LastError string `json:"last_error,omitempty"`
}

// MaxTimeout is the largest timeout SetTimeouts takes, in seconds: the
// bound lvs_timeouts has in the configuration (config.MaxDurationSeconds;
// the director's tests hold the two equal).
const MaxTimeout = 10_000_000

// Check reports a Timeouts SetTimeouts cannot take: a negative value or
// one above MaxTimeout.
func (t Timeouts) Check() error {
	for _, v := range []int{t.TCP, t.TCPFin, t.UDP} {
		if v < 0 || v > MaxTimeout {
			return fmt.Errorf("%w: timeouts (tcp %d, tcpfin %d, udp %d) must be 0..%d seconds (0 keeps the current value)",
				ErrBadRequest, t.TCP, t.TCPFin, t.UDP, MaxTimeout)
		}
	}
	return nil
}

// Timeouts in seconds (ipvsadm -L --timeout; for SetTimeouts, as
// ipvsadm --set, 0 keeps the current value).
type Timeouts struct {
	TCP    int `json:"tcp"`
	TCPFin int `json:"tcpfin"`
	UDP    int `json:"udp"`
}

// Rates are per-second rates over the last estimation interval.
type Rates struct {
	CPS    uint64 `json:"cps"`
	InPPS  uint64 `json:"in_pps"`
	OutPPS uint64 `json:"out_pps"`
	InBPS  uint64 `json:"in_bps"`
	OutBPS uint64 `json:"out_bps"`
}

// Service is one virtual service.
type Service struct {
	// ID is the service's key in API calls: tcp/ADDR:PORT, udp/...,
	// sctp/..., fwm/MARK or fwm6/MARK.
	ID          string   `json:"id"`
	Name        string   `json:"name,omitempty"`
	Proto       string   `json:"proto"` // TCP, UDP, SCTP, FWM
	Addr        string   `json:"addr,omitempty"`
	Port        uint16   `json:"port,omitempty"`
	FWMark      uint32   `json:"fwmark,omitempty"`
	V6          bool     `json:"v6,omitempty"`
	Scheduler   string   `json:"scheduler"`
	Flags       []string `json:"flags,omitempty"`
	Persistent  int      `json:"persistent,omitempty"` // seconds, 0 = off
	PersistMask int      `json:"persist_mask,omitempty"`
	OnePacket   bool     `json:"ops,omitempty"`
	PE          string   `json:"pe,omitempty"`
	Method      string   `json:"method"`
	// Enabled is false when the service was disabled through the API.
	Enabled bool `json:"enabled"`
	// QuorumUp is false when the live weight is below the quorum.
	QuorumUp    bool               `json:"quorum_up"`
	SorryActive bool               `json:"sorry_active,omitempty"`
	Stats       dataplane.Counters `json:"stats"`
	Rates       Rates              `json:"rates"`
	RealServers []RealServer       `json:"real_servers"`
	Source      string             `json:"source,omitempty"` // config position
}

// RealServer is one real server of a service, as the dataplane uses it.
type RealServer struct {
	Addr   string `json:"addr"` // ip:port
	Method string `json:"method"`
	// Weight is the weight in the dataplane now; ConfigWeight the
	// configured one (they differ while drained, inhibited or overridden).
	Weight       int                `json:"weight"`
	ConfigWeight int                `json:"config_weight"`
	Healthy      bool               `json:"healthy"`
	Enabled      bool               `json:"enabled"`
	InPool       bool               `json:"in_pool"` // present in the dataplane
	Reason       string             `json:"reason,omitempty"`
	Since        time.Time          `json:"since,omitempty"`
	UThreshold   uint32             `json:"uthreshold,omitempty"`
	LThreshold   uint32             `json:"lthreshold,omitempty"`
	ActiveConns  int64              `json:"active_conns"`
	InactConns   int64              `json:"inact_conns"`
	PersistConns int64              `json:"persist_conns"`
	Stats        dataplane.Counters `json:"stats"`
	Rates        Rates              `json:"rates"`
	Sorry        bool               `json:"sorry,omitempty"`
}

// VRRP is the state of one VRRP instance.
type VRRP struct {
	Name       string    `json:"name"`
	SyncGroup  string    `json:"sync_group,omitempty"`
	Interface  string    `json:"interface"`
	VRID       int       `json:"virtual_router_id"`
	State      string    `json:"state"`
	Priority   int       `json:"priority"`
	Effective  int       `json:"effective_priority"`
	Master     string    `json:"master,omitempty"`
	LastAdvert time.Time `json:"last_advert,omitzero"`
	VIPs       []string  `json:"virtual_ipaddress,omitempty"`
	// Waiting: in INIT until a tracked script's first result (keepalived
	// waits so; its data file shows FAULT).
	Waiting bool `json:"waiting,omitempty"`
	// NoAccept: as MASTER the host drops packets addressed to the
	// virtual addresses, except the virtual services' (no_accept).
	NoAccept    bool             `json:"no_accept,omitempty"`
	Transitions []VRRPTransition `json:"transitions,omitempty"`
	Counters    VRRPCounters     `json:"counters"`
}

// VRRPCounters are an instance's counters since govs started.
type VRRPCounters struct {
	AdvertsSent       uint64            `json:"adverts_sent"`
	AdvertsReceived   uint64            `json:"adverts_received"`
	SendErrors        uint64            `json:"send_errors"`
	BecameMaster      uint64            `json:"became_master"`
	ReleasedMaster    uint64            `json:"released_master"`
	PriorityZeroRcvd  uint64            `json:"priority_zero_received"`
	PriorityZeroSent  uint64            `json:"priority_zero_sent"`
	AddressListErrors uint64            `json:"address_list_errors"` // adverts whose addresses are not the instance's
	AddressesRestored uint64            `json:"addresses_restored"`
	RoutesRestored    uint64            `json:"routes_restored"`
	Dropped           map[string]uint64 `json:"dropped,omitempty"` // adverts dropped, by reason
}

// VRRPTransition is one state change of a VRRP instance.
type VRRPTransition struct {
	Time   time.Time `json:"time"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Reason string    `json:"reason"`
}

// Conn is one connection-table entry.
type Conn struct {
	Proto    string  `json:"proto"`
	Client   string  `json:"client"`
	Virtual  string  `json:"virtual"`
	Real     string  `json:"real"`
	Local    string  `json:"local,omitempty"`
	State    string  `json:"state"`
	Expires  float64 `json:"expires"` // seconds
	Template bool    `json:"template,omitempty"`
	FWMark   uint32  `json:"fwmark,omitempty"`
}

// ServiceChange asks for a runtime change of a service.
type ServiceChange struct {
	Service string `json:"service"`
	Enabled *bool  `json:"enabled,omitempty"`
	// Persist writes the change into the configuration file too.
	Persist bool `json:"persist,omitempty"`
}

// RealServerChange asks for a runtime change of a real server: a new
// weight (0 drains), or disabling/enabling it.
type RealServerChange struct {
	Service string `json:"service"`
	Server  string `json:"server"` // ip:port
	Weight  *int   `json:"weight,omitempty"`
	Enabled *bool  `json:"enabled,omitempty"`
	Persist bool   `json:"persist,omitempty"`
}

// ConfigDoc is the configuration file as it is on disk: its files, the
// revision a change must be made against, the model as JSON (the config
// package's types) and the problems found reading it.
type ConfigDoc struct {
	Files    []string        `json:"files"`
	Revision string          `json:"revision"`
	Config   json.RawMessage `json:"config"`
	Problems []string        `json:"problems,omitempty"`
}

// ConfigEdit changes one object of the configuration file: Op is set, add
// or delete; Kind is one of config.EditKinds; VS is the index of a real
// server's virtual server and Index the object's index in its list;
// Object is the whole object (set, add) in the model's JSON. Revision is
// the ConfigDoc's the change was made against.
type ConfigEdit struct {
	Revision string          `json:"revision"`
	Op       string          `json:"op"`
	Kind     string          `json:"kind"`
	VS       int             `json:"vs,omitempty"`
	Index    int             `json:"index,omitempty"`
	Object   json.RawMessage `json:"object,omitempty"`
}

// ConfigEditResult is what an edit did: Result is "saved" (Files were
// written and the configuration reloaded) or "unchanged".
type ConfigEditResult struct {
	Result   string   `json:"result"`
	Revision string   `json:"revision"`
	Files    []string `json:"files,omitempty"`
	// ReloadError is set when the files were written but the reload that
	// followed failed.
	ReloadError string `json:"reload_error,omitempty"`
}

// ServiceID renders a dataplane key as an API service ID.
func ServiceID(k dataplane.ServiceKey) string {
	if k.FWMark != 0 {
		if k.V6 {
			return "fwm6/" + strconv.FormatUint(uint64(k.FWMark), 10)
		}
		return "fwm/" + strconv.FormatUint(uint64(k.FWMark), 10)
	}
	return strings.ToLower(k.Proto.String()) + "/" + netip.AddrPortFrom(k.Addr, k.Port).String()
}

// ParseServiceID reads a service ID (tcp/1.2.3.4:80, udp/[::1]:53,
// fwm/5, fwm6/5).
func ParseServiceID(s string) (dataplane.ServiceKey, error) {
	kind, rest, ok := strings.Cut(s, "/")
	if !ok {
		return dataplane.ServiceKey{}, fmt.Errorf("service %q: want PROTO/ADDR:PORT or fwm/MARK", s)
	}
	switch strings.ToLower(kind) {
	case "fwm", "fwm6":
		m, err := strconv.ParseUint(rest, 10, 32)
		if err != nil || m == 0 {
			return dataplane.ServiceKey{}, fmt.Errorf("service %q: bad firewall mark", s)
		}
		return dataplane.ServiceKey{FWMark: uint32(m), V6: strings.ToLower(kind) == "fwm6"}, nil
	}
	var p dataplane.Proto
	switch strings.ToLower(kind) {
	case "tcp":
		p = dataplane.TCP
	case "udp":
		p = dataplane.UDP
	case "sctp":
		p = dataplane.SCTP
	default:
		return dataplane.ServiceKey{}, fmt.Errorf("service %q: unknown protocol %q", s, kind)
	}
	ap, err := netip.ParseAddrPort(rest)
	if err != nil {
		return dataplane.ServiceKey{}, fmt.Errorf("service %q: %v", s, err)
	}
	return dataplane.ServiceKey{Proto: p, Addr: ap.Addr().Unmap(), Port: ap.Port()}, nil
}
