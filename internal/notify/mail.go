package notify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"os"
	"strings"
	"time"
)

// Mailer sends smtp_alert e-mails (keepalived global_defs:
// notification_email, notification_email_from, smtp_server,
// smtp_helo_name, smtp_connect_timeout, router_id).
type Mailer struct {
	Server         string   // host or host:port; port 25 by default
	HeloName       string   // default the host name
	From           string   // default "govs@<host name>"
	To             []string // notification_email
	ConnectTimeout time.Duration
	RouterID       string // default the host name
	// Now stamps the Date header (default time.Now).
	Now func() time.Time
}

// ErrNoRecipients is returned when a mail has nobody to go to.
var ErrNoRecipients = errors.New("no notification_email recipients")

func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return h
}

func (m *Mailer) routerID() string {
	if m.RouterID != "" {
		return m.RouterID
	}
	return hostname()
}

// Send delivers one message with the subject prefixed by "[router_id] ".
func (m *Mailer) Send(ctx context.Context, subject, body string) error {
	if len(m.To) == 0 {
		return ErrNoRecipients
	}
	addr := m.Server
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(strings.Trim(addr, "[]"), "25")
	}
	host, _, _ := net.SplitHostPort(addr)
	timeout := m.ConnectTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("smtp connect %s: %w", addr, err)
	}
	defer conn.Close()
	deadline := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return fmt.Errorf("smtp greeting: %w", err)
	}
	defer c.Close()
	helo := m.HeloName
	if helo == "" {
		helo = hostname()
	}
	if err := c.Hello(helo); err != nil {
		return fmt.Errorf("smtp helo: %w", err)
	}
	from := m.From
	if from == "" {
		from = "govs@" + hostname()
	}
	if err := c.Mail(from); err != nil {
		return fmt.Errorf("smtp mail from: %w", err)
	}
	for _, to := range m.To {
		if err := c.Rcpt(to); err != nil {
			return fmt.Errorf("smtp rcpt %s: %w", to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp data: %w", err)
	}
	if _, err := w.Write(m.message(from, subject, body)); err != nil {
		return fmt.Errorf("smtp data: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp data: %w", err)
	}
	if err := c.Quit(); err != nil {
		return fmt.Errorf("smtp quit: %w", err)
	}
	return nil
}

// message renders headers and body with CRLF line ends.
func (m *Mailer) message(from, subject, body string) []byte {
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\n", from)
	fmt.Fprintf(&b, "To: %s\r\n", strings.Join(m.To, ", "))
	fmt.Fprintf(&b, "Subject: [%s] %s\r\n", m.routerID(), oneLine(subject))
	fmt.Fprintf(&b, "Date: %s\r\n", now().Format(time.RFC1123Z))
	b.WriteString("X-Mailer: govs\r\n")
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	for _, line := range strings.Split(strings.ReplaceAll(body, "\r\n", "\n"), "\n") {
		b.WriteString(line)
		b.WriteString("\r\n")
	}
	return []byte(b.String())
}

func oneLine(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }

// UpDown is keepalived's word for a server's state in alerts and FIFO
// lines.
func UpDown(up bool) string {
	if up {
		return "UP"
	}
	return "DOWN"
}

// RealServerMail is the alert for a real server changing state, in the
// shape of keepalived's checker alerts.
func RealServerMail(rs, vs string, up bool, reason string) (subject, body string) {
	subject = fmt.Sprintf("Realserver %s of virtual server %s - %s", rs, vs, UpDown(up))
	if up {
		body = "=> CHECK succeed on service <="
	} else {
		body = "=> CHECK failed on service : " + reason + " <="
	}
	return subject, body
}

// QuorumMail is the alert for a virtual server gaining or losing quorum.
func QuorumMail(vs string, up bool, live, quorum, hysteresis int) (subject, body string) {
	subject = fmt.Sprintf("Virtualserver %s - %s", vs, UpDown(up))
	if up {
		body = fmt.Sprintf("=> Gained quorum %d+%d=%d <= %d for VS %s <=", quorum, hysteresis, quorum+hysteresis, live, vs)
	} else {
		body = fmt.Sprintf("=> Lost quorum %d-%d=%d > %d for VS %s <=", quorum, hysteresis, quorum-hysteresis, live, vs)
	}
	return subject, body
}

// VRRPMail is the alert for a VRRP instance changing state.
func VRRPMail(instance, state string) (subject, body string) {
	subject = fmt.Sprintf("VRRP Instance %s - Entering %s state", instance, strings.ToUpper(state))
	switch strings.ToUpper(state) {
	case "MASTER":
		body = "=> VRRP Instance is now owning VRRP VIPs <="
	case "BACKUP":
		body = "=> VRRP Instance is nolonger owning VRRP VIPs <="
	default:
		body = "=> VRRP Instance is in " + strings.ToUpper(state) + " state <="
	}
	return subject, body
}

// VRRPNotifyArgs are the four arguments keepalived appends to a VRRP
// "notify" script: GROUP|INSTANCE, name, state, priority.
func VRRPNotifyArgs(group bool, name, state string, priority int) []string {
	kind := "INSTANCE"
	if group {
		kind = "GROUP"
	}
	return []string{kind, name, strings.ToUpper(state), fmt.Sprint(priority)}
}
