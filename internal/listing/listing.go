// Package listing renders the director's state in the formats of
// ipvsadm -L (1.29: ipvsadm.c print_service_entry, print_largenum and the
// connection listing), column for column, so that scripts written for
// ipvsadm keep working on govs list.
package listing

import (
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/govs/govs/internal/api"
)

// Options select the listing, as ipvsadm's flags do.
type Options struct {
	Stats          bool // --stats
	Rate           bool // --rate
	Thresholds     bool // --thresholds
	PersistentConn bool // --persistent-conn
	Exact          bool // --exact
	NoSort         bool // --nosort: configuration order
	// Service, when set, lists only that service (and omits the version
	// header, as ipvsadm -L -t ADDR:PORT does).
	Service string
}

// IPVSVersion is the IPVS version ipvsadm prints in its header; govs
// prints the same so that parsers of the header keep working.
const IPVSVersion = "1.2.1"

// Services writes the service listing.
func Services(w io.Writer, st *api.State, o Options) error {
	svcs := append([]api.Service(nil), st.Services...)
	if o.Service != "" {
		var found []api.Service
		for _, s := range svcs {
			if s.ID == o.Service {
				found = append(found, s)
			}
		}
		if len(found) == 0 {
			return fmt.Errorf("no such service %s", o.Service)
		}
		svcs = found
	} else {
		fmt.Fprintf(w, "IP Virtual Server version %s (size=%d)\n", IPVSVersion, st.ConnTableSize)
	}
	if !o.NoSort {
		sortServices(svcs)
	}
	switch {
	case o.Stats:
		fmt.Fprintf(w, "%-33s %8s %8s %8s %8s %8s\n", "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")
		fmt.Fprintf(w, "  -> RemoteAddress:Port\n")
	case o.Rate:
		fmt.Fprintf(w, "%-33s %8s %8s %8s %8s %8s\n", "Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")
		fmt.Fprintf(w, "  -> RemoteAddress:Port\n")
	case o.Thresholds:
		fmt.Fprintf(w, "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn\n")
		fmt.Fprintf(w, "  -> RemoteAddress:Port\n")
	case o.PersistentConn:
		fmt.Fprintf(w, "Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn\n")
		fmt.Fprintf(w, "  -> RemoteAddress:Port\n")
	default:
		fmt.Fprintf(w, "Prot LocalAddress:Port Scheduler Flags\n")
		fmt.Fprintf(w, "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")
	}
	for _, s := range svcs {
		writeService(w, s, o)
	}
	return nil
}

func serviceName(s api.Service) string {
	if s.FWMark != 0 {
		n := fmt.Sprintf("%-4s %d", "FWM", s.FWMark)
		if s.V6 {
			n += " IPv6"
		}
		return n
	}
	return fmt.Sprintf("%-4s %s", s.Proto, hostPort(s.Addr, s.Port))
}

func hostPort(addr string, port uint16) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr + ":" + strconv.Itoa(int(port))
	}
	return netip.AddrPortFrom(a, port).String()
}

