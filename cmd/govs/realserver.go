package main

import (
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/govs/govs/internal/realserver"
)

func cmdRealServer(args []string, stdout, stderr io.Writer) int {
	const synopsis = "realserver (setup|check|undo) --method dr|tun --vip VIP [--vip VIP]... [--interface IF]\n" +
		"       govs realserver (dr|tun) --vip VIP... [--interface IF] [--dry-run]   (= setup --method dr|tun)\n\n" +
		"Prepare (setup), verify (check) or undo a real server for direct routing or\n" +
		"tunnelling: the virtual addresses on lo, arp_ignore=1 and arp_announce=2 so the\n" +
		"real server never answers ARP for them, and for tun a decapsulation program on\n" +
		"--interface (no ipip kernel module needed). check exits 1 listing what is missing."
	if len(args) == 0 {
		fmt.Fprintf(stderr, "Usage: govs %s\n", synopsis)
		return 2
	}
	action, defMethod := args[0], "dr"
	switch action {
	case "setup", "check", "undo":
	case "dr", "tun":
		action, defMethod = "setup", args[0]
	default:
		fmt.Fprintf(stderr, "Usage: govs %s\n", synopsis)
		return 2
	}
	fs := newFlagSet("realserver "+args[0], synopsis, stderr)
	method := fs.String("method", defMethod, "dr or tun")
	dryRun := fs.Bool("dry-run", false, "with setup: print what would be done, change nothing")
	var vips stringList
	fs.Var(&vips, "vip", "virtual `address` served (repeatable, or comma-separated)")
	iface := fs.String("interface", "", "interface facing the director (needed for tun)")
	pin := fs.String("pin-path", "", "bpffs directory of the tun decapsulation program (default /sys/fs/bpf/govs-decap; one per host sharing a bpffs)")
	if code, stop := parseFlags(fs, args[1:]); stop {
		return code
	}
	s := realserver.Spec{Method: realserver.Method(strings.ToLower(*method)), Interface: *iface, PinPath: *pin}
	for _, v := range vips {
		for _, part := range strings.Split(v, ",") {
			a, err := netip.ParseAddr(strings.TrimSpace(part))
			if err != nil {
				fmt.Fprintf(stderr, "govs realserver: --vip %q: not an IP address\n", part)
				return 2
			}
			s.VIPs = append(s.VIPs, a)
		}
	}
	if err := s.Validate(); err != nil {
		fmt.Fprintf(stderr, "govs realserver: %v\n", err)
		return 2
	}
	switch action {
	case "check":
		ps, err := realserver.Check(s)
		if err != nil {
			fmt.Fprintf(stderr, "govs realserver check: %v\n", err)
			return 1
		}
		if len(ps) > 0 {
			fmt.Fprintf(stdout, "not ready for %s:\n%s", strings.ToUpper(string(s.Method)), realserver.Summary(ps))
			return 1
		}
		fmt.Fprintf(stdout, "ready for %s\n", strings.ToUpper(string(s.Method)))
	case "setup":
		if *dryRun {
			ps, err := realserver.Check(s)
			if err != nil {
				fmt.Fprintf(stderr, "govs realserver: %v\n", err)
				return 1
			}
			if len(ps) == 0 {
				fmt.Fprintf(stdout, "nothing to do: ready for %s\n", strings.ToUpper(string(s.Method)))
				return 0
			}
			fmt.Fprintf(stdout, "would fix, for %s:\n%s", strings.ToUpper(string(s.Method)), realserver.Summary(ps))
			return 0
		}
		if err := realserver.Setup(s); err != nil {
			fmt.Fprintf(stderr, "govs realserver setup: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "real server set up for %s\n", strings.ToUpper(string(s.Method)))
	case "undo":
		if err := realserver.Undo(s); err != nil {
			fmt.Fprintf(stderr, "govs realserver undo: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, "virtual addresses removed")
	}
	return 0
}
