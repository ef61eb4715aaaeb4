//go:build !linux

package main

import "errors"

// enterNetns is Linux only.
func enterNetns(name string) error {
	return errors.New("net_namespace " + name + ": network namespaces are Linux only")
}

func netnsTag(name string) string { return name }

func lockMemory() error { return errors.New("locking memory is only built for Linux") }

func setUmask(uint32) {}
