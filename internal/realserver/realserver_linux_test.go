package realserver

import (
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
)

// inNetns runs fn in a new network namespace on a locked thread (root
// only), so that the host's lo and sysctls are never touched.
func inNetns(t *testing.T, fn func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		t.Skipf("cannot create a network namespace: %v", err)
	}
	defer func() {
		netns.Set(orig)
		ns.Close()
	}()
	// /proc/sys/net is resolved in the network namespace of the thread
	// that opens it, so the sysctls below are the new namespace's.
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Logf("ip link set lo up: %v %s", err, out)
	}
	fn()
}

func TestDRSetupCheckUndo(t *testing.T) {
	inNetns(t, func() {
		s := Spec{Method: DR, VIPs: []netip.Addr{netip.MustParseAddr("192.0.2.80"), netip.MustParseAddr("2001:db8::80")}}
		ps, err := Check(s)
		if err != nil {
			t.Fatal(err)
		}
		text := Summary(ps)
		if !strings.Contains(text, "192.0.2.80 is not on lo") || !strings.Contains(text, "arp_ignore is 0, want 1") {
			t.Fatalf("check before setup:\n%s", text)
		}
		if err := Setup(s); err != nil {
			t.Fatal(err)
		}
		if err := Setup(s); err != nil {
			t.Fatalf("second setup (idempotent): %v", err)
		}
		ps, err = Check(s)
		if err != nil || len(ps) != 0 {
			t.Fatalf("check after setup: %v\n%s", err, Summary(ps))
		}
		if err := Undo(s); err != nil {
			t.Fatal(err)
		}
		ps, _ = Check(s)
		if !strings.Contains(Summary(ps), "192.0.2.80 is not on lo") {
			t.Errorf("undo left the address:\n%s", Summary(ps))
		}
	})
}

func TestValidate(t *testing.T) {
	for _, s := range []Spec{
		{Method: "nat", VIPs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}},
		{Method: DR},
		{Method: TUN, VIPs: []netip.Addr{netip.MustParseAddr("192.0.2.1")}},
	} {
		if s.Validate() == nil {
			t.Errorf("%+v: no error", s)
		}
	}
}
