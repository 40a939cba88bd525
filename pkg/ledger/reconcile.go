package ledger

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/promoengine/promoengine/pkg/dec"
)

// Reconcile checks that a customer's lots agree with the journal: for every
// lot, remaining = earn − redeem − expire − clawback + restore of its
// entries (so the sums over all lots agree too), and the account's debt =
// debt − debt_payment entries. It returns an error wrapping ErrReconcile
// naming every disagreement, or nil.
func Reconcile(ctx context.Context, db DB, customerID string) error {
	var problems []string
	b := &pgx.Batch{}
	b.Queue(`
		SELECT l.lot_id, l.remaining, COALESCE(e.net, 0)
		FROM point_lots l
		LEFT JOIN (
			SELECT lot_id, sum(CASE WHEN kind IN ('earn', 'restore') THEN amount ELSE -amount END) AS net
			FROM ledger_entries
			WHERE customer_id = $1 AND lot_id IS NOT NULL AND kind IN ('earn', 'restore', 'redeem', 'expire', 'clawback')
			GROUP BY lot_id
		) e ON e.lot_id = l.lot_id
		WHERE l.customer_id = $1
		ORDER BY l.lot_id`, customerID).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id string
			var remaining, net dec.Decimal
			if err := rows.Scan(&id, &remaining, &net); err != nil {
				return err
			}
			if !remaining.Equal(net) {
				problems = append(problems, fmt.Sprintf("lot %s: remaining %s but its entries give %s", id, remaining, net))
			}
		}
		return rows.Err()
	})
	b.Queue(`
		SELECT COALESCE((SELECT sum(remaining) FROM point_lots WHERE customer_id = $1), 0),
		       COALESCE(sum(CASE WHEN kind IN ('earn', 'restore') THEN amount
		                         WHEN kind IN ('redeem', 'expire', 'clawback') THEN -amount END), 0),
		       COALESCE((SELECT debt FROM accounts WHERE customer_id = $1), 0),
		       COALESCE(sum(CASE kind WHEN 'debt' THEN amount WHEN 'debt_payment' THEN -amount END), 0)
		FROM ledger_entries WHERE customer_id = $1`, customerID).QueryRow(func(row pgx.Row) error {
		var remaining, net, debt, debtNet dec.Decimal
		if err := row.Scan(&remaining, &net, &debt, &debtNet); err != nil {
			return err
		}
		if !remaining.Equal(net) {
			problems = append(problems, fmt.Sprintf("Σ remaining %s ≠ earned − redeemed − expired − clawed back + restored = %s", remaining, net))
		}
		if !debt.Equal(debtNet) {
			problems = append(problems, fmt.Sprintf("debt %s ≠ Σ debt − Σ debt payments = %s", debt, debtNet))
		}
		return nil
	})
	if err := runBatch(ctx, db, b, "reconcile "+customerID); err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: customer %s: %s", ErrReconcile, customerID, strings.Join(problems, "; "))
	}
	return nil
}
