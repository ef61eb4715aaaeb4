//go:build !linux

package realserver

import "github.com/govs/govs/internal/dataplane"

// Check is supported on Linux only.
func Check(Spec) ([]Problem, error) { return nil, dataplane.ErrNotSupported }

// Setup is supported on Linux only.
func Setup(Spec) error { return dataplane.ErrNotSupported }

// Undo is supported on Linux only.
func Undo(Spec) error { return dataplane.ErrNotSupported }
