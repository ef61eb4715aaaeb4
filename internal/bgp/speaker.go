// Package bgp announces the addresses of virtual services to routers over
// BGP, so that several directors, all active, share the traffic of one
// virtual address by equal-cost multipath (ECMP). It speaks BGP through
// GoBGP's server library, run in the process: no daemon, no gRPC port.
//
// The director tells the Speaker which host routes (/32, /128) to announce
// (SetRoutes) whenever the set of virtual addresses that are up changes;
// the Speaker keeps the sessions and adds or withdraws the difference.
package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// Settings are the speaker's configuration (the govs_bgp block).
type Settings struct {
	LocalAS uint32
	// RouterID is the BGP identifier; invalid: the address this host
	// would use to reach the first IPv4 neighbor.
	RouterID netip.Addr
	// ListenPort also accepts sessions on that port (0: connect only).
	ListenPort int
	Neighbors  []Neighbor
	// NextHop4 and NextHop6 replace the session's own address as the
	// next hop of IPv4 and IPv6 routes (invalid: next hop self).
	NextHop4, NextHop6 netip.Addr
	Communities        []uint32
	MED, LocalPref     *uint32
	// Prepend adds the local AS this many more times to the AS path.
	Prepend int
}

// Neighbor is one router.
type Neighbor struct {
	Address      netip.Addr
	RemoteAS     uint32
	LocalAddress netip.Addr // invalid: the kernel's choice
	Port         uint16     // 0: 179
	Password     string     // TCP MD5 (RFC 2385)
	Passive      bool
	Multihop     int // eBGP TTL; 0: directly connected
	// HoldTime, Keepalive and ConnectRetry: 0 takes 90 s, a third of
	// the hold time, and 5 s.
	HoldTime, Keepalive, ConnectRetry time.Duration
	// BFD runs single-hop BFD with the neighbor (UDP 3784): a transmit
	// and receive interval (0: 300 ms) and a detection multiplier (0: 3).
	BFD           bool
	BFDInterval   time.Duration
	BFDMultiplier int
}

// Defaults of the timers.
const (
	DefaultHoldTime      = 90 * time.Second
	DefaultConnectRetry  = 5 * time.Second
	DefaultBFDInterval   = 300 * time.Millisecond
	DefaultBFDMultiplier = 3
)

func (n Neighbor) timers() (hold, keepalive, retry time.Duration) {
	hold, keepalive, retry = n.HoldTime, n.Keepalive, n.ConnectRetry
	if hold == 0 {
		hold = DefaultHoldTime
	}
	if keepalive == 0 {
		keepalive = hold / 3
	}
	if retry == 0 {
		retry = DefaultConnectRetry
	}
	return
}

// family is the neighbor's address family, the only one its session
// carries: IPv4 routes go to IPv4 neighbors, IPv6 routes to IPv6 ones.
func (n Neighbor) family() bgp.Family {
	if n.Address.Is4() {
		return bgp.RF_IPv4_UC
	}
	return bgp.RF_IPv6_UC
}

// Speaker holds the BGP sessions and the routes announced on them.
type Speaker struct {
	log *slog.Logger

	mu      sync.Mutex
	srv     *server.BgpServer // nil until Configure, and after Close
	set     Settings          // in force
	routes  map[netip.Prefix]bool
	lastErr string
	closed  bool
	// derivedID: set.RouterID was derived (no router_id), and is kept
	// as long as the server runs
	derivedID bool
	unwatch   context.CancelFunc

	// dmu guards lastDown and peerState: GoBGP's event goroutine writes it, and must
	// never wait for mu (held around calls into GoBGP)
	dmu       sync.Mutex
	lastDown  map[string]string
	peerState map[string]bgp.FSMState
}

// New returns a Speaker with no session: Configure starts it.
func New(log *slog.Logger) *Speaker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Speaker{log: log, routes: map[netip.Prefix]bool{}, lastDown: map[string]string{}, peerState: map[string]bgp.FSMState{}}
}

