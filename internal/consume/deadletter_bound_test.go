package consume

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/streams"
	"github.com/promoengine/promoengine/internal/testnats"
	"github.com/promoengine/promoengine/pkg/events"
)

// The error message of a dead letter is one bounded header line whatever
// the message: no CR or LF from the input can end it (and add a header), and
// the cut never splits a character (issue 14).
func TestDeadLetterMessageIsOneBoundedLine(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	js := testnats.New(t).JetStream(t)
	s := events.NewSubjects("")
	require.NoError(t, streams.Ensure(ctx, js, s, streams.DefaultOptions()))
	body := []byte(`{"event_id":"x"}`)
	ack, err := js.PublishMsg(ctx, &nats.Msg{Subject: s.OrdersPaid(), Data: body})
	require.NoError(t, err)

	message := "invalid event: /order/x\r\nNats-Rollup: all: " + strings.Repeat("é", 1_000_000)
	require.NoError(t, NewDeadLetterer(js, s).Send(ctx, Letter{Subject: s.OrdersPaid(), Stream: s.StreamOrders(), Seq: ack.Sequence,
		Data: body, Code: events.DLQInvalidEvent, Message: message}))

	dlq, err := js.Stream(ctx, s.StreamDLQ())
	require.NoError(t, err)
	got, err := dlq.GetLastMsgForSubject(ctx, s.DLQ(s.OrdersPaid()))
	require.NoError(t, err)
	h := got.Header.Get(events.HeaderErrorMessage)
	require.LessOrEqual(t, len(h), maxHeaderMessage)
	require.True(t, utf8.ValidString(h))
	require.True(t, strings.HasPrefix(h, "invalid event: /order/x  Nats-Rollup: all: éé"), h[:80])
	require.Empty(t, got.Header.Get("Nats-Rollup"))
	require.Equal(t, body, got.Data)
}
