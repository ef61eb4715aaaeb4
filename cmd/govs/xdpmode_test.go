package main

import (
	"strings"
	"testing"

	"github.com/govs/govs/internal/dataplane/xdp"
)

// TestXDPModeOf: the flag wins over govs_xdp_mode, native is the
// default, and a bad value is named with where it came from.
func TestXDPModeOf(t *testing.T) {
	for _, tt := range []struct {
		flag, cfg string
		want      xdp.Mode
		err       string
	}{
		{"", "", xdp.Native, ""},
		{"", "generic", xdp.Generic, ""},
		{"native", "generic", xdp.Native, ""},
		{"generic", "", xdp.Generic, ""},
		{"offload", "native", xdp.Native, `--xdp-mode "offload": must be native or generic`},
		{"", "skb", xdp.Native, `govs_xdp_mode "skb"`},
	} {
		got, err := xdpModeOf(tt.flag, tt.cfg)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("xdpModeOf(%q, %q) error %v, want %q", tt.flag, tt.cfg, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("xdpModeOf(%q, %q) = %v, %v; want %v", tt.flag, tt.cfg, got, err, tt.want)
		}
	}
}
