package dataplanetest

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/govs/govs/internal/dataplane"
)

// notServed is how long a case waits before it decides that a connection
// was not served.
const notServed = 300 * time.Millisecond

func testRR(e *env) {
	vip := e.h.VIP(e.t, dataplane.TCP)
	bs := e.backends(3, vip)
	e.apply(e.service(vip, dataplane.TCP, "rr", bs))
	var ids []string
	for range 30 {
		ids = append(ids, e.hit(0, vip))
	}
	want := map[string]int{"rs0": 10, "rs1": 10, "rs2": 10}
	if d := cmp.Diff(want, count(ids)); d != "" {
		e.t.Errorf("rr distribution (-want +got):\n%s", d)
	}
	// Round robin also alternates: no server twice in a row.
	for i := 1; i < len(ids); i++ {
		if ids[i] == ids[i-1] {
			e.t.Errorf("rr picked %s twice in a row at %d: %v", ids[i], i, ids)
			break
		}
	}
}

func testWRR(e *env) {
	vip := e.h.VIP(e.t, dataplane.TCP)
	bs := e.backends(3, vip)
	e.apply(e.service(vip, dataplane.TCP, "wrr", bs, 3, 2, 1))
	var ids []string
	for range 60 {
		ids = append(ids, e.hit(0, vip))
	}
	want := map[string]int{"rs0": 30, "rs1": 20, "rs2": 10}
	if d := cmp.Diff(want, count(ids)); d != "" {
		e.t.Errorf("wrr distribution (-want +got):\n%s", d)
	}
}

func testWLC(e *env) {
	vip := e.h.VIP(e.t, dataplane.TCP)
	bs := e.backends(2, vip)
	e.apply(e.service(vip, dataplane.TCP, "wlc", bs, 1, 2))
	// Held connections: each new one goes where active/weight is lowest,
	// so 9 end up 3 : 6.
	var ids []string
	for range 9 {
		ids = append(ids, e.mustOpen(0, vip).id)
	}
	got := count(ids)
	if got["rs0"] < 2 || got["rs0"] > 4 || got["rs0"]+got["rs1"] != 9 {
		e.t.Errorf("wlc with weights 1:2 over 9 held connections: got %v, want about rs0:3 rs1:6", got)
	}
	st := e.serviceStats(e.service(vip, dataplane.TCP, "wlc", bs).Key)
	var active int64
	for _, rs := range st.RealServers {
		active += rs.ActiveConns
	}
	if active != 9 {
		e.t.Errorf("active connections = %d, want 9", active)
	}
}

func testPersistence(e *env) {
	vip := e.h.VIP(e.t, dataplane.TCP)
	bs := e.backends(2, vip)
	s := e.service(vip, dataplane.TCP, "rr", bs)
	s.Persistence = 30 * time.Second
	e.apply(s)
	first := map[int]string{}
	for _, client := range []int{0, 2} {
		for i := range 4 {
			id := e.hit(client, vip)
			if i == 0 {
				first[client] = id
			} else if id != first[client] {
				e.t.Fatalf("client %d: connection %d went to %s, earlier ones to %s", client, i, id, first[client])
			}
		}
	}
	if first[0] == first[2] {
		e.t.Errorf("rr with persistence sent both clients to %s; the second client should get the next server", first[0])
	}
	// The templates are in the connection table.
	addrOf := map[string]netip.AddrPort{}
	for _, b := range bs {
		addrOf[b.id] = b.addr
	}
	cs := e.conns()
	for _, client := range []int{0, 2} {
		found := false
		for _, c := range cs {
			if c.Template && c.Client.Addr() == e.h.Clients()[client] && c.Real == addrOf[first[client]] {
				found = true
				if c.Client.Port() != 0 || c.State != "NONE" || c.Expires <= 0 || c.Expires > s.Persistence {
					e.t.Errorf("template %+v: want client port 0, state NONE, 0 < expires <= %v", c, s.Persistence)
				}
			}
		}
		if !found {
			e.t.Errorf("no persistence template for client %s → %s in %+v", e.h.Clients()[client], first[client], cs)
		}
	}
}

