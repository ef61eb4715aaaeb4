package health

import (
	"context"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

var dnsTypes = map[string]uint16{
	"A": dns.TypeA, "NS": dns.TypeNS, "CNAME": dns.TypeCNAME, "SOA": dns.TypeSOA,
	"MX": dns.TypeMX, "TXT": dns.TypeTXT, "AAAA": dns.TypeAAAA,
}

// dnsChecker is DNS_CHECK: one query over UDP; the server passes when it
// answers NOERROR (as keepalived's check_dns.c: matching ID, QR set,
// rcode 0; the answer section is not required).
type dnsChecker struct {
	s     Spec
	qtype uint16
	name  string
}

func newDNS(s Spec) (*dnsChecker, error) {
	t, ok := dnsTypes[s.DNS.Type]
	if !ok {
		return nil, fmt.Errorf("unknown dns type %q", s.DNS.Type)
	}
	return &dnsChecker{s: s, qtype: t, name: dns.Fqdn(s.DNS.Name)}, nil
}

func (c *dnsChecker) Check(ctx context.Context) Result {
	cl := &dns.Client{Net: "udp", Dialer: dialer(&c.s, "udp"), Timeout: c.s.ConnectTimeout}
	m := new(dns.Msg)
	m.SetQuestion(c.name, c.qtype)
	m.RecursionDesired = true
	resp, _, err := cl.ExchangeContext(ctx, m, c.s.ConnectAddr().String())
	if err != nil {
		return Result{Err: netErr("query", err)}
	}
	if resp.Rcode != dns.RcodeSuccess {
		return Result{Err: fmt.Errorf("query %s %s: rcode %s", c.s.DNS.Type, c.name, dns.RcodeToString[resp.Rcode])}
	}
	n := 0
	for _, rr := range resp.Answer {
		if rr.Header().Rrtype == c.qtype {
			n++
		}
	}
	return Result{Msg: fmt.Sprintf("%d %s record%s", n, strings.ToUpper(c.s.DNS.Type), plural(n))}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
