package config

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// This file is the syntax layer of keepalived.conf: a lexer and a tree of
// statements. A statement is the words of one line, optionally followed by
// a block in braces. Comments start with '#' or '!' anywhere outside
// quotes. "$NAME=value" lines define variables that "$NAME" and "${NAME}"
// expand to in later lines, and "include GLOB" splices other files in,
// relative to the including file. A line that starts with "@ID" is read
// only when ID is the config-id, one with "@^ID" only when it is not
// (keepalived's conditional configuration).

type tokKind int

const (
	tWord tokKind = iota
	tOpen
	tClose
	tEOF
)

type token struct {
	kind   tokKind
	text   string
	quoted bool
	pos    Pos
	off    int // byte offset in the file
	end    int // byte offset after the token
	// expanded marks a word that a variable's value replaced (in part)
	expanded bool
	// line is the line the token is on: a statement's words end with
	// it (lines made by expansion are numbered apart, lexOut.synth)
	line int
}

// Word is one word of a statement.
type Word struct {
	Text   string
	Quoted bool
	Pos    Pos
}

// Node is a statement: Words[0] is its keyword. Block is non-nil when the
// statement has a block (possibly empty).
type Node struct {
	Words    []Word
	Block    []*Node
	HasBlock bool
	Pos      Pos
	// start and end are byte offsets of the statement in its file (end is
	// after the closing brace); used by the writer to keep unedited text.
	start, end int
	// included marks a statement that came from an include inside it.
	hasInclude bool
	// hasCond marks a top-level statement with conditional (@ID) lines,
	// or one from a file included on a conditional line.
	hasCond bool
	// usesVar marks a statement with a word a variable gave (in it or in
	// its block).
	usesVar bool
	// expanded marks a statement whose own words came from substitution
	// or a sequence (its text in the file is not these words).
	expanded bool
	// incNodes are the top-level statements a top-level include brought
	// (of every file it read, nested includes too).
	incNodes []*Node
}

// Keyword returns the statement's keyword.
func (n *Node) Keyword() string { return n.Words[0].Text }

// Args returns the words after the keyword.
func (n *Node) Args() []Word { return n.Words[1:] }

// srcFile is one parsed file with its top-level statements, kept for the
// writer.
type srcFile struct {
	name  string
	data  []byte
	nodes []*Node // top-level statements in this file, in order
	conds []int   // lines that are conditional (@ID) or use a variable set on one
}

// ParseOptions configure Parse. The zero value reads from the file system.
type ParseOptions struct {
	// ReadFile reads an included file; nil means os.ReadFile.
	ReadFile func(name string) ([]byte, error)
	// Glob expands an include pattern; nil means filepath.Glob.
	Glob func(pattern string) ([]string, error)
	// ConfigID is the config-id that "@ID" lines are compared with; ""
	// means DefaultConfigID.
	ConfigID string
}

// DefaultConfigID is keepalived's default config-id: the host's node name
// up to its first dot.
func DefaultConfigID() string {
	h, _ := os.Hostname()
	id, _, _ := strings.Cut(h, ".")
	return id
}

func (o *ParseOptions) configID() string {
	if o != nil && o.ConfigID != "" {
		return o.ConfigID
	}
	return DefaultConfigID()
}

func (o *ParseOptions) readFile(name string) ([]byte, error) {
	if o != nil && o.ReadFile != nil {
		return o.ReadFile(name)
	}
	return os.ReadFile(name)
}

func (o *ParseOptions) glob(p string) ([]string, error) {
	if o != nil && o.Glob != nil {
		return o.Glob(p)
	}
	return filepath.Glob(p)
}

const maxIncludeDepth = 16

// maxExpansion bounds the length of a line or value after variable
// expansion (keepalived has a similar fixed buffer), so that definitions
// that double themselves cannot exhaust memory.
const maxExpansion = 64 << 10

