package config

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// The writer renders the model back to keepalived syntax. Format renders
// a whole config from scratch; WriteFiles renders it into the files it was
// read from, keeping the original text (comments, layout) of every
// top-level block whose content did not change.

// Format renders cfg as one keepalived.conf document.
func Format(cfg *Config) []byte {
	var w wr
	first := true
	if cfg.NetNamespaceTop != "" {
		w.line("net_namespace", q(cfg.NetNamespaceTop))
		first = false
	}
	if cfg.InstanceName != "" {
		w.line("instance", q(cfg.InstanceName))
		first = false
	}
	for _, obj := range cfg.objects() {
		if !first {
			w.buf.WriteByte('\n')
		}
		first = false
		renderObj(&w, obj)
	}
	return w.buf.Bytes()
}

// objects lists the top-level model objects in a stable order.
func (c *Config) objects() []any {
	var out []any
	if !isZeroGlobal(&c.Global) {
		out = append(out, &c.Global)
	}
	for _, x := range c.VRRPScripts {
		out = append(out, x)
	}
	for _, x := range c.VRRPTrackFiles {
		out = append(out, x)
	}
	for _, x := range c.VRRPTrackProcesses {
		out = append(out, x)
	}
	for _, x := range c.BFDInstances {
		out = append(out, x)
	}
	for _, x := range c.SyncGroups {
		out = append(out, x)
	}
	for _, x := range c.VRRPInstances {
		out = append(out, x)
	}
	for _, x := range c.SNATPools {
		out = append(out, x)
	}
	if c.BGP != nil {
		out = append(out, c.BGP)
	}
	for _, x := range c.VirtualServerGroups {
		out = append(out, x)
	}
	for _, x := range c.VirtualServers {
		out = append(out, x)
	}
	for _, x := range c.InterfaceDelays {
		out = append(out, x)
	}
	// track groups before the static entries naming them: keepalived
	// looks a group up as it reads the entry
	for _, x := range c.TrackGroups {
		out = append(out, x)
	}
	for _, x := range c.Statics {
		out = append(out, x)
	}
	for _, x := range c.GarpGroups {
		out = append(out, x)
	}
	return out
}

func isZeroGlobal(g *GlobalDefs) bool {
	var w wr
	renderGlobal(&w, g)
	return w.buf.String() == "global_defs {\n}\n"
}

type srcItem struct {
	node       *Node
	obj        any // model object built from node, nil for includes and unknown blocks
	start, end int
	// frozen is the object of a block that contains an include of its
	// own: it is kept verbatim (editing it through the writer is refused).
	frozen any
	// globalExtra marks a second or later global_defs block: its content
	// is merged into the model's one GlobalDefs.
	globalExtra bool
	// lineNodes and lineObjs are the statements one line made through
	// variables or a sequence (~SEQ), on the first of them, and the
	// objects built from them; lineRest marks the others. Such a line is
	// written as it is while all of them are unchanged.
	lineNodes []*Node
	lineObjs  []any
	lineRest  bool
	// incObjs are the objects an include statement brought in
	incObjs []any
}

type srcState struct {
	name  string
	data  []byte
	items []srcItem
	conds []int // lines of conditional (@ID) lines
}

type sourceSet struct {
	files []*srcState
	// condInclude: an include line is conditional (@ID), so that
	// directors with other config-ids read other files
	condInclude bool
}

func newSourceSet(files []*srcFile, cfg *Config) *sourceSet {
	byPos := map[Pos]any{}
	all := map[Pos][]any{} // several: one line made them (variables, ~SEQ)
	if cfg.Global.Pos.Line != 0 {
		byPos[cfg.Global.Pos] = &cfg.Global
	}
	for _, o := range cfg.objects() {
		if p := objPos(o); p.Line != 0 {
			if _, dup := byPos[p]; !dup {
				byPos[p] = o
			}
			all[p] = append(all[p], o)
		}
	}
	ss := &sourceSet{}
	firstGlobal := true
	for _, f := range files {
		st := &srcState{name: f.name, data: f.data, conds: f.conds}
		for i, n := range f.nodes {
			it := srcItem{node: n, start: n.start, end: lineEnd(f.data, n.end)}
			if i > 0 && n.start == f.nodes[i-1].start {
				it.lineRest = true
				st.items = append(st.items, it)
				continue
			}
			if i+1 < len(f.nodes) && f.nodes[i+1].start == n.start {
				for j := i; j < len(f.nodes) && f.nodes[j].start == n.start; j++ {
					it.lineNodes = append(it.lineNodes, f.nodes[j])
					it.end = max(it.end, lineEnd(f.data, f.nodes[j].end))
				}
				it.lineObjs = all[n.Pos]
				delete(byPos, n.Pos)
				st.items = append(st.items, it)
				continue
			}
			for _, in := range n.incNodes {
				it.incObjs = append(it.incObjs, all[in.Pos]...)
			}
			if o, ok := byPos[n.Pos]; ok {
				if n.hasInclude || n.hasCond {
					it.frozen = o
				} else {
					it.obj = o
				}
				delete(byPos, n.Pos)
			}
			if n.Keyword() == "global_defs" {
				if !firstGlobal && it.obj == nil && it.frozen == nil {
					it.globalExtra = true
				}
				firstGlobal = false
			}
			st.items = append(st.items, it)
		}
		ss.files = append(ss.files, st)
	}
	return ss
}

// globalNodes returns every global_defs statement, in order.
func (ss *sourceSet) globalNodes() []*Node {
	var out []*Node
	for _, f := range ss.files {
		for _, it := range f.items {
			if it.node.Keyword() == "global_defs" {
				out = append(out, it.node)
			}
		}
	}
	return out
}

// lineEnd extends end past the newline when the rest of the line holds
// only blanks or a comment.
func lineEnd(data []byte, end int) int {
	for i := end; i < len(data); i++ {
		switch data[i] {
		case ' ', '\t', '\r':
			continue
		case '\n':
			return i + 1
		case '#', '!':
			j := bytes.IndexByte(data[i:], '\n')
			if j < 0 {
				return len(data)
			}
			return i + j + 1
		default:
			return end
		}
	}
	return len(data)
}

func objPos(o any) Pos {
	switch x := o.(type) {
	case *GlobalDefs:
		return x.Pos
	case *VRRPScript:
		return x.Pos
	case *TrackFile:
		return x.Pos
	case *TrackProcess:
		return x.Pos
	case *BFDInstance:
		return x.Pos
	case *SyncGroup:
		return x.Pos
	case *VRRPInstance:
		return x.Pos
	case *SNATPool:
		return x.Pos
	case *BGP:
		return x.Pos
	case *VirtualServerGroup:
		return x.Pos
	case *VirtualServer:
		return x.Pos
	case *InterfaceDelays:
		return x.Pos
	case *StaticBlock:
		return x.Pos
	case *TrackGroup:
		return x.Pos
	case *GarpGroup:
		return x.Pos
	}
	return Pos{}
}

