package health

import (
	"context"
	"fmt"
	"net/textproto"
	"os"
	"time"
)

// smtpChecker is SMTP_CHECK: expect the 220 greeting, HELO, expect 250,
// QUIT.
type smtpChecker struct {
	s    Spec
	helo string
}

func newSMTP(s Spec, defHelo string) *smtpChecker {
	helo := defHelo
	if s.SMTP != nil && s.SMTP.HeloName != "" {
		helo = s.SMTP.HeloName
	}
	if helo == "" {
		helo, _ = os.Hostname()
	}
	if helo == "" {
		helo = "localhost"
	}
	return &smtpChecker{s: s, helo: helo}
}

func (c *smtpChecker) Check(ctx context.Context) Result {
	raw, err := dial(ctx, &c.s, "tcp")
	if err != nil {
		return Result{Err: connectErr(err)}
	}
	defer abort(raw)
	if dl, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	tp := textproto.NewConn(raw)
	if _, _, err := tp.ReadResponse(220); err != nil {
		return Result{Err: smtpErr("greeting", err)}
	}
	if err := tp.PrintfLine("HELO %s", c.helo); err != nil {
		return Result{Err: netErr("helo", err)}
	}
	if _, _, err := tp.ReadResponse(250); err != nil {
		return Result{Err: smtpErr("helo", err)}
	}
	_ = tp.PrintfLine("QUIT")
	_, _, _ = tp.ReadResponse(221)
	return Result{Msg: "smtp 250"}
}

func smtpErr(step string, err error) error {
	if pe, ok := err.(*textproto.Error); ok {
		return fmt.Errorf("%s: unexpected reply %d %s", step, pe.Code, pe.Msg)
	}
	return netErr(step, err)
}