// globalSame reports whether a and b start the same BGP server: a change
// of AS, identifier or listening port restarts every session.
func globalSame(a, b Settings) bool {
	return a.LocalAS == b.LocalAS && a.RouterID == b.RouterID && a.ListenPort == b.ListenPort
}

func attrsSame(a, b Settings) bool {
	eq := func(x, y *uint32) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return a.NextHop4 == b.NextHop4 && a.NextHop6 == b.NextHop6 && slices.Equal(a.Communities, b.Communities) &&
		eq(a.MED, b.MED) && eq(a.LocalPref, b.LocalPref) && a.Prepend == b.Prepend
}

// Configure starts the speaker or changes its settings. Sessions whose
// neighbor settings did not change stay up; a new AS, router ID or
// listening port restarts them all. Announced routes are kept (and sent
// again when their attributes changed).
func (s *Speaker) Configure(ctx context.Context, set Settings) error {
	if set.LocalAS == 0 {
		return errors.New("bgp: local AS is 0")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("bgp: speaker closed")
	}
	derived := !set.RouterID.IsValid()
	if derived && s.srv != nil && s.derivedID {
		// the identifier taken at start stays: deriving it again could
		// restart every session when a route changed
		set.RouterID = s.set.RouterID
	} else if derived {
		id, err := defaultRouterID(set.Neighbors)
		if err != nil {
			s.noteErr(err)
			return err
		}
		set.RouterID = id
	}
	if s.srv != nil && globalSame(s.set, set) {
		return s.reconfigure(ctx, set)
	}
	if s.srv != nil {
		s.log.Info("bgp: restarting every session (local AS, router ID or listen port changed)")
		s.stopServer(ctx)
	}
	srv := server.NewBgpServer(server.LoggerOption(s.log.With("component", "gobgp"), nil))
	go srv.Serve()
	port := int32(set.ListenPort)
	if port == 0 {
		port = -1 // GoBGP: do not listen
	}
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: set.LocalAS, RouterId: set.RouterID.String(), ListenPort: port,
	}}); err != nil {
		srv.Stop()
		err = fmt.Errorf("bgp: start: %w", err)
		s.noteErr(err)
		return err
	}
	if err := importNothing(ctx, srv); err != nil {
		srv.Stop()
		err = fmt.Errorf("bgp: start: %w", err)
		s.noteErr(err)
		return err
	}
	wctx, cancel := context.WithCancel(context.Background())
	if err := srv.WatchEvent(wctx, server.WatchEventMessageCallbacks{OnPeerUpdate: s.peerEvent}, server.WatchPeer()); err != nil {
		s.log.Warn("bgp: no session events (the last-down reasons will be missing)", "err", err)
	}
	s.srv, s.unwatch, s.derivedID = srv, cancel, derived
	s.set = Settings{LocalAS: set.LocalAS, RouterID: set.RouterID, ListenPort: set.ListenPort}
	s.lastErr = ""
	return s.reconfigure(ctx, set)
}

// importNothing makes the server reject every route its neighbors send:
// a director originates its routes and uses none, and must never pass a
// router's routes on to another router (with the director as the next
// hop). A global import policy also sees locally originated paths, so
// the statement matches routes from a neighbor address only.
func importNothing(ctx context.Context, srv *server.BgpServer) error {
	const set, pol = "govs-any-neighbor", "govs-import-nothing"
	if err := srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: &api.DefinedSet{
		DefinedType: api.DefinedType_DEFINED_TYPE_NEIGHBOR, Name: set, List: []string{"0.0.0.0/0", "::/0"},
	}}); err != nil {
		return fmt.Errorf("neighbor set: %w", err)
	}
	if err := srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: &api.Policy{Name: pol, Statements: []*api.Statement{{
		Name:       pol + "-all",
		Conditions: &api.Conditions{NeighborSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: set}},
		Actions:    &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_REJECT},
	}}}}); err != nil {
		return fmt.Errorf("import policy: %w", err)
	}
	if err := srv.AddPolicyAssignment(ctx, &api.AddPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: "global", Direction: api.PolicyDirection_POLICY_DIRECTION_IMPORT,
		Policies: []*api.Policy{{Name: pol}}, DefaultAction: api.RouteAction_ROUTE_ACTION_ACCEPT,
	}}); err != nil {
		return fmt.Errorf("import policy: %w", err)
	}
	return nil
}

