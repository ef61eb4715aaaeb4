package sched

// ovf: weighted overflow. The highest-weight available server takes new
// connections until its active connections exceed its weight; then the
// next highest takes over (ip_vs_ovf.c). The first in list order wins a
// tie. Only active connections count, so it suits TCP better than UDP.
type ovf struct{ d destSnapshot }

func newOVF(Options) (Scheduler, error) { return &ovf{}, nil }

func (s *ovf) Name() string         { return "ovf" }
func (s *ovf) Update(dests []*Dest) { s.d.store(dests) }

func (s *ovf) Pick(f Flow) *Dest {
	var best *Dest
	hw := 0
	for _, d := range s.d.load() {
		w := d.Weight()
		if d.Overloaded() || w == 0 || d.ActiveConns() > int64(w) {
			continue
		}
		if best == nil || w > hw {
			best, hw = d, w
		}
	}
	return best
}
