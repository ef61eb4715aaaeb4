package health

// Helpers that start real peers (nginx, dnsmasq, vsftpd) on loopback
// high ports for the checker tests. A missing binary skips the test that
// needs it with a message naming the Debian package.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func needBinary(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/sbin"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				return filepath.Join(dir, name)
			}
		}
		t.Skipf("%s not installed (Debian package %s); skipping the test against a real peer", name, pkg)
	}
	return p
}

// freePort returns a TCP (or UDP) port on 127.0.0.1 free at the time of
// the call. UDP ports ("udp", and "both" for DNS servers binding UDP and TCP)
// are taken from below the kernel's ephemeral range, where no socket of
// another test binding port 0 can land on them once they are released: a
// UDP test that wants "connection refused" from a closed port gets silence
// instead when some other process's connected socket holds that port.
func freePort(t *testing.T, network string) uint16 {
	t.Helper()
	switch network {
	case "udp", "both":
	case "tcp":
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return uint16(l.Addr().(*net.TCPAddr).Port)
	default:
		t.Fatalf("freePort: network %q, want tcp, udp or both", network)
	}
	lo, hi := belowEphemeral()
	for i := 0; i < 200; i++ {
		port := lo + mrand.IntN(hi-lo)
		c, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		if network == "both" {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				c.Close()
				continue
			}
			l.Close()
		}
		c.Close()
		return uint16(port)
	}
	t.Fatalf("no %s port free in %d-%d", network, lo, hi)
	return 0
}

// belowEphemeral is a range of ports under the kernel's ephemeral range
// (net.ipv4.ip_local_port_range), which binding port 0 never returns.
func belowEphemeral() (lo, hi int) {
	first := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var a, z int
		if _, err := fmt.Sscan(string(b), &a, &z); err == nil && a > 2048 {
			first = a
		}
	}
	hi = first - 1
	lo = max(1024, hi-8000)
	return lo, hi
}

// waitTCP waits until addr accepts connections.
func waitTCP(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not start listening", addr)
}

// peer is a started peer process.
type peer struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func startPeer(t *testing.T, name string, args ...string) *peer {
	t.Helper()
	logf := filepath.Join(t.TempDir(), "peer.log")
	f, err := os.Create(logf)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &peer{cmd: cmd, log: logf, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(p.stop)
	return p
}

// stop kills the peer's process group and waits for it.
func (p *peer) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

func (p *peer) logText() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// selfSigned writes a certificate for names and its key into dir.
func selfSigned(t *testing.T, dir string, names ...string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: names[0]},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		DNSNames:              names,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// nginxPeer is an nginx serving dir over HTTP and HTTPS on loopback.
type nginxPeer struct {
	*peer
	http, https netip.AddrPort
	root        string
	cert        string
}

func startNginx(t *testing.T) *nginxPeer {
	t.Helper()
	bin := needBinary(t, "nginx", "nginx-light")
	dir := t.TempDir()
	root := filepath.Join(dir, "www")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"index.html":  "<html><body>govs health test</body></html>\n",
		"status.html": "service OK\n",
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cert, key := selfSigned(t, dir, "www.example.test")
	hp, sp := freePort(t, "tcp"), freePort(t, "tcp")
	conf := fmt.Sprintf(`daemon off;
master_process off;
user root root;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %[1]s/tmp;
    default_type text/html;
    server {
        listen 127.0.0.1:%[2]d;
        listen 127.0.0.1:%[3]d ssl;
        server_name www.example.test;
        ssl_certificate %[4]s;
        ssl_certificate_key %[5]s;
        root %[6]s;
        location = /teapot { return 418; }
    }
}
`, dir, hp, sp, cert, key, root)
	confFile := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startPeer(t, bin, "-p", dir, "-c", confFile, "-e", filepath.Join(dir, "error.log"))
	n := &nginxPeer{peer: p, root: root, cert: cert,
		http:  netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), hp),
		https: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), sp)}
	waitTCP(t, n.http.String())
	waitTCP(t, n.https.String())
	return n
}

// genhash runs keepalived's genhash, if installed, and returns its digest.
func genhash(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("genhash")
	if err != nil {
		return ""
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("genhash %v: %v\n%s", args, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if _, after, ok := strings.Cut(line, "MD5SUM = "); ok {
			return strings.TrimSpace(after)
		}
	}
	if h := strings.TrimSpace(string(out)); isHex(h, 32) {
		return h
	}
	t.Fatalf("genhash printed no MD5 sum:\n%s", out)
	return ""
}
