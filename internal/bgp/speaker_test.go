package bgp

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	pb "github.com/osrg/gobgp/v4/pkg/packet/bgp"

	"github.com/govs/govs/internal/bgp/bgptest"
)

func u32(v uint32) *uint32 { return &v }

func TestSpeakerAnnouncesAndWithdraws(t *testing.T) {
	r := bgptest.NewRouter(t, 65000, 65001, "127.0.0.2")
	sp := New(nil)
	ctx := context.Background()
	set := Settings{
		LocalAS:  65001,
		RouterID: netip.MustParseAddr("10.0.0.2"),
		Neighbors: []Neighbor{{
			Address: netip.MustParseAddr("127.0.0.1"), RemoteAS: 65000, Port: uint16(r.Port),
			LocalAddress: netip.MustParseAddr("127.0.0.2"), HoldTime: 9 * time.Second, ConnectRetry: time.Second,
		}},
		Communities: []uint32{65001<<16 | 100},
		MED:         u32(10),
		Prepend:     1,
	}
	if err := sp.Configure(ctx, set); err != nil {
		t.Fatal(err)
	}
	defer sp.Close(ctx)
	bgptest.WaitFor(t, "session established", func() (bool, string) {
		st := sp.Status(ctx)
		return len(st.Neighbors) == 1 && st.Neighbors[0].Up(), fmt.Sprint(st.Neighbors)
	})

	// an IPv6 route is not sent on the IPv4 session
	if err := sp.SetRoutes([]netip.Prefix{netip.MustParsePrefix("192.0.2.10/32"), netip.MustParsePrefix("192.0.2.11/32"), netip.MustParsePrefix("2001:db8::10/128")}); err != nil {
		t.Fatal(err)
	}
	bgptest.WaitFor(t, "two routes at the router", func() (bool, string) {
		rib := r.RIB(t)
		return len(rib) == 2, fmt.Sprint(rib)
	})
	rt := r.RIB(t)["192.0.2.10/32"][0]
	if rt.NextHop != "127.0.0.2" {
		t.Errorf("next hop %q, want the speaker's session address 127.0.0.2", rt.NextHop)
	}
	if rt.ASPath != "65001 65001" {
		t.Errorf("AS path %q, want \"65001 65001\" (one prepend)", rt.ASPath)
	}
	if !slices.Equal(rt.Communities, []uint32{65001<<16 | 100}) || rt.MED != 10 {
		t.Errorf("communities %v MED %d, want [65001:100] and 10", rt.Communities, rt.MED)
	}
	st := sp.Status(ctx)
	if !slices.Equal(st.Routes, []string{"192.0.2.10/32", "192.0.2.11/32", "2001:db8::10/128"}) {
		t.Errorf("status routes %v", st.Routes)
	}
	bgptest.WaitFor(t, "advertised count", func() (bool, string) {
		st := sp.Status(ctx)
		return st.Neighbors[0].Advertised == 2, fmt.Sprint(st.Neighbors[0])
	})

	// withdraw one
	if err := sp.SetRoutes([]netip.Prefix{netip.MustParsePrefix("192.0.2.11/32")}); err != nil {
		t.Fatal(err)
	}
	bgptest.WaitFor(t, "192.0.2.10 withdrawn", func() (bool, string) {
		rib := r.RIB(t)
		_, ok := rib["192.0.2.11/32"]
		return len(rib) == 1 && ok, fmt.Sprint(rib)
	})

	// new attributes are sent again without a session reset
	set.MED = u32(20)
	set.Communities = nil
	if err := sp.Configure(ctx, set); err != nil {
		t.Fatal(err)
	}
	bgptest.WaitFor(t, "new MED", func() (bool, string) {
		rts := r.RIB(t)["192.0.2.11/32"]
		if len(rts) != 1 {
			return false, fmt.Sprint(rts)
		}
		rt := rts[0]
		return rt.MED == 20 && len(rt.Communities) == 0, fmt.Sprint(rt)
	})
	if st := sp.Status(ctx); !st.Neighbors[0].Up() {
		t.Errorf("session went down on an attribute change: %+v", st.Neighbors[0])
	}

	// Close withdraws everything
	if err := sp.Close(ctx); err != nil {
		t.Fatal(err)
	}
	bgptest.WaitFor(t, "routes gone after Close", func() (bool, string) {
		rib := r.RIB(t)
		return len(rib) == 0, fmt.Sprint(rib)
	})
	if err := sp.SetRoutes(nil); err == nil {
		t.Error("SetRoutes after Close: no error")
	}
}

