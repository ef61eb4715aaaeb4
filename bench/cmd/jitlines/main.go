// Command jitlines maps perf samples inside a loaded BPF program to the
// program's C source lines, through the line information the kernel
// keeps for the JIT image. The profiling scripts (bench/profile-udp.sh,
// bench/profile-conn.sh) use it; it needs root.
//
//	jitlines dump NAME > TABLE
//
// writes, for the loaded programs called NAME (all of them if several),
// a line "#func ADDR LEN" per function of its JIT image (hex address,
// decimal length), then one line per source-line start: the kernel
// address in hex, a tab, FILE:LINE, a tab, the source text.
//
//	perf script -F ip,sym -i DATA | jitlines hot TABLE [-n N] [-leaf REGEX]
//
// reads perf's samples (call chains, one frame per line, samples
// separated by blank lines) and prints the N source lines with the most
// samples. Without -leaf, a sample counts where it was taken, when that
// is inside the program. With -leaf, only samples whose leaf frame's
// symbol matches REGEX count, at the program line that called out (the
// first frame of the chain inside the program): which map lookup or
// helper call the time under a kernel function came from.
package main

import (
	"bufio"
	"cmp"
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
)

func main() {
	if len(os.Args) < 3 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "dump":
		err = dump(os.Args[2])
	case "hot":
		err = hot(os.Args[2], os.Args[3:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "jitlines:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: jitlines dump NAME > TABLE | jitlines hot TABLE [-n N] [-leaf REGEX] < perf-script-output")
	os.Exit(2)
}

func dump(name string) error {
	var progs []*ebpf.ProgramInfo
	for id := ebpf.ProgramID(0); ; {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			break
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue
		}
		info, err := p.Info()
		p.Close()
		if err == nil && info.Name == name {
			progs = append(progs, info)
		}
	}
	if len(progs) == 0 {
		return fmt.Errorf("no loaded program named %q", name)
	}
	w := bufio.NewWriter(os.Stdout)
	for _, info := range progs {
		if err := dumpOne(w, name, info); err != nil {
			return err
		}
	}
	return w.Flush()
}

// dumpOne writes one program's functions and lines: every program of
// the name is written, since which one the samples are of is not known
// when the table is made (a govs starting may have loaded two), and
// their JIT images do not overlap.
func dumpOne(w *bufio.Writer, name string, info *ebpf.ProgramInfo) error {
	addrs, ok := info.JitedLineInfos()
	if !ok {
		return fmt.Errorf("program %q has no JIT line information (not root?)", name)
	}
	lines, err := info.LineInfos()
	if err != nil {
		return fmt.Errorf("line information of %q: %w", name, err)
	}
	starts, ok1 := info.JitedKsymAddrs()
	lens, ok2 := info.JitedFuncLens()
	if !ok1 || !ok2 || len(starts) != len(lens) {
		return fmt.Errorf("program %q: no JIT function addresses (not root?)", name)
	}
	for i := range starts {
		fmt.Fprintf(w, "#func %x %d\n", starts[i], lens[i])
	}
	for i, l := range lines {
		if i >= len(addrs) {
			break
		}
		src := strings.Join(strings.Fields(l.Line.Line()), " ")
		fmt.Fprintf(w, "%x\t%s:%d\t%s\n", addrs[i], l.Line.FileName(), l.Line.LineNumber(), src)
	}
	return nil
}

type line struct {
	addr       uint64
	where, src string
}

func hot(table string, args []string) error {
	fs := flag.NewFlagSet("hot", flag.ExitOnError)
	n := fs.Int("n", 20, "lines to print")
	leaf := fs.String("leaf", "", "count only samples whose leaf symbol matches this, at the program line that called out")
	_ = fs.Parse(args)
	var leafRE *regexp.Regexp
	if *leaf != "" {
		var err error
		if leafRE, err = regexp.Compile(*leaf); err != nil {
			return err
		}
	}
	data, err := os.ReadFile(table)
	if err != nil {
		return err
	}
	var lines []line
	var funcs [][2]uint64 // [start, end) of each function of the image
	for _, t := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if rest, ok := strings.CutPrefix(t, "#func "); ok {
			var a, n uint64
			if _, err := fmt.Sscanf(rest, "%x %d", &a, &n); err != nil {
				return fmt.Errorf("%s: %q: %w", table, t, err)
			}
			funcs = append(funcs, [2]uint64{a, a + n})
			continue
		}
		f := strings.SplitN(t, "\t", 3)
		if len(f) < 2 {
			continue
		}
		a, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil {
			return fmt.Errorf("%s: %q: %w", table, t, err)
		}
		l := line{addr: a, where: f[1]}
		if len(f) == 3 {
			l.src = f[2]
		}
		lines = append(lines, l)
	}
	if len(lines) == 0 || len(funcs) == 0 {
		return fmt.Errorf("%s: no lines or no functions (not written by jitlines dump?)", table)
	}
	inProg := func(ip uint64) bool {
		return slices.ContainsFunc(funcs, func(f [2]uint64) bool { return ip >= f[0] && ip < f[1] })
	}
	slices.SortFunc(lines, func(a, b line) int { return cmp.Compare(a.addr, b.addr) })
	lineOf := func(ip uint64) int {
		i, _ := slices.BinarySearchFunc(lines, ip, func(l line, ip uint64) int { return cmp.Compare(l.addr, ip) })
		if i < len(lines) && lines[i].addr == ip {
			return i
		}
		return i - 1 // -1: before the program
	}
	counts := make(map[int]int)
	total := 0
	var frames [][2]string // ip, sym of the current sample
	flush := func() {
		defer func() { frames = frames[:0] }()
		if len(frames) == 0 {
			return
		}
		for k, fr := range frames {
			ip, err := strconv.ParseUint(fr[0], 16, 64)
			if err != nil || !inProg(ip) {
				continue
			}
			if leafRE != nil && (k == 0 || !leafRE.MatchString(frames[0][1])) {
				return
			}
			if leafRE == nil && k != 0 {
				return
			}
			if k > 0 {
				ip-- // a return address: the call is before it
			}
			if i := lineOf(ip); i >= 0 {
				counts[i]++
				total++
			}
			return
		}
	}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			flush()
			continue
		}
		sym := ""
		if len(f) > 1 {
			sym = f[1]
		}
		frames = append(frames, [2]string{f[0], sym})
	}
	flush()
	if err := sc.Err(); err != nil {
		return err
	}
	type row struct{ i, c int }
	var rows []row
	for i, c := range counts {
		rows = append(rows, row{i, c})
	}
	slices.SortFunc(rows, func(a, b row) int { return cmp.Or(cmp.Compare(b.c, a.c), cmp.Compare(a.i, b.i)) })
	fmt.Printf("%d samples mapped to program lines\n", total)
	for k, r := range rows {
		if k == *n {
			break
		}
		l := lines[r.i]
		fmt.Printf("%6d %5.1f%%  +%#x  %s  %s\n", r.c, 100*float64(r.c)/float64(total), l.addr-lines[0].addr, l.where, l.src)
	}
	return nil
}
