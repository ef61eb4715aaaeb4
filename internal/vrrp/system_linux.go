package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// LinuxOptions configure NewLinuxSystem.
type LinuxOptions struct {
	// NetNS runs everything in a named network namespace (a name under
	// /run/netns or a path), like keepalived's net_namespace. Empty means
	// the namespace of the calling process.
	NetNS string
	// Logger hears what the system does not fail for (nil: nothing).
	Logger *slog.Logger
}

// LinuxSystem is the System of a Linux host: raw IP sockets for adverts,
// netlink for addresses and routes, packet sockets for gratuitous ARP.
type LinuxSystem struct {
	ns netns.NsHandle // -1: current namespace
	h  *netlink.Handle

	mu    sync.Mutex
	vmacs map[string]*vmacState    // use_vmac interfaces set up, by name
	saved map[string]*savedSysctls // sysctls changed for them
	rt    routeWatch               // when RestoreRoutes lists the routes
	// ahCounters are the AH sequence counters, by instance name: they
	// outlive a socket opened again
	ahCounters map[string]*ahCounter

	fw vipFirewall // the no_accept rules
	// promoted are the interfaces whose promote_secondaries instances
	// set
	promoted map[string]*promoteHold
	log      *slog.Logger
}

var _ System = (*LinuxSystem)(nil)

// NewLinuxSystem opens the netlink handle (in opts.NetNS if set).
func NewLinuxSystem(opts LinuxOptions) (*LinuxSystem, error) {
	s := &LinuxSystem{ns: netns.None(), log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if opts.NetNS != "" {
		p := opts.NetNS
		if !strings.ContainsRune(p, '/') {
			p = filepath.Join("/run/netns", p)
		}
		ns, err := netns.GetFromPath(p)
		if err != nil {
			return nil, fmt.Errorf("open netns %s: %w", opts.NetNS, err)
		}
		s.ns = ns
	}
	var err error
	if s.ns.IsOpen() {
		s.h, err = netlink.NewHandleAt(s.ns)
	} else {
		s.h, err = netlink.NewHandle()
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("netlink handle: %w", err)
	}
	return s, nil
}

// Close releases the netlink handle and namespace.
func (s *LinuxSystem) Close() error {
	s.stopRouteWatch()
	if s.h != nil {
		s.h.Close()
		s.h = nil
	}
	if s.ns.IsOpen() {
		err := s.ns.Close()
		s.ns = netns.None()
		return err
	}
	return nil
}

// inNS runs fn on a thread switched into the system's namespace; sockets
// created there stay in that namespace.
func (s *LinuxSystem) inNS(fn func() error) error {
	if !s.ns.IsOpen() {
		return fn()
	}
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("get netns: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(s.ns); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter netns: %w", err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: it dies with the goroutine instead
		// of running other goroutines in the wrong namespace.
		return errors.Join(ferr, fmt.Errorf("restore netns: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}

func (s *LinuxSystem) link(name string) (netlink.Link, error) {
	if s.h == nil {
		return nil, errors.New("vrrp: the system is closed")
	}
	l, err := s.h.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("link %s: %w", name, err)
	}
	return l, nil
}

// LocalAddrs implements System.
func (s *LinuxSystem) LocalAddrs(ctx context.Context) (map[netip.Addr]AddrState, error) {
	addrs, err := s.h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	out := make(map[netip.Addr]AddrState, len(addrs))
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			ip = ip.Unmap()
			// (the same address on two interfaces: the best of them)
			if st := addrState(a); out[ip] == 0 || st < out[ip] {
				out[ip] = st
			}
		}
	}
	return out, nil
}

// addrState says whether an address can be a source: not while
// duplicate address detection runs (tentative), never once it failed.
func addrState(a netlink.Addr) AddrState {
	switch {
	case a.Flags&unix.IFA_F_DADFAILED != 0:
		return AddrDADFailed
	case a.Flags&unix.IFA_F_TENTATIVE != 0:
		return AddrTentative
	}
	return AddrUsable
}

// sourceAddr picks the advert source: unicast_src_ip (which must be an
// address of this host), else the first primary IPv4 address or the
// link-local IPv6 address of the interface.
func (s *LinuxSystem) sourceAddr(cfg *InstanceConfig, l netlink.Link) (netip.Addr, error) {
	if cfg.UnicastSrcIP.IsValid() {
		local, err := s.LocalAddrs(context.Background())
		if err == nil && local[cfg.UnicastSrcIP] != AddrUsable {
			err = fmt.Errorf("%w: source address %s is not an address of this host", ErrNotYet, cfg.UnicastSrcIP)
		}
		return cfg.UnicastSrcIP, err
	}
	fam := netlink.FAMILY_V4
	if cfg.IsIPv6() {
		fam = netlink.FAMILY_V6
	}
	addrs, err := s.h.AddrList(l, fam)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("list addresses of %s: %w", cfg.Interface, err)
	}
	vips := map[netip.Addr]bool{}
	for _, v := range allVIPs(cfg) {
		vips[v.Prefix.Addr()] = true
	}
	var tentative netip.Addr
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if vips[ip] {
			continue
		}
		st := addrState(a)
		if fam == netlink.FAMILY_V6 {
			if !ip.IsLinkLocalUnicast() {
				continue
			}
			if st == AddrUsable {
				return ip, nil
			}
			if st == AddrTentative && !tentative.IsValid() {
				tentative = ip
			}
			continue
		}
		if st == AddrUsable && a.Flags&unix.IFA_F_SECONDARY == 0 {
			return ip, nil
		}
	}
	if tentative.IsValid() {
		// An interface that has just come up checks its link-local
		// address for duplicates for a second or two. As keepalived
		// does, the instance is not in FAULT meanwhile: its socket
		// receives adverts, and those it sends fail until the address
		// is usable (checkSources keeps the socket while it is
		// tentative).
		return tentative, nil
	}
	return netip.Addr{}, fmt.Errorf("%w: no usable source address on %s", ErrNotYet, cfg.Interface)
}