func testPersistenceMask(e *env) {
	vip := e.h.VIP(e.t, dataplane.TCP)
	bs := e.backends(3, vip)
	s := e.service(vip, dataplane.TCP, "rr", bs)
	s.Persistence = 30 * time.Second
	bits := 24
	if e.h.Clients()[0].Is6() {
		bits = 64
	}
	s.PersistMask = bits
	e.apply(s)
	a := e.hit(0, vip)
	b := e.hit(1, vip)
	c := e.hit(2, vip)
	if a != b {
		e.t.Errorf("clients 0 and 1 share a /%d but went to %s and %s", bits, a, b)
	}
	if c == a {
		e.t.Errorf("client 2 is outside the /%d of client 0 but rr with persistence sent it to the same server %s", bits, a)
	}
}

func testWeight0(e *env) {
	vip := e.h.VIP(e.t, dataplane.TCP)
	bs := e.backends(2, vip)
	s := e.service(vip, dataplane.TCP, "rr", bs)
	e.apply(s)
	held := e.mustOpen(0, vip)
	quiesced := 0
	if held.id == "rs1" {
		quiesced = 1
	}
	s.RealServers[quiesced].Weight = 0
	e.apply(s)
	for i := range 6 {
		if id := e.hit(0, vip); id == held.id {
			e.t.Fatalf("connection %d went to %s, which has weight 0", i, id)
		}
	}
	if err := held.echo("still there"); err != nil {
		e.t.Errorf("connection to the quiesced server broke: %v", err)
	}
	st := e.serviceStats(s.Key)
	if got := st.RealServers[quiesced].ActiveConns; got != 1 {
		e.t.Errorf("quiesced server active connections = %d, want 1", got)
	}
}

func testThresholds(e *env) {
	vip := e.h.VIP(e.t, dataplane.TCP)
	bs := e.backends(2, vip)
	s := e.service(vip, dataplane.TCP, "rr", bs)
	s.RealServers[0].UThreshold = 2
	e.apply(s)
	var ids []string
	for range 6 {
		ids = append(ids, e.mustOpen(0, vip).id)
	}
	want := map[string]int{"rs0": 2, "rs1": 4}
	if d := cmp.Diff(want, count(ids)); d != "" {
		e.t.Errorf("6 held connections, rs0 with upper threshold 2 (-want +got):\n%s", d)
	}
}

func testSorry(e *env) {
	vip := e.h.VIP(e.t, dataplane.TCP)
	bs := e.backends(2, vip)
	s := e.service(vip, dataplane.TCP, "wlc", bs[:1], 0)
	sorry := dataplane.RealServer{Addr: bs[1].addr, Weight: 1, Method: e.caps.Method}

	// Only real server quiesced, no sorry server: nothing answers.
	e.apply(s)
	if c := e.open(0, vip, notServed); c != nil {
		e.t.Errorf("weight-0 only server and no sorry server: %s answered", c.id)
	}
	// With a sorry server it takes the connections.
	s.Sorry = &sorry
	e.apply(s)
	for range 3 {
		if id := e.hit(0, vip); id != "rs1" {
			e.t.Errorf("all servers quiesced: %s answered, want the sorry server rs1", id)
		}
	}
	// No real servers at all.
	s.RealServers = nil
	e.apply(s)
	if id := e.hit(0, vip); id != "rs1" {
		e.t.Errorf("no real servers: %s answered, want the sorry server rs1", id)
	}
	// A real server back: it takes the traffic again.
	s.RealServers = []dataplane.RealServer{{Addr: bs[0].addr, Weight: 1, Method: e.caps.Method}}
	e.apply(s)
	if id := e.hit(0, vip); id != "rs0" {
		e.t.Errorf("real server back: %s answered, want rs0", id)
	}
}

