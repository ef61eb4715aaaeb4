package sched

import (
	"syscall"
	"time"
)

// threadCPU is the CPU time (user + system) of the calling OS thread. On a
// machine shared with other work it measures a benchmark's own cost where
// wall-clock ns/op also counts time spent waiting for a core.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
