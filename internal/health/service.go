package health

// ServiceSpec holds the virtual-server options that decide which real
// servers get traffic.
type ServiceSpec struct {
	// Quorum is the minimum total weight of live real servers for the
	// service to be up (default 1). Hysteresis widens it: the service
	// goes down below Quorum-Hysteresis and up again at
	// Quorum+Hysteresis or more (keepalived semantics).
	Quorum     *int
	Hysteresis int
	// Sorry replaces all real servers while quorum is lost or no real
	// server is up; nil means no sorry server.
	Sorry *SorryServer
	// InitNotifies (rs_init_notifies): a server seen for the first time
	// up gives a ServerUp event with Init set.
	InitNotifies bool
}

// SorryServer is keepalived's sorry_server.
type SorryServer struct {
	ID     string
	Weight int // default 1
	// Inhibit (sorry_server_inhibit) keeps the sorry server in the table
	// with weight 0 while it is not needed, instead of removing it.
	Inhibit bool
}

// RealServerState is one real server's input to ServiceState.
type RealServerState struct {
	ID string
	Up bool
	// Weight is the weight to use while up: the configured weight, or
	// Transition.Weight when a dynamic checker set one.
	Weight int
	// InhibitOnFailure keeps a failed server with weight 0 (quiesced)
	// instead of removing it.
	InhibitOnFailure bool
}

// Effective is a server that belongs in the dataplane with this weight.
type Effective struct {
	ID     string
	Weight int
	Sorry  bool // the sorry server
}

// EventKind is what a ServiceEvent announces.
type EventKind int

// Event kinds: the director runs notify_up/notify_down for server events
// and quorum_up/quorum_down for quorum events, and mails smtp alerts.
const (
	ServerUp EventKind = iota + 1
	ServerDown
	QuorumUp
	QuorumDown
)

func (k EventKind) String() string {
	switch k {
	case ServerUp:
		return "server up"
	case ServerDown:
		return "server down"
	case QuorumUp:
		return "quorum up"
	case QuorumDown:
		return "quorum down"
	}
	return "unknown"
}

// ServiceEvent is a change the director notifies about.
type ServiceEvent struct {
	Kind EventKind
	ID   string // real server, for ServerUp/ServerDown
	// Init: the server is seen for the first time, up (InitNotifies);
	// keepalived runs its notify_up and writes the FIFOs, no mail.
	Init bool
	// LiveWeight is the total weight of live servers after the change.
	LiveWeight int
}

// Decision is the outcome of ServiceState.Update.
type Decision struct {
	Servers    []Effective // in input order, the sorry server last
	SorryOn    bool
	QuorumUp   bool
	LiveWeight int
	Events     []ServiceEvent
}

// ServiceState turns real-server states into the effective server list of
// one virtual service. It is a pure state machine: no I/O, no clock.
type ServiceState struct {
	spec     ServiceSpec
	quorumUp bool
	seen     map[string]bool
	// known are the servers ever seen (InitNotifies): one left out of an
	// update for a while (disabled) is not new when it comes back
	known map[string]bool
}

// NewServiceState starts with quorum up (as keepalived does), so a first
// Update below quorum reports QuorumDown.
func NewServiceState(spec ServiceSpec) *ServiceState {
	return &ServiceState{spec: spec, quorumUp: true, seen: map[string]bool{}, known: map[string]bool{}}
}

// SetSpec changes the options (reload); quorum state and known servers
// are kept.
func (s *ServiceState) SetSpec(spec ServiceSpec) { s.spec = spec }

// Quorum returns the effective quorum.
func (sp ServiceSpec) quorum() int {
	if sp.Quorum == nil {
		return 1
	}
	return *sp.Quorum
}

// Update computes the effective servers for the given states and the
// events since the previous call. A server seen for the first time
// produces no server event, but a ServerUp with Init when it is up and
// the spec has InitNotifies.
func (s *ServiceState) Update(rs []RealServerState) Decision {
	var d Decision
	anyUp := false
	for _, r := range rs {
		if r.Up {
			anyUp = true
			d.LiveWeight += r.Weight
		}
	}
	now := make(map[string]bool, len(rs))
	for _, r := range rs {
		now[r.ID] = r.Up
		was, ok := s.seen[r.ID]
		switch {
		case ok && was != r.Up:
			k := ServerDown
			if r.Up {
				k = ServerUp
			}
			d.Events = append(d.Events, ServiceEvent{Kind: k, ID: r.ID, LiveWeight: d.LiveWeight})
		case !ok && r.Up && s.spec.InitNotifies && !s.known[r.ID]:
			d.Events = append(d.Events, ServiceEvent{Kind: ServerUp, ID: r.ID, LiveWeight: d.LiveWeight, Init: true})
		}
		s.known[r.ID] = true
	}
	s.seen = now

	q, h := s.spec.quorum(), s.spec.Hysteresis
	switch {
	case s.quorumUp && d.LiveWeight < q-h:
		s.quorumUp = false
		d.Events = append(d.Events, ServiceEvent{Kind: QuorumDown, LiveWeight: d.LiveWeight})
	case !s.quorumUp && d.LiveWeight >= q+h:
		s.quorumUp = true
		d.Events = append(d.Events, ServiceEvent{Kind: QuorumUp, LiveWeight: d.LiveWeight})
	}
	d.QuorumUp = s.quorumUp

	sorry := s.spec.Sorry
	d.SorryOn = sorry != nil && (!s.quorumUp || !anyUp)
	for _, r := range rs {
		switch {
		case d.SorryOn:
			if r.InhibitOnFailure {
				d.Servers = append(d.Servers, Effective{ID: r.ID})
			}
		case r.Up:
			d.Servers = append(d.Servers, Effective{ID: r.ID, Weight: r.Weight})
		case r.InhibitOnFailure:
			d.Servers = append(d.Servers, Effective{ID: r.ID})
		}
	}
	if sorry != nil {
		w := sorry.Weight
		if w == 0 {
			w = 1
		}
		switch {
		case d.SorryOn:
			d.Servers = append(d.Servers, Effective{ID: sorry.ID, Weight: w, Sorry: true})
		case sorry.Inhibit:
			d.Servers = append(d.Servers, Effective{ID: sorry.ID, Sorry: true})
		}
	}
	return d
}
