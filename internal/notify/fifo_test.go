package notify

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFIFO(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "notify")
	f, err := OpenFIFO(path)
	if err != nil {
		t.Fatal(err)
	}
	// a line with nobody reading yet stays in the pipe
	f.WriteLine(`INSTANCE "VI_1" BACKUP 100`)
	r, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f.WriteLine(`INSTANCE "VI_1" MASTER 100`)
	br := bufio.NewReader(r)
	for _, want := range []string{`INSTANCE "VI_1" BACKUP 100`, `INSTANCE "VI_1" MASTER 100`} {
		got, err := br.ReadString('\n')
		if err != nil || strings.TrimSuffix(got, "\n") != want {
			t.Fatalf("read %q (%v), want %q", got, err, want)
		}
	}
	// a full pipe drops lines rather than block
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20000 {
			f.WriteLine(`RS [10.0.0.1]:tcp:80 [192.0.2.10]:tcp:80 DOWN`)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("WriteLine blocked on a full pipe")
	}
	if f.Dropped() == 0 {
		t.Fatal("no line dropped into a full pipe")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the FIFO it made is still there: %v", err)
	}

	// a symbolic link is refused, even to a FIFO
	target := filepath.Join(dir, "target")
	if _, err := OpenFIFO(target); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	os.Symlink(target, link)
	if _, err := OpenFIFO(link); err == nil {
		t.Fatal("a symbolic link was opened")
	}
	// a file that is not a FIFO is refused and left alone
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, []byte("x"), 0o644)
	if _, err := OpenFIFO(plain); err == nil || !strings.Contains(err.Error(), "not a FIFO") {
		t.Fatalf("a plain file: %v", err)
	}
}
