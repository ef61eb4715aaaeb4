package xdp

import "testing"

// TestCPUListEnd: the kernel's CPU lists ("0-3,5") give their highest
// CPU number plus one; malformed ones are errors.
func TestCPUListEnd(t *testing.T) {
	for _, c := range []struct {
		list string
		want int
	}{{"0\n", 1}, {"0-3", 4}, {"0-3,5", 6}, {"0,2-7\n", 8}, {"4-5,0-1", 6}} {
		if got, err := cpuListEnd(c.list); err != nil || got != c.want {
			t.Errorf("cpuListEnd(%q) = %d, %v; want %d", c.list, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "\n", "a", "3-1", "0-", "-1", "0,,1"} {
		if got, err := cpuListEnd(bad); err == nil {
			t.Errorf("cpuListEnd(%q) = %d, want an error", bad, got)
		}
	}
}
