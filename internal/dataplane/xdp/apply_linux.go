package xdp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/sched"
	"golang.org/x/sys/unix"
)

// service is the Go-side state of one virtual service.
type service struct {
	id        uint32
	spec      dataplane.Service
	adopted   bool // taken over from a previous process, spec incomplete
	failed    bool // its last update failed part way: the next Apply redoes it
	keys      []lbSvcKey
	layout    tableLayout
	sch       sched.Scheduler
	schName   string
	schOpts   sched.Options
	reals     map[netip.AddrPort]*realState
	order     []*realState // config order, sorry server excluded
	sorry     *realState
	pushed    []uint32  // slots as last written to sched_tbl
	tblLen    uint32    // slots in use (a ring holds whole rr/wrr cycles)
	tbl       extent    // its run of sched_tbl: layout.size entries from tbl.base
	filledSig string    // what the table was filled from (tableSig); "" forces a refill
	written   *lbSvcCfg // svc_cfgs[id] as last written; nil forces a write
	cfgLive   bool      // svc_cfgs[id] was written (or adopted): runs of the program may read it
	snat      svcSNAT   // source pool and port range (pool_linux.go)
}

// unchanged says whether Apply can leave s's service (cur) as it is: it
// has s's spec, from an update of its own that did not fail.
func (cur *service) unchanged(s dataplane.Service) bool {
	return cur != nil && !cur.adopted && !cur.failed && equalService(cur.spec, s)
}

// availability renders which servers can take connections, with their
// weights: a hashed table only changes when this does.
func (s *service) availability() string {
	b := make([]byte, 0, len(s.order)*4)
	for _, r := range s.order {
		w := r.dest.Weight()
		if !r.dest.Available() {
			w = -1
		}
		b = fmt.Appendf(b, "%d:%d,", r.id, w)
	}
	return string(b)
}

// tableSig is what s's scheduling table is computed from: the servers'
// weights and availability, and their connection counts for every ring
// but an rr or wrr one without thresholds (a ring is filled by
// simulated connections, which the thresholds stop). Never "".
func (s *service) tableSig() string {
	sig := "t" + s.availability()
	if s.layout.hashed() {
		return sig
	}
	if (s.schName == "rr" || s.schName == "wrr") && !s.limited() {
		return sig
	}
	b := []byte(sig)
	for _, r := range s.order {
		b = fmt.Appendf(b, "%d/%d/%d,", r.dest.ActiveConns(), r.dest.InactiveConns(), r.dest.PersistConns())
	}
	return string(b)
}

// countsMatter reports whether s's scheduling depends on its servers'
// active and inactive counts: its table is computed from them
// (tableSig), or a threshold can make a server unavailable.
func (s *service) countsMatter() bool {
	if s.limited() {
		return true
	}
	return !s.layout.hashed() && s.schName != "rr" && s.schName != "wrr"
}

// limited reports whether a server of s has an upper threshold.
func (s *service) limited() bool {
	for _, r := range s.order {
		if up, _ := r.dest.Thresholds(); up != 0 {
			return true
		}
	}
	return false
}

// realState is one real server of one service (a slot of cpu_data's real
// servers).
type realState struct {
	id, gen uint32
	spec    dataplane.RealServer
	dest    *sched.Dest
	nh      nexthop
}

// Apply makes the forwarding state equal to svcs. Validation happens
// first; on a validation error nothing changes. Services and real servers
// that stay keep their identifiers, counters and connections.
func (d *Dataplane) Apply(ctx context.Context, svcs []dataplane.Service) (rerr error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("xdp: dataplane closed")
	}
	// the servers that left, freed after one grace period for all
	defer func() {
		rerr = errors.Join(rerr, d.removeGone(), d.goneErr)
		d.goneErr = nil
	}()
	// servers may go: the next sync walks the tables whatever the
	// program did meanwhile, one interval from now at the latest
	d.walk.done = false
	defer d.syncSoon()
	want := make(map[dataplane.ServiceKey]dataplane.Service, len(svcs))
	owner := make(map[lbSvcKey]dataplane.ServiceKey)
	for _, s := range svcs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, dup := want[s.Key]; dup {
			return fmt.Errorf("xdp: service %s listed twice", s.Key)
		}
		if err := d.validate(s); err != nil {
			return fmt.Errorf("xdp: service %s: %w", s.Key, err)
		}
		keys, err := lookupKeys(s)
		if err != nil {
			return fmt.Errorf("xdp: service %s: %w", s.Key, err)
		}
		for _, k := range keys {
			if o, ok := owner[k]; ok {
				return fmt.Errorf("xdp: services %s and %s both match %s", o, s.Key, keyString(k))
			}
			owner[k] = s.Key
		}
		want[s.Key] = s
	}
	if n := len(want); n >= maxServices {
		return fmt.Errorf("xdp: %d services, at most %d", n, maxServices-1)
	}
	compact, err := d.checkCapacity(svcs, want)
	if err != nil {
		return err
	}
	if err := d.checkPools(svcs); err != nil {
		return err
	}
	// NAT replies are told by their source port (replyports_linux.go):
	// while the services change, the set holds the ports of both
	// configurations, and it is used only if both are exact.
	replies, exact := replyPorts(svcs)
	if !exact && d.replyExact {
		d.replyExact = false
		if err := d.writeSettings(); err != nil {
			return err
		}
	}
	if err := d.writeReplyPorts(replies, true); err != nil {
		return fmt.Errorf("xdp: %w", err)
	}
	// A NAT reply can come back as soon as the first NAT real server is
	// written: the program looks replies up from before then (the flag
	// covers both configurations until the end).
	if nat := hasNAT(svcs); nat != d.natNext {
		d.natNext = nat
		if nat {
			if err := d.writeSettings(); err != nil {
				d.natNext = false // the next Apply tries again
				return err
			}
		}
	}

	var errs []error
	removed := false
	for key, cur := range d.svcs {
		if _, ok := want[key]; !ok {
			errs = append(errs, d.removeService(cur))
			delete(d.svcs, key)
			removed = true
		}
	}
	// the ids and server slots just freed may be given to the services
	// below: no run of a removed service may still be reading them
	if removed {
		d.quiesce()
	}
	if compact {
		errs = append(errs, d.compactTables())
	}
	for _, s := range svcs {
		cur := d.svcs[s.Key]
		if cur.unchanged(s) {
			continue
		}
		if cur == nil {
			id, err := d.allocService()
			if err != nil {
				errs = append(errs, fmt.Errorf("xdp: service %s: %w", s.Key, err))
				continue
			}
			cur = &service{id: id, reals: make(map[netip.AddrPort]*realState)}
			d.svcs[s.Key] = cur
		}
		if err := d.updateService(cur, s); err != nil {
			errs = append(errs, fmt.Errorf("xdp: service %s: %w", s.Key, err))
		}
	}
	if d.afterServices != nil {
		d.afterServices()
	}
	d.resolvePending(ctx)
	d.warnLocalVIPs(svcs)
	d.warnForwarding(svcs)
	d.warnNextHopVeths()
	d.replyExact = exact && errors.Join(errs...) == nil
	errs = append(errs, d.writeSettings())
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return d.writeReplyPorts(replies, false)
}

