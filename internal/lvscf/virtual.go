package lvscf

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/health"
)

var virtualKeys = map[string]bool{
	"active": true, "address": true, "vip_nmask": true, "port": true, "fwmark": true,
	"protocol": true, "persistent": true, "pmask": true, "scheduler": true,
	"send": true, "expect": true, "use_regex": true, "send_program": true,
	"load_monitor": true, "timeout": true, "reentry": true, "quiesce_server": true,
}

var serverKeys = map[string]bool{"address": true, "port": true, "active": true, "weight": true}

// schedulers are the IPVS schedulers govs accepts.
var schedulers = map[string]bool{
	"rr": true, "wrr": true, "lc": true, "wlc": true, "lblc": true, "lblcr": true,
	"dh": true, "sh": true, "sed": true, "nq": true, "fo": true, "ovf": true, "mh": true,
}

// virt is one active virtual block being converted.
type virt struct {
	b      *Block
	k      map[string]*Entry
	addr   netip.Addr // invalid when absent
	port   uint16
	fwmark uint32
	proto  config.Proto
	vs     *config.VirtualServer // the service it went into
}

type svcKey struct {
	addr  netip.Addr
	port  uint16
	proto config.Proto
}

func (c *converter) virtuals() {
	byMark := map[uint32]*virt{}
	bySvc := map[svcKey]*virt{}
	for _, b := range c.f.Blocks {
		if b.Kind == "failover" {
			c.warnf(b.Pos, "failover %q not converted: govs balances virtual services and does not run failover services", b.Name)
			continue
		}
		v := c.virtual(b)
		if v == nil {
			continue
		}
		if v.fwmark != 0 {
			if lead := byMark[v.fwmark]; lead != nil {
				c.merge(lead, v)
				continue
			}
			byMark[v.fwmark] = v
		} else {
			k := svcKey{v.addr, v.port, v.proto}
			if other := bySvc[k]; other != nil {
				c.errorf(b.Pos, "virtual %q: %s %s:%d is already virtual %q (line %d); skipped", b.Name, v.proto, v.addr, v.port, other.b.Name, other.b.Pos.Line)
				continue
			}
			bySvc[k] = v
		}
		c.service(v)
	}
	if len(c.cfg.VirtualServers) == 0 {
		c.warnf(c.filePos(), "no active virtual block: the output has no virtual_server")
	}
}

// virtual reads the identity of a virtual block (address, port, fwmark,
// protocol); nil means it is not converted.
func (c *converter) virtual(b *Block) *virt {
	v := &virt{b: b, k: c.known(b.Entries, fmt.Sprintf("virtual %q", b.Name), virtualKeys), proto: config.ProtoTCP}
	k := v.k
	if e := k["active"]; e != nil {
		if on, ok := c.boolVal(e); ok && !on {
			c.warnf(e.Pos, "virtual %q is deactivated (active = 0): not converted, with its %d real server(s) and its address (govs has no disabled flag; copy it back by hand to enable it)", b.Name, len(b.Blocks))
			return nil
		}
	}
	ok := true
	if e := k["fwmark"]; e != nil {
		if n, good := c.u32Val(e); good {
			v.fwmark = n
		} else {
			ok = false
		}
	}
	if e := k["port"]; e != nil {
		if n, good := c.intVal(e, 0, 65535); good {
			v.port = uint16(n)
		} else {
			ok = false
		}
	} else if v.fwmark == 0 {
		c.errorf(b.Pos, "virtual %q has neither port nor fwmark", b.Name)
		ok = false
	}
	if e := k["protocol"]; e != nil {
		switch strings.ToLower(strings.TrimSpace(e.Value)) {
		case "tcp":
		case "udp":
			v.proto = config.ProtoUDP
		default:
			c.errorf(e.Pos, "protocol = %q: want tcp or udp", clip(e.Value))
			ok = false
		}
	}
	if e := k["address"]; e != nil {
		a, dev, label, good := c.addrDev(e)
		if !good {
			return nil
		}
		v.addr = a
		bits := a.BitLen()
		if m := k["vip_nmask"]; m != nil {
			if n, good := c.maskBits(m, a.Is6()); good {
				bits = n
			}
		}
		if dev == "" {
			c.warnf(e.Pos, "virtual %q: address %s has no device; it goes on the VRRP instance's interface", b.Name, a)
		}
		c.addVIP(e, a, bits, dev, label)
		c.notef(e.Pos, "address %s -> virtual_ipaddress %s dev %s%s (vrrp_instance %s)", e.Value, netip.PrefixFrom(a, bits), orNone(dev), labelNote(label), InstanceName)
	} else if v.fwmark != 0 {
		c.warnf(b.Pos, "virtual %q has no address: no virtual address is added for fwmark %d", b.Name, v.fwmark)
	} else {
		c.errorf(b.Pos, "virtual %q has no address", b.Name)
		return nil
	}
	if e := k["vip_nmask"]; e != nil && k["address"] == nil {
		c.notef(e.Pos, "vip_nmask without address: ignored")
	}
	if !ok {
		return nil
	}
	return v
}

