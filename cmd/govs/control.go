package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
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
	fs := newFlagSet("set", "set (-t|-u ADDR:PORT | -f MARK) [-r ADDR:PORT] (-w WEIGHT | --drain | --disable | --enable) [--persist]\n\nChange a running govs without a reload: set a real server's weight,\ndrain it (weight 0: no new connections, existing ones continue), or\ndisable/enable a real server or a whole virtual service.", stderr)
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
	if code, stop := parseFlags(fs, args); stop {
		return code
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
