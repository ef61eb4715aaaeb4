package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/govs/govs/internal/config"
)

// reloadAt reads the first line of a reload_time_file: HH:MM:SS,
// YY-MM-DD HH:MM:SS or YYYY-MM-DD HH:MM:SS, each with an optional Z (UTC;
// else local time), exactly so, as keepalived 2.2.7 takes it. A time
// without a date is its next occurrence after now; dated says whether a
// date was given.
func reloadAt(line string, now time.Time) (at time.Time, dated bool, err error) {
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
			if !at.After(now) {
				at = at.AddDate(0, 0, 1)
			}
			return at, false, nil
		}
	}
	return time.Time{}, false, fmt.Errorf("%q is not HH:MM:SS, YY-MM-DD HH:MM:SS or YYYY-MM-DD HH:MM:SS (with an optional Z)", line)
}

// reloadClock runs keepalived's reload_time_file: it reads the file
// (every second), schedules a reload at the time it holds, and reloads
// then; the file is removed after the reload unless reload_repeat (a
// time without a date then reloads every day). A file that goes away
// cancels the reload; one that changes moves it.
type reloadClock struct {
	reload func(context.Context) error
	global func() config.GlobalDefs
	log    *slog.Logger
	now    func() time.Time

	path, line string // what the schedule was made from
	at         time.Time
}

func (c *reloadClock) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.tick(ctx)
		}
	}
}

// tick reads the file and reloads when the time has come.
func (c *reloadClock) tick(ctx context.Context) {
	g := c.global()
	line := ""
	if g.ReloadTimeFile != "" {
		b, err := os.ReadFile(g.ReloadTimeFile)
		switch {
		case err == nil:
			line, _, _ = strings.Cut(string(b), "\n")
			if line == "" {
				line = "(empty)"
			}
		case !errors.Is(err, os.ErrNotExist):
			line = "(unreadable)"
		}
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
		at, dated, err := reloadAt(line, now)
		switch {
		case err != nil:
			c.log.Error("reload_time_file: no reload scheduled", "file", c.path, "err", err)
		case dated && !at.After(now):
			c.log.Warn("reload_time_file: the time is past; no reload scheduled", "file", c.path, "time", at)
		default:
			c.at = at
			c.log.Info("reload scheduled (reload_time_file)", "file", c.path, "at", at)
		}
	}
	if c.at.IsZero() || now.Before(c.at) {
		return
	}
	c.log.Info("reloading at the time of reload_time_file", "file", c.path, "at", c.at)
	c.at = time.Time{}
	if err := c.reload(ctx); err != nil {
		c.log.Error("reload", "err", err)
	}
	if !g.ReloadRepeat {
		if err := os.Remove(g.ReloadTimeFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			c.log.Warn("reload_time_file: cannot remove it after the reload", "file", g.ReloadTimeFile, "err", err)
		}
		c.line = ""
		return
	}
	// reload_repeat: a time without a date comes again tomorrow; the
	// next tick reads the file anew
	c.line = ""
}
