// Package dataplane defines the contract between the director and the
// packet-moving engines (userspace proxy, XDP, kernel IPVS): the director
// hands a dataplane the complete list of effective services and the
// dataplane makes its forwarding state equal to it, applying only the
// difference.
package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"
)

// ErrNotSupported is returned by dataplanes that cannot run on this
// platform or kernel.
var ErrNotSupported = errors.New("dataplane not supported on this system")

// Dataplane moves packets for a set of virtual services.
type Dataplane interface {
	// Apply makes the forwarding state equal to svcs. It is idempotent and
	// applies only the difference: services and real servers that did not
	// change keep their counters and established connections.
	Apply(ctx context.Context, svcs []Service) error
	// Stats returns per-service and per-real-server counters. Under a
	// context from CountersOnly, the connection counts (Active,
	// Inactive) may be those of the dataplane's last refresh.
	Stats(ctx context.Context) (Snapshot, error)
	// Conns walks the connection table (persistence templates included)
	// until fn returns false.
	Conns(ctx context.Context, fn func(Conn) bool) error
	// Close stops forwarding (or, for dataplanes that can, leaves the
	// forwarding state in place when asked to persist) and releases
	// resources. It is safe to call more than once.
	Close() error
}

type countersOnlyKey struct{}

// CountersOnly marks ctx for a Stats call that needs the traffic
// counters but not fresh connection counts (the director's rate
// estimator): a dataplane that counts connections by walking its
// connection table may then report the counts of its last walk instead
// of walking again.
func CountersOnly(ctx context.Context) context.Context {
	return context.WithValue(ctx, countersOnlyKey{}, true)
}

// IsCountersOnly reports whether ctx comes from CountersOnly.
func IsCountersOnly(ctx context.Context) bool {
	v, _ := ctx.Value(countersOnlyKey{}).(bool)
	return v
}

// Protocol numbers (IANA).
type Proto uint8

const (
	TCP  Proto = 6
	UDP  Proto = 17
	SCTP Proto = 132
)

func (p Proto) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	case SCTP:
		return "SCTP"
	case 0:
		return "IP" // firewall-mark persistence templates, as ipvsadm -Lc shows them
	}
	return "proto" + strconv.Itoa(int(p))
}

// Method is a forwarding method.
type Method uint8

const (
	NAT   Method = iota // masquerading: destination rewritten, replies via the director
	DR                  // direct routing: destination MAC rewritten ("gatewaying")
	TUN                 // IP-in-IP tunnelling
	SNAT                // source NAT / full-NAT: source and destination rewritten
	Local               // real server is an address of the director itself
)

// String returns the name ipvsadm -L prints in its Forward column.
func (m Method) String() string {
	switch m {
	case NAT:
		return "Masq"
	case DR:
		return "Route"
	case TUN:
		return "Tunnel"
	case SNAT:
		return "FullNat"
	case Local:
		return "Local"
	}
	return "Method" + strconv.Itoa(int(m))
}

// ServiceKey identifies a virtual service: either protocol + address +
// port, or a firewall mark (FWMark != 0, address and port unset; Family
// tells IPv4 from IPv6 as ipvsadm -f … -6 does).
type ServiceKey struct {
	Proto  Proto
	Addr   netip.Addr
	Port   uint16
	FWMark uint32
	V6     bool // for firewall-mark services only
}

// String renders the key the way ipvsadm -Ln does ("TCP  1.2.3.4:80",
// "FWM  5", "FWM  5 IPv6").
func (k ServiceKey) String() string {
	if k.FWMark != 0 {
		s := "FWM  " + strconv.FormatUint(uint64(k.FWMark), 10)
		if k.V6 {
			s += " IPv6"
		}
		return s
	}
	return fmt.Sprintf("%-4s %s", k.Proto, netip.AddrPortFrom(k.Addr, k.Port))
}

// PortRange is an inclusive range of ports; a single port has From == To.
type PortRange struct{ From, To uint16 }

