package xdp

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netns"
)

// The namespace lab: a bridge namespace joins a client, a director and
// real servers, as in the DR layout of seeds 000/002. Every name starts
// with "xd". Addresses live in 10.77.0.0/24 and fd77::/64.
const (
	labNet     = "10.77.0"
	labVIPDR   = "10.77.0.100"
	labVIPTUN  = "10.77.0.101"
	labDirAddr = "10.77.0.2"
	labClient  = "10.77.0.10"
)

type lab struct {
	t      testing.TB
	prefix string
	nss    []string
	rs     int
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to build network namespaces and attach XDP")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2")
	}
}

func (l *lab) sh(args ...string) string {
	l.t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// in runs a command in namespace ns.
func (l *lab) in(ns string, args ...string) string {
	l.t.Helper()
	return l.sh(append([]string{"ip", "netns", "exec", l.name(ns)}, args...)...)
}

func (l *lab) name(ns string) string { return l.prefix + ns }

func (l *lab) addNS(ns string) {
	l.t.Helper()
	n := l.name(ns)
	_ = exec.Command("ip", "netns", "del", n).Run()
	l.sh("ip", "netns", "add", n)
	l.nss = append(l.nss, n)
	l.in(ns, "ip", "link", "set", "lo", "up")
	l.in(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
}

// plug connects namespace ns to the bridge with interface eth0 (address
// addr/24) and returns the bridge-side name.
func (l *lab) plug(ns, addr string) string {
	l.t.Helper()
	peer := "xd" + ns
	l.sh("ip", "link", "add", "eth0", "netns", l.name(ns), "type", "veth", "peer", "name", peer, "netns", l.name("br"))
	l.in("br", "ip", "link", "set", peer, "master", "br0", "up")
	l.in(ns, "ip", "addr", "add", addr+"/24", "dev", "eth0")
	l.in(ns, "ip", "link", "set", "eth0", "up")
	return peer
}

// newLab builds bridge, client, director and n real servers. Real
// servers hold both VIPs on lo with arp_ignore=1/arp_announce=2.
func newLab(t testing.TB, n int) *lab {
	t.Helper()
	requireRoot(t)
	l := &lab{t: t, prefix: "xd", rs: n}
	t.Cleanup(l.close)
	l.addNS("br")
	l.in("br", "ip", "link", "add", "br0", "type", "bridge")
	l.in("br", "ip", "link", "set", "br0", "up")
	l.addNS("cl")
	l.plug("cl", labClient)
	l.in("cl", "ip", "route", "add", labVIPDR+"/32", "via", labDirAddr)
	l.in("cl", "ip", "route", "add", labVIPTUN+"/32", "via", labDirAddr)
	l.in("cl", "ethtool", "-K", "eth0", "tx", "off")
	l.addNS("dir")
	dirPeer := l.plug("dir", labDirAddr)
	// the bridge side of the director receives XDP_TX frames: NAPI mode
	l.attachPass("br", dirPeer)
	for i := 1; i <= n; i++ {
		ns := fmt.Sprintf("rs%d", i)
		l.addNS(ns)
		for _, s := range []string{"all", "default"} {
			l.in(ns, "sysctl", "-qw", "net.ipv4.conf."+s+".arp_ignore=1", "net.ipv4.conf."+s+".arp_announce=2", "net.ipv4.conf."+s+".rp_filter=0")
		}
		l.plug(ns, fmt.Sprintf("%s.%d", labNet, 10+i))
		l.in(ns, "ethtool", "-K", "eth0", "tx", "off") // NAT/SNAT replies cross XDP
		l.in(ns, "sysctl", "-qw", "net.ipv4.conf.eth0.arp_ignore=1", "net.ipv4.conf.eth0.arp_announce=2", "net.ipv4.conf.eth0.rp_filter=0", "net.ipv4.conf.lo.rp_filter=0")
		l.in(ns, "ip", "addr", "add", labVIPDR+"/32", "dev", "lo")
		l.in(ns, "ip", "addr", "add", labVIPTUN+"/32", "dev", "lo")
	}
	return l
}

func (l *lab) rsAddr(i int) string { return fmt.Sprintf("%s.%d", labNet, 10+i) }

// attachPass attaches the XDP_PASS program to ifname in ns until cleanup.
func (l *lab) attachPass(ns, ifname string) {
	l.t.Helper()
	var objs bounceObjects
	if err := loadBounceObjects(&objs, nil); err != nil {
		l.t.Fatalf("load pass program: %v", err)
	}
	l.t.Cleanup(func() { objs.Close() })
	l.inNS(ns, func() {
		ifc, err := net.InterfaceByName(ifname)
		if err != nil {
			l.t.Fatalf("interface %s: %v", ifname, err)
		}
		lk, err := link.AttachXDP(link.XDPOptions{Program: objs.GovsPass, Interface: ifc.Index})
		if err != nil {
			l.t.Fatalf("attach pass program: %v", err)
		}
		l.t.Cleanup(func() { lk.Close() })
	})
}

// inNS runs fn on a thread inside namespace ns.
func (l *lab) inNS(ns string, fn func()) {
	l.t.Helper()
	h, err := netns.GetFromName(l.name(ns))
	if err != nil {
		l.t.Fatalf("namespace %s: %v", ns, err)
	}
	defer h.Close()
	if err := inNS(h, func() error { fn(); return nil }); err != nil {
		l.t.Fatalf("enter %s: %v", ns, err)
	}
}

func (l *lab) close() {
	for i := len(l.nss) - 1; i >= 0; i-- {
		_ = exec.Command("ip", "netns", "del", l.nss[i]).Run()
	}
}

// serveHTTP runs an HTTP server answering its name on addr (":80")
// inside real server namespace ns.
func (l *lab) serveHTTP(ns, name string) { l.serveHTTPOn(ns, name, ":80") }

// serveHTTPOn is serveHTTP on addr.
func (l *lab) serveHTTPOn(ns, name, addr string) {
	l.t.Helper()
	var ln net.Listener
	l.inNS(ns, func() {
		var err error
		ln, err = net.Listen("tcp4", addr)
		if err != nil {
			l.t.Fatalf("listen in %s: %v", ns, err)
		}
	})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" { // long-lived: echo lines until EOF
			rc := http.NewResponseController(w)
			_ = rc.EnableFullDuplex()
			w.WriteHeader(200)
			buf := make([]byte, 64)
			for {
				n, err := r.Body.Read(buf)
				if n > 0 {
					w.Write(buf[:n])
					_ = rc.Flush()
				}
				if err != nil {
					return
				}
			}
		}
		if r.URL.Path == "/from" {
			io.WriteString(w, name+" "+r.RemoteAddr)
			return
		}
		io.WriteString(w, name)
	})}
	go srv.Serve(ln)
	l.t.Cleanup(func() { srv.Close() })
}

// dialer dials from the client namespace.
func (l *lab) dialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	return l.dialerFor("cl")
}

func listenTCP4(addr string) (net.Listener, error) { return net.Listen("tcp4", addr) }

// dialerFor dials from namespace ns.
func (l *lab) dialerFor(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	h, err := netns.GetFromName(l.name(ns))
	if err != nil {
		l.t.Fatalf("client namespace: %v", err)
	}
	l.t.Cleanup(func() { h.Close() })
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := inNS(h, func() error {
			var err error
			d := net.Dialer{Timeout: 2 * time.Second}
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// httpClient fetches through the client namespace, one connection per
// request.
func (l *lab) httpClient() *http.Client {
	return &http.Client{
		Timeout:   3 * time.Second,
		Transport: &http.Transport{DialContext: l.dialer(), DisableKeepAlives: true},
	}
}

func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// newDirector starts a director in the director namespace.
func (l *lab) newDirector(opts Options) *Dataplane {
	l.t.Helper()
	var d *Dataplane
	l.inNS("dir", func() {
		var err error
		d, err = New(opts)
		if err != nil {
			l.t.Fatalf("new director: %v", err)
		}
	})
	return d
}
