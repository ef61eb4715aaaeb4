package director

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/notify"
)

// fifos are keepalived's notify FIFOs: notify_fifo gets every event,
// vrrp_notify_fifo the VRRP ones, lvs_notify_fifo those of the real and
// virtual servers. They are opened when the director is made and closed
// by Stop; their *_script readers run with Run.
type fifos struct {
	all, vrrp, lvs *notify.FIFO
	scripts        []fifoScript
}

type fifoScript struct {
	kind string
	cmd  notify.Command
}

// openFIFOs opens the FIFOs of g. A *_fifo_script without its FIFO gets
// one made in the temporary directory.
func openFIFOs(g config.GlobalDefs, log *slog.Logger) (*fifos, error) {
	f := &fifos{}
	for _, k := range []struct {
		kind string
		cfg  *config.NotifyFIFO
		dst  **notify.FIFO
	}{{"notify_fifo", g.NotifyFIFO, &f.all}, {"vrrp_notify_fifo", g.VRRPNotifyFIFO, &f.vrrp}, {"lvs_notify_fifo", g.LVSNotifyFIFO, &f.lvs}} {
		if k.cfg == nil {
			continue
		}
		path := k.cfg.Path
		if path == "" {
			path = filepath.Join(os.TempDir(), fmt.Sprintf("govs_%s.%d", k.kind, os.Getpid()))
		}
		ff, err := notify.OpenFIFO(path)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", k.kind, err)
		}
		*k.dst = ff
		if k.cfg.Owner != "" {
			if err := chownFIFO(path, k.cfg.Owner); err != nil {
				log.Warn("notify fifo owner", "fifo", path, "err", err)
			}
		}
		if k.cfg.Script != nil {
			c := scriptCmd(k.cfg.Script)
			if c == nil {
				f.Close()
				return nil, fmt.Errorf("%s_script %q: not a command", k.kind, k.cfg.Script.Cmd)
			}
			c.Args = append(c.Args, path)
			f.scripts = append(f.scripts, fifoScript{kind: k.kind, cmd: *c})
		}
	}
	return f, nil
}

func chownFIFO(path, owner string) error {
	name, group, _ := strings.Cut(owner, " ")
	u, err := user.Lookup(name)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return err
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	return os.Chown(path, uid, gid)
}

// VRRP writes a VRRP event line.
func (f *fifos) VRRP(line string) {
	if f != nil {
		f.all.WriteLine(line)
		f.vrrp.WriteLine(line)
	}
}

// LVS writes a real or virtual server event line.
func (f *fifos) LVS(line string) {
	if f != nil {
		f.all.WriteLine(line)
		f.lvs.WriteLine(line)
	}
}

// run runs the FIFOs' reader scripts until ctx is done (then their process
// groups are killed).
func (f *fifos) run(ctx context.Context, r *notify.Runner, log *slog.Logger) {
	var wg sync.WaitGroup
	for _, s := range f.scripts {
		wg.Go(func() {
			_, err := r.Run(ctx, s.cmd)
			if ctx.Err() == nil {
				log.Warn("notify fifo script ended", "fifo", s.kind, "script", s.cmd.String(), "err", err)
			}
		})
	}
	wg.Wait()
}

// Close closes the FIFOs, removing those govs made.
func (f *fifos) Close() error {
	if f == nil {
		return nil
	}
	return errors.Join(f.all.Close(), f.vrrp.Close(), f.lvs.Close())
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

func upDown(up bool) string {
	if up {
		return "UP"
	}
	return "DOWN"
}