// withSorry is s's real servers and, when it has one, its sorry server.
func withSorry(s dataplane.Service) []dataplane.RealServer {
	if s.Sorry == nil {
		return s.RealServers
	}
	return append(slices.Clone(s.RealServers), *s.Sorry)
}

// hasNAT says whether some service of svcs is a NAT service (natService).
func hasNAT(svcs []dataplane.Service) bool { return slices.ContainsFunc(svcs, natService) }

// natService says whether a real server (or the sorry server) of s is
// reached by NAT or SNAT.
func natService(s dataplane.Service) bool {
	return slices.ContainsFunc(withSorry(s), func(r dataplane.RealServer) bool {
		return r.Method == dataplane.NAT || r.Method == dataplane.SNAT
	})
}

// schedSlots is the number of entries of sched_tbl (bpf/maps.h), and
// schedStride the bytes from one to the next in its mapping: an array
// map keeps its values 8-byte aligned, so a 4-byte id takes 8.
const (
	schedSlots  = 1 << 20
	schedStride = 8
)

// checkCapacity refuses, before anything changes, services whose
// scheduling tables or real servers do not fit the program's maps at any
// point of the update: a write that failed half way through would leave
// some services changed and others not. It runs Apply's order on a copy
// of sched_tbl's free space: services that go are removed first; then
// each service in turn takes its new real servers before it frees those
// that leave, and keeps its table's run when the new size fits in it,
// else takes a new run before it frees the old.
//
// When a table needs a run longer than any free one although the free
// entries would be enough, it runs the update again with the runs of
// the services that stay packed first (slotSpace.compact); compact then
// says that Apply must pack them (compactTables) before it updates any
// service.
func (d *Dataplane) checkCapacity(svcs []dataplane.Service, want map[dataplane.ServiceKey]dataplane.Service) (compact bool, err error) {
	fragmented, err := d.capacity(svcs, want, false)
	if fragmented {
		// the error of the packed run names what then does not fit
		if _, err = d.capacity(svcs, want, true); err == nil {
			return true, nil
		}
	}
	return false, err
}

// movable says whether packing may move s's table (relocate): not when
// its configuration entry is live but what it holds is unknown (its last
// write failed), as the base could not be rewritten alone.
func movable(s *service) bool { return s.tbl.n > 0 && (!s.cfgLive || s.written != nil) }

// packMoves is how compact packs the runs of svcs (those movable) on
// space: each service with the run it goes to, in compact's order.
func packMoves(space *slotSpace, svcs []*service) []tableMove {
	var runs []extent
	at := make(map[extent]*service)
	for _, s := range svcs {
		if movable(s) {
			runs = append(runs, s.tbl)
			at[s.tbl] = s
		}
	}
	var out []tableMove
	for _, m := range space.compact(runs) {
		s := at[m.from]
		delete(at, m.from)
		at[m.to] = s
		out = append(out, tableMove{s, m.to})
	}
	return out
}

// tableMove is a service's table going to another run (packMoves).
type tableMove struct {
	s  *service
	to extent
}

