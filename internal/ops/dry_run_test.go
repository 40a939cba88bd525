package ops_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/examples"
	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/internal/ops"
	"github.com/promoengine/promoengine/pkg/ledger"
)

func paidAt(id, customer, category, qty, price, at string) string {
	return strings.Replace(paid(id, customer, category, qty, price), "2026-11-24T10:00:00+07:00", at, 1)
}

// orderIDs lists the order ids of the differences.
func orderIDs(rep *ops.DryRunReport) []string {
	var out []string
	for _, d := range rep.Differences {
		out = append(out, d.OrderID)
	}
	return out
}

// With the catalog unchanged, a dry run over the whole example day — 40
// customers earning and redeeming points, returns, a cancellation — and
// over a part of it finds no difference (SPEC principle 1), and writes
// nothing: the ledger, the streams and the outbox are as they were.
func TestDryRunUnchangedCatalogReportsNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// One transaction at a time: the dry run's two approximations (a limit
	// won in a close race, two transactions waiting on one customer's lock)
	// need transactions in parallel, and this test asserts exactness.
	b.transactions = 1
	v1 := b.applyCatalog(examples.Catalog)
	b.startEngine(10, config.WorkerOrders, config.WorkerOutbox)
	// The day's orders, then its returns and cancellation once the orders
	// are in, as in a shop. (A reversal fetched while its order is still in
	// flight is routed by order, not by customer, and may take effect
	// before or after the customer's other events: its stored result then
	// depends on timing, which no replay can reproduce; see the report.)
	lines := exampleOrders()
	n := len(lines)
	_, err := b.op.Publish(b.ctx, bytes.NewReader(bytes.Join(lines[:n-3], []byte("\n"))), ops.PublishOptions{})
	require.NoError(t, err)
	b.settled()
	_, err = b.op.Publish(b.ctx, bytes.NewReader(bytes.Join(lines[n-3:], []byte("\n"))), ops.PublishOptions{})
	require.NoError(t, err)
	b.settled()
	before := b.state()
	results := len(b.messages(b.subjects.StreamResults()))

	// Small batches and checkpoints, to cross many of both.
	prog := &recordingProgress{}
	rep, err := b.op.DryRun(b.ctx, ops.DryRunOptions{Range: ops.Range{FromSeq: 1}, Progress: prog, BatchSize: 16, CheckpointEvery: 50})
	require.NoError(t, err)
	require.Empty(t, rep.Differences, "%+v", rep.Differences)
	require.Empty(t, rep.Warnings)
	require.False(t, rep.Differs())
	require.Equal(t, n, rep.Compared)
	require.Equal(t, n, rep.Reapplied)
	require.Equal(t, uint64(1), rep.RebuiltFrom)
	require.Equal(t, v1, rep.CatalogVersion)
	require.Equal(t, []string{"rebuilding the ledger"}, prog.stages)
	require.Equal(t, int64(n), prog.last)

	rep, err = b.op.DryRun(b.ctx, ops.DryRunOptions{Range: ops.Range{FromSeq: 150, ToSeq: 200}})
	require.NoError(t, err)
	require.Empty(t, rep.Differences)
	require.Equal(t, 51, rep.Compared)
	require.Equal(t, 200, rep.Reapplied, "every event up to the end of the range")

	// The same catalog applied again is a new version with the same rules:
	// still nothing differs.
	b.applyCatalog(examples.Catalog)
	rep, err = b.op.DryRun(b.ctx, ops.DryRunOptions{Range: ops.Range{FromSeq: 1}})
	require.NoError(t, err)
	require.Empty(t, rep.Differences)

	require.Equal(t, ledgerDigestWithout(before, "catalog_versions"), ledgerDigestWithout(b.state(), "catalog_versions"))
	require.Len(t, b.messages(b.subjects.StreamResults()), results)
	require.Len(t, b.messages(b.subjects.StreamOrders()), n)
	require.Empty(t, b.messages(b.subjects.StreamDLQ()))
}

func ledgerDigestWithout(state map[string]string, table string) map[string]string {
	out := map[string]string{}
	for k, v := range state {
		if k != table {
			out[k] = v
		}
	}
	return out
}

