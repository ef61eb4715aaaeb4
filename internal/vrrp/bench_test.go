package vrrp

import (
	"net/netip"
	"testing"
	"time"
)

func BenchmarkParseAdvertV3(b *testing.B) {
	src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("224.0.0.18")
	a := Advert{Version: 3, VRID: 1, Priority: 100, Interval: 100, Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.100")}}
	p, _ := a.Marshal(src, dst)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseAdvert(p, false, src, dst, false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalAdvertV3(b *testing.B) {
	src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("224.0.0.18")
	a := Advert{Version: 3, VRID: 1, Priority: 100, Interval: 100, Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.100")}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Marshal(src, dst); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMachineBackupAdvert is the per-advert cost of a BACKUP.
func BenchmarkMachineBackupAdvert(b *testing.B) {
	m, err := NewMachine(baseConfig(), localIP, nil)
	if err != nil {
		b.Fatal(err)
	}
	now := t0
	m.Step(EventStartup{}, now)
	ev := EventAdvert{Src: higherIP, TTL: 255, Advert: Advert{Version: 2, VRID: 51, Priority: 150, Interval: 1}}
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Second)
		m.Step(ev, now)
	}
}
