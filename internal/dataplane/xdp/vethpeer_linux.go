package xdp

import (
	"os"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
)

// warnVethPeer logs when the program, attached in driver mode to l, a
// veth, cannot send anything: a veth hands the frames an XDP program
// sends back out (XDP_TX, or a redirect to another veth) to its peer's
// NAPI receive, which only runs when the peer has an XDP program of
// its own; otherwise the kernel drops them without a counter anywhere
// (docs/dataplane-xdp.md, "On veth"). The peer is looked up in this
// namespace, or in the namespace it is in when that is a named one
// (/run/netns) or the first process's; when it cannot be found nothing
// is said.
func (d *Dataplane) warnVethPeer(l netlink.Link) {
	if d.opts.Mode == Generic || l.Type() != "veth" {
		return
	}
	a := l.Attrs()
	peer, where := d.vethPeer(a.ParentIndex, a.NetNsID)
	if peer == nil {
		return
	}
	// a generic (skb) program on the peer does not make it receive in
	// NAPI mode
	if x := peer.Attrs().Xdp; x != nil && x.Attached && x.AttachMode != nl.XDP_ATTACHED_SKB {
		return
	}
	d.log.Warn("xdp: this interface is a veth whose peer runs no XDP program: the frames the program sends (XDP_TX, redirects) are dropped by the kernel until the peer has one (any program, one that returns XDP_PASS will do)",
		"interface", a.Name, "peer", peer.Attrs().Name, "peer_netns", where)
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
			h, err := netlink.NewHandleAt(netns.NsHandle(f.Fd()))
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
