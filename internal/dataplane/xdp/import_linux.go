package xdp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

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
		r := s.realFor(c.Real, c.Template)
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
		d.recountLocked()
	}
	return took, errors.Join(errs...)
}

// recountLocked makes a sync walk the tables again for the counts: the
// next one, or, when one was asked for less than recountEvery ago (a
// backup takes messages by the hundred: each walk reads the whole
// table), one at the end of that time.
func (d *Dataplane) recountLocked() {
	if wait := recountEvery - time.Since(d.recounted); wait > 0 {
		if !d.recountDue {
			d.recountDue = true
			time.AfterFunc(wait, func() {
				d.mu.Lock()
				defer d.mu.Unlock()
				d.recountDue = false
				if !d.closed {
					d.recountLocked()
				}
			})
		}
		return
	}
	d.recounted = time.Now()
	d.walk.done = false
	d.syncSoon()
}

// realFor is s's real server (or sorry server) at a: with a's port, or
// without one (a server of a multi-port service, which IPVS records
// with the virtual port). A template of a firewall-mark or port-0
// service, which kernel IPVS records with port 0, takes the one server
// at a's address.
func (s *service) realFor(a netip.AddrPort, template bool) *realState {
	for _, k := range []netip.AddrPort{a, netip.AddrPortFrom(a.Addr(), 0)} {
		if r := s.reals[k]; r != nil {
			return r
		}
		if s.sorry != nil && s.sorry.spec.Addr == k {
			return s.sorry
		}
	}
	if !template || a.Port() != 0 {
		return nil
	}
	var found *realState
	for k, r := range s.reals {
		if k.Addr() == a.Addr() {
			if found != nil {
				return nil // which one is not known
			}
			found = r
		}
	}
	return found
}

// recountEvery bounds how often imports make the sync walk the tables.
const recountEvery = 5 * time.Second

// snatGuard is SNAT_GUARD_NS (bpf/lb.h): a binding younger than this is
// never taken over.
const snatGuard = uint64(time.Second)

