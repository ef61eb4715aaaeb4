package sched

// lc: least connection. The available server with the smallest IPVS
// overhead (active × 256 + inactive) wins; the first in list order wins a
// tie (ip_vs_lc.c).
type lc struct{ d destSnapshot }

func newLC(Options) (Scheduler, error) { return &lc{}, nil }

func (s *lc) Name() string         { return "lc" }
func (s *lc) Update(dests []*Dest) { s.d.store(dests) }
func (s *lc) Pick(f Flow) *Dest    { return pickLC(s.d.load()) }

func pickLC(dests []*Dest) *Dest {
	var least *Dest
	var loh int64
	for _, d := range dests {
		if d.Overloaded() || d.Weight() == 0 {
			continue
		}
		doh := d.Overhead()
		if least == nil || doh < loh {
			least, loh = d, doh
		}
	}
	return least
}
