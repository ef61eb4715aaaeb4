package health

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDefaults(t *testing.T) {
	target := netip.MustParseAddrPort("10.0.0.1:80")
	tests := []struct {
		kind                     Kind
		retry                    int
		delayBeforeRetry, warmup time.Duration
	}{
		{TCP, 1, time.Second, 60 * time.Second},
		{HTTPGet, 1, 3 * time.Second, 60 * time.Second},
		{SSLGet, 1, 3 * time.Second, 60 * time.Second},
		{Misc, 0, time.Second, 60 * time.Second},
		{DNS, 3, 60 * time.Second, 60 * time.Second},
		{UDP, 1, time.Second, 60 * time.Second},
		{File, 0, time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			s := Spec{Kind: tt.kind, Target: target}.Defaults()
			if *s.Retry != tt.retry || s.DelayBeforeRetry != tt.delayBeforeRetry || *s.Warmup != tt.warmup {
				t.Errorf("retry %d dbr %v warmup %v, want %d %v %v", *s.Retry, s.DelayBeforeRetry, *s.Warmup, tt.retry, tt.delayBeforeRetry, tt.warmup)
			}
			if s.ConnectTimeout != 5*time.Second || s.Rise != 1 || s.Fall != 1 {
				t.Errorf("connect_timeout %v rise %d fall %d", s.ConnectTimeout, s.Rise, s.Fall)
			}
		})
	}
	h := Spec{Kind: HTTPGet, Target: target, HTTP: &HTTPSpec{URLs: []URLSpec{{Digest: "ABC"}}}}.Defaults()
	want := &HTTPSpec{Protocol: "1.0", URLs: []URLSpec{{Path: "/", Digest: "abc", StatusCodes: []StatusRange{{200, 299}}}}}
	if diff := cmp.Diff(want, h.HTTP); diff != "" {
		t.Errorf("http defaults (-want +got):\n%s", diff)
	}
	d := Spec{Kind: DNS, Target: target}.Defaults()
	if d.DNS.Type != "SOA" || d.DNS.Name != "." {
		t.Errorf("dns defaults %+v", d.DNS)
	}
	u := Spec{Kind: UDP, Target: target}.Defaults()
	if u.UDP.MaxReplyLength != 255 {
		t.Errorf("udp max_reply_length %d", u.UDP.MaxReplyLength)
	}
	// explicit zero values survive
	z := Spec{Kind: TCP, Target: target, Retry: intp(0), Warmup: durp(0)}.Defaults()
	if *z.Retry != 0 || *z.Warmup != 0 {
		t.Errorf("explicit zeros lost: retry %d warmup %v", *z.Retry, *z.Warmup)
	}
}

func TestValidate(t *testing.T) {
	target := netip.MustParseAddrPort("10.0.0.1:80")
	tests := []struct {
		name string
		spec Spec
		want string // substring; "" = valid
	}{
		{"tcp ok", Spec{Kind: TCP, Target: target}, ""},
		{"no port", Spec{Kind: TCP, Target: netip.MustParseAddrPort("10.0.0.1:0")}, "no port"},
		{"connect_port", Spec{Kind: TCP, Target: netip.MustParseAddrPort("10.0.0.1:0"), ConnectPort: 8080}, ""},
		{"ping without port", Spec{Kind: Ping, Target: netip.MustParseAddrPort("10.0.0.1:0")}, ""},
		{"family mismatch", Spec{Kind: TCP, Target: target, BindTo: netip.MustParseAddr("::1")}, "different families"},
		{"http protocol", Spec{Kind: HTTPGet, Target: target, HTTP: &HTTPSpec{Protocol: "2"}}, "http_protocol"},
		{"bad digest", Spec{Kind: HTTPGet, Target: target, HTTP: &HTTPSpec{URLs: []URLSpec{{Digest: "xyz"}}}}, "digest"},
		{"bad status", Spec{Kind: HTTPGet, Target: target, HTTP: &HTTPSpec{URLs: []URLSpec{{StatusCodes: []StatusRange{{300, 200}}}}}}, "status_code"},
		{"bad regex", Spec{Kind: HTTPGet, Target: target, HTTP: &HTTPSpec{URLs: []URLSpec{{Regex: "("}}}}, "regex"},
		{"misc empty", Spec{Kind: Misc, Misc: &MiscSpec{}}, "misc_path"},
		{"misc ok", Spec{Kind: Misc, Misc: &MiscSpec{Path: "/bin/true"}}, ""},
		{"udp pattern", Spec{Kind: UDP, Target: target, UDP: &UDPSpec{ReplyPattern: "zz"}}, "require_reply"},
		{"dns type", Spec{Kind: DNS, Target: target, DNS: &DNSSpec{Type: "PTR"}}, "type"},
		{"file", Spec{Kind: File, File: &FileSpec{}}, "track_file"},
		{"expect regex", Spec{Kind: SendExpect, Target: target, SendExpect: &SendExpectSpec{Expect: "(", UseRegex: true}}, "expect regex"},
		{"unknown", Spec{Kind: "FOO", Target: target}, "unknown"},
		{"negative retry", Spec{Kind: TCP, Target: target, Retry: intp(-1)}, "retry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.spec.Defaults()
			err := s.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("unexpected error %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("error %v, want one containing %q", err, tt.want)
			case err != nil && !errors.Is(err, ErrInvalid):
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
		})
	}
}

func TestParseHexPattern(t *testing.T) {
	tests := []struct {
		in         string
		want, mask []byte
		err        bool
	}{
		// keepalived.conf(5) example
		{in: "Ab12f 3 456 546443123", want: []byte{0xab, 0x12, 0x0f, 0x03, 0x45, 0x06, 0x54, 0x64, 0x43, 0x12, 0x03},
			mask: []byte{0xff, 0xff, 0x0f, 0x0f, 0xff, 0x0f, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{in: "aXxb", want: []byte{0xa0, 0x0b}, mask: []byte{0xf0, 0x0f}},
		{in: "", want: nil, mask: nil},
		{in: "0g", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			w, m, err := ParseHexPattern(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("err %v", err)
			}
			if diff := cmp.Diff(tt.want, w); diff != "" {
				t.Errorf("want (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.mask, m); diff != "" {
				t.Errorf("mask (-want +got):\n%s", diff)
			}
		})
	}
	w, m, _ := ParseHexPattern("01 XX 03")
	for _, tt := range []struct {
		reply []byte
		ok    bool
	}{
		{[]byte{1, 0xee, 3, 9}, true},
		{[]byte{1, 0}, true}, // compared up to the shorter length
		{[]byte{2, 0, 3}, false},
	} {
		if got := matchPattern(tt.reply, w, m); got != tt.ok {
			t.Errorf("match % x = %v, want %v", tt.reply, got, tt.ok)
		}
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`GET / HTTP/1.0\r\n\r\n`: "GET / HTTP/1.0\r\n\r\n",
		`a\tb\\c\"d`:             "a\tb\\c\"d",
		`quit`:                   "quit",
		`trail\`:                 `trail\`,
	} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseStatusCodes(t *testing.T) {
	got, err := ParseStatusCodes([]string{"200", "300-399", "503"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]StatusRange{{200, 200}, {300, 399}, {503, 503}}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := ParseStatusCodes([]string{"299-200"}); err == nil {
		t.Error("want error for reversed range")
	}
}

func TestExpandArgs(t *testing.T) {
	got := ExpandArgs([]string{"-H", "%h", "-p", "%p", "x%hy"}, netip.MustParseAddrPort("[2001:db8::1]:443"))
	want := []string{"-H", "2001:db8::1", "-p", "443", "x2001:db8::1y"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
