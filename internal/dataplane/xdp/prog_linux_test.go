package xdp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/dataplane"
)

const (
	xdpDrop     = 1
	xdpPass     = 2
	xdpTX       = 3
	xdpRedirect = 4
)

var (
	vip4    = netip.MustParseAddr("192.0.2.10")
	vip6    = netip.MustParseAddr("2001:db8::10")
	rs1     = netip.MustParseAddrPort("10.0.0.1:80")
	rs2     = netip.MustParseAddrPort("10.0.0.2:80")
	rs6a    = netip.MustParseAddrPort("[fd00::1]:80")
	rs6b    = netip.MustParseAddrPort("[fd00::2]:80")
	tunSrc  = netip.MustParseAddr("10.9.9.9")
	tunSrc6 = netip.MustParseAddr("fd00::9")
)

// realMAC is the MAC the fixed resolver gives a real server.
func realMAC(a netip.Addr) [6]byte {
	s := a.AsSlice()
	return [6]byte{0x02, 0x5e, 0, 0, s[len(s)-2], s[len(s)-1]}
}

// requireBPF skips unless the test can load BPF programs.
func requireBPF(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_BPF, CAP_NET_ADMIN) to load XDP programs")
	}
}

// tdp is a loaded, unattached director with a fixed next-hop resolver;
// its program is run with BPF_PROG_TEST_RUN on one CPU.
type tdp struct {
	t testing.TB
	d *Dataplane
	// unresolved addresses get no next hop
	unresolved map[netip.Addr]bool
	mtu        uint16
}

func newTDP(t *testing.T, opts Options) *tdp { return newTDPFor(t, opts) }

var deadPinsOnce sync.Once

// removeDeadTestPins removes the pin directories (xd-test-PID-HASH) that
// test processes killed before their cleanup left, those whose PID no
// longer runs: bpffs keeps their maps until they are unpinned.
func removeDeadTestPins() {
	dirs, _ := filepath.Glob("/sys/fs/bpf/xd-test-*-*")
	for _, dir := range dirs {
		pid, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(filepath.Base(dir), "xd-test-"), "-", 2)[0])
		if err != nil || pid == os.Getpid() || !errors.Is(unix.Kill(pid, 0), unix.ESRCH) {
			continue
		}
		_ = RemovePinned(dir)
	}
}

func newTDPFor(t testing.TB, opts Options) *tdp {
	t.Helper()
	requireBPF(t)
	h := fnv.New32a()
	h.Write([]byte(t.Name()))
	opts.PinPath = fmt.Sprintf("/sys/fs/bpf/xd-test-%d-%x", os.Getpid(), h.Sum32())
	_ = RemovePinned(opts.PinPath)
	deadPinsOnce.Do(removeDeadTestPins)
	if opts.SyncInterval == 0 {
		opts.SyncInterval = time.Hour // tests sync explicitly
	}
	if opts.ConnTableSize == 0 {
		opts.ConnTableSize = 4096
	}
	x := &tdp{t: t, unresolved: map[netip.Addr]bool{}, mtu: 1500}
	d, err := newDataplane(opts, func(a netip.Addr, m dataplane.Method) nexthop {
		nh := nexthop{addr: a, ok: !x.unresolved[a], ifindex: 1, dmac: realMAC(a), smac: directorMAC, mtu: x.mtu, src: tunSrc}
		if a.Is6() {
			nh.src = tunSrc6
		}
		return nh
	})
	if err != nil {
		t.Fatalf("new dataplane: %v", err)
	}
	x.d = d
	// one CPU, so per-CPU cursors and counters are deterministic
	runtime.LockOSThread()
	var all, one unix.CPUSet
	_ = unix.SchedGetaffinity(0, &all)
	one.Set(0)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		t.Fatalf("pin to cpu 0: %v", err)
	}
	t.Cleanup(func() {
		_ = unix.SchedSetaffinity(0, &all)
		runtime.UnlockOSThread()
		if err := d.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return x
}

func (x *tdp) apply(svcs ...dataplane.Service) {
	x.t.Helper()
	if err := x.d.Apply(context.Background(), svcs); err != nil {
		x.t.Fatalf("apply: %v", err)
	}
}

func (x *tdp) run(frame []byte) (uint32, []byte) {
	x.t.Helper()
	out := make([]byte, len(frame)+512)
	ret, err := x.d.objs.GovsLb.Run(&ebpf.RunOptions{Data: frame, DataOut: out})
	if err != nil {
		x.t.Fatalf("prog run: %v", err)
	}
	return ret, out
}

func (x *tdp) exits() map[string]uint64 {
	x.t.Helper()
	m, err := x.d.Exits()
	if err != nil {
		x.t.Fatal(err)
	}
	return m
}

// expect runs one frame and checks the verdict and that exactly one exit
// counter, want, moved by one.
func (x *tdp) expect(frame []byte, verdict uint32, want string) []byte {
	x.t.Helper()
	before := x.exits()
	ret, out := x.run(frame)
	after := x.exits()
	if ret != verdict {
		x.t.Errorf("verdict %d, want %d", ret, verdict)
	}
	delta := map[string]uint64{}
	for k, v := range after {
		if v != before[k] {
			delta[k] = v - before[k]
		}
	}
	if diff := cmp.Diff(map[string]uint64{want: 1}, delta); diff != "" {
		x.t.Errorf("exit counters (-want +got):\n%s", diff)
	}
	return out
}

func (x *tdp) stats() dataplane.Snapshot {
	x.t.Helper()
	x.d.mu.Lock()
	x.d.synced = time.Time{}
	x.d.mu.Unlock()
	s, err := x.d.Stats(context.Background())
	if err != nil {
		x.t.Fatal(err)
	}
	return s
}

func (x *tdp) conns() []dataplane.Conn {
	x.t.Helper()
	var out []dataplane.Conn
	if err := x.d.Conns(context.Background(), func(c dataplane.Conn) bool { out = append(out, c); return true }); err != nil {
		x.t.Fatal(err)
	}
	return out
}

func svc(proto dataplane.Proto, vip netip.Addr, port uint16, schedName string, reals ...dataplane.RealServer) dataplane.Service {
	return dataplane.Service{Key: dataplane.ServiceKey{Proto: proto, Addr: vip, Port: port}, Scheduler: schedName, RealServers: reals}
}

func rsv(a netip.AddrPort, w int, m dataplane.Method) dataplane.RealServer {
	return dataplane.RealServer{Addr: a, Weight: w, Method: m}
}

func client(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
}

func client6(i int) netip.Addr {
	return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xc, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(i)})
}

