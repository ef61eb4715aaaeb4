package lvscf

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/govs/govs/internal/config"
)

// Level says how much a report line matters.
type Level int

const (
	// Note records a mapping decision: nothing is lost.
	Note Level = iota
	// Warning means something in lvs.cf was not carried over, or carried
	// over with a different meaning; the output is still usable.
	Warning
	// Error means the file cannot be converted faithfully; the output must
	// not be used.
	Error
)

func (l Level) String() string {
	switch l {
	case Warning:
		return "warning"
	case Error:
		return "error"
	}
	return "note"
}

// Item is one line of the import report.
type Item struct {
	Pos   config.Pos
	Level Level
	Msg   string
}

// String renders the item as FILE:LINE: LEVEL: MESSAGE (FILE: LEVEL:
// MESSAGE when it concerns the file as a whole).
func (it Item) String() string {
	where := it.Pos.File
	if where == "" {
		where = "-"
	}
	if it.Pos.Line > 0 {
		where += ":" + strconv.Itoa(it.Pos.Line)
	}
	return fmt.Sprintf("%s: %s: %s", where, it.Level, it.Msg)
}

// Report is the list of mapping decisions of one import, in line order.
type Report []Item

// HasErrors reports whether any item is an error.
func (r Report) HasErrors() bool {
	for _, it := range r {
		if it.Level == Error {
			return true
		}
	}
	return false
}

// Count returns how many items have level l.
func (r Report) Count(l Level) int {
	n := 0
	for _, it := range r {
		if it.Level == l {
			n++
		}
	}
	return n
}

// String renders one item per line.
func (r Report) String() string {
	var b strings.Builder
	for _, it := range r {
		b.WriteString(it.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// sort orders items by line, keeping the order of items on one line.
func (r Report) sort() {
	sort.SliceStable(r, func(i, j int) bool { return r[i].Pos.Line < r[j].Pos.Line })
}

// fromDiagnostics turns parser diagnostics into report items.
func fromDiagnostics(ds config.Diagnostics) Report {
	out := make(Report, 0, len(ds))
	for _, d := range ds {
		l := Warning
		if d.Severity == config.Error {
			l = Error
		}
		out = append(out, Item{Pos: d.Pos, Level: l, Msg: d.Msg})
	}
	return out
}
