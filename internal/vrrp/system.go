package vrrp

import (
	"context"
	"errors"
	"net/netip"
	"time"
)

// ErrNotSupported is returned by the I/O adapters on platforms other than
// Linux.
var ErrNotSupported = errors.New("vrrp: not supported on this system")

// ErrNotYet is wrapped by the errors of OpenConn and SetupVMAC that may
// go away by themselves: the interface is missing, or the source address
// is not (yet) an address of the host. The instance then waits in FAULT
// (Node retries) instead of failing the start or the reload.
var ErrNotYet = errors.New("not there yet")

// AddrState is what LocalAddrs says of an address of this host.
type AddrState uint8

const (
	// AddrUsable can be a source address.
	AddrUsable AddrState = iota + 1
	// AddrTentative is under duplicate address detection (IPv6): it can
	// be a source once that ends, in a second or two.
	AddrTentative
	// AddrDADFailed is another host's (duplicate address detection
	// failed): it will not become usable.
	AddrDADFailed
)

// System is the I/O a Node needs. NewLinuxSystem implements it with raw
// sockets and netlink; tests use a fake.
type System interface {
	// OpenConn opens the advertisement socket of an instance (joined to
	// the multicast group, or ready for unicast to its peers).
	OpenConn(ctx context.Context, cfg *InstanceConfig) (Conn, error)
	// AddAddresses installs the virtual addresses and routes; it is
	// idempotent.
	AddAddresses(ctx context.Context, cfg *InstanceConfig) error
	// RestoreRoutes adds the routes and rules of cfg, not no_track ones,
	// that are not installed, and returns how many it added.
	RestoreRoutes(ctx context.Context, cfg *InstanceConfig) (int, error)
	// RemoveAddresses removes them; missing ones are not an error.
	RemoveAddresses(ctx context.Context, cfg *InstanceConfig) error
	// Announce sends one gratuitous ARP (IPv4) or unsolicited neighbour
	// advertisement (IPv6) per virtual address.
	Announce(ctx context.Context, cfg *InstanceConfig) error
	// SetupVMAC creates the use_vmac interface of an instance (cfg.VMAC),
	// or adopts one an earlier run left with the right parent and MAC,
	// prepares it and brings it up. The Node calls it before OpenConn.
	SetupVMAC(ctx context.Context, cfg *InstanceConfig) error
	// RemoveVMAC deletes it and restores what SetupVMAC changed on the
	// parent interface; a missing one is not an error.
	RemoveVMAC(ctx context.Context, cfg *InstanceConfig) error
	// LocalAddrs lists the addresses of this host, each with whether it
	// can be a source yet (AddrUsable), is still being checked for
	// duplicates (AddrTentative) or failed that check (AddrDADFailed).
	// The Node reads it every second to check its adverts' sources and
	// its MASTER instances' virtual addresses.
	LocalAddrs(ctx context.Context) (map[netip.Addr]AddrState, error)
	// LinkIndex is the index of an interface; an error wrapping
	// ErrNotYet when there is none of that name.
	LinkIndex(ctx context.Context, name string) (int, error)
	// LinkUp reports whether an interface is up and running.
	LinkUp(ctx context.Context, name string) (bool, error)
	// WatchLinks calls fn on every link state change until ctx is done.
	WatchLinks(ctx context.Context, fn func(name string, up bool)) error
}

// Conn sends and receives the adverts of one instance.
type Conn interface {
	// LocalAddr is the source address of our adverts.
	LocalAddr() netip.Addr
	// Device is the interface the socket is bound to, with the index it
	// had when the socket opened ("" if none).
	Device() (name string, index int)
	// Send sends an encoded advert to the group or to every unicast peer.
	Send(a *Advert) error
	// Recv blocks for the next VRRP packet; it fails once Close was called.
	Recv() (Packet, error)
	Close() error
}

// Packet is a received VRRP packet (the IP payload) with the IP header
// fields the receive checks need.
type Packet struct {
	Src, Dst netip.Addr
	// TTL or hop limit; -1 if unknown.
	TTL  int
	Data []byte
	// ChecksumVerified is set when the kernel already checked it.
	ChecksumVerified bool
	// Drop is set when the socket refused the packet (an AH packet that
	// fails its check): it is counted, not parsed.
	Drop DropReason
	// accept, when set, takes the packet's AH sequence number (false: a
	// replay); the node calls it once the packet's socket is known to be
	// the instance's.
	accept   func() bool
	Received time.Time
}

// Notifier receives state notifications (notify scripts, SMTP alerts).
// The director wires internal/notify to it. Calls are made in order from
// one goroutine; a slow Notifier delays later notifications, never VRRP.
type Notifier interface {
	Notify(ctx context.Context, ev NotifyEvent)
}

// NotifyEvent carries what keepalived passes to its notify scripts
// ("INSTANCE"|"GROUP", name, state, priority) plus the scripts configured
// for the instance or group.
type NotifyEvent struct {
	// Type is "INSTANCE" or "GROUP".
	Type     string        `json:"type"`
	Name     string        `json:"name"`
	State    State         `json:"state"`
	Priority int           `json:"priority"`
	Scripts  NotifyScripts `json:"scripts,omitzero"`
	// SMTPAlert is set when the instance or group has smtp_alert.
	SMTPAlert bool `json:"smtp_alert,omitempty"`
	// Repeat marks a re-notification of MASTER after a split brain.
	Repeat bool `json:"repeat,omitempty"`
	// PriorityChange marks a notification of a new effective priority
	// in the same state (notify_priority_changes): for the notify script
	// alone, as keepalived sends it.
	PriorityChange bool `json:"priority_change,omitempty"`
	// RxLowerPri marks notify_master_rx_lower_pri: a MASTER heard an
	// advert of a lower priority.
	RxLowerPri bool `json:"rx_lower_pri,omitempty"`
	// Deleted marks the STOP of an instance a reload deleted:
	// keepalived notifies it as FAULT, or DELETED with notify_deleted.
	Deleted bool `json:"deleted,omitempty"`
	// WasFault: the deleted instance was in FAULT (keepalived then
	// notifies nothing, unless notify_deleted).
	WasFault bool      `json:"was_fault,omitempty"`
	Time     time.Time `json:"time"`
}

// allVIPs returns the advertised and the excluded virtual addresses.
func allVIPs(cfg *InstanceConfig) []VirtualIP {
	return append(append([]VirtualIP(nil), cfg.VirtualIPs...), cfg.VirtualIPsExcluded...)
}
