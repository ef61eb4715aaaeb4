package health

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// controlSocket sets SO_MARK, SO_BINDTODEVICE and SO_REUSEADDR before
// the socket binds or connects.
func controlSocket(c syscall.RawConn, mark uint32, dev string, reuse bool) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if mark != 0 {
			if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark)); err != nil {
				serr = fmt.Errorf("set fwmark %d: %w", mark, err)
				return
			}
		}
		if dev != "" {
			if err := unix.BindToDevice(int(fd), dev); err != nil {
				serr = fmt.Errorf("bind to device %s: %w", dev, err)
				return
			}
		}
		if reuse {
			if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
				serr = fmt.Errorf("set reuseaddr: %w", err)
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}
