package xdp

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// onlineCPUsFile lists the CPUs online, as ranges ("0-3,5").
const onlineCPUsFile = "/sys/devices/system/cpu/online"

// sweepCPUs is the number of CPU blocks of the flow caches a sweep
// visits (bpf/lb.c, sweep_cpus): the highest online CPU's number plus
// one, at most possible (the blocks the maps have). A virtual machine's
// possible CPUs can be many times its online ones, and a sweep reads
// two lines of every block it visits. When the list cannot be read, all
// possible CPUs.
func sweepCPUs(possible int) int {
	b, err := os.ReadFile(onlineCPUsFile)
	if err != nil {
		return possible
	}
	n, err := cpuListEnd(string(b))
	if err != nil || n > possible {
		return possible
	}
	return n
}

// cpuListEnd parses a kernel CPU list ("0-3,5\n") and returns its
// highest CPU number plus one.
func cpuListEnd(list string) (int, error) {
	list = strings.TrimSpace(list)
	if list == "" {
		return 0, fmt.Errorf("empty CPU list")
	}
	end := 0
	for part := range strings.SplitSeq(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		if !isRange {
			hi = lo
		}
		a, err := strconv.Atoi(lo)
		if err != nil {
			return 0, fmt.Errorf("CPU list %q: %w", list, err)
		}
		z, err := strconv.Atoi(hi)
		if err != nil || z < a || a < 0 {
			return 0, fmt.Errorf("CPU list %q: bad range %q", list, part)
		}
		end = max(end, z+1)
	}
	return end, nil
}