// OpenConn opens a raw IP protocol 112 socket bound to the instance's
// interface.
func (s *LinuxSystem) OpenConn(ctx context.Context, cfg *InstanceConfig) (Conn, error) {
	l, err := s.link(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotYet, err)
	}
	// the source address is the instance interface's even when the
	// adverts go out of the use_vmac interface, which has none (IPv6:
	// it has the same link-local one)
	var src netip.Addr
	if cfg.vmacLinkLocalSource() {
		// the link-local address the VMAC interface has while MASTER
		src, err = s.vmacLinkLocal(cfg, l)
	} else {
		src, err = s.sourceAddr(cfg, l)
	}
	if err != nil {
		return nil, err
	}
	if dev := cfg.advertDev(); dev != cfg.Interface {
		if l, err = s.link(dev); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNotYet, err)
		}
	}
	ifi := &net.Interface{Index: l.Attrs().Index, Name: l.Attrs().Name, MTU: l.Attrs().MTU, HardwareAddr: l.Attrs().HardwareAddr}
	c := &linuxConn{src: src, ifi: ifi, v6: cfg.IsIPv6(), ttl: max(1, min(cfg.UnicastTTL, TTL)), rxBuf: cfg.rxBufSize(ifi.MTU)}
	if cfg.UnicastTTL == 0 {
		c.ttl = TTL
	}
	for _, p := range cfg.UnicastPeers {
		c.dsts = append(c.dsts, p)
	}
	c.unicast = len(c.dsts) > 0
	conn, err := s.openConn(cfg, c)
	if err != nil || !cfg.PromoteSecondaries || cfg.IsIPv6() {
		return conn, err
	}
	release, err := s.holdPromote(cfg.Interface)
	if err != nil {
		// as keepalived: logged, the instance runs (a read-only
		// /proc/sys in a container)
		s.log.Warn("vrrp: promote_secondaries not set", "instance", cfg.Name, "interface", cfg.Interface, "err", err)
		return conn, nil
	}
	return &promotingConn{Conn: conn, release: release}, nil
}

