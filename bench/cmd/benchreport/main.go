// Command benchreport turns the raw samples of a bench/run.sh run into
// tables: per layout, the median and spread of every metric for every peer,
// each median as a ratio to the layout's kernel-forwarding baseline, and
// for every govs peer the median of its per-round ratios to the baseline
// and to the peers closest to it (paired ratios).
//
// Input: a tab-separated file of "layout peer round metric value" lines and
// a file of "key<TAB>value" lines describing the run (command, kernel,
// offloads, notes). Output: a plain-text table on stdout and, with -md, a
// markdown report.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

// metric describes one measured quantity.
type metric struct {
	key    string
	label  string
	higher bool // higher is better
	digits int
}

// metricDefs lists the columns in display order. dir_* are derived: the path
// CPU cost of a peer minus that of the no-director path in the same round.
func metricDefs() []metric {
	return []metric{
		{"udp_pps", "UDP pkt/s, 1k flows", true, 0},
		{"udp_pps_1m", "UDP pkt/s, 1M flows", true, 0},
		{"conn_s", "new TCP conn/s (wrk, Connection: close)", true, 0},
		{"conn_raw_s", "new TCP conn/s (connload flat out, 64 workers)", true, 0},
		{"lat_p50_us", "request p50 µs (1 conn, keep-alive)", false, 0},
		{"lat_p99_us", "request p99 µs (1 conn, keep-alive)", false, 0},
		{"newconn_p50_us", "new-conn p50 µs (fixed rate)", false, 0},
		{"newconn_p99_us", "new-conn p99 µs (fixed rate)", false, 0},
		{"bulk_gbps", "iperf3 Gbit/s (1 stream)", true, 2},
		{"fixed_loss_pct", "UDP loss % at fixed rate", false, 2},
		{"dirproc_udp_pct", "director processes CPU % (fixed UDP rate)", false, 3},
		{"dirproc_conn_pct", "director processes CPU % (fixed conn rate)", false, 3},
		{"cpu_pkt_ns", "path CPU ns/pkt (fixed rate)", false, 0},
		{"dir_pkt_ns", "director CPU ns/pkt (path − none)", false, 0},
		{"cpu_conn_us", "path CPU µs/conn (fixed rate)", false, 1},
		{"dir_conn_us", "director CPU µs/conn (path − none)", false, 1},
		{"dir_cpu_pkt_ns", "director-only CPU ns/pkt (bn-dir processes + NAPI threads, fixed rate)", false, 0},
		{"dir_cpu_conn_us", "director-only CPU µs/conn (bn-dir processes + NAPI threads, fixed rate)", false, 1},
		{"xdp_prog_ns", "director XDP program ns/run (in place, fixed rate)", false, 0},
		{"udp_prog_ns", "director XDP program ns/run (in place, udp load: flat out, 1k flows)", false, 0},
		{"conn_fc_miss_pct", "flow-cache misses % of forwarded packets (govs, during the conn load's wrk)", false, 1},
		{"udp_fc_miss_pct", "flow-cache misses % of forwarded packets (govs, same window as udp_prog_ns)", false, 1},
		{"udp_prog_ns_1m", "director XDP program ns/run (in place, flows load: flat out, 1.1M flows)", false, 0},
		{"udp_fc_miss_pct_1m", "flow-cache misses % of forwarded packets (govs, same window as udp_prog_ns_1m)", false, 1},
		{"conn_retrans_pm", "TCP segments retransmitted per 1,000 requests (all namespaces, during the conn load's wrk)", false, 2},
		{"conn_raw_retrans_pm", "TCP segments retransmitted per 1,000 connections (all namespaces, during connload)", false, 2},
		{"conn_ctxsw_pc", "context switches per request (whole machine, during the conn load's wrk)", false, 2},
		{"conn_ipi_pc", "rescheduling IPIs per request (whole machine, during the conn load's wrk)", false, 3},
		{"conn_raw_ctxsw_pc", "context switches per connection (whole machine, during connload)", false, 2},
		{"conn_raw_ipi_pc", "rescheduling IPIs per connection (whole machine, during connload)", false, 3},
		{"dir_own_pkt_ns", "director forwarding logic ns/pkt (perf share of NAPI threads + processes, fixed rate)", false, 0},
	}
}

type key struct{ layout, peer, metric string }

type data struct {
	layouts []string
	peers   map[string][]string // layout -> peers in first-seen order
	samples map[key]map[int]float64
}

