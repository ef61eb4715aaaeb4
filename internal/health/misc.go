package health

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/govs/govs/internal/notify"
)

// miscChecker is MISC_CHECK: run a program; exit 0 passes, 1 fails, and
// with misc_dynamic 2..255 passes and sets the weight to status-2.
type miscChecker struct {
	s       Spec
	scripts *notify.Runner
}

func newMisc(s Spec, scripts *notify.Runner) *miscChecker {
	return &miscChecker{s: s, scripts: scripts}
}

func (c *miscChecker) Check(ctx context.Context) Result {
	m := c.s.Misc
	cmd := notify.Command{Path: m.Path, Args: ExpandArgs(m.Args, c.s.Target), User: m.User, Group: m.Group}
	out, err := c.scripts.Run(ctx, cmd)
	switch {
	case out.TimedOut:
		return Result{Err: fmt.Errorf("misc_check: %w", err)}
	case !out.Started:
		return Result{Err: fmt.Errorf("misc_check: %w", err)}
	case out.ExitCode == 0:
		return Result{Msg: "exit 0"}
	case out.ExitCode == 1 || !m.Dynamic:
		var ee *notify.ExitError
		if errors.As(err, &ee) {
			return Result{Err: fmt.Errorf("misc_check: %w", err)}
		}
		return Result{Err: fmt.Errorf("misc_check: exit status %d", out.ExitCode)}
	default:
		w := out.ExitCode - 2
		return Result{Msg: "exit " + strconv.Itoa(out.ExitCode), Weight: &w}
	}
}

// ExpandArgs replaces %h with the real server address and %p with its
// port in every argument (Piranha's %h token; %p is a govs addition).
func ExpandArgs(args []string, target netip.AddrPort) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.Contains(a, "%") {
			a = strings.ReplaceAll(a, "%h", target.Addr().String())
			a = strings.ReplaceAll(a, "%p", strconv.Itoa(int(target.Port())))
		}
		out[i] = a
	}
	return out
}
