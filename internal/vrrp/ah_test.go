package vrrp

import (
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
)

// kaAHAdvert is an advert keepalived 2.2.7 sent with auth_type AH and
// auth_pass secret12 (VRID 51, priority 150, VIP 10.77.0.100), captured
// with tcpdump: IPv4 header, AH header, VRRPv2.
const kaAHAdvert = "45c000400001000 0ff33d0690a4d0001e0000012" +
	"700400000a4d0001000000013ec2483f6b8b48530167ea60" +
	"2133960102013c190a4d00640000000000000000"

func kaAHPacket(t *testing.T) (iphdr, payload []byte) {
	b, err := hex.DecodeString(strings.ReplaceAll(kaAHAdvert, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b[:20], b[20:]
}

// TestAHKeepalivedVector: govs computes the ICV of keepalived's packet
// and accepts it; a wrong key, a changed byte, a wrong SPI, a replay and
// another VRID are refused; a number already reached by govs's own
// adverts is a replay too (one counter, as keepalived's).
func TestAHKeepalivedVector(t *testing.T) {
	hdr, p := kaAHPacket(t)
	src := netip.MustParseAddr("10.77.0.1")
	key := ahKey("secret12")
	icv := ahICV(key, hdr, p[:ahLen], p[ahLen:], false)
	if hex.EncodeToString(icv[:]) != "3ec2483f6b8b48530167ea60" {
		t.Fatalf("ICV %x, keepalived's 3ec2483f6b8b48530167ea60", icv)
	}
	check := func(key [authDataLen]byte, vrid uint8, hdr, p []byte, src netip.Addr, cnt *ahCounter) DropReason {
		t.Helper()
		_, _, drop, skip := ahCheck(key, vrid, hdr, p, src, false, cnt, true)
		if skip {
			t.Fatal("skipped")
		}
		return drop
	}
	cnt := &ahCounter{}
	vr, seq, drop, _ := ahCheck(key, 51, hdr, p, src, false, cnt, true)
	if drop != "" {
		t.Fatalf("keepalived's packet refused: %s", drop)
	}
	a, err := ParseAdvert(vr, false, src, netip.MustParseAddr("224.0.0.18"), false)
	if err != nil || a.VRID != 51 || a.Priority != 150 || a.AuthType != AuthAH || a.Addrs[0] != netip.MustParseAddr("10.77.0.100") {
		t.Fatalf("advert %+v, %v", a, err)
	}
	if cnt.seq != 1 || seq != 1 {
		t.Errorf("counter %d after sequence number %d", cnt.seq, seq)
	}
	// unchecked: the caller takes the number
	if _, seq, d, _ := ahCheck(key, 51, hdr, p, src, false, cnt, false); d != "" || seq != 1 || cnt.accept(seq) {
		t.Errorf("unchecked: %q %d, counter %d", d, seq, cnt.seq)
	}
	if d := check(key, 51, hdr, p, src, cnt); d != DropReplay {
		t.Errorf("the same packet again: %q, want replay", d)
	}
	if d := check(key, 51, hdr, p, src, &ahCounter{seq: 5}); d != DropReplay {
		t.Errorf("below the counter: %q, want replay", d)
	}
	if d := check(ahKey("secret13"), 51, hdr, p, src, &ahCounter{}); d != DropAuth {
		t.Errorf("wrong key: %q", d)
	}
	if d := check(key, 52, hdr, p, src, &ahCounter{}); d != DropVRID {
		t.Errorf("another VRID: %q", d)
	}
	bad := append([]byte(nil), p...)
	bad[ahLen+2] = 200 // the priority
	if d := check(key, 51, hdr, bad, src, &ahCounter{}); d != DropAuth {
		t.Errorf("changed priority: %q", d)
	}
	// the TTL is covered for multicast, not for unicast
	hdr2 := append([]byte(nil), hdr...)
	hdr2[8] = 254
	if d := check(key, 51, hdr2, p, src, &ahCounter{}); d != DropAuth {
		t.Errorf("changed TTL (multicast): %q", d)
	}
	if d := check(key, 51, hdr, p, netip.MustParseAddr("10.77.0.2"), &ahCounter{}); d != DropAuth {
		t.Errorf("SPI not the source: %q", d)
	}
	if d := check(key, 51, hdr, p[:ahLen+4], src, &ahCounter{}); d != DropLength {
		t.Errorf("short: %q", d)
	}
	other := append([]byte(nil), p...)
	other[0] = 6 // AH carrying TCP: not VRRP
	if _, _, _, skip := ahCheck(key, 51, hdr, other, src, false, &ahCounter{}, true); !skip {
		t.Error("AH carrying TCP was not skipped")
	}
}

// TestAHRoundTrip: a header and AH header built as govs sends them check
// out, for unicast too; the counter follows received numbers, so that
// the next advert sent goes above them.
func TestAHRoundTrip(t *testing.T) {
	src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	adv := Advert{Version: 2, VRID: 7, Priority: 100, Interval: 1, AuthType: AuthAH, Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.100")}}
	vr, err := adv.Marshal(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	key := ahKey("k")
	hdr := []byte{0x45, 0xc0, 0, byte(20 + ahLen + len(vr)), 0, 9, 0, 0, 64, protoAH, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}
	ah := ahHeader(src, 42)
	icv := ahICV(key, hdr, ah, vr, true)
	copy(ah[12:], icv[:])
	hdr[8] = 60 // a router on the way
	cnt := &ahCounter{seq: 10}
	got, _, drop, _ := ahCheck(key, 7, hdr, append(ah, vr...), src, true, cnt, true)
	if drop != "" || string(got) != string(vr) {
		t.Fatalf("drop %q", drop)
	}
	// another VRID's packet: not checked, handed back for the node
	// (log_unknown_vrids)
	if other, _, drop, _ := ahCheck(key, 8, hdr, append(ah, vr...), src, true, cnt, true); drop != DropVRID || string(other) != string(vr) {
		t.Errorf("VRID 7's packet to VRID 8: drop %q, packet %x", drop, other)
	}
	if n := cnt.next(); n != 43 {
		t.Errorf("next advert %d after accepting 42, want 43", n)
	}
	// a new counter accepts any number at first, and sends from its floor
	fresh := &ahCounter{floor: 1000}
	if !fresh.accept(1) || fresh.next() != 1000 || fresh.next() != 1001 || fresh.accept(1001) || !fresh.accept(1002) {
		t.Errorf("fresh counter: %+v", fresh)
	}
	// the top: numbers stop there instead of going round
	top := &ahCounter{seq: ahSeqMax - 1}
	if top.next() != ahSeqMax || top.next() != ahSeqMax {
		t.Errorf("counter at the top: %d", top.seq)
	}
}