// capacity is checkCapacity's run of the update, with the runs of the
// services that stay packed first when compact is set; fragmented says
// that a table found no run long enough although the free entries were.
func (d *Dataplane) capacity(svcs []dataplane.Service, want map[dataplane.ServiceKey]dataplane.Service, compact bool) (fragmented bool, err error) {
	space := d.slots.Clone()
	reals := 0
	var stay []*service
	for key, cur := range d.svcs {
		if _, ok := want[key]; ok {
			reals += len(cur.reals)
			stay = append(stay, cur)
		} else {
			space.release(cur.tbl)
		}
	}
	runOf := make(map[*service]extent) // where packing puts a run
	if compact {
		for _, m := range packMoves(&space, stay) {
			runOf[m.s] = m.to
		}
	}
	peakReals := reals
	for _, s := range svcs {
		l, err := layoutFor(s, d.opts.RingSize)
		if err != nil {
			return false, fmt.Errorf("xdp: service %s: %w", s.Key, err)
		}
		oldReals, added := 0, 0
		cur := d.svcs[s.Key]
		if cur.unchanged(s) {
			continue // Apply leaves it alone
		}
		var run extent
		if cur != nil {
			oldReals, run = len(cur.reals), cur.tbl
			if to, ok := runOf[cur]; ok {
				run = to
			}
		}
		if _, ok := space.resize(run, l.size); !ok {
			free := space.Free()
			return free+run.n >= l.size, fmt.Errorf("xdp: service %s: the scheduling tables need a run of %d free slots for it, and sched_tbl has %d free of %d, in no run that long (an mh service takes its mh_table_size, 4093 by default; sh and dh 256; the others %d)",
				s.Key, l.size, free, schedSlots, d.opts.RingSize)
		}
		all := withSorry(s)
		for _, r := range all {
			if cur == nil || cur.reals[r.Addr] == nil || cur.reals[r.Addr].spec.Method != r.Method {
				added++
			}
		}
		peakReals = max(peakReals, reals+added)
		reals += len(all) - oldReals
	}
	if peakReals > maxReals-1 {
		return false, fmt.Errorf("xdp: the real servers need %d slots, more than the %d the program holds (one per real server of each service; a changed one is written before the one it replaces is freed)",
			peakReals, maxReals-1)
	}
	return false, nil
}

func (d *Dataplane) validate(s dataplane.Service) error {
	l, err := layoutFor(s, d.opts.RingSize)
	if err != nil {
		return err
	}
	if l.mode == modeHashMH && len(s.RealServers) > int(l.size) {
		// IPVS refuses the server that does not fit (-EINVAL)
		return fmt.Errorf("%d real servers, more than the %d slots of its mh table (mh_table_size)", len(s.RealServers), l.size)
	}
	if s.Key.FWMark == 0 && !s.Key.Addr.IsValid() {
		return errors.New("no virtual address")
	}
	v6 := s.Key.V6
	if s.Key.FWMark == 0 {
		v6 = s.Key.Addr.Unmap().Is6()
	}
	all := withSorry(s)
	for _, r := range all {
		switch r.Method {
		case dataplane.DR:
			if r.Addr.Addr().Unmap().Is6() != v6 {
				return fmt.Errorf("real server %s: direct routing needs the family of the virtual address", r.Addr)
			}
		case dataplane.NAT, dataplane.SNAT:
			if r.Addr.Addr().Unmap().Is6() != v6 {
				return fmt.Errorf("real server %s: NAT needs the family of the virtual address", r.Addr)
			}
		case dataplane.TUN:
		default:
			return fmt.Errorf("real server %s: method %s not supported by the xdp dataplane (DR, TUN, NAT and SNAT are)", r.Addr, r.Method)
		}
	}
	if len(all) >= maxReals/2 {
		return fmt.Errorf("%d real servers, more than the %d a service can have", len(all), maxReals/2-1)
	}
	seen := make(map[netip.AddrPort]bool, len(all))
	for _, r := range s.RealServers {
		if seen[r.Addr] {
			return fmt.Errorf("real server %s listed twice", r.Addr)
		}
		seen[r.Addr] = true
	}
	if s.Sorry != nil && seen[s.Sorry.Addr] {
		return fmt.Errorf("sorry server %s is also a real server", s.Sorry.Addr)
	}
	return nil
}

// lookupKeys expands a service into the (proto, VIP, port) keys of the
// services map: one for a plain service, the product of VIPs, ports and
// protocols for a multi-port or firewall-mark service.
func lookupKeys(s dataplane.Service) ([]lbSvcKey, error) {
	vips := s.VIPs
	if len(vips) == 0 && s.Key.Addr.IsValid() {
		vips = []netip.Addr{s.Key.Addr}
	}
	ports := s.Ports
	if len(ports) == 0 {
		ports = []dataplane.PortRange{{From: s.Key.Port, To: s.Key.Port}}
	}
	protos := s.Protos
	if len(protos) == 0 {
		if s.Key.Proto != 0 {
			protos = []dataplane.Proto{s.Key.Proto}
		} else {
			protos = []dataplane.Proto{dataplane.TCP, dataplane.UDP}
		}
	}
	if len(vips) == 0 {
		return nil, errors.New("a firewall-mark service needs VIPs to match (the xdp dataplane reads no marks)")
	}
	var keys []lbSvcKey
	for _, p := range protos {
		if p != dataplane.TCP && p != dataplane.UDP {
			return nil, fmt.Errorf("protocol %s not supported by the xdp dataplane", p)
		}
		for _, v := range vips {
			addr, fam := addrBytes(v)
			for _, r := range ports {
				if r.To < r.From {
					return nil, fmt.Errorf("port range %d-%d is empty", r.From, r.To)
				}
				for port := int(r.From); port <= int(r.To); port++ {
					keys = append(keys, lbSvcKey{Proto: uint8(p), Family: fam, Port: htons(uint16(port)), Addr: addr})
					if len(keys) > 1<<17 {
						return nil, errors.New("more than 131072 (protocol, address, port) combinations")
					}
				}
			}
		}
	}
	return keys, nil
}

func keyString(k lbSvcKey) string {
	return fmt.Sprintf("%s %s", dataplane.Proto(k.Proto), netip.AddrPortFrom(bytesAddr(k.Addr, k.Family), htons(k.Port)))
}

