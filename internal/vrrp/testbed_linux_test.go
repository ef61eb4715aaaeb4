package vrrp

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// requireRoot skips tests that need root and network namespaces.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and raw sockets")
	}
	if testing.Short() {
		t.Skip("network namespace test skipped in -short mode")
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ipn runs "ip -n ns args...".
func ipn(t *testing.T, ns string, args ...string) string {
	t.Helper()
	return run(t, "ip", append([]string{"-n", ns}, args...)...)
}

// addNetns creates a namespace with lo up, removed at cleanup.
func addNetns(t *testing.T, name string, ipv6 bool) {
	t.Helper()
	exec.Command("ip", "netns", "del", name).Run()
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	ipn(t, name, "link", "set", "lo", "up")
	sysctl := func(k, v string) { run(t, "ip", "netns", "exec", name, "sysctl", "-qw", k+"="+v) }
	if ipv6 {
		sysctl("net.ipv6.conf.all.accept_dad", "0")
		sysctl("net.ipv6.conf.default.accept_dad", "0")
	} else {
		sysctl("net.ipv6.conf.all.disable_ipv6", "1")
		sysctl("net.ipv6.conf.default.disable_ipv6", "1")
	}
}

// plug connects host namespace ns (interface ifname) to the bridge br in
// namespace sw, or directly to peerNS/peerIf when br is empty.
func plug(t *testing.T, sw, br, port, ns, ifname string) {
	t.Helper()
	run(t, "ip", "link", "add", port, "netns", sw, "type", "veth", "peer", "name", ifname, "netns", ns)
	if br != "" {
		ipn(t, sw, "link", "set", port, "master", br)
	}
	ipn(t, sw, "link", "set", port, "up")
	ipn(t, ns, "link", "set", ifname, "up")
}

func hasAddr(t *testing.T, ns, ifname, addr string) bool {
	t.Helper()
	out := ipn(t, ns, "-o", "addr", "show", "dev", ifname)
	return strings.Contains(out, " "+addr+"/")
}

func linkMAC(t *testing.T, ns, ifname string) net.HardwareAddr {
	t.Helper()
	h, err := nsHandle(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	l, err := h.LinkByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().HardwareAddr
}

func nsHandle(ns string) (*netlink.Handle, error) {
	n, err := netns.GetFromName(ns)
	if err != nil {
		return nil, err
	}
	defer n.Close()
	return netlink.NewHandleAt(n)
}

// inNetns runs fn on a thread switched into namespace ns.
func inNetns(ns string, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	target, err := netns.GetFromName(ns)
	if err != nil {
		return err
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return err
	}
	defer netns.Set(orig)
	return fn()
}

// frame is one captured Ethernet frame.
type frame struct {
	at       time.Time
	data     []byte
	outgoing bool
}

// capture records frames on one interface of a namespace with a packet
// socket until stopped (at most 20000 frames).
type capture struct {
	mu     sync.Mutex
	frames []frame
	stop   chan struct{}
	done   chan struct{}
}

func startCapture(t *testing.T, ns, ifname string) *capture {
	t.Helper()
	var fd int
	err := inNetns(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			return err
		}
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100000})
	})
	if err != nil {
		t.Fatalf("capture on %s/%s: %v", ns, ifname, err)
	}
	c := &capture{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer unix.Close(fd)
		buf := make([]byte, 2048)
		for {
			select {
			case <-c.stop:
				return
			default:
			}
			n, from, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				continue
			}
			out := false
			if ll, ok := from.(*unix.SockaddrLinklayer); ok {
				out = ll.Pkttype == unix.PACKET_OUTGOING
			}
			c.mu.Lock()
			if len(c.frames) < 20000 {
				c.frames = append(c.frames, frame{at: time.Now(), data: append([]byte(nil), buf[:n]...), outgoing: out})
			}
			c.mu.Unlock()
		}
	}()
	t.Cleanup(c.close)
	return c
}

func (c *capture) close() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
}

func (c *capture) snapshot() []frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]frame(nil), c.frames...)
}