// peerEvent records why a session that was established went down
// (called on GoBGP's event goroutine).
func (s *Speaker) peerEvent(ev *apiutil.WatchEventMessage_PeerEvent, _ time.Time) {
	st := ev.Peer.State
	addr := st.NeighborAddress.String()
	s.dmu.Lock()
	was := s.peerState[addr]
	s.peerState[addr] = st.SessionState
	down := was == bgp.BGP_FSM_ESTABLISHED && st.SessionState != bgp.BGP_FSM_ESTABLISHED
	why := st.DisconnectMessage
	if why == "" {
		why = strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(st.DisconnectReason.String(), "DISCONNECT_REASON_")), "_", " ")
	}
	if down {
		s.lastDown[addr] = time.Now().UTC().Format(time.RFC3339) + " " + why
	}
	s.dmu.Unlock()
	if down {
		s.log.Warn("bgp: session down", "neighbor", addr, "reason", why)
	} else if st.SessionState == bgp.BGP_FSM_ESTABLISHED && was != bgp.BGP_FSM_ESTABLISHED {
		s.log.Info("bgp: session established", "neighbor", addr)
	}
}

// reconfigure applies neighbor and attribute changes to a running
// server whose global settings are set's.
func (s *Speaker) reconfigure(ctx context.Context, set Settings) error {
	var errs []error
	old := map[netip.Addr]Neighbor{}
	for _, n := range s.set.Neighbors {
		old[n.Address] = n
	}
	want := map[netip.Addr]bool{}
	for _, n := range set.Neighbors {
		want[n.Address] = true
	}
	for _, n := range s.set.Neighbors {
		if !want[n.Address] {
			s.forget(n.Address)
			if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: n.Address.String()}); err != nil {
				errs = append(errs, fmt.Errorf("bgp: remove neighbor %s: %w", n.Address, err))
			}
		}
	}
	// inForce: the neighbors the server has now, so that one that
	// could not be added is tried again by the next Configure
	var inForce []Neighbor
	for _, n := range set.Neighbors {
		if o, ok := old[n.Address]; ok {
			if o == n {
				inForce = append(inForce, n)
				continue
			}
			if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: n.Address.String()}); err != nil {
				errs = append(errs, fmt.Errorf("bgp: change neighbor %s: %w", n.Address, err))
				inForce = append(inForce, o)
				continue
			}
		}
		if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: peerOf(n)}); err != nil {
			errs = append(errs, fmt.Errorf("bgp: neighbor %s: %w", n.Address, err))
			continue
		}
		inForce = append(inForce, n)
	}
	resend := !attrsSame(s.set, set)
	s.set = set
	s.set.Neighbors = inForce
	if resend && len(s.routes) > 0 {
		var all []netip.Prefix
		for p := range s.routes {
			all = append(all, p)
		}
		if err := s.addPaths(all); err != nil {
			errs = append(errs, err)
		}
	}
	err := errors.Join(errs...)
	s.noteErr(err)
	return err
}

