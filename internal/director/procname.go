package director

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
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
func beginReloadFile(cfg *config.Config, log *slog.Logger) (read func()) {
	rf := reloadFile(cfg)
	if rf == "" {
		return func() {}
	}
	if cfg.InstanceName != "" {
		os.MkdirAll(filepath.Dir(rf), 0o755) // keepalived's pid directory of the instance
	}
	// not through a link, and not blocking on a FIFO: only a regular
	// file is emptied, and removed after
	f, err := os.OpenFile(rf, os.O_WRONLY|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o644)
	if err != nil {
		log.Warn("reload_file: cannot make it", "file", rf, "err", err)
		return func() {}
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		log.Warn("reload_file: not a regular file; left alone", "file", rf)
		return func() {}
	}
	if err := f.Truncate(0); err != nil {
		log.Warn("reload_file: cannot empty it", "file", rf, "err", err)
	}
	f.Close()
	return func() {
		if err := os.Remove(rf); err != nil && !errors.Is(err, os.ErrNotExist) {
			log.Warn("reload_file: cannot remove it", "file", rf, "err", err)
		}
	}
}

// reloadFile is the reload_file of cfg: its path, else keepalived's
// default, keepalived.reload in its pid directory (/run, or
// /run/keepalived/INSTANCE with a top-level instance NAME); "" without
// it.
func reloadFile(cfg *config.Config) string {
	g := &cfg.Global
	switch {
	case !g.HasReloadFile:
		return ""
	case g.ReloadFile != "":
		return g.ReloadFile
	case cfg.InstanceName != "":
		return filepath.Join("/run/keepalived", strings.ReplaceAll(cfg.InstanceName, "/", "_"), "keepalived.reload")
	}
	return "/run/keepalived.reload"
}
