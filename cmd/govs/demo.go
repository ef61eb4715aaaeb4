package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cmdDemo holds the helpers of the quickstart (scripts/quickstart.sh):
// a demo backend that answers with its name, and a client that counts
// which backend answered.
func cmdDemo(args []string, stdout, stderr io.Writer) int {
	const use = "Usage:\n  govs demo backend ADDR:PORT NAME   serve HTTP, answering \"NAME\"\n  govs demo client URL COUNT         send COUNT requests (a new connection each), print who answered\n"
	if len(args) == 0 {
		fmt.Fprint(stderr, use)
		return 2
	}
	switch args[0] {
	case "backend":
		if len(args) != 3 {
			fmt.Fprint(stderr, use)
			return 2
		}
		return demoBackend(args[1], args[2], stderr)
	case "client":
		fs := newFlagSet("demo client", "demo client [-interval D] [-timeout D] [-trace] URL COUNT", stderr)
		interval := fs.Duration("interval", 0, "pause between requests")
		timeout := fs.Duration("timeout", 5*time.Second, "timeout of one request")
		trace := fs.Bool("trace", false, "print T|F and the time of every request")
		if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 2 {
			fmt.Fprint(stderr, use)
			return 2
		}
		n, err := strconv.Atoi(fs.Arg(1))
		if err != nil || n < 1 || n > 1_000_000 {
			fmt.Fprintf(stderr, "govs demo client: COUNT must be 1..1000000\n")
			return 2
		}
		return demoClient(fs.Arg(0), n, *interval, *timeout, *trace, stdout, stderr)
	}
	fmt.Fprint(stderr, use)
	return 2
}

func demoBackend(addr, name string, stderr io.Writer) int {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(stderr, "govs demo backend: %v\n", err)
		return 1
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s\n", name)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(l); err != nil && err != http.ErrServerClosed {
		fmt.Fprintf(stderr, "govs demo backend: %v\n", err)
		return 1
	}
	return 0
}

func demoClient(url string, n int, interval, timeout time.Duration, trace bool, stdout, stderr io.Writer) int {
	tr := &http.Transport{DisableKeepAlives: true}
	c := &http.Client{Transport: tr, Timeout: timeout}
	counts := map[string]int{}
	failed := 0
	for i := 0; i < n; i++ {
		if i > 0 && interval > 0 {
			time.Sleep(interval)
		}
		start := time.Now()
		resp, err := c.Get(url)
		if err == nil {
			var body []byte
			body, err = io.ReadAll(io.LimitReader(resp.Body, 1024))
			resp.Body.Close()
			if err == nil {
				counts[strings.TrimSpace(string(body))]++
			}
		}
		if err != nil {
			failed++
		}
		if trace {
			mark := "T"
			if err != nil {
				mark = "F"
			}
			fmt.Fprintf(stdout, "%s %s\n", mark, start.Format(time.RFC3339Nano))
		}
	}
	names := make([]string, 0, len(counts))
	for k := range counts {
		names = append(names, k)
	}
	sort.Strings(names)
	fmt.Fprintf(stdout, "%d requests to %s:", n, url)
	for _, k := range names {
		fmt.Fprintf(stdout, " %s=%d", k, counts[k])
	}
	fmt.Fprintf(stdout, " failed=%d\n", failed)
	if failed > 0 {
		return 1
	}
	return 0
}
