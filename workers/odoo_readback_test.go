package workers_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/consume"
	"github.com/promoengine/promoengine/internal/metrics"
	"github.com/promoengine/promoengine/internal/odoo"
	"github.com/promoengine/promoengine/internal/odoo/odootest"
	"github.com/promoengine/promoengine/internal/ops"
	"github.com/promoengine/promoengine/internal/streams"
	"github.com/promoengine/promoengine/internal/testlog"
	"github.com/promoengine/promoengine/internal/testnats"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/workers"
)

type readbackBundle struct {
	t        *testing.T
	ctx      context.Context
	js       jetstream.JetStream
	subjects events.Subjects
	odoo     *odootest.Server
	metrics  *metrics.Metrics
	logs     *testlog.Buffer
	op       *ops.Operator
}

func setupReadback(t *testing.T, cfg workers.OdooReadbackConfig) *readbackBundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	ns := testnats.New(t)
	b := &readbackBundle{t: t, ctx: ctx, js: ns.JetStream(t), subjects: events.NewSubjects(""), odoo: odootest.New(t),
		metrics: metrics.New(prometheus.NewRegistry()), logs: &testlog.Buffer{}}
	odootest.SeedPOS(b.odoo)
	require.NoError(t, streams.Ensure(ctx, b.js, b.subjects, streams.DefaultOptions()))
	log := zerolog.New(b.logs).Level(zerolog.DebugLevel)
	b.op = ops.New(b.js, nil, b.subjects, log)
	w := workers.NewOdooReadback(cfg, b.odoo.Client(t, log, 2*time.Second), b.js, b.subjects, b.op.PublishEvent,
		consume.NewDeadLetterer(b.js, b.subjects), b.metrics, log)
	require.NoError(t, w.Start(ctx))
	var once sync.Once
	t.Cleanup(func() { once.Do(w.Stop) })
	return b
}

func (b *readbackBundle) record(ref odoo.OrderRef) {
	b.t.Helper()
	ref.DB = b.odoo.DB
	_, err := odoo.RecordOrder(b.ctx, b.js, b.subjects, ref)
	require.NoError(b.t, err)
}

// published waits for the order events in POS_ORDERS.
func (b *readbackBundle) published(n int) []jetstream.RawStreamMsg {
	b.t.Helper()
	var msgs []jetstream.RawStreamMsg
	require.Eventually(b.t, func() bool {
		msgs = testnats.StreamMessages(b.t, b.js, b.subjects.StreamOrders())
		return len(msgs) >= n
	}, 30*time.Second, 20*time.Millisecond)
	return msgs
}

func (b *readbackBundle) deadLetters(code string) []ops.DeadLetter {
	b.t.Helper()
	var letters []ops.DeadLetter
	require.Eventually(b.t, func() bool {
		var err error
		letters, err = b.op.ListDeadLetters(b.ctx, ops.DeadLetterFilter{Code: code})
		return err == nil && len(letters) > 0
	}, 30*time.Second, 20*time.Millisecond)
	return letters
}

func (b *readbackBundle) readbacks(outcome string) float64 {
	var m dto.Metric
	require.NoError(b.t, b.metrics.OdooReadbacks.WithLabelValues(outcome).Write(&m))
	return m.GetCounter().GetValue()
}

func fastReadback() workers.OdooReadbackConfig {
	return workers.OdooReadbackConfig{Concurrency: 2, RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		WarnAfter: 100 * time.Millisecond, MaxWait: time.Hour, MaxOutage: time.Hour, SoftStop: 5 * time.Second}
}

func TestOdooReadbackWaitsThroughAnOutageThenPublishes(t *testing.T) {
	t.Parallel()
	b := setupReadback(t, fastReadback())
	b.odoo.Inject("pos.order.search_read",
		odootest.Fault{Status: http.StatusBadGateway}, odootest.Fault{Status: http.StatusServiceUnavailable},
		odootest.Fault{Error: odootest.AccessDenied()}, odootest.Fault{Error: odootest.AccessDenied()})
	b.record(odoo.OrderRef{OrderID: odootest.PaidOrderID, Source: odoo.SourceWebhook, State: "paid"})

	msgs := b.published(1)
	require.Len(t, msgs, 1)
	require.Equal(t, "odoo1:pos.order:1042:paid", msgs[0].Header.Get(jetstream.MsgIDHeader))
	require.Eventually(t, func() bool { return b.readbacks("published") == 1 }, 10*time.Second, 10*time.Millisecond)
	require.GreaterOrEqual(t, b.readbacks("waiting"), 3.0)
	var m dto.Metric
	require.NoError(t, b.metrics.OdooFailures.WithLabelValues("readback", "http").Write(&m))
	require.Equal(t, 2.0, m.GetCounter().GetValue())

	// Recorded again later (the reconciler, a re-sent webhook past the
	// window): read back again, a duplicate in POS_ORDERS.
	_, err := odoo.RecordOrder(b.ctx, b.js, b.subjects, odoo.OrderRef{DB: "odoo1", OrderID: odootest.RefundOrderID})
	require.NoError(t, err)
	b.published(2)
}

