package health

import (
	"context"
	"fmt"
	"time"

	"github.com/govs/govs/internal/notify"
)

// Result is the outcome of one check attempt.
type Result struct {
	Err      error         // nil when the server passed
	Duration time.Duration // time the attempt took
	Msg      string        // short detail on success (e.g. "HTTP 200")
	// Weight is set by dynamic checkers only. MISC_CHECK with misc_dynamic:
	// the weight the exit status asks for (status-2). FILE_CHECK: the value
	// read times the multiplier, to be added to the configured weight.
	Weight *int
}

// OK reports whether the attempt passed.
func (r Result) OK() bool { return r.Err == nil }

// Checker performs single check attempts. Check honours ctx's deadline
// and cancellation, never logs, and is safe to call again after it
// returned (calls are never concurrent for one Checker).
type Checker interface {
	Check(ctx context.Context) Result
}

// CheckerFunc adapts a function to Checker.
type CheckerFunc func(ctx context.Context) Result

// Check calls f.
func (f CheckerFunc) Check(ctx context.Context) Result { return f(ctx) }

// Options are the process-wide settings checkers need.
type Options struct {
	// Scripts runs MISC_CHECK and send_program commands (script security,
	// default user). Nil means a notify.Runner with default settings.
	Scripts *notify.Runner
	// HeloName is the default SMTP_CHECK HELO name (default: host name).
	HeloName string
	// BFD tells the state of the sessions BFD_CHECK follows; without it
	// they are down.
	BFD BFDState
}

// BFDState tells whether a BFD session is Up (bfd.Daemon).
type BFDState interface {
	Up(name string) (up, known bool)
}

// New builds the Checker for spec. spec must have had Defaults applied and
// passed Validate.
func New(spec Spec, opts Options) (Checker, error) {
	if opts.Scripts == nil {
		opts.Scripts = &notify.Runner{}
	}
	var (
		c   Checker
		err error
	)
	switch spec.Kind {
	case TCP:
		c = newTCP(spec)
	case HTTPGet, SSLGet:
		c, err = newHTTP(spec)
	case SendExpect:
		c, err = newSendExpect(spec, opts.Scripts)
	case Misc:
		c = newMisc(spec, opts.Scripts)
	case UDP:
		c, err = newUDP(spec)
	case DNS:
		c, err = newDNS(spec)
	case Ping:
		c = newPing(spec)
	case SMTP:
		c = newSMTP(spec, opts.HeloName)
	case File:
		c = newFile(spec)
	case BFD:
		c = bfdChecker{name: spec.BFDName, state: opts.BFD}
	default:
		err = fmt.Errorf("unknown checker kind %q", spec.Kind)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", spec.Kind, spec.ConnectAddr(), err)
	}
	return timed{c}, nil
}

// timed fills in Result.Duration.
type timed struct{ c Checker }

func (t timed) Check(ctx context.Context) Result {
	start := time.Now()
	r := t.c.Check(ctx)
	if r.Duration == 0 {
		r.Duration = time.Since(start)
	}
	return r
}
