package vrrp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// routeRecheck is how long RestoreRoutes trusts that a configuration's
// routes are in place when no route, address or link changed since it
// found them so.
const routeRecheck = 30 * time.Second

// routeWatch tells RestoreRoutes when the routes (not the rules) may have changed, so
// that it does not list the routing tables (which can be large on a host
// that also speaks BGP) every second for nothing: a subscription bumps
// gen on every route deletion, address deletion and link change (the
// kernel drops IPv4 routes with their device or address without a
// deletion message of their own).
type routeWatch struct {
	gen      uint64 // under LinuxSystem.mu
	started  bool
	watching bool
	done     chan struct{}
	checked  map[string]routeCheck // by routeKey
}

// routeKey names a configuration's routes (the static set has no
// interface; an instance has one).
func routeKey(cfg *InstanceConfig) string { return cfg.Name + "/" + cfg.Interface }

type routeCheck struct {
	gen uint64
	at  time.Time
}

// startRouteWatch subscribes once; a failed subscription leaves
// RestoreRoutes listing the routes on every call.
func (s *LinuxSystem) startRouteWatch() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rt.started {
		return
	}
	s.rt.started = true
	s.rt.done = make(chan struct{})
	bump := func() {
		s.mu.Lock()
		s.rt.gen++
		s.mu.Unlock()
	}
	lost := func(error) {
		s.mu.Lock()
		s.rt.watching = false
		s.rt.gen++
		s.mu.Unlock()
	}
	routes := make(chan netlink.RouteUpdate, 256)
	addrs := make(chan netlink.AddrUpdate, 64)
	links := make(chan netlink.LinkUpdate, 64)
	ro := netlink.RouteSubscribeOptions{ErrorCallback: lost}
	ao := netlink.AddrSubscribeOptions{ErrorCallback: lost}
	lo := netlink.LinkSubscribeOptions{ErrorCallback: lost}
	if s.ns.IsOpen() {
		ns := s.ns
		ro.Namespace, ao.Namespace, lo.Namespace = &ns, &ns, &ns
	}
	if err := errors.Join(netlink.RouteSubscribeWithOptions(routes, s.rt.done, ro),
		netlink.AddrSubscribeWithOptions(addrs, s.rt.done, ao),
		netlink.LinkSubscribeWithOptions(links, s.rt.done, lo)); err != nil {
		return
	}
	s.rt.watching = true
	go func() {
		for {
			select {
			case u, ok := <-routes:
				if !ok {
					lost(nil)
					return
				}
				if u.Type == unix.RTM_DELROUTE {
					bump()
				}
			case u, ok := <-addrs:
				if !ok {
					lost(nil)
					return
				}
				if !u.NewAddr {
					bump()
				}
			case _, ok := <-links:
				if !ok {
					lost(nil)
					return
				}
				bump()
			}
		}
	}()
}

func (s *LinuxSystem) stopRouteWatch() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rt.done != nil {
		close(s.rt.done)
		s.rt.done = nil
	}
}

// forgetRoutes makes the next RestoreRoutes of cfg list the routes.
func (s *LinuxSystem) forgetRoutes(cfg *InstanceConfig) {
	s.mu.Lock()
	delete(s.rt.checked, routeKey(cfg))
	s.mu.Unlock()
}

// RestoreRoutes adds the routes and rules of cfg, not no_track ones, that
// are not installed (someone deleted them, or the kernel dropped a route
// whose device went down), and returns how many it added. The tables are
// listed once per family, and only when something changed since the
// routes were last found in place (or after routeRecheck).
func (s *LinuxSystem) RestoreRoutes(ctx context.Context, cfg *InstanceConfig) (int, error) {
	s.startRouteWatch()
	s.mu.Lock()
	gen := s.rt.gen
	last, seen := s.rt.checked[routeKey(cfg)]
	fresh := s.rt.watching && seen && last.gen == gen && time.Since(last.at) < routeRecheck
	s.mu.Unlock()
	var errs []error
	added := 0
	tables := map[int][]netlink.Route{} // by family: every table's routes
	interrupted := false
	for _, r := range cfg.VirtualRoutes {
		if r.NoTrack || fresh {
			continue
		}
		nr, err := s.route(cfg, r)
		if err != nil {
			errs = append(errs, fmt.Errorf("put back route %s: %w", r.Dst, err))
			continue
		}
		have, listed := tables[nr.Family]
		if !listed {
			have, err = s.h.RouteListFiltered(nr.Family, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
			if errors.Is(err, netlink.ErrDumpInterrupted) {
				// the tables changed while listed: next time
				interrupted = true
				continue
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("list routes: %w", err))
				continue
			}
			tables[nr.Family] = have
		}
		if routeInstalled(have, nr) {
			continue
		}
		if err := s.h.RouteReplace(nr); err != nil {
			errs = append(errs, fmt.Errorf("put back route %s: %w", r.Dst, err))
			continue
		}
		added++
	}
	// the routes' check counts for later calls only if it went through
	routesChecked := len(errs) == 0 && !interrupted && !fresh
	// the rules are listed every time: there is no subscription to them,
	// and their list is short
	for _, r := range cfg.VirtualRules {
		if r.NoTrack {
			continue
		}
		want := rule(r)
		have, err := s.sameRules(want)
		if errors.Is(err, netlink.ErrDumpInterrupted) {
			interrupted = true
			continue
		}
		if err == nil && len(have) == 0 {
			if err = s.h.RuleAdd(want); err == nil {
				added++
			} else if errors.Is(err, unix.EEXIST) {
				err = nil
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("put back rule %s: %w", want, err))
		}
	}
	if routesChecked {
		s.mu.Lock()
		if s.rt.checked == nil {
			s.rt.checked = map[string]routeCheck{}
		}
		// the gen read before listing: a change since makes the next
		// call list again
		s.rt.checked[routeKey(cfg)] = routeCheck{gen: gen, at: time.Now()}
		s.mu.Unlock()
	}
	return added, errors.Join(errs...)
}

// routeInstalled reports whether want is among the listed routes: the
// same table, destination, type, gateway and paths, the same metric (an
// IPv6 route asked with none has the kernel's 1024), and the same device
// and source where want gives them. Other attributes (onlink, the
// protocol, the route metrics) are not compared.
func routeInstalled(have []netlink.Route, want *netlink.Route) bool {
	table := want.Table
	if table == 0 {
		table = unix.RT_TABLE_MAIN
	}
	typ := want.Type
	if typ == 0 {
		typ = unix.RTN_UNICAST
	}
	prio := want.Priority
	if prio == 0 && want.Family == netlink.FAMILY_V6 {
		prio = 1024
	}
	dst := want.Dst.String()
	for _, r := range have {
		if r.Table == table && ipNet(r.Dst) == dst && r.Type == typ && r.Priority == prio && r.Gw.Equal(want.Gw) &&
			(want.LinkIndex == 0 || r.LinkIndex == want.LinkIndex) && (want.Src == nil || r.Src.Equal(want.Src)) &&
			sameNexthops(r.MultiPath, want.MultiPath) {
			return true
		}
	}
	return false
}

func ipNet(n *net.IPNet) string {
	if n == nil {
		return ""
	}
	return n.String()
}