type syntaxParser struct {
	opts  *ParseOptions
	diags *diagList
	vars  map[string]string
	files []*srcFile
	stack []string // include chain, for loop detection
	id    string   // the config-id, once needed
	// condVars are the variables defined on conditional lines: a line
	// that uses one counts as conditional for the writer
	condVars []string
	// includeCheck is include_check's checks (global_defs) for the
	// includes that follow
	includeCheck int
	// rand gives ${_RANDOM} (seeded by random_seed; nil: at random)
	rand *rand.Rand
	// condIncludes counts the conditional include lines being read: what
	// they include is this host's only; sawCondInclude says there was one
	condIncludes   int
	sawCondInclude bool
}

// keepCond reports whether a line marked with word (@ID or @^ID) counts
// here.
func (p *syntaxParser) keepCond(word string) bool {
	id, not := strings.CutPrefix(word[1:], "^")
	if p.id == "" {
		p.id = p.opts.configID()
	}
	return (id == p.id) != not
}

// lex splits one file into tokens, handling comments, quotes, variables
// and conditional lines; it also returns the line numbers of the
// conditional lines, kept or not.
func (p *syntaxParser) lex(name string, data []byte) ([]token, []int) {
	out := &lexOut{toks: make([]token, 0, len(data)/6+16), synth: 1 << 30}
	line, lineStart := 1, 0
	i := 0
	n := len(data)
	atLineStart := true
	condLine := false // the rest of the line follows a kept @ID
	// keep reports whether a conditional line marked with word (@ID or
	// @^ID) counts here, and records the line.
	keep := func(word string) bool {
		out.conds = append(out.conds, line)
		return p.keepCond(word)
	}
	// lineEnd is where the line from j ends
	lineEnd := func(j int) int {
		if k := bytes.IndexByte(data[j:], '\n'); k >= 0 {
			return j + k
		}
		return n
	}
	for i < n {
		c := data[i]
		switch {
		case c == '\n':
			i++
			line++
			lineStart = i
			atLineStart, condLine = true, false
			continue
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			i++
			continue
		case c == '#' || c == '!':
			for i < n && data[i] != '\n' {
				i++
			}
			continue
		}
		pos := Pos{File: name, Line: line, Col: i - lineStart + 1}
		if atLineStart && c == '@' {
			// @ID / @^ID: the rest of the line counts only when ID is
			// (is not) the config-id
			j := i + 1
			for j < n && !strings.ContainsRune(" \t\r\n", rune(data[j])) {
				j++
			}
			if keep(string(data[i:j])) {
				i = j // read the rest of the line (a $NAME=value too)
				condLine = true
				continue
			}
			k := j
			for j < n && data[j] != '\n' {
				j++
			}
			if f := strings.Fields(string(data[k:j])); len(f) > 0 && includeKeywords[f[0]] != nil {
				// another config-id reads other files
				p.sawCondInclude = true
			}
			i = j
			continue
		}
		if atLineStart && c == '$' {
			// A variable definition takes the whole line: $NAME=value,
			// kept as written (substituted where it is used). A value
			// ending with '\' goes on over the next lines (blank ones
			// skipped) up to one that does not.
			j := lineEnd(i)
			if v, val, ok := definition(stripCommentQuoted(string(data[i:j]))); ok {
				if more, ok := strings.CutSuffix(val, "\\"); ok {
					var parts []string
					if more = strings.TrimSpace(more); more != "" {
						parts = append(parts, more)
					}
					cont := true
					for j < n {
						next := lineEnd(j + 1)
						l := strings.TrimSpace(stripCommentQuoted(string(data[j+1 : next])))
						line++
						lineStart = j + 1
						j = next
						if l == "" {
							continue
						}
						l, cont = strings.CutSuffix(l, "\\")
						parts = append(parts, l)
						if !cont {
							break
						}
					}
					if cont {
						p.diags.warnf(pos, "multiline definition of $%s: the file ends before a line without a final \"\\\"", v)
					}
					val = strings.Join(parts, "\n")
				}
				p.vars[v] = val
				if condLine {
					// a statement using it differs between hosts
					p.condVars = append(p.condVars, v)
				}
				i = j
				continue
			}
		}
		if atLineStart && c == 'i' {
			// "include {a,b}/*.conf": the pattern is the rest of the
			// line, braces and all (csh-style alternatives)
			j := lineEnd(i)
			rest := stripCommentQuoted(string(data[i:j]))
			if f := strings.Fields(rest); len(f) > 1 && includeKeywords[f[0]] != nil && strings.ContainsAny(rest, "{}") && !p.needsExpansion(rest) {
				k := i + strings.Index(rest, f[0])
				out.toks = append(out.toks, token{kind: tWord, text: f[0], pos: pos, off: k, end: k + len(f[0]), line: line})
				arg := strings.TrimSpace(rest[len(f[0]):])
				k = i + strings.Index(rest, arg)
				out.toks = append(out.toks, token{kind: tWord, text: arg, pos: Pos{File: name, Line: line, Col: k - lineStart + 1}, off: k, end: k + len(arg), line: line})
				i = j
				continue
			}
		}
		if atLineStart && (c == '$' || c == '~' || bytes.IndexByte(data[i:lineEnd(i)], '$') >= 0) {
			// A line that uses a variable (or starts a sequence) is
			// read as keepalived reads it: substituted, then split
			// into words (expand.go).
			j := lineEnd(i)
			rest := stripCommentQuoted(string(data[i:j]))
			if p.needsExpansion(rest) {
				o := &origin{pos: pos, off: i, end: j, line: line}
				p.expandLine(out, rest, o, condLine, 0)
				i = j
				continue
			}
			p.unbraced(rest, pos)
		}
		atLineStart = false
		switch c {
		case '{', '}':
			// as keepalived, what follows a brace starts a line (an
			// @ID there is a conditional mark)
			k := tOpen
			if c == '}' {
				k = tClose
			}
			out.toks = append(out.toks, token{kind: k, text: string(c), pos: pos, off: i, end: i + 1, line: line})
			i++
			atLineStart = true
			continue
		case '"':
			var b strings.Builder
			j := i + 1
			closed := false
			for j < n && data[j] != '\n' {
				// \" is a quote and \\ a backslash (so that a quoted
				// string can end with one); any other backslash is itself
				if data[j] == '\\' && j+1 < n && (data[j+1] == '"' || data[j+1] == '\\') {
					b.WriteByte(data[j+1])
					j += 2
					continue
				}
				if data[j] == '"' {
					closed = true
					j++
					break
				}
				b.WriteByte(data[j])
				j++
			}
			if !closed {
				p.diags.errorf(pos, "unterminated quoted string")
			}
			out.toks = append(out.toks, token{kind: tWord, text: b.String(), quoted: true, pos: pos, off: i, end: j, line: line})
			i = j
			continue
		}
		j := i
		for j < n {
			d := data[j]
			if d == '$' && j+1 < n && data[j+1] == '{' {
				// ${NAME} (undefined here: needsExpansion took the
				// line otherwise) is one word
				if k := bytes.IndexByte(data[j:lineEnd(j)], '}'); k > 0 {
					j += k + 1
					continue
				}
			}
			if d == ' ' || d == '\t' || d == '\r' || d == '\n' || d == '{' || d == '}' || d == '#' || d == '!' || d == '"' || d == '\f' || d == '\v' {
				break
			}
			j++
		}
		word := string(data[i:j])
		if strings.Contains(word, "$") {
			// (a line using a defined variable went to expandLine)
			for k := 0; ; {
				_, b, name, _, ok := reference(word, k)
				if !ok {
					break
				}
				if _, def := p.vars[name]; !def {
					p.diags.warnf(pos, "undefined variable $%s (quote the word to keep a literal $)", name)
				}
				k = b
			}
		}
		out.toks = append(out.toks, token{kind: tWord, text: word, pos: pos, off: i, end: j, line: line})
		i = j
	}
	out.toks = append(out.toks, token{kind: tEOF, pos: Pos{File: name, Line: line, Col: i - lineStart + 1}, off: n, end: n, line: line})
	return out.toks, out.conds
}

