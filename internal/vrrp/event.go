package vrrp

import (
	"fmt"
	"net/netip"
	"time"
)

// State is the VRRP state of an instance (RFC 5798 §6.4, plus keepalived's
// FAULT and STOP).
type State int

// States. StateStop is the state after a shutdown.
const (
	StateInit State = iota
	StateBackup
	StateMaster
	StateFault
	StateStop
)

var stateNames = [...]string{"INIT", "BACKUP", "MASTER", "FAULT", "STOP"}

func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// MarshalText renders the state as keepalived names it (MASTER, BACKUP…).
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a state name.
func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("unknown vrrp state %q", b)
}

// Event is an input to Machine.Step.
type Event interface{ event() }

// EventStartup starts the instance (RFC 5798 §6.4.1 Startup event).
type EventStartup struct {
	// AfterWait: the start of a sync group member held back while
	// another member waited for a script's first result; if the group
	// is in FAULT by then, the member enters it without a notification
	// of its own, as keepalived.
	AfterWait bool
}

// EventShutdown stops the instance: a MASTER sends a priority 0 advert and
// releases its addresses.
type EventShutdown struct {
	// Deleted: a reload deleted the instance (its notification says so,
	// NotifyEvent.Deleted).
	Deleted bool
}

// EventTimer tells the machine that time has passed; it fires every timer
// due at now. Drivers send it at NextDeadline.
type EventTimer struct{}

// EventAdvert is a received advertisement that passed decoding.
type EventAdvert struct {
	Src netip.Addr
	// TTL is the received TTL / hop limit; -1 if unknown.
	TTL int
	// Unicast is set when the packet was not addressed to the group.
	Advert Advert
}

// EventTrack reports the state of one tracked object (interface, script
// or file); Key is the tracker's Key.
type EventTrack struct {
	Key   string
	OK    bool
	Value int
}

// EventSync forces the state chosen by a sync group peer.
type EventSync struct {
	Group string
	State State
}

func (EventStartup) event()  {}
func (EventShutdown) event() {}
func (EventTimer) event()    {}
func (EventAdvert) event()   {}
func (EventTrack) event()    {}
func (EventSync) event()     {}

// Action is an output of Machine.Step for the I/O adapter to execute, in
// order.
type Action interface{ action() }

// ActionSendAdvert sends one advertisement with the given priority.
type ActionSendAdvert struct{ Priority uint8 }

// ActionAddAddresses installs the virtual addresses and routes.
type ActionAddAddresses struct{}

// ActionRemoveAddresses removes the virtual addresses and routes.
type ActionRemoveAddresses struct{}

// ActionAnnounce sends Repeat gratuitous ARPs (IPv4) or unsolicited
// neighbour advertisements (IPv6) for every virtual address.
type ActionAnnounce struct {
	Repeat int
	Reason string
	// Extra: only the addresses garp_extra_if refreshes (extraIfVIPs).
	Extra bool
}

// ActionTransition records a state change.
type ActionTransition struct {
	From, To State
	Reason   string
	// BySync is set when a sync group forced the change; the group must
	// not propagate it again.
	BySync bool
}

// ActionNotify runs the notify scripts / alerts for State (MASTER, BACKUP,
// FAULT or STOP) with the effective priority.
type ActionNotify struct {
	State    State
	Priority int
	// Repeat is set when a MASTER re-notifies after a split brain.
	Repeat bool
	// RxLowerPri is set for notify_master_rx_lower_pri: a MASTER heard an
	// advert of a lower priority.
	RxLowerPri bool
	// Deleted marks the STOP of an instance a reload deleted; WasFault
	// says it was in FAULT then.
	Deleted, WasFault bool
}

// ActionDrop counts a discarded advert.
type ActionDrop struct {
	Reason DropReason
	Src    netip.Addr
}

func (ActionSendAdvert) action()      {}
func (ActionAddAddresses) action()    {}
func (ActionRemoveAddresses) action() {}
func (ActionAnnounce) action()        {}
func (ActionTransition) action()      {}
func (ActionNotify) action()          {}
func (ActionDrop) action()            {}

// Transition is one entry of an instance's transition history.
type Transition struct {
	Time   time.Time `json:"time"`
	From   State     `json:"from"`
	To     State     `json:"to"`
	Reason string    `json:"reason"`
}
