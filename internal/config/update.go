package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
)

// Revision identifies the text a configuration was read from: a hash of
// the names and contents of every file read. Two loads of unchanged files
// have the same revision.
func (c *Config) Revision() string {
	h := sha256.New()
	if c.src != nil {
		for _, f := range c.src.files {
			var n [8]byte
			binary.BigEndian.PutUint64(n[:], uint64(len(f.name)))
			h.Write(n[:])
			h.Write([]byte(f.name))
			binary.BigEndian.PutUint64(n[:], uint64(len(f.data)))
			h.Write(n[:])
			h.Write(f.data)
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Sources returns the text of every file the configuration was read
// from, by name (nil for a configuration not read from files).
func (c *Config) Sources() map[string][]byte {
	if c.src == nil {
		return nil
	}
	out := map[string][]byte{}
	for _, f := range c.src.files {
		out[f.name] = f.data
	}
	return out
}

// HasConditionalIncludes tells whether an include line of the
// configuration is conditional (@ID include …): another config-id reads
// other files.
func (c *Config) HasConditionalIncludes() bool { return c.src != nil && c.src.condInclude }

// WriteStaged writes several files so that a failure leaves them as
// they were: all are written to temporary files first, then renamed into
// place (a rename that fails puts back the ones already renamed).
// Symbolic links are followed; mode and owner are kept; a new file gets
// newMode.
func WriteStaged(files map[string][]byte, newMode os.FileMode) error {
	return saveStaged(files, newMode)
}

// ErrConflict is returned by Update when the files changed since the
// revision the change was made against.
var ErrConflict = errors.New("configuration changed on disk")

// ErrWrite wraps Update's failures to read or write the files (as
// opposed to a change that is refused).
var ErrWrite = errors.New("configuration files")

// InvalidError is returned by Update when the configuration the change
// would write does not load: nothing was written.
type InvalidError struct {
	Problems Diagnostics
}

func (e *InvalidError) Error() string {
	n := len(e.Problems.Errors())
	if n == 1 {
		return "the change makes the configuration invalid (1 error); nothing was written"
	}
	return fmt.Sprintf("the change makes the configuration invalid (%d errors); nothing was written", n)
}

// UpdateResult is what Update did.
type UpdateResult struct {
	// Revision is the revision of the files as written.
	Revision string
	// Files are the files written (none when the change changed nothing).
	Files []string
	// Config is the configuration as written, loaded back.
	Config *Config
}

// Update reads the configuration at path, lets change modify the model,
// renders the model into its files (unchanged blocks keep their text,
// comments included), loads the rendered files back and writes them
// atomically only when they load without errors and say what the changed
// model says. rev, when not empty, is the revision the change was made
// against: ErrConflict is returned when the files on disk differ from it.
// A failed Update leaves every file as it was.
func Update(path string, opts *ParseOptions, rev string, change func(*Config) error) (*UpdateResult, error) {
	// one writer at a time, across processes (govs web-password and the
	// director's API)
	unlock, err := Lock(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWrite, err)
	}
	defer unlock()
	cfg, diags := ParseFile(path, opts)
	if cfg.src == nil || len(cfg.src.files) == 0 {
		return nil, fmt.Errorf("%w: %w", ErrWrite, diags.Err())
	}
	if rev != "" && cfg.Revision() != rev {
		return nil, fmt.Errorf("%w: %s is no longer the revision that was edited; read it again and redo the change", ErrConflict, path)
	}
	if err := change(cfg); err != nil {
		return nil, err
	}
	cfg.applyDefaults()
	files, err := cfg.WriteFiles()
	if err != nil {
		return nil, err
	}
	// load what would be written, as the reload will: those files only
	// (an include of any other file, a new file matching an include
	// pattern, is refused)
	var ro ParseOptions
	if opts != nil {
		ro = *opts
	}
	ro.ReadFile = func(name string) ([]byte, error) {
		if b, ok := files[name]; ok {
			return b, nil
		}
		return nil, fmt.Errorf("%s was not part of the configuration when the change was made: read it again and redo the change", name)
	}
	next, nds := Load(path, &ro)
	if nds.HasErrors() {
		return nil, &InvalidError{Problems: nds}
	}
	// the writer must have said everything the model says
	if got, want := Format(next), Format(cfg); !bytes.Equal(got, want) {
		return nil, fmt.Errorf("the configuration file cannot express this change as made (the written file would read back differently: %s); nothing was written", firstDiff(want, got))
	}
	if got, want := modelJSON(next), modelJSON(cfg); !bytes.Equal(got, want) {
		return nil, fmt.Errorf("the configuration file cannot express this change as made (the written file would read back differently: %s); nothing was written", firstDiff(want, got))
	}
	res := &UpdateResult{Revision: next.Revision(), Config: next}
	var changed map[string][]byte = map[string][]byte{}
	for _, f := range cfg.src.files {
		if b, ok := files[f.name]; ok && !bytes.Equal(b, f.data) {
			changed[f.name] = b
			res.Files = append(res.Files, f.name)
		}
	}
	if len(changed) == 0 {
		return res, nil
	}
	// the files must still be what was read: another writer between the
	// read and now would be undone
	for _, f := range cfg.src.files {
		disk, err := os.ReadFile(f.name)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrWrite, err)
		}
		if !bytes.Equal(disk, f.data) {
			return nil, fmt.Errorf("%w: %s was written by someone else during the change; read it again and redo the change", ErrConflict, f.name)
		}
	}
	if err := saveStaged(changed, 0o644); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWrite, err)
	}
	return res, nil
}

