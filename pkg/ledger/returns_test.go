package ledger_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
)

// A return restores redeemed points last consumed first and claws earned
// points back from the order's own lot; a later return restores into a lot
// that has expired in the meantime, whose points expire at once.
func TestReturnRestoresAndClawsBack(t *testing.T) {
	t.Parallel()
	b := setup(t, baseCatalog)
	b.process(t, paidEvent(t, "e1", "2026-03-01T10:00:00+07:00", "o1", "c", "", line{qty: "4", price: "25000"})) // 100 points, expire 31 March
	b.process(t, paidEvent(t, "e2", "2026-03-02T10:00:00+07:00", "o2", "c", "", line{qty: "2", price: "10000"})) // 20 points, expire 1 April
	// 110 points pay 110 of 200000: 100 from e1 and 10 from e2; net 199890
	// earns 199 into e3 (expires 2 April 10:00).
	res := b.process(t, paidEvent(t, "e3", "2026-03-03T10:00:00+07:00", "o3", "c", "110", line{qty: "2", price: "100000"}))
	require.Equal(t, "e1=100,e2=10", lotIDs(res.Points.RedeemedLots))
	requireDec(t, "199", res.Points.Earned)
	requireDec(t, "209", res.Points.Balance)
	require.Equal(t, "gold", res.Membership.Level)

	// Half the order back: gross 100000, net round(199890 / 2) = 99945, so
	// 55 of discount, all of it points. Restore floor(110 / 2) = 55: 10 into
	// e2 (consumed last), 45 into e1. Claw back floor(199 / 2) = 99 from e3.
	res = b.process(t, returnEvent(t, "r1", "2026-03-04T10:00:00+07:00", "o3-r1", "o3", "1", "1"))
	require.Equal(t, events.StatusApplied, res.Status, res.Error)
	require.Equal(t, "o3-r1", res.OrderID)
	require.Equal(t, "o3", res.OriginalOrderID)
	require.Equal(t, "c", res.CustomerID)
	require.Equal(t, events.TypeOrderReturned, res.SourceType)
	require.Equal(t, []events.LineResult{{ID: "1", Qty: d("1"), Gross: d("100000"), Discount: d("55"), Net: d("99945")}}, res.Lines)
	require.Equal(t, events.Totals{Gross: d("100000"), Discount: d("55"), Net: d("99945")}, res.Totals)
	require.Equal(t, []events.Discount{{Layer: events.LayerPoints, ProgramID: "points", LineID: "1", Amount: d("55")}}, res.Discounts)
	requireDec(t, "55", res.Points.Restored)
	require.Equal(t, "e2=10,e1=45", lotIDs(res.Points.RestoredLots))
	requireDec(t, "99", res.Points.ClawedBack)
	require.Equal(t, "e3=99", lotIDs(res.Points.ClawedBackLots))
	requireDec(t, "0", res.Points.Debt)
	requireDec(t, "165", res.Points.Balance) // e1 45 + e2 20 + e3 100
	// Spend is reduced by the returned net, dated at the original order:
	// 100000 + 20000 + 199890 − 99945. The level stays (only the job lowers).
	require.Equal(t, &events.Membership{Path: "default", Level: "gold", PreviousLevel: "gold", QualifyingAmount: d("219945")}, res.Membership)
	require.Equal(t, "2026-03-03T10:00:00+07:00", scalar[string](t, b,
		`SELECT to_char(spent_at AT TIME ZONE 'Asia/Jakarta', 'YYYY-MM-DD"T"HH24:MI:SS+07:00') FROM spend_entries WHERE event_id = 'r1'`))
	requireDec(t, "-99945", d(scalar[string](t, b, `SELECT amount::text FROM spend_entries WHERE event_id = 'r1'`)))
	b.reconcile(t, "c")

	// The rest, on 2 April 09:00: e1 (31 March) and e2 (1 April) have
	// expired, e3 (2 April 10:00) has not. Restore 110 − 55 = 55: e2 has
	// nothing left to restore, so e1 gets 55 and expires them at once. Claw
	// back 199 − 99 = 100 from e3.
	res = b.process(t, returnEvent(t, "r2", "2026-04-02T09:00:00+07:00", "o3-r2", "o3", "1", "1"))
	require.Equal(t, events.StatusApplied, res.Status, res.Error)
	require.Equal(t, events.Totals{Gross: d("100000"), Discount: d("55"), Net: d("99945")}, res.Totals)
	requireDec(t, "55", res.Points.Restored)
	require.Equal(t, "e1=55", lotIDs(res.Points.RestoredLots))
	require.Equal(t, "2026-03-31T10:00:00+07:00", *res.Points.RestoredLots[0].ExpiresAt)
	requireDec(t, "100", res.Points.ClawedBack)
	require.Equal(t, "e3=100", lotIDs(res.Points.ClawedBackLots))
	requireDec(t, "0", res.Points.Balance)
	requireDec(t, "55", d(scalar[string](t, b, `SELECT amount::text FROM ledger_entries WHERE kind = 'expire' AND event_id = 'r2'`)))
	requireDec(t, "45", d(scalar[string](t, b, `SELECT remaining::text FROM point_lots WHERE lot_id = 'e1'`)), "expired, job not run")
	b.reconcile(t, "c")

	// Nothing is left to return.
	res = b.process(t, returnEvent(t, "r3", "2026-04-02T09:30:00+07:00", "o3-r3", "o3", "1", "1"))
	require.Equal(t, events.StatusRejected, res.Status)
	require.Equal(t, events.RejectReturnExceedsSold, res.Error.Code)
	res = b.process(t, returnEvent(t, "r4", "2026-04-02T09:30:00+07:00", "o3-r4", "o3", "9", "1"))
	require.Equal(t, events.RejectReturnExceedsSold, res.Error.Code, "a line that was not sold")

	// Restored and clawed back add up to the whole order.
	require.Equal(t, "110/199/true", scalar[string](t, b,
		`SELECT points_restored || '/' || points_clawed || '/' || (returned_qty->>'1' = '2') FROM processed_orders WHERE order_id = 'o3'`))
}

