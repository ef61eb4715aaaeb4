package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/govs/govs/internal/notify"
)

// maxReply bounds what send/expect and send_program read.
const maxReply = 64 << 10

// sendExpectChecker is Piranha nanny's check: connect, send a string,
// read the reply and look for the expected string or regular expression.
// With Program set it runs the program instead and matches its output.
type sendExpectChecker struct {
	s       Spec
	send    []byte
	re      *regexp.Regexp
	scripts *notify.Runner
}

func newSendExpect(s Spec, scripts *notify.Runner) (*sendExpectChecker, error) {
	c := &sendExpectChecker{s: s, send: []byte(Unescape(s.SendExpect.Send)), scripts: scripts}
	if s.SendExpect.UseRegex {
		re, err := regexp.Compile(s.SendExpect.Expect)
		if err != nil {
			return nil, fmt.Errorf("expect regex: %w", err)
		}
		c.re = re
	}
	return c, nil
}

// Unescape decodes Piranha's send/expect escapes: \n, \r, \t, and a
// backslash before any other character stands for that character.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i == len(s)-1 {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func (c *sendExpectChecker) Check(ctx context.Context) Result {
	if len(c.s.SendExpect.Program) > 0 {
		return c.program(ctx)
	}
	conn, err := dial(ctx, &c.s, "tcp")
	if err != nil {
		return Result{Err: connectErr(err)}
	}
	defer abort(conn)
	if c.s.SendExpect.Expect == "" && len(c.send) == 0 {
		return Result{Msg: "connected"}
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if len(c.send) > 0 {
		if _, err := conn.Write(c.send); err != nil {
			return Result{Err: netErr("send", err)}
		}
	}
	if c.s.SendExpect.Expect == "" {
		return Result{Msg: "sent"}
	}
	var buf bytes.Buffer
	chunk := make([]byte, 4096)
	for buf.Len() < maxReply {
		n, err := conn.Read(chunk)
		buf.Write(chunk[:n])
		if c.match(buf.Bytes()) {
			return Result{Msg: "expect matched"}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return Result{Err: netErr("expect", err)}
		}
	}
	return Result{Err: fmt.Errorf("expect: %q not found in reply %q", c.s.SendExpect.Expect, clip(buf.Bytes()))}
}

func (c *sendExpectChecker) match(b []byte) bool {
	if c.re != nil {
		return c.re.Match(b)
	}
	return bytes.Contains(b, []byte(Unescape(c.s.SendExpect.Expect)))
}

func (c *sendExpectChecker) program(ctx context.Context) Result {
	se := c.s.SendExpect
	cmd := notify.Command{
		Path:  se.Program[0],
		Args:  ExpandArgs(se.Program[1:], c.s.Target),
		User:  se.User,
		Group: se.Group,
	}
	out, err := c.scripts.Run(ctx, cmd)
	if se.Expect == "" {
		if err != nil {
			return Result{Err: fmt.Errorf("send_program: %w", err)}
		}
		return Result{Msg: "program exited 0"}
	}
	if out.Started && c.match(bytes.TrimRight(out.Output, "\r\n")) {
		return Result{Msg: "program output matched"}
	}
	if err != nil && !out.Started || out.TimedOut {
		return Result{Err: fmt.Errorf("send_program: %w", err)}
	}
	return Result{Err: fmt.Errorf("send_program: %q not found in output %q", se.Expect, clip(out.Output))}
}

// clip shortens a reply for an error message.
func clip(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if len(b) > 80 {
		return b[:80]
	}
	return b
}
