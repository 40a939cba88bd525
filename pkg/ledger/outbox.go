package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// OutboxChannel is the LISTEN/NOTIFY channel that wakes the outbox relay.
const OutboxChannel = "promo_outbox"

// Enqueue writes a result event to the outbox inside tx. The event is
// marshalled here so that the bytes published are the bytes committed. An
// event_id already in the outbox is left alone (a deterministic job event
// computed twice is one event). Enqueue also asks Postgres to notify the
// relay at commit; notifications of one transaction are folded into one.
func Enqueue(ctx context.Context, tx pgx.Tx, subject, eventID string, event any) error {
	payload, err := json.Marshal(event)
	if err != nil {
		return fmt.Errorf("ledger: marshal %s: %w", eventID, err)
	}
	_, err = tx.Exec(ctx, enqueueSQL, eventID, subject, payload)
	if err != nil {
		return fmt.Errorf("ledger: enqueue %s: %w", eventID, err)
	}
	return nil
}

// enqueueSQL writes one outbox row and notifies the relay.
const enqueueSQL = `
	WITH ins AS (
		INSERT INTO outbox (event_id, subject, payload) VALUES ($1, $2, $3)
		ON CONFLICT (event_id) DO NOTHING
	)
	SELECT pg_notify('` + OutboxChannel + `', '')`

// queueEnqueue is Enqueue for a statement batch: the ledger writes an
// event's effects and its result in one round trip.
func queueEnqueue(b *pgx.Batch, subject, eventID string, event any) error {
	payload, err := json.Marshal(event)
	if err != nil {
		return fmt.Errorf("ledger: marshal %s: %w", eventID, err)
	}
	queueEnqueueJSON(b, subject, eventID, payload, "")
	return nil
}

// queueEnqueueJSON is queueEnqueue for an event already marshalled, with
// the traceparent of the span that produced it ("" untraced).
func queueEnqueueJSON(b *pgx.Batch, subject, eventID string, payload []byte, traceParent string) {
	if traceParent == "" {
		b.Queue(enqueueSQL, eventID, subject, payload)
		return
	}
	b.Queue(enqueueTracedSQL, eventID, subject, payload, traceParent)
}

// WithTraceParent returns ctx carrying the W3C traceparent of the span of
// the event processed under it: Store.Process and ProcessDeferred write it
// into the result's outbox row (Batch takes BatchEvent.TraceParent).
func WithTraceParent(ctx context.Context, traceParent string) context.Context {
	if traceParent == "" {
		return ctx
	}
	return context.WithValue(ctx, traceParentKey{}, traceParent)
}

type traceParentKey struct{}

func traceParentOf(ctx context.Context) string {
	tp, _ := ctx.Value(traceParentKey{}).(string)
	return tp
}

// enqueueTracedSQL is enqueueSQL with the row's trace_parent.
const enqueueTracedSQL = `
	WITH ins AS (
		INSERT INTO outbox (event_id, subject, payload, trace_parent) VALUES ($1, $2, $3, $4)
		ON CONFLICT (event_id) DO NOTHING
	)
	SELECT pg_notify('` + OutboxChannel + `', '')`

// OutboxRow is one result event waiting to be published.
type OutboxRow struct {
	ID        int64
	EventID   string
	Subject   string
	Payload   []byte
	CreatedAt time.Time
	// TraceParent is the traceparent of the event span that wrote the row
	// ("" untraced): the relay's publish continues that trace.
	TraceParent string
}

// NextOutbox deletes the rows of published (acknowledged by JetStream) and
// returns up to limit of the rows left, in id order, in one round trip and
// one implicit transaction, so that the relay pays one statement pipeline
// per chunk instead of two.
//
// The deletion does not wait for the WAL flush (measured at 1,000 orders/s
// on 2 CPUs: p50 0.7–1.0 ms and p99 2.5–4 ms lower end to end). A
// PostgreSQL crash can undo the deletions of its last ~0.6 s (3 ×
// wal_writer_delay); those rows are published again with the same
// Nats-Msg-Id, which PROMO_RESULTS drops within its duplicate window. This
// is the exposure a crash between publish and delete has anyway, a little
// wider: only a PostgreSQL outage longer than the window would let a
// subscriber see a result twice.
//
// Rows of one customer are in commit order: their transactions are
// serialised by the customer's row lock, so a later one allocates a later
// id.
func NextOutbox(ctx context.Context, db DB, published []int64, limit int) ([]OutboxRow, error) {
	var out []OutboxRow
	b := &pgx.Batch{}
	b.Queue(outboxByIndex)
	if len(published) > 0 {
		b.Queue(`DELETE FROM outbox WHERE id = ANY($1)`, published)
	}
	b.Queue(`SELECT id, event_id, subject, payload, created_at, COALESCE(trace_parent, '') FROM outbox WHERE id > 0 ORDER BY id LIMIT $1`, limit).
		Query(func(rows pgx.Rows) error {
			var err error
			out, err = pgx.CollectRows(rows, pgx.RowToStructByPos[OutboxRow])
			return err
		})
	if err := db.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("ledger: read outbox: %w", err)
	}
	return out, nil
}

// The outbox holds a few rows and, between vacuums, every row ever deleted
// from it: under load a sequential scan of it visits (and prunes) thousands
// of dead tuples, and the relay reads it after every drain (a fifth of
// PostgreSQL's CPU at 1,000 orders/s). Its reads and deletes go through the
// primary key with plain index scans, which mark the dead entries they meet
// so that the next scan skips them (bitmap scans do not). The statements
// are sent in one pipeline, whose implicit transaction the local settings
// end with. With no index path left, a plan would keep its sequential scan
// at a prohibitive cost, which would also make PostgreSQL JIT-compile it:
// jit is off, and id > 0 (true of every bigserial) gives count(*) an index
// path. Deletions do not wait for the WAL flush (see NextOutbox). The plans
// are generic: with an array or a limit as parameter PostgreSQL otherwise
// plans every execution again (a third of the relay's cost at 1,000
// orders/s), for the same index scan.
const outboxByIndex = `SELECT set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true), set_config('jit', 'off', true), set_config('synchronous_commit', 'off', true), set_config('plan_cache_mode', 'force_generic_plan', true)`

// DeleteOutbox removes rows JetStream has acknowledged (without waiting
// for the WAL flush, as NextOutbox).
func DeleteOutbox(ctx context.Context, db DB, ids []int64) error {
	b := &pgx.Batch{}
	b.Queue(outboxByIndex)
	b.Queue(`DELETE FROM outbox WHERE id = ANY($1)`, ids)
	if err := db.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("ledger: delete outbox rows: %w", err)
	}
	return nil
}

// OutboxBacklog counts unpublished rows and the age of the oldest (zero when
// the outbox is empty), for metrics and `promoengine status`.
func OutboxBacklog(ctx context.Context, db DB) (count int64, oldest time.Duration, err error) {
	var secs float64
	b := &pgx.Batch{}
	b.Queue(outboxByIndex)
	b.Queue(`SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 FROM outbox WHERE id > 0`).
		QueryRow(func(row pgx.Row) error { return row.Scan(&count, &secs) })
	if err := db.SendBatch(ctx, b).Close(); err != nil {
		return 0, 0, fmt.Errorf("ledger: outbox backlog: %w", err)
	}
	return count, time.Duration(secs * float64(time.Second)), nil
}
