package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/dataplane/xdp"
)

// TestXDPDirectRouting runs `govs run --dataplane xdp` as a user would: a
// director namespace on a bridge, two real servers prepared with
// `govs realserver setup --method dr`, a client routing the VIP via the
// director, HTTP through the VIP, and `govs list` showing Route.
func TestXDPDirectRouting(t *testing.T) { testXDP(t, "dr", "") }

// TestXDPTunnel is the same with IPIP tunnelling: the real servers
// decapsulate with `govs realserver tun` (this kernel has no ipip).
func TestXDPTunnel(t *testing.T) { testXDP(t, "tun", "") }

// TestXDPGenericMode is direct routing with `--xdp-mode generic`: the
// program runs on the socket buffer, and the director's interface
// shows it attached in generic mode (xdpgeneric), not in the driver.
func TestXDPGenericMode(t *testing.T) { testXDP(t, "dr", "generic") }

// testXDP runs the director with lb_kind method, attached in mode ("":
// the default, native).
func testXDP(t *testing.T, method, mode string) {
	if testing.Short() {
		t.Skip("short mode")
	}
	l := newVRRPLab(t) // bridge + cl/d1/d2/r1/r2 on 10.77.0.0/24
	// The director's frames leave with XDP_TX into the veth; the bridge
	// side needs an XDP program for them to be delivered (netns-testbed).
	attachPassIn(t, l.prefix+"br", fmt.Sprintf("%sv%d", l.prefix, 1))
	// The real servers pin their decapsulation program in the host's bpffs.
	var st syscall.Statfs_t
	if err := syscall.Statfs("/sys/fs/bpf", &st); err != nil || uint32(st.Type) != 0xcafe4a11 {
		if out, err := exec.Command("mount", "-t", "bpf", "bpf", "/sys/fs/bpf").CombinedOutput(); err != nil {
			t.Skipf("no bpffs on /sys/fs/bpf and cannot mount it: %v %s", err, out)
		}
	}
	for _, ns := range []string{"cl", "r1", "r2"} {
		sh(t, "ip", "netns", "exec", l.prefix+ns, "ethtool", "-K", "eth0", "tx", "off")
	}
	sh(t, "ip", "-n", l.prefix+"cl", "route", "add", "10.77.0.60/32", "via", "10.77.0.1")
	for i, r := range []string{"r1", "r2"} {
		pin := fmt.Sprintf("/sys/fs/bpf/govs-test-decap-%d-%s", os.Getpid(), r)
		t.Cleanup(func() { xdp.RemoveDecap(pin) })
		// nsenter keeps the host's mount namespace (and its bpffs, where
		// the decapsulation program is pinned); ip netns exec would not.
		out, err := exec.Command("nsenter", "--net=/run/netns/"+l.prefix+r, govsBin, "realserver", "setup", "--method", method, "--vip", "10.77.0.60", "--interface", "eth0", "--pin-path", pin).CombinedOutput()
		if err != nil {
			t.Fatalf("govs realserver setup in %s: %v\n%s", r, err, out)
		}
		out, _ = exec.Command("nsenter", "--net=/run/netns/"+l.prefix+r, govsBin, "realserver", "check", "--method", method, "--vip", "10.77.0.60", "--interface", "eth0", "--pin-path", pin).CombinedOutput()
		if !strings.Contains(string(out), "ready for "+strings.ToUpper(method)) {
			t.Fatalf("govs realserver check in %s:\n%s", r, out)
		}
		l.start(r, govsBin, "demo", "backend", "0.0.0.0:80", fmt.Sprintf("rs%d", i+1))
	}
	conf := filepath.Join(l.dir, "xdp.conf")
	os.WriteFile(conf, []byte(`global_defs {
    govs_dataplane xdp
    govs_interface eth0
}
virtual_server 10.77.0.60 80 {
    lb_algo rr
    lb_kind `+strings.ToUpper(method)+`
    delay_loop 1
    real_server 10.77.0.11 80 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 10.77.0.12 80 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
`), 0o644)
	pin := fmt.Sprintf("/sys/fs/bpf/govs-test-%d", os.Getpid())
	t.Cleanup(func() { xdp.RemovePinned(pin) })
	sock := filepath.Join(l.dir, "xdp.sock")
	args := []string{govsBin, "run", "-f", conf, "--api-socket", sock, "--xdp-pin-path", pin, "--lame-duck", "0s"}
	if mode != "" {
		args = append(args, "--xdp-mode", mode)
	}
	l.start("d1", args...)
	c := api.NewClient(sock)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := c.State(t.Context())
		if err == nil && st.Dataplane == "xdp" && len(st.Services) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("govs run --dataplane xdp did not come up: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	out, err := nsExec(l.prefix+"cl", govsBin, "demo", "client", "-timeout", "2s", "http://10.77.0.60/", "20").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "rs1=10 rs2=10 failed=0") {
		st, _ := exec.Command(govsBin, "list", "-n", "--stats", "-s", sock).CombinedOutput()
		m, _ := exec.Command("curl", "-s", "--unix-socket", sock, "http://govs/metrics").CombinedOutput()
		var exits []string
		for _, line := range strings.Split(string(m), "\n") {
			if strings.HasPrefix(line, "govs_dataplane_") && !strings.HasSuffix(line, " 0") {
				exits = append(exits, line)
			}
		}
		for _, r := range []string{"r1", "r2"} {
			o, _ := nsExec(l.prefix+r, "ip", "-s", "link", "show", "eth0").CombinedOutput()
			exits = append(exits, string(o))
		}
		t.Fatalf("client through the XDP director: %v\n%s\n%s\n%s", err, out, st, strings.Join(exits, "\n"))
	}
	cmd := exec.Command(govsBin, "list", "-n", "-s", sock)
	lst, err := cmd.CombinedOutput()
	fwd := map[string]string{"dr": "Route ", "tun": "Tunnel"}[method]
	if err != nil || !strings.Contains(string(lst), "TCP  10.77.0.60:80 rr") || !strings.Contains(string(lst), "  -> 10.77.0.11:80                "+fwd+"  1") {
		t.Fatalf("govs list:\n%s", lst)
	}
	// ip link names the attach mode before the qdisc: "xdp" in the
	// driver, "xdpgeneric" on the socket buffer.
	want := map[string]string{"": " xdp qdisc ", "generic": " xdpgeneric qdisc "}[mode]
	link, err := nsExec(l.prefix+"d1", "ip", "link", "show", "eth0").CombinedOutput()
	if err != nil || !strings.Contains(string(link), want) {
		t.Fatalf("director's eth0 should show %q: %v\n%s", want, err, link)
	}
	// the state and govs status say so too
	wantMode := map[string]string{"": "native", "generic": "generic"}[mode]
	if st, err := c.State(t.Context()); err != nil {
		t.Errorf("state: %v", err)
	} else if st.XDPMode != wantMode {
		t.Errorf("state xdp_mode %q, want %q", st.XDPMode, wantMode)
	}
	status, err := exec.Command(govsBin, "status", "-s", sock).CombinedOutput()
	if err != nil || !strings.Contains(string(status), "dataplane xdp ("+wantMode+")") {
		t.Errorf("govs status should name the mode %q: %v\n%s", wantMode, err, status)
	}
	// ipvsadm --set: timeouts changed at run time are in force and shown
	if out, err := exec.Command(govsBin, "set", "-s", sock, "--timeouts", "0,30,0").CombinedOutput(); err != nil {
		t.Errorf("govs set --timeouts: %v\n%s", err, out)
	}
	if to, err := exec.Command(govsBin, "list", "--timeout", "-s", sock).CombinedOutput(); err != nil || !strings.Contains(string(to), "Timeout (tcp tcpfin udp): 900 30 300") {
		t.Errorf("govs list --timeout after govs set --timeouts 0,30,0: %v\n%s", err, to)
	}
	stats, _ := exec.Command(govsBin, "list", "-n", "--stats", "-s", sock).CombinedOutput()
	t.Logf("%s\n%s", out, stats)
}

// attachPassIn attaches the XDP_PASS program to the bridge ports ifnames
// in namespace ns until the test ends, so that frames a director sends
// with XDP_TX or a redirect are taken (netns-testbed); the test is
// skipped where XDP cannot attach.
func attachPassIn(t *testing.T, ns string, ifnames ...string) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		t.Fatal(err)
	}
	defer netns.Set(orig)
	for _, ifname := range ifnames {
		pass, err := xdp.AttachPass(ifname)
		if err != nil {
			t.Skipf("cannot attach an XDP program here: %v", err)
		}
		t.Cleanup(func() { pass.Close() })
	}
}