// promotingConn gives back the interface's promote_secondaries when it
// closes.
type promotingConn struct {
	Conn
	once    sync.Once
	release func()
}

func (c *promotingConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// holdPromote sets promote_secondaries on an interface, keeping the value
// it had for the last release.
func (s *LinuxSystem) holdPromote(ifname string) (func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := "net/ipv4/conf/" + ifname + "/promote_secondaries"
	h := s.promoted[ifname]
	if h == nil {
		orig, err := s.sysctl(key)
		if err != nil {
			return nil, err
		}
		if orig != "1" {
			if err := s.setSysctl(key, "1"); err != nil {
				return nil, err
			}
		}
		h = &promoteHold{orig: orig}
		if s.promoted == nil {
			s.promoted = map[string]*promoteHold{}
		}
		s.promoted[ifname] = h
	}
	h.refs++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if h.refs--; h.refs > 0 || s.promoted[ifname] != h {
			return
		}
		delete(s.promoted, ifname)
		if h.orig != "1" {
			s.setSysctl(key, h.orig) // (the interface may be gone)
		}
	}, nil
}

type promoteHold struct {
	orig string
	refs int
}

// openConn opens the socket of OpenConn.
func (s *LinuxSystem) openConn(cfg *InstanceConfig, c *linuxConn) (Conn, error) {
	if cfg.AuthAH {
		return s.openAH(cfg, c)
	}
	if !c.unicast {
		c.dsts = []netip.Addr{cfg.multicastGroup()}
	}
	err := s.inNS(func() error {
		if c.v6 {
			return c.open6()
		}
		return c.open4()
	})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("open vrrp socket on %s: %w", cfg.Interface, err)
	}
	return c, nil
}

type linuxConn struct {
	// rxBuf is the receive buffer to ask for (0: the system's)
	rxBuf   int
	src     netip.Addr
	dsts    []netip.Addr
	unicast bool
	v6      bool
	ttl     int
	ifi     *net.Interface
	raw     net.PacketConn
	p4      *ipv4.PacketConn
	p6      *ipv6.PacketConn
}

func bindToDevice(c net.PacketConn, ifname string) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return errors.New("not a syscall.Conn")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifname)
	})
	return errors.Join(err, serr)
}

// setRxBuf sets the socket's receive buffer (SO_RCVBUF; the kernel
// caps it at net.core.rmem_max) when one is configured.
func (c *linuxConn) setRxBuf(raw net.PacketConn) error {
	if c.rxBuf <= 0 {
		return nil
	}
	ipc, ok := raw.(*net.IPConn)
	if !ok {
		return fmt.Errorf("receive buffer: not an IP socket")
	}
	if err := ipc.SetReadBuffer(c.rxBuf); err != nil {
		return fmt.Errorf("receive buffer of %d bytes: %w", c.rxBuf, err)
	}
	return nil
}

func (c *linuxConn) open4() error {
	raw, err := net.ListenPacket("ip4:112", "0.0.0.0")
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
	p := ipv4.NewPacketConn(raw)
	c.p4 = p
	if err := p.SetControlMessage(ipv4.FlagTTL|ipv4.FlagDst|ipv4.FlagInterface, true); err != nil {
		return err
	}
	if err := p.SetTTL(c.ttl); err != nil {
		return err
	}
	if c.unicast {
		return nil
	}
	g := &net.IPAddr{IP: c.dsts[0].AsSlice()}
	return errors.Join(p.SetMulticastTTL(TTL), p.SetMulticastLoopback(false),
		p.SetMulticastInterface(c.ifi), p.JoinGroup(c.ifi, g))
}