// modelJSON is the model as JSON, for comparing two models: an empty
// list and no list are the same.
func modelJSON(c *Config) []byte {
	b, _ := json.Marshal(c)
	var v any
	json.Unmarshal(b, &v)
	b, _ = json.MarshalIndent(dropEmpty(v), "", " ")
	return b
}

func dropEmpty(v any) any {
	switch x := v.(type) {
	case []any:
		if len(x) == 0 {
			return nil
		}
		for i := range x {
			x[i] = dropEmpty(x[i])
		}
	case map[string]any:
		for k, e := range x {
			if e = dropEmpty(e); e == nil {
				delete(x, k)
			} else {
				x[k] = e
			}
		}
	}
	return v
}

// saveStaged writes several files so that a failure before the renames
// leaves them all as they were: every file is written and synced to a
// temporary file first, then each is renamed into place.
func saveStaged(files map[string][]byte, newMode os.FileMode) error {
	type staged struct{ tmp, name string }
	var done []staged
	cleanup := func() {
		for _, s := range done {
			os.Remove(s.tmp)
		}
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		target, tmp, err := writeTemp(n, files[n], true, newMode)
		if err != nil {
			cleanup()
			return err
		}
		done = append(done, staged{tmp, target})
	}
	// a hard link to each old file, to put it back if a later rename
	// fails
	backups := make([]string, len(done))
	defer func() {
		for _, b := range backups {
			if b != "" {
				os.Remove(b)
			}
		}
	}()
	for i, s := range done {
		b := filepath.Join(filepath.Dir(s.name), "."+filepath.Base(s.name)+".old")
		os.Remove(b)
		if os.Link(s.name, b) == nil {
			backups[i] = b
		}
	}
	for i, s := range done {
		if err := os.Rename(s.tmp, s.name); err != nil {
			for _, r := range done[i:] {
				os.Remove(r.tmp)
			}
			var lost []string
			for k := 0; k < i; k++ {
				if backups[k] == "" || os.Rename(backups[k], done[k].name) != nil {
					lost = append(lost, done[k].name)
				} else {
					backups[k] = ""
				}
			}
			if len(lost) > 0 {
				return fmt.Errorf("write %s: %w (and %s could not be put back: written already)", s.name, err, strings.Join(lost, ", "))
			}
			return fmt.Errorf("write %s: %w (the files written before it were put back)", s.name, err)
		}
	}
	return nil
}

// Lock takes the lock writers of the configuration at path hold from
// their read to their write: an exclusive flock on its directory. It
// returns the function that releases it.
func Lock(path string) (func(), error) {
	if t, err := filepath.EvalSymlinks(path); err == nil {
		path = t
	}
	dir := filepath.Dir(path)
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// firstDiff names the first line where two renderings differ.
func firstDiff(want, got []byte) string {
	wl, gl := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("%q read back as %q", strings.TrimSpace(w), strings.TrimSpace(g))
		}
	}
	return "no difference found"
}

