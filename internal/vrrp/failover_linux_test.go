package vrrp

import (
	"bufio"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// serveName listens on 0.0.0.0:port inside ns and answers every
// connection with name, so the client sees which host holds the VIP.
func serveName(t *testing.T, ns string, port int, name string) {
	t.Helper()
	var ln net.Listener
	err := inNetns(ns, func() error {
		var err error
		ln, err = net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", port))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, name)
			c.Close()
		}
	}()
}

type probe struct {
	at  time.Time
	who string // "" on failure
}

// clientLoop connects to addr from namespace ns every interval until stop
// is closed (bounded to 2000 attempts) and records who answered.
func clientLoop(t *testing.T, ns, addr string, interval time.Duration, stop <-chan struct{}) func() []probe {
	t.Helper()
	var (
		mu  sync.Mutex
		out []probe
	)
	ready := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// This goroutine's thread stays in ns and is discarded at exit.
		runtime.LockOSThread()
		target, err := netns.GetFromName(ns)
		if err == nil {
			err = netns.Set(target)
			target.Close()
		}
		ready <- err
		if err != nil {
			return
		}
		d := net.Dialer{Timeout: 200 * time.Millisecond}
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for range 2000 {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			p := probe{at: time.Now()}
			if c, err := d.Dial("tcp4", addr); err == nil {
				c.SetDeadline(time.Now().Add(200 * time.Millisecond))
				if line, err := bufio.NewReader(c).ReadString('\n'); err == nil {
					p.who = strings.TrimSpace(line)
				}
				c.Close()
			}
			mu.Lock()
			out = append(out, p)
			mu.Unlock()
		}
	}()
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	return func() []probe {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return out
	}
}

// TestFailoverClientLoop measures what a client sees: new TCP connections
// to the VIP every 20 ms while keepalived (MASTER, 150) loses its link and
// govs (BACKUP, 100, VRRPv3 100 ms adverts) takes over, then while the
// link comes back and keepalived preempts. Both hosts serve the VIP
// themselves (no director in the path): this isolates VRRP + GARP.
func TestFailoverClientLoop(t *testing.T) {
	requireRoot(t)
	v := interopVariant{name: "client-loop", code: "cl", version: 3, advert: "0.1"}
	tp := buildTopo(t, v)
	sw := strings.TrimSuffix(tp.ka, "ka") + "sw"
	serveName(t, tp.ka, 8080, "keepalived")
	serveName(t, tp.gv, 8080, "govs")
	ka := newKeepalived(t, tp.ka, v.keepalivedConf(tp, "MASTER", 150))
	ka.start()
	if !waitFor(10*time.Second, func() bool { return ka.lastState() == "MASTER" }) {
		t.Fatalf("keepalived not MASTER: %v", ka.notes())
	}
	gcfg := v.govsConfig(tp, "BACKUP", 100)
	g := startGovs(t, tp.gv, gcfg)
	if !waitFor(3*time.Second, func() bool { return g.status().MasterAddr == tp.kaAddr }) {
		t.Fatalf("govs not following: %+v", g.status())
	}
	stop := make(chan struct{})
	results := clientLoop(t, tp.cp, tp.vipText+":8080", 20*time.Millisecond, stop)
	time.Sleep(time.Second)
	cut := time.Now()
	ipn(t, sw, "link", "set", "pka", "down")
	if !waitFor(3*time.Second, func() bool { return g.status().State == StateMaster }) {
		t.Fatalf("govs did not take over")
	}
	time.Sleep(1500 * time.Millisecond)
	back := time.Now()
	ipn(t, sw, "link", "set", "pka", "up")
	if !waitFor(5*time.Second, func() bool { return g.status().State == StateBackup }) {
		t.Fatalf("keepalived did not preempt: %v", ka.notes())
	}
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	ps := results()

	// report counts failed connections after an event and the longest
	// time without a successful answer around it.
	report := func(name string, from, to time.Time, wantAfter string) {
		t.Helper()
		failed, total := 0, 0
		var prevOK time.Time
		var gap time.Duration
		lastWho := ""
		for _, p := range ps {
			if p.at.Before(from.Add(-time.Second)) || !p.at.Before(to) {
				continue
			}
			if !p.at.Before(from) {
				total++
				if p.who == "" {
					failed++
				}
			}
			if p.who == "" {
				continue
			}
			if !prevOK.IsZero() {
				gap = max(gap, p.at.Sub(prevOK))
			}
			prevOK, lastWho = p.at, p.who
		}
		t.Logf("%s: %d of %d connections failed; longest time without an answer %v (probes every 20 ms)",
			name, failed, total, gap.Round(time.Millisecond))
		if lastWho != wantAfter {
			t.Errorf("%s: VIP answered by %q at the end, want %q", name, lastWho, wantAfter)
		}
		if gap > time.Second {
			t.Errorf("%s: interruption %v", name, gap)
		}
	}
	before := 0
	for _, p := range ps {
		if p.at.Before(cut) && p.who != "keepalived" {
			before++
		}
	}
	if before > 0 {
		t.Errorf("%d probes failed or went to govs before the failover", before)
	}
	report("failover (keepalived link down, govs takes over)", cut, back, "govs")
	report("failback (link up, keepalived preempts)", back, time.Now(), "keepalived")
}
