package ledger_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/pkg/ledger"
)

// The outbox is read and emptied through its primary key (its heap is
// mostly dead rows under load), and the setting that makes it so ends with
// the statements: the pooled session keeps its own.
func TestOutboxReadsByIndexWithoutChangingTheSession(t *testing.T) {
	t.Parallel()
	b := setup(t, "")
	cfg := b.pool.Config()
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(b.ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	require.NoError(t, pgx.BeginFunc(b.ctx, pool, func(tx pgx.Tx) error {
		for _, id := range []string{"a", "b", "c"} {
			if err := ledger.Enqueue(b.ctx, tx, "s", id, map[string]string{"id": id}); err != nil {
				return err
			}
		}
		return nil
	}))
	rows, err := ledger.NextOutbox(b.ctx, pool, nil, 10)
	require.NoError(t, err)
	require.Len(t, rows, 3)
	require.NoError(t, ledger.DeleteOutbox(b.ctx, pool, []int64{rows[0].ID, rows[1].ID}))
	n, _, err := ledger.OutboxBacklog(b.ctx, pool)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	// The next read deletes what the previous chunk published.
	rows, err = ledger.NextOutbox(b.ctx, pool, []int64{rows[2].ID}, 10)
	require.NoError(t, err)
	require.Empty(t, rows)
	n, _, err = ledger.OutboxBacklog(b.ctx, pool)
	require.NoError(t, err)
	require.Zero(t, n)

	var setting string
	require.NoError(t, pool.QueryRow(b.ctx, `SHOW enable_seqscan`).Scan(&setting))
	require.Equal(t, "on", setting)
}
