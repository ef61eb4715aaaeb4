package xdp

import (
	"context"
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/govs/govs/internal/dataplane"
)

// ImportConns takes connections another director made (its connection
// synchronisation, connsync) into the connection tables, so that their
// next packets here go to the real servers they already use. A
// connection is matched to a service of this director by its virtual
// address, port and protocol (or its firewall mark) and to one of the
// service's real servers by address and port; one without a match is
// left out. It expires here when it would have on the other director,
// unless packets here keep it alive. NAT and SNAT connections get their
// reply entries; persistence templates go to the template table.
// It returns how many connections it took.
func (d *Dataplane) ImportConns(ctx context.Context, conns []dataplane.Conn) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return 0, errors.New("xdp: dataplane closed")
	}
	byID := make(map[uint32]*service, len(d.svcs))
	for _, s := range d.svcs {
		byID[s.id] = s
	}
	now := monoNow()
	took := 0
	var errs []error
	for i := range conns {
		if ctx.Err() != nil {
			break
		}
		c := &conns[i]
		s := d.serviceFor(c, byID)
		if s == nil {
			continue
		}
		r := s.reals[c.Real]
		if r == nil && s.sorry != nil && s.sorry.spec.Addr == c.Real {
			r = s.sorry
		}
		if r == nil || r.gen == 0 {
			continue
		}
		var err error
		if c.Template {
			err = d.importTemplate(s, r, c, now)
		} else {
			err = d.importConn(s, r, c, now)
		}
		if err != nil {
			if len(errs) < 3 {
				errs = append(errs, fmt.Errorf("%s %s -> %s: %w", c.Proto, c.Client, c.Virtual, err))
			}
			continue
		}
		took++
	}
	if took > 0 {
		// the next sync walks the tables again for the counts
		d.walk.done = false
		d.syncSoon()
	}
	return took, errors.Join(errs...)
}

// serviceFor is the service that takes c's packets here: its firewall
// mark's, or the one the program would find for c's protocol, virtual
// address and port.
func (d *Dataplane) serviceFor(c *dataplane.Conn, byID map[uint32]*service) *service {
	if !c.Virtual.IsValid() && c.FWMark == 0 {
		return nil
	}
	if c.FWMark != 0 {
		v6 := c.Client.Addr().Is6()
		for k, s := range d.svcs {
			if k.FWMark == c.FWMark && k.V6 == v6 {
				return s
			}
		}
		return nil
	}
	addr, fam := addrBytes(c.Virtual.Addr())
	k := lbSvcKey{Proto: uint8(c.Proto), Family: fam, Port: htons(c.Virtual.Port()), Addr: addr}
	if id, ok := d.keyOwner[k]; ok {
		return byID[id]
	}
	k.Port = 0
	if id, ok := d.keyOwner[k]; ok {
		return byID[id]
	}
	return nil
}

// importState is the program's state for an IPVS state name: the
// program keeps SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE and UDP, and
// times the others out as the nearest of these.
func importState(c *dataplane.Conn) uint8 {
	if c.Proto == dataplane.UDP {
		return 5
	}
	switch c.State {
	case "ESTABLISHED":
		return 2
	case "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK":
		return 3
	case "TIME_WAIT", "CLOSE":
		return 4
	}
	return 1 // SYN_RECV, SYN_SENT, SYNACK, NONE
}

// lastSeen is the last_ns that makes an entry with timeout to expire in
// left from now.
func lastSeen(now, timeout uint64, left int64) uint64 {
	l := uint64(max(left, 0))
	if l >= timeout {
		return now
	}
	if back := timeout - l; back < now {
		return now - back
	}
	return 0
}

func (d *Dataplane) importConn(s *service, r *realState, c *dataplane.Conn, now uint64) error {
	if c.Proto != dataplane.TCP && c.Proto != dataplane.UDP {
		return errors.New("protocol not balanced by the xdp dataplane")
	}
	caddr, fam := addrBytes(c.Client.Addr())
	vaddr, vfam := addrBytes(c.Virtual.Addr())
	if fam != vfam {
		return errors.New("client and virtual addresses of different families")
	}
	k := lbFlowKey{Family: fam, Proto: uint8(c.Proto), Sport: htons(c.Client.Port()), Dport: htons(c.Virtual.Port()), Saddr: caddr, Daddr: vaddr}
	st := importState(c)
	v := lbConn{LastNs: lastSeen(now, d.timeout(st), int64(c.Expires)), Svc: s.id, Real: r.id, Gen: r.gen, State: st}
	if r.spec.Method == dataplane.SNAT {
		if !c.Local.IsValid() {
			return errors.New("a source-NAT connection without its source address")
		}
		la, lfam := addrBytes(c.Local.Addr())
		if lfam != fam {
			return errors.New("source address of another family")
		}
		v.Snat, v.Laddr, v.Lport = 1, la, htons(c.Local.Port())
	}
	var err error
	if k.Family == 4 {
		k4 := toKey4(&k)
		err = d.objs.Conn4Tbl.Update(&k4, &v, ebpf.UpdateAny)
	} else {
		err = d.objs.ConnTbl.Update(&k, &v, ebpf.UpdateAny)
	}
	if err != nil {
		return err
	}
	if r.spec.Method != dataplane.NAT && r.spec.Method != dataplane.SNAT {
		return nil
	}
	// the reply entry: real server -> client (NAT) or -> the source
	// address and port (SNAT), translated back to the virtual address
	nv := lbNatRev{Ns: now, Vaddr: vaddr, Vport: k.Dport, Svc: s.id, Real: r.id, Gen: r.gen}
	if v.Snat != 0 {
		nv.Snat, nv.Caddr, nv.Cport = 1, caddr, k.Sport
	}
	rk := natKey(&k, &v, r)
	return d.objs.NatTbl.Update(&rk, &nv, ebpf.UpdateAny)
}

func (d *Dataplane) importTemplate(s *service, r *realState, c *dataplane.Conn, now uint64) error {
	if s.spec.Persistence <= 0 {
		return errors.New("template for a service without persistence here")
	}
	a, fam := addrBytes(c.Client.Addr())
	k := lbFlowKey{Family: fam, Saddr: a}
	pk := persistKey(s, &k)
	pv := lbPersistVal{LastNs: lastSeen(now, uint64(s.spec.Persistence), int64(c.Expires)), Real: r.id, Gen: r.gen}
	return d.objs.PersistTbl.Update(&pk, &pv, ebpf.UpdateAny)
}
