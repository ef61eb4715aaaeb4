package xdp

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
)

// The director program reads the time on every packet. bpf_jiffies64 is
// inlined by the verifier into a plain load, bpf_ktime_get_coarse_ns is a
// helper call that costs about as much as the rest of the established
// path, so the program computes now = jiffies*clk_mult + clk_off with a
// scale and offset calibrated here against CLOCK_MONOTONIC_COARSE (the
// clock the Go side compares connection timestamps with). Both clocks
// advance on the same tick, so the result is the coarse clock to within a
// tick. When the tick length cannot be found (or is not a whole number of
// ns, HZ=300), clk_mult stays 0 and the program calls the helper.

// clockRetuneEvery is how often the sync re-reads the clocks
// (retuneClock): at NTP's largest slew, 500 ppm, the offset moves 5 ms
// in that time.
const clockRetuneEvery = 10 * time.Second

// clockReading is one run of govs_clock.
type clockReading struct{ jiffies, ns uint64 }

// readClock runs govs_clock once; ok is false when a tick fell between
// its reads.
func (d *Dataplane) readClock() (r clockReading, ok bool, err error) {
	buf := make([]byte, 64) // test runs need at least an Ethernet header
	out := make([]byte, 64)
	if _, err := d.objs.GovsClock.Run(&ebpf.RunOptions{Data: buf, DataOut: out}); err != nil {
		return r, false, fmt.Errorf("xdp: read clock: %w", err)
	}
	j0 := binary.LittleEndian.Uint64(out[0:])
	ns := binary.LittleEndian.Uint64(out[8:])
	j1 := binary.LittleEndian.Uint64(out[16:])
	return clockReading{jiffies: j0, ns: ns}, j0 == j1, nil
}

// calibrateClock finds clk_mult (ns per jiffy) and clk_off. It reads the
// clocks until jiffies advanced by at least 4 (about 16 ms at HZ=250, 40
// ms at HZ=100, bounded at 200 ms). It returns mult 0 when no tick length
// fits.
func (d *Dataplane) calibrateClock() (mult, off uint64, err error) {
	var first, last clockReading
	have := false
	deadline := time.Now().Add(200 * time.Millisecond)
	var offs []clockReading
	for time.Now().Before(deadline) {
		r, ok, err := d.readClock()
		if err != nil {
			return 0, 0, err
		}
		if ok {
			if !have {
				first, have = r, true
			}
			last = r
			offs = append(offs, r)
			if last.jiffies-first.jiffies >= 4 {
				break
			}
		}
		time.Sleep(time.Millisecond)
	}
	dj := last.jiffies - first.jiffies
	if !have || dj < 4 || last.ns <= first.ns {
		return 0, 0, nil
	}
	est := (last.ns - first.ns) / dj
	// ns per jiffy of the HZ values that divide 1e9
	for _, t := range [...]uint64{1e9 / 100, 1e9 / 250, 1e9 / 1000, 1e9 / 500, 1e9 / 200} {
		if est > t*3/4 && est < t*5/4 {
			mult = t
			break
		}
	}
	if mult == 0 {
		return 0, 0, nil
	}
	return mult, clockOffset(mult, offs), nil
}

// clockOffset is the smallest ns - jiffies*mult (mod 2^64) of the
// readings: the coarse clock is set at or just after the tick, so the
// smallest difference is closest to the tick grid.
func clockOffset(mult uint64, rs []clockReading) uint64 {
	var best uint64
	for i, r := range rs {
		o := r.ns - r.jiffies*mult
		if i == 0 || int64(o-best) < 0 {
			best = o
		}
	}
	return best
}

// retuneClock follows the coarse clock (NTP slews it, jiffies are not
// slewed) with one reading; it reports whether the offset moved by more
// than two ticks, which is when the settings are rewritten.
func (d *Dataplane) retuneClock() (bool, error) {
	if d.clkMult == 0 {
		return false, nil
	}
	r, ok, err := d.readClock()
	if err != nil || !ok {
		return false, err
	}
	o := r.ns - r.jiffies*d.clkMult
	diff := int64(o - d.clkOff)
	if diff < 0 {
		diff = -diff
	}
	if uint64(diff) <= 2*d.clkMult {
		return false, nil
	}
	d.clkOff = o
	return true, nil
}
