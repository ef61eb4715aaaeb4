// Package xdp is the eBPF/XDP dataplane of govs: a director in the
// driver's receive path. The C programs under bpf/ look services up by
// (protocol, address, port) — port lists and ranges included — track
// connections in an LRU table with IPVS states and timeouts, keep
// persistence templates, schedule new flows through per-service tables
// the Go side computes from internal/sched, and forward by direct routing
// (destination MAC rewrite) or IP-in-IP / IP6-in-IP6 tunnelling. Programs
// and maps are pinned in bpffs so a restarted process adopts the running
// state without interrupting traffic.
//
// The objects are compiled by bpf2go (gen.go) and committed; Linux only.
// On other systems New returns dataplane.ErrNotSupported.
package xdp

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/govs/govs/internal/dataplane"
)

// DefaultPinPath is where programs and maps are pinned unless
// Options.PinPath says otherwise.
const DefaultPinPath = "/sys/fs/bpf/govs"

// Defaults of Options.
const (
	DefaultConnTableSize    = 1 << 20
	DefaultPersistTableSize = 1 << 16
	DefaultSyncInterval     = time.Second
	DefaultRingSize         = 1024
)

// Mode is how the program is attached to an interface.
type Mode int

const (
	// Native attaches in the driver (XDP_FLAGS_DRV_MODE). The default.
	Native Mode = iota
	// Generic attaches after the kernel allocated the socket buffer
	// (XDP_FLAGS_SKB_MODE): works everywhere, much slower. Only used when
	// asked for; govs never falls back to it silently.
	Generic
)

// String is the mode's name as govs run --xdp-mode and govs_xdp_mode
// spell it: "native" or "generic".
func (m Mode) String() string {
	if m == Generic {
		return "generic"
	}
	return "native"
}

// Options configure an XDP dataplane. The zero value of each field means
// its default.
type Options struct {
	// Interfaces the director program attaches to (receive side). At
	// least one.
	Interfaces []string
	// Mode is the attach mode for every interface.
	Mode Mode
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
	// Timeouts are the connection timeouts (ipvsadm --set); zero fields
	// take dataplane.DefaultTimeouts.
	Timeouts dataplane.Timeouts
	// ConnTableSize is the number of entries of the LRU connection table
	// (default 1<<20, about 100 bytes each). Changing it requires the
	// pinned state to be removed (RemovePinned).
	ConnTableSize int
	// NATTableSize is the number of entries of the LRU table of NAT and
	// SNAT reply mappings (nat_tbl), one per NAT/SNAT connection of
	// either family, plus dead SNAT bindings awaiting reuse. Default
	// 2 × ConnTableSize (the IPv4 and the IPv6 connection tables each
	// hold ConnTableSize), so a full connection table does not evict
	// live mappings. About 150 bytes each.
	NATTableSize int
	// PersistTableSize is the number of persistence templates (LRU).
	PersistTableSize int
	// PinPath is the bpffs directory for pinned programs, links and maps
	// (default DefaultPinPath). bpffs is mounted on /sys/fs/bpf when it is
	// not.
	PinPath string
	// KeepOnClose leaves programs attached and maps pinned on Close, so
	// forwarding continues and the next process adopts the state (a
	// restart or upgrade). Without it Close detaches and removes the pins.
	KeepOnClose bool
	// SyncInterval is how often the Go side walks the connection table
	// (expiry, active/inactive counts for the schedulers and thresholds)
	// and recomputes scheduling tables while they depend on the counts;
	// otherwise it syncs when something falls due, when Stats finds the
	// counts older than 250 ms, and at least every 10 intervals
	// (nextSync). Default 1s.
	SyncInterval time.Duration
	// RingSize is the number of slots of the scheduling table of the
	// stateful schedulers (rr, wrr, lc, wlc, ...). Default 1024.
	RingSize int
	// SloppyTCP schedules TCP packets that match no connection even
	// without SYN (IPVS sloppy_tcp), for active-active directors.
	SloppyTCP bool
	// TunnelSource4 and TunnelSource6, when valid, are prefixes from which
	// the outer source address of tunnelled packets is chosen per flow
	// (low bits from a flow hash), so real servers' receive-side scaling
	// spreads flows. Otherwise the director's preferred source toward
	// the real server is used. For IPv6 at most the low 32 bits vary.
	TunnelSource4 netip.Prefix
	TunnelSource6 netip.Prefix
	// Masquerade, when set, installs an nftables rule (table inet
	// govs_xdp, needs the nft command) that masquerades traffic from
	// these networks leaving for others: what the real servers of a NAT
	// layout originate themselves, such as active-FTP data from port 20
	// (seed 001 §3.5.3.1). It is removed on Close unless KeepOnClose.
	Masquerade []netip.Prefix
}

// State names of connection entries, indexed by the BPF state number.
var stateNames = [...]string{"NONE", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE", "UDP"}

// ExitReasons names the exit counters of the director program in their
// BPF order; Exits reports them by these names.
var exitNames = [...]string{
	"pass_not_ip", "pass_no_service", "pass_fragment", "pass_other_proto",
	"pass_ipv6_ext", "pass_icmp", "pass_tcp_nosyn", "pass_nat_method",
	"drop_malformed", "drop_no_dest", "drop_no_neigh", "drop_adjust",
	"drop_toobig", "tx_dr", "redirect_dr", "tx_tun", "redirect_tun",
	"tx_icmp_toobig", "tx_icmp_related", "redirect_icmp_related",
	"tx_nat", "redirect_nat", "tx_nat_reply", "redirect_nat_reply", "pass_nat_reply",
	"tx_snat", "redirect_snat", "drop_snat_exhausted",
}

// eventNames names the event counters (not exits).
var eventNames = [...]string{"conn_new", "conn_expired", "persist_hit", "sorry", "conn_state", "fc_miss"}

// ExitReasons returns the names of every exit reason of the director
// program, in a stable order (for metrics: one label value each).
func ExitReasons() []string { return append([]string(nil), exitNames[:]...) }
