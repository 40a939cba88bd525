package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/internal/engine"
	"github.com/promoengine/promoengine/internal/odoo"
	"github.com/promoengine/promoengine/internal/odoo/odootest"
	"github.com/promoengine/promoengine/internal/ops"
	"github.com/promoengine/promoengine/internal/testdb"
	"github.com/promoengine/promoengine/internal/testlog"
	"github.com/promoengine/promoengine/internal/testnats"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/pkg/rules"
)

// The Odoo integration end to end against the fake Odoo: Odoo's webhook →
// PROMO_ODOO_ORDERS → read-back → POS_ORDERS → order workers → results →
// pusher → promo_engine_apply, with the whole engine running in process.
// make test-odoo runs the same flows against a real Odoo 17/18.

const odooWebhookKey = "webhook-key-e2e-19ad"

const odooCatalog = `
currency: IDR
money_decimals: 0
timezone: Asia/Jakarta
points: {decimals: 0, earn: [{per_amount: "1000", points: "1"}]}
programs:
  - {id: drinks-10, layer: item, when: {products: {categories: ["5"]}}, reward: {percent: "10"}}
`

type odooBundle struct {
	t     *testing.T
	ctx   context.Context
	nats  *testnats.Server
	dbURL string
	pool  *pgxpool.Pool
	odoo  *odootest.Server
	logs  *testlog.Buffer

	mu sync.Mutex
	// stored is what promo_engine_apply keeps per order, deduplicated by
	// result event id as the Odoo module does; deliveries counts calls.
	stored     map[int64][]string
	deliveries int

	engine *engine.Engine
}

func setupOdooE2E(t *testing.T) *odooBundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	b := &odooBundle{t: t, ctx: ctx, nats: testnats.New(t), dbURL: testdb.NewDatabase(t), odoo: odootest.New(t),
		logs: &testlog.Buffer{}, stored: map[int64][]string{}}
	pool, err := pgxpool.New(ctx, b.dbURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	b.pool = pool
	odootest.SeedPOS(b.odoo)
	b.odoo.Handle("pos.order", "promo_engine_apply", b.apply)
	cat, err := rules.Parse([]byte(odooCatalog))
	require.NoError(t, err)
	_, err = ledger.ApplyCatalog(ctx, pool, cat)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NotContains(t, b.logs.String(), odooWebhookKey, "a key must never be logged")
		require.NotContains(t, b.logs.String(), b.odoo.APIKey, "a key must never be logged")
	})
	return b
}

