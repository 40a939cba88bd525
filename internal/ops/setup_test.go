package ops_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/promoengine/promoengine/examples"
	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/internal/engine"
	"github.com/promoengine/promoengine/internal/keying"
	"github.com/promoengine/promoengine/internal/ops"
	"github.com/promoengine/promoengine/internal/streams"
	"github.com/promoengine/promoengine/internal/testdb"
	"github.com/promoengine/promoengine/internal/testnats"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/pkg/rules"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// pgx's pool health checker and nats.go's flusher end shortly after
		// Close; the race detector's slowness can leave them mid-exit.
		goleak.IgnoreTopFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).backgroundHealthCheck"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

// bundle is what an operator test works with: its own NATS server with the
// engine's streams, its own migrated database with a catalog, and an
// Operator on both.
type bundle struct {
	t        *testing.T
	ctx      context.Context
	nats     *testnats.Server
	dbURL    string
	pool     *pgxpool.Pool
	js       jetstream.JetStream
	subjects events.Subjects
	op       *ops.Operator
	log      zerolog.Logger
	// transactions is the engine's PROMO_TRANSACTIONS (0: the default).
	transactions int
}

func setup(t *testing.T) *bundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	b := &bundle{t: t, ctx: ctx, nats: testnats.New(t), dbURL: testdb.NewDatabase(t), subjects: events.NewSubjects(""),
		log: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)}
	pool, err := pgxpool.New(ctx, b.dbURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	b.pool = pool
	b.js = b.nats.JetStream(t)
	require.NoError(t, streams.Ensure(ctx, b.js, b.subjects, streams.DefaultOptions()))
	b.op = ops.New(b.js, b.pool, b.subjects, b.log).WithCouponSecret([]byte(couponSecret))
	return b
}

// couponSecret is the engines' and the operator's PROMO_COUPON_SECRET: the
// example catalog issues coupons, and its orders present the codes of
// `promoengine dev`'s development secret.
const couponSecret = "dev-coupon-secret-not-for-production"

// applyCatalog stores a catalog version and returns it.
func (b *bundle) applyCatalog(doc []byte) int64 {
	cat, err := rules.Parse(doc)
	require.NoError(b.t, err)
	v, err := ledger.ApplyCatalog(b.ctx, b.pool, cat)
	require.NoError(b.t, err)
	return v
}

// startEngine starts the real engine in-process with the given workers.
func (b *bundle) startEngine(maxDeliver int, workers ...string) *engine.Engine {
	cfg := &config.Config{
		NATSURL: b.nats.URL(), DatabaseURL: b.dbURL, HTTPAddr: "off",
		BatchSize: 64, Lanes: 4, MaxDeliver: maxDeliver, DuplicateWindow: 10 * time.Minute,
		OdooConcurrency: 1, OdooTimeout: time.Second, CouponSecret: couponSecret, Transactions: b.transactions,
	}
	e, err := engine.Start(b.ctx, cfg, workers, b.log)
	require.NoError(b.t, err)
	b.t.Cleanup(e.Stop)
	return e
}

// publish publishes one event body with its event_id as message id.
func (b *bundle) publish(body []byte) uint64 {
	ev, err := events.Decode(body)
	require.NoError(b.t, err)
	// Keyed, as the engine's own publishers do.
	subject := b.subjects.KeyedOrderSubject(ev.Type, keying.NewResolver(b.pool, b.log).Key(b.ctx, ev))
	msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, ev.EventID)
	ack, err := b.js.PublishMsg(b.ctx, msg)
	require.NoError(b.t, err)
	return ack.Sequence
}

// messages reads every message of a stream.
func (b *bundle) messages(stream string) []jetstream.RawStreamMsg {
	return testnats.StreamMessages(b.t, b.js, stream)
}

// results maps causation id to the order results published for it.
func (b *bundle) results() map[string][]map[string]any {
	return testnats.ResultsByCausation(b.t, b.js, b.subjects.StreamResults())
}

// eventually polls cond every 50 ms until it holds or 60 s pass.
func (b *bundle) eventually(what string, cond func() bool) {
	b.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			b.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// settled waits until the engine's order consumer has nothing pending or
// in flight and the outbox is empty: every published event was handled and
// its result published.
func (b *bundle) settled() {
	b.t.Helper()
	b.eventually("the pipeline to settle", func() bool {
		if ok, err := testnats.ConsumersSettled(b.ctx, b.js, b.subjects.StreamOrders()); err != nil || !ok {
			return false
		}
		n, _, err := ledger.OutboxBacklog(b.ctx, b.pool)
		return err == nil && n == 0
	})
}

func (b *bundle) count(sql string, args ...any) int {
	var n int
	require.NoError(b.t, b.pool.QueryRow(b.ctx, sql, args...).Scan(&n))
	return n
}

// ledgerTables are digested by state.
var ledgerTables = []string{"inbox", "outbox", "accounts", "point_lots", "ledger_entries", "point_consumptions",
	"spend_entries", "member_levels", "level_history", "program_usage", "program_customer_usage",
	"order_program_uses", "processed_orders", "order_reversals", "job_runs", "catalog_versions"}

// state digests every ledger table (its rows, in a stable order, without
// the columns that record when a row was written), to tell whether anything
// changed.
func (b *bundle) state() map[string]string {
	out := map[string]string{}
	for _, table := range ledgerTables {
		var digest string
		require.NoError(b.t, b.pool.QueryRow(b.ctx, fmt.Sprintf(`
			SELECT count(*) || ':' || COALESCE(md5(string_agg(r, E'\n' ORDER BY r)), '')
			FROM (SELECT (to_jsonb(t) - 'processed_at' - 'created_at' - 'ran_at')::text AS r FROM %s t) s`, table)).Scan(&digest),
			table)
		out[table] = digest
	}
	return out
}

// exampleOrders returns the lines of examples/orders.jsonl.
func exampleOrders() [][]byte {
	var out [][]byte
	for _, l := range bytes.Split(examples.Orders, []byte("\n")) {
		if l = bytes.TrimSpace(l); len(l) > 0 {
			out = append(out, l)
		}
	}
	return out
}

// recordingProgress records the stages a command went through.
type recordingProgress struct {
	stages []string
	last   int64
	done   bool
}

func (p *recordingProgress) Stage(d string, _ int64) { p.stages = append(p.stages, d) }
func (p *recordingProgress) Advance(n int64)         { p.last = n }
func (p *recordingProgress) Done()                   { p.done = true }

func jsonl(lines ...string) io.Reader { return strings.NewReader(strings.Join(lines, "\n") + "\n") }

// publishRaw publishes a body as is, without a message id.
func (b *bundle) publishRaw(subject string, body []byte) uint64 {
	ack, err := b.js.Publish(b.ctx, subject, body)
	require.NoError(b.t, err)
	return ack.Sequence
}
