package xdp

import (
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
)

// The replies of NAT and SNAT connections go from the program straight
// to the client's next hop (bpf_fib_lookup). A director that takes
// connections from another (ImportConns, a BACKUP) has often never
// talked to those clients or their router: at the takeover the program
// finds no neighbour entry and leaves the translated reply to the
// kernel, which drops it unless accept_local is set (its source is the
// VIP). So the dataplane asks the kernel to resolve the next hops of the
// clients it takes, ahead of the takeover, as it does for real servers
// (resolve): at most once per clientNHFresh for a next hop, through a
// bounded queue that drops what it cannot hold.
const (
	clientNHQueue = 4096
	clientNHFresh = 30 * time.Second
	// clientNHMemory bounds the addresses remembered (cleared past it)
	clientNHMemory = 1 << 16
)

// wantClientNH queues the resolution of client's next hop (called with
// d.mu held; never blocks).
func (d *Dataplane) wantClientNH(client netip.Addr) {
	if d.clientNH == nil {
		return
	}
	if t, ok := d.clientAsked[client]; ok && time.Since(t) < clientNHFresh {
		return
	}
	if len(d.clientAsked) >= clientNHMemory {
		clear(d.clientAsked)
	}
	d.clientAsked[client] = time.Now()
	select {
	case d.clientNH <- client:
	default: // full: a later import asks again
	}
}

// resolveClientLocked asks the kernel to resolve the next hop toward
// client (its router, or the client on a connected network) unless it
// was asked lately. Called with d.mu held (d.nl is not for concurrent
// use).
func (d *Dataplane) resolveClientLocked(client netip.Addr) {
	if d.nl == nil || d.resolver != nil {
		return
	}
	routes, err := d.nl.RouteGet(client.AsSlice())
	if err != nil || len(routes) == 0 {
		return
	}
	r := routes[0]
	target := client
	if r.Gw != nil {
		if gw, ok := netip.AddrFromSlice(r.Gw); ok {
			target = gw.Unmap()
		}
	}
	if t, ok := d.nhAsked[target]; ok && time.Since(t) < clientNHFresh {
		return
	}
	if len(d.nhAsked) >= clientNHMemory {
		clear(d.nhAsked)
	}
	d.nhAsked[target] = time.Now()
	family := netlink.FAMILY_V4
	if target.Is6() {
		family = netlink.FAMILY_V6
	}
	// NTF_USE: the kernel starts resolving a missing entry (and only
	// marks a valid one used)
	if err := d.nl.NeighSet(&netlink.Neigh{LinkIndex: r.LinkIndex, Family: family, IP: net.IP(target.AsSlice()), Flags: netlink.NTF_USE}); err != nil {
		d.log.Debug("xdp: resolve a client's next hop", "client", client, "next_hop", target, "err", err)
	}
}
