package snmpmib

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/dataplane"
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
	groups := []vrrp.SyncGroupConfig{{Name: "G", Members: []string{"F", "B"}}}
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
		k + "2.1.1.3.1":         int64(3),    // FAULT: a member is
		k + "2.2.1.2.1.1":       []byte("F"), // by its place in the group
		k + "2.2.1.2.1.2":       []byte("B"),
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

// TestCheckVars: a firewall-mark service and an address one, a real
// server down with its weight gone, a sorry server, govs's SNAT (which
// KEEPALIVED-MIB has no number for: the column is left out).
func TestCheckVars(t *testing.T) {
	cfg, diags := config.Parse("t.conf", []byte(`global_defs {
    lvs_timeouts udp 300
}
virtual_server fwmark 7 {
    lb_algo mh
    lb_kind DR
    real_server 10.0.0.11 0 {
        weight 2
        notify_down "/bin/down x"
    }
}
virtual_server 10.0.0.1 53 {
    protocol UDP
    lb_algo wlc
    lb_kind SNAT
    quorum 2
    sorry_server 10.0.0.99 53
    real_server 10.0.0.12 53 {
    }
}
`), nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	st := &api.State{Timeouts: api.Timeouts{TCP: 900, TCPFin: 120, UDP: 300}, Services: []api.Service{
		{Proto: "FWM", FWMark: 7, Scheduler: "mh", Method: "DR", Enabled: true, QuorumUp: true, Source: cfg.VirtualServers[0].Pos.String(),
			Stats:       dataplane.Counters{Conns: 5, InBytes: 1 << 33},
			RealServers: []api.RealServer{{Addr: "10.0.0.11:0", Method: "Route", Weight: 2, Healthy: true, ActiveConns: 3}}},
		{Proto: "UDP", Addr: "10.0.0.1", Port: 53, Scheduler: "wlc", Method: "SNAT", Enabled: true, QuorumUp: false, Source: cfg.VirtualServers[1].Pos.String(),
			RealServers: []api.RealServer{
				{Addr: "10.0.0.12:53", Method: "FullNat", Weight: 0, ConfigWeight: 1, Healthy: false},
				{Addr: "10.0.0.99:53", Method: "FullNat", Weight: 1, Healthy: true, Sorry: true},
			}},
	}}
	got := map[string]any{}
	for _, v := range CheckVars(&statefiles.Input{Config: cfg, State: st}) {
		got[v.Name.String()] = v.Value
	}
	c := ".1.3.6.1.4.1.9586.100.5.3."
	for oid, want := range map[string]any{
		c + "3.1.2.1":    int64(1), // fwmark
		c + "3.1.4.1":    int64(7),
		c + "3.1.8.1":    int64(4), // no protocol
		c + "3.1.9.1":    int64(13),
		c + "3.1.10.1":   int64(2),
		c + "3.1.11.1":   int64(1),
		c + "3.1.30.1":   uint64(1 << 33),
		c + "3.1.38.1":   uint64(5),
		c + "4.1.15.1.1": int64(3),
		c + "4.1.12.1.1": []byte("'/bin/down' 'x'"),
		c + "4.1.40.1.1": int64(2),
		c + "3.1.8.2":    int64(2), // udp
		c + "3.1.11.2":   int64(1), // in the dataplane, quorum or not
		c + "3.1.20.2":   int64(1), // the sorry server is not counted
		c + "3.1.21.2":   int64(0),
		c + "3.1.22.2":   int64(2),
		c + "3.1.23.2":   int64(2),
		c + "4.1.2.2.1":  int64(2), // the sorry server first
		c + "4.1.4.2.1":  []byte{10, 0, 0, 99},
		c + "4.1.5.2.1":  int64(53),
		c + "4.1.2.2.2":  int64(1),
		c + "4.1.6.2.2":  int64(2),
		c + "4.1.7.2.2":  int64(1), // its weight when in use
		c + "4.1.13.2.2": int64(1),
		c + "6.1.0":      int64(2),
		c + "7.3.0":      int64(300),
	} {
		if g, ok := got[oid]; !ok || agentxString(g) != agentxString(want) {
			t.Errorf("%s = %v, want %v", oid, g, want)
		}
	}
	// not served: SNAT's method, a fwmark's address, persistence unset,
	// the checked columns of the sorry server, thresholds unset, the
	// timeouts the configuration does not set
	for _, oid := range []string{c + "3.1.10.2", c + "4.1.40.2.2", c + "3.1.6.1", c + "3.1.14.1", c + "4.1.6.2.1", c + "4.1.7.2.1",
		c + "4.1.8.2.2", c + "7.1.0"} {
		if _, ok := got[oid]; ok {
			t.Errorf("%s served", oid)
		}
	}
}

// TestNotifications: a real server going down and a quorum lost make
// keepalived's realServerStateChange and virtualServerQuorumStateChange,
// their objects named by column as keepalived names them; nothing is
// sent for the groups not served.
func TestNotifications(t *testing.T) {
	cfg, diags := config.Parse("t.conf", []byte(`global_defs {
    router_id r9
}
virtual_server 10.0.0.1 80 {
    quorum 2
    real_server 10.0.0.11 8080 {
    }
    real_server 10.0.0.12 8080 {
    }
}
`), nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	st := &api.State{Services: []api.Service{{ID: "tcp/10.0.0.1:80", Proto: "TCP", Addr: "10.0.0.1", Port: 80, Scheduler: "wlc", Method: "NAT",
		Enabled: true, Source: cfg.VirtualServers[0].Pos.String(), RealServers: []api.RealServer{
			{Addr: "10.0.0.11:8080", Method: "Masq", Weight: 1, Healthy: true},
			{Addr: "10.0.0.12:8080", Method: "Masq", Weight: 0, Healthy: false},
		}}}}
	in := &statefiles.Input{Config: cfg, State: st}
	vars := append(Vars(in, Options{}), CheckVars(in)...)
	all := Trapped{VRRP: true, Check: true, RFCv2: true, RFCv3: true}
	ns := Notifications(in, vars, Event{Kind: "RS", Service: "tcp/10.0.0.1:80", RealServer: "10.0.0.12:8080"}, all)
	if len(ns) != 1 || ns[0].Trap.String() != TrapRealServer.String() {
		t.Fatalf("RS: %+v", ns)
	}
	c := ".1.3.6.1.4.1.9586.100.5.3."
	var got []string
	for _, v := range ns[0].Objs {
		got = append(got, fmt.Sprintf("%s=%v", v.Name, agentxString(v.Value)))
	}
	// keepalived's order: the real server, the virtual server's type,
	// what names it, its protocol, the counts, the router id
	want := []string{c + "4.1.3=int64:1", c + "4.1.4=bytes:\n\x00\x00\f", c + "4.1.5=int64:8080", c + "4.1.6=int64:2",
		c + "3.1.2=int64:2", c + "3.1.5=int64:1", c + "3.1.6=bytes:\n\x00\x00\x01", c + "3.1.7=int64:80",
		c + "3.1.8=int64:1", c + "3.1.21=int64:1", c + "3.1.20=int64:2", ".1.3.6.1.4.1.9586.100.5.1.2.0=bytes:r9"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("RS objects:\n%q\nwant\n%q", got, want)
	}
	// the state the event tells of, not the snapshot's (which may be
	// later)
	ns = Notifications(in, vars, Event{Kind: "RS", Service: "tcp/10.0.0.1:80", RealServer: "10.0.0.12:8080", Up: true}, all)
	if len(ns) != 1 || ns[0].Objs[3].Value != int64(1) {
		t.Errorf("RS up: %+v", ns)
	}
	ns = Notifications(in, vars, Event{Kind: "QUORUM", Service: "tcp/10.0.0.1:80"}, all)
	if len(ns) != 1 || ns[0].Trap.String() != TrapQuorum.String() || len(ns[0].Objs) != 10 {
		t.Errorf("QUORUM: %+v", ns)
	}
	if ns := Notifications(in, vars, Event{Kind: "RS", Service: "tcp/10.0.0.1:80", RealServer: "10.0.0.12:8080"}, Trapped{VRRP: true}); len(ns) != 0 {
		t.Errorf("check traps without the check group: %+v", ns)
	}
	if ns := Notifications(in, vars, Event{Kind: "RS", Service: "tcp/10.0.0.1:80", RealServer: "10.0.0.99:8080"}, all); len(ns) != 0 {
		t.Errorf("a real server not there: %+v", ns)
	}
}

// TestCheckVarsGroup: a virtual_server_group's services make one row
// (type group, its name, counters summed), its real server without a
// port of its own one row whose counters add those of every member.
func TestCheckVarsGroup(t *testing.T) {
	cfg, diags := config.Parse("t.conf", []byte(`virtual_server_group G {
    10.0.0.1 80
    10.0.0.2 8080
}
virtual_server group G {
    lb_algo rr
    lb_kind NAT
    real_server 10.0.0.11 0 {
    }
}
`), nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	src := cfg.VirtualServers[0].Pos.String()
	st := &api.State{Services: []api.Service{
		{ID: "tcp/10.0.0.1:80", Proto: "TCP", Addr: "10.0.0.1", Port: 80, Scheduler: "rr", Method: "NAT", Enabled: true, Source: src,
			Stats: dataplane.Counters{Conns: 5}, RealServers: []api.RealServer{{Addr: "10.0.0.11:80", Healthy: true, Stats: dataplane.Counters{Conns: 5}, ActiveConns: 1}}},
		{ID: "tcp/10.0.0.2:8080", Proto: "TCP", Addr: "10.0.0.2", Port: 8080, Scheduler: "rr", Method: "NAT", Enabled: true, Source: src,
			Stats: dataplane.Counters{Conns: 7}, RealServers: []api.RealServer{{Addr: "10.0.0.11:8080", Healthy: true, Stats: dataplane.Counters{Conns: 7}, ActiveConns: 2}}},
	}}
	got := map[string]any{}
	for _, v := range CheckVars(&statefiles.Input{Config: cfg, State: st}) {
		got[v.Name.String()] = v.Value
	}
	c := ".1.3.6.1.4.1.9586.100.5.3."
	for oid, want := range map[string]any{
		c + "3.1.2.1":    int64(3), // group
		c + "3.1.3.1":    []byte("G"),
		c + "3.1.38.1":   uint64(12),
		c + "4.1.27.1.1": uint64(12),
		c + "4.1.15.1.1": int64(3),
	} {
		if g, ok := got[oid]; !ok || agentxString(g) != agentxString(want) {
			t.Errorf("%s = %v, want %v", oid, g, want)
		}
	}
	for _, oid := range []string{c + "3.1.2.2", c + "4.1.2.1.2", c + "3.1.6.1"} {
		if _, ok := got[oid]; ok {
			t.Errorf("%s served", oid)
		}
	}
}
