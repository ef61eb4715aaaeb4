package xdp

import (
	"os"
	"path/filepath"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// warnVethPeer logs when the program, attached in driver mode to l, a
// veth, cannot send anything: a veth hands the frames an XDP program
// sends back out (XDP_TX, or a redirect to another veth) to its peer's
// NAPI receive, which only runs when the peer has an XDP program of
// its own; otherwise the kernel drops them without a counter anywhere
// (docs/dataplane-xdp.md, "On veth"). The peer is looked up in this
// namespace, or in the namespace it is in when that is a named one
// (/run/netns) or the first process's; when it cannot be found that is
// logged at info level (a container's peer on the host, for one).
func (d *Dataplane) warnVethPeer(l netlink.Link) {
	if p := d.vethPeerProblem(l, "interface"); p != nil {
		p.log(d)
	}
}

// peerProblem is why a veth cannot pass on the frames the program sends
// out of it, as logged.
type peerProblem struct {
	warn  bool // else info: the peer was not found
	msg   string
	attrs []any
}

func (p *peerProblem) log(d *Dataplane) {
	if p.warn {
		d.log.Warn(p.msg, p.attrs...)
	} else {
		d.log.Info(p.msg, p.attrs...)
	}
}

// vethPeerProblem says why l, a veth the program sends frames out of,
// cannot pass them on; nil when it can, or l is no veth, or the program
// runs in generic mode (which sends through the kernel's transmit path
// instead). role is the log's key for l's name: "interface" for one the
// program is attached to, "next_hop" for one it redirects to.
func (d *Dataplane) vethPeerProblem(l netlink.Link, role string) *peerProblem {
	if d.opts.Mode == Generic || l.Type() != "veth" {
		return nil
	}
	a := l.Attrs()
	peer, where := d.vethPeer(a.ParentIndex, a.NetNsID)
	if peer == nil {
		return &peerProblem{msg: "xdp: a veth the program sends frames out of has a peer that was not found (another namespace, not under /run/netns): the frames are dropped unless the peer runs a driver-mode XDP program",
			attrs: []any{role, a.Name, "peer_index", a.ParentIndex, "peer_nsid", a.NetNsID}}
	}
	attrs := []any{role, a.Name, "peer", peer.Attrs().Name, "peer_netns", where}
	x := peer.Attrs().Xdp
	switch {
	case x == nil || !x.Attached:
		return &peerProblem{warn: true, attrs: attrs,
			msg: "xdp: a veth the program sends frames out of has a peer that runs no XDP program: the frames (XDP_TX, redirects) are dropped by the kernel until the peer runs one in driver mode (one that returns XDP_PASS will do)"}
	case x.AttachMode == nl.XDP_ATTACHED_SKB:
		// a generic program does not make the peer receive in NAPI
		// mode, and the kernel refuses a driver one beside it
		return &peerProblem{warn: true, attrs: attrs,
			msg: "xdp: a veth the program sends frames out of has a peer that runs its XDP program in generic mode: the frames (XDP_TX, redirects) are dropped by the kernel; detach it (ip link set dev PEER xdpgeneric off) and attach one in driver mode"}
	}
	return nil
}

// warnNextHopVeths runs warnVethPeer's check on the interfaces real
// servers are reached by that the program is not attached to: it
// redirects their packets there, and a veth among them needs an XDP
// program on its peer as much as one it runs on. Apply calls it, and
// the sync loop when a next hop moved to another interface or was
// resolved. A problem is logged once while it lasts, and again when it
// changes, after it was fixed and came back, or after the interface
// stopped being a next hop and became one again.
func (d *Dataplane) warnNextHopVeths() {
	hops := make(map[uint32]bool)
	for _, s := range d.svcs {
		for _, r := range s.reals {
			if i := r.nh.ifindex; r.nh.ok && i != 0 && !slices.Contains(d.attached, i) {
				hops[i] = true
			}
		}
	}
	for i := range d.warnedPeer {
		if !hops[i] {
			delete(d.warnedPeer, i)
		}
	}
	for i := range hops {
		l, err := d.nl.LinkByIndex(int(i))
		if err != nil {
			continue // not examined: what was logged stands
		}
		p := d.vethPeerProblem(l, "next_hop")
		switch {
		case p == nil:
			delete(d.warnedPeer, i)
		case d.warnedPeer[i] != p.msg:
			if d.warnedPeer == nil {
				d.warnedPeer = make(map[uint32]string)
			}
			d.warnedPeer[i] = p.msg
			p.log(d)
		}
	}
}

// vethPeer finds interface index of namespace nsid (as this namespace
// numbers them; negative: this one) and names that namespace.
func (d *Dataplane) vethPeer(index, nsid int) (netlink.Link, string) {
	if index <= 0 {
		return nil, ""
	}
	if nsid < 0 {
		if p, err := d.nl.LinkByIndex(index); err == nil {
			return p, "(this one)"
		}
		return nil, ""
	}
	named, _ := filepath.Glob("/run/netns/*")
	for _, path := range append(named, "/proc/1/ns/net") {
		p, ok := func() (netlink.Link, bool) {
			f, err := os.Open(path)
			if err != nil {
				return nil, false
			}
			defer f.Close()
			if id, err := d.nl.GetNetNsIdByFd(int(f.Fd())); err != nil || id != nsid {
				return nil, false
			}
			h, err := netlink.NewHandleAt(netns.NsHandle(f.Fd()), unix.NETLINK_ROUTE)
			if err != nil {
				return nil, true
			}
			defer h.Close()
			p, err := h.LinkByIndex(index)
			if err != nil {
				return nil, true
			}
			return p, true
		}()
		if ok {
			return p, path
		}
	}
	return nil, ""
}