// service creates the virtual_server of v.
func (c *converter) service(v *virt) {
	b, k := v.b, v.k
	vs := &config.VirtualServer{
		Name:      safeName(b.Name),
		Protocols: []config.Proto{v.proto},
		Scheduler: config.DefaultScheduler,
		Method:    c.method,
		Quorum:    1,
	}
	v.vs = vs
	if vs.Name != b.Name {
		c.notef(b.Pos, "virtual %q: name written as %q", b.Name, vs.Name)
	}
	if v.fwmark != 0 {
		vs.FWMark = v.fwmark
		e := k["fwmark"]
		rule := "iptables -t mangle -A PREROUTING -p " + strings.ToLower(string(v.proto))
		if v.addr.IsValid() {
			rule += " -d " + netip.PrefixFrom(v.addr, v.addr.BitLen()).String()
		}
		if v.port != 0 {
			rule += fmt.Sprintf(" --dport %d", v.port)
		}
		rule += fmt.Sprintf(" -j MARK --set-mark %d", v.fwmark)
		c.notef(e.Pos, "fwmark %d -> virtual_server fwmark %d: the packets must still be marked outside govs, e.g. %s", v.fwmark, v.fwmark, rule)
		if v.port == 21 {
			c.notef(e.Pos, "FTP: also mark the passive data ports the FTP servers use (e.g. --dport 10000:20000 with vsftpd pasv_min_port/pasv_max_port), or replace the fwmark with a govs port list: virtual_server %s 21,10000-20000", fmtAddr(v.addr))
			if c.method == config.MethodNAT {
				src := "REAL-SERVER-NETWORK"
				if c.natNet.IsValid() {
					src = c.natNet.String()
				}
				c.notef(e.Pos, "FTP with NAT: active-mode data connections leave the real servers from port 20, outside any service; masquerade them on the directors: iptables -t nat -A POSTROUTING -p tcp -s %s --sport 20 -j MASQUERADE", src)
			}
		}
	} else {
		vs.Addr = v.addr
		vs.Ports = []config.PortRange{{From: v.port, To: v.port}}
		if v.port == 21 && v.proto == config.ProtoTCP {
			c.warnf(b.Pos, "virtual %q: FTP on port 21 without a firewall mark: data connections (port 20, passive ports) will not follow the control connection; use fwmark and persistent (RHEL 5 LVS guide, FTP configuration)", b.Name)
		}
	}
	if v.proto == config.ProtoUDP {
		c.notef(k["protocol"].Pos, "protocol udp -> protocol UDP")
	}
	if e := k["scheduler"]; e != nil {
		s := strings.ToLower(strings.TrimSpace(e.Value))
		if schedulers[s] {
			vs.Scheduler = s
		} else {
			c.errorf(e.Pos, "scheduler = %q: unknown (rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh)", clip(e.Value))
		}
	}
	c.persistence(v)
	if v.fwmark == 0 && v.port == 0 && vs.Persistence == 0 {
		c.errorf(k["port"].Pos, "port = 0 (all ports) needs persistent, as in IPVS")
	}
	if e := k["timeout"]; e != nil {
		if n, ok := c.intVal(e, 0, 1<<20); ok && n > 0 {
			vs.ServiceTimeout = seconds(n)
			c.notef(e.Pos, "timeout %d -> service_timeout %d: a real server failing its check for %d s is taken out", n, n, n)
		}
	}
	if e := k["reentry"]; e != nil {
		if n, ok := c.intVal(e, 0, 1<<20); ok && n > 0 {
			vs.Reentry = seconds(n)
			c.notef(e.Pos, "reentry %d -> reentry %d: a failed real server must pass its check for %d s before it is put back", n, n, n)
		}
	}
	if e := k["quiesce_server"]; e != nil {
		if on, ok := c.boolVal(e); ok && on {
			vs.QuiesceServer = true
			vs.InhibitOnFailure = true
			c.notef(e.Pos, "quiesce_server = 1 -> quiesce_server and inhibit_on_failure: a failed real server is set to weight 0 instead of removed (nanny's reset of a returning server's connection counts is not done: least-connection schedulers see the old counts until those connections time out)")
		}
	}
	if e := k["load_monitor"]; e != nil {
		if s := strings.ToLower(strings.TrimSpace(e.Value)); s != "none" && s != "" {
			c.warnf(e.Pos, "load_monitor = %s not supported: weights stay as configured (no rup/ruptime load polling)", clip(e.Value))
		}
	}
	if c.keepalive > 0 {
		d := seconds(c.keepalive)
		vs.DelayLoop = &d
	}
	// nanny does not retry a failed check: a server fails (or, with
	// timeout, fails for that long) on its own; keepalived's retry 1
	// default would slow failure detection down.
	noRetry := 0
	vs.Retry = &noRetry
	c.cfg.VirtualServers = append(c.cfg.VirtualServers, vs)
	c.servers(v)
}

