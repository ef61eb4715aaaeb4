package sched

// nq: never queue. The first available server with no active connection
// is taken at once; otherwise the sed choice, (Ci+1)/Wi (ip_vs_nq.c).
type nq struct{ d destSnapshot }

func newNQ(Options) (Scheduler, error) { return &nq{}, nil }

func (s *nq) Name() string         { return "nq" }
func (s *nq) Update(dests []*Dest) { s.d.store(dests) }

func (s *nq) Pick(f Flow) *Dest {
	var least *Dest
	var loh, lw int64
	for _, d := range s.d.load() {
		if !d.Available() {
			continue
		}
		active := d.ActiveConns()
		if active == 0 {
			return d
		}
		doh := active + 1
		dw := int64(d.Weight())
		if least == nil || loh*dw > doh*lw {
			least, loh, lw = d, doh, dw
		}
	}
	return least
}
