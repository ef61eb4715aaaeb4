package xdp

import (
	"net/netip"
	"strings"
	"testing"
)

func TestMasqScript(t *testing.T) {
	got := masqScript([]netip.Prefix{netip.MustParsePrefix("10.89.0.7/24"), netip.MustParsePrefix("fd89::/64"), netip.MustParsePrefix("10.90.0.0/16")})
	for _, want := range []string{
		"delete table inet govs_xdp\n",
		"type nat hook postrouting priority srcnat;",
		"ip saddr { 10.89.0.0/24, 10.90.0.0/16 } ip daddr != { 10.89.0.0/24, 10.90.0.0/16 } masquerade",
		"ip6 saddr { fd89::/64 } ip6 daddr != { fd89::/64 } masquerade",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("script lacks %q:\n%s", want, got)
		}
	}
	if strings.Index(got, "table inet govs_xdp {}") > strings.Index(got, "delete table") {
		t.Errorf("the table must be created before it is deleted (idempotent reload):\n%s", got)
	}
}
