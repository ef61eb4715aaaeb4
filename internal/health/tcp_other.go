//go:build !linux

package health

import "context"

func connectOnly(ctx context.Context, s *Spec) error { return netConnectOnly(ctx, s) }
