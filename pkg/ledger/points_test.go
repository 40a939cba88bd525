package ledger_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
)

// baseCatalog earns 1 point per 1000, lots live 30 days, a point is worth 1
// and may pay the whole order; levels need 100000, 200000 and 500000 of net
// spend over 30 days and are kept 30 days.
const baseCatalog = `
currency: IDR
money_decimals: 0
timezone: Asia/Jakarta
points:
  decimals: 0
  earn: [{per_amount: "1000", points: "1"}]
  expiry: {days: 30}
  pending_days: 0
  redeem: {value: "1", min: "1", max_share: "1"}
membership:
  default_path: default
  paths:
    - id: default
      qualify: {window_days: 30}
      retention_days: 30
      downgrade: one_level
      levels:
        - {id: bronze, min: "0"}
        - {id: silver, min: "100000"}
        - {id: gold, min: "200000"}
        - {id: platinum, min: "500000"}
programs: []
`

// catalogWith replaces one line of baseCatalog.
func catalogWith(old, new string) string {
	if !strings.Contains(baseCatalog, old) {
		panic("catalogWith: " + old)
	}
	return strings.Replace(baseCatalog, old, new, 1)
}

func TestEarnCreatesLot(t *testing.T) {
	t.Parallel()
	b := setup(t, baseCatalog)
	res := b.process(t, paidEvent(t, "e1", "2026-03-01T10:00:00+07:00", "o1", "c1", "", line{qty: "2", price: "25000"}))
	require.Equal(t, events.StatusApplied, res.Status)
	require.Equal(t, "result:e1", res.EventID)
	require.Equal(t, "e1", res.CausationID)
	require.Equal(t, events.TypeOrderPaid, res.SourceType)
	require.Equal(t, "2026-03-01T10:00:00+07:00", res.OccurredAt)
	requireDec(t, "50", res.Points.Earned)
	require.Equal(t, "e1", res.Points.EarnedLotID)
	require.Equal(t, "2026-03-31T10:00:00+07:00", *res.Points.EarnedExpiresAt)
	requireDec(t, "50", res.Points.Balance)
	require.Equal(t, &events.Membership{Path: "default", Level: "bronze", PreviousLevel: "bronze", QualifyingAmount: d("50000")}, res.Membership)

	v := b.customer(t, "c1", "2026-03-01T10:00:00+07:00")
	requireDec(t, "50", v.Balance)
	require.Len(t, v.Lots, 1)
	require.Equal(t, "e1", v.Lots[0].LotID)
	require.Equal(t, "2026-03-01T10:00:00+07:00", v.Lots[0].EarnedAt)
	require.Equal(t, "2026-03-31T10:00:00+07:00", *v.Lots[0].ExpiresAt)
	require.Equal(t, []ledgerLevel{{"default", "bronze", "2026-03-01T10:00:00+07:00"}}, levelsOf(v))
	b.reconcile(t, "c1")
}

// FEFO: earliest expiry first, never-expiring last, then earliest earned,
// then lot id.
func TestRedeemFEFO(t *testing.T) {
	t.Parallel()
	b := setup(t, catalogWith("expiry: {days: 30}", "expiry: {days: 10}"))
	at := func(day string) string { return "2026-01-" + day + "T10:00:00+07:00" }
	never := b.apply(t, catalogWith("  expiry: {days: 30}\n", ""))
	days30 := b.apply(t, baseCatalog)
	days10 := b.cat

	// A never expires; B (30 days from the 10th) and C (10 days from the
	// 30th) both expire on 9 February, B earned first; E-a and E-b expire
	// the same instant, earned the same instant: lot id decides.
	b.cat = never
	b.process(t, paidEvent(t, "A", at("01"), "oA", "c", "", line{qty: "1", price: "50000"}))
	b.cat = days30
	b.process(t, paidEvent(t, "B", at("10"), "oB", "c", "", line{qty: "1", price: "20000"}))
	b.process(t, paidEvent(t, "E-b", at("12"), "oEb", "c", "", line{qty: "1", price: "7000"}))
	b.process(t, paidEvent(t, "E-a", at("12"), "oEa", "c", "", line{qty: "1", price: "5000"}))
	b.cat = days10
	b.process(t, paidEvent(t, "C", at("30"), "oC", "c", "", line{qty: "1", price: "30000"}))

	v := b.customer(t, "c", at("31"))
	requireDec(t, "112", v.Balance)
	var order []string
	for _, l := range v.Lots {
		order = append(order, l.LotID)
	}
	require.Equal(t, []string{"B", "C", "E-a", "E-b", "A"}, order)

	// 104 points: all of B, C, E-a, E-b and 12 of A. The order pays 104 and
	// earns nothing (its net is 0).
	res := b.process(t, paidEvent(t, "R", at("31"), "oR", "c", "112", line{qty: "1", price: "112"}))
	require.Equal(t, events.StatusApplied, res.Status, res.Error)
	require.Equal(t, "B=20,C=30,E-a=5,E-b=7,A=50", lotIDs(res.Points.RedeemedLots))
	require.Equal(t, "2026-02-09T10:00:00+07:00", *res.Points.RedeemedLots[0].ExpiresAt)
	require.Equal(t, "2026-02-09T10:00:00+07:00", *res.Points.RedeemedLots[1].ExpiresAt)
	require.Nil(t, res.Points.RedeemedLots[4].ExpiresAt)
	requireDec(t, "0", res.Points.Balance)
	requireDec(t, "0", res.Points.Earned)
	require.Empty(t, res.Points.EarnedLotID)

	// The allocations are stored in consumption order.
	rows, err := b.pool.Query(b.ctx, `SELECT lot_id || '=' || amount FROM point_consumptions WHERE order_id = 'oR' ORDER BY seq`)
	require.NoError(t, err)
	var got []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		got = append(got, s)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"B=20", "C=30", "E-a=5", "E-b=7", "A=50"}, got)
	b.reconcile(t, "c")
}

