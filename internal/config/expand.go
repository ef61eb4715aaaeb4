package config

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// This file is keepalived's parameter substitution, as its manual's
// ADVANCED CONFIGURATION describes it:
//   - "$NAME=value" defines NAME; a value ending with '\' goes on over
//     the next lines (a multiline definition). Values are stored as
//     written and substituted when used, recursively, so a value may use
//     a variable defined after it.
//   - "$NAME" and "${NAME}" are replaced where a line uses them. A line
//     that uses a multiline value becomes several lines, each read in
//     turn: its definitions, conditional (@ID) lines and uses take effect
//     in order.
//   - The predefined ${_PWD}, ${_INSTANCE}, ${_RANDOM [MIN [MAX]]},
//     ${_ENV NAME}, ${_HASH} and ${_BANG}.
//   - "~SEQ(VAR, START, STEP, END)", "~SEQx(…)" (hexadecimal) and
//     "~LST(VAR, V1, V2, …)" or "~LST({A, B}, {A1, B1}, …)" at the start
//     of a line read the rest of it once per value.
// Lines that use no defined variable are lexed from the file's bytes as
// they are; the tokens of an expanded line all carry the position and
// the byte span of the line they came from.

// maxSubstitutions bounds the substitutions made for one line of the
// file (with the lines its multiline values made), so that variables
// that refer to each other end with an error.
const maxSubstitutions = 1 << 16

// maxExpandDepth bounds multiline values and sequences nested in each
// other.
const maxExpandDepth = 32

// maxSequence bounds the values of one ~SEQ or ~LST.
const maxSequence = 1 << 20

// maxLineTokens bounds the words one line of the file makes through
// multiline values and sequences (keepalived's manual's largest example,
// 65,024 instances from one line, makes about 1.6 million);
// maxLineBytes the text substitution makes from it, and maxLineRows the
// values its (nested) sequences take. (Variables: tests lower them.)
var (
	maxLineTokens = 1 << 21
	maxLineBytes  = 1 << 28
	maxLineRows   = 1 << 20
)

// origin is the line of the file an expanded line came from.
type origin struct {
	pos      Pos
	off, end int // byte span in the file
	line     int // the file's line number, for conditional marks
	// subs counts the substitutions made for it (for each value of a
	// sequence); toks, rows and bytes the words, sequence values and
	// substituted text it made in all
	subs, toks, rows, bytes int
	// failed stops the expansion after an error
	failed bool
}

// lexOut collects a file's tokens and conditional line numbers.
type lexOut struct {
	toks  []token
	conds []int
	// synth numbers the lines expansion makes (statements end with
	// their line); above any line number of a file
	synth int
}

// predefined are keepalived's predefined names.
var predefined = map[string]bool{"_PWD": true, "_INSTANCE": true, "_RANDOM": true, "_ENV": true, "_HASH": true, "_BANG": true}

// reference finds the next "$NAME" or "${NAME [ARGS]}" in s from k: its
// span, name and arguments; ok is false when there is none.
func reference(s string, k int) (a, b int, name string, args []string, ok bool) {
	for a = strings.IndexByte(s[k:], '$'); a >= 0; a = strings.IndexByte(s[k:], '$') {
		a += k
		j := a + 1
		if j < len(s) && s[j] == '{' {
			c := strings.IndexByte(s[j:], '}')
			if c < 0 {
				k = j // no closing brace: "${" is literal
				continue
			}
			f := strings.Fields(s[j+1 : j+c])
			if len(f) > 0 && validVarName(f[0]) {
				return a, j + c + 1, f[0], f[1:], true
			}
			k = j
			continue
		}
		for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || j > a+1 && s[j] >= '0' && s[j] <= '9') {
			j++
		}
		// as keepalived: $NAME without braces only before a blank or
		// the end of the line ("10.0.0.$N/24" keeps its "$N")
		if j > a+1 && (j == len(s) || strings.IndexByte(" \t\r\f\v", s[j]) >= 0) {
			return a, j, s[a+1 : j], nil, true
		}
		k = a + 1
	}
	return 0, 0, "", nil, false
}

// unbraced warns of a defined $NAME written before a character other
// than a blank, which keepalived (and govs) leave as it is.
func (p *syntaxParser) unbraced(s string, pos Pos) {
	for i := strings.IndexByte(s, '$'); i >= 0; i = strings.IndexByte(s, '$') {
		s = s[i+1:]
		j := 0
		for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= 'a' && s[j] <= 'z' || j > 0 && s[j] >= '0' && s[j] <= '9') {
			j++
		}
		if j == 0 || j == len(s) || strings.IndexByte(" \t\r\f\v", s[j]) >= 0 {
			continue
		}
		if _, def := p.vars[s[:j]]; def {
			p.diags.warnf(pos, "$%s before %q is not replaced (only before a blank, as keepalived does): write ${%s}", s[:j], string(s[j]), s[:j])
		}
	}
}

