// Package notify runs operator scripts and sends e-mail alerts the way
// keepalived does: notify_up/notify_down/quorum_up/quorum_down and VRRP
// notify scripts (with enable_script_security and script_user), and
// smtp_alert mails to notification_email through smtp_server.
//
// Runner executes a Command without a shell, in its own process group, as
// the configured user, and kills the whole group on timeout. Mailer sends
// one message per alert. Notifier ties both together for the director
// and the VRRP instances.
package notify

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Command is a program with its arguments, run without a shell.
type Command struct {
	Path  string
	Args  []string
	User  string // run as this user; "" = Runner.DefaultUser
	Group string // "" = the user's primary group
}

// String renders the command for logs.
func (c Command) String() string {
	if len(c.Args) == 0 {
		return c.Path
	}
	return c.Path + " " + strings.Join(c.Args, " ")
}

// ParseCommand splits a keepalived script string into a Command:
// unquoted whitespace separates arguments, single quotes keep spaces
// (keepalived.conf(5) "SCRIPTS"), and a backslash escapes the next
// character. user and group are the optional words that follow the
// script in keepalived.conf (`notify_up "/bin/x a b" user group`).
func ParseCommand(s, user, group string) (Command, error) {
	var (
		words []string
		cur   strings.Builder
		inQ   bool
		have  bool
	)
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			have = true
		case ch == '\'':
			inQ = !inQ
			have = true
		case !inQ && (ch == ' ' || ch == '\t'):
			if have {
				words = append(words, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(ch)
			have = true
		}
	}
	if inQ {
		return Command{}, errors.New("unterminated quote in script")
	}
	if have {
		words = append(words, cur.String())
	}
	if len(words) == 0 || words[0] == "" {
		return Command{}, errors.New("empty script")
	}
	return Command{Path: words[0], Args: words[1:], User: user, Group: group}, nil
}

// Output is what a run produced.
type Output struct {
	Started  bool   // the process was started
	ExitCode int    // -1 when killed by a signal
	Output   []byte // standard output, at most MaxOutput bytes
	TimedOut bool   // the context expired and the process group was killed
}

// MaxOutput bounds the captured standard output.
const MaxOutput = 64 << 10

// ExitError reports a non-zero exit status.
type ExitError struct{ Code int }

func (e *ExitError) Error() string {
	if e.Code < 0 {
		return "killed by signal"
	}
	return fmt.Sprintf("exit status %d", e.Code)
}

// TimeoutError reports a command stopped because its context ended.
type TimeoutError struct{ Cause error }

func (e *TimeoutError) Error() string { return "timeout, process group killed" }

// Unwrap returns the context's cause.
func (e *TimeoutError) Unwrap() error { return e.Cause }

// ErrInsecure is wrapped when script security refuses a script.
var ErrInsecure = errors.New("script is writable by a non-root user")

// ErrNotSupported is returned on platforms where scripts cannot run.
var ErrNotSupported = errors.New("running scripts is supported on linux only")

// Runner runs commands. The zero value runs commands as the current user
// without script security and with a one-second kill grace.
type Runner struct {
	// Security is keepalived's enable_script_security: a command that
	// would run as root is refused when the file or any directory above
	// it can be changed by a non-root user.
	Security bool
	// DefaultUser/DefaultGroup is script_user: the identity of commands
	// that name none. "" = the current user.
	DefaultUser, DefaultGroup string
	// KillGrace is the time between SIGTERM and SIGKILL to the process
	// group on timeout (default 1 s).
	KillGrace time.Duration
	// Env is the environment of the commands (default: a minimal PATH).
	Env []string
}

func (r *Runner) grace() time.Duration {
	if r == nil || r.KillGrace <= 0 {
		return time.Second
	}
	return r.KillGrace
}

func (r *Runner) env() []string {
	if r != nil && r.Env != nil {
		return r.Env
	}
	return []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
}
