// Command pairpool pools the paired ratios of bench/run.sh runs: for each
// pair of peers and each metric, the ratio A ÷ B of every round of every
// run given (the two peers measured in the same round, one after the
// other), then their count, median, geometric mean, 10th–90th
// percentiles, how many reach a target, and a bootstrap interval of the
// median. One run's rounds spread by tens of per cent on the shared test
// machine; pooled over many runs, a median within a few per cent of a
// target can be told from it, or not. Rounds of one run share a build
// and an hour of the host's load, so the bootstrap resamples runs, then
// rounds within each run drawn (a cluster bootstrap): with few runs the
// interval is wide, as it should be. Pool runs of one build and one lab
// setting when the question is that build's.
//
// Usage:
//
//	pairpool -pairs l2:govs-xdp-dr:xdp-tx,nat:govs-xdp-nat:kfwd \
//	    [-metrics conn_s,conn_raw_s] [-target 0.95 [-lower]] FILE.tsv...
//
// Input: the raw samples bench/run.sh writes next to its report, one
// "layout peer round metric value" line each (tab-separated).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
)

// pair names two peers of one layout: A's figure is divided by B's.
type pair struct{ layout, a, b string }

func parsePairs(s string) ([]pair, error) {
	var out []pair
	for _, f := range strings.Split(s, ",") {
		p := strings.Split(strings.TrimSpace(f), ":")
		if len(p) != 3 || p[0] == "" || p[1] == "" || p[2] == "" {
			return nil, fmt.Errorf("pair %q: want LAYOUT:PEER_A:PEER_B", f)
		}
		out = append(out, pair{p[0], p[1], p[2]})
	}
	return out, nil
}

// sample is one figure of one run: run is the file's index.
type sampleKey struct {
	run                         int
	layout, peer, round, metric string
}

// readSamples adds the lines of r (run number run) to m.
func readSamples(r io.Reader, run int, name string, m map[sampleKey]float64) error {
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 5 {
			return fmt.Errorf("%s:%d: want 5 tab-separated fields, got %d", name, n, len(f))
		}
		v, err := strconv.ParseFloat(f[4], 64)
		if err != nil {
			return fmt.Errorf("%s:%d: value %q: %v", name, n, f[4], err)
		}
		k := sampleKey{run, f[0], f[1], f[2], f[3]}
		if _, dup := m[k]; dup {
			return fmt.Errorf("%s:%d: a second %s of %s in round %s", name, n, f[3], f[1], f[2])
		}
		m[k] = v
	}
	return sc.Err()
}

// ratios returns A ÷ B for every round where both peers have a positive
// figure of metric, per run (runs without one left out).
func ratios(m map[sampleKey]float64, p pair, metric string) map[int][]float64 {
	out := map[int][]float64{}
	for k, a := range m {
		if k.layout != p.layout || k.peer != p.a || k.metric != metric {
			continue
		}
		b, ok := m[sampleKey{k.run, p.layout, p.b, k.round, metric}]
		if ok && a > 0 && b > 0 {
			out[k.run] = append(out[k.run], a/b)
		}
	}
	for _, xs := range out {
		slices.Sort(xs)
	}
	return out
}

// flat returns every ratio of byRun, sorted.
func flat(byRun map[int][]float64) []float64 {
	var out []float64
	for _, xs := range byRun {
		out = append(out, xs...)
	}
	slices.Sort(out)
	return out
}

// quantile is the q-quantile of sorted xs, interpolated.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	pos := q * float64(len(xs)-1)
	i := int(pos)
	if i+1 >= len(xs) {
		return xs[len(xs)-1]
	}
	return xs[i] + (pos-float64(i))*(xs[i+1]-xs[i])
}

func geomean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += math.Log(x)
	}
	return math.Exp(s / float64(len(xs)))
}

