package sched

import (
	"math/rand/v2"
	"testing"
)

func TestTwoSDeterministicWithSeed(t *testing.T) {
	run := func() string {
		ds := mkDests(1, 2, 3, 4)
		s := mustNew(t, "twos", Options{Rand: rand.NewPCG(42, 1)}, ds)
		return seq(s, ds, flow("203.0.113.1:1"), 40)
	}
	a, b := run(), run()
	if a != b {
		t.Errorf("same seed, different picks:\n%s\n%s", a, b)
	}
}

func TestTwoSDistribution(t *testing.T) {
	flows := randFlows(rand.New(rand.NewPCG(1, 2)), 100000)
	t.Run("idle by weight", func(t *testing.T) {
		// With no load the first draw wins: weighted random, where the
		// first server gets one extra value of total+1 (IPVS quirk).
		ds := mkDests(1000, 2000, 3000)
		s := mustNew(t, "twos", Options{Rand: rand.NewPCG(7, 7)}, ds)
		checkShares(t, shares(s, ds, flows), []float64{1001.0 / 6001, 2000.0 / 6001, 3000.0 / 6001}, 0.01)
	})
	t.Run("two choices", func(t *testing.T) {
		// A is loaded, B idle, equal weights: A wins only when both draws
		// are A, p = (101/201)^2.
		ds := mkDests(100, 100)
		open(ds[0], 5, true)
		s := mustNew(t, "twos", Options{Rand: rand.NewPCG(8, 8)}, ds)
		pA := (101.0 / 201) * (101.0 / 201)
		checkShares(t, shares(s, ds, flows), []float64{pA, 1 - pA}, 0.01)
	})
}
