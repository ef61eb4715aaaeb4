package snmpmib

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/statefiles"
	"github.com/govs/govs/internal/vrrp"
)

// TestVars: a BACKUP VRRPv3 instance in a sync group, with a tracked
// interface, an excluded address and the lvs_sync_daemon, and a FAULT
// one, as KEEPALIVED-MIB shows them (state numbers, indexes, the
// optional columns present only when set).
func TestVars(t *testing.T) {
	insts := []vrrp.InstanceConfig{
		{Name: "B", Interface: "lo", VRID: 9, Priority: 90, Version: 3, AdvertInterval: 500 * time.Millisecond,
			TrackInterfaces:    []vrrp.TrackInterface{{Name: "eth1", Weight: -10, Reverse: true}},
			VirtualIPs:         []vrrp.VirtualIP{{Prefix: netip.MustParsePrefix("10.0.0.1/24"), Broadcast: netip.MustParseAddr("10.0.0.255"), Label: "lo:1"}},
			VirtualIPsExcluded: []vrrp.VirtualIP{{Prefix: netip.MustParsePrefix("2001:db8::1/64"), Scope: "link"}},
			Notify:             vrrp.NotifyScripts{Master: "/bin/up a"}},
		{Name: "F", Interface: "nosuchif", VRID: 10, Priority: 100, AuthPass: "pw",
			VirtualIPs: []vrrp.VirtualIP{{Prefix: netip.MustParsePrefix("10.0.1.1/32")}}},
	}
	groups := []vrrp.SyncGroupConfig{{Name: "G", Members: []string{"B", "F"}}}
	n, err := vrrp.NewNode(vrrp.Options{Instances: insts, SyncGroups: groups, System: struct{ vrrp.System }{}})
	if err != nil {
		t.Fatal(err)
	}
	d := n.Dump()
	d.Instances[0].State, d.Instances[0].EffectivePriority = vrrp.StateBackup, 80
	d.Instances[0].MasterAddr = netip.MustParseAddr("10.0.0.2")
	d.Instances[1].State = vrrp.StateFault
	cfg := &config.Config{}
	cfg.Global.RouterID = "r1"
	cfg.Global.LVSSyncDaemon = &config.SyncD{Interface: "eth0", Instance: "B"}
	vars := Vars(&statefiles.Input{Config: cfg, VRRP: d}, Options{Version: "v9"})
	got := map[string]any{}
	for _, v := range vars {
		got[v.Name.String()] = v.Value
	}
	k := ".1.3.6.1.4.1.9586.100.5."
	for oid, want := range map[string]any{
		k + "1.1.0":             []byte("govs v9"),
		k + "1.2.0":             []byte("r1"),
		k + "2.1.1.2.1":         []byte("G"),
		k + "2.1.1.3.1":         int64(3), // FAULT: a member is
		k + "2.2.1.2.1.2":       []byte("F"),
		k + "2.3.1.4.1":         int64(1), // BACKUP
		k + "2.3.1.6.1":         int64(1),
		k + "2.3.1.8.1":         int64(80),
		k + "2.3.1.9.1":         int64(2), // addresses not set
		k + "2.3.1.11.1":        int64(1), // an interface tracked
		k + "2.3.1.12.1":        int64(50),
		k + "2.3.1.16.1":        int64(1),
		k + "2.3.1.17.1":        []byte("eth0"),
		k + "2.3.1.18.1":        []byte("G"),
		k + "2.3.1.21.1":        int64(1),
		k + "2.3.1.22.1":        []byte("'/bin/up' 'a'"),
		k + "2.3.1.27.1":        int64(1),
		k + "2.3.1.4.2":         int64(3),
		k + "2.3.1.15.2":        int64(1), // password
		k + "2.3.1.27.2":        int64(0), // VRRPv2: no accept mode
		k + "2.4.1.1.1.1":       []byte("eth1"),
		k + "2.4.1.2.1.1":       int64(-10),
		k + "2.4.1.3.1.1":       int64(1),
		k + "2.6.1.4.1.1":       []byte{10, 0, 0, 255},
		k + "2.6.1.5.1.1":       int64(24),
		k + "2.6.1.9.1.1":       []byte("lo:1"),
		k + "2.6.1.10.1.1":      int64(2),
		k + "2.6.1.11.1.1":      int64(1),
		k + "2.6.1.2.1.2":       int64(2), // IPv6
		k + "2.6.1.6.1.2":       int64(2), // link scope
		k + "2.6.1.11.1.2":      int64(2), // excluded: not advertised
		".1.3.6.1.2.1.68.1.1.0": int64(2),
	} {
		if g, ok := got[oid]; !ok || agentxString(g) != agentxString(want) {
			t.Errorf("%s = %v, want %v", oid, g, want)
		}
	}
	// absent: optional columns not set, the broadcast of an IPv6
	// address, the RFC tables of an instance whose interface is not there
	for _, oid := range []string{k + "2.3.1.17.2", k + "2.3.1.18.3", k + "2.3.1.23.1", k + "2.6.1.4.1.2", k + "2.6.1.9.1.2",
		".1.3.6.1.2.1.68.1.3.1.3.0.10"} {
		if _, ok := got[oid]; ok {
			t.Errorf("%s served", oid)
		}
	}
	// the VRRPv3-MIB row of B (lo is interface 1): backup, 50 cs
	if got[".1.3.6.1.2.1.207.1.1.1.1.6.1.9.1"] != int64(2) || got[".1.3.6.1.2.1.207.1.1.1.1.9.1.9.1"] != int64(50) {
		t.Errorf("VRRPv3-MIB: %v %v", got[".1.3.6.1.2.1.207.1.1.1.1.6.1.9.1"], got[".1.3.6.1.2.1.207.1.1.1.1.9.1.9.1"])
	}
}

func agentxString(v any) string {
	if b, ok := v.([]byte); ok {
		return "bytes:" + string(b)
	}
	return fmt.Sprintf("%T:%v", v, v)
}