func (b *odooBundle) apply(c odootest.Call) (any, *odootest.RPCError) {
	var ids []int64
	var head struct {
		EventID string `json:"event_id"`
	}
	if len(c.Args) != 2 || json.Unmarshal(c.Args[0], &ids) != nil || len(ids) != 1 || json.Unmarshal(c.Args[1], &head) != nil {
		return nil, &odootest.RPCError{Name: "builtins.TypeError", Message: "promo_engine_apply([id], result)"}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.deliveries++
	if !slices.Contains(b.stored[ids[0]], head.EventID) {
		b.stored[ids[0]] = append(b.stored[ids[0]], head.EventID)
	}
	return true, nil
}

// start runs the whole engine against the fake Odoo; opts change its
// configuration.
func (b *odooBundle) start(opts ...func(*config.Config)) {
	b.t.Helper()
	cfg := &config.Config{
		NATSURL: b.nats.URL(), DatabaseURL: b.dbURL, HTTPAddr: "127.0.0.1:0",
		BatchSize: 16, Lanes: 2, MaxDeliver: 10, DuplicateWindow: 10 * time.Minute,
		OdooURL: b.odoo.URL, OdooDB: b.odoo.DB, OdooLogin: b.odoo.Login, OdooAPIKey: config.Secret(b.odoo.APIKey),
		OdooModel: "pos.order", OdooMethod: "promo_engine_apply", OdooTimeout: 5 * time.Second, OdooConcurrency: 2,
		OdooReconcileInterval: 300 * time.Millisecond, OdooReconcileOverlap: time.Minute, OdooReadbackMaxWait: time.Hour,
		APIKeys: config.APIKeys{{Key: odooWebhookKey, Role: config.RoleWebhook}},
	}
	for _, o := range opts {
		o(cfg)
	}
	e, err := engine.Start(b.ctx, cfg, config.AllWorkers, zerolog.New(b.logs).Level(zerolog.DebugLevel))
	require.NoError(b.t, err)
	b.engine = e
	b.t.Cleanup(e.Stop)
}

// webhook posts what Odoo's automation rule posts; it returns the status,
// or 0 when the engine could not be reached.
func (b *odooBundle) webhook(id int64) int {
	b.t.Helper()
	body := fmt.Sprintf(`{"_action": "promoengine(#3)", "_id": %d, "_model": "pos.order", "state": "paid", "company_id": 1, "config_id": 3}`, id)
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+b.engine.HTTPAddr()+"/v1/odoo/webhook?token="+odooWebhookKey,
		bytes.NewReader([]byte(body)))
	require.NoError(b.t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitStored waits until Odoo stored exactly want (order id → result
// event ids, in any order) and checks that nothing else was stored.
func (b *odooBundle) waitStored(want map[int64][]string, timeout time.Duration) {
	b.t.Helper()
	norm := func(m map[int64][]string) map[int64][]string {
		out := map[int64][]string{}
		for k, v := range m {
			out[k] = slices.Sorted(slices.Values(v))
		}
		return out
	}
	want = norm(want)
	var got map[int64][]string
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		b.mu.Lock()
		got = norm(b.stored)
		b.mu.Unlock()
		done := true
		for id, ids := range want {
			if len(got[id]) < len(ids) {
				done = false
			}
		}
		if done {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	require.Equal(b.t, want, got)
}

func result(eventID string) string { return "result:" + eventID }

func TestOdooFlowsAgainstFakeOdoo(t *testing.T) {
	t.Parallel()
	b := setupOdooE2E(t)
	b.start()

	// A customer's sale.
	require.Equal(t, http.StatusAccepted, b.webhook(odootest.PaidOrderID))
	b.waitStored(map[int64][]string{1042: {result("odoo1:pos.order:1042:paid")}}, time.Minute)

	// Its refund, an anonymous sale, and an exchange made the 17.0 way (one
	// order giving back line 2 of 1042 and selling something else).
	b.odoo.AddOrder(odootest.Order{ID: 5001, Lines: []odootest.Line{{ID: 50011, Qty: 3, Price: 2000}}})
	b.odoo.AddOrder(odootest.Order{ID: 5002, Partner: 77, Lines: []odootest.Line{
		{ID: 50021, Product: 502, Qty: -1, Price: 10000, Discount: 10, Refunds: 2},
		{ID: 50022, Qty: 1, Price: 25000}}})
	for _, id := range []int64{odootest.RefundOrderID, 5001, 5002} {
		require.Equal(t, http.StatusAccepted, b.webhook(id))
	}
	// A sale in another currency than the catalog's: dead-lettered by the
	// order worker.
	b.odoo.AddOrder(odootest.Order{ID: 5003, Partner: 78, Currency: "USD", Lines: []odootest.Line{{ID: 50031, Qty: 1, Price: 4}}})
	require.Equal(t, http.StatusAccepted, b.webhook(5003))

	want := map[int64][]string{
		1042: {result("odoo1:pos.order:1042:paid")},
		1043: {result("odoo1:pos.order:1043:returned")},
		5001: {result("odoo1:pos.order:5001:paid")},
		5002: {result("odoo1:pos.order:5002:returned"), result("odoo1:pos.order:5002:paid")},
	}
	b.waitStored(want, time.Minute)

	// Fixed on Odoo's side (the POS now sells in IDR), then recovered from
	// Odoo with a rebuild: the re-post of the webhook would be a duplicate.
	op := ops.New(b.engine.JS, nil, b.engine.Subjects, zerolog.Nop())
	var letters []ops.DeadLetter
	require.Eventually(t, func() bool {
		var err error
		letters, err = op.ListDeadLetters(b.ctx, ops.DeadLetterFilter{Code: events.DLQInvalidEvent})
		return err == nil && len(letters) == 1
	}, 30*time.Second, 50*time.Millisecond)
	require.Contains(t, letters[0].Message, `"USD"`)
	require.Equal(t, http.StatusAccepted, b.webhook(5003), "a duplicate: the order id is recorded once")
	b.odoo.AddOrder(odootest.Order{ID: 5003, Partner: 78, Lines: []odootest.Line{{ID: 50031, Qty: 1, Price: 60000}}})
	client := b.odoo.Client(t, zerolog.Nop(), 5*time.Second)
	_, err := op.RebuildDeadLetter(b.ctx, client, letters[0].ID)
	require.NoError(t, err)
	want[5003] = []string{result("odoo1:pos.order:5003:paid")}
	b.waitStored(want, time.Minute)
}

func TestOdooMultiOrderSyncCommitsAfterTenSeconds(t *testing.T) {
	t.Parallel()
	b := setupOdooE2E(t)
	b.start()

	// The POS sends 8 pending orders in one create_from_ui call: one
	// transaction, with each order's webhook posted from inside it, and the
	// commit only when the whole call ends.
	tx := b.odoo.Begin()
	want := map[int64][]string{}
	for i := range int64(8) {
		id := 8001 + i
		tx.AddOrder(odootest.Order{ID: id, Partner: 100 + i%3, Lines: []odootest.Line{{ID: id * 10, Qty: 1, Price: 1000 * float64(i+1)}}})
		want[id] = []string{result(odoo.PaidEventID("odoo1", id))}
	}
	for id := range want {
		require.Equal(t, http.StatusAccepted, b.webhook(id), "recorded at once, before Odoo committed")
	}
	time.AfterFunc(10*time.Second, tx.Commit)
	b.waitStored(want, 2*time.Minute)
	require.Contains(t, b.logs.String(), `"reason":"not_found"`, "the read-backs before the commit found nothing")
}

func TestOdooOrdersPaidWhileTheEngineIsDownAreProcessedAfterItReturns(t *testing.T) {
	t.Parallel()
	b := setupOdooE2E(t)
	b.start()
	b.odoo.AddOrder(odootest.Order{ID: 6001, Partner: 77, Lines: []odootest.Line{{ID: 60011, Qty: 1, Price: 5000}}})
	require.Equal(t, http.StatusAccepted, b.webhook(6001))
	b.waitStored(map[int64][]string{6001: {result("odoo1:pos.order:6001:paid")}}, time.Minute)

	b.engine.Stop()
	// Paid while the engine is down: Odoo's webhooks fail, and Odoo never
	// retries one.
	want := map[int64][]string{6001: {result("odoo1:pos.order:6001:paid")}}
	for i := range int64(5) {
		id := 6002 + i
		b.odoo.AddOrder(odootest.Order{ID: id, Partner: 77 + i%2, Lines: []odootest.Line{{ID: id * 10, Qty: 2, Price: 3000}}})
		require.Zero(t, b.webhook(id), "the engine is down")
		want[id] = []string{result(odoo.PaidEventID("odoo1", id))}
	}

	// Back: the reconciler finds them from where its cursor stopped.
	b.start()
	b.waitStored(want, 2*time.Minute)
	require.Contains(t, b.logs.String(), "Odoo has final orders the engine never received; recorded them for read-back")
}
