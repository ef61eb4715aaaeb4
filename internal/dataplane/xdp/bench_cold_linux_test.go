package xdp

import (
	"fmt"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// BenchmarkColdPieces prices the pieces of a cold run (BenchmarkCold's
// syscall/ mode: caches warm, the TLB emptied by the system call on
// kernels with page-table isolation and no PCID), with hand-assembled
// programs that return XDP_TX:
//   - arrays/MEM-N: increment one value in each of N arrays, MEM being
//     kmalloc (a small plain array, kernel direct map), vmalloc (a
//     1 MiB one, 4 KiB pages) or mmap (BPF_F_MMAPABLE, vmalloc);
//   - code-N: N independent register adds (N × 7 bytes of JIT code),
//     cold (tmean-ns/pkt) and hot (hot-ns/pkt, repeat mode).
//
// Compare each with arrays/none-0 and code-0.
func BenchmarkColdPieces(b *testing.B) {
	requireBPF(b)
	frame := make([]byte, 64)
	b.Run("arrays", func(b *testing.B) {
		for _, c := range []struct {
			mem     string
			entries uint32
			flags   uint32
		}{{"kmalloc", 1024, 0}, {"vmalloc", 1 << 17, 0}, {"mmap", 1024, 1 << 10 /* BPF_F_MMAPABLE */}} {
			for _, n := range []int{0, 1, 4, 8} {
				if n == 0 && c.mem != "kmalloc" {
					continue
				}
				name := fmt.Sprintf("%s-%d", c.mem, n)
				if n == 0 {
					name = "none-0"
				}
				b.Run(name, func(b *testing.B) {
					var ins asm.Instructions
					for i := range n {
						m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: c.entries, Flags: c.flags})
						if err != nil {
							b.Fatal(err)
						}
						defer m.Close()
						skip := fmt.Sprintf("skip%d", i)
						ins = append(ins,
							asm.StoreImm(asm.R10, -8, int64((uint32(i)*7919+1000)%c.entries), asm.Word),
							asm.LoadMapPtr(asm.R1, m.FD()),
							asm.Mov.Reg(asm.R2, asm.R10),
							asm.Add.Imm(asm.R2, -8),
							asm.FnMapLookupElem.Call(),
							asm.JEq.Imm(asm.R0, 0, skip),
							asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
							asm.Add.Imm(asm.R1, 1),
							asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
							asm.Mov.Imm(asm.R0, 0).WithSymbol(skip),
						)
					}
					coldRuns(b, xdpProg(b, ins), frame, xdpTX, false, nil)
				})
			}
		}
	})
	for _, n := range []int{0, 500, 2000} {
		b.Run(fmt.Sprintf("code-%d", n), func(b *testing.B) {
			regs := []asm.Register{asm.R1, asm.R2, asm.R3, asm.R4, asm.R5, asm.R0}
			var ins asm.Instructions
			for _, r := range regs {
				ins = append(ins, asm.Mov.Imm(r, 0))
			}
			for i := range n {
				ins = append(ins, asm.Add.Imm(regs[i%len(regs)], int32(i)))
			}
			p := xdpProg(b, ins)
			coldRuns(b, p, frame, xdpTX, false, nil)
			_, hot, err := p.Benchmark(frame, repeat, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(hot.Nanoseconds()), "hot-ns/pkt")
		})
	}
}

// xdpProg loads ins followed by "return XDP_TX" as an XDP program.
func xdpProg(b *testing.B, ins asm.Instructions) *ebpf.Program {
	b.Helper()
	ins = append(ins, asm.Mov.Imm(asm.R0, xdpTX), asm.Return())
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, Instructions: ins, License: "GPL"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	return p
}
