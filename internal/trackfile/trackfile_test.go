package trackfile

import (
	"math"
	"testing"
)

// TestValue: what keepalived 2.2.7 was seen to read from track files
// (cmd/govs TestTrackFileValuesAsKeepalived), and strtol's edges.
func TestValue(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"5\n", 5}, {"-300\n", -300}, {"  7  \n", 7}, {"8 trailing\n", 8}, {"2.5\n", 2}, {"+4", 4},
		{"abc\n", 0}, {"", 0}, {"-", 0}, {"\t\n-12x", -12},
		{"0x10\n", 16}, {"010\n", 8}, {"-0x1f", -31}, {"0x", 0}, {"0xg", 0}, {"08", 0}, {"0", 0}, {"0755", 493},
		{"99999999999999999999", math.MaxInt64}, {"-99999999999999999999", math.MinInt64},
	} {
		if got := Value([]byte(tc.in)); got != tc.want {
			t.Errorf("%q: %d, want %d", tc.in, got, tc.want)
		}
	}
}

// TestInt: a value that does not fit an int is refused (keepalived 2.2.7
// ignores it and keeps the last one).
func TestInt(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"5", 5, true}, {"2147483647", 1<<31 - 1, true}, {"-2147483648", -1 << 31, true}, {"0x7fffffff", 1<<31 - 1, true},
		{"2147483648", 0, false}, {"-2147483649", 0, false}, {"4294967296", 0, false}, {"99999999999999999999", 0, false},
		{"text", 0, true},
	} {
		if got, ok := Int([]byte(tc.in)); got != tc.want || ok != tc.ok {
			t.Errorf("%q: %d %v, want %d %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