// Service is one effective virtual service as the director computed it.
type Service struct {
	Key ServiceKey
	// Name is the configured name (for logs and metrics), may be empty.
	Name string
	// VIPs and Ports describe what a firewall-mark or multi-port service
	// matches when the dataplane classifies packets itself (it has no
	// firewall marks to read): each (proto, VIP, port in Ports). For a
	// plain service they are empty and Key says everything. Protos lists
	// the protocols a firewall-mark service carries.
	VIPs   []netip.Addr
	Ports  []PortRange
	Protos []Proto

	Scheduler  string   // IPVS name: rr, wrr, lc, wlc, ...
	SchedFlags []string // sh-fallback, sh-port, mh-fallback, mh-port, flag-1..3
	// MHTableSize is the Maglev table size when Scheduler is "mh" (0 = 4093,
	// as a stock kernel's IPVS).
	MHTableSize int
	// Persistence is the persistence timeout; 0 disables persistence.
	Persistence time.Duration
	// PersistMask is the prefix length applied to client addresses for
	// persistence (32 = 255.255.255.255 for IPv4, 128 for IPv6).
	PersistMask int
	// OnePacket is ipvsadm -o: schedule each UDP datagram on its own.
	OnePacket bool
	// ProxyProtocol asks the userspace proxy to send a PROXY protocol
	// header (1 or 2) to real servers; 0 = none.
	ProxyProtocol int

	// SourcePool is where source-NAT (SNAT) real servers of this service
	// take their translated client source from (a govs_snat_pool named by
	// the virtual server's snat_pool); nil: the director's own address
	// toward each real server.
	SourcePool *SourcePool

	RealServers []RealServer
	// Sorry, when set, takes new connections while no real server can
	// (none configured, all quiescent or all over their thresholds).
	Sorry *RealServer
}

// SourcePool is a set of director-owned source addresses and the port
// range source NAT allocates from on each of them.
type SourcePool struct {
	Name      string
	Addresses []netip.Addr
	PortMin   uint16 // inclusive; 0 = 1024
	PortMax   uint16 // inclusive; 0 = 65535
}

// RealServer is one destination of a service.
type RealServer struct {
	Addr       netip.AddrPort
	Weight     int // 0..65535; 0 = quiescent
	Method     Method
	UThreshold uint32 // 0 = unset
	LThreshold uint32 // 0 = unset
}

// Timeouts are the connection timeouts (ipvsadm --set tcp tcpfin udp).
type Timeouts struct {
	TCP    time.Duration // established TCP, default 900 s
	TCPFin time.Duration // TCP after FIN, default 120 s
	UDP    time.Duration // UDP, default 300 s
}

// DefaultTimeouts are the IPVS defaults.
var DefaultTimeouts = Timeouts{TCP: 900 * time.Second, TCPFin: 120 * time.Second, UDP: 300 * time.Second}

// OrDefault returns t with every field that is not positive taken from
// DefaultTimeouts.
func (t Timeouts) OrDefault() Timeouts {
	d := DefaultTimeouts
	if t.TCP <= 0 {
		t.TCP = d.TCP
	}
	if t.TCPFin <= 0 {
		t.TCPFin = d.TCPFin
	}
	if t.UDP <= 0 {
		t.UDP = d.UDP
	}
	return t
}

// TimeoutSetter is a Dataplane whose connection timeouts change while it
// runs, as ipvsadm --set changes IPVS's: the director calls it when a
// reload changes lvs_timeouts and for govs set --timeouts. Fields that are not positive take
// DefaultTimeouts. A tracked connection is judged by the new timeouts
// from its next packet or idle check on.
type TimeoutSetter interface {
	SetTimeouts(Timeouts) error
}

// Counters are the IPVS statistics of a service or real server.
type Counters struct {
	Conns    uint64 `json:"conns"`
	InPkts   uint64 `json:"in_pkts"`
	OutPkts  uint64 `json:"out_pkts"`
	InBytes  uint64 `json:"in_bytes"`
	OutBytes uint64 `json:"out_bytes"`
}

// Add returns c + o.
func (c Counters) Add(o Counters) Counters {
	return Counters{c.Conns + o.Conns, c.InPkts + o.InPkts, c.OutPkts + o.OutPkts, c.InBytes + o.InBytes, c.OutBytes + o.OutBytes}
}

// Snapshot is a point-in-time copy of a dataplane's counters.
type Snapshot struct {
	Time     time.Time
	Services []ServiceStats
}

// ServiceStats are the counters of one service and its real servers.
type ServiceStats struct {
	Key ServiceKey
	Counters
	RealServers []RealServerStats
}

// RealServerStats are the counters of one real server of a service.
type RealServerStats struct {
	Addr netip.AddrPort
	Counters
	ActiveConns   int64
	InactiveConns int64
	PersistConns  int64
}

// Conn is one entry of the connection table.
type Conn struct {
	Proto   Proto
	Client  netip.AddrPort
	Virtual netip.AddrPort
	Real    netip.AddrPort
	// Local is the director-side source used toward the real server
	// (SNAT and the userspace proxy); unset otherwise.
	Local netip.AddrPort
	// State is the IPVS state name: ESTABLISHED, SYN_RECV, FIN_WAIT,
	// TIME_WAIT, CLOSE, UDP, NONE (persistence templates), ...
	State string
	// Expires is the time left before the entry times out.
	Expires time.Duration
	// Template marks a persistence template (client port 0, state NONE).
	Template bool
	// FWMark is set on firewall-mark service entries.
	FWMark uint32
	// Method is the real server's forwarding method.
	Method Method
}
