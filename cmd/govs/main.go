// Command govs is a Layer-4 load-balancing director: LVS/IPVS, keepalived
// and Piranha as one program. See `govs help`.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `govs — a Layer-4 load-balancing director (LVS/IPVS + keepalived + Piranha)

Usage:
  govs <command> [flags]

Commands:
  run           run the director (reads keepalived.conf syntax)
  check         validate a configuration file
  import        convert a Piranha lvs.cf file to govs/keepalived syntax
  list          list virtual services like ipvsadm -L (talks to a running govs)
  status        summary of a running govs: VRRP roles, services, health
  reload        ask a running govs to reload its configuration
  set           change a weight, drain or disable a server or service at run time
  realserver    set up or verify a real server for DR/TUN (VIP on lo, ARP settings, decap)
  web-password  set the web UI's password (bcrypt hash into govs_web_password)
  config-push   send the configuration files to the sync peers now
  bgp           BGP sessions and routes; --withdraw / --announce for maintenance
  signum        print the signal that writes keepalived's state files (keepalived --signum)
  version       print the version
  demo          helpers of scripts/quickstart.sh: a demo backend, a client that counts answers

Run 'govs <command> --help' for the flags of a command.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the process exit code: 0 on
// success, 1 on failure, 2 on usage errors.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	if name, ok := strings.CutPrefix(cmd, "--signum="); ok {
		// keepalived's spelling, for scripts written for it
		cmd, rest = "signum", []string{name}
	}
	switch cmd {
	case "signum":
		return cmdSignum(rest, stdout, stderr)
	case "run":
		return cmdRun(rest, stdout, stderr)
	case "check":
		return cmdCheck(rest, stdin, stdout, stderr)
	case "import":
		return cmdImport(rest, stdin, stdout, stderr)
	case "list":
		return cmdList(rest, stdout, stderr)
	case "reload":
		return cmdReload(rest, stdout, stderr)
	case "status":
		return cmdStatus(rest, stdout, stderr)
	case "set":
		return cmdSet(rest, stdout, stderr)
	case "realserver":
		return cmdRealServer(rest, stdout, stderr)
	case "config-push":
		return cmdConfigPush(rest, stdout, stderr)
	case "bgp":
		return cmdBGP(rest, stdout, stderr)
	case "web-password":
		return cmdWebPassword(rest, stdin, stdout, stderr)
	case "demo":
		return cmdDemo(rest, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "govs", version)
		return 0
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "govs: unknown command %q\n\n%s", cmd, usage)
	return 2
}
