package xdp

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/govs/govs/internal/dataplane"
)

// SNAT source pools. Every SNAT service points, in its svc_cfg, at a run
// of snat_pool (pool_base, pool_len) holding its pool's addresses of the
// service's family, and carries the pool's port range. Services whose
// pools have the same addresses share one run. A run given up by a
// service is reused only after the next sync round, so a packet that read
// the old svc_cfg never finds another pool's addresses there.

const (
	poolEntries     = 65536 // SNAT_POOL_ENTRIES in bpf/lb.h
	defaultPortMin  = 1024
	defaultPortMax  = 65535
	exhaustLogEvery = 10 * time.Second
)

// Per-entry states of snatState.use.
const (
	entryFree = iota
	entryUsed
	entryFreed // free from the next sync round on
)

// poolRun is a run of snat_pool holding one address list.
type poolRun struct {
	key     string
	base, n uint32
	refs    int
}

// snatState is the Go side of source NAT: the allocation of snat_pool
// and what the exhaustion log has already reported.
type snatState struct {
	runs   map[string]*poolRun
	use    []uint8 // per snat_pool entry: entryFree, entryUsed, entryFreed
	freed  bool    // some entry is entryFreed
	primed bool
	logged time.Time         // last exhaustion log
	total  uint64            // drop_snat_exhausted at the last log
	perSvc map[uint32]uint64 // snat_fail per service at the last log
}

// svcSNAT is a service's source NAT setting as written to svc_cfg.
type svcSNAT struct {
	name             string
	addrs            []netip.Addr // of the service's family; empty = the real server's src
	portMin, portMax uint16
	run              *poolRun
}

func (p svcSNAT) key() string {
	var b strings.Builder
	for _, a := range p.addrs {
		b.WriteString(a.String())
		b.WriteByte(' ')
	}
	return b.String()
}

func (p svcSNAT) same(q svcSNAT) bool {
	return p.name == q.name && p.portMin == q.portMin && p.portMax == q.portMax && slices.Equal(p.addrs, q.addrs)
}

// hasSNAT reports whether a real server (or the sorry server) of s is
// reached by source NAT.
func hasSNAT(s dataplane.Service) bool {
	if s.Sorry != nil && s.Sorry.Method == dataplane.SNAT {
		return true
	}
	for _, r := range s.RealServers {
		if r.Method == dataplane.SNAT {
			return true
		}
	}
	return false
}

// snatFor returns the source NAT setting of s: its SourcePool reduced to
// the service's family, and the port range with defaults. Services without SNAT real servers
// get the zero value.
func (d *Dataplane) snatFor(s dataplane.Service) (svcSNAT, error) {
	if !hasSNAT(s) {
		return svcSNAT{}, nil
	}
	p := s.SourcePool
	out := svcSNAT{portMin: defaultPortMin, portMax: defaultPortMax}
	if p == nil {
		out.portMin, out.portMax = d.ownAddrPorts()
		return out, nil
	}
	out.name = p.Name
	if p.PortMin != 0 {
		out.portMin = p.PortMin
	}
	if p.PortMax != 0 {
		out.portMax = p.PortMax
	}
	if out.portMin > out.portMax {
		return svcSNAT{}, fmt.Errorf("source pool %q: port range %d-%d is empty", p.Name, out.portMin, out.portMax)
	}
	v6 := s.Key.V6
	if s.Key.FWMark == 0 {
		v6 = s.Key.Addr.Unmap().Is6()
	}
	seen := make(map[netip.Addr]bool, len(p.Addresses))
	for _, a := range p.Addresses {
		a = a.Unmap()
		if a.Is6() == v6 && a.IsValid() && !a.IsUnspecified() && !seen[a] {
			seen[a] = true
			out.addrs = append(out.addrs, a)
		}
	}
	fam := "IPv4"
	if v6 {
		fam = "IPv6"
	}
	if len(out.addrs) == 0 {
		return svcSNAT{}, fmt.Errorf("source pool %q has no %s address (the service is %s)", p.Name, fam, fam)
	}
	if len(out.addrs) > poolEntries {
		return svcSNAT{}, fmt.Errorf("source pool %q: %d %s addresses, the xdp dataplane holds at most %d", p.Name, len(out.addrs), fam, poolEntries)
	}
	return out, nil
}

