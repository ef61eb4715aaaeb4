package main

import (
	"fmt"
	"slices"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
)

// collect reads the statistics of the XDP program of every device; a
// program attached to several devices is listed once, a device without a
// program not at all.
func collect(devs []string) ([]progStats, error) {
	var ids []uint32
	for _, dev := range devs {
		l, err := netlink.LinkByName(dev)
		if err != nil {
			return nil, fmt.Errorf("link %s: %w", dev, err)
		}
		x := l.Attrs().Xdp
		if x == nil || x.ProgId == 0 || slices.Contains(ids, x.ProgId) {
			continue
		}
		ids = append(ids, x.ProgId)
	}
	out := make([]progStats, 0, len(ids))
	for _, id := range ids {
		s, err := read(id)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

func read(id uint32) (progStats, error) {
	p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
	if err != nil {
		return progStats{}, fmt.Errorf("program %d: %w", id, err)
	}
	defer p.Close()
	st, err := p.Stats()
	if err != nil {
		return progStats{}, fmt.Errorf("program %d stats: %w", id, err)
	}
	s := progStats{ID: id, RunCount: st.RunCount, RuntimeNS: st.Runtime.Nanoseconds()}
	if info, err := p.Info(); err == nil {
		s.Name = info.Name
	}
	return s, nil
}