// Edit is one change of a configuration object, as the web UI makes it:
// an object of the model, as JSON, set at an index of its list, added to
// it, or deleted from it.
type Edit struct {
	Op   string `json:"op"`   // set, add or delete
	Kind string `json:"kind"` // one of EditKinds
	// VS is the index of the virtual server a real_server belongs to.
	VS int `json:"vs,omitempty"`
	// Index is the object's index in its list (set and delete).
	Index int `json:"index,omitempty"`
	// Object is the whole object (set and add), in the model's JSON.
	Object json.RawMessage `json:"object,omitempty"`
}

// Apply makes the edit to c. A set replaces the object in place, so the
// writer renders it where it was written.
func (e Edit) Apply(c *Config) error {
	switch e.Op {
	case "set", "add", "delete":
	default:
		return fmt.Errorf("op %q: want set, add or delete", e.Op)
	}
	if e.Op != "delete" && len(e.Object) == 0 {
		return fmt.Errorf("%s %s: no object given", e.Op, e.Kind)
	}
	switch e.Kind {
	case "global_defs":
		if e.Op != "set" {
			return fmt.Errorf("global_defs can only be set")
		}
		var g GlobalDefs
		if err := decodeStrict(e.Object, &g); err != nil {
			return fmt.Errorf("global_defs: %w", err)
		}
		if err := checkStrings(reflect.ValueOf(&g), "global_defs"); err != nil {
			return err
		}
		g.Pos = c.Global.Pos
		// a sync daemon read from an instance's lvs_sync_daemon_interface
		// stays written there while it is the same
		if o, n := c.Global.LVSSyncDaemon, g.LVSSyncDaemon; o != nil && n != nil && o.fromInstance {
			if bytes.Equal(mustMarshal(o), mustMarshal(n)) {
				n.fromInstance = true
			}
		}
		c.Global = g
		return nil
	case "vrrp_instance":
		return editList(&c.VRRPInstances, e, "vrrp_instance", func(o, n *VRRPInstance) {
			n.Pos, n.syncIf = o.Pos, o.syncIf
			c.renameInstance(o.Name, n.Name)
		})
	case "vrrp_script":
		return editList(&c.VRRPScripts, e, "vrrp_script", func(o, n *VRRPScript) {
			n.Pos = o.Pos
			c.renameTrack("track_script", o.Name, n.Name)
		})
	case "vrrp_track_file":
		return editList(&c.VRRPTrackFiles, e, "vrrp_track_file", func(o, n *TrackFile) {
			n.Pos = o.Pos
			c.renameTrack("track_file", o.Name, n.Name)
			c.renameChecks(func(ch *Check) *string { return &ch.TrackFile }, o.Name, n.Name)
		})
	case "vrrp_track_process":
		return editList(&c.VRRPTrackProcesses, e, "vrrp_track_process", func(o, n *TrackProcess) {
			n.Pos = o.Pos
			c.renameTrack("track_process", o.Name, n.Name)
		})
	case "bfd_instance":
		return editList(&c.BFDInstances, e, "bfd_instance", func(o, n *BFDInstance) {
			n.Pos = o.Pos
			c.renameTrack("track_bfd", o.Name, n.Name)
			c.renameChecks(func(ch *Check) *string { return &ch.BFDName }, o.Name, n.Name)
		})
	case "govs_snat_pool":
		return editList(&c.SNATPools, e, "govs_snat_pool", func(o, n *SNATPool) {
			n.Pos = o.Pos
			for _, vs := range c.VirtualServers {
				if vs.SNATPool == o.Name {
					vs.SNATPool = n.Name
				}
			}
		})
	case "vrrp_sync_group":
		return editList(&c.SyncGroups, e, "vrrp_sync_group", func(o, n *SyncGroup) { n.Pos = o.Pos })
	case "virtual_server_group":
		err := editList(&c.VirtualServerGroups, e, "virtual_server_group", func(o, n *VirtualServerGroup) {
			n.Pos = o.Pos
			for _, vs := range c.VirtualServers {
				if vs.Group == o.Name {
					vs.Group = n.Name
				}
			}
		})
		if err != nil || e.Op == "delete" {
			return err
		}
		g := c.VirtualServerGroups[e.Index]
		if e.Op == "add" {
			g = c.VirtualServerGroups[len(c.VirtualServerGroups)-1]
		}
		return g.checkEntries()
	case "virtual_server":
		if err := editList(&c.VirtualServers, e, "virtual_server", func(o, n *VirtualServer) { n.Pos = o.Pos }); err != nil {
			return err
		}
		if e.Op != "delete" {
			at := e.Index
			if e.Op == "add" {
				at = len(c.VirtualServers) - 1
			}
			defaultWeights(e.Object, c.VirtualServers[at].RealServers, true)
		}
		return nil
	case "real_server":
		if e.VS < 0 || e.VS >= len(c.VirtualServers) {
			return fmt.Errorf("real_server: virtual server %d does not exist (the configuration has %d)", e.VS, len(c.VirtualServers))
		}
		vs := c.VirtualServers[e.VS]
		if err := editList(&vs.RealServers, e, "real_server", func(o, n *RealServer) { n.Pos = o.Pos }); err != nil {
			return err
		}
		if e.Op != "delete" {
			at := e.Index
			if e.Op == "add" {
				at = len(vs.RealServers) - 1
			}
			defaultWeights(e.Object, []*RealServer{vs.RealServers[at]}, false)
		}
		return nil
	}
	return fmt.Errorf("kind %q: want %s", e.Kind, EditKinds)
}