// checkPools verifies, before Apply changes anything, that the distinct
// pools of svcs fit in snat_pool together; the error names the service
// whose pool does not fit.
func (d *Dataplane) checkPools(svcs []dataplane.Service) error {
	need := map[string]bool{}
	total := 0
	for _, s := range svcs {
		p, err := d.snatFor(s)
		if err != nil {
			return fmt.Errorf("xdp: service %s: %w", s.Key, err)
		}
		if len(p.addrs) == 0 || need[p.key()] {
			continue
		}
		need[p.key()] = true
		total += len(p.addrs)
		if total > poolEntries {
			return fmt.Errorf("xdp: service %s: source pool %q (%d addresses): the pools of all services would hold %d addresses, the xdp dataplane holds at most %d",
				s.Key, p.name, len(p.addrs), total, poolEntries)
		}
	}
	return nil
}

// setPool gives service cur the source NAT setting of s: a run of
// snat_pool with its addresses (shared with services of the same
// addresses) and its port range. Connections bound under the old setting
// keep their binding; new ones use the new one once writeCfg ran.
func (d *Dataplane) setPool(cur *service, s dataplane.Service) error {
	p, err := d.snatFor(s)
	if err != nil {
		return err
	}
	if p.same(cur.snat) && (cur.snat.run != nil) == (len(p.addrs) > 0) {
		return nil
	}
	if len(p.addrs) > 0 {
		if p.run, err = d.acquireRun(p); err != nil {
			return err
		}
		d.warnForeign(s, p)
	}
	d.releaseRun(cur.snat.run)
	cur.snat = p
	return nil
}

// acquireRun returns the run holding p's addresses, writing a new one
// when no service uses them yet.
func (d *Dataplane) acquireRun(p svcSNAT) (*poolRun, error) {
	st := &d.snatPools
	if st.runs == nil {
		st.runs = make(map[string]*poolRun)
	}
	key := p.key()
	if r := st.runs[key]; r != nil {
		r.refs++
		return r, nil
	}
	n := uint32(len(p.addrs))
	base, ok := st.find(n, false)
	if !ok {
		base, ok = st.find(n, true) // runs freed in this round: a packet in flight may still read them
	}
	if !ok {
		return nil, fmt.Errorf("source pool %q: no room for %d addresses in snat_pool (%d entries)", p.name, n, poolEntries)
	}
	keys := make([]uint32, n)
	vals := make([]lbPoolAddr, n)
	for i, a := range p.addrs {
		keys[i] = base + uint32(i)
		vals[i].Addr, _ = addrBytes(a)
	}
	if _, err := d.objs.SnatPool.BatchUpdate(keys, vals, nil); err != nil {
		return nil, fmt.Errorf("source pool %q: write snat_pool: %w", p.name, err)
	}
	for i := base; i < base+n; i++ {
		st.use[i] = entryUsed
	}
	r := &poolRun{key: key, base: base, n: n, refs: 1}
	st.runs[key] = r
	return r, nil
}

// find returns the start of the first run of n entries that are free
// (or, with recent, free or freed in this round).
func (st *snatState) find(n uint32, recent bool) (uint32, bool) {
	if st.use == nil {
		st.use = make([]uint8, poolEntries)
	}
	var start, length uint32
	for i := uint32(0); i < poolEntries; i++ {
		if st.use[i] == entryFree || recent && st.use[i] == entryFreed {
			if length == 0 {
				start = i
			}
			length++
			if length == n {
				return start, true
			}
		} else {
			length = 0
		}
	}
	return 0, false
}

func (d *Dataplane) releaseRun(r *poolRun) {
	if r == nil {
		return
	}
	r.refs--
	if r.refs > 0 {
		return
	}
	delete(d.snatPools.runs, r.key)
	for i := r.base; i < r.base+r.n; i++ {
		d.snatPools.use[i] = entryFreed
	}
	if r.n > 0 {
		d.snatPools.freed = true
	}
}