// WriteFiles renders cfg into the files it was parsed from. Blocks that
// were not changed keep their original text; changed blocks are rendered
// anew in place; deleted blocks are dropped; new blocks are appended to
// the main file. A config not parsed from files renders into "". Editing a
// block that itself contains an include is refused (edit the included
// file's content instead), since rendering it would inline the include.
func (c *Config) WriteFiles() (map[string][]byte, error) {
	out := map[string][]byte{}
	if c.src == nil || len(c.src.files) == 0 {
		out[""] = Format(c)
		return out, nil
	}
	globalChanged := false
	if g := c.src.globalNodes(); len(g) > 1 {
		var cur wr
		renderGlobal(&cur, &c.Global)
		globalChanged = cur.buf.String() != originalRendering(g...)
		if globalChanged {
			for _, n := range g {
				if n.usesVar {
					return nil, fmt.Errorf("%s: global_defs, written in %d blocks, uses variables ($NAME) here; change it by hand", n.Pos, len(g))
				}
			}
		}
	}
	live := map[any]bool{}
	for _, o := range c.objects() {
		live[o] = true
	}
	if c.Global.Pos.Line != 0 {
		live[&c.Global] = true
	}
	seen := map[any]bool{}
	// where the main file's objects start and end in its new text: a new
	// object goes next to its kind (see placeNew)
	var anchors []anchor
	for fi, f := range c.src.files {
		var buf bytes.Buffer
		prev := 0
		for _, it := range f.items {
			if it.lineRest {
				continue
			}
			if it.start < prev {
				return nil, fmt.Errorf("%s: statements overlap; change this file by hand", it.node.Pos)
			}
			buf.Write(f.data[prev:it.start])
			prev = it.end
			itemStart := buf.Len()
			switch {
			case it.lineNodes != nil:
				// one line made these: kept as written, unless one of
				// them changed or went
				if err := lineUnchanged(it, live); err != nil {
					return nil, err
				}
				for _, o := range it.lineObjs {
					seen[o] = true
				}
				buf.Write(f.data[it.start:it.end])
			case it.frozen != nil:
				seen[it.frozen] = true
				var cur wr
				renderObj(&cur, it.frozen)
				orig := originalRendering(it.node)
				if _, isGlobal := it.frozen.(*GlobalDefs); isGlobal && len(c.src.globalNodes()) > 1 {
					orig = originalRendering(c.src.globalNodes()...)
				}
				if !live[it.frozen] || cur.buf.String() != orig {
					return nil, fmt.Errorf("%s: this %s block contains an include or conditional (@ID) lines; change it by hand", it.node.Pos, it.node.Keyword())
				}
				buf.Write(f.data[it.start:it.end])
			case it.globalExtra:
				if !globalChanged {
					buf.Write(f.data[it.start:it.end])
					break
				}
				if it.node.hasInclude || it.node.hasCond {
					return nil, fmt.Errorf("%s: this global_defs block contains an include or conditional (@ID) lines; change it by hand", it.node.Pos)
				}
				// else: merged into the first global_defs, rendered there.
			case it.obj == nil:
				buf.Write(f.data[it.start:it.end])
			case !live[it.obj]:
				// deleted: drop its text
			default:
				seen[it.obj] = true
				var cur wr
				renderObj(&cur, it.obj)
				orig := originalRendering(it.node)
				if _, isGlobal := it.obj.(*GlobalDefs); isGlobal && len(c.src.globalNodes()) > 1 {
					orig = originalRendering(c.src.globalNodes()...)
				}
				switch {
				case cur.buf.String() == orig:
					buf.Write(f.data[it.start:it.end])
				case it.node.usesVar:
					// rendering it would put this host's values in
					// place of the variables
					return nil, fmt.Errorf("%s: this %s block uses variables ($NAME); change it by hand", it.node.Pos, it.node.Keyword())
				case isGlobalMerged(it.obj, c.src):
					buf.Write(lineEnds(f.data, cur.buf.Bytes()))
				default:
					if sp := spliceBlock(f.data, it, cur.buf.String()); sp != nil {
						buf.Write(sp)
					} else {
						buf.Write(lineEnds(f.data, cur.buf.Bytes()))
					}
				}
			}
			if fi == 0 && buf.Len() > itemStart {
				objs := it.lineObjs
				switch {
				case it.obj != nil:
					objs = []any{it.obj}
				case it.frozen != nil:
					objs = []any{it.frozen}
				case it.incObjs != nil:
					// an include line stands for what it brought
					objs = it.incObjs
				}
				if len(objs) > 0 {
					anchors = append(anchors, anchor{objs: objs, start: commentStart(buf.Bytes(), stmtLineStart(buf.Bytes(), itemStart)), end: buf.Len()})
				}
			}
		}
		buf.Write(f.data[prev:])
		out[f.name] = buf.Bytes()
	}
	main := c.src.files[0].name
	out[main] = placeNew(out[main], c.src.files[0].data, c.objects(), seen, anchors)
	return out, nil
}

// anchor is where the main file's objects made by one statement are in
// its new text: start (with the comment lines right above) and end (past
// its line's end).
type anchor struct {
	objs       []any
	start, end int
	// before: a new object placed before the object after it (the
	// blank line goes after it)
	before bool
}

// placeNew writes the objects an edit added (those not seen in the files)
// into the main file's text b, each next to its kind, so that the file
// reads back in the model's order:
//   - one that follows an object of its kind goes right after it when
//     the main file holds that object (or it is new too), or right after
//     the include line that brought it;
//   - the first of its kind goes after the nearest object before it in
//     the order of objects() that the main file holds (or an include
//     line of it brought), unless an object after it in that order comes
//     first in the file: then before the first such object; at the end
//     when there is neither.
//
// keepalived looks a vrrp_script up as it reads the track_script line
// naming it, so a new script has to come before the instances.
func placeNew(b, mainData []byte, objs []any, seen map[any]bool, anchors []anchor) []byte {
	where := map[any]anchor{}
	for _, a := range anchors {
		for _, o := range a.objs {
			where[o] = a
		}
	}
	// firstAfter[k]: where the first of the objects after objs[k] that
	// the main file holds starts (-1: none)
	firstAfter := make([]int, len(objs))
	first := -1
	for k := len(objs) - 1; k >= 0; k-- {
		firstAfter[k] = first
		if a, ok := where[objs[k]]; ok && (first < 0 || a.start < first) {
			first = a.start
		}
	}
	type insert struct {
		at   int
		text []byte
	}
	var ins []insert
	nl := lineEnds(mainData, []byte("\n"))
	for k, o := range objs {
		if seen[o] {
			continue
		}
		var w wr
		renderObj(&w, o)
		text := lineEnds(mainData, w.buf.Bytes())
		place, found := anchor{start: len(b), end: len(b)}, false // (the end)
		if k > 0 && reflect.TypeOf(objs[k-1]) == reflect.TypeOf(o) {
			if a, ok := where[objs[k-1]]; ok {
				place = a
			}
		} else {
			for j := k - 1; j >= 0 && !found; j-- {
				if a, ok := where[objs[j]]; ok {
					place, found = a, true
				}
			}
			// before every object of a later kind, if one comes
			// first in the file (instances read from an include
			// above global_defs): keepalived must read a script
			// before its instances
			if first := firstAfter[k]; first >= 0 && (!found || first < place.end) {
				place = anchor{start: first, end: first, before: true}
			}
		}
		at := place.end
		if place.before {
			text = append(text, nl...)
		} else {
			text = append(append([]byte{}, nl...), text...)
			if at < len(b) && b[at] != '\n' && b[at] != '\r' {
				text = append(text, nl...) // a blank line after it too
			}
		}
		if at > 0 && b[at-1] != '\n' {
			text = append(append([]byte{}, nl...), text...)
		}
		where[o] = anchor{start: at, end: at, before: place.before}
		ins = append(ins, insert{at, text})
	}
	if len(ins) == 0 {
		return b
	}
	// stable: new objects at one place keep the order of objs
	slices.SortStableFunc(ins, func(x, y insert) int { return x.at - y.at })
	var out bytes.Buffer
	prev := 0
	for _, in := range ins {
		out.Write(b[prev:in.at])
		out.Write(in.text)
		prev = in.at
	}
	out.Write(b[prev:])
	return out.Bytes()
}

