package lvscf

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/govs/govs/internal/config"
)

// Options adjust the conversion.
type Options struct {
	// Backup produces the backup router's configuration: unicast_src_ip
	// is the backup's address, the peer is the primary, state BACKUP with
	// a lower priority. The default is the primary's configuration.
	Backup bool
	// VRID is the virtual_router_id of the VRRP instance (lvs.cf has
	// none); 0 means DefaultVRID.
	VRID int
}

// DefaultVRID is the virtual_router_id used when Options.VRID is 0.
const DefaultVRID = 51

// InstanceName is the name of the VRRP instance that replaces pulse's
// heartbeat.
const InstanceName = "VI_LVS"

// Priorities of the imported VRRP instance on the two routers.
const (
	PrimaryPriority = 150
	BackupPriority  = 100
)

// Import parses lvs.cf text and converts it. The report holds the parse
// problems and every mapping decision, in line order. When the report has
// errors the config must not be used.
func Import(name string, data []byte, opts Options) (*config.Config, Report) {
	f, ds := Parse(name, data)
	cfg, rep := Convert(f, opts)
	rep = append(fromDiagnostics(ds), rep...)
	rep.sort()
	return cfg, rep
}

type converter struct {
	f    *File
	opts Options
	rep  Report
	cfg  *config.Config
	vi   *config.VRRPInstance

	method    config.Method
	keepalive int // seconds, 0 when not set
	monitor   bool
	natNet    netip.Prefix // network of nat_router, for FTP advice; invalid if unknown
	vipDevs   []string
}

func (c *converter) add(pos config.Pos, l Level, format string, args ...any) {
	c.rep = append(c.rep, Item{Pos: pos, Level: l, Msg: fmt.Sprintf(format, args...)})
}

func (c *converter) notef(pos config.Pos, format string, args ...any) {
	c.add(pos, Note, format, args...)
}

func (c *converter) warnf(pos config.Pos, format string, args ...any) {
	c.add(pos, Warning, format, args...)
}

func (c *converter) errorf(pos config.Pos, format string, args ...any) {
	c.add(pos, Error, format, args...)
}

// filePos is the position of notes about the file as a whole (a key that
// is absent).
func (c *converter) filePos() config.Pos { return config.Pos{File: c.f.Name} }

// Convert maps a parsed lvs.cf to a govs configuration. It never fails as
// a whole: problems are report items, and the returned config holds what
// could be converted.
func Convert(f *File, opts Options) (*config.Config, Report) {
	c := &converter{f: f, opts: opts, cfg: newConfig()}
	g := c.known(f.Entries, "global", globalKeys)
	c.globals(g)
	c.virtuals()
	c.finishVRRP(g)
	c.rep.sort()
	return c.cfg, c.rep
}

// newConfig returns an empty config with keepalived's defaults filled in,
// as config.Parse would leave it.
func newConfig() *config.Config {
	cfg := &config.Config{}
	cfg.Global.VRRPVersion = 2
	cfg.Global.SMTPConnectTimeout = config.DefaultSMTPConnectTimeout
	return cfg
}

var globalKeys = map[string]bool{
	"serial_no": true, "primary": true, "primary_private": true, "service": true,
	"backup_active": true, "backup": true, "backup_private": true, "heartbeat": true,
	"heartbeat_port": true, "keepalive": true, "deadtime": true, "network": true,
	"nat_router": true, "nat_nmask": true, "debug_level": true, "monitor_links": true,
	"syncdaemon": true, "syncd_iface": true, "syncd_id": true, "rsh_command": true,
	"tcp_timeout": true, "tcpfin_timeout": true, "udp_timeout": true,
}

// known indexes the entries of one block by key (the last one wins) and
// warns about every key that is not in keys.
func (c *converter) known(es []*Entry, where string, keys map[string]bool) map[string]*Entry {
	m := map[string]*Entry{}
	for _, e := range es {
		if !keys[e.Key] {
			c.warnf(e.Pos, "unknown %s key %q: not converted", where, e.Key)
			continue
		}
		m[e.Key] = e
	}
	return m
}

