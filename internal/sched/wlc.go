package sched

// wlc: weighted least connection, the IPVS default. The first available
// server starts as the candidate; a later non-overloaded server replaces it
// when overhead/weight is strictly smaller, compared by cross
// multiplication (loh × dw > doh × lw) as ip_vs_wlc.c does. A weight-0
// server can never win that comparison.
type wlc struct{ d destSnapshot }

func newWLC(Options) (Scheduler, error) { return &wlc{}, nil }

func (s *wlc) Name() string         { return "wlc" }
func (s *wlc) Update(dests []*Dest) { s.d.store(dests) }
func (s *wlc) Pick(f Flow) *Dest    { return pickWLC(s.d.load()) }

// pickWLC is shared with lblc and lblcr, whose fallback is the same
// weighted least-connection choice.
func pickWLC(dests []*Dest) *Dest {
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
	loh := least.Overhead()
	lw := int64(least.Weight())
	for _, d := range dests[i+1:] {
		if d.Overloaded() {
			continue
		}
		doh := d.Overhead()
		dw := int64(d.Weight())
		if loh*dw > doh*lw {
			least, loh, lw = d, doh, dw
		}
	}
	return least
}
