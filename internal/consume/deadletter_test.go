package consume

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/streams"
	"github.com/promoengine/promoengine/internal/testnats"
	"github.com/promoengine/promoengine/pkg/events"
)

// A message published with a JetStream expectation header can still be
// dead-lettered: the expectation is kept under another name instead of
// being applied to the DLQ stream.
func TestDeadLetterKeepsBytesAndDisarmsPublishConditions(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	js := testnats.New(t).JetStream(t)
	s := events.NewSubjects("")
	require.NoError(t, streams.Ensure(ctx, js, s, streams.DefaultOptions()))
	body := []byte("{not json")
	ack, err := js.PublishMsg(ctx, &nats.Msg{Subject: s.OrdersPaid(), Data: body,
		Header: nats.Header{"Nats-Expected-Stream": []string{"POS_ORDERS"}, "X-Till": []string{"7"}}})
	require.NoError(t, err)
	stream, err := js.Stream(ctx, s.StreamOrders())
	require.NoError(t, err)
	orig, err := stream.GetMsg(ctx, ack.Sequence)
	require.NoError(t, err)

	dl := NewDeadLetterer(js, s)
	require.NoError(t, dl.Send(ctx, Letter{Subject: orig.Subject, Stream: s.StreamOrders(), Seq: orig.Sequence,
		Header: orig.Header, Data: orig.Data, Code: events.DLQInvalidEvent, Message: "not valid JSON"}))

	dlq, err := js.Stream(ctx, s.StreamDLQ())
	require.NoError(t, err)
	got, err := dlq.GetLastMsgForSubject(ctx, s.DLQ(s.OrdersPaid()))
	require.NoError(t, err)
	require.Equal(t, body, got.Data)
	require.Equal(t, "7", got.Header.Get("X-Till"))
	require.Empty(t, got.Header.Get("Nats-Expected-Stream"))
	require.Equal(t, "POS_ORDERS", got.Header.Get("Promo-Original-Header-Nats-Expected-Stream"))
	require.Equal(t, "dlq:POS_ORDERS:1", got.Header.Get(jetstream.MsgIDHeader))
}
