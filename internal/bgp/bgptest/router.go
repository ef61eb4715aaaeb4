// Package bgptest runs a GoBGP server that stands for a router in tests:
// it takes sessions from speakers and lists the routes it learned.
package bgptest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// Router is a passive BGP router listening on 127.0.0.1:Port.
type Router struct {
	srv  *server.BgpServer
	Port int
}

// FreePort is a TCP port free on 127.0.0.1 now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// NewRouter starts a router of AS as on 127.0.0.1 that waits for
// sessions from speakers (AS peerAS) at each of the peers' addresses;
// it stops with the test.
func NewRouter(t testing.TB, as, peerAS uint32, peers ...string) *Router {
	t.Helper()
	return NewRouterAt(t, "127.0.0.1", as, peerAS, peers...)
}

// NewRouterAt is NewRouter listening on addr (a loopback address).
func NewRouterAt(t testing.TB, addr string, as, peerAS uint32, peers ...string) *Router {
	t.Helper()
	port := FreePort(t)
	srv := server.NewBgpServer()
	go srv.Serve()
	ctx := context.Background()
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: as, RouterId: "10.255.0.1", ListenPort: int32(port), ListenAddresses: []string{addr},
	}}); err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		if err := srv.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
			Conf:      &api.PeerConf{NeighborAddress: p, PeerAsn: peerAS},
			Transport: &api.Transport{PassiveMode: true},
			Timers:    &api.Timers{Config: &api.TimersConfig{HoldTime: 9, KeepaliveInterval: 3}},
		}}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		srv.StopBgp(context.Background(), &api.StopBgpRequest{})
		srv.Stop()
	})
	return &Router{srv: srv, Port: port}
}

// Announce originates prefix (IPv4) from the router to its peers.
func (r *Router) Announce(t testing.TB, prefix string) {
	t.Helper()
	nh, _ := bgp.NewPathAttributeNextHop(netip.MustParseAddr("127.0.0.1"))
	nlri, err := bgp.NewIPAddrPrefix(netip.MustParsePrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	p := &apiutil.Path{Family: bgp.RF_IPv4_UC, Nlri: nlri, Attrs: []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), nh}, Age: time.Now().Unix()}
	if _, err := r.srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{p}}); err != nil {
		t.Fatal(err)
	}
}

// Config is a govs_bgp block (AS 65001, router ID 10.0.0.2) whose one
// neighbor is r, reached from 127.0.0.2, with a 1 s connect retry;
// settings are more lines of the block (announce_delay 0 ...).
func (r *Router) Config(settings ...string) string {
	return fmt.Sprintf(`
govs_bgp {
    local_as 65001
    router_id 10.0.0.2
    connect_retry 1
    %s
    neighbor 127.0.0.1 {
        remote_as 65000
        port %d
        local_address 127.0.0.2
    }
}
`, strings.Join(settings, "\n    "), r.Port)
}

// DropPeer removes the session with peer: the router sends it a Cease.
func (r *Router) DropPeer(t testing.TB, peer string) {
	t.Helper()
	if err := r.srv.DeletePeer(context.Background(), &api.DeletePeerRequest{Address: peer}); err != nil {
		t.Fatal(err)
	}
}

// Route is what the router learned for a prefix from one peer.
type Route struct {
	NextHop     string
	ASPath      string // "65001 65001"
	Communities []uint32
	MED         int64 // -1: none
}

// RIB lists the IPv4 routes learned, by prefix ("192.0.2.10/32"), each
// with its paths (one per speaker announcing it).
func (r *Router) RIB(t testing.TB) map[string][]Route {
	t.Helper()
	return r.rib(t, bgp.RF_IPv4_UC)
}

// RIB6 is RIB for IPv6 routes.
func (r *Router) RIB6(t testing.TB) map[string][]Route {
	t.Helper()
	return r.rib(t, bgp.RF_IPv6_UC)
}

func (r *Router) rib(t testing.TB, fam bgp.Family) map[string][]Route {
	t.Helper()
	out := map[string][]Route{}
	err := r.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: fam},
		func(prefix bgp.NLRI, paths []*apiutil.Path) {
			for _, p := range paths {
				if p.Withdrawal {
					continue
				}
				rt := Route{MED: -1}
				for _, a := range p.Attrs {
					switch x := a.(type) {
					case *bgp.PathAttributeNextHop:
						rt.NextHop = x.Value.String()
					case *bgp.PathAttributeMpReachNLRI:
						rt.NextHop = x.Nexthop.String()
					case *bgp.PathAttributeAsPath:
						var as []string
						for _, seg := range x.Value {
							for _, n := range seg.GetAS() {
								as = append(as, fmt.Sprint(n))
							}
						}
						rt.ASPath = strings.Join(as, " ")
					case *bgp.PathAttributeCommunities:
						rt.Communities = x.Value
					case *bgp.PathAttributeMultiExitDisc:
						rt.MED = int64(x.Value)
					}
				}
				out[prefix.String()] = append(out[prefix.String()], rt)
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// WaitFor polls f for up to 20 s, then fails the test with what f said
// last.
func WaitFor(t testing.TB, what string, f func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		ok, s := f()
		if ok {
			return
		}
		last = s
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not within 20 s; last: %s", what, last)
}
