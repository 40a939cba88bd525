package ops_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/examples"
	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/internal/ops"
)

const drinksCatalog = `
currency: IDR
money_decimals: 0
timezone: Asia/Jakarta
points:
  decimals: 0
  earn: [{per_amount: "1000", points: "1"}]
  redeem: {value: "1", min: "1", max_share: "1"}
programs:
  - {id: drinks, layer: item, when: {products: {categories: ["drinks"]}}, reward: {percent: "10"}}
`

// Replaying a range the engine already processed changes nothing: every
// event is skipped by the inbox, the ledger is identical, no result is
// published again.
func TestReplayOfProcessedRangeChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.applyCatalog(examples.Catalog)
	b.startEngine(10, config.WorkerOrders, config.WorkerOutbox)
	_, err := b.op.Publish(b.ctx, bytes.NewReader(examples.Orders), ops.PublishOptions{})
	require.NoError(t, err)
	n := len(exampleOrders())
	b.settled()
	before := b.state()
	resultsBefore := len(b.messages(b.subjects.StreamResults()))

	prog := &recordingProgress{}
	rep, err := b.op.Replay(b.ctx, ops.ReplayOptions{Range: ops.Range{FromSeq: 1}, Progress: prog})
	require.NoError(t, err)
	require.Equal(t, n, rep.Events)
	require.Equal(t, n, rep.Skipped)
	require.Zero(t, rep.Reprocessed)
	require.Zero(t, rep.DeadLettered)
	require.Equal(t, uint64(1), rep.FirstSeq)
	require.Equal(t, uint64(n), rep.LastSeq)
	require.Equal(t, []string{"replaying"}, prog.stages)
	require.True(t, prog.done)
	b.settled()

	require.Equal(t, before, b.state())
	require.Len(t, b.messages(b.subjects.StreamResults()), resultsBefore)
	for id, rs := range b.results() {
		require.Len(t, rs, 1, id)
	}
	stream, err := b.js.Stream(b.ctx, b.subjects.StreamOrders())
	require.NoError(t, err)
	consumers := stream.ConsumerNames(b.ctx)
	var names []string
	for name := range consumers.Name() {
		names = append(names, name)
	}
	for _, name := range names {
		require.NotContains(t, name, "replay", "the replay's ephemeral consumer is gone")
	}
	require.Len(t, names, 17, "the keyer and 16 partitions")
}

// Without an engine, a replay processes what was never processed, exactly
// the range it was given, through the order worker (results go to the
// outbox); a second replay skips it all.
func TestReplayProcessesExactlyTheRange(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.applyCatalog([]byte(drinksCatalog))
	for _, id := range []string{"1", "2", "3", "4", "5", "6"} {
		b.publish([]byte(paid(id, "c"+id, "drinks", "2", "5000")))
	}
	bad := b.publishRaw("pos.orders.paid.anykey", []byte(`{"event_id":"bad"}`)) // seq 7

	rep, err := b.op.Replay(b.ctx, ops.ReplayOptions{Range: ops.Range{FromSeq: 2, ToSeq: 4}, Lanes: 2, BatchSize: 2})
	require.NoError(t, err)
	require.Equal(t, 3, rep.Reprocessed)
	require.Equal(t, 3, rep.Events)
	require.Equal(t, uint64(2), rep.FirstSeq)
	require.Equal(t, uint64(4), rep.LastSeq)
	require.Equal(t, int64(3), rep.OutboxBacklog)
	require.Equal(t, 3, b.count(`SELECT count(*) FROM inbox`))
	require.Equal(t, 3, b.count(`SELECT count(*) FROM inbox WHERE stream_seq BETWEEN 2 AND 4`))

	// The rest of the stream: three new, one dead-lettered, three skipped.
	rep, err = b.op.Replay(b.ctx, ops.ReplayOptions{Range: ops.Range{FromSeq: 1}})
	require.NoError(t, err)
	require.Equal(t, 3, rep.Reprocessed)
	require.Equal(t, 3, rep.Skipped)
	require.Equal(t, 1, rep.DeadLettered)
	require.Equal(t, 7, rep.Events)
	letters, err := b.op.ListDeadLetters(b.ctx, ops.DeadLetterFilter{})
	require.NoError(t, err)
	require.Len(t, letters, 1)
	require.Equal(t, bad, letters[0].OriginalSeq)

	before := b.state()
	rep, err = b.op.Replay(b.ctx, ops.ReplayOptions{Range: ops.Range{FromSeq: 1, ToSeq: 6}})
	require.NoError(t, err)
	require.Equal(t, 6, rep.Skipped)
	require.Equal(t, before, b.state())

	// The engine's relay publishes each result once.
	b.startEngine(10, config.WorkerOutbox)
	b.eventually("results", func() bool { return len(b.results()) == 6 })
}

// A time range selects by the time JetStream stored the messages.
func TestReplayBySince(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.applyCatalog([]byte(drinksCatalog))
	b.publish([]byte(paid("1", "", "drinks", "1", "1000")))
	b.publish([]byte(paid("2", "", "drinks", "1", "1000")))
	msgs := b.messages(b.subjects.StreamOrders())
	rep, err := b.op.Replay(b.ctx, ops.ReplayOptions{Range: ops.Range{Since: msgs[1].Time}})
	require.NoError(t, err)
	require.Equal(t, 1, rep.Reprocessed)
	require.Equal(t, uint64(2), rep.FirstSeq)

	rep, err = b.op.Replay(b.ctx, ops.ReplayOptions{Range: ops.Range{Since: msgs[0].Time, Until: msgs[1].Time}})
	require.NoError(t, err)
	require.Equal(t, 1, rep.Reprocessed)
	require.Equal(t, uint64(1), rep.LastSeq)
}

func TestReplayRangeErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := b.op.Replay(b.ctx, ops.ReplayOptions{Range: ops.Range{FromSeq: 1}})
	require.ErrorContains(t, err, "no catalog applied")
	b.applyCatalog([]byte(drinksCatalog))
	b.publish([]byte(paid("1", "", "drinks", "1", "1000")))
	_, err = b.op.Replay(b.ctx, ops.ReplayOptions{Range: ops.Range{FromSeq: 5}})
	require.ErrorIs(t, err, ops.ErrBadRange)
	require.ErrorContains(t, err, "past the last message of POS_ORDERS (seq 1)")
	_, err = b.op.Replay(b.ctx, ops.ReplayOptions{Range: ops.Range{ToSeq: 5}})
	require.ErrorIs(t, err, ops.ErrBadRange)
	_, err = b.op.Replay(b.ctx, ops.ReplayOptions{})
	require.ErrorIs(t, err, ops.ErrBadRange)
}
