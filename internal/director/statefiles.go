package director

import (
	"context"
	"time"

	"github.com/govs/govs/internal/statefiles"
)

// StateFilesInput is what keepalived's state files (keepalived.data,
// .stats, .json) show of the director now.
func (d *Director) StateFilesInput(ctx context.Context) (*statefiles.Input, error) {
	st, err := d.State(ctx)
	if err != nil {
		return nil, err
	}
	in := &statefiles.Input{Now: time.Now(), Config: d.Config(), State: st}
	if d.node != nil {
		in.VRRP = d.node.Dump()
	}
	return in, nil
}
