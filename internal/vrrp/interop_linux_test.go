package vrrp

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var updateCaptures = flag.Bool("update-captures", false, "write keepalived adverts seen by the interop tests to testdata/")

// interopVariant is one keepalived interop configuration.
type interopVariant struct {
	name, code string
	version    int
	advert     string // advert_int as keepalived spells it
	authPass   string
	authAH     bool // auth_type AH with authPass as its key
	unicast    bool
	// seed reproduces seed 004: VIP on ens3, unicast heartbeat on a
	// dedicated link ens4, track_interface ens3, its GARP settings.
	seed bool
	ipv6 bool
	// oldChecksum: keepalived has old_unicast_checksum (the VRRPv3
	// unicast checksum of keepalived before 1.3.6); govs detects it
	oldChecksum bool
	// maxTakeover bounds govs's takeover on top of the master down
	// interval (0: none).
	maxTakeover time.Duration
}

// topo holds the addresses of one testbed.
type topo struct {
	ka, gv, cp       string // namespaces
	vrrpIf, vipIf    string
	kaAddr, gvAddr   netip.Addr
	vip              VirtualIP
	vipText          string // address as "ip addr" prints it
	garpDelay        int
	garpRepeat       int
	garpRefreshRepet int
}

func buildTopo(t *testing.T, v interopVariant) *topo {
	t.Helper()
	p := fmt.Sprintf("vr%04d%s", os.Getpid()%10000, v.code)
	tp := &topo{ka: p + "ka", gv: p + "gv", cp: p + "cp"}
	sw := p + "sw"
	for _, ns := range []string{sw, tp.ka, tp.gv, tp.cp} {
		addNetns(t, ns, v.ipv6)
	}
	ipn(t, sw, "link", "add", "br0", "type", "bridge")
	ipn(t, sw, "link", "set", "br0", "up")
	tp.garpDelay, tp.garpRepeat, tp.garpRefreshRepet = 1, 2, 1
	switch {
	case v.seed:
		// Seed 004: service side ens3 (/28 with VIP), heartbeat ens4.
		tp.vrrpIf, tp.vipIf = "ens4", "ens3"
		plug(t, sw, "br0", "pka", tp.ka, "ens3")
		plug(t, sw, "br0", "pgv", tp.gv, "ens3")
		plug(t, sw, "br0", "pcp", tp.cp, "ens3")
		run(t, "ip", "link", "add", "ens4", "netns", tp.ka, "type", "veth", "peer", "name", "ens4", "netns", tp.gv)
		ipn(t, tp.ka, "link", "set", "ens4", "up")
		ipn(t, tp.gv, "link", "set", "ens4", "up")
		ipn(t, tp.ka, "addr", "add", "172.26.127.23/28", "dev", "ens3")
		ipn(t, tp.gv, "addr", "add", "172.26.127.24/28", "dev", "ens3")
		ipn(t, tp.cp, "addr", "add", "172.26.127.30/28", "dev", "ens3")
		ipn(t, tp.ka, "addr", "add", "192.168.66.23/24", "dev", "ens4")
		ipn(t, tp.gv, "addr", "add", "192.168.66.24/24", "dev", "ens4")
		tp.kaAddr, tp.gvAddr = netip.MustParseAddr("192.168.66.23"), netip.MustParseAddr("192.168.66.24")
		tp.vip = VirtualIP{Prefix: netip.MustParsePrefix("172.26.127.20/28"), Broadcast: netip.MustParseAddr("172.26.127.31"), Dev: "ens3", Scope: "global"}
		tp.vipText = "172.26.127.20"
		tp.garpDelay, tp.garpRepeat, tp.garpRefreshRepet = 2, 2, 1
	case v.ipv6:
		tp.vrrpIf, tp.vipIf = "eth0", "eth0"
		plug(t, sw, "br0", "pka", tp.ka, "eth0")
		plug(t, sw, "br0", "pgv", tp.gv, "eth0")
		plug(t, sw, "br0", "pcp", tp.cp, "eth0")
		ipn(t, tp.ka, "addr", "add", "fd00:9::1/64", "dev", "eth0")
		ipn(t, tp.gv, "addr", "add", "fd00:9::2/64", "dev", "eth0")
		ipn(t, tp.cp, "addr", "add", "fd00:9::9/64", "dev", "eth0")
		tp.kaAddr = linkLocal(t, tp.ka, "eth0")
		tp.gvAddr = linkLocal(t, tp.gv, "eth0")
		tp.vip = VirtualIP{Prefix: netip.MustParsePrefix("fd00:9::100/64"), NoDAD: true}
		tp.vipText = "fd00:9::100"
	default:
		tp.vrrpIf, tp.vipIf = "eth0", "eth0"
		plug(t, sw, "br0", "pka", tp.ka, "eth0")
		plug(t, sw, "br0", "pgv", tp.gv, "eth0")
		plug(t, sw, "br0", "pcp", tp.cp, "eth0")
		ipn(t, tp.ka, "addr", "add", "10.9.0.1/24", "dev", "eth0")
		ipn(t, tp.gv, "addr", "add", "10.9.0.2/24", "dev", "eth0")
		ipn(t, tp.cp, "addr", "add", "10.9.0.9/24", "dev", "eth0")
		tp.kaAddr, tp.gvAddr = netip.MustParseAddr("10.9.0.1"), netip.MustParseAddr("10.9.0.2")
		tp.vip = VirtualIP{Prefix: netip.MustParsePrefix("10.9.0.100/24")}
		tp.vipText = "10.9.0.100"
	}
	return tp
}

