package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/govs/govs/internal/api"
)

func cmdReload(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("reload", "reload [-s SOCKET]\n\nAsk a running govs to reload its configuration file. A configuration\nwith errors is refused and the running one kept; the errors are printed.", stderr)
	socket := fs.String("s", "", "API unix socket or host:port (default "+defaultSocket()+")")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	addr := *socket
	if addr == "" {
		addr = defaultSocket()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := api.NewClient(addr).Reload(ctx); err != nil {
		fmt.Fprintf(stderr, "govs reload: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "configuration reloaded")
	return 0
}

// cmdSet changes a service or real server at run time, like ipvsadm -e
// but without touching the configuration unless --persist is given.
func cmdSet(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("set", "set (-t|-u ADDR:PORT | -f MARK) [-r ADDR:PORT] (-w WEIGHT | --drain | --disable | --enable) [--persist]\n       govs set --timeouts TCP,TCPFIN,UDP\n\nChange a running govs without a reload: set a real server's weight,\ndrain it (weight 0: no new connections, existing ones continue), or\ndisable/enable a real server or a whole virtual service; or change the\nconnection timeouts in seconds, as ipvsadm --set does (0 keeps a value;\na reload keeps them unless the file's lvs_timeouts changed).", stderr)
	socket := fs.String("s", "", "API unix socket or host:port (default "+defaultSocket()+")")
	tcp := fs.String("t", "", "TCP service `ADDR:PORT`")
	udp := fs.String("u", "", "UDP service `ADDR:PORT`")
	fwm := fs.Uint("f", 0, "firewall-mark service `MARK`")
	rs := fs.String("r", "", "real server `ADDR:PORT` (omit to change the service)")
	weight := fs.Int("w", -1, "new `weight` (0..65535)")
	drain := fs.Bool("drain", false, "set the weight to 0")
	disable := fs.Bool("disable", false, "take out of service")
	enable := fs.Bool("enable", false, "put back into service")
	persist := fs.Bool("persist", false, "also write the new weight to the configuration file")
	timeouts := fs.String("timeouts", "", "connection timeouts `TCP,TCPFIN,UDP` in seconds (ipvsadm --set; 0 keeps a value)")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	if *timeouts != "" {
		if *tcp != "" || *udp != "" || *fwm != 0 || *rs != "" || *weight != -1 || *drain || *disable || *enable || *persist {
			fmt.Fprintln(stderr, "govs set: --timeouts goes alone (no service, server or weight flags)")
			return 2
		}
		t, err := parseTimeouts(*timeouts)
		if err != nil {
			fmt.Fprintf(stderr, "govs set: --timeouts %q: %v\n", *timeouts, err)
			return 2
		}
		addr := *socket
		if addr == "" {
			addr = defaultSocket()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := api.NewClient(addr).SetTimeouts(ctx, t); err != nil {
			fmt.Fprintf(stderr, "govs set: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, "ok")
		return 0
	}
	var svc string
	switch {
	case *tcp != "":
		svc = serviceArg("tcp", *tcp)
	case *udp != "":
		svc = serviceArg("udp", *udp)
	case *fwm != 0:
		svc = fmt.Sprintf("fwm/%d", *fwm)
	default:
		fmt.Fprintln(stderr, "govs set: name a service with -t, -u or -f")
		return 2
	}
	if *disable && *enable {
		fmt.Fprintln(stderr, "govs set: --disable and --enable together")
		return 2
	}
	var en *bool
	if *disable || *enable {
		v := *enable
		en = &v
	}
	var w *int
	switch {
	case *drain:
		z := 0
		w = &z
	case *weight > 65535 || *weight < -1:
		fmt.Fprintf(stderr, "govs set: weight %d outside 0..65535\n", *weight)
		return 2
	case *weight >= 0:
		w = weight
	}
	addr := *socket
	if addr == "" {
		addr = defaultSocket()
	}
	c := api.NewClient(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	if *rs == "" {
		if w != nil {
			fmt.Fprintln(stderr, "govs set: a weight needs a real server (-r)")
			return 2
		}
		if en == nil {
			fmt.Fprintln(stderr, "govs set: nothing to change (--disable or --enable)")
			return 2
		}
		err = c.ChangeService(ctx, api.ServiceChange{Service: svc, Enabled: en, Persist: *persist})
	} else {
		if w == nil && en == nil {
			fmt.Fprintln(stderr, "govs set: nothing to change (-w, --drain, --disable or --enable)")
			return 2
		}
		server := *rs
		if _, err := netip.ParseAddrPort(server); err != nil {
			// ipvsadm -r ADDR: the real server port defaults to the
			// virtual port.
			if a, aerr := netip.ParseAddr(server); aerr == nil {
				if k, kerr := api.ParseServiceID(svc); kerr == nil && k.Port != 0 {
					server = netip.AddrPortFrom(a, k.Port).String()
				}
			}
		}
		err = c.ChangeRealServer(ctx, api.RealServerChange{Service: svc, Server: server, Weight: w, Enabled: en, Persist: *persist})
	}
	if err != nil {
		fmt.Fprintf(stderr, "govs set: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, "ok")
	return 0
}

// parseTimeouts reads TCP,TCPFIN,UDP: three whole numbers of seconds, 0
// keeping a value (ipvsadm --set).
func parseTimeouts(s string) (api.Timeouts, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return api.Timeouts{}, fmt.Errorf("want three values, TCP,TCPFIN,UDP")
	}
	var v [3]int
	for i, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 0 || n > api.MaxTimeout {
			return api.Timeouts{}, fmt.Errorf("%q is not a whole number of seconds 0..%d (0 keeps the value)", p, api.MaxTimeout)
		}
		v[i] = n
	}
	if v == [3]int{} {
		return api.Timeouts{}, fmt.Errorf("all three are 0: nothing to change")
	}
	return api.Timeouts{TCP: v[0], TCPFin: v[1], UDP: v[2]}, nil
}

// cmdConfigPush sends the configuration files to the sync peers now.
func cmdConfigPush(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("config-push", "config-push [-s SOCKET] [--force]\n\nSend the configuration files of a running govs to its peers\n(govs_config_sync_peer) now, and print what each answered. govs sends\nthem by itself after every change it puts in force; this is for a peer\nthat was out of sync. A peer refuses files when its own were changed\nsince the two were last in sync, unless --force.", stderr)
	socket := fs.String("s", "", "API unix socket (default "+defaultSocket()+")")
	force := fs.Bool("force", false, "replace the peers' files even when they were changed there")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	addr := *socket
	if addr == "" {
		addr = defaultSocket()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	peers, err := api.NewClient(addr).PushConfig(ctx, *force)
	if err != nil {
		fmt.Fprintf(stderr, "govs config-push: %v\n", err)
		return 1
	}
	code := 0
	for _, p := range peers {
		switch {
		case p.Error != "" && p.Result == "":
			fmt.Fprintf(stdout, "%s: refused or unreachable: %s\n", p.Addr, p.Error)
			code = 1
		case p.Error != "":
			fmt.Fprintf(stdout, "%s: %s (revision %s), %s\n", p.Addr, p.Result, p.Revision, p.Error)
			code = 1
		default:
			fmt.Fprintf(stdout, "%s: %s (revision %s)\n", p.Addr, p.Result, p.Revision)
		}
	}
	return code
}

func cmdBGP(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("bgp", "bgp [-s SOCKET] [--withdraw | --announce]\n\nShow the BGP sessions and routes of a running govs (govs_bgp), or take\nthis director out of the routers' ECMP groups for maintenance: --withdraw\nwithdraws every route and keeps them withdrawn (the director keeps\nforwarding what still reaches it; with lb_algo mh and sloppy TCP the other\ndirectors carry its connections on), --announce announces them again. A\nrestart announces again.", stderr)
	socket := fs.String("s", "", "API unix socket or host:port (default "+defaultSocket()+")")
	withdraw := fs.Bool("withdraw", false, "withdraw every route until --announce")
	announce := fs.Bool("announce", false, "announce the routes again")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	if *withdraw && *announce {
		fmt.Fprintln(stderr, "govs bgp: --withdraw and --announce exclude each other")
		return 2
	}
	addr := *socket
	if addr == "" {
		addr = defaultSocket()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := api.NewClient(addr)
	if *withdraw || *announce {
		if err := c.SetBGPAnnounce(ctx, *announce); err != nil {
			fmt.Fprintf(stderr, "govs bgp: %v\n", err)
			return 1
		}
	}
	st, err := c.State(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "govs bgp: %v (is govs running? socket %s)\n", err, addr)
		return 1
	}
	if st.BGP == nil {
		fmt.Fprintln(stderr, "govs bgp: this govs runs no BGP (no govs_bgp in its configuration)")
		return 1
	}
	printBGP(stdout, st.BGP)
	return 0
}
