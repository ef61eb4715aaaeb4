package vrrp

import (
	"net/netip"
	"os/exec"
	"testing"
	"time"
)

// TestKeepalivedUnicastChecks: keepalived is MASTER, sending unicast
// adverts (TTL 255) to govs, which is BACKUP with a lower priority.
//   - check_unicast_src with keepalived not among govs's peers: govs
//     drops its adverts (unknown_peer) and takes the master role;
//   - keepalived among the peers with min_ttl 255: govs follows it;
//   - max_ttl 64 for keepalived: govs drops its adverts (ttl) again.
func TestKeepalivedUnicastChecks(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Skip("keepalived not installed (apt-get install keepalived)")
	}
	v := interopVariant{name: "unicast-checks", code: "uc", version: 3, advert: "0.1", unicast: true}
	tp := buildTopo(t, v)
	ka := newKeepalived(t, tp.ka, v.keepalivedConf(tp, "MASTER", 150))
	ka.start()
	if !waitFor(10*time.Second, func() bool { return ka.lastState() == "MASTER" }) {
		t.Fatalf("keepalived did not become MASTER: notes %v", ka.notes())
	}
	for _, c := range []struct {
		name   string
		mod    func(*InstanceConfig)
		master bool
		drop   DropReason
	}{
		{"source not a peer", func(c *InstanceConfig) {
			c.UnicastPeers = []netip.Addr{netip.MustParseAddr("10.9.0.77")}
			c.CheckUnicastSrc = true
		}, true, DropPeer},
		{"peer with min_ttl 255", func(c *InstanceConfig) {
			c.CheckUnicastSrc = true
			c.UnicastPeerTTL = []PeerTTL{{Addr: tp.kaAddr, Min: 255, Max: 255}}
		}, false, ""},
		{"peer with max_ttl 64", func(c *InstanceConfig) {
			c.UnicastPeerTTL = []PeerTTL{{Addr: tp.kaAddr, Min: 0, Max: 64}}
		}, true, DropTTL},
	} {
		t.Run(c.name, func(t *testing.T) {
			gcfg := v.govsConfig(tp, "BACKUP", 100)
			c.mod(&gcfg)
			mdi := masterDown(t, gcfg)
			g := startGovs(t, tp.gv, gcfg)
			defer g.stop()
			// long enough for several master down intervals
			time.Sleep(3*mdi + time.Second)
			s := g.status()
			if (s.State == StateMaster) != c.master {
				t.Errorf("govs is %s, want master %v (counters %+v)", s.State, c.master, s.Counters)
			}
			if c.drop != "" && s.Counters.Dropped[c.drop] == 0 {
				t.Errorf("no advert dropped as %q: %+v", c.drop, s.Counters)
			}
			if c.drop == "" && (len(s.Counters.Dropped) != 0 || s.MasterAddr != tp.kaAddr) {
				t.Errorf("govs dropped adverts or does not follow keepalived (%s): %+v", s.MasterAddr, s.Counters)
			}
		})
	}
}
