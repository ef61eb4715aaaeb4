package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/director"
)

// DefaultConfig is where run and check look without -f.
const DefaultConfig = "/etc/govs/govs.conf"

// parseFlags parses args; stop is true when the command must return code
// at once: 0 after -h/--help, 2 on a usage error.
func parseFlags(fs *flag.FlagSet, args []string) (code int, stop bool) {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, flag.ErrHelp):
		return 0, true
	}
	return 2, true
}

func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: govs %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func cmdCheck(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("check", "check [-f FILE|-] [--config-id ID] [--dump] [-q] [--strict]\n\nValidate a configuration (keepalived.conf syntax). Exit status: 0 valid\n(warnings allowed unless --strict), 1 errors, 2 usage error.", stderr)
	file := fs.String("f", DefaultConfig, "configuration `file`, or - for standard input")
	dump := fs.Bool("dump", false, "print the normalized model as JSON")
	quiet := fs.Bool("q", false, "do not print warnings")
	strict := fs.Bool("strict", false, "treat warnings (e.g. unsupported keywords) as errors")
	configID := fs.String("config-id", "", "the `id` conditional lines (@ID, @^ID) are read with, as keepalived's -i (default: the host name up to its first dot)")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "govs check: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg, diags, err := loadConfig(*file, stdin, *configID)
	if err != nil {
		fmt.Fprintf(stderr, "govs check: %v\n", err)
		return 1
	}
	for _, d := range diags {
		if d.Severity == config.Warning && *quiet {
			continue
		}
		fmt.Fprintln(stderr, d)
	}
	name := *file
	if name == "-" {
		name = "<stdin>"
	}
	if diags.HasErrors() {
		fmt.Fprintf(stderr, "govs check: %s: %d error(s)\n", name, len(diags.Errors()))
		return 1
	}
	// What the running parts would refuse (health check and VRRP
	// settings) is an error here too, so check agrees with run and reload.
	if err := director.Check(cfg); err != nil {
		fmt.Fprintf(stderr, "%v\ngovs check: %s: the configuration would be refused by govs run\n", err, name)
		return 1
	}
	if *strict && len(diags) > 0 {
		fmt.Fprintf(stderr, "govs check: %s: %d warning(s) (--strict)\n", name, len(diags))
		return 1
	}
	if *dump {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(cfg); err != nil {
			fmt.Fprintf(stderr, "govs check: %v\n", err)
			return 1
		}
		return 0
	}
	bgp := ""
	if n := len(cfg.BFDInstances); n > 0 {
		bgp = fmt.Sprintf(", %d BFD sessions", n)
	}
	if cfg.BGP != nil {
		bgp += fmt.Sprintf(", BGP AS %d to %d neighbors", cfg.BGP.LocalAS, len(cfg.BGP.Neighbors))
	}
	fmt.Fprintf(stdout, "%s: configuration is valid (%d virtual servers, %d real servers, %d VRRP instances%s)\n",
		name, len(cfg.VirtualServers), countRS(cfg), len(cfg.VRRPInstances), bgp)
	return 0
}

func countRS(cfg *config.Config) int {
	n := 0
	for _, vs := range cfg.VirtualServers {
		n += len(vs.RealServers)
	}
	return n
}

// loadConfig parses and validates a file, or standard input for "-".
func loadConfig(file string, stdin io.Reader, configID string) (*config.Config, config.Diagnostics, error) {
	opts := &config.ParseOptions{ConfigID: configID}
	if file == "-" {
		data, err := io.ReadAll(stdin)
		if err != nil {
			return nil, nil, fmt.Errorf("read standard input: %w", err)
		}
		cfg, diags := config.LoadBytes("<stdin>", data, opts)
		return cfg, diags, nil
	}
	cfg, diags := config.Load(file, opts)
	return cfg, diags, nil
}
