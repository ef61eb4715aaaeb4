package health_test

import (
	"fmt"

	"github.com/govs/govs/internal/health"
)

func ExampleServiceState() {
	quorum := 2
	ss := health.NewServiceState(health.ServiceSpec{
		Quorum: &quorum,
		Sorry:  &health.SorryServer{ID: "sorry"},
	})
	for _, states := range [][]health.RealServerState{
		{{ID: "rs1", Up: true, Weight: 1}, {ID: "rs2", Up: true, Weight: 1, InhibitOnFailure: true}},
		{{ID: "rs1", Up: true, Weight: 1}, {ID: "rs2", Up: false, Weight: 1, InhibitOnFailure: true}},
	} {
		d := ss.Update(states)
		fmt.Println("servers:", d.Servers, "sorry:", d.SorryOn)
		for _, e := range d.Events {
			fmt.Println("event:", e.Kind, e.ID)
		}
	}
	// Output:
	// servers: [{rs1 1 false} {rs2 1 false}] sorry: false
	// servers: [{rs2 0 false} {sorry 1 true}] sorry: true
	// event: server down rs2
	// event: quorum down
}
