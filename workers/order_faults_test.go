package workers

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/pkg/events"
)

// paidRedeeming is a sale of 10,000 by customer redeeming points.
func paidRedeeming(id, customer, points string) []byte {
	return []byte(fmt.Sprintf(`{"event_id":%q,"type":"pos.order.paid","occurred_at":"2026-11-24T10:05:00+07:00","company_id":"1","pos_config_id":"1","order":{"id":%q,"currency":"IDR","customer_id":%q,"redeem_points":%q,"lines":[{"id":"1","product_id":"p1","category_ids":["food"],"qty":"1","unit_price":"10000"}]}}`,
		id, "o-"+id, customer, points))
}

// A transaction that loses its connection (PostgreSQL terminating the
// backend, as a restart does) is retried in place: the customer's next
// event, published while the first keeps failing, waits behind it and
// takes effect after it. Before, the batch was naked with a delay while
// the lane went on, and the redemption below was rejected for points the
// first sale had not yet earned.
func TestTransientFailureHoldsTheCustomersNextEvent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var mu sync.Mutex
	var firstFailure time.Time
	failures := 0
	failed := make(chan struct{})
	b.startOrders(OrdersHooks{BeforeCommit: func(ctx context.Context, tx pgx.Tx, ids []string) error {
		if !slices.Contains(ids, "hold-1") {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		if failures == 0 {
			firstFailure = time.Now()
		} else if time.Since(firstFailure) > 700*time.Millisecond {
			return nil
		}
		failures++
		if failures == 1 {
			close(failed)
		}
		// A real connection loss, not a made-up error.
		_, err := tx.Exec(ctx, `SELECT pg_terminate_backend(pg_backend_pid())`)
		require.Error(t, err)
		return err
	}})
	b.startRelay(OutboxRelayHooks{})

	b.publish(b.subjects.OrdersPaid(), paidEvent("hold-1", "holder", line("1", "food", "1", "10000")), "hold-1")
	select {
	case <-failed:
	case <-time.After(30 * time.Second):
		t.Fatal("the first event's transaction never ran")
	}
	b.publish(b.subjects.OrdersPaid(), paidRedeeming("hold-2", "holder", "5"), "hold-2")
	rs := b.waitResults("hold-1", "hold-2")
	b.waitQuiet()

	mu.Lock()
	require.GreaterOrEqual(t, failures, 2, "the first event failed repeatedly")
	mu.Unlock()
	second := rs["hold-2"][0]
	require.Equal(t, "applied", second["status"], "the redemption saw the points of the sale before it: %v", second["error"])
	require.Equal(t, "5", second["points"].(map[string]any)["redeemed"])
	var order []string
	for _, m := range b.streamMsgs(b.subjects.StreamResults()) {
		order = append(order, m.Header.Get("Nats-Msg-Id"))
	}
	require.Equal(t, []string{"result:hold-1", "result:hold-2"}, order)
	require.Zero(t, len(b.streamMsgs(b.subjects.StreamDLQ())), "nothing dead-lettered")
	// Retries in place cost no delivery.
	require.Equal(t, 0, b.count(`SELECT count(*) FROM inbox WHERE event_id NOT IN ('hold-1', 'hold-2')`))
}

// An event whose customer cannot even be locked (a failure of its own in
// the batch's first statement, with no event to blame) is set apart by one
// transaction per event, and the rest of its batch commits.
func TestEventFailingInTheLockIsIsolated(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.pool.Exec(b.ctx, `
		CREATE FUNCTION refuse_account() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.customer_id = 'poisoned' THEN RAISE EXCEPTION 'refused account'; END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER refuse_account BEFORE INSERT ON accounts FOR EACH ROW EXECUTE FUNCTION refuse_account();`)
	require.NoError(t, err)
	var ids []string
	for i := range 12 {
		id := fmt.Sprintf("iso-%d", i)
		ids = append(ids, id)
		if i == 6 {
			b.publish(b.subjects.OrdersPaid(), paidEvent("iso-poison", "poisoned", line("1", "food", "1", "1000")), "iso-poison")
		}
		b.publish(b.subjects.OrdersPaid(), paidEvent(id, fmt.Sprintf("iso-c%d", i%4), line("1", "food", "1", "1000")), id)
	}
	b.startOrders(OrdersHooks{})
	b.startRelay(OutboxRelayHooks{})
	b.waitResults(ids...)
	require.Empty(t, b.results()["iso-poison"])
	require.Equal(t, 12, b.count(`SELECT count(*) FROM inbox`))
	// The poisoned event is retried on the per-event schedule and, after
	// MaxDeliver deliveries, dead-lettered; the stream went on meanwhile.
	require.Eventually(t, func() bool {
		for _, m := range b.streamMsgs(b.subjects.StreamDLQ()) {
			if m.Header.Get(events.HeaderErrorCode) == events.DLQProcessingFailed {
				return true
			}
		}
		return false
	}, 90*time.Second, 200*time.Millisecond)
}
