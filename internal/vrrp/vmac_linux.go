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
// arp_announce=2 (parentARPSettings; its values are put back when the last
// VMAC interface on it goes). For an
// IPv6 instance no link-local address is generated from the virtual MAC
// (RFC 5798 §7.4); the interface gets the parent's link-local address
// (or the unicast_src_ip, or one made from the parent's MAC), so adverts
// leave from a non-virtual address with the virtual MAC.

type savedARP struct {
	refs int
	vals map[string]string // sysctl name → value before
}

// parentARPSettings are the parent's settings while it carries a VMAC
// interface. keepalived sets the first two; arp_announce=2 is govs's:
// without it the parent asks for a client's MAC (to answer it from the
// VIP) with the VIP as the sender address and its own MAC, and the
// client's neighbour entry for the VIP moves from the virtual MAC to the
// parent's, which a failover then leaves pointing at the old MASTER
// (TestVMAC shows it).
var parentARPSettings = []string{"arp_ignore", "arp_filter", "arp_announce"}

var parentARPValues = map[string]string{"arp_ignore": "1", "arp_filter": "1", "arp_announce": "2"}

// SetupVMAC implements System.
func (s *LinuxSystem) SetupVMAC(ctx context.Context, cfg *InstanceConfig) error {
	base, err := s.link(cfg.Interface)
	if err != nil {
		return err
	}
	mac := cfg.VirtualMAC()
	name := cfg.VMAC
	l, err := s.h.LinkByName(name)
	switch {
	case err == nil && l.Type() != "macvlan":
		return fmt.Errorf("use_vmac: %s exists and is not a macvlan interface", name)
	case err == nil && (l.Attrs().ParentIndex != base.Attrs().Index || !bytes.Equal(l.Attrs().HardwareAddr, mac)):
		// left by an earlier run with other settings
		if err := s.h.LinkDel(l); err != nil {
			return fmt.Errorf("use_vmac: remove %s (another parent or MAC): %w", name, err)
		}
		l = nil
	case err != nil:
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return fmt.Errorf("use_vmac: link %s: %w", name, err)
		}
		l = nil
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
	if cfg.IsIPv6() {
		// no link-local address from the virtual MAC (addr_gen_mode none)
		if err := s.setSysctl("net/ipv6/conf/"+name+"/addr_gen_mode", "1"); err != nil {
			return fmt.Errorf("use_vmac: %w", err)
		}
	} else {
		for k, v := range map[string]string{"arp_ignore": "1", "accept_local": "1", "rp_filter": "0", "promote_secondaries": "1"} {
			if err := s.setSysctl("net/ipv4/conf/"+name+"/"+k, v); err != nil {
				return fmt.Errorf("use_vmac: %w", err)
			}
		}
		if err := s.setSysctl("net/ipv6/conf/"+name+"/disable_ipv6", "1"); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("use_vmac: %w", err)
		}
		if err := s.holdParentARP(name, cfg.Interface); err != nil {
			return fmt.Errorf("use_vmac: %w", err)
		}
	}
	if err := s.h.LinkSetUp(l); err != nil {
		return fmt.Errorf("use_vmac: bring %s up: %w", name, err)
	}
	if cfg.IsIPv6() {
		ll, err := s.vmacLinkLocal(cfg, base)
		if err != nil {
			return fmt.Errorf("use_vmac: %w", err)
		}
		a := &netlink.Addr{IPNet: &net.IPNet{IP: ll.AsSlice(), Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD}
		if err := s.h.AddrAdd(l, a); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("use_vmac: link-local address on %s: %w", name, err)
		}
	}
	return nil
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

// RemoveVMAC implements System.
func (s *LinuxSystem) RemoveVMAC(ctx context.Context, cfg *InstanceConfig) error {
	var errs []error
	l, err := s.h.LinkByName(cfg.VMAC)
	switch {
	case err == nil && l.Type() == "macvlan":
		if err := s.h.LinkDel(l); err != nil {
			errs = append(errs, fmt.Errorf("use_vmac: remove %s: %w", cfg.VMAC, err))
		}
	case err == nil:
		errs = append(errs, fmt.Errorf("use_vmac: %s is not a macvlan interface: left in place", cfg.VMAC))
	}
	errs = append(errs, s.releaseParentARP(cfg.VMAC))
	return errors.Join(errs...)
}

// holdParentARP sets arp_ignore=1, arp_filter=1 and arp_announce=2 on the parent of the
// VMAC interface vmac, remembering the values to put back when the last
// VMAC interface on it is removed. A VMAC interface set up again (an
// instance's new socket) holds its parent once.
func (s *LinuxSystem) holdParentARP(vmac, parent string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.vmacParent[vmac]; ok {
		return nil
	}
	if s.vmacParent == nil {
		s.vmacParent = map[string]string{}
	}
	if h := s.parentARP[parent]; h != nil {
		h.refs++
		s.vmacParent[vmac] = parent
		return nil
	}
	h := &savedARP{refs: 1, vals: map[string]string{}}
	for _, k := range parentARPSettings {
		v, err := s.sysctl("net/ipv4/conf/" + parent + "/" + k)
		if err != nil {
			return err
		}
		h.vals[k] = v
	}
	for _, k := range parentARPSettings {
		if err := s.setSysctl("net/ipv4/conf/"+parent+"/"+k, parentARPValues[k]); err != nil {
			return err
		}
	}
	if s.parentARP == nil {
		s.parentARP = map[string]*savedARP{}
	}
	s.parentARP[parent] = h
	s.vmacParent[vmac] = parent
	return nil
}

// releaseParentARP undoes holdParentARP for the VMAC interface vmac.
func (s *LinuxSystem) releaseParentARP(vmac string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	parent, ok := s.vmacParent[vmac]
	if !ok {
		return nil
	}
	delete(s.vmacParent, vmac)
	h := s.parentARP[parent]
	if h == nil {
		return nil
	}
	if h.refs--; h.refs > 0 {
		return nil
	}
	delete(s.parentARP, parent)
	var errs []error
	for _, k := range parentARPSettings {
		errs = append(errs, s.setSysctl("net/ipv4/conf/"+parent+"/"+k, h.vals[k]))
	}
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