func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == '_' || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z') || (i > 0 && r >= '0' && r <= '9') {
			continue
		}
		return false
	}
	return true
}

// parseFile parses one file into top-level statements, expanding includes.
func (p *syntaxParser) parseFile(name string, data []byte) []*Node {
	f := &srcFile{name: name, data: data}
	p.files = append(p.files, f)
	p.stack = append(p.stack, name)
	defer func() { p.stack = p.stack[:len(p.stack)-1] }()
	toks, conds := p.lex(name, data)
	f.conds = conds
	bp := &blockParser{p: p, toks: toks, file: f}
	nodes := bp.list(nil)
	// a top-level statement with conditional lines is not rewritten:
	// its rendering would keep only this host's lines
	for _, n := range f.nodes {
		last := n.Pos.Line + bytes.Count(data[n.start:n.end], []byte("\n"))
		if p.condIncludes > 0 || slices.ContainsFunc(conds, func(l int) bool { return l >= n.Pos.Line && l <= last }) {
			n.hasCond = true
		}
	}
	return nodes
}

type blockParser struct {
	p           *syntaxParser
	toks        []token
	i           int
	file        *srcFile
	suspect     *Node // first block whose contents dedented past it
	eofReported bool
}

func (bp *blockParser) peek() token { return bp.toks[bp.i] }

