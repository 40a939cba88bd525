package consume

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/streams"
	"github.com/promoengine/promoengine/internal/testnats"
	"github.com/promoengine/promoengine/pkg/events"
)

func orderStreams(t *testing.T) (context.Context, jetstream.JetStream, events.Subjects) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	js := testnats.New(t).JetStream(t)
	s := events.NewSubjects("")
	opts := streams.DefaultOptions()
	opts.Partitions = 1
	require.NoError(t, streams.Ensure(ctx, js, s, opts))
	return ctx, js, s
}

// A per-event retry waits the delay it asked for: the order consumers
// have no BackOff list, which the server used to apply on top of
// NakWithDelay (a 2 s nak came back after 30 s and more).
func TestNakWithDelayWaitsTheDelayOnTheOrderConsumer(t *testing.T) {
	t.Parallel()
	ctx, js, s := orderStreams(t)
	cfg := streams.OrderConsumerConfig("nak-test", s.OrdersUnkeyed(), streams.Timing{AckWait: 5 * time.Second}, 16)
	cfg.PriorityPolicy, cfg.PriorityGroups, cfg.PinnedTTL = jetstream.PriorityPolicyNone, nil, 0
	cons, err := js.CreateOrUpdateConsumer(ctx, s.StreamOrders(), cfg)
	require.NoError(t, err)
	_, err = js.Publish(ctx, s.OrdersPaid(), []byte("x"))
	require.NoError(t, err)

	msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	require.NoError(t, err)
	for i, delay := range []time.Duration{time.Second, 2 * time.Second, 5 * time.Second} {
		naked := time.Now()
		require.NoError(t, msg.NakWithDelay(delay))
		msg, err = cons.Next(jetstream.FetchMaxWait(3*delay + 5*time.Second))
		require.NoError(t, err)
		waited := time.Since(naked)
		md, err := msg.Metadata()
		require.NoError(t, err)
		require.Equal(t, uint64(i+2), md.NumDelivered)
		require.GreaterOrEqual(t, waited, delay*9/10)
		require.Less(t, waited, delay+4*time.Second, "redelivered after the nak's delay, not AckWait or a back-off on top")
	}
	require.NoError(t, msg.Ack())
}

// A dead letter that cannot be stored (here: the DLQ stream is missing;
// in production a NATS blip) is tried again, the message held, until it
// is stored: the message is never left to a server that would not deliver
// it again.
func TestDeadLetterIsRetriedUntilStored(t *testing.T) {
	t.Parallel()
	ctx, js, s := orderStreams(t)
	require.NoError(t, js.DeleteStream(ctx, s.StreamDLQ()))
	cfg := streams.OrderConsumerConfig("dl-test", s.OrdersUnkeyed(), streams.Timing{AckWait: 5 * time.Second}, 16)
	cfg.PriorityPolicy, cfg.PriorityGroups, cfg.PinnedTTL = jetstream.PriorityPolicyNone, nil, 0
	cons, err := js.CreateOrUpdateConsumer(ctx, s.StreamOrders(), cfg)
	require.NoError(t, err)
	_, err = js.PublishMsg(ctx, &nats.Msg{Subject: s.OrdersPaid(), Data: []byte("{broken"), Header: nats.Header{jetstream.MsgIDHeader: []string{"broken-1"}}})
	require.NoError(t, err)
	msg, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
	require.NoError(t, err)

	var failures atomic.Int64
	settler := NewSettler(NewDeadLetterer(js, s), 3)
	settler.OnDeadLetterError = func(error) {
		if failures.Add(1) == 3 { // the stream comes back
			opts := streams.DefaultOptions()
			opts.Partitions = 1
			require.NoError(t, streams.Ensure(ctx, js, s, opts))
		}
	}
	settlement, err := settler.Settle(ctx, msg, NewPermanent(events.DLQInvalidEvent, errors.New("not JSON")))
	require.NoError(t, err)
	require.Equal(t, DeadLettered, settlement)
	require.GreaterOrEqual(t, failures.Load(), int64(3))
	dlq, err := js.Stream(ctx, s.StreamDLQ())
	require.NoError(t, err)
	got, err := dlq.GetLastMsgForSubject(ctx, s.DLQ(s.OrdersPaid()))
	require.NoError(t, err)
	require.Equal(t, []byte("{broken"), got.Data)
}

// A Fetcher whose consumer is deleted under it (an operator's mistake, a
// consumer recreated by another version) starts again, recreating the
// consumer, and goes on delivering; its status says when it is not
// consuming. Before, the iterator closed, Run returned nil, nothing was
// logged and nothing was consumed again.
func TestFetcherRecreatesItsConsumer(t *testing.T) {
	t.Parallel()
	ctx, js, s := orderStreams(t)
	cfg := jetstream.ConsumerConfig{Durable: "fetch-test", FilterSubject: s.OrdersUnkeyed(), AckPolicy: jetstream.AckExplicitPolicy}
	open := func(ctx context.Context) (jetstream.Consumer, error) {
		return js.CreateOrUpdateConsumer(ctx, s.StreamOrders(), cfg)
	}
	cons, err := open(ctx)
	require.NoError(t, err)
	f := NewFetcher(cons, open, 4, time.Second, zerolog.New(io.Discard))
	got := make(chan string, 16)
	fctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(fctx, ctx, func(msg jetstream.Msg) {
			got <- string(msg.Data())
			_ = msg.Ack()
			f.Release(msg)
		})
	}()
	t.Cleanup(func() { stop(); <-done })

	_, err = js.Publish(ctx, s.OrdersPaid(), []byte("before"))
	require.NoError(t, err)
	require.Equal(t, "before", <-got)
	require.NoError(t, js.DeleteConsumer(ctx, s.StreamOrders(), "fetch-test"))
	require.Eventually(t, func() bool { return !f.Status().Consuming }, 30*time.Second, 20*time.Millisecond, "the fetcher notices")
	require.Eventually(t, func() bool {
		_, err := js.Consumer(ctx, s.StreamOrders(), "fetch-test")
		return err == nil && f.Status().Consuming
	}, 30*time.Second, 50*time.Millisecond, "the consumer is recreated and pulled again")
	_, err = js.Publish(ctx, s.OrdersPaid(), []byte("after"))
	require.NoError(t, err)
	select {
	case m := <-got:
		require.Contains(t, []string{"before", "after"}, m) // a new consumer may start over
	case <-time.After(30 * time.Second):
		t.Fatal("nothing delivered after the consumer was recreated")
	}
}