// garps returns the times of gratuitous ARPs announcing ip from mac.
func (c *capture) garps(mac net.HardwareAddr, ip netip.Addr) []time.Time {
	var out []time.Time
	v := ip.As4()
	for _, f := range c.snapshot() {
		d := f.data
		if len(d) < 42 || d[12] != 0x08 || d[13] != 0x06 {
			continue
		}
		a := d[14:]
		if bytes.Equal(a[8:14], mac) && bytes.Equal(a[14:18], v[:]) && bytes.Equal(a[24:28], v[:]) {
			out = append(out, f.at)
		}
	}
	return out
}

// unsolicitedNAs returns the times of neighbour advertisements for target
// sent from mac.
func (c *capture) unsolicitedNAs(mac net.HardwareAddr, target netip.Addr) []time.Time {
	var out []time.Time
	tg := target.As16()
	for _, f := range c.snapshot() {
		d := f.data
		if len(d) < 14+40+24 || d[12] != 0x86 || d[13] != 0xdd || !bytes.Equal(d[6:12], mac) {
			continue
		}
		ip := d[14:]
		if ip[6] != 58 {
			continue
		}
		icmp := ip[40:]
		if icmp[0] == 136 && bytes.Equal(icmp[8:24], tg[:]) {
			out = append(out, f.at)
		}
	}
	return out
}

// vrrpPacket is a captured VRRP packet.
type vrrpPacket struct {
	at       time.Time
	src, dst netip.Addr
	ttl      int
	payload  []byte
	// iphdr and ah are an AH packet's IPv4 header and its payload (the
	// AH header and payload)
	iphdr, ah []byte
}

func (c *capture) vrrp() []vrrpPacket {
	var out []vrrpPacket
	for _, f := range c.snapshot() {
		d := f.data
		if len(d) < 14 {
			continue
		}
		et := binary.BigEndian.Uint16(d[12:])
		ip := d[14:]
		switch {
		case et == 0x0800 && len(ip) >= 20 && ip[9] == IPProto:
			hl := int(ip[0]&0xf) * 4
			tl := int(binary.BigEndian.Uint16(ip[2:]))
			if tl > len(ip) || hl > tl {
				continue
			}
			src, _ := netip.AddrFromSlice(ip[12:16])
			dst, _ := netip.AddrFromSlice(ip[16:20])
			out = append(out, vrrpPacket{at: f.at, src: src, dst: dst, ttl: int(ip[8]), payload: ip[hl:tl]})
		case et == 0x0800 && len(ip) >= 20 && ip[9] == protoAH:
			hl := int(ip[0]&0xf) * 4
			tl := int(binary.BigEndian.Uint16(ip[2:]))
			if tl > len(ip) || hl+ahLen > tl {
				continue
			}
			src, _ := netip.AddrFromSlice(ip[12:16])
			dst, _ := netip.AddrFromSlice(ip[16:20])
			out = append(out, vrrpPacket{at: f.at, src: src, dst: dst, ttl: int(ip[8]), payload: ip[hl+ahLen : tl],
				iphdr: ip[:hl], ah: ip[hl:tl]})
		case et == 0x86dd && len(ip) >= 40 && ip[6] == IPProto:
			pl := int(binary.BigEndian.Uint16(ip[4:]))
			if 40+pl > len(ip) {
				continue
			}
			src, _ := netip.AddrFromSlice(ip[8:24])
			dst, _ := netip.AddrFromSlice(ip[24:40])
			out = append(out, vrrpPacket{at: f.at, src: src, dst: dst, ttl: int(ip[7]), payload: ip[40 : 40+pl]})
		}
	}
	return out
}

// keepalived runs the real keepalived in a namespace.
type keepalived struct {
	t      *testing.T
	ns     string
	dir    string
	conf   string
	notify string
	cmd    *exec.Cmd
	log    *bytes.Buffer
	done   chan struct{}
}

func newKeepalived(t *testing.T, ns, conf string) *keepalived {
	t.Helper()
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Skip("keepalived not installed (apt-get install keepalived)")
	}
	dir := t.TempDir()
	k := &keepalived{t: t, ns: ns, dir: dir, notify: dir + "/notify.log"}
	script := dir + "/notify.sh"
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$(date +%s.%N) $1 $2 $3 $4\" >> "+k.notify+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	k.conf = dir + "/keepalived.conf"
	conf = strings.ReplaceAll(conf, "@NOTIFY@", script)
	if err := os.WriteFile(k.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		k.kill(unix.SIGKILL)
		if t.Failed() {
			t.Logf("keepalived log (%s):\n%s", ns, k.logText())
		}
	})
	return k
}

