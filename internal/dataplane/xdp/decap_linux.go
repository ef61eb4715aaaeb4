package xdp

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
)

// DefaultDecapPinPath is where the decapsulation program's link and maps
// are pinned unless DecapOptions.PinPath says otherwise.
const DefaultDecapPinPath = "/sys/fs/bpf/govs-decap"

// DecapOptions configure the decapsulation program of a TUN real server.
type DecapOptions struct {
	// Interface receives the tunnelled packets.
	Interface string
	// VIPs are the virtual addresses served: only IP-in-IP packets whose
	// inner destination is one of them are decapsulated.
	VIPs []netip.Addr
	// Mode is the XDP attach mode (Native by default).
	Mode Mode
	// PinPath is the bpffs directory for the link and maps
	// (default DefaultDecapPinPath).
	PinPath string
	// KeepOnClose leaves the program attached after Close, so a command
	// such as `govs realserver tun` can exit; RemoveDecap undoes it.
	KeepOnClose bool
}

// Decap is the decapsulation program attached to one interface of a real
// server. It strips the outer IPv4/IPv6 header of IPIP, IP6IP6, 4in6 and
// 6in4 packets addressed (inside) to a VIP and hands the inner packet to
// the kernel, so TUN works without the ipip and ip6_tunnel modules.
type Decap struct {
	opts DecapOptions
	objs decapObjects
	l    link.Link
	pin  string
}

// NewDecap loads and attaches the decapsulation program in the network
// namespace of the calling thread, replacing one pinned earlier.
func NewDecap(opts DecapOptions) (*Decap, error) {
	if opts.PinPath == "" {
		opts.PinPath = DefaultDecapPinPath
	}
	if _, err := ensureBPFFS(opts.PinPath); err != nil {
		return nil, err
	}
	ifc, err := netlink.LinkByName(opts.Interface)
	if err != nil {
		return nil, fmt.Errorf("decap: interface %q: %w", opts.Interface, err)
	}
	d := &Decap{opts: opts, pin: filepath.Join(opts.PinPath, "link_"+opts.Interface)}
	spec, err := loadDecap()
	if err != nil {
		return nil, fmt.Errorf("decap: load program spec: %w", err)
	}
	if err := spec.LoadAndAssign(&d.objs, &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: opts.PinPath}}); err != nil {
		return nil, fmt.Errorf("decap: load bpf objects: %w", err)
	}
	if err := d.SetVIPs(opts.VIPs); err != nil {
		_ = d.objs.Close()
		return nil, err
	}
	// a pin left for an interface since recreated, or attached in
	// another mode, is dropped and the program attached afresh
	if old, _ := reusableLink(d.pin, ifc, opts.Mode); old != nil {
		if err := old.Update(d.objs.GovsDecap); err != nil {
			_ = old.Close()
			_ = d.objs.Close()
			return nil, fmt.Errorf("decap: replace program on %s: %w", opts.Interface, err)
		}
		d.l = old
		return d, nil
	}
	flags := link.XDPDriverMode
	if opts.Mode == Generic {
		flags = link.XDPGenericMode
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: d.objs.GovsDecap, Interface: ifc.Attrs().Index, Flags: flags})
	if err != nil {
		_ = d.objs.Close()
		return nil, fmt.Errorf("decap: attach to %s (mode %s): %w", opts.Interface, opts.Mode, err)
	}
	if err := l.Pin(d.pin); err != nil {
		_ = l.Close()
		_ = d.objs.Close()
		return nil, fmt.Errorf("decap: pin link: %w", err)
	}
	d.l = l
	return d, nil
}

// SetVIPs replaces the set of virtual addresses decapsulated.
func (d *Decap) SetVIPs(vips []netip.Addr) error {
	want := make(map[decapVipKey]bool, len(vips))
	for _, v := range vips {
		a, fam := addrBytes(v)
		want[decapVipKey{Family: fam, Addr: a}] = true
	}
	var k decapVipKey
	var v uint8
	var del []decapVipKey
	it := d.objs.DecapVips.Iterate()
	for it.Next(&k, &v) {
		if !want[k] {
			del = append(del, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("decap: read vips: %w", err)
	}
	for _, k := range del {
		if err := d.objs.DecapVips.Delete(k); err != nil && !isNotExist(err) {
			return fmt.Errorf("decap: delete vip: %w", err)
		}
	}
	for k := range want {
		if err := d.objs.DecapVips.Put(k, uint8(1)); err != nil {
			return fmt.Errorf("decap: add vip: %w", err)
		}
	}
	return nil
}

// Stats returns the decapsulation counters by reason: "decapsulated",
// "pass_not_tunnel", "pass_not_vip", "drop_malformed".
func (d *Decap) Stats() (map[string]uint64, error) {
	return sumCounters(d.objs.DecapStats, []string{"decapsulated", "pass_not_tunnel", "pass_not_vip", "drop_malformed"})
}

// Close releases the program; without KeepOnClose it is detached and the
// pins removed.
func (d *Decap) Close() error {
	var errs []error
	if d.l != nil {
		if !d.opts.KeepOnClose {
			errs = append(errs, d.l.Unpin(), d.objs.DecapVips.Unpin(), d.objs.DecapStats.Unpin())
		}
		errs = append(errs, d.l.Close())
		d.l = nil
	}
	errs = append(errs, d.objs.Close())
	if !d.opts.KeepOnClose {
		_ = os.Remove(d.opts.PinPath) // only when empty
	}
	return errors.Join(errs...)
}

// RemoveDecap detaches decapsulation programs left attached
// (KeepOnClose) by removing their pins.
func RemoveDecap(pinPath string) error {
	if pinPath == "" {
		pinPath = DefaultDecapPinPath
	}
	return RemovePinned(pinPath)
}
