//go:build !linux

package vrrp

import (
	"context"
	"log/slog"
	"net/netip"
)

// LinuxOptions configure NewLinuxSystem.
type LinuxOptions struct {
	NetNS  string
	Logger *slog.Logger
}

// LinuxSystem is only available on Linux.
type LinuxSystem struct{}

// NewLinuxSystem returns ErrNotSupported outside Linux.
func NewLinuxSystem(LinuxOptions) (*LinuxSystem, error) { return nil, ErrNotSupported }

// Close does nothing.
func (*LinuxSystem) Close() error { return nil }

func (*LinuxSystem) OpenConn(context.Context, *InstanceConfig) (Conn, error) {
	return nil, ErrNotSupported
}
func (*LinuxSystem) AddAddresses(context.Context, *InstanceConfig) error    { return ErrNotSupported }
func (*LinuxSystem) RemoveAddresses(context.Context, *InstanceConfig) error { return ErrNotSupported }
func (*LinuxSystem) Announce(context.Context, *InstanceConfig) error        { return ErrNotSupported }
func (*LinuxSystem) SetupVMAC(context.Context, *InstanceConfig) error       { return ErrNotSupported }
func (*LinuxSystem) RemoveVMAC(context.Context, *InstanceConfig) error      { return ErrNotSupported }
func (*LinuxSystem) LocalAddrs(context.Context) (map[netip.Addr]AddrState, error) {
	return nil, ErrNotSupported
}
func (*LinuxSystem) LinkUp(context.Context, string) (bool, error)   { return false, ErrNotSupported }
func (*LinuxSystem) LinkIndex(context.Context, string) (int, error) { return 0, ErrNotSupported }
func (*LinuxSystem) RestoreRoutes(context.Context, *InstanceConfig) (int, error) {
	return 0, ErrNotSupported
}
func (*LinuxSystem) WatchLinks(context.Context, func(string, bool)) error { return ErrNotSupported }

var _ System = (*LinuxSystem)(nil)

// SetFirewall returns ErrNotSupported outside Linux.
func (*LinuxSystem) SetFirewall([]InstanceConfig, []FirewallService) error { return ErrNotSupported }
