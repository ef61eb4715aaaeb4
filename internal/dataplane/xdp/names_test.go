package xdp

import (
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// TestNamesMatchProgram: the Go names of exit reasons, events and
// connection states are those of the program's enums (bpf/lb.h), in
// their order. Exits, Events and the connection listing index by
// number, so a reordered enum with unchanged names here would report
// every counter under another's name.
func TestNamesMatchProgram(t *testing.T) {
	spec, err := loadLb()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		enum, prefix, last string
		names              []string
		lower              bool
	}{
		{"exit_reason", "EXIT_", "EXIT_MAX", exitNames[:], true},
		{"event", "EV_", "EV_MAX", eventNames[:], true},
		{"conn_state", "ST_", "ST_MAX", stateNames[:], false},
	} {
		var e *btf.Enum
		if err := spec.Types.TypeByName(c.enum, &e); err != nil {
			t.Fatalf("enum %s: %v", c.enum, err)
		}
		var want []string
		for _, v := range e.Values {
			if v.Name == c.last {
				continue
			}
			if int(v.Value) != len(want) {
				t.Fatalf("enum %s: %s = %d, want %d (values in order from 0)", c.enum, v.Name, v.Value, len(want))
			}
			n := strings.TrimPrefix(v.Name, c.prefix)
			if c.lower {
				n = strings.ToLower(n)
			}
			want = append(want, n)
		}
		if strings.Join(c.names, " ") != strings.Join(want, " ") {
			t.Errorf("Go names of enum %s:\n got %v\nwant %v", c.enum, c.names, want)
		}
	}
}
