package xdp

import (
	"os"
	"path/filepath"

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
	if d.opts.Mode == Generic || l.Type() != "veth" {
		return
	}
	a := l.Attrs()
	peer, where := d.vethPeer(a.ParentIndex, a.NetNsID)
	if peer == nil {
		d.log.Info("xdp: this interface is a veth whose peer was not found (another namespace, not under /run/netns): the frames the program sends are dropped unless the peer runs a driver-mode XDP program",
			"interface", a.Name, "peer_index", a.ParentIndex, "peer_nsid", a.NetNsID)
		return
	}
	x := peer.Attrs().Xdp
	switch {
	case x == nil || !x.Attached:
		d.log.Warn("xdp: this interface is a veth whose peer runs no XDP program: the frames the program sends (XDP_TX, redirects) are dropped by the kernel until the peer runs one in driver mode (one that returns XDP_PASS will do)",
			"interface", a.Name, "peer", peer.Attrs().Name, "peer_netns", where)
	case x.AttachMode == nl.XDP_ATTACHED_SKB:
		// a generic program does not make the peer receive in NAPI
		// mode, and the kernel refuses a driver one beside it
		d.log.Warn("xdp: this interface is a veth whose peer runs its XDP program in generic mode: the frames the program sends (XDP_TX, redirects) are dropped by the kernel; detach it (ip link set dev PEER xdpgeneric off) and attach one in driver mode",
			"interface", a.Name, "peer", peer.Attrs().Name, "peer_netns", where)
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
