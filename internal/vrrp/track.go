package vrrp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/govs/govs/internal/trackfile"
)

// Tracker keys.
func interfaceKey(name string) string { return "interface:" + name }
func scriptKey(name string) string    { return "script:" + name }
func fileKey(name string) string      { return "file:" + name }
func bfdKey(name string) string       { return "bfd:" + name }

// filePollInterval is how often track files are re-read.
const filePollInterval = time.Second

// fileWatchRetry is how long after a watch failed or went away the
// watcher tries inotify again (reading the file every filePollInterval
// meanwhile).
const fileWatchRetry = 10 * time.Second

// ResolveTrackers builds an instance's trackers from its track_* entries
// and the vrrp_script blocks, in their initial state. The instance's own
// interface is always tracked with weight 0 (keepalived's default without
// dont_track_primary).
func ResolveTrackers(cfg *InstanceConfig, scripts map[string]ScriptConfig) ([]Tracker, error) {
	var ts []Tracker
	if !cfg.DontTrackPrimary {
		ts = append(ts, Tracker{Key: interfaceKey(cfg.Interface), OK: true})
	}
	for _, ti := range cfg.TrackInterfaces {
		if !cfg.DontTrackPrimary && ti.Name == cfg.Interface && ti.Weight == 0 && !ti.Reverse {
			continue // (tracked so already)
		}
		ts = append(ts, Tracker{Key: interfaceKey(ti.Name), Weight: ti.Weight, Reverse: ti.Reverse, OK: true})
	}
	var errs []error
	for _, tsc := range cfg.TrackScripts {
		sc, ok := scripts[tsc.Name]
		if !ok {
			errs = append(errs, fmt.Errorf("vrrp_instance %s: track_script %s: no such vrrp_script", cfg.Name, tsc.Name))
			continue
		}
		w, rev := sc.Weight, sc.Reverse
		if tsc.WeightSet {
			w, rev = tsc.Weight, tsc.Reverse
		}
		// (init_fail has no effect on a tracked script: keepalived
		// 2.2.7 starts every tracked script as INIT, seen)
		ts = append(ts, Tracker{Key: scriptKey(tsc.Name), Weight: w, Reverse: rev, OK: true, Pending: true})
	}
	for _, tf := range cfg.TrackFiles {
		ts = append(ts, Tracker{Key: fileKey(tf.Name), Weight: tf.Weight, Reverse: tf.Reverse, Valued: true, Value: firstTrackFileValue(tf)})
	}
	for _, tp := range cfg.TrackProcesses {
		ts = append(ts, Tracker{Key: processKey(tp.Name), Weight: tp.Weight, Reverse: tp.Reverse, OK: tp.Match.up(countProcesses(tp.Match))})
	}
	for _, tb := range cfg.TrackBFDs {
		// down until the session says otherwise (its watcher tells
		// the current state at once)
		ts = append(ts, Tracker{Key: bfdKey(tb.Name), Weight: tb.Weight, Reverse: tb.Reverse, OK: false})
	}
	if cfg.UnicastFaultNoPeer && len(cfg.UnicastPeers) == 0 {
		// a condition of the configuration, not of the host: FAULT
		// until a reload gives the instance a peer
		ts = append(ts, Tracker{Key: noPeerKey, OK: false})
	}
	return ts, errors.Join(errs...)
}

// noPeerKey is the tracker holding an instance with unicast_fault_no_peer
// and no unicast peer in FAULT.
const noPeerKey = "unicast_fault_no_peer"

// riseFall debounces a vrrp_script's results as keepalived 2.2.7 does,
// with one counter: the script is OK while it is at least rise. A
// success adds one below rise-1 and goes to the top, rise+fall-1, from
// there; a failure takes one off above rise and goes to 0 from there.
// It starts at rise-1 ("one success is enough"): the first result
// decides. keepalived 2.2.7 starts every tracked script so, init_fail or
// not (seen in a namespace: init_fail with rise 3 is good after one
// success).
type riseFall struct {
	rise, fall int
	result     int
}

func newRiseFall(rise, fall int) riseFall {
	r := riseFall{rise: max(rise, 1), fall: max(fall, 1)}
	r.result = r.rise - 1
	return r
}

func (r *riseFall) ok() bool { return r.result >= r.rise }

