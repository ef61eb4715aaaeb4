// Package realserver prepares (or verifies) a Linux real server for direct
// routing and tunnelling, as seeds 000 and 002 describe: the virtual
// address on the loopback interface, never answered for in ARP
// (arp_ignore=1, arp_announce=2), and for TUN a decapsulation program on
// the receiving interface (this kernel may have no ipip module).
package realserver

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Method is the forwarding method the real server is prepared for.
type Method string

const (
	DR  Method = "dr"
	TUN Method = "tun"
)

// Spec says what to set up.
type Spec struct {
	Method Method
	VIPs   []netip.Addr
	// Interface faces the director: its ARP settings are changed too, and
	// for TUN the decapsulation program is attached to it.
	Interface string
	// PinPath is the bpffs directory of the decapsulation program (TUN);
	// empty means the default. Hosts sharing one bpffs (network
	// namespaces of one machine) need one path each.
	PinPath string
}

// Validate reports a spec that cannot be applied.
func (s Spec) Validate() error {
	var errs []error
	if s.Method != DR && s.Method != TUN {
		errs = append(errs, fmt.Errorf("method %q: want dr or tun", s.Method))
	}
	if len(s.VIPs) == 0 {
		errs = append(errs, errors.New("no virtual address (--vip)"))
	}
	if s.Method == TUN && s.Interface == "" {
		errs = append(errs, errors.New("tun needs --interface: the interface that receives the tunnelled packets"))
	}
	return errors.Join(errs...)
}

// Problem is one thing that is not as the method needs it.
type Problem struct {
	What string // what is wrong
	Fix  string // what setup does about it
}

func (p Problem) String() string { return p.What + " (fix: " + p.Fix + ")" }

// sysctls returns the settings DR/TUN real servers need, as
// path → wanted value.
func (s Spec) sysctls() []sysctl {
	ifs := []string{"all", "lo"}
	if s.Interface != "" {
		ifs = append(ifs, s.Interface)
	}
	var out []sysctl
	if hasV4(s.VIPs) {
		for _, i := range ifs {
			out = append(out,
				sysctl{fmt.Sprintf("net/ipv4/conf/%s/arp_ignore", i), "1"},
				sysctl{fmt.Sprintf("net/ipv4/conf/%s/arp_announce", i), "2"})
		}
	}
	if s.Method == TUN && s.Interface != "" && hasV4(s.VIPs) {
		// The decapsulated packet arrives from the client's address on
		// the tunnel's interface; strict reverse-path filtering may drop
		// it when the client is routed elsewhere.
		out = append(out, sysctl{fmt.Sprintf("net/ipv4/conf/%s/rp_filter", s.Interface), "2"})
	}
	return out
}

type sysctl struct{ path, want string }

func hasV4(vs []netip.Addr) bool {
	for _, v := range vs {
		if v.Is4() {
			return true
		}
	}
	return false
}

// Summary formats problems one per line.
func Summary(ps []Problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString("- " + p.String() + "\n")
	}
	return b.String()
}