func linkLocal(t *testing.T, ns, ifname string) netip.Addr {
	t.Helper()
	var ll netip.Addr
	ok := waitFor(3*time.Second, func() bool {
		for _, f := range strings.Fields(ipn(t, ns, "-6", "-o", "addr", "show", "dev", ifname, "scope", "link")) {
			if strings.HasPrefix(f, "fe80::") {
				ll = netip.MustParsePrefix(f).Addr()
				return true
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("no link-local address on %s/%s", ns, ifname)
	}
	return ll
}

// keepalivedConf renders keepalived's side of the pair.
func (v interopVariant) keepalivedConf(tp *topo, state string, prio int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n  router_id ha-test\n  script_user root\n")
	if v.seed {
		// seed 004's mail settings, with the SMTP server on the
		// namespace's own loopback.
		b.WriteString("  notification_email {\n    root@localhost\n  }\n  notification_email_from keepalived1@localhost\n  smtp_server 127.0.0.1\n")
	}
	b.WriteString("}\n")
	fmt.Fprintf(&b, "vrrp_instance SMB {\n  virtual_router_id 42\n  state %s\n  interface %s\n  priority %d\n  advert_int %s\n",
		state, tp.vrrpIf, prio, v.advert)
	if !v.ipv6 {
		fmt.Fprintf(&b, "  version %d\n", v.version)
	}
	if v.authPass != "" {
		kind := "PASS"
		if v.authAH {
			kind = "AH"
		}
		fmt.Fprintf(&b, "  authentication {\n    auth_type %s\n    auth_pass %s\n  }\n", kind, v.authPass)
	}
	if v.seed {
		b.WriteString("  track_interface {\n    ens3\n  }\n")
	}
	if v.unicast {
		fmt.Fprintf(&b, "  unicast_src_ip %s\n  unicast_peer {\n    %s\n  }\n", tp.kaAddr, tp.gvAddr)
	}
	if v.oldChecksum {
		b.WriteString("  old_unicast_checksum\n")
	}
	vip := tp.vip.Prefix.String()
	if tp.vip.Broadcast.IsValid() {
		vip += " brd " + tp.vip.Broadcast.String()
	}
	vip += " dev " + tp.vipIf
	if tp.vip.Scope != "" {
		vip += " scope " + tp.vip.Scope
	}
	fmt.Fprintf(&b, "  virtual_ipaddress {\n    %s\n  }\n", vip)
	if v.seed && state == "MASTER" {
		b.WriteString("  smtp_alert\n")
	}
	fmt.Fprintf(&b, "  garp_master_delay %d\n  garp_master_repeat %d\n  garp_master_refresh_repeat %d\n",
		tp.garpDelay, tp.garpRepeat, tp.garpRefreshRepet)
	b.WriteString("  notify @NOTIFY@\n}\n")
	return b.String()
}

// govsConfig is govs's side of the pair, as the lead's config mapper
// would produce it from the same keepalived.conf.
func (v interopVariant) govsConfig(tp *topo, state string, prio int) InstanceConfig {
	var f float64
	fmt.Sscanf(v.advert, "%g", &f)
	adv := time.Duration(f * float64(time.Second))
	c := InstanceConfig{
		Name: "SMB", VRID: 42, State: state, Interface: tp.vrrpIf, Priority: prio,
		AdvertInterval: adv, Version: v.version, AuthPass: v.authPass, AuthAH: v.authAH,
		VirtualIPs:       []VirtualIP{tp.vip},
		GARPMasterDelay:  time.Duration(tp.garpDelay) * time.Second,
		GARPMasterRepeat: tp.garpRepeat, GARPMasterRefreshRepeat: tp.garpRefreshRepet,
	}
	if tp.vip.Dev == "" {
		c.VirtualIPs[0].Dev = tp.vipIf
	}
	if v.seed {
		c.TrackInterfaces = []TrackInterface{{Name: "ens3"}}
		c.SMTPAlert = state == "MASTER"
	}
	if v.unicast {
		c.UnicastSrcIP = tp.gvAddr
		c.UnicastPeers = []netip.Addr{tp.kaAddr}
	}
	return c
}

func masterDown(t *testing.T, c InstanceConfig) time.Duration {
	t.Helper()
	m, err := NewMachine(c, netip.Addr{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m.MasterDownInterval()
}

var interopVariants = []interopVariant{
	{name: "multicast-v2-auth-pass", code: "m2", version: 2, advert: "1", authPass: "s3cret"},
	{name: "multicast-v2-auth-ah", code: "a2", version: 2, advert: "1", authPass: "secret12", authAH: true},
	{name: "unicast-v2-auth-ah", code: "a3", version: 2, advert: "1", authPass: "k3y", authAH: true, unicast: true},
	{name: "multicast-v3-100ms", code: "m3", version: 3, advert: "0.1", maxTakeover: 500 * time.Millisecond},
	{name: "unicast-seed004-v2", code: "u2", version: 2, advert: "1", unicast: true, seed: true},
	{name: "unicast-v3-100ms", code: "u3", version: 3, advert: "0.1", unicast: true, maxTakeover: 500 * time.Millisecond},
	{name: "unicast-v3-old-checksum", code: "o3", version: 3, advert: "1", unicast: true, oldChecksum: true},
	{name: "multicast-v3-ipv6", code: "m6", version: 3, advert: "0.2", ipv6: true},
}

// TestKeepalivedInterop runs govs against the real keepalived in both
// roles for every variant.
func TestKeepalivedInterop(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Skip("keepalived not installed (apt-get install keepalived)")
	}
	for _, v := range interopVariants {
		t.Run(v.name, func(t *testing.T) {
			// The slow VRRPv2 pairs (1 s adverts) run in parallel after
			// the fast ones, which run alone so that the takeover
			// bounds of 100 ms adverts are not measured under load.
			if v.advert == "1" {
				t.Parallel()
			}
			t.Run("keepalived-master", func(t *testing.T) { interopKeepalivedMaster(t, v) })
			t.Run("govs-master", func(t *testing.T) { interopGovsMaster(t, v) })
		})
	}
}

// interopKeepalivedMaster: keepalived MASTER priority 150, govs BACKUP
// (100, or 50 as in seed 004). Kill keepalived: govs takes over within the
// master down interval, holds the VIP and sends GARPs / NAs. Start
// keepalived again: it preempts and govs releases the VIP.
func interopKeepalivedMaster(t *testing.T, v interopVariant) {
	tp := buildTopo(t, v)
	backupPrio := 100
	if v.seed {
		backupPrio = 50
	}
	advCap := startCapture(t, tp.gv, tp.vrrpIf)
	arpCap := startCapture(t, tp.cp, tp.vipIf)
	ka := newKeepalived(t, tp.ka, v.keepalivedConf(tp, "MASTER", 150))
	ka.start()
	if !waitFor(10*time.Second, func() bool { return ka.lastState() == "MASTER" }) {
		t.Fatalf("keepalived did not become MASTER: notes %v", ka.notes())
	}
	gcfg := v.govsConfig(tp, "BACKUP", backupPrio)
	mdi := masterDown(t, gcfg)
	g := startGovs(t, tp.gv, gcfg)
	if !waitFor(mdi+2*time.Second, func() bool {
		s := g.status()
		return s.State == StateBackup && s.MasterAddr == tp.kaAddr && !s.LastAdvert.IsZero()
	}) {
		t.Fatalf("govs did not follow keepalived as BACKUP: %+v", g.status())
	}
	// Hold for longer than a master down interval: keepalived's adverts
	// keep govs in BACKUP.
	time.Sleep(mdi + 200*time.Millisecond)
	s := g.status()
	if s.State != StateBackup || s.Counters.BecameMaster != 0 {
		t.Fatalf("govs left BACKUP while keepalived was master: %+v", s)
	}
	if want := map[bool]string{false: "no", true: "auto"}[v.oldChecksum]; v.unicast && !v.ipv6 && v.version == 3 && s.UnicastChecksum != want {
		t.Fatalf("govs's unicast checksum %q, want %q", s.UnicastChecksum, want)
	}
	if hasAddr(t, tp.gv, tp.vipIf, tp.vipText) {
		t.Fatal("govs holds the VIP as BACKUP")
	}

	// Crash keepalived: no priority 0 advert, govs waits the full
	// master down interval.
	killed := time.Now()
	ka.kill(unix.SIGKILL)
	if !waitFor(mdi+2*time.Second, func() bool { return g.status().State == StateMaster }) {
		t.Fatalf("govs did not take over: %+v", g.status())
	}
	hist := g.status().Transitions
	took := hist[len(hist)-1].Time.Sub(killed)
	t.Logf("%s: govs took over %v after keepalived was killed (master down interval %v)", v.name, took.Round(time.Millisecond), mdi)
	if took > mdi+200*time.Millisecond {
		t.Errorf("takeover took %v, want <= %v + 200ms", took, mdi)
	}
	if v.maxTakeover > 0 && took > v.maxTakeover {
		t.Errorf("takeover took %v, want < %v", took, v.maxTakeover)
	}
	if !waitFor(time.Second, func() bool { return hasAddr(t, tp.gv, tp.vipIf, tp.vipText) }) {
		t.Fatal("VIP not on govs after takeover")
	}
	mac := linkMAC(t, tp.gv, tp.vipIf)
	announced := func() []time.Time {
		if v.ipv6 {
			return arpCap.unsolicitedNAs(mac, tp.vip.Prefix.Addr())
		}
		return arpCap.garps(mac, tp.vip.Prefix.Addr())
	}
	if !waitFor(time.Second, func() bool { return len(announced()) >= tp.garpRepeat }) {
		t.Fatalf("captured %d announcements of %s from %s, want %d", len(announced()), tp.vipText, mac, tp.garpRepeat)
	}
	t.Logf("captured %d GARP/NA for %s from govs (%s) in the first second", len(announced()), tp.vipText, mac)

	// keepalived comes back with priority 150 and preempts.
	ka.start()
	if !waitFor(3*mdi+3*time.Second, func() bool { return g.status().State == StateBackup }) {
		t.Fatalf("govs did not yield to keepalived: %+v\nkeepalived notes %v", g.status(), ka.notes())
	}
	if !waitFor(time.Second, func() bool { return !hasAddr(t, tp.gv, tp.vipIf, tp.vipText) }) {
		t.Fatal("govs kept the VIP after yielding")
	}
	if !waitFor(3*time.Second, func() bool { return ka.lastState() == "MASTER" }) {
		t.Fatalf("keepalived not MASTER again: %v", ka.notes())
	}
	g.stop()
	checkAdverts(t, v, advCap, tp.kaAddr, 150, tp.gvAddr, backupPrio)
}

// interopGovsMaster: govs MASTER priority 150 and keepalived BACKUP (100,
// or 50 as in seed 004): keepalived accepts govs's adverts and stays
// BACKUP; kill govs (SIGKILL, a separate process) and keepalived takes
// over.
func interopGovsMaster(t *testing.T, v interopVariant) {
	tp := buildTopo(t, v)
	backupPrio := 100
	if v.seed {
		backupPrio = 50
	}
	advCap := startCapture(t, tp.gv, tp.vrrpIf)
	gcfg := v.govsConfig(tp, "MASTER", 150)
	gp := startGovsProcess(t, tp.gv, gcfg)
	if !waitFor(masterDown(t, gcfg)+3*time.Second, func() bool { return hasAddr(t, tp.gv, tp.vipIf, tp.vipText) }) {
		t.Fatalf("govs did not become MASTER: %v", gp.lines())
	}
	ka := newKeepalived(t, tp.ka, v.keepalivedConf(tp, "BACKUP", backupPrio))
	ka.start()
	if !waitFor(10*time.Second, func() bool { return ka.lastState() == "BACKUP" }) {
		t.Fatalf("keepalived did not start as BACKUP: %v", ka.notes())
	}
	kcfg := v.govsConfig(tp, "BACKUP", backupPrio)
	kmdi := masterDown(t, kcfg)
	time.Sleep(2*kmdi + 200*time.Millisecond)
	if st := ka.lastState(); st != "BACKUP" || hasAddr(t, tp.ka, tp.vipIf, tp.vipText) {
		t.Fatalf("keepalived did not accept govs's adverts: state %s, notes %v", st, ka.notes())
	}
	if !hasAddr(t, tp.gv, tp.vipIf, tp.vipText) {
		t.Fatal("govs lost the VIP")
	}
	killed := time.Now()
	gp.kill()
	if !waitFor(kmdi+3*time.Second, func() bool { return ka.lastState() == "MASTER" }) {
		t.Fatalf("keepalived did not take over after govs died: %v", ka.notes())
	}
	// its notify script runs after the log line lastState read: wait for
	// the MASTER note it writes, and time that one
	var took time.Duration
	if !waitFor(2*time.Second, func() bool {
		for _, nt := range ka.notes() {
			if nt.state == "MASTER" && nt.at.After(killed) {
				took = nt.at.Sub(killed)
				return true
			}
		}
		return false
	}) {
		t.Fatalf("keepalived's notify script recorded no MASTER after govs was killed: %v", ka.notes())
	}
	t.Logf("%s: keepalived took over %v after govs was killed (its master down interval %v)", v.name, took.Round(time.Millisecond), kmdi)
	if took > kmdi+time.Second {
		t.Errorf("keepalived takeover took %v", took)
	}
	if !waitFor(2*time.Second, func() bool { return hasAddr(t, tp.ka, tp.vipIf, tp.vipText) }) {
		t.Fatal("VIP not on keepalived")
	}
	checkAdverts(t, v, advCap, tp.gvAddr, 150, tp.kaAddr, backupPrio)
}

// checkAdverts decodes every captured advert of both speakers with the
// govs codec: the master's carry masterPrio, the backup's (only sent while
// it was master) any priority. It optionally stores keepalived's as
// testdata.
func checkAdverts(t *testing.T, v interopVariant, c *capture, master netip.Addr, masterPrio int, other netip.Addr, _ int) {
	t.Helper()
	seen := map[netip.Addr]int{}
	// with oldChecksum: the speakers' adverts with the standard
	// checksum, and whether the last one had the old one
	standard, lastOld := map[netip.Addr]int{}, map[netip.Addr]bool{}
	var kaLines []string
	for _, p := range c.vrrp() {
		if p.src != master && p.src != other {
			continue
		}
		a, err := ParseAdvert(p.payload, v.ipv6, p.src, p.dst, false)
		if v.oldChecksum {
			old, oerr := ParseAdvert(p.payload, false, p.src, netip.MustParseAddr(MulticastGroup4), false)
			lastOld[p.src] = oerr == nil
			if err == nil {
				standard[p.src]++
			} else {
				a, err = old, oerr
			}
		}
		if err != nil {
			t.Errorf("advert from %s to %s does not decode: %v (%x)", p.src, p.dst, err, p.payload)
			continue
		}
		if p.ttl != TTL {
			t.Errorf("advert from %s has TTL %d", p.src, p.ttl)
		}
		if a.Version != v.version || a.VRID != 42 {
			t.Errorf("advert from %s: %+v", p.src, a)
		}
		switch {
		case v.authAH:
			// every advert, govs's and keepalived's, carries an AH
			// header whose ICV checks with the key
			if p.ah == nil || a.AuthType != AuthAH {
				t.Errorf("advert from %s: no AH header, or auth type %d", p.src, a.AuthType)
			} else if _, _, drop, _ := ahCheck(ahKey(v.authPass), 42, p.iphdr, p.ah, p.src, v.unicast, &ahCounter{}, true); drop != "" {
				t.Errorf("advert from %s: AH check %s", p.src, drop)
			}
		case v.authPass != "" && (a.AuthType != AuthPass || a.AuthData != authPassData(v.authPass)):
			t.Errorf("advert from %s: auth %d %q", p.src, a.AuthType, a.AuthData)
		}
		if p.src == master && a.Priority != uint8(masterPrio) && a.Priority != 0 {
			t.Errorf("master advert priority %d", a.Priority)
		}
		seen[p.src]++
		if p.src == netipKA(v, master, other) && len(kaLines) < 3 {
			kaLines = append(kaLines, fmt.Sprintf("%s %s %x", p.src, p.dst, p.payload))
		}
	}
	if seen[master] == 0 {
		t.Errorf("no adverts from master %s captured", master)
	}
	t.Logf("decoded adverts: %d from %s, %d from %s", seen[master], master, seen[other], other)
	if v.oldChecksum {
		// keepalived sends the old checksum only; govs sends it from
		// the first advert of keepalived's it checked that way
		ka, gv := netipKA(v, master, other), master
		if gv == ka {
			gv = other
		}
		t.Logf("adverts with the standard checksum: keepalived %d, govs %d", standard[ka], standard[gv])
		if standard[ka] != 0 {
			t.Errorf("keepalived sent %d adverts with the standard checksum", standard[ka])
		}
		if seen[gv] > 0 && !lastOld[gv] {
			t.Errorf("govs's last advert does not have the old checksum")
		}
	}
	if *updateCaptures && len(kaLines) > 0 {
		name := "testdata/keepalived-" + v.name + ".hex"
		if err := os.MkdirAll("testdata", 0o755); err == nil {
			os.WriteFile(name, []byte(strings.Join(kaLines, "\n")+"\n"), 0o644)
		}
	}
}

// netipKA picks keepalived's address: the interop tests always give
// keepalived the lower last octet.
func netipKA(_ interopVariant, a, b netip.Addr) netip.Addr {
	if a.Less(b) {
		return a
	}
	return b
}

// govsProcess is govs running as a separate process (this test binary
// re-executed in the namespace) so that it can be killed with SIGKILL.
type govsProcess struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  []string
	done chan struct{}
}

const helperEnv = "GOVS_VRRP_HELPER_CONFIG"

func startGovsProcess(t *testing.T, ns string, cfg InstanceConfig) *govsProcess {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestGovsHelperProcess$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(b))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &govsProcess{cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.out = append(p.out, sc.Text())
			p.mu.Unlock()
		}
		cmd.Wait()
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("govs process output:\n%s", strings.Join(p.lines(), "\n"))
		}
	})
	return p
}