func TestOdooReadbackDeadLettersWhatOdooNeverShows(t *testing.T) {
	t.Parallel()
	cfg := fastReadback()
	cfg.MaxWait = 500 * time.Millisecond
	b := setupReadback(t, cfg)
	// The webhook of an order whose transaction was rolled back.
	b.record(odoo.OrderRef{OrderID: 9001, Source: odoo.SourceWebhook, State: "paid"})
	letters := b.deadLetters(events.DLQOdooOrderUnavailable)
	require.Len(t, letters, 1)
	require.Equal(t, b.subjects.OdooOrders(), letters[0].OriginalSubject)
	require.Contains(t, letters[0].Message, "pos.order 9001 was recorded")
	require.Regexp(t, `"level":"warn"[^\n]*"order_id":9001[^\n]*"reason":"not_found"`, b.logs.String())

	// It appears after all (a user of another company was given access):
	// redriving the reference reads it back afresh, with a fresh bound.
	b.odoo.AddOrder(odootest.Order{ID: 9001, Lines: []odootest.Line{{ID: 90011, Qty: 1, Price: 1000}}})
	_, err := b.op.RedriveDeadLetter(b.ctx, letters[0].ID)
	require.NoError(t, err)
	msgs := b.published(1)
	require.Equal(t, "odoo1:pos.order:9001:paid", msgs[0].Header.Get(jetstream.MsgIDHeader))
}

func TestOdooReadbackChecksTheScopeAgainstWhatOdooHolds(t *testing.T) {
	t.Parallel()
	b := setupReadback(t, fastReadback())
	// The webhook said company 2 (inside the credential's scope); Odoo says
	// the order is company 1's.
	b.record(odoo.OrderRef{OrderID: odootest.PaidOrderID, Source: odoo.SourceWebhook, State: "paid", CompanyID: "2",
		Scope: &odoo.StoreScope{CompanyIDs: []string{"2"}}})
	letters := b.deadLetters(events.DLQForbiddenStore)
	require.Contains(t, letters[0].Message, "belongs to company 1, POS config 3")
	// An order without events and one that makes no valid event.
	b.odoo.Add("pos.order", 7001, map[string]any{"name": "Shop/7001", "state": "paid", "company_id": false, "currency_id": false, "lines": []any{}})
	b.record(odoo.OrderRef{OrderID: 7001})
	b.deadLetters(events.DLQInvalidEvent)
	b.record(odoo.OrderRef{OrderID: odootest.DraftOrderID}) // not final, no claim: ignored
	require.Eventually(t, func() bool { return b.readbacks("ignored") == 1 }, 10*time.Second, 10*time.Millisecond)
	require.Empty(t, testnats.StreamMessages(t, b.js, b.subjects.StreamOrders()), "nothing published")
}

func TestOdooReconcilerMovesItsCursorAndRunsInOneProcessAtATime(t *testing.T) {
	t.Parallel()
	b := setupReadback(t, fastReadback())
	log := zerolog.New(b.logs)
	client := b.odoo.Client(t, log, 2*time.Second)
	seen := map[string]bool{"odoo1:pos.order:1101:paid": true}
	seenFn := func(_ context.Context, ids []string) (map[string]bool, error) {
		out := map[string]bool{}
		for _, id := range ids {
			out[id] = seen[id]
		}
		return out, nil
	}
	cfg := workers.OdooReconcilerConfig{Interval: time.Hour, Overlap: time.Minute}
	first := workers.NewOdooReconciler(cfg, client, b.js, b.subjects, seenFn, b.metrics, log)
	second := workers.NewOdooReconciler(cfg, client, b.js, b.subjects, seenFn, b.metrics, log)

	now := time.Now().UTC()
	b.odoo.AddOrder(odootest.Order{ID: 1101, WriteDate: odoo.FormatDatetime(now.Add(-10 * time.Second)), Lines: []odootest.Line{{ID: 11011, Qty: 1, Price: 1}}})
	b.odoo.AddOrder(odootest.Order{ID: 1102, WriteDate: odoo.FormatDatetime(now.Add(-5 * time.Second)), Lines: []odootest.Line{{ID: 11021, Qty: 1, Price: 1}}})
	b.odoo.AddOrder(odootest.Order{ID: 1103, WriteDate: odoo.FormatDatetime(now.Add(-2 * time.Hour)), Lines: []odootest.Line{{ID: 11031, Qty: 1, Price: 1}}})

	// The first to pass takes the lease; the other skips. The pass finds
	// 1102 only: 1101 was processed, 1103 is before the cursor's overlap
	// (history is odoo sync's).
	var rep *odoo.ReconcileReport
	for _, r := range []*workers.OdooReconciler{first, second} {
		got, err := r.RunOnce(b.ctx)
		require.NoError(t, err)
		if got != nil {
			require.Nil(t, rep, "only one process reconciles")
			rep = got
		}
	}
	require.NotNil(t, rep)
	require.Equal(t, 2, rep.Examined)
	require.Equal(t, 1, rep.Seen)
	require.Equal(t, []int64{1102}, rep.Missing)
	msgs := b.published(1)
	require.Equal(t, "odoo1:pos.order:1102:paid", msgs[0].Header.Get(jetstream.MsgIDHeader))

	kv, err := b.js.KeyValue(b.ctx, b.subjects.OdooStateBucket())
	require.NoError(t, err)
	e, err := kv.Get(b.ctx, "reconciler.cursor")
	require.NoError(t, err)
	cursor, err := time.Parse(time.RFC3339Nano, string(e.Value()))
	require.NoError(t, err)
	require.WithinDuration(t, now, cursor, time.Minute, "the cursor is the latest write_date seen or the start")
}