func equalService(a, b dataplane.Service) bool {
	if a.Sorry != nil && b.Sorry != nil && *a.Sorry != *b.Sorry || (a.Sorry == nil) != (b.Sorry == nil) {
		return false
	}
	a.Sorry, b.Sorry = nil, nil
	return a.Key == b.Key && a.Name == b.Name && slices.Equal(a.VIPs, b.VIPs) && slices.Equal(a.Ports, b.Ports) &&
		slices.Equal(a.Protos, b.Protos) && a.Scheduler == b.Scheduler && slices.Equal(a.SchedFlags, b.SchedFlags) &&
		a.MHTableSize == b.MHTableSize && a.Persistence == b.Persistence && a.PersistMask == b.PersistMask &&
		a.OnePacket == b.OnePacket && slices.Equal(a.RealServers, b.RealServers) && equalPool(a.SourcePool, b.SourcePool)
}

func equalPool(a, b *dataplane.SourcePool) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Name == b.Name && a.PortMin == b.PortMin && a.PortMax == b.PortMax && slices.Equal(a.Addresses, b.Addresses)
}

// cloneService copies the slices of s: the caller may reuse them.
func cloneService(s dataplane.Service) dataplane.Service {
	s.VIPs, s.Ports, s.Protos = slices.Clone(s.VIPs), slices.Clone(s.Ports), slices.Clone(s.Protos)
	s.SchedFlags, s.RealServers = slices.Clone(s.SchedFlags), slices.Clone(s.RealServers)
	if s.Sorry != nil {
		c := *s.Sorry
		s.Sorry = &c
	}
	if s.SourcePool != nil {
		p := *s.SourcePool
		p.Addresses = slices.Clone(p.Addresses)
		s.SourcePool = &p
	}
	return s
}

func (d *Dataplane) allocService() (uint32, error) {
	for id := 1; id < maxServices; id++ {
		if !d.svcUsed[id] {
			d.svcUsed[id] = true
			return uint32(id), errors.Join(d.zeroStats(d.objs.StatsSvc, uint32(id)), d.resetFail(uint32(id)))
		}
	}
	return 0, fmt.Errorf("no free service slot (the program holds %d services)", maxServices-1)
}

// allocReal takes a free real server slot. When none is free but
// servers that left are waiting for their grace period (d.gone), it
// waits for it and frees them first: a slot freed later than
// checkCapacity's order assumes is never missing.
func (d *Dataplane) allocReal() (uint32, uint32, error) {
	for range 2 {
		for id := 1; id < maxReals; id++ {
			if !d.realUsed[id] {
				d.realUsed[id] = true
				d.gen++
				return uint32(id), d.gen, d.zeroStats(d.statsReal(), uint32(id))
			}
		}
		if len(d.gone) == 0 {
			break
		}
		// a failed write still frees the slot (removeReal): the search
		// goes on, and Apply reports the error
		d.goneErr = errors.Join(d.goneErr, d.removeGone())
	}
	return 0, 0, fmt.Errorf("no free real server slot (the program holds %d)", maxReals-1)
}

// goneReal is a real server that left its service in this Apply, to be
// freed once no run of the program can still reach it.
type goneReal struct {
	r   *realState
	svc uint32
}

// removeGone waits for one grace period (quiesce) and frees the real
// servers that left services since the last call: one wait per Apply
// for all of them, not one per service.
func (d *Dataplane) removeGone() error {
	if len(d.gone) == 0 {
		return nil
	}
	d.quiesce()
	var errs []error
	for _, g := range d.gone {
		errs = append(errs, d.removeReal(g.r, g.svc))
	}
	d.gone = d.gone[:0]
	return errors.Join(errs...)
}

func (d *Dataplane) zeroStats(m interface {
	Put(key, value any) error
}, id uint32) error {
	if err := m.Put(id, make([]lbCounters, d.ncpu)); err != nil {
		return fmt.Errorf("xdp: reset counters: %w", err)
	}
	return nil
}

