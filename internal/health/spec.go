// Package health checks real servers the way keepalived's checkers and
// Piranha's nanny do, and turns the results into state transitions.
//
// A Spec describes one check (plain data, see Defaults and Validate). New
// builds the Checker for a Spec; a Checker performs a single attempt and
// returns a Result without logging. The Supervisor runs thousands of
// checks concurrently (delay loop, timeouts, retries, rise/fall, warmup,
// alpha, Piranha's service timeout and re-entry) and emits transitions
// only. ServiceState turns real-server states into the effective server
// list of a virtual service (inhibit on failure, sorry server, quorum with
// hysteresis) and the notification events that go with it.
package health

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"
)

// Kind names a checker type, spelled as in keepalived.conf.
type Kind string

// The checker kinds. SendExpect is Piranha's nanny send/expect (and
// send_program when SendExpectSpec.Program is set).
const (
	TCP     Kind = "TCP_CHECK"
	HTTPGet Kind = "HTTP_GET"
	SSLGet  Kind = "SSL_GET"
	SMTP    Kind = "SMTP_CHECK"
	DNS     Kind = "DNS_CHECK"
	Misc    Kind = "MISC_CHECK"
	UDP     Kind = "UDP_CHECK"
	Ping    Kind = "PING_CHECK"
	File    Kind = "FILE_CHECK"
	// BFD follows a BFD session (bfd_instance): the server is up while
	// the session is Up.
	BFD        Kind = "BFD_CHECK"
	SendExpect Kind = "SEND_EXPECT"
)

// Spec is the configuration of one check of one real server. Zero values
// mean "keepalived's default" (applied by Defaults); the few options whose
// zero is a meaningful explicit value are pointers.
type Spec struct {
	Kind Kind
	// Target is the real server (address and port). %h and %p in
	// programs expand to it.
	Target netip.AddrPort

	// Connection options (keepalived's generic checker options).
	ConnectIP   netip.Addr // default Target's address
	ConnectPort uint16     // default Target's port
	BindTo      netip.Addr // source address
	BindPort    uint16     // source port
	BindIf      string     // SO_BINDTODEVICE (Linux)
	FWMark      uint32     // SO_MARK on checker packets (Linux)

	// Timing.
	ConnectTimeout   time.Duration  // per attempt; default 5 s
	Retry            *int           // extra attempts while up; default 1 (MISC 0, DNS 3)
	DelayBeforeRetry time.Duration  // default 3 s HTTP/SSL, delay_loop DNS, 1 s others
	DelayLoop        time.Duration  // default 60 s
	Warmup           *time.Duration // random initial delay ≤ Warmup; default DelayLoop, 0 disables
	Alpha            bool           // start down
	LogAllFailures   bool           // every failed attempt to SupervisorConfig.OnFailure (log_all_failures)
	Rise, Fall       int            // consecutive good/bad rounds to change state; default 1

	// Piranha nanny semantics (0 = off).
	ServiceTimeout time.Duration // down once failing for this long
	Reentry        time.Duration // up only after healthy for this long

	HTTP       *HTTPSpec
	Misc       *MiscSpec
	SendExpect *SendExpectSpec
	UDP        *UDPSpec
	DNS        *DNSSpec
	SMTP       *SMTPSpec
	File       *FileSpec
	// BFDName is the bfd_instance a BFD_CHECK follows.
	BFDName string
}

// HTTPSpec configures HTTP_GET and SSL_GET.
type HTTPSpec struct {
	Protocol    string // "1.0", "1.0C" (1.0 + Connection: close) or "1.1"; default "1.0"
	URLs        []URLSpec
	VirtualHost string // default Host header for URLs without their own

	// SSL_GET only.
	SNI     bool   // send SNI (enable_sni)
	SNIName string // default VirtualHost, else the connect address
	Verify  bool   // verify the certificate chain and name (keepalived does not)
	CAFile  string // PEM roots for Verify; default system roots
}

