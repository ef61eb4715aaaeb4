package config

import (
	"strings"
	"testing"
	"time"
)

// TestBFDInstance: bfd_instance with every keyword (intervals in
// milliseconds with a fraction), track_bfd in an instance and a sync
// group, the round trip, and what validation refuses.
func TestBFDInstance(t *testing.T) {
	src := `bfd_instance ROUTER {
    neighbour_ip 10.0.0.254
    source_ip 10.0.0.1
    min_rx 3.312
    min_tx 50
    idle_tx 2000
    multiplier 3
    passive
    ttl 250
    max_hops 5
    weight -30 reverse
    vrrp
}
bfd_instance PEER6 {
    neighbor_ip 2001:db8::2
    hoplimit 255
    max_hops -1
}
vrrp_sync_group G {
    group {
        A
    }
    sync_group_tracking_weight
    track_bfd {
        PEER6 weight 0
    }
}
vrrp_instance A {
    interface eth0
    virtual_router_id 1
    track_bfd {
        ROUTER
        PEER6 weight -10
    }
    virtual_ipaddress {
        10.0.0.100
    }
}
virtual_server 10.0.0.100 80 {
    real_server 10.0.0.254 80 {
        BFD_CHECK {
            name ROUTER
        }
    }
}
`
	cfg, ds := LoadBytes("t.conf", []byte(src), nil)
	if ds.HasErrors() || len(ds) != 0 {
		t.Fatalf("diagnostics:\n%s", diagStrings(ds))
	}
	check := func(cfg *Config) {
		t.Helper()
		if len(cfg.BFDInstances) != 2 {
			t.Fatalf("%d bfd_instance blocks", len(cfg.BFDInstances))
		}
		r := cfg.BFDInstances[0]
		if r.Neighbor.String() != "10.0.0.254" || r.Source.String() != "10.0.0.1" || r.MinRx.D() != 3312*time.Microsecond ||
			r.MinTx.D() != 50*time.Millisecond || r.IdleTx.D() != 2*time.Second || r.Multiplier != 3 || !r.Passive ||
			r.OutTTL() != 250 || r.MaxHops != 5 || r.Weight != -30 || !r.Reverse || !r.VRRP {
			t.Errorf("ROUTER %+v", r)
		}
		if p := cfg.BFDInstances[1]; p.OutTTL() != 255 || p.MaxHops != -1 {
			t.Errorf("PEER6 hop limit %d, max_hops %d", p.OutTTL(), p.MaxHops)
		}
		vi := cfg.VRRPInstances[0]
		if len(vi.TrackBFDs) != 2 || vi.TrackBFDs[0].HasWeight || vi.TrackBFDs[1].Weight != -10 {
			t.Errorf("track_bfd %+v", vi.TrackBFDs)
		}
		if g := cfg.SyncGroups[0]; len(g.TrackBFDs) != 1 || g.TrackBFDs[0].Name != "PEER6" {
			t.Errorf("sync group track_bfd %+v", g.TrackBFDs)
		}
		if ck := cfg.VirtualServers[0].RealServers[0].Checks; len(ck) != 1 || ck[0].Kind != CheckBFD || ck[0].BFDName != "ROUTER" {
			t.Errorf("BFD_CHECK %+v", ck)
		}
	}
	check(cfg)
	out := Format(cfg)
	for _, line := range []string{"min_rx 3.312\n", "min_tx 50\n", "idle_tx 2000\n", "weight -30 reverse\n", "max_hops 5\n", "track_bfd {"} {
		if !strings.Contains(string(out), line) {
			t.Errorf("rendering lost %q:\n%s", line, out)
		}
	}
	cfg2, ds2 := LoadBytes("t.conf", out, nil)
	if ds2.HasErrors() || dumpJSON(t, cfg) != dumpJSON(t, cfg2) {
		t.Fatalf("round trip: %v\n%s", diagStrings(ds2), out)
	}
	check(cfg2)

	for _, c := range []struct{ name, src, want string }{
		{"no neighbor", "bfd_instance B {\n min_rx 10\n}\n", `bfd_instance "B" has no neighbor_ip`},
		{"families", "bfd_instance B {\n neighbor_ip 10.0.0.1\n source_ip 2001:db8::1\n}\n", "of different families"},
		{"twice", "bfd_instance B {\n neighbor_ip 10.0.0.1\n}\nbfd_instance B {\n neighbor_ip 10.0.0.2\n}\n", `bfd_instance "B" defined twice`},
		{"same pair", "bfd_instance B {\n neighbor_ip 10.0.0.1\n}\nbfd_instance C {\n neighbor_ip 10.0.0.1\n}\n", "the same neighbor_ip as"},
		{"same neighbor, one source", "bfd_instance B {\n neighbor_ip 10.0.0.1\n source_ip 10.0.0.2\n}\nbfd_instance C {\n neighbor_ip 10.0.0.1\n}\n", "does not tell them apart"},
		{"link-local", "bfd_instance B {\n neighbor_ip fe80::1\n}\n", "link-local addresses are not supported"},
		{"idle_tx", "bfd_instance B {\n neighbor_ip 10.0.0.1\n idle_tx 300\n}\n", "idle_tx 300 ms is below 1000 ms"},
		{"min_rx", "bfd_instance B {\n neighbor_ip 10.0.0.1\n min_rx 0.5\n}\n", "min_rx 0.5 ms is below 1 ms"},
		{"multihop", "bfd_instance B {\n neighbor_ip 10.0.0.1\n multihop\n}\n", "multihop BFD is not supported"},
		{"bad interval", "bfd_instance B {\n neighbor_ip 10.0.0.1\n min_rx fast\n}\n", "is not a time in milliseconds"},
		{"multiplier", "bfd_instance B {\n neighbor_ip 10.0.0.1\n multiplier 0\n}\n", "multiplier 0 out of range"},
		{"BFD_CHECK without name", "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n BFD_CHECK {\n }\n }\n}\n", "name (of a bfd_instance) is required"},
		{"BFD_CHECK unknown", "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n BFD_CHECK {\n name X\n }\n }\n}\n", `"X" is not a defined bfd_instance`},
		{"unknown track", "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n track_bfd {\n NOPE\n }\n virtual_ipaddress {\n 10.0.0.1\n }\n}\n", `track_bfd "NOPE" is not a defined bfd_instance`},
	} {
		_, ds := LoadBytes("t.conf", []byte(c.src), nil)
		if !ds.HasErrors() || !strings.Contains(diagStrings(ds), c.want) {
			t.Errorf("%s: %s, want %q", c.name, diagStrings(ds), c.want)
		}
	}
}