// updateService writes one new or changed service.
func (d *Dataplane) updateService(cur *service, s dataplane.Service) (rerr error) {
	// spec is s from part way through: an Apply of the same s must not
	// take a failed update for a done one
	defer func() { cur.failed = rerr != nil }()
	layout, err := layoutFor(s, d.opts.RingSize)
	if err != nil {
		return err
	}
	keys, err := lookupKeys(s)
	if err != nil {
		return err
	}
	// real servers: keep slot and generation of those that stay
	next := make(map[netip.AddrPort]*realState, len(s.RealServers)+1)
	// on a failure below, the service keeps the real servers it had and
	// the slots taken here are freed (checkCapacity makes it rare)
	had := maps.Clone(cur.reals)
	undo := func(err error) error {
		for k, r := range next {
			if had[k] != r {
				errs := d.removeReal(r, 0)
				err = errors.Join(err, errs)
			}
		}
		cur.reals = had
		return err
	}
	var order []*realState
	var sorry *realState
	add := func(rs dataplane.RealServer, isSorry bool) error {
		key := rs.Addr
		r := cur.reals[key]
		if r != nil && next[key] == nil && r.spec.Method == rs.Method {
			delete(cur.reals, key)
		} else {
			id, gen, err := d.allocReal()
			if err != nil {
				return err
			}
			r = &realState{id: id, gen: gen, dest: sched.NewDest(rs.Addr, rs.Weight)}
		}
		r.spec = rs
		if !isSorry {
			r.dest.SetWeight(rs.Weight)
			r.dest.SetThresholds(rs.UThreshold, rs.LThreshold)
		}
		if !r.nh.ok || r.nh.addr != rs.Addr.Addr() {
			r.nh = d.resolve(rs.Addr.Addr(), rs.Method)
		}
		next[key] = r
		if isSorry {
			sorry = r
		} else {
			order = append(order, r)
		}
		return d.writeReal(cur.id, r)
	}
	for _, rs := range s.RealServers {
		if next[rs.Addr] != nil {
			return undo(fmt.Errorf("real server %s listed twice", rs.Addr))
		}
		if err := add(rs, false); err != nil {
			return undo(err)
		}
	}
	if s.Sorry != nil {
		if next[s.Sorry.Addr] != nil {
			return undo(fmt.Errorf("sorry server %s is also a real server", s.Sorry.Addr))
		}
		if err := add(*s.Sorry, true); err != nil {
			return undo(err)
		}
	}
	// the servers that go are removed once the new table no longer
	// points at them, and no run of the program that read the old table
	// is still going (removeGone, at the end of Apply): a flow
	// scheduled to a removed slot would find no server
	// (TestApplyRemovalOrder)
	gone := cur.reals
	defer func() {
		for _, r := range gone {
			d.gone = append(d.gone, goneReal{r, cur.id})
		}
	}()
	cur.reals, cur.order, cur.sorry = next, order, sorry

	// scheduler: a new instance when its kind changed, else new dests
	opts := schedOptions(s)
	name := strings.ToLower(s.Scheduler)
	if name == "" {
		name = sched.Default
	}
	if cur.sch == nil || cur.schName != name || cur.schOpts.Flags != opts.Flags || cur.schOpts.TableSize != opts.TableSize {
		sch, err := sched.New(name, opts)
		if err != nil {
			return err
		}
		cur.sch, cur.schName, cur.schOpts = sch, name, opts
	}
	dests := make([]*sched.Dest, len(order))
	for i, r := range order {
		dests[i] = r.dest
	}
	cur.sch.Update(dests)

	cur.layout = layout
	cur.spec, cur.adopted = cloneService(s), false
	cur.filledSig = "" // the configuration changed: refill the table
	if err := d.setPool(cur, s); err != nil {
		return err
	}
	// table, then configuration, then lookup keys: a packet never sees a
	// service without its table
	if err := d.pushTable(cur); err != nil {
		return err
	}
	if err := d.writeCfg(cur); err != nil {
		return err
	}
	return d.setKeys(cur, keys)
}

// quiesce returns once every run of the program that started before it
// has ended: a run is an RCU read-side section (XDP in a NAPI poll runs
// with bottom halves off, BPF_PROG_TEST_RUN under rcu_read_lock), and
// membarrier's MEMBARRIER_CMD_GLOBAL waits for an RCU grace period
// (synchronize_rcu). What a run may still read — a real server the
// scheduling table it looked up pointed at, a slot past a shrunk table's
// new size, a removed service's id and servers — is freed after it. Where
// the command is refused (nohz_full CPUs, no CONFIG_MEMBARRIER, a
// seccomp filter), a 10 ms pause covers all but a run stalled that
// long. With one online CPU the kernel returns at once: on a kernel
// without preemption no run can then be in flight.
func (d *Dataplane) quiesce() {
	d.quiesces++
	const membarrierCmdGlobal = 1
	if _, _, e := unix.Syscall(unix.SYS_MEMBARRIER, membarrierCmdGlobal, 0, 0); e != 0 {
		quiesceWarn.Do(func() {
			d.log.Warn("xdp: membarrier(MEMBARRIER_CMD_GLOBAL) refused; what the program may still read (servers that leave, table slots, service ids) is freed after a 10 ms pause instead of an RCU grace period", "err", e)
		})
		time.Sleep(10 * time.Millisecond)
	}
}

var quiesceWarn sync.Once

func (d *Dataplane) writeReal(svc uint32, r *realState) error {
	addr, fam := addrBytes(r.spec.Addr.Addr())
	v := lbReal{Addr: addr, Family: fam, Svc: svc, Gen: r.gen, Port: r.spec.Addr.Port(), Method: uint8(r.spec.Method)}
	if r.nh.ok {
		v.Valid = 1
		v.Dmac, v.Smac, v.Ifindex, v.Mtu = r.nh.dmac, r.nh.smac, r.nh.ifindex, r.nh.mtu
		if d.opts.Mode == Generic && r.spec.Method != dataplane.TUN {
			// generic XDP runs after GRO: a packet's length may be an
			// aggregate's, which the kernel segments on the way out,
			// so the program leaves the path MTU of DR and NAT alone
			v.Mtu = 0
		}
		v.Src, _ = addrBytes(r.nh.src)
	}
	v.Flags = d.realFlags(r)
	if err := d.reals().putAll(r.id, &v); err != nil {
		return fmt.Errorf("write real server %s: %w", r.spec.Addr, err)
	}
	return nil
}

// realFlags is the flags byte writeReal gives r (setXmit): REAL_F_TX
// when it leaves by the one interface the program is attached to,
// REAL_F_REDIR when it leaves by another, or the program is attached to
// several.
func (d *Dataplane) realFlags(r *realState) uint8 {
	switch {
	case !r.nh.ok || r.nh.ifindex == 0 || len(d.xmitOn) == 0:
		return 0
	case len(d.xmitOn) == 1 && d.xmitOn[0] == r.nh.ifindex:
		return realFTX
	}
	return realFRedir
}