// stmtLineStart is the start of the line of the statement at start in
// b when only blanks or a conditional mark (@ID) come before it there
// (a block put before it must not take the mark); else start.
func stmtLineStart(b []byte, start int) int {
	ls := bytes.LastIndexByte(b[:start], '\n') + 1
	pre := strings.Fields(string(b[ls:start]))
	if len(pre) == 0 || len(pre) == 1 && strings.HasPrefix(pre[0], "@") {
		return ls
	}
	return start
}

// commentStart moves start back over the comment lines right above it
// in b (a comment belongs to the block below it).
func commentStart(b []byte, start int) int {
	for start > 0 && b[start-1] == '\n' {
		ls := bytes.LastIndexByte(b[:start-1], '\n') + 1
		line := bytes.TrimSpace(b[ls : start-1])
		if len(line) == 0 || line[0] != '#' && line[0] != '!' {
			break
		}
		start = ls
	}
	return start
}

// lineUnchanged checks that the objects one line made (it.lineNodes)
// are all there and as that line makes them.
func lineUnchanged(it srcItem, live map[any]bool) error {
	var orig, cur []string
	for _, n := range it.lineNodes {
		if r := originalRendering(n); r != "\x00" {
			orig = append(orig, r) // (an include, an unknown keyword: no object)
		}
	}
	for _, o := range it.lineObjs {
		if !live[o] {
			return fmt.Errorf("%s: a block this line makes (with %d others, through variables or ~SEQ/~LST) was deleted; change the file by hand", it.node.Pos, len(it.lineNodes)-1)
		}
		var w wr
		renderObj(&w, o)
		cur = append(cur, w.buf.String())
	}
	slices.Sort(orig)
	slices.Sort(cur)
	if !slices.Equal(orig, cur) {
		return fmt.Errorf("%s: a block this line makes (with %d others, through variables or ~SEQ/~LST) was changed; change the file by hand", it.node.Pos, len(it.lineNodes)-1)
	}
	return nil
}

// lineEnds writes rendered text (LF) with the line ends of the file it
// goes into: CRLF when the file has them.
func lineEnds(file, text []byte) []byte {
	if !bytes.Contains(file, []byte("\r\n")) {
		return text
	}
	return bytes.ReplaceAll(text, []byte("\n"), []byte("\r\n"))
}

// isGlobalMerged tells whether o is a global_defs merged from several
// blocks (written whole into the first).
func isGlobalMerged(o any, ss *sourceSet) bool {
	_, g := o.(*GlobalDefs)
	return g && len(ss.globalNodes()) > 1
}

// originalRendering rebuilds the object from its original statement(s)
// and renders it, so that WriteFiles can tell whether the object changed.
// Several nodes are given only for global_defs, which merge.
func originalRendering(nodes ...*Node) string {
	b := &builder{d: &diagList{}, cfg: &Config{}}
	for _, n := range nodes {
		b.top(n)
	}
	b.cfg.applyDefaults()
	objs := b.cfg.objects()
	if nodes[0].Keyword() == "global_defs" {
		objs = []any{&b.cfg.Global}
	} else if len(objs) > 1 && objs[0] == &b.cfg.Global {
		// a block that also sets a global (lvs_sync_daemon_interface
		// in a vrrp_instance)
		objs = objs[1:]
	}
	if len(objs) != 1 {
		return "\x00"
	}
	var w wr
	renderObj(&w, objs[0])
	return w.buf.String()
}

// SaveFiles writes the rendered files atomically (temporary file + rename
// in the same directory); a failed write leaves the old file intact.
func (c *Config) SaveFiles() error {
	files, err := c.WriteFiles()
	if err != nil {
		return err
	}
	return SaveAll(files)
}

// SaveAll writes every file of a WriteFiles or SetRealServerWeight result
// atomically.
func SaveAll(files map[string][]byte) error {
	for name, data := range files {
		if name == "" {
			return fmt.Errorf("config was not read from a file")
		}
		if err := writeConfigFile(name, data); err != nil {
			return err
		}
	}
	return nil
}

// WriteFileAtomic replaces name with data so that readers see either the
// old or the new content, never a partial file. The file keeps its mode
// and owner. A symbolic link at name is replaced, not followed (files
// govs writes on its own, such as track files, may sit in directories
// others can write).
func WriteFileAtomic(name string, data []byte) error {
	return writeAtomic(name, data, false)
}

// writeConfigFile is WriteFileAtomic for a configuration file: a
// symbolic link is followed (its target is written, the link stays), as
// an operator links conf.d entries to their files.
func writeConfigFile(name string, data []byte) error {
	return writeAtomic(name, data, true)
}

func writeAtomic(name string, data []byte, follow bool) error {
	target, tmp, err := writeTemp(name, data, follow, 0o644)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, target); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// writeTemp writes data to a synced temporary file beside the file name
// stands for (the target of a symbolic link), with its mode and owner,
// and returns that file's path and the temporary one's.
func writeTemp(name string, data []byte, follow bool, newMode os.FileMode) (target, tmpName string, err error) {
	target = name
	if follow {
		if t, err := filepath.EvalSymlinks(name); err == nil {
			target = t
		}
	}
	mode := newMode
	uid, gid := -1, -1
	if fi, err := os.Stat(target); err == nil {
		mode = fi.Mode().Perm()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".tmp*")
	if err != nil {
		return "", "", fmt.Errorf("write %s: %w", name, err)
	}
	fail := func(err error) (string, string, error) {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", "", fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return fail(err)
	}
	if uid >= 0 && (uid != os.Geteuid() || gid != os.Getegid()) {
		// only root can give a file away; others write it as theirs
		if err := tmp.Chown(uid, gid); err != nil && os.Geteuid() == 0 {
			return fail(err)
		}
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return "", "", fmt.Errorf("write %s: %w", name, err)
	}
	return target, tmp.Name(), nil
}

// wr is an indenting writer.
type wr struct {
	buf    bytes.Buffer
	indent int
}

func (w *wr) line(words ...string) {
	for i := 0; i < w.indent; i++ {
		w.buf.WriteString("    ")
	}
	for i, s := range words {
		if i > 0 {
			w.buf.WriteByte(' ')
		}
		w.buf.WriteString(s)
	}
	w.buf.WriteByte('\n')
}

