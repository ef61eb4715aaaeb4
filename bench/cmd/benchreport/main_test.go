package main

import (
	"bytes"
	"math"
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

func TestPairedRatios(t *testing.T) {
	d := &data{peers: map[string][]string{}, samples: map[key]map[int]float64{}}
	// Rounds drift by 2× as a whole; the per-round ratio does not.
	for r, v := range map[int][3]float64{1: {100, 110, 50}, 2: {200, 220, 100}, 3: {150, 180, 80}} {
		d.add("l2", "kfwd-dr", "udp_pps", r, v[0])
		d.add("l2", "govs-xdp-dr", "udp_pps", r, v[1])
		d.add("l2", "xdp-tx", "udp_pps", r, v[2])
	}
	d.add("l2", "govs-xdp-snat", "udp_pps", 1, 90) // no nft-snat in the run
	want := []pair{{"govs-xdp-dr", "kfwd-dr"}, {"govs-xdp-dr", "xdp-tx"}, {"govs-xdp-snat", "kfwd-dr"}}
	got := d.pairs("l2")
	if len(got) != len(want) {
		t.Fatalf("pairs = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("pairs = %v, want %v", got, want)
		}
	}
	tests := []struct {
		pr   pair
		want stats
	}{
		{pair{"govs-xdp-dr", "kfwd-dr"}, stats{n: 3, median: 1.1, min: 1.1, max: 1.2, ok: true}},
		{pair{"govs-xdp-dr", "xdp-tx"}, stats{n: 3, median: 2.2, min: 2.2, max: 2.25, ok: true}},
		{pair{"govs-xdp-snat", "kfwd-dr"}, stats{n: 1, median: 0.9, min: 0.9, max: 0.9, ok: true}},
		{pair{"govs-xdp-dr", "nft-fwd"}, stats{}},
	}
	for _, tc := range tests {
		s := d.pairedRatio("l2", tc.pr, "udp_pps")
		if s.ok != tc.want.ok || s.n != tc.want.n || !near(s.median, tc.want.median) ||
			!near(s.min, tc.want.min) || !near(s.max, tc.want.max) {
			t.Errorf("pairedRatio(%v) = %+v, want %+v", tc.pr, s, tc.want)
		}
	}
	var out bytes.Buffer
	writeText(&out, d)
	for _, s := range []string{"govs-xdp-dr ÷ xdp-tx", "2.20× [2.20–2.25]"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, out.String())
		}
	}
}

// TestPairedWithoutBaseline: a run without the layout's kernel baseline
// (govs against HAProxy only) still reports the paired ratios.
func TestPairedWithoutBaseline(t *testing.T) {
	d := &data{peers: map[string][]string{}, samples: map[key]map[int]float64{}}
	for r, v := range map[int][2]float64{1: {100, 190}, 2: {80, 160}} {
		d.add("l2", "haproxy-l2", "conn_s", r, v[0])
		d.add("l2", "govs-xdp-dr", "conn_s", r, v[1])
	}
	var out bytes.Buffer
	writeText(&out, d)
	for _, s := range []string{"govs-xdp-dr ÷ haproxy-l2", "1.95× [1.90–2.00]"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, out.String())
		}
	}
	if strings.Contains(out.String(), "Ratio of medians") {
		t.Errorf("ratio table without a baseline:\n%s", out.String())
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