// removeReal frees r's slot. When svc is not 0, r's counters are first
// added to what stats_svc keeps for that service, so the service's
// counters do not go back when one of its real servers is removed (the
// program counts per real server only).
func (d *Dataplane) removeReal(r *realState, svc uint32) error {
	d.realUsed[r.id] = false
	if r.spec.Method == dataplane.NAT {
		if d.tombs == nil {
			d.tombs = map[[2]uint32]*realState{}
		}
		d.tombs[[2]uint32{r.id, r.gen}] = r
	}
	if err := d.reals().putAll(r.id, &lbReal{}); err != nil {
		return fmt.Errorf("remove real server %s: %w", r.spec.Addr, err)
	}
	if svc != 0 {
		if err := d.foldCounters(svc, r.id); err != nil {
			return fmt.Errorf("remove real server %s: %w", r.spec.Addr, err)
		}
	}
	return nil
}

// foldCounters adds real server rid's counters to stats_svc[svc], CPU by CPU. The
// program never writes stats_svc, so the read-modify-write is safe.
func (d *Dataplane) foldCounters(svc, rid uint32) error {
	var real, base []lbCounters
	if err := d.statsReal().Lookup(rid, &real); err != nil {
		return fmt.Errorf("read counters: %w", err)
	}
	if err := d.objs.StatsSvc.Lookup(svc, &base); err != nil {
		return fmt.Errorf("read counters: %w", err)
	}
	for i := range base {
		if i < len(real) {
			base[i].Conns += real[i].Conns
			base[i].Pkts += real[i].Pkts
			base[i].Bytes += real[i].Bytes
			base[i].OutPkts += real[i].OutPkts
			base[i].OutBytes += real[i].OutBytes
		}
	}
	if err := d.objs.StatsSvc.Put(svc, base); err != nil {
		return fmt.Errorf("write counters: %w", err)
	}
	return nil
}

// writeCfg writes svc_cfgs[id]; the sorry server is armed only while no
// real server can take a connection.
func (d *Dataplane) writeCfg(s *service) error {
	c := d.cfgOf(s)
	// the sync calls this every round: an unchanged entry is not written
	if s.written != nil && *s.written == c {
		return nil
	}
	s.written = nil
	if err := d.objs.SvcCfgs.Put(s.id, &c); err != nil {
		return fmt.Errorf("write service config: %w", err)
	}
	s.written, s.cfgLive = &c, true
	return nil
}

// cfgOf is s's svc_cfgs entry.
func (d *Dataplane) cfgOf(s *service) lbSvcCfg {
	c := lbSvcCfg{
		Flags:     svcFValid,
		TblBase:   s.tbl.base,
		TableSize: s.tblLen,
		HashBits:  s.layout.bits,
		Mode:      s.layout.mode,
		Proto:     uint8(s.spec.Key.Proto),
		Port:      s.spec.Key.Port,
		Fwmark:    s.spec.Key.FWMark,
	}
	if s.spec.Key.Addr.IsValid() {
		c.Addr, c.Family = addrBytes(s.spec.Key.Addr)
	} else if s.spec.Key.V6 {
		c.Family = 6
	} else {
		c.Family = 4
	}
	if s.spec.Persistence > 0 {
		c.Flags |= svcFPersist
		c.PersistTimeout = uint32((s.spec.Persistence + 999_999_999) / 1e9)
		c.PersistMask = uint8(s.spec.PersistMask)
		if s.spec.PersistMask <= 0 {
			c.PersistMask = 128
		}
	}
	if s.spec.OnePacket {
		c.Flags |= svcFOnePkt
	}
	if hashPort(s.spec) {
		c.Flags |= svcFHashPort
	}
	if s.sorry != nil && !anyAvailable(s.order) {
		c.SorryReal = s.sorry.id
	}
	writePoolCfg(&c, s.snat)
	return c
}

func anyAvailable(rs []*realState) bool {
	for _, r := range rs {
		if r.dest.Available() {
			return true
		}
	}
	return false
}

// setKeys makes the lookup keys of a service equal to keys.
func (d *Dataplane) setKeys(s *service, keys []lbSvcKey) error {
	keep := make(map[lbSvcKey]bool, len(keys))
	for _, k := range keys {
		keep[k] = true
	}
	// keyOwner and s.keys follow the map: keys a failed write left out
	// are written by the next update, and those it did write (a batch
	// stops part way) are deleted with the service
	var del []lbSvcKey
	for _, k := range s.keys {
		if !keep[k] && d.keyOwner[k] == s.id {
			del = append(del, k)
		}
	}
	if len(del) > 0 {
		// a key already gone is skipped, not an error every retry
		if err := batchDelete(d.objs.Services, del); err != nil {
			return fmt.Errorf("delete service keys: %w", err)
		}
		for _, k := range del {
			delete(d.keyOwner, k)
		}
	}
	var add []lbSvcKey
	for _, k := range keys {
		if d.keyOwner[k] != s.id {
			add = append(add, k)
		}
	}
	if len(add) > 0 {
		ids := make([]uint32, len(add))
		for i := range ids {
			ids[i] = s.id
		}
		n, err := d.objs.Services.BatchUpdate(add, ids, nil)
		for _, k := range add[:min(n, len(add))] {
			d.keyOwner[k] = s.id
		}
		if err != nil {
			// s.keys: every key the map now holds for s
			var held []lbSvcKey
			seen := make(map[lbSvcKey]bool)
			for _, k := range slices.Concat(s.keys, add) {
				if d.keyOwner[k] == s.id && !seen[k] {
					seen[k] = true
					held = append(held, k)
				}
			}
			s.keys = held
			return fmt.Errorf("write service keys: %w", err)
		}
	}
	s.keys = keys
	return nil
}

