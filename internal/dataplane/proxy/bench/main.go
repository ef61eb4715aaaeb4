// Command bench compares the govs userspace proxy dataplane with HAProxy
// in TCP mode on loopback: connections per second (wrk, one request per
// connection) and bulk TCP throughput, alternating the two load balancers
// round by round and reporting medians.
//
//	go run ./internal/dataplane/proxy/bench -rounds 3
//
// The real servers (two Go HTTP-ish servers and two bulk sources) run in
// this process; each load balancer runs as its own process (the proxy is
// this program re-executed with -serve-proxy). Needs haproxy and wrk in
// PATH; uses 127.0.30.0/24, 127.0.31.0/24 and 127.0.32.0/24 only.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/dataplane/proxy"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type config struct {
	rounds      int
	wrkDur      time.Duration
	wrkConns    int
	bulkBytes   int64
	bulkStreams int
	acceptLoops int
	loops       int
	goroutines  bool
	noSplice    bool
	cpuProfile  string
	proxyEnv    string

	withGoroutines bool
	verbose        bool
	only           string
}

func run() error {
	serve := flag.Bool("serve-proxy", false, "internal: run the proxy dataplane")
	svcs := flag.String("services", "", "internal: VIP=RS,RS;VIP=RS,... services to proxy")
	var c config
	flag.IntVar(&c.rounds, "rounds", 3, "rounds of A/B alternation")
	flag.DurationVar(&c.wrkDur, "duration", 5*time.Second, "wrk duration per run")
	flag.IntVar(&c.wrkConns, "connections", 50, "wrk concurrent connections")
	flag.Int64Var(&c.bulkBytes, "bulk-bytes", 2<<30, "bytes per bulk run (split over the streams)")
	flag.IntVar(&c.bulkStreams, "bulk-streams", 1, "parallel bulk TCP streams")
	flag.IntVar(&c.acceptLoops, "accept-loops", 1, "proxy, goroutine engine: accept loops (SO_REUSEPORT sockets) per listener")
	flag.IntVar(&c.loops, "loops", 0, "proxy: event loops (0 = GOMAXPROCS)")
	flag.BoolVar(&c.goroutines, "goroutines", false, "proxy: use the goroutine engine instead of the event loops")
	flag.BoolVar(&c.noSplice, "nosplice", false, "proxy: copy through user space instead of splice")
	flag.StringVar(&c.cpuProfile, "cpuprofile", "", "proxy: write a CPU profile of the proxy process to this file")
	flag.StringVar(&c.only, "only", "", "run only this load balancer (govs-proxy or haproxy)")
	flag.StringVar(&c.proxyEnv, "proxy-env", "", "proxy: extra environment (e.g. GOGC=400), space-separated")
	flag.BoolVar(&c.withGoroutines, "with-goroutine-engine", false, "also measure the proxy's portable goroutine engine")
	flag.BoolVar(&c.verbose, "v", false, "print wrk's latency line of every run")
	flag.Parse()
	if *serve {
		return serveProxy(*svcs, c)
	}
	return compare(c)
}

// serveProxy runs the proxy dataplane with rr TCP services until
// SIGTERM.
func serveProxy(spec string, c config) error {
	var svcs []dataplane.Service
	for _, one := range strings.Split(spec, ";") {
		vip, rss, _ := strings.Cut(one, "=")
		v, err := netip.ParseAddrPort(vip)
		if err != nil {
			return err
		}
		svc := dataplane.Service{Key: dataplane.ServiceKey{Proto: dataplane.TCP, Addr: v.Addr(), Port: v.Port()}, Scheduler: "rr"}
		for _, s := range strings.Split(rss, ",") {
			a, err := netip.ParseAddrPort(s)
			if err != nil {
				return err
			}
			svc.RealServers = append(svc.RealServers, dataplane.RealServer{Addr: a, Weight: 1})
		}
		svcs = append(svcs, svc)
	}
	p, err := proxy.New(proxy.Options{
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, nil)),
		AcceptLoops: c.acceptLoops,
		Loops:       c.loops,
		Goroutines:  c.goroutines,
		NoSplice:    c.noSplice,
	})
	if err != nil {
		return err
	}
	defer p.Close()
	if err := p.Apply(context.Background(), svcs); err != nil {
		return err
	}
	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	return nil
}

