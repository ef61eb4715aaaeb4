package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/govs/govs/internal/director"
	"github.com/govs/govs/internal/statefiles"
)

// The signals keepalived writes its state files on (keepalived
// --signum): DATA, STATS, STATS_CLEAR and JSON.
var (
	sigData       = syscall.SIGUSR1
	sigStats      = syscall.SIGUSR2
	sigStatsClear = syscall.Signal(63)
	sigJSON       = syscall.Signal(36)
)

// stateFileSignals are the signals stateFiles.handle takes.
var stateFileSignals = []os.Signal{sigData, sigStats, sigStatsClear, sigJSON}

// stateFiles writes keepalived's state files into dir when sent
// keepalived's signals, so that scripts and exporters made for
// keepalived's files read govs's.
type stateFiles struct {
	dir   string
	d     *director.Director
	log   *slog.Logger
	clear statefiles.Clearer
}

// handle writes the files sig asks for; it reports whether sig is one of
// stateFileSignals.
func (s *stateFiles) handle(ctx context.Context, sig os.Signal) bool {
	type file struct {
		name   string
		render func(io.Writer, *statefiles.Input) error
	}
	var files []file
	clear := false
	switch sig {
	case sigData:
		files = []file{{statefiles.DataFile, statefiles.Data}, {statefiles.CheckDataFile, statefiles.CheckData}}
	case sigStats, sigStatsClear:
		files = []file{{statefiles.StatsFile, func(w io.Writer, in *statefiles.Input) error { return statefiles.WriteStats(w, in, &s.clear) }}}
		clear = sig == sigStatsClear
	case sigJSON:
		files = []file{{statefiles.JSONFile, func(w io.Writer, in *statefiles.Input) error {
			return statefiles.WriteJSON(w, in, &s.clear, s.d.Config().Global.JSONVersion)
		}}}
	default:
		return false
	}
	in, err := s.d.StateFilesInput(ctx)
	if err != nil {
		s.log.Error("state files: reading the state", "signal", sig.String(), "err", err)
		return true
	}
	for _, f := range files {
		if err := statefiles.WriteFile(s.dir, f.name, func(w io.Writer) error { return f.render(w, in) }); err != nil {
			s.log.Error("state files", "signal", sig.String(), "err", err)
			continue
		}
		s.log.Info("state file written", "signal", sig.String(), "file", filepath.Join(s.dir, f.name))
	}
	if clear {
		s.clear.Clear(in.VRRP.Instances)
	}
	return true
}

// writePidFile writes this process's id into path (keepalived's -p), and
// refuses if it names another govs that runs. remove takes it away again
// if it still holds this process's id.
func writePidFile(path string) (remove func(), err error) {
	if b, err := os.ReadFile(path); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid != os.Getpid() && pid > 0 {
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			if syscall.Kill(pid, 0) == nil && strings.TrimSpace(string(comm)) == filepath.Base(os.Args[0]) {
				return nil, fmt.Errorf("pid file %s: govs already runs as process %d", path, pid)
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("pid file: %w", err)
	}
	me := strconv.Itoa(os.Getpid()) + "\n"
	if err := statefiles.WriteFile(filepath.Dir(path), filepath.Base(path), func(w io.Writer) error {
		_, err := io.WriteString(w, me)
		return err
	}); err != nil {
		return nil, fmt.Errorf("pid file: %w", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		return nil, fmt.Errorf("pid file: %w", err)
	}
	return func() {
		if b, err := os.ReadFile(path); err == nil && string(b) == me {
			os.Remove(path)
		}
	}, nil
}

// cmdSignum prints the number of keepalived's signal NAME, as
// keepalived --signum=NAME does.
func cmdSignum(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("signum", "signum NAME\n\nPrint the number of the signal that makes govs run do NAME, as keepalived\n--signum=NAME does: "+strings.Join(statefiles.SignumNames(), ", ")+".\nDATA writes keepalived.data and keepalived_check.data, STATS keepalived.stats,\nSTATS_CLEAR writes it and counts from 0 again, JSON keepalived.json (in\ngovs run's --state-dir, /tmp by default).", stderr)
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "govs signum: one signal name expected ("+strings.Join(statefiles.SignumNames(), ", ")+")")
		return 2
	}
	n, ok := statefiles.Signum(strings.ToUpper(fs.Arg(0)))
	if !ok {
		fmt.Fprintf(stderr, "govs signum: unknown signal name %q (%s)\n", fs.Arg(0), strings.Join(statefiles.SignumNames(), ", "))
		return 1
	}
	fmt.Fprintln(stdout, n)
	return 0
}
