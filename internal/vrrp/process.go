package vrrp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

func processKey(name string) string { return "process:" + name }

// procRoot is where processes are listed (a variable for tests).
var procRoot = "/proc"

// processPollInterval is how often tracked processes are counted, and so
// the granularity of the delays. keepalived learns of a fork or an exit
// at once from the kernel's process events; govs counts once a second.
const processPollInterval = time.Second

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
// matches. The command line (/proc/PID/cmdline, which reads the
// process's memory) is read only for a match on it. A process that exits
// while it is read is not counted.
func countProcesses(m ProcessMatch) int {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		pid := e.Name()
		if pid == "" || pid[0] < '1' || pid[0] > '9' {
			continue
		}
		dir := filepath.Join(procRoot, pid)
		stat, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue
		}
		// "PID (COMM) STATE ...": the name may hold blanks and
		// parentheses, the state follows the last ')'
		open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
		if open < 0 || end < open || end+2 >= len(stat) || stat[end+2] == 'Z' || stat[end+2] == 'X' {
			continue
		}
		comm := string(stat[open+1 : end])
		var argv []string
		if m.FullCommand {
			cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
			if err != nil || len(cmdline) == 0 {
				continue
			}
			argv = strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
		}
		if m.matches(comm, argv) {
			n++
		}
	}
	return n
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

// watchProcess counts tp's processes every processPollInterval until ctx
// is done. Its first count is reported as it is (the machines were built
// from a count made a moment before, which a process may have changed
// since; the same state again changes nothing), then every change of
// state.
func watchProcess(ctx context.Context, tp TrackProcess, emit func(ok bool)) {
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