func syn(c netip.Addr, cport uint16, v netip.Addr, vport uint16) pkt {
	return pkt{src: netip.AddrPortFrom(c, cport), dst: netip.AddrPortFrom(v, vport), proto: 6, flags: tcpSYN}
}

// dstMAC is the destination MAC of an output frame.
func dstMAC(out []byte) [6]byte { return [6]byte(out[0:6]) }

// TestDirectRouting covers the DR path packet by packet.
func TestDirectRouting(t *testing.T) {
	x := newTDP(t, Options{})
	x.apply(svc(dataplane.TCP, vip4, 80, "rr", rsv(rs1, 1, dataplane.DR), rsv(rs2, 1, dataplane.DR)),
		svc(dataplane.TCP, vip6, 80, "rr", rsv(rs6a, 1, dataplane.DR)))

	s := syn(client(1), 40000, vip4, 80)
	in := s.frame()
	out := x.expect(in, xdpTX, "tx_dr")
	first := dstMAC(out)
	if first != realMAC(rs1.Addr()) && first != realMAC(rs2.Addr()) {
		t.Fatalf("dst mac %x is no real server's", first)
	}
	if !bytes.Equal(out[6:12], directorMAC[:]) {
		t.Errorf("src mac %x, want director's", out[6:12])
	}
	if !bytes.Equal(out[12:len(in)], in[12:]) {
		t.Errorf("IP packet changed by direct routing")
	}

	// established: same real, state ESTABLISHED
	s.flags = tcpACK
	s.payload = []byte("GET / HTTP/1.0\r\n\r\n")
	out = x.expect(s.frame(), xdpTX, "tx_dr")
	if dstMAC(out) != first {
		t.Errorf("established packet went to %x, connection is on %x", dstMAC(out), first)
	}
	// the next connection goes to the other server (rr)
	out = x.expect(syn(client(2), 40000, vip4, 80).frame(), xdpTX, "tx_dr")
	if dstMAC(out) == first {
		t.Errorf("rr sent two new connections to %x", first)
	}
	// IPv6
	out = x.expect(syn(client6(1), 40000, vip6, 80).frame(), xdpTX, "tx_dr")
	if dstMAC(out) != realMAC(rs6a.Addr()) {
		t.Errorf("ipv6 dst mac %x", dstMAC(out))
	}

	// counters: 2 connections and 3 packets on the IPv4 service
	st := x.stats()
	var got dataplane.ServiceStats
	for _, ss := range st.Services {
		if ss.Key.Addr == vip4 {
			got = ss
		}
	}
	wantBytes := uint64(len(syn(client(1), 40000, vip4, 80).ip())*2 + len(s.ip()))
	if got.Conns != 2 || got.InPkts != 3 || got.InBytes != wantBytes {
		t.Errorf("service counters %+v, want 2 conns, 3 packets, %d bytes", got.Counters, wantBytes)
	}
	var act, inact int64
	for _, r := range got.RealServers {
		act += r.ActiveConns
		inact += r.InactiveConns
	}
	if act != 1 || inact != 1 {
		t.Errorf("active %d inactive %d, want 1 and 1", act, inact)
	}
}

