package ops_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/internal/ops"
	"github.com/promoengine/promoengine/pkg/events"
)

func TestStatus(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.applyCatalog([]byte(drinksCatalog))
	b.startEngine(10, config.WorkerOrders, config.WorkerOutbox)
	b.publish([]byte(paid("1", "c1", "drinks", "1", "1000")))
	b.publish([]byte(paid("2", "c1", "drinks", "1", "1000")))
	b.publishRaw("pos.orders.paid", []byte(`not json`))
	b.eventually("the dead letter", func() bool { return len(b.messages(b.subjects.StreamDLQ())) == 1 })
	b.settled()

	rep, err := b.op.Status(b.ctx)
	require.NoError(t, err)
	require.Empty(t, rep.Problems)
	require.Len(t, rep.Streams, 3)
	orders := rep.Streams[0]
	require.Equal(t, "POS_ORDERS", orders.Name)
	require.Equal(t, uint64(3), orders.Messages)
	require.Equal(t, uint64(1), orders.FirstSeq)
	require.Equal(t, uint64(3), orders.LastSeq)
	require.NotNil(t, orders.LastTime)
	require.Len(t, orders.Consumers, 17, "the keyer and 16 partitions")
	require.Equal(t, "promo-keyer", orders.Consumers[0].Name)
	for _, c := range orders.Consumers {
		require.Zero(t, c.Pending, c.Name)
		require.Zero(t, c.AckPending, c.Name)
	}
	require.Len(t, rep.Nodes, 1, "the engine that ran")
	require.Len(t, rep.Nodes[0].Owned, 17)
	require.Equal(t, uint64(2), rep.Streams[1].Messages, "two results")
	require.Equal(t, "PROMO_DLQ", rep.Streams[2].Name)
	require.NotNil(t, rep.Outbox)
	require.Zero(t, rep.Outbox.Backlog)
	require.Equal(t, []ops.CodeCount{{Code: events.DLQInvalidEvent, Count: 1}}, rep.DeadLetters)
}

// Status reports what it can: without the database or a stream, the rest
// is still there, and the problems are named.
func TestStatusWithProblems(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.NoError(t, b.js.DeleteStream(b.ctx, "PROMO_DLQ"))
	rep, err := ops.New(b.js, nil, b.subjects, b.log).Status(b.ctx)
	require.NoError(t, err)
	require.Nil(t, rep.Outbox)
	require.Len(t, rep.Problems, 1)
	require.Contains(t, rep.Problems[0], "PROMO_DLQ")
	require.True(t, rep.Streams[2].Missing)
	require.Equal(t, "POS_ORDERS", rep.Streams[0].Name)
	require.False(t, rep.Streams[0].Missing)
}