func writeService(w io.Writer, s api.Service, o Options) {
	name := serviceName(s)
	// ipvsadm lists the destinations the kernel has: real servers taken
	// out (failed without inhibit_on_failure, disabled) are not shown.
	var dests []api.RealServer
	for _, d := range s.RealServers {
		if d.InPool {
			dests = append(dests, d)
		}
	}
	if !o.NoSort {
		sortDests(dests)
	}
	switch {
	case o.Stats:
		fmt.Fprintf(w, "%-33s", name)
		nums(w, o.Exact, s.Stats.Conns, s.Stats.InPkts, s.Stats.OutPkts, s.Stats.InBytes, s.Stats.OutBytes)
		fmt.Fprintln(w)
		for _, d := range dests {
			fmt.Fprintf(w, "  -> %-28s", d.Addr)
			nums(w, o.Exact, d.Stats.Conns, d.Stats.InPkts, d.Stats.OutPkts, d.Stats.InBytes, d.Stats.OutBytes)
			fmt.Fprintln(w)
		}
	case o.Rate:
		fmt.Fprintf(w, "%-33s %8d %8d %8d", name, s.Rates.CPS, s.Rates.InPPS, s.Rates.OutPPS)
		nums(w, o.Exact, s.Rates.InBPS, s.Rates.OutBPS)
		fmt.Fprintln(w)
		for _, d := range dests {
			fmt.Fprintf(w, "  -> %-28s %8d %8d %8d", d.Addr, d.Rates.CPS, d.Rates.InPPS, d.Rates.OutPPS)
			nums(w, o.Exact, d.Rates.InBPS, d.Rates.OutBPS)
			fmt.Fprintln(w)
		}
	case o.Thresholds:
		fmt.Fprintf(w, "%s %s%s\n", name, s.Scheduler, serviceFlags(s))
		for _, d := range dests {
			fmt.Fprintf(w, "  -> %-28s %-10d %-10d %-10d %-10d\n", d.Addr, d.UThreshold, d.LThreshold, d.ActiveConns, d.InactConns)
		}
	case o.PersistentConn:
		fmt.Fprintf(w, "%s %s%s\n", name, s.Scheduler, serviceFlags(s))
		for _, d := range dests {
			fmt.Fprintf(w, "  -> %-28s %-9d %-11d %-10d %-10d\n", d.Addr, d.Weight, d.PersistConns, d.ActiveConns, d.InactConns)
		}
	default:
		fmt.Fprintf(w, "%s %s%s\n", name, s.Scheduler, serviceFlags(s))
		for _, d := range dests {
			fmt.Fprintf(w, "  -> %-28s %-7s %-6d %-10d %-10d\n", d.Addr, d.Method, d.Weight, d.ActiveConns, d.InactConns)
		}
	}
}

// serviceFlags renders " (sh-fallback,sh-port)", " persistent N",
// " mask M", " pe NAME" and " ops" as ipvsadm does.
func serviceFlags(s api.Service) string {
	var b strings.Builder
	var flags []string
	for _, f := range s.Flags {
		switch f {
		case "sh-fallback", "sh-port", "mh-fallback", "mh-port", "flag-1", "flag-2", "flag-3":
			flags = append(flags, f)
		}
	}
	if len(flags) > 0 {
		b.WriteString(" (" + strings.Join(flags, ",") + ")")
	}
	if s.Persistent > 0 {
		fmt.Fprintf(&b, " persistent %d", s.Persistent)
		v6 := s.V6
		if a, err := netip.ParseAddr(s.Addr); err == nil {
			v6 = a.Is6()
		}
		if v6 {
			if s.PersistMask != 0 && s.PersistMask != 128 {
				fmt.Fprintf(&b, " mask %d", s.PersistMask)
			}
		} else if s.PersistMask != 0 && s.PersistMask != 32 {
			fmt.Fprintf(&b, " mask %s", maskString(s.PersistMask))
		}
		if s.PE != "" {
			fmt.Fprintf(&b, " pe %s", s.PE)
		}
	}
	if s.OnePacket {
		b.WriteString(" ops")
	}
	return b.String()
}

func maskString(bits int) string {
	m := ^uint32(0) << (32 - bits)
	return fmt.Sprintf("%d.%d.%d.%d", m>>24, m>>16&255, m>>8&255, m&255)
}

func nums(w io.Writer, exact bool, vs ...uint64) {
	for _, v := range vs {
		io.WriteString(w, LargeNum(v, exact))
	}
}

// LargeNum formats a counter as ipvsadm's print_largenum: 9 columns, with
// K/M/G/T suffixes past 100 million unless exact.
func LargeNum(i uint64, exact bool) string {
	if exact {
		s := strconv.FormatUint(i, 10)
		width := 9
		if len(s) > 8 {
			width = len(s) + 1
		}
		return fmt.Sprintf("%*s", width, s)
	}
	switch {
	case i < 100_000_000:
		return fmt.Sprintf("%9d", i)
	case i < 1_000_000_000:
		return fmt.Sprintf("%8dK", i/1000)
	case i < 100_000_000_000:
		return fmt.Sprintf("%8dM", i/1_000_000)
	case i < 100_000_000_000_000:
		return fmt.Sprintf("%8dG", i/1_000_000_000)
	}
	return fmt.Sprintf("%8dT", i/1_000_000_000_000)
}