func seconds(n int) config.Duration { return config.Duration(time.Duration(n) * time.Second) }

func (c *converter) persistence(v *virt) {
	k, vs := v.k, v.vs
	pe, me := k["persistent"], k["pmask"]
	n := 0
	if pe != nil {
		n, _ = c.intVal(pe, 0, 1<<30)
	}
	if n > 0 {
		vs.Persistence = seconds(n)
		c.notef(pe.Pos, "persistent %d -> persistence_timeout %d", n, n)
	} else if v.fwmark != 0 {
		where := v.b.Pos
		if pe != nil {
			where = pe.Pos
		}
		c.warnf(where, "virtual %q: fwmark without persistent: connections of one client to the marked ports may reach different real servers", v.b.Name)
	}
	if me == nil {
		return
	}
	if n == 0 {
		c.notef(me.Pos, "pmask ignored: no persistence")
		return
	}
	bits, ok := c.maskBits(me, v.addr.Is6())
	if !ok {
		return
	}
	max := 32
	if v.addr.Is6() {
		max = 128
	}
	if bits == max {
		c.notef(me.Pos, "pmask %s: one client address per entry, the default persistence_granularity", strings.TrimSpace(me.Value))
		return
	}
	vs.PersistenceGranularity = strings.TrimSpace(me.Value)
	c.notef(me.Pos, "pmask %s -> persistence_granularity %s: clients in one /%d stick to the same real server", vs.PersistenceGranularity, vs.PersistenceGranularity, bits)
}

// merge folds a virtual that shares its firewall mark with lead into
// lead's virtual_server: IPVS has one service per mark.
func (c *converter) merge(lead, v *virt) {
	v.vs = lead.vs
	lead.vs.Name += "+" + safeName(v.b.Name)
	c.notef(v.k["fwmark"].Pos, "virtual %q shares fwmark %d with virtual %q (line %d): merged into one virtual_server fwmark %d; its real servers are checked on port %d as well", v.b.Name, v.fwmark, lead.b.Name, lead.b.Pos.Line, v.fwmark, v.port)
	for _, key := range []string{"protocol", "scheduler", "persistent", "pmask", "timeout", "reentry", "quiesce_server", "load_monitor"} {
		a, b := norm(lead.k[key]), norm(v.k[key])
		if a == b {
			continue
		}
		where := v.b.Pos
		if e := v.k[key]; e != nil {
			where = e.Pos
		}
		c.warnf(where, "virtual %q: %s %q differs from %q in virtual %q with the same fwmark; %q's value is used", v.b.Name, key, b, a, lead.b.Name, lead.b.Name)
	}
	c.servers(v)
}

