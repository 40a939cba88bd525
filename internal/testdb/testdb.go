package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
)

const (
	// testPrefix starts the name of every test database; the pid after it
	// lets a later binary recognise databases whose owner died.
	testPrefix = "test_"
	// setupTimeout bounds finding or starting the server and migrating the
	// template, including waiting for another test binary doing the same.
	setupTimeout = 5 * time.Minute
	// dropTimeout bounds the drop at cleanup; the test's context is already
	// cancelled by then.
	dropTimeout = time.Minute
)

// environment is what every test of the binary shares.
type environment struct {
	srv      *server
	template string
}

// setup runs once per test binary: the server and template are the same
// for all its tests, and a failure is reported by each test that asks.
var setup = sync.OnceValues(func() (*environment, error) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	srv, err := findServer(ctx)
	if err != nil {
		return nil, err
	}
	if srv.private {
		reapOrphans(ctx, srv)
	}
	template, err := ensureTemplate(ctx, srv)
	if err != nil {
		return nil, err
	}
	return &environment{srv: srv, template: template}, nil
})

// New returns a pool on a new, migrated database of the test's own. The
// pool is closed and the database dropped when the test ends.
func New(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), NewDatabase(t))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// NewDatabase creates a new, migrated database for the test and returns its
// connection string, e.g. for PROMO_DATABASE_URL of a subprocess. The
// database is dropped when the test ends, disconnecting whoever is still
// connected.
func NewDatabase(t testing.TB) string {
	t.Helper()
	env := mustSetup(t)
	return env.create(t, env.template)
}

// NewEmptyDatabase creates a database without any migration applied, for
// tests of migrating itself (`promoengine migrate`). It is dropped when the
// test ends.
func NewEmptyDatabase(t testing.TB) string {
	t.Helper()
	return mustSetup(t).create(t, "template0")
}

func mustSetup(t testing.TB) *environment {
	t.Helper()
	env, err := setup()
	require.NoError(t, err, "testdb: no PostgreSQL server for tests")
	return env
}

func (e *environment) create(t testing.TB, template string) string {
	t.Helper()
	name := fmt.Sprintf("%s%d_%s", testPrefix, os.Getpid(), randomHex(6))
	err := e.srv.exec(t.Context(), "CREATE DATABASE "+ident(name)+" TEMPLATE "+ident(template)+" ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'")
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), dropTimeout)
		defer cancel()
		if err := e.srv.exec(ctx, "DROP DATABASE IF EXISTS "+ident(name)+" WITH (FORCE)"); err != nil {
			t.Errorf("testdb: drop the test's database: %v", err)
		}
	})
	return e.srv.url(name)
}

// reapOrphans drops the test databases of test binaries that died before
// their cleanups ran, so that the long-lived private cluster does not fill
// the disk. Only there: pids are only meaningful on this machine. Best
// effort: a failure leaves a database for the next binary to try.
func reapOrphans(ctx context.Context, srv *server) {
	conn, err := pgx.Connect(ctx, srv.admin.String())
	if err != nil {
		return
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE starts_with(datname, $1)", testPrefix)
	if err != nil {
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return
	}
	for _, name := range names {
		pidText, _, ok := strings.Cut(strings.TrimPrefix(name, testPrefix), "_")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(name)+" WITH (FORCE)")
	}
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // Never fails (crypto/rand panics instead).
	return hex.EncodeToString(b)
}
