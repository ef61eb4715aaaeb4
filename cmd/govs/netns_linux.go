package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// netnsEnv marks a govs that already entered its configuration's
// net_namespace (enterNetns execs govs again inside it).
const netnsEnv = "GOVS_NET_NAMESPACE"

// enterNetns runs govs again, with the same arguments, in the network
// namespace name (a name under /run/netns, or a path), as keepalived's
// net_namespace: the thread that enters the namespace execs, so that the
// whole new process starts inside it. It returns only on failure, and at
// once when govs already runs in name.
func enterNetns(name string) error {
	if os.Getenv(netnsEnv) == name {
		return nil
	}
	path := name
	if !strings.ContainsRune(path, '/') {
		path = filepath.Join("/run/netns", name)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("net_namespace %s: %s: %w (create it with: ip netns add %s)", name, path, err, name)
	}
	// the exec must come from the thread in the namespace (locked for
	// good: on a failure govs exits, and no other goroutine may run on
	// a thread left in the namespace)
	runtime.LockOSThread()
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		unix.Close(fd)
		return fmt.Errorf("net_namespace %s: enter: %w", name, err)
	}
	unix.Close(fd)
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("net_namespace %s: %w", name, err)
	}
	env := append(os.Environ(), netnsEnv+"="+name)
	return fmt.Errorf("net_namespace %s: exec: %w", name, unix.Exec(exe, os.Args, env))
}