// pushTable recomputes the scheduling table of s and writes the slots
// that changed.
func (d *Dataplane) pushTable(s *service) error {
	// same inputs, same table: the sync calls this every second; the
	// signature is kept only once every write succeeded
	sig := s.tableSig()
	if sig == s.filledSig && s.pushed != nil {
		return nil
	}
	s.filledSig = ""
	if err := d.fillTable(s); err != nil {
		return err
	}
	s.filledSig = sig
	return nil
}

// fillTable computes s's scheduling table and writes what changed.
func (d *Dataplane) fillTable(s *service) error {
	var dests []*sched.Dest
	vip := netip.AddrPortFrom(s.spec.Key.Addr, s.spec.Key.Port)
	if !vip.Addr().IsValid() && len(s.spec.VIPs) > 0 {
		vip = netip.AddrPortFrom(s.spec.VIPs[0], 0)
	}
	v6 := vip.Addr().Unmap().Is6()
	proto := uint8(s.spec.Key.Proto)
	if s.layout.hashed() {
		reps, ok := d.reps[s.layout]
		if !ok {
			var err error
			if reps, err = s.layout.representatives(); err != nil {
				return err
			}
			d.reps[s.layout] = reps
		}
		dests = fillHashed(s.layout, reps, s.sch, proto, vip, v6)
	} else {
		ds := make([]*sched.Dest, len(s.order))
		for i, r := range s.order {
			ds[i] = r.dest
		}
		sch := s.sch
		if s.schName == "rr" || s.schName == "wrr" {
			// rebuilt from the start of a cycle: an unchanged pool gives
			// an unchanged ring and the cursor walks on undisturbed
			var err error
			if sch, err = sched.New(s.schName, s.schOpts); err != nil {
				return err
			}
			sch.Update(ds)
		}
		dests = fillRing(int(s.layout.size), sch, ds, proto, vip, v6)
	}
	ids := make(map[*sched.Dest]uint32, len(s.order))
	for _, r := range s.order {
		ids[r.dest] = r.id
	}
	slots := make([]uint32, len(dests))
	for i, dst := range dests {
		slots[i] = ids[dst]
	}
	// a run of the program may use the table as the configuration
	// describes it (the lookup keys are written after it)
	live := s.cfgLive
	if s.layout.size > s.tbl.n {
		return d.moveTable(s, slots, live)
	}
	// Every slot is overwritten in place (each value names a server of
	// this service, old or new; the old ones are removed at the end of
	// updateService), the configuration then gets the new size and
	// layout, and the entries past the new capacity are freed only once
	// no run can still use the old size (quiesce): a new flow never meets
	// a slot of another service, even when the layout changes
	// (TestApplyLayoutChange).
	changed := len(s.pushed) != len(slots)
	for i, v := range slots {
		if i < len(s.pushed) && s.pushed[i] == v {
			continue
		}
		if err := d.writeSlot(s.tbl.base+uint32(i), v); err != nil {
			s.pushed = nil // unknown: the next fill writes every slot
			return err
		}
		changed = true
	}
	if !s.layout.hashed() && changed {
		if err := d.resetCursor(s); err != nil {
			return err
		}
	}
	s.pushed = slots
	shrink := s.layout.size < s.tbl.n
	if n := uint32(len(slots)); n != s.tblLen || shrink {
		old := s.tblLen
		s.tblLen = n
		// before the tail goes: no run may read the old layout after
		// the wait below
		if live {
			if err := d.writeCfg(s); err != nil {
				s.tblLen = old // the configuration still has it
				return err
			}
		}
	}
	if shrink {
		// a run that read the old size may still look a slot past the
		// new capacity up
		if live {
			d.quiesce()
		}
		s.tbl, _ = d.slots.resize(s.tbl, s.layout.size)
	}
	return nil
}

// moveTable writes s's table (slots) into a new run of s.layout.size
// entries (slotSpace.resize: it may overlap the old one), then points
// the service at it, then frees what is left of the old run. The new
// run is filled whole, the table repeated, so that every entry names
// one of the service's servers; its base is written first on its own
// (the entry as it was, base changed: svc_cfgs are written by a copy that
// does not order its stores), and only after a grace period the new size
// and layout: a run of the program may read the base and the other
// fields from different writes, and any mix of them then lands in one of
// the two runs, on a slot of this service.
func (d *Dataplane) moveTable(s *service, slots []uint32, live bool) error {
	space := d.slots.Clone()
	run, ok := space.resize(s.tbl, s.layout.size)
	if !ok {
		return fmt.Errorf("no free run of %d scheduling-table slots (%d free of %d)", s.layout.size, d.slots.Free(), schedSlots)
	}
	for i := range run.n {
		v := uint32(0)
		if len(slots) > 0 {
			v = slots[int(i)%len(slots)]
		}
		if err := d.writeSlot(run.base+i, v); err != nil {
			s.pushed = nil // the new run may overlap the old one
			return err
		}
	}
	// the base first, on its own (not needed when it stays: any mix of
	// the old and new fields then lands in the run)
	if live && (run.base != s.tbl.base || s.written == nil) {
		var c lbSvcCfg
		if s.written != nil {
			c = *s.written
		} else {
			// what the entry holds is not known (its last write
			// failed): no table until the grace period is over
			c = d.cfgOf(s)
			c.TableSize = 0
		}
		c.TblBase = run.base
		s.written = nil
		if err := d.objs.SvcCfgs.Put(s.id, &c); err != nil {
			s.pushed = nil
			return fmt.Errorf("write service config: %w", err)
		}
		d.quiesce()
	}
	// the old run's entries outside the new one are free from here
	d.slots = space
	s.tbl, s.pushed = run, slots
	if !s.layout.hashed() {
		if err := d.resetCursor(s); err != nil {
			return err
		}
	}
	s.tblLen = uint32(len(slots))
	if live {
		return d.writeCfg(s)
	}
	return nil
}