// Clawback takes from the order's own lot first, then FEFO, and what is
// missing becomes debt.
func TestClawbackOwnLotThenFEFOThenDebt(t *testing.T) {
	t.Parallel()
	b := setup(t, baseCatalog)
	b.process(t, paidEvent(t, "e1", "2026-03-01T10:00:00+07:00", "o1", "c", "", line{qty: "1", price: "30000"})) // 30
	b.process(t, paidEvent(t, "e2", "2026-03-02T10:00:00+07:00", "o2", "c", "", line{qty: "1", price: "50000"})) // 50
	// e3 spends 25 of e1 (FEFO); returning o2 owes its 50 points, all
	// taken from o2's own lot although e1 expires earlier.
	b.process(t, paidEvent(t, "e3", "2026-03-03T10:00:00+07:00", "o3", "c", "25", line{qty: "1", price: "25"}))
	res := b.process(t, returnEvent(t, "r2", "2026-03-04T10:00:00+07:00", "o2-r", "o2", "1", "1"))
	require.Equal(t, "e2=50", lotIDs(res.Points.ClawedBackLots), "own lot first, though e1 expires earlier")
	requireDec(t, "5", res.Points.Balance)

	// e4 earns 40, 35 of them spent; returning e4 owes 40: 5 from its own
	// lot, 5 from e1 (FEFO), 30 debt.
	b.process(t, paidEvent(t, "e4", "2026-03-05T10:00:00+07:00", "o4", "c", "", line{qty: "1", price: "40000"}))
	res = b.process(t, paidEvent(t, "e5", "2026-03-05T11:00:00+07:00", "o5", "c", "40", line{qty: "1", price: "40"}))
	require.Equal(t, "e1=5,e4=35", lotIDs(res.Points.RedeemedLots))
	res = b.process(t, returnEvent(t, "r4", "2026-03-06T10:00:00+07:00", "o4-r", "o4", "1", "1"))
	requireDec(t, "40", res.Points.ClawedBack)
	require.Equal(t, "e4=5", lotIDs(res.Points.ClawedBackLots))
	requireDec(t, "35", res.Points.Debt)
	requireDec(t, "0", res.Points.Balance)
	requireDec(t, "35", b.customer(t, "c", "2026-03-06T10:00:00+07:00").Debt)
	b.reconcile(t, "c")
}

// Returns of one unit at a time give back exactly the whole line, however
// the shares round.
func TestCumulativePartialReturnsSumExactly(t *testing.T) {
	t.Parallel()
	b := setup(t, catalogWith("programs: []", `programs:
  - {id: p33, layer: item, priority: 1, reward: {percent: "33", on: lines}}`))
	// 3 × 1001 = 3003, 33% = 990.99 → 991, net 2012, earns 2.
	res := b.process(t, paidEvent(t, "e1", "2026-03-01T10:00:00+07:00", "o1", "c", "", line{qty: "3", price: "1001"}))
	require.Equal(t, events.Totals{Gross: d("3003"), Discount: d("991"), Net: d("2012")}, res.Totals)
	requireDec(t, "2", res.Points.Earned)

	want := []struct{ gross, discount, net, clawed string }{
		{"1001", "330", "671", "0"}, // net round(670.67) = 671; claw floor(2 × 671 / 2012) = 0
		{"1001", "331", "670", "1"}, // cumulative 1341: claw floor(1.33) − 0 = 1
		{"1001", "330", "671", "1"}, // cumulative 2012: 2 − 1
	}
	for i, w := range want {
		id := string(rune('a' + i))
		res := b.process(t, returnEvent(t, "r"+id, "2026-03-02T10:00:00+07:00", "o1-"+id, "o1", "1", "1"))
		require.Equal(t, events.Totals{Gross: d(w.gross), Discount: d(w.discount), Net: d(w.net)}, res.Totals, "return %d", i)
		require.Equal(t, []events.Discount{{Layer: events.LayerItem, ProgramID: "p33", LineID: "1", Amount: d(w.discount)}}, res.Discounts)
		requireDec(t, w.clawed, res.Points.ClawedBack, "return ", i)
	}
	b.reconcile(t, "c")
}

