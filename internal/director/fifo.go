package director

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/notify"
)

// fifos are keepalived's notify FIFOs: notify_fifo gets every event,
// vrrp_notify_fifo the VRRP ones, lvs_notify_fifo those of the real and
// virtual servers (two of them on one path share it, and get each line
// once). They are opened when the director is made and closed by Stop;
// their *_script readers start with Run and end with Stop, once they
// have read what was written.
type fifos struct {
	all, vrrp, lvs *notify.FIFO
	scripts        []fifoScript
	tmpDirs        []string // made for a script without its FIFO

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type fifoScript struct {
	kind string
	cmd  notify.Command
}

// openFIFOs opens the FIFOs of g. A *_fifo_script without its FIFO gets
// one in a directory of its own in the temporary directory. A FIFO govs
// makes belongs to the USER [GROUP] given with it, else to its reader
// script's user, so that a script not run as root can read it.
func openFIFOs(g config.GlobalDefs, log *slog.Logger) (*fifos, error) {
	f := &fifos{}
	byPath := map[string]*notify.FIFO{}
	for _, k := range []struct {
		kind string
		cfg  *config.NotifyFIFO
		dst  **notify.FIFO
	}{{"notify_fifo", g.NotifyFIFO, &f.all}, {"vrrp_notify_fifo", g.VRRPNotifyFIFO, &f.vrrp}, {"lvs_notify_fifo", g.LVSNotifyFIFO, &f.lvs}} {
		if k.cfg == nil {
			continue
		}
		var cmd *notify.Command
		if k.cfg.Script != nil {
			if cmd = scriptCmd(k.cfg.Script); cmd == nil {
				f.Close()
				return nil, fmt.Errorf("%s_script %q: not a command", k.kind, k.cfg.Script.Cmd)
			}
		}
		path := k.cfg.Path
		if path == "" {
			dir, err := os.MkdirTemp("", "govs-fifo-")
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: %w", k.kind, err)
			}
			f.tmpDirs = append(f.tmpDirs, dir)
			path = filepath.Join(dir, k.kind)
		}
		ff := byPath[path]
		if ff == nil {
			var err error
			if ff, err = notify.OpenFIFO(path); err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: %w", k.kind, err)
			}
			byPath[path] = ff
			owner := k.cfg.Owner
			if owner == "" && cmd != nil && cmd.User != "" {
				owner = cmd.User + " " + cmd.Group
			} else if owner == "" && cmd != nil && g.ScriptUser != "" {
				u, gr := splitUser(g.ScriptUser)
				owner = u + " " + gr
			}
			if ff.Created() && strings.TrimSpace(owner) != "" {
				if err := chownFIFO(ff, owner, k.cfg.Path == ""); err != nil {
					log.Warn("notify fifo owner", "fifo", path, "err", err)
				}
			}
		}
		*k.dst = ff
		if cmd != nil {
			cmd.Args = append(cmd.Args, path)
			f.scripts = append(f.scripts, fifoScript{kind: k.kind, cmd: *cmd})
		}
	}
	return f, nil
}

// chownFIFO gives a FIFO govs made (and its private directory, withDir)
// to owner, "user [group]".
func chownFIFO(ff *notify.FIFO, owner string, withDir bool) error {
	name, group, _ := strings.Cut(strings.TrimSpace(owner), " ")
	uid, gid, err := notify.LookupIDs(name, strings.TrimSpace(group))
	if err != nil {
		return err
	}
	if withDir {
		if err := os.Chown(filepath.Dir(ff.Path), int(uid), int(gid)); err != nil {
			return err
		}
	}
	return ff.Chown(int(uid), int(gid))
}

// distinct lists the FIFOs a line goes to, each once.
func distinct(ffs ...*notify.FIFO) []*notify.FIFO {
	var out []*notify.FIFO
	for _, ff := range ffs {
		if ff != nil && !slices.Contains(out, ff) {
			out = append(out, ff)
		}
	}
	return out
}

// VRRP writes a VRRP event line.
func (f *fifos) VRRP(line string) {
	if f != nil {
		for _, ff := range distinct(f.all, f.vrrp) {
			ff.WriteLine(line)
		}
	}
}

// LVS writes a real or virtual server event line.
func (f *fifos) LVS(line string) {
	if f != nil {
		for _, ff := range distinct(f.all, f.lvs) {
			ff.WriteLine(line)
		}
	}
}

// start starts the FIFOs' reader scripts (ended by stop).
func (f *fifos) start(r *notify.Runner, log *slog.Logger) {
	if f == nil || len(f.scripts) == 0 || f.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	for _, s := range f.scripts {
		f.wg.Go(func() {
			_, err := r.Run(ctx, s.cmd)
			if ctx.Err() == nil {
				log.Warn("notify fifo script ended", "fifo", s.kind, "script", s.cmd.String(), "err", err)
			}
		})
	}
}

// stop gives the readers up to a second to read what is left, ends them
// and closes the FIFOs.
func (f *fifos) stop(log *slog.Logger) error {
	if f == nil {
		return nil
	}
	if f.cancel != nil {
		deadline := time.Now().Add(time.Second)
		for time.Now().Before(deadline) && f.unread() > 0 {
			time.Sleep(10 * time.Millisecond)
		}
		f.cancel()
		f.wg.Wait()
	}
	for _, ff := range distinct(f.all, f.vrrp, f.lvs) {
		if n := ff.Dropped(); n > 0 {
			log.Warn("notify fifo: lines dropped, the pipe was full (no reader, or a slow one)", "fifo", ff.Path, "dropped", n)
		}
	}
	return f.Close()
}

func (f *fifos) unread() int {
	n := 0
	for _, ff := range distinct(f.all, f.vrrp, f.lvs) {
		n += ff.Unread()
	}
	return n
}

// Close closes the FIFOs, removing those govs made.
func (f *fifos) Close() error {
	if f == nil {
		return nil
	}
	var errs []error
	for _, ff := range distinct(f.all, f.vrrp, f.lvs) {
		errs = append(errs, ff.Close())
	}
	for _, d := range f.tmpDirs {
		errs = append(errs, os.Remove(d))
	}
	f.tmpDirs = nil
	return errors.Join(errs...)
}

// vrrpFIFOLine is keepalived's line for a VRRP notification.
func vrrpFIFOLine(typ, name, state string, priority int, rxLowerPri, prioChange bool) string {
	switch {
	case rxLowerPri:
		state = "MASTER_RX_LOWER_PRI"
	case prioChange && state == "MASTER":
		state = "MASTER_PRIORITY"
	case prioChange:
		state = "BACKUP_PRIORITY"
	}
	if typ == "GROUP" {
		priority = 0
	}
	return fmt.Sprintf("%s \"%s\" %s %d", typ, name, state, priority)
}

// fifoVS formats a virtual server as keepalived does in its FIFO lines:
// [ADDR]:proto:PORT, FWM N, or [GROUP]:0.
func fifoVS(s *vsSpec) string {
	switch {
	case s.vs.Group != "":
		return "[" + s.vs.Group + "]:0"
	case s.svc.Key.FWMark != 0:
		return "FWM " + strconv.FormatUint(uint64(s.svc.Key.FWMark), 10)
	}
	return fifoAddr(netip.AddrPortFrom(s.svc.Key.Addr, s.svc.Key.Port), s)
}

func fifoAddr(a netip.AddrPort, s *vsSpec) string {
	return fmt.Sprintf("[%s]:%s:%d", a.Addr(), strings.ToLower(s.svc.Key.Proto.String()), a.Port())
}
