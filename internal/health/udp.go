package health

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// udpChecker is UDP_CHECK: send a datagram on a connected socket. An ICMP
// unreachable surfaces as a socket error and fails the check. With
// require_reply a reply is needed, of the allowed length and, if a
// pattern is given, matching it; without, silence until the timeout
// passes.
type udpChecker struct {
	s          Spec
	want, mask []byte
}

func newUDP(s Spec) (*udpChecker, error) {
	want, mask, err := ParseHexPattern(s.UDP.ReplyPattern)
	if err != nil {
		return nil, fmt.Errorf("require_reply: %w", err)
	}
	return &udpChecker{s: s, want: want, mask: mask}, nil
}

func (c *udpChecker) Check(ctx context.Context) Result {
	conn, err := dial(ctx, &c.s, "udp")
	if err != nil {
		return Result{Err: connectErr(err)}
	}
	defer conn.Close()
	payload := c.s.UDP.Payload
	if len(payload) == 0 {
		payload = make([]byte, 16)
		_, _ = rand.Read(payload)
	}
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(c.s.ConnectTimeout)
	}
	_ = conn.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := conn.Write(payload); err != nil {
		return Result{Err: netErr("send", err)}
	}
	buf := make([]byte, 65536)
	n, err := conn.Read(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && !c.s.UDP.RequireReply && ctx.Err() != context.Canceled {
			return Result{Msg: "no error before timeout"}
		}
		if errors.As(err, &ne) && ne.Timeout() {
			return Result{Err: &stepError{step: "reply", msg: "timeout", err: err}}
		}
		return Result{Err: netErr("reply", err)}
	}
	if !c.s.UDP.RequireReply {
		return Result{Msg: "reply received"}
	}
	reply := buf[:n]
	if n < c.s.UDP.MinReplyLength || n > c.s.UDP.MaxReplyLength {
		return Result{Err: fmt.Errorf("reply: length %d outside %d-%d", n, c.s.UDP.MinReplyLength, c.s.UDP.MaxReplyLength)}
	}
	if !matchPattern(reply, c.want, c.mask) {
		return Result{Err: fmt.Errorf("reply: % x does not match require_reply %s", clip(reply), c.s.UDP.ReplyPattern)}
	}
	return Result{Msg: fmt.Sprintf("reply of %d bytes", n)}
}

// ParseHexPattern parses keepalived's HEX_STR: whitespace-separated groups
// of hex digits, each group read as bytes two digits at a time, a last odd
// digit being a byte of its own ("Ab12f 3 456" = AB 12 0F 03 45 06). X or
// x is a wildcard nibble: mask has 0 bits where the value is ignored.
func ParseHexPattern(s string) (want, mask []byte, err error) {
	for _, word := range strings.Fields(s) {
		for i := 0; i < len(word); i += 2 {
			pair := word[i:min(i+2, len(word))]
			var v, m byte
			for _, ch := range []byte(pair) {
				nv, nm, ok := nibble(ch)
				if !ok {
					return nil, nil, fmt.Errorf("bad hex character %q in %q", ch, word)
				}
				v, m = v<<4|nv, m<<4|nm
			}
			want, mask = append(want, v), append(mask, m)
		}
	}
	return want, mask, nil
}

func nibble(ch byte) (v, m byte, ok bool) {
	switch {
	case ch >= '0' && ch <= '9':
		return ch - '0', 0xf, true
	case ch >= 'a' && ch <= 'f':
		return ch - 'a' + 10, 0xf, true
	case ch >= 'A' && ch <= 'F':
		return ch - 'A' + 10, 0xf, true
	case ch == 'x' || ch == 'X':
		return 0, 0, true
	}
	return 0, 0, false
}

// matchPattern compares reply with want up to the shorter length, as
// keepalived does.
func matchPattern(reply, want, mask []byte) bool {
	n := min(len(reply), len(want))
	for i := range n {
		if reply[i]&mask[i] != want[i]&mask[i] {
			return false
		}
	}
	return true
}
