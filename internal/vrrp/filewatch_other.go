//go:build !linux

package vrrp

import (
	"context"
	"errors"
	"time"
)

type fileWatch struct{}

func newFileWatch(string) (*fileWatch, error) { return nil, errors.New("inotify is a Linux feature") }

func (*fileWatch) Close() error { return nil }

func (*fileWatch) wait(context.Context, time.Duration) error { return nil }
