// Package statefiles writes keepalived's state files: keepalived.data
// and keepalived_check.data (SIGUSR1), keepalived.stats (SIGUSR2) and
// keepalived.json (keepalived's JSON signal), in keepalived's layout, so
// that the scripts and Prometheus exporters that read keepalived's files
// read govs's.
//
// The layouts follow what keepalived 2.2.7 writes (captured from it in a
// network namespace): the VRRP instance, script, sync group and stats
// blocks line for line for what govs has, the JSON with keepalived's
// keys in keepalived's order. Lines about keepalived's internals (file
// descriptors, socket pools, its own timers) are left out.
package statefiles

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/vrrp"
)

// The files' names, as keepalived names them.
const (
	DataFile      = "keepalived.data"
	CheckDataFile = "keepalived_check.data"
	StatsFile     = "keepalived.stats"
	JSONFile      = "keepalived.json"
)

// DefaultDir is where keepalived writes them.
const DefaultDir = "/tmp"

// Input is what the files show.
type Input struct {
	Now    time.Time
	Config *config.Config // the configuration in force (global_defs, checkers)
	VRRP   vrrp.Dump
	State  *api.State // the virtual and real servers with their health
}

// Mode is the files' mode for the configuration's umask (keepalived's
// 0177 when it sets none).
func Mode(umask *uint32) os.FileMode {
	m := uint32(0o177)
	if umask != nil {
		m = *umask
	}
	return os.FileMode(0o666 &^ m)
}

// WriteFile writes the file name in dir by render: to a new file in dir,
// with mode perm, renamed over name when complete, so that a reader
// never sees half a file and a link planted at name in a shared
// directory such as /tmp is replaced, not followed.
func WriteFile(dir, name string, perm os.FileMode, render func(io.Writer) error) error {
	f, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = render(f)
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", filepath.Join(dir, name), err)
	}
	return nil
}

// stateName is keepalived's name of a VRRP state.
func stateName(s vrrp.State) string {
	switch s {
	case vrrp.StateBackup:
		return "BACKUP"
	case vrrp.StateMaster:
		return "MASTER"
	case vrrp.StateFault:
		return "FAULT"
	}
	return "INIT"
}

// StateNumber is keepalived's number of a VRRP state (JSON, SNMP):
// 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT.
func StateNumber(s vrrp.State) int {
	switch s {
	case vrrp.StateBackup:
		return 1
	case vrrp.StateMaster:
		return 2
	case vrrp.StateFault:
		return 3
	}
	return 0
}

// ShownState is an instance's state as keepalived shows it: one waiting
// in INIT for a tracked script's first result is in FAULT there (though
// it enters no FAULT state, notifies nothing, and goes straight on when
// the result comes).
func ShownState(st *vrrp.InstanceStatus) vrrp.State {
	if st.State == vrrp.StateInit && st.Waiting {
		return vrrp.StateFault
	}
	return st.State
}

// WantState is the state an instance wants as keepalived shows it: the
// one it is in (keepalived's FAULT instances want FAULT too).
func WantState(st *vrrp.InstanceStatus) vrrp.State {
	if st.State == vrrp.StateInit && st.Waiting {
		return vrrp.StateBackup // (keepalived's, seen)
	}
	return st.State
}

// lastTransition is the time of the instance's last change of state
// (zero when it had none).
func lastTransition(st *vrrp.InstanceStatus) time.Time {
	if n := len(st.Transitions); n > 0 {
		return st.Transitions[n-1].Time
	}
	return time.Time{}
}

// epoch formats t as keepalived's seconds.microseconds.
func epoch(t time.Time) string {
	if t.IsZero() {
		return "0.000000"
	}
	return fmt.Sprintf("%d.%06d", t.Unix(), t.Nanosecond()/1000)
}

