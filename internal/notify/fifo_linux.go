package notify

import "golang.org/x/sys/unix"

// unread is FIONREAD (TIOCINQ) of a pipe: the bytes not read yet.
func unread(fd int) int {
	n, err := unix.IoctlGetInt(fd, unix.TIOCINQ)
	if err != nil {
		return 0
	}
	return n
}
