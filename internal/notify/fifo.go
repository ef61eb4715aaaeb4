package notify

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

// FIFO is one of keepalived's notify FIFOs (notify_fifo, vrrp_notify_fifo,
// lvs_notify_fifo): a named pipe that gets one line per event, in the
// order of the events, for a reader that wants them in order (the
// notify scripts may run concurrently in keepalived; govs runs them in
// order too). Lines, as keepalived writes them:
//
//	INSTANCE "VI_1" MASTER 100
//	GROUP "VG_1" BACKUP 0
//	VS [192.0.2.10]:tcp:80 UP
//	RS [10.0.0.1]:tcp:80 [192.0.2.10]:tcp:80 DOWN
//
// The pipe is opened read-write and non-blocking, so that govs neither
// waits for a reader to open it nor blocks on a full pipe: a line that
// does not fit is dropped and counted.
type FIFO struct {
	Path string
	mu   sync.Mutex
	fd   int // -1 once closed; written with syscall.Write: an *os.File
	// on a pipe would wait in the poller for room instead of failing
	created bool
	dropped atomic.Uint64
}

// OpenFIFO opens the FIFO at path, creating it (mode 0600) when there is
// none; a file there that is not a FIFO, or a symbolic link, is an error.
func OpenFIFO(path string) (*FIFO, error) {
	ff := &FIFO{Path: path}
	st, err := os.Lstat(path)
	switch {
	case err == nil && st.Mode()&fs.ModeNamedPipe == 0:
		return nil, fmt.Errorf("notify fifo %s: exists and is not a FIFO", path)
	case errors.Is(err, fs.ErrNotExist):
		if err := syscall.Mkfifo(path, 0o600); err != nil {
			return nil, fmt.Errorf("notify fifo %s: create: %w", path, err)
		}
		ff.created = true
	case err != nil:
		return nil, fmt.Errorf("notify fifo %s: %w", path, err)
	}
	fd, err := syscall.Open(path, syscall.O_RDWR|syscall.O_NONBLOCK|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0)
	if err != nil {
		if ff.created {
			os.Remove(path)
		}
		return nil, fmt.Errorf("notify fifo %s: open: %w", path, err)
	}
	// what was opened, not what the path showed a moment before
	var st2 syscall.Stat_t
	if err := syscall.Fstat(fd, &st2); err != nil || st2.Mode&syscall.S_IFMT != syscall.S_IFIFO {
		syscall.Close(fd)
		return nil, fmt.Errorf("notify fifo %s: not a FIFO once opened", path)
	}
	ff.fd = fd
	return ff, nil
}

// WriteLine writes line and a newline; a full pipe drops it.
func (f *FIFO) WriteLine(line string) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fd < 0 {
		return
	}
	// one write of at most PIPE_BUF bytes is atomic: the line goes whole
	// or not at all (EAGAIN when the pipe has no room)
	b := []byte(line + "\n")
	if n, err := syscall.Write(f.fd, b); err != nil || n != len(b) {
		f.dropped.Add(1)
	}
}

// Chown gives the open FIFO to uid and gid.
func (f *FIFO) Chown(uid, gid int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fd < 0 {
		return errors.New("closed")
	}
	return syscall.Fchown(f.fd, uid, gid)
}

// Created reports whether OpenFIFO made the FIFO.
func (f *FIFO) Created() bool { return f != nil && f.created }

// Unread is the number of bytes written and not read yet.
func (f *FIFO) Unread() int {
	if f == nil {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fd < 0 {
		return 0
	}
	return unread(f.fd)
}

// Dropped is the number of lines lost to a full pipe.
func (f *FIFO) Dropped() uint64 {
	if f == nil {
		return 0
	}
	return f.dropped.Load()
}

// Close closes the FIFO and removes it when OpenFIFO created it.
func (f *FIFO) Close() error {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fd < 0 {
		return nil
	}
	err := syscall.Close(f.fd)
	f.fd = -1
	if f.created {
		err = errors.Join(err, os.Remove(f.Path))
	}
	return err
}