// serviceFor is the service that takes c's packets here: its firewall
// mark's, or the one the program would find for c's protocol, virtual
// address and port (also for a mark without a service: kernel IPVS
// sends the packet's mark whatever the service).
func (d *Dataplane) serviceFor(c *dataplane.Conn, byID map[uint32]*service) *service {
	if c.FWMark != 0 {
		v6 := c.Client.Addr().Is6()
		for k, s := range d.svcs {
			if k.FWMark == c.FWMark && k.V6 == v6 {
				return s
			}
		}
	}
	if !c.Virtual.IsValid() {
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
// left from now; a left of 0 (a sender that leaves the timeout to the
// receiver) is the whole timeout.
func lastSeen(now, timeout uint64, left int64) uint64 {
	if left <= 0 {
		return now
	}
	l := uint64(left)
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
		if err := s.ownsSource(r, c.Local); err != nil {
			return err
		}
		la, _ := addrBytes(c.Local.Addr())
		v.Snat, v.Laddr, v.Lport = 1, la, htons(c.Local.Port())
	}
	if r.spec.Method == dataplane.NAT || r.spec.Method == dataplane.SNAT {
		// its replies go to the client's next hop: resolved ahead
		d.wantClientNH(c.Client.Addr())
		// the reply entry first: real server -> client (NAT) or -> the
		// source address and port (SNAT), translated back to the
		// virtual address
		nv := lbNatRev{Ns: now, Vaddr: vaddr, Vport: k.Dport, Svc: s.id, Real: r.id, Gen: r.gen}
		if v.Snat != 0 {
			nv.Snat, nv.Caddr, nv.Cport = 1, caddr, k.Sport
		}
		rk := natKey(&k, &v, r)
		if err := d.storeNAT(&rk, &nv); err != nil {
			return err
		}
	}
	if k.Family == 4 {
		k4 := toKey4(&k)
		return d.objs.Conn4Tbl.Update(&k4, &v, ebpf.UpdateAny)
	}
	return d.objs.ConnTbl.Update(&k, &v, ebpf.UpdateAny)
}

// storeNAT writes a reply entry. A SNAT binding (source address and
// port toward a real server) that this director has given to another
// connection is left to it: the program claims bindings with
// BPF_NOEXIST and never takes a live one over, nor does an import.
func (d *Dataplane) storeNAT(rk *lbFlowKey, nv *lbNatRev) error {
	if nv.Snat == 0 {
		return d.objs.NatTbl.Update(rk, nv, ebpf.UpdateAny)
	}
	err := d.objs.NatTbl.Update(rk, nv, ebpf.UpdateNoExist)
	if !errors.Is(err, ebpf.ErrKeyExist) {
		return err
	}
	var old lbNatRev
	if err := d.objs.NatTbl.Lookup(rk, &old); err != nil {
		if isNotExist(err) { // gone meanwhile
			return d.objs.NatTbl.Update(rk, nv, ebpf.UpdateNoExist)
		}
		return err
	}
	same := old.Snat != 0 && old.Caddr == nv.Caddr && old.Cport == nv.Cport && old.Vaddr == nv.Vaddr && old.Vport == nv.Vport
	if !same && d.bindingLive(rk, &old) {
		return errors.New("its source address and port are bound to another live connection here")
	}
	return d.objs.NatTbl.Update(rk, nv, ebpf.UpdateAny)
}

// bindingLive says whether the SNAT binding nr (reply key rk) still
// serves a connection here, as snat_stale judges it: its real server
// slot is the same, and its connection is in the table, not expired,
// and holds this binding. A NAT entry is never taken over.
func (d *Dataplane) bindingLive(rk *lbFlowKey, nr *lbNatRev) bool {
	if nr.Snat == 0 {
		return true
	}
	// claimed within the program's guard: its connection may not be
	// written yet (snat_bind claims the binding first)
	if now := monoNow(); now < nr.Ns || now-nr.Ns < snatGuard {
		return true
	}
	k := lbFlowKey{Family: rk.Family, Proto: rk.Proto, Sport: nr.Cport, Dport: nr.Vport, Saddr: nr.Caddr, Daddr: nr.Vaddr}
	var c lbConn
	var err error
	if k.Family == 4 {
		k4 := toKey4(&k)
		err = d.objs.Conn4Tbl.Lookup(&k4, &c)
	} else {
		err = d.objs.ConnTbl.Lookup(&k, &c)
	}
	if err != nil {
		return !isNotExist(err) // unknown: keep it
	}
	if expired(monoNow(), c.LastNs, d.timeout(c.State)) {
		return false
	}
	return c.Snat != 0 && c.Lport == rk.Dport && c.Laddr == rk.Daddr && c.Real == nr.Real && c.Gen == nr.Gen
}

// ownsSource says why local cannot be s's source toward r here, or nil:
// it must be an address of the service's pool, and a port of its range
// (without a pool, r's own source address, which is this director's and
// differs from the peer's unless it moves with VRRP). The real server's
// replies come back to it only if it is.
func (s *service) ownsSource(r *realState, local netip.AddrPort) error {
	if !local.IsValid() {
		return errors.New("a source-NAT connection without its source address")
	}
	if s.adopted {
		return errors.New("the service, taken over from the previous govs process, is not applied yet (its source pool is not known)")
	}
	if s.snat.portMin != 0 && (local.Port() < s.snat.portMin || local.Port() > s.snat.portMax) {
		return fmt.Errorf("source port %d outside the service's range %d-%d", local.Port(), s.snat.portMin, s.snat.portMax)
	}
	if len(s.snat.addrs) == 0 {
		if !r.nh.src.IsValid() || r.nh.src != local.Addr() {
			return fmt.Errorf("source %s is not this director's address toward %s (%s)", local.Addr(), r.spec.Addr, r.nh.src)
		}
		return nil
	}
	if !slices.Contains(s.snat.addrs, local.Addr()) {
		return fmt.Errorf("source %s is not in the service's source pool", local.Addr())
	}
	return nil
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
