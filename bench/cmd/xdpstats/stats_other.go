//go:build !linux

package main

import "errors"

func collect([]string) ([]progStats, error) {
	return nil, errors.New("xdp program statistics need Linux")
}
