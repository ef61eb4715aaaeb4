package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/listing"
)

func cmdList(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("list", "list [flags]\n\nList virtual services the way ipvsadm -L does (same columns and number\nformats), from a running govs.", stderr)
	socket := fs.String("s", "", "API unix socket or host:port (default "+defaultSocket()+")")
	fs.Bool("n", true, "numeric output (govs never resolves names; accepted for ipvsadm compatibility)")
	stats := fs.Bool("stats", false, "counters: connections, packets, bytes")
	rate := fs.Bool("rate", false, "rates: connections, packets and bytes per second")
	thresholds := fs.Bool("thresholds", false, "upper and lower connection thresholds")
	pconn := fs.Bool("persistent-conn", false, "persistent connection counts")
	conns := fs.Bool("c", false, "list the connection table")
	exact := fs.Bool("exact", false, "exact numbers (no K/M/G suffixes)")
	fs.Bool("sort", true, "sort services and servers (the default; accepted for ipvsadm compatibility)")
	nosort := fs.Bool("nosort", false, "keep configuration order")
	timeout := fs.Bool("timeout", false, "print the tcp, tcpfin and udp timeouts")
	daemon := fs.Bool("daemon", false, "print the connection-sync daemon's roles and settings (lvs_sync_daemon)")
	asJSON := fs.Bool("json", false, "print the state as JSON")
	tcp := fs.String("t", "", "only the TCP service `ADDR:PORT`")
	udp := fs.String("u", "", "only the UDP service `ADDR:PORT`")
	fwm := fs.Uint("f", 0, "only the firewall-mark service `MARK`")
	if code, stop := parseFlags(fs, normalizeListArgs(args)); stop {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "govs list: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	o := listing.Options{Stats: *stats, Rate: *rate, Thresholds: *thresholds, PersistentConn: *pconn, Exact: *exact, NoSort: *nosort}
	switch {
	case *tcp != "":
		o.Service = serviceArg("tcp", *tcp)
	case *udp != "":
		o.Service = serviceArg("udp", *udp)
	case *fwm != 0:
		o.Service = fmt.Sprintf("fwm/%d", *fwm)
	}
	addr := *socket
	if addr == "" {
		addr = defaultSocket()
	}
	c := api.NewClient(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if *conns {
		cs, err := c.Conns(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "govs list: %v\n", err)
			return 1
		}
		if *asJSON {
			return writeJSONOut(stdout, stderr, cs)
		}
		listing.Conns(stdout, cs, o)
		return 0
	}
	st, err := c.State(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "govs list: %v (is govs running? socket %s)\n", err, addr)
		return 1
	}
	if *asJSON {
		return writeJSONOut(stdout, stderr, st)
	}
	if *timeout {
		listing.Timeouts(stdout, st)
		return 0
	}
	if *daemon {
		listing.Daemon(stdout, st)
		return 0
	}
	if err := listing.Services(stdout, st, o); err != nil {
		fmt.Fprintf(stderr, "govs list: %v\n", err)
		return 1
	}
	return 0
}

// normalizeListArgs accepts ipvsadm's bundled short flags (-Ln, -Lnc) and
// its -L/-l list command.
func normalizeListArgs(args []string) []string {
	var out []string
	for _, a := range args {
		if len(a) > 2 && a[0] == '-' && a[1] != '-' && isLetters(a[1:]) && a != "-nosort" {
			for _, r := range a[1:] {
				if r == 'L' || r == 'l' {
					continue
				}
				out = append(out, "-"+string(r))
			}
			continue
		}
		if a == "-L" || a == "-l" || a == "--list" {
			continue
		}
		out = append(out, a)
	}
	return out
}

func isLetters(s string) bool {
	for _, r := range s {
		if r != 'L' && r != 'l' && r != 'n' && r != 'c' {
			return false
		}
	}
	return true
}

func serviceArg(proto, s string) string {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return proto + "/" + netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
	}
	return proto + "/" + s
}

func writeJSONOut(stdout, stderr io.Writer, v any) int {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(stderr, "govs list: %v\n", err)
		return 1
	}
	return 0
}