// list parses statements until the closing brace of parent (or EOF at top
// level). Indentation is used only to recover from a missing '}': a
// statement that starts at or left of its block's keyword column, in a
// block whose contents were indented, closes that block with an error.
func (bp *blockParser) list(parent *Node) []*Node {
	var out []*Node
	childCol := 0
	for {
		t := bp.peek()
		switch t.kind {
		case tEOF:
			if parent != nil {
				parent.end = t.off
				if !bp.eofReported {
					// Report once, at the block whose contents went
					// back to (or left of) its own indentation first:
					// in an indented file that is the block whose "}"
					// is missing; else at the innermost open block.
					bad := parent
					if bp.suspect != nil {
						bad = bp.suspect
					}
					bp.p.diags.errorf(bad.Pos, "missing \"}\" to close %q block opened here", bad.Keyword())
					bp.eofReported = true
				}
			}
			return out
		case tClose:
			bp.i++
			if parent == nil {
				bp.p.diags.errorf(t.pos, "unexpected \"}\" with no open block")
				continue
			}
			parent.end = t.end
			return out
		case tOpen:
			bp.i++
			bp.p.diags.errorf(t.pos, "block \"{\" without a keyword before it")
			stray := &Node{Words: []Word{{Text: "{", Pos: t.pos}}, Pos: t.pos}
			bp.list(stray)
			continue
		}
		if parent != nil && childCol == 0 {
			childCol = t.pos.Col
		}
		if bp.suspect == nil && parent != nil && childCol > parent.Pos.Col && t.pos.Col <= parent.Pos.Col && t.pos.Line > parent.Pos.Line {
			// Indentation says parent should have ended here. Braces
			// decide; this only names the culprit if they do not balance.
			bp.suspect = parent
		}
		n := bp.statement()
		if parent != nil && parent.Keyword() == "global_defs" && n.Keyword() == "include_check" && !n.HasBlock {
			// for the includes after it, as keepalived reads it line
			// by line (a global_defs keyword only)
			bp.p.setIncludeCheck(n)
		}
		if includeKeywords[n.Keyword()] != nil && !n.HasBlock {
			cond := slices.Contains(bp.file.conds, n.Pos.Line)
			if cond {
				bp.p.condIncludes++
				bp.p.sawCondInclude = true
			}
			inc := bp.p.include(n)
			if cond {
				bp.p.condIncludes--
			}
			if parent != nil && len(inc) > 0 {
				parent.hasInclude = true
			}
			if parent == nil {
				n.incNodes = inc
				bp.file.nodes = append(bp.file.nodes, n)
			}
			out = append(out, inc...)
			continue
		}
		if parent == nil {
			bp.file.nodes = append(bp.file.nodes, n)
		}
		out = append(out, n)
	}
}