// settle makes the runs freed before this sync round reusable.
func (st *snatState) settle() {
	if !st.freed {
		return
	}
	st.freed = false
	for i, u := range st.use {
		if u == entryFreed {
			st.use[i] = entryFree
		}
	}
}

// adoptPool reserves the run a previous process gave an adopted service,
// so that no new run overwrites it before the service is updated.
func (d *Dataplane) adoptPool(s *service, cfg *lbSvcCfg) {
	if cfg.PoolLen == 0 || uint64(cfg.PoolBase)+uint64(cfg.PoolLen) > poolEntries {
		return
	}
	st := &d.snatPools
	if st.runs == nil {
		st.runs = make(map[string]*poolRun)
	}
	if st.use == nil {
		st.use = make([]uint8, poolEntries)
	}
	r := &poolRun{key: fmt.Sprintf("adopted:%d", s.id), base: cfg.PoolBase, n: cfg.PoolLen, refs: 1}
	st.runs[r.key] = r
	for i := r.base; i < r.base+r.n; i++ {
		st.use[i] = entryUsed
	}
	s.snat = svcSNAT{name: "(adopted)", portMin: cfg.PortMin, portMax: cfg.PortMax, run: r}
}

// writePoolCfg fills the source NAT fields of a service's svc_cfg.
func writePoolCfg(c *lbSvcCfg, p svcSNAT) {
	c.PortMin, c.PortMax = p.portMin, p.portMax
	if c.PortMin == 0 {
		c.PortMin, c.PortMax = defaultPortMin, defaultPortMax
	}
	if p.run != nil {
		c.PoolBase, c.PoolLen = p.run.base, p.run.n
	}
}

// ownAddrPorts is the default pool's port range. Without a pool, SNAT
// takes the director's own source address toward each real server,
// the one its kernel picks for the connections it opens itself (health
// checks): a binding on a port of the kernel's ephemeral range
// (net.ipv4.ip_local_port_range, which IPv6 shares) would take the
// replies to such a connection when it meets the binding's reply key,
// live or not yet taken over. So the default pool keeps out of that
// range: the ports below it, or above it when more are free there.
func (d *Dataplane) ownAddrPorts() (uint16, uint16) {
	d.ephOnce.Do(func() {
		d.ephLo, d.ephHi = 32768, 60999 // the kernel's default
		err := inNS(d.ns, func() error {
			b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
			if err != nil {
				return err
			}
			var lo, hi uint16
			if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil {
				return fmt.Errorf("ip_local_port_range %q: %w", strings.TrimSpace(string(b)), err)
			}
			d.ephLo, d.ephHi = lo, hi
			return nil
		})
		if err != nil {
			d.log.Warn("xdp: read the ephemeral port range; SNAT's default pool assumes 32768-60999", "err", err)
		}
		if lo, hi := portsOutside(d.ephLo, d.ephHi); lo == defaultPortMin && hi == defaultPortMax {
			d.log.Warn("xdp: the ephemeral port range leaves fewer than 1024 ports outside it: SNAT's default pool uses them all, and may take replies to the director's own connections to real servers",
				"ip_local_port_range", fmt.Sprintf("%d-%d", d.ephLo, d.ephHi))
		}
	})
	return portsOutside(d.ephLo, d.ephHi)
}

// portsOutside returns the larger of the port ranges from
// defaultPortMin below lo and above hi up to defaultPortMax, or the
// whole default range when neither has 1024 ports.
func portsOutside(lo, hi uint16) (uint16, uint16) {
	below, above := 0, 0
	if lo > defaultPortMin {
		below = int(lo) - defaultPortMin
	}
	if hi < defaultPortMax {
		above = defaultPortMax - int(hi)
	}
	switch {
	case below >= above && below >= 1024:
		return defaultPortMin, lo - 1
	case above >= 1024:
		return hi + 1, defaultPortMax
	}
	return defaultPortMin, defaultPortMax
}