func main() {
	raw := flag.String("raw", "", "raw samples (layout peer round metric value)")
	meta := flag.String("meta", "", "run description (key<TAB>value)")
	md := flag.String("md", "", "write a markdown report here")
	flag.Parse()
	if *raw == "" {
		fmt.Fprintln(os.Stderr, "usage: benchreport -raw FILE [-meta FILE] [-md OUT]")
		os.Exit(2)
	}
	if err := run(*raw, *meta, *md, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(rawPath, metaPath, mdPath string, out io.Writer) error {
	d, err := readRaw(rawPath)
	if err != nil {
		return err
	}
	derive(d)
	var metaLines [][2]string
	if metaPath != "" {
		if metaLines, err = readMeta(metaPath); err != nil {
			return err
		}
	}
	writeText(out, d)
	if mdPath == "" {
		return nil
	}
	f, err := os.Create(mdPath)
	if err != nil {
		return fmt.Errorf("create report: %w", err)
	}
	writeMarkdown(f, d, metaLines)
	if err := f.Close(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

func readRaw(path string) (*data, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open raw: %w", err)
	}
	defer f.Close()
	d := &data{peers: map[string][]string{}, samples: map[key]map[int]float64{}}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fs := strings.Fields(line)
		if len(fs) != 5 {
			return nil, fmt.Errorf("%s:%d: want 5 fields, got %d", path, n, len(fs))
		}
		round, err := strconv.Atoi(fs[2])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: round: %w", path, n, err)
		}
		v, err := strconv.ParseFloat(fs[4], 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			continue // a failed measurement is recorded as "-": skip it
		}
		d.add(fs[0], fs[1], fs[3], round, v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read raw: %w", err)
	}
	return d, nil
}

func (d *data) add(layout, peer, m string, round int, v float64) {
	if _, ok := d.peers[layout]; !ok {
		d.layouts = append(d.layouts, layout)
	}
	if !slices.Contains(d.peers[layout], peer) {
		d.peers[layout] = append(d.peers[layout], peer)
	}
	k := key{layout, peer, m}
	if d.samples[k] == nil {
		d.samples[k] = map[int]float64{}
	}
	d.samples[k][round] = v
}

// derive adds dir_pkt_ns and dir_conn_us: a peer's path cost minus the
// no-director path's cost measured in the same round.
func derive(d *data) {
	pairs := [][2]string{{"cpu_pkt_ns", "dir_pkt_ns"}, {"cpu_conn_us", "dir_conn_us"}}
	for _, l := range d.layouts {
		for _, p := range d.peers[l] {
			if p == "none" {
				continue
			}
			for _, pr := range pairs {
				base := d.samples[key{l, "none", pr[0]}]
				for r, v := range d.samples[key{l, p, pr[0]}] {
					if b, ok := base[r]; ok {
						d.add(l, p, pr[1], r, v-b)
					}
				}
			}
		}
	}
}

func readMeta(path string) ([][2]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read meta: %w", err)
	}
	var out [][2]string
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, "\t")
		if ok {
			out = append(out, [2]string{k, v})
		}
	}
	return out, nil
}

// stats is the summary of one peer's samples of one metric.
type stats struct {
	n                int
	median, min, max float64
	ok               bool
}

func (d *data) stats(l, p, m string) stats {
	s := d.samples[key{l, p, m}]
	vs := make([]float64, 0, len(s))
	for _, v := range s {
		vs = append(vs, v)
	}
	return summarize(vs)
}