func TestPartialRedemptionTakesEarliestFirst(t *testing.T) {
	t.Parallel()
	b := setup(t, baseCatalog)
	b.process(t, paidEvent(t, "e1", "2026-03-01T10:00:00+07:00", "o1", "c", "", line{qty: "1", price: "40000"}))
	b.process(t, paidEvent(t, "e2", "2026-03-02T10:00:00+07:00", "o2", "c", "", line{qty: "1", price: "30000"}))
	// 50 points: 40 from e1, 10 from e2; the order's net 950 earns nothing.
	res := b.process(t, paidEvent(t, "e3", "2026-03-03T10:00:00+07:00", "o3", "c", "50", line{qty: "1", price: "1000"}))
	require.Equal(t, "e1=40,e2=10", lotIDs(res.Points.RedeemedLots))
	requireDec(t, "950", res.Totals.Net)
	requireDec(t, "20", res.Points.Balance)
	require.Equal(t, []events.Discount{{Layer: events.LayerPoints, ProgramID: "points", LineID: "1", Amount: d("50")}}, res.Discounts)
	b.reconcile(t, "c")
}

// Pending and expired lots are never spendable, whether or not the expiry
// job has run.
func TestPendingAndExpiredLotsNotSpendable(t *testing.T) {
	t.Parallel()
	b := setup(t, catalogWith("pending_days: 0", "pending_days: 2"))
	b.process(t, paidEvent(t, "e1", "2026-03-01T10:00:00+07:00", "o1", "c", "", line{qty: "1", price: "40000"}))

	// Pending until 3 March 10:00.
	res := b.process(t, paidEvent(t, "e2", "2026-03-02T10:00:00+07:00", "o2", "c", "10", line{qty: "1", price: "1000"}))
	require.Equal(t, events.StatusRejected, res.Status)
	require.Equal(t, events.RejectInsufficientPoints, res.Error.Code)
	requireDec(t, "0", res.Points.Balance)
	v := b.customer(t, "c", "2026-03-03T09:59:59+07:00")
	requireDec(t, "0", v.Balance)
	require.Len(t, v.Lots, 1, "a pending lot is listed")
	require.Equal(t, "2026-03-03T10:00:00+07:00", v.Lots[0].AvailableAt)
	requireDec(t, "40", b.customer(t, "c", "2026-03-03T10:00:00+07:00").Balance)

	// Expired on 31 March 10:00; the job has not run.
	requireDec(t, "40", b.customer(t, "c", "2026-03-31T09:59:59+07:00").Balance)
	requireDec(t, "0", b.customer(t, "c", "2026-03-31T10:00:00+07:00").Balance)
	res = b.process(t, paidEvent(t, "e3", "2026-03-31T10:00:00+07:00", "o3", "c", "10", line{qty: "1", price: "1000"}))
	require.Equal(t, events.StatusRejected, res.Status)
	require.Equal(t, events.RejectInsufficientPoints, res.Error.Code)
	requireDec(t, "40", d(scalar[string](t, b, `SELECT remaining::text FROM point_lots WHERE lot_id = 'e1'`)))
	b.reconcile(t, "c")
}

