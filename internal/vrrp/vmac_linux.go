package vrrp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// use_vmac, as keepalived sets it up (vrrp_vmac.c, vrrp_if_config.c): a
// macvlan in private mode on the instance's interface, with the virtual
// MAC. Private mode matters: a multicast frame whose source MAC is that
// of a local macvlan goes to that macvlan alone, so the BACKUP hears the
// MASTER's adverts (sent from the same virtual MAC) on its own VMAC
// interface, not on the parent.
//
// For an IPv4 instance the VMAC interface gets arp_ignore=1 (it answers
// ARP only for the addresses it holds), accept_local=1, rp_filter=0 (it
// receives while it has no address) and promote_secondaries=1, and IPv6
// is turned off on it; the parent gets arp_ignore=1 and arp_filter=1, so
// that it does not answer for the virtual addresses with its own MAC, and
// arp_announce=2 (parentARP; its values are put back when the last
// VMAC interface on it goes). For an
// IPv6 instance no link-local address is generated from the virtual MAC
// (RFC 5798 §7.4); while MASTER the interface has the parent's
// link-local address (or the unicast_src_ip, or one made from the
// parent's MAC), so adverts leave from a non-virtual address with the
// virtual MAC (vmacAddr).

// savedSysctls are values govs changed and puts back: refs counts the
// VMAC interfaces that need them changed.
type savedSysctls struct {
	refs int
	vals map[string]string // sysctl path → value before
}

// parentARP are the parent's settings while it carries a VMAC
// interface. keepalived sets the first two; arp_announce=2 is govs's:
// without it the parent asks for a client's MAC (to answer it from the
// VIP) with the VIP as the sender address and its own MAC, and the
// client's neighbour entry for the VIP moves from the virtual MAC to the
// parent's, which a failover then leaves pointing at the old MASTER
// (TestVMAC shows it).
var parentARP = [][2]string{{"arp_ignore", "1"}, {"arp_filter", "1"}, {"arp_announce", "2"}}

// vmacState is a VMAC interface this system set up (or adopted): its
// parent, for the parent's settings, and whether it took the
// rp_filter hold.
type vmacState struct {
	parent     string
	parentHeld bool // holds "parent:"+parent
	// parentIndex is the index the parent had when its settings were
	// made: a parent deleted and made anew gets them again
	parentIndex int
	rpfilter    bool // holds "rp_filter"
}

// SetupVMAC implements System. An interface of that name that is a
// macvlan on the same parent with the same MAC is adopted (an earlier
// run's); one with another parent or MAC is replaced only when this
// system made it, else it is an error, as is an interface of that name
// that is not a macvlan.
func (s *LinuxSystem) SetupVMAC(ctx context.Context, cfg *InstanceConfig) error {
	base, err := s.link(cfg.Interface)
	if err != nil {
		return fmt.Errorf("use_vmac: %w: %w", ErrNotYet, err)
	}
	mac := cfg.VirtualMAC()
	name := cfg.VMAC
	s.mu.Lock()
	_, ours := s.vmacs[name]
	s.mu.Unlock()
	l, err := s.h.LinkByName(name)
	switch {
	case err == nil && l.Type() != "macvlan":
		return fmt.Errorf("use_vmac: %s exists and is not a macvlan interface", name)
	case err == nil && (l.Attrs().ParentIndex != base.Attrs().Index || !bytes.Equal(l.Attrs().HardwareAddr, mac)):
		if !ours {
			return fmt.Errorf("use_vmac: a macvlan %s exists with another parent or MAC (%s): remove it or give use_vmac another name", name, l.Attrs().HardwareAddr)
		}
		if err := s.h.LinkDel(l); err != nil {
			return fmt.Errorf("use_vmac: remove %s (another parent or MAC): %w", name, err)
		}
		s.release(name)
		l = nil
	case err != nil:
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return fmt.Errorf("use_vmac: link %s: %w", name, err)
		}
		l = nil
	}
	if l != nil && !ours {
		// adopted: what an earlier run left on it goes (the virtual
		// addresses come back with MASTER); one this system set up
		// keeps them (a new socket for a MASTER)
		if err := s.flushVMAC(name, netlink.FAMILY_ALL, false); err != nil {
			return fmt.Errorf("use_vmac: %w", err)
		}
	}
	if l == nil {
		mv := &netlink.Macvlan{
			LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: base.Attrs().Index, HardwareAddr: mac},
			Mode:      netlink.MACVLAN_MODE_PRIVATE,
		}
		if err := s.h.LinkAdd(mv); err != nil {
			return fmt.Errorf("use_vmac: create macvlan %s on %s: %w", name, cfg.Interface, err)
		}
		if l, err = s.h.LinkByName(name); err != nil {
			return fmt.Errorf("use_vmac: %w", err)
		}
	}
	s.mu.Lock()
	if s.vmacs == nil {
		s.vmacs = map[string]*vmacState{}
	}
	if _, ok := s.vmacs[name]; !ok {
		s.vmacs[name] = &vmacState{parent: cfg.Interface}
	}
	s.mu.Unlock()
	if err := s.prepareVMAC(cfg, name, base.Attrs().Index); err != nil {
		return fmt.Errorf("use_vmac: %w", err)
	}
	if err := s.h.LinkSetUp(l); err != nil {
		return fmt.Errorf("use_vmac: bring %s up: %w", name, err)
	}
	if cfg.IsIPv6() {
		// checked now; the address itself comes with the virtual ones
		if _, err := s.vmacLinkLocal(cfg, base); err != nil {
			return fmt.Errorf("use_vmac: %w", err)
		}
	}
	return nil
}