// Value helpers: each reports an error on its entry and returns ok false.

func (c *converter) intVal(e *Entry, min, max int) (int, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(e.Value))
	if err != nil || n < min || n > max {
		c.errorf(e.Pos, "%s = %q: want an integer in %d..%d", e.Key, clip(e.Value), min, max)
		return 0, false
	}
	return n, true
}

// u32Val reads an unsigned 32-bit number (an int cannot hold them all on
// 32-bit systems).
func (c *converter) u32Val(e *Entry) (uint32, bool) {
	n, err := strconv.ParseUint(strings.TrimSpace(e.Value), 10, 32)
	if err != nil {
		c.errorf(e.Pos, "%s = %q: want an integer in 0..4294967295", e.Key, clip(e.Value))
		return 0, false
	}
	return uint32(n), true
}

func (c *converter) boolVal(e *Entry) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(e.Value)) {
	case "1", "yes", "true", "on":
		return true, true
	case "0", "no", "false", "off", "":
		return false, true
	}
	c.errorf(e.Pos, "%s = %q: want 0 or 1", e.Key, clip(e.Value))
	return false, false
}

func (c *converter) addrVal(e *Entry, s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		c.errorf(e.Pos, "%s: %q is not an IP address", e.Key, clip(s))
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// hostVal reads primary/backup: an address, or a host name that the
// import cannot use (no name resolution at import time).
func (c *converter) hostVal(e *Entry) (netip.Addr, bool) {
	v := strings.TrimSpace(e.Value)
	if a, err := netip.ParseAddr(v); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	if v == "" {
		c.warnf(e.Pos, "%s is empty", e.Key)
	} else {
		c.warnf(e.Pos, "%s = %q is not an IP address: write the router's address in unicast_src_ip/unicast_peer by hand", e.Key, clip(v))
	}
	return netip.Addr{}, false
}

// maskBits reads a dotted netmask (or a prefix length) for an address of
// the given family.
func (c *converter) maskBits(e *Entry, v6 bool) (int, bool) {
	n, err := config.MaskBits(strings.TrimSpace(e.Value), v6)
	if err != nil {
		c.errorf(e.Pos, "%s: %v", e.Key, err)
		return 0, false
	}
	return n, true
}

// addrDev reads "IP [DEVICE]" (address, nat_router). A device alias such
// as eth0:1 becomes dev eth0 with label eth0:1.
func (c *converter) addrDev(e *Entry) (a netip.Addr, dev, label string, ok bool) {
	f := strings.Fields(e.Value)
	if len(f) == 0 || len(f) > 2 {
		c.errorf(e.Pos, "%s = %q: want \"IP DEVICE\"", e.Key, clip(e.Value))
		return a, "", "", false
	}
	if a, ok = c.addrVal(e, f[0]); !ok {
		return a, "", "", false
	}
	if len(f) == 2 {
		if !validDev(f[1]) {
			c.errorf(e.Pos, "%s: %q is not a network device name", e.Key, clip(f[1]))
			return a, "", "", false
		}
		dev = f[1]
		if base, _, alias := strings.Cut(dev, ":"); alias {
			dev, label = base, f[1]
		}
	}
	return a, dev, label, true
}

// validDev accepts Linux interface names, with an optional ":alias".
func validDev(s string) bool {
	base, alias, hasAlias := strings.Cut(s, ":")
	if base == "" || len(base) > 15 || hasAlias && (alias == "" || strings.Contains(alias, ":")) || s == "include" {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !(isKeyChar(ch) || ch == '.' || ch == ':' || ch == '@') {
			return false
		}
	}
	return true
}

// writable reports whether s survives being written as a keepalived
// quoted string and read back: no control characters but tab, and no
// backslash right before the closing quote.
func writable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 && s[i] != '\t' || s[i] == 0x7f {
			return false
		}
	}
	return !strings.HasSuffix(s, `\`)
}

// name turns a Piranha block name into a name safe to write.
func safeName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if isKeyChar(ch) || ch == '.' || ch == ':' || ch == '@' || ch == '+' {
			b.WriteByte(ch)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func (c *converter) globals(g map[string]*Entry) {
	if e := g["serial_no"]; e != nil {
		c.notef(e.Pos, "serial_no dropped: pulse used it to compare the routers' copies of lvs.cf; govs does not need it")
	}
	if e := g["service"]; e != nil {
		switch v := strings.ToLower(strings.TrimSpace(e.Value)); v {
		case "lvs":
			c.notef(e.Pos, "service = lvs: the virtual blocks are converted to virtual_server blocks")
		case "fos":
			c.warnf(e.Pos, "service = fos (failover services): govs does not run failover services; only virtual blocks are converted")
		default:
			c.warnf(e.Pos, "service = %q: unknown (lvs or fos); treated as lvs", clip(e.Value))
		}
	}
	if e := g["rsh_command"]; e != nil {
		c.notef(e.Pos, "rsh_command dropped: govs does not run commands on the peer router")
	}
	if e := g["debug_level"]; e != nil {
		v := strings.TrimSpace(e.Value)
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			c.cfg.Global.Govs.LogLevel = "debug"
			c.notef(e.Pos, "debug_level %d -> govs_log_level debug", n)
		} else if strings.EqualFold(v, "NONE") || v == "0" || v == "" {
			c.notef(e.Pos, "debug_level %s: default logging (govs_log_level not set)", v)
		} else {
			c.warnf(e.Pos, "debug_level = %q: unknown (NONE or a number); not converted", clip(v))
		}
	}
	c.method = config.MethodNAT
	if e := g["network"]; e != nil {
		switch strings.ToLower(strings.TrimSpace(e.Value)) {
		case "nat":
			c.notef(e.Pos, "network = nat -> lvs_method NAT on every virtual_server (real servers must route replies through the director)")
		case "direct":
			c.method = config.MethodDR
			c.notef(e.Pos, "network = direct -> lvs_method DR on every virtual_server (real servers need the VIP on loopback and must not answer ARP for it)")
		case "tunnel":
			c.method = config.MethodTUN
			c.notef(e.Pos, "network = tunnel -> lvs_method TUN on every virtual_server (real servers need an IPIP tunnel device holding the VIP)")
		default:
			c.errorf(e.Pos, "network = %q: want nat, direct or tunnel", clip(e.Value))
		}
	} else {
		c.notef(c.filePos(), "network not set: lvs_method NAT (keepalived's default)")
	}
	for _, k := range []string{"tcp_timeout", "tcpfin_timeout", "udp_timeout"} {
		e := g[k]
		if e == nil {
			continue
		}
		n, ok := c.intVal(e, 0, 1<<30)
		if !ok {
			continue
		}
		d := config.Duration(time.Duration(n) * time.Second)
		t := &c.cfg.Global.LVSTimeouts
		switch k {
		case "tcp_timeout":
			t.TCP = d
		case "tcpfin_timeout":
			t.TCPFin = d
		default:
			t.UDP = d
		}
		c.notef(e.Pos, "%s %d -> lvs_timeouts %s %d", k, n, strings.TrimSuffix(k, "_timeout"), n)
	}
	c.vrrp(g)
	c.natNet = quietNATNet(g)
}

// quietNATNet computes the network of nat_router/nat_nmask without
// reporting anything (finishVRRP reports on these keys).
func quietNATNet(g map[string]*Entry) netip.Prefix {
	e := g["nat_router"]
	if e == nil {
		return netip.Prefix{}
	}
	f := strings.Fields(e.Value)
	if len(f) == 0 {
		return netip.Prefix{}
	}
	a, err := netip.ParseAddr(f[0])
	if err != nil || !a.Is4() {
		return netip.Prefix{}
	}
	bits := 24
	if m := g["nat_nmask"]; m != nil {
		if n, err := config.MaskBits(strings.TrimSpace(m.Value), false); err == nil {
			bits = n
		}
	}
	return netip.PrefixFrom(a, bits).Masked()
}

// vrrp maps pulse's heartbeat to a VRRP instance; the addresses are added
// by the virtual servers and finishVRRP.
func (c *converter) vrrp(g map[string]*Entry) {
	vrid := c.opts.VRID
	if vrid == 0 {
		vrid = DefaultVRID
	}
	vi := &config.VRRPInstance{
		Name:            InstanceName,
		State:           "MASTER",
		VirtualRouterID: vrid,
		Priority:        PrimaryPriority,
		AdvertInt:       config.DefaultAdvertInt,
	}
	c.vi = vi
	c.cfg.VRRPInstances = append(c.cfg.VRRPInstances, vi)
	if c.opts.VRID == 0 {
		c.notef(c.filePos(), "vrrp_instance %s: virtual_router_id %d (lvs.cf has none; choose one unused on the segment with -vrid)", InstanceName, vrid)
	}

	var primary, backup netip.Addr
	if e := g["primary"]; e != nil {
		primary, _ = c.hostVal(e)
	}
	active := false
	if e := g["backup_active"]; e != nil {
		active, _ = c.boolVal(e)
		if !active {
			c.notef(e.Pos, "backup_active = 0: no backup router; the VRRP instance has no peer")
		}
	}
	if e := g["backup"]; e != nil {
		if !active {
			c.warnf(e.Pos, "backup ignored: backup_active is not 1, so there is no peer")
		} else {
			backup, _ = c.hostVal(e)
		}
	} else if active {
		c.warnf(g["backup_active"].Pos, "backup_active = 1 but backup is not set: the VRRP instance has no peer")
	}
	if e := g["heartbeat"]; e != nil {
		if on, ok := c.boolVal(e); ok && !on {
			c.warnf(e.Pos, "heartbeat = 0: govs always runs VRRP between the routers")
		} else if ok {
			c.notef(e.Pos, "heartbeat = 1: pulse's heartbeat is replaced by VRRP (vrrp_instance %s)", InstanceName)
		}
	}
	if e := g["heartbeat_port"]; e != nil {
		if n, ok := c.intVal(e, 1, 65535); ok {
			c.notef(e.Pos, "heartbeat_port %d dropped: VRRP is IP protocol 112, not UDP; let protocol 112 pass between the routers", n)
		}
	}
	for _, k := range []string{"primary_private", "backup_private"} {
		if e := g[k]; e != nil {
			c.warnf(e.Pos, "%s dropped: VRRP advertises over one path; the second heartbeat channel is lost (add a second vrrp_instance on the private network if needed)", k)
		}
	}

	self, peer := primary, backup
	if c.opts.Backup {
		self, peer = backup, primary
		vi.State, vi.Priority = "BACKUP", BackupPriority
	}
	where := c.filePos()
	if e := g["primary"]; e != nil {
		where = e.Pos
	}
	if self.IsValid() && peer.IsValid() {
		if self.Is4() != peer.Is4() {
			c.errorf(where, "primary %s and backup %s are of different address families", primary, backup)
		} else if self == peer {
			c.errorf(where, "primary and backup are the same address %s", self)
		} else {
			vi.UnicastSrcIP = self
			vi.UnicastPeers = []config.UnicastPeer{{Addr: peer}}
		}
	}
	switch {
	case c.opts.Backup && !backup.IsValid():
		c.errorf(where, "the backup router's configuration was asked for, but lvs.cf names no usable backup address")
	case c.opts.Backup:
		c.notef(where, "backup router's configuration: unicast_src_ip %s (backup), unicast_peer %s (primary), state BACKUP, priority %d", backup, fmtAddr(primary), BackupPriority)
	case vi.UnicastSrcIP.IsValid():
		c.notef(where, "primary %s -> unicast_src_ip, backup %s -> unicast_peer, state MASTER, priority %d; on the backup router swap unicast_src_ip and unicast_peer and use state BACKUP, priority %d (govs import -backup does this)", primary, backup, PrimaryPriority, BackupPriority)
	case primary.IsValid():
		c.notef(where, "primary %s: no peer, so no unicast_src_ip; the instance advertises by multicast and becomes MASTER alone", primary)
	}

	if e := g["keepalive"]; e != nil {
		if n, ok := c.intVal(e, 1, 255); ok {
			c.keepalive = n
			vi.AdvertInt = config.Duration(time.Duration(n) * time.Second)
			c.notef(e.Pos, "keepalive %d -> advert_int %d, and delay_loop %d on every virtual_server (lvs.cf has no check interval of its own; keepalived's default of 60 s would check far less often)", n, n, n)
		}
	} else {
		c.notef(c.filePos(), "keepalive not set: advert_int 1 (VRRP default)")
	}
	if e := g["deadtime"]; e != nil {
		if n, ok := c.intVal(e, 1, 1<<20); ok {
			// VRRPv2 (the version imports get): Skew_Time is
			// (256-priority)/256 s, not scaled by the interval
			a := vi.AdvertInt.D().Seconds()
			skew := float64(256-BackupPriority) / 256
			down := 3*a + skew
			msg := fmt.Sprintf("deadtime %d: VRRP has no separate dead time; the backup (priority %d) takes over after 3 x advert_int + skew = 3 x %s + (256-%d)/256 = %s s",
				n, BackupPriority, fmtSec(a), BackupPriority, fmtSec(down))
			if diff := down - float64(n); diff > a || diff < -a {
				best := int(math.Round((float64(n) - skew) / 3))
				best = max(1, min(255, best))
				if best != int(a) {
					msg += fmt.Sprintf("; advert_int %d would give %s s", best, fmtSec(3*float64(best)+skew))
				}
				c.warnf(e.Pos, "%s", msg)
			} else {
				c.notef(e.Pos, "%s", msg)
			}
		}
	}
	if e := g["monitor_links"]; e != nil {
		if on, ok := c.boolVal(e); ok && on {
			// Filled in finishVRRP, once the devices are known.
			c.monitor = true
			c.notef(e.Pos, "monitor_links = 1 -> track_interface with the devices of the virtual addresses: a link down puts the instance in FAULT and the peer takes over")
		} else if ok {
			c.notef(e.Pos, "monitor_links = 0: no track_interface")
		}
	}
}

func fmtAddr(a netip.Addr) string {
	if !a.IsValid() {
		return "(unknown)"
	}
	return a.String()
}

func fmtSec(s float64) string { return strconv.FormatFloat(s, 'f', -1, 64) }

// addVIP adds an address to the VRRP instance unless it is there already.
func (c *converter) addVIP(e *Entry, a netip.Addr, bits int, dev, label string) {
	p := netip.PrefixFrom(a, bits)
	for _, v := range append(c.vi.VIPs, c.vi.VIPsExcluded...) {
		if v.Prefix.Addr() == a {
			if v.Prefix.Bits() != bits || v.Dev != dev {
				c.warnf(e.Pos, "address %s already added as %s dev %s; this %s dev %s is not added again", a, v.Prefix, v.Dev, p, dev)
			}
			return
		}
	}
	v := config.VIPAddr{Prefix: p, Dev: dev, Label: label}
	if len(c.vi.VIPs) > 0 && c.vi.VIPs[0].Prefix.Addr().Is4() != a.Is4() {
		c.vi.VIPsExcluded = append(c.vi.VIPsExcluded, v)
		c.notef(e.Pos, "%s is of the other address family than the first VIP: put in virtual_ipaddress_excluded (VRRP advertises one family)", a)
	} else {
		c.vi.VIPs = append(c.vi.VIPs, v)
	}
	if dev != "" {
		for _, d := range c.vipDevs {
			if d == dev {
				return
			}
		}
		c.vipDevs = append(c.vipDevs, dev)
	}
}

// finishVRRP sets the interface, the NAT router address, track_interface
// and the sync daemon once the virtual addresses are known.
func (c *converter) finishVRRP(g map[string]*Entry) {
	vi := c.vi
	if e := g["nat_router"]; e != nil {
		if c.method != config.MethodNAT {
			c.warnf(e.Pos, "nat_router dropped: it is only used with network = nat")
		} else if a, dev, label, ok := c.addrDev(e); ok {
			bits := a.BitLen()
			if m := g["nat_nmask"]; m != nil {
				if b, ok := c.maskBits(m, a.Is6()); ok {
					bits = b
				}
			}
			c.addVIP(e, a, bits, dev, label)
			c.notef(e.Pos, "nat_router %s -> virtual_ipaddress %s dev %s%s: the real servers' default gateway, moving with the VIPs", a, netip.PrefixFrom(a, bits), orNone(dev), labelNote(label))
		}
	} else if e := g["nat_nmask"]; e != nil {
		c.warnf(e.Pos, "nat_nmask without nat_router: ignored")
	}
	if c.method == config.MethodNAT && g["nat_router"] == nil && len(c.cfg.VirtualServers) > 0 {
		c.warnf(c.filePos(), "network = nat without nat_router: no floating gateway address for the real servers")
	}
	switch {
	case len(c.vipDevs) > 0:
		vi.Interface = c.vipDevs[0]
		c.notef(c.filePos(), "vrrp_instance %s: interface %s (the device of the first virtual address)", InstanceName, vi.Interface)
	default:
		vi.Interface = "eth0"
		c.warnf(c.filePos(), "vrrp_instance %s: no device given in lvs.cf; interface eth0 assumed", InstanceName)
	}
	if len(vi.VIPs) == 0 {
		c.warnf(c.filePos(), "no active virtual address: the VRRP instance carries no address")
	}
	if c.monitor {
		for _, d := range c.vipDevs {
			vi.TrackIfaces = append(vi.TrackIfaces, config.Track{Name: d})
		}
	}
	c.syncd(g)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func labelNote(label string) string {
	if label == "" {
		return ""
	}
	return " label " + label
}

// syncd maps syncdaemon/syncd_iface/syncd_id to lvs_sync_daemon.
func (c *converter) syncd(g map[string]*Entry) {
	e := g["syncdaemon"]
	on := false
	if e != nil {
		on, _ = c.boolVal(e)
	}
	if !on {
		for _, k := range []string{"syncd_iface", "syncd_id"} {
			if x := g[k]; x != nil {
				c.notef(x.Pos, "%s ignored: syncdaemon is not 1", k)
			}
		}
		if e != nil {
			c.notef(e.Pos, "syncdaemon = 0: no connection synchronisation")
		}
		return
	}
	// pulse starts the IPVS daemons with ipvsadm's sync ID, 0 (no
	// filtering) unless syncd_id says otherwise
	id := 0
	s := &config.SyncD{Interface: c.vi.Interface, Instance: InstanceName, ID: &id}
	if x := g["syncd_iface"]; x != nil {
		if v := strings.TrimSpace(x.Value); validDev(v) && !strings.Contains(v, ":") {
			s.Interface = v
		} else {
			c.errorf(x.Pos, "syncd_iface = %q is not a network device name", clip(x.Value))
		}
	}
	if x := g["syncd_id"]; x != nil {
		if n, ok := c.intVal(x, 0, 255); ok {
			id = n
		}
	}
	c.cfg.Global.LVSSyncDaemon = s
	c.notef(e.Pos, "syncdaemon = 1 -> lvs_sync_daemon %s inst %s id %d: the connection table is synchronised with the xdp dataplane (not with the userspace proxy)", s.Interface, s.Instance, id)
}