// compactTables packs the services' scheduling tables toward the start
// of sched_tbl (slotSpace.compact), for a table that needs a longer run
// than any free one when the free entries are enough in all
// (checkCapacity). Each table moves whole: its run is copied to the new
// one and its configuration written again with only the base changed,
// so a run of the program that reads the old base or the new one finds
// the same servers; the old runs are freed after one grace period for
// all the moves whose destinations touch no run still to be freed (a
// move into entries another move vacates waits for the next).
func (d *Dataplane) compactTables() error {
	plan := d.slots.Clone()
	moves := packMoves(&plan, slices.Collect(maps.Values(d.svcs)))
	var vacating []extent
	flush := func() {
		if len(vacating) == 0 {
			return
		}
		d.quiesce()
		for _, x := range vacating {
			d.slots.release(x)
		}
		vacating = vacating[:0]
	}
	defer flush()
	for _, m := range moves {
		s, dst := m.s, m.to
		if slices.ContainsFunc(vacating, func(x extent) bool { return x.base < dst.end() && dst.base < x.end() }) {
			flush()
		}
		from := s.tbl
		if err := d.relocate(s, dst); err != nil {
			return fmt.Errorf("xdp: service %s: move its scheduling table to pack the tables: %w", s.spec.Key, err)
		}
		vacating = append(vacating, from)
	}
	flush()
	if len(moves) > 0 {
		d.log.Info("packed the scheduling tables", "moves", len(moves), "free", d.slots.Free())
	}
	return nil
}

// relocate copies s's run of sched_tbl, as it is, to the free run to of
// the same length and points the service at it: the configuration as
// last written with only its base changed (movable). The old run stays
// taken: the caller frees it after a grace period. On an error s keeps
// its old run and to is free again.
func (d *Dataplane) relocate(s *service, to extent) error {
	slots, err := d.readSlots(s.tbl)
	if err != nil {
		return err
	}
	if err := d.slots.take(to); err != nil {
		return err
	}
	for i, v := range slots {
		if err := d.writeSlot(to.base+uint32(i), v); err != nil {
			d.slots.release(to)
			return err
		}
	}
	if s.cfgLive {
		c := *s.written
		c.TblBase = to.base
		if err := d.objs.SvcCfgs.Put(s.id, &c); err != nil {
			d.slots.release(to)
			return fmt.Errorf("write service config: %w", err)
		}
		s.written = &c
	}
	s.tbl = to
	return nil
}

// resetCursor starts s's ring over (a rewritten ring is walked from
// its start).
func (d *Dataplane) resetCursor(s *service) error {
	if err := d.objs.Cursors.Put(s.id, uint32(0)); err != nil {
		return fmt.Errorf("reset cursor: %w", err)
	}
	return nil
}

// writeSlot writes entry i of sched_tbl through the map's mapping: a
// copy of 4 aligned bytes, one store on amd64 (the runtime's memmove),
// so a run of the program reads the old id or the new one, never half
// of each.
func (d *Dataplane) writeSlot(i, v uint32) error {
	mem, err := d.objs.SchedTbl.Memory()
	if err != nil {
		return fmt.Errorf("write scheduling table: %w", err)
	}
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], v)
	if _, err := mem.WriteAt(b[:], int64(i)*schedStride); err != nil {
		return fmt.Errorf("write scheduling table slot %d: %w", i, err)
	}
	return nil
}

// readSlots reads run's entries of sched_tbl.
func (d *Dataplane) readSlots(run extent) ([]uint32, error) {
	mem, err := d.objs.SchedTbl.Memory()
	if err != nil {
		return nil, fmt.Errorf("read scheduling table: %w", err)
	}
	b := make([]byte, schedStride*int(run.n))
	if _, err := mem.ReadAt(b, int64(run.base)*schedStride); err != nil {
		return nil, fmt.Errorf("read scheduling table slots %d+%d: %w", run.base, run.n, err)
	}
	out := make([]uint32, run.n)
	for i := range out {
		out[i] = binary.NativeEndian.Uint32(b[schedStride*i:])
	}
	return out, nil
}

// clearTable frees s's run; the caller waits for a grace period before
// the run can be given to another service (Apply's quiesce after
// removals).
func (d *Dataplane) clearTable(s *service) {
	d.slots.release(s.tbl)
	s.tbl, s.pushed, s.tblLen = extent{}, nil, 0
}

func (d *Dataplane) removeService(s *service) error {
	var errs []error
	cfgErr := d.objs.SvcCfgs.Put(s.id, &lbSvcCfg{})
	if cfgErr != nil {
		errs = append(errs, cfgErr)
	}
	s.cfgLive, s.written = false, nil
	if err := d.setKeys(s, nil); err != nil {
		errs = append(errs, err)
	}
	// when the entry could not be cleared it still names its run: the
	// run and the id stay taken (a restart adopts the entry as a service
	// with no keys, and its first Apply removes it again)
	if cfgErr == nil {
		d.clearTable(s)
		d.svcUsed[s.id] = false
	}
	for _, r := range s.reals {
		errs = append(errs, d.removeReal(r, 0))
	}
	d.releaseRun(s.snat.run)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("xdp: remove service %s: %w", s.spec.Key, err)
	}
	return nil
}