// After a catalog change, a dry run reports exactly the orders whose result
// would differ, field by field. Events before the range are re-applied with
// the version they used, so their effects (points) are as stored; in the
// range the current catalog's effects carry over to later events of the
// same customer.
func TestDryRunReportsExactlyTheOrdersThatDiffer(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.applyCatalog([]byte(drinksCatalog))
	b.startEngine(10, config.WorkerOrders, config.WorkerOutbox)
	// One at a time, so that they are processed in stream order (a return
	// racing its order is processed after it, see the next test).
	for _, ev := range []string{
		paid("1", "c1", "drinks", "2", "5000"), // seq 1: 10% off, earns 9
		paid("2", "", "food", "1", "7000"),     // seq 2: no drinks
		paid("3", "", "drinks", "1", "3000"),   // seq 3: 10% off
		paid("4", "c2", "food", "1", "4000"),   // seq 4: no drinks, new customer
		returned("5", "1", "1"),                // seq 5: half of order 1 back, 4 points clawed back
		paid("6", "c1", "food", "1", "2000"),   // seq 6: c1's balance shows
	} {
		b.publish([]byte(ev))
		b.settled()
	}

	v2 := b.applyCatalog([]byte(strings.Replace(drinksCatalog, `percent: "10"`, `percent: "20"`, 1)))

	rep, err := b.op.DryRun(b.ctx, ops.DryRunOptions{Range: ops.Range{FromSeq: 2}})
	require.NoError(t, err)
	require.Equal(t, []string{"3"}, orderIDs(rep))
	require.Equal(t, v2, rep.CatalogVersion)
	require.Equal(t, 5, rep.Compared)
	d := rep.Differences[0]
	require.Equal(t, uint64(3), d.Seq)
	require.Equal(t, "t:pos.order:3:paid", d.EventID)
	require.Equal(t, int64(1), d.StoredCatalogVersion)
	require.Contains(t, d.Fields, ops.FieldDiff{Path: "totals.discount", Stored: `"300"`, Replayed: `"600"`})
	require.Contains(t, d.Fields, ops.FieldDiff{Path: "lines[0].net", Stored: `"2700"`, Replayed: `"2400"`})
	require.Contains(t, d.Fields, ops.FieldDiff{Path: "discounts[0].amount", Stored: `"300"`, Replayed: `"600"`})
	for _, f := range d.Fields {
		require.NotEqual(t, "catalog_version", f.Path)
	}

	// From the first event, order 1 differs, and so do the return of it and
	// c1's next order, whose points depend on it.
	rep, err = b.op.DryRun(b.ctx, ops.DryRunOptions{Range: ops.Range{FromSeq: 1}})
	require.NoError(t, err)
	require.Equal(t, []string{"1", "3", "5", "6"}, orderIDs(rep))
	six := rep.Differences[3]
	require.Equal(t, []ops.FieldDiff{{Path: "points.balance", Stored: `"7"`, Replayed: `"6"`}}, six.Fields)

	// A range of unchanged orders only.
	rep, err = b.op.DryRun(b.ctx, ops.DryRunOptions{Range: ops.Range{FromSeq: 4, ToSeq: 6}})
	require.NoError(t, err)
	require.Empty(t, rep.Differences)
	require.Equal(t, 3, rep.Compared)
}

