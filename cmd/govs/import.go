package main

import (
	"fmt"
	"io"
	"os"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/lvscf"
)

func cmdImport(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("import", "import [-o FILE] [-backup] [-vrid N] FILE|-\n\nConvert a Piranha lvs.cf to govs (keepalived syntax). The configuration goes\nto standard output (or -o FILE); the report of every mapping decision goes\nto standard error as FILE:LINE: note|warning|error: MESSAGE. Exit status:\n0 converted (warnings allowed), 1 errors, 2 usage error.", stderr)
	out := fs.String("o", "", "write the configuration to `file` (atomically) instead of standard output")
	backup := fs.Bool("backup", false, "produce the backup router's configuration (unicast source and peer swapped, state BACKUP)")
	vrid := fs.Int("vrid", 0, fmt.Sprintf("virtual_router_id of the VRRP instance (default %d)", lvscf.DefaultVRID))
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "govs import: want one lvs.cf file (or - for standard input)")
		fs.Usage()
		return 2
	}
	if *vrid < 0 || *vrid > 255 {
		fmt.Fprintf(stderr, "govs import: -vrid %d: want 1..255\n", *vrid)
		return 2
	}
	file := fs.Arg(0)
	var data []byte
	var err error
	name := file
	if file == "-" {
		name = "<stdin>"
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		fmt.Fprintf(stderr, "govs import: %v\n", err)
		return 1
	}
	opts := lvscf.Options{Backup: *backup, VRID: *vrid}
	cfg, rep := lvscf.Import(name, data, opts)
	fmt.Fprint(stderr, rep.String())
	if rep.HasErrors() {
		fmt.Fprintf(stderr, "govs import: %s: %d error(s), no configuration written\n", name, rep.Count(lvscf.Error))
		return 1
	}
	text := lvscf.Render(name, cfg, opts)
	if *out != "" {
		if err := config.WriteFileAtomic(*out, text); err != nil {
			fmt.Fprintf(stderr, "govs import: %v\n", err)
			return 1
		}
		return 0
	}
	if _, err := stdout.Write(text); err != nil {
		fmt.Fprintf(stderr, "govs import: %v\n", err)
		return 1
	}
	return 0
}