func testCounters(e *env) {
	vip := e.h.VIP(e.t, dataplane.TCP)
	bs := e.backends(2, vip)
	s := e.service(vip, dataplane.TCP, "rr", bs)
	e.apply(s)
	const n, size = 4, 1000
	payload := strings.Repeat("x", size)
	for range n {
		c := e.mustOpen(0, vip)
		if err := c.echo(payload); err != nil {
			e.t.Fatal(err)
		}
		c.c.Close()
	}
	idLen := uint64(len("rs0\n"))
	eventually(e.t, func() error {
		st := e.serviceStats(s.Key)
		var sum dataplane.Counters
		var active int64
		for _, rs := range st.RealServers {
			sum = sum.Add(rs.Counters)
			active += rs.ActiveConns
			if rs.Conns != n/2 {
				return fmt.Errorf("real server %s: %d connections, want %d", rs.Addr, rs.Conns, n/2)
			}
		}
		if st.Conns != n {
			return fmt.Errorf("service connections = %d, want %d", st.Conns, n)
		}
		if active != 0 {
			return fmt.Errorf("%d connections still active after the clients closed", active)
		}
		if sum != st.Counters {
			return fmt.Errorf("real server counters add up to %+v, service has %+v", sum, st.Counters)
		}
		wantIn, wantOut := uint64(n*size), uint64(n)*(size+idLen)
		if e.caps.PayloadBytes {
			if st.InBytes != wantIn || (!e.caps.OneWay && st.OutBytes != wantOut) {
				return fmt.Errorf("bytes in/out = %d/%d, want %d/%d", st.InBytes, st.OutBytes, wantIn, wantOut)
			}
		} else if st.InBytes < wantIn || (!e.caps.OneWay && st.OutBytes < wantOut) {
			return fmt.Errorf("bytes in/out = %d/%d, want at least %d/%d", st.InBytes, st.OutBytes, wantIn, wantOut)
		}
		if st.InPkts < n || (!e.caps.OneWay && st.OutPkts < n) {
			return fmt.Errorf("packets in/out = %d/%d, want at least %d each", st.InPkts, st.OutPkts, n)
		}
		return nil
	})
}

func testConns(e *env) {
	vip := e.h.VIP(e.t, dataplane.TCP)
	bs := e.backends(2, vip)
	s := e.service(vip, dataplane.TCP, "rr", bs)
	e.apply(s)
	addrOf := map[string]netip.AddrPort{}
	for _, b := range bs {
		addrOf[b.id] = b.addr
	}
	var held []*conn
	for range 3 {
		held = append(held, e.mustOpen(0, vip))
	}
	cs := e.conns()
	for _, h := range held {
		client := netip.MustParseAddrPort(h.c.LocalAddr().String())
		client = netip.AddrPortFrom(client.Addr().Unmap(), client.Port())
		found := false
		for _, c := range cs {
			if c.Template || c.Client != client {
				continue
			}
			found = true
			if c.Proto != dataplane.TCP || c.Virtual != vip || c.Real != addrOf[h.id] || c.State != "ESTABLISHED" || c.Expires <= 0 {
				e.t.Errorf("entry %+v: want TCP %s → %s → %s ESTABLISHED with time left", c, client, vip, addrOf[h.id])
			}
		}
		if !found {
			e.t.Errorf("no entry for client %s in %+v", client, cs)
		}
	}
	st := e.serviceStats(s.Key)
	var active int64
	for _, rs := range st.RealServers {
		active += rs.ActiveConns
	}
	if active != 3 {
		e.t.Errorf("active connections = %d, want 3", active)
	}
	for _, h := range held {
		h.c.Close()
	}
	eventually(e.t, func() error {
		for _, c := range e.conns() {
			if !c.Template && c.Virtual == vip && c.State == "ESTABLISHED" {
				return fmt.Errorf("closed connection still ESTABLISHED: %+v", c)
			}
		}
		return nil
	})
}

