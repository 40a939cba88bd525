package ledger_test

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
)

func (b *bundle) open(t *testing.T, lots ...ledger.OpeningLot) []ledger.OpeningOutcome {
	t.Helper()
	var out []ledger.OpeningOutcome
	require.NoError(t, pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
		var err error
		out, err = ledger.OpenLots(b.ctx, tx, lots)
		return err
	}))
	return out
}

func (b *bundle) trueUp(t *testing.T, adjs ...ledger.TrueUp) []ledger.TrueUpOutcome {
	t.Helper()
	var out []ledger.TrueUpOutcome
	require.NoError(t, pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
		var err error
		out, err = ledger.TrueUps(b.ctx, tx, adjs)
		return err
	}))
	return out
}

func timePtr(t *testing.T, s string) *time.Time {
	v := mustTime(t, s)
	return &v
}

// An opening balance is a lot like one an order earns: the customer is
// known from then on, spends it FEFO with the rest, and importing it again
// changes nothing.
func TestOpenLotsAreLotsAndImportOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, baseCatalog)
	at := mustTime(t, "2026-03-01T00:00:00+07:00")
	lots := []ledger.OpeningLot{
		{LotID: "odoo1:loyalty.card:7:opening", CustomerID: "c1", Source: "odoo1:loyalty.card:7", At: at, Points: d("120")},
		{LotID: "odoo1:loyalty.card:8:opening", CustomerID: "c2", Source: "odoo1:loyalty.card:8", At: at,
			ExpiresAt: timePtr(t, "2026-03-10T00:00:00+07:00"), Points: d("30")},
		{LotID: "odoo1:loyalty.card:9:opening", CustomerID: "c2", Source: "odoo1:loyalty.card:9", At: at, Points: d("5")},
	}
	out := b.open(t, lots...)
	require.Len(t, out, 3)
	for _, o := range out {
		require.True(t, o.Opened, o.LotID)
		requireDec(t, "0", o.DebtPaid)
	}
	before := b.counts(t)
	again := b.open(t, lots...)
	for _, o := range again {
		require.False(t, o.Opened, "imported twice: %s", o.LotID)
	}
	require.Equal(t, before, b.counts(t), "a second import writes nothing")

	v := b.customer(t, "c1", "2026-03-01T00:00:00+07:00")
	requireDec(t, "120", v.Balance)
	require.Equal(t, "odoo1:loyalty.card:7:opening", v.Lots[0].LotID)
	require.Nil(t, v.Lots[0].ExpiresAt)
	v = b.customer(t, "c2", "2026-03-01T00:00:00+07:00")
	requireDec(t, "35", v.Balance)
	b.reconcile(t, "c1", "c2")
	requireDec(t, "155", d(scalar[string](t, b, `SELECT sum(amount)::text FROM ledger_entries WHERE kind = 'earn'`)))

	// c2 spends 32: the expiring card's 30 first, then 2 of the other.
	res := b.process(t, paidEvent(t, "p1", "2026-03-02T10:00:00+07:00", "o1", "c2", "32", line{qty: "1", price: "1000"}))
	require.Equal(t, events.StatusApplied, res.Status, res.Error)
	require.Equal(t, "odoo1:loyalty.card:8:opening=30,odoo1:loyalty.card:9:opening=2", lotIDs(res.Points.RedeemedLots))
	b.reconcile(t, "c2")

	// After its expiry the job expires what is left of an opening lot.
	b.open(t, ledger.OpeningLot{LotID: "odoo1:loyalty.card:10:opening", CustomerID: "c3", Source: "odoo1:loyalty.card:10",
		At: at, ExpiresAt: timePtr(t, "2026-03-05T00:00:00+07:00"), Points: d("12")})
	rep := b.jobs(t, "2026-03-06T00:00:00+07:00")
	require.Equal(t, 1, rep.LotsExpired)
	requireDec(t, "0", b.customer(t, "c3", "2026-03-06T00:00:00+07:00").Balance)
	b.reconcile(t, "c3")
}

// A customer owing points (a return clawed back more than was left) pays
// the debt from the opening balance first, as from any points earned.
func TestOpenLotPaysDebtFirst(t *testing.T) {
	t.Parallel()
	b := setup(t, baseCatalog)
	b.process(t, paidEvent(t, "p1", "2026-05-01T10:00:00+07:00", "o1", "c", "", line{qty: "1", price: "50000"}))
	b.process(t, paidEvent(t, "p2", "2026-05-02T10:00:00+07:00", "o2", "c", "50", line{qty: "1", price: "50"}))
	res := b.process(t, cancelEvent(t, "x1", "2026-05-03T10:00:00+07:00", "o1"))
	requireDec(t, "50", res.Points.Debt)

	out := b.open(t, ledger.OpeningLot{LotID: "card-1", CustomerID: "c", Source: "odoo1:loyalty.card:1",
		At: mustTime(t, "2026-05-04T00:00:00+07:00"), Points: d("80")})
	requireDec(t, "50", out[0].DebtPaid)
	v := b.customer(t, "c", "2026-05-04T00:00:00+07:00")
	requireDec(t, "30", v.Balance)
	requireDec(t, "0", v.Debt)
	b.reconcile(t, "c")

	// Less than the debt: no lot, the debt shrinks, and again nothing
	// happens on a second import.
	b.process(t, paidEvent(t, "p3", "2026-05-05T10:00:00+07:00", "o3", "c", "", line{qty: "1", price: "30000"}))
	b.process(t, paidEvent(t, "p4", "2026-05-05T11:00:00+07:00", "o4", "c", "60", line{qty: "1", price: "60"}))
	res = b.process(t, cancelEvent(t, "x3", "2026-05-06T10:00:00+07:00", "o3"))
	requireDec(t, "30", res.Points.Debt)
	out = b.open(t, ledger.OpeningLot{LotID: "card-2", CustomerID: "c", Source: "odoo1:loyalty.card:2",
		At: mustTime(t, "2026-05-07T00:00:00+07:00"), Points: d("1")})
	requireDec(t, "1", out[0].DebtPaid)
	require.False(t, b.open(t, ledger.OpeningLot{LotID: "card-2", CustomerID: "c", Source: "odoo1:loyalty.card:2",
		At: mustTime(t, "2026-05-07T00:00:00+07:00"), Points: d("1")})[0].Opened)
	b.reconcile(t, "c")
}

