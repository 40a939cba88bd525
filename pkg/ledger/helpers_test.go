package ledger_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/testdb"
	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/pkg/rules"
)

// bundle is what most tests need: a fresh database, a store and a catalog.
type bundle struct {
	ctx   context.Context
	pool  *pgxpool.Pool
	store *ledger.Store
	cat   *rules.Catalog
}

// testCouponSecret is the PROMO_COUPON_SECRET of the tests' stores.
const testCouponSecret = "test-coupon-secret-0123456789"

// setup gives the test its own migrated database with catalogYAML applied.
func setup(t testing.TB, catalogYAML string) *bundle {
	t.Helper()
	pool := testdb.New(t)
	b := &bundle{ctx: t.Context(), pool: pool, store: ledger.NewStore(events.NewSubjects(""), ledger.WithCouponSecret([]byte(testCouponSecret)))}
	if catalogYAML != "" {
		b.cat = b.apply(t, catalogYAML)
	}
	return b
}

// apply stores a catalog document and returns it as loaded back.
func (b *bundle) apply(t testing.TB, doc string) *rules.Catalog {
	t.Helper()
	c, err := rules.Parse([]byte(doc))
	require.NoError(t, err)
	_, err = ledger.ApplyCatalog(b.ctx, b.pool, c)
	require.NoError(t, err)
	latest, err := ledger.LatestCatalog(b.ctx, b.pool)
	require.NoError(t, err)
	return latest
}

// process applies one event in its own committed transaction.
func (b *bundle) process(t *testing.T, ev *events.Event) *events.OrderResult {
	t.Helper()
	res, err := b.tryProcess(ev)
	require.NoError(t, err, "process %s", ev.EventID)
	return res
}

func (b *bundle) tryProcess(ev *events.Event) (*events.OrderResult, error) {
	var res *events.OrderResult
	err := pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
		var err error
		res, err = b.store.Process(b.ctx, tx, b.cat, ev, 0)
		return err
	})
	return res, err
}

func (b *bundle) jobs(t *testing.T, asOf string) ledger.JobReport {
	t.Helper()
	rep, err := b.store.RunJobs(b.ctx, b.pool, b.cat, mustTime(t, asOf))
	require.NoError(t, err)
	return rep
}

func (b *bundle) customer(t *testing.T, id, at string) *ledger.CustomerView {
	t.Helper()
	v, err := b.store.Customer(b.ctx, b.pool, id, mustTime(t, at), b.cat)
	require.NoError(t, err)
	return v
}

func (b *bundle) reconcile(t *testing.T, ids ...string) {
	t.Helper()
	for _, id := range ids {
		require.NoError(t, ledger.Reconcile(b.ctx, b.pool, id))
	}
}

// scalar runs a one-value query.
func scalar[T any](t *testing.T, b *bundle, sql string, args ...any) T {
	t.Helper()
	var v T
	require.NoError(t, b.pool.QueryRow(b.ctx, sql, args...).Scan(&v))
	return v
}

// count counts the rows of a table (a fingerprint of "nothing changed").
func (b *bundle) counts(t *testing.T) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, table := range []string{"inbox", "outbox", "accounts", "point_lots", "ledger_entries", "point_consumptions",
		"spend_entries", "member_levels", "level_history", "program_usage", "program_customer_usage",
		"order_program_uses", "processed_orders", "order_reversals"} {
		out[table] = scalar[int64](t, b, "SELECT count(*) FROM "+table)
	}
	return out
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err)
	return v
}

func d(s string) dec.Decimal { return dec.MustParse(s) }

// requireDec compares decimals by value ("9" equals "9.00").
func requireDec(t *testing.T, want string, got dec.Decimal, what ...any) {
	t.Helper()
	require.Truef(t, d(want).Equal(got), "%s: want %s, got %s", fmt.Sprint(what...), want, got)
}

// line is a paid order line: id, qty, unit price, optional category.
type line struct {
	id, qty, price string
	category       string
}

// paidEvent builds and decodes a pos.order.paid event.
func paidEvent(t testing.TB, eventID, at, orderID, customer, redeem string, lines ...line) *events.Event {
	t.Helper()
	ls := make([]map[string]any, 0, len(lines))
	for i, l := range lines {
		id := l.id
		if id == "" {
			id = fmt.Sprint(i + 1)
		}
		m := map[string]any{"id": id, "product_id": "p" + id, "qty": l.qty, "unit_price": l.price}
		if l.category != "" {
			m["category_ids"] = []string{l.category}
		}
		ls = append(ls, m)
	}
	order := map[string]any{"id": orderID, "currency": "IDR", "lines": ls}
	if customer != "" {
		order["customer_id"] = customer
	}
	if redeem != "" {
		order["redeem_points"] = redeem
	}
	return decode(t, map[string]any{"event_id": eventID, "type": events.TypeOrderPaid, "occurred_at": at,
		"company_id": "1", "pos_config_id": "1", "order": order})
}

// returnEvent builds a pos.order.returned event; lines alternate id, qty.
func returnEvent(t *testing.T, eventID, at, orderID, original string, idQty ...string) *events.Event {
	t.Helper()
	var ls []map[string]any
	for i := 0; i+1 < len(idQty); i += 2 {
		ls = append(ls, map[string]any{"line_id": idQty[i], "qty": idQty[i+1]})
	}
	return decode(t, map[string]any{"event_id": eventID, "type": events.TypeOrderReturned, "occurred_at": at,
		"company_id": "1", "pos_config_id": "1", "order": map[string]any{"id": orderID, "original_order_id": original, "lines": ls}})
}

func cancelEvent(t *testing.T, eventID, at, orderID string) *events.Event {
	t.Helper()
	return decode(t, map[string]any{"event_id": eventID, "type": events.TypeOrderCancelled, "occurred_at": at,
		"company_id": "1", "pos_config_id": "1", "order": map[string]any{"id": orderID}})
}

func decode(t testing.TB, m map[string]any) *events.Event {
	t.Helper()
	raw, err := json.Marshal(m)
	require.NoError(t, err)
	ev, err := events.Decode(raw)
	require.NoError(t, err)
	return ev
}

// lotIDs lists the lot ids of lot amounts.
func lotIDs(las []events.LotAmount) string {
	var parts []string
	for _, la := range las {
		parts = append(parts, la.LotID+"="+la.Amount.String())
	}
	return strings.Join(parts, ",")
}
