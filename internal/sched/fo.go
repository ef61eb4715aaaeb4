package sched

// fo: weighted failover. Every new connection goes to the available server
// with the highest weight; the first in list order wins a tie
// (ip_vs_fo.c).
type fo struct{ d destSnapshot }

func newFO(Options) (Scheduler, error) { return &fo{}, nil }

func (s *fo) Name() string         { return "fo" }
func (s *fo) Update(dests []*Dest) { s.d.store(dests) }

func (s *fo) Pick(f Flow) *Dest {
	var best *Dest
	hw := 0
	for _, d := range s.d.load() {
		if w := d.Weight(); !d.Overloaded() && w > hw {
			best, hw = d, w
		}
	}
	return best
}