// sequenceStart reports whether a line starts with a ~SEQ or ~LST.
func sequenceStart(s string) bool {
	return strings.HasPrefix(s, "~SEQ(") || strings.HasPrefix(s, "~SEQx(") || strings.HasPrefix(s, "~LST(")
}

// needsExpansion reports whether the rest of a line (comments already
// cut) uses a defined or predefined variable or starts a sequence.
func (p *syntaxParser) needsExpansion(s string) bool {
	if sequenceStart(s) {
		return true
	}
	for k := 0; ; {
		a, b, name, _, ok := reference(s, k)
		if !ok {
			return false
		}
		if _, def := p.vars[name]; def || predefined[name] && s[a+1] == '{' {
			return true
		}
		k = b
	}
}

// lookup is a variable's value; ok is false for an undefined one.
func (p *syntaxParser) lookup(name string, args []string, braced bool, o *origin) (string, bool) {
	if v, ok := p.vars[name]; ok && len(args) == 0 {
		return v, true
	}
	if !braced || !predefined[name] {
		return "", false
	}
	switch name {
	case "_PWD":
		dir, err := filepath.Abs(filepath.Dir(o.pos.File))
		if err != nil {
			dir = filepath.Dir(o.pos.File)
		}
		return dir, len(args) == 0
	case "_INSTANCE":
		if p.id == "" {
			p.id = p.opts.configID()
		}
		return p.id, len(args) == 0
	case "_HASH":
		return "#", len(args) == 0
	case "_BANG":
		return "!", len(args) == 0
	case "_ENV":
		if len(args) != 1 {
			p.diags.errorf(o.pos, "${_ENV NAME} takes one environment variable name")
			return "", false
		}
		return os.Getenv(args[0]), true
	case "_RANDOM":
		lo, hi := 0, 32767
		var err error
		if len(args) > 2 {
			err = fmt.Errorf("too many arguments")
		}
		if len(args) > 0 && err == nil {
			lo, err = strconv.Atoi(args[0])
		}
		if len(args) > 1 && err == nil {
			hi, err = strconv.Atoi(args[1])
		}
		if err != nil || lo < 0 || hi < lo || hi > 1<<31-1 {
			p.diags.errorf(o.pos, "${_RANDOM [MIN [MAX]]}: want 0 <= MIN <= MAX <= 2147483647, got %q", strings.Join(args, " "))
			return "", false
		}
		if p.rand != nil {
			return strconv.Itoa(lo + p.rand.IntN(hi-lo+1)), true
		}
		return strconv.Itoa(lo + rand.IntN(hi-lo+1)), true
	}
	return "", false
}

// inQuotes reports whether position a of s is inside a quoted string.
func inQuotes(s string, a int) bool {
	in := false
	for i := 0; i < a; i++ {
		switch s[i] {
		case '\\':
			if in {
				i++
			}
		case '"':
			in = !in
		}
	}
	return in
}

// expandLine reads one line made by expansion (or the rest of a file's
// line that uses a variable): a conditional mark, a definition, a
// sequence, substitution, then its words.
func (p *syntaxParser) expandLine(out *lexOut, text string, o *origin, cond bool, depth int) {
	if o.failed {
		return
	}
	if depth > maxExpandDepth {
		p.diags.errorf(o.pos, "variables and sequences nested deeper than %d", maxExpandDepth)
		o.failed = true
		return
	}
	t := strings.TrimSpace(text)
	if t == "" {
		return
	}
	if t[0] == '@' {
		word := t
		if i := strings.IndexAny(t, " \t"); i >= 0 {
			word = t[:i]
		}
		out.conds = append(out.conds, o.line)
		if !p.keepCond(word) {
			return
		}
		t, cond = strings.TrimSpace(t[len(word):]), true
		if t == "" {
			return
		}
	}
	if name, val, ok := definition(t); ok {
		p.vars[name] = val
		if cond {
			p.condVars = append(p.condVars, name)
		}
		return
	}
	if sequenceStart(t) {
		p.sequence(out, t, o, cond, depth)
		return
	}
	for _, v := range p.condVars {
		if strings.Contains(t, "$"+v) || strings.Contains(t, "${"+v) {
			out.conds = append(out.conds, o.line)
			break
		}
	}
	for k := 0; ; {
		a, b, name, args, ok := reference(t, k)
		if !ok {
			break
		}
		braced := t[a+1] == '{'
		val, def := p.lookup(name, args, braced, o)
		if !def {
			if !inQuotes(t, a) && !(braced && predefined[name]) {
				p.diags.warnf(o.pos, "undefined variable $%s (quote the word to keep a literal $)", name)
			}
			k = b
			continue
		}
		o.subs++
		if o.subs > maxSubstitutions || len(t)-(b-a)+len(val) > maxExpansion {
			p.diags.errorf(o.pos, "variable expansion longer than %d bytes or %d substitutions (a variable that uses itself?)", maxExpansion, maxSubstitutions)
			o.failed = true
			return
		}
		t = t[:a] + val + t[b:]
		if o.bytes += len(t); o.bytes > maxLineBytes {
			p.diags.errorf(o.pos, "variable expansion longer than %d bytes in all for this line (a variable that uses itself?)", maxLineBytes)
			o.failed = true
			return
		}
		if strings.Contains(val, "\n") {
			// a multiline value: its lines are read one by one
			for _, l := range strings.Split(t, "\n") {
				p.expandLine(out, l, o, cond, depth+1)
			}
			return
		}
		k = a // the value's own variables
	}
	if t = strings.TrimSpace(t); strings.HasPrefix(t, "@") {
		// a conditional mark a variable gave ($IF_MAIN=@main)
		p.expandLine(out, t, o, cond, depth+1)
		return
	}
	p.unbraced(t, o.pos)
	p.words(out, t, o)
}