// Timeouts writes ipvsadm -L --timeout.
func Timeouts(w io.Writer, st *api.State) {
	fmt.Fprintf(w, "Timeout (tcp tcpfin udp): %d %d %d\n", st.Timeouts.TCP, st.Timeouts.TCPFin, st.Timeouts.UDP)
}

// Daemon writes ipvsadm -L --daemon: a line for each role the
// connection-sync daemon has now, nothing without one.
func Daemon(w io.Writer, st *api.State) {
	s := st.Sync
	if s == nil {
		return
	}
	for _, role := range []string{"master", "backup"} {
		if strings.Contains(s.Role, role) {
			fmt.Fprintf(w, "%s sync daemon (mcast=%s, syncid=%d, maxlen=%d, group=%s, port=%d, ttl=%d)\n",
				role, s.Interface, s.SyncID, s.MaxLen, s.Group, s.Port, s.TTL)
		}
	}
}

// Conns writes ipvsadm -L -c (with --persistent-conn, the pe columns).
// When some entry has a director-side source (source NAT, or the
// userspace proxy), a "local" column between virtual and destination
// shows it, in the order full-NAT directors (DPVS) list client, virtual,
// local and real server; otherwise the columns are exactly ipvsadm's.
func Conns(w io.Writer, conns []api.Conn, o Options) {
	local := false
	for _, c := range conns {
		if c.Local != "" {
			local = true
			break
		}
	}
	mid := func(c api.Conn) string {
		if !local {
			return fmt.Sprintf("%-18s", c.Virtual)
		}
		l := c.Local
		if l == "" {
			l = "-"
		}
		return fmt.Sprintf("%-18s %-18s", c.Virtual, l)
	}
	fmt.Fprintln(w, "IPVS connection entries")
	head := mid(api.Conn{Virtual: "virtual", Local: "local"})
	if o.PersistentConn {
		fmt.Fprintf(w, "pro expire %-11s %-18s %s %-18s %-7s %s\n", "state", "source", head, "destination", "pe name", "pe_data")
	} else {
		fmt.Fprintf(w, "pro expire %-11s %-18s %s %s\n", "state", "source", head, "destination")
	}
	cs := append([]api.Conn(nil), conns...)
	if !o.NoSort {
		sort.SliceStable(cs, func(i, j int) bool {
			if cs[i].Virtual != cs[j].Virtual {
				return cs[i].Virtual < cs[j].Virtual
			}
			return cs[i].Client < cs[j].Client
		})
	}
	for _, c := range cs {
		secs := int(c.Expires + 0.5)
		expire := fmt.Sprintf("%02d:%02d", secs/60, secs%60)
		if o.PersistentConn {
			fmt.Fprintf(w, "%-3s %-6s %-11s %-18s %s %-18s %-7s %s\n", c.Proto, expire, c.State, c.Client, mid(c), c.Real, "", "")
		} else {
			fmt.Fprintf(w, "%-3s %-6s %-11s %-18s %s %s\n", c.Proto, expire, c.State, c.Client, mid(c), c.Real)
		}
	}
}

func sortServices(s []api.Service) {
	sort.SliceStable(s, func(i, j int) bool {
		a, b := s[i], s[j]
		if a.FWMark != b.FWMark {
			return a.FWMark < b.FWMark
		}
		aa, _ := netip.ParseAddr(a.Addr)
		ba, _ := netip.ParseAddr(b.Addr)
		if aa.Is4() != ba.Is4() {
			return aa.Is4()
		}
		if a.Proto != b.Proto {
			return protoNum(a.Proto) < protoNum(b.Proto)
		}
		if c := aa.Compare(ba); c != 0 {
			return c < 0
		}
		return a.Port < b.Port
	})
}

func protoNum(p string) int {
	switch p {
	case "TCP":
		return 6
	case "UDP":
		return 17
	case "SCTP":
		return 132
	}
	return 0
}

func sortDests(d []api.RealServer) {
	sort.SliceStable(d, func(i, j int) bool {
		a, _ := netip.ParseAddrPort(d[i].Addr)
		b, _ := netip.ParseAddrPort(d[j].Addr)
		return a.Compare(b) < 0
	})
}
