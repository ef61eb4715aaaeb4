package xdp

import (
	"os"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// BenchmarkColdAB compares two builds of the director program run cold
// (BenchmarkCold's syscall/ mode), interleaved run by run so that the
// host's drift, which moves the cold figures by tens of ns between runs
// of a process, falls on both alike: A is this package's program, B the
// govs_lb of the object file GOVS_AB_OBJ (another build's lb_bpfel.o,
// whose maps must have the same layout), loaded against A's maps. It
// reports each one's median and trimmed mean, and the median of the
// per-pair differences B − A. Skipped without GOVS_AB_OBJ.
func BenchmarkColdAB(b *testing.B) {
	path := os.Getenv("GOVS_AB_OBJ")
	if path == "" {
		b.Skip("GOVS_AB_OBJ (another build's lb_bpfel.o) not set")
	}
	for _, c := range coldCases {
		b.Run(c.name, func(b *testing.B) {
			x, frame := establishedFrame(b, c.method, false)
			want, _ := x.run(frame)
			progB := loadOther(b, path, &x.d.objs.lbMaps)
			progA := x.d.objs.GovsLb
			var evict []byte
			if os.Getenv("GOVS_AB_EVICT") != "" {
				evict = make([]byte, evictBytes)
			}
			run := func(p *ebpf.Program) (uint32, time.Duration, error) {
				for i := 0; i < len(evict); i += 64 {
					evict[i]++
				}
				return p.Benchmark(frame, 1, nil)
			}
			var da, db, diff []time.Duration
			first := false
			for b.Loop() {
				// each goes first in every other pair: the second run
				// finds the maps' lines the first one loaded
				first = !first
				var ra, rb uint32
				var ta, tb time.Duration
				var errA, errB error
				if first {
					ra, ta, errA = run(progA)
					rb, tb, errB = run(progB)
				} else {
					rb, tb, errB = run(progB)
					ra, ta, errA = run(progA)
				}
				if errA != nil || errB != nil || ra != want || rb != want {
					b.Fatalf("verdicts %d %d (want %d), errors %v %v", ra, rb, want, errA, errB)
				}
				da, db, diff = append(da, ta), append(db, tb), append(diff, tb-ta)
			}
			b.ReportMetric(medianNs(da), "A-ns/pkt")
			b.ReportMetric(medianNs(db), "B-ns/pkt")
			b.ReportMetric(tmeanNs(da), "A-tmean-ns")
			b.ReportMetric(tmeanNs(db), "B-tmean-ns")
			b.ReportMetric(medianNs(diff), "B-A-ns")
		})
	}
}

// loadOther loads govs_lb from the object file at path with its maps
// replaced by ours (sizes taken from them, so the spec's defaults do not
// clash with what the loader set).
func loadOther(b *testing.B, path string, maps *lbMaps) *ebpf.Program {
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		b.Fatal(err)
	}
	repl := map[string]*ebpf.Map{}
	v, t := reflect.ValueOf(maps).Elem(), reflect.TypeOf(maps).Elem()
	for i := range t.NumField() {
		name := t.Field(i).Tag.Get("ebpf")
		m, _ := v.Field(i).Interface().(*ebpf.Map)
		ms := spec.Maps[name]
		if m == nil || ms == nil {
			continue
		}
		ms.MaxEntries, ms.Pinning = m.MaxEntries(), ebpf.PinNone
		repl[name] = m
	}
	for name := range spec.Programs {
		if name != "govs_lb" {
			delete(spec.Programs, name)
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{MapReplacements: repl})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(coll.Close)
	return coll.Programs["govs_lb"]
}

func medianNs(ds []time.Duration) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[len(s)/2].Nanoseconds())
}

func tmeanNs(ds []time.Duration) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	mid := s[len(s)/10 : len(s)-len(s)/10]
	var sum time.Duration
	for _, d := range mid {
		sum += d
	}
	return float64(sum.Nanoseconds()) / float64(max(len(mid), 1))
}
