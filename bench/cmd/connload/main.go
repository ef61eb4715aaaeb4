// Command connload opens new TCP connections at a fixed rate, sends one tiny
// HTTP/1.1 request with "Connection: close" on each and reads the reply to
// the end. It prints one JSON line: connections completed, errors, and the
// p50/p99 of the connect-to-last-byte time.
//
// SIGINT or SIGTERM stops offering new connections; the ones in flight
// complete and the result covers the time until then.
//
// The benchmark harness (bench/run.sh) uses it for the director's cost per
// new connection at a fixed offered rate, where wrk would run flat out.
//
// With -workers N it runs flat out instead: N workers each open a
// connection, send the request, read the answer to the end and close, in a
// loop until -d has passed (the conn_raw load: the lightest client that
// still completes real connections).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"
)

type result struct {
	OK      int     `json:"ok"`
	Errors  int     `json:"errors"`
	Seconds float64 `json:"seconds"`
	Rate    float64 `json:"rate"`
	P50us   float64 `json:"p50_us"`
	P99us   float64 `json:"p99_us"`
	FirstEr string  `json:"first_error,omitempty"`
}

func main() {
	addr := flag.String("addr", "", "server address host:port")
	rate := flag.Int("rate", 1000, "new connections per second")
	dur := flag.Duration("d", 5*time.Second, "how long to offer load")
	timeout := flag.Duration("timeout", 2*time.Second, "per-connection timeout")
	maxInFlight := flag.Int("max-inflight", 512, "bound on concurrent connections")
	workers := flag.Int("workers", 0, "run flat out with this many workers instead of at -rate")
	flag.Parse()
	if *addr == "" || *rate <= 0 || *dur <= 0 {
		fmt.Fprintln(os.Stderr, "usage: connload -addr host:port [-rate N] [-d 5s]")
		os.Exit(2)
	}
	// SIGINT/SIGTERM end the offered load early; connections in flight
	// finish and the result is printed as usual.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var (
		res result
		err error
	)
	if *workers > 0 {
		res = flatOut(ctx, *addr, *workers, *dur, *timeout)
	} else {
		res, err = run(ctx, *addr, *rate, *dur, *timeout, *maxInFlight)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "connload:", err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "connload:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, addr string, rate int, dur, timeout time.Duration, maxInFlight int) (result, error) {
	req := []byte("GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
	var (
		mu      sync.Mutex
		lat     []time.Duration
		nerr    int
		firstEr error
		wg      sync.WaitGroup
	)
	sem := make(chan struct{}, maxInFlight)
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	deadline := start.Add(dur)
	next := start
	for next.Before(deadline) && ctx.Err() == nil {
		if d := time.Until(next); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				continue
			}
		}
		next = next.Add(interval)
		select {
		case sem <- struct{}{}:
		default:
			// Too many connections outstanding: count the missed slot as an
			// error instead of queueing (the offered rate is what is asked).
			mu.Lock()
			nerr++
			if firstEr == nil {
				firstEr = errors.New("in-flight limit reached")
			}
			mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t0 := time.Now()
			err := oneRequest(addr, req, timeout)
			d := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				nerr++
				if firstEr == nil {
					firstEr = err
				}
				return
			}
			lat = append(lat, d)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	res := result{OK: len(lat), Errors: nerr, Seconds: elapsed, Rate: float64(len(lat)) / elapsed}
	if firstEr != nil {
		res.FirstEr = firstEr.Error()
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		res.P50us = float64(quantile(lat, 0.50).Microseconds())
		res.P99us = float64(quantile(lat, 0.99).Microseconds())
	}
	return res, nil
}

// flatOut runs workers that open connections back to back until dur has
// passed or ctx ends.
func flatOut(ctx context.Context, addr string, workers int, dur, timeout time.Duration) result {
	req := []byte("GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
	type tally struct {
		lat   []time.Duration
		nerr  int
		first error
	}
	tallies := make([]tally, workers)
	start := time.Now()
	deadline := start.Add(dur)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := &tallies[w]
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t0 := time.Now()
				if err := oneRequest(addr, req, timeout); err != nil {
					t.nerr++
					if t.first == nil {
						t.first = err
					}
					continue
				}
				t.lat = append(t.lat, time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	var (
		lat   []time.Duration
		res   result
		first error
	)
	for _, t := range tallies {
		lat = append(lat, t.lat...)
		res.Errors += t.nerr
		if first == nil {
			first = t.first
		}
	}
	res.OK, res.Seconds, res.Rate = len(lat), elapsed, float64(len(lat))/elapsed
	if first != nil {
		res.FirstEr = first.Error()
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		res.P50us = float64(quantile(lat, 0.50).Microseconds())
		res.P99us = float64(quantile(lat, 0.99).Microseconds())
	}
	return res
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(q * float64(len(sorted)-1))
	return sorted[i]
}

func oneRequest(addr string, req []byte, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// Not the caller's context: a stopped run still completes what it began.
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return fmt.Errorf("deadline: %w", err)
	}
	if _, err := c.Write(req); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	body, err := io.ReadAll(c)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if !bytes.HasPrefix(body, []byte("HTTP/1.1 200")) {
		return fmt.Errorf("unexpected reply %.20q", body)
	}
	return nil
}
