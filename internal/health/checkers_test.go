package health

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/notify/smtpsink"
	"github.com/vishvananda/netns"
)

var loop4 = netip.MustParseAddr("127.0.0.1")

func wantResult(t *testing.T, r Result, wantErr string) {
	t.Helper()
	switch {
	case wantErr == "" && r.Err != nil:
		t.Errorf("unexpected failure: %v", r.Err)
	case wantErr != "" && r.Err == nil:
		t.Errorf("passed (%s), want error containing %q", r.Msg, wantErr)
	case wantErr != "" && !strings.Contains(r.Err.Error(), wantErr):
		t.Errorf("error %q, want one containing %q", r.Err, wantErr)
	}
}

// silentListener accepts connections and never answers.
func silentListener(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

func TestTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	peers := make(chan netip.AddrPort, 64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			peers <- c.RemoteAddr().(*net.TCPAddr).AddrPort()
			c.Close()
		}
	}()
	defer ln.Close()
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	closed := netip.AddrPortFrom(loop4, freePort(t, "tcp"))
	bindPort := freePort(t, "tcp")
	tests := []struct {
		name     string
		spec     Spec
		wantErr  string
		wantFrom netip.AddrPort
	}{
		{name: "open", spec: Spec{Kind: TCP, Target: addr}},
		{name: "refused", spec: Spec{Kind: TCP, Target: closed}, wantErr: "connect: connection refused"},
		{name: "connect_ip/port", spec: Spec{Kind: TCP, Target: closed, ConnectIP: loop4, ConnectPort: addr.Port()}},
		{name: "bindto/bind_port", spec: Spec{Kind: TCP, Target: addr, BindTo: netip.MustParseAddr("127.0.0.2"), BindPort: bindPort},
			wantFrom: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), bindPort)},
		{name: "fwmark", spec: Spec{Kind: TCP, Target: addr, FWMark: 0x42}},
		{name: "bind_if lo", spec: Spec{Kind: TCP, Target: addr, BindIf: "lo"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if (tt.spec.FWMark != 0 || tt.spec.BindIf != "") && os.Geteuid() != 0 {
				t.Skip("SO_MARK/SO_BINDTODEVICE need root (CAP_NET_ADMIN)")
			}
			tt.spec.ConnectTimeout = 2 * time.Second
			wantResult(t, checkOnce(t, tt.spec), tt.wantErr)
			if !tt.wantFrom.IsValid() {
				return
			}
			// earlier subtests' connections may still be queued
			var seen []netip.AddrPort
			timeout := time.After(5 * time.Second)
			for {
				select {
				case got := <-peers:
					if got == tt.wantFrom {
						return
					}
					seen = append(seen, got)
				case <-timeout:
					t.Fatalf("no connection from %s; saw %v", tt.wantFrom, seen)
				}
			}
		})
	}
	t.Run("ipv6", func(t *testing.T) {
		ln6, err := net.Listen("tcp", "[::1]:0")
		if err != nil {
			t.Skipf("no IPv6 loopback: %v", err)
		}
		defer ln6.Close()
		go func() {
			for {
				c, err := ln6.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		a := ln6.Addr().(*net.TCPAddr).AddrPort()
		wantResult(t, checkOnce(t, Spec{Kind: TCP, Target: a, BindTo: netip.IPv6Loopback()}), "")
		wantResult(t, checkOnce(t, Spec{Kind: TCP, Target: netip.AddrPortFrom(netip.IPv6Loopback(), closed.Port())}), "connect: connection refused")
	})
	t.Run("accepts but never answers", func(t *testing.T) {
		// TCP_CHECK only needs the handshake: passes. send/expect times out.
		silent := silentListener(t)
		wantResult(t, checkOnce(t, Spec{Kind: TCP, Target: silent}), "")
		r := checkOnce(t, Spec{Kind: SendExpect, Target: silent, ConnectTimeout: 300 * time.Millisecond,
			SendExpect: &SendExpectSpec{Send: `GET / HTTP/1.0\r\n\r\n`, Expect: "HTTP"}})
		wantResult(t, r, "expect: timeout")
		r = checkOnce(t, Spec{Kind: HTTPGet, Target: silent, ConnectTimeout: 300 * time.Millisecond})
		wantResult(t, r, "read response: timeout")
	})
}

func TestSendExpectAgainstVsftpd(t *testing.T) {
	bin := needBinary(t, "vsftpd", "vsftpd")
	if os.Geteuid() != 0 {
		t.Skip("vsftpd needs root to start (it checks its config owner and chroots); skipping")
	}
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	port := freePort(t, "tcp")
	conf := fmt.Sprintf(`listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port=%d
background=NO
anonymous_enable=YES
no_anon_password=YES
anon_root=%[2]s
local_enable=NO
write_enable=NO
seccomp_sandbox=NO
secure_chroot_dir=%[2]s
xferlog_enable=NO
vsftpd_log_file=%[3]s/vsftpd.log
`, port, empty, dir)
	confFile := filepath.Join(dir, "vsftpd.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startPeer(t, bin, confFile)
	target := netip.AddrPortFrom(loop4, port)
	waitTCP(t, target.String())
	tests := []struct {
		name    string
		se      SendExpectSpec
		wantErr string
	}{
		// seed 001: send "quit", expect "220"
		{"quit/220", SendExpectSpec{Send: "quit", Expect: "220"}, ""},
		{"quit crlf/221", SendExpectSpec{Send: `quit\r\n`, Expect: "221 Goodbye"}, ""},
		{"regex", SendExpectSpec{Send: `quit\r\n`, Expect: `^220 \(vsFTPd [0-9.]+\)`, UseRegex: true}, ""},
		{"connect only", SendExpectSpec{}, ""},
		{"wrong expect", SendExpectSpec{Send: `quit\r\n`, Expect: "230"}, `expect: "230" not found in reply "220 (vsFTPd`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			se := tt.se
			r := checkOnce(t, Spec{Kind: SendExpect, Target: target, ConnectTimeout: 3 * time.Second, SendExpect: &se})
			wantResult(t, r, tt.wantErr)
		})
	}
	p.stop()
	r := checkOnce(t, Spec{Kind: SendExpect, Target: target, SendExpect: &SendExpectSpec{Send: "quit", Expect: "220"}})
	wantResult(t, r, "connect: connection refused")
}

func TestDNSAgainstDnsmasq(t *testing.T) {
	bin := needBinary(t, "dnsmasq", "dnsmasq")
	port := freePort(t, "both")
	p := startPeer(t, bin, "--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		"--listen-address=127.0.0.1", "--bind-interfaces", fmt.Sprintf("--port=%d", port),
		"--user=root", "--pid-file=",
		"--address=/www.example.test/192.0.2.10",
		"--address=/www.example.test/2001:db8::10",
		"--mx-host=example.test,mail.example.test,10",
		"--host-record=v4only.example.test,192.0.2.11",
		"--local=/example.test/",
		"--txt-record=example.test,\"v=govs\"")
	target := netip.AddrPortFrom(loop4, port)
	ok := false
	for range 50 {
		if r := checkOnce(t, Spec{Kind: DNS, Target: target, ConnectTimeout: 200 * time.Millisecond, DNS: &DNSSpec{Type: "A", Name: "www.example.test"}}); r.Err == nil {
			ok = true
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !ok {
		t.Fatalf("dnsmasq did not answer; log:\n%s", p.logText())
	}
	tests := []struct {
		typ, name string
		wantErr   string
	}{
		{"A", "www.example.test", ""},
		{"AAAA", "www.example.test", ""},
		{"MX", "example.test", ""},
		{"TXT", "example.test", ""},
		{"AAAA", "v4only.example.test", ""}, // NOERROR without answers passes, as in keepalived
		{"A", "nothing.example.test", "rcode NXDOMAIN"},
		{"A", "outside.test", "rcode REFUSED"}, // no upstream
	}
	for _, tt := range tests {
		t.Run(tt.typ+" "+tt.name, func(t *testing.T) {
			r := checkOnce(t, Spec{Kind: DNS, Target: target, ConnectTimeout: time.Second, DNS: &DNSSpec{Type: tt.typ, Name: tt.name}})
			wantResult(t, r, tt.wantErr)
		})
	}
	p.stop()
	r := checkOnce(t, Spec{Kind: DNS, Target: target, ConnectTimeout: time.Second, DNS: &DNSSpec{Type: "A", Name: "www.example.test"}})
	wantResult(t, r, "query: connection refused")
}

// udpEcho answers every datagram with prefix+payload.
func udpEcho(t *testing.T, prefix []byte) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(append(append([]byte(nil), prefix...), buf[:n]...), from)
		}
	}()
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

func TestUDP(t *testing.T) {
	echo := udpEcho(t, nil)
	tagged := udpEcho(t, []byte{0xca, 0xfe})
	closed := netip.AddrPortFrom(loop4, freePort(t, "udp"))
	silentPC, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silentPC.Close()
	silent := silentPC.LocalAddr().(*net.UDPAddr).AddrPort()
	payload := []byte{0x01, 0x02, 0x03, 0x04}
	tests := []struct {
		name    string
		target  netip.AddrPort
		udp     UDPSpec
		wantErr string
	}{
		{"echo require_reply", echo, UDPSpec{Payload: payload, RequireReply: true}, ""},
		{"echo pattern", echo, UDPSpec{Payload: payload, RequireReply: true, ReplyPattern: "0102 X3"}, ""},
		{"echo wrong pattern", echo, UDPSpec{Payload: payload, RequireReply: true, ReplyPattern: "0103"}, "does not match require_reply"},
		{"tagged pattern", tagged, UDPSpec{Payload: payload, RequireReply: true, ReplyPattern: "CAFE 01"}, ""},
		{"too long", tagged, UDPSpec{Payload: payload, RequireReply: true, MaxReplyLength: 5}, "length 6 outside 0-5"},
		{"too short", echo, UDPSpec{Payload: payload, RequireReply: true, MinReplyLength: 10}, "length 4 outside 10-255"},
		{"port unreachable", closed, UDPSpec{Payload: payload}, "reply: connection refused"},
		{"port unreachable require_reply", closed, UDPSpec{RequireReply: true}, "reply: connection refused"},
		{"silent without require_reply", silent, UDPSpec{Payload: payload}, ""},
		{"silent with require_reply", silent, UDPSpec{Payload: payload, RequireReply: true}, "reply: timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := tt.udp
			r := checkOnce(t, Spec{Kind: UDP, Target: tt.target, ConnectTimeout: 300 * time.Millisecond, UDP: &u})
			wantResult(t, r, tt.wantErr)
		})
	}
}