// warnForeign logs the pool addresses of s that no interface of the
// director's namespace holds: the real servers' replies to them must
// reach the director (ARP/ND or a route), or those connections fail.
func (d *Dataplane) warnForeign(s dataplane.Service, p svcSNAT) {
	if d.nl == nil {
		return
	}
	fam := netlink.FAMILY_V4
	if p.addrs[0].Is6() {
		fam = netlink.FAMILY_V6
	}
	own := d.ownAddrs(fam)
	if own == nil {
		return
	}
	var missing []netip.Addr
	for _, a := range p.addrs {
		if !own[a] {
			missing = append(missing, a)
		}
	}
	if len(missing) > 0 {
		d.log.Warn("snat pool addresses not assigned to any interface of the director: replies to them must still reach it",
			"service", s.Key.String(), "pool", p.name, "missing", len(missing), "of", len(p.addrs), "first", missing[0].String())
	}
}

// ownAddrs is the set of the addresses of family fam (netlink.FAMILY_V4
// or _V6) on the interfaces of the director's namespace; nil when they
// cannot be listed.
func (d *Dataplane) ownAddrs(fam int) map[netip.Addr]bool {
	list, err := d.nl.AddrList(nil, fam)
	if err != nil {
		return nil
	}
	own := make(map[netip.Addr]bool, len(list))
	for _, a := range list {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			own[ip.Unmap()] = true
		}
	}
	return own
}

// resetFail zeroes the exhaustion counter of a service slot being reused.
func (d *Dataplane) resetFail(id uint32) error {
	delete(d.snatPools.perSvc, id)
	if err := d.objs.SnatFail.Put(id, make([]uint64, d.ncpu)); err != nil {
		return fmt.Errorf("xdp: reset snat counter: %w", err)
	}
	return nil
}

// logExhaustion logs, at most once per exhaustLogEvery, the new
// connections dropped for want of a free SNAT binding since the last
// log, per service with its pool.
func (d *Dataplane) logExhaustion(now time.Time) error {
	st := &d.snatPools
	ex, err := d.Exits()
	if err != nil {
		return err
	}
	total := ex["drop_snat_exhausted"]
	if st.perSvc == nil {
		st.perSvc = make(map[uint32]uint64)
	}
	if !st.primed { // counts from before this process are not news
		st.primed, st.total = true, total
		for _, s := range d.svcs {
			if v, err := d.failCount(s.id); err == nil {
				st.perSvc[s.id] = v
			}
		}
		return nil
	}
	if total <= st.total || now.Sub(st.logged) < exhaustLogEvery {
		return nil
	}
	var errs []error
	named := false
	for _, s := range d.sortedServices() {
		v, err := d.failCount(s.id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if v <= st.perSvc[s.id] {
			continue
		}
		pool := s.snat.name
		if pool == "" {
			pool = "(real server src)"
		}
		d.log.Warn("snat source ports exhausted: new connections dropped", "service", s.spec.Key.String(), "name", s.spec.Name,
			"pool", pool, "addresses", len(s.snat.addrs), "ports", fmt.Sprintf("%d-%d", s.snat.portMin, s.snat.portMax),
			"dropped", v-st.perSvc[s.id], "dropped_total", v, "all_services_total", total)
		st.perSvc[s.id] = v
		named = true
	}
	if !named {
		d.log.Warn("snat source ports exhausted: new connections dropped", "dropped", total-st.total, "dropped_total", total)
	}
	st.total, st.logged = total, now
	return errors.Join(errs...)
}

func (d *Dataplane) failCount(id uint32) (uint64, error) {
	var per []uint64
	if err := d.objs.SnatFail.Lookup(id, &per); err != nil {
		return 0, fmt.Errorf("xdp: read snat counter: %w", err)
	}
	var s uint64
	for _, v := range per {
		s += v
	}
	return s, nil
}

// SNATDropped returns, per service, the new connections dropped for want
// of a free source NAT binding (the drop_snat_exhausted exit, split by
// service).
func (d *Dataplane) SNATDropped() (map[dataplane.ServiceKey]uint64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[dataplane.ServiceKey]uint64, len(d.svcs))
	for k, s := range d.svcs {
		v, err := d.failCount(s.id)
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}