// summarize gives the median, minimum and maximum of values.
func summarize(vs []float64) stats {
	if len(vs) == 0 {
		return stats{}
	}
	slices.Sort(vs)
	med := vs[len(vs)/2]
	if len(vs)%2 == 0 {
		med = (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
	}
	return stats{n: len(vs), median: med, min: vs[0], max: vs[len(vs)-1], ok: true}
}

// closestPeers names, for each govs peer, the peers doing the same job that
// it is compared with round by round, besides the layout's baseline.
func closestPeers() map[string][]string {
	return map[string][]string{
		"govs-xdp-dr":   {"xdp-tx", "nft-fwd", "haproxy-l2"},
		"govs-xdp-tun":  {"xdp-tx", "haproxy-l2"},
		"govs-xdp-nat":  {"nft", "xdp-fwd", "haproxy"},
		"govs-xdp-snat": {"kfwd-2way", "xdp-tx-2way", "nft-snat", "haproxy-l2"},
		"govs-proxy":    {"haproxy"},
	}
}

// pair is a govs peer and a peer it is compared with.
type pair struct{ peer, other string }

// pairs lists the paired comparisons of a layout: every govs peer against
// the baseline and against its closest peers, those present in the run.
func (d *data) pairs(l string) []pair {
	var out []pair
	b := d.baseline(l)
	for _, p := range d.peers[l] {
		if !strings.HasPrefix(p, "govs-") {
			continue
		}
		others := append([]string{b}, closestPeers()[p]...)
		for _, o := range others {
			if o != "" && slices.Contains(d.peers[l], o) && !slices.Contains(out, pair{p, o}) {
				out = append(out, pair{p, o})
			}
		}
	}
	return out
}

// pairedRatio is the median over rounds of the ratio of two peers' samples
// of one round: peers of a round run back to back, so the drift of the
// machine between rounds cancels out.
func (d *data) pairedRatio(l string, pr pair, m string) stats {
	a := d.samples[key{l, pr.peer, m}]
	b := d.samples[key{l, pr.other, m}]
	var rs []float64
	for r, v := range a {
		if w, ok := b[r]; ok && w != 0 {
			rs = append(rs, v/w)
		}
	}
	return summarize(rs)
}

// baseline is the peer every ratio is taken against in a layout.
func (d *data) baseline(l string) string {
	for _, want := range []string{"kfwd", "kfwd-dr"} {
		if slices.Contains(d.peers[l], want) {
			return want
		}
	}
	return ""
}

func (d *data) usedMetrics(l string) []metric {
	var ms []metric
	for _, m := range metricDefs() {
		for _, p := range d.peers[l] {
			if d.stats(l, p, m.key).ok {
				ms = append(ms, m)
				break
			}
		}
	}
	return ms
}

func format(v float64, digits int) string {
	return strconv.FormatFloat(v, 'f', digits, 64)
}

func cell(s stats, digits int) string {
	if !s.ok {
		return "n/a"
	}
	if s.n == 1 {
		return format(s.median, digits)
	}
	return fmt.Sprintf("%s [%s–%s]", format(s.median, digits), format(s.min, digits), format(s.max, digits))
}

func ratio(s, b stats) string {
	if !s.ok || !b.ok || b.median == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", s.median/b.median)
}

// spread is the largest (max−min)/median of a metric across peers, in %.
func (d *data) spread(l string, m metric) string {
	worst := -1.0
	for _, p := range d.peers[l] {
		s := d.stats(l, p, m.key)
		if s.ok && s.n > 1 && s.median != 0 {
			worst = math.Max(worst, math.Abs((s.max-s.min)/s.median)*100)
		}
	}
	if worst < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f%%", worst)
}

// writeText prints the tables of the markdown report, which read well as
// plain text too.
func writeText(w io.Writer, d *data) {
	writeMarkdown(w, d, nil)
}

func better(m metric) string {
	if m.higher {
		return "higher"
	}
	return "lower"
}

func writeMarkdown(w io.Writer, d *data, meta [][2]string) {
	fmt.Fprintln(w, "# govs benchmark run")
	fmt.Fprintln(w)
	for _, kv := range meta {
		fmt.Fprintf(w, "- **%s**: %s\n", kv[0], kv[1])
	}
	for _, l := range d.layouts {
		b := d.baseline(l)
		ms := d.usedMetrics(l)
		fmt.Fprintf(w, "\n## Layout `%s`\n\nMedian [min–max] over rounds.\n\n", l)
		fmt.Fprint(w, "| metric |")
		for _, p := range d.peers[l] {
			fmt.Fprintf(w, " %s |", p)
		}
		fmt.Fprint(w, " worst spread |\n|---|")
		for range d.peers[l] {
			fmt.Fprint(w, "---|")
		}
		fmt.Fprintln(w, "---|")
		for _, m := range ms {
			fmt.Fprintf(w, "| %s (%s better) |", m.label, better(m))
			for _, p := range d.peers[l] {
				fmt.Fprintf(w, " %s |", cell(d.stats(l, p, m.key), m.digits))
			}
			fmt.Fprintf(w, " %s |\n", d.spread(l, m))
		}
		if b != "" {
			fmt.Fprintf(w, "\nRatio of medians against `%s` (kernel forwarding).\n\n| metric |", b)
			for _, p := range d.peers[l] {
				fmt.Fprintf(w, " %s |", p)
			}
			fmt.Fprint(w, "\n|---|")
			for range d.peers[l] {
				fmt.Fprint(w, "---|")
			}
			fmt.Fprintln(w)
			for _, m := range ms {
				fmt.Fprintf(w, "| %s |", m.label)
				bs := d.stats(l, b, m.key)
				for _, p := range d.peers[l] {
					fmt.Fprintf(w, " %s |", ratio(d.stats(l, p, m.key), bs))
				}
				fmt.Fprintln(w)
			}
		}
		writePaired(w, d, l, ms)
	}
}

// writePaired prints the paired ratios of the govs peers of a layout.
func writePaired(w io.Writer, d *data, l string, ms []metric) {
	prs := d.pairs(l)
	if len(prs) == 0 {
		return
	}
	fmt.Fprint(w, "\nPaired ratios: median [min–max] over rounds of the ratio of two peers measured in the same round.\n\n| metric |")
	for _, pr := range prs {
		fmt.Fprintf(w, " %s ÷ %s |", pr.peer, pr.other)
	}
	fmt.Fprint(w, "\n|---|")
	for range prs {
		fmt.Fprint(w, "---|")
	}
	fmt.Fprintln(w)
	for _, m := range ms {
		cells := make([]string, len(prs))
		seen := false
		for i, pr := range prs {
			s := d.pairedRatio(l, pr, m.key)
			cells[i] = ratioCell(s)
			seen = seen || s.ok
		}
		if !seen {
			continue // e.g. director process CPU of XDP peers: 0 ÷ 0
		}
		fmt.Fprintf(w, "| %s | %s |\n", m.label, strings.Join(cells, " | "))
	}
}

func ratioCell(s stats) string {
	if !s.ok {
		return "n/a"
	}
	if s.n == 1 {
		return fmt.Sprintf("%.2f×", s.median)
	}
	return fmt.Sprintf("%.2f× [%.2f–%.2f]", s.median, s.min, s.max)
}
