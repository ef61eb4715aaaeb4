package listing

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/govs/govs/internal/api"
	"github.com/govs/govs/internal/dataplane"
)

// trimLines removes trailing blanks: ipvsadm pads its last column, and the
// real outputs quoted below were copied from pages that strip them.
func trimLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

func rs(addr, method string, weight int, active, inact int64) api.RealServer {
	return api.RealServer{Addr: addr, Method: method, Weight: weight, ActiveConns: active, InactConns: inact, InPool: true}
}

// Real outputs: seed 004 (ipvsadm -Ln of the Samba deployment),
// keepalived issue #1757, and blog posts quoted in
// shared/reference/ipvs-keepalived-seesaw.md §1.8.
func TestServicesMatchesIPVSADM(t *testing.T) {
	for _, tt := range []struct {
		name string
		st   api.State
		o    Options
		want string
	}{
		{
			name: "seed004 -Ln",
			st: api.State{ConnTableSize: 32768, Services: []api.Service{
				{ID: "tcp/172.26.127.20:445", Proto: "TCP", Addr: "172.26.127.20", Port: 445, Scheduler: "rr",
					RealServers: []api.RealServer{rs("172.26.127.22:445", "Route", 1, 0, 0), rs("172.26.127.21:445", "Route", 1, 0, 0)}},
				{ID: "tcp/172.26.127.20:139", Proto: "TCP", Addr: "172.26.127.20", Port: 139, Scheduler: "rr",
					RealServers: []api.RealServer{rs("172.26.127.21:139", "Route", 1, 0, 0), rs("172.26.127.22:139", "Route", 1, 0, 0)}},
			}},
			want: `IP Virtual Server version 1.2.1 (size=32768)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  172.26.127.20:139 rr
  -> 172.26.127.21:139            Route   1      0          0
  -> 172.26.127.22:139            Route   1      0          0
TCP  172.26.127.20:445 rr
  -> 172.26.127.21:445            Route   1      0          0
  -> 172.26.127.22:445            Route   1      0          0
`,
		},
		{
			name: "keepalived #1757 masq",
			st: api.State{ConnTableSize: 4096, Services: []api.Service{
				{ID: "tcp/10.0.2.15:80", Proto: "TCP", Addr: "10.0.2.15", Port: 80, Scheduler: "wlc",
					RealServers: []api.RealServer{rs("10.0.2.16:80", "Masq", 1, 0, 0)}},
			}},
			want: `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.2.15:80 wlc
  -> 10.0.2.16:80                 Masq    1      0          0
`,
		},
		{
			name: "stats single service",
			st: api.State{Services: []api.Service{
				{ID: "tcp/127.0.0.1:3001", Proto: "TCP", Addr: "127.0.0.1", Port: 3001, Scheduler: "wlc",
					Stats:       dataplane.Counters{Conns: 2, InPkts: 660294, OutPkts: 661999, InBytes: 78202968, OutBytes: 184940123},
					RealServers: []api.RealServer{{Addr: "127.0.0.1:3306", Method: "Masq", InPool: true}, {Addr: "127.0.0.1:3307", Method: "Masq"}}},
			}},
			o: Options{Stats: true, Service: "tcp/127.0.0.1:3001"},
			want: `Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  127.0.0.1:3001                      2   660294   661999 78202968  184940K
  -> 127.0.0.1:3306                      0        0        0        0        0
`,
		},
		{
			name: "rate",
			st: api.State{ConnTableSize: 1048576, Services: []api.Service{
				{ID: "tcp/10.100.5.98:6030", Proto: "TCP", Addr: "10.100.5.98", Port: 6030, Scheduler: "wlc",
					Rates:       api.Rates{InPPS: 2, InBPS: 193},
					RealServers: []api.RealServer{{Addr: "10.100.5.86:6030", Rates: api.Rates{InBPS: 54}, InPool: true}}},
			}},
			o: Options{Rate: true},
			want: `IP Virtual Server version 1.2.1 (size=1048576)
Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS
  -> RemoteAddress:Port
TCP  10.100.5.98:6030                    0        2        0      193        0
  -> 10.100.5.86:6030                    0        0        0       54        0
`,
		},
		{
			name: "persistent-conn",
			st: api.State{ConnTableSize: 4096, Services: []api.Service{
				{ID: "tcp/10.10.10.11:80", Proto: "TCP", Addr: "10.10.10.11", Port: 80, Scheduler: "rr", Persistent: 120, PersistMask: 32,
					RealServers: []api.RealServer{{Addr: "192.168.40.23:80", Weight: 1, InPool: true}, {Addr: "192.168.40.24:80", Weight: 1, PersistConns: 1, InactConns: 2, InPool: true}}},
			}},
			o: Options{PersistentConn: true},
			want: `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn
  -> RemoteAddress:Port
TCP  10.10.10.11:80 rr persistent 120
  -> 192.168.40.23:80             1         0           0          0
  -> 192.168.40.24:80             1         1           0          2
`,
		},
		{
			name: "thresholds",
			st: api.State{ConnTableSize: 4096, Services: []api.Service{
				{ID: "tcp/172.25.116.175:80", Proto: "TCP", Addr: "172.25.116.175", Port: 80, Scheduler: "rr",
					RealServers: []api.RealServer{{Addr: "192.168.1.180:80", InPool: true}, {Addr: "192.168.1.181:80", UThreshold: 10000, InPool: true}, {Addr: "192.168.1.182:80", UThreshold: 10000, LThreshold: 100, InPool: true}}},
			}},
			o: Options{Thresholds: true},
			want: `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn
  -> RemoteAddress:Port
TCP  172.25.116.175:80 rr
  -> 192.168.1.180:80             0          0          0          0
  -> 192.168.1.181:80             10000      0          0          0
  -> 192.168.1.182:80             10000      100        0          0
`,
		},
		{
			name: "flags fwmark udp v6",
			st: api.State{ConnTableSize: 4096, Services: []api.Service{
				{ID: "udp/52.50.190.21:9999", Proto: "UDP", Addr: "52.50.190.21", Port: 9999, Scheduler: "rr", OnePacket: true},
				{ID: "fwm/5", Proto: "FWM", FWMark: 5, Scheduler: "sh", Flags: []string{"sh-fallback", "sh-port"}, Persistent: 300, PersistMask: 24},
				{ID: "tcp/[2001:db8::1]:443", Proto: "TCP", Addr: "2001:db8::1", Port: 443, Scheduler: "mh", Persistent: 60, PersistMask: 64,
					RealServers: []api.RealServer{rs("[2001:db8::2]:443", "Tunnel", 0, 3, 4)}},
			}},
			want: `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
UDP  52.50.190.21:9999 rr ops
TCP  [2001:db8::1]:443 mh persistent 60 mask 64
  -> [2001:db8::2]:443            Tunnel  0      3          4
FWM  5 sh (sh-fallback,sh-port) persistent 300 mask 255.255.255.0
`,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Services(&b, &tt.st, tt.o); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, trimLines(b.String())); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestLargeNum(t *testing.T) {
	for _, tt := range []struct {
		v     uint64
		exact bool
		want  string
	}{
		{0, false, "        0"},
		{99_999_999, false, " 99999999"},
		{184_940_123, false, "  184940K"},
		{5_000_000_000, false, "    5000M"},
		{500_000_000_000, false, "     500G"},
		{500_000_000_000_000, false, "     500T"},
		{184_940_123, true, " 184940123"},
		{12, true, "       12"},
	} {
		if got := LargeNum(tt.v, tt.exact); got != tt.want {
			t.Errorf("LargeNum(%d, %v) = %q, want %q", tt.v, tt.exact, got, tt.want)
		}
	}
}

func TestConns(t *testing.T) {
	var b bytes.Buffer
	Conns(&b, []api.Conn{
		{Proto: "TCP", Expires: 37, State: "SYN_RECV", Client: "192.168.1.20:55746", Virtual: "192.168.1.10:80", Real: "192.168.1.15:80"},
		{Proto: "TCP", Expires: 180*60 + 3, State: "NONE", Client: "192.168.123.248:0", Virtual: "10.254.66.97:8080", Real: "172.20.135.6:8080", Template: true},
	}, Options{NoSort: true})
	want := `IPVS connection entries
pro expire state       source             virtual            destination
TCP 00:37  SYN_RECV    192.168.1.20:55746 192.168.1.10:80    192.168.1.15:80
TCP 180:03 NONE        192.168.123.248:0  10.254.66.97:8080  172.20.135.6:8080
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestConnsLocal: source-NAT entries show the translated source in a
// local column; entries without one show "-".
func TestConnsLocal(t *testing.T) {
	var b bytes.Buffer
	Conns(&b, []api.Conn{
		{Proto: "UDP", Expires: 299, State: "UDP", Client: "198.51.100.7:5353", Virtual: "192.0.2.10:53", Real: "10.0.0.11:53", Local: "10.0.0.200:40321"},
		{Proto: "TCP", Expires: 900, State: "ESTABLISHED", Client: "198.51.100.8:41000", Virtual: "192.0.2.10:80", Real: "10.0.0.12:80"},
	}, Options{NoSort: true})
	want := `IPVS connection entries
pro expire state       source             virtual            local              destination
UDP 04:59  UDP         198.51.100.7:5353  192.0.2.10:53      10.0.0.200:40321   10.0.0.11:53
TCP 15:00  ESTABLISHED 198.51.100.8:41000 192.0.2.10:80      -                  10.0.0.12:80
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestDaemon: ipvsadm -L --daemon's lines, one per role the daemon has.
func TestDaemon(t *testing.T) {
	sd := &api.SyncDaemon{Interface: "eth1", SyncID: 51, MaxLen: 1472, Group: "224.0.0.81", Port: 8848, TTL: 1}
	for role, want := range map[string]string{
		"master": "master sync daemon (mcast=eth1, syncid=51, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n",
		"backup": "backup sync daemon (mcast=eth1, syncid=51, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n",
		"master+backup": "master sync daemon (mcast=eth1, syncid=51, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n" +
			"backup sync daemon (mcast=eth1, syncid=51, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n",
		"none": "",
	} {
		s := *sd
		s.Role = role
		var b bytes.Buffer
		Daemon(&b, &api.State{Sync: &s})
		if b.String() != want {
			t.Errorf("%s: %q, want %q", role, b.String(), want)
		}
	}
	var b bytes.Buffer
	Daemon(&b, &api.State{})
	if b.Len() != 0 {
		t.Errorf("no daemon: %q", b.String())
	}
}
