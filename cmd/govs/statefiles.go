package main

import (
	"context"
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
	in, err := s.d.StateFilesInput(ctx, sig == sigData)
	if err != nil {
		s.log.Error("state files: reading the state", "signal", sig.String(), "err", err)
		return true
	}
	for i := range files {
		if sig == sigData && in.Config.Global.DataUseInstance {
			// data_use_instance: keepalived_NS_INSTANCE.data
			files[i].name = statefiles.InstanceFileName(files[i].name, in.Config.NetNamespace(), in.Config.InstanceName)
		}
	}
	for _, f := range files {
		if err := statefiles.WriteFile(s.dir, f.name, statefiles.Mode(in.Config.Global.Umask), func(w io.Writer) error { return f.render(w, in) }); err != nil {
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

// writePidFile writes this process's id into path (keepalived's -p) and
// holds a lock on it while govs runs: a second govs given the same file
// is refused, as is one given the pid file of a keepalived that runs.
// remove takes the file away again if it still holds this process's id.
func writePidFile(path string) (remove func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return nil, fmt.Errorf("pid file: %w", err)
	}
	fail := func(err error) (func(), error) {
		f.Close()
		return nil, err
	}
	b, _ := io.ReadAll(f)
	old, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fail(fmt.Errorf("pid file %s: another govs holds it (process %d)", path, old))
	}
	if old > 0 && old != os.Getpid() {
		// keepalived does not lock its pid file: one that runs is
		// known by its program
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", old)); err == nil && filepath.Base(exe) == "keepalived" {
			return fail(fmt.Errorf("pid file %s: keepalived runs as process %d", path, old))
		}
	}
	me := strconv.Itoa(os.Getpid()) + "\n"
	if err := f.Truncate(0); err != nil {
		return fail(fmt.Errorf("pid file: %w", err))
	}
	if _, err := f.WriteAt([]byte(me), 0); err != nil {
		return fail(fmt.Errorf("pid file: %w", err))
	}
	return func() {
		if b, err := os.ReadFile(path); err == nil && string(b) == me {
			os.Remove(path)
		}
		f.Close()
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
