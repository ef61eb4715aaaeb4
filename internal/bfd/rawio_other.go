//go:build !linux

package bfd

import (
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// rawPacket is what a packetReader read with a packet.
type rawPacket struct {
	n   int
	ttl int // -1 when unknown
	dst netip.Addr
	src netip.Addr
}

// sendConn is a session's sending socket.
type sendConn struct{ net.PacketConn }

func newSendConn(c net.PacketConn) (*sendConn, error) { return &sendConn{c}, nil }

// sendTo sends b to dst.
func (c *sendConn) sendTo(b []byte, dst netip.AddrPort) error {
	_, err := c.WriteTo(b, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())))
	return err
}

// packetReader asks for the TTL (hop limit) and destination of each
// packet of a listening socket and reads its packets with them.
func packetReader(conn net.PacketConn, v6 bool) (func(b []byte) (rawPacket, error), error) {
	addrOf := func(a net.Addr) netip.Addr {
		if u, ok := a.(*net.UDPAddr); ok {
			ip, _ := netip.AddrFromSlice(u.IP)
			return ip.Unmap()
		}
		return netip.Addr{}
	}
	if v6 {
		p := ipv6.NewPacketConn(conn)
		if err := p.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst, true); err != nil {
			return nil, fmt.Errorf("hop limit and destination of packets: %w", err)
		}
		return func(b []byte) (rawPacket, error) {
			n, cm, src, err := p.ReadFrom(b)
			r := rawPacket{n: n, ttl: -1, src: addrOf(src)}
			if cm != nil {
				r.ttl = cm.HopLimit
				r.dst, _ = netip.AddrFromSlice(cm.Dst)
			}
			return r, err
		}, nil
	}
	p := ipv4.NewPacketConn(conn)
	if err := p.SetControlMessage(ipv4.FlagTTL|ipv4.FlagDst, true); err != nil {
		return nil, fmt.Errorf("ttl and destination of packets: %w", err)
	}
	return func(b []byte) (rawPacket, error) {
		n, cm, src, err := p.ReadFrom(b)
		r := rawPacket{n: n, ttl: -1, src: addrOf(src)}
		if cm != nil {
			r.ttl = cm.TTL
			r.dst, _ = netip.AddrFromSlice(cm.Dst)
		}
		return r, err
	}, nil
}
