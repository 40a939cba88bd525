package pgcluster

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ErrNoBinaries is returned when no PostgreSQL server binaries are found.
// The wrapping error says how to install them.
var ErrNoBinaries = errors.New("pgcluster: no PostgreSQL server binaries found")

// serverTools are the binaries Start needs. pg_config alone (shipped with
// libpq-dev) is not enough, which is why every candidate directory is checked
// for all of them.
var serverTools = []string{"initdb", "pg_ctl", "postgres"}

// FindBinDir returns the directory holding initdb, pg_ctl and postgres.
//
// It prefers `pg_config --bindir` because that is the installation the user
// chose; then the newest /usr/lib/postgresql/*/bin, where Debian and Ubuntu
// install the server without putting it on PATH; then PATH.
func FindBinDir() (string, error) {
	var candidates []string
	if pgConfig, err := exec.LookPath("pg_config"); err == nil {
		if out, err := exec.Command(pgConfig, "--bindir").Output(); err == nil {
			candidates = append(candidates, string(bytes.TrimSpace(out)))
		}
	}
	candidates = append(candidates, debianBinDirs()...)
	if initdb, err := exec.LookPath("initdb"); err == nil {
		candidates = append(candidates, filepath.Dir(initdb))
	}
	for _, dir := range candidates {
		if hasServerTools(dir) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("%w (looked at `pg_config --bindir`, /usr/lib/postgresql/*/bin and PATH): "+
		"install PostgreSQL (Debian/Ubuntu: `apt-get install -y postgresql`; macOS: `brew install postgresql`) "+
		"or set PROMO_DATABASE_URL to use an existing server", ErrNoBinaries)
}

// debianBinDirs lists /usr/lib/postgresql/<major>/bin, newest major first.
func debianBinDirs() []string {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	major := func(dir string) float64 {
		v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
		if err != nil {
			return -1
		}
		return v
	}
	sort.SliceStable(matches, func(i, j int) bool { return major(matches[i]) > major(matches[j]) })
	return matches
}

func hasServerTools(dir string) bool {
	if strings.TrimSpace(dir) == "" {
		return false
	}
	for _, tool := range serverTools {
		info, err := os.Stat(filepath.Join(dir, tool))
		if err != nil || info.IsDir() || info.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}
