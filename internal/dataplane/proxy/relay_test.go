package proxy

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/govs/govs/internal/dataplane"
)

// engines are the TCP relay engines a test runs on.
var engines = []struct {
	name string
	opts Options
}{
	{"default", Options{}},
	{"goroutines", Options{Goroutines: true}},
	{"nosplice", Options{NoSplice: true}},
}

// TestBulkTransfer moves several MiB each way through every engine (past
// the copy buffer, so the splice path runs) and checks the bytes and the
// counters.
func TestBulkTransfer(t *testing.T) {
	const size = 6 << 20
	payload := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range payload {
		payload[i] = byte(rng.Uint32())
	}
	want := sha256.Sum256(payload)
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			p := newProxy(t, e.opts)
			// The server hashes what it receives, then sends the payload.
			got := make(chan [32]byte, 1)
			rs := tcpServer(t, 0, func(c *net.TCPConn) {
				h := sha256.New()
				io.Copy(h, c)
				var sum [32]byte
				copy(sum[:], h.Sum(nil))
				got <- sum
				c.Write(payload)
			})
			vip := loopback{}.VIP(t, dataplane.TCP)
			s := tcpService(vip, rs)
			apply(t, p, s)
			c := dial(t, vip)
			c.SetDeadline(time.Now().Add(20 * time.Second))
			if _, err := c.Write(payload); err != nil {
				t.Fatal(err)
			}
			c.CloseWrite()
			if sum := <-got; sum != want {
				t.Fatal("real server received corrupted data")
			}
			h := sha256.New()
			n, err := io.Copy(h, c)
			if err != nil || n != size || !bytes.Equal(h.Sum(nil), want[:]) {
				t.Fatalf("client got %d bytes (err %v), want %d intact", n, err, size)
			}
			waitFor(t, func() bool {
				st := p.statsOf(t, s.Key)
				return st.InBytes == size && st.OutBytes == size && st.RealServers[0].ActiveConns == 0 && st.RealServers[0].InactiveConns == 0
			})
			st := p.statsOf(t, s.Key)
			if st.InPkts == 0 || st.OutPkts == 0 {
				t.Errorf("packets in/out = %d/%d", st.InPkts, st.OutPkts)
			}
		})
	}
}

// TestManyConcurrent runs concurrent echo connections of mixed sizes so
// that readiness tracking, partial writes and the copy→splice switch all
// happen under contention.
func TestManyConcurrent(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			p := newProxy(t, e.opts)
			rs0 := tcpServer(t, 0, func(c *net.TCPConn) {
				io.Copy(c, c)
				c.CloseWrite()
			})
			rs1 := tcpServer(t, 1, func(c *net.TCPConn) {
				io.Copy(c, c)
				c.CloseWrite()
			})
			vip := loopback{}.VIP(t, dataplane.TCP)
			s := tcpService(vip, rs0, rs1)
			apply(t, p, s)
			const clients = 64
			var wg sync.WaitGroup
			errs := make(chan error, clients)
			for i := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					size := 100 + i*3000 // 100 B … 190 KB
					msg := bytes.Repeat([]byte{byte(i)}, size)
					c, err := net.DialTimeout("tcp", vip.String(), 5*time.Second)
					if err != nil {
						errs <- err
						return
					}
					defer c.Close()
					c.SetDeadline(time.Now().Add(15 * time.Second))
					go func() {
						c.Write(msg)
						c.(*net.TCPConn).CloseWrite()
					}()
					back, err := io.ReadAll(c)
					if err != nil || !bytes.Equal(back, msg) {
						errs <- fmt.Errorf("client %d: %d bytes back of %d (err %v)", i, len(back), size, err)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			waitFor(t, func() bool { return countConns(p, vip) == 0 })
			if st := p.statsOf(t, s.Key); st.Conns != clients {
				t.Errorf("connections = %d, want %d", st.Conns, clients)
			}
		})
	}
}
