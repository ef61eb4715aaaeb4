package health

import (
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkLoopbackConnectFloor measures the kernel's own cost of what a
// TCP_CHECK does on loopback — blocking socket, connect, close with
// reset, no Go networking — to separate it from the checker's overhead.
// On loopback the handshake and the reset of both ends run in the
// caller's system calls, so this floor includes the listener's kernel
// side too.
func BenchmarkLoopbackConnectFloor(b *testing.B) {
	cmd, targets := startBenchListener(b)
	_ = cmd
	sa := &unix.SockaddrInet4{Port: int(targets[0].Port()), Addr: targets[0].Addr().As4()}
	var n int
	u0, s0 := cpuTime()
	for b.Loop() {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		if err := unix.Connect(fd, sa); err != nil {
			b.Fatal(err)
		}
		_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
		unix.Close(fd)
		n++
	}
	u1, s1 := cpuTime()
	b.ReportMetric(float64((u1-u0+s1-s0).Microseconds())/float64(n), "cpu-µs/conn")
	b.ReportMetric(float64((s1-s0).Microseconds())/float64(n), "sys-µs/conn")
}
