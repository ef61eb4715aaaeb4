//go:build !linux

package vrrp

import "errors"

func openProcEvents() (procEventSource, error) {
	return nil, errors.New("process events are a Linux feature")
}
