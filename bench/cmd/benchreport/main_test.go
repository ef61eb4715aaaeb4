package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStatsAndDerive(t *testing.T) {
	raw := strings.Join([]string{
		"# comment",
		"nat\tnone\t1\tcpu_pkt_ns\t1000",
		"nat\tnone\t2\tcpu_pkt_ns\t1100",
		"nat\tkfwd\t1\tcpu_pkt_ns\t1500",
		"nat\tkfwd\t2\tcpu_pkt_ns\t1700",
		"nat\tkfwd\t1\tudp_pps\t100",
		"nat\tkfwd\t2\tudp_pps\t300",
		"nat\tkfwd\t3\tudp_pps\t200",
		"nat\tnft\t1\tudp_pps\t150",
		"nat\tnft\t2\tudp_pps\t-nan",
		"nat\tnft\t1\tcpu_pkt_ns\t2000",
	}, "\n")
	dir := t.TempDir()
	p := filepath.Join(dir, "raw.tsv")
	if err := os.WriteFile(p, []byte(raw), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := readRaw(p)
	if err != nil {
		t.Fatal(err)
	}
	derive(d)
	tests := []struct {
		peer, metric string
		want         stats
	}{
		{"kfwd", "udp_pps", stats{n: 3, median: 200, min: 100, max: 300, ok: true}},
		{"nft", "udp_pps", stats{n: 1, median: 150, min: 150, max: 150, ok: true}},
		// Same-round differences: 500 and 600.
		{"kfwd", "dir_pkt_ns", stats{n: 2, median: 550, min: 500, max: 600, ok: true}},
		{"nft", "dir_pkt_ns", stats{n: 1, median: 1000, min: 1000, max: 1000, ok: true}},
		{"none", "dir_pkt_ns", stats{}},
		{"kfwd", "conn_s", stats{}},
	}
	for _, tc := range tests {
		if got := d.stats("nat", tc.peer, tc.metric); got != tc.want {
			t.Errorf("stats(%s, %s) = %+v, want %+v", tc.peer, tc.metric, got, tc.want)
		}
	}
	if b := d.baseline("nat"); b != "kfwd" {
		t.Errorf("baseline = %q, want kfwd", b)
	}
	if got := ratio(d.stats("nat", "nft", "udp_pps"), d.stats("nat", "kfwd", "udp_pps")); got != "0.75×" {
		t.Errorf("ratio = %q, want 0.75×", got)
	}
	var out bytes.Buffer
	writeText(&out, d)
	if !strings.Contains(out.String(), "200 [100–300]") {
		t.Errorf("text output lacks the kfwd udp_pps cell:\n%s", out.String())
	}
}

func TestReadRawRejectsShortLines(t *testing.T) {
	p := filepath.Join(t.TempDir(), "raw.tsv")
	if err := os.WriteFile(p, []byte("nat\tkfwd\t1\tudp_pps\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readRaw(p); err == nil {
		t.Fatal("readRaw accepted a line with 4 fields")
	}
}
