package vrrp

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMcastDstIPSharedVRID runs keepalived 2.2.7 and govs on one link,
// each with two instances of VRID 51 on different groups (mcast_dst_ip
// 224.0.0.100 and 224.0.0.101), which keepalived allows: each pair is
// its own virtual router. keepalived wins the first group (150 over
// 100), govs the second (100 over 50); were the groups not told apart,
// govs's second instance would yield to keepalived's first.
func TestMcastDstIPSharedVRID(t *testing.T) {
	requireRoot(t)
	p := fmt.Sprintf("vr%04dmg", os.Getpid()%10000)
	ka, gv := p+"ka", p+"gv"
	addNetns(t, ka, false)
	addNetns(t, gv, false)
	run(t, "ip", "link", "add", "eth0", "netns", ka, "type", "veth", "peer", "name", "eth0", "netns", gv)
	ipn(t, ka, "addr", "add", "10.9.1.1/24", "dev", "eth0")
	ipn(t, gv, "addr", "add", "10.9.1.2/24", "dev", "eth0")
	ipn(t, ka, "link", "set", "eth0", "up")
	ipn(t, gv, "link", "set", "eth0", "up")
	inst := func(name, group string, prio int, vip string) string {
		return fmt.Sprintf("vrrp_instance %s {\n  interface eth0\n  state BACKUP\n  virtual_router_id 51\n  version 3\n  priority %d\n  advert_int 0.2\n"+
			"  mcast_dst_ip %s\n  virtual_ipaddress {\n    %s/24\n  }\n  notify @NOTIFY@\n}\n", name, prio, group, vip)
	}
	k := newKeepalived(t, ka, inst("A", "224.0.0.100", 150, "10.9.1.100")+inst("B", "224.0.0.101", 50, "10.9.1.101"))
	k.start()
	gcfg := func(name, group string, vip string) InstanceConfig {
		return InstanceConfig{Name: name, Interface: "eth0", VRID: 51, Priority: 100, Version: 3, AdvertInterval: 200 * time.Millisecond,
			MulticastGroup: netip.MustParseAddr(group), VirtualIPs: []VirtualIP{{Prefix: netip.MustParsePrefix(vip + "/24"), Dev: "eth0"}}}
	}
	g := startGovs(t, gv, gcfg("A", "224.0.0.100", "10.9.1.100"), func(o *Options) {
		o.Instances = append(o.Instances, gcfg("B", "224.0.0.101", "10.9.1.101"))
	})
	// keepalived's states, by instance, from its notify script
	kaState := func(name string) string {
		b, _ := os.ReadFile(k.notify)
		state := ""
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 4 && f[1] == "INSTANCE" && f[2] == name {
				state = f[3]
			}
		}
		return state
	}
	govs := func(name string) InstanceStatus {
		for _, s := range g.node.Status() {
			if s.Name == name {
				return s
			}
		}
		return InstanceStatus{}
	}
	settled := func() bool {
		return kaState("A") == "MASTER" && kaState("B") == "BACKUP" &&
			govs("A").State == StateBackup && govs("A").MasterPriority == 150 && govs("B").State == StateMaster
	}
	if !waitFor(8*time.Second, settled) {
		t.Fatalf("not settled: keepalived A %s, B %s; govs A %+v, B %+v", kaState("A"), kaState("B"), govs("A"), govs("B"))
	}
	// and it holds: each pair hears only its own group
	time.Sleep(2 * time.Second)
	if !settled() || govs("B").Counters.BecameMaster != 1 {
		t.Fatalf("did not hold: keepalived A %s, B %s; govs A %+v, B %+v", kaState("A"), kaState("B"), govs("A"), govs("B"))
	}
	if !hasAddr(t, gv, "eth0", "10.9.1.101") || hasAddr(t, gv, "eth0", "10.9.1.100") || !hasAddr(t, ka, "eth0", "10.9.1.100") {
		t.Fatalf("addresses: govs %s, keepalived %s", ipn(t, gv, "-o", "addr"), ipn(t, ka, "-o", "addr"))
	}
}