func (c *linuxConn) open6() error {
	raw, err := net.ListenPacket("ip6:112", "::")
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
	p := ipv6.NewPacketConn(raw)
	c.p6 = p
	// The kernel computes and verifies the VRRPv3 checksum at offset 6.
	if err := p.SetChecksum(true, 6); err != nil {
		return err
	}
	if err := p.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst|ipv6.FlagInterface, true); err != nil {
		return err
	}
	if err := p.SetHopLimit(c.ttl); err != nil {
		return err
	}
	if c.unicast {
		return nil
	}
	g := &net.IPAddr{IP: c.dsts[0].AsSlice()}
	return errors.Join(p.SetMulticastHopLimit(TTL), p.SetMulticastLoopback(false),
		p.SetMulticastInterface(c.ifi), p.JoinGroup(c.ifi, g))
}

func (c *linuxConn) LocalAddr() netip.Addr { return c.src }

func (c *linuxConn) Device() (string, int) { return c.ifi.Name, c.ifi.Index }

func (c *linuxConn) Send(a *Advert) error {
	var errs []error
	for _, d := range c.dsts {
		b, err := a.Marshal(c.src, d)
		if err != nil {
			return err
		}
		dst := &net.IPAddr{IP: d.AsSlice()}
		if c.v6 {
			// No zone: the socket is bound to the device, which scopes
			// link-local destinations.
			hl := TTL
			if c.unicast {
				hl = c.ttl
			}
			_, err = c.p6.WriteTo(b, &ipv6.ControlMessage{Src: c.src.AsSlice(), IfIndex: c.ifi.Index, HopLimit: hl}, dst)
		} else {
			_, err = c.p4.WriteTo(b, &ipv4.ControlMessage{Src: c.src.AsSlice(), IfIndex: c.ifi.Index}, dst)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("send advert to %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

func (c *linuxConn) Recv() (Packet, error) {
	buf := make([]byte, 2048)
	for {
		var (
			n   int
			src net.Addr
			err error
			p   = Packet{TTL: -1}
		)
		if c.v6 {
			var cm *ipv6.ControlMessage
			n, cm, src, err = c.p6.ReadFrom(buf)
			if cm != nil {
				p.TTL = cm.HopLimit
				p.Dst, _ = netip.AddrFromSlice(cm.Dst)
			}
			p.ChecksumVerified = true
		} else {
			var cm *ipv4.ControlMessage
			n, cm, src, err = c.p4.ReadFrom(buf)
			if cm != nil {
				p.TTL = cm.TTL
				p.Dst, _ = netip.AddrFromSlice(cm.Dst)
				p.Dst = p.Dst.Unmap()
			}
		}
		if err != nil {
			return Packet{}, err
		}
		if !c.unicast && p.Dst.IsMulticast() && p.Dst != c.dsts[0] {
			// another group's advert (mcast_dst_ip): not this
			// instance's, which may share its VRID (keepalived's socket
			// bound to its group does not read it either)
			continue
		}
		if ia, ok := src.(*net.IPAddr); ok {
			p.Src, _ = netip.AddrFromSlice(ia.IP)
			p.Src = p.Src.Unmap()
		}
		p.Data = append([]byte(nil), buf[:n]...)
		return p, nil
	}
}

func (c *linuxConn) Close() error {
	if c.raw != nil {
		return c.raw.Close()
	}
	return nil
}

func (s *LinuxSystem) vipAddr(cfg *InstanceConfig, v VirtualIP) (netlink.Link, *netlink.Addr, error) {
	dev := v.Dev
	if dev == "" {
		dev = cfg.addrDev()
	}
	l, err := s.link(dev)
	if err != nil {
		return nil, nil, err
	}
	scope, err := parseScope(v.Scope)
	if err != nil {
		return nil, nil, err
	}
	p := v.Prefix
	a := &netlink.Addr{
		IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())},
		Label: v.Label,
		Scope: int(scope),
	}
	if v.Broadcast.IsValid() {
		a.Broadcast = v.Broadcast.AsSlice()
	}
	if v.NoDAD && p.Addr().Is6() {
		a.Flags |= unix.IFA_F_NODAD
	}
	return l, a, nil
}

// AddAddresses adds the virtual_ipaddress entries and virtual_routes
// (and an IPv6 VMAC interface's link-local address: vmacAddr).
func (s *LinuxSystem) AddAddresses(ctx context.Context, cfg *InstanceConfig) error {
	s.forgetRoutes(cfg) // RestoreRoutes checks what this could not add
	var errs []error
	if cfg.VMAC != "" && cfg.IsIPv6() {
		l, a, err := s.vmacAddr(cfg)
		if err == nil {
			if err = s.h.AddrAdd(l, a); errors.Is(err, unix.EEXIST) {
				err = nil
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("use_vmac link-local address: %w", err))
		}
	}
	for _, v := range allVIPs(cfg) {
		l, a, err := s.vipAddr(cfg, v)
		if err == nil {
			err = s.h.AddrAdd(l, a)
			if errors.Is(err, unix.EEXIST) {
				err = nil
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("add %s: %w", v.Prefix, err))
		}
	}
	for _, r := range cfg.VirtualRoutes {
		nr, err := s.route(cfg, r)
		if err == nil {
			err = s.h.RouteReplace(nr)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("add route %s: %w", r.Dst, err))
		}
	}
	for _, r := range cfg.VirtualRules {
		// A rule already there (from an earlier add, or a run that
		// ended without removing it) is not added again: without a
		// priority the kernel would give the copy one of its own.
		want := rule(r)
		have, err := s.sameRules(want)
		if err == nil && len(have) == 0 {
			err = s.h.RuleAdd(want)
			if errors.Is(err, unix.EEXIST) {
				err = nil
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("add rule %s: %w", want, err))
		}
	}
	return errors.Join(errs...)
}

// RemoveAddresses removes the rules, routes and virtual addresses.
func (s *LinuxSystem) RemoveAddresses(ctx context.Context, cfg *InstanceConfig) error {
	var errs []error
	for _, r := range cfg.VirtualRules {
		// each copy that is exactly this rule, by its own priority: a
		// delete names only some fields and the kernel takes the others
		// as wildcards, which could remove another rule
		want := rule(r)
		have, err := s.sameRules(want)
		for i := 0; err == nil && i < len(have); i++ {
			err = s.h.RuleDel(&have[i])
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
				err = nil
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove rule %s: %w", want, err))
		}
	}
	for _, r := range cfg.VirtualRoutes {
		nr, err := s.route(cfg, r)
		if err == nil {
			err = s.h.RouteDel(nr)
			if errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) {
				err = nil
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove route %s: %w", r.Dst, err))
		}
	}
	for _, v := range allVIPs(cfg) {
		l, a, err := s.vipAddr(cfg, v)
		if err == nil {
			err = s.h.AddrDel(l, a)
			if errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENOENT) {
				err = nil
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", v.Prefix, err))
		}
	}
	if cfg.VMAC != "" && cfg.IsIPv6() {
		// every link-local address it has, not only the one it should
		// have now (the parent's may have changed since)
		if err := s.flushVMAC(cfg.VMAC, netlink.FAMILY_V6, true); err != nil {
			errs = append(errs, fmt.Errorf("use_vmac link-local address: %w", err))
		}
	}
	return errors.Join(errs...)
}

func (s *LinuxSystem) route(cfg *InstanceConfig, r VirtualRoute) (*netlink.Route, error) {
	p := r.Dst.Masked() // as the kernel keeps it
	nr := &netlink.Route{
		Dst:      &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())},
		Table:    r.Table,
		Priority: r.Metric,
	}
	if p.Addr().Is6() {
		nr.Family = netlink.FAMILY_V6
	} else {
		nr.Family = netlink.FAMILY_V4
	}
	scope, err := parseScope(r.Scope)
	if err != nil {
		return nil, err
	}
	nr.Scope = netlink.Scope(scope)
	if r.Via.IsValid() {
		nr.Gw = r.Via.AsSlice()
	}
	if r.Src.IsValid() {
		nr.Src = r.Src.AsSlice()
	}
	nr.Protocol = netlink.RouteProtocol(r.Proto)
	nr.MTU, nr.MTULock, nr.AdvMSS, nr.Hoplimit, nr.InitCwnd, nr.InitRwnd = r.MTU, r.MTULock, r.AdvMSS, r.Hoplimit, r.InitCwnd, r.InitRwnd
	switch r.Type {
	case "blackhole":
		nr.Type = unix.RTN_BLACKHOLE
		return nr, nil
	case "unreachable":
		nr.Type = unix.RTN_UNREACHABLE
		return nr, nil
	case "prohibit":
		nr.Type = unix.RTN_PROHIBIT
		return nr, nil
	}
	if r.Onlink {
		nr.Flags |= unix.RTNH_F_ONLINK
	}
	if len(r.Nexthops) > 0 {
		for _, h := range r.Nexthops {
			nh := &netlink.NexthopInfo{Hops: max(h.Weight, 1) - 1}
			if h.Via.IsValid() {
				nh.Gw = h.Via.AsSlice()
			}
			if h.Onlink {
				nh.Flags |= unix.RTNH_F_ONLINK
			}
			if h.Dev != "" {
				l, err := s.link(h.Dev)
				if err != nil {
					return nil, err
				}
				nh.LinkIndex = l.Attrs().Index
			}
			nr.MultiPath = append(nr.MultiPath, nh)
		}
		return nr, nil
	}
	dev := r.Dev
	if dev == "" && !r.Via.IsValid() {
		dev = cfg.addrDev()
	}
	if dev != "" {
		l, err := s.link(dev)
		if err != nil {
			return nil, err
		}
		nr.LinkIndex = l.Attrs().Index
	}
	if r.Scope == "" && !r.Via.IsValid() {
		nr.Scope = netlink.SCOPE_LINK
	}
	return nr, nil
}

