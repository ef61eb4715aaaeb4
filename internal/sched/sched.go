// Package sched holds the IPVS schedulers and persistence as pure Go: the
// reference semantics that every dataplane must match. The userspace proxy
// calls it directly; the XDP dataplane mirrors it in BPF and a conformance
// test compares the two.
//
// A Scheduler chooses a real server (a *Dest) for a new flow. Dests carry
// the per-server state the schedulers read (weight, thresholds, active and
// inactive connection counts), updated by the dataplane through the
// connection hooks on Dest. Everything here is safe for concurrent use.
package sched

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sort"
	"strings"
	"sync/atomic"
	"time"
)

// Protocol numbers as in IP headers.
const (
	TCP  uint8 = 6
	UDP  uint8 = 17
	SCTP uint8 = 132
)

// Flow is the key of a new flow as the scheduler sees it.
type Flow struct {
	Proto uint8
	Src   netip.AddrPort // client
	Dst   netip.AddrPort // virtual address and port the client asked for
	Mark  uint32         // firewall mark, 0 if none
}

// MaxWeight is the largest weight IPVS accepts.
const MaxWeight = 65535

// Dest is a real server as schedulers see it. Create it with NewDest; the
// dataplane reports connection life cycle through ConnOpened,
// ConnStateChanged and ConnClosed so that least-connection schedulers and
// thresholds see the same numbers IPVS would.
type Dest struct {
	Addr netip.AddrPort

	weight     atomic.Int32
	lastWeight atomic.Int32 // last non-zero weight (IPVS last_weight, used by mh)
	uthreshold atomic.Uint32
	lthreshold atomic.Uint32
	active     atomic.Int64
	inactive   atomic.Int64
	persist    atomic.Int64
	overloaded atomic.Bool
}

// NewDest returns a Dest for addr with the given weight (0..65535).
func NewDest(addr netip.AddrPort, weight int) *Dest {
	d := &Dest{Addr: addr}
	d.SetWeight(weight)
	return d
}

func (d *Dest) String() string { return d.Addr.String() }

// Weight is the current weight; 0 means quiescent.
func (d *Dest) Weight() int { return int(d.weight.Load()) }

// SetWeight changes the weight, clamped to 0..MaxWeight.
func (d *Dest) SetWeight(w int) {
	if w < 0 {
		w = 0
	}
	if w > MaxWeight {
		w = MaxWeight
	}
	d.weight.Store(int32(w))
	if w > 0 {
		d.lastWeight.Store(int32(w))
	}
}

// LastWeight is the last non-zero weight the server had (IPVS
// last_weight): a quiesced server keeps its Maglev table slots.
func (d *Dest) LastWeight() int { return int(d.lastWeight.Load()) }

// SetThresholds sets the upper and lower connection thresholds (0 = unset)
// and re-evaluates the overload state. As in IPVS, removing the upper
// threshold or raising it clears the overload flag.
func (d *Dest) SetThresholds(upper, lower uint32) {
	old := d.uthreshold.Swap(upper)
	d.lthreshold.Store(lower)
	if upper == 0 || upper > old {
		d.overloaded.Store(false)
	}
	d.updateOverload()
}

// Thresholds returns the upper and lower connection thresholds.
func (d *Dest) Thresholds() (upper, lower uint32) {
	return d.uthreshold.Load(), d.lthreshold.Load()
}

// ActiveConns is the number of connections in an active state
// (TCP ESTABLISHED, as IPVS counts them).
func (d *Dest) ActiveConns() int64 { return d.active.Load() }

// InactiveConns is the number of connections in any other state
// (SYN_RECV, FIN_WAIT, TIME_WAIT, UDP, ...).
func (d *Dest) InactiveConns() int64 { return d.inactive.Load() }

// PersistConns is the number of persistence templates pointing here.
func (d *Dest) PersistConns() int64 { return d.persist.Load() }

// Overhead is the IPVS load figure of the least-connection family:
// active × 256 + inactive.
func (d *Dest) Overhead() int64 { return d.active.Load()<<8 + d.inactive.Load() }

// Overloaded reports whether the upper threshold stops new connections.
func (d *Dest) Overloaded() bool { return d.overloaded.Load() }

// RestoreOverload sets the overload flag back to a value read with
// Overloaded before a simulation that opened connections on d and closed
// them again: the threshold rule's hysteresis would otherwise keep what
// the simulation's peak decided.
func (d *Dest) RestoreOverload(was bool) { d.overloaded.Store(was) }

// Available reports whether the server may take a new connection:
// weight > 0 and not overloaded.
func (d *Dest) Available() bool { return d.Weight() > 0 && !d.Overloaded() }

// ConnOpened records a new connection in the given state.
func (d *Dest) ConnOpened(active bool) {
	if active {
		d.active.Add(1)
	} else {
		d.inactive.Add(1)
	}
	d.updateOverload()
}

// ConnStateChanged records a connection moving between the active and
// inactive states. A call with equal states does nothing. A connection
// that ResetConns forgot stays uncounted.
func (d *Dest) ConnStateChanged(wasActive, nowActive bool) {
	if wasActive == nowActive {
		return
	}
	if nowActive {
		if decNonNeg(&d.inactive) {
			d.active.Add(1)
		}
	} else {
		if decNonNeg(&d.active) {
			d.inactive.Add(1)
		}
	}
}