// bootMedian gives the 2.5th and 97.5th percentiles of the medians of n
// cluster resamples of byRun: as many runs as there are, drawn with
// replacement, and in each run drawn as many of its rounds, drawn with
// replacement (a fixed seed: the same input, the same answer).
func bootMedian(byRun map[int][]float64, n int) (lo, hi float64) {
	runs := make([]int, 0, len(byRun))
	for k := range byRun {
		runs = append(runs, k)
	}
	slices.Sort(runs)
	r := rand.New(rand.NewPCG(1, 2))
	meds := make([]float64, n)
	var buf []float64
	for i := range meds {
		buf = buf[:0]
		for range runs {
			xs := byRun[runs[r.IntN(len(runs))]]
			for range xs {
				buf = append(buf, xs[r.IntN(len(xs))])
			}
		}
		slices.Sort(buf)
		meds[i] = quantile(buf, 0.5)
	}
	slices.Sort(meds)
	return quantile(meds, 0.025), quantile(meds, 0.975)
}

// report writes one line per pair and metric. With target > 0 it counts
// the rounds whose ratio reaches it: at or above, or with lower at or
// below (for costs).
func report(w io.Writer, m map[sampleKey]float64, pairs []pair, metrics []string, target float64, lower bool) {
	fmt.Fprintf(w, "%-40s %-12s %5s %6s %8s %8s %15s %17s", "pair (A ÷ B)", "metric", "runs", "rounds", "median", "geomean", "p10–p90", "median 95% (boot)")
	cmp := "≥"
	if lower {
		cmp = "≤"
	}
	if target > 0 {
		fmt.Fprintf(w, " %10s", fmt.Sprintf("%s %.2f", cmp, target))
	}
	fmt.Fprintln(w)
	for _, p := range pairs {
		for _, met := range metrics {
			byRun := ratios(m, p, met)
			xs := flat(byRun)
			name := fmt.Sprintf("%s: %s ÷ %s", p.layout, p.a, p.b)
			if len(xs) == 0 {
				fmt.Fprintf(w, "%-40s %-12s %5d %6d\n", name, met, 0, 0)
				continue
			}
			lo, hi := bootMedian(byRun, 2000)
			fmt.Fprintf(w, "%-40s %-12s %5d %6d %8.3f %8.3f %15s %17s", name, met, len(byRun), len(xs), quantile(xs, 0.5), geomean(xs),
				fmt.Sprintf("%.2f–%.2f", quantile(xs, 0.1), quantile(xs, 0.9)), fmt.Sprintf("%.3f–%.3f", lo, hi))
			if target > 0 {
				n := 0
				for _, x := range xs {
					if !lower && x >= target || lower && x <= target {
						n++
					}
				}
				fmt.Fprintf(w, " %10s", fmt.Sprintf("%d of %d", n, len(xs)))
			}
			fmt.Fprintln(w)
		}
	}
}

func main() {
	pairsFlag := flag.String("pairs", "", "comma-separated LAYOUT:PEER_A:PEER_B (A ÷ B), e.g. l2:govs-xdp-dr:xdp-tx")
	metricsFlag := flag.String("metrics", "conn_s,conn_raw_s", "comma-separated metrics")
	target := flag.Float64("target", 0, "count the rounds whose ratio reaches this (0: none)")
	lower := flag.Bool("lower", false, "with -target: count the rounds at or below it (a cost), not at or above")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: pairpool -pairs LAYOUT:A:B[,...] [-metrics M,...] [-target X [-lower]] FILE.tsv...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *pairsFlag == "" || flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	pairs, err := parsePairs(*pairsFlag)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pairpool:", err)
		os.Exit(2)
	}
	m := map[sampleKey]float64{}
	for i, name := range flag.Args() {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "pairpool:", err)
			os.Exit(1)
		}
		err = readSamples(f, i, name, m)
		f.Close()
		if err != nil {
			fmt.Fprintln(os.Stderr, "pairpool:", err)
			os.Exit(1)
		}
	}
	var metrics []string
	for _, f := range strings.Split(*metricsFlag, ",") {
		if f = strings.TrimSpace(f); f != "" {
			metrics = append(metrics, f)
		}
	}
	report(os.Stdout, m, pairs, metrics, *target, *lower)
}
