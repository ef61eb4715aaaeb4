//go:build !linux

package vrrp

import "errors"

// procEvent is a process event (Linux only).
type procEvent struct {
	what        uint32
	pid, parent string
}

const (
	procEventFork = 0x00000001
	procEventExit = 0x80000000
)

func openProcEvents() (procEventSource, error) {
	return nil, errors.New("process events are a Linux feature")
}
