package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/web"
)

// cmdWebPassword sets the web UI's password: its bcrypt hash goes into
// global_defs as govs_web_password (the rest of the file is kept as it is
// written), or is printed.
func cmdWebPassword(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlagSet("web-password", "web-password [-f FILE] [--listen ADDR] [--print]\n\nSet the web UI's password: read it (twice, without echo, from a terminal;\nelse the first line of standard input), and write its bcrypt hash into the\nconfiguration's global_defs as govs_web_password. A running govs takes it\nat its next reload; sessions opened with the old password end.", stderr)
	file := fs.String("f", DefaultConfig, "configuration `file` to write the hash into")
	listen := fs.String("listen", "", "also set govs_web_listen to this `address` (e.g. :3636; takes effect when govs starts)")
	print := fs.Bool("print", false, "print the hash instead of writing it into the file")
	configID := fs.String("config-id", "", "the `id` the config's conditional lines (@ID) are read with, as govs run's (default: the host name up to its first dot)")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "govs web-password: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	pw, err := readPassword(stdin, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "govs web-password: %v\n", err)
		return 1
	}
	hash, err := web.HashPassword(pw)
	if err != nil {
		fmt.Fprintf(stderr, "govs web-password: %v\n", err)
		return 1
	}
	if *print {
		fmt.Fprintln(stdout, hash)
		return 0
	}
	res, err := config.Update(*file, &config.ParseOptions{ConfigID: *configID}, "", func(c *config.Config) error {
		c.Global.Govs.WebPassword = hash
		if *listen != "" {
			c.Global.Govs.WebListen = *listen
		}
		return nil
	})
	var inv *config.InvalidError
	if errors.As(err, &inv) {
		for _, d := range inv.Problems {
			fmt.Fprintln(stderr, d)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "govs web-password: %s: %v\n", *file, err)
		return 1
	}
	fmt.Fprintf(stdout, "govs_web_password written to %s\n", strings.Join(res.Files, ", "))
	for _, f := range res.Files {
		if fi, err := os.Stat(f); err == nil && fi.Mode().Perm()&0o004 != 0 {
			fmt.Fprintf(stdout, "warning: %s is readable by every user, who can try to guess the password from its hash offline (chmod o-r %s)\n", f, f)
		}
	}
	if res.Config.Global.Govs.WebListen == "" {
		fmt.Fprintln(stdout, "govs_web_listen is not set: the web UI starts when it is (e.g. --listen :3636) and govs starts")
	} else {
		fmt.Fprintf(stdout, "the web UI listens on %s; a running govs takes the new password at its next reload (govs reload)\n", res.Config.Global.Govs.WebListen)
	}
	return 0
}

func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(stderr, "Again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		if string(a) != string(b) {
			return "", errors.New("the two passwords differ")
		}
		return string(a), nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", fmt.Errorf("reading the password from standard input: %v", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
