package config

import (
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Argument helpers used by the builder. Each reports a diagnostic naming
// the word's position and returns ok=false on bad input.

type builder struct {
	d       *diagList
	cfg     *Config
	ruleSeq int // rules read so far (Rule.seq)
}

func (b *builder) args(n *Node, min, max int) bool {
	got := len(n.Words) - 1
	if got >= min && (max < 0 || got <= max) {
		return true
	}
	switch {
	case min == max && min == 0:
		b.d.errorf(n.Pos, "%s takes no arguments", n.Keyword())
	case min == max:
		b.d.errorf(n.Pos, "%s takes %d argument%s, got %d", n.Keyword(), min, plural(min), got)
	case max < 0:
		b.d.errorf(n.Pos, "%s takes at least %d argument%s, got %d", n.Keyword(), min, plural(min), got)
	default:
		b.d.errorf(n.Pos, "%s takes %d to %d arguments, got %d", n.Keyword(), min, max, got)
	}
	return false
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// noBlock reports a block given to a keyword that takes none.
func (b *builder) noBlock(n *Node) bool {
	if n.HasBlock {
		b.d.errorf(n.Pos, "%s does not take a block", n.Keyword())
		return false
	}
	return true
}

// blockWords is every word of n's block, line after line (a list such
// as group { A B } or notification_email { … }); nil, with a
// diagnostic, when n has no block.
func (b *builder) blockWords(n *Node) []string {
	if !b.needBlock(n) {
		return nil
	}
	var out []string
	for _, e := range n.Block {
		for _, w := range e.Words {
			out = append(out, w.Text)
		}
	}
	return out
}

func (b *builder) needBlock(n *Node) bool {
	if !n.HasBlock {
		b.d.errorf(n.Pos, "%s needs a block { ... }", n.Keyword())
		return false
	}
	return true
}

// one returns the single argument of n.
func (b *builder) one(n *Node) (Word, bool) {
	if !b.noBlock(n) || !b.args(n, 1, 1) {
		return Word{}, false
	}
	return n.Words[1], true
}

// words appends the statement's words (one or more) to dst.
func (b *builder) words(n *Node, dst *[]string) {
	if b.noBlock(n) && b.args(n, 1, -1) {
		for _, w := range n.Words[1:] {
			*dst = append(*dst, w.Text)
		}
	}
}

func (b *builder) str(n *Node, dst *string) {
	if w, ok := b.one(n); ok {
		*dst = w.Text
	}
}

// rest joins all arguments (for scripts given unquoted with arguments).
func (b *builder) rest(n *Node, dst *string) {
	if !b.noBlock(n) || !b.args(n, 1, -1) {
		return
	}
	*dst = joinWords(n.Words[1:])
}

func joinWords(ws []Word) string {
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = w.Text
	}
	return strings.Join(parts, " ")
}

func (b *builder) flag(n *Node, dst *bool) {
	if !b.noBlock(n) {
		return
	}
	if len(n.Words) == 1 {
		*dst = true
		return
	}
	if len(n.Words) == 2 {
		switch strings.ToLower(n.Words[1].Text) {
		case "true", "on", "yes", "1":
			*dst = true
			return
		case "false", "off", "no", "0":
			*dst = false
			return
		}
	}
	b.d.errorf(n.Pos, "%s takes no argument (or one of on/off)", n.Keyword())
}

func (b *builder) flagPtr(n *Node, dst **bool) {
	var v bool
	b.flag(n, &v)
	*dst = &v
}

// u32Word reads an unsigned 32-bit number of at least min (fwmarks): an
// int cannot hold all of them on 32-bit systems.
func (b *builder) u32Word(w Word, what string, min uint32) (uint32, bool) {
	v, err := strconv.ParseUint(w.Text, 10, 32)
	if err != nil {
		b.d.errorf(w.Pos, "%s: %q is not a number in %d..4294967295", what, w.Text, min)
		return 0, false
	}
	if uint32(v) < min {
		b.d.errorf(w.Pos, "%s %d out of range %d..4294967295", what, v, min)
		return 0, false
	}
	return uint32(v), true
}

func (b *builder) intWord(w Word, what string, min, max int) (int, bool) {
	v, err := strconv.Atoi(w.Text)
	if err != nil {
		b.d.errorf(w.Pos, "%s: %q is not an integer", what, w.Text)
		return 0, false
	}
	if v < min || v > max {
		b.d.errorf(w.Pos, "%s %d out of range %d..%d", what, v, min, max)
		return 0, false
	}
	return v, true
}

func (b *builder) intv(n *Node, min, max int, dst *int) {
	if w, ok := b.one(n); ok {
		if v, ok := b.intWord(w, n.Keyword(), min, max); ok {
			*dst = v
		}
	}
}

func (b *builder) intPtr(n *Node, min, max int, dst **int) {
	var v int
	if w, ok := b.one(n); ok {
		if v2, ok := b.intWord(w, n.Keyword(), min, max); ok {
			v = v2
			*dst = &v
		}
	}
}

// durWord reads seconds, possibly fractional ("0.5").
// MaxDurationSeconds bounds every duration of the configuration.
const MaxDurationSeconds = 10_000_000

func (b *builder) durWord(w Word, what string) (Duration, bool) {
	f, err := strconv.ParseFloat(w.Text, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		b.d.errorf(w.Pos, "%s: %q is not a number of seconds", what, w.Text)
		return 0, false
	}
	if f < 0 || f > MaxDurationSeconds {
		b.d.errorf(w.Pos, "%s %s out of range 0..%d seconds", what, w.Text, MaxDurationSeconds)
		return 0, false
	}
	return Duration(time.Duration(math.Round(f * float64(time.Second)))), true
}

func (b *builder) dur(n *Node, dst *Duration) {
	if w, ok := b.one(n); ok {
		if v, ok := b.durWord(w, n.Keyword()); ok {
			*dst = v
		}
	}
}

func (b *builder) durPtr(n *Node, dst **Duration) {
	if w, ok := b.one(n); ok {
		if v, ok := b.durWord(w, n.Keyword()); ok {
			*dst = &v
		}
	}
}

func (b *builder) addrWord(w Word, what string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(w.Text)
	if err != nil || a.Zone() != "" && !a.Is6() {
		b.d.errorf(w.Pos, "%s: %q is not an IP address", what, w.Text)
		return netip.Addr{}, false
	}
	return a, true
}

func (b *builder) addr(n *Node, dst *netip.Addr) {
	if w, ok := b.one(n); ok {
		if a, ok := b.addrWord(w, n.Keyword()); ok {
			*dst = a
		}
	}
}

func (b *builder) portWord(w Word, what string) (uint16, bool) {
	v, ok := b.intWord(w, what, 0, 65535)
	return uint16(v), ok
}

func (b *builder) port(n *Node, dst *uint16) {
	if w, ok := b.one(n); ok {
		if p, ok := b.portWord(w, n.Keyword()); ok {
			*dst = p
		}
	}
}

// script reads "SCRIPT [USER [GROUP]]" as keepalived does: a script with
// arguments must be quoted; the words after it are the user and group to
// run it as.
func (b *builder) script(n *Node) *Script {
	if !b.noBlock(n) || !b.args(n, 1, 3) {
		return nil
	}
	s := &Script{Pos: n.Words[1].Pos, Cmd: n.Words[1].Text}
	if len(n.Words) >= 3 {
		s.User = joinWords(n.Words[2:])
	}
	return s
}

// portList parses "80", "80,443", "8000-8100" and combinations.
func (b *builder) portList(w Word) ([]PortRange, bool) {
	var out []PortRange
	for _, part := range strings.Split(w.Text, ",") {
		from, to, isRange := strings.Cut(part, "-")
		f, err1 := strconv.Atoi(from)
		t := f
		var err2 error
		if isRange {
			t, err2 = strconv.Atoi(to)
		}
		if err1 != nil || err2 != nil || f < 0 || f > 65535 || t < 0 || t > 65535 {
			b.d.errorf(w.Pos, "%q is not a port, port list or port range (e.g. 80, 80,443 or 8000-8100)", w.Text)
			return nil, false
		}
		if t < f {
			b.d.errorf(w.Pos, "port range %q runs backwards", part)
			return nil, false
		}
		out = append(out, PortRange{uint16(f), uint16(t)})
	}
	return out, true
}

// umaskBits are the names keepalived's umask takes besides a number.
var umaskBits = map[string]uint32{
	"IRUSR": 0o400, "IWUSR": 0o200, "IXUSR": 0o100, "IRGRP": 0o40, "IWGRP": 0o20, "IXGRP": 0o10,
	"IROTH": 0o4, "IWOTH": 0o2, "IXOTH": 0o1,
}

// umask reads keepalived's umask: an octal number, or bit names joined
// with "|" (IRGRP | IWGRP ...).
func (b *builder) umask(n *Node, dst **uint32) {
	if !b.noBlock(n) || !b.args(n, 1, -1) {
		return
	}
	text := strings.Join(strings.Fields(joinWords(n.Words[1:])), "")
	var v uint32
	if u, err := strconv.ParseUint(text, 8, 32); err == nil && u <= 0o777 {
		v = uint32(u)
	} else {
		for _, name := range strings.Split(text, "|") {
			bit, ok := umaskBits[strings.ToUpper(name)]
			if !ok {
				b.d.errorf(n.Pos, "umask: %q is neither an octal mask (e.g. 0177) nor bit names such as IWGRP | IWOTH", text)
				return
			}
			v |= bit
		}
	}
	*dst = &v
}

// warnUnsupported reports a keyword govs does not act on.
func (b *builder) unsupported(n *Node, where string) {
	if where == "" {
		b.d.warnf(n.Pos, "unsupported keyword %q", n.Keyword())
		return
	}
	b.d.warnf(n.Pos, "unsupported keyword %q in %s", n.Keyword(), where)
}

// garpExtraIf reads `[all] SECS` (min..86400 s) of garp_extra_if.
func (b *builder) garpExtraIf(n *Node, min int, dst **GarpExtraIf) {
	if !b.noBlock(n) || !b.args(n, 1, 2) {
		return
	}
	g := &GarpExtraIf{}
	secs := false
	for _, w := range n.Args() {
		if w.Text == "all" && !g.All {
			g.All = true
			continue
		}
		v, ok := b.intWord(w, n.Keyword(), min, 86400)
		if !ok {
			return
		}
		g.Interval, secs = Duration(time.Duration(v)*time.Second), true
	}
	if !secs {
		b.d.errorf(n.Pos, "%s needs a number of seconds", n.Keyword())
		return
	}
	*dst = g
}

// garpSetting reads one GARP setting, named kw without its vrrp_ prefix,
// into g.
func (b *builder) garpSetting(n *Node, kw string, g *GarpSettings) {
	switch kw {
	case "garp_master_delay":
		b.durPtr(n, &g.GarpMasterDelay)
	case "garp_master_repeat":
		b.intPtr(n, 0, 1<<16, &g.GarpMasterRepeat)
	case "garp_master_refresh":
		b.durPtr(n, &g.GarpMasterRefresh)
	case "garp_master_refresh_repeat":
		b.intPtr(n, 0, 1<<16, &g.GarpMasterRefreshRepeat)
	case "garp_lower_prio_delay":
		b.durPtr(n, &g.GarpLowerPrioDelay)
	case "garp_lower_prio_repeat":
		b.intPtr(n, 0, 1<<16, &g.GarpLowerPrioRepeat)
	}
}
