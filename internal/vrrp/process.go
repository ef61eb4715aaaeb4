package vrrp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

func processKey(name string) string { return "process:" + name }

// procRoot is where processes are listed (a variable for tests).
var procRoot = "/proc"

// processPollInterval is how often tracked processes are counted where
// the kernel's process events cannot be had (then also the granularity
// of the delays); with them (watchProcessEvents), how often a watcher
// wakes without an event to end a delay.
const processPollInterval = time.Second

// processRescanInterval is how often a watcher fed by process events
// counts from /proc again, in case it missed some.
const processRescanInterval = time.Minute

// commLen is the longest kernel process name (TASK_COMM_LEN - 1).
const commLen = 15

// check reports what is wrong with a match, or nil.
func (m ProcessMatch) check() error {
	if m.Process == "" {
		return errors.New("no process")
	}
	switch m.ParamMatch {
	case "", "exact", "initial", "partial":
	default:
		return fmt.Errorf("param_match %q: want exact, initial or partial", m.ParamMatch)
	}
	if len(m.Params) > 0 && (!m.FullCommand || m.ParamMatch == "") {
		return errors.New("arguments to match without full_command and a param_match")
	}
	if m.Quorum < 0 || m.QuorumMax < 0 {
		return errors.New("negative quorum")
	}
	if m.HasQuorumMax && m.QuorumMax < m.Quorum {
		return fmt.Errorf("quorum_max %d is less than quorum %d", m.QuorumMax, m.Quorum)
	}
	if m.ForkDelay < 0 || m.TerminateDelay < 0 {
		return errors.New("negative delay")
	}
	return nil
}

// up says whether n matching processes are within the quorum.
func (m ProcessMatch) up(n int) bool {
	return n >= m.Quorum && (!m.HasQuorumMax || n <= m.QuorumMax)
}

// matches says whether a process with kernel name comm and argument
// vector argv is one the match counts.
func (m ProcessMatch) matches(comm string, argv []string) bool {
	if !m.FullCommand {
		return comm == m.Process
	}
	if len(argv) == 0 || argv[0] != m.Process {
		return false
	}
	args := argv[1:]
	switch {
	case m.ParamMatch == "":
		return true
	case m.ParamMatch == "exact":
		return slices.Equal(args, m.Params)
	case len(m.Params) == 0:
		return true
	case len(args) < len(m.Params):
		return false
	case m.ParamMatch == "partial":
		return slices.Equal(args[:len(m.Params)], m.Params)
	default: // initial: the last parameter may be the start of its argument
		last := len(m.Params) - 1
		return slices.Equal(args[:last], m.Params[:last]) && strings.HasPrefix(args[last], m.Params[last])
	}
}

// countProcesses counts the running processes (not zombies) that m
// matches.
func countProcesses(m ProcessMatch) int { return len(matchingProcesses(m)) }

// matchingProcesses are the process IDs of the running processes (not
// zombies) that m matches.
func matchingProcesses(m ProcessMatch) map[string]bool {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return nil
	}
	out := map[string]bool{}
	for _, e := range ents {
		pid := e.Name()
		if pid == "" || pid[0] < '1' || pid[0] > '9' {
			continue
		}
		if processMatches(m, pid) {
			out[pid] = true
		}
	}
	return out
}

// processMatches says whether process pid runs (is not a zombie) and is
// one m matches. The command line (/proc/PID/cmdline, which reads the
// process's memory) is read only for a match on it. A process that exits
// while it is read does not match.
func processMatches(m ProcessMatch, pid string) bool {
	dir := filepath.Join(procRoot, pid)
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return false
	}
	// "PID (COMM) STATE ...": the name may hold blanks and
	// parentheses, the state follows the last ')'
	open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if open < 0 || end < open || end+2 >= len(stat) || stat[end+2] == 'Z' || stat[end+2] == 'X' {
		return false
	}
	comm := string(stat[open+1 : end])
	var argv []string
	if m.FullCommand {
		cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err != nil || len(cmdline) == 0 {
			return false
		}
		argv = strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
	}
	return m.matches(comm, argv)
}

// processTracker turns process counts into the tracker's state as
// keepalived does: a change of the count that crosses a bound of the
// quorum takes effect after ForkDelay when the count rose, TerminateDelay
// when it fell; a crossing in the other direction while such a delay
// runs cancels it and takes effect at once.
type processTracker struct {
	m     ProcessMatch
	ok    bool // the state reported
	count int  // the last count
	// pending is the direction of the delay running (+1 fork, -1
	// terminate, 0 none) and until its end
	pending int
	until   time.Time
}

