package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/promoengine/promoengine/pkg/dec"
)

// Balances carried over from another loyalty system (Odoo's loyalty cards,
// docs/MIGRATION.md) enter the ledger here, in the same shapes as points
// earned by orders, so that FEFO spending, expiry, returns and Reconcile
// treat them like any other points:
//
//   - an opening balance is a lot (lot_id chosen by the caller, derived
//     from the source record so that importing twice adds nothing) with an
//     earn entry, after paying the account's debt first, exactly like
//     points an order earns;
//   - a true-up brings a customer's spendable balance to a target (the
//     other system's balance at cut-over): a new lot with an earn entry when
//     it is below, clawback entries taken first-expiring-first from the
//     spendable lots when it is above; a debt is paid off (debt_payment),
//     since the other system knows none.
//
// Each writes its entries under its own id as event_id; an id whose entries
// exist is left alone, which is what makes both idempotent. Both take the
// customers' account locks in the global order of LockCustomers, so they
// run safely beside the order workers.

// ErrBadOpening: an opening lot or true-up the ledger refuses (no id, no
// customer, points not positive, a negative target).
var ErrBadOpening = errors.New("ledger: invalid opening balance")

// OpeningLot is one balance carried over as a lot.
type OpeningLot struct {
	// LotID is the lot's id and its entries' event_id: the same source
	// record must always give the same id.
	LotID      string
	CustomerID string
	// Source names the record the balance comes from; it is stored as the
	// lot's order_id (e.g. odoo1:loyalty.card:42).
	Source string
	// At is when the balance is opened: the lot's earned_at and
	// available_at, and the account's opened_at when it has none.
	At        time.Time
	ExpiresAt *time.Time // nil: never expires
	Points    dec.Decimal
}

// OpeningOutcome says what OpenLots did with one lot.
type OpeningOutcome struct {
	LotID string
	// Opened is false when the lot's entries existed already (imported
	// before): nothing was written.
	Opened bool
	// DebtPaid is the part of the points that paid the account's debt; the
	// lot holds the rest.
	DebtPaid dec.Decimal
}

// OpenLots writes opening lots in tx, in the order given. Lots whose id
// was imported before are left as they are.
func OpenLots(ctx context.Context, tx pgx.Tx, lots []OpeningLot) ([]OpeningOutcome, error) {
	var customers, lotIDs []string
	for _, l := range lots {
		if l.LotID == "" || l.CustomerID == "" || l.Source == "" || l.Points.Sign() <= 0 {
			return nil, fmt.Errorf("%w: lot %q of customer %q has %s points", ErrBadOpening, l.LotID, l.CustomerID, l.Points)
		}
		customers = append(customers, l.CustomerID)
		lotIDs = append(lotIDs, l.LotID)
	}
	if len(lots) == 0 {
		return nil, nil
	}
	st, err := readOpeningState(ctx, tx, customers, lotIDs)
	if err != nil {
		return nil, err
	}
	w := &openingWrites{}
	out := make([]OpeningOutcome, len(lots))
	for i, l := range lots {
		out[i] = OpeningOutcome{LotID: l.LotID, DebtPaid: dec.Zero}
		if st.done[l.LotID] {
			continue
		}
		st.done[l.LotID] = true
		out[i].Opened = true
		at := pgTime(l.At)
		debt := st.debt[l.CustomerID]
		paid := dec.Min(debt, l.Points)
		if paid.Sign() > 0 {
			st.debt[l.CustomerID] = dec.Sub(debt, paid)
			w.entry(l.CustomerID, kindDebtPayment, paid, "", l.Source, l.LotID, at)
			out[i].DebtPaid = paid
		}
		if rest := dec.Sub(l.Points, paid); rest.Sign() > 0 {
			w.lot(&lot{ID: l.LotID, CustomerID: l.CustomerID, OrderID: l.Source, EarnedAt: at, AvailableAt: at,
				ExpiresAt: pgTimePtr(l.ExpiresAt), Original: rest, Remaining: rest})
			w.entry(l.CustomerID, kindEarn, rest, l.LotID, l.Source, l.LotID, at)
		}
		w.open(l.CustomerID, st.debt[l.CustomerID], at)
	}
	return out, w.run(ctx, tx)
}

// TrueUp is a customer's balance to reach.
type TrueUp struct {
	// ID is the adjustment's event_id, and the id of the lot it opens when
	// the balance is below Target: derive it from the source record and
	// the cut-over, so that running the true-up twice adjusts once.
	ID         string
	CustomerID string
	Source     string // stored as the order_id of the lot and the entries
	// At is the instant of the comparison: lots spendable at At count,
	// and a new lot is earned and available at At.
	At        time.Time
	ExpiresAt *time.Time // of a new lot; nil: never expires
	Target    dec.Decimal
}

