package director

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/config"
)

// ConfigDoc reads the configuration file as it is on disk now (which may
// differ from what runs, until a reload), for the web UI's forms.
func (d *Director) ConfigDoc(ctx context.Context) (*api.ConfigDoc, error) {
	if d.opts.ConfigFile == "" {
		return nil, fmt.Errorf("%w: the configuration was not read from a file", api.ErrBadRequest)
	}
	cfg, diags := config.Load(d.opts.ConfigFile, d.parseOptions())
	if len(cfg.Files) == 0 {
		return nil, diags.Err()
	}
	// the password's hash and the sync secret are not shown (an edit
	// keeps them)
	cfg.Global.Govs.WebPassword = ""
	cfg.Global.Govs.ConfigSyncSecret = ""
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	doc := &api.ConfigDoc{Files: cfg.Files, Revision: cfg.Revision(), Config: b}
	for _, dg := range diags {
		doc.Problems = append(doc.Problems, dg.String())
	}
	return doc, nil
}

// keepProtected puts back, from the file's global_defs (old), the settings
// an edit through the API does not change: govs's own listeners, the web
// UI's password and TLS, what governs which scripts run as whom, the
// files govs (root) empties, reads or removes on its own (reload_file,
// reload_time_file) and the process's name. They are changed in the file
// by hand (or govs web-password): a stolen web session must not open the
// API on the network, turn script security off, have root remove a file
// of its choosing or hide the process.
func keepProtected(g, old *config.GlobalDefs) {
	g.Govs = old.Govs
	g.EnableScriptSecurity = old.EnableScriptSecurity
	g.ScriptUser = old.ScriptUser
	g.StartupScript, g.ShutdownScript = old.StartupScript, old.ShutdownScript
	g.StartupScriptTimeout, g.ShutdownScriptTimeout = old.StartupScriptTimeout, old.ShutdownScriptTimeout
	g.NotifyFIFO, g.VRRPNotifyFIFO, g.LVSNotifyFIFO = old.NotifyFIFO, old.VRRPNotifyFIFO, old.LVSNotifyFIFO
	g.ReloadFile, g.HasReloadFile = old.ReloadFile, old.HasReloadFile
	g.ReloadTimeFile, g.ReloadRepeat = old.ReloadTimeFile, old.ReloadRepeat
	g.ProcessName, g.ProcessNames = old.ProcessName, old.ProcessNames
}

func (d *Director) parseOptions() *config.ParseOptions {
	return &config.ParseOptions{ConfigID: d.opts.ConfigID}
}

// EditConfig changes one object of the configuration file. The files are
// written (atomically, unchanged blocks and comments kept) only when the
// result loads without errors; then the configuration is reloaded. A
// change made against an older revision is refused, as is one that the
// file cannot express.
func (d *Director) EditConfig(ctx context.Context, e api.ConfigEdit) (*api.ConfigEditResult, error) {
	if d.opts.ConfigFile == "" {
		return nil, fmt.Errorf("%w: the configuration was not read from a file", api.ErrBadRequest)
	}
	if e.Revision == "" {
		return nil, fmt.Errorf("%w: revision missing: read the configuration first and send its revision with the change", api.ErrBadRequest)
	}
	// one file edit at a time (as --persist), from the read through the
	// write and the reload
	d.pmu.Lock()
	defer d.pmu.Unlock()
	edit := config.Edit{Op: e.Op, Kind: e.Kind, VS: e.VS, Index: e.Index, Object: e.Object}
	res, err := config.Update(d.opts.ConfigFile, d.parseOptions(), e.Revision, func(c *config.Config) error {
		kept := c.Global
		if err := edit.Apply(c); err != nil {
			return err
		}
		keepProtected(&c.Global, &kept)
		return nil
	})
	var inv *config.InvalidError
	switch {
	case err == nil:
	case errors.As(err, &inv):
		ae := &api.InvalidError{Msg: inv.Error()}
		for _, p := range inv.Problems {
			ae.Problems = append(ae.Problems, p.String())
		}
		return nil, ae
	case errors.Is(err, config.ErrConflict):
		return nil, fmt.Errorf("%w: %w", api.ErrConflict, err)
	case errors.Is(err, config.ErrWrite):
		return nil, err
	default:
		// the edit itself, or what the writer cannot express
		return nil, fmt.Errorf("%w: %s %s: %w", api.ErrBadRequest, e.Op, e.Kind, err)
	}
	out := &api.ConfigEditResult{Result: "unchanged", Revision: res.Revision, Files: res.Files}
	if len(res.Files) == 0 {
		return out, nil
	}
	out.Result = "saved"
	d.log.Info("configuration changed through the API", "op", e.Op, "kind", e.Kind, "vs", e.VS, "index", e.Index, "files", res.Files)
	// the files are written: the reload runs to its end even if the
	// client goes away
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	if err := d.Reload(rctx); err != nil {
		out.ReloadError = err.Error()
	}
	return out, nil
}
