//go:build !linux

package health

import (
	"errors"
	"syscall"
)

// errNotSupported is returned for Linux-only socket options elsewhere.
var errNotSupported = errors.New("fwmark and bind_if are supported on linux only")

func controlSocket(_ syscall.RawConn, mark uint32, dev string, _ bool) error {
	if mark != 0 || dev != "" {
		return errNotSupported
	}
	return nil
}
