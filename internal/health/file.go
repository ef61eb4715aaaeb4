package health

import (
	"context"
	"fmt"
	"os"

	"github.com/govs/govs/internal/trackfile"
)

// fileChecker is FILE_CHECK: read a number from a file (written by an
// operator or a tool, keepalived's track_file). With multiplier 0 a
// non-zero value fails the server. Otherwise value×multiplier (negated
// with reverse) is the weight adjustment: the server fails when it takes
// the configured weight to 0 or below (the supervisor checks that), and
// with dynamic the adjustment is added to the weight.
//
// A number outside 32 bits is ignored and the last value kept (0 before
// any), as keepalived 2.2.7 does ("Invalid number ... - ignoring").
type fileChecker struct {
	s    Spec
	last int64 // the last value read in range
}

func newFile(s Spec) *fileChecker { return &fileChecker{s: s} }

func (c *fileChecker) Check(context.Context) Result {
	f := c.s.File
	b, err := os.ReadFile(f.Path)
	if err != nil {
		return Result{Err: fmt.Errorf("track_file: %w", err)}
	}
	// as keepalived reads it (strtol with base 0: "2.5" is 2, "0x10"
	// 16, text 0)
	note := ""
	if n, ok := trackfile.Int(b); ok {
		c.last = int64(n)
	} else {
		note = fmt.Sprintf(" (the file's number %d is outside 32 bits: ignored, as keepalived)", trackfile.Value(b))
	}
	v := c.last
	mult := int64(*f.Weight)
	if mult == 0 {
		// a non-zero value fails; with reverse a zero one does, as
		// keepalived 2.2.7's update_track_file_status
		if (v != 0) != f.Reverse {
			return Result{Err: fmt.Errorf("track_file %s: value %d (weight 0%s)%s", f.Path, v, map[bool]string{true: " reverse"}[f.Reverse], note)}
		}
		return Result{Msg: fmt.Sprintf("value %d%s", v, note)}
	}
	if f.Reverse {
		mult = -mult
	}
	adj := v * mult
	if adj > 1<<31-1 {
		adj = 1<<31 - 1
	}
	if adj < -(1 << 31) {
		adj = -(1 << 31)
	}
	w := int(adj)
	return Result{Msg: fmt.Sprintf("value %d%s", v, note), Weight: &w}
}
