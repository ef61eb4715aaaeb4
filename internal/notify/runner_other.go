//go:build !linux

package notify

import "context"

// Run is not supported on this platform.
func (r *Runner) Run(ctx context.Context, cmd Command) (Output, error) {
	return Output{}, ErrNotSupported
}

// CheckSecure is not supported on this platform.
func CheckSecure(path string) error { return ErrNotSupported }

// LookupIDs is not available outside Linux.
func LookupIDs(name, group string) (uid, gid uint32, err error) { return 0, 0, ErrNotSupported }
