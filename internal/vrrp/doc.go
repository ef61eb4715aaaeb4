// Package vrrp implements VRRP high availability (RFC 3768 VRRPv2 and RFC
// 5798 VRRPv3, IPv4 and IPv6) interoperable with keepalived.
//
// It is split the way the design asks for:
//
//   - a packet codec (Advert, ParseAdvert),
//   - a pure state machine per instance (Machine.Step(event, now) returning
//     actions, no I/O, no clock),
//   - I/O adapters (System: raw IP protocol 112 sockets, netlink for the
//     virtual addresses and routes, gratuitous ARP / unsolicited neighbour
//     advertisements), Linux only,
//   - a Node that runs every instance, its trackers (track_interface,
//     track_script, track_file) and sync groups, and exposes their state.
//
// Configuration types mirror keepalived's vrrp_instance, vrrp_script and
// vrrp_sync_group blocks with keepalived's defaults; see docs/vrrp.md.
package vrrp
