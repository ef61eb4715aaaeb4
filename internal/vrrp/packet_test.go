package vrrp

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var cmpAddr = cmpopts.EquateComparable(netip.Addr{})

func TestAdvertRoundTrip(t *testing.T) {
	v4a, v4b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("224.0.0.18")
	v6a, v6b := netip.MustParseAddr("fe80::1"), netip.MustParseAddr("ff02::12")
	tests := []struct {
		name     string
		a        Advert
		src, dst netip.Addr
		wantLen  int
	}{
		{"v2 pass", Advert{Version: 2, VRID: 20, Priority: 150, Interval: 1, AuthType: AuthPass, AuthData: authPassData("secret"),
			Addrs: []netip.Addr{netip.MustParseAddr("172.26.127.20")}}, v4a, v4b, 8 + 4 + 8},
		{"v2 none two addrs", Advert{Version: 2, VRID: 1, Priority: 100, Interval: 3,
			Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")}}, v4a, v4b, 8 + 8 + 8},
		{"v3 ipv4", Advert{Version: 3, VRID: 7, Priority: 255, Interval: 10,
			Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}, v4a, v4b, 8 + 4},
		{"v3 ipv6", Advert{Version: 3, VRID: 7, Priority: 1, Interval: 4095,
			Addrs: []netip.Addr{netip.MustParseAddr("fe80::100"), netip.MustParseAddr("2001:db8::100")}}, v6a, v6b, 8 + 32},
		{"v3 no addrs", Advert{Version: 3, VRID: 9, Priority: 0, Interval: 100, Addrs: []netip.Addr{}}, v4a, v4b, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.a.Marshal(tt.src, tt.dst)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != tt.wantLen {
				t.Fatalf("len %d want %d", len(b), tt.wantLen)
			}
			got, err := ParseAdvert(b, tt.src.Is6(), tt.src, tt.dst, false)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.a, got, cmpAddr); diff != "" {
				t.Fatalf("(-want +got)\n%s", diff)
			}
			// Every single-bit flip in the checksummed range is caught.
			for i := range len(b) * 8 {
				c := append([]byte(nil), b...)
				c[i/8] ^= 1 << (i % 8)
				if _, err := ParseAdvert(c, tt.src.Is6(), tt.src, tt.dst, false); err == nil {
					t.Fatalf("bit %d flip accepted", i)
				}
			}
			if tt.a.Version == 3 {
				// The pseudo-header matters: another destination fails.
				other := netip.MustParseAddr("192.0.2.99")
				if tt.src.Is6() {
					other = netip.MustParseAddr("fe80::99")
				}
				_, err := ParseAdvert(b, tt.src.Is6(), tt.src, other, false)
				var pe *ParseError
				if !errors.As(err, &pe) || pe.Reason != DropChecksum {
					t.Fatalf("wrong pseudo-header: err %v", err)
				}
			}
		})
	}
}