func (k *keepalived) start() {
	k.t.Helper()
	k.log = &bytes.Buffer{}
	// A killed keepalived leaves pid files (and possibly an unreaped
	// child) behind that make the next start refuse to run.
	os.Remove(k.dir + "/keepalived.pid")
	os.Remove(k.dir + "/vrrp.pid")
	k.cmd = exec.Command("ip", "netns", "exec", k.ns, "keepalived", "-n", "-l", "-D", "-G", "-P", "-R",
		"-f", k.conf, "-p", k.dir+"/keepalived.pid", "-r", k.dir+"/vrrp.pid")
	k.cmd.Stdout, k.cmd.Stderr = &lockedWriter{w: k.log}, &lockedWriter{w: k.log}
	k.cmd.SysProcAttr = &unix.SysProcAttr{Setpgid: true}
	if err := k.cmd.Start(); err != nil {
		k.t.Fatalf("start keepalived: %v", err)
	}
	k.done = make(chan struct{})
	go func(c *exec.Cmd, d chan struct{}) { c.Wait(); close(d) }(k.cmd, k.done)
}

// kill signals keepalived's whole process group and waits for it.
func (k *keepalived) kill(sig unix.Signal) {
	if k.cmd == nil || k.cmd.Process == nil {
		return
	}
	unix.Kill(-k.cmd.Process.Pid, sig)
	select {
	case <-k.done:
	case <-time.After(5 * time.Second):
		unix.Kill(-k.cmd.Process.Pid, unix.SIGKILL)
		<-k.done
	}
	k.cmd = nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (k *keepalived) logText() string {
	if k.log == nil {
		return ""
	}
	return k.log.String()
}

// notifications returns the states keepalived's notify script recorded,
// with their times.
type kaNote struct {
	at    time.Time
	state string
}

func (k *keepalived) notes() []kaNote {
	b, _ := os.ReadFile(k.notify)
	var out []kaNote
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		if len(f) < 4 {
			continue
		}
		var sec, nsec int64
		fmt.Sscanf(f[0], "%d.%d", &sec, &nsec)
		out = append(out, kaNote{at: time.Unix(sec, nsec), state: f[3]})
	}
	return out
}

// lastState is keepalived's last state as its log says ("Entering X
// STATE"): its notify scripts run concurrently, and two transitions a
// millisecond apart (MASTER, then BACKUP on the next advert) may append
// to the notify log in either order.
func (k *keepalived) lastState() string {
	log := k.logText()
	state := ""
	for _, s := range []string{"MASTER", "BACKUP", "FAULT"} {
		if i := strings.LastIndex(log, "Entering "+s+" STATE"); i >= 0 && (state == "" || i > strings.LastIndex(log, "Entering "+state+" STATE")) {
			state = s
		}
	}
	if state != "" {
		return state
	}
	n := k.notes()
	if len(n) == 0 {
		return ""
	}
	return n[len(n)-1].state
}

// waitFor polls cond every 10 ms until it holds or the timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// govsInProcess runs a Node inside namespace ns through LinuxOptions.NetNS.
type govsInProcess struct {
	node   *Node
	cancel context.CancelFunc
	done   chan error
}

func startGovs(t *testing.T, ns string, cfg InstanceConfig, mods ...func(*Options)) *govsInProcess {
	t.Helper()
	sys, err := NewLinuxSystem(LinuxOptions{NetNS: ns})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Instances: []InstanceConfig{cfg}, System: sys,
		Logger: slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	for _, m := range mods {
		m(&opts)
	}
	n, err := NewNode(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &govsInProcess{node: n, cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := n.Run(ctx)
		if err != nil {
			t.Errorf("govs node: %v", err)
		}
		sys.Close()
		g.done <- err
	}()
	t.Cleanup(g.stop)
	return g
}

// testLogWriter sends the node's log to t.Log.
type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (g *govsInProcess) stop() {
	if g.cancel == nil {
		return
	}
	g.cancel()
	<-g.done
	g.cancel = nil
}

func (g *govsInProcess) status() InstanceStatus { return g.node.Status()[0] }
