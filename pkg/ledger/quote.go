package ledger

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/rules"
)

// Quote evaluates a paid order exactly as Process would at its occurred_at,
// against the ledger as it is now, and changes nothing: no inbox, no locks,
// no writes, no outbox. Limits are read without locking, so a quote may
// promise a program whose last use another order takes a moment later.
//
// The result has status "quote", or "rejected" with the error when the order
// would be rejected (a till must know before it charges). It carries no
// earned_lot_id, since no lot is created.
func (s *Store) Quote(ctx context.Context, db DB, cat *rules.Catalog, in events.Event) (*events.OrderResult, error) {
	if cat == nil {
		return nil, ErrNoCatalog
	}
	if in.Paid == nil {
		return nil, errors.New("ledger: quote: only a paid order can be quoted")
	}
	if err := checkCurrency(cat, in.Paid); err != nil {
		return nil, err
	}
	t := pgTime(in.OccurredAt)
	var cust *customerState
	if id := string(in.Paid.CustomerID); id != "" {
		b := &pgx.Batch{}
		cust = queueCustomerReads(b, cat, id, t, false)
		queueCouponReads(b, cust, presentedCodes(in.Paid))
		if err := runBatch(ctx, db, b, "read state for quote"); err != nil {
			return nil, err
		}
	}
	plan, err := planPaid(cat, &in, t, cust, &limitsReader{ctx: ctx, db: db, cat: cat, ev: &in})
	if err != nil {
		return nil, fmt.Errorf("ledger: quote: %w", err)
	}
	return plan.result(cat, &in, events.StatusQuote), nil
}