// lb is one load balancer under test.
type lb struct {
	name  string
	start func(httpVIP, bulkVIP netip.AddrPort) (*exec.Cmd, error)
}

type result struct {
	connsPerSec float64
	cpuPerKConn float64 // LB CPU seconds per 1000 connections
	bulkMBps    float64
	cpuPerGB    float64 // LB CPU seconds per GB relayed
}

func compare(c config) error {
	for _, bin := range []string{"haproxy", "wrk"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s not found: %w", bin, err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "govs-proxy-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	// Real servers.
	var httpRS, bulkRS []netip.AddrPort
	for i := range 2 {
		a, stop, err := startServer(netip.AddrFrom4([4]byte{127, 0, 31, byte(i + 1)}), serveHTTP)
		if err != nil {
			return err
		}
		defer stop()
		httpRS = append(httpRS, a)
		b, stop2, err := startServer(netip.AddrFrom4([4]byte{127, 0, 32, byte(i + 1)}), serveBulk)
		if err != nil {
			return err
		}
		defer stop2()
		bulkRS = append(bulkRS, b)
	}

	lbs := []lb{
		{"govs-proxy", func(h, b netip.AddrPort) (*exec.Cmd, error) {
			return startProxies(self, c, h, b, httpRS, bulkRS)
		}},
		{"haproxy", func(h, b netip.AddrPort) (*exec.Cmd, error) {
			return startHAProxy(tmp, h, b, httpRS, bulkRS)
		}},
	}
	if c.withGoroutines {
		gc := c
		gc.goroutines = true
		lbs = append(lbs, lb{"govs-gorout", func(h, b netip.AddrPort) (*exec.Cmd, error) {
			return startProxies(self, gc, h, b, httpRS, bulkRS)
		}})
	}
	results := map[string][]result{}
	for round := range c.rounds {
		for i, l := range lbs {
			if c.only != "" && c.only != l.name {
				continue
			}
			h := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 30, byte(len(lbs)*round + i + 1)}), 8080)
			b := netip.AddrPortFrom(h.Addr(), 9090)
			r, err := measure(l, c, h, b)
			if err != nil {
				return fmt.Errorf("%s round %d: %w", l.name, round+1, err)
			}
			fmt.Fprintf(os.Stderr, "round %d %-10s %8.0f conn/s %6.3f cpu-s/kconn %8.0f MB/s %6.3f cpu-s/GB\n",
				round+1, l.name, r.connsPerSec, r.cpuPerKConn, r.bulkMBps, r.cpuPerGB)
			results[l.name] = append(results[l.name], r)
		}
	}
	if c.only != "" {
		return nil
	}
	med := func(name string, f func(result) float64) float64 {
		var xs []float64
		for _, r := range results[name] {
			xs = append(xs, f(r))
		}
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	cps := func(r result) float64 { return r.connsPerSec }
	cpk := func(r result) float64 { return r.cpuPerKConn }
	mbs := func(r result) float64 { return r.bulkMBps }
	cpg := func(r result) float64 { return r.cpuPerGB }
	names := []string{"govs-proxy"}
	if c.withGoroutines {
		names = append(names, "govs-gorout")
	}
	fmt.Printf("| metric (median of %d rounds) | %s | HAProxy | ratio (>1 = govs better) |\n|---|%s---|---|\n",
		c.rounds, strings.Join(names, " | "), strings.Repeat("---|", len(names)))
	metrics := []struct {
		name   string
		f      func(result) float64
		higher bool
	}{
		{"connections/s", cps, true},
		{"LB CPU s per 1000 connections", cpk, false},
		{"bulk throughput MB/s", mbs, true},
		{"LB CPU s per GB", cpg, false},
	}
	for _, m := range metrics {
		fmt.Printf("| %s |", m.name)
		for _, n := range names {
			fmt.Printf(" %.3g |", med(n, m.f))
		}
		g, h := med("govs-proxy", m.f), med("haproxy", m.f)
		ratio := g / h
		if !m.higher {
			ratio = h / g
		}
		fmt.Printf(" %.3g | %.2f× |\n", h, ratio)
	}
	return nil
}

