package xdp

import (
	"fmt"
	"io"
	"net"

	"github.com/cilium/ebpf/link"
)

// passLink holds the pass program and its attachment.
type passLink struct {
	objs bounceObjects
	l    link.Link
}

func (p *passLink) Close() error {
	err := p.l.Close()
	p.objs.Close()
	return err
}

// AttachPass attaches a program that lets every frame through (XDP_PASS)
// to ifname in the calling thread's network namespace. On the receiving
// end of a veth pair this switches the end to NAPI mode, which frames
// sent with XDP_TX or XDP_REDIRECT into the veth need to be delivered
// (see netns-testbed notes in docs/dataplane-xdp.md); labs and
// benchmarks use it. Close detaches it.
func AttachPass(ifname string) (io.Closer, error) {
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("attach pass program: %w", err)
	}
	p := &passLink{}
	if err := loadBounceObjects(&p.objs, nil); err != nil {
		return nil, fmt.Errorf("load pass program: %w", err)
	}
	p.l, err = link.AttachXDP(link.XDPOptions{Program: p.objs.GovsPass, Interface: ifc.Index})
	if err != nil {
		p.objs.Close()
		return nil, fmt.Errorf("attach pass program to %s: %w", ifname, err)
	}
	return p, nil
}