// sameNexthops says whether a listed route's paths are want's: the same
// gateways with the same weights, and the same devices where want gives
// them.
func sameNexthops(have, want []*netlink.NexthopInfo) bool {
	if len(have) != len(want) {
		return false
	}
	for _, w := range want {
		if !slices.ContainsFunc(have, func(h *netlink.NexthopInfo) bool {
			return h.Gw.Equal(w.Gw) && h.Hops == w.Hops && (w.LinkIndex == 0 || h.LinkIndex == w.LinkIndex)
		}) {
			return false
		}
	}
	return true
}

// sameRules lists the installed rules that are exactly want: the same
// selector and table, and the same priority when want has one. (The
// kernel's listing does not give a rule's type, so a blackhole and a
// prohibit rule with the same selector would be taken for each other.)
func (s *LinuxSystem) sameRules(want *netlink.Rule) ([]netlink.Rule, error) {
	rules, err := s.h.RuleList(want.Family)
	if err != nil {
		return nil, err
	}
	ipnet := func(n *net.IPNet) string {
		if n == nil {
			return ""
		}
		return n.String()
	}
	table := func(t int) int { return max(t, 0) }
	mask := func(r *netlink.Rule) uint32 {
		switch {
		case r.Mask != nil:
			return *r.Mask
		case r.Mark != 0:
			return 0xffffffff // the kernel's mask for a mark given without one
		}
		return 0
	}
	ports := func(p *netlink.RulePortRange) [2]uint16 {
		if p == nil {
			return [2]uint16{}
		}
		return [2]uint16{p.Start, p.End}
	}
	var out []netlink.Rule
	for _, r := range rules {
		if r.Family == want.Family && ipnet(r.Src) == ipnet(want.Src) && ipnet(r.Dst) == ipnet(want.Dst) &&
			r.Invert == want.Invert && table(r.Table) == table(want.Table) && r.Mark == want.Mark && mask(&r) == mask(want) &&
			r.Tos == want.Tos && r.IifName == want.IifName && r.OifName == want.OifName && r.IPProto == want.IPProto &&
			ports(r.Sport) == ports(want.Sport) && ports(r.Dport) == ports(want.Dport) &&
			(want.Priority < 0 || r.Priority == want.Priority) {
			out = append(out, r)
		}
	}
	return out, nil
}

