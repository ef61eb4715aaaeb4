package health

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// pingChecker is PING_CHECK: one ICMP echo (IPv4) or ICMPv6 echo, through
// an unprivileged datagram ICMP socket when net.ipv4.ping_group_range
// allows it, else a raw socket (root or CAP_NET_RAW).
type pingChecker struct{ s Spec }

func newPing(s Spec) *pingChecker { return &pingChecker{s: s} }

func (c *pingChecker) Check(ctx context.Context) Result {
	dst := c.s.Addr().Unmap()
	v4 := dst.Is4()
	src := "0.0.0.0"
	if !v4 {
		src = "::"
	}
	if c.s.BindTo.IsValid() {
		src = c.s.BindTo.Unmap().String()
	}
	dgNet, rawNet, proto := "udp4", "ip4:icmp", 1
	var typ icmp.Type = ipv4.ICMPTypeEcho
	if !v4 {
		dgNet, rawNet, proto = "udp6", "ip6:ipv6-icmp", 58
		typ = ipv6.ICMPTypeEchoRequest
	}
	pc, datagram, err := openICMP(ctx, &c.s, dgNet, rawNet, src)
	if err != nil {
		return Result{Err: fmt.Errorf("icmp socket: %w", err)}
	}
	defer pc.Close()
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(c.s.ConnectTimeout)
	}
	_ = pc.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { _ = pc.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	token := make([]byte, 16)
	_, _ = rand.Read(token)
	id := os.Getpid() & 0xffff
	seq := int(token[0])<<8 | int(token[1])
	msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: seq, Data: token}}
	wb, err := msg.Marshal(nil)
	if err != nil {
		return Result{Err: fmt.Errorf("icmp marshal: %w", err)}
	}
	var to net.Addr = &net.IPAddr{IP: dst.AsSlice()}
	if datagram {
		to = &net.UDPAddr{IP: dst.AsSlice()}
	}
	if _, err := pc.WriteTo(wb, to); err != nil {
		return Result{Err: netErr("echo", err)}
	}
	rb := make([]byte, 1500)
	for {
		n, peer, err := pc.ReadFrom(rb)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return Result{Err: &stepError{step: "echo reply", msg: "timeout", err: err}}
			}
			return Result{Err: netErr("echo reply", err)}
		}
		if !sameHost(peer, dst.AsSlice()) {
			continue
		}
		rm, err := icmp.ParseMessage(proto, rb[:n])
		if err != nil {
			continue
		}
		switch rm.Type {
		case ipv4.ICMPTypeEchoReply, ipv6.ICMPTypeEchoReply:
			if e, ok := rm.Body.(*icmp.Echo); ok && bytes.Equal(e.Data, token) {
				return Result{Msg: "echo reply"}
			}
		case ipv4.ICMPTypeDestinationUnreachable, ipv6.ICMPTypeDestinationUnreachable:
			if b, ok := rm.Body.(*icmp.DstUnreach); ok && bytes.Contains(b.Data, token[:8]) {
				return Result{Err: errors.New("echo: destination unreachable")}
			}
		}
	}
}

func sameHost(a net.Addr, ip net.IP) bool {
	switch v := a.(type) {
	case *net.IPAddr:
		return v.IP.Equal(ip)
	case *net.UDPAddr:
		return v.IP.Equal(ip)
	}
	return false
}

// openICMP opens a datagram ICMP socket when allowed and no socket option
// is needed, else a raw one.
func openICMP(ctx context.Context, s *Spec, dgNet, rawNet, src string) (net.PacketConn, bool, error) {
	if s.FWMark == 0 && s.BindIf == "" {
		if pc, err := icmp.ListenPacket(dgNet, src); err == nil {
			return pc, true, nil
		}
	}
	lc := net.ListenConfig{}
	if s.FWMark != 0 || s.BindIf != "" {
		mark, dev := s.FWMark, s.BindIf
		lc.Control = func(_, _ string, c syscall.RawConn) error { return controlSocket(c, mark, dev, false) }
	}
	pc, err := lc.ListenPacket(ctx, rawNet, src)
	return pc, false, err
}