// ConnClosed records the end of a connection that was in the given state.
// Counters never go below zero, so closing connections opened before a
// ResetConns is harmless.
func (d *Dest) ConnClosed(active bool) {
	if active {
		decNonNeg(&d.active)
	} else {
		decNonNeg(&d.inactive)
	}
	d.updateOverload()
}

// decNonNeg decrements a unless it is already zero; it reports whether it
// did.
func decNonNeg(a *atomic.Int64) bool {
	for {
		v := a.Load()
		if v <= 0 {
			return false
		}
		if a.CompareAndSwap(v, v-1) {
			return true
		}
	}
}

// SetConns sets the connection counters to counts taken elsewhere (a
// walk of a connection table) and evaluates the overload state once,
// on the new total: stepping through the counts one connection at a
// time could cross a threshold the server never reached.
func (d *Dest) SetConns(active, inactive int64) {
	d.active.Store(max(active, 0))
	d.inactive.Store(max(inactive, 0))
	d.updateOverload()
}

// ResetConns zeroes the connection counters (Piranha's quiesce_server:
// a server re-entering the pool starts with fresh least-connection state).
func (d *Dest) ResetConns() {
	d.active.Store(0)
	d.inactive.Store(0)
	d.updateOverload()
}

// updateOverload applies the IPVS threshold rule: a server whose total
// connections reach the upper threshold takes no new ones until they fall
// below the lower threshold, or below 3/4 of the upper one when no lower
// threshold is set.
func (d *Dest) updateOverload() {
	upper, lower := d.uthreshold.Load(), d.lthreshold.Load()
	if upper == 0 {
		d.overloaded.Store(false)
		return
	}
	total := d.active.Load() + d.inactive.Load()
	if total >= int64(upper) {
		d.overloaded.Store(true)
		return
	}
	if !d.overloaded.Load() {
		return
	}
	// IPVS (ip_vs_unbind_dest): below the lower threshold, or, without
	// one, below 3/4 of the upper one (total*4 < upper*3, no rounding).
	if lower != 0 {
		if total < int64(lower) {
			d.overloaded.Store(false)
		}
		return
	}
	if total*4 < int64(upper)*3 {
		d.overloaded.Store(false)
	}
}

// Scheduler picks a real server for a new flow.
type Scheduler interface {
	// Name is the IPVS name of the scheduler ("wlc", "mh", ...).
	Name() string
	// Update replaces the set of destinations. Order matters for the
	// deterministic schedulers (rr, wrr, fo, ...) and is the config order.
	// Dests keep their identity across updates: the same *Dest passed again
	// keeps its counters. wrr, sh, dh and mh compute their tables from
	// the weights here (IPVS does so on every server change): call Update
	// again after SetWeight. Quiescing (weight 0) and overload are read
	// live by every scheduler and need no Update.
	Update(dests []*Dest)
	// Pick returns the destination for a new flow, or nil when no
	// destination can take it (none, all quiescent or overloaded).
	Pick(f Flow) *Dest
}

// Flags are scheduler flags (ipvsadm -b).
type Flags struct {
	Fallback bool // sh-fallback / mh-fallback
	Port     bool // sh-port / mh-port: hash the source port too
}

// Options configure a scheduler beyond its flags. The zero value gives
// IPVS defaults. Options stays comparable with == (interfaces, no funcs).
type Options struct {
	Flags Flags
	// TableSize is the Maglev lookup table size (a prime); 0 = 4093,
	// as a stock kernel's IPVS (DefaultMaglevTableSize).
	TableSize int
	// HashBits sizes the sh and dh bucket tables to 1<<HashBits; 0 = 8
	// (256 buckets, the IPVS default CONFIG_IP_VS_SH_TAB_BITS). Range 1..20.
	HashBits int
	// Expiration is the lblc/lblcr idle expiry of a destination-address
	// entry and the lblcr set-shrink interval (sysctl lblc_expiration,
	// lblcr_expiration); 0 = 24h.
	Expiration time.Duration
	// Clock is the time source of lblc/lblcr; nil = the system clock.
	Clock Clock
	// Rand is the random source of twos; nil = math/rand/v2's global
	// source. An injected source is serialised with a mutex.
	Rand rand.Source
}

// Clock tells the time; tests inject a fake one.
type Clock interface {
	Now() time.Time
}

// Names lists every scheduler New accepts, sorted.
func Names() []string {
	names := make([]string, 0, len(constructors))
	for n := range constructors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Known reports whether name is a scheduler New accepts.
func Known(name string) bool {
	_, ok := constructors[strings.ToLower(name)]
	return ok
}

// New returns the scheduler called name (IPVS names, case-insensitive).
func New(name string, opts Options) (Scheduler, error) {
	c, ok := constructors[strings.ToLower(name)]
	if !ok {
		return nil, fmt.Errorf("unknown scheduler %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	s, err := c(opts)
	if err != nil {
		return nil, fmt.Errorf("scheduler %s: %w", strings.ToLower(name), err)
	}
	return s, nil
}

// constructors (schedulers.go) maps IPVS scheduler names to their
// constructors; it is a literal table, never modified at run time.