func norm(e *Entry) string {
	if e == nil {
		return ""
	}
	return strings.ToLower(strings.TrimSpace(e.Value))
}

// checkTemplate builds the health check nanny ran for v; connect_port is
// set per real server. nil means no check.
func (c *converter) checkTemplate(v *virt) *config.Check {
	k := v.k
	send, expect, prog := k["send"], k["expect"], k["send_program"]
	regex := false
	if e := k["use_regex"]; e != nil {
		regex, _ = c.boolVal(e)
		if regex && expect == nil {
			c.notef(e.Pos, "use_regex ignored: no expect")
			regex = false
		}
	}
	for _, e := range []*Entry{send, expect, prog} {
		if e != nil && !writable(e.Value) {
			c.errorf(e.Pos, "%s: control characters or a final backslash cannot be written to the configuration", e.Key)
			return nil
		}
	}
	if regex {
		if _, err := regexp.Compile(expect.Value); err != nil {
			c.errorf(expect.Pos, "expect is not a valid regular expression (use_regex = 1): %v", err)
			return nil
		}
	}
	ck := &config.Check{}
	if expect != nil {
		ck.Expect, ck.UseRegex = expect.Value, regex
	}
	switch {
	case prog != nil && strings.TrimSpace(prog.Value) != "":
		ck.Kind = config.CheckMisc
		ck.MiscPath = strings.TrimSpace(prog.Value)
		msg := fmt.Sprintf("send_program -> MISC_CHECK misc_path %s (govs replaces %%h with the real server address and %%p with its port)", lit(ck.MiscPath))
		if expect != nil {
			msg += fmt.Sprintf("; its output must contain expect %s", lit(expect.Value))
		} else {
			msg += "; without expect, exit status 0 means up"
		}
		c.notef(prog.Pos, "%s", msg)
		if !strings.Contains(ck.MiscPath, "%h") {
			c.warnf(prog.Pos, "send_program has no %%h: every real server runs the same command")
		}
		if send != nil && send.Value != "" {
			c.notef(send.Pos, "send ignored: nanny ignores it when send_program is set")
		}
	case v.proto == config.ProtoUDP:
		ck.Kind = config.CheckUDP
		ck.Expect, ck.UseRegex = "", false
		msg := "protocol udp -> UDP_CHECK"
		if send != nil && send.Value != "" {
			ck.Payload = hex.EncodeToString([]byte(health.Unescape(send.Value)))
			msg += fmt.Sprintf(" with payload %s (send %s in hex)", ck.Payload, lit(send.Value))
		}
		if expect != nil && expect.Value != "" {
			ck.HasRequire = true
			c.warnf(expect.Pos, "expect on a UDP service: UDP_CHECK requires a reply but does not compare it with %s", lit(expect.Value))
		}
		where := v.b.Pos
		if send != nil {
			where = send.Pos
		}
		c.notef(where, "%s", msg)
	default:
		ck.Kind = config.CheckTCP
		if send != nil {
			ck.Send = send.Value
		}
		where := v.b.Pos
		switch {
		case ck.Send != "" || ck.Expect != "":
			if send != nil {
				where = send.Pos
			} else {
				where = expect.Pos
			}
			c.notef(where, "send/expect -> TCP_CHECK send %s expect %s%s (kept as written: the checker decodes the escapes, as nanny did)", lit(ck.Send), lit(ck.Expect), regexNote(ck.UseRegex))
			if ck.Expect == "" {
				c.notef(where, "no expect: the check passes when the connection opens and the send succeeds")
				if send == nil {
					ck.Send = ""
				}
			}
		default:
			c.notef(where, "virtual %q: no send/expect -> TCP_CHECK connect only", v.b.Name)
		}
	}
	return ck
}

// lit quotes an lvs.cf string as it was written (escapes unchanged).
func lit(s string) string { return `"` + s + `"` }