func TestEarnPaysDebtFirst(t *testing.T) {
	t.Parallel()
	b := setup(t, baseCatalog)
	b.process(t, paidEvent(t, "p1", "2026-05-01T10:00:00+07:00", "o1", "c", "", line{qty: "1", price: "50000"}))
	// Spends P1 entirely and earns 29 (net 29950).
	res := b.process(t, paidEvent(t, "p2", "2026-05-02T10:00:00+07:00", "o2", "c", "50", line{qty: "1", price: "30000"}))
	requireDec(t, "29", res.Points.Earned)
	b.process(t, paidEvent(t, "p3", "2026-05-03T10:00:00+07:00", "o3", "c", "", line{qty: "1", price: "10000"}))

	// Cancelling o1 owes 50 back: its own lot is empty, FEFO takes p2's 29
	// and p3's 10, the 11 left become debt.
	res = b.process(t, cancelEvent(t, "x1", "2026-05-04T10:00:00+07:00", "o1"))
	require.Equal(t, events.StatusApplied, res.Status)
	requireDec(t, "50", res.Points.ClawedBack)
	require.Equal(t, "p2=29,p3=10", lotIDs(res.Points.ClawedBackLots))
	requireDec(t, "11", res.Points.Debt)
	requireDec(t, "0", res.Points.Balance)
	b.reconcile(t, "c")

	// The next order earns 30: 11 pay the debt, the lot gets 19.
	res = b.process(t, paidEvent(t, "p4", "2026-05-05T10:00:00+07:00", "o4", "c", "", line{qty: "1", price: "30000"}))
	requireDec(t, "30", res.Points.Earned)
	require.Equal(t, "p4", res.Points.EarnedLotID)
	requireDec(t, "0", res.Points.Debt)
	requireDec(t, "19", res.Points.Balance)
	requireDec(t, "19", d(scalar[string](t, b, `SELECT original::text FROM point_lots WHERE lot_id = 'p4'`)))
	requireDec(t, "11", d(scalar[string](t, b, `SELECT amount::text FROM ledger_entries WHERE kind = 'debt_payment'`)))
	b.reconcile(t, "c")

	// An order earning less than the debt creates no lot.
	b.process(t, cancelEvent(t, "x4", "2026-05-06T10:00:00+07:00", "o4"))
	res = b.process(t, paidEvent(t, "p5", "2026-05-07T10:00:00+07:00", "o5", "c", "", line{qty: "1", price: "5000"}))
	requireDec(t, "5", res.Points.Earned)
	require.Empty(t, res.Points.EarnedLotID)
	requireDec(t, "6", res.Points.Debt)
	b.reconcile(t, "c")
}

func TestMultiLevelUpgradeAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, baseCatalog)
	res := b.process(t, paidEvent(t, "e1", "2026-03-01T10:00:00+07:00", "o1", "c", "", line{qty: "1", price: "250000"}))
	require.Equal(t, &events.Membership{Path: "default", Level: "gold", PreviousLevel: "bronze", Changed: true, QualifyingAmount: d("250000")}, res.Membership)
	// The next order counts the window: 250000 + 300000 = 550000 → platinum.
	res = b.process(t, paidEvent(t, "e2", "2026-03-02T10:00:00+07:00", "o2", "c", "", line{qty: "1", price: "300000"}))
	require.Equal(t, &events.Membership{Path: "default", Level: "platinum", PreviousLevel: "gold", Changed: true, QualifyingAmount: d("550000")}, res.Membership)
	v := b.customer(t, "c", "2026-03-02T10:00:00+07:00")
	require.Equal(t, []ledgerLevel{{"default", "platinum", "2026-03-02T10:00:00+07:00"}}, levelsOf(v))
	var changes []string
	for _, h := range v.History {
		if h.Kind == "level_change" {
			changes = append(changes, h.PreviousLevel+">"+h.Level)
		}
	}
	require.Equal(t, []string{"gold>platinum", "bronze>gold", ">bronze"}, changes)

	// Spend at or before the window start (exclusive) no longer counts.
	res = b.process(t, paidEvent(t, "e3", "2026-03-31T10:00:00+07:00", "o3", "c", "", line{qty: "1", price: "1000"}))
	requireDec(t, "301000", res.Membership.QualifyingAmount)
	require.Equal(t, "platinum", res.Membership.Level, "levels only drop in the job")
}

func TestRejectedPaidChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, baseCatalog)
	b.process(t, paidEvent(t, "e1", "2026-03-01T10:00:00+07:00", "o1", "c", "", line{qty: "1", price: "40000"}))
	before := b.counts(t)
	res := b.process(t, paidEvent(t, "e2", "2026-03-02T10:00:00+07:00", "o2", "c", "41", line{qty: "1", price: "100000"}))
	require.Equal(t, events.StatusRejected, res.Status)
	require.Equal(t, events.RejectInsufficientPoints, res.Error.Code)
	requireDec(t, "0", res.Points.Earned)
	requireDec(t, "40", res.Points.Balance)
	require.False(t, res.Membership.Changed)
	after := b.counts(t)
	for _, table := range []string{"inbox", "outbox", "processed_orders"} {
		require.Equal(t, before[table]+1, after[table], table)
		delete(before, table)
		delete(after, table)
	}
	require.Equal(t, before, after)
	require.Equal(t, events.StatusRejected, scalar[string](t, b, `SELECT status FROM processed_orders WHERE order_id = 'o2'`))

	// An anonymous order cannot redeem.
	res = b.process(t, paidEvent(t, "e3", "2026-03-02T10:00:00+07:00", "o3", "", "10", line{qty: "1", price: "100000"}))
	require.Equal(t, events.RejectCustomerRequired, res.Error.Code)
	require.Nil(t, res.Points)
	require.Nil(t, res.Membership)
}

func TestDuplicateEventChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, baseCatalog)
	ev := paidEvent(t, "e1", "2026-03-01T10:00:00+07:00", "o1", "c", "", line{qty: "1", price: "40000"})
	require.NotNil(t, b.process(t, ev))
	before := b.counts(t)
	res, err := b.tryProcess(ev)
	require.NoError(t, err)
	require.Nil(t, res)
	require.Equal(t, before, b.counts(t))

	ret := returnEvent(t, "r1", "2026-03-02T10:00:00+07:00", "o1-r", "o1", "1", "1")
	require.NotNil(t, b.process(t, ret))
	before = b.counts(t)
	res, err = b.tryProcess(ret)
	require.NoError(t, err)
	require.Nil(t, res)
	require.Equal(t, before, b.counts(t))
}

func TestDuplicateOrderID(t *testing.T) {
	t.Parallel()
	b := setup(t, baseCatalog)
	b.process(t, paidEvent(t, "e1", "2026-03-01T10:00:00+07:00", "o1", "c", "", line{qty: "1", price: "40000"}))
	_, err := b.tryProcess(paidEvent(t, "e1-again", "2026-03-01T10:00:00+07:00", "o1", "c", "", line{qty: "1", price: "40000"}))
	require.ErrorIs(t, err, ledger.ErrDuplicateOrder)

	b.process(t, returnEvent(t, "r1", "2026-03-02T10:00:00+07:00", "o1-r", "o1", "1", "1"))
	_, err = b.tryProcess(returnEvent(t, "r1-again", "2026-03-02T10:00:00+07:00", "o1-r", "o1", "1", "1"))
	require.ErrorIs(t, err, ledger.ErrDuplicateOrder)
}

func TestCurrencyMismatch(t *testing.T) {
	t.Parallel()
	b := setup(t, baseCatalog)
	ev := paidEvent(t, "e1", "2026-03-01T10:00:00+07:00", "o1", "c", "", line{qty: "1", price: "40000"})
	ev.Paid.Currency = "USD"
	_, err := b.tryProcess(ev)
	require.ErrorIs(t, err, ledger.ErrCurrencyMismatch)
}

func TestQuoteChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, baseCatalog)
	b.process(t, paidEvent(t, "e1", "2026-03-01T10:00:00+07:00", "o1", "c", "", line{qty: "1", price: "40000"}))
	before := b.counts(t)
	ev := paidEvent(t, "q", "2026-03-02T10:00:00+07:00", "o2", "c", "30", line{qty: "1", price: "150000"})
	q, err := b.store.Quote(b.ctx, b.pool, b.cat, *ev)
	require.NoError(t, err)
	require.Equal(t, events.StatusQuote, q.Status)
	require.Equal(t, before, b.counts(t))
	requireDec(t, "149970", q.Totals.Net)
	requireDec(t, "149", q.Points.Earned)
	require.Empty(t, q.Points.EarnedLotID)
	requireDec(t, "159", q.Points.Balance)
	require.Equal(t, "e1=30", lotIDs(q.Points.RedeemedLots))
	require.Equal(t, "silver", q.Membership.Level)

	// The real thing gives the same numbers.
	res := b.process(t, ev)
	q.Status, res.Status = "", ""
	res.Points.EarnedLotID = ""
	require.Equal(t, mustJSON(q), mustJSON(res))

	// A new customer can be quoted.
	q, err = b.store.Quote(b.ctx, b.pool, b.cat, *paidEvent(t, "q2", "2026-03-02T10:00:00+07:00", "o9", "new", "", line{qty: "1", price: "5000"}))
	require.NoError(t, err)
	requireDec(t, "5", q.Points.Balance)
	require.Equal(t, "bronze", q.Membership.Level)
}

type ledgerLevel struct{ Path, Level, Since string }

func levelsOf(v *ledger.CustomerView) []ledgerLevel {
	var out []ledgerLevel
	for _, l := range v.Levels {
		out = append(out, ledgerLevel{l.Path, l.Level, l.Since})
	}
	return out
}
