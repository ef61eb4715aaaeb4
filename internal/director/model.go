package director

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/health"
	"github.com/govs/govs/internal/notify"
)

// This file maps the configuration model onto what the director runs:
// virtual services (one per dataplane service key), their real servers and
// the health checks of each real server.

// vsSpec is one virtual service as configured, before health decides
// which real servers take traffic.
type vsSpec struct {
	svc     dataplane.Service // RealServers/Sorry filled by reconcile
	vs      *config.VirtualServer
	reals   []rsSpec
	sorry   *dataplane.RealServer
	quorum  health.ServiceSpec
	vsLabel string // "192.0.2.10:80" etc. for logs and mails
}

// rsSpec is one real server of a virtual service.
type rsSpec struct {
	id       string // health supervisor ID, stable across reloads
	rs       *config.RealServer
	dp       dataplane.RealServer // configured weight, method, thresholds
	inhibit  bool
	checks   []health.Spec
	notifyUp *notify.Command
	notifyDn *notify.Command
	alert    bool
}

func protoOf(p config.Proto) dataplane.Proto {
	switch p {
	case config.ProtoUDP:
		return dataplane.UDP
	case config.ProtoSCTP:
		return dataplane.SCTP
	}
	return dataplane.TCP
}

func methodOf(m config.Method) dataplane.Method {
	switch m {
	case config.MethodDR:
		return dataplane.DR
	case config.MethodTUN:
		return dataplane.TUN
	case config.MethodSNAT:
		return dataplane.SNAT
	}
	return dataplane.NAT
}

