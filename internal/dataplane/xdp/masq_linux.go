package xdp

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/govs/govs/internal/dataplane"
)

// masqTable is the nftables table the masquerading rule lives in.
const masqTable = "govs_xdp"

// masqScript renders the nftables script that (re)creates the
// masquerading rule of seed 001 §3.5.3.1: traffic the real servers
// originate (updates, active-FTP data from port 20) leaves with the
// director's address. Connections the XDP program handles never reach
// netfilter; this only sees what the program passes to the kernel.
func masqScript(prefixes []netip.Prefix) string {
	var v4, v6 []string
	for _, p := range prefixes {
		if p.Addr().Is4() {
			v4 = append(v4, p.Masked().String())
		} else {
			v6 = append(v6, p.Masked().String())
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {}\ndelete table inet %s\ntable inet %s {\n", masqTable, masqTable, masqTable)
	b.WriteString("\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n")
	if len(v4) > 0 {
		set := strings.Join(v4, ", ")
		fmt.Fprintf(&b, "\t\tip saddr { %s } ip daddr != { %s } masquerade\n", set, set)
	}
	if len(v6) > 0 {
		set := strings.Join(v6, ", ")
		fmt.Fprintf(&b, "\t\tip6 saddr { %s } ip6 daddr != { %s } masquerade\n", set, set)
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

// installMasquerade loads the rule with nft in the dataplane's namespace.
// Without one configured it removes the table an earlier govs may have
// left (a stop with KeepOnClose keeps it for the restart), so a rule
// taken out of the configuration does not go on masquerading; a failure
// to do so is only logged, since this govs did not ask for nftables (it
// runs nft, which loads nf_tables where it is a module).
func (d *Dataplane) installMasquerade() error {
	if len(d.opts.Masquerade) == 0 {
		if _, err := exec.LookPath("nft"); err != nil {
			return nil
		}
		if err := d.nft(dropMasqScript); err != nil {
			// Info: this govs did not ask for nftables, and on a host
			// without it this fails at every start
			d.log.Info("xdp: could not check for a masquerading table an earlier govs left", "table", "inet "+masqTable, "err", err)
		}
		return nil
	}
	return d.nft(masqScript(d.opts.Masquerade))
}

// dropMasqScript deletes the table, and succeeds when it is absent.
var dropMasqScript = fmt.Sprintf("table inet %s {}\ndelete table inet %s\n", masqTable, masqTable)

// removeMasquerade deletes the table (no error when it is absent).
func (d *Dataplane) removeMasquerade() error {
	if len(d.opts.Masquerade) == 0 {
		return nil
	}
	return d.nft(dropMasqScript)
}

func (d *Dataplane) nft(script string) error {
	return inNS(d.ns, func() error {
		cmd := exec.Command("nft", "-f", "-")
		cmd.Stdin = strings.NewReader(script)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("xdp: nft: %w: %s", err, strings.TrimSpace(out.String()))
		}
		return nil
	})
}

// warnLocalVIPs logs, once per interface, that NAT replies the program
// leaves to the kernel (pass_nat_reply: no neighbour entry toward the
// client yet, or a reply too big for the path) are dropped there: they
// already carry the VIP as source, and when the VIP is an address of
// the director (a VRRP virtual_ipaddress) the kernel takes them for
// martians unless accept_local is set on the interface they came in on.
func (d *Dataplane) warnLocalVIPs(svcs []dataplane.Service) {
	if d.nl == nil {
		return
	}
	var vips []netip.Addr
	for _, s := range svcs {
		if a := s.Key.Addr.Unmap(); a.Is4() && natService(s) {
			vips = append(vips, a)
		}
	}
	if len(vips) == 0 {
		return
	}
	own := d.ownAddrs(netlink.FAMILY_V4)
	i := slices.IndexFunc(vips, func(a netip.Addr) bool { return own[a] })
	if i < 0 {
		return
	}
	vip := vips[i]
	for _, ifname := range d.opts.Interfaces {
		if d.warnedLocal[ifname] {
			continue
		}
		if v, err := d.confValue("ipv4", ifname, "accept_local"); err == nil && v == "0" {
			if d.warnedLocal == nil {
				d.warnedLocal = make(map[string]bool)
			}
			d.warnedLocal[ifname] = true
			d.log.Warn("xdp: a NAT reply the program cannot route goes to the kernel with the VIP as source, and the VIP is an address of this director: the kernel drops it as a martian unless accept_local is set",
				"vip", vip.String(), "interface", ifname, "sysctl", "net.ipv4.conf."+ifname+".accept_local=1")
		}
	}
}

// warnForwarding logs, once per interface and address family while it
// stays so, that an interface the program runs on does not forward
// although NAT or SNAT real servers of that family are configured:
// bpf_fib_lookup refuses to route for it (BPF_FIB_LKUP_RET_FWD_DISABLED),
// so every reply goes to the kernel (pass_nat_reply), the slow path,
// which drops it unless it forwards (IPv4 checks the interface too; IPv6
// only net.ipv6.conf.all.forwarding). IPVS NAT needs the same sysctl.
func (d *Dataplane) warnForwarding(svcs []dataplane.Service) {
	var need [2]bool // IPv4, IPv6
	for _, s := range svcs {
		for _, r := range withSorry(s) {
			if r.Method != dataplane.NAT && r.Method != dataplane.SNAT {
				continue
			}
			if r.Addr.Addr().Unmap().Is6() {
				need[1] = true
			} else {
				need[0] = true
			}
		}
	}
	for fam, name := range []string{"ipv4", "ipv6"} {
		for _, ifname := range d.opts.Interfaces {
			key := name + "/" + ifname
			if !need[fam] {
				delete(d.warnedFwd, key) // warned again when needed again
				continue
			}
			if v, err := d.confValue(name, ifname, "forwarding"); err != nil || v != "0" {
				delete(d.warnedFwd, key)
				continue
			}
			if d.warnedFwd[key] {
				continue
			}
			if d.warnedFwd == nil {
				d.warnedFwd = make(map[string]bool)
			}
			d.warnedFwd[key] = true
			d.log.Warn("xdp: the interface does not forward, so the program cannot route NAT and SNAT replies: they go to the kernel, slower, and are dropped there unless the kernel forwards them",
				"interface", ifname, "family", name, "sysctl", "net."+name+".conf."+ifname+".forwarding=1")
		}
	}
}

// confValue reads net.FAMILY.conf.IFNAME.KEY (family "ipv4" or "ipv6")
// in the dataplane's namespace.
func (d *Dataplane) confValue(family, ifname, key string) (string, error) {
	var v []byte
	err := inNS(d.ns, func() (err error) {
		v, err = os.ReadFile("/proc/sys/net/" + family + "/conf/" + ifname + "/" + key)
		return err
	})
	return strings.TrimSpace(string(v)), err
}