func TestSMTPCheck(t *testing.T) {
	sink, err := smtpsink.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	target := netip.MustParseAddrPort(sink.Addr())
	wantResult(t, checkOnce(t, Spec{Kind: SMTP, Target: target, SMTP: &SMTPSpec{HeloName: "director.example.test"}}), "")
	bad, err := smtpsink.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bad.SetGreeting("554 no service here")
	defer bad.Close()
	wantResult(t, checkOnce(t, Spec{Kind: SMTP, Target: netip.MustParseAddrPort(bad.Addr())}), "greeting: unexpected reply 554 no service here")
	silent := silentListener(t)
	wantResult(t, checkOnce(t, Spec{Kind: SMTP, Target: silent, ConnectTimeout: 300 * time.Millisecond}), "greeting: timeout")
}

func TestPing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("PING_CHECK needs root or ping_group_range covering this gid")
	}
	for _, addr := range []string{"127.0.0.1", "::1"} {
		t.Run(addr, func(t *testing.T) {
			r := checkOnce(t, Spec{Kind: Ping, Target: netip.AddrPortFrom(netip.MustParseAddr(addr), 0), ConnectTimeout: 2 * time.Second})
			if r.Err != nil && addr == "::1" {
				if _, err := os.Stat("/proc/sys/net/ipv6"); err != nil {
					t.Skip("no IPv6 in this kernel")
				}
			}
			wantResult(t, r, "")
		})
	}
	t.Run("no answer", func(t *testing.T) {
		// In a namespace of our own that ignores echo requests, and where
		// 10.99.0.2 has no route.
		inNetns(t, "hcping", []string{"sysctl -q -w net.ipv4.icmp_echo_ignore_all=1"}, func() {
			r := checkOnce(t, Spec{Kind: Ping, Target: netip.AddrPortFrom(loop4, 0), ConnectTimeout: 300 * time.Millisecond})
			wantResult(t, r, "echo reply: timeout")
			r = checkOnce(t, Spec{Kind: Ping, Target: netip.MustParseAddrPort("10.99.0.2:0"), ConnectTimeout: 300 * time.Millisecond})
			wantResult(t, r, "network is unreachable")
		})
	})
}

