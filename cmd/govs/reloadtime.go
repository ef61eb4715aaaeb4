package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/govs/govs/internal/config"
)

// reloadAt reads the first line of a reload_time_file: HH:MM:SS,
// YY-MM-DD HH:MM:SS or YYYY-MM-DD HH:MM:SS, each with an optional Z (UTC;
// else local time), exactly so, as keepalived 2.2.7 takes it. A time
// without a date is its next occurrence after now less slack (a time
// passed by less than slack is now: the file is read once a second);
// dated says whether a date was given.
func reloadAt(line string, now time.Time, slack time.Duration) (at time.Time, dated bool, err error) {
	loc := now.Location()
	s := line
	if t, ok := strings.CutSuffix(s, "Z"); ok {
		s, loc = t, time.UTC
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "06-01-02 15:04:05"} {
		if len(s) == len(layout) {
			if at, err := time.ParseInLocation(layout, s, loc); err == nil {
				return at, true, nil
			}
		}
	}
	if len(s) == len("15:04:05") {
		if t, err := time.ParseInLocation("15:04:05", s, loc); err == nil {
			n := now.In(loc)
			at := time.Date(n.Year(), n.Month(), n.Day(), t.Hour(), t.Minute(), t.Second(), 0, loc)
			if !at.After(now.Add(-slack)) {
				at = at.AddDate(0, 0, 1)
			}
			return at, false, nil
		}
	}
	return time.Time{}, false, fmt.Errorf("%q is not HH:MM:SS, YY-MM-DD HH:MM:SS or YYYY-MM-DD HH:MM:SS (with an optional Z)", line)
}

// reloadSlack is how late a time read from reload_time_file may be and
// still be taken as now: the file is read once a second.
const reloadSlack = 2 * time.Second

// reloadClock runs keepalived's reload_time_file: it reads the file
// (every second, and at the time scheduled), schedules a reload at the
// time it holds, and reloads then. As keepalived 2.2.7, the file is
// removed just before the reload unless reload_repeat is set and the
// time has no date (which then reloads every day at that time). A file
// that goes away cancels the reload; one that changes moves it. Once
// govs is stopping (stopping), nothing more is reloaded.
type reloadClock struct {
	reload   func(context.Context) error
	global   func() config.GlobalDefs
	stopping func() bool
	log      *slog.Logger
	now      func() time.Time

	path, line string // what the schedule was made from
	at         time.Time
	dated      bool
}

func (c *reloadClock) run(ctx context.Context) {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.tick(ctx)
			next := time.Second
			if !c.at.IsZero() {
				next = max(0, min(next, c.at.Sub(c.now())))
			}
			t.Reset(next)
		}
	}
}

// readFirstLine reads the first line of a regular file (not following a
// FIFO or device: a read must not block); "" when it does not exist.
func readFirstLine(path string) (string, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 256))
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	if line == "" {
		line = "(empty)"
	}
	return line, nil
}

// tick reads the file and reloads when the time has come.
func (c *reloadClock) tick(ctx context.Context) {
	g := c.global()
	line := ""
	if g.ReloadTimeFile != "" {
		l, err := readFirstLine(g.ReloadTimeFile)
		if err != nil {
			l = "(unreadable: " + err.Error() + ")"
		}
		line = l
	}
	now := c.now()
	if g.ReloadTimeFile != c.path || line != c.line {
		if !c.at.IsZero() {
			c.log.Info("reload_time_file changed: the scheduled reload is cancelled", "file", c.path, "was", c.at)
		}
		c.path, c.line, c.at = g.ReloadTimeFile, line, time.Time{}
		if line == "" {
			return
		}
		at, dated, err := reloadAt(line, now, reloadSlack)
		switch {
		case err != nil:
			c.log.Error("reload_time_file: no reload scheduled", "file", c.path, "err", err)
		case dated && at.Before(now.Add(-reloadSlack)):
			c.log.Warn("reload_time_file: the time is past; no reload scheduled", "file", c.path, "time", at)
		default:
			c.at, c.dated = at, dated
			c.log.Info("reload scheduled (reload_time_file)", "file", c.path, "at", at)
		}
	}
	if c.at.IsZero() || now.Before(c.at) {
		return
	}
	if c.stopping != nil && c.stopping() {
		c.log.Info("reload_time_file: govs is stopping; no reload", "file", c.path, "at", c.at)
		c.at = time.Time{}
		return
	}
	c.log.Info("reloading at the time of reload_time_file", "file", c.path, "at", c.at)
	c.at = time.Time{}
	// as keepalived: the file goes first (a time written during the
	// reload is then read after it), unless it repeats daily
	if !g.ReloadRepeat || c.dated {
		if err := os.Remove(g.ReloadTimeFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			c.log.Warn("reload_time_file: cannot remove it", "file", g.ReloadTimeFile, "err", err)
		}
	}
	// the next tick reads the file anew: gone, or the same time the
	// next day
	c.line = ""
	if err := c.reload(ctx); err != nil {
		c.log.Error("reload", "err", err)
	}
}