// buildSpecs turns a validated config into virtual service specs keyed by
// dataplane service key, in configuration order.
func buildSpecs(cfg *config.Config) ([]*vsSpec, error) {
	var out []*vsSpec
	seen := map[dataplane.ServiceKey]bool{}
	add := func(s *vsSpec) error {
		if seen[s.svc.Key] {
			return fmt.Errorf("%s: service %s defined twice", s.vs.Pos, s.svc.Key)
		}
		seen[s.svc.Key] = true
		out = append(out, s)
		return nil
	}
	groups := map[string]*config.VirtualServerGroup{}
	for _, g := range cfg.VirtualServerGroups {
		groups[g.Name] = g
	}
	pools := map[string]*config.SNATPool{}
	for _, p := range cfg.SNATPools {
		pools[p.Name] = p
	}
	alertDefault := cfg.Global.SMTPAlert != nil && *cfg.Global.SMTPAlert
	if cfg.Global.SMTPAlertChecker != nil {
		alertDefault = *cfg.Global.SMTPAlertChecker
	}
	for _, vs := range cfg.VirtualServers {
		keys, err := serviceKeys(vs, groups)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			s := newSpec(vs, k, alertDefault, pools)
			s.quorum.InitNotifies = cfg.Global.RSInitNotifies
			for _, r := range s.reals {
				for i := range r.checks {
					// checker_log_all_failures: every checker's default
					r.checks[i].LogAllFailures = r.checks[i].LogAllFailures || cfg.Global.CheckerLogAllFailures
				}
			}
			if err := add(s); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// svcShape is one dataplane service derived from a virtual_server: its key
// and, for multi-port services, what it matches.
type svcShape struct {
	key    dataplane.ServiceKey
	vips   []netip.Addr
	ports  []dataplane.PortRange
	protos []dataplane.Proto
	vport  uint16 // the single virtual port, 0 for multi-port
}

func serviceKeys(vs *config.VirtualServer, groups map[string]*config.VirtualServerGroup) ([]svcShape, error) {
	var out []svcShape
	protos := make([]dataplane.Proto, len(vs.Protocols))
	for i, p := range vs.Protocols {
		protos[i] = protoOf(p)
	}
	plain := func(addr netip.Addr, ports []config.PortRange) {
		for _, p := range protos {
			sh := svcShape{key: dataplane.ServiceKey{Proto: p, Addr: addr, Port: ports[0].From}}
			if len(ports) == 1 && ports[0].From == ports[0].To {
				sh.vport = ports[0].From
			} else {
				sh.vips = []netip.Addr{addr}
				sh.protos = []dataplane.Proto{p}
				for _, r := range ports {
					sh.ports = append(sh.ports, dataplane.PortRange{From: r.From, To: r.To})
				}
			}
			out = append(out, sh)
		}
	}
	switch {
	case vs.FWMark != 0:
		out = append(out, svcShape{key: dataplane.ServiceKey{FWMark: vs.FWMark, V6: vs.IPFamily == "inet6"}, protos: protos})
	case vs.Group != "":
		g := groups[vs.Group]
		if g == nil {
			return nil, fmt.Errorf("%s: unknown virtual_server_group %q", vs.Pos, vs.Group)
		}
		for _, e := range g.Entries {
			if e.FWMark != 0 {
				out = append(out, svcShape{key: dataplane.ServiceKey{FWMark: e.FWMark, V6: e.V6}, protos: protos})
				continue
			}
			for a, i := e.First, 0; i < 4096; a, i = a.Next(), i+1 {
				plain(a, []config.PortRange{{From: e.Port, To: e.Port}})
				if a == e.Last {
					break
				}
			}
		}
	default:
		plain(vs.Addr, vs.Ports)
	}
	return out, nil
}

func protoList(vs *config.VirtualServer) string {
	parts := make([]string, len(vs.Protocols))
	for i, p := range vs.Protocols {
		parts[i] = string(p)
	}
	return strings.Join(parts, "+")
}

func newSpec(vs *config.VirtualServer, sh svcShape, alertDefault bool, pools map[string]*config.SNATPool) *vsSpec {
	s := &vsSpec{vs: vs, vsLabel: vs.ID()}
	mask := 0
	if vs.PersistenceGranularity != "" {
		v6 := sh.key.Addr.Is6() || sh.key.V6
		mask, _ = config.MaskBits(vs.PersistenceGranularity, v6)
	}
	s.svc = dataplane.Service{
		Key:           sh.key,
		Name:          vs.Name,
		VIPs:          sh.vips,
		Ports:         sh.ports,
		Protos:        sh.protos,
		Scheduler:     vs.Scheduler,
		SchedFlags:    append([]string(nil), vs.SchedFlags...),
		MHTableSize:   vs.MHTableSize,
		Persistence:   vs.Persistence.D(),
		PersistMask:   mask,
		OnePacket:     vs.OnePacket,
		ProxyProtocol: vs.ProxyProtocol,
	}
	if p := pools[vs.SNATPool]; p != nil {
		s.svc.SourcePool = &dataplane.SourcePool{Name: p.Name, Addresses: append([]netip.Addr(nil), p.Addresses...),
			PortMin: p.PortMin, PortMax: p.PortMax}
	}
	q := vs.Quorum
	s.quorum = health.ServiceSpec{Quorum: &q, Hysteresis: vs.Hysteresis}
	if vs.Sorry != nil && vs.Sorry.Addr.IsValid() {
		port := vs.Sorry.Port
		if port == 0 {
			port = sh.vport
		}
		m := vs.Method
		if vs.Sorry.Method != "" {
			m = vs.Sorry.Method
		}
		s.sorry = &dataplane.RealServer{Addr: netip.AddrPortFrom(vs.Sorry.Addr, port), Weight: 1, Method: methodOf(m)}
		s.quorum.Sorry = &health.SorryServer{ID: "sorry", Weight: 1, Inhibit: vs.SorryServerInhibit}
	}
	for _, rs := range vs.RealServers {
		port := rs.Port
		if port == 0 {
			port = sh.vport
		}
		m := vs.Method
		if rs.Method != "" {
			m = rs.Method
		}
		r := rsSpec{
			// One health record per real server of a virtual_server block
			// (shared by its addresses and protocols, as in keepalived);
			// the protocols keep apart two blocks on the same VIP:port.
			id: vs.ID() + "/" + protoList(vs) + "|" + netip.AddrPortFrom(rs.Addr, rs.Port).String(),
			rs: rs,
			dp: dataplane.RealServer{
				Addr:       netip.AddrPortFrom(rs.Addr, port),
				Weight:     rs.Weight,
				Method:     methodOf(m),
				UThreshold: uint32(rs.UThreshold),
				LThreshold: uint32(rs.LThreshold),
			},
			inhibit: vs.InhibitOnFailure,
			alert:   alertDefault,
		}
		if vs.SMTPAlert != nil {
			r.alert = *vs.SMTPAlert
		}
		if rs.SMTPAlert != nil {
			r.alert = *rs.SMTPAlert
		}
		if vs.QuiesceServer {
			r.inhibit = true
		}
		if rs.InhibitOnFailure != nil {
			r.inhibit = *rs.InhibitOnFailure
		}
		r.notifyUp = scriptCmd(rs.NotifyUp)
		r.notifyDn = scriptCmd(rs.NotifyDown)
		for _, c := range rs.Checks {
			r.checks = append(r.checks, checkSpec(vs, rs, c, port))
		}
		s.reals = append(s.reals, r)
	}
	return s
}

func scriptCmd(s *config.Script) *notify.Command {
	if s == nil {
		return nil
	}
	user, group, _ := strings.Cut(s.User, " ")
	c, err := notify.ParseCommand(s.Cmd, user, group)
	if err != nil {
		return nil
	}
	return &c
}

func durp(vals ...*config.Duration) time.Duration {
	for _, v := range vals {
		if v != nil {
			return v.D()
		}
	}
	return 0
}

// checkSpec maps a config checker onto a health.Spec, with keepalived's
// inheritance: checker setting, else real server, else virtual server,
// else the checker's default (health.Spec.Defaults).
func checkSpec(vs *config.VirtualServer, rs *config.RealServer, c *config.Check, port uint16) health.Spec {
	sp := health.Spec{
		Kind:        health.Kind(c.Kind),
		Target:      netip.AddrPortFrom(rs.Addr, port),
		ConnectIP:   c.ConnectIP,
		ConnectPort: c.ConnectPort,
		BindTo:      c.BindTo,
		BindPort:    c.BindPort,
		BindIf:      c.BindIf,
		FWMark:      c.FWMark,
	}
	sp.LogAllFailures = c.LogAllFailures
	sp.ConnectTimeout = durp(c.ConnectTimeout, rs.ConnectTimeout, vs.ConnectTimeout)
	sp.DelayLoop = durp(c.DelayLoop, rs.DelayLoop, vs.DelayLoop)
	sp.DelayBeforeRetry = durp(c.DelayBeforeRetry, rs.DelayBeforeRetry, vs.DelayBeforeRetry)
	for _, r := range []*int{c.Retry, rs.Retry, vs.Retry} {
		if r != nil {
			v := *r
			sp.Retry = &v
			break
		}
	}
	for _, w := range []*config.Duration{c.Warmup, rs.Warmup, vs.Warmup} {
		if w != nil {
			d := w.D()
			sp.Warmup = &d
			break
		}
	}
	for _, a := range []*bool{c.Alpha, rs.Alpha, vs.Alpha} {
		if a != nil {
			sp.Alpha = *a
			break
		}
	}
	sp.ServiceTimeout = vs.ServiceTimeout.D()
	sp.Reentry = vs.Reentry.D()
	switch c.Kind {
	case config.CheckTCP:
		if c.Send != "" || c.Expect != "" {
			sp.Kind = health.SendExpect
			sp.SendExpect = &health.SendExpectSpec{Send: c.Send, Expect: c.Expect, UseRegex: c.UseRegex}
		}
	case config.CheckHTTP, config.CheckSSL:
		h := &health.HTTPSpec{Protocol: c.HTTPProtocol, VirtualHost: c.Virtualhost, SNI: c.EnableSNI, SNIName: c.SNIName, Verify: c.TLSVerify}
		if h.VirtualHost == "" {
			// keepalived: the checker's, else the real server's, else
			// the virtual server's
			h.VirtualHost = cmp.Or(rs.Virtualhost, vs.Virtualhost)
		}
		for _, u := range c.URLs {
			us := health.URLSpec{Path: u.Path, Digest: strings.ToLower(u.Digest), VirtualHost: u.Virtualhost, Regex: u.Regex, RegexNoMatch: u.RegexNoMatch}
			for _, r := range u.StatusCodes {
				us.StatusCodes = append(us.StatusCodes, health.StatusRange{Min: r.From, Max: r.To})
			}
			h.URLs = append(h.URLs, us)
		}
		sp.HTTP = h
	case config.CheckSMTP:
		sp.SMTP = &health.SMTPSpec{HeloName: c.HeloName}
	case config.CheckDNS:
		sp.DNS = &health.DNSSpec{Type: c.DNSType, Name: c.DNSName}
	case config.CheckMisc:
		user, group, _ := strings.Cut(c.User, " ")
		cmd, _ := notify.ParseCommand(c.MiscPath, user, group)
		if c.Expect != "" {
			// Piranha send_program: output compared with expect.
			sp.Kind = health.SendExpect
			sp.SendExpect = &health.SendExpectSpec{Expect: c.Expect, UseRegex: c.UseRegex, Program: append([]string{cmd.Path}, cmd.Args...), User: user, Group: group}
			if c.MiscTimeout != 0 {
				sp.ConnectTimeout = c.MiscTimeout.D()
			}
			break
		}
		sp.Misc = &health.MiscSpec{Path: cmd.Path, Args: cmd.Args, Timeout: c.MiscTimeout.D(), Dynamic: c.MiscDynamic, User: user, Group: group}
	case config.CheckUDP:
		u := &health.UDPSpec{RequireReply: c.HasRequire, ReplyPattern: c.RequireReply, MinReplyLength: c.MinReplyLength, MaxReplyLength: c.MaxReplyLength}
		if c.Payload != "" {
			u.Payload = hexBytes(c.Payload)
		}
		sp.UDP = u
	case config.CheckBFD:
		sp.Kind, sp.BFDName = health.BFD, c.BFDName
	case config.CheckFile:
		// The file path comes from the named track_file block; the
		// director resolves it (see resolveFiles).
		f := &health.FileSpec{Path: c.TrackFile, Reverse: c.Reverse, Dynamic: c.Dynamic}
		if c.FileWeight != nil {
			w := *c.FileWeight
			f.Weight = &w
		}
		sp.File = f
	}
	return sp
}

func hexBytes(s string) []byte {
	b := make([]byte, 0, len(s)/2)
	for i := 0; i+1 < len(s); i += 2 {
		var v byte
		fmt.Sscanf(s[i:i+2], "%02x", &v)
		b = append(b, v)
	}
	return b
}

// Check builds everything the director would run from cfg — services,
// health checks, VRRP instances — and reports what the runtime parts
// refuse, so that govs check and a reload catch it before anything runs.
func Check(cfg *config.Config) error {
	specs, err := buildSpecs(cfg)
	if err != nil {
		return err
	}
	resolveFiles(cfg, specs)
	errs := []error{checkSpecs(specs)}
	insts, _, _ := vrrpOptions(cfg)
	for _, ic := range insts {
		c := ic.WithDefaults()
		if err := c.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("vrrp_instance %s: %w", ic.Name, err))
		}
	}
	return errors.Join(errs...)
}

