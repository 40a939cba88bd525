package migrations_test

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/testdb"
	"github.com/promoengine/promoengine/migrations"
)

// `promoengine migrate` applies every migration once; a second run, or two
// processes starting together, change nothing.
func TestUpIsIdempotentAndSafeConcurrently(t *testing.T) {
	t.Parallel()
	url := testdb.NewEmptyDatabase(t)
	pool, err := pgxpool.New(t.Context(), url)
	require.NoError(t, err)
	defer pool.Close()

	results := make(chan []int64, 2)
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			applied, err := migrations.Up(t.Context(), pool)
			errs <- err
			results <- applied
		}()
	}
	total := 0
	for range 2 {
		require.NoError(t, <-errs)
		total += len(<-results)
	}
	var count int
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT count(*) FROM goose_db_version WHERE version_id > 0`).Scan(&count))
	require.Equal(t, count, total, "each migration applied by exactly one of the two")
	require.GreaterOrEqual(t, count, 2)

	again, err := migrations.Up(t.Context(), pool)
	require.NoError(t, err)
	require.Empty(t, again)
	var tables int
	require.NoError(t, pool.QueryRow(t.Context(), `SELECT count(*) FROM information_schema.tables WHERE table_name IN ('inbox', 'outbox', 'point_lots', 'processed_orders')`).Scan(&tables))
	require.Equal(t, 4, tables)
}