// URLSpec is one `url { }` block.
type URLSpec struct {
	Path         string        // default "/"
	StatusCodes  []StatusRange // default 200-299
	Digest       string        // lowercase hex MD5 of the body, as genhash prints it
	VirtualHost  string
	Regex        string // RE2 syntax (keepalived uses PCRE2)
	RegexNoMatch bool
}

// StatusRange is an inclusive HTTP status code range.
type StatusRange struct{ Min, Max int }

// MiscSpec configures MISC_CHECK.
type MiscSpec struct {
	// Path and Args form the command; keepalived.conf's misc_path string
	// is split by the director (notify.ParseCommand). %h and %p expand to
	// the target address and port. No shell is involved unless Path is one.
	Path    string
	Args    []string
	Timeout time.Duration // misc_timeout; default DelayLoop
	Dynamic bool          // exit 2..255 sets weight status-2
	User    string        // default the runner's script user
	Group   string
}

// SendExpectSpec configures Piranha's send/expect (and send_program).
type SendExpectSpec struct {
	// Send is the string as written in lvs.cf: the checker decodes the
	// escapes \n \r \t and \\ (backslash escapes the next character).
	// Empty means connect only (and read Expect if set).
	Send     string
	Expect   string
	UseRegex bool
	// Program, when set, replaces Send: it is run with %h/%p expanded
	// and its standard output is compared with Expect (exit status 0 is
	// required when Expect is empty).
	Program []string
	User    string
	Group   string
}

// UDPSpec configures UDP_CHECK.
type UDPSpec struct {
	Payload        []byte // default 16 random bytes
	RequireReply   bool
	ReplyPattern   string // hex with X wildcards (keepalived HEX_STR); "" = any content
	MinReplyLength int    // default 0
	MaxReplyLength int    // default 255
}

// DNSSpec configures DNS_CHECK.
type DNSSpec struct {
	Type string // A, NS, CNAME, SOA, MX, TXT, AAAA; default SOA
	Name string // default "."
}

// SMTPSpec configures SMTP_CHECK.
type SMTPSpec struct {
	HeloName string // default the local host name
}

// FileSpec configures FILE_CHECK (a track_file as seen by a real server).
type FileSpec struct {
	Path    string
	Weight  *int // multiplier; default 1
	Reverse bool
	Dynamic bool // add value×weight to the server's weight
}

// Port returns the port the checker connects to.
func (s *Spec) Port() uint16 {
	if s.ConnectPort != 0 {
		return s.ConnectPort
	}
	return s.Target.Port()
}

// Addr returns the address the checker connects to.
func (s *Spec) Addr() netip.Addr {
	if s.ConnectIP.IsValid() {
		return s.ConnectIP
	}
	return s.Target.Addr()
}

// ConnectAddr is Addr and Port together.
func (s *Spec) ConnectAddr() netip.AddrPort { return netip.AddrPortFrom(s.Addr(), s.Port()) }

// AttemptTimeout is the deadline of one attempt: misc_timeout for
// programs, connect_timeout otherwise.
func (s *Spec) AttemptTimeout() time.Duration {
	switch {
	case s.Kind == Misc && s.Misc != nil && s.Misc.Timeout > 0:
		return s.Misc.Timeout
	case s.Kind == Misc:
		return s.DelayLoop
	}
	return s.ConnectTimeout
}

// Default values (keepalived.conf(5), reference §2.1).
const (
	DefaultDelayLoop      = 60 * time.Second
	DefaultConnectTimeout = 5 * time.Second
	DefaultFileDelayLoop  = time.Second
)

func intp(v int) *int                     { return &v }
func durp(v time.Duration) *time.Duration { return &v }