func TestOpenLotsRefusesNonsense(t *testing.T) {
	t.Parallel()
	b := setup(t, baseCatalog)
	at := mustTime(t, "2026-03-01T00:00:00+07:00")
	for _, l := range []ledger.OpeningLot{
		{LotID: "", CustomerID: "c", Source: "s", At: at, Points: d("1")},
		{LotID: "x", CustomerID: "", Source: "s", At: at, Points: d("1")},
		{LotID: "x", CustomerID: "c", Source: "s", At: at, Points: d("0")},
		{LotID: "x", CustomerID: "c", Source: "s", At: at, Points: d("-3")},
	} {
		err := pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
			_, err := ledger.OpenLots(b.ctx, tx, []ledger.OpeningLot{l})
			return err
		})
		require.ErrorIs(t, err, ledger.ErrBadOpening)
	}
	require.Zero(t, b.counts(t)["accounts"])
}

// A true-up brings the spendable balance to the other system's: up with a
// lot, down with clawbacks taken first-expiring-first, debt paid off; once.
func TestTrueUpsReachTheTarget(t *testing.T) {
	t.Parallel()
	b := setup(t, baseCatalog)
	b.process(t, paidEvent(t, "p1", "2026-06-01T10:00:00+07:00", "o1", "up", "", line{qty: "1", price: "20000"}))
	b.process(t, paidEvent(t, "p2", "2026-06-01T10:00:00+07:00", "o2", "down", "", line{qty: "1", price: "40000"}))
	b.process(t, paidEvent(t, "p3", "2026-06-05T10:00:00+07:00", "o3", "down", "", line{qty: "1", price: "30000"}))
	// "debtor" owes 10.
	b.process(t, paidEvent(t, "p4", "2026-06-01T10:00:00+07:00", "o4", "debtor", "", line{qty: "1", price: "10000"}))
	b.process(t, paidEvent(t, "p5", "2026-06-02T10:00:00+07:00", "o5", "debtor", "10", line{qty: "1", price: "10"}))
	b.process(t, cancelEvent(t, "x4", "2026-06-03T10:00:00+07:00", "o4"))
	requireDec(t, "10", b.customer(t, "debtor", "2026-06-10T00:00:00+07:00").Debt)

	at := mustTime(t, "2026-06-10T00:00:00+07:00")
	adjs := []ledger.TrueUp{
		{ID: "t:up", CustomerID: "up", Source: "odoo1:loyalty.card:1", At: at, Target: d("25")},
		{ID: "t:down", CustomerID: "down", Source: "odoo1:loyalty.card:2", At: at, Target: d("25")},
		{ID: "t:same", CustomerID: "same", Source: "odoo1:loyalty.card:3", At: at, Target: d("0")},
		{ID: "t:debtor", CustomerID: "debtor", Source: "odoo1:loyalty.card:4", At: at, Target: d("3")},
	}
	out := b.trueUp(t, adjs...)
	byID := map[string]ledger.TrueUpOutcome{}
	for _, o := range out {
		require.Equal(t, o.ID != "t:same", o.Applied, o.ID)
		byID[o.ID] = o
	}
	requireDec(t, "20", byID["t:up"].Before)
	requireDec(t, "5", byID["t:up"].Delta)
	requireDec(t, "70", byID["t:down"].Before)
	requireDec(t, "-45", byID["t:down"].Delta)
	requireDec(t, "0", byID["t:same"].Delta)
	requireDec(t, "10", byID["t:debtor"].DebtCleared)
	requireDec(t, "3", byID["t:debtor"].Delta)

	for id, want := range map[string]string{"up": "25", "down": "25", "debtor": "3"} {
		v := b.customer(t, id, "2026-06-10T00:00:00+07:00")
		requireDec(t, want, v.Balance)
		requireDec(t, "0", v.Debt)
	}
	_, err := b.store.Customer(b.ctx, b.pool, "same", at, b.cat)
	require.ErrorIs(t, err, ledger.ErrUnknownCustomer, "nothing to adjust: nothing written")
	// FEFO: p2 (earned first, same expiry rule) gave its 40, p3 5 of 30.
	v := b.customer(t, "down", "2026-06-10T00:00:00+07:00")
	require.Len(t, v.Lots, 1)
	require.Equal(t, "p3", v.Lots[0].LotID)
	requireDec(t, "25", v.Lots[0].Remaining)
	b.reconcile(t, "up", "down", "same", "debtor")

	before := b.counts(t)
	for _, o := range b.trueUp(t, adjs...) {
		require.False(t, o.Applied, o.ID)
	}
	require.Equal(t, before, b.counts(t), "a second true-up writes nothing")

	err = pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
		_, err := ledger.TrueUps(b.ctx, tx, []ledger.TrueUp{adjs[0], {ID: "t:up2", CustomerID: "up", Source: "s", At: at, Target: d("1")}})
		return err
	})
	require.ErrorIs(t, err, ledger.ErrBadOpening, "one customer twice")
}
