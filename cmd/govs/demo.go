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
		if len(args) != 3 {
			fmt.Fprint(stderr, use)
			return 2
		}
		n, err := strconv.Atoi(args[2])
		if err != nil || n < 1 || n > 1_000_000 {
			fmt.Fprintf(stderr, "govs demo client: COUNT must be 1..1000000\n")
			return 2
		}
		return demoClient(args[1], n, stdout, stderr)
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

func demoClient(url string, n int, stdout, stderr io.Writer) int {
	tr := &http.Transport{DisableKeepAlives: true}
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	counts := map[string]int{}
	failed := 0
	for i := 0; i < n; i++ {
		resp, err := c.Get(url)
		if err != nil {
			failed++
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		counts[strings.TrimSpace(string(body))]++
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
