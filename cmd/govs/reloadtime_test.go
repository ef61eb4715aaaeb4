package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/govs/govs/internal/config"
)

// TestReloadAt: the three layouts of reload_time_file, Z for UTC, a time
// without a date at its next occurrence; anything else refused.
func TestReloadAt(t *testing.T) {
	loc := time.FixedZone("X", 3600)
	now := time.Date(2026, 12, 7, 22, 30, 0, 0, loc)
	for _, tc := range []struct {
		line  string
		want  time.Time
		dated bool
	}{
		{"23:00:00", time.Date(2026, 12, 7, 23, 0, 0, 0, loc), false},
		{"22:30:00", time.Date(2026, 12, 7, 22, 30, 0, 0, loc), false},  // now: now
		{"22:29:59", time.Date(2026, 12, 7, 22, 29, 59, 0, loc), false}, // a second ago (read late): now
		{"22:29:50", time.Date(2026, 12, 8, 22, 29, 50, 0, loc), false}, // passed: tomorrow
		{"01:15:30", time.Date(2026, 12, 8, 1, 15, 30, 0, loc), false},
		{"21:45:00Z", time.Date(2026, 12, 7, 21, 45, 0, 0, time.UTC), false}, // 22:45 local
		{"21:00:00Z", time.Date(2026, 12, 8, 21, 0, 0, 0, time.UTC), false},  // passed in UTC too
		{"2026-12-24 08:00:00", time.Date(2026, 12, 24, 8, 0, 0, 0, loc), true},
		{"26-12-24 08:00:00Z", time.Date(2026, 12, 24, 8, 0, 0, 0, time.UTC), true},
		{"2025-01-01 00:00:00", time.Date(2025, 1, 1, 0, 0, 0, 0, loc), true},
	} {
		got, dated, err := reloadAt(tc.line, now, reloadSlack)
		if err != nil || !got.Equal(tc.want) || dated != tc.dated {
			t.Errorf("%q: %v dated %v (%v), want %v dated %v", tc.line, got, dated, err, tc.want, tc.dated)
		}
	}
	for _, bad := range []string{"", "23:00", " 23:00:00", "23:00:00 ", "2026-12-24  08:00:00", "2026-12-24T08:00:00", "25:00:00", "2026-13-01 00:00:00", "23:00:00z"} {
		if _, _, err := reloadAt(bad, now, reloadSlack); err == nil {
			t.Errorf("%q taken", bad)
		}
	}
}

// TestReloadClock: a reload at the file's time, the file removed after
// it; with reload_repeat kept, and a time without a date scheduled
// again a day later; a file deleted before its time cancels it.
func TestReloadClock(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "at")
	now := time.Date(2026, 12, 7, 22, 0, 0, 0, time.Local)
	g := config.GlobalDefs{ReloadTimeFile: path}
	reloads := 0
	c := &reloadClock{
		reload: func(context.Context) error { reloads++; return nil },
		global: func() config.GlobalDefs { return g },
		log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		now:    func() time.Time { return now },
	}
	step := func(d time.Duration) {
		now = now.Add(d)
		c.tick(context.Background())
	}
	step(0) // no file yet
	if err := os.WriteFile(path, []byte("22:00:05\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	step(time.Second)
	if reloads != 0 || !c.at.Equal(now.Add(4*time.Second)) {
		t.Fatalf("scheduled %v, reloads %d", c.at, reloads)
	}
	step(3 * time.Second)
	if reloads != 0 {
		t.Fatal("reloaded early")
	}
	step(time.Second)
	if reloads != 1 {
		t.Fatalf("reloads %d at the time, want 1", reloads)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the file stays after the reload: %v", err)
	}
	step(time.Second)
	step(24 * time.Hour)
	if reloads != 1 {
		t.Fatalf("reloads %d without a file", reloads)
	}
	// reload_repeat: kept, and the same time the next day
	g.ReloadRepeat = true
	start := now
	os.WriteFile(path, []byte("22:00:10"), 0o644)
	step(time.Second)
	step(10 * time.Second)
	if reloads != 2 {
		t.Fatalf("reloads %d, want 2", reloads)
	}
	step(time.Second)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("reload_repeat: the file went: %v", err)
	}
	if want := time.Date(start.Year(), start.Month(), start.Day()+1, 22, 0, 10, 0, time.Local); !c.at.Equal(want) {
		t.Fatalf("next reload %v, want %v", c.at, want)
	}
	// deleting the file cancels it; a past date is not scheduled
	os.Remove(path)
	step(time.Second)
	if !c.at.IsZero() {
		t.Fatalf("still scheduled at %v after the file went", c.at)
	}
	os.WriteFile(path, []byte("2020-01-01 00:00:00"), 0o644)
	step(time.Second)
	step(time.Second)
	if !c.at.IsZero() || reloads != 2 {
		t.Fatalf("a past date: scheduled %v, reloads %d", c.at, reloads)
	}
	// a date with reload_repeat: removed all the same, as keepalived
	os.WriteFile(path, []byte(now.Add(3*time.Second).Format("2006-01-02 15:04:05")), 0o644)
	step(time.Second)
	step(3 * time.Second)
	if reloads != 3 {
		t.Fatalf("dated: reloads %d, want 3", reloads)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a dated file stays after its reload: %v", err)
	}
	// stopping: no reload
	stopping := true
	c.stopping = func() bool { return stopping }
	os.WriteFile(path, []byte(now.Add(2*time.Second).Format("15:04:05")), 0o644)
	step(time.Second)
	step(2 * time.Second)
	if reloads != 3 {
		t.Fatalf("reloaded while stopping: %d", reloads)
	}
	// a FIFO is not read (a read would block)
	os.Remove(path)
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readFirstLine(path); err == nil {
		t.Fatal("a FIFO read as a reload_time_file")
	}
}
