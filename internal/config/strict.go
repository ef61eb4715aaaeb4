package config

import (
	"strings"
)

// Strict mode (vrrp_strict, strict_mode) and accept mode (accept,
// no_accept) follow keepalived's rules: strict mode refuses what RFC
// 5798 has no room for (an instance without virtual addresses, unicast
// peers) and corrects, with a warning, the settings it forbids;
// accept mode decides whether a MASTER that is not the address owner
// takes packets addressed to its virtual addresses.

// StrictMode reports whether vi runs in strict mode (RFC compliance):
// its strict_mode when given, else global_defs' vrrp_strict.
func (g *GlobalDefs) StrictMode(vi *VRRPInstance) bool {
	if vi.Strict != nil {
		return *vi.Strict
	}
	return g.VRRPStrict
}

// BasePriority is vi's configured priority; without one, 255 (the
// address owner) for an initial state MASTER and 100 otherwise, as
// keepalived derives it.
func (vi *VRRPInstance) BasePriority() int {
	switch {
	case vi.Priority > 0:
		return vi.Priority
	case strings.EqualFold(vi.State, "MASTER"):
		return 255
	}
	return DefaultPriority
}

// AcceptMode reports whether vi, as MASTER, accepts packets addressed to
// its virtual addresses (RFC 5798's Accept_Mode), as keepalived decides
// it: the address owner (priority 255) always does; otherwise accept or
// no_accept when given, else on unless in strict mode; strict mode turns
// it off for VRRPv2 (RFC 3768 has no accept mode).
func (g *GlobalDefs) AcceptMode(vi *VRRPInstance) bool {
	if vi.BasePriority() == 255 {
		return true
	}
	strict := g.StrictMode(vi)
	if vi.Accept == nil {
		return !strict
	}
	if *vi.Accept && strict && g.InstanceVersion(vi) == 2 {
		return false
	}
	return *vi.Accept
}

// InstanceVersion is the VRRP version vi speaks: 3 for IPv6, else its
// own, else vrrp_version, else 2.
func (g *GlobalDefs) InstanceVersion(vi *VRRPInstance) int {
	switch {
	case vi.isIPv6():
		return 3
	case vi.Version != 0:
		return vi.Version
	case g.VRRPVersion != 0:
		return g.VRRPVersion
	}
	return 2
}

// strictChecks reports what strict mode refuses or corrects in vi, and
// an instance without virtual addresses.
func (v *validator) strictChecks(vi *VRRPInstance) {
	g := &v.cfg.Global
	strict := g.StrictMode(vi)
	name := vi.Name
	ver := g.InstanceVersion(vi)
	if len(vi.VIPs) == 0 {
		switch {
		case strict:
			v.d.errorf(vi.Pos, "vrrp_instance %q: strict mode (vrrp_strict) needs at least one virtual_ipaddress", name)
		case ver == 3:
			v.d.errorf(vi.Pos, "vrrp_instance %q: VRRPv3 needs at least one virtual_ipaddress", name)
		default:
			v.d.warnf(vi.Pos, "vrrp_instance %q: no virtual_ipaddress; its adverts carry no address", name)
		}
	}
	if !strict {
		return
	}
	if len(vi.UnicastPeers) > 0 {
		v.d.errorf(vi.Pos, "vrrp_instance %q: unicast_peer is not allowed in strict mode (vrrp_strict): adverts go to the multicast group (strict_mode off for this instance to keep unicast)", name)
	}
	prio := vi.BasePriority()
	// (priority 255 with state BACKUP is warned about for every mode)
	if strings.EqualFold(vi.State, "MASTER") && prio != 255 {
		v.d.warnf(vi.Pos, "vrrp_instance %q: in strict mode only the address owner (priority 255) starts as MASTER: state %s with priority %d starts as %s", name, strings.ToUpper(vi.State), prio, strictState(prio))
	}
	if vi.Auth != nil {
		v.d.warnf(vi.Pos, "vrrp_instance %q: strict mode has no authentication; the authentication block is ignored", name)
	}
	if vi.PreemptDelay > 0 {
		v.d.warnf(vi.Pos, "vrrp_instance %q: preempt_delay is not allowed in strict mode and is ignored", name)
	}
	if vi.VMACXmitBase {
		v.d.warnf(vi.Pos, "vrrp_instance %q: vmac_xmit_base is not allowed in strict mode and is ignored: adverts go out of the use_vmac interface", name)
	}
	if p := vi.GarpLowerPrioRepeat; p != nil && *p != 0 {
		v.d.warnf(vi.Pos, "vrrp_instance %q: strict mode sends no gratuitous ARPs on a lower priority advert; garp_lower_prio_repeat is taken as 0", name)
	}
	if p := vi.GarpLowerPrioDelay; p != nil && *p != 0 {
		v.d.warnf(vi.Pos, "vrrp_instance %q: strict mode sends no gratuitous ARPs on a lower priority advert; garp_lower_prio_delay is taken as 0", name)
	}
	if p := vi.LowerPrioNoAdvert; p != nil && !*p {
		v.d.warnf(vi.Pos, "vrrp_instance %q: strict mode does not answer a lower priority advert; lower_prio_no_advert off is ignored", name)
	}
	if p := vi.HigherPrioSendAdvert; p != nil && *p {
		v.d.warnf(vi.Pos, "vrrp_instance %q: strict mode sends no advert before giving way to a higher priority; higher_prio_send_advert is ignored", name)
	}
	if vi.isIPv6() && len(vi.VIPs) > 0 && !vi.VIPs[0].Prefix.Addr().IsLinkLocalUnicast() {
		v.d.warnf(vi.Pos, "vrrp_instance %q: in strict mode the first IPv6 virtual_ipaddress should be link-local (RFC 5798 §5.2.9), not %s", name, vi.VIPs[0].Prefix.Addr())
	}
	if prio != 255 {
		switch {
		case vi.Accept == nil:
			v.d.warnf(vi.Pos, "vrrp_instance %q: strict mode implies no_accept: as MASTER this director drops packets addressed to its virtual addresses (ping, ssh...) except its virtual services' traffic; add accept (VRRPv3) or priority 255 to take them", name)
		case *vi.Accept && ver == 2:
			v.d.warnf(vi.Pos, "vrrp_instance %q: accept does not apply to VRRPv2 in strict mode (RFC 3768 has no accept mode): no_accept applies", name)
		}
	}
}

// strictState is the initial state strict mode gives an instance of
// base priority prio.
func strictState(prio int) string {
	if prio == 255 {
		return "MASTER"
	}
	return "BACKUP"
}
