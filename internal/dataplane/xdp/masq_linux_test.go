package xdp

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
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
	inEmptyNS(t)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "mq0"}, PeerName: "mq1"}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"mq0", "mq1"} {
		l, err := netlink.LinkByName(n)
		if err == nil {
			err = netlink.LinkSetUp(l)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
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
	inEmptyNS(t)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "am0"}, PeerName: "am1"}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"am0", "am1"} {
		l, err := netlink.LinkByName(n)
		if err == nil {
			err = netlink.LinkSetUp(l)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
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
			t.Errorf("asked for %s, attached in %s", modeName(m), modeName(got))
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