// measure starts one load balancer, runs wrk and the bulk transfer
// through it and stops it.
func measure(l lb, c config, httpVIP, bulkVIP netip.AddrPort) (result, error) {
	cmd, err := l.start(httpVIP, bulkVIP)
	if err != nil {
		return result{}, err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	if err := waitListening(httpVIP); err != nil {
		return result{}, err
	}
	if err := waitListening(bulkVIP); err != nil {
		return result{}, err
	}
	var r result
	cpu0 := cpuSeconds(cmd.Process.Pid)
	n, dur, err := runWrk(httpVIP, c)
	if err != nil {
		return r, err
	}
	cpu1 := cpuSeconds(cmd.Process.Pid)
	r.connsPerSec = float64(n) / dur.Seconds()
	r.cpuPerKConn = (cpu1 - cpu0) / float64(n) * 1000
	time.Sleep(500 * time.Millisecond) // let sockets settle
	cpu0 = cpuSeconds(cmd.Process.Pid)
	bytes, bdur, err := runBulk(bulkVIP, c)
	if err != nil {
		return r, err
	}
	cpu1 = cpuSeconds(cmd.Process.Pid)
	r.bulkMBps = float64(bytes) / bdur.Seconds() / 1e6
	r.cpuPerGB = (cpu1 - cpu0) / (float64(bytes) / 1e9)
	return r, nil
}

func startProxies(self string, c config, h, b netip.AddrPort, httpRS, bulkRS []netip.AddrPort) (*exec.Cmd, error) {
	args := []string{"-serve-proxy",
		"-services", h.String() + "=" + joinAddrs(httpRS) + ";" + b.String() + "=" + joinAddrs(bulkRS),
		"-accept-loops", strconv.Itoa(c.acceptLoops), "-loops", strconv.Itoa(c.loops)}
	if c.goroutines {
		args = append(args, "-goroutines")
	}
	if c.noSplice {
		args = append(args, "-nosplice")
	}
	if c.cpuProfile != "" {
		args = append(args, "-cpuprofile", c.cpuProfile)
	}
	cmd := exec.Command(self, args...)
	cmd.Env = append(os.Environ(), strings.Fields(c.proxyEnv)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	if err := waitReady(out); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, err
	}
	return cmd, nil
}

func joinAddrs(as []netip.AddrPort) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

func waitReady(r io.Reader) error {
	sc := bufio.NewScanner(r)
	if sc.Scan() && sc.Text() == "ready" {
		go io.Copy(io.Discard, r)
		return nil
	}
	return errors.New("proxy did not start")
}

const haproxyCfg = `global
    maxconn 9000
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend http
    bind {{HTTP}}
    default_backend http
backend http
    balance roundrobin
{{HTTPRS}}
frontend bulk
    bind {{BULK}}
    default_backend bulk
backend bulk
    balance roundrobin
{{BULKRS}}
`

func startHAProxy(dir string, h, b netip.AddrPort, httpRS, bulkRS []netip.AddrPort) (*exec.Cmd, error) {
	servers := func(as []netip.AddrPort) string {
		var sb strings.Builder
		for i, a := range as {
			fmt.Fprintf(&sb, "    server s%d %s\n", i, a)
		}
		return sb.String()
	}
	cfg := strings.NewReplacer("{{HTTP}}", h.String(), "{{BULK}}", b.String(),
		"{{HTTPRS}}", servers(httpRS), "{{BULKRS}}", servers(bulkRS)).Replace(haproxyCfg)
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command("haproxy", "-f", path, "-db")
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	return cmd, cmd.Start()
}

func waitListening(a netip.AddrPort) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", a.String(), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening: %w", a, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cpuSeconds is the user+system CPU time of a process from /proc.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// Fields after the command: state is f[0]; utime and stime are the
	// 14th and 15th fields of the whole line, f[11] and f[12] here.
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ
}

