package config

import (
	"fmt"
	"strings"
	"testing"
)

// genConfig returns a config of n virtual servers with rs real servers
// each, every real server with a TCP_CHECK.
func genConfig(n, rs int) []byte {
	var b strings.Builder
	b.WriteString("global_defs {\n    router_id bench\n}\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "virtual_server 10.%d.%d.%d 80 {\n    lb_algo wlc\n    lb_kind NAT\n    delay_loop 6\n", i>>16&255, i>>8&255, i&255)
		for j := 0; j < rs; j++ {
			fmt.Fprintf(&b, "    real_server 172.16.%d.%d 8080 {\n        weight 1\n        TCP_CHECK {\n            connect_timeout 3\n        }\n    }\n", (i*rs+j)>>8&255, (i*rs+j)&255)
		}
		b.WriteString("}\n")
	}
	return []byte(b.String())
}

// BenchmarkLoad10k parses and validates 10,000 virtual servers × 4 real
// servers with TCP_CHECK (issue target: under 1 s).
func BenchmarkLoad10k(b *testing.B) {
	data := genConfig(10000, 4)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cfg, ds := LoadBytes("bench.conf", data, nil)
		if ds.HasErrors() {
			b.Fatal(ds.Err())
		}
		if len(cfg.VirtualServers) != 10000 {
			b.Fatal("wrong count")
		}
	}
}

func TestGeneratedConfigValid(t *testing.T) {
	cfg, ds := LoadBytes("gen.conf", genConfig(300, 4), nil)
	if ds.HasErrors() || len(cfg.VirtualServers) != 300 || len(cfg.VirtualServers[299].RealServers) != 4 {
		t.Fatalf("generated config: %d vs, %v", len(cfg.VirtualServers), ds.Err())
	}
}
