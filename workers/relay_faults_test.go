package workers

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/streams"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/pkg/rules"
)

// A valid order whose result would exceed what a NATS message carries (a
// thousand lines with long ids, eight stacking item programs: about 2 MB
// of result from a 300 KB event) is dead-lettered when it is processed, as
// result_too_large with its original bytes, its effects rolled back — it
// never reaches the outbox, where it would stop every later result — and
// the next events are processed.
func TestOrdersRefuseAResultTooLargeForNATS(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var programs strings.Builder
	for i := range 8 {
		fmt.Fprintf(&programs, "  - {id: drinks-%d, layer: item, when: {products: {categories: [\"drinks\"]}}, reward: {percent: \"1\"}}\n", i)
	}
	cat, err := rules.Parse([]byte(`
currency: IDR
money_decimals: 0
timezone: Asia/Jakarta
points: {decimals: 0, earn: [{per_amount: "1000", points: "1"}]}
programs:
` + programs.String()))
	require.NoError(t, err)
	_, err = ledger.ApplyCatalog(b.ctx, b.pool, cat)
	require.NoError(t, err)
	b.startOrders(OrdersHooks{})
	b.startRelay(OutboxRelayHooks{})

	lines := make([]string, events.MaxLines)
	for i := range lines {
		lines[i] = line(fmt.Sprintf("%04d-%s", i, strings.Repeat("x", 190)), "drinks", "1", "100000")
	}
	big := paidEvent("big", "c1", lines...)
	require.Less(t, len(big), events.MaxEventBytes, "the event itself is within bounds")
	_, err = events.Decode(big)
	require.NoError(t, err, "and valid")
	seq := b.publish(b.subjects.OrdersPaid(), big, "big")
	b.publish(b.subjects.OrdersPaid(), paidEvent("after", "c1", line("1", "drinks", "1", "10000")), "after")

	b.waitResults("after")
	b.waitQuiet()
	letters := b.streamMsgs(b.subjects.StreamDLQ())
	require.Len(t, letters, 1)
	require.Equal(t, events.DLQResultTooLarge, letters[0].Header.Get(events.HeaderErrorCode))
	require.Contains(t, letters[0].Header.Get(events.HeaderErrorMessage), "bytes")
	require.Equal(t, big, letters[0].Data, "the original bytes")
	require.Equal(t, fmt.Sprint(seq), letters[0].Header.Get(events.HeaderKeyedFrom), "the keyer's copy names the published original")
	require.Empty(t, b.results()["big"], "no result")
	require.Zero(t, b.count(`SELECT count(*) FROM processed_orders WHERE order_id = 'o-big'`), "no effect")
	require.Zero(t, b.count(`SELECT count(*) FROM outbox`), "the outbox drained")
}

// The relay's backstop: a row in the outbox too large for the NATS server
// (a server with a smaller max_payload than the engine assumed, or a job's
// event) is moved to the dead-letter stream as result_too_large, without
// its body when that does not fit either, and the rows behind it are
// published: the outbox never wedges.
func TestRelayDeadLettersARowTooLargeToPublish(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tx, err := b.pool.Begin(b.ctx)
	require.NoError(t, err)
	subject := b.subjects.ResultsOrder()
	require.NoError(t, ledger.Enqueue(b.ctx, tx, subject, "result:small-1", map[string]string{"event_id": "result:small-1", "causation_id": "small-1"}))
	require.NoError(t, ledger.Enqueue(b.ctx, tx, subject, "result:huge", map[string]string{"event_id": "result:huge", "causation_id": "huge", "pad": strings.Repeat("x", 2<<20)}))
	require.NoError(t, ledger.Enqueue(b.ctx, tx, subject, "result:small-2", map[string]string{"event_id": "result:small-2", "causation_id": "small-2"}))
	require.NoError(t, tx.Commit(b.ctx))

	b.startRelay(OutboxRelayHooks{})
	got := b.waitResults("small-1", "small-2")
	require.Len(t, got["small-1"], 1)
	require.Len(t, got["small-2"], 1, "the row behind the huge one is published")
	require.Eventually(t, func() bool { return b.count(`SELECT count(*) FROM outbox`) == 0 }, 30*time.Second, 20*time.Millisecond)
	letters := b.streamMsgs(b.subjects.StreamDLQ())
	require.Len(t, letters, 1)
	require.Equal(t, events.DLQResultTooLarge, letters[0].Header.Get(events.HeaderErrorCode))
	require.Contains(t, letters[0].Header.Get(events.HeaderErrorMessage), "result:huge")
	require.NotEmpty(t, letters[0].Header.Get(HeaderBodyOmitted), "2 MB does not fit in a dead letter either")
	require.Empty(t, letters[0].Data)
	require.Empty(t, b.results()["huge"])
}

// Every publish of the relay has an acknowledgement deadline: here the
// acknowledgements are lost (the results stream is gone and a subscriber
// that never answers takes its subject, as during a stream leader change),
// and the relay gives the chunk up after the deadline and publishes it
// again, instead of waiting for ever; once the stream is back, everything
// is published and the outbox drains.
func TestRelayRepublishesAChunkWhoseAcknowledgementsAreLost(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.NoError(t, b.js.DeleteStream(b.ctx, b.subjects.StreamResults()))
	var mu sync.Mutex
	seen := map[string]int{}
	sink, err := b.nats.Conn(t).Subscribe(b.subjects.ResultsAll(), func(m *nats.Msg) {
		mu.Lock()
		seen[m.Header.Get(jetstream.MsgIDHeader)]++
		mu.Unlock()
	})
	require.NoError(t, err)
	tx, err := b.pool.Begin(b.ctx)
	require.NoError(t, err)
	for _, id := range []string{"a", "b", "c"} {
		require.NoError(t, ledger.Enqueue(b.ctx, tx, b.subjects.ResultsOrder(), "result:"+id, map[string]string{"event_id": "result:" + id, "causation_id": id}))
	}
	require.NoError(t, tx.Commit(b.ctx))

	b.startRelay(OutboxRelayHooks{})
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return seen["result:c"] >= 2
	}, time.Minute, 50*time.Millisecond, "the last row of the chunk is published again after the deadline")
	require.NoError(t, sink.Unsubscribe())
	sopts := streams.DefaultOptions()
	sopts.Partitions = testPartitions
	require.NoError(t, streams.Ensure(b.ctx, b.js, b.subjects, sopts))
	got := b.waitResults("a", "b", "c")
	for _, id := range []string{"a", "b", "c"} {
		require.Len(t, got[id], 1, id)
	}
	require.Eventually(t, func() bool { return b.count(`SELECT count(*) FROM outbox`) == 0 }, 30*time.Second, 20*time.Millisecond)
}
