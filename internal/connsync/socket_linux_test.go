package connsync

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/govs/govs/internal/dataplane"
)

// TestReceiverChild is the receiving process of TestReceiverSocket.
func TestReceiverChild(t *testing.T) {
	if os.Getenv("CS_RECEIVER_CHILD") == "" {
		t.Skip("helper process of TestReceiverSocket")
	}
	dp := &fakeDP{}
	cfg := Config{Interface: "eth0", SyncID: 3}
	if g := os.Getenv("CS_RECEIVER_GROUP"); g != "" {
		cfg.Group = netip.MustParseAddr(g)
	}
	d, err := New(cfg, dp, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.SetRole(RoleBackup)
	defer d.Close()
	fmt.Println("ready")
	last := ""
	for range 400 { // until killed (20 s)
		b, _ := json.Marshal(d.Stats())
		if string(b) != last {
			last = string(b)
			fmt.Println(last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReceiverSocket: the backup's socket takes the group's multicast on
// its interface and nothing sent to the director's own address (a
// receiver bound to the wildcard would take unicast from anywhere that
// can route to it).
func TestReceiverSocket(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	t.Run("ipv4", func(t *testing.T) {
		testReceiverSocket(t, "", "224.0.0.81:8848", "10.66.0.1:8848")
	})
	t.Run("ipv6", func(t *testing.T) {
		testReceiverSocket(t, "ff02::81", "[ff02::81%eth0]:8848", "[fd66::1]:8848")
	})
}

// testReceiverSocket runs a receiver on group (the default when "") and
// sends to it at groupDst and to the receiver's own address at
// unicastDst.
func testReceiverSocket(t *testing.T, group, groupDst, unicastDst string) {
	rx, tx := "cs-rx", "cs-tx"
	for _, ns := range []string{rx, tx} {
		_ = exec.Command("ip", "netns", "del", ns).Run()
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Fatalf("%v %s", err, out)
		}
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	for _, c := range [][]string{
		{"ip", "link", "add", "eth0", "netns", rx, "type", "veth", "peer", "name", "eth0", "netns", tx},
		{"ip", "netns", "exec", rx, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.eth0.accept_dad=0"},
		{"ip", "netns", "exec", tx, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.eth0.accept_dad=0"},
		{"ip", "-n", rx, "addr", "add", "10.66.0.1/24", "dev", "eth0"},
		{"ip", "-n", tx, "addr", "add", "10.66.0.2/24", "dev", "eth0"},
		{"ip", "-n", rx, "addr", "add", "fd66::1/64", "dev", "eth0", "nodad"},
		{"ip", "-n", tx, "addr", "add", "fd66::2/64", "dev", "eth0", "nodad"},
		{"ip", "-n", rx, "link", "set", "eth0", "up"},
		{"ip", "-n", tx, "link", "set", "eth0", "up"},
		{"ip", "-n", tx, "route", "add", "224.0.0.0/4", "dev", "eth0"},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", c, err, out)
		}
	}
	cmd := exec.Command("ip", "netns", "exec", rx, os.Args[0], "-test.run=^TestReceiverChild$", "-test.v")
	cmd.Env = append(os.Environ(), "CS_RECEIVER_CHILD=1", "CS_RECEIVER_GROUP="+group)
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	stats := make(chan Stats, 100)
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "ready" {
				ready <- true
			}
			var s Stats
			if strings.HasPrefix(sc.Text(), "{") && json.Unmarshal(sc.Bytes(), &s) == nil {
				stats <- s
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("receiver not ready")
	}
	time.Sleep(300 * time.Millisecond) // joined

	msgs, err := Encode(3, []Entry{{Proto: 6, Flags: FlagDRoute, State: 1, Client: ap("10.0.0.1:1000"),
		Virtual: ap("10.0.0.100:80"), Real: ap("10.0.0.11:80"), Timeout: 900}}, 1472)
	if err != nil {
		t.Fatal(err)
	}
	two, err := Encode(3, []Entry{
		{Proto: 6, Flags: FlagDRoute, State: 1, Client: ap("10.0.0.2:1000"), Virtual: ap("10.0.0.100:80"), Real: ap("10.0.0.11:80"), Timeout: 900},
		{Proto: 6, Flags: FlagDRoute, State: 1, Client: ap("10.0.0.3:1000"), Virtual: ap("10.0.0.100:80"), Real: ap("10.0.0.11:80"), Timeout: 900},
	}, 1472)
	if err != nil {
		t.Fatal(err)
	}
	send := func(dst string, msg []byte) {
		t.Helper()
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		orig, _ := netns.Get()
		defer orig.Close()
		h, err := netns.GetFromName(tx)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		_ = netns.Set(h)
		defer netns.Set(orig)
		c, err := net.Dial("udp", dst)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	waitFor := func(ok func(Stats) bool) (Stats, bool) {
		deadline := time.After(2 * time.Second)
		var last Stats
		for {
			select {
			case s := <-stats:
				last = s
				if ok(s) {
					return s, true
				}
			case <-deadline:
				return last, false
			}
		}
	}
	// the group's message first (the receiver listens), then a unicast
	// one to the director's address, then the group's again: only the
	// two group messages are taken
	send(groupDst, msgs[0])
	if s, ok := waitFor(func(s Stats) bool { return s.MessagesReceived == 1 && s.ConnsReceived == 1 }); !ok {
		t.Fatalf("the group's message was not taken: %+v", s)
	}
	send(unicastDst, two[0]) // two connections: it would show
	send(groupDst, msgs[0])
	s, ok := waitFor(func(s Stats) bool { return s.MessagesReceived >= 2 })
	time.Sleep(300 * time.Millisecond) // anything later
	for more := true; more; {
		select {
		case s = <-stats:
		default:
			more = false
		}
	}
	if !ok || s.MessagesReceived != 2 || s.ConnsReceived != 2 {
		t.Errorf("after a unicast and a group message: %+v, want 2 messages of one connection each (the unicast one not taken)", s)
	}
	_ = dataplane.TCP
}