func (w *wr) open(words ...string) {
	w.line(append(words, "{")...)
	w.indent++
}

func (w *wr) close() {
	w.indent--
	w.line("}")
}

// q quotes a word when it would not read back as one word.
func q(s string) string {
	// the separators of the lexer (syntax.go), \f and \v included; a
	// word starting with @ would read as a conditional line's mark
	if s != "" && !strings.ContainsAny(s, " \t\r\n\f\v{}#!\"$") && s[0] != '@' {
		return s
	}
	return quoted(s)
}

// quoted writes s as a quoted string the lexer reads back as s: a quote
// becomes \", and a backslash is doubled only where it would otherwise
// be read as an escape (before a quote or a backslash, or last), so that
// "GET / HTTP/1.0\r\n" stays as written.
func quoted(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			b.WriteString(`\"`)
		case c == '\\' && (i+1 == len(s) || s[i+1] == '"' || s[i+1] == '\\'):
			b.WriteString(`\\`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// qs is q of each word.
// userWords writes "USER [GROUP]" as the words keepalived reads; what
// is not such (more words, odd blanks: read from a quoted word) stays
// one quoted word, which reads back the same.
func userWords(u string) []string {
	f := strings.Fields(u)
	if len(f) <= 2 && strings.Join(f, " ") == u {
		return qs(f)
	}
	return []string{q(u)}
}

func qs(ws []string) []string {
	out := make([]string, len(ws))
	for i, s := range ws {
		out[i] = q(s)
	}
	return out
}

func (w *wr) str(kw, v string) {
	if v != "" {
		w.line(kw, q(v))
	}
}

func (w *wr) flag(kw string, v bool) {
	if v {
		w.line(kw)
	}
}

func (w *wr) boolPtr(kw string, v *bool) {
	if v != nil {
		if *v {
			w.line(kw)
		} else {
			w.line(kw, "off")
		}
	}
}

// garp writes the GARP settings that are set, their keywords prefixed.
func (w *wr) garp(prefix string, g *GarpSettings) {
	w.durPtr(prefix+"garp_master_delay", g.GarpMasterDelay)
	w.numPtr(prefix+"garp_master_repeat", g.GarpMasterRepeat)
	w.durPtr(prefix+"garp_master_refresh", g.GarpMasterRefresh)
	w.numPtr(prefix+"garp_master_refresh_repeat", g.GarpMasterRefreshRepeat)
	w.durPtr(prefix+"garp_lower_prio_delay", g.GarpLowerPrioDelay)
	w.numPtr(prefix+"garp_lower_prio_repeat", g.GarpLowerPrioRepeat)
}

func (w *wr) numPtr(kw string, v *int) {
	if v != nil {
		w.line(kw, strconv.Itoa(*v))
	}
}

func (w *wr) durPtr(kw string, d *Duration) {
	if d != nil {
		w.line(kw, d.seconds())
	}
}

// u32 writes a number that is set (a nil pointer or a zero AS is not).
func (w *wr) u32(kw string, v *uint32) {
	if v != nil && (*v != 0 || kw == "med" || kw == "local_pref") {
		w.line(kw, strconv.FormatUint(uint64(*v), 10))
	}
}

func (w *wr) num(kw string, v int) {
	if v != 0 {
		w.line(kw, strconv.Itoa(v))
	}
}

func (w *wr) dur(kw string, d Duration) {
	if d != 0 {
		w.line(kw, d.seconds())
	}
}

func (w *wr) addr(kw string, a netip.Addr) {
	if a.IsValid() {
		w.line(kw, a.String())
	}
}

func (w *wr) port(kw string, p uint16) {
	if p != 0 {
		w.line(kw, strconv.Itoa(int(p)))
	}
}

func (w *wr) script(kw string, s *Script) {
	if s == nil {
		return
	}
	if s.User != "" {
		w.line(append([]string{kw, quoted(s.Cmd)}, userWords(s.User)...)...)
		return
	}
	w.line(kw, q(s.Cmd))
}

func renderObj(w *wr, o any) {
	switch x := o.(type) {
	case *GlobalDefs:
		renderGlobal(w, x)
	case *VRRPScript:
		renderVRRPScript(w, x)
	case *TrackFile:
		renderTrackFile(w, x)
	case *TrackProcess:
		renderTrackProcess(w, x)
	case *BFDInstance:
		renderBFDInstance(w, x)
	case *SyncGroup:
		renderSyncGroup(w, x)
	case *VRRPInstance:
		renderInstance(w, x)
	case *SNATPool:
		renderSNATPool(w, x)
	case *BGP:
		renderBGP(w, x)
	case *VirtualServerGroup:
		renderVSGroup(w, x)
	case *VirtualServer:
		renderVS(w, x)
	case *StaticBlock:
		switch x.Kind {
		case "static_ipaddress":
			if len(x.VIPs) == 0 {
				w.open(x.Kind)
				w.close()
			}
			renderVIPs(w, x.Kind, x.VIPs)
		default:
			var lines [][]string
			for _, r := range x.Routes {
				lines = append(lines, r.Words)
			}
			for _, r := range x.Rules {
				lines = append(lines, r.Words)
			}
			if len(lines) == 0 {
				w.open(x.Kind)
				w.close()
			}
			renderWordLines(w, x.Kind, lines)
		}
	case *GarpGroup:
		w.open("garp_group")
		w.dur("garp_interval", x.GarpInterval)
		w.dur("gna_interval", x.GnaInterval)
		w.str("interface", x.Interface)
		if len(x.Interfaces) > 0 {
			w.open("interfaces")
			for _, name := range x.Interfaces {
				w.line(q(name))
			}
			w.close()
		}
		w.close()
	case *TrackGroup:
		w.open("track_group", q(x.Name))
		w.open("group")
		for _, name := range x.Instances {
			w.line(q(name))
		}
		w.close()
		w.close()
	case *InterfaceDelays:
		w.open("interface_up_down_delays")
		for _, e := range x.Entries {
			words := []string{e.Name, e.Down.seconds()}
			if e.Up != 0 {
				words = append(words, e.Up.seconds())
			}
			w.line(words...)
		}
		w.close()
	}
}

func renderGlobal(w *wr, g *GlobalDefs) {
	w.open("global_defs")
	if len(g.NotificationEmail) > 0 {
		w.open("notification_email")
		for _, e := range g.NotificationEmail {
			w.line(q(e))
		}
		w.close()
	}
	w.str("notification_email_from", g.NotificationEmailFrom)
	if g.SMTPServer != "" {
		if g.SMTPPort != 0 {
			w.line("smtp_server", q(g.SMTPServer), strconv.Itoa(int(g.SMTPPort)))
		} else {
			w.line("smtp_server", q(g.SMTPServer))
		}
	}
	w.str("smtp_helo_name", g.SMTPHeloName)
	w.str("random_seed", g.RandomSeed)
	w.flag("no_email_faults", g.NoEmailFaults)
	if g.SMTPConnectTimeout != DefaultSMTPConnectTimeout {
		w.dur("smtp_connect_timeout", g.SMTPConnectTimeout)
	}
	w.boolPtr("smtp_alert", g.SMTPAlert)
	w.boolPtr("smtp_alert_vrrp", g.SMTPAlertVRRP)
	w.boolPtr("smtp_alert_checker", g.SMTPAlertChecker)
	w.flag("checker_log_all_failures", g.CheckerLogAllFailures)
	w.flag("rs_init_notifies", g.RSInitNotifies)
	w.flag("no_checker_emails", g.NoCheckerEmails)
	w.flag("log_unknown_vrids", g.LogUnknownVRIDs)
	w.str("vrrp_rx_bufs_policy", g.VRRPRxBufsPolicy)
	w.num("vrrp_rx_bufs_multiplier", g.VRRPRxBufsMultiplier)
	w.flag("process_names", g.ProcessNames)
	w.str("process_name", g.ProcessName)
	w.flag("data_use_instance", g.DataUseInstance)
	w.str("reload_time_file", g.ReloadTimeFile)
	w.flag("reload_repeat", g.ReloadRepeat)
	if g.HasReloadFile {
		if g.ReloadFile != "" {
			w.line("reload_file", q(g.ReloadFile))
		} else {
			w.line("reload_file")
		}
	}
	w.str("router_id", g.RouterID)
	w.flag("enable_script_security", g.EnableScriptSecurity)
	w.str("script_user", g.ScriptUser)
	w.script("startup_script", g.StartupScript)
	w.script("shutdown_script", g.ShutdownScript)
	w.dur("startup_script_timeout", g.StartupScriptTimeout)
	w.dur("shutdown_script_timeout", g.ShutdownScriptTimeout)
	w.flag("lvs_flush", g.LVSFlush)
	w.flag("lvs_flush_onstop", g.LVSFlushOnStop)
	if t := g.LVSTimeouts; t != (Timeouts{}) {
		words := []string{"lvs_timeouts"}
		if t.TCP != 0 {
			words = append(words, "tcp", t.TCP.seconds())
		}
		if t.TCPFin != 0 {
			words = append(words, "tcpfin", t.TCPFin.seconds())
		}
		if t.UDP != 0 {
			words = append(words, "udp", t.UDP.seconds())
		}
		w.line(words...)
	}
	if s := g.LVSSyncDaemon; s != nil && !s.fromInstance {
		words := []string{"lvs_sync_daemon", q(s.Interface)}
		if s.Instance != "" {
			words = append(words, "inst", q(s.Instance))
		}
		if s.ID != nil {
			words = append(words, "id", strconv.Itoa(*s.ID))
		}
		for _, kv := range []struct {
			k string
			v int
		}{{"maxlen", s.MaxLen}, {"port", s.Port}, {"ttl", s.TTL}} {
			if kv.v != 0 {
				words = append(words, kv.k, strconv.Itoa(kv.v))
			}
		}
		if s.Group != "" {
			words = append(words, "group", q(s.Group))
		}
		w.line(words...)
	}
	if g.JSONVersion != 0 {
		w.num("json_version", g.JSONVersion)
	}
	w.flag("vrrp_notify_priority_changes", g.VRRPNotifyPriorityChanges)
	w.flag("fifo_write_vrrp_states_on_reload", g.FIFOWriteVRRPStatesOnReload)
	if g.Umask != nil {
		w.line("umask", fmt.Sprintf("%04o", *g.Umask))
	}
	w.flag("enable_snmp_vrrp", g.SNMPVRRP)
	w.flag("enable_snmp_checker", g.SNMPChecker)
	w.flag("enable_snmp_rfcv2", g.SNMPRFCv2)
	w.flag("enable_snmp_rfcv3", g.SNMPRFCv3)
	w.str("snmp_socket", g.SNMPSocket)
	w.flag("enable_traps", g.SNMPTraps)
	w.flag("vrrp_no_swap", g.VRRPNoSwap)
	w.flag("checker_no_swap", g.CheckerNoSwap)
	w.flag("bfd_no_swap", g.BFDNoSwap)
	if g.VRRPVersion != 2 {
		w.num("vrrp_version", g.VRRPVersion)
	}
	w.str("vrrp_mcast_group4", g.VRRPMcastGroup4)
	w.num("vrrp_down_timer_adverts", g.VRRPDownTimerAdverts)
	w.str("vrrp_mcast_group6", g.VRRPMcastGroup6)
	w.flag("vrrp_strict", g.VRRPStrict)
	w.dur("vrrp_garp_interval", g.VRRPGarpInterval)
	w.dur("vrrp_gna_interval", g.VRRPGnaInterval)
	w.dur("vrrp_startup_delay", g.VRRPStartupDelay)
	w.str("vmac_prefix", g.VMACPrefix)
	w.str("default_interface", g.DefaultInterface)
	w.str("net_namespace", g.NetNamespace)
	vd := &g.VRRPDefaults
	w.garp("vrrp_", &vd.GarpSettings)
	w.flag("vrrp_min_garp", vd.MinGARP)
	if vd.GarpExtraIf != nil {
		w.line(vd.GarpExtraIf.words("vrrp_garp_extra_if")...)
	}
	w.flag("vrrp_lower_prio_no_advert", vd.LowerPrioNoAdvert)
	w.flag("vrrp_higher_prio_send_advert", vd.HigherPrioSendAdvert)
	w.flag("vrrp_check_unicast_src", vd.CheckUnicastSrc)
	w.flag("vrrp_skip_check_adv_addr", vd.SkipCheckAdvAddr)
	for _, f := range []struct {
		kw string
		f  *NotifyFIFO
	}{{"notify_fifo", g.NotifyFIFO}, {"vrrp_notify_fifo", g.VRRPNotifyFIFO}, {"lvs_notify_fifo", g.LVSNotifyFIFO}} {
		if f.f == nil {
			continue
		}
		if f.f.Path != "" {
			w.script(f.kw, &Script{Cmd: f.f.Path, User: f.f.Owner})
		}
		w.script(f.kw+"_script", f.f.Script)
	}
	gv := g.Govs
	w.str("govs_dataplane", gv.Dataplane)
	if len(gv.Interfaces) > 0 {
		w.line(append([]string{"govs_interface"}, qs(gv.Interfaces)...)...)
	}
	w.str("govs_xdp_mode", gv.XDPMode)
	w.str("govs_api_socket", gv.APISocket)
	w.str("govs_api_listen", gv.APIListen)
	w.str("govs_web_listen", gv.WebListen)
	w.str("govs_web_password", gv.WebPassword)
	if gv.WebTLSCert != "" || gv.WebTLSKey != "" {
		w.line("govs_web_tls", q(gv.WebTLSCert), q(gv.WebTLSKey))
	}
	if len(gv.WebAllow) > 0 {
		w.line(append([]string{"govs_web_allow"}, qs(gv.WebAllow)...)...)
	}
	w.str("govs_config_sync_listen", gv.ConfigSyncListen)
	if len(gv.ConfigSyncPeers) > 0 {
		w.line(append([]string{"govs_config_sync_peer"}, qs(gv.ConfigSyncPeers)...)...)
	}
	w.str("govs_config_sync_secret", gv.ConfigSyncSecret)
	w.str("govs_metrics_listen", gv.MetricsListen)
	w.num("govs_conn_table_size", gv.ConnTableSize)
	w.str("govs_log_level", gv.LogLevel)
	if len(gv.Masquerade) > 0 {
		w.line(append([]string{"govs_masquerade"}, qs(gv.Masquerade)...)...)
	}
	w.boolPtr("govs_sloppy_tcp", gv.SloppyTCP)
	w.close()
}

func renderVRRPScript(w *wr, s *VRRPScript) {
	w.open("vrrp_script", q(s.Name))
	w.str("script", s.Script)
	if s.User != "" {
		// user USER [GROUP] (keepalived's documented form)
		w.line(append([]string{"user"}, userWords(s.User)...)...)
	}
	w.dur("interval", s.Interval)
	w.dur("timeout", s.Timeout)
	if s.Weight != 0 || s.Reverse {
		if s.Reverse {
			w.line("weight", strconv.Itoa(s.Weight), "reverse")
		} else {
			w.num("weight", s.Weight)
		}
	}
	w.num("rise", s.Rise)
	w.num("fall", s.Fall)
	w.flag("init_fail", s.InitFail)
	w.close()
}

func renderTrackFile(w *wr, t *TrackFile) {
	w.open("track_file", q(t.Name))
	w.str("file", t.File)
	switch {
	case t.Reverse:
		w.line("weight", strconv.Itoa(t.Weight), "reverse")
	case t.Weight != 1: // (1: keepalived's default)
		w.line("weight", strconv.Itoa(t.Weight))
	}
	if in := t.InitFile; in != nil {
		words := []string{"init_file", strconv.Itoa(in.Value)}
		if in.Overwrite {
			words = append(words, "overwrite")
		}
		w.line(words...)
	}
	w.close()
}

func renderTrackProcess(w *wr, t *TrackProcess) {
	w.open("vrrp_track_process", q(t.Name))
	words := []string{"process", q(t.Process)}
	for _, p := range t.Params {
		words = append(words, q(p))
	}
	w.line(words...)
	switch t.ParamMatch {
	case "":
	case "exact":
		w.line("param_match")
	default:
		w.line("param_match", t.ParamMatch)
	}
	w.flag("full_command", t.FullCommand)
	if t.Reverse {
		w.line("weight", strconv.Itoa(t.Weight), "reverse")
	} else {
		w.num("weight", t.Weight)
	}
	w.num("quorum", t.Quorum)
	if t.HasQuorumMax {
		w.line("quorum_max", strconv.Itoa(t.QuorumMax))
	}
	w.dur("fork_delay", t.ForkDelay)
	w.dur("terminate_delay", t.TerminateDelay)
	w.close()
}

// renderWordLines writes a block of lines kept as their words (as
// written: virtual_routes, virtual_rules), nothing when there are none.
func renderWordLines(w *wr, kw string, lines [][]string) {
	if len(lines) == 0 {
		return
	}
	w.open(kw)
	for _, l := range lines {
		words := make([]string, len(l))
		for i, s := range l {
			words[i] = q(s)
		}
		w.line(words...)
	}
	w.close()
}

func renderNotify(w *wr, n Notifiers) {
	w.script("notify_master", n.Master)
	w.script("notify_backup", n.Backup)
	w.script("notify_fault", n.Fault)
	w.script("notify_stop", n.Stop)
	w.script("notify", n.Any)
	w.script("notify_master_rx_lower_pri", n.MasterRxLowerPri)
	if n.Deleted != nil && n.Deleted.Cmd == "" {
		w.line("notify_deleted")
	} else {
		w.script("notify_deleted", n.Deleted)
	}
}

func renderTracks(w *wr, kw string, ts []Track) {
	if len(ts) == 0 {
		return
	}
	w.open(kw)
	for _, t := range ts {
		words := []string{q(t.Name)}
		if t.HasWeight {
			words = append(words, "weight", strconv.Itoa(t.Weight))
		}
		switch {
		case t.Reverse:
			words = append(words, "reverse")
		case t.NoReverse:
			words = append(words, "noreverse")
		}
		w.line(words...)
	}
	w.close()
}

func renderSyncGroup(w *wr, g *SyncGroup) {
	w.open("vrrp_sync_group", q(g.Name))
	w.open("group")
	for _, m := range g.Group {
		w.line(q(m))
	}
	w.close()
	for _, l := range g.trackLines() {
		renderTracks(w, l.Kind, l.Tracks)
	}
	renderNotify(w, g.Notify)
	w.flag("smtp_alert", g.SMTPAlert)
	w.flag("sync_group_tracking_weight", g.TrackingWeight)
	w.close()
}

func renderVIPs(w *wr, kw string, vs []VIPAddr) {
	if len(vs) == 0 {
		return
	}
	w.open(kw)
	for _, v := range vs {
		words := []string{v.Prefix.String()}
		if v.Prefix.Bits() == v.Prefix.Addr().BitLen() {
			words[0] = v.Prefix.Addr().String()
		}
		add := func(k, val string) {
			if val != "" {
				words = append(words, k, q(val))
			}
		}
		add("brd", v.Brd)
		add("dev", v.Dev)
		add("scope", v.Scope)
		add("label", v.Label)
		add("peer", v.Peer)
		if v.NoTrack {
			words = append(words, "no_track")
		}
		if v.NoDAD {
			words = append(words, "-nodad")
		}
		if v.TrackGroup != "" {
			words = append(words, "track_group", q(v.TrackGroup))
		}
		for _, e := range v.Extra {
			words = append(words, q(e))
		}
		w.line(words...)
	}
	w.close()
}

func renderInstance(w *wr, vi *VRRPInstance) {
	w.open("vrrp_instance", q(vi.Name))
	w.str("state", vi.State)
	w.str("interface", vi.Interface)
	w.num("virtual_router_id", vi.VirtualRouterID)
	w.line("priority", strconv.Itoa(vi.Priority))
	w.line("advert_int", vi.AdvertInt.seconds())
	w.num("version", vi.Version)
	w.flag("nopreempt", vi.NoPreempt)
	w.dur("preempt_delay", vi.PreemptDelay)
	w.flag("dont_track_primary", vi.DontTrackPrimary)
	w.flag("track_src_ip", vi.TrackSrcIP)
	for _, l := range vi.trackLines() {
		renderTracks(w, l.Kind, l.Tracks)
	}
	w.addr("mcast_src_ip", vi.McastSrcIP)
	w.addr("unicast_src_ip", vi.UnicastSrcIP)
	w.num("unicast_ttl", vi.UnicastTTL)
	w.flag("check_unicast_src", vi.CheckUnicastSrc)
	w.flag("unicast_fault_no_peer", vi.UnicastFaultNoPeer)
	switch vi.OldUnicastChecksum {
	case "config":
		w.line("old_unicast_checksum")
	case "never":
		w.line("old_unicast_checksum never")
	}
	w.addr("mcast_dst_ip", vi.McastDstIP)
	w.num("down_timer_adverts", vi.DownTimerAdverts)
	w.flag("promote_secondaries", vi.PromoteSecondaries)
	w.num("kernel_rx_buf_size", vi.KernelRxBufSize)
	w.str("lvs_sync_daemon_interface", vi.syncIf)
	w.flag("notify_priority_changes", vi.NotifyPrioChange)
	if len(vi.UnicastPeers) > 0 {
		w.open("unicast_peer")
		for _, p := range vi.UnicastPeers {
			words := []string{p.Addr.String()}
			if p.MinTTL != 0 {
				words = append(words, "min_ttl", strconv.Itoa(p.MinTTL))
			}
			if p.MaxTTL != 0 {
				words = append(words, "max_ttl", strconv.Itoa(p.MaxTTL))
			}
			w.line(words...)
		}
		w.close()
	}
	if vi.Auth != nil {
		w.open("authentication")
		w.str("auth_type", vi.Auth.Type)
		w.str("auth_pass", vi.Auth.Pass)
		w.close()
	}
	renderVIPs(w, "virtual_ipaddress", vi.VIPs)
	renderVIPs(w, "virtual_ipaddress_excluded", vi.VIPsExcluded)
	var routes, rules [][]string
	for _, r := range vi.Routes {
		routes = append(routes, r.Words)
	}
	for _, r := range vi.Rules {
		rules = append(rules, r.Words)
	}
	renderWordLines(w, "virtual_routes", routes)
	renderWordLines(w, "virtual_rules", rules)
	renderNotify(w, vi.Notify)
	w.flag("smtp_alert", vi.SMTPAlert)
	if vi.Accept != nil {
		if *vi.Accept {
			w.line("accept")
		} else {
			w.line("no_accept")
		}
	}
	w.boolPtr("strict_mode", vi.Strict)
	if vi.UseVMAC {
		words := []string{"use_vmac"}
		if vi.VMACName != "" {
			words = append(words, vi.VMACName)
		}
		if vi.VMACAddr != "" {
			words = append(words, vi.VMACAddr)
		}
		w.line(words...)
	}
	w.flag("vmac_xmit_base", vi.VMACXmitBase)
	w.flag("native_ipv6", vi.NativeIPv6)
	w.garp("", &vi.GarpSettings)
	w.boolPtr("lower_prio_no_advert", vi.LowerPrioNoAdvert)
	w.boolPtr("higher_prio_send_advert", vi.HigherPrioSendAdvert)
	if vi.GarpExtraIf != nil {
		w.line(vi.GarpExtraIf.words("garp_extra_if")...)
	}
	w.boolPtr("skip_check_adv_addr", vi.SkipCheckAdvAddr)
	w.close()
}

func renderSNATPool(w *wr, p *SNATPool) {
	w.open("govs_snat_pool", q(p.Name))
	if len(p.Addresses) > 0 {
		words := []string{"address"}
		for _, a := range p.Addresses {
			words = append(words, a.String())
		}
		w.line(words...)
	}
	if p.PortMin != 0 || p.PortMax != 0 {
		w.line("port_range", strconv.Itoa(int(p.PortMin)), strconv.Itoa(int(p.PortMax)))
	}
	w.close()
}

func renderBGP(w *wr, g *BGP) {
	w.open("govs_bgp")
	w.u32("local_as", &g.LocalAS)
	w.addr("router_id", g.RouterID)
	w.num("listen_port", g.ListenPort)
	w.num("hold_time", g.HoldTime)
	w.num("keepalive", g.Keepalive)
	w.num("connect_retry", g.ConnectRetry)
	w.addr("next_hop", g.NextHop)
	w.addr("next_hop6", g.NextHop6)
	if len(g.Communities) > 0 {
		w.line(append([]string{"community"}, qs(g.Communities)...)...)
	}
	w.u32("med", g.MED)
	w.u32("local_pref", g.LocalPref)
	w.num("as_path_prepend", g.Prepend)
	w.durPtr("announce_delay", g.AnnounceDelay)
	for _, nb := range g.Neighbors {
		w.open("neighbor", nb.Address.String())
		w.u32("remote_as", &nb.RemoteAS)
		w.addr("local_address", nb.LocalAddress)
		w.port("port", nb.Port)
		w.str("password", nb.Password)
		w.flag("passive", nb.Passive)
		w.num("ebgp_multihop", nb.Multihop)
		w.num("hold_time", nb.HoldTime)
		w.num("keepalive", nb.Keepalive)
		w.num("connect_retry", nb.ConnectRetry)
		w.flag("bfd", nb.BFD)
		w.num("bfd_interval", nb.BFDInterval)
		w.num("bfd_multiplier", nb.BFDMultiplier)
		w.close()
	}
	w.close()
}

func renderVSGroup(w *wr, g *VirtualServerGroup) {
	w.open("virtual_server_group", q(g.Name))
	for _, e := range g.Entries {
		if e.FWMark != 0 {
			if e.V6 {
				w.line("fwmark", strconv.FormatUint(uint64(e.FWMark), 10), "inet6")
			} else {
				w.line("fwmark", strconv.FormatUint(uint64(e.FWMark), 10))
			}
			continue
		}
		a := addrRangeString(e.First, e.Last)
		if e.Port != 0 {
			w.line(a, strconv.Itoa(int(e.Port)))
		} else {
			w.line(a)
		}
	}
	w.close()
}

func addrRangeString(first, last netip.Addr) string {
	if first == last || !last.IsValid() {
		return first.String()
	}
	fb, lb := first.AsSlice(), last.AsSlice()
	if first.Is4() && fb[0] == lb[0] && fb[1] == lb[1] && fb[2] == lb[2] {
		return first.String() + "-" + strconv.Itoa(int(lb[3]))
	}
	if first.Is6() && bytes.Equal(fb[:14], lb[:14]) {
		return first.String() + "-" + strconv.FormatUint(uint64(lb[14])<<8|uint64(lb[15]), 16)
	}
	// A prefix: find the bits.
	for bits := 0; bits <= first.BitLen(); bits++ {
		p := netip.PrefixFrom(first, bits).Masked()
		if p.Addr() == first {
			if f, l, ok := parseAddrRange(p.String()); ok && f == first && l == last {
				return p.String()
			}
		}
	}
	return first.String()
}

func portListString(ps []PortRange) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		if p.From == p.To {
			parts[i] = strconv.Itoa(int(p.From))
		} else {
			parts[i] = strconv.Itoa(int(p.From)) + "-" + strconv.Itoa(int(p.To))
		}
	}
	return strings.Join(parts, ",")
}