// TestPassThrough: everything that is not a service packet reaches the
// kernel byte for byte, each with its own exit reason.
func TestPassThrough(t *testing.T) {
	x := newTDP(t, Options{})
	x.apply(svc(dataplane.TCP, vip4, 80, "rr", rsv(rs1, 1, dataplane.DR)),
		svc(dataplane.TCP, vip6, 80, "rr", rsv(rs6a, 1, dataplane.DR)))
	other := netip.MustParseAddr("192.0.2.99")
	ack := syn(client(1), 40001, vip4, 80)
	ack.flags = tcpACK
	tests := []struct {
		name string
		p    pkt
		want string
	}{
		{"not a VIP", syn(client(1), 40000, other, 80), "pass_no_service"},
		{"wrong port", syn(client(1), 40000, vip4, 81), "pass_no_service"},
		{"wrong protocol", pkt{src: netip.AddrPortFrom(client(1), 40000), dst: netip.AddrPortFrom(vip4, 80), proto: 17}, "pass_no_service"},
		{"tcp without syn, no connection", ack, "pass_tcp_nosyn"},
		{"fragment MF", pkt{src: netip.AddrPortFrom(client(1), 40000), dst: netip.AddrPortFrom(vip4, 80), proto: 6, flags: tcpSYN, mf: true}, "pass_fragment"},
		{"fragment offset", pkt{src: netip.AddrPortFrom(client(1), 0), dst: netip.AddrPortFrom(vip4, 0), proto: 6, fragOff: 100, payload: make([]byte, 40)}, "pass_fragment"},
		{"ipv6 fragment", pkt{src: netip.AddrPortFrom(client6(1), 40000), dst: netip.AddrPortFrom(vip6, 80), proto: 6, flags: tcpSYN, v6ext: 44}, "pass_fragment"},
		{"ipv6 hop-by-hop", pkt{src: netip.AddrPortFrom(client6(1), 40000), dst: netip.AddrPortFrom(vip6, 80), proto: 6, flags: tcpSYN, v6ext: 0}, "pass_ipv6_ext"},
		{"gre", pkt{src: netip.AddrPortFrom(client(1), 0), dst: netip.AddrPortFrom(vip4, 0), proto: 47, payload: make([]byte, 8)}, "pass_other_proto"},
		{"icmp echo", pkt{src: netip.AddrPortFrom(client(1), 0), dst: netip.AddrPortFrom(vip4, 0), proto: 1, l4override: []byte{8, 0, 0xf7, 0xff, 0, 0, 0, 0}}, "pass_icmp"},
		{"arp", pkt{src: netip.AddrPortFrom(client(1), 0), dst: netip.AddrPortFrom(vip4, 0), proto: 0, etherType: 0x0806, payload: make([]byte, 28)}, "pass_not_ip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x.t = t
			p := tt.p
			if tt.name == "ipv6 hop-by-hop" {
				p.v6ext = 0 // hop-by-hop is next header 0: build it by hand below
			}
			in := p.frame()
			if tt.name == "ipv6 hop-by-hop" {
				in = hopByHop(p)
			}
			out := x.expect(in, xdpPass, tt.want)
			if !bytes.Equal(out[:len(in)], in) {
				t.Errorf("passed frame modified")
			}
		})
	}
}

// hopByHop builds an IPv6 frame with a hop-by-hop options header.
func hopByHop(p pkt) []byte {
	f := p.frame()
	l4 := append([]byte(nil), f[14+40:]...)
	ext := []byte{6, 0, 1, 4, 0, 0, 0, 0} // next TCP, len 0, PadN
	binary.BigEndian.PutUint16(f[14+4:], uint16(len(ext)+len(l4)))
	f[14+6] = 0
	return append(append(f[:14+40], ext...), l4...)
}

func TestMalformed(t *testing.T) {
	x := newTDP(t, Options{})
	x.apply(svc(dataplane.TCP, vip4, 80, "rr", rsv(rs1, 1, dataplane.DR)))
	full := syn(client(1), 40000, vip4, 80).frame()
	for _, n := range []int{14 + 10, 14 + 20 + 10} { // truncated IP, truncated TCP
		x.expect(full[:n], xdpDrop, "drop_malformed")
	}
	full6 := syn(client6(1), 40000, vip6, 80).frame()
	x.expect(full6[:14+30], xdpDrop, "drop_malformed")
	bad := append([]byte(nil), full...)
	bad[14] = 0x44 // IHL 4
	x.expect(bad, xdpDrop, "drop_malformed")
}

// TestAttachErrors: attaching fails loudly, never silently.
func TestAttachErrors(t *testing.T) {
	requireBPF(t)
	_, err := New(Options{Interfaces: []string{"xd-no-such-if"}, PinPath: "/sys/fs/bpf/xd-test-attach"})
	if err == nil || !strings.Contains(err.Error(), `interface "xd-no-such-if"`) {
		t.Errorf("unknown interface: %v", err)
	}
	_ = RemovePinned("/sys/fs/bpf/xd-test-attach")
	if _, err := New(Options{}); err == nil {
		t.Errorf("no interface accepted")
	}
}
