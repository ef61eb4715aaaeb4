package connsync

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// A record laid out by hand from struct ip_vs_sync_v4 and the version 1
// header (net/netfilter/ipvs/ip_vs_sync.c): the encoder must produce
// these exact bytes.
func TestEncodeKernelLayout(t *testing.T) {
	e := Entry{
		Proto: 6, Flags: FlagDRoute, State: 1,
		Client: ap("10.0.0.1:40000"), Virtual: ap("10.0.0.100:80"), Real: ap("10.0.0.11:8080"),
		FWMark: 7, Timeout: 900,
	}
	msgs, err := Encode(5, []Entry{e}, 1472)
	if err != nil {
		t.Fatal(err)
	}
	want := "" +
		"00" + "05" + "002c" + // reserved, syncid, size 44
		"01" + "01" + "0000" + // one record, version 1, spare
		"00" + "06" + "0024" + // type IPv4, TCP, version 0 | size 36
		"00000003" + // flags: IP_VS_CONN_F_DROUTE
		"0001" + "9c40" + // state ESTABLISHED, cport 40000
		"0050" + "1f90" + // vport 80, dport 8080
		"00000007" + "00000384" + // fwmark 7, timeout 900
		"0a000001" + "0a000064" + "0a00000b" // caddr, vaddr, daddr
	if got := hex.EncodeToString(msgs[0]); len(msgs) != 1 || got != want {
		t.Fatalf("got %d messages, first\n%s\nwant\n%s", len(msgs), got, want)
	}
}

func TestRoundTrip(t *testing.T) {
	in := []Entry{
		{Proto: 6, Flags: FlagDRoute, State: 1, Client: ap("10.0.0.1:40000"), Virtual: ap("10.0.0.100:80"), Real: ap("10.0.0.11:80"), Timeout: 900},
		{Proto: 17, Flags: FlagMasq | FlagInactive, Client: ap("10.0.0.2:53"), Virtual: ap("10.0.0.100:53"), Real: ap("10.0.0.12:5353"), Timeout: 300,
			Local: ap("10.0.0.3:61000")},
		{Proto: 6, Flags: FlagTunnel | FlagInactive, State: 4, Client: ap("[2001:db8::1]:1234"), Virtual: ap("[2001:db8::100]:443"), Real: ap("[2001:db8::11]:443"), Timeout: 120},
		{Proto: 6, Flags: FlagMasq, State: 1, Client: ap("[2001:db8::1]:1234"), Virtual: ap("[2001:db8::100]:443"), Real: ap("[2001:db8::11]:443"), Timeout: 900,
			Local: ap("[2001:db8::3]:40001")},
		{Proto: 6, Flags: FlagDRoute | FlagTemplate | FlagNoCPort, Client: ap("10.0.0.0:0"), Virtual: ap("10.0.0.100:80"), Real: ap("10.0.0.11:80"), Timeout: 360},
	}
	msgs, err := Encode(0, in, 1472)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	m, err := Decode(msgs[0])
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m.Entries, in) || m.Skipped != 0 {
		t.Fatalf("decoded\n%+v\nwant\n%+v", m.Entries, in)
	}
}

// Messages are cut at the maximum length and at 255 records.
func TestEncodeSplits(t *testing.T) {
	var in []Entry
	for i := range 600 {
		in = append(in, Entry{Proto: 6, Flags: FlagDRoute, State: 1,
			Client:  netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), uint16(i)),
			Virtual: ap("10.0.0.100:80"), Real: ap("10.0.0.11:80"), Timeout: 900})
	}
	for _, maxLen := range []int{200, 1472, 65000} {
		msgs, err := Encode(1, in, maxLen)
		if err != nil {
			t.Fatal(err)
		}
		var out []Entry
		for _, b := range msgs {
			if len(b) > maxLen {
				t.Fatalf("maxlen %d: message of %d bytes", maxLen, len(b))
			}
			m, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if m.SyncID != 1 || len(m.Entries) > 255 {
				t.Fatalf("sync id %d, %d records", m.SyncID, len(m.Entries))
			}
			out = append(out, m.Entries...)
		}
		if !reflect.DeepEqual(out, in) {
			t.Fatalf("maxlen %d: %d records back of %d", maxLen, len(out), len(in))
		}
		wantMsgs := map[int]int{200: 600 / 5, 1472: 600 / 40, 65000: 3}[maxLen]
		if len(msgs) != wantMsgs {
			t.Errorf("maxlen %d: %d messages, want %d", maxLen, len(msgs), wantMsgs)
		}
	}
	if _, err := Encode(0, in, 50); err == nil {
		t.Error("a maximum length under one record was accepted")
	}
	bad := []Entry{{Proto: 6, Client: ap("10.0.0.1:1"), Virtual: ap("[2001:db8::1]:80"), Real: ap("10.0.0.2:80")}}
	if _, err := Encode(0, bad, 1472); err == nil || !strings.Contains(err.Error(), "different families") {
		t.Errorf("mixed families: %v", err)
	}
}

