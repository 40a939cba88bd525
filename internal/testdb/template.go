package testdb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/promoengine/promoengine/migrations"
)

const (
	templatePrefix = "promo_template_"
	modulePath     = "github.com/promoengine/promoengine"
	// templateLockKey is the advisory lock test binaries take to create a
	// template. Any constant works as long as nothing else uses it.
	templateLockKey int64 = 0x70726f6d6f746d70 // "promotmp"
)

// ensureTemplate returns the name of the frozen, migrated template database
// for the current migrations, creating it if no test binary did yet.
func ensureTemplate(ctx context.Context, srv *server) (string, error) {
	hash, err := migrationsHash()
	if err != nil {
		return "", err
	}
	name := templatePrefix + hash

	conn, err := pgx.Connect(ctx, srv.admin.String())
	if err != nil {
		return "", fmt.Errorf("testdb: connect to %s: %w", srv.source, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// Session-level: released when the connection closes, even if we panic.
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", templateLockKey); err != nil {
		return "", fmt.Errorf("testdb: lock template creation: %w", err)
	}

	var frozen bool
	err = conn.QueryRow(ctx, "SELECT datistemplate FROM pg_database WHERE datname = $1", name).Scan(&frozen)
	switch {
	case err == nil && frozen:
		return name, nil
	case err == nil:
		// Left half-made by a binary that died while migrating it.
		if _, err := conn.Exec(ctx, "DROP DATABASE "+ident(name)+" WITH (FORCE)"); err != nil {
			return "", fmt.Errorf("testdb: drop unfinished template %s: %w", name, err)
		}
	case !errors.Is(err, pgx.ErrNoRows):
		return "", fmt.Errorf("testdb: look up template %s: %w", name, err)
	}

	// template0 rather than the default template1, which a shared server may
	// have filled with objects of its own.
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident(name)+" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"); err != nil {
		return "", fmt.Errorf("testdb: create template %s: %w", name, err)
	}
	if err := migrate(ctx, srv.url(name)); err != nil {
		return "", fmt.Errorf("testdb: migrate template %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+ident(name)+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"); err != nil {
		return "", fmt.Errorf("testdb: freeze template %s: %w", name, err)
	}
	return name, nil
}

func migrate(ctx context.Context, url string) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	_, err = migrations.Up(ctx, pool)
	return err
}

// migrationsHash identifies the migrations the test binary was built with,
// so that a changed migration gets a new template instead of tests running
// on a stale schema. It reads the files from the source tree because the
// migrations package does not export what it embeds; `go test` runs inside
// the module, where the tree is.
func migrationsHash() (string, error) {
	dir, err := migrationsDir()
	if err != nil {
		return "", err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("testdb: %w", err)
	}
	h := sha256.New()
	for _, entry := range entries { // Sorted by name.
		name := entry.Name()
		if !entry.Type().IsRegular() || strings.HasSuffix(name, "_test.go") ||
			(filepath.Ext(name) != ".sql" && filepath.Ext(name) != ".go") {
			continue
		}
		content, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return "", fmt.Errorf("testdb: %w", err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(content))
		h.Write(content)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// migrationsDir finds migrations/ at the root of this module, from the
// working directory (`go test` runs in the package directory) or, failing
// that, from where this file was compiled.
func migrationsDir() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	for _, start := range starts {
		for dir := start; ; dir = filepath.Dir(dir) {
			if isModuleRoot(dir) {
				return filepath.Join(dir, "migrations"), nil
			}
			if dir == filepath.Dir(dir) {
				break
			}
		}
	}
	return "", fmt.Errorf("testdb: cannot find the migrations directory of %s above %s", modulePath, strings.Join(starts, " or "))
}

func isModuleRoot(dir string) bool {
	goMod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	var module string
	for line := range bytes.Lines(goMod) {
		if fields := strings.Fields(string(line)); len(fields) == 2 && fields[0] == "module" {
			module = strings.Trim(fields[1], `"`)
			break
		}
	}
	if module != modulePath {
		return false
	}
	info, err := os.Stat(filepath.Join(dir, "migrations"))
	return err == nil && info.IsDir()
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }
