package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// systemUserName is the account the server runs as when the caller is root.
// It is the name Debian's postgresql package uses, so an installed package
// and pgcluster agree on who owns PostgreSQL files.
const systemUserName = "postgres"

// systemUser is the unprivileged account the server runs as when the caller
// is root, because postgres refuses to run as root.
type systemUser struct {
	name string
	uid  int
	gid  int
}

// credential makes a child process run as the user. Supplementary groups are
// dropped (empty Groups) so the child keeps none of root's.
func (u *systemUser) credential() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: &syscall.Credential{
		Uid:    uint32(u.uid), //nolint:gosec // uids from /etc/passwd fit in uint32.
		Gid:    uint32(u.gid), //nolint:gosec // gids from /etc/group fit in uint32.
		Groups: []uint32{},
	}}
}

// lookupOrCreateSystemUser returns the postgres system user, creating it
// with useradd when missing (a machine with the server binaries but without
// the Debian package, e.g. a container that copied them).
func lookupOrCreateSystemUser(ctx context.Context, log io.Writer) (*systemUser, error) {
	u, err := user.Lookup(systemUserName)
	var unknown user.UnknownUserError
	if errors.As(err, &unknown) {
		args := []string{"--system", "--no-create-home", "--home-dir", "/var/lib/postgresql", "--shell", "/bin/sh"}
		if _, err := user.LookupGroup(systemUserName); err == nil {
			args = append(args, "--gid", systemUserName)
		} else {
			args = append(args, "--user-group")
		}
		args = append(args, systemUserName)
		fmt.Fprintf(log, "pgcluster: creating system user %q to run PostgreSQL (it refuses to run as root)\n", systemUserName)
		if err := runLogged(log, exec.CommandContext(ctx, "useradd", args...)); err != nil {
			return nil, fmt.Errorf("pgcluster: create system user %q: %w", systemUserName, err)
		}
		u, err = user.Lookup(systemUserName)
	}
	if err != nil {
		return nil, fmt.Errorf("pgcluster: look up system user %q: %w", systemUserName, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: uid of %q: %w", systemUserName, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: gid of %q: %w", systemUserName, err)
	}
	return &systemUser{name: u.Username, uid: uid, gid: gid}, nil
}

// makeTraversable gives "others" the search (x) bit on every parent of dir
// that the user could not otherwise pass through. Only x is added: the
// server must reach its data directory, it need not list anyone's files.
func makeTraversable(dir string, u *systemUser, log io.Writer) error {
	for parent := filepath.Dir(dir); ; parent = filepath.Dir(parent) {
		info, err := os.Stat(parent)
		if err != nil {
			return fmt.Errorf("pgcluster: %w", err)
		}
		if !traversableBy(info, u) {
			mode := info.Mode().Perm() | 0o001
			fmt.Fprintf(log, "pgcluster: chmod o+x %s so that user %q can reach its data directory\n", parent, u.name)
			if err := os.Chmod(parent, mode|info.Mode()&(fs.ModeSticky|fs.ModeSetgid|fs.ModeSetuid)); err != nil {
				return fmt.Errorf("pgcluster: make %s traversable for %q: %w", parent, u.name, err)
			}
		}
		if parent == filepath.Dir(parent) {
			return nil
		}
	}
}

func traversableBy(info fs.FileInfo, u *systemUser) bool {
	perm := info.Mode().Perm()
	if stat, ok := info.Sys().(*syscall.Stat_t); ok {
		switch {
		case int(stat.Uid) == u.uid:
			return perm&0o100 != 0
		case int(stat.Gid) == u.gid:
			return perm&0o010 != 0
		}
	}
	return perm&0o001 != 0
}

// chown gives path to the user; a no-op when not running as root.
func chown(path string, u *systemUser) error {
	if u == nil {
		return nil
	}
	if err := os.Chown(path, u.uid, u.gid); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	return nil
}
