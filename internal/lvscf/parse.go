// Package lvscf reads Piranha's lvs.cf (the file the Piranha web tool wrote
// and the pulse, lvs and nanny daemons read) and converts it to the govs
// configuration model, reporting every mapping decision with its line.
//
// The syntax is line based: "key = value" lines, "#" comments (also after
// a value), double-quoted strings with \r \n \t \\ and \" escapes, and
// "virtual NAME {", "server NAME {" (inside a virtual) and
// "failover NAME {" blocks closed by "}". See
// docs/import.md for the mapping.
package lvscf

import (
	"fmt"
	"strings"

	"github.com/govs/govs/internal/config"
)

// Entry is one "key = value" line.
type Entry struct {
	Key string
	// Value is the text after "=", without surrounding blanks, a trailing
	// comment, or the quotes of a quoted string. Escapes in quoted strings
	// are kept as written (\r stays backslash, r) because the health
	// checker decodes them, as nanny did.
	Value  string
	Quoted bool
	Pos    config.Pos // of the key
	ValPos config.Pos // of the value
}

// Block is a "KIND NAME { ... }" block: virtual, server or failover.
type Block struct {
	Kind    string
	Name    string
	Pos     config.Pos
	Entries []*Entry
	Blocks  []*Block // server blocks of a virtual
}

// File is a parsed lvs.cf: the global entries and the top-level blocks in
// file order.
type File struct {
	Name    string
	Entries []*Entry
	Blocks  []*Block
}

// Get returns the last entry with key (a later line overrides an earlier
// one, as in Piranha), or nil.
func (b *Block) Get(key string) *Entry { return lastEntry(b.Entries, key) }

// Get returns the last global entry with key, or nil.
func (f *File) Get(key string) *Entry { return lastEntry(f.Entries, key) }

func lastEntry(es []*Entry, key string) *Entry {
	for i := len(es) - 1; i >= 0; i-- {
		if es[i].Key == key {
			return es[i]
		}
	}
	return nil
}

// maxDepth bounds block nesting; lvs.cf has at most two levels, the rest
// are skipped as unknown blocks.
const maxDepth = 64

type parser struct {
	name  string
	diags config.Diagnostics
}

