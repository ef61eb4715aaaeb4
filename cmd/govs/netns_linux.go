package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// netnsPath is the file of the network namespace name: a name under
// /run/netns, or a path.
func netnsPath(name string) string {
	if strings.ContainsRune(name, '/') {
		return name
	}
	return filepath.Join("/run/netns", name)
}

// netnsTag names a namespace in file names (the API socket, the XDP pin
// directory): its name, or its path with the slashes replaced.
func netnsTag(name string) string {
	return strings.ReplaceAll(strings.Trim(name, "/"), "/", "_")
}

// enterNetns runs govs again, with the same arguments, in the network
// namespace name, as keepalived's net_namespace: the thread that enters
// the namespace execs, so that the whole new process starts inside it.
// It returns at once when govs already runs there (the same namespace
// file), and otherwise only on failure.
func enterNetns(name string) error {
	path := netnsPath(name)
	var want, self unix.Stat_t
	if err := unix.Stat(path, &want); err != nil {
		return fmt.Errorf("net_namespace %s: %s: %w (create it with: ip netns add %s)", name, path, err, name)
	}
	if err := unix.Stat("/proc/self/ns/net", &self); err == nil && self.Dev == want.Dev && self.Ino == want.Ino {
		return nil
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("net_namespace %s: %s: %w", name, path, err)
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
	// /proc/self/exe: the very binary that read the configuration, even
	// if its file was replaced since
	return fmt.Errorf("net_namespace %s: exec: %w", name, unix.Exec("/proc/self/exe", os.Args, os.Environ()))
}

// lockMemory keeps govs's memory in RAM (keepalived's *_no_swap).
func lockMemory() error {
	return unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE)
}

// setUmask sets the process's file creation mask.
func setUmask(m uint32) { unix.Umask(int(m)) }
