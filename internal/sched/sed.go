package sched

// sed: shortest expected delay. Like wlc but the load is the number of
// active connections plus one, (Ci+1)/Wi, ip_vs_sed.c.
type sed struct{ d destSnapshot }

func newSED(Options) (Scheduler, error) { return &sed{}, nil }

func (s *sed) Name() string         { return "sed" }
func (s *sed) Update(dests []*Dest) { s.d.store(dests) }

func (s *sed) Pick(f Flow) *Dest {
	dests := s.d.load()
	i := 0
	var least *Dest
	for ; i < len(dests); i++ {
		if d := dests[i]; d.Available() {
			least = d
			break
		}
	}
	if least == nil {
		return nil
	}
	loh := least.ActiveConns() + 1
	lw := int64(least.Weight())
	for _, d := range dests[i+1:] {
		if d.Overloaded() {
			continue
		}
		doh := d.ActiveConns() + 1
		dw := int64(d.Weight())
		if loh*dw > doh*lw {
			least, loh, lw = d, doh, dw
		}
	}
	return least
}