// TestVRRPv2Bytes checks the wire layout against RFC 3768 §5.1 field by
// field.
func TestVRRPv2Bytes(t *testing.T) {
	a := Advert{Version: 2, VRID: 51, Priority: 100, Interval: 1, AuthType: AuthPass, AuthData: authPassData("1111"),
		Addrs: []netip.Addr{netip.MustParseAddr("192.168.1.10")}}
	b, err := a.Marshal(netip.Addr{}, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	want := "21336401" + "0101" + "XXXX" + "c0a8010a" + "3131313100000000"
	got := hex.EncodeToString(b)
	if got[:12] != want[:12] || got[16:] != want[16:] {
		t.Fatalf("got %s want %s", got, want)
	}
	// RFC 1071 check: the one's complement sum over the message is 0xffff.
	var s uint32
	for i := 0; i < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	if s != 0xffff {
		t.Fatalf("checksum does not verify: sum %#x", s)
	}
}

func TestParseErrors(t *testing.T) {
	src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("224.0.0.18")
	good, _ := (&Advert{Version: 2, VRID: 1, Priority: 100, Interval: 1, Addrs: []netip.Addr{src}}).Marshal(src, dst)
	tests := []struct {
		name string
		b    []byte
		v6   bool
		want DropReason
	}{
		{"empty", nil, false, DropShort},
		{"short", good[:7], false, DropShort},
		{"truncated", good[:len(good)-1], false, DropLength},
		{"trailing", append(append([]byte(nil), good...), 0), false, DropLength},
		{"type", append([]byte{0x22}, good[1:]...), false, DropType},
		{"version", append([]byte{0x41}, good[1:]...), false, DropVersion},
		{"v2 over v6", good, true, DropFamily},
		{"zero interval", func() []byte { c := append([]byte(nil), good...); c[5] = 0; return c }(), false, DropInterval},
		{"checksum", func() []byte { c := append([]byte(nil), good...); c[6]++; return c }(), false, DropChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseAdvert(tt.b, tt.v6, src, dst, false)
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Reason != tt.want {
				t.Fatalf("err %v, want %s", err, tt.want)
			}
		})
	}
}

// TestKeepalivedCaptures decodes adverts captured from keepalived 2.2.7
// (testdata/keepalived-*.hex: "src dst hex" per line, written by the
// interop test with -update-captures).
func TestKeepalivedCaptures(t *testing.T) {
	files, _ := filepath.Glob("testdata/keepalived-*.hex")
	if len(files) == 0 {
		t.Skip("no captures in testdata")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			fs := strings.Fields(line)
			if len(fs) != 3 {
				t.Fatalf("%s:%d: bad line", f, i+1)
			}
			src, dst := netip.MustParseAddr(fs[0]), netip.MustParseAddr(fs[1])
			b, err := hex.DecodeString(fs[2])
			if err != nil {
				t.Fatal(err)
			}
			a, err := ParseAdvert(b, src.Is6(), src, dst, false)
			if err != nil {
				t.Fatalf("%s:%d: %v", f, i+1, err)
			}
			re, err := a.Marshal(src, dst)
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(re) != fs[2] {
				t.Fatalf("%s:%d: re-encoded\n%x\nwant\n%s", f, i+1, re, fs[2])
			}
		}
	}
}

func FuzzParseAdvert(f *testing.F) {
	src4, dst4 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("224.0.0.18")
	src6, dst6 := netip.MustParseAddr("fe80::1"), netip.MustParseAddr("ff02::12")
	for _, a := range []struct {
		adv      Advert
		src, dst netip.Addr
	}{
		{Advert{Version: 2, VRID: 1, Priority: 100, Interval: 1, AuthType: 1, AuthData: authPassData("pw"), Addrs: []netip.Addr{src4}}, src4, dst4},
		{Advert{Version: 3, VRID: 2, Priority: 255, Interval: 100, Addrs: []netip.Addr{src4, dst4}}, src4, dst4},
		{Advert{Version: 3, VRID: 3, Priority: 50, Interval: 10, Addrs: []netip.Addr{src6}}, src6, dst6},
	} {
		b, err := a.adv.Marshal(a.src, a.dst)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, a.src.Is6())
	}
	f.Add([]byte{}, false)
	f.Add([]byte{0x31, 0, 0, 0xff, 0, 0, 0, 0}, true)
	// Adverts captured from keepalived (addresses differ, so they
	// exercise the checksum path).
	files, _ := filepath.Glob("testdata/keepalived-*.hex")
	for _, name := range files {
		data, _ := os.ReadFile(name)
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			if fs := strings.Fields(line); len(fs) == 3 {
				if b, err := hex.DecodeString(fs[2]); err == nil {
					f.Add(b, strings.Contains(fs[0], ":"))
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, v6 bool) {
		src, dst := src4, dst4
		if v6 {
			src, dst = src6, dst6
		}
		a, err := ParseAdvert(b, v6, src, dst, false)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Reason == "" {
				t.Fatalf("error without a drop reason: %v", err)
			}
			return
		}
		// Accepted packets re-encode to an equal advert.
		re, err := a.Marshal(src, dst)
		if err != nil {
			t.Fatalf("re-marshal: %v", err)
		}
		b2, err := ParseAdvert(re, v6, src, dst, false)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if diff := cmp.Diff(a, b2, cmpAddr); diff != "" {
			t.Fatalf("round trip (-first +second)\n%s", diff)
		}
		// The machine drops or accepts it without panicking.
		m, err := NewMachine(baseConfig(), localIP, nil)
		if err != nil {
			t.Fatal(err)
		}
		m.Step(EventStartup{}, t0)
		m.Step(EventAdvert{Src: src, TTL: 255, Advert: a}, t0)
	})
}

