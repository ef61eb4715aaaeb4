//go:build !linux

package notify

import "context"

// Run is not supported on this platform.
func (r *Runner) Run(ctx context.Context, cmd Command) (Output, error) {
	return Output{}, ErrNotSupported
}

// CheckSecure is not supported on this platform.
func CheckSecure(path string) error { return ErrNotSupported }