func TestSpeakerNeighborChanges(t *testing.T) {
	r := bgptest.NewRouter(t, 65000, 65001, "127.0.0.2")
	sp := New(nil)
	ctx := context.Background()
	good := Neighbor{Address: netip.MustParseAddr("127.0.0.1"), RemoteAS: 65000, Port: uint16(r.Port),
		LocalAddress: netip.MustParseAddr("127.0.0.2"), ConnectRetry: time.Second}
	// a wrong remote AS: the router refuses the OPEN
	bad := good
	bad.RemoteAS = 65099
	set := Settings{LocalAS: 65001, RouterID: netip.MustParseAddr("10.0.0.2"), Neighbors: []Neighbor{bad}}
	if err := sp.Configure(ctx, set); err != nil {
		t.Fatal(err)
	}
	defer sp.Close(ctx)
	if err := sp.SetRoutes([]netip.Prefix{netip.MustParsePrefix("192.0.2.10/32")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if st := sp.Status(ctx); st.Neighbors[0].Up() {
		t.Fatalf("session up with the wrong remote AS: %+v", st.Neighbors[0])
	}
	// fixing the neighbor brings the session up, with the routes
	set.Neighbors = []Neighbor{good}
	if err := sp.Configure(ctx, set); err != nil {
		t.Fatal(err)
	}
	bgptest.WaitFor(t, "route after the neighbor was fixed", func() (bool, string) {
		rib := r.RIB(t)
		return len(rib) == 1, fmt.Sprint(rib, sp.Status(ctx).Neighbors)
	})
	// the router ends the session: the speaker says when and why
	r.DropPeer(t, "127.0.0.2")
	bgptest.WaitFor(t, "last-down reason", func() (bool, string) {
		st := sp.Status(ctx)
		return !st.Neighbors[0].Up() && st.Neighbors[0].LastDown != "", fmt.Sprintf("%+v", st.Neighbors[0])
	})
	t.Logf("last down: %s", sp.Status(ctx).Neighbors[0].LastDown)
	// removing the neighbor ends the session: the router drops the route
	set.Neighbors = nil
	if err := sp.Configure(ctx, set); err != nil {
		t.Fatal(err)
	}
	bgptest.WaitFor(t, "route gone with the neighbor", func() (bool, string) {
		rib := r.RIB(t)
		return len(rib) == 0, fmt.Sprint(rib)
	})
	if st := sp.Status(ctx); len(st.Neighbors) != 0 || !slices.Equal(st.Routes, []string{"192.0.2.10/32"}) {
		t.Errorf("status after removing the neighbor: %+v", st)
	}
}

func TestDefaultRouterID(t *testing.T) {
	id, err := defaultRouterID([]Neighbor{{Address: netip.MustParseAddr("::1")}, {Address: netip.MustParseAddr("127.0.0.1")}})
	if err != nil || !id.IsLoopback() || !id.Is4() {
		t.Errorf("router ID toward 127.0.0.1: %v %v", id, err)
	}
	id, err = defaultRouterID([]Neighbor{{Address: netip.MustParseAddr("127.0.0.1"), LocalAddress: netip.MustParseAddr("127.0.0.9")}})
	if err != nil || id != netip.MustParseAddr("127.0.0.9") {
		t.Errorf("router ID with local_address: %v %v", id, err)
	}
	_, err = defaultRouterID([]Neighbor{{Address: netip.MustParseAddr("::1")}})
	if err == nil || !strings.Contains(err.Error(), "set router_id") {
		t.Errorf("IPv6 neighbors only: %v, want an error asking for router_id", err)
	}
}

// TestSpeakerTakesNoRoutes: what a router sends the director is
// rejected by the import policy: it never enters the director's RIB, so
// it is neither used nor passed on to another router.
func TestSpeakerTakesNoRoutes(t *testing.T) {
	r := bgptest.NewRouter(t, 65000, 65001, "127.0.0.2")
	sp := New(nil)
	ctx := context.Background()
	if err := sp.Configure(ctx, Settings{LocalAS: 65001, RouterID: netip.MustParseAddr("10.0.0.2"), Neighbors: []Neighbor{{
		Address: netip.MustParseAddr("127.0.0.1"), RemoteAS: 65000, Port: uint16(r.Port), LocalAddress: netip.MustParseAddr("127.0.0.2"), ConnectRetry: time.Second,
	}}}); err != nil {
		t.Fatal(err)
	}
	defer sp.Close(ctx)
	if err := sp.SetRoutes([]netip.Prefix{netip.MustParsePrefix("192.0.2.10/32")}); err != nil {
		t.Fatal(err)
	}
	r.Announce(t, "198.51.100.0/24")
	bgptest.WaitFor(t, "the router's route received", func() (bool, string) {
		st := sp.Status(ctx)
		return len(st.Neighbors) == 1 && st.Neighbors[0].Received == 1, fmt.Sprint(st.Neighbors)
	})
	list := func(tt api.TableType, name string) map[string]bool {
		out := map[string]bool{}
		err := sp.srv.ListPath(apiutil.ListPathRequest{TableType: tt, Name: name, Family: pb.RF_IPv4_UC, EnableFiltered: true},
			func(p pb.NLRI, paths []*apiutil.Path) {
				for _, x := range paths {
					out[p.String()] = x.Filtered
				}
			})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if in := list(api.TableType_TABLE_TYPE_ADJ_IN, "127.0.0.1"); len(in) != 1 || !in["198.51.100.0/24"] {
		t.Errorf("adj-RIB-in %v: want 198.51.100.0/24 filtered by the import policy", in)
	}
	if rib := list(api.TableType_TABLE_TYPE_GLOBAL, ""); len(rib) != 1 || rib["192.0.2.10/32"] {
		t.Errorf("RIB %v: want only the director's own 192.0.2.10/32", rib)
	}
}

// TestSpeakerIPv6: an IPv6 virtual address goes to an IPv6 neighbor with
// the session's own address as next hop (MP_REACH_NLRI), and an IPv4
// one does not.
func TestSpeakerIPv6(t *testing.T) {
	if l, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	} else {
		l.Close()
	}
	r := bgptest.NewRouterAt(t, "::1", 65000, 65001, "::1")
	sp := New(nil)
	ctx := context.Background()
	if err := sp.Configure(ctx, Settings{LocalAS: 65001, RouterID: netip.MustParseAddr("10.0.0.2"), Neighbors: []Neighbor{{
		Address: netip.MustParseAddr("::1"), RemoteAS: 65000, Port: uint16(r.Port), ConnectRetry: time.Second,
	}}}); err != nil {
		t.Fatal(err)
	}
	defer sp.Close(ctx)
	if err := sp.SetRoutes([]netip.Prefix{netip.MustParsePrefix("2001:db8::10/128"), netip.MustParsePrefix("192.0.2.10/32")}); err != nil {
		t.Fatal(err)
	}
	bgptest.WaitFor(t, "the IPv6 route at the router", func() (bool, string) {
		rts := r.RIB6(t)["2001:db8::10/128"]
		return len(rts) == 1 && rts[0].NextHop == "::1", fmt.Sprint(r.RIB6(t), sp.Status(ctx).Neighbors)
	})
	if v4 := r.RIB(t); len(v4) != 0 {
		t.Errorf("IPv4 routes sent on the IPv6 session: %v", v4)
	}
}