// TrueUpOutcome says what TrueUps did with one customer.
type TrueUpOutcome struct {
	ID string
	// Applied is true when entries were written: false when they existed
	// already, or when the balance was the target and there was no debt.
	Applied bool
	// Before is the spendable balance at At before the adjustment (when
	// applied), Delta what was added (positive) or taken (negative), and
	// DebtCleared the debt paid off.
	Before, Delta, DebtCleared dec.Decimal
}

// TrueUps adjusts each customer's spendable balance at At to its Target,
// in tx. A customer appears at most once.
func TrueUps(ctx context.Context, tx pgx.Tx, adjs []TrueUp) ([]TrueUpOutcome, error) {
	var customers, adjIDs []string
	for _, a := range adjs {
		if a.ID == "" || a.CustomerID == "" || a.Source == "" || a.Target.Sign() < 0 {
			return nil, fmt.Errorf("%w: true-up %q of customer %q to %s points", ErrBadOpening, a.ID, a.CustomerID, a.Target)
		}
		if slices.Contains(customers, a.CustomerID) {
			return nil, fmt.Errorf("%w: customer %q is trued up twice", ErrBadOpening, a.CustomerID)
		}
		customers = append(customers, a.CustomerID)
		adjIDs = append(adjIDs, a.ID)
	}
	if len(adjs) == 0 {
		return nil, nil
	}
	st, err := readOpeningState(ctx, tx, customers, adjIDs)
	if err != nil {
		return nil, err
	}
	lots, err := readLots(ctx, tx, customers)
	if err != nil {
		return nil, err
	}
	w := &openingWrites{}
	out := make([]TrueUpOutcome, len(adjs))
	for i, a := range adjs {
		out[i] = TrueUpOutcome{ID: a.ID, Before: dec.Zero, Delta: dec.Zero, DebtCleared: dec.Zero}
		if st.done[a.ID] {
			continue
		}
		at := pgTime(a.At)
		entries := len(w.entryKinds)
		if debt := st.debt[a.CustomerID]; debt.Sign() > 0 {
			w.entry(a.CustomerID, kindDebtPayment, debt, "", a.Source, a.ID, at)
			out[i].DebtCleared = debt
		}
		mine := lots[a.CustomerID]
		sortFEFO(mine)
		before := balanceAt(mine, at)
		out[i].Before = before
		switch diff := dec.Sub(a.Target, before); diff.Sign() {
		case 1:
			w.lot(&lot{ID: a.ID, CustomerID: a.CustomerID, OrderID: a.Source, EarnedAt: at, AvailableAt: at,
				ExpiresAt: pgTimePtr(a.ExpiresAt), Original: diff, Remaining: diff})
			w.entry(a.CustomerID, kindEarn, diff, a.ID, a.Source, a.ID, at)
			out[i].Delta = diff
		case -1:
			takes, _ := consumeFEFO(mine, at, diff.Neg())
			for _, tk := range takes {
				w.entry(a.CustomerID, kindClawback, tk.Amount, tk.Lot.ID, a.Source, a.ID, at)
				w.delta(tk.Lot.ID, tk.Amount.Neg())
			}
			out[i].Delta = diff
		}
		if out[i].Applied = len(w.entryKinds) > entries; out[i].Applied {
			w.open(a.CustomerID, dec.Zero, at)
		}
	}
	return out, w.run(ctx, tx)
}

// openingState is what the writes depend on, read with the locks held.
type openingState struct {
	debt map[string]dec.Decimal
	done map[string]bool // ids whose entries exist
}

// readOpeningState locks the customers (creating their accounts) and reads
// their debts and which of ids were written before.
func readOpeningState(ctx context.Context, tx pgx.Tx, customers, ids []string) (*openingState, error) {
	st := &openingState{debt: map[string]dec.Decimal{}, done: map[string]bool{}}
	b := &pgx.Batch{}
	queueLockCustomers(b, sortedUnique(customers))
	b.Queue(`SELECT customer_id, debt FROM accounts WHERE customer_id = ANY($1)`, customers).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id string
			var debt dec.Decimal
			if err := rows.Scan(&id, &debt); err != nil {
				return err
			}
			st.debt[id] = debt
		}
		return rows.Err()
	})
	b.Queue(`SELECT DISTINCT event_id FROM ledger_entries WHERE customer_id = ANY($1) AND event_id = ANY($2)`, customers, ids).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var id string
				if err := rows.Scan(&id); err != nil {
					return err
				}
				st.done[id] = true
			}
			return rows.Err()
		})
	// A lot of that id from elsewhere (an order's event id) would collide.
	b.Queue(`SELECT lot_id FROM point_lots WHERE lot_id = ANY($1)`, ids).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			st.done[id] = true
		}
		return rows.Err()
	})
	return st, runBatch(ctx, tx, b, "read opening state")
}