// statement reads the words of one line and an optional block.
func (bp *blockParser) statement() *Node {
	first := bp.peek()
	n := &Node{Pos: first.pos, start: first.off, Words: make([]Word, 0, 4)}
	line := first.line
	for {
		t := bp.peek()
		if t.kind != tWord || (t.line != line && len(n.Words) > 0) {
			break
		}
		n.Words = append(n.Words, Word{Text: t.text, Quoted: t.quoted, Pos: t.pos})
		n.end = t.end
		n.usesVar = n.usesVar || t.expanded
		n.expanded = n.expanded || t.expanded
		bp.i++
	}
	if bp.peek().kind == tOpen {
		bp.i++
		n.HasBlock = true
		n.Block = bp.list(n)
		if n.Block == nil {
			n.Block = []*Node{}
		}
		// an include or a variable anywhere below counts for the block
		for _, c := range n.Block {
			n.hasInclude = n.hasInclude || c.hasInclude
			n.usesVar = n.usesVar || c.usesVar
		}
	}
	return n
}

// include expands "include PATTERN" (or a variant with checks:
// includer, includem, includew, includeb, includea) relative to the
// including file.
func (p *syntaxParser) include(n *Node) []*Node {
	if len(n.Words) != 2 {
		p.diags.errorf(n.Pos, "%s takes one file name or pattern", n.Keyword())
		return nil
	}
	checks := p.includeCheck | *includeKeywords[n.Keyword()]
	pat := n.Words[1].Text
	if !filepath.IsAbs(pat) {
		pat = filepath.Join(filepath.Dir(n.Pos.File), pat)
	}
	var matches []string
	seen := map[string]bool{}
	alts := expandBraces(pat)
	if alts == nil {
		p.diags.errorf(n.Words[1].Pos, "%s %q: more than %d alternatives in braces", n.Keyword(), n.Words[1].Text, maxBraceAlternatives)
		return nil
	}
	for _, alt := range alts {
		m, err := p.opts.glob(alt)
		if err != nil {
			p.diags.errorf(n.Words[1].Pos, "%s %q: %v", n.Keyword(), n.Words[1].Text, err)
			return nil
		}
		if !strings.HasPrefix(filepath.Base(alt), ".") {
			// as glob(3): a wildcard does not match a leading dot (nor
			// the writer's temporary files, .NAME.tmp*)
			m = slices.DeleteFunc(m, func(f string) bool { return strings.HasPrefix(filepath.Base(f), ".") })
		}
		if len(m) == 0 {
			// As keepalived: a plain include reads a pattern that
			// matches nothing as nothing (an empty conf.d); its checks
			// make it an error: match for a name without wildcards,
			// wildcard_match for one with, brace_match for each
			// alternative (without wildcards) of a {…} pattern
			wild := strings.ContainsAny(alt, "*?[")
			braced := len(alts) > 1
			switch {
			case braced && checks&checkBrace != 0 && !wild:
				p.diags.errorf(n.Words[1].Pos, "%s %q: %s matches no file (include_check brace_match)", n.Keyword(), n.Words[1].Text, alt)
			case !braced && (checks&checkMatch != 0 && !wild || checks&checkWildcard != 0 && wild):
				p.diags.errorf(n.Words[1].Pos, "%s %q: no such file", n.Keyword(), n.Words[1].Text)
			case !wild:
				p.diags.warnf(n.Words[1].Pos, "%s %q: no such file %s (read as nothing, as keepalived does; includea or include_check make it an error)", n.Keyword(), n.Words[1].Text, alt)
			}
		}
		sort.Strings(m)
		for _, f := range m {
			if !seen[f] {
				seen[f] = true
				matches = append(matches, f)
			}
		}
	}
	if len(matches) == 0 {
		return nil
	}
	if len(p.stack) >= maxIncludeDepth {
		p.diags.errorf(n.Pos, "%s %q: includes nested deeper than %d", n.Keyword(), n.Words[1].Text, maxIncludeDepth)
		return nil
	}
	var out []*Node
	for _, m := range matches {
		for _, s := range p.stack {
			if s == m {
				p.diags.errorf(n.Pos, "%s %q: file includes itself", n.Keyword(), m)
				return out
			}
		}
		data, err := p.opts.readFile(m)
		if err != nil {
			// (keepalived skips a file it cannot read unless
			// include_check readable; govs refuses it: the blocks in
			// it would go on a reload)
			p.diags.errorf(n.Words[1].Pos, "%s %q: %v", n.Keyword(), m, err)
			continue
		}
		// include_check set in an included file ends with it
		saved := p.includeCheck
		out = append(out, p.parseFile(m, data)...)
		p.includeCheck = saved
	}
	return out
}