func regexNote(re bool) string {
	if re {
		return " use_regex"
	}
	return ""
}

// servers converts the server blocks of v into real servers of v.vs.
func (c *converter) servers(v *virt) {
	if len(v.b.Blocks) == 0 {
		c.warnf(v.b.Pos, "virtual %q has no server block", v.b.Name)
		return
	}
	tmpl := c.checkTemplate(v)
	for _, b := range v.b.Blocks {
		c.server(v, b, tmpl)
	}
}

func (c *converter) server(v *virt, b *Block, tmpl *config.Check) {
	k := c.known(b.Entries, fmt.Sprintf("server %q", b.Name), serverKeys)
	vs := v.vs
	e := k["address"]
	if e == nil {
		c.errorf(b.Pos, "server %q has no address", b.Name)
		return
	}
	a, ok := c.addrVal(e, strings.TrimSpace(e.Value))
	if !ok {
		return
	}
	if v.addr.IsValid() && a.Is4() != v.addr.Is4() && c.method != config.MethodTUN {
		c.errorf(e.Pos, "server %q: address %s is not of the family of the virtual address %s", b.Name, a, v.addr)
		return
	}
	weight := config.DefaultWeight
	if w := k["weight"]; w != nil {
		if n, ok := c.intVal(w, 0, 65535); ok {
			weight = n
		}
	}
	if act := k["active"]; act != nil {
		if on, ok := c.boolVal(act); ok && !on {
			weight = 0
			c.notef(act.Pos, "server %q is deactivated (active = 0) -> weight 0: it stays in the service but gets no new connections", b.Name)
		}
	}
	var rsPort, checkPort uint16
	if p := k["port"]; p != nil {
		n, ok := c.intVal(p, 1, 65535)
		switch {
		case !ok:
		case v.fwmark != 0:
			checkPort = uint16(n)
			c.notef(p.Pos, "server %q: port %d is used as the check's connect_port; a fwmark service forwards each packet to the port it was sent to", b.Name, n)
		case uint16(n) == v.port:
		case c.method == config.MethodNAT:
			rsPort = uint16(n)
			c.notef(p.Pos, "server %q: port %d -> real_server %s %d (NAT rewrites port %d to %d)", b.Name, n, a, n, v.port, n)
		default:
			c.warnf(p.Pos, "server %q: port %d dropped: with %s the real server port must equal the virtual port %d", b.Name, n, c.method, v.port)
		}
	}
	if v.fwmark != 0 && checkPort == 0 {
		checkPort = v.port
	}
	var ck *config.Check
	if tmpl != nil {
		cp := *tmpl
		ck = &cp
		if v.fwmark != 0 {
			if checkPort == 0 && ck.Kind != config.CheckMisc {
				c.warnf(b.Pos, "server %q: no port to check (fwmark service without port): no health check", b.Name)
				ck = nil
			} else {
				ck.ConnectPort = checkPort
			}
		}
	}
	for _, rs := range vs.RealServers {
		if rs.Addr != a || rs.Port != rsPort {
			continue
		}
		if rs.Weight != weight {
			c.warnf(b.Pos, "server %q: %s is already a real server of this service with weight %d; weight %d ignored", b.Name, a, rs.Weight, weight)
		}
		if ck != nil && !hasCheck(rs.Checks, ck) {
			rs.Checks = append(rs.Checks, ck)
		}
		c.notef(b.Pos, "server %q: %s merged with the real server already in the service", b.Name, a)
		return
	}
	rs := &config.RealServer{Addr: a, Port: rsPort, Name: safeName(b.Name), Weight: weight}
	if ck != nil {
		rs.Checks = []*config.Check{ck}
	}
	vs.RealServers = append(vs.RealServers, rs)
}

func hasCheck(cs []*config.Check, ck *config.Check) bool {
	for _, x := range cs {
		if x.Kind == ck.Kind && x.ConnectPort == ck.ConnectPort && x.Send == ck.Send && x.Expect == ck.Expect &&
			x.UseRegex == ck.UseRegex && x.MiscPath == ck.MiscPath && x.Payload == ck.Payload {
			return true
		}
	}
	return false
}