// inNetns creates network namespace name (lo up, then setup commands run
// inside it), runs fn on a thread switched into it, and deletes it.
func inNetns(t *testing.T, name string, setup []string, fn func()) {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip (iproute2) not installed")
	}
	_ = exec.Command("ip", "netns", "del", name).Run()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	for _, c := range append([]string{"ip link set lo up"}, setup...) {
		args := append([]string{"netns", "exec", name}, strings.Fields(c)...)
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", c, err, out)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // the thread dies with the goroutine: never unlocked
		orig, err := netns.Get()
		if err != nil {
			t.Error(err)
			return
		}
		defer orig.Close()
		h, err := netns.GetFromName(name)
		if err != nil {
			t.Error(err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			t.Error(err)
			return
		}
		fn()
	}()
	<-done
}

func TestFileCheck(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "weight")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name       string
		content    string
		file       FileSpec
		wantErr    string
		wantWeight *int
	}{
		{"weight 0: zero ok", "0\n", FileSpec{Weight: intp(0)}, "", nil},
		{"weight 0: non-zero fails", "1\n", FileSpec{Weight: intp(0)}, "value 1", nil},
		// keepalived 2.2.7: weight 0 reverse fails on zero
		{"weight 0 reverse: zero fails", "0\n", FileSpec{Weight: intp(0), Reverse: true}, "value 0 (weight 0 reverse)", nil},
		{"weight 0 reverse: non-zero ok", "7\n", FileSpec{Weight: intp(0), Reverse: true}, "", nil},
		{"multiplier", "5", FileSpec{Weight: intp(2)}, "", intp(10)},
		{"reverse", "5", FileSpec{Weight: intp(2), Reverse: true}, "", intp(-10)},
		// keepalived's strtol: text is 0 (which weight 1 takes as OK),
		// a fraction is cut, hex and octal are read
		{"text is 0", "abc", FileSpec{Weight: intp(1)}, "", intp(0)},
		{"fraction", "2.5", FileSpec{Weight: intp(2)}, "", intp(4)},
		{"hex", "0x10", FileSpec{Weight: intp(1)}, "", intp(16)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			write(tt.content)
			f := tt.file
			f.Path = path
			r := checkOnce(t, Spec{Kind: File, File: &f})
			wantResult(t, r, tt.wantErr)
			if tt.wantWeight != nil && (r.Weight == nil || *r.Weight != *tt.wantWeight) {
				t.Errorf("weight %v, want %d", r.Weight, *tt.wantWeight)
			}
		})
	}
	// a number outside 32 bits: ignored, the last value kept (0 before
	// any), as keepalived 2.2.7's process_track_file
	t.Run("out of range keeps the last value", func(t *testing.T) {
		s := Spec{Kind: File, File: &FileSpec{Path: path, Weight: intp(2)}}.Defaults()
		c, err := New(s, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, step := range []struct {
			content string
			want    int
		}{{"4294967296", 0}, {"3", 6}, {"-2147483649", 6},
			// in range: taken; value × weight bounded to 32 bits
			{"0x7fffffff", 1<<31 - 1}} {
			write(step.content)
			r := c.Check(t.Context())
			if r.Err != nil || r.Weight == nil || *r.Weight != step.want {
				t.Errorf("%q: %+v (weight %v), want weight %d", step.content, r, r.Weight, step.want)
			}
		}
	})
	os.Remove(path)
	wantResult(t, checkOnce(t, Spec{Kind: File, File: &FileSpec{Path: path}}), "no such file")
}
