package config

import (
	"bytes"
	"slices"
	"strings"
)

// A changed block is written with the fewest changes the writer can find:
// its statements whose meaning is still in the new rendering keep their
// text (comments on their lines too); statements that no longer hold are
// removed; what the new rendering says that is left over is inserted
// where a removed statement of the same keyword was, else before the
// block's closing brace. The result is accepted only when it reads back
// as the new rendering; otherwise the block is rendered whole.

// spliceBlock returns the new text of the region [it.start, it.end) of
// data for the changed object whose rendering is cur, or nil when the
// block must be rendered whole.
func spliceBlock(data []byte, it srcItem, cur string) []byte {
	n := it.node
	if !n.HasBlock || len(n.Block) == 0 || n.hasInclude || n.hasCond {
		return nil
	}
	base := renderLines(withKids(n, nil))
	want := strings.Split(strings.TrimSuffix(cur, "\n"), "\n")
	if base == nil || len(want) < 2 || want[len(want)-1] != "}" {
		return nil
	}
	closeAt := lineStart(data, n.end-1)
	if closeAt <= n.start || strings.TrimSpace(string(data[closeAt:n.end])) != "}" {
		return nil // the closing brace is not on a line of its own
	}
	order := segments(want[1 : len(want)-1])
	taken := make([]int, len(order)) // slot+1 that keeps each segment; 0: none
	take := func(seg string, slot int) bool {
		for j, o := range order {
			if o == seg && taken[j] == 0 {
				taken[j] = slot + 1
				return true
			}
		}
		return false
	}
	baseSet := map[string]bool{}
	for _, s := range segments(base[1 : len(base)-1]) {
		baseSet[s] = true
	}
	type slot struct {
		kid     *Node
		keep    bool
		neutral bool     // says nothing the rendering shows (decided last)
		kws     []string // its keyword and those of what it rendered to
	}
	slots := make([]slot, len(n.Block))
	for i, k := range n.Block {
		if k.hasInclude || k.Pos.File != n.Pos.File {
			return nil
		}
		with := renderLines(withKids(n, []*Node{k}))
		if with == nil || with[0] != base[0] {
			return nil
		}
		slots[i].kid = k
		slots[i].kws = []string{k.Keyword()}
		if a := keywordAliases[k.Keyword()]; a != "" {
			slots[i].kws = append(slots[i].kws, a)
		}
		var own []string
		for _, s := range segments(with[1 : len(with)-1]) {
			if !baseSet[s] {
				own = append(own, s)
				slots[i].kws = append(slots[i].kws, firstWord(s))
			}
		}
		if len(own) == 0 {
			// it says what the default says: its statement is the
			// default one of its keyword, if it has one
			for _, s := range segments(with[1 : len(with)-1]) {
				if slices.Contains(slots[i].kws, firstWord(s)) {
					own = append(own, s)
				}
			}
			if own == nil {
				// nothing it says shows (nat_mask, preempt): kept
				// unless the new rendering says its keyword anew
				slots[i].neutral = true
				continue
			}
		}
		// kept when everything it says is still said (and not yet kept
		// by another statement)
		saved := slices.Clone(taken)
		keep := true
		for _, s := range own {
			if !take(s, i) {
				keep = false
				break
			}
		}
		if !keep {
			copy(taken, saved)
		}
		slots[i].keep = keep
	}
	left := map[string]bool{}
	for j, s := range order {
		if taken[j] == 0 {
			left[firstWord(s)] = true
		}
	}
	for i := range slots {
		if slots[i].neutral {
			slots[i].keep = !slices.ContainsFunc(slots[i].kws, func(kw string) bool { return left[kw] })
		}
	}
	// what is left, in the new rendering's order, keeps its place among
	// kept statements of its keyword: after the one before it, else
	// before the one after it, else where a removed statement of its
	// keyword was, else before the closing brace
	indent := leadingBlank(data, n.Block[0].start)
	crlf := bytes.Contains(data[n.start:n.end], []byte("\r\n"))
	before, after := map[int][]string{}, map[int][]string{}
	var atEnd []string
	keptOf := func(j int) int {
		if taken[j] == 0 {
			return -1
		}
		return taken[j] - 1
	}
	for j, s := range order {
		if taken[j] != 0 {
			continue
		}
		kw := firstWord(s)
		txt := reindent(s, indent)
		if crlf {
			txt = strings.ReplaceAll(txt, "\n", "\r\n")
		}
		placed := false
		for p := j - 1; p >= 0 && !placed; p-- {
			if k := keptOf(p); k >= 0 && firstWord(order[p]) == kw {
				after[k] = append(after[k], txt)
				placed = true
			}
		}
		for p := j + 1; p < len(order) && !placed; p++ {
			if k := keptOf(p); k >= 0 && firstWord(order[p]) == kw {
				before[k] = append(before[k], txt)
				placed = true
			}
		}
		for i, sl := range slots {
			if !placed && !sl.keep && slices.Contains(sl.kws, kw) {
				before[i] = append(before[i], txt)
				placed = true
			}
		}
		if !placed {
			if baseSet[s] {
				continue // a default no statement said and none says now
			}
			atEnd = append(atEnd, txt)
		}
	}
	var b bytes.Buffer
	prev := n.start
	for i, sl := range slots {
		ls := lineStart(data, sl.kid.start)
		if ls < prev || !onlyBlank(data[ls:sl.kid.start]) {
			return nil // another statement on the same line
		}
		b.Write(data[prev:ls])
		for _, s := range before[i] {
			b.WriteString(s)
		}
		end := lineEnd(data, sl.kid.end)
		if end == sl.kid.end {
			return nil // something follows on the same line
		}
		if sl.keep {
			b.Write(data[ls:end])
		}
		for _, s := range after[i] {
			b.WriteString(s)
		}
		prev = end
	}
	if prev > closeAt {
		return nil
	}
	b.Write(data[prev:closeAt])
	for _, s := range atEnd {
		b.WriteString(s)
	}
	b.Write(data[closeAt:it.end])
	out := b.Bytes()
	if base[0] != want[0] {
		// the header changed (a renamed instance, a service's new
		// address): its words up to the brace are written anew; the
		// statements, and a comment after the brace, are kept
		i := headerBrace(out)
		if i < 0 {
			return nil
		}
		// the keyword as written (vrrp_track_file stays so)
		hdr := want[0]
		if _, rest, ok := strings.Cut(hdr, " "); ok {
			hdr = n.Keyword() + " " + rest
		}
		out = append([]byte(hdr), out[i+1:]...)
	}
	// accepted only if it reads back as the new rendering
	sp := &syntaxParser{diags: &diagList{}, vars: map[string]string{}}
	nodes := sp.parseFile(n.Pos.File, out)
	if len(sp.diags.ds) != 0 || len(nodes) != 1 || originalRendering(nodes[0]) != cur {
		return nil
	}
	return out
}