// definition splits "$NAME=value" (one line).
func definition(t string) (name, val string, ok bool) {
	if !strings.HasPrefix(t, "$") {
		return "", "", false
	}
	eq := strings.IndexByte(t, '=')
	if eq < 2 || !validVarName(strings.TrimSpace(t[1:eq])) {
		return "", "", false
	}
	return strings.TrimSpace(t[1:eq]), strings.TrimSpace(t[eq+1:]), true
}

// words splits an expanded line into tokens: words, quoted strings and
// braces. '#' and '!' are characters here (comments went before the
// substitution, and ${_HASH} gives a '#').
func (p *syntaxParser) words(out *lexOut, t string, o *origin) {
	out.synth++
	line := out.synth
	add := func(k tokKind, text string, quoted bool) {
		o.toks++
		out.toks = append(out.toks, token{kind: k, text: text, quoted: quoted, pos: o.pos, off: o.off, end: o.end, expanded: true, line: line})
	}
	if f := strings.Fields(t); len(f) > 1 && includeKeywords[f[0]] != nil {
		// "include PATTERN": the rest of the line is the pattern, its
		// {a,b} alternatives included
		add(tWord, f[0], false)
		add(tWord, strings.TrimSpace(t[strings.Index(t, f[0])+len(f[0]):]), false)
		return
	}
	for i := 0; i < len(t) && !o.failed; {
		if o.toks >= maxLineTokens {
			p.diags.errorf(o.pos, "this line makes more than %d words through variables and sequences", maxLineTokens)
			o.failed = true
			break
		}
		c := t[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '{':
			add(tOpen, "{", false)
			i++
		case c == '}':
			add(tClose, "}", false)
			i++
		case c == '"':
			var b strings.Builder
			j := i + 1
			closed := false
			for j < len(t) {
				if t[j] == '\\' && j+1 < len(t) && (t[j+1] == '"' || t[j+1] == '\\') {
					b.WriteByte(t[j+1])
					j += 2
					continue
				}
				if t[j] == '"' {
					closed = true
					j++
					break
				}
				b.WriteByte(t[j])
				j++
			}
			if !closed {
				p.diags.errorf(o.pos, "unterminated quoted string")
			}
			add(tWord, b.String(), true)
			i = j
		default:
			j := i
			for j < len(t) && !strings.ContainsRune(" \t\r\f\v{}\"", rune(t[j])) {
				j++
			}
			add(tWord, t[i:j], false)
			i = j
		}
	}
}

