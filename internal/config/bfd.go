package config

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// BFDInstance is a bfd_instance block: a BFD session to a neighbour
// that VRRP instances and sync groups track (track_bfd).
type BFDInstance struct {
	Pos      Pos        `json:"-"`
	Name     string     `json:"name"`
	Neighbor netip.Addr `json:"neighbor_ip"`
	Source   netip.Addr `json:"source_ip,omitzero"`
	// MinRx, MinTx and IdleTx are min_rx, min_tx and idle_tx, written in
	// milliseconds (0: keepalived's 10, 10 and 1000).
	MinRx  Duration `json:"min_rx,omitempty"`
	MinTx  Duration `json:"min_tx,omitempty"`
	IdleTx Duration `json:"idle_tx,omitempty"`
	// Multiplier 0: 5.
	Multiplier int  `json:"multiplier,omitempty"`
	Passive    bool `json:"passive,omitempty"`
	// TTL and HopLimit are the outgoing IPv4 TTL and IPv6 hop limit (0:
	// keepalived's 255 and 64); MaxHops how far below it a received one
	// may be (-1: no check).
	TTL      int  `json:"ttl,omitempty"`
	HopLimit int  `json:"hoplimit,omitempty"`
	MaxHops  int  `json:"max_hops,omitempty"`
	HasHops  bool `json:"has_max_hops,omitempty"`
	// Weight and Reverse are the default of track_bfd lines that give no
	// weight.
	Weight  int  `json:"weight,omitempty"`
	Reverse bool `json:"reverse,omitempty"`
	// VRRP and Checker are the vrrp and checker keywords (which of
	// keepalived's processes hear of it); kept for the round trip.
	VRRP    bool `json:"vrrp,omitempty"`
	Checker bool `json:"checker,omitempty"`
}

// OutTTL is the TTL or hop limit the session sends with (0: default).
func (bi *BFDInstance) OutTTL() int {
	if bi.Neighbor.Unmap().Is4() {
		return bi.TTL
	}
	return bi.HopLimit
}

// bfdInstance reads a bfd_instance block.
func (b *builder) bfdInstance(n *Node) *BFDInstance {
	name, ok := b.named(n)
	if !ok {
		return nil
	}
	bi := &BFDInstance{Pos: n.Pos, Name: name}
	for _, c := range n.Block {
		switch c.Keyword() {
		case "neighbor_ip", "neighbour_ip":
			b.addr(c, &bi.Neighbor)
		case "source_ip":
			b.addr(c, &bi.Source)
		case "min_rx":
			b.millis(c, &bi.MinRx)
		case "min_tx":
			b.millis(c, &bi.MinTx)
		case "idle_tx":
			b.millis(c, &bi.IdleTx)
		case "multiplier":
			b.intv(c, 1, 255, &bi.Multiplier)
		case "passive":
			b.flag(c, &bi.Passive)
		case "ttl":
			b.intv(c, 1, 255, &bi.TTL)
		case "hoplimit":
			b.intv(c, 1, 255, &bi.HopLimit)
		case "max_hops":
			b.intv(c, -1, 255, &bi.MaxHops)
			bi.HasHops = true
		case "multihop":
			b.d.errorf(c.Pos, "bfd_instance %q: multihop BFD is not supported by govs (single hop only)", name)
		case "weight":
			if b.noBlock(c) && b.args(c, 1, 2) {
				bi.Weight, _ = b.intWord(c.Words[1], "weight", -253, 253)
				if len(c.Words) == 3 {
					if c.Words[2].Text != "reverse" {
						b.d.errorf(c.Words[2].Pos, "weight: unexpected %q (reverse?)", c.Words[2].Text)
					}
					bi.Reverse = true
				}
			}
		case "vrrp":
			b.flag(c, &bi.VRRP)
		case "checker":
			b.flag(c, &bi.Checker)
		default:
			b.unsupported(c, "bfd_instance")
		}
	}
	return bi
}

// millis reads a time in milliseconds with a decimal fraction
// (microsecond resolution), as keepalived's BFD intervals.
func (b *builder) millis(n *Node, dst *Duration) {
	w, ok := b.one(n)
	if !ok {
		return
	}
	v, err := strconv.ParseFloat(w.Text, 64)
	if err != nil || v <= 0 || v > 4294967 {
		b.d.errorf(w.Pos, "%s: %q is not a time in milliseconds (0.001..4294967)", n.Keyword(), w.Text)
		return
	}
	*dst = Duration(time.Duration(v*1000+0.5) * time.Microsecond)
}

// millisText writes d in milliseconds, the fraction only when needed.
func millisText(d Duration) string {
	us := time.Duration(d) / time.Microsecond
	if us%1000 == 0 {
		return strconv.FormatInt(int64(us/1000), 10)
	}
	return strings.TrimRight(strconv.FormatFloat(float64(us)/1000, 'f', 3, 64), "0")
}

