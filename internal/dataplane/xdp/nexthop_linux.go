package xdp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/dataplane"
)

// nexthop is where the program sends a real server's packets: the
// egress interface, MAC addresses, MTU and (for tunnels) the source.
type nexthop struct {
	ok      bool
	addr    netip.Addr // real server address it was resolved for
	ifindex uint32
	dmac    [6]byte
	smac    [6]byte
	mtu     uint16
	src     netip.Addr
	err     error
	// pending: the route is there but the neighbour is not resolved
	// yet (it has been asked for); a real server's last good next hop
	// on the same interface is kept meanwhile (syncLocked)
	pending bool
}

// resolve finds the next hop of a real server from the routing and
// neighbour tables of the dataplane's namespace. An unresolved neighbour
// is asked for (NTF_USE starts ARP / neighbour discovery); the next sync
// picks the answer up.
func (d *Dataplane) resolve(addr netip.Addr, m dataplane.Method) nexthop {
	if d.resolver != nil {
		return d.resolver(addr, m)
	}
	nh := nexthop{addr: addr}
	routes, err := d.nl.RouteGet(addr.AsSlice())
	if err != nil || len(routes) == 0 {
		nh.err = fmt.Errorf("no route to %s: %w", addr, err)
		return nh
	}
	r := routes[0]
	target := addr
	if r.Gw != nil {
		if m == dataplane.DR {
			nh.err = fmt.Errorf("real server %s is behind gateway %s: direct routing needs it on a connected network", addr, r.Gw)
			return nh
		}
		target, _ = netip.AddrFromSlice(r.Gw)
		target = target.Unmap()
	}
	l, err := d.nl.LinkByIndex(r.LinkIndex)
	if err != nil {
		nh.err = fmt.Errorf("interface %d: %w", r.LinkIndex, err)
		return nh
	}
	a := l.Attrs()
	nh.ifindex = uint32(a.Index)
	copy(nh.smac[:], a.HardwareAddr)
	nh.mtu = uint16(min(a.MTU, 65535))
	if r.MTU > 0 && r.MTU < a.MTU {
		nh.mtu = uint16(r.MTU)
	}
	if s, ok := netip.AddrFromSlice(r.Src); ok {
		nh.src = s.Unmap()
	}
	family := netlink.FAMILY_V4
	if target.Is6() {
		family = netlink.FAMILY_V6
	}
	neighs, err := d.nl.NeighList(a.Index, family)
	if err != nil {
		nh.err = fmt.Errorf("neighbours of %s: %w", a.Name, err)
		return nh
	}
	const valid = netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY | netlink.NUD_PROBE | netlink.NUD_PERMANENT | netlink.NUD_NOARP
	for _, n := range neighs {
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok || ip.Unmap() != target || len(n.HardwareAddr) != 6 || n.State&valid == 0 {
			continue
		}
		copy(nh.dmac[:], n.HardwareAddr)
		nh.ok = true
		return nh
	}
	err = d.nl.NeighSet(&netlink.Neigh{LinkIndex: a.Index, Family: family, IP: net.IP(target.AsSlice()), Flags: netlink.NTF_USE})
	nh.err = fmt.Errorf("neighbour %s on %s not resolved yet (asked: %v)", target, a.Name, err)
	nh.pending = true
	return nh
}

// resolvePending retries unresolved next hops for up to a second, so a
// fresh Apply forwards at once.
func (d *Dataplane) resolvePending(ctx context.Context) {
	deadline := time.Now().Add(time.Second)
	for {
		pending := 0
		for _, s := range d.svcs {
			for _, r := range s.reals {
				if r.nh.ok {
					continue
				}
				r.nh = d.resolve(r.spec.Addr.Addr(), r.spec.Method)
				if r.nh.ok {
					_ = d.writeReal(s.id, r)
				} else {
					pending++
				}
			}
		}
		if pending == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			if pending > 0 {
				for _, s := range d.svcs {
					for _, r := range s.reals {
						if !r.nh.ok {
							d.log.Warn("real server not reachable yet", "vs", s.spec.Key.String(), "rs", r.spec.Addr.String(), "err", r.nh.err)
						}
					}
				}
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func isNotExist(err error) bool {
	return errors.Is(err, ebpf.ErrKeyNotExist) || errors.Is(err, unix.ENOENT)
}