// include_check's checks.
const (
	checkReadable = 1 << iota
	checkMatch
	checkWildcard
	checkBrace
	checkAll = checkReadable | checkMatch | checkWildcard | checkBrace
)

// includeKeywords are include and its variants, with the checks each
// adds.
var includeKeywords = map[string]*int{
	"include":  new(0),
	"includer": new(checkReadable),
	"includem": new(checkMatch | checkReadable),
	"includew": new(checkWildcard | checkReadable),
	"includeb": new(checkBrace | checkReadable),
	"includea": new(checkAll),
}

// setIncludeCheck reads "include_check [[+|-]CHECK …]" (global_defs):
// no CHECK means all of them; a CHECK without + or - sets, + adds, -
// removes.
func (p *syntaxParser) setIncludeCheck(c *Node) {
	if len(c.Words) == 1 {
		p.includeCheck = checkAll
		return
	}
	// a word without + or - starts from none; then each in order
	cur := p.includeCheck
	for _, w := range c.Words[1:] {
		if t := w.Text; t != "" && t[0] != '+' && t[0] != '-' {
			cur = 0
		}
	}
	for _, w := range c.Words[1:] {
		name, op := w.Text, byte(0)
		if name != "" && (name[0] == '+' || name[0] == '-') {
			op, name = name[0], name[1:]
		}
		var bit int
		switch name {
		case "readable", "read":
			// (the manual says readable; keepalived 2.2.7 takes read)
			bit = checkReadable
		case "match":
			bit = checkMatch | checkReadable
		case "wildcard_match":
			bit = checkWildcard | checkReadable
		case "brace_match":
			bit = checkBrace | checkReadable
		default:
			p.diags.errorf(w.Pos, "include_check: unknown check %q (readable, match, wildcard_match, brace_match)", w.Text)
			continue
		}
		if op == '-' {
			cur &^= bit &^ checkReadable
			if bit == checkReadable {
				cur &^= checkReadable
			}
		} else {
			cur |= bit
		}
	}
	p.includeCheck = cur
}

// maxBraceAlternatives bounds the patterns one include's braces make.
const maxBraceAlternatives = 4096

// expandBraces expands csh-style brace alternatives ("{a,b}", nested) in
// an include pattern, in order; a brace without a comma or a closing
// brace is literal. nil: more than maxBraceAlternatives.
func expandBraces(s string) []string {
	depth, open := 0, -1
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '{':
			if depth == 0 {
				open = i
			}
			depth++
		case '}':
			if depth == 0 {
				continue
			}
			if depth--; depth > 0 {
				continue
			}
			// the alternatives of s[open+1:i], split at top-level commas
			var alts []string
			d, from := 0, open+1
			for j := open + 1; j < i; j++ {
				switch s[j] {
				case '{':
					d++
				case '}':
					d--
				case ',':
					if d == 0 {
						alts = append(alts, s[from:j])
						from = j + 1
					}
				}
			}
			if alts == nil {
				continue // "{x}": literal
			}
			alts = append(alts, s[from:i])
			var out []string
			for _, a := range alts {
				more := expandBraces(a + s[i+1:])
				if more == nil || len(out)+len(more) > maxBraceAlternatives {
					return nil
				}
				for _, rest := range more {
					out = append(out, s[:open]+rest)
				}
			}
			return out
		}
	}
	return []string{s}
}
