package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/govs/govs/internal/api"
)

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("status", "status [-s SOCKET] [--json]\n\nSummarize a running govs: dataplane, configuration, VRRP instances (role,\npriorities, master, last advert, recent transitions), the sync daemons,\nthe BGP speaker (routes, sessions) and services.", stderr)
	socket := fs.String("s", "", "API unix socket or host:port (default "+defaultSocket()+")")
	asJSON := fs.Bool("json", false, "print the state as JSON")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	addr := *socket
	if addr == "" {
		addr = defaultSocket()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := api.NewClient(addr).State(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "govs status: %v (is govs running? socket %s)\n", err, addr)
		return 1
	}
	if *asJSON {
		return writeJSONOut(stdout, stderr, st)
	}
	dp := st.Dataplane
	if st.XDPMode != "" {
		dp += " (" + st.XDPMode + ")"
	}
	fmt.Fprintf(stdout, "govs %s, dataplane %s, up since %s\n", st.Version, dp, st.Started.Format(time.RFC3339))
	fmt.Fprintf(stdout, "configuration %s, loaded %s\n", st.ConfigFile, st.ConfigLoaded.Format(time.RFC3339))
	if st.LastReloadError != "" {
		fmt.Fprintf(stdout, "last reload REFUSED: %s\n", st.LastReloadError)
	}
	if len(st.VRRP) > 0 {
		fmt.Fprintln(stdout)
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VRRP INSTANCE\tSTATE\tPRIO\tEFFECTIVE\tVRID\tINTERFACE\tMASTER\tLAST ADVERT\tVIPS")
		for _, v := range st.VRRP {
			last := "-"
			if !v.LastAdvert.IsZero() {
				last = time.Since(v.LastAdvert).Round(10*time.Millisecond).String() + " ago"
			}
			master := v.Master
			if master == "" {
				master = "-"
			}
			state := v.State
			if v.Waiting {
				state += " (waiting for a script)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", v.Name, state, v.Priority, v.Effective, v.VRID, v.Interface, master, last, strings.Join(v.VIPs, ","))
		}
		tw.Flush()
		for _, v := range st.VRRP {
			if v.NoAccept {
				fmt.Fprintf(stdout, "  %s: no_accept: as MASTER, packets to its addresses other than the virtual services' are dropped\n", v.Name)
			}
		}
		for _, v := range st.VRRP {
			n := len(v.Transitions)
			for _, t := range v.Transitions[max(0, n-5):] {
				fmt.Fprintf(stdout, "  %s %s: %s -> %s (%s)\n", t.Time.Format("15:04:05.000"), v.Name, t.From, t.To, t.Reason)
			}
		}
	}
	if s := st.Sync; s != nil {
		fmt.Fprintf(stdout, "connection sync %s on %s (syncid %d, %s): sent %d connections in %d messages; received %d, taken %d, not taken %d",
			s.Role, s.Interface, s.SyncID, net.JoinHostPort(s.Group, strconv.Itoa(s.Port)), s.ConnsSent, s.MessagesSent, s.ConnsReceived, s.ConnsImported, s.ConnsNotTaken)
		if n := s.Dropped + s.Malformed + s.SendErrors; n > 0 {
			fmt.Fprintf(stdout, "; %d dropped by the kernel, %d malformed, %d send errors", s.Dropped, s.Malformed, s.SendErrors)
		}
		fmt.Fprintln(stdout)
		if s.LastError != "" {
			fmt.Fprintf(stdout, "  last error: %s\n", s.LastError)
		}
	}
	if c := st.ConfigSync; c != nil {
		fmt.Fprintf(stdout, "configuration sync: files at revision %s", c.Revision)
		if c.Listen != "" {
			fmt.Fprintf(stdout, ", taking the peers' on %s", c.Listen)
		}
		fmt.Fprintln(stdout)
		for _, p := range c.Peers {
			switch {
			case p.Error != "":
				fmt.Fprintf(stdout, "  to %s: %s\n", p.Addr, p.Error)
			case p.Pending:
				fmt.Fprintf(stdout, "  to %s: sending\n", p.Addr)
			case p.Result != "":
				fmt.Fprintf(stdout, "  to %s: %s, revision %s, at %s\n", p.Addr, p.Result, p.Revision, p.LastSuccess.Format(time.RFC3339))
			default:
				fmt.Fprintf(stdout, "  to %s: nothing sent since govs started\n", p.Addr)
			}
		}
		if r := c.LastReceived; r != nil {
			res := r.Result
			if r.Error != "" {
				res = r.Error
			}
			fmt.Fprintf(stdout, "  from %s (%s) at %s: %s\n", r.From, r.Addr, r.At.Format(time.RFC3339), res)
		}
	}
	if b := st.BGP; b != nil {
		fmt.Fprintln(stdout)
		printBGP(stdout, b)
	}
	if len(st.BFD) > 0 {
		fmt.Fprintln(stdout)
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "BFD INSTANCE	NEIGHBOR	STATE	REMOTE	DIAGNOSTIC	TX	DETECT	SINCE")
		for _, b := range st.BFD {
			remote, detect := b.RemoteState, "-"
			if remote == "" {
				remote = "-"
			}
			if b.DetectTime > 0 {
				detect = b.DetectTime.String()
			}
			state := b.State
			if b.Error != "" {
				state += " (" + b.Error + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.Name, b.Peer, state, remote, b.Diag, b.TxInterval, detect, b.Since.Format("15:04:05.000"))
		}
		tw.Flush()
	}
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tSCHED\tQUORUM\tREAL SERVERS (healthy/total)\tIN POOL\tCONNS")
	for _, s := range st.Services {
		healthy, in := 0, 0
		for _, r := range s.RealServers {
			if r.Healthy && !r.Sorry {
				healthy++
			}
			if r.InPool {
				in++
			}
		}
		q := "up"
		if !s.QuorumUp {
			q = "LOST"
		}
		if s.SorryActive {
			q += " (sorry server)"
		}
		if !s.Enabled {
			q += " (disabled)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%d\t%d\n", s.ID, s.Scheduler, q, healthy, len(s.RealServers), in, s.Stats.Conns)
	}
	tw.Flush()
	return 0
}

