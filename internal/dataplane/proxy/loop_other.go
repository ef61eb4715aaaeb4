//go:build !linux

package proxy

import (
	"errors"
	"net/netip"
)

// loop is the Linux event-loop engine; elsewhere the goroutine engine runs.
type loop struct{}

func loopsAvailable() bool { return false }

func (p *Proxy) startLoops(int) error { return errors.New("event loops need Linux") }

func (p *Proxy) stopLoops() {}

func (p *Proxy) loopConns() []relay { return nil }

func (p *Proxy) watchListener(*listener) {}

func (p *Proxy) closeRawListener(*listener) error { return nil }

func listenRaw(netip.AddrPort) (int, error) { return -1, errors.New("raw listeners need Linux") }