// observe records a count at now and reports whether the state changed.
func (p *processTracker) observe(n int, now time.Time) bool {
	was := p.ok
	if p.pending != 0 && !now.Before(p.until) {
		p.pending = 0
		p.ok = p.m.up(p.count)
	}
	if n != p.count && p.m.up(n) != p.m.up(p.count) {
		rise := 1
		delay := p.m.ForkDelay
		if n < p.count {
			rise, delay = -1, p.m.TerminateDelay
		}
		switch {
		case p.pending == -rise:
			p.pending = 0
			p.ok = p.m.up(n)
		case delay > 0:
			p.pending, p.until = rise, now.Add(delay)
		default:
			p.pending = 0
			p.ok = p.m.up(n)
		}
	}
	p.count = n
	return p.ok != was
}

// watchProcess follows tp's processes until ctx is done, by the kernel's
// process events where it can (watchProcessEvents: a fork, an exec or an
// exit counts at once, as in keepalived), else by counting them every
// processPollInterval (pollProcess). Its first count is reported as it is
// (the machines were built from a count made a moment before, which a
// process may have changed since; the same state again changes nothing),
// then every change of state.
func watchProcess(ctx context.Context, tp TrackProcess, log *slog.Logger, emit func(ok bool)) {
	// (the events are about the real /proc: not with a made-up one)
	if osEvents && procRoot == "/proc" {
		ev, err := openProcEvents()
		if err == nil {
			err = watchProcessEvents(ctx, tp, ev, emit)
			ev.Close()
			if err == nil {
				return
			}
		}
		// the events cannot be had (any more): counting takes over
		log.Info("vrrp track_process: counting processes once a second, without the kernel's process events", "track_process", tp.Name, "reason", err)
	}
	if ctx.Err() == nil {
		pollProcess(ctx, tp, emit)
	}
}

// pollProcess is watchProcess by counting every processPollInterval.
func pollProcess(ctx context.Context, tp TrackProcess, emit func(ok bool)) {
	n := countProcesses(tp.Match)
	pt := processTracker{m: tp.Match, ok: tp.Match.up(n), count: n}
	emit(pt.ok)
	t := time.NewTicker(processPollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if pt.observe(countProcesses(tp.Match), now) {
				emit(pt.ok)
			}
		}
	}
}

// procEventSource delivers the kernel's process events (the proc
// connector): next waits up to a timeout and returns the events about
// processes, or overflow when events were lost.
type procEventSource interface {
	next(ctx context.Context, timeout time.Duration) (evs []procEvent, overflow bool, err error)
	Close() error
}

// watchProcessEvents is watchProcess fed by process events: the set of
// matching processes is read from /proc once, then kept by the events,
// as keepalived keeps it: the child of a matching process matches (it
// runs its image until it execs), an exec or a rename makes the process
// be looked at again, an exit removes it. The set is read again every
// processRescanInterval, and a second after events were lost. Delays end
// at the wake-up after them (an event, or processPollInterval without
// one). It returns nil when ctx ends, or the error that stopped the
// events.
func watchProcessEvents(ctx context.Context, tp TrackProcess, ev procEventSource, emit func(ok bool)) error {
	set := matchingProcesses(tp.Match)
	scanned := time.Now()
	lost := false
	pt := processTracker{m: tp.Match, ok: tp.Match.up(len(set)), count: len(set)}
	emit(pt.ok)
	for ctx.Err() == nil {
		evs, overflow, err := ev.next(ctx, processPollInterval)
		if err != nil {
			return err
		}
		lost = lost || overflow
		now := time.Now()
		if lost && now.Sub(scanned) >= time.Second || now.Sub(scanned) >= processRescanInterval {
			set, scanned, lost = matchingProcesses(tp.Match), now, false
		} else {
			for _, e := range evs {
				switch e.what {
				case procEventExit:
					delete(set, e.pid)
				case procEventFork:
					if set[e.parent] {
						set[e.pid] = true
					}
				default: // exec, rename
					if processMatches(tp.Match, e.pid) {
						set[e.pid] = true
					} else {
						delete(set, e.pid)
					}
				}
			}
		}
		if pt.observe(len(set), now) {
			emit(pt.ok)
		}
	}
	return nil
}