// readLots reads the customers' lots with points left.
func readLots(ctx context.Context, tx pgx.Tx, customers []string) (map[string][]*lot, error) {
	rows, err := tx.Query(ctx, `SELECT `+lotColumns+` FROM point_lots WHERE customer_id = ANY($1) AND remaining > 0`, customers)
	if err != nil {
		return nil, dbErr("read lots", err)
	}
	lots, err := pgx.CollectRows(rows, scanLot)
	if err != nil {
		return nil, dbErr("read lots", err)
	}
	out := map[string][]*lot{}
	for _, l := range lots {
		out[l.CustomerID] = append(out[l.CustomerID], l)
	}
	return out, nil
}

// openingWrites collects the rows of OpenLots and TrueUps, written in one
// round trip.
type openingWrites struct {
	lots []*lot

	entryCustomers, entryKinds, entryLots, entryOrders, entryEvents []string
	entryAmounts                                                    []dec.Decimal
	entryAt                                                         []time.Time

	deltaLots   []string
	deltaAmount []dec.Decimal

	accounts []string
	debts    []dec.Decimal
	opened   []time.Time
}

func (w *openingWrites) lot(l *lot) { w.lots = append(w.lots, l) }

func (w *openingWrites) entry(customer, kind string, amount dec.Decimal, lotID, orderID, eventID string, at time.Time) {
	w.entryCustomers = append(w.entryCustomers, customer)
	w.entryKinds = append(w.entryKinds, kind)
	w.entryAmounts = append(w.entryAmounts, amount)
	w.entryLots = append(w.entryLots, lotID)
	w.entryOrders = append(w.entryOrders, orderID)
	w.entryEvents = append(w.entryEvents, eventID)
	w.entryAt = append(w.entryAt, at)
}

func (w *openingWrites) delta(lotID string, d dec.Decimal) {
	w.deltaLots = append(w.deltaLots, lotID)
	w.deltaAmount = append(w.deltaAmount, d)
}

// open sets the account's debt and, when it has none yet, its opened_at:
// a customer with an opening balance is a customer the engine knows.
func (w *openingWrites) open(customer string, debt dec.Decimal, at time.Time) {
	if i := slices.Index(w.accounts, customer); i >= 0 {
		w.debts[i] = debt
		return
	}
	w.accounts = append(w.accounts, customer)
	w.debts = append(w.debts, debt)
	w.opened = append(w.opened, at)
}

func (w *openingWrites) run(ctx context.Context, tx pgx.Tx) error {
	b := &pgx.Batch{}
	for _, l := range w.lots {
		queueNewLot(b, l)
	}
	if len(w.deltaLots) > 0 {
		b.Queue(`
			UPDATE point_lots l SET remaining = l.remaining + d.delta
			FROM (SELECT id, sum(delta) AS delta FROM unnest($1::text[], $2::numeric[]) AS u(id, delta) GROUP BY id) d
			WHERE l.lot_id = d.id`, w.deltaLots, decArray(w.deltaAmount))
	}
	if len(w.entryKinds) > 0 {
		b.Queue(`
			INSERT INTO ledger_entries (customer_id, kind, amount, lot_id, order_id, event_id, occurred_at)
			SELECT e.customer_id, e.kind, e.amount, NULLIF(e.lot_id, ''), e.order_id, e.event_id, e.at
			FROM unnest($1::text[], $2::text[], $3::numeric[], $4::text[], $5::text[], $6::text[], $7::timestamptz[])
			     WITH ORDINALITY AS e(customer_id, kind, amount, lot_id, order_id, event_id, at, n)
			ORDER BY e.n`,
			w.entryCustomers, w.entryKinds, decArray(w.entryAmounts), w.entryLots, w.entryOrders, w.entryEvents, w.entryAt)
	}
	if len(w.accounts) > 0 {
		b.Queue(`
			UPDATE accounts a SET debt = u.debt, opened_at = COALESCE(a.opened_at, u.opened_at)
			FROM unnest($1::text[], $2::numeric[], $3::timestamptz[]) AS u(id, debt, opened_at)
			WHERE a.customer_id = u.id`, w.accounts, decArray(w.debts), w.opened)
	}
	return runBatch(ctx, tx, b, "write opening balances")
}