// headerBrace is the offset of the opening brace on a block's first line
// (b starts at its keyword), outside double quotes (the lexer's only
// quotes); -1 when a comment or the line's end comes first.
func headerBrace(b []byte) int {
	quoted := false
	for i, c := range b {
		switch {
		case quoted:
			quoted = c != '"'
		case c == '"':
			quoted = true
		case c == '{':
			return i
		case c == '#' || c == '!' || c == '\n':
			return -1
		}
	}
	return -1
}

// keywordAliases maps keywords the parser takes to the one the writer
// writes, where they differ.
var keywordAliases = map[string]string{
	"lb_algo":            "lvs_sched",
	"lb_kind":            "lvs_method",
	"nb_get_retry":       "retry",
	"timeout":            "service_timeout",
	"govs_mh_table_size": "mh_table_size",
	"lvs_flush_on_stop":  "lvs_flush_onstop",
	"govs_interfaces":    "govs_interface",
	// opposites: one replaces the other
	"preempt":   "nopreempt",
	"nopreempt": "preempt",
}

// withKids is a copy of n with the given children.
func withKids(n *Node, kids []*Node) *Node {
	c := *n
	c.Block = kids
	return &c
}

// renderLines renders the object a top-level statement builds, as lines.
func renderLines(n *Node) []string {
	r := originalRendering(n)
	if r == "\x00" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(r, "\n"), "\n")
}

// segments groups the lines of a block's body (rendered, four spaces per
// level) into its statements: a line at the first level and the lines of
// its block.
func segments(lines []string) []string {
	var out []string
	var cur []string
	open := false
	for _, l := range lines {
		first := strings.HasPrefix(l, "    ") && !strings.HasPrefix(l, "     ")
		switch {
		case first && l == "    }" && open:
			cur = append(cur, l)
			open = false
		case first:
			if cur != nil {
				out = append(out, strings.Join(cur, "\n"))
			}
			cur = []string{l}
			open = strings.HasSuffix(l, "{")
		default:
			cur = append(cur, l)
		}
	}
	if cur != nil {
		out = append(out, strings.Join(cur, "\n"))
	}
	return out
}

func firstWord(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// reindent writes a rendered statement with indent, the block's own
// indentation unit, for each level of four spaces.
func reindent(s, indent string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		lvl := (len(l) - len(strings.TrimLeft(l, " "))) / 4
		b.WriteString(strings.Repeat(indent, lvl))
		b.WriteString(l[lvl*4:])
		b.WriteByte('\n')
	}
	return b.String()
}

func lineStart(data []byte, off int) int {
	if off > len(data) {
		off = len(data)
	}
	return bytes.LastIndexByte(data[:off], '\n') + 1
}

func leadingBlank(data []byte, off int) string {
	ls := lineStart(data, off)
	if !onlyBlank(data[ls:off]) {
		return "    "
	}
	return string(data[ls:off])
}

func onlyBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}