func TestReturnSplitsDiscountOverEntries(t *testing.T) {
	t.Parallel()
	b := setup(t, catalogWith("programs: []", `programs:
  - {id: ten, layer: item, priority: 1, reward: {percent: "10", on: lines}}
  - {id: fix, layer: order, priority: 1, reward: {amount: "3000", on: order}}`))
	// Line 1: 4 × 10000 = 40000, −4000 item, −(3000 × 36000/54000 = 2000)
	// order; line 2: 2 × 10000 = 20000, −2000 item, −1000 order.
	res := b.process(t, paidEvent(t, "e1", "2026-03-01T10:00:00+07:00", "o1", "", "",
		line{qty: "4", price: "10000"}, line{qty: "2", price: "10000"}))
	require.Equal(t, events.Totals{Gross: d("60000"), Discount: d("9000"), Net: d("51000")}, res.Totals)

	// One unit of line 1: gross 10000, net 34000 / 4 = 8500, discount 1500
	// split 4000:2000 → 1000 and 500. One unit of line 2: 10000, 8500, 1500.
	res = b.process(t, returnEvent(t, "r1", "2026-03-02T10:00:00+07:00", "o1-r", "o1", "1", "1", "2", "1"))
	require.Equal(t, events.Totals{Gross: d("20000"), Discount: d("3000"), Net: d("17000")}, res.Totals)
	require.Equal(t, []events.Discount{
		{Layer: events.LayerItem, ProgramID: "ten", LineID: "1", Amount: d("1000")},
		{Layer: events.LayerOrder, ProgramID: "fix", LineID: "1", Amount: d("500")},
		{Layer: events.LayerItem, ProgramID: "ten", LineID: "2", Amount: d("1000")},
		{Layer: events.LayerOrder, ProgramID: "fix", LineID: "2", Amount: d("500")},
	}, res.Discounts)
	require.Nil(t, res.Points, "anonymous order")
	require.Nil(t, res.Membership)

	// Cancelling returns every unit not yet returned.
	res = b.process(t, cancelEvent(t, "x1", "2026-03-03T10:00:00+07:00", "o1"))
	require.Equal(t, events.StatusApplied, res.Status)
	require.Equal(t, []events.LineResult{
		{ID: "1", Qty: d("3"), Gross: d("30000"), Discount: d("4500"), Net: d("25500")},
		{ID: "2", Qty: d("1"), Gross: d("10000"), Discount: d("1500"), Net: d("8500")},
	}, res.Lines)
	require.Equal(t, events.Totals{Gross: d("40000"), Discount: d("6000"), Net: d("34000")}, res.Totals)
}

