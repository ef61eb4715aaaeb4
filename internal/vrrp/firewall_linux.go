package vrrp

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// firewallRetry is how often rules that failed to load are tried again
// (each reconcile would otherwise run nft).
const firewallRetry = 30 * time.Second

// vipFirewall keeps the no_accept drop rules of a LinuxSystem.
type vipFirewall struct {
	mu     sync.Mutex
	loaded string // the script last loaded; "" when no table is ours
	// failed is the script that last failed to load, at failedAt: it
	// is reported once and tried again every firewallRetry
	failed   string
	failedAt time.Time
	// checked: the table a govs before this one may have left was
	// removed (or there is no nft to have made one)
	checked bool
}

// SetFirewall loads the no_accept rules: packets to (and from) the
// addresses of the instances of noAccept that have NoAccept set are
// dropped, but for the traffic of the virtual services svcs. The rules
// stay whatever the instances' states: a BACKUP does not hold its
// addresses, so nothing reaches the input hook for them then, and a
// transition to MASTER spends no time loading rules before its advert.
// It runs nft only when the rules change; without any address it removes
// the table, also one an earlier govs left (nothing is run when nft is
// not installed then).
func (s *LinuxSystem) SetFirewall(noAccept []InstanceConfig, svcs []FirewallService) error {
	drop := map[fwAddr]bool{}
	for i := range noAccept {
		cfg := &noAccept[i]
		if !cfg.NoAccept {
			continue
		}
		for _, v := range allVIPs(cfg) {
			a := fwAddr{addr: v.Prefix.Addr().Unmap()}
			if a.addr.Is6() && a.addr.IsLinkLocalUnicast() {
				a.dev = cmp.Or(v.Dev, cfg.addrDev())
			}
			drop[a] = true
		}
	}
	s.fw.mu.Lock()
	defer s.fw.mu.Unlock()
	script := firewallScript(sortedDrop(drop), svcs)
	if len(drop) == 0 && s.fw.loaded == "" {
		if s.fw.checked {
			return nil
		}
		// a table an earlier govs left: removed if nft can, quietly
		// (this govs asked for no rules)
		s.fw.checked = true
		if _, err := exec.LookPath("nft"); err == nil {
			_ = s.nft(script)
		}
		return nil
	}
	if script == s.fw.loaded || script == s.fw.failed && time.Since(s.fw.failedAt) < firewallRetry {
		return nil
	}
	if err := s.nft(script); err != nil {
		again := script == s.fw.failed
		s.fw.failed, s.fw.failedAt = script, time.Now()
		if again {
			return nil
		}
		if len(drop) == 0 {
			return fmt.Errorf("remove the no_accept rules: %w", err)
		}
		return fmt.Errorf("no_accept rules: %w", err)
	}
	s.fw.checked, s.fw.loaded, s.fw.failed = true, script, ""
	if len(drop) == 0 {
		s.fw.loaded = ""
	}
	return nil
}

// nft loads an nftables script in the system's namespace.
func (s *LinuxSystem) nft(script string) error {
	if _, err := exec.LookPath("nft"); err != nil {
		return errors.New("nft is not installed (no_accept needs nftables)")
	}
	return s.inNS(func() error {
		cmd := exec.Command("nft", "-f", "-")
		cmd.Stdin = strings.NewReader(script)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("nft: %w: %s", err, strings.TrimSpace(out.String()))
		}
		return nil
	})
}
