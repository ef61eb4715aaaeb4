package director

import (
	"errors"
	"log/slog"
	"os"
	"syscall"

	"github.com/govs/govs/internal/config"
)

// processName is the name govs's process takes from the configuration:
// process_name NAME, or keepalived's parent's name with process_names
// ("" leaves it).
func processName(g *config.GlobalDefs) string {
	switch {
	case g.ProcessName != "":
		return g.ProcessName
	case g.ProcessNames:
		return "keepalived"
	}
	return ""
}

// setProcessName names the process (its comm, which ps, pidof and pgrep
// show; the kernel keeps 15 bytes) as keepalived's process_name does.
func setProcessName(g *config.GlobalDefs, log *slog.Logger) {
	name := processName(g)
	if name == "" {
		return
	}
	if len(name) > 15 {
		name = name[:15]
	}
	// /proc/self/comm is the thread group leader's: the process's name
	// whatever thread writes it
	if err := os.WriteFile("/proc/self/comm", []byte(name), 0); err != nil {
		log.Warn("process_name: cannot name the process", "name", name, "err", err)
	}
}

// beginReloadFile makes g's reload_file empty (making it if need be)
// before a reload reads the configuration; the function it returns
// removes it once read, as keepalived does.
func beginReloadFile(g *config.GlobalDefs, log *slog.Logger) (read func()) {
	rf := reloadFile(g)
	if rf == "" {
		return func() {}
	}
	if f, err := os.OpenFile(rf, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o644); err != nil {
		log.Warn("reload_file: cannot make it", "file", rf, "err", err)
	} else {
		f.Close()
	}
	return func() {
		if err := os.Remove(rf); err != nil && !errors.Is(err, os.ErrNotExist) {
			log.Warn("reload_file: cannot remove it", "file", rf, "err", err)
		}
	}
}

// reloadFile is the reload_file of g: its path, keepalived's default
// /run/keepalived.reload when it names none, "" without it.
func reloadFile(g *config.GlobalDefs) string {
	switch {
	case !g.HasReloadFile:
		return ""
	case g.ReloadFile != "":
		return g.ReloadFile
	}
	return "/run/keepalived.reload"
}
