package sched

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

// cpuMeter reports the benchmark goroutine's thread CPU time per
// operation as the extra metric cpu-ns/op (Linux), next to wall-clock
// ns/op. The goroutine is locked to its thread while measuring.
type cpuMeter struct {
	b     *testing.B
	start time.Duration
}

func startCPU(b *testing.B) *cpuMeter {
	runtime.LockOSThread()
	return &cpuMeter{b: b, start: threadCPU()}
}

func (m *cpuMeter) stop() {
	used := threadCPU() - m.start
	runtime.UnlockOSThread()
	if m.b.N > 0 {
		m.b.ReportMetric(float64(used.Nanoseconds())/float64(m.b.N), "cpu-ns/op")
	}
}

// BenchmarkPick measures one Pick for a new flow, servers idle, weights
// 1..5, flows from 1024 random clients to 256 destination addresses.
func BenchmarkPick(b *testing.B) {
	for _, name := range allNames {
		for _, n := range []int{10, 100, 10000} {
			b.Run(fmt.Sprintf("%s/n=%d", name, n), func(b *testing.B) {
				ws := make([]int, n)
				for i := range ws {
					ws[i] = i%5 + 1
				}
				ds := mkDests(ws...)
				s := mustNew(b, name, Options{}, ds)
				flows := randFlows(rand.New(rand.NewPCG(1, uint64(n))), 1024)
				b.ReportAllocs()
				cpu := startCPU(b)
				i := 0
				for b.Loop() {
					s.Pick(flows[i&1023])
					i++
				}
				cpu.stop()
			})
		}
	}
}

// BenchmarkMaglevBuild is the mh table build the Maglev paper reports as
// 1.8 ms for M = 65537 (NSDI'16 §5.3), here with N = 100 servers.
func BenchmarkMaglevBuild(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("M=65537/N=%d", n), func(b *testing.B) {
			ws := make([]int, n)
			for i := range ws {
				ws[i] = 1
			}
			ds := mkDests(ws...)
			b.ReportAllocs()
			cpu := startCPU(b)
			for b.Loop() {
				if _, err := MaglevTable(ds, maglevPaperSize); err != nil {
					b.Fatal(err)
				}
			}
			cpu.stop()
		})
	}
}

// BenchmarkServiceSchedule is Schedule + Release through a Service, with
// and without persistence (100,000 clients, /32 templates).
func BenchmarkServiceSchedule(b *testing.B) {
	for _, persist := range []time.Duration{0, 5 * time.Minute} {
		b.Run(fmt.Sprintf("wlc/n=100/persistence=%v", persist), func(b *testing.B) {
			ws := make([]int, 100)
			for i := range ws {
				ws[i] = 1
			}
			s, err := NewService(ServiceConfig{Scheduler: "wlc", Persistence: persist})
			if err != nil {
				b.Fatal(err)
			}
			s.Update(mkDests(ws...))
			flows := randFlows(rand.New(rand.NewPCG(2, 2)), 1<<17)
			b.ReportAllocs()
			cpu := startCPU(b)
			i := 0
			for b.Loop() {
				f := flows[i&(1<<17-1)]
				if _, err := s.Schedule(f); err != nil {
					b.Fatal(err)
				}
				s.Release(f)
				i++
			}
			cpu.stop()
		})
	}
}
