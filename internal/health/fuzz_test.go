package health

import "testing"

func FuzzParseHexPattern(f *testing.F) {
	for _, s := range []string{"Ab12f 3 456 546443123", "XX 0a", "", "zz", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, mask, err := ParseHexPattern(s)
		if err != nil {
			return
		}
		if len(want) != len(mask) {
			t.Fatalf("%q: %d bytes, %d mask bytes", s, len(want), len(mask))
		}
		for i := range want {
			if want[i]&^mask[i] != 0 {
				t.Fatalf("%q: value bits outside the mask at %d", s, i)
			}
		}
		if !matchPattern(want, want, mask) {
			t.Fatalf("%q: pattern does not match itself", s)
		}
	})
}

func FuzzUnescape(f *testing.F) {
	for _, s := range []string{`GET / HTTP/1.0\r\n\r\n`, `\\`, `\`, `a\qb`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := Unescape(s); len(got) > len(s) {
			t.Fatalf("Unescape(%q) grew to %q", s, got)
		}
	})
}