// rule is a virtual_rules entry as netlink has it.
func rule(r VirtualRule) *netlink.Rule {
	nr := netlink.NewRule()
	nr.Family = unix.AF_INET
	if r.IPv6 {
		nr.Family = unix.AF_INET6
	}
	ipnet := func(p netip.Prefix) *net.IPNet {
		return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
	}
	// a /0 prefix is all, which the kernel keeps (and lists) as no
	// prefix at all; it still gives the family
	if r.From.IsValid() {
		if r.From.Bits() > 0 {
			nr.Src = ipnet(r.From)
		}
		if r.From.Addr().Is6() {
			nr.Family = unix.AF_INET6
		}
	}
	if r.To.IsValid() {
		if r.To.Bits() > 0 {
			nr.Dst = ipnet(r.To)
		}
		if r.To.Addr().Is6() {
			nr.Family = unix.AF_INET6
		}
	}
	nr.Invert = r.Not
	nr.Table = r.Table
	if r.Table == 0 {
		nr.Table = -1
	}
	if r.Priority > 0 {
		nr.Priority = r.Priority
	}
	nr.Mark = r.FWMark
	if r.HasMask {
		m := r.FWMask
		nr.Mask = &m
	}
	nr.Tos = uint(r.Tos)
	nr.IifName, nr.OifName = r.Iif, r.Oif
	nr.IPProto = r.IPProto
	if r.Sport != [2]uint16{} {
		nr.Sport = netlink.NewRulePortRange(r.Sport[0], r.Sport[1])
	}
	if r.Dport != [2]uint16{} {
		nr.Dport = netlink.NewRulePortRange(r.Dport[0], r.Dport[1])
	}
	switch r.Type {
	case "blackhole":
		nr.Type = unix.RTN_BLACKHOLE
	case "unreachable":
		nr.Type = unix.RTN_UNREACHABLE
	case "prohibit":
		nr.Type = unix.RTN_PROHIBIT
	}
	return nr
}

