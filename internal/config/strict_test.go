package config

import (
	"strings"
	"testing"
)

// TestStrictMode: vrrp_strict as keepalived applies it: errors for an
// instance without virtual addresses or with unicast peers, warnings
// naming each setting it corrects, the settings it forces, accept mode
// by priority, version and strict_mode, and the round trip.
func TestStrictMode(t *testing.T) {
	src := `global_defs {
    vrrp_strict
}
vrrp_instance PLAIN {
    interface eth0
    virtual_router_id 1
    priority 100
    virtual_ipaddress {
        10.0.0.1
    }
}
vrrp_instance CORRECTED {
    state MASTER
    interface eth0
    virtual_router_id 2
    priority 150
    preempt_delay 5
    garp_lower_prio_repeat 2
    lower_prio_no_advert off
    higher_prio_send_advert
    accept
    authentication {
        auth_type PASS
        auth_pass secret
    }
    virtual_ipaddress {
        10.0.0.2
    }
}
vrrp_instance OWNER {
    state MASTER
    interface eth0
    virtual_router_id 3
    virtual_ipaddress {
        10.0.0.3
    }
}
vrrp_instance V3 {
    interface eth0
    virtual_router_id 4
    version 3
    accept
    virtual_ipaddress {
        10.0.0.4
    }
}
vrrp_instance SIX {
    interface eth0
    virtual_router_id 5
    no_accept
    virtual_ipaddress {
        2001:db8::5
    }
}
vrrp_instance LOOSE {
    interface eth0
    virtual_router_id 6
    strict_mode off
    unicast_peer {
        10.0.0.9
    }
    virtual_ipaddress {
        10.0.0.6
    }
}
`
	cfg, ds := LoadBytes("t.conf", []byte(src), nil)
	if ds.HasErrors() {
		t.Fatalf("errors:\n%s", diagStrings(ds))
	}
	got := diagStrings(ds)
	for _, want := range []string{
		`"PLAIN": strict mode implies no_accept`,
		`"CORRECTED": in strict mode only the address owner (priority 255) starts as MASTER: state MASTER with priority 150 starts as BACKUP`,
		`"CORRECTED": strict mode has no authentication`,
		`"CORRECTED": preempt_delay is not allowed in strict mode`,
		`"CORRECTED": strict mode sends no gratuitous ARPs on a lower priority advert; garp_lower_prio_repeat is taken as 0`,
		`"CORRECTED": strict mode does not answer a lower priority advert`,
		`"CORRECTED": strict mode sends no advert before giving way`,
		`"CORRECTED": accept does not apply to VRRPv2 in strict mode`,
		`"SIX": in strict mode the first IPv6 virtual_ipaddress should be link-local`,
		`"OWNER": state MASTER without priority is priority 255`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no warning %q in:\n%s", want, got)
		}
	}
	for _, name := range []string{`"OWNER"`, `"V3"`, `"LOOSE"`} {
		for _, line := range strings.Split(got, "\n") {
			if strings.Contains(line, name) && strings.Contains(line, "strict") {
				t.Errorf("a strict mode warning for %s: %s", name, line)
			}
		}
	}
	check := func(cfg *Config) {
		t.Helper()
		g := &cfg.Global
		want := map[string]struct {
			strict, accept bool
			prio           int
		}{
			"PLAIN": {true, false, 100}, "CORRECTED": {true, false, 150}, "OWNER": {true, true, 255},
			"V3": {true, true, 100}, "SIX": {true, false, 100}, "LOOSE": {false, true, 100},
		}
		for _, vi := range cfg.VRRPInstances {
			w := want[vi.Name]
			if g.StrictMode(vi) != w.strict || g.AcceptMode(vi) != w.accept || vi.BasePriority() != w.prio {
				t.Errorf("%s: strict %v accept %v priority %d, want %+v", vi.Name, g.StrictMode(vi), g.AcceptMode(vi), vi.BasePriority(), w)
			}
		}
		s := g.InstanceSettings(cfg.VRRPInstances[1])
		if s.GarpLowerPrioRepeat != 0 || s.GarpLowerPrioDelay != 0 || !s.LowerPrioNoAdvert || s.HigherPrioSendAdvert {
			t.Errorf("CORRECTED's settings in strict mode: %+v", s)
		}
		if s := g.InstanceSettings(cfg.VRRPInstances[5]); !(s.GarpLowerPrioRepeat > 0) || s.LowerPrioNoAdvert {
			t.Errorf("LOOSE's settings out of strict mode: %+v", s)
		}
	}
	check(cfg)
	out := Format(cfg)
	for _, line := range []string{"vrrp_strict\n", "strict_mode off\n", "no_accept\n", "    accept\n"} {
		if !strings.Contains(string(out), line) {
			t.Errorf("rendering lost %q:\n%s", line, out)
		}
	}
	cfg2, ds2 := LoadBytes("t.conf", out, nil)
	if ds2.HasErrors() || dumpJSON(t, cfg) != dumpJSON(t, cfg2) {
		t.Fatalf("round trip: %v\n%s", diagStrings(ds2), out)
	}
	check(cfg2)

	// outside strict mode accept is the default, no_accept is kept
	plain := strings.Replace(src, "    vrrp_strict\n", "", 1)
	cfg3, ds3 := LoadBytes("t.conf", []byte(plain), nil)
	if ds3.HasErrors() || strings.Contains(diagStrings(ds3), "strict") {
		t.Fatalf("without vrrp_strict:\n%s", diagStrings(ds3))
	}
	for _, vi := range cfg3.VRRPInstances {
		if accept := cfg3.Global.AcceptMode(vi); accept != (vi.Name != "SIX") {
			t.Errorf("without vrrp_strict, %s: accept %v", vi.Name, accept)
		}
	}

	// refused in strict mode, each at its instance
	for _, c := range []struct{ name, src, want string }{
		{"no address", "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n}\n", `t.conf:4:1: error: vrrp_instance "A": strict mode (vrrp_strict) needs at least one virtual_ipaddress`},
		{"unicast", "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n unicast_peer {\n 10.0.0.2\n }\n virtual_ipaddress {\n 10.0.0.1\n }\n}\n", `t.conf:4:1: error: vrrp_instance "A": unicast_peer is not allowed in strict mode`},
		{"strict_mode on an instance", "global_defs {\n}\nvrrp_instance A {\n interface eth0\n virtual_router_id 1\n strict_mode\n unicast_peer {\n 10.0.0.2\n }\n virtual_ipaddress {\n 10.0.0.1\n }\n}\n", `unicast_peer is not allowed in strict mode`},
	} {
		text := c.src
		if !strings.HasPrefix(text, "global_defs") {
			text = "global_defs {\n vrrp_strict\n}\n" + text
		}
		_, ds := LoadBytes("t.conf", []byte(text), nil)
		if !ds.HasErrors() || !strings.Contains(diagStrings(ds), c.want) {
			t.Errorf("%s: diagnostics %s, want %q", c.name, diagStrings(ds), c.want)
		}
	}
}
