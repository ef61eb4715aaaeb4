package config

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// advancedConf uses keepalived's parameter substitution, multiline
// definitions with conditional lines, ~SEQ, ~SEQx, ~LST and predefined
// variables (the ADVANCED CONFIGURATION of its manual).
const advancedConf = `global_defs {
    router_id R_${_INSTANCE}
}
$ADDRESS_BASE=10.2.${ADDRESS_BASE_SUB}
$ADDRESS_BASE_SUB=0
$INSTANCE= \
vrrp_instance VI_${NUM} { \
    interface v0 \
    virtual_router_id ${NUM} \
    @high priority 130 \
    @^high priority 120 \
    advert_int 1 \
    virtual_ipaddress { \
        ${ADDRESS_BASE}.${NUM}/32 \
    } \
}
$NUM=1
$INSTANCE
$ADDRESS_BASE_SUB=10
$NUM=2
$INSTANCE
~SEQ(NUM, 3, 2, 7) $INSTANCE
$X=5
vrrp_instance L {
    interface v0
    virtual_router_id 99
    virtual_ipaddress {
        ~LST({IP, IP1}, {10,1},{20,4}) ~SEQ(IP2,168,2,170) 192.${IP2}.${IP}.${IP1}/32
        10.1.2.$X
        10.1.3.${X}
    }
    notify_master "/bin/echo ${_PWD} ${_HASH}${_BANG} $X"
    notify_backup "/bin/echo $X x"
}
vrrp_instance L6 {
    interface v0
    virtual_router_id 98
    virtual_ipaddress {
        ~SEQx(AD, 0x90, 0x10, 0xa0) fe80::20:${AD}:1/128
    }
}
`

// TestAdvancedConfigAsKeepalived (root, keepalived): keepalived 2.2.7
// reads advancedConf (its -d dump of the VRRP configuration, in a
// namespace) as govs does: router id, instances, priorities, virtual
// addresses and notify scripts, for two config-ids.
func TestAdvancedConfigAsKeepalived(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (keepalived runs in a network namespace)")
	}
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Skip("needs keepalived")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(advancedConf), 0o644); err != nil {
		t.Fatal(err)
	}
	ns := fmt.Sprintf("cfgka%d", os.Getpid()%100000)
	run := func(args ...string) {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	exec.Command("ip", "netns", "del", ns).Run()
	run("ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run("ip", "-n", ns, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
	run("ip", "-n", ns, "link", "set", "v0", "up")
	run("ip", "-n", ns, "link", "set", "v1", "up")

	for _, id := range []string{"high", "low"} {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		// -d dumps the configuration it read at start; it is stopped
		// (SIGTERM) by the timeout
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "keepalived", "-n", "-l", "-D", "-d", "-P", "-i", id,
			"-f", conf, "-p", filepath.Join(dir, id+".pid"), "-r", filepath.Join(dir, id+"-vrrp.pid"))
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = 5 * time.Second
		out, _ := cmd.CombinedOutput()
		cancel()
		ka := keepalivedDump(string(out))
		if len(ka) < 5 {
			t.Fatalf("config-id %s: keepalived's dump:\n%s", id, out)
		}
		cfg, ds := Parse(conf, []byte(advancedConf), &ParseOptions{ConfigID: id})
		if ds.HasErrors() {
			t.Fatalf("config-id %s: %s", id, diagStrings(ds))
		}
		gv := govsView(cfg)
		if !slices.Equal(ka, gv) {
			t.Errorf("config-id %s: keepalived 2.2.7 read\n%s\ngovs\n%s", id, strings.Join(ka, "\n"), strings.Join(gv, "\n"))
		} else {
			t.Logf("config-id %s, alike:\n%s", id, strings.Join(gv, "\n"))
		}
	}
}

// keepalivedDump reads keepalived's -d dump: the router id, then per
// instance its name, priority, virtual addresses (without prefix
// lengths) and notify scripts' arguments after the program.
func keepalivedDump(out string) []string {
	var res []string
	var cur []string
	flush := func() {
		if cur != nil {
			res = append(res, strings.Join(cur, " "))
		}
		cur = nil
	}
	inVIPs := 0
	addr := regexp.MustCompile(`^\s+([0-9a-f.:]+)(/\d+)? dev `)
	stamp := regexp.MustCompile(`^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}: `)
	for _, l := range strings.Split(out, "\n") {
		l = stamp.ReplaceAllString(l, "")
		switch {
		case inVIPs > 0:
			if m := addr.FindStringSubmatch(l); m != nil {
				cur = append(cur, m[1])
			}
			inVIPs--
		case strings.HasPrefix(l, " Router ID = "):
			res = append(res, "router_id "+strings.TrimPrefix(l, " Router ID = "))
		case strings.HasPrefix(l, " VRRP Instance = "):
			flush()
			cur = []string{strings.TrimPrefix(l, " VRRP Instance = ")}
		case cur != nil && strings.HasPrefix(l, "   Priority = "):
			cur = append(cur, strings.TrimPrefix(l, "   Priority = "))
		case cur != nil && strings.HasPrefix(l, "   Virtual IP ("):
			fmt.Sscanf(strings.TrimPrefix(l, "   Virtual IP ("), "%d", &inVIPs)
		case cur != nil && (strings.HasPrefix(l, "   Master state transition script = ") || strings.HasPrefix(l, "   Backup state transition script = ")):
			_, s, _ := strings.Cut(l, " = ")
			s, _, _ = strings.Cut(s, ", uid:gid")
			f := strings.Split(s, "' '")
			cur = append(cur, strings.Trim(strings.Join(f[1:], " "), "'"))
		case strings.HasPrefix(l, " VRRP Sync Group") || strings.HasPrefix(l, "------< VRRP Scripts"):
			flush()
		}
	}
	flush()
	return res
}

// govsView is what keepalivedDump reads, from govs's model.
func govsView(cfg *Config) []string {
	res := []string{"router_id " + cfg.Global.RouterID}
	for _, v := range cfg.VRRPInstances {
		cur := []string{v.Name, fmt.Sprint(v.Priority)}
		for _, a := range v.VIPs {
			cur = append(cur, a.Prefix.Addr().String())
		}
		for _, s := range []*Script{v.Notify.Backup, v.Notify.Master} {
			if s != nil {
				_, args, _ := strings.Cut(s.Cmd, " ")
				cur = append(cur, args)
			}
		}
		res = append(res, strings.Join(cur, " "))
	}
	return res
}