func (p *parser) errorf(pos config.Pos, format string, args ...any) {
	p.diags = append(p.diags, config.Diagnostic{Pos: pos, Severity: config.Error, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) warnf(pos config.Pos, format string, args ...any) {
	p.diags = append(p.diags, config.Diagnostic{Pos: pos, Severity: config.Warning, Msg: fmt.Sprintf(format, args...)})
}

// frame is an open block while parsing; skip marks an unknown or
// misplaced block whose content is ignored.
type frame struct {
	blk  *Block
	skip bool
}

// Parse parses lvs.cf text. name is used in positions. The returned File
// holds everything that could be read even when there are errors; syntax
// problems are errors, duplicate keys and unknown blocks are warnings.
// Whether a key is known is the converter's business (Convert).
func Parse(name string, data []byte) (*File, config.Diagnostics) {
	p := &parser{name: name}
	f := &File{Name: name}
	var stack []frame
	lines := strings.Split(string(data), "\n")
	for i, raw := range lines {
		lineNo := i + 1
		line := strings.TrimRight(raw, " \t\r")
		indent := len(line) - len(strings.TrimLeft(line, " \t"))
		body := line[indent:]
		pos := config.Pos{File: name, Line: lineNo, Col: indent + 1}
		if body == "" || body[0] == '#' {
			continue
		}
		if body[0] == '}' {
			if rest := strings.TrimSpace(body[1:]); rest != "" && rest[0] != '#' {
				p.errorf(config.Pos{File: name, Line: lineNo, Col: indent + 2}, "unexpected text %q after \"}\"", clip(rest))
			}
			if len(stack) == 0 {
				p.errorf(pos, "unexpected \"}\" with no open block")
				continue
			}
			stack = stack[:len(stack)-1]
			continue
		}
		if e, ok := p.entry(body, pos); ok {
			if e == nil {
				continue
			}
			switch {
			case len(stack) == 0:
				f.Entries = p.add(f.Entries, e)
			case stack[len(stack)-1].skip:
			default:
				b := stack[len(stack)-1].blk
				b.Entries = p.add(b.Entries, e)
			}
			continue
		}
		// Not a key = value line: a block opening "KIND NAME {".
		blk, ok := p.open(body, pos)
		if !ok {
			continue
		}
		fr := frame{blk: blk}
		parentSkip := len(stack) > 0 && stack[len(stack)-1].skip
		switch {
		case parentSkip || len(stack) >= maxDepth || blk.Kind == "?":
			fr.skip = true
		case blk.Kind == "server":
			if len(stack) == 0 || stack[len(stack)-1].blk.Kind != "virtual" {
				p.errorf(pos, "server block %q outside a virtual block; skipped", blk.Name)
				fr.skip = true
			} else {
				parent := stack[len(stack)-1].blk
				parent.Blocks = append(parent.Blocks, blk)
			}
		case blk.Kind == "virtual" || blk.Kind == "failover":
			if len(stack) != 0 {
				p.errorf(pos, "%s block %q inside a %s block; skipped", blk.Kind, blk.Name, stack[len(stack)-1].blk.Kind)
				fr.skip = true
			} else {
				f.Blocks = append(f.Blocks, blk)
			}
		default:
			p.warnf(pos, "unknown block %q (%s %s { ... }): not converted", blk.Kind, blk.Kind, blk.Name)
			fr.skip = true
		}
		stack = append(stack, fr)
	}
	for i := len(stack) - 1; i >= 0; i-- {
		b := stack[i].blk
		p.errorf(b.Pos, "missing \"}\" to close %s block %q opened here", b.Kind, b.Name)
	}
	p.diags.Sort()
	return f, p.diags
}

// add appends e and warns when the key was already set in the same block.
func (p *parser) add(es []*Entry, e *Entry) []*Entry {
	if prev := lastEntry(es, e.Key); prev != nil {
		p.warnf(e.Pos, "%s set again (first at line %d): the last value is used", e.Key, prev.Pos.Line)
	}
	return append(es, e)
}

func isKeyChar(c byte) bool {
	return c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// entry parses "key = value". ok is false when the line has no "=" after
// a key (it may be a block opening); a nil entry with ok true means the
// line was an entry with an error (already reported).
func (p *parser) entry(body string, pos config.Pos) (*Entry, bool) {
	k := 0
	for k < len(body) && isKeyChar(body[k]) {
		k++
	}
	rest := strings.TrimLeft(body[k:], " \t")
	if k == 0 || !strings.HasPrefix(rest, "=") {
		return nil, false
	}
	e := &Entry{Key: body[:k], Pos: pos}
	val := rest[1:]
	lead := len(val) - len(strings.TrimLeft(val, " \t"))
	val = val[lead:]
	valCol := pos.Col + (len(body) - len(rest)) + 1 + lead
	e.ValPos = config.Pos{File: pos.File, Line: pos.Line, Col: valCol}
	if strings.HasPrefix(val, `"`) {
		s, end, ok := quoted(val)
		if !ok {
			p.errorf(e.ValPos, "%s: unterminated quoted string", e.Key)
			return nil, true
		}
		if after := strings.TrimSpace(val[end:]); after != "" && after[0] != '#' {
			p.errorf(config.Pos{File: pos.File, Line: pos.Line, Col: valCol + end}, "%s: unexpected text %q after the closing quote", e.Key, clip(after))
			return nil, true
		}
		e.Value, e.Quoted = s, true
		return e, true
	}
	if h := strings.IndexByte(val, '#'); h >= 0 {
		val = val[:h]
	}
	e.Value = strings.TrimRight(val, " \t")
	if strings.ContainsRune(e.Value, '"') {
		p.errorf(e.ValPos, "%s: stray quote in unquoted value %q", e.Key, clip(e.Value))
		return nil, true
	}
	return e, true
}

// quoted reads a double-quoted string at the start of s and returns its
// content with escapes kept as written, and the offset after the closing
// quote.
func quoted(s string) (string, int, bool) {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++ // the next character is escaped, whatever it is
		case '"':
			return s[1:i], i + 1, true
		}
	}
	return "", 0, false
}

// open parses "KIND NAME {". It reports an error and returns ok false for
// any other line.
func (p *parser) open(body string, pos config.Pos) (*Block, bool) {
	if h := strings.IndexByte(body, '#'); h >= 0 {
		body = strings.TrimRight(body[:h], " \t")
	}
	if !strings.HasSuffix(body, "{") {
		word := body
		if f := strings.Fields(body); len(f) > 0 {
			word = f[0]
		}
		p.errorf(pos, "expected \"key = value\" or \"virtual NAME {\", got %q", clip(word))
		return nil, false
	}
	f := strings.Fields(strings.TrimSuffix(body, "{"))
	switch {
	case len(f) == 0:
		p.errorf(pos, "block \"{\" without a kind and name before it")
	case len(f) == 1:
		p.errorf(pos, "%s block needs a name (%s NAME {)", f[0], f[0])
	case len(f) > 2:
		p.errorf(pos, "%s block name must be one word, got %q", f[0], clip(strings.Join(f[1:], " ")))
	default:
		for i := 0; i < len(f[0]); i++ {
			if !isKeyChar(f[0][i]) {
				p.errorf(pos, "expected \"key = value\" or \"virtual NAME {\", got %q", clip(f[0]))
				return &Block{Kind: "?", Name: f[1], Pos: pos}, true
			}
		}
		return &Block{Kind: f[0], Name: f[1], Pos: pos}, true
	}
	// Still open a block so that its "}" does not close the parent.
	return &Block{Kind: "?", Pos: pos}, true
}

// clip shortens text quoted in messages.
func clip(s string) string {
	const max = 40
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
