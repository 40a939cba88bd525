package testdb_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/promoengine/promoengine/internal/testdb"
	"github.com/promoengine/promoengine/migrations"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func currentDatabase(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var name string
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT current_database()").Scan(&name))
	return name
}

func latestMigration(t *testing.T, pool *pgxpool.Pool) int64 {
	t.Helper()
	var version int64
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT max(version_id) FROM goose_db_version").Scan(&version))
	return version
}

func databaseExists(t *testing.T, pool *pgxpool.Pool, name string) bool {
	t.Helper()
	var exists bool
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists))
	return exists
}

func TestNew(t *testing.T) {
	t.Parallel()

	t.Run("DatabasesAreDistinctAndMigrated", func(t *testing.T) {
		t.Parallel()

		// Two tests running at once, each creating its database.
		var (
			mu    sync.Mutex
			names = map[string]bool{}
		)
		t.Run("group", func(t *testing.T) {
			for i := range 2 {
				t.Run(fmt.Sprint(i), func(t *testing.T) {
					t.Parallel()

					pool := testdb.New(t)
					require.Positive(t, latestMigration(t, pool))
					_, err := pool.Exec(t.Context(), "CREATE TABLE mine (id int)")
					require.NoError(t, err, "each database starts from the template, without the other test's table")

					mu.Lock()
					defer mu.Unlock()
					names[currentDatabase(t, pool)] = true
				})
			}
		})
		require.Len(t, names, 2)
	})

	t.Run("DroppedAtCleanup", func(t *testing.T) {
		t.Parallel()

		observer := testdb.New(t)
		var name string
		t.Run("owner", func(t *testing.T) {
			name = currentDatabase(t, testdb.New(t))
			require.True(t, databaseExists(t, observer, name))
		})
		require.False(t, databaseExists(t, observer, name))
	})

	t.Run("ManyInParallel", func(t *testing.T) {
		t.Parallel()

		for i := range 16 {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()

				pool := testdb.New(t)
				_, err := pool.Exec(t.Context(), "CREATE TABLE scratch (id int); INSERT INTO scratch SELECT generate_series(1, 100)")
				require.NoError(t, err)
			})
		}
	})
}

func TestNewDatabase(t *testing.T) {
	t.Parallel()

	t.Run("URLForSubprocesses", func(t *testing.T) {
		t.Parallel()

		url := testdb.NewDatabase(t)
		conn, err := pgx.Connect(t.Context(), url)
		require.NoError(t, err)
		var tables int
		require.NoError(t, conn.QueryRow(t.Context(), "SELECT count(*) FROM information_schema.tables WHERE table_name = 'goose_db_version'").Scan(&tables))
		require.Equal(t, 1, tables)
		// A connection left open, as a killed subprocess would, does not
		// keep the database from being dropped: it is dropped WITH (FORCE).
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
	})

	t.Run("Empty", func(t *testing.T) {
		t.Parallel()

		pool, err := pgxpool.New(t.Context(), testdb.NewEmptyDatabase(t))
		require.NoError(t, err)
		t.Cleanup(pool.Close)

		var tables int
		require.NoError(t, pool.QueryRow(t.Context(), "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'").Scan(&tables))
		require.Zero(t, tables)

		applied, err := migrations.Up(t.Context(), pool)
		require.NoError(t, err)
		require.NotEmpty(t, applied)
		require.Equal(t, applied[len(applied)-1], latestMigration(t, pool))
	})
}