// The rebuild reproduces what happened even when it did not happen in
// stream order: a return processed after its order although published
// before it, a dead letter redriven later, a job run that downgraded a
// customer between two orders.
func TestDryRunRebuildsOutOfOrderHistory(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.applyCatalog([]byte(drinksCatalog + `
membership:
  default_path: default
  paths:
    - id: default
      qualify: {window_days: 1}
      retention_days: 1
      downgrade: one_level
      levels:
        - {id: member, min: "0"}
        - {id: silver, min: "10000", discount_percent: "5"}
`))
	b.startEngine(2, config.WorkerOrders, config.WorkerOutbox)

	// A return published before its order: retried until the order is in.
	b.publish([]byte(returned("r9", "9", "1")))
	b.publish([]byte(paidAt("9", "c9", "food", "2", "3000", "2026-11-24T09:00:00+07:00")))
	b.eventually("the return", func() bool { return len(b.results()["t:pos.order:r9:returned"]) == 1 })

	// A return of an order not there at all: dead-lettered, then redriven
	// once the order is in.
	b.publish([]byte(returned("r8", "8", "1")))
	b.eventually("the dead letter", func() bool { return len(b.messages(b.subjects.StreamDLQ())) == 1 })
	b.publish([]byte(paid("8", "c8", "food", "1", "5000")))
	b.settled()
	letters, err := b.op.ListDeadLetters(b.ctx, ops.DeadLetterFilter{})
	require.NoError(t, err)
	_, err = b.op.RedriveDeadLetter(b.ctx, letters[0].ID)
	require.NoError(t, err)
	b.eventually("the redriven return", func() bool { return len(b.results()["t:pos.order:r8:returned"]) == 1 })

	// c1 reaches silver, is downgraded by the job two days later, and
	// orders again as a member.
	b.publish([]byte(paidAt("10", "c1", "food", "1", "20000", "2026-11-24T10:00:00+07:00")))
	b.settled()
	cat, err := ledger.LatestCatalog(b.ctx, b.pool)
	require.NoError(t, err)
	jobs, err := ledger.NewStore(b.subjects).RunJobs(b.ctx, b.pool, cat, time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	require.Equal(t, 1, jobs.Downgrades)
	b.publish([]byte(paidAt("11", "c1", "food", "1", "20000", "2026-11-26T12:00:00+07:00")))
	b.settled()
	require.Equal(t, "member", b.results()["t:pos.order:11:paid"][0]["membership"].(map[string]any)["previous_level"])

	rep, err := b.op.DryRun(b.ctx, ops.DryRunOptions{Range: ops.Range{FromSeq: 1}})
	require.NoError(t, err)
	require.Empty(t, rep.Differences, "%+v", rep.Differences)
	require.Empty(t, rep.Warnings)
	require.Equal(t, 1, rep.JobRuns)
	require.Equal(t, 6, rep.Compared, "the dead-lettered copy of r8 is not compared, its redriven copy is")
	require.Equal(t, 1, rep.NotProcessed)
}

// The dry run needs every processed event; when the stream lost the first
// ones it says so.
func TestDryRunNeedsTheWholeHistory(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.applyCatalog([]byte(drinksCatalog))
	for i := range 4 {
		b.publish([]byte(paid(fmt.Sprint(i), "c1", "drinks", "1", "1000")))
	}
	_, err := b.op.Replay(b.ctx, ops.ReplayOptions{Range: ops.Range{FromSeq: 1}})
	require.NoError(t, err)
	stream, err := b.js.Stream(b.ctx, b.subjects.StreamOrders())
	require.NoError(t, err)
	require.NoError(t, stream.Purge(b.ctx, jetstream.WithPurgeSequence(3)))

	_, err = b.op.DryRun(b.ctx, ops.DryRunOptions{Range: ops.Range{FromSeq: 3}})
	require.ErrorIs(t, err, ops.ErrHistoryGone)
	require.ErrorContains(t, err, "first processed event is POS_ORDERS seq 1, but the stream now starts at seq 3")
	require.ErrorContains(t, err, "max age")
}

// Nothing processed in the range: nothing to compare, nothing differs.
func TestDryRunOfUnprocessedRange(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.applyCatalog([]byte(drinksCatalog))
	b.publish([]byte(paid("1", "", "drinks", "1", "1000")))
	b.publish([]byte(paid("2", "", "drinks", "1", "1000")))
	_, err := b.op.Replay(b.ctx, ops.ReplayOptions{Range: ops.Range{FromSeq: 1, ToSeq: 1}})
	require.NoError(t, err)

	rep, err := b.op.DryRun(b.ctx, ops.DryRunOptions{Range: ops.Range{FromSeq: 2}})
	require.NoError(t, err)
	require.False(t, rep.Differs())
	require.Zero(t, rep.Compared)
	require.Equal(t, 1, rep.NotProcessed)
	require.Equal(t, 1, rep.Reapplied)
	require.NotNil(t, rep.Differences, "an empty list, not null, in JSON")
	require.Empty(t, rep.Differences)
}

// Events of the range before the first processed one (here an invalid
// event, dead-lettered, at seq 1) are counted as never processed.
func TestDryRunCountsUnprocessedEventsBeforeTheFirstProcessed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.applyCatalog([]byte(drinksCatalog))
	b.publishRaw("pos.orders.paid.anykey", []byte(`{"not":"an event"}`))
	b.publish([]byte(paid("2", "", "drinks", "1", "1000")))
	_, err := b.op.Replay(b.ctx, ops.ReplayOptions{Range: ops.Range{FromSeq: 1}})
	require.NoError(t, err)

	rep, err := b.op.DryRun(b.ctx, ops.DryRunOptions{Range: ops.Range{FromSeq: 1}})
	require.NoError(t, err)
	require.False(t, rep.Differs())
	require.Equal(t, 1, rep.Compared)
	require.Equal(t, 1, rep.NotProcessed)
}
