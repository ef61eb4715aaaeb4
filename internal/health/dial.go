package health

import (
	"context"
	"net"
	"net/netip"
	"syscall"
)

// localAddr is the source address and port a check binds to; the zero
// AddrPort lets the kernel choose.
func localAddr(s *Spec) netip.AddrPort {
	if !s.BindTo.IsValid() && s.BindPort == 0 {
		return netip.AddrPort{}
	}
	a := s.BindTo.Unmap()
	if !a.IsValid() {
		a = netip.IPv4Unspecified()
		if !s.Addr().Unmap().Is4() {
			a = netip.IPv6Unspecified()
		}
	}
	return netip.AddrPortFrom(a, s.BindPort)
}

// dialer returns a net.Dialer that applies the spec's source address,
// source port, interface and firewall mark, without TCP keepalives.
func dialer(s *Spec, network string) *net.Dialer {
	d := &net.Dialer{KeepAlive: -1}
	if la := localAddr(s); la.IsValid() {
		if network == "udp" {
			d.LocalAddr = net.UDPAddrFromAddrPort(la)
		} else {
			d.LocalAddr = net.TCPAddrFromAddrPort(la)
		}
	}
	if s.FWMark != 0 || s.BindIf != "" || s.BindPort != 0 {
		mark, dev, reuse := s.FWMark, s.BindIf, s.BindPort != 0
		d.Control = func(_, _ string, c syscall.RawConn) error {
			return controlSocket(c, mark, dev, reuse)
		}
	}
	return d
}

// dial connects to the spec's connect address ("tcp" or "udp").
func dial(ctx context.Context, s *Spec, network string) (net.Conn, error) {
	d := dialer(s, network)
	d.LocalAddr = nil
	la := localAddr(s)
	ra := netip.AddrPortFrom(s.Addr().Unmap(), s.Port())
	if network == "udp" {
		c, err := d.DialUDP(ctx, "udp", la, ra)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	c, err := d.DialTCP(ctx, "tcp", la, ra)
	if err != nil {
		return nil, err
	}
	return c, nil
}
