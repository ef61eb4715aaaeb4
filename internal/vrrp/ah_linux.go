package vrrp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
)

// ahConn sends and receives VRRPv2 adverts in IPsec AH (auth_type AH):
// a raw socket of protocol 51 that writes its own IPv4 headers (the ICV
// covers the header's ID, which the kernel would otherwise choose) and
// reads them (ahCheck).
type ahConn struct {
	*linuxConn
	key  [authDataLen]byte
	vrid uint8
	rc   *ipv4.RawConn
	cnt  *ahCounter // the instance's, shared with its earlier sockets

	mu sync.Mutex // Send
	id uint16
}

// ahCounterOf is the sequence counter of the instance's router (its
// name, interface, VRID and family: a router changed by a reload starts
// again, as in keepalived), made on first use with the floor of this
// start's adverts (see ahCounter).
func (s *LinuxSystem) ahCounterOf(cfg *InstanceConfig) *ahCounter {
	name := fmt.Sprintf("%s/%s/%d/%v", cfg.Name, cfg.Interface, cfg.VRID, cfg.IsIPv6())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ahCounters == nil {
		s.ahCounters = map[string]*ahCounter{}
	}
	c := s.ahCounters[name]
	if c == nil {
		c = &ahCounter{floor: uint32(time.Now().Unix())}
		s.ahCounters[name] = c
	}
	return c
}

// openAH opens the AH socket of an IPv4 VRRPv2 instance; c carries the
// source, destinations and interface OpenConn chose.
func (s *LinuxSystem) openAH(cfg *InstanceConfig, c *linuxConn) (Conn, error) {
	if c.v6 {
		return nil, errors.New("auth_type AH is for IPv4 instances only")
	}
	if !c.unicast {
		c.dsts = []netip.Addr{cfg.multicastGroup()}
	}
	a := &ahConn{linuxConn: c, key: ahKey(cfg.AuthPass), vrid: uint8(cfg.VRID), cnt: s.ahCounterOf(cfg)}
	err := s.inNS(func() error {
		raw, err := net.ListenPacket(fmt.Sprintf("ip4:%d", protoAH), "0.0.0.0")
		if err != nil {
			return err
		}
		c.raw = raw
		if err := c.setRxBuf(raw); err != nil {
			return err
		}
		if err := bindToDevice(raw, c.ifi.Name); err != nil {
			return fmt.Errorf("bind to device: %w", err)
		}
		rc, err := ipv4.NewRawConn(raw)
		if err != nil {
			return err
		}
		a.rc = rc
		if c.unicast {
			return nil
		}
		return errors.Join(rc.SetMulticastInterface(c.ifi), rc.SetMulticastLoopback(false),
			rc.JoinGroup(c.ifi, &net.IPAddr{IP: c.dsts[0].AsSlice()}))
	})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("open vrrp AH socket on %s: %w", cfg.Interface, err)
	}
	return a, nil
}

func (a *ahConn) Send(adv *Advert) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	seq := a.cnt.next() // one number per advert, whatever the peers (as keepalived)
	ttl := TTL
	if a.unicast {
		ttl = a.ttl
	}
	var errs []error
	for _, d := range a.dsts {
		vr, err := adv.Marshal(a.src, d)
		if err != nil {
			return err
		}
		if a.id++; a.id == 0 {
			a.id = 1 // 0 would let the kernel choose it after the ICV
		}
		h := &ipv4.Header{Version: ipv4.Version, Len: ipv4.HeaderLen, TOS: 0xc0, TotalLen: ipv4.HeaderLen + ahLen + len(vr),
			ID: int(a.id), TTL: ttl, Protocol: protoAH, Src: a.src.AsSlice(), Dst: d.AsSlice()}
		hb, err := h.Marshal()
		if err != nil {
			return err
		}
		ah := ahHeader(a.src, seq)
		icv := ahICV(a.key, hb, ah, vr, a.unicast)
		copy(ah[12:], icv[:])
		if err := a.rc.WriteTo(h, append(ah, vr...), nil); err != nil {
			errs = append(errs, fmt.Errorf("send advert to %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

func (a *ahConn) Recv() (Packet, error) {
	buf := make([]byte, 2048)
	for {
		h, p, _, err := a.rc.ReadFrom(buf)
		if err != nil {
			return Packet{}, err
		}
		pkt := Packet{TTL: h.TTL, Received: time.Now()}
		pkt.Src, _ = netip.AddrFromSlice(h.Src.To4())
		pkt.Dst, _ = netip.AddrFromSlice(h.Dst.To4())
		if h.Protocol != protoAH || h.Len < ipv4.HeaderLen {
			continue
		}
		if !a.unicast && pkt.Dst.IsMulticast() && pkt.Dst != a.dsts[0] {
			continue // another group's (mcast_dst_ip), as linuxConn.Recv
		}
		// the header as it came: the ICV covers its immutable fields
		hb, err := h.Marshal()
		if err != nil {
			pkt.Drop = DropLength
			return pkt, nil
		}
		vr, seq, drop, skip := ahCheck(a.key, a.vrid, hb, p, pkt.Src, a.unicast, a.cnt, false)
		if skip {
			continue
		}
		if drop == DropVRID {
			// another VRID's: the node drops it as a plain advert's,
			// and logs it with log_unknown_vrids (keepalived finds
			// the VRID behind the AH header too)
			pkt.Data = append([]byte(nil), vr...)
			return pkt, nil
		}
		if drop != "" {
			pkt.Drop = drop
			return pkt, nil
		}
		// the sequence number is taken by the node, once it knows the
		// packet is for the socket in use (a reload briefly has two)
		cnt := a.cnt
		pkt.accept = func() bool { return cnt.accept(seq) }
		pkt.Data = append([]byte(nil), vr...)
		return pkt, nil
	}
}
