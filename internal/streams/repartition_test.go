package streams_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/streams"
	"github.com/promoengine/promoengine/internal/testnats"
	"github.com/promoengine/promoengine/pkg/events"
)

// Changing the number of partitions: refused while a consumer has events
// left, done once everything was processed; the new consumers deliver
// only what arrives afterwards, each key to exactly one of them, and the
// engine's start-up check accepts the new number and refuses the old.
func TestRepartition(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	js := testnats.New(t).JetStream(t)
	s := events.NewSubjects("")
	timing := streams.Timing{AckWait: time.Second}
	opts := streams.DefaultOptions()
	opts.Partitions = 4
	require.NoError(t, streams.Ensure(ctx, js, s, opts))
	require.NoError(t, streams.EnsureOrderConsumers(ctx, js, s, 4, timing, 256))

	publish := func(prefix string, n int) {
		for i := range n {
			key := events.CustomerKey(events.ID(fmt.Sprintf("c%d", i)))
			_, err := js.Publish(ctx, s.KeyedOrderSubject(events.TypeOrderPaid, key), []byte(prefix+fmt.Sprint(i)))
			require.NoError(t, err)
		}
	}
	// consume reads what every partition consumer of n partitions
	// delivers, acknowledging it.
	consume := func(n int) map[string]string {
		got := map[string]string{}
		for p := range n {
			c, err := js.Consumer(ctx, s.StreamOrders(), streams.PartitionConsumer(p))
			require.NoError(t, err)
			batch, err := c.Fetch(1000, jetstream.FetchMaxWait(300*time.Millisecond), jetstream.FetchPriorityGroup(streams.OrdersGroup))
			require.NoError(t, err)
			for m := range batch.Messages() {
				require.NotContains(t, got, string(m.Data()), "delivered once, by one partition")
				got[string(m.Data())] = streams.PartitionConsumer(p)
				require.NoError(t, m.DoubleAck(ctx))
			}
			require.NoError(t, batch.Error())
		}
		return got
	}

	publish("old-", 20)
	_, err := streams.Repartition(ctx, js, s, 8, timing, 256)
	require.ErrorIs(t, err, streams.ErrNotDrained, "events wait in the old partitions")
	require.NoError(t, streams.CheckPartitions(ctx, js, s, 4), "a refused change changes nothing")

	require.Len(t, consume(4), 20)
	rep, err := streams.Repartition(ctx, js, s, 8, timing, 256)
	require.NoError(t, err)
	require.Equal(t, 4, rep.From)
	require.Equal(t, 8, rep.To)
	require.EqualValues(t, 21, rep.StartSeq)
	require.Len(t, rep.Deleted, 4)
	require.NoError(t, streams.CheckPartitions(ctx, js, s, 8))
	require.ErrorIs(t, streams.CheckPartitions(ctx, js, s, 4), streams.ErrPartitionsChanged)
	require.NoError(t, streams.EnsureOrderConsumers(ctx, js, s, 8, timing, 256), "the engine starts on the new consumers")

	publish("new-", 20)
	got := consume(8)
	require.Len(t, got, 20, "only what arrived after the change, each once")
	partitions := map[string]bool{}
	for _, c := range got {
		partitions[c] = true
	}
	require.Greater(t, len(partitions), 4, "20 keys spread over more than the old 4 partitions")

	again, err := streams.Repartition(ctx, js, s, 8, timing, 256)
	require.NoError(t, err)
	require.Equal(t, 8, again.From, "the same number again changes nothing")
	require.Zero(t, again.StartSeq)
}
