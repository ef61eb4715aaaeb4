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

// processPollInterval is how often tracked processes are counted.
// keepalived learns of a fork or an exit at once from the kernel's
// process events; govs counts once a second.
const processPollInterval = time.Second

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
	if m.Quorum < 0 || m.QuorumMax < 0 {
		return errors.New("negative quorum")
	}
	if m.QuorumMax != 0 && m.QuorumMax < max(m.Quorum, 1) {
		return fmt.Errorf("quorum_max %d is less than quorum %d", m.QuorumMax, max(m.Quorum, 1))
	}
	if m.ForkDelay < 0 || m.TerminateDelay < 0 {
		return errors.New("negative delay")
	}
	return nil
}

// up says whether n matching processes are within the quorum.
func (m ProcessMatch) up(n int) bool {
	return n >= max(m.Quorum, 1) && (m.QuorumMax == 0 || n <= m.QuorumMax)
}

// matches says whether a process with kernel name comm and argument
// vector argv is one the match counts.
func (m ProcessMatch) matches(comm string, argv []string) bool {
	name := comm == m.Process
	if len(argv) > 0 && (argv[0] == m.Process || filepath.Base(argv[0]) == m.Process) {
		name = true
	}
	if !name {
		return false
	}
	if len(m.Params) == 0 {
		return true
	}
	var args []string
	if len(argv) > 1 {
		args = argv[1:]
	}
	switch m.ParamMatch {
	case "initial":
		return len(args) >= len(m.Params) && slices.Equal(args[:len(m.Params)], m.Params)
	case "partial":
		return strings.Contains(" "+strings.Join(args, " ")+" ", " "+strings.Join(m.Params, " ")+" ")
	default:
		return slices.Equal(args, m.Params)
	}
}

// countProcesses counts the running processes (not zombies, not kernel
// threads when arguments are to match) that m matches. A process that
// exits while it is read is not counted.
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
		// state is the first field after the name's closing parenthesis
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X' {
			continue
		}
		comm, _ := os.ReadFile(filepath.Join(dir, "comm"))
		cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		var argv []string
		if len(cmdline) > 0 {
			argv = strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
		}
		if m.matches(strings.TrimSuffix(string(comm), "\n"), argv) {
			n++
		}
	}
	return n
}

// processTracker turns process counts into the tracker's state, with
// the match's delays: a change of the count's side of the quorum takes
// effect once it has lasted the delay for that direction.
type processTracker struct {
	m     ProcessMatch
	ok    bool      // the state reported
	since time.Time // when the count last crossed to the side other than ok; zero while on ok's side
}

// observe records a count at now and reports whether the state changed.
func (p *processTracker) observe(n int, now time.Time) bool {
	up := p.m.up(n)
	if up == p.ok {
		p.since = time.Time{}
		return false
	}
	if p.since.IsZero() {
		p.since = now
	}
	wait := p.m.TerminateDelay
	if up {
		wait = p.m.ForkDelay
	}
	if now.Sub(p.since) < wait {
		return false
	}
	p.ok, p.since = up, time.Time{}
	return true
}

// watchProcess counts tp's processes every processPollInterval until ctx
// is done. Its first count is reported as it is (the machines were built
// from a count made a moment before, which a process may have changed
// since; the same state again changes nothing), then every change of
// state after the match's delays.
func watchProcess(ctx context.Context, tp TrackProcess, emit func(ok bool)) {
	pt := processTracker{m: tp.Match, ok: tp.Match.up(countProcesses(tp.Match))}
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