// TestMarshalAddressFamily: an advert takes addresses of its own family;
// an IPv6 advert may carry an IPv4-mapped address, which round-trips as
// its 16 bytes (the fuzzer found a peer's such advert could not be
// re-encoded).
func TestMarshalAddressFamily(t *testing.T) {
	v4 := netip.MustParseAddr("192.0.2.1")
	v6 := netip.MustParseAddr("2001:db8::1")
	mapped := netip.MustParseAddr("::ffff:192.0.2.1")
	src4, dst4 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("224.0.0.18")
	src6, dst6 := netip.MustParseAddr("fe80::1"), netip.MustParseAddr("ff02::12")
	for _, c := range []struct {
		src, dst netip.Addr
		addr     netip.Addr
		ok       bool
	}{
		{src4, dst4, v4, true},
		{src4, dst4, mapped, true},
		{src4, dst4, v6, false},
		{src6, dst6, v6, true},
		{src6, dst6, mapped, true},
		{src6, dst6, v4, false},
	} {
		a := Advert{Version: 3, VRID: 1, Priority: 100, Interval: 100, Addrs: []netip.Addr{c.addr}}
		b, err := a.Marshal(c.src, c.dst)
		if (err == nil) != c.ok {
			t.Errorf("%s in an advert from %s: err %v, want ok=%v", c.addr, c.src, err, c.ok)
			continue
		}
		if err != nil {
			continue
		}
		got, err := ParseAdvert(b, c.src.Is6() && !c.src.Is4In6(), c.src, c.dst, false)
		if err != nil {
			t.Fatalf("%s: parse: %v", c.addr, err)
		}
		want := c.addr
		if c.src.Is4() {
			want = c.addr.Unmap()
		}
		if got.Addrs[0] != want {
			t.Errorf("%s from %s: parsed back as %s, want %s", c.addr, c.src, got.Addrs[0], want)
		}
	}
}

// TestAdvertLen: keepalived's vrrp_adv_len: IPv4 header, AH header,
// VRRP header, addresses, VRRPv2 authentication data; IPv6 without the
// IP header.
func TestAdvertLen(t *testing.T) {
	v4 := []VirtualIP{{Prefix: netip.MustParsePrefix("10.0.0.1/32")}, {Prefix: netip.MustParsePrefix("10.0.0.2/32")}}
	v6 := []VirtualIP{{Prefix: netip.MustParsePrefix("2001:db8::1/128")}}
	for _, tc := range []struct {
		c    InstanceConfig
		want int
	}{
		{InstanceConfig{Version: 2, VirtualIPs: v4}, 20 + 8 + 8 + 8},
		{InstanceConfig{Version: 2, AuthAH: true, VirtualIPs: v4}, 20 + 24 + 8 + 8 + 8},
		{InstanceConfig{Version: 3, VirtualIPs: v4}, 20 + 8 + 8},
		{InstanceConfig{Version: 3, VirtualIPs: v6}, 8 + 16},
	} {
		if got := AdvertLen(&tc.c); got != tc.want {
			t.Errorf("%+v: %d, want %d", tc.c, got, tc.want)
		}
	}
}
