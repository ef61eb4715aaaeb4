package vrrp

import (
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
	"time"
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
// and accepts it; a wrong key, a changed byte, a wrong SPI and a replay
// are refused; a sender refused as a replay past the grace period is
// taken as restarted.
func TestAHKeepalivedVector(t *testing.T) {
	hdr, p := kaAHPacket(t)
	src := netip.MustParseAddr("10.77.0.1")
	key := ahKey("secret12")
	icv := ahICV(key, hdr, p[:ahLen], p[ahLen:], false)
	if hex.EncodeToString(icv[:]) != "3ec2483f6b8b48530167ea60" {
		t.Fatalf("ICV %x, keepalived's 3ec2483f6b8b48530167ea60", icv)
	}
	now := time.Unix(1000, 0)
	seen := map[netip.Addr]*ahReplay{}
	vr, drop := ahCheck(key, hdr, p, src, false, seen, now, 4*time.Second)
	if drop != "" {
		t.Fatalf("keepalived's packet refused: %s", drop)
	}
	a, err := ParseAdvert(vr, false, src, netip.MustParseAddr("224.0.0.18"), false)
	if err != nil || a.VRID != 51 || a.Priority != 150 || a.AuthType != AuthAH || a.Addrs[0] != netip.MustParseAddr("10.77.0.100") {
		t.Fatalf("advert %+v, %v", a, err)
	}
	if _, drop := ahCheck(key, hdr, p, src, false, seen, now, 4*time.Second); drop != DropReplay {
		t.Errorf("the same packet again: %q, want replay", drop)
	}
	if _, drop := ahCheck(key, hdr, p, src, false, seen, now.Add(5*time.Second), 4*time.Second); drop != "" {
		t.Errorf("replays past the grace period (a restart): %q, want accepted", drop)
	}
	if _, drop := ahCheck(ahKey("secret13"), hdr, p, src, false, map[netip.Addr]*ahReplay{}, now, time.Second); drop != DropAuth {
		t.Errorf("wrong key: %q", drop)
	}
	bad := append([]byte(nil), p...)
	bad[ahLen+2] = 200 // the priority
	if _, drop := ahCheck(key, hdr, bad, src, false, map[netip.Addr]*ahReplay{}, now, time.Second); drop != DropAuth {
		t.Errorf("changed priority: %q", drop)
	}
	// the TTL is covered for multicast, not for unicast
	hdr2 := append([]byte(nil), hdr...)
	hdr2[8] = 254
	if _, drop := ahCheck(key, hdr2, p, src, false, map[netip.Addr]*ahReplay{}, now, time.Second); drop != DropAuth {
		t.Errorf("changed TTL (multicast): %q", drop)
	}
	if _, drop := ahCheck(key, hdr, p, netip.MustParseAddr("10.77.0.2"), false, map[netip.Addr]*ahReplay{}, now, time.Second); drop != DropAuth {
		t.Errorf("SPI not the source: %q", drop)
	}
	if _, drop := ahCheck(key, hdr, p[:20], src, false, map[netip.Addr]*ahReplay{}, now, time.Second); drop != DropLength {
		t.Errorf("short: %q", drop)
	}
}

// TestAHRoundTrip: a header and AH header built as govs sends them check
// out, for unicast too.
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
	got, drop := ahCheck(key, hdr, append(ah, vr...), src, true, map[netip.Addr]*ahReplay{}, time.Now(), time.Second)
	if drop != "" || string(got) != string(vr) {
		t.Fatalf("drop %q", drop)
	}
}