// vmacAddr is the link-local address of an IPv6 instance's VMAC
// interface. It is there only while the instance is MASTER (added and
// removed with the virtual addresses): a BACKUP's VMAC interface holding
// it would answer neighbour solicitations from the virtual MAC, and
// switches would send the MASTER's traffic to the BACKUP (keepalived
// #2329 filters those answers with nftables instead).
func (s *LinuxSystem) vmacAddr(cfg *InstanceConfig) (netlink.Link, *netlink.Addr, error) {
	base, err := s.link(cfg.Interface)
	if err != nil {
		return nil, nil, err
	}
	l, err := s.link(cfg.VMAC)
	if err != nil {
		return nil, nil, err
	}
	ll, err := s.vmacLinkLocal(cfg, base)
	if err != nil {
		return nil, nil, err
	}
	return l, &netlink.Addr{IPNet: &net.IPNet{IP: ll.AsSlice(), Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD}, nil
}

// prepareVMAC sets the sysctls of a VMAC interface and its parent.
func (s *LinuxSystem) prepareVMAC(cfg *InstanceConfig, name string, parentIndex int) error {
	if cfg.IsIPv6() {
		// no link-local address from the virtual MAC (addr_gen_mode none)
		return s.setSysctl("net/ipv6/conf/"+name+"/addr_gen_mode", "1")
	}
	for _, kv := range [][2]string{{"arp_ignore", "1"}, {"accept_local", "1"}, {"rp_filter", "0"}, {"promote_secondaries", "1"}} {
		if err := s.setSysctl("net/ipv4/conf/"+name+"/"+kv[0], kv[1]); err != nil {
			return err
		}
	}
	// IPv6 stays on only for IPv6 addresses or routes that land there
	v6 := false
	for _, v := range allVIPs(cfg) {
		v6 = v6 || v.Dev == "" && v.Prefix.Addr().Is6()
	}
	for _, r := range cfg.VirtualRoutes {
		v6 = v6 || r.Dev == "" && !r.Via.IsValid() && len(r.Nexthops) == 0 && r.Dst.Addr().Is6()
	}
	off := "1"
	if v6 {
		off = "0"
	}
	if err := s.setSysctl("net/ipv6/conf/"+name+"/disable_ipv6", off); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.vmacs[name]
	if st.parentHeld && st.parent != cfg.Interface {
		s.drop("parent:" + st.parent)
		st.parentHeld = false
	}
	st.parent = cfg.Interface
	if err := s.holdParent(st); err != nil {
		return err
	}
	if st.parentIndex != parentIndex {
		// a parent made anew has its defaults: this system's settings
		// go on it again (what is restored at the end stays the first
		// parent's)
		for _, kv := range parentARP {
			if err := s.setSysctl("net/ipv4/conf/"+st.parent+"/"+kv[0], kv[1]); err != nil {
				return err
			}
		}
		st.parentIndex = parentIndex
	}
	// The kernel filters by the larger of the "all" and the interface
	// value: with all.rp_filter set, the VMAC interface's 0 would not
	// count, and a BACKUP, which hears the adverts on it, would drop
	// them. As keepalived does: each interface gets at least the "all"
	// value, then "all" becomes 0 (all put back with the last VMAC
	// interface).
	if st.rpfilter {
		return nil
	}
	err := s.holdLocked("rp_filter", func(change func(path, value string) error) error {
		return s.clearRPFilter(name, change)
	})
	if err == nil {
		st.rpfilter = true
	}
	return err
}

// holdParent sets the parent's ARP settings for st, once.
func (s *LinuxSystem) holdParent(st *vmacState) error {
	if st.parentHeld {
		return nil
	}
	parent := st.parent
	if err := s.holdLocked("parent:"+parent, func(change func(path, value string) error) error {
		for _, kv := range parentARP {
			if err := change("net/ipv4/conf/"+parent+"/"+kv[0], kv[1]); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	st.parentHeld = true
	return nil
}

// clearRPFilter raises every interface's rp_filter but vmac's to the
// "all" value and sets "all" to 0, through change.
func (s *LinuxSystem) clearRPFilter(name string, change func(path, value string) error) error {
	all, err := s.sysctl("net/ipv4/conf/all/rp_filter")
	if err != nil || all == "0" {
		return err
	}
	var ifs []string
	err = s.inNS(func() error {
		ents, err := os.ReadDir("/proc/sys/net/ipv4/conf")
		for _, e := range ents {
			if e.Name() != "all" {
				ifs = append(ifs, e.Name())
			}
		}
		return err
	})
	if err != nil {
		return err
	}
	for _, ifn := range ifs {
		path := "net/ipv4/conf/" + ifn + "/rp_filter"
		v, err := s.sysctl(path)
		if err != nil || ifn == name || v >= all { // values 0-2
			continue
		}
		if err := change(path, all); err != nil {
			return err
		}
	}
	return change("net/ipv4/conf/all/rp_filter", "0")
}

// holdLocked takes a reference on the saved settings key: the first one
// runs set, whose changes (through change) record each value first; on
// failure what set changed is put back.
func (s *LinuxSystem) holdLocked(key string, set func(change func(path, value string) error) error) error {
	if s.saved == nil {
		s.saved = map[string]*savedSysctls{}
	}
	if h := s.saved[key]; h != nil {
		h.refs++
		return nil
	}
	h := &savedSysctls{refs: 1, vals: map[string]string{}}
	err := set(func(path, value string) error {
		v, err := s.sysctl(path)
		if err != nil {
			return err
		}
		h.vals[path] = v
		return s.setSysctl(path, value)
	})
	if err != nil {
		s.restore(h)
		return err
	}
	s.saved[key] = h
	return nil
}

func (s *LinuxSystem) restore(h *savedSysctls) error {
	var errs []error
	// "all" last: the interfaces' values were raised for it
	for path, v := range h.vals {
		if path != "net/ipv4/conf/all/rp_filter" {
			if err := s.setSysctl(path, v); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	if v, ok := h.vals["net/ipv4/conf/all/rp_filter"]; ok {
		errs = append(errs, s.setSysctl("net/ipv4/conf/all/rp_filter", v))
	}
	return errors.Join(errs...)
}

func (s *LinuxSystem) drop(key string) error {
	h := s.saved[key]
	if h == nil {
		return nil
	}
	if h.refs--; h.refs > 0 {
		return nil
	}
	delete(s.saved, key)
	return s.restore(h)
}

// release drops what the VMAC interface vmac holds (its parent's
// settings, the rp_filter change) and forgets it.
func (s *LinuxSystem) release(vmac string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.releaseLocked(vmac)
	delete(s.vmacs, vmac)
	return err
}

func (s *LinuxSystem) releaseLocked(vmac string) error {
	st := s.vmacs[vmac]
	if st == nil {
		return nil
	}
	var errs []error
	if st.parentHeld {
		errs = append(errs, s.drop("parent:"+st.parent))
		st.parentHeld = false
	}
	if st.rpfilter {
		errs = append(errs, s.drop("rp_filter"))
		st.rpfilter = false
	}
	return errors.Join(errs...)
}

// vmacLinkLocal picks the VMAC interface's link-local address: the
// unicast_src_ip if it is one, else the parent's, else one made from the
// parent's MAC.
func (s *LinuxSystem) vmacLinkLocal(cfg *InstanceConfig, base netlink.Link) (netip.Addr, error) {
	if cfg.UnicastSrcIP.Is6() && cfg.UnicastSrcIP.IsLinkLocalUnicast() {
		return cfg.UnicastSrcIP, nil
	}
	addrs, err := s.h.AddrList(base, netlink.FAMILY_V6)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("addresses of %s: %w", cfg.Interface, err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.IsLinkLocalUnicast() {
			return ip, nil
		}
	}
	hw := base.Attrs().HardwareAddr
	if len(hw) != 6 {
		return netip.Addr{}, fmt.Errorf("%s has no link-local address and no MAC to make one from", cfg.Interface)
	}
	// modified EUI-64 (RFC 4291 appendix A)
	b := [16]byte{0: 0xfe, 1: 0x80, 8: hw[0] ^ 2, 9: hw[1], 10: hw[2], 11: 0xff, 12: 0xfe, 13: hw[3], 14: hw[4], 15: hw[5]}
	return netip.AddrFrom16(b), nil
}

// flushVMAC deletes the addresses of family fam (only link-local ones
// with linkLocal) on the VMAC interface name.
func (s *LinuxSystem) flushVMAC(name string, fam int, linkLocal bool) error {
	l, err := s.link(name)
	if err != nil {
		return err
	}
	addrs, err := s.h.AddrList(l, fam)
	if err != nil {
		return fmt.Errorf("addresses of %s: %w", name, err)
	}
	var errs []error
	for i := range addrs {
		if ip, ok := netip.AddrFromSlice(addrs[i].IP); linkLocal && (!ok || !ip.IsLinkLocalUnicast()) {
			continue
		}
		if err := s.h.AddrDel(l, &addrs[i]); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("remove %s from %s: %w", addrs[i].IPNet, name, err))
		}
	}
	return errors.Join(errs...)
}

// RemoveVMAC implements System: only an interface this system set up
// or adopted is deleted.
func (s *LinuxSystem) RemoveVMAC(ctx context.Context, cfg *InstanceConfig) error {
	s.mu.Lock()
	_, ours := s.vmacs[cfg.VMAC]
	s.mu.Unlock()
	if !ours {
		return nil
	}
	var errs []error
	l, err := s.h.LinkByName(cfg.VMAC)
	if err == nil && l.Type() == "macvlan" {
		if err := s.h.LinkDel(l); err != nil {
			errs = append(errs, fmt.Errorf("use_vmac: remove %s: %w", cfg.VMAC, err))
		}
	}
	errs = append(errs, s.release(cfg.VMAC))
	return errors.Join(errs...)
}

// sysctl reads /proc/sys/PATH in the system's namespace.
func (s *LinuxSystem) sysctl(path string) (string, error) {
	var v string
	err := s.inNS(func() error {
		b, err := os.ReadFile(filepath.Join("/proc/sys", path))
		v = strings.TrimSpace(string(b))
		return err
	})
	return v, err
}

// setSysctl writes /proc/sys/PATH in the system's namespace.
func (s *LinuxSystem) setSysctl(path, value string) error {
	return s.inNS(func() error {
		return os.WriteFile(filepath.Join("/proc/sys", path), []byte(value), 0o644)
	})
}