// Options: the kernel's are read past, an unknown required one makes the
// record unusable, an unknown optional one is skipped; records are
// padded to four bytes.
func TestDecodeOptions(t *testing.T) {
	base := Entry{Proto: 6, Flags: FlagDRoute, State: 1, Client: ap("10.0.0.1:40000"), Virtual: ap("10.0.0.100:80"), Real: ap("10.0.0.11:80"), Timeout: 900}
	rec := func(opts ...[]byte) []byte {
		b := appendRecord(nil, base, conn4Len)
		for _, o := range opts {
			b = append(b, o...)
		}
		binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
		return b
	}
	msg := func(recs ...[]byte) []byte {
		b := []byte{0, 9, 0, 0, byte(len(recs)), 1, 0, 0}
		for i, r := range recs {
			b = append(b, r...)
			if i < len(recs)-1 {
				for len(b)%4 != 0 {
					b = append(b, 0)
				}
			}
		}
		binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
		return b
	}
	seq := append([]byte{optSeqData, 24}, make([]byte, 24)...)
	pe := []byte{optPEData, 3, 'a', 'b', 'c', optPEName, 3, 's', 'i', 'p'}
	unknownOpt := []byte{optParam | 0x21, 1, 0xff}
	unknownReq := []byte{0x21, 2, 0, 0}
	m, err := Decode(msg(rec(seq), rec(pe), rec(unknownOpt), rec(unknownReq), rec()))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Entries) != 4 || m.Skipped != 1 || m.SyncID != 9 {
		t.Fatalf("%d entries, %d skipped, sync id %d; want 4, 1, 9", len(m.Entries), m.Skipped, m.SyncID)
	}
	for _, e := range m.Entries {
		if e != base {
			t.Fatalf("entry %+v, want %+v", e, base)
		}
	}

	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"short", []byte{0, 0, 0}, "shorter than its 8-byte header"},
		{"size", append(msg(rec()), 0), "header says"},
		{"version 0", func() []byte { b := msg(rec()); b[5] = 0; return b }(), "version 0"},
		{"count", func() []byte { b := msg(rec()); b[4] = 2; return b }(), "record 1 at byte 44: message ends"},
		{"record size", func() []byte { b := msg(rec()); b[8+3] = 200; return b }(), "run past"},
		{"record version", func() []byte { b := msg(rec()); b[8+2] = 0x10; return b }(), "unknown record version 1"},
		{"type", func() []byte { b := msg(rec()); b[8] = 2; return b }(), "unknown record type 2"},
		{"option length", msg(rec([]byte{optSeqData, 30, 0, 0})), "does not fit"},
		{"seq length", msg(rec([]byte{optSeqData, 2, 0, 0})), "not 24"},
		{"twice", msg(rec(pe[:5], pe[:5])), "given twice"},
		{"v6 short", func() []byte { b := msg(rec()); b[8] = typeInet6; return b }(), "shorter than the 72"},
	} {
		if _, err := Decode(c.b); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	msgs, _ := Encode(3, []Entry{
		{Proto: 6, Flags: FlagDRoute, State: 1, Client: ap("10.0.0.1:40000"), Virtual: ap("10.0.0.100:80"), Real: ap("10.0.0.11:80"), Timeout: 900, Local: ap("10.0.0.3:1")},
		{Proto: 17, Client: ap("[2001:db8::1]:1234"), Virtual: ap("[2001:db8::100]:53"), Real: ap("[2001:db8::11]:53"), Timeout: 30},
	}, 1472)
	f.Add(msgs[0])
	f.Add([]byte{0, 0, 0, 8, 0, 1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		// what decodes encodes again, and decodes to the same
		if len(m.Entries) == 0 {
			return
		}
		out, err := Encode(m.SyncID, m.Entries, 65507)
		if err != nil {
			t.Fatalf("decoded entries do not encode: %v", err)
		}
		var back []Entry
		for _, o := range out {
			m2, err := Decode(o)
			if err != nil {
				t.Fatalf("re-encoded message does not decode: %v", err)
			}
			back = append(back, m2.Entries...)
		}
		if !reflect.DeepEqual(back, m.Entries) {
			t.Fatalf("round trip changed the entries")
		}
	})
}
