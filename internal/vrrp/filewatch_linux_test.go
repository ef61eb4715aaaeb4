package vrrp

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The inotify watch wakes at a write of the file, also through a symlink
// in another directory (keepalived watches the file the link names), and
// reports its directory going away.
func TestFileWatch(t *testing.T) {
	dir, links := t.TempDir(), t.TempDir()
	target := filepath.Join(dir, "weight")
	if err := os.WriteFile(target, []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(links, "weight")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{target, link} {
		w, err := newFileWatch(path)
		if err != nil {
			t.Fatalf("watch %s: %v", path, err)
		}
		go func() {
			time.Sleep(50 * time.Millisecond)
			_ = os.WriteFile(target, []byte("2\n"), 0o644)
		}()
		start := time.Now()
		if err := w.wait(context.Background(), time.Minute); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if d := time.Since(start); d > 30*time.Second {
			t.Errorf("%s: woke at the timeout (%v), not at the write", path, d)
		}
		w.Close()
	}
	w, err := newFileWatch(target)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	// the file's deletion first, then the directory's
	for range 3 {
		if err = w.wait(context.Background(), time.Minute); err != nil {
			break
		}
	}
	if err != errWatchGone {
		t.Errorf("directory removed: %v, want errWatchGone", err)
	}
}
