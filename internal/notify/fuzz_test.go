package notify

import (
	"strings"
	"testing"
)

// quote renders words so that ParseCommand splits them back.
func quote(words []string) string {
	out := make([]string, len(words))
	for i, w := range words {
		var b strings.Builder
		for i := 0; i < len(w); i++ {
			if c := w[i]; c == ' ' || c == '\t' || c == '\'' || c == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(w[i])
		}
		if w == "" {
			b.WriteString("''")
		}
		out[i] = b.String()
	}
	return strings.Join(out, " ")
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"/bin/x 'a b' c", `/bin/x a\ b`, "", "'", "/bin/sh -c 'echo $1'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCommand(s, "", "")
		if err != nil {
			return
		}
		words := append([]string{c.Path}, c.Args...)
		c2, err := ParseCommand(quote(words), "", "")
		if err != nil {
			t.Fatalf("re-parse of %q: %v", quote(words), err)
		}
		if got := append([]string{c2.Path}, c2.Args...); strings.Join(got, "\x00") != strings.Join(words, "\x00") {
			t.Fatalf("round trip %q -> %q -> %q", s, words, got)
		}
	})
}
