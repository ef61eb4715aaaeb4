package xdp

import (
	"fmt"

	"github.com/govs/govs/internal/dataplane"
)

// replyWords is REPLY_PORT_WORDS in bpf/lb.h: a bit per port.
const replyWords = 65536 / 64

// portSet is the reply_ports bitmap.
type portSet [replyWords]uint64

func (p *portSet) add(port uint16) { p[port>>6] |= 1 << (port & 63) }

// replyPorts is the set of source ports the NAT and SNAT replies of svcs
// can have: a real server's port, or, for one that keeps the client's
// destination port (port 0), every port of its service. exact is false
// when that includes every port (a NAT real server with port 0 behind a
// service that matches any port): the program then looks every packet
// that misses the connection table up as a reply, as without the set.
func replyPorts(svcs []dataplane.Service) (set portSet, exact bool) {
	exact = true
	for _, s := range svcs {
		reals := s.RealServers
		if s.Sorry != nil {
			reals = append(reals[:len(reals):len(reals)], *s.Sorry)
		}
		for _, r := range reals {
			if r.Method != dataplane.NAT && r.Method != dataplane.SNAT {
				continue
			}
			if p := r.Addr.Port(); p != 0 {
				set.add(p)
				continue
			}
			ports := s.Ports
			if len(ports) == 0 {
				ports = []dataplane.PortRange{{From: s.Key.Port, To: s.Key.Port}}
			}
			for _, pr := range ports {
				if pr.From == 0 {
					exact = false
				}
				for p := max(int(pr.From), 1); p <= int(pr.To); p++ {
					set.add(uint16(p))
				}
			}
		}
	}
	return set, exact
}

// writeReplyPorts makes reply_ports equal to set, or, with union, adds
// set to what it holds. Apply adds the new configuration's ports before
// it changes the services and makes the set exact once they are all in
// place; after a failed Apply the program does without the set (the
// services stand somewhere between the two configurations) until an
// Apply succeeds. A reply is never refused for a port still, or already,
// in use.
func (d *Dataplane) writeReplyPorts(set portSet, union bool) error {
	if d.replyHeld == nil { // first write of this process: the pinned map may hold a set
		var held portSet
		if err := walkMap(d.objs.ReplyPorts, func(k *uint32, v *uint64) {
			if *k < replyWords {
				held[*k] = *v
			}
		}); err != nil {
			return fmt.Errorf("read reply ports: %w", err)
		}
		d.replyHeld = &held
	}
	held := d.replyHeld
	var keys []uint32
	var vals []uint64
	for i, w := range set {
		cur := held[i]
		if union {
			w |= cur
		}
		if w != cur {
			keys = append(keys, uint32(i))
			vals = append(vals, w)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	if _, err := d.objs.ReplyPorts.BatchUpdate(keys, vals, nil); err != nil {
		d.replyHeld = nil // part may have been written: read it again next time
		return fmt.Errorf("write reply ports: %w", err)
	}
	for i, k := range keys {
		held[k] = vals[i]
	}
	return nil
}