var (
	wrkRequests = regexp.MustCompile(`(\d+) requests in ([0-9.]+)(ms|s|m)`)
	wrkLatency  = regexp.MustCompile(`Latency\s+\S+\s+\S+\s+\S+`)
)

// runWrk runs wrk with one request per connection and returns the number
// of completed requests and the duration.
func runWrk(vip netip.AddrPort, c config) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.wrkDur+30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "wrk", "-t2", "-c"+strconv.Itoa(c.wrkConns),
		"-d"+strconv.Itoa(int(c.wrkDur.Seconds()))+"s", "-H", "Connection: close",
		"http://"+vip.String()+"/").CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("wrk: %w: %s", err, out)
	}
	if lat := wrkLatency.FindString(string(out)); lat != "" && c.verbose {
		fmt.Fprintf(os.Stderr, "wrk %s\n", strings.Join(strings.Fields(lat), " "))
	}
	m := wrkRequests.FindStringSubmatch(string(out))
	if m == nil {
		return 0, 0, fmt.Errorf("wrk output not understood: %s", out)
	}
	if strings.Contains(string(out), "Non-2xx") || strings.Contains(string(out), "Socket errors") {
		fmt.Fprintf(os.Stderr, "wrk reported errors:\n%s", out)
	}
	n, _ := strconv.Atoi(m[1])
	v, _ := strconv.ParseFloat(m[2], 64)
	unit := map[string]time.Duration{"ms": time.Millisecond, "s": time.Second, "m": time.Minute}[m[3]]
	return n, time.Duration(v * float64(unit)), nil
}

// runBulk reads c.bulkBytes from the bulk VIP over c.bulkStreams
// connections and returns the bytes and the time taken.
func runBulk(vip netip.AddrPort, c config) (int64, time.Duration, error) {
	per := c.bulkBytes / int64(c.bulkStreams)
	errs := make(chan error, c.bulkStreams)
	start := time.Now()
	for range c.bulkStreams {
		go func() {
			conn, err := net.DialTimeout("tcp", vip.String(), 5*time.Second)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(60 * time.Second))
			fmt.Fprintf(conn, "%d\n", per)
			n, err := drain(conn)
			if err == nil && n != per {
				err = fmt.Errorf("bulk stream got %d bytes, want %d", n, per)
			}
			errs <- err
		}()
	}
	for range c.bulkStreams {
		if err := <-errs; err != nil {
			return 0, 0, err
		}
	}
	return per * int64(c.bulkStreams), time.Since(start), nil
}

// startServer serves fn on a free port of addr.
func startServer(addr netip.Addr, fn func(net.Conn)) (netip.AddrPort, func(), error) {
	l, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(addr, 0)))
	if err != nil {
		return netip.AddrPort{}, nil, err
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fn(c)
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).AddrPort(), func() { l.Close() }, nil
}

var httpResponse = []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

// serveHTTP answers one request and closes.
func serveHTTP(c net.Conn) {
	buf := make([]byte, 4096)
	var got []byte
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if strings.Contains(string(got), "\r\n\r\n") {
			break
		}
		if err != nil {
			return
		}
	}
	c.Write(httpResponse)
}

// serveBulk reads a byte count line and sends that many bytes.
func serveBulk(c net.Conn) {
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return
	}
	n, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
	if err != nil {
		return
	}
	buf := make([]byte, 256<<10)
	for n > 0 {
		k := min(int64(len(buf)), n)
		if _, err := c.Write(buf[:k]); err != nil {
			return
		}
		n -= k
	}
}

// drain reads c to EOF through a large buffer (io.Discard's 8 KiB reads
// would make the client, not the load balancer, the bottleneck).
func drain(c net.Conn) (int64, error) {
	buf := make([]byte, 1<<20)
	var n int64
	for {
		k, err := c.Read(buf)
		n += int64(k)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
