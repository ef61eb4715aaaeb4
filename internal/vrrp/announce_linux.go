package vrrp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// Announce sends one gratuitous ARP per IPv4 virtual address (from a packet
// socket on the address's device) and one unsolicited neighbour
// advertisement per IPv6 virtual address.
func (s *LinuxSystem) Announce(ctx context.Context, cfg *InstanceConfig) error {
	var errs []error
	for _, v := range allVIPs(cfg) {
		dev := v.Dev
		if dev == "" {
			dev = cfg.addrDev()
		}
		l, err := s.link(dev)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		mac := l.Attrs().HardwareAddr
		if len(mac) != 6 {
			continue // no ARP/ND on this link type (lo, tun)
		}
		ifi := &net.Interface{Index: l.Attrs().Index, Name: dev, HardwareAddr: mac}
		addr := v.Prefix.Addr()
		if addr.Is4() {
			err = s.inNS(func() error { return sendGARP(ifi, addr) })
		} else {
			err = s.inNS(func() error { return sendUnsolicitedNA(ifi, addr) })
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("announce %s on %s: %w", addr, dev, err))
		}
	}
	return errors.Join(errs...)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// garpFrame builds a broadcast ARP request announcing ip at mac (an "ARP
// announcement", RFC 5227 §2.3: sender and target protocol address both
// ip).
func garpFrame(mac net.HardwareAddr, ip netip.Addr) []byte {
	f := make([]byte, 42)
	copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:12], mac)
	f[12], f[13] = 0x08, 0x06 // ARP
	a := f[14:]
	a[0], a[1] = 0, 1 // Ethernet
	a[2], a[3] = 0x08, 0x00
	a[4], a[5] = 6, 4
	a[6], a[7] = 0, 1 // request
	copy(a[8:14], mac)
	v := ip.As4()
	copy(a[14:18], v[:])
	// target hardware address stays zero
	copy(a[24:28], v[:])
	return f
}

func sendGARP(ifi *net.Interface, ip netip.Addr) error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		return fmt.Errorf("packet socket: %w", err)
	}
	defer unix.Close(fd)
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifi.Index, Halen: 6}
	copy(sa.Addr[:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	return unix.Sendto(fd, garpFrame(ifi.HardwareAddr, ip), 0, sa)
}

// naMessage builds an ICMPv6 neighbour advertisement (RFC 4861 §4.4) for
// target with the Override flag and a target link-layer address option;
// the kernel fills in the checksum.
func naMessage(mac net.HardwareAddr, target netip.Addr) []byte {
	m := make([]byte, 32)
	m[0] = 136  // neighbour advertisement
	m[4] = 0x20 // Override
	t := target.As16()
	copy(m[8:24], t[:])
	m[24], m[25] = 2, 1 // target link-layer address, 8 bytes
	copy(m[26:32], mac)
	return m
}

func sendUnsolicitedNA(ifi *net.Interface, target netip.Addr) error {
	c, err := net.ListenPacket("ip6:ipv6-icmp", "::")
	if err != nil {
		return fmt.Errorf("icmpv6 socket: %w", err)
	}
	defer c.Close()
	p := ipv6.NewPacketConn(c)
	if err := p.SetMulticastHopLimit(TTL); err != nil {
		return err
	}
	if err := p.SetMulticastInterface(ifi); err != nil {
		return err
	}
	// No zone: x/net resolves zone names through a process-wide cache
	// that does not know about network namespaces; the interface index
	// in the control message scopes the destination.
	dst := &net.IPAddr{IP: net.ParseIP("ff02::1")}
	_, err = p.WriteTo(naMessage(ifi.HardwareAddr, target), &ipv6.ControlMessage{IfIndex: ifi.Index, HopLimit: TTL}, dst)
	return err
}
