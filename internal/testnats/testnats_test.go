package testnats_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/promoengine/promoengine/internal/testnats"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestNew(t *testing.T) {
	t.Parallel()

	t.Run("PublishAndReadBack", func(t *testing.T) {
		t.Parallel()

		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		js := testnats.New(t).JetStream(t)

		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Storage: jetstream.FileStorage})
		require.NoError(t, err)
		for i := range 3 {
			msg := nats.NewMsg("orders.paid")
			msg.Data = fmt.Appendf(nil, "order-%d", i)
			msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("event-%d", i))
			_, err := js.PublishMsg(ctx, msg)
			require.NoError(t, err)
		}
		// Republishing an event id is deduplicated by the real server.
		ack, err := js.Publish(ctx, "orders.paid", []byte("order-0"), jetstream.WithMsgID("event-0"))
		require.NoError(t, err)
		require.True(t, ack.Duplicate)

		consumer, err := js.CreateConsumer(ctx, "ORDERS", jetstream.ConsumerConfig{Durable: "reader", AckPolicy: jetstream.AckExplicitPolicy})
		require.NoError(t, err)
		batch, err := consumer.Fetch(3, jetstream.FetchMaxWait(10*time.Second))
		require.NoError(t, err)
		var got []string
		for msg := range batch.Messages() {
			got = append(got, string(msg.Data()))
			require.NoError(t, msg.DoubleAck(ctx))
		}
		require.NoError(t, batch.Error())
		require.Equal(t, []string{"order-0", "order-1", "order-2"}, got)
	})

	t.Run("ServersAreIsolated", func(t *testing.T) {
		t.Parallel()

		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		first, second := testnats.New(t), testnats.New(t)
		require.NotEqual(t, first.URL(), second.URL())

		_, err := first.JetStream(t).CreateStream(ctx, jetstream.StreamConfig{Name: "ONLY_FIRST", Subjects: []string{"only.>"}})
		require.NoError(t, err)
		_, err = second.JetStream(t).Stream(ctx, "ONLY_FIRST")
		require.ErrorIs(t, err, jetstream.ErrStreamNotFound)
	})

	t.Run("CoreNATS", func(t *testing.T) {
		t.Parallel()

		srv := testnats.New(t)
		subConn := srv.Conn(t)
		sub, err := subConn.SubscribeSync("ping")
		require.NoError(t, err)
		// The interest must reach the server before another connection
		// publishes: core NATS drops a message nobody is subscribed to.
		require.NoError(t, subConn.Flush())
		pub := srv.Conn(t)
		require.NoError(t, pub.Publish("ping", []byte("pong")))
		msg, err := sub.NextMsg(10 * time.Second)
		require.NoError(t, err)
		require.Equal(t, "pong", string(msg.Data))
	})
}
