package bfd

import (
	"net"
	"net/netip"
	"testing"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// TestPacketIO sends a packet over loopback with sendTo and reads it
// with packetReader: length, source, destination and TTL (hop limit) as
// the kernel gave them.
func TestPacketIO(t *testing.T) {
	for _, tc := range []struct {
		network, addr string
		ttl           int
	}{{"udp4", "127.0.0.1", 200}, {"udp6", "::1", 201}} {
		ln, err := net.ListenPacket(tc.network, net.JoinHostPort(tc.addr, "0"))
		if err != nil {
			t.Skipf("%s: %v", tc.network, err)
		}
		defer ln.Close()
		read, err := packetReader(ln, tc.network == "udp6")
		if err != nil {
			t.Fatal(err)
		}
		pc, err := net.ListenPacket(tc.network, net.JoinHostPort(tc.addr, "0"))
		if err != nil {
			t.Fatal(err)
		}
		if tc.network == "udp4" {
			err = ipv4.NewPacketConn(pc).SetTTL(tc.ttl)
		} else {
			err = ipv6.NewPacketConn(pc).SetHopLimit(tc.ttl)
		}
		if err != nil {
			t.Fatal(err)
		}
		sc, err := newSendConn(pc)
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		dst := ln.LocalAddr().(*net.UDPAddr).AddrPort()
		msg := []byte("a control packet")
		if err := sc.sendTo(msg, dst); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1500)
		p, err := read(buf)
		if err != nil {
			t.Fatal(err)
		}
		want := netip.MustParseAddr(tc.addr)
		if string(buf[:p.n]) != string(msg) || p.src != want || p.dst != want || p.ttl != tc.ttl {
			t.Errorf("%s: read %q from %s to %s, ttl %d", tc.network, buf[:p.n], p.src, p.dst, p.ttl)
		}
	}
}