func methodWords(kw string, m Method, t *Tunnel) []string {
	words := []string{kw, string(m)}
	if t != nil {
		if t.Type != "" {
			words = append(words, "type", t.Type)
		}
		if t.Port != 0 {
			words = append(words, "port", strconv.Itoa(int(t.Port)))
		}
		if t.Csum != "" {
			words = append(words, t.Csum)
		}
	}
	return words
}

func renderCheckDefaults(w *wr, cd CheckDefaults) {
	if cd.DelayLoop != nil {
		w.line("delay_loop", cd.DelayLoop.seconds())
	}
	if cd.ConnectTimeout != nil {
		w.line("connect_timeout", cd.ConnectTimeout.seconds())
	}
	if cd.Retry != nil {
		w.line("retry", strconv.Itoa(*cd.Retry))
	}
	if cd.DelayBeforeRetry != nil {
		w.line("delay_before_retry", cd.DelayBeforeRetry.seconds())
	}
	if cd.Warmup != nil {
		w.line("warmup", cd.Warmup.seconds())
	}
	w.boolPtr("alpha", cd.Alpha)
}

func renderVS(w *wr, vs *VirtualServer) {
	switch {
	case vs.FWMark != 0:
		w.open("virtual_server", "fwmark", strconv.FormatUint(uint64(vs.FWMark), 10))
	case vs.Group != "":
		w.open("virtual_server", "group", q(vs.Group))
	case len(vs.Ports) == 1 && vs.Ports[0] == PortRange{}:
		w.open("virtual_server", vs.Addr.String())
	default:
		w.open("virtual_server", vs.Addr.String(), portListString(vs.Ports))
	}
	w.str("snmp_name", vs.Name) // (keepalived's word; it refuses name)
	protos := make([]string, len(vs.Protocols))
	for i, p := range vs.Protocols {
		protos[i] = string(p)
	}
	w.line(append([]string{"protocol"}, protos...)...)
	w.str("ip_family", vs.IPFamily)
	w.line("lvs_sched", q(vs.Scheduler))
	for _, f := range vs.SchedFlags {
		w.line(f)
	}
	w.num("mh_table_size", vs.MHTableSize)
	w.flag("ops", vs.OnePacket)
	w.line(methodWords("lvs_method", vs.Method, vs.Tunnel)...)
	w.dur("persistence_timeout", vs.Persistence)
	w.str("persistence_granularity", vs.PersistenceGranularity)
	w.str("persistence_engine", vs.PersistenceEngine)
	renderCheckDefaults(w, vs.CheckDefaults)
	if vs.Quorum != 1 {
		w.line("quorum", strconv.Itoa(vs.Quorum))
	}
	w.num("hysteresis", vs.Hysteresis)
	w.script("quorum_up", vs.QuorumUp)
	w.script("quorum_down", vs.QuorumDown)
	if s := vs.Sorry; s != nil {
		if s.Addr.IsValid() {
			if s.Port != 0 {
				w.line("sorry_server", s.Addr.String(), strconv.Itoa(int(s.Port)))
			} else {
				w.line("sorry_server", s.Addr.String())
			}
		}
		if s.Method != "" {
			w.line("sorry_server_lvs_method", string(s.Method))
		}
	}
	w.flag("sorry_server_inhibit", vs.SorryServerInhibit)
	w.flag("inhibit_on_failure", vs.InhibitOnFailure)
	w.flag("omega", vs.Omega)
	w.flag("ha_suspend", vs.HASuspend)
	w.str("virtualhost", vs.Virtualhost)
	w.boolPtr("smtp_alert", vs.SMTPAlert)
	w.dur("service_timeout", vs.ServiceTimeout)
	w.dur("reentry", vs.Reentry)
	w.flag("quiesce_server", vs.QuiesceServer)
	w.num("proxy_protocol", vs.ProxyProtocol)
	w.str("snat_pool", vs.SNATPool)
	for _, rs := range vs.RealServers {
		renderRS(w, rs)
	}
	w.close()
}

