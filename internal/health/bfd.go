package health

import (
	"context"
	"fmt"
	"time"
)

// BFDPollInterval is how often a BFD_CHECK reads its session's state.
const BFDPollInterval = 100 * time.Millisecond

// bfdChecker is BFD_CHECK: the server is up while the BFD session of a
// bfd_instance (to it, or to a router in front of it) is Up.
type bfdChecker struct {
	name  string
	state BFDState
}

func (c bfdChecker) Check(context.Context) Result {
	if c.state == nil {
		return Result{Err: fmt.Errorf("bfd_instance %s: no BFD session runs", c.name)}
	}
	up, known := c.state.Up(c.name)
	switch {
	case !known:
		return Result{Err: fmt.Errorf("bfd_instance %s: no such session", c.name)}
	case !up:
		return Result{Err: fmt.Errorf("bfd_instance %s: session not up", c.name)}
	}
	return Result{Msg: "bfd_instance " + c.name + " up"}
}
