package proxy

import (
	"context"
	"errors"
	"fmt"

	"github.com/govs/govs/internal/dataplane"
)

// Apply makes the proxy serve exactly svcs, changing only what differs:
// services whose key stays keep their listeners, counters and
// connections; weights, thresholds and the scheduler change in place;
// real servers keep their counters by address. Connections to removed
// real servers, and TCP connections of removed services, continue until
// they end (or Close).
//
// A service that cannot be applied (invalid, or a port that cannot be
// bound) keeps its previous state, or is not added if it is new; the
// error names it. The other services are applied.
func (p *Proxy) Apply(ctx context.Context, svcs []dataplane.Service) error {
	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	closed := p.closed
	cur := make(map[dataplane.ServiceKey]*service, len(p.services))
	for k, s := range p.services {
		cur[k] = s
	}
	existing := make(map[listenKey]*listener, len(p.listeners))
	for k, l := range p.listeners {
		existing[k] = l
	}
	p.mu.Unlock()
	if closed {
		return errors.New("proxy is closed")
	}

	var errs []error
	fail := func(key dataplane.ServiceKey, err error) {
		errs = append(errs, fmt.Errorf("service %s: %w", key, err))
	}

	// Build a plan per desired service without touching running state.
	plans := make([]*plan, 0, len(svcs))
	byKey := make(map[dataplane.ServiceKey]*plan, len(svcs))
	for _, s := range svcs {
		if _, dup := byKey[s.Key]; dup {
			fail(s.Key, errors.New("listed twice"))
			continue
		}
		pl, err := p.newPlan(s, cur[s.Key])
		if err != nil {
			fail(s.Key, err)
			if c := cur[s.Key]; c != nil {
				pl = keepPlan(c)
			} else {
				byKey[s.Key] = nil
				continue
			}
		}
		byKey[s.Key] = pl
		plans = append(plans, pl)
	}

	// Find the sockets the plans need and open the missing ones. A plan
	// whose socket conflicts with an earlier plan's or cannot be opened
	// falls back to its previous state (or is dropped when new), and the
	// assignment is computed again; every round fails at least one plan,
	// so this ends.
	opened := make(map[listenKey]*listener)
	var want map[listenKey]*plan
	for {
		want = make(map[listenKey]*plan)
		var bad *plan
		var badErr error
	assign:
		for _, pl := range plans {
			if pl.failed && pl.cur == nil {
				continue
			}
			for _, k := range pl.cfg.listen {
				if o := want[k]; o != nil {
					bad, badErr = pl, fmt.Errorf("%s is already used by service %s", k, o.key)
					break assign
				}
				want[k] = pl
			}
		}
		if bad == nil {
			for _, k := range orderedWant(plans, want) {
				if existing[k] != nil || opened[k] != nil {
					continue
				}
				l, err := p.listen(k)
				if err != nil {
					bad, badErr = want[k], err
					break
				}
				opened[k] = l
			}
		}
		if bad == nil {
			break
		}
		fail(bad.key, badErr)
		if bad.failed || bad.cur == nil {
			// A new service, or one already reduced to its old state
			// (which cannot fail again unless it conflicts): drop it.
			bad.failed = true
			bad.cfg = &serviceConfig{}
			continue
		}
		*bad = *keepPlan(bad.cur)
	}

	// Commit.
	for _, pl := range plans {
		if pl.failed && pl.cur == nil {
			continue
		}
		if pl.failed {
			continue // previous state kept as it is
		}
		if err := pl.commit(); err != nil {
			fail(pl.key, err)
		}
	}
	next := make(map[dataplane.ServiceKey]*service, len(plans))
	order := make([]dataplane.ServiceKey, 0, len(plans))
	for _, pl := range plans {
		if pl.failed && pl.cur == nil {
			continue
		}
		next[pl.key] = pl.svc
		order = append(order, pl.key)
	}
	var start, stop []*listener
	nextL := make(map[listenKey]*listener, len(want))
	for k, pl := range want {
		if pl.failed && pl.cur == nil {
			continue
		}
		l := existing[k]
		if l == nil {
			l = opened[k]
			start = append(start, l)
		}
		l.owner.Store(pl.svc)
		nextL[k] = l
	}
	for k, l := range existing {
		if nextL[k] == nil {
			stop = append(stop, l)
		}
	}
	for k, l := range opened {
		if nextL[k] == nil {
			stop = append(stop, l)
		}
	}
	p.mu.Lock()
	p.services = next
	p.order = order
	p.listeners = nextL
	p.mu.Unlock()
	for _, l := range start {
		p.serve(l)
	}
	for _, l := range stop {
		if err := l.close(); err != nil {
			p.log.Warn("close listener", "addr", l.key.String(), "err", err)
		}
	}
	for k := range cur {
		if next[k] == nil {
			p.log.Info("service removed, connections drain", "vs", k.String())
		}
	}
	return errors.Join(errs...)
}

// keepPlan is a plan that leaves a running service as it is.
func keepPlan(s *service) *plan {
	return &plan{key: s.key, cur: s, svc: s, cfg: s.cfg.Load(), failed: true}
}

// orderedWant returns the wanted sockets in plan order, so that errors
// are reported for the first service that asks for a busy port.
func orderedWant(plans []*plan, want map[listenKey]*plan) []listenKey {
	var ks []listenKey
	for _, pl := range plans {
		for _, k := range pl.cfg.listen {
			if want[k] == pl {
				ks = append(ks, k)
			}
		}
	}
	return ks
}
