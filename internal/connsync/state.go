package connsync

import (
	"math"
	"net/netip"
	"time"

	"github.com/govs/govs/internal/dataplane"
)

// tcpStates are IPVS's TCP state numbers (IP_VS_TCP_S_*), by the names
// ipvsadm -Lc prints and dataplane.Conn.State holds.
var tcpStates = [...]string{
	"NONE", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT", "TIME_WAIT",
	"CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "SYNACK",
}

const stateEstablished = 1

func tcpState(name string) (uint16, bool) {
	for i, n := range tcpStates {
		if n == name {
			return uint16(i), true
		}
	}
	return 0, false
}

// methodFlags are the forwarding-method bits of a connection's flags.
func methodFlags(m dataplane.Method) uint32 {
	switch m {
	case dataplane.DR:
		return FlagDRoute
	case dataplane.TUN:
		return FlagTunnel
	case dataplane.Local:
		return flagLocalNode
	}
	return FlagMasq // NAT and SNAT (kernel IPVS has no source NAT)
}

// flagLocalNode is IP_VS_CONN_F_LOCALNODE.
const flagLocalNode = 0x0001

// markAddr is where the kernel puts a firewall-mark service's mark in
// its templates' virtual address (the mark, network order, in the first
// four bytes).
func markAddr(mark uint32, v6 bool) netip.Addr {
	b := [16]byte{byte(mark >> 24), byte(mark >> 16), byte(mark >> 8), byte(mark)}
	if v6 {
		return netip.AddrFrom16(b)
	}
	return netip.AddrFrom4([4]byte(b[:4]))
}

// tableVirtual is e's virtual address and port as a connection table
// lists it: none for the template of a firewall-mark service, which the
// kernel records with the mark as its address (kernel IPVS also sends
// the packet's mark with templates of other services: those keep their
// address).
func tableVirtual(e Entry) netip.AddrPort {
	if e.Template() && e.FWMark != 0 && e.Virtual == netip.AddrPortFrom(markAddr(e.FWMark, e.Virtual.Addr().Is6()), 0) {
		return netip.AddrPort{}
	}
	return unmap(e.Virtual)
}

// wireReal is c's real server as IPVS records it: a server without a
// port of its own (multi-port services) gets the virtual port, as the
// kernel does (dest->port ?: vport).
func wireReal(c dataplane.Conn) netip.AddrPort {
	if c.Real.IsValid() && c.Real.Port() == 0 && !c.Template && c.Virtual.IsValid() {
		return netip.AddrPortFrom(c.Real.Addr(), c.Virtual.Port())
	}
	return c.Real
}

// entryOf turns a dataplane connection into a record; ok is false for
// one that is not synchronised (a protocol or state IPVS does not sync,
// an address the wire cannot carry).
func entryOf(c dataplane.Conn) (Entry, bool) {
	e := Entry{
		Proto:   uint8(c.Proto),
		Client:  c.Client,
		Virtual: c.Virtual,
		Real:    wireReal(c),
		Local:   c.Local,
		FWMark:  c.FWMark,
		Flags:   methodFlags(c.Method),
	}
	secs := math.Ceil(c.Expires.Seconds())
	e.Timeout = uint32(max(1, min(secs, math.MaxUint32)))
	switch {
	case c.Template:
		// (not IP_VS_CONN_F_NO_CPORT, which the kernel gives only to
		// connections whose client port is unknown yet: a kernel
		// backup would match such a template as a connection)
		e.Flags |= FlagTemplate
		if !e.Virtual.IsValid() && e.FWMark != 0 && e.Client.IsValid() {
			// as the kernel's templates of firewall-mark services
			e.Virtual = netip.AddrPortFrom(markAddr(e.FWMark, e.Client.Addr().Is6()), 0)
		}
	case c.Proto == dataplane.TCP:
		st, ok := tcpState(c.State)
		if !ok {
			return e, false
		}
		e.State = st
		if st != stateEstablished {
			e.Flags |= FlagInactive
		}
	case c.Proto == dataplane.UDP:
		e.Flags |= FlagInactive // IPVS counts UDP connections inactive
	default:
		return e, false
	}
	return e, e.check() == nil
}

// connOf turns a received record into a dataplane connection; Expires is
// the record's timeout. ok is false for records govs does not take
// (other protocols, states outside TCP's).
func connOf(e Entry) (dataplane.Conn, bool) {
	c := dataplane.Conn{
		Proto:    dataplane.Proto(e.Proto),
		Client:   unmap(e.Client),
		Virtual:  unmap(e.Virtual),
		Real:     unmap(e.Real),
		Local:    unmap(e.Local),
		FWMark:   e.FWMark,
		Expires:  time.Duration(e.Timeout) * time.Second,
		Template: e.Template(),
	}
	switch e.Flags & FlagFwdMask {
	case FlagDRoute:
		c.Method = dataplane.DR
	case FlagTunnel:
		c.Method = dataplane.TUN
	case FlagMasq:
		c.Method = dataplane.NAT
		if c.Local.IsValid() {
			c.Method = dataplane.SNAT
		}
	default:
		c.Method = dataplane.Local
	}
	switch {
	case c.Template:
		c.State = "NONE"
		c.Client = netip.AddrPortFrom(c.Client.Addr(), 0)
		c.Virtual = tableVirtual(e)
	case c.Proto == dataplane.TCP:
		if int(e.State) >= len(tcpStates) || e.State == 0 {
			return c, false
		}
		c.State = tcpStates[e.State]
	case c.Proto == dataplane.UDP:
		c.State = "UDP"
	default:
		return c, false
	}
	return c, true
}

func unmap(a netip.AddrPort) netip.AddrPort {
	if !a.IsValid() {
		return a
	}
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}
