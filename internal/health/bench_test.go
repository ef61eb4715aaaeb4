package health

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// listenerEnv makes the test binary act as the benchmark's listener
// process, so that accepting connections is not billed to the checker.
const listenerEnv = "GOVS_HEALTH_BENCH_LISTENER"

func TestMain(m *testing.M) {
	if n := os.Getenv(listenerEnv); n != "" {
		benchListener(n)
		return
	}
	os.Exit(m.Run())
}

// benchListener opens n listeners on 127.0.0.1, prints their addresses
// and accepts and closes connections until stdin closes.
func benchListener(n string) {
	var count int
	fmt.Sscan(n, &count)
	var addrs []string
	for range count {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		addrs = append(addrs, ln.Addr().String())
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	fmt.Println(strings.Join(addrs, " "))
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
}

// procCPU returns the user+system CPU time of another process from
// /proc/PID/stat (fields 14 and 15, in clock ticks of 1/100 s).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	var ut, st int64
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// cpuTime returns the user and system CPU time of this process.
func cpuTime() (user, sys time.Duration) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// BenchmarkSupervisorTCP10k runs 10,000 TCP_CHECKs with a 1 s delay_loop
// (10,000 checks per second) against local listeners in another process
// for a fixed period and reports the CPU the checking process used.
// Run with -benchtime=1x; the period is GOVS_BENCH_SECONDS (default 10),
// the number of servers GOVS_BENCH_SERVERS (default 10,000): a round
// starts delay_loop after the previous one ended, so the rate is
// servers/(1 s + round time).
func BenchmarkSupervisorTCP10k(b *testing.B) {
	servers, seconds := 10000, 10
	if s := os.Getenv("GOVS_BENCH_SECONDS"); s != "" {
		fmt.Sscan(s, &seconds)
	}
	if s := os.Getenv("GOVS_BENCH_SERVERS"); s != "" {
		fmt.Sscan(s, &servers)
	}
	cmd, targets := startBenchListener(b)
	var checks, failures atomic.Int64
	var firstFailure atomic.Value
	sup := NewSupervisor(SupervisorConfig{
		MaxInFlight: 256,
		NewChecker: func(s Spec) (Checker, error) {
			c, err := New(s, Options{})
			if err != nil {
				return nil, err
			}
			return CheckerFunc(func(ctx context.Context) Result {
				r := c.Check(ctx)
				checks.Add(1)
				if r.Err != nil {
					failures.Add(1)
					firstFailure.CompareAndSwap(nil, r.Err.Error())
				}
				return r
			}), nil
		},
	})
	list := make([]Server, servers)
	for i := range list {
		list[i] = Server{ID: fmt.Sprint(i), Weight: 1, Checks: []Spec{{
			Kind: TCP, Target: targets[i%len(targets)],
			DelayLoop: time.Second, ConnectTimeout: 2 * time.Second, Warmup: durp(time.Second),
		}}}
	}
	if err := sup.Update(list); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- sup.Run(ctx) }()
	go func() {
		for range sup.Transitions() {
		}
	}()
	b.ResetTimer()
	for b.Loop() {
		time.Sleep(2 * time.Second) // warmup spreads the first round
		l0 := procCPU(cmd.Process.Pid)
		u0, s0 := cpuTime()
		n0, f0, t0 := checks.Load(), failures.Load(), time.Now()
		time.Sleep(time.Duration(seconds) * time.Second)
		u1, s1 := cpuTime()
		l1 := procCPU(cmd.Process.Pid)
		n1, f1, t1 := checks.Load(), failures.Load(), time.Now()
		c0, c1 := u0+s0, u1+s1
		wall := t1.Sub(t0).Seconds()
		b.ReportMetric(float64(n1-n0)/wall, "checks/s")
		b.ReportMetric((c1-c0).Seconds()/wall, "cores")
		b.ReportMetric(float64((c1-c0).Microseconds())/float64(n1-n0), "cpu-µs/check")
		b.ReportMetric((u1-u0).Seconds()/wall, "user-cores")
		b.ReportMetric((s1-s0).Seconds()/wall, "sys-cores")
		b.ReportMetric((l1-l0).Seconds()/wall, "listener-cores")
		b.ReportMetric(float64(f1-f0), "failures")
	}
	b.StopTimer()
	if f := firstFailure.Load(); f != nil {
		b.Logf("first failure: %s", f)
	}
	cancel()
	<-done
}

// startBenchListener starts the listener process and returns it with its
// addresses; it is stopped when the benchmark ends.
func startBenchListener(b *testing.B) (*exec.Cmd, []netip.AddrPort) {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), listenerEnv+"=8")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.HasPrefix(line, "error") {
		b.Fatalf("listener: %q %v", line, err)
	}
	var targets []netip.AddrPort
	for _, a := range strings.Fields(line) {
		targets = append(targets, netip.MustParseAddrPort(a))
	}
	return cmd, targets
}

// BenchmarkTCPCheck measures one TCP_CHECK attempt on its own (no
// supervisor), against the listener process.
func BenchmarkTCPCheck(b *testing.B) {
	_, targets := startBenchListener(b)
	c, err := New(Spec{Kind: TCP, Target: targets[0]}.Defaults(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	u0, s0 := cpuTime()
	n := 0
	for b.Loop() {
		actx, cancel := context.WithTimeout(ctx, time.Second)
		if r := c.Check(actx); r.Err != nil {
			b.Fatal(r.Err)
		}
		cancel()
		n++
	}
	u1, s1 := cpuTime()
	b.ReportMetric(float64((u1-u0).Microseconds())/float64(n), "user-µs/check")
	b.ReportMetric(float64((s1-s0).Microseconds())/float64(n), "sys-µs/check")
}
