package health

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// maxBody bounds the body read for digest and regex.
const maxBody = 16 << 20

// httpChecker is HTTP_GET and SSL_GET: for every url, GET the path and
// check status code, body MD5 digest and regular expression.
type httpChecker struct {
	s     Spec
	tls   *tls.Config // nil for HTTP_GET
	regex []*regexp.Regexp
}

func newHTTP(s Spec) (*httpChecker, error) {
	c := &httpChecker{s: s, regex: make([]*regexp.Regexp, len(s.HTTP.URLs))}
	for i, u := range s.HTTP.URLs {
		if u.Regex == "" {
			continue
		}
		re, err := regexp.Compile(u.Regex)
		if err != nil {
			return nil, fmt.Errorf("url %s regex: %w", u.Path, err)
		}
		c.regex[i] = re
	}
	if s.Kind == SSLGet {
		h := s.HTTP
		cfg := &tls.Config{InsecureSkipVerify: !h.Verify}
		name := h.SNIName
		if name == "" {
			name = h.VirtualHost
		}
		if h.SNI || h.Verify {
			if name == "" {
				name = s.Addr().String()
			}
			cfg.ServerName = name
		}
		if h.CAFile != "" {
			pem, err := os.ReadFile(h.CAFile)
			if err != nil {
				return nil, fmt.Errorf("read ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("ca %s: no certificates", h.CAFile)
			}
			cfg.RootCAs = pool
		}
		c.tls = cfg
	}
	return c, nil
}

func (c *httpChecker) Check(ctx context.Context) Result {
	var msg string
	for i := range c.s.HTTP.URLs {
		r := c.get(ctx, i)
		if r.Err != nil {
			return r
		}
		msg = r.Msg
	}
	return Result{Msg: msg}
}

// get performs one request on a fresh connection.
func (c *httpChecker) get(ctx context.Context, i int) Result {
	u := c.s.HTTP.URLs[i]
	raw, err := dial(ctx, &c.s, "tcp")
	if err != nil {
		return Result{Err: connectErr(err)}
	}
	var conn net.Conn = raw
	defer func() { abort(raw) }()
	if dl, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if c.tls != nil {
		tc := tls.Client(raw, c.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return Result{Err: tlsErr(err)}
		}
		conn = tc
	}
	host := u.VirtualHost
	if host == "" {
		host = c.s.HTTP.VirtualHost
	}
	if host == "" {
		host = c.s.ConnectAddr().String()
	}
	proto := "HTTP/1.0"
	closeHdr := ""
	switch c.s.HTTP.Protocol {
	case "1.1":
		proto, closeHdr = "HTTP/1.1", "Connection: close\r\n"
	case "1.0C":
		closeHdr = "Connection: close\r\n"
	}
	req := "GET " + u.Path + " " + proto + "\r\nUser-Agent: govs-healthcheck\r\nHost: " + host + "\r\n" + closeHdr + "\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return Result{Err: netErr("send request", err)}
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: http.MethodGet})
	if err != nil {
		return Result{Err: netErr("read response", err)}
	}
	defer resp.Body.Close()
	if !statusOK(resp.StatusCode, u.StatusCodes) {
		return Result{Err: fmt.Errorf("url %s: status %d not in %s", u.Path, resp.StatusCode, rangesString(u.StatusCodes))}
	}
	if u.Digest == "" && c.regex[i] == nil {
		return Result{Msg: "HTTP " + strconv.Itoa(resp.StatusCode)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return Result{Err: netErr("read body", err)}
	}
	if u.Digest != "" {
		sum := md5.Sum(body)
		if got := hex.EncodeToString(sum[:]); got != u.Digest {
			return Result{Err: fmt.Errorf("url %s: digest %s, want %s", u.Path, got, u.Digest)}
		}
	}
	if re := c.regex[i]; re != nil {
		if re.Match(body) == u.RegexNoMatch {
			if u.RegexNoMatch {
				return Result{Err: fmt.Errorf("url %s: body matches regex %q", u.Path, u.Regex)}
			}
			return Result{Err: fmt.Errorf("url %s: body does not match regex %q", u.Path, u.Regex)}
		}
	}
	return Result{Msg: "HTTP " + strconv.Itoa(resp.StatusCode)}
}

// HTTPDigest returns the digest keepalived's genhash prints for a body:
// the lowercase hex MD5 of the response body (headers excluded).
func HTTPDigest(body []byte) string {
	sum := md5.Sum(body)
	return hex.EncodeToString(sum[:])
}

func statusOK(code int, ranges []StatusRange) bool {
	for _, r := range ranges {
		if code >= r.Min && code <= r.Max {
			return true
		}
	}
	return false
}

func rangesString(ranges []StatusRange) string {
	parts := make([]string, len(ranges))
	for i, r := range ranges {
		if r.Min == r.Max {
			parts[i] = strconv.Itoa(r.Min)
		} else {
			parts[i] = strconv.Itoa(r.Min) + "-" + strconv.Itoa(r.Max)
		}
	}
	return strings.Join(parts, " ")
}

// ParseStatusCodes parses keepalived's status_code words ("200",
// "200-299").
func ParseStatusCodes(words []string) ([]StatusRange, error) {
	var out []StatusRange
	for _, w := range words {
		lo, hi, isRange := strings.Cut(w, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("status_code %q: %w", w, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, fmt.Errorf("status_code %q: %w", w, err)
			}
		}
		if a < 100 || b > 999 || a > b {
			return nil, fmt.Errorf("status_code %q out of range", w)
		}
		out = append(out, StatusRange{a, b})
	}
	return out, nil
}

func tlsErr(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &stepError{step: "tls handshake", msg: "timeout", err: err}
	}
	var ve *tls.CertificateVerificationError
	if errors.As(err, &ve) {
		return &stepError{step: "tls handshake", msg: "certificate: " + causeText(ve.Err), err: err}
	}
	return &stepError{step: "tls handshake", msg: causeText(err), err: err}
}