func peerOf(n Neighbor) *api.Peer {
	hold, ka, retry := n.timers()
	afi := api.Family_AFI_IP
	if !n.Address.Is4() {
		afi = api.Family_AFI_IP6
	}
	p := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: n.Address.String(), PeerAsn: n.RemoteAS, AuthPassword: n.Password},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime: uint64(hold / time.Second), KeepaliveInterval: uint64(ka / time.Second), ConnectRetry: uint64(retry / time.Second),
			// after GoBGP resets the session itself (BFD down: a Cease,
			// administrative reset) it is tried again after the connect
			// retry, not GoBGP's 30 s; other failures wait GoBGP's 5 s
			IdleHoldTimeAfterReset: uint64(max(retry, time.Second) / time.Second),
		}},
		Transport: &api.Transport{PassiveMode: n.Passive, RemotePort: uint32(n.Port)},
		AfiSafis: []*api.AfiSafi{{Config: &api.AfiSafiConfig{
			Family: &api.Family{Afi: afi, Safi: api.Family_SAFI_UNICAST}, Enabled: true,
		}}},
	}
	if n.LocalAddress.IsValid() {
		p.Transport.LocalAddress = n.LocalAddress.String()
	}
	if n.Multihop > 0 {
		p.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(n.Multihop)}
	}
	if n.BFD {
		iv, mult := n.BFDInterval, n.BFDMultiplier
		if iv == 0 {
			iv = DefaultBFDInterval
		}
		if mult == 0 {
			mult = DefaultBFDMultiplier
		}
		us := uint32(iv / time.Microsecond)
		p.Bfd = &api.BfdPeerConfig{Enabled: true, Port: 3784, DesiredMinimumTxInterval: us, RequiredMinimumReceive: us, DetectionMultiplier: uint32(mult)}
	}
	return p
}

// defaultRouterID is the address this host would send from to the first
// IPv4 neighbor (its local_address when set). Finding it sends nothing:
// a UDP socket is connected, which only picks the route.
func defaultRouterID(ns []Neighbor) (netip.Addr, error) {
	for _, n := range ns {
		if !n.Address.Is4() {
			continue
		}
		if n.LocalAddress.Is4() {
			return n.LocalAddress, nil
		}
		c, err := net.Dial("udp4", netip.AddrPortFrom(n.Address, 179).String())
		if err != nil {
			continue
		}
		a := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr()
		c.Close()
		if a.Is4() && !a.IsUnspecified() {
			return a, nil
		}
	}
	return netip.Addr{}, errors.New("bgp: no router_id, and no route to an IPv4 neighbor to take one from: set router_id in govs_bgp")
}

// SetRoutes makes the announced routes exactly prefixes: new ones are
// announced, missing ones withdrawn.
func (s *Speaker) SetRoutes(prefixes []netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return errors.New("bgp: not started")
	}
	want := map[netip.Prefix]bool{}
	var add []netip.Prefix
	for _, p := range prefixes {
		p = p.Masked()
		if want[p] {
			continue
		}
		want[p] = true
		if !s.routes[p] {
			add = append(add, p)
		}
	}
	var del []netip.Prefix
	for p := range s.routes {
		if !want[p] {
			del = append(del, p)
		}
	}
	var errs []error
	if len(del) > 0 {
		slices.SortFunc(del, netip.Prefix.Compare)
		paths := make([]*apiutil.Path, 0, len(del))
		for _, p := range del {
			paths = append(paths, s.path(p, true))
		}
		if err := s.srv.DeletePath(apiutil.DeletePathRequest{Paths: paths}); err != nil {
			errs = append(errs, fmt.Errorf("bgp: withdraw: %w", err))
		} else {
			for _, p := range del {
				delete(s.routes, p)
			}
			s.log.Info("bgp: withdrawn", "routes", prefixStrings(del))
		}
	}
	if len(add) > 0 {
		slices.SortFunc(add, netip.Prefix.Compare)
		if err := s.addPaths(add); err != nil {
			errs = append(errs, err)
		} else {
			s.log.Info("bgp: announced", "routes", prefixStrings(add))
		}
	}
	err := errors.Join(errs...)
	s.noteErr(err)
	return err
}

func (s *Speaker) addPaths(ps []netip.Prefix) error {
	paths := make([]*apiutil.Path, 0, len(ps))
	for _, p := range ps {
		paths = append(paths, s.path(p, false))
	}
	if _, err := s.srv.AddPath(apiutil.AddPathRequest{Paths: paths}); err != nil {
		return fmt.Errorf("bgp: announce: %w", err)
	}
	for _, p := range ps {
		s.routes[p] = true
	}
	return nil
}