// checkSpecs validates every health check as the supervisor will.
func checkSpecs(specs []*vsSpec) error {
	var errs []error
	seen := map[string]bool{}
	for _, s := range specs {
		for _, r := range s.reals {
			if seen[r.id] {
				continue
			}
			seen[r.id] = true
			for _, c := range r.checks {
				sp := c.Defaults()
				if err := sp.Validate(); err != nil {
					errs = append(errs, fmt.Errorf("%s: %s of real_server %s: %w", r.rs.Pos, c.Kind, r.dp.Addr, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// resolveFiles replaces FILE_CHECK track_file names by the file paths of
// the named track_file blocks.
func resolveFiles(cfg *config.Config, specs []*vsSpec) {
	files := map[string]string{}
	for _, t := range cfg.VRRPTrackFiles {
		files[t.Name] = t.File
	}
	for _, s := range specs {
		for i := range s.reals {
			for j := range s.reals[i].checks {
				c := &s.reals[i].checks[j]
				if c.File != nil {
					if p, ok := files[c.File.Path]; ok {
						c.File.Path = p
					}
				}
			}
		}
	}
}

// DataplaneTimeouts converts lvs_timeouts for a dataplane (zero fields
// stay zero: the dataplane takes its defaults for them).
func DataplaneTimeouts(t config.Timeouts) dataplane.Timeouts {
	return dataplane.Timeouts{TCP: t.TCP.D(), TCPFin: t.TCPFin.D(), UDP: t.UDP.D()}
}

// initTrackFiles writes the init_file value of every track file that has
// one: into a file that does not exist, and, at start (not on a reload,
// which would undo what an operator wrote since), over an existing one
// with overwrite. A file that cannot be written is logged; its check or
// tracker then reads it as it finds it (a missing file as 0).
func initTrackFiles(cfg *config.Config, start bool, log *slog.Logger) {
	for _, t := range cfg.VRRPTrackFiles {
		in := t.InitFile
		if in == nil || t.File == "" {
			continue
		}
		data := []byte(strconv.Itoa(in.Value) + "\n")
		var err error
		if in.Overwrite && start {
			err = config.WriteFileAtomic(t.File, data)
		} else {
			var f *os.File
			f, err = os.OpenFile(t.File, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if errors.Is(err, os.ErrExist) {
				continue
			}
			if err == nil {
				_, err = f.Write(data)
				err = errors.Join(err, f.Close())
			}
		}
		if err != nil {
			log.Warn("track_file init_file: cannot write the file", "track_file", t.Name, "file", t.File, "err", err)
			continue
		}
		log.Info("track_file init_file written", "track_file", t.Name, "file", t.File, "value", in.Value)
	}
}
