package statefiles

import (
	"bufio"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/govs/govs/internal/vrrp"
)

// Stats are the counters of one instance as keepalived.stats and
// keepalived.json show them (keepalived's names in the JSON tags, in its
// order).
type Stats struct {
	AdvertRcvd        uint64 `json:"advert_rcvd"`
	AdvertSent        uint64 `json:"advert_sent"`
	BecomeMaster      uint64 `json:"become_master"`
	ReleaseMaster     uint64 `json:"release_master"`
	PacketLenErr      uint64 `json:"packet_len_err"`
	AdvertIntervalErr uint64 `json:"advert_interval_err"`
	IPTTLErr          uint64 `json:"ip_ttl_err"`
	InvalidTypeRcvd   uint64 `json:"invalid_type_rcvd"`
	AddrListErr       uint64 `json:"addr_list_err"`
	InvalidAuthType   uint64 `json:"invalid_authtype"`
	AuthTypeMismatch  uint64 `json:"authtype_mismatch"`
	AuthFailure       uint64 `json:"auth_failure"`
	PriZeroRcvd       uint64 `json:"pri_zero_rcvd"`
	PriZeroSent       uint64 `json:"pri_zero_sent"`
}

// StatsOf maps govs's counters onto keepalived's.
func StatsOf(c *vrrp.Counters) Stats {
	d := c.Dropped
	return Stats{
		AdvertRcvd:        c.AdvertsReceived,
		AdvertSent:        c.AdvertsSent,
		BecomeMaster:      c.BecameMaster,
		ReleaseMaster:     c.ReleasedMaster,
		PacketLenErr:      d[vrrp.DropShort] + d[vrrp.DropLength],
		AdvertIntervalErr: d[vrrp.DropInterval],
		IPTTLErr:          d[vrrp.DropTTL],
		InvalidTypeRcvd:   d[vrrp.DropType],
		AddrListErr:       c.AddressListErrors,
		AuthTypeMismatch:  d[vrrp.DropAuthType],
		AuthFailure:       d[vrrp.DropAuth] + d[vrrp.DropReplay],
		PriZeroRcvd:       c.PriorityZeroReceived,
		PriZeroSent:       c.PriorityZeroSent,
	}
}

// minus is s less the counters at the last clear.
func (s Stats) minus(b Stats) Stats {
	sub := func(x, y uint64) uint64 { return x - min(x, y) }
	return Stats{
		sub(s.AdvertRcvd, b.AdvertRcvd), sub(s.AdvertSent, b.AdvertSent), sub(s.BecomeMaster, b.BecomeMaster),
		sub(s.ReleaseMaster, b.ReleaseMaster), sub(s.PacketLenErr, b.PacketLenErr), sub(s.AdvertIntervalErr, b.AdvertIntervalErr),
		sub(s.IPTTLErr, b.IPTTLErr), sub(s.InvalidTypeRcvd, b.InvalidTypeRcvd), sub(s.AddrListErr, b.AddrListErr),
		sub(s.InvalidAuthType, b.InvalidAuthType), sub(s.AuthTypeMismatch, b.AuthTypeMismatch), sub(s.AuthFailure, b.AuthFailure),
		sub(s.PriZeroRcvd, b.PriZeroRcvd), sub(s.PriZeroSent, b.PriZeroSent),
	}
}

// Clearer keeps the counters at keepalived's last STATS_CLEAR: govs's own
// counters only grow (the metrics are Prometheus counters), so the files
// show them less those.
type Clearer struct {
	mu   sync.Mutex
	base map[clearKey]Stats
}

// clearKey is an instance as it counts: a reload that makes it anew
// starts its counters again, and its baseline goes.
type clearKey struct {
	name    string
	started time.Time
}

// of returns the counters of st since the last clear.
func (c *Clearer) of(st *vrrp.InstanceStatus) Stats {
	s := StatsOf(&st.Counters)
	if c == nil {
		return s
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return s.minus(c.base[clearKey{st.Name, st.Started}])
}

// Clear makes the instances' counters count from 0 in the files.
func (c *Clearer) Clear(insts []vrrp.InstanceStatus) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.base = map[clearKey]Stats{}
	for i := range insts {
		c.base[clearKey{insts[i].Name, insts[i].Started}] = StatsOf(&insts[i].Counters)
	}
}

// WriteStats writes keepalived.stats: each instance's counters since
// the last clear.
func WriteStats(out io.Writer, in *Input, c *Clearer) error {
	w := bufio.NewWriter(out)
	for i := range in.VRRP.Instances {
		st := &in.VRRP.Instances[i]
		s := c.of(st)
		fmt.Fprintf(w, "VRRP Instance: %s\n", st.Name)
		fmt.Fprintf(w, "  Advertisements:\n    Received: %d\n    Sent: %d\n", s.AdvertRcvd, s.AdvertSent)
		fmt.Fprintf(w, "  Became master: %d\n  Released master: %d\n", s.BecomeMaster, s.ReleaseMaster)
		fmt.Fprintf(w, "  Packet Errors:\n    Length: %d\n    TTL: %d\n    Invalid Type: %d\n    Advertisement Interval: %d\n    Address List: %d\n",
			s.PacketLenErr, s.IPTTLErr, s.InvalidTypeRcvd, s.AdvertIntervalErr, s.AddrListErr)
		fmt.Fprintf(w, "  Authentication Errors:\n    Invalid Type: %d\n    Type Mismatch: %d\n    Failure: %d\n",
			s.InvalidAuthType, s.AuthTypeMismatch, s.AuthFailure)
		fmt.Fprintf(w, "  Priority Zero:\n    Received: %d\n    Sent: %d\n", s.PriZeroRcvd, s.PriZeroSent)
	}
	return w.Flush()
}
