package xdp

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govs/govs/internal/dataplane"
)

// TestFTPThroughNAT: a real vsftpd behind the two-arm NAT director,
// control port 21 and the passive range 10000-10010 grouped as one
// persistent multi-port service (the firewall-mark case of seed 001
// §3.5), fetched with curl in EPSV and in PASV mode.
func TestFTPThroughNAT(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("vsftpd"); err != nil {
		t.Skip("needs vsftpd")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("needs curl")
	}
	l := newNATLab(t)
	const vip = "10.88.1.100"
	for i := 1; i <= 2; i++ {
		ns := fmt.Sprintf("rs%d", i)
		root, err := os.MkdirTemp("", "xdftp")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(root) })
		pub := filepath.Join(root, "pub")
		if err := os.Mkdir(pub, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(root, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pub, "file.txt"), []byte("served by "+ns+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		conf := filepath.Join(root, "vsftpd.conf")
		if err := os.WriteFile(conf, []byte(strings.Join([]string{
			"listen=YES", "listen_ipv6=NO", "background=NO", "listen_port=21",
			"anonymous_enable=YES", "no_anon_password=YES", "anon_root=" + pub,
			"local_enable=NO", "write_enable=NO", "seccomp_sandbox=NO",
			"pasv_enable=YES", "pasv_min_port=10000", "pasv_max_port=10010", "pasv_address=" + vip,
			"secure_chroot_dir=/var/run/vsftpd/empty", "xferlog_enable=NO", "",
		}, "\n")), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("ip", "netns", "exec", l.name(ns), "vsftpd", conf)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
	var d *Dataplane
	l.inNS("dir", func() {
		var err error
		d, err = New(Options{Interfaces: []string{"eth0", "eth1"}, PinPath: "/sys/fs/bpf/xd-e2e-ftp", SyncInterval: 200 * time.Millisecond,
			Masquerade: []netip.Prefix{netip.MustParsePrefix("10.89.0.0/24")}})
		if err != nil {
			t.Fatalf("new: %v", err)
		}
	})
	t.Cleanup(func() { d.Close() })
	s := dataplane.Service{
		Key:         dataplane.ServiceKey{FWMark: 21},
		VIPs:        []netip.Addr{netip.MustParseAddr(vip)},
		Ports:       []dataplane.PortRange{{From: 21, To: 21}, {From: 10000, To: 10010}},
		Protos:      []dataplane.Proto{dataplane.TCP},
		Scheduler:   "rr",
		Persistence: time.Minute,
		PersistMask: 32,
	}
	for i := 1; i <= 2; i++ { // port 0: keep the client's port
		s.RealServers = append(s.RealServers, dataplane.RealServer{Addr: netip.MustParseAddrPort(fmt.Sprintf("10.89.0.%d:0", 10+i)), Weight: 1, Method: dataplane.NAT})
	}
	if err := d.Apply(context.Background(), []dataplane.Service{s}); err != nil {
		t.Fatalf("apply: %v", err)
	}
	time.Sleep(300 * time.Millisecond) // vsftpd listening
	var first string
	// passive (EPSV, PASV) through the service; active (PORT): the data
	// connection from port 20 leaves through the masquerading rule
	for _, mode := range [][]string{{}, {"--disable-epsv"}, {"--ftp-port", "-"}, {}} {
		args := append([]string{"netns", "exec", l.name("cl"), "curl", "-sS", "--max-time", "5"}, mode...)
		args = append(args, "ftp://"+vip+"/file.txt")
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			ex, _ := d.Exits()
			t.Fatalf("curl %v: %v\n%s\nexits %v", mode, err, out, nonZero(ex))
		}
		got := strings.TrimSpace(string(out))
		if !strings.HasPrefix(got, "served by rs") {
			t.Fatalf("curl %v: %q", mode, got)
		}
		if first == "" {
			first = got
		} else if got != first {
			t.Errorf("persistence broken: %q then %q", first, got)
		}
		t.Logf("curl %v: %s", mode, got)
	}
}