// checkEntries completes and checks the entries an edit gives: an
// address without last is one address; a range runs forwards within one
// family.
func (g *VirtualServerGroup) checkEntries() error {
	for i := range g.Entries {
		en := &g.Entries[i]
		if en.FWMark != 0 {
			if en.First.IsValid() || en.Last.IsValid() || en.Port != 0 {
				return fmt.Errorf("virtual_server_group %q: entries[%d]: a fwmark entry has no address or port", g.Name, i)
			}
			continue
		}
		if !en.First.IsValid() {
			return fmt.Errorf("virtual_server_group %q: entries[%d]: no address and no fwmark", g.Name, i)
		}
		if !en.Last.IsValid() {
			en.Last = en.First
		}
		if en.First.Is4() != en.Last.Is4() || en.Last.Less(en.First) {
			return fmt.Errorf("virtual_server_group %q: entries[%d]: %s-%s is not a range (same family, first to last)", g.Name, i, en.First, en.Last)
		}
	}
	return nil
}

// EditKinds are the kinds of object an Edit changes.
const EditKinds = "global_defs, vrrp_script, vrrp_track_file, vrrp_track_process, bfd_instance, vrrp_sync_group, vrrp_instance, govs_snat_pool, virtual_server_group, virtual_server or real_server"

// renameInstance makes what names a VRRP instance follow its new name:
// sync groups, track groups and the sync daemon's instance. (A deleted
// instance still named somewhere fails validation, naming where.)
func (c *Config) renameInstance(old, name string) {
	if old == name {
		return
	}
	for _, g := range c.SyncGroups {
		renameIn(g.Group, old, name)
	}
	for _, g := range c.TrackGroups {
		renameIn(g.Instances, old, name)
	}
	if sd := c.Global.LVSSyncDaemon; sd != nil && sd.Instance == old {
		sd.Instance = name
	}
}

// renameTrack makes the track lines of kind (track_script, track_file)
// naming a block follow its new name, in instances and sync groups.
func (c *Config) renameTrack(kind, old, name string) {
	if old == name {
		return
	}
	var lines []kindTracks
	for _, vi := range c.VRRPInstances {
		lines = append(lines, vi.trackLines()...)
	}
	for _, g := range c.SyncGroups {
		lines = append(lines, g.trackLines()...)
	}
	for _, l := range lines {
		if l.Kind != kind {
			continue
		}
		for i := range l.Tracks {
			if l.Tracks[i].Name == old {
				l.Tracks[i].Name = name
			}
		}
	}
}

// renameChecks makes the real servers' checks that name a block
// (FILE_CHECK's track_file, BFD_CHECK's name: ref) follow its new name.
func (c *Config) renameChecks(ref func(*Check) *string, old, name string) {
	for _, vs := range c.VirtualServers {
		for _, rs := range vs.RealServers {
			for _, ch := range rs.Checks {
				if r := ref(ch); *r == old {
					*r = name
				}
			}
		}
	}
}