// path builds the route for prefix p with the configured attributes.
func (s *Speaker) path(p netip.Prefix, withdraw bool) *apiutil.Path {
	nlri, _ := bgp.NewIPAddrPrefix(p)
	fam := bgp.RF_IPv4_UC
	nh := s.set.NextHop4
	if !p.Addr().Is4() {
		fam = bgp.RF_IPv6_UC
		nh = s.set.NextHop6
	}
	if !nh.IsValid() {
		// unspecified: GoBGP puts the session's local address
		nh = netip.IPv4Unspecified()
		if fam == bgp.RF_IPv6_UC {
			nh = netip.IPv6Unspecified()
		}
	}
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	if fam == bgp.RF_IPv4_UC {
		a, _ := bgp.NewPathAttributeNextHop(nh)
		attrs = append(attrs, a)
	} else {
		a, _ := bgp.NewPathAttributeMpReachNLRI(fam, []bgp.PathNLRI{{NLRI: nlri}}, nh)
		attrs = append(attrs, a)
	}
	if s.set.Prepend > 0 {
		as := make([]uint32, s.set.Prepend)
		for i := range as {
			as[i] = s.set.LocalAS
		}
		attrs = append(attrs, bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, as)}))
	}
	if len(s.set.Communities) > 0 {
		attrs = append(attrs, bgp.NewPathAttributeCommunities(s.set.Communities))
	}
	if s.set.MED != nil {
		attrs = append(attrs, bgp.NewPathAttributeMultiExitDisc(*s.set.MED))
	}
	if s.set.LocalPref != nil {
		attrs = append(attrs, bgp.NewPathAttributeLocalPref(*s.set.LocalPref))
	}
	return &apiutil.Path{Family: fam, Nlri: nlri, Attrs: attrs, Withdrawal: withdraw, Age: time.Now().Unix()}
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// noteErr records the outcome of the last operation: its error, or
// none when it succeeded (an error fixed since is not shown).
func (s *Speaker) noteErr(err error) {
	if err == nil {
		s.lastErr = ""
		return
	}
	s.lastErr = err.Error()
	s.log.Warn("bgp", "err", err)
}

// Running reports whether the BGP server runs (Configure started it and
// Close did not stop it).
func (s *Speaker) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv != nil
}

// forget drops the session state of a neighbor being removed, so that
// its removal is not taken for a session that went down.
func (s *Speaker) forget(addr netip.Addr) {
	s.dmu.Lock()
	delete(s.peerState, addr.String())
	delete(s.lastDown, addr.String())
	s.dmu.Unlock()
}

// Close withdraws every route, closes the sessions (a Cease
// notification) and stops. It is safe to call more than once.
func (s *Speaker) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.srv == nil {
		return nil
	}
	s.stopServer(ctx)
	return nil
}

// stopServer withdraws the routes and stops the server (s.mu held).
func (s *Speaker) stopServer(ctx context.Context) {
	if len(s.routes) > 0 {
		var paths []*apiutil.Path
		for p := range s.routes {
			paths = append(paths, s.path(p, true))
		}
		if err := s.srv.DeletePath(apiutil.DeletePathRequest{Paths: paths}); err != nil {
			s.log.Warn("bgp: withdraw at stop", "err", err)
		}
	}
	// Stop sends a Cease to every neighbor (StopBgp), ends Serve and
	// the BFD goroutine every server starts
	s.srv.Stop()
	if s.unwatch != nil {
		s.unwatch()
	}
	s.srv, s.unwatch = nil, nil
	s.dmu.Lock()
	s.peerState, s.lastDown = map[string]bgp.FSMState{}, map[string]string{}
	s.dmu.Unlock()
	s.routes = map[netip.Prefix]bool{}
}

