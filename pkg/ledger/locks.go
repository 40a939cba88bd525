package ledger

import (
	"context"
	"errors"
	"slices"

	"github.com/jackc/pgx/v5"
)

// LockCustomers takes the account locks of every customer in ids, in one
// round trip and in one global order (bytewise by id), creating the accounts
// of customers not seen before. A worker that processes a batch of events in
// one transaction calls it first with all the batch's customers: every
// transaction then takes its customer locks in the same order, so two
// batches sharing customers wait for each other instead of deadlocking.
// Process takes each customer's lock again, which costs nothing once held.
func LockCustomers(ctx context.Context, tx pgx.Tx, ids []string) error {
	ids = sortedUnique(ids)
	if len(ids) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	queueLockCustomers(b, ids)
	return runBatch(ctx, tx, b, "lock customers")
}

// queueLockCustomers adds LockCustomers' statements for ids (sorted and
// distinct) to b.
func queueLockCustomers(b *pgx.Batch, ids []string) {
	if len(ids) == 0 {
		return
	}
	// Inserting in sorted order makes waits on concurrent inserts follow the
	// same order as the row locks below.
	b.Queue(`INSERT INTO accounts (customer_id) SELECT id FROM unnest($1::text[]) WITH ORDINALITY AS u(id, n) ORDER BY n
		ON CONFLICT (customer_id) DO NOTHING`, ids)
	b.Queue(`SELECT customer_id FROM accounts WHERE customer_id = ANY($1) ORDER BY customer_id COLLATE "C" FOR UPDATE`, ids)
}

// CustomersOfOrders maps the given order ids to their customers, for the
// worker to route returns and cancellations to their customer's lane and to
// lock that customer up front. Unknown and anonymous orders are left out.
func CustomersOfOrders(ctx context.Context, db DB, orderIDs []string) (map[string]string, error) {
	out := make(map[string]string, len(orderIDs))
	if len(orderIDs) == 0 {
		return out, nil
	}
	rows, err := db.Query(ctx, `SELECT order_id, customer_id FROM processed_orders WHERE order_id = ANY($1) AND customer_id IS NOT NULL`, orderIDs)
	if err != nil {
		return nil, dbErr("customers of orders", err)
	}
	defer rows.Close()
	for rows.Next() {
		var order, customer string
		if err := rows.Scan(&order, &customer); err != nil {
			return nil, dbErr("customers of orders", err)
		}
		out[order] = customer
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr("customers of orders", err)
	}
	return out, nil
}

// SaleOfOrder tells whether the sale of orderID was processed and, if so,
// its customer ("" for an anonymous sale).
func SaleOfOrder(ctx context.Context, db DB, orderID string) (customer string, found bool, err error) {
	var c *string
	err = db.QueryRow(ctx, `SELECT customer_id FROM processed_orders WHERE order_id = $1`, orderID).Scan(&c)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, dbErr("sale of order", err)
	case c != nil:
		return *c, true, nil
	}
	return "", true, nil
}

// sortedUnique returns the distinct non-empty ids in bytewise order (the
// order of COLLATE "C").
func sortedUnique(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if id != "" {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
