package main

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

// Two runs: the ratio is taken within a run and a round only, never
// across runs (run 1's round 1 pairs with run 1's round 1).
func TestRatiosPairWithinRunAndRound(t *testing.T) {
	m := map[sampleKey]float64{}
	run0 := "l2\tgovs\t1\tconn_s\t90\nl2\tbounce\t1\tconn_s\t100\nl2\tgovs\t2\tconn_s\t50\nl2\tbounce\t2\tconn_s\t40\n"
	run1 := "l2\tgovs\t1\tconn_s\t30\nl2\tbounce\t1\tconn_s\t20\nl2\tgovs\t2\tconn_s\t10\n" // round 2 has no bounce
	if err := readSamples(strings.NewReader(run0), 0, "a", m); err != nil {
		t.Fatal(err)
	}
	if err := readSamples(strings.NewReader(run1), 1, "b", m); err != nil {
		t.Fatal(err)
	}
	byRun := ratios(m, pair{"l2", "govs", "bounce"}, "conn_s")
	if len(byRun[0]) != 2 || len(byRun[1]) != 1 {
		t.Fatalf("ratios per run %v, want 2 in run 0 and 1 in run 1", byRun)
	}
	got := flat(byRun)
	want := []float64{0.9, 1.25, 1.5}
	if len(got) != len(want) {
		t.Fatalf("ratios %v, want %v", got, want)
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Fatalf("ratios %v, want %v", got, want)
		}
	}
	if q := quantile(got, 0.5); q != 1.25 {
		t.Errorf("median %v, want 1.25", q)
	}
	if g := geomean([]float64{0.5, 2}); math.Abs(g-1) > 1e-12 {
		t.Errorf("geomean %v, want 1", g)
	}
}

func TestBadInput(t *testing.T) {
	m := map[sampleKey]float64{}
	if err := readSamples(strings.NewReader("l2\tgovs\t1\tconn_s\n"), 0, "x.tsv", m); err == nil || !strings.Contains(err.Error(), "x.tsv:1") {
		t.Errorf("a short line: %v, want an error naming x.tsv:1", err)
	}
	if err := readSamples(strings.NewReader("l2\tgovs\t1\tconn_s\tfast\n"), 0, "x.tsv", m); err == nil || !strings.Contains(err.Error(), `"fast"`) {
		t.Errorf("a bad value: %v, want an error naming it", err)
	}
	if err := readSamples(strings.NewReader("l2\tg\t1\tconn_s\t1\nl2\tg\t1\tconn_s\t2\n"), 0, "x.tsv", m); err == nil || !strings.Contains(err.Error(), "x.tsv:2") {
		t.Errorf("a duplicate sample: %v, want an error naming x.tsv:2", err)
	}
	if _, err := parsePairs("l2:govs"); err == nil {
		t.Error("a pair of two fields was accepted")
	}
}

func TestReportCountsTarget(t *testing.T) {
	m := map[sampleKey]float64{}
	in := "l2\tg\t1\tconn_s\t96\nl2\tb\t1\tconn_s\t100\nl2\tg\t2\tconn_s\t90\nl2\tb\t2\tconn_s\t100\n"
	if err := readSamples(strings.NewReader(in), 0, "a", m); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	report(&out, m, []pair{{"l2", "g", "b"}}, []string{"conn_s"}, 0.95, false)
	if !strings.Contains(out.String(), "1 of 2") || !strings.Contains(out.String(), "0.930") {
		t.Errorf("report:\n%s\nwant the median 0.930 and 1 of 2 rounds at the target", out.String())
	}
	out.Reset()
	report(&out, m, []pair{{"l2", "g", "b"}}, []string{"conn_s"}, 0.92, true)
	if !strings.Contains(out.String(), "≤ 0.92") || !strings.Contains(out.String(), "1 of 2") {
		t.Errorf("report with -lower:\n%s\nwant 1 of 2 rounds at or below 0.92", out.String())
	}
}

// One run alone: the cluster bootstrap can only draw that run, so the
// interval is its rounds' own; many runs that disagree widen it beyond
// what resampling their rounds as if independent gives.
func TestBootMedianByRun(t *testing.T) {
	one := map[int][]float64{0: {1, 1, 1, 1}}
	if lo, hi := bootMedian(one, 200); lo != 1 || hi != 1 {
		t.Errorf("one run of equal rounds: interval %v–%v, want 1–1", lo, hi)
	}
	// two runs, each tight, far apart: the median's interval spans both
	two := map[int][]float64{0: {0.8, 0.8, 0.8, 0.8, 0.8}, 1: {1.2, 1.2, 1.2, 1.2, 1.2}}
	if lo, hi := bootMedian(two, 500); lo > 0.8 || hi < 1.2 {
		t.Errorf("two disagreeing runs: interval %v–%v, want it to span 0.8–1.2", lo, hi)
	}
}