// observe records one result and reports whether the state changed.
func (r *riseFall) observe(success bool) bool {
	was := r.ok()
	switch {
	case success && r.result < r.rise-1:
		r.result++
	case success:
		r.result = r.rise + r.fall - 1
	case r.result > r.rise:
		r.result--
	default:
		r.result = 0
	}
	return r.ok() != was
}

// runScript runs one vrrp_script check; it succeeds when the command
// exits 0 within the timeout.
func runScript(ctx context.Context, sc *ScriptConfig) bool {
	args := splitCommand(sc.Script)
	if len(args) == 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, sc.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.WaitDelay = time.Second
	return cmd.Run() == nil
}

// watchScript runs the script every interval until ctx is done and calls
// emit with the first result's state (which ends the trackers' pending
// state) and on every debounced change after; busy (if not nil) is told
// when a run starts and ends.
func watchScript(ctx context.Context, sc ScriptConfig, emit func(ok bool), busy func(bool)) {
	sc = sc.WithDefaults()
	rf := newRiseFall(sc.Rise, sc.Fall)
	first := true
	t := time.NewTicker(sc.Interval)
	defer t.Stop()
	if busy == nil {
		busy = func(bool) {}
	}
	for {
		busy(true)
		ok := runScript(ctx, &sc)
		busy(false)
		if ctx.Err() != nil {
			return
		}
		if rf.observe(ok) || first {
			emit(rf.ok())
		}
		first = false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// osEvents says whether the watchers of track files and processes wait
// on the kernel's events (inotify, the proc connector). Tests on a fake
// clock (testing/synctest) turn it off: a bubble's clock only moves
// while its goroutines wait on it, never while one waits on a file
// descriptor.
var osEvents = true

// watchFile follows a track_file and calls emit when its value changes:
// at once, by inotify on its directory as keepalived does (a write, a
// file moved into place or removed), where it can; and by reading it
// every filePollInterval whatever happens (so that a change the watch
// cannot see, or one while the directory cannot be watched, is seen
// that late at most). A watch that goes (its directory removed) is
// tried again every fileWatchRetry.
//
// A value outside 32 bits is ignored, the last one kept, as keepalived
// does; invalid (when not nil) is called when the file comes to hold
// one (once, not at every read).
func watchFile(ctx context.Context, tf TrackFile, emit func(v int), invalid func()) {
	last, ok := readTrackFile(tf.Path, tf.Init)
	bad := !ok // reported once, until the file reads well again
	check := func() {
		v, ok := readTrackFile(tf.Path, tf.Init)
		switch {
		case !ok:
			if !bad && invalid != nil {
				invalid()
			}
			bad = true
		case v != last:
			bad = false
			last = v
			emit(v)
		default:
			bad = false
		}
	}
	t := time.NewTicker(filePollInterval)
	defer t.Stop()
	var retry time.Time
	for {
		if osEvents && !time.Now().Before(retry) {
			if w, err := newFileWatch(tf.Path); err == nil {
				check() // a change between the read above and the watch
				for ctx.Err() == nil {
					if err := w.wait(ctx, filePollInterval); err != nil {
						break // the watch is gone (its directory removed)
					}
					check()
				}
				w.Close()
				if ctx.Err() != nil {
					return
				}
				check()
			}
			retry = time.Now().Add(fileWatchRetry)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		check()
	}
}

// firstTrackFileValue is a track file's value when an instance starts
// tracking it (0 when it is out of range, as keepalived's).
func firstTrackFileValue(tf TrackFile) int {
	v, _ := readTrackFile(tf.Path, tf.Init)
	return v
}

// readTrackFile reads the leading integer of a track file, as keepalived
// reads it (strtol: "2.5" is 2, text is 0); a missing or unreadable file
// yields def (init_file's value, or 0). ok is false for a value outside
// 32 bits, which keepalived ignores; v is then 0 (keepalived's value
// before any read).
func readTrackFile(path string, def int) (v int, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return def, true
	}
	return trackfile.Int(b)
}

// splitCommand splits a keepalived script line on blanks, honouring
// double and single quotes.
func splitCommand(s string) []string {
	var (
		args  []string
		cur   strings.Builder
		quote rune
		in    bool
	)
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				args = append(args, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		args = append(args, cur.String())
	}
	return args
}