// vipLine is keepalived's line for one virtual address: the address
// (without the length of a host prefix), brd, dev, scope, the options,
// and "set" while it is installed.
func vipLine(v vrrp.VirtualIP, cfg *vrrp.InstanceConfig, set bool) string {
	var b strings.Builder
	p := v.Prefix
	if p.IsSingleIP() {
		b.WriteString(p.Addr().String())
	} else {
		b.WriteString(p.String())
	}
	if v.Broadcast.IsValid() {
		b.WriteString(" brd " + v.Broadcast.String())
	}
	dev := v.Dev
	if dev == "" {
		dev = cfg.Interface
		if cfg.VMAC != "" {
			dev = cfg.VMAC
		}
	}
	b.WriteString(" dev " + dev)
	scope := v.Scope
	if scope == "" {
		scope = "global"
	}
	b.WriteString(" scope " + scope)
	if v.Label != "" {
		b.WriteString(" label " + v.Label)
	}
	if v.NoDAD {
		b.WriteString(" nodad")
	}
	if v.NoTrack {
		b.WriteString(" no_track")
	}
	if p.Addr().Is6() && !p.Addr().Is4In6() {
		b.WriteString(" preferred_lft forever")
	}
	if set {
		b.WriteString(" set")
	}
	return b.String()
}

// QuoteCommand writes a command line as keepalived does: each word in
// single quotes.
func QuoteCommand(cmd string) string {
	words := strings.Fields(cmd)
	for i, w := range words {
		words[i] = "'" + strings.Trim(w, `"`) + "'"
	}
	return strings.Join(words, " ")
}

// ScriptStatus is GOOD or BAD as the instances tracking the script see
// it, INIT when none does.
func ScriptStatus(name string, insts []vrrp.InstanceStatus) string {
	for _, st := range insts {
		for _, t := range st.Trackers {
			if t.Key == "script:"+name {
				// keepalived 2.2.7 shows a script with no result yet as
				// BAD (its counter starts below rise)
				if t.OK && !t.Pending {
					return "GOOD"
				}
				return "BAD"
			}
		}
	}
	return "INIT"
}

// trackers of an instance's configuration, for its tracked lists.
func weightText(w int, reverse bool) string {
	s := fmt.Sprintf("weight %d", w)
	if reverse {
		s += " reverse"
	}
	return s
}

func onOff(b bool, on, off string) string {
	if b {
		return on
	}
	return off
}

// secs formats a duration in whole seconds, as keepalived's integer
// settings.
func secs(d time.Duration) int { return int(d / time.Second) }

// Multicast is the group an instance's adverts go to.
func Multicast(cfg *vrrp.InstanceConfig) netip.Addr {
	if cfg.MulticastGroup.IsValid() {
		return cfg.MulticastGroup
	}
	if cfg.IsIPv6() {
		return netip.MustParseAddr("ff02::12")
	}
	return netip.MustParseAddr("224.0.0.18")
}

// GroupState is the state keepalived shows for a sync group: FAULT if a
// member is in FAULT, else the first member's.
func GroupState(g vrrp.SyncGroupConfig, insts []vrrp.InstanceStatus) vrrp.State {
	var first *vrrp.InstanceStatus
	for i := range insts {
		if !slices.Contains(g.Members, insts[i].Name) {
			continue
		}
		if insts[i].State == vrrp.StateFault {
			return vrrp.StateFault
		}
		if first == nil {
			first = &insts[i]
		}
	}
	if first == nil {
		return vrrp.StateInit
	}
	return first.State
}

// InstanceFileName is the name keepalived gives a .data file with
// data_use_instance: the network namespace and the instance name, those
// that are set, each after an underscore before the extension
// (keepalived.data in namespace blue of instance lb1:
// keepalived_blue_lb1.data).
func InstanceFileName(name, netns, instance string) string {
	ext := filepath.Ext(name)
	base := strings.TrimSuffix(name, ext)
	for _, s := range []string{netns, instance} {
		if s != "" {
			base += "_" + strings.ReplaceAll(s, "/", "_") // (a name, not a path)
		}
	}
	return base + ext
}
