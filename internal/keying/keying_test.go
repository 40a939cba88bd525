package keying_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/keying"
	"github.com/promoengine/promoengine/internal/testdb"
	"github.com/promoengine/promoengine/pkg/events"
)

func returnOf(t *testing.T, orderID string) *events.Event {
	t.Helper()
	ev, err := events.Decode([]byte(`{"event_id":"r-` + orderID + `","type":"pos.order.returned","occurred_at":"2026-11-24T10:01:00+07:00",` +
		`"company_id":"1","pos_config_id":"1","order":{"id":"r-` + orderID + `","original_order_id":"` + orderID + `","lines":[{"line_id":"1","qty":"1"}]}}`))
	require.NoError(t, err)
	return ev
}

func processSale(t *testing.T, pool *pgxpool.Pool, orderID string, customer *string) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `INSERT INTO processed_orders (order_id, event_id, customer_id, occurred_at, status, catalog_version, result)
		VALUES ($1, $1, $2, now(), 'applied', 1, '{}')`, orderID, customer)
	require.NoError(t, err)
}

// The keyer's resolution of a reversal it has no memory of: it waits for
// the sale to be processed rather than guess, keys by the order only when
// the sale does not come (or was anonymous), and never falls back because
// PostgreSQL did not answer.
func TestKeyPatiently(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t)
	r := keying.NewResolver(pool, zerolog.Nop())
	ctx := context.Background()

	t.Run("the sale is processed while it waits", func(t *testing.T) {
		go func() {
			time.Sleep(300 * time.Millisecond)
			c := "c1"
			processSale(t, pool, "o1", &c)
		}()
		key, err := r.KeyPatiently(ctx, returnOf(t, "o1"), 10*time.Second)
		require.NoError(t, err)
		require.Equal(t, events.CustomerKey("c1"), key)
	})
	t.Run("an anonymous sale keys by its order at once", func(t *testing.T) {
		processSale(t, pool, "o2", nil)
		start := time.Now()
		key, err := r.KeyPatiently(ctx, returnOf(t, "o2"), time.Hour)
		require.NoError(t, err)
		require.Equal(t, events.OrderKey("o2"), key)
		require.Less(t, time.Since(start), time.Minute, "found: no waiting for saleWait")
	})
	t.Run("a sale that never comes keys by its order after the wait", func(t *testing.T) {
		key, err := r.KeyPatiently(ctx, returnOf(t, "o3"), 200*time.Millisecond)
		require.NoError(t, err)
		require.Equal(t, events.OrderKey("o3"), key)
	})
	t.Run("PostgreSQL not answering: retried until the context ends, never guessed", func(t *testing.T) {
		down, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:1/none?connect_timeout=1")
		require.NoError(t, err)
		t.Cleanup(down.Close)
		rd := keying.NewResolver(down, zerolog.Nop())
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err = rd.KeyPatiently(cctx, returnOf(t, "o4"), 50*time.Millisecond)
		require.ErrorIs(t, err, context.DeadlineExceeded, "no order key although saleWait passed")
	})
}
