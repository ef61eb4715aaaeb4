package xdp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/connsync"
	"github.com/govs/govs/internal/dataplane"
)

// stream is a long-lived connection through the VIP to a real server's
// /stream handler, which echoes what it is sent.
type stream struct {
	c  net.Conn
	br *bufio.Reader
}

func openStream(t *testing.T, dial func(ctx context.Context, network, addr string) (net.Conn, error), vip string) *stream {
	t.Helper()
	c, err := dial(context.Background(), "tcp", vip+":80")
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST /stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
	return &stream{c: c, br: bufio.NewReader(c)}
}

// echo sends a line and waits for it to come back within wait.
func (s *stream) echo(i int, wait time.Duration) error {
	line := fmt.Sprintf("ping-%03d\n", i)
	s.c.SetDeadline(time.Now().Add(wait))
	if _, err := fmt.Fprintf(s.c, "%x\r\n%s\r\n", len(line), line); err != nil {
		return err
	}
	for {
		l, err := s.br.ReadString('\n')
		if err != nil {
			return err
		}
		if strings.Contains(l, line[:8]) {
			return nil
		}
	}
}

// TestConnSyncFailover: two XDP directors in DR mode, the first sending
// its connections (connsync, the IPVS sync protocol over multicast), the
// second taking them. Long-lived connections opened through the first
// go on through the second once the VIP's traffic moves there and the
// first is killed: the second forwards their packets to the real servers
// they were on. Without the sync the same connections break, the second
// director having no entry for them (a TCP packet without SYN is not
// scheduled).
func TestConnSyncFailover(t *testing.T) {
	for _, synced := range []bool{true, false} {
		t.Run(map[bool]string{true: "synced", false: "not-synced"}[synced], func(t *testing.T) {
			l := newLab(t, 2)
			l.serveHTTP("rs1", "rs1")
			l.serveHTTP("rs2", "rs2")
			l.addNS("dir2")
			l.attachPass("br", l.plug("dir2", labNet+".3"))
			for _, p := range []string{"/sys/fs/bpf/xd-sync-a", "/sys/fs/bpf/xd-sync-b"} {
				_ = RemovePinned(p)
				t.Cleanup(func() { _ = RemovePinned(p) })
			}
			sc := &connsync.Config{Interface: "eth0", SyncID: 7, Interval: 200 * time.Millisecond}
			svcs := labServices(dataplane.DR, 2)
			a, _ := startChildLines(t, childEnv{NS: "dir", PinPath: "/sys/fs/bpf/xd-sync-a", Services: svcs, Sync: sc, Role: connsync.RoleMaster, Exec: true})
			role := connsync.RoleBackup
			if !synced {
				role = 0
			}
			_, bLines := startChildLines(t, childEnv{NS: "dir2", PinPath: "/sys/fs/bpf/xd-sync-b", Services: svcs, Sync: sc, Role: role, Exec: true})

			const n = 8
			dial := l.dialer()
			var ss []*stream
			for i := range n {
				s := openStream(t, dial, labVIPDR)
				if err := s.echo(i, 3*time.Second); err != nil {
					t.Fatalf("connection %d through the first director: %v", i, err)
				}
				ss = append(ss, s)
			}
			if synced {
				// the backup has taken the n connections
				deadline := time.After(10 * time.Second)
				var st connsync.Stats
			wait:
				for st.ConnsImported < n {
					select {
					case line, ok := <-bLines:
						if !ok {
							t.Fatal("backup director exited")
						}
						if js, ok := strings.CutPrefix(line, "sync "); ok {
							_ = json.Unmarshal([]byte(js), &st)
						}
					case <-deadline:
						break wait
					}
				}
				t.Logf("backup: %+v", st)
				if st.ConnsImported < n || st.Malformed != 0 {
					t.Fatalf("backup took %d connections (%+v), want %d", st.ConnsImported, st, n)
				}
				// the count may include a connection sent twice (as
				// SYN_RECV, then ESTABLISHED): two more rounds
				time.Sleep(2 * sc.Interval)
			} else {
				time.Sleep(time.Second)
			}
			// the takeover: the VIP's traffic goes to the second director,
			// the first is killed
			l.in("cl", "ip", "route", "replace", labVIPDR+"/32", "via", labNet+".3")
			_ = a.Process.Kill()
			_ = a.Wait()
			failed := 0
			var firstErr error
			wait := 3 * time.Second
			if !synced {
				wait = time.Second
			}
			for i, s := range ss {
				if err := s.echo(100+i, wait); err != nil {
					failed++
					if firstErr == nil {
						firstErr = err
					}
				}
			}
			t.Logf("%d of %d connections broken by the takeover (first error: %v)", failed, n, firstErr)
			if synced && failed != 0 {
				t.Errorf("%d of %d long-lived connections broken by the takeover: %v", failed, n, firstErr)
			}
			if !synced && failed != n {
				t.Errorf("without sync %d of %d connections broke, want all: the test does not show what sync does", failed, n)
			}
			// new connections go through the second director
			if body, err := get(l.httpClient(), "http://"+labVIPDR+"/"); err != nil || (body != "rs1" && body != "rs2") {
				t.Errorf("new request after the takeover: %q, %v", body, err)
			}
		})
	}
}