// printBGP prints the BGP speaker: its routes and a line per session.
func printBGP(w io.Writer, b *api.BGP) {
	routes := strings.Join(b.Routes, " ")
	switch {
	case b.Withdrawn:
		routes = "none (withdrawn: govs is stopping)"
	case !b.Running:
		routes = "none (the BGP speaker is not running)"
	case b.Drained:
		routes = "none (withdrawn for maintenance until govs bgp --announce)"
	case routes == "" && len(b.Held) > 0:
		routes = "none"
	case routes == "":
		routes = "none (no virtual service up)"
	}
	if len(b.Held) > 0 {
		routes += "; held by announce_delay: " + strings.Join(b.Held, " ")
	}
	id := b.RouterID
	if id == "" {
		id = "- (taken from the first IPv4 neighbor's route at start)"
	}
	fmt.Fprintf(w, "bgp AS %d, router id %s, announcing %s\n", b.LocalAS, id, routes)
	if b.LastError != "" {
		fmt.Fprintf(w, "  last error: %s\n", b.LastError)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NEIGHBOR\tAS\tSTATE\tUP FOR\tADVERTISED\tRECEIVED\tLAST DOWN")
	for _, n := range b.Neighbors {
		up := "-"
		if !n.Since.IsZero() {
			up = time.Since(n.Since).Round(time.Second).String()
		}
		last := n.LastDown
		if last == "" {
			last = "-"
		}
		state := n.State
		if n.BFD != "" {
			state += " (bfd " + n.BFD + ")"
		}
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%d\t%d\t%s\n", n.Address, n.RemoteAS, state, up, n.Advertised, n.Received, last)
	}
	tw.Flush()
}