func testApplyDiff(e *env) {
	vipA := e.h.VIP(e.t, dataplane.TCP)
	bsA := e.backends(2, vipA)
	a := e.service(vipA, dataplane.TCP, "wrr", bsA)
	e.apply(a)
	held := e.mustOpen(0, vipA)

	// Adding a service leaves A and its connection alone.
	vipB := e.h.VIP(e.t, dataplane.TCP)
	bsB := e.backends(1, vipB)
	b := e.service(vipB, dataplane.TCP, "rr", bsB)
	e.apply(a, b)
	if err := held.echo("after adding a service"); err != nil {
		e.t.Fatalf("long-lived connection broke when a service was added: %v", err)
	}
	if id := e.hit(2, vipB); id != "rs0" {
		e.t.Errorf("new service answered by %s, want its rs0", id)
	}
	if st := e.serviceStats(a.Key); st.Conns != 1 {
		e.t.Errorf("service A connections = %d after the Apply, want 1 (counters kept)", st.Conns)
	}

	// Changing weights applies in place: the connection survives, the
	// counters stay, and new connections follow the new weights.
	a.RealServers[0].Weight, a.RealServers[1].Weight = 3, 1
	e.apply(a, b)
	if err := held.echo("after a weight change"); err != nil {
		e.t.Fatalf("long-lived connection broke on a weight change: %v", err)
	}
	var ids []string
	for range 8 {
		ids = append(ids, e.hit(0, vipA))
	}
	if got := count(ids); got["rs0"] != 6 || got["rs1"] != 2 {
		e.t.Errorf("wrr 3:1 after the weight change over 8 connections: got %v, want rs0:6 rs1:2", got)
	}
	eventually(e.t, func() error {
		st := e.serviceStats(a.Key)
		if st.Conns != 9 {
			return fmt.Errorf("service A connections = %d, want 9 (1 held + 8)", st.Conns)
		}
		var active int64
		for _, rs := range st.RealServers {
			active += rs.ActiveConns
		}
		if active != 1 {
			return fmt.Errorf("service A active connections = %d, want 1 (the held one)", active)
		}
		return nil
	})
}

func testUDP(e *env) {
	vip := e.h.VIP(e.t, dataplane.UDP)
	bs := e.udpBackends(2, vip)
	s := e.service(vip, dataplane.UDP, "rr", bs)
	e.apply(s)
	addrOf := map[string]netip.AddrPort{}
	for _, b := range bs {
		addrOf[b.id] = b.addr
	}
	sessionOf := map[int]string{}
	locals := map[int]netip.AddrPort{}
	for _, client := range []int{0, 2} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := e.h.Dial(ctx, client, "udp", vip)
		cancel()
		if err != nil {
			e.t.Fatalf("dial udp: %v", err)
		}
		e.t.Cleanup(func() { c.Close() })
		l := netip.MustParseAddrPort(c.LocalAddr().String())
		locals[client] = netip.AddrPortFrom(l.Addr().Unmap(), l.Port())
		buf := make([]byte, 2048)
		for i := range 3 {
			msg := fmt.Sprintf("ping %d", i)
			if _, err := c.Write([]byte(msg)); err != nil {
				e.t.Fatalf("write: %v", err)
			}
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, err := c.Read(buf)
			if err != nil {
				e.t.Fatalf("client %d datagram %d: no reply: %v", client, i, err)
			}
			id, echo, _ := strings.Cut(string(buf[:n]), ":")
			if echo != msg {
				e.t.Errorf("reply %q, want %q after the identity", buf[:n], msg)
			}
			if i == 0 {
				sessionOf[client] = id
			} else if id != sessionOf[client] {
				e.t.Errorf("client %d: datagram %d answered by %s, earlier ones by %s (one session per client)", client, i, id, sessionOf[client])
			}
		}
	}
	if sessionOf[0] == sessionOf[2] {
		e.t.Errorf("two clients with rr both went to %s", sessionOf[0])
	}
	cs := e.conns()
	for _, client := range []int{0, 2} {
		found := false
		for _, c := range cs {
			if c.Template || c.Client != locals[client] {
				continue
			}
			found = true
			if c.Proto != dataplane.UDP || c.State != "UDP" || c.Real != addrOf[sessionOf[client]] || c.Virtual != vip || c.Expires <= 0 {
				e.t.Errorf("entry %+v: want UDP %s → %s → %s, state UDP", c, locals[client], vip, addrOf[sessionOf[client]])
			}
		}
		if !found {
			e.t.Errorf("no UDP entry for client %s in %+v", locals[client], cs)
		}
	}
	st := e.serviceStats(s.Key)
	var inactive, active int64
	for _, rs := range st.RealServers {
		inactive += rs.InactiveConns
		active += rs.ActiveConns
	}
	if st.Conns != 2 || inactive != 2 || active != 0 {
		e.t.Errorf("udp: conns %d, active %d, inactive %d; want 2, 0, 2 (IPVS counts UDP entries as inactive)", st.Conns, active, inactive)
	}
	if st.InPkts != 6 || (!e.caps.OneWay && st.OutPkts != 6) {
		e.t.Errorf("udp packets in/out = %d/%d, want 6/6", st.InPkts, st.OutPkts)
	}
}
