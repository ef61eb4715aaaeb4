package health

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestServiceState(t *testing.T) {
	type step struct {
		in   []RealServerState
		want Decision
	}
	up := func(id string, w int) RealServerState { return RealServerState{ID: id, Up: true, Weight: w} }
	down := func(id string, w int) RealServerState { return RealServerState{ID: id, Weight: w} }
	inhibit := func(r RealServerState) RealServerState { r.InhibitOnFailure = true; return r }
	sorry := &SorryServer{ID: "sorry"}
	tests := []struct {
		name  string
		spec  ServiceSpec
		steps []step
	}{
		{
			name: "removal and inhibit_on_failure",
			spec: ServiceSpec{},
			steps: []step{
				{in: []RealServerState{up("a", 2), inhibit(up("b", 3))},
					want: Decision{Servers: []Effective{{ID: "a", Weight: 2}, {ID: "b", Weight: 3}}, QuorumUp: true, LiveWeight: 5}},
				{in: []RealServerState{down("a", 2), inhibit(down("b", 3)), up("c", 1)},
					want: Decision{Servers: []Effective{{ID: "b"}, {ID: "c", Weight: 1}}, QuorumUp: true, LiveWeight: 1,
						Events: []ServiceEvent{{Kind: ServerDown, ID: "a", LiveWeight: 1}, {Kind: ServerDown, ID: "b", LiveWeight: 1}}}},
			},
		},
		{
			name: "sorry server when all down",
			spec: ServiceSpec{Quorum: intp(0), Sorry: sorry},
			steps: []step{
				{in: []RealServerState{up("a", 1)},
					want: Decision{Servers: []Effective{{ID: "a", Weight: 1}}, QuorumUp: true, LiveWeight: 1}},
				{in: []RealServerState{inhibit(down("a", 1))},
					want: Decision{Servers: []Effective{{ID: "a"}, {ID: "sorry", Weight: 1, Sorry: true}}, SorryOn: true, QuorumUp: true,
						Events: []ServiceEvent{{Kind: ServerDown, ID: "a"}}}},
			},
		},
		{
			name: "quorum with hysteresis and sorry_server_inhibit",
			spec: ServiceSpec{Quorum: intp(4), Hysteresis: 1, Sorry: &SorryServer{ID: "sorry", Weight: 5, Inhibit: true}},
			steps: []step{
				{in: []RealServerState{up("a", 2), up("b", 2)}, // 4 ≥ 4-1: stays up
					want: Decision{Servers: []Effective{{ID: "a", Weight: 2}, {ID: "b", Weight: 2}, {ID: "sorry", Sorry: true}}, QuorumUp: true, LiveWeight: 4}},
				{in: []RealServerState{up("a", 2), up("b", 1)}, // 3 ≥ 3: still up (hysteresis)
					want: Decision{Servers: []Effective{{ID: "a", Weight: 2}, {ID: "b", Weight: 1}, {ID: "sorry", Sorry: true}}, QuorumUp: true, LiveWeight: 3}},
				{in: []RealServerState{up("a", 2), down("b", 1)}, // 2 < 3: quorum lost, sorry replaces all
					want: Decision{Servers: []Effective{{ID: "sorry", Weight: 5, Sorry: true}}, SorryOn: true, LiveWeight: 2,
						Events: []ServiceEvent{{Kind: ServerDown, ID: "b", LiveWeight: 2}, {Kind: QuorumDown, LiveWeight: 2}}}},
				{in: []RealServerState{up("a", 2), up("b", 2)}, // 4 < 5: still down
					want: Decision{Servers: []Effective{{ID: "sorry", Weight: 5, Sorry: true}}, SorryOn: true, LiveWeight: 4,
						Events: []ServiceEvent{{Kind: ServerUp, ID: "b", LiveWeight: 4}}}},
				{in: []RealServerState{up("a", 2), up("b", 3)}, // 5 ≥ 5: up
					want: Decision{Servers: []Effective{{ID: "a", Weight: 2}, {ID: "b", Weight: 3}, {ID: "sorry", Sorry: true}}, QuorumUp: true, LiveWeight: 5,
						Events: []ServiceEvent{{Kind: QuorumUp, LiveWeight: 5}}}},
			},
		},
		{
			name: "first evaluation below quorum reports quorum down",
			spec: ServiceSpec{},
			steps: []step{
				{in: []RealServerState{down("a", 1)},
					want: Decision{Events: []ServiceEvent{{Kind: QuorumDown}}}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServiceState(tt.spec)
			for i, st := range tt.steps {
				got := s.Update(st.in)
				if diff := cmp.Diff(st.want, got); diff != "" {
					t.Errorf("step %d (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}

// TestServiceStateInitNotifies: with InitNotifies a server first seen up
// gives a ServerUp marked Init; one first seen down gives nothing, and
// later changes are as without it.
func TestServiceStateInitNotifies(t *testing.T) {
	s := NewServiceState(ServiceSpec{InitNotifies: true})
	d := s.Update([]RealServerState{{ID: "a", Up: true, Weight: 1}, {ID: "b", Up: false, Weight: 1}})
	if len(d.Events) != 1 || d.Events[0] != (ServiceEvent{Kind: ServerUp, ID: "a", LiveWeight: 1, Init: true}) {
		t.Fatalf("first update: %+v", d.Events)
	}
	d = s.Update([]RealServerState{{ID: "a", Up: true, Weight: 1}, {ID: "b", Up: true, Weight: 1}})
	if len(d.Events) != 1 || d.Events[0].Kind != ServerUp || d.Events[0].ID != "b" || d.Events[0].Init {
		t.Fatalf("second update: %+v", d.Events)
	}
	// b left out of an update (disabled) and back: not new
	s.Update([]RealServerState{{ID: "a", Up: true, Weight: 1}})
	if d := s.Update([]RealServerState{{ID: "a", Up: true, Weight: 1}, {ID: "b", Up: true, Weight: 1}}); len(d.Events) != 0 {
		t.Fatalf("b back: %+v", d.Events)
	}
	if d := NewServiceState(ServiceSpec{}).Update([]RealServerState{{ID: "a", Up: true, Weight: 1}}); len(d.Events) != 0 {
		t.Fatalf("without InitNotifies: %+v", d.Events)
	}
}
