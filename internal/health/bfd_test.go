package health

import (
	"context"
	"strings"
	"testing"
	"time"
)

type fakeBFD map[string]bool

func (f fakeBFD) Up(name string) (bool, bool) {
	up, ok := f[name]
	return up, ok
}

// TestBFDCheck: up while the session is Up, down (saying why) while it
// is not, when it does not exist and without sessions; polled every
// 100 ms whatever delay_loop says, with no retry.
func TestBFDCheck(t *testing.T) {
	state := fakeBFD{"R": true}
	sp := Spec{Kind: BFD, BFDName: "R"}.Defaults()
	if err := sp.Validate(); err != nil {
		t.Fatal(err)
	}
	if sp.DelayLoop != BFDPollInterval || *sp.Retry != 0 || *sp.Warmup != 0 {
		t.Errorf("defaults: delay_loop %v retry %d warmup %v", sp.DelayLoop, *sp.Retry, *sp.Warmup)
	}
	// a virtual_server's retry, warmup and delay_loop do not apply
	three, long := 3, 10*time.Second
	if s := (Spec{Kind: BFD, BFDName: "R", Retry: &three, Warmup: &long, DelayLoop: long}).Defaults(); *s.Retry != 0 || *s.Warmup != 0 || s.DelayLoop != BFDPollInterval {
		t.Errorf("inherited settings kept: delay_loop %v retry %d warmup %v", s.DelayLoop, *s.Retry, *s.Warmup)
	}
	c, err := New(sp, Options{BFD: state})
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Check(context.Background()); r.Err != nil {
		t.Errorf("up session: %v", r.Err)
	}
	state["R"] = false
	if r := c.Check(context.Background()); r.Err == nil || !strings.Contains(r.Err.Error(), "not up") {
		t.Errorf("down session: %v", r.Err)
	}
	delete(state, "R")
	if r := c.Check(context.Background()); r.Err == nil || !strings.Contains(r.Err.Error(), "no such session") {
		t.Errorf("no session: %v", r.Err)
	}
	c, _ = New(sp, Options{})
	if r := c.Check(context.Background()); r.Err == nil {
		t.Error("up without any BFD")
	}
	bad := Spec{Kind: BFD}.Defaults()
	if err := bad.Validate(); err == nil {
		t.Error("BFD_CHECK without a name accepted")
	}
}
