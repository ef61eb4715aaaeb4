// Package smtpsink is a minimal SMTP server for tests: it accepts every
// message on a loopback port and keeps it in memory. It speaks the subset
// of RFC 5321 that mail clients and health checkers use (HELO/EHLO, MAIL,
// RCPT, DATA, RSET, NOOP, QUIT).
package smtpsink

import (
	"bufio"
	"net"
	"net/textproto"
	"strings"
	"sync"
)

// Message is one received mail.
type Message struct {
	Helo string
	From string
	To   []string
	Data string // headers and body, CRLF line ends, dot-unstuffed
}

// Sink is a running SMTP sink.
type Sink struct {
	ln       net.Listener
	mu       sync.Mutex
	msgs     []Message
	received chan struct{}
	wg       sync.WaitGroup
	greeting string
}

// SetGreeting replaces the "220" banner for later connections (e.g. "554
// no service" to make a checker fail).
func (s *Sink) SetGreeting(g string) {
	s.mu.Lock()
	s.greeting = g
	s.mu.Unlock()
}

// Start listens on addr ("127.0.0.1:0" for any port).
func Start(addr string) (*Sink, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Sink{ln: ln, received: make(chan struct{}, 64)}
	s.wg.Go(s.serve)
	return s, nil
}

// Addr is the listening address.
func (s *Sink) Addr() string { return s.ln.Addr().String() }

// Received is signalled once per message.
func (s *Sink) Received() <-chan struct{} { return s.received }

// Messages returns the messages received so far.
func (s *Sink) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Close stops the sink and waits for its connections.
func (s *Sink) Close() error {
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

func (s *Sink) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Go(func() { s.session(c) })
	}
}

func (s *Sink) session(c net.Conn) {
	defer c.Close()
	tp := textproto.NewConn(c)
	s.mu.Lock()
	greeting := s.greeting
	s.mu.Unlock()
	if greeting == "" {
		greeting = "220 smtpsink ESMTP ready"
	}
	if tp.PrintfLine("%s", greeting) != nil || !strings.HasPrefix(greeting, "220") {
		return
	}
	var m Message
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "HELO", "EHLO":
			m = Message{Helo: arg}
			_ = tp.PrintfLine("250 smtpsink")
		case "MAIL":
			m.From = addrArg(arg)
			_ = tp.PrintfLine("250 ok")
		case "RCPT":
			m.To = append(m.To, addrArg(arg))
			_ = tp.PrintfLine("250 ok")
		case "DATA":
			_ = tp.PrintfLine("354 end with .")
			b, err := readDot(tp.R)
			if err != nil {
				return
			}
			m.Data = b
			s.mu.Lock()
			s.msgs = append(s.msgs, m)
			s.mu.Unlock()
			select {
			case s.received <- struct{}{}:
			default:
			}
			_ = tp.PrintfLine("250 queued")
		case "RSET", "NOOP":
			_ = tp.PrintfLine("250 ok")
		case "QUIT":
			_ = tp.PrintfLine("221 bye")
			return
		default:
			_ = tp.PrintfLine("502 not implemented")
		}
	}
}

// readDot reads DATA lines up to the lone "." and undoes dot-stuffing.
func readDot(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		trimmed := strings.TrimRight(line, "\r\n")
		if trimmed == "." {
			return b.String(), nil
		}
		trimmed = strings.TrimPrefix(trimmed, ".")
		b.WriteString(trimmed)
		b.WriteString("\r\n")
	}
}

func addrArg(arg string) string {
	if i := strings.IndexByte(arg, '<'); i >= 0 {
		if j := strings.IndexByte(arg[i:], '>'); j >= 0 {
			return arg[i+1 : i+j]
		}
	}
	return arg
}