// Defaults returns a copy of s with every unset option given keepalived's
// default. Sub-specs are copied, never shared with s.
func (s Spec) Defaults() Spec {
	if s.DelayLoop == 0 {
		s.DelayLoop = DefaultDelayLoop
		if s.Kind == File {
			// govs polls the file; keepalived uses inotify.
			s.DelayLoop = DefaultFileDelayLoop
		}
	}
	if s.Kind == BFD {
		// keepalived acts on the session's events; govs reads its
		// state this often, whatever delay_loop, retry and warmup say
		// (a virtual_server's retry would otherwise delay a failure)
		s.DelayLoop = BFDPollInterval
		s.Retry, s.Warmup = intp(0), durp(0)
	}
	if s.ConnectTimeout == 0 {
		s.ConnectTimeout = DefaultConnectTimeout
	}
	if s.Retry == nil {
		switch s.Kind {
		case Misc, File, BFD:
			s.Retry = intp(0)
		case DNS:
			s.Retry = intp(3)
		default:
			s.Retry = intp(1)
		}
	} else {
		s.Retry = intp(*s.Retry)
	}
	if s.DelayBeforeRetry == 0 {
		switch s.Kind {
		case HTTPGet, SSLGet:
			s.DelayBeforeRetry = 3 * time.Second
		case DNS:
			s.DelayBeforeRetry = s.DelayLoop
		default:
			s.DelayBeforeRetry = time.Second
		}
	}
	if s.Warmup == nil {
		w := s.DelayLoop
		if s.Kind == File || s.Kind == BFD {
			w = 0
		}
		s.Warmup = durp(w)
	} else {
		s.Warmup = durp(*s.Warmup)
	}
	if s.Rise <= 0 {
		s.Rise = 1
	}
	if s.Fall <= 0 {
		s.Fall = 1
	}
	if s.HTTP != nil {
		h := *s.HTTP
		if h.Protocol == "" {
			h.Protocol = "1.0"
		}
		h.URLs = make([]URLSpec, len(s.HTTP.URLs))
		for i, u := range s.HTTP.URLs {
			if u.Path == "" {
				u.Path = "/"
			}
			if len(u.StatusCodes) == 0 {
				u.StatusCodes = []StatusRange{{200, 299}}
			} else {
				u.StatusCodes = append([]StatusRange(nil), u.StatusCodes...)
			}
			u.Digest = strings.ToLower(u.Digest)
			h.URLs[i] = u
		}
		if len(h.URLs) == 0 {
			h.URLs = []URLSpec{{Path: "/", StatusCodes: []StatusRange{{200, 299}}}}
		}
		s.HTTP = &h
	} else if s.Kind == HTTPGet || s.Kind == SSLGet {
		s.HTTP = &HTTPSpec{Protocol: "1.0", URLs: []URLSpec{{Path: "/", StatusCodes: []StatusRange{{200, 299}}}}}
	}
	if s.Misc != nil {
		m := *s.Misc
		m.Args = append([]string(nil), m.Args...)
		if m.Timeout == 0 {
			m.Timeout = s.DelayLoop
		}
		s.Misc = &m
	}
	if s.SendExpect != nil {
		se := *s.SendExpect
		se.Program = append([]string(nil), se.Program...)
		s.SendExpect = &se
	}
	if s.UDP != nil {
		u := *s.UDP
		u.Payload = append([]byte(nil), u.Payload...)
		if u.MaxReplyLength == 0 {
			u.MaxReplyLength = 255
		}
		s.UDP = &u
	} else if s.Kind == UDP {
		s.UDP = &UDPSpec{MaxReplyLength: 255}
	}
	if s.DNS != nil {
		d := *s.DNS
		s.DNS = &d
	} else if s.Kind == DNS {
		s.DNS = &DNSSpec{}
	}
	if s.DNS != nil {
		if s.DNS.Type == "" {
			s.DNS.Type = "SOA"
		}
		s.DNS.Type = strings.ToUpper(s.DNS.Type)
		if s.DNS.Name == "" {
			s.DNS.Name = "."
		}
	}
	if s.SMTP != nil {
		m := *s.SMTP
		s.SMTP = &m
	}
	if s.File != nil {
		f := *s.File
		if f.Weight == nil {
			f.Weight = intp(1)
		} else {
			f.Weight = intp(*f.Weight)
		}
		s.File = &f
	}
	return s
}

