package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Run starts cmd and waits for it. ctx bounds the run: when it expires
// the whole process group gets SIGTERM, then SIGKILL after KillGrace. The
// error is nil only for exit status 0; *ExitError carries other statuses.
func (r *Runner) Run(ctx context.Context, cmd Command) (Output, error) {
	var out Output
	path, err := exec.LookPath(cmd.Path)
	if err != nil {
		return out, fmt.Errorf("find %s: %w", cmd.Path, err)
	}
	if !filepath.IsAbs(path) {
		if path, err = filepath.Abs(path); err != nil {
			return out, fmt.Errorf("resolve %s: %w", cmd.Path, err)
		}
	}
	cred, err := r.credential(cmd)
	if err != nil {
		return out, err
	}
	if r != nil && r.Security && runsAsRoot(cred) {
		if err := CheckSecure(path); err != nil {
			return out, err
		}
	}
	c := exec.Command(path, cmd.Args...)
	c.Env = r.env()
	c.Dir = "/"
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	c.WaitDelay = r.grace()
	var stdout limitedBuffer
	c.Stdout = &stdout
	if err := c.Start(); err != nil {
		return out, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	out.Started = true
	pgid := c.Process.Pid
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()

	var werr error
	select {
	case werr = <-done:
	case <-ctx.Done():
		out.TimedOut = true
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		t := time.NewTimer(r.grace())
		select {
		case werr = <-done:
			t.Stop()
		case <-t.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			werr = <-done
		}
	}
	// Whatever the script left in its group goes with it.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	out.Output = stdout.Bytes()
	out.ExitCode = -1
	if c.ProcessState != nil {
		out.ExitCode = c.ProcessState.ExitCode()
	}
	if out.TimedOut {
		return out, &TimeoutError{Cause: context.Cause(ctx)}
	}
	var ee *exec.ExitError
	if errors.As(werr, &ee) || out.ExitCode != 0 {
		return out, &ExitError{Code: out.ExitCode}
	}
	if werr != nil {
		return out, fmt.Errorf("wait %s: %w", cmd.Path, werr)
	}
	return out, nil
}

// credential resolves the user and group a command runs as; nil means the
// current identity.
func (r *Runner) credential(cmd Command) (*syscall.Credential, error) {
	name, group := cmd.User, cmd.Group
	if name == "" && r != nil {
		name, group = r.DefaultUser, r.DefaultGroup
	}
	if name == "" {
		return nil, nil
	}
	uid, gid, err := LookupIDs(name, group)
	if err != nil {
		return nil, err
	}
	if uid == uint32(os.Geteuid()) && gid == uint32(os.Getegid()) {
		return nil, nil
	}
	return &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}, nil
}

// LookupIDs resolves a script user and group ("": the user's own group)
// to their IDs.
func LookupIDs(name, group string) (uid, gid uint32, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, fmt.Errorf("script user: %w", err)
	}
	uid64, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("script user %s: bad uid %q", name, u.Uid)
	}
	gidStr := u.Gid
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return 0, 0, fmt.Errorf("script group: %w", err)
		}
		gidStr = g.Gid
	}
	gid64, err := strconv.ParseUint(gidStr, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("script group %s: bad gid %q", group, gidStr)
	}
	return uint32(uid64), uint32(gid64), nil
}

func runsAsRoot(cred *syscall.Credential) bool {
	if cred == nil {
		return os.Geteuid() == 0
	}
	return cred.Uid == 0
}

// CheckSecure refuses path when it, or any directory above it, can be
// modified by a user other than root: owned by non-root, or writable by
// group or others. A group/other-writable directory with the sticky bit
// (like /tmp) is accepted when the entry inside it is owned by root,
// since then nobody else can rename or remove that entry.
func CheckSecure(path string) error {
	path = filepath.Clean(path)
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", path, err)
	}
	child := real
	st, err := statOwner(child)
	if err != nil {
		return err
	}
	if st.uid != 0 || st.mode&0o022 != 0 {
		return fmt.Errorf("%s: %w", child, ErrInsecure)
	}
	for dir := filepath.Dir(real); ; dir = filepath.Dir(dir) {
		d, err := statOwner(dir)
		if err != nil {
			return err
		}
		childOwner, err := statOwner(child)
		if err != nil {
			return err
		}
		switch {
		case d.uid != 0:
			return fmt.Errorf("%s: directory %s owned by uid %d: %w", real, dir, d.uid, ErrInsecure)
		case d.mode&0o022 != 0 && !(d.mode&os.ModeSticky != 0 && childOwner.uid == 0):
			return fmt.Errorf("%s: directory %s is group or world writable: %w", real, dir, ErrInsecure)
		}
		if dir == "/" {
			return nil
		}
		child = dir
	}
}

type owner struct {
	uid  uint32
	mode os.FileMode
}

func statOwner(p string) (owner, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return owner{}, fmt.Errorf("stat %s: %w", p, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return owner{}, fmt.Errorf("stat %s: no owner information", p)
	}
	return owner{uid: st.Uid, mode: fi.Mode()}, nil
}

// limitedBuffer keeps the first MaxOutput bytes and discards the rest
// (the writer never fails, so the child never gets SIGPIPE from us).
type limitedBuffer struct{ b bytes.Buffer }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := MaxOutput - l.b.Len(); room > 0 {
		if len(p) <= room {
			l.b.Write(p)
		} else {
			l.b.Write(p[:room])
		}
	}
	return len(p), nil
}

func (l *limitedBuffer) Bytes() []byte { return l.b.Bytes() }