// Status is what the speaker reports.
type Status struct {
	LocalAS   uint32       `json:"local_as"`
	RouterID  string       `json:"router_id"`
	Neighbors []PeerStatus `json:"neighbors"`
	// Routes are the prefixes announced (to every neighbor of their
	// family whose session is up).
	Routes    []string `json:"routes"`
	LastError string   `json:"last_error,omitempty"`
}

// PeerStatus is one session.
type PeerStatus struct {
	Address  string `json:"address"`
	RemoteAS uint32 `json:"remote_as"`
	// State is the session's (idle, connect, active, opensent,
	// openconfirm, established).
	State string `json:"state"`
	// Since is when the session came up (established only).
	Since      time.Time `json:"since,omitzero"`
	Advertised uint64    `json:"advertised"`
	Received   uint64    `json:"received"`
	// LastDown says why the session last went down, if it did.
	LastDown string `json:"last_down,omitempty"`
	// BFD is the BFD session's state (up, down, init, admin-down), ""
	// without BFD.
	BFD string `json:"bfd,omitempty"`
}

// Up reports whether the session is established.
func (p PeerStatus) Up() bool { return p.State == "established" }

var sessionStates = map[api.PeerState_SessionState]string{
	api.PeerState_SESSION_STATE_IDLE:        "idle",
	api.PeerState_SESSION_STATE_CONNECT:     "connect",
	api.PeerState_SESSION_STATE_ACTIVE:      "active",
	api.PeerState_SESSION_STATE_OPENSENT:    "opensent",
	api.PeerState_SESSION_STATE_OPENCONFIRM: "openconfirm",
	api.PeerState_SESSION_STATE_ESTABLISHED: "established",
}

// Status reports the sessions and routes.
func (s *Speaker) Status(ctx context.Context) Status {
	s.mu.Lock()
	srv, set := s.srv, s.set
	st := Status{LocalAS: set.LocalAS, LastError: s.lastErr, Routes: []string{}, Neighbors: []PeerStatus{}}
	if set.RouterID.IsValid() {
		st.RouterID = set.RouterID.String()
	}
	var routes []netip.Prefix
	for p := range s.routes {
		routes = append(routes, p)
	}
	s.mu.Unlock()
	slices.SortFunc(routes, netip.Prefix.Compare)
	st.Routes = prefixStrings(routes)
	if srv == nil {
		return st
	}
	byAddr := map[string]PeerStatus{}
	_ = srv.ListPeer(ctx, &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		ps := PeerStatus{State: "idle"}
		if c := p.GetConf(); c != nil {
			ps.Address, ps.RemoteAS = c.NeighborAddress, c.PeerAsn
		}
		if x := p.GetState(); x != nil {
			if n, ok := sessionStates[x.SessionState]; ok {
				ps.State = n
			}
		}
		if p.GetBfd().GetEnabled() {
			ps.BFD = "down"
			if b := p.GetState().GetBfdState(); b != nil {
				ps.BFD = strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(b.SessionState.String(), "BFD_SESSION_STATE_")), "_", "-")
			}
		}
		if ps.Up() {
			if t := p.GetTimers().GetState().GetUptime(); t != nil {
				ps.Since = t.AsTime()
			}
		}
		for _, a := range p.GetAfiSafis() {
			if x := a.GetState(); x != nil {
				ps.Advertised += x.Advertised
				ps.Received += x.Received
			}
		}
		byAddr[ps.Address] = ps
	})
	s.dmu.Lock()
	for a, ps := range byAddr {
		ps.LastDown = s.lastDown[a]
		byAddr[a] = ps
	}
	s.dmu.Unlock()
	for _, n := range set.Neighbors {
		ps, ok := byAddr[n.Address.String()]
		if !ok {
			ps = PeerStatus{Address: n.Address.String(), RemoteAS: n.RemoteAS, State: "idle"}
		}
		st.Neighbors = append(st.Neighbors, ps)
	}
	return st
}

// String renders a neighbor for logs ("10.0.0.1 AS 65000").
func (n Neighbor) String() string {
	return n.Address.String() + " AS " + strconv.FormatUint(uint64(n.RemoteAS), 10)
}
