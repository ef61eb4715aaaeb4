package xdp

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/dataplane"
)

// TestVethPeerWarning: attached to a veth whose peer runs no XDP program
// (so that the kernel drops what the program sends), the director says
// so, naming the peer, when the peer is in the same namespace and when
// it is in a named one; a peer whose program runs in generic mode gets
// its own warning; once the peer runs a driver-mode program (the pass
// program the tests use), nothing is said.
func TestVethPeerWarning(t *testing.T) {
	requireBPF(t)
	vethInEmptyNS(t, "pw0", "pw1")
	pin := "/sys/fs/bpf/xd-veth-peer"
	t.Cleanup(func() { _ = RemovePinned(pin) })
	const warning = "xdp: a veth the program sends frames out of has a peer"
	logs := func() string {
		t.Helper()
		var b bytes.Buffer
		d, err := New(Options{Interfaces: []string{"pw0"}, PinPath: pin, Logger: slog.New(slog.NewTextHandler(&b, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		for l := range strings.Lines(b.String()) {
			if strings.Contains(l, warning) {
				return l
			}
		}
		return ""
	}
	if got := logs(); !strings.Contains(got, "peer=pw1") {
		t.Errorf("peer in the same namespace: logged %q, want the warning naming pw1", got)
	}

	// the peer in a named namespace
	here, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer here.Close()
	removeDeadNamedNS("xd-pw-")
	name := fmt.Sprintf("xd-pw-%d", os.Getpid())
	there, err := netns.NewNamed(name) // enters it
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { there.Close(); _ = netns.DeleteNamed(name) })
	if err := netns.Set(here); err != nil {
		t.Fatal(err)
	}
	peer, err := netlink.LinkByName("pw1")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetNsFd(peer, int(there)); err != nil {
		t.Fatal(err)
	}
	if got := logs(); !strings.Contains(got, "peer=pw1") || !strings.Contains(got, "/run/netns/"+name) {
		t.Errorf("peer in %s: logged %q, want the warning naming pw1 there", name, got)
	}

	// the peer runs a program in generic mode, then in driver mode
	var objs bounceObjects
	if err := loadBounceObjects(&objs, nil); err != nil {
		t.Fatal(err)
	}
	defer objs.Close()
	if err := netns.Set(there); err != nil {
		t.Fatal(err)
	}
	attach := func(flags link.XDPAttachFlags) link.Link {
		t.Helper()
		if err := netns.Set(there); err != nil {
			t.Fatal(err)
		}
		p, err := netlink.LinkByName("pw1")
		var lk link.Link
		if err == nil {
			lk, err = link.AttachXDP(link.XDPOptions{Program: objs.GovsPass, Interface: p.Attrs().Index, Flags: flags})
		}
		if err2 := netns.Set(here); err2 != nil {
			t.Fatal(err2)
		}
		if err != nil {
			t.Fatal(err)
		}
		return lk
	}
	lk := attach(link.XDPGenericMode)
	if got := logs(); !strings.Contains(got, "generic mode") || !strings.Contains(got, "peer=pw1") {
		t.Errorf("peer with a generic program: logged %q, want the generic-mode warning", got)
	}
	if err := lk.Close(); err != nil {
		t.Fatal(err)
	}
	lk = attach(link.XDPDriverMode)
	defer lk.Close()
	if got := logs(); got != "" {
		t.Errorf("peer with a driver-mode program: logged %q", got)
	}
}

// TestNextHopVethWarning: a real server reached through a veth the
// program is not attached to (it redirects there) gets the same warning
// when that veth's peer runs no XDP program, naming it as the next hop;
// once per problem: not again on the next Apply, not while the peer runs
// a driver-mode program, again once that is gone, and the generic-mode
// warning once the peer runs its program that way.
func TestNextHopVethWarning(t *testing.T) {
	requireBPF(t)
	vethInEmptyNS(t, "na0", "na1")
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "nb0"}, PeerName: "nb1"}); err != nil {
		t.Fatal(err)
	}
	var nb0, nb1 netlink.Link
	for _, n := range []string{"nb0", "nb1"} {
		l, err := netlink.LinkByName(n)
		if err == nil {
			err = netlink.LinkSetUp(l)
		}
		if err != nil {
			t.Fatal(err)
		}
		if n == "nb0" {
			nb0 = l
		} else {
			nb1 = l
		}
	}
	server := netip.MustParseAddrPort("10.9.0.1:80")
	if err := netlink.AddrAdd(nb0, &netlink.Addr{IPNet: netlink.NewIPNet(net.ParseIP("10.9.0.2"))}); err != nil {
		t.Fatal(err)
	}
	if err := netlink.RouteAdd(&netlink.Route{LinkIndex: nb0.Attrs().Index, Dst: &net.IPNet{IP: net.IP{10, 9, 0, 0}, Mask: net.CIDRMask(24, 32)}}); err != nil {
		t.Fatal(err)
	}
	if err := netlink.NeighSet(&netlink.Neigh{LinkIndex: nb0.Attrs().Index, Family: netlink.FAMILY_V4, State: netlink.NUD_PERMANENT,
		IP: net.IP(server.Addr().AsSlice()), HardwareAddr: net.HardwareAddr{2, 0, 0, 0, 9, 1}}); err != nil {
		t.Fatal(err)
	}
	pin := "/sys/fs/bpf/xd-nexthop-peer"
	t.Cleanup(func() { _ = RemovePinned(pin) })
	var b syncBuffer
	d, err := New(Options{Interfaces: []string{"na0"}, PinPath: pin, Logger: slog.New(slog.NewTextHandler(&b, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dr := svc(dataplane.TCP, vip4, 80, "rr", rsv(server, 1, dataplane.DR))
	apply := applyWarnings(t, d, &b, "next_hop=nb0")
	warned := func() string { t.Helper(); return apply(dr) }
	if got := warned(); !strings.Contains(got, "runs no XDP program") || !strings.Contains(got, "peer=nb1") {
		t.Errorf("next hop nb0, peer without a program: logged %q, want the warning naming nb1", got)
	}
	if got := warned(); got != "" {
		t.Errorf("warned twice: %q", got)
	}
	var objs bounceObjects
	if err := loadBounceObjects(&objs, nil); err != nil {
		t.Fatal(err)
	}
	defer objs.Close()
	lk, err := link.AttachXDP(link.XDPOptions{Program: objs.GovsPass, Interface: nb1.Attrs().Index, Flags: link.XDPDriverMode})
	if err != nil {
		t.Fatal(err)
	}
	if got := warned(); got != "" {
		t.Errorf("peer with a driver-mode program: logged %q", got)
	}
	if err := lk.Close(); err != nil {
		t.Fatal(err)
	}
	if got := warned(); !strings.Contains(got, "runs no XDP program") {
		t.Errorf("the peer's program gone: logged %q, want the warning again", got)
	}
	lk, err = link.AttachXDP(link.XDPOptions{Program: objs.GovsPass, Interface: nb1.Attrs().Index, Flags: link.XDPGenericMode})
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Close()
	if got := warned(); !strings.Contains(got, "generic mode") {
		t.Errorf("the peer's program in generic mode: logged %q, want that warning", got)
	}
}

// removeDeadNamedNS deletes the named namespaces PREFIXPID that test
// processes killed before their cleanup left behind (PID gone).
func removeDeadNamedNS(prefix string) {
	names, _ := filepath.Glob("/run/netns/" + prefix + "*")
	for _, path := range names {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(path), prefix))
		if err != nil || pid == os.Getpid() || !errors.Is(unix.Kill(pid, 0), unix.ESRCH) {
			continue
		}
		_ = netns.DeleteNamed(filepath.Base(path))
	}
}