func TestReversalRejections(t *testing.T) {
	t.Parallel()
	b := setup(t, baseCatalog)

	// Unknown original: an error (the worker retries); nothing is kept.
	before := b.counts(t)
	_, err := b.tryProcess(returnEvent(t, "r0", "2026-03-02T10:00:00+07:00", "x-r", "nope", "1", "1"))
	require.ErrorIs(t, err, ledger.ErrUnknownOriginalOrder)
	_, err = b.tryProcess(cancelEvent(t, "x0", "2026-03-02T10:00:00+07:00", "nope"))
	require.ErrorIs(t, err, ledger.ErrUnknownOriginalOrder)
	require.Equal(t, before, b.counts(t))

	// A rejected original is as good as unknown.
	res := b.process(t, paidEvent(t, "e1", "2026-03-01T10:00:00+07:00", "o1", "c", "5", line{qty: "1", price: "1000"}))
	require.Equal(t, events.StatusRejected, res.Status)
	res = b.process(t, returnEvent(t, "r1", "2026-03-02T10:00:00+07:00", "o1-r", "o1", "1", "1"))
	require.Equal(t, events.StatusRejected, res.Status)
	require.Equal(t, events.RejectUnknownOriginalOrder, res.Error.Code)
	res = b.process(t, cancelEvent(t, "x1", "2026-03-02T10:00:00+07:00", "o1"))
	require.Equal(t, events.RejectUnknownOriginalOrder, res.Error.Code)

	// Cancelled twice, or returned after cancelling.
	b.process(t, paidEvent(t, "e2", "2026-03-01T10:00:00+07:00", "o2", "c", "", line{qty: "2", price: "1000"}))
	res = b.process(t, cancelEvent(t, "x2", "2026-03-02T10:00:00+07:00", "o2"))
	require.Equal(t, events.StatusApplied, res.Status)
	requireDec(t, "2", res.Points.ClawedBack)
	before = b.counts(t)
	res = b.process(t, cancelEvent(t, "x2-again", "2026-03-02T11:00:00+07:00", "o2"))
	require.Equal(t, events.StatusRejected, res.Status)
	require.Equal(t, events.RejectAlreadyCancelled, res.Error.Code)
	res = b.process(t, returnEvent(t, "r2", "2026-03-02T11:00:00+07:00", "o2-r", "o2", "1", "1"))
	require.Equal(t, events.RejectAlreadyCancelled, res.Error.Code)
	after := b.counts(t)
	for _, table := range []string{"inbox", "outbox", "order_reversals"} {
		require.Equal(t, before[table]+2, after[table], table)
		delete(before, table)
		delete(after, table)
	}
	require.Equal(t, before, after, "rejections change nothing else")
	b.reconcile(t, "c")
}

func TestCustomersOfOrdersAndLockCustomers(t *testing.T) {
	t.Parallel()
	b := setup(t, baseCatalog)
	b.process(t, paidEvent(t, "e1", "2026-03-01T10:00:00+07:00", "o1", "c1", "", line{qty: "1", price: "1000"}))
	b.process(t, paidEvent(t, "e2", "2026-03-01T10:00:00+07:00", "o2", "", "", line{qty: "1", price: "1000"}))
	got, err := ledger.CustomersOfOrders(b.ctx, b.pool, []string{"o1", "o2", "o3"})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"o1": "c1"}, got)

	tx, err := b.pool.Begin(b.ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(b.ctx) }()
	require.NoError(t, ledger.LockCustomers(b.ctx, tx, []string{"c2", "c1", "c2", ""}))
	// Locked: another transaction cannot take c1 or c2 without waiting.
	other, err := b.pool.Begin(b.ctx)
	require.NoError(t, err)
	defer func() { _ = other.Rollback(b.ctx) }()
	_, err = other.Exec(b.ctx, `SELECT 1 FROM accounts WHERE customer_id IN ('c1') FOR UPDATE NOWAIT`)
	require.Error(t, err)
	// A locked-only customer is not a customer yet.
	require.NoError(t, tx.Commit(b.ctx))
	_, err = b.store.Customer(b.ctx, b.pool, "c2", mustTime(t, "2026-03-01T10:00:00+07:00"), b.cat)
	require.ErrorIs(t, err, ledger.ErrUnknownCustomer)
	_, err = b.store.Customer(b.ctx, b.pool, "nobody", mustTime(t, "2026-03-01T10:00:00+07:00"), b.cat)
	require.ErrorIs(t, err, ledger.ErrUnknownCustomer)
}

// An Odoo refund that gives back lines of two orders comes as two returns
// with the refund's order id, one per original order: both apply. The same
// (refund, original) pair under another event id is a duplicate order.
func TestRefundOfTwoOrdersIsTwoReturns(t *testing.T) {
	t.Parallel()
	b := setup(t, baseCatalog)
	b.process(t, paidEvent(t, "e1", "2026-03-01T10:00:00+07:00", "o1", "c", "", line{qty: "2", price: "10000"}))
	b.process(t, paidEvent(t, "e2", "2026-03-01T11:00:00+07:00", "o2", "c", "", line{qty: "1", price: "30000"}))

	res := b.process(t, returnEvent(t, "r:o1", "2026-03-02T10:00:00+07:00", "refund-9", "o1", "1", "1"))
	require.Equal(t, events.StatusApplied, res.Status)
	requireDec(t, "10", res.Points.ClawedBack)
	res = b.process(t, returnEvent(t, "r:o2", "2026-03-02T10:00:00+07:00", "refund-9", "o2", "1", "1"))
	require.Equal(t, events.StatusApplied, res.Status)
	requireDec(t, "30", res.Points.ClawedBack)

	_, err := b.tryProcess(returnEvent(t, "r:o1-again", "2026-03-02T10:00:00+07:00", "refund-9", "o1", "1", "1"))
	require.ErrorIs(t, err, ledger.ErrDuplicateOrder)
	b.reconcile(t, "c")
}