func (p *govsProcess) lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.out...)
}

func (p *govsProcess) kill() {
	if p.cmd.Process != nil {
		// ip netns exec execs the binary: the pid is govs itself.
		p.cmd.Process.Signal(unix.SIGKILL)
	}
	<-p.done
}

// TestGovsHelperProcess is not a test: startGovsProcess runs it as the
// govs process of the interop tests.
func TestGovsHelperProcess(t *testing.T) {
	raw := os.Getenv(helperEnv)
	if raw == "" {
		t.Skip("helper process for the keepalived interop tests")
	}
	var cfg InstanceConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		t.Fatal(err)
	}
	sys, err := NewLinuxSystem(LinuxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close()
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGTERM, unix.SIGINT)
	defer stop()
	n, err := NewNode(Options{Instances: []InstanceConfig{cfg}, System: sys, OnChange: func(s InstanceStatus) {
		fmt.Printf("STATE %s prio %d master %s\n", s.State, s.EffectivePriority, s.MasterAddr)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestKeepalivedSplitBrain cuts the link between govs (MASTER, 150) and
// keepalived (BACKUP, 100) with a bridge filter so both become MASTER,
// then heals it: keepalived yields, and govs, the winner, answers the
// lower priority master with fresh gratuitous ARPs and a repeated MASTER
// notification (keepalived #166, #1884).
func TestKeepalivedSplitBrain(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed")
	}
	v := interopVariant{name: "split-brain", code: "sb", version: 3, advert: "0.1"}
	tp := buildTopo(t, v)
	sw := strings.TrimSuffix(tp.ka, "ka") + "sw"
	arpCap := startCapture(t, tp.cp, tp.vipIf)
	rn := &recordNotifier{}
	gcfg := v.govsConfig(tp, "MASTER", 150)
	gcfg.GARPMasterDelay = time.Minute // only the split brain may trigger GARPs later
	g := startGovs(t, tp.gv, gcfg, func(o *Options) { o.Notifier = rn })
	if !waitFor(3*time.Second, func() bool { return g.status().State == StateMaster }) {
		t.Fatalf("govs not MASTER: %+v", g.status())
	}
	ka := newKeepalived(t, tp.ka, v.keepalivedConf(tp, "BACKUP", 100))
	ka.start()
	if !waitFor(10*time.Second, func() bool { return ka.lastState() == "BACKUP" }) {
		t.Fatalf("keepalived not BACKUP: %v", ka.notes())
	}

	run(t, "ip", "netns", "exec", sw, "nft", "add table bridge vrsplit; add chain bridge vrsplit cut { type filter hook forward priority 0; }; "+
		`add rule bridge vrsplit cut oifname "pka" drop; add rule bridge vrsplit cut iifname "pka" drop`)
	if !waitFor(3*time.Second, func() bool { return ka.lastState() == "MASTER" }) {
		t.Fatalf("no split brain: keepalived %v", ka.notes())
	}
	if !hasAddr(t, tp.ka, tp.vipIf, tp.vipText) || !hasAddr(t, tp.gv, tp.vipIf, tp.vipText) {
		t.Fatal("both masters should hold the VIP during the split")
	}
	time.Sleep(300 * time.Millisecond)
	// Heal one direction first (keepalived -> govs, the usual shape of
	// a unicast split brain, keepalived #2458) so govs certainly hears
	// the lower priority master, then the other.
	healed := time.Now()
	run(t, "ip", "netns", "exec", sw, "nft", "flush chain bridge vrsplit cut; add rule bridge vrsplit cut oifname \"pka\" drop")
	mac := linkMAC(t, tp.gv, tp.vipIf)
	if !waitFor(2*time.Second, func() bool { return len(arpCap.garps(mac, tp.vip.Prefix.Addr())) > tp.garpRepeat }) {
		t.Fatal("govs did not answer the lower priority master with GARPs")
	}
	run(t, "ip", "netns", "exec", sw, "nft", "delete table bridge vrsplit")
	if !waitFor(3*time.Second, func() bool { return ka.lastState() == "BACKUP" }) {
		t.Fatalf("keepalived did not yield after the split healed: %v", ka.notes())
	}
	if s := g.status(); s.State != StateMaster || s.Counters.BecameMaster != 1 {
		t.Fatalf("govs lost mastership: %+v", s)
	}
	if !waitFor(2*time.Second, func() bool {
		for _, at := range arpCap.garps(mac, tp.vip.Prefix.Addr()) {
			if at.After(healed) {
				return true
			}
		}
		return false
	}) {
		t.Fatal("govs sent no fresh GARP after the split brain healed")
	}
	repeat := false
	rn.mu.Lock()
	for _, e := range rn.evs {
		repeat = repeat || (e.State == StateMaster && e.Repeat && e.Time.After(healed))
	}
	rn.mu.Unlock()
	if !repeat {
		t.Fatal("govs did not re-notify MASTER after the split brain")
	}
	if !waitFor(time.Second, func() bool { return !hasAddr(t, tp.ka, tp.vipIf, tp.vipText) }) {
		t.Fatal("keepalived kept the VIP")
	}
}