func renameIn(names []string, old, name string) {
	for i := range names {
		if names[i] == old {
			names[i] = name
		}
	}
}

// editList applies e to a list of model objects. keep copies what JSON
// does not carry (the position) from the old object to its replacement.
// An object with a name (a Name field) must have one, not another's of
// its list.
func editList[T any](list *[]*T, e Edit, kind string, keep func(old, next *T)) error {
	if e.Op != "add" && (e.Index < 0 || e.Index >= len(*list)) {
		return fmt.Errorf("%s %d does not exist (there are %d)", kind, e.Index, len(*list))
	}
	if e.Op == "delete" {
		*list = append((*list)[:e.Index:e.Index], (*list)[e.Index+1:]...)
		if len(*list) == 0 {
			*list = nil
		}
		return nil
	}
	n := new(T)
	if err := decodeStrict(e.Object, n); err != nil {
		return fmt.Errorf("%s: %w", kind, err)
	}
	if err := checkStrings(reflect.ValueOf(n), kind); err != nil {
		return err
	}
	if err := checkName(*list, n, e, kind); err != nil {
		return err
	}
	if e.Op == "add" {
		*list = append(*list, n)
		return nil
	}
	old := (*list)[e.Index]
	keep(old, n)
	// in place: the writer knows the object by its address
	*old = *n
	return nil
}

// checkName refuses an object of a named kind without a name, or with
// the name of another object of its list (keepalived would take the
// second for the first, or refuse it).
func checkName[T any](list []*T, n *T, e Edit, kind string) error {
	name := reflect.ValueOf(n).Elem().FieldByName("Name")
	if !name.IsValid() || name.Kind() != reflect.String || kind == "virtual_server" || kind == "real_server" {
		return nil // (a service's or real server's name is an optional label)
	}
	if name.String() == "" {
		return fmt.Errorf("%s: a name is required", kind)
	}
	for i, o := range list {
		if (e.Op == "add" || i != e.Index) && reflect.ValueOf(o).Elem().FieldByName("Name").String() == name.String() {
			return fmt.Errorf("%s %q: the configuration has one of that name already", kind, name.String())
		}
	}
	return nil
}

func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("more than one JSON value")
	}
	return nil
}

// checkStrings refuses a string with a control character (a line break
// would end the statement it is written in) anywhere in v.
func checkStrings(v reflect.Value, where string) error {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return checkStrings(v.Elem(), where)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				if err := checkStrings(v.Field(i), where+"."+jsonName(v.Type().Field(i))); err != nil {
					return err
				}
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			if err := checkStrings(v.Index(i), fmt.Sprintf("%s[%d]", where, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			if err := checkStrings(v.MapIndex(k), fmt.Sprintf("%s[%v]", where, k)); err != nil {
				return err
			}
		}
	case reflect.String:
		for _, r := range v.String() {
			if r < 0x20 && r != '\t' || r == 0x7f {
				return fmt.Errorf("%s: %q holds a control character", where, v.String())
			}
		}
	}
	return nil
}

func jsonName(f reflect.StructField) string {
	if n, _, _ := strings.Cut(f.Tag.Get("json"), ","); n != "" && n != "-" {
		return n
	}
	return f.Name
}

// defaultWeights gives keepalived's default weight (1) to the real
// servers whose JSON has no weight: 0 is a weight (drained) and must be
// written to mean it. raw is the real server's JSON, or the virtual
// server's (inVS) with its real_servers.
func defaultWeights(raw json.RawMessage, rss []*RealServer, inVS bool) {
	var objs []map[string]json.RawMessage
	if inVS {
		var vs struct {
			RealServers []map[string]json.RawMessage `json:"real_servers"`
		}
		if json.Unmarshal(raw, &vs) != nil {
			return
		}
		objs = vs.RealServers
	} else {
		var one map[string]json.RawMessage
		if json.Unmarshal(raw, &one) != nil {
			return
		}
		objs = []map[string]json.RawMessage{one}
	}
	for i, o := range objs {
		if _, ok := o["weight"]; !ok && i < len(rss) {
			rss[i].Weight = DefaultWeight
		}
	}
}

func mustMarshal(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