func renderBFDInstance(w *wr, bi *BFDInstance) {
	w.open("bfd_instance", q(bi.Name))
	w.addr("neighbor_ip", bi.Neighbor)
	w.addr("source_ip", bi.Source)
	for _, x := range []struct {
		kw string
		d  Duration
	}{{"min_rx", bi.MinRx}, {"min_tx", bi.MinTx}, {"idle_tx", bi.IdleTx}} {
		if x.d != 0 {
			w.line(x.kw, millisText(x.d))
		}
	}
	w.num("multiplier", bi.Multiplier)
	w.flag("passive", bi.Passive)
	w.num("ttl", bi.TTL)
	w.num("hoplimit", bi.HopLimit)
	if bi.HasHops {
		w.line("max_hops", strconv.Itoa(bi.MaxHops))
	}
	if bi.Reverse {
		w.line("weight", strconv.Itoa(bi.Weight), "reverse")
	} else {
		w.num("weight", bi.Weight)
	}
	w.flag("vrrp", bi.VRRP)
	w.flag("checker", bi.Checker)
	w.close()
}

// bfd checks the bfd_instance blocks and the track_bfd lines.
func (v *validator) bfd() {
	names := map[string]*BFDInstance{}
	for _, bi := range v.cfg.BFDInstances {
		if names[bi.Name] != nil {
			v.d.errorf(bi.Pos, "bfd_instance %q defined twice", bi.Name)
		}
		names[bi.Name] = bi
		a := bi.Neighbor.Unmap()
		switch {
		case !bi.Neighbor.IsValid():
			v.d.errorf(bi.Pos, "bfd_instance %q has no neighbor_ip", bi.Name)
		case a.IsUnspecified() || a.IsMulticast():
			v.d.errorf(bi.Pos, "bfd_instance %q: neighbor_ip %s is not a unicast address", bi.Name, bi.Neighbor)
		}
		if a.IsLinkLocalUnicast() || bi.Source.Unmap().IsLinkLocalUnicast() {
			v.d.errorf(bi.Pos, "bfd_instance %q: link-local addresses are not supported (use the neighbor's global address)", bi.Name)
		}
		for _, x := range []struct {
			kw      string
			d, min  Duration
			minText string
		}{{"min_rx", bi.MinRx, Duration(time.Millisecond), "1 ms"}, {"min_tx", bi.MinTx, Duration(time.Millisecond), "1 ms"}, {"idle_tx", bi.IdleTx, Duration(time.Second), "1000 ms (RFC 5880: at least one second while not Up)"}} {
			if x.d != 0 && x.d < x.min {
				v.d.errorf(bi.Pos, "bfd_instance %q: %s %s ms is below %s", bi.Name, x.kw, millisText(x.d), x.minText)
			}
		}
		if bi.Source.IsValid() && bi.Neighbor.IsValid() && bi.Source.Unmap().Is4() != a.Is4() {
			v.d.errorf(bi.Pos, "bfd_instance %q: source_ip %s and neighbor_ip %s are of different families", bi.Name, bi.Source, bi.Neighbor)
		}
		if bi.Neighbor.IsValid() && (a.Is4() && bi.HopLimit != 0 || !a.Is4() && bi.TTL != 0) {
			v.d.warnf(bi.Pos, "bfd_instance %q: ttl applies to IPv4 neighbors and hoplimit to IPv6 ones; the other is ignored", bi.Name)
		}
		if bi.VRRP && bi.Checker {
			v.d.warnf(bi.Pos, "bfd_instance %q: vrrp and checker together are the default (both hear of it)", bi.Name)
		}
	}
	for i, bi := range v.cfg.BFDInstances {
		for _, other := range v.cfg.BFDInstances[:i] {
			// without a source_ip, a first packet could be either's
			if other.Neighbor == bi.Neighbor && bi.Neighbor.IsValid() && (other.Source == bi.Source || !other.Source.IsValid() || !bi.Source.IsValid()) {
				v.d.errorf(bi.Pos, "bfd_instance %q: the same neighbor_ip as bfd_instance %q, and a source_ip that does not tell them apart (one session per neighbor and source)", bi.Name, other.Name)
			}
		}
	}
	check := func(where string, pos Pos, ts []Track) {
		for _, t := range ts {
			if names[t.Name] == nil {
				v.d.errorf(pos, "%s: track_bfd %q is not a defined bfd_instance", where, t.Name)
			}
		}
	}
	for _, vi := range v.cfg.VRRPInstances {
		check("vrrp_instance "+strconv.Quote(vi.Name), vi.Pos, vi.TrackBFDs)
	}
	for _, g := range v.cfg.SyncGroups {
		check("vrrp_sync_group "+strconv.Quote(g.Name), g.Pos, g.TrackBFDs)
	}
}