// ErrInvalid is wrapped by every Validate error.
var ErrInvalid = errors.New("invalid health check")

// Validate reports every problem of a Spec (after Defaults), joined.
func (s *Spec) Validate() error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalid, s.Kind, fmt.Sprintf(format, a...)))
	}
	needsAddr := s.Kind != File && s.Kind != Misc && s.Kind != BFD
	if needsAddr && !s.Addr().IsValid() {
		bad("no address to check")
	}
	needsPort := needsAddr && s.Kind != Ping
	if needsPort && s.Port() == 0 {
		bad("no port to check (set connect_port or the real server port)")
	}
	if s.BindTo.IsValid() && s.Addr().IsValid() && s.BindTo.Unmap().Is4() != s.Addr().Unmap().Is4() {
		bad("bindto %s and connect address %s are of different families", s.BindTo, s.Addr())
	}
	if s.ConnectTimeout < 0 || s.DelayLoop <= 0 || s.DelayBeforeRetry < 0 {
		bad("timers must be positive")
	}
	if s.Retry != nil && *s.Retry < 0 {
		bad("retry %d is negative", *s.Retry)
	}
	if s.Warmup != nil && *s.Warmup < 0 {
		bad("warmup is negative")
	}
	if s.ServiceTimeout < 0 || s.Reentry < 0 {
		bad("timeout and reentry must not be negative")
	}
	switch s.Kind {
	case TCP, Ping:
	case HTTPGet, SSLGet:
		if s.HTTP == nil {
			bad("missing url")
			break
		}
		switch s.HTTP.Protocol {
		case "1.0", "1.0C", "1.1":
		default:
			bad("http_protocol %q: want 1.0, 1.0C or 1.1", s.HTTP.Protocol)
		}
		for _, u := range s.HTTP.URLs {
			if !strings.HasPrefix(u.Path, "/") {
				bad("url path %q does not start with /", u.Path)
			}
			for _, r := range u.StatusCodes {
				if r.Min < 100 || r.Max > 999 || r.Min > r.Max {
					bad("status_code range %d-%d", r.Min, r.Max)
				}
			}
			if u.Digest != "" && !isHex(u.Digest, 32) {
				bad("digest %q is not 32 hex digits", u.Digest)
			}
			if u.Regex != "" {
				if _, err := regexp.Compile(u.Regex); err != nil {
					bad("regex: %v", err)
				}
			}
		}
	case Misc:
		if s.Misc == nil || s.Misc.Path == "" {
			bad("misc_path is empty")
		}
	case SendExpect:
		if s.SendExpect == nil {
			bad("missing send/expect")
			break
		}
		if len(s.SendExpect.Program) > 0 && s.SendExpect.Program[0] == "" {
			bad("send_program is empty")
		}
		if s.SendExpect.UseRegex {
			if _, err := regexp.Compile(s.SendExpect.Expect); err != nil {
				bad("expect regex: %v", err)
			}
		}
	case UDP:
		if s.UDP != nil {
			if _, _, err := ParseHexPattern(s.UDP.ReplyPattern); err != nil {
				bad("require_reply: %v", err)
			}
			if s.UDP.MinReplyLength < 0 || s.UDP.MaxReplyLength < s.UDP.MinReplyLength {
				bad("reply length range %d-%d", s.UDP.MinReplyLength, s.UDP.MaxReplyLength)
			}
		}
	case DNS:
		if _, ok := dnsTypes[s.DNS.Type]; !ok {
			bad("type %q: want A, NS, CNAME, SOA, MX, TXT or AAAA", s.DNS.Type)
		}
	case SMTP:
	case File:
		if s.File == nil || s.File.Path == "" {
			bad("track_file has no file")
		}
	case BFD:
		if s.BFDName == "" {
			bad("no bfd_instance name")
		}
	default:
		bad("unknown checker kind")
	}
	return errors.Join(errs...)
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}
