// Command udpload sends small UDP datagrams at a fixed rate, spread over a
// number of source ports (flows), for a fixed time. It paces in 1 ms steps
// and never sends a backlog in a burst: when it falls behind (the CPU was
// busy elsewhere) the missed slots are dropped, so the offered rate is at
// most the rate asked for. It prints one JSON line with the datagrams sent.
//
// bench/run.sh uses it to offer the fixed rate of the cost measurement;
// trafgen's own rate limit overshot and undershot by large factors on a busy
// 2-CPU machine.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"time"
)

type result struct {
	Sent    int     `json:"sent"`
	Errors  int     `json:"errors"`
	Missed  int     `json:"missed"`
	Seconds float64 `json:"seconds"`
}

func main() {
	addr := flag.String("addr", "", "destination host:port")
	rate := flag.Int("rate", 50000, "datagrams per second")
	flows := flag.Int("flows", 64, "source ports (one socket each)")
	size := flag.Int("size", 18, "payload bytes (18: 60-byte frames, 64 on the wire)")
	dur := flag.Duration("d", 5*time.Second, "how long to send")
	flag.Parse()
	if *addr == "" || *rate <= 0 || *flows <= 0 || *dur <= 0 || *size < 0 {
		fmt.Fprintln(os.Stderr, "usage: udpload -addr host:port [-rate N] [-flows N] [-d 5s]")
		os.Exit(2)
	}
	res, err := run(*addr, *rate, *flows, *size, *dur)
	if err != nil {
		fmt.Fprintln(os.Stderr, "udpload:", err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "udpload:", err)
		os.Exit(1)
	}
}

func run(addr string, rate, flows, size int, dur time.Duration) (result, error) {
	raddr, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return result{}, fmt.Errorf("resolve: %w", err)
	}
	conns := make([]*net.UDPConn, 0, flows)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range flows {
		c, err := net.DialUDP("udp4", nil, raddr)
		if err != nil {
			return result{}, fmt.Errorf("dial: %w", err)
		}
		conns = append(conns, c)
	}
	payload := make([]byte, size)
	const step = time.Millisecond
	var res result
	start := time.Now()
	end := start.Add(dur)
	owed := 0.0 // datagrams due but not yet sent, carried between steps
	perStep := float64(rate) * step.Seconds()
	next := start
	for i := 0; ; {
		now := time.Now()
		if !now.Before(end) {
			break
		}
		if now.Before(next) {
			time.Sleep(next.Sub(now))
			continue
		}
		// Slots older than one step are dropped, never sent in a burst.
		late := int(now.Sub(next) / step)
		res.Missed += int(float64(late) * perStep)
		next = next.Add(time.Duration(late+1) * step)
		owed += perStep
		for ; owed >= 1; owed-- {
			if _, err := conns[i%len(conns)].Write(payload); err != nil {
				res.Errors++
			} else {
				res.Sent++
			}
			i++
		}
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}
