package vrrp

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fileWatch is an inotify watch on a track file's directory, for the
// events that can change the file's content: written and closed, moved
// in or out, created, deleted (keepalived watches the same).
type fileWatch struct {
	f    *os.File
	name string
	buf  []byte
}

func newFileWatch(path string) (*fileWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, err
	}
	// as keepalived (realpath): the directory of the file a symlink
	// names, where its writes happen
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	dir, name := filepath.Split(filepath.Clean(path))
	if dir == "" {
		dir = "."
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO|unix.IN_MOVED_FROM|unix.IN_CREATE|unix.IN_DELETE|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &fileWatch{f: os.NewFile(uintptr(fd), "inotify "+dir), name: name, buf: make([]byte, 4096)}, nil
}

func (w *fileWatch) Close() error { return w.f.Close() }

// errWatchGone: the directory watched was removed or moved away.
var errWatchGone = errors.New("watched directory gone")

// wait returns at the first event about the file (or its directory),
// after timeout, or when ctx ends.
func (w *fileWatch) wait(ctx context.Context, timeout time.Duration) error {
	_ = w.f.SetReadDeadline(time.Now().Add(timeout))
	stop := context.AfterFunc(ctx, func() { _ = w.f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	if ctx.Err() != nil {
		return nil
	}
	for {
		n, err := w.f.Read(w.buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil
		}
		if err != nil {
			return err
		}
		// every event of the read: the file's deletion and its
		// directory's come together
		changed, gone := false, false
		for b := w.buf[:n]; len(b) >= unix.SizeofInotifyEvent; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&b[0]))
			l := unix.SizeofInotifyEvent + int(ev.Len)
			if l > len(b) {
				break
			}
			name := string(bytes.TrimRight(b[unix.SizeofInotifyEvent:l], "\x00"))
			b = b[l:]
			switch {
			case ev.Mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_IGNORED) != 0:
				gone = true
			case ev.Mask&unix.IN_Q_OVERFLOW != 0, name == w.name:
				changed = true // (events lost: read it anyway)
			}
		}
		if gone {
			return errWatchGone
		}
		if changed {
			return nil
		}
	}
}
