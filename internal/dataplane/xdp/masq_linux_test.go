package xdp

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/govs/govs/internal/dataplane"
)

func TestMasqScript(t *testing.T) {
	got := masqScript([]netip.Prefix{netip.MustParsePrefix("10.89.0.7/24"), netip.MustParsePrefix("fd89::/64"), netip.MustParsePrefix("10.90.0.0/16")})
	for _, want := range []string{
		"delete table inet govs_xdp\n",
		"type nat hook postrouting priority srcnat;",
		"ip saddr { 10.89.0.0/24, 10.90.0.0/16 } ip daddr != { 10.89.0.0/24, 10.90.0.0/16 } masquerade",
		"ip6 saddr { fd89::/64 } ip6 daddr != { fd89::/64 } masquerade",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("script lacks %q:\n%s", want, got)
		}
	}
	if strings.Index(got, "table inet govs_xdp {}") > strings.Index(got, "delete table") {
		t.Errorf("the table must be created before it is deleted (idempotent reload):\n%s", got)
	}
}

// TestMasqueradeLeftoverRemoved: a stop that keeps the state for a
// restart (KeepOnClose) keeps the masquerading table too; a govs
// started without Masquerade removes it.
func TestMasqueradeLeftoverRemoved(t *testing.T) {
	requireBPF(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs nft")
	}
	vethInEmptyNS(t, "mq0", "mq1")
	pin := "/sys/fs/bpf/xd-masq-leftover"
	t.Cleanup(func() { _ = RemovePinned(pin) })
	exists := func() bool {
		return exec.Command("nft", "list", "table", "inet", masqTable).Run() == nil
	}
	d, err := New(Options{Interfaces: []string{"mq0"}, PinPath: pin, KeepOnClose: true, Masquerade: []netip.Prefix{netip.MustParsePrefix("10.89.0.0/24")}})
	if err != nil {
		t.Fatal(err)
	}
	if !exists() {
		t.Fatal("no masquerading table after New with Masquerade")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if !exists() {
		t.Fatal("KeepOnClose removed the masquerading table")
	}
	d, err = New(Options{Interfaces: []string{"mq0"}, PinPath: pin, KeepOnClose: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if exists() {
		t.Error("a govs started without Masquerade left the earlier one's table in place")
	}
}

// TestAttachModeChange: a restart asked to attach in another mode than
// the pinned link's re-attaches instead of keeping the old mode.
func TestAttachModeChange(t *testing.T) {
	requireBPF(t)
	vethInEmptyNS(t, "am0", "am1")
	pin := "/sys/fs/bpf/xd-attach-mode"
	t.Cleanup(func() { _ = RemovePinned(pin) })
	mode := func() uint32 {
		l, err := netlink.LinkByName("am0")
		if err != nil || l.Attrs().Xdp == nil || !l.Attrs().Xdp.Attached {
			t.Fatalf("am0: no XDP program attached (%v)", err)
		}
		return l.Attrs().Xdp.AttachMode
	}
	for _, m := range []Mode{Native, Generic, Native} {
		d, err := New(Options{Interfaces: []string{"am0"}, PinPath: pin, KeepOnClose: true, Mode: m})
		if err != nil {
			t.Fatal(err)
		}
		if got := attachedMode(mode()); got != m {
			t.Errorf("asked for %s, attached in %s", m, got)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// applyWarnings returns a function that applies services to d and
// returns the lines containing warning that b received since its last
// call.
func applyWarnings(t *testing.T, d *Dataplane, b *syncBuffer, warning string) func(svcs ...dataplane.Service) string {
	seen := 0
	return func(svcs ...dataplane.Service) string {
		t.Helper()
		if err := d.Apply(context.Background(), svcs); err != nil {
			t.Fatal(err)
		}
		var out []string
		for l := range strings.Lines(b.String()) {
			if strings.Contains(l, warning) {
				out = append(out, l)
			}
		}
		got := strings.Join(out[seen:], "")
		seen = len(out)
		return got
	}
}

// vethInEmptyNS moves the test into a new network namespace (inEmptyNS)
// holding the veth pair a–b, both up.
func vethInEmptyNS(t *testing.T, a, b string) {
	t.Helper()
	inEmptyNS(t)
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a}, PeerName: b}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{a, b} {
		l, err := netlink.LinkByName(n)
		if err == nil {
			err = netlink.LinkSetUp(l)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestLocalVIPWarning: a NAT service on a VIP that is an address of the
// director, on an interface without accept_local, gets a log line saying
// that replies left to the kernel are dropped there; with accept_local
// set it does not.
func TestLocalVIPWarning(t *testing.T) {
	requireBPF(t)
	vethInEmptyNS(t, "lv0", "lv1")
	l, err := netlink.LinkByName("lv0")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: netlink.NewIPNet(vip4.AsSlice())}); err != nil {
		t.Fatal(err)
	}
	pin := "/sys/fs/bpf/xd-local-vip"
	t.Cleanup(func() { _ = RemovePinned(pin) })
	nat := svc(dataplane.TCP, vip4, 80, "rr", rsv(netip.MustParseAddrPort("10.0.0.1:8080"), 1, dataplane.NAT))
	warned := func() bool {
		var logs bytes.Buffer
		d, err := New(Options{Interfaces: []string{"lv0"}, PinPath: pin, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if err := d.Apply(context.Background(), []dataplane.Service{nat}); err != nil {
			t.Fatal(err)
		}
		return strings.Contains(logs.String(), "martian")
	}
	if !warned() {
		t.Error("no warning for a local VIP with accept_local=0")
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/conf/lv0/accept_local", []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if warned() {
		t.Error("a warning although accept_local=1")
	}
}

// TestForwardingWarning: NAT and SNAT real servers on a director whose
// interface does not forward get a log line naming the interface, the
// family and the sysctl, once while that lasts: again after forwarding
// was turned on and off, and after the family's NAT servers left and
// came back. A DR service needs no forwarding.
func TestForwardingWarning(t *testing.T) {
	requireBPF(t)
	vethInEmptyNS(t, "fw0", "fw1")
	pin := "/sys/fs/bpf/xd-fwd-warn"
	t.Cleanup(func() { _ = RemovePinned(pin) })
	nat4 := svc(dataplane.TCP, vip4, 80, "rr", rsv(netip.MustParseAddrPort("10.0.0.1:8080"), 1, dataplane.NAT))
	snat6 := svc(dataplane.TCP, vip6, 80, "rr", rsv(netip.MustParseAddrPort("[fd00::1]:8080"), 1, dataplane.SNAT))
	dr := svc(dataplane.TCP, vip4, 80, "rr", rsv(rs1, 1, dataplane.DR))
	set := func(v string) {
		for _, f := range []string{"/proc/sys/net/ipv4/conf/fw0/forwarding", "/proc/sys/net/ipv6/conf/fw0/forwarding"} {
			if err := os.WriteFile(f, []byte(v), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	set("0")
	var b syncBuffer
	d, err := New(Options{Interfaces: []string{"fw0"}, PinPath: pin, Logger: slog.New(slog.NewTextHandler(&b, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	const warning = "does not forward"
	// warned applies svcs and returns the warnings logged by it
	warned := applyWarnings(t, d, &b, warning)
	if got := warned(dr); got != "" {
		t.Errorf("a DR service logged %q", got)
	}
	got := warned(nat4, snat6)
	for _, want := range []string{"family=ipv4", "net.ipv4.conf.fw0.forwarding=1", "family=ipv6", "net.ipv6.conf.fw0.forwarding=1", "interface=fw0"} {
		if !strings.Contains(got, want) {
			t.Errorf("log %q lacks %q", got, want)
		}
	}
	if n := strings.Count(got, warning); n != 2 {
		t.Errorf("%d warnings, want one per family:\n%s", n, got)
	}
	if got := warned(nat4, snat6); got != "" {
		t.Errorf("warned twice: %q", got)
	}
	set("1")
	if got := warned(nat4, snat6); got != "" {
		t.Errorf("warned with forwarding on: %q", got)
	}
	set("0")
	if got := warned(nat4, snat6); strings.Count(got, warning) != 2 {
		t.Errorf("forwarding off again: %q, want both families warned again", got)
	}
	warned(dr, snat6) // IPv4 NAT gone
	if got := warned(nat4, snat6); strings.Count(got, warning) != 1 || !strings.Contains(got, "family=ipv4") {
		t.Errorf("IPv4 NAT back: %q, want the IPv4 warning again", got)
	}
}