// LinkIndex implements System.
func (s *LinuxSystem) LinkIndex(ctx context.Context, name string) (int, error) {
	l, err := s.link(name)
	if err != nil {
		if nf := (netlink.LinkNotFoundError{}); errors.As(err, &nf) {
			return 0, fmt.Errorf("%w: %w", ErrNotYet, err)
		}
		return 0, err
	}
	return l.Attrs().Index, nil
}

// LinkUp reports IFF_UP and IFF_RUNNING of an interface.
func (s *LinuxSystem) LinkUp(ctx context.Context, name string) (bool, error) {
	l, err := s.link(name)
	if err != nil {
		return false, err
	}
	return linkRunning(l), nil
}

func linkRunning(l netlink.Link) bool {
	f := l.Attrs().RawFlags
	return f&unix.IFF_UP != 0 && f&unix.IFF_RUNNING != 0
}

// WatchLinks follows RTM_NEWLINK / RTM_DELLINK messages until ctx is done.
func (s *LinuxSystem) WatchLinks(ctx context.Context, fn func(name string, up bool)) error {
	ch := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	opts := netlink.LinkSubscribeOptions{ErrorCallback: func(error) {}}
	if s.ns.IsOpen() {
		ns := s.ns
		opts.Namespace = &ns
	}
	if err := netlink.LinkSubscribeWithOptions(ch, done, opts); err != nil {
		return fmt.Errorf("subscribe to links: %w", err)
	}
	last := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-ch:
			if !ok {
				return errors.New("link subscription closed")
			}
			name := u.Link.Attrs().Name
			up := u.Header.Type != unix.RTM_DELLINK && linkRunning(u.Link)
			if prev, seen := last[name]; seen && prev == up {
				continue
			}
			last[name] = up
			fn(name, up)
		}
	}
}