// sequence reads a line starting with ~SEQ(…), ~SEQx(…) or ~LST(…): the
// rest of the line once per value.
func (p *syntaxParser) sequence(out *lexOut, t string, o *origin, cond bool, depth int) {
	kind, spec, _ := strings.Cut(t, "(")
	closeAt := strings.IndexByte(spec, ')')
	if closeAt < 0 {
		p.diags.errorf(o.pos, "%s: no closing \")\"", kind)
		return
	}
	rest := spec[closeAt+1:]
	spec = spec[:closeAt]
	var names []string
	var rows [][]string
	var err error
	if kind == "~LST" {
		names, rows, err = parseList(spec)
	} else {
		var vals []string
		var name string
		name, vals, err = parseSeq(spec, kind == "~SEQx")
		names = []string{name}
		for _, v := range vals {
			rows = append(rows, []string{v})
		}
	}
	if err != nil {
		p.diags.errorf(o.pos, "%s(%s): %v", kind, spec, err)
		return
	}
	saved := make([]*string, len(names))
	for i, n := range names {
		if v, ok := p.vars[n]; ok {
			saved[i] = &v
		}
	}
	subs := o.subs
	for _, row := range rows {
		for i, n := range names {
			p.vars[n] = row[i]
		}
		o.subs = subs
		if o.rows++; o.rows > maxLineRows {
			p.diags.errorf(o.pos, "this line's sequences take more than %d values", maxLineRows)
			o.failed = true
			break
		}
		p.expandLine(out, rest, o, cond, depth+1)
		if o.failed {
			break
		}
	}
	// the variable is the sequence's own
	for i, n := range names {
		if saved[i] != nil {
			p.vars[n] = *saved[i]
		} else {
			delete(p.vars, n)
		}
	}
}

// parseSeq reads "VAR, END", "VAR, START, END" or "VAR, START, STEP,
// END": STEP is 1 or -1 towards END when not given, START 1 (or -1 for
// a negative END).
func parseSeq(spec string, hex bool) (string, []string, error) {
	f := strings.Split(spec, ",")
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	if len(f) < 2 || len(f) > 4 || !validVarName(f[0]) {
		return "", nil, fmt.Errorf("want (VAR, [START, [STEP,]] END)")
	}
	nums := make([]int64, len(f)-1)
	for i, s := range f[1:] {
		v, err := strconv.ParseInt(s, 0, 64)
		if err != nil {
			return "", nil, fmt.Errorf("%q is not a number", s)
		}
		nums[i] = v
	}
	var start, step, end int64
	switch len(nums) {
	case 1:
		end, start = nums[0], 1
		if end < 0 {
			start = -1
		}
	case 2:
		start, end = nums[0], nums[1]
	case 3:
		start, step, end = nums[0], nums[1], nums[2]
		if step == 0 {
			return "", nil, fmt.Errorf("a step of 0")
		}
	}
	if step == 0 {
		step = 1
		if end < start {
			step = -1
		}
	}
	if hex && (start < 0 || end < 0) {
		return "", nil, fmt.Errorf("~SEQx takes numbers from 0 only")
	}
	var vals []string
	for v := start; step > 0 && v <= end || step < 0 && v >= end; v += step {
		if len(vals) == maxSequence {
			return "", nil, fmt.Errorf("more than %d values", maxSequence)
		}
		if hex {
			vals = append(vals, strconv.FormatInt(v, 16))
		} else {
			vals = append(vals, strconv.FormatInt(v, 10))
		}
		if step > 0 && v > math.MaxInt64-step || step < 0 && v < math.MinInt64-step {
			break // the next one is past the largest number
		}
	}
	return f[0], vals, nil
}

// parseList reads "VAR, V1, V2, …" or "{A, B}, {A1, B1}, {A2, B2}, …".
func parseList(spec string) ([]string, [][]string, error) {
	var items [][]string
	for s := strings.TrimSpace(spec); s != ""; {
		var item []string
		if s[0] == '{' {
			c := strings.IndexByte(s, '}')
			if c < 0 {
				return nil, nil, fmt.Errorf("no closing \"}\"")
			}
			for _, v := range strings.Split(s[1:c], ",") {
				item = append(item, strings.TrimSpace(v))
			}
			s = strings.TrimSpace(s[c+1:])
		} else {
			v, _, _ := strings.Cut(s, ",")
			item = []string{strings.TrimSpace(v)}
			s = strings.TrimSpace(s[len(v):])
		}
		items = append(items, item)
		if s != "" {
			if s[0] != ',' {
				return nil, nil, fmt.Errorf("want \",\" before %q", s)
			}
			s = strings.TrimSpace(s[1:])
		}
	}
	if len(items) < 2 {
		return nil, nil, fmt.Errorf("want (VAR, VALUE, …)")
	}
	names := items[0]
	for _, n := range names {
		if !validVarName(n) {
			return nil, nil, fmt.Errorf("%q is not a variable name", n)
		}
	}
	for _, row := range items[1:] {
		if len(row) != len(names) {
			return nil, nil, fmt.Errorf("%d values for %d variables", len(row), len(names))
		}
	}
	if len(items)-1 > maxSequence {
		return nil, nil, fmt.Errorf("more than %d values", maxSequence)
	}
	return names, items[1:], nil
}

// stripCommentQuoted cuts a line at a '#' or '!' outside quotes.
func stripCommentQuoted(s string) string {
	in := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if in {
				i++
			}
		case '"':
			in = !in
		case '#', '!':
			if !in {
				return s[:i]
			}
		}
	}
	return s
}
