package realserver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/govs/govs/internal/dataplane/xdp"
)

const procSys = "/proc/sys"

func readSysctl(path string) (string, error) {
	b, err := os.ReadFile(filepath.Join(procSys, path))
	return strings.TrimSpace(string(b)), err
}

func loAddrs() (map[netip.Addr]bool, netlink.Link, error) {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return nil, nil, fmt.Errorf("loopback: %w", err)
	}
	addrs, err := netlink.AddrList(lo, netlink.FAMILY_ALL)
	if err != nil {
		return nil, nil, fmt.Errorf("loopback addresses: %w", err)
	}
	have := map[netip.Addr]bool{}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			have[ip.Unmap()] = true
		}
	}
	return have, lo, nil
}

// Check reports what is missing for the method; nil means ready.
func Check(s Spec) ([]Problem, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	var ps []Problem
	have, _, err := loAddrs()
	if err != nil {
		return nil, err
	}
	for _, v := range s.VIPs {
		if !have[v] {
			ps = append(ps, Problem{What: fmt.Sprintf("virtual address %s is not on lo", v), Fix: fmt.Sprintf("add %s/%d to lo", v, v.BitLen())})
		}
	}
	for _, c := range s.sysctls() {
		got, err := readSysctl(c.path)
		if err != nil {
			ps = append(ps, Problem{What: fmt.Sprintf("%s: %v", c.path, err), Fix: "set it to " + c.want})
			continue
		}
		if got != c.want && !(strings.HasSuffix(c.path, "rp_filter") && got == "0") {
			ps = append(ps, Problem{What: fmt.Sprintf("%s is %s, want %s", strings.ReplaceAll(c.path, "/", "."), got, c.want), Fix: "set it to " + c.want})
		}
	}
	if s.Interface != "" {
		if _, err := netlink.LinkByName(s.Interface); err != nil {
			ps = append(ps, Problem{What: fmt.Sprintf("interface %s: %v", s.Interface, err), Fix: "name an existing interface"})
		}
	}
	if s.Method == TUN {
		if _, err := os.Stat(s.pinPath()); err != nil {
			ps = append(ps, Problem{What: "no govs decapsulation program is pinned (" + s.pinPath() + ")", Fix: "attach it to " + s.Interface})
		}
	}
	return ps, nil
}

// Setup makes the real server ready; it is idempotent.
func Setup(s Spec) error {
	if err := s.Validate(); err != nil {
		return err
	}
	have, lo, err := loAddrs()
	if err != nil {
		return err
	}
	var errs []error
	for _, v := range s.VIPs {
		if have[v] {
			continue
		}
		a := &netlink.Addr{IPNet: netlinkNet(v), Scope: unix.RT_SCOPE_HOST}
		if v.Is6() {
			a.Scope = 0
			a.Flags = unix.IFA_F_NODAD
		}
		if err := netlink.AddrAdd(lo, a); err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("add %s to lo: %w", v, err))
		}
	}
	for _, c := range s.sysctls() {
		if err := os.WriteFile(filepath.Join(procSys, c.path), []byte(c.want), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("sysctl %s=%s: %w", c.path, c.want, err))
		}
	}
	if s.Method == TUN && len(errs) == 0 {
		// The program must outlive this command: its link is pinned in
		// bpffs. A bpffs this command would have to mount itself lives
		// in a private mount namespace (as under `ip netns exec`) and
		// vanishes, with the program, when the command exits.
		if err := hostBPFFS(s.pinPath()); err != nil {
			return errors.Join(append(errs, err)...)
		}
		d, err := xdp.NewDecap(xdp.DecapOptions{Interface: s.Interface, VIPs: s.VIPs, KeepOnClose: true, PinPath: s.PinPath})
		if err != nil {
			errs = append(errs, fmt.Errorf("attach decapsulation program to %s: %w", s.Interface, err))
		} else if err := d.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Undo removes the virtual addresses from lo and the decapsulation
// program; the ARP settings are left (they are harmless and may be shared
// with other services).
func Undo(s Spec) error {
	have, lo, err := loAddrs()
	if err != nil {
		return err
	}
	var errs []error
	for _, v := range s.VIPs {
		if !have[v] {
			continue
		}
		if err := netlink.AddrDel(lo, &netlink.Addr{IPNet: netlinkNet(v)}); err != nil {
			errs = append(errs, fmt.Errorf("remove %s from lo: %w", v, err))
		}
	}
	if s.Method == TUN {
		if err := xdp.RemoveDecap(s.PinPath); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// hostBPFFS checks that the directory holding path is on a mounted bpffs.
func hostBPFFS(path string) error {
	dir := filepath.Dir(path)
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil || uint32(st.Type) != unix.BPF_FS_MAGIC { // int32 on 32-bit systems
		return fmt.Errorf("%s is not a mounted bpffs here, so the decapsulation program would be detached when this command exits (inside `ip netns exec`, which gives the command its own /sys, use `nsenter --net=/run/netns/NAME govs realserver tun ...`; or mount bpffs: mount -t bpf bpf %s)", dir, dir)
	}
	return nil
}

func (s Spec) pinPath() string {
	if s.PinPath != "" {
		return s.PinPath
	}
	return xdp.DefaultDecapPinPath
}

func netlinkNet(v netip.Addr) *net.IPNet {
	return netlink.NewIPNet(net.IP(v.AsSlice()))
}
