//go:build !linux

package bfd

import (
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

// sendTo sends b to dst, port controlPort.
func sendTo(c net.PacketConn, b []byte, dst netip.Addr) error {
	_, err := c.WriteTo(b, &net.UDPAddr{IP: dst.Unmap().AsSlice(), Port: controlPort})
	return err
}

// packetReader reads the packets of a listening socket with their TTL
// and destination.
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
