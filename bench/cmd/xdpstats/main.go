// Command xdpstats prints the run statistics of the XDP programs attached
// to network devices of the current network namespace: one line per
// distinct program, "id name run_cnt run_time_ns". The kernel counts runs
// and run time only while the sysctl kernel.bpf_stats_enabled is 1.
//
// bench/run.sh runs it in the director's namespace before and after a
// fixed-rate load and reports the mean run time per packet of the
// director's XDP programs (metric xdp_prog_ns).
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// devList is a repeatable -dev flag.
type devList []string

func (d *devList) String() string     { return strings.Join(*d, ",") }
func (d *devList) Set(v string) error { *d = append(*d, v); return nil }

// progStats is the part of a program's information xdpstats prints.
type progStats struct {
	ID        uint32
	Name      string
	RunCount  uint64
	RuntimeNS int64
}

func main() {
	var devs devList
	flag.Var(&devs, "dev", "device whose XDP program to read (repeatable)")
	flag.Parse()
	if len(devs) == 0 {
		fmt.Fprintln(os.Stderr, "usage: xdpstats -dev IF [-dev IF...]")
		os.Exit(2)
	}
	stats, err := collect(devs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "xdpstats:", err)
		os.Exit(1)
	}
	write(os.Stdout, stats)
}

// write prints one line per program.
func write(w io.Writer, stats []progStats) {
	for _, s := range stats {
		name := s.Name
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(w, "%d %s %d %d\n", s.ID, name, s.RunCount, s.RuntimeNS)
	}
}
