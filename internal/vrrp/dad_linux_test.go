package vrrp

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// TestIPv6SourceUnderDAD starts an IPv6 BACKUP on an interface that has
// just come up: its link-local address, the adverts' source, is under
// duplicate address detection for some three seconds (dad_transmits 3).
// As with keepalived, the instance is not in FAULT meanwhile: it hears
// the MASTER's adverts and stays BACKUP. Once the address is usable and
// the MASTER stops, it takes over and its adverts go out.
func TestIPv6SourceUnderDAD(t *testing.T) {
	requireRoot(t)
	id := os.Getpid() % 10000
	m, b := fmt.Sprintf("vr%04ddm", id), fmt.Sprintf("vr%04ddb", id)
	addNetns(t, m, true)
	addNetns(t, b, true)
	sysctl := func(ns, k, v string) { run(t, "ip", "netns", "exec", ns, "sysctl", "-qw", k+"="+v) }
	// DAD on, three probes a second apart, in b only
	for _, k := range []string{"all", "default"} {
		sysctl(b, "net.ipv6.conf."+k+".accept_dad", "1")
		sysctl(b, "net.ipv6.conf."+k+".dad_transmits", "3")
	}
	run(t, "ip", "link", "add", "eth0", "netns", m, "type", "veth", "peer", "name", "eth0", "netns", b)
	// (b's link-local address is made, and checked, once both ends are up)
	ipn(t, m, "link", "set", "eth0", "up")
	ipn(t, b, "link", "set", "eth0", "up")
	cfg := func(name string, prio int) InstanceConfig {
		return InstanceConfig{Name: name, Interface: "eth0", VRID: 61, Priority: prio, Version: 3,
			AdvertInterval: 100 * time.Millisecond,
			VirtualIPs:     []VirtualIP{{Prefix: netip.MustParsePrefix("fd00:61::100/64"), NoDAD: true}}}
	}
	master := startGovs(t, m, cfg("M", 200))
	if !waitFor(3*time.Second, func() bool { return master.status().State == StateMaster }) {
		t.Fatalf("the MASTER did not start: %+v", master.status())
	}

	tentative := func() bool {
		return strings.Contains(ipn(t, b, "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link"), "tentative")
	}
	if !waitFor(time.Second, tentative) {
		t.Fatalf("b's link-local address is not under DAD:\n%s", ipn(t, b, "-6", "addr", "show", "dev", "eth0"))
	}
	backup := startGovs(t, b, cfg("B", 100))
	if !waitFor(time.Second, func() bool { return backup.status().State != StateInit }) {
		t.Fatalf("the BACKUP did not start: %+v", backup.status())
	}
	// every state the BACKUP shows while its source is tentative (its
	// master-down interval is some 0.35 s: without the MASTER's adverts
	// it would take over many times over)
	seen := map[State]int{}
	var polls int
	for tentative() && polls < 500 {
		seen[backup.status().State]++
		polls++
		time.Sleep(20 * time.Millisecond)
	}
	if polls < 25 {
		t.Fatalf("the address left DAD after %d polls: too soon to tell", polls)
	}
	t.Logf("states while b's link-local address was tentative (%d polls): %v", polls, seen)
	if len(seen) != 1 || seen[StateBackup] == 0 {
		t.Errorf("the BACKUP under DAD was not BACKUP throughout: %v (%+v)", seen, backup.status())
	}
	st := backup.status()
	if st.Counters.AdvertsReceived == 0 {
		t.Errorf("the BACKUP under DAD heard no advert: %+v", st.Counters)
	}
	for _, tr := range st.Transitions {
		if tr.To != StateBackup {
			t.Errorf("transition under DAD: %+v", tr)
		}
	}

	// the address is usable: the BACKUP takes over when the MASTER stops,
	// and its adverts go out
	master.stop()
	if !waitFor(3*time.Second, func() bool { return backup.status().State == StateMaster }) {
		t.Fatalf("the BACKUP did not take over: %+v", backup.status())
	}
	sent := backup.status().Counters
	time.Sleep(500 * time.Millisecond)
	c := backup.status().Counters
	if c.AdvertsSent < sent.AdvertsSent+3 || c.SendErrors != sent.SendErrors {
		t.Errorf("the new MASTER's adverts: sent %d → %d, send errors %d → %d", sent.AdvertsSent, c.AdvertsSent, sent.SendErrors, c.SendErrors)
	}
	if src := backup.status().LocalAddr; !src.IsLinkLocalUnicast() {
		t.Errorf("advert source %s, want the link-local address", src)
	}
}

// TestIPv6OwnerUnderDAD: an address owner starts MASTER at once; while
// its link-local source is under duplicate address detection its
// adverts fail (send_errors), then they go out.
func TestIPv6OwnerUnderDAD(t *testing.T) {
	requireRoot(t)
	ns := fmt.Sprintf("vr%04ddo", os.Getpid()%10000)
	addNetns(t, ns, true)
	for _, k := range []string{"all", "default"} {
		run(t, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf."+k+".accept_dad=1")
		run(t, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf."+k+".dad_transmits=3")
	}
	run(t, "ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", "eth1", "netns", ns)
	ipn(t, ns, "link", "set", "eth1", "up")
	ipn(t, ns, "link", "set", "eth0", "up")
	tentative := func() bool {
		return strings.Contains(ipn(t, ns, "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link"), "tentative")
	}
	if !waitFor(time.Second, tentative) {
		t.Fatalf("eth0's link-local address is not under DAD:\n%s", ipn(t, ns, "-6", "addr", "show", "dev", "eth0"))
	}
	g := startGovs(t, ns, InstanceConfig{Name: "O", Interface: "eth0", VRID: 62, Priority: 255, Version: 3,
		AdvertInterval: 100 * time.Millisecond,
		VirtualIPs:     []VirtualIP{{Prefix: netip.MustParsePrefix("fd00:62::100/64"), NoDAD: true}}})
	if !waitFor(time.Second, func() bool { return g.status().State == StateMaster && g.status().Counters.SendErrors > 0 }) {
		t.Fatalf("the owner under DAD: %+v", g.status())
	}
	if !waitFor(6*time.Second, func() bool { return !tentative() }) {
		t.Fatal("DAD did not end")
	}
	time.Sleep(200 * time.Millisecond)
	c0 := g.status().Counters
	time.Sleep(500 * time.Millisecond)
	c := g.status().Counters
	if c.AdvertsSent < c0.AdvertsSent+3 || c.SendErrors != c0.SendErrors || g.status().State != StateMaster {
		t.Errorf("after DAD: sent %d → %d, send errors %d → %d, %s", c0.AdvertsSent, c.AdvertsSent, c0.SendErrors, c.SendErrors, g.status().State)
	}
	t.Logf("send errors while tentative: %d", c0.SendErrors)
}
