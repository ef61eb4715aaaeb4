//go:build !linux

package xdp

import (
	"context"
	"fmt"
	"io"
	"net/netip"

	"github.com/govs/govs/internal/dataplane"
)

// Dataplane is the XDP director; it exists only on Linux.
type Dataplane struct{}

// New returns dataplane.ErrNotSupported outside Linux.
func New(Options) (*Dataplane, error) {
	return nil, fmt.Errorf("xdp: %w", dataplane.ErrNotSupported)
}

// Apply is not supported outside Linux.
func (*Dataplane) Apply(context.Context, []dataplane.Service) error { return dataplane.ErrNotSupported }

// Stats is not supported outside Linux.
func (*Dataplane) Stats(context.Context) (dataplane.Snapshot, error) {
	return dataplane.Snapshot{}, dataplane.ErrNotSupported
}

// Conns is not supported outside Linux.
func (*Dataplane) Conns(context.Context, func(dataplane.Conn) bool) error {
	return dataplane.ErrNotSupported
}

// Close does nothing outside Linux.
func (*Dataplane) Close() error { return nil }

// Exits is not supported outside Linux.
func (*Dataplane) Exits() (map[string]uint64, error) { return nil, dataplane.ErrNotSupported }

// Events is not supported outside Linux.
func (*Dataplane) Events() (map[string]uint64, error) { return nil, dataplane.ErrNotSupported }

// SNATDropped is not supported outside Linux.
func (*Dataplane) SNATDropped() (map[dataplane.ServiceKey]uint64, error) {
	return nil, dataplane.ErrNotSupported
}

// RemovePinned is not supported outside Linux.
func RemovePinned(string) error { return dataplane.ErrNotSupported }

// DecapOptions configure the decapsulation program (Linux only).
type DecapOptions struct {
	Interface   string
	VIPs        []netip.Addr
	Mode        Mode
	PinPath     string
	KeepOnClose bool
}

// Decap is the decapsulation program (Linux only).
type Decap struct{}

// NewDecap returns dataplane.ErrNotSupported outside Linux.
func NewDecap(DecapOptions) (*Decap, error) {
	return nil, fmt.Errorf("xdp decap: %w", dataplane.ErrNotSupported)
}

// SetVIPs is not supported outside Linux.
func (*Decap) SetVIPs([]netip.Addr) error { return dataplane.ErrNotSupported }

// Stats is not supported outside Linux.
func (*Decap) Stats() (map[string]uint64, error) { return nil, dataplane.ErrNotSupported }

// Close does nothing outside Linux.
func (*Decap) Close() error { return nil }

// RemoveDecap is not supported outside Linux.
func RemoveDecap(string) error { return dataplane.ErrNotSupported }

// AttachPass is supported on Linux only.
func AttachPass(string) (io.Closer, error) { return nil, dataplane.ErrNotSupported }