func renderRS(w *wr, rs *RealServer) {
	if rs.Port != 0 {
		w.open("real_server", rs.Addr.String(), strconv.Itoa(int(rs.Port)))
	} else {
		w.open("real_server", rs.Addr.String())
	}
	w.str("snmp_name", rs.Name)
	w.line("weight", strconv.Itoa(rs.Weight))
	if rs.Method != "" {
		w.line(methodWords("lvs_method", rs.Method, rs.Tunnel)...)
	}
	w.num("uthreshold", rs.UThreshold)
	w.num("lthreshold", rs.LThreshold)
	w.script("notify_up", rs.NotifyUp)
	w.script("notify_down", rs.NotifyDown)
	w.boolPtr("inhibit_on_failure", rs.InhibitOnFailure)
	w.boolPtr("smtp_alert", rs.SMTPAlert)
	w.str("virtualhost", rs.Virtualhost)
	renderCheckDefaults(w, rs.CheckDefaults)
	for _, c := range rs.Checks {
		renderCheck(w, c)
	}
	w.close()
}

func renderCheck(w *wr, c *Check) {
	w.open(c.Kind)
	w.addr("connect_ip", c.ConnectIP)
	w.port("connect_port", c.ConnectPort)
	w.addr("bindto", c.BindTo)
	w.port("bind_port", c.BindPort)
	w.str("bind_if", c.BindIf)
	if c.FWMark != 0 {
		w.line("fwmark", strconv.FormatUint(uint64(c.FWMark), 10))
	}
	renderCheckDefaults(w, c.CheckDefaults)
	w.flag("log_all_failures", c.LogAllFailures)
	switch c.Kind {
	case CheckTCP:
		w.str("send", c.Send)
		w.str("expect", c.Expect)
		w.flag("use_regex", c.UseRegex)
	case CheckHTTP, CheckSSL:
		w.str("http_protocol", c.HTTPProtocol)
		w.str("virtualhost", c.Virtualhost)
		w.flag("enable_sni", c.EnableSNI)
		w.str("sni_name", c.SNIName)
		w.flag("tls_verify", c.TLSVerify)
		for _, u := range c.URLs {
			w.open("url")
			w.str("path", u.Path)
			w.str("digest", u.Digest)
			if len(u.StatusCodes) > 0 {
				parts := make([]string, len(u.StatusCodes))
				for i, r := range u.StatusCodes {
					if r.From == r.To {
						parts[i] = strconv.Itoa(r.From)
					} else {
						parts[i] = strconv.Itoa(r.From) + "-" + strconv.Itoa(r.To)
					}
				}
				w.line(append([]string{"status_code"}, parts...)...)
			}
			w.str("virtualhost", u.Virtualhost)
			w.str("regex", u.Regex)
			w.flag("regex_no_match", u.RegexNoMatch)
			w.close()
		}
	case CheckSMTP:
		w.str("helo_name", c.HeloName)
	case CheckDNS:
		w.str("type", c.DNSType)
		w.str("name", c.DNSName)
	case CheckMisc:
		w.str("misc_path", c.MiscPath)
		w.dur("misc_timeout", c.MiscTimeout)
		w.flag("misc_dynamic", c.MiscDynamic)
		w.str("user", c.User)
		w.str("expect", c.Expect)
		w.flag("use_regex", c.UseRegex)
	case CheckUDP:
		w.str("payload", c.Payload)
		if c.HasRequire {
			if c.RequireReply != "" {
				w.line("require_reply", q(c.RequireReply))
			} else {
				w.line("require_reply")
			}
		}
		w.num("min_reply_length", c.MinReplyLength)
		w.num("max_reply_length", c.MaxReplyLength)
	case CheckFile:
		w.str("track_file", c.TrackFile)
		switch {
		case c.FileWeight == nil:
		case c.Reverse:
			w.line("weight", strconv.Itoa(*c.FileWeight), "reverse")
		default:
			w.line("weight", strconv.Itoa(*c.FileWeight))
		}
		w.flag("dynamic", c.Dynamic)
	case CheckBFD:
		w.str("name", c.BFDName)
	}
	w.close()
}
