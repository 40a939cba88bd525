package odoo

import (
	"context"
	"time"
)

// ChangedOrder is a pos.order found by ChangedOrders.
type ChangedOrder struct {
	ID        int64
	WriteDate time.Time
}

// changedOrdersPage is how many orders one search_read returns: ids and a
// date each, a few tens of kilobytes.
const changedOrdersPage = 500

// ChangedOrders calls fn with the pos.orders in a publishable state (paid,
// done, invoiced) whose write_date is at or after since and, when until is
// not zero, before until — oldest write first, a page at a time.
//
// write_date is the start of the transaction that wrote the order (Odoo
// stamps records with the transaction's timestamp), so an order committed
// by a long transaction — a POS syncing many orders at once — carries a
// write_date older than its commit: callers look back with an overlap.
func ChangedOrders(ctx context.Context, c *Client, since, until time.Time, fn func([]ChangedOrder) error) error {
	domain := []any{
		[]any{"state", "in", PublishableStates},
		[]any{"write_date", ">=", FormatDatetime(since)},
	}
	if !until.IsZero() {
		domain = append(domain, []any{"write_date", "<", FormatDatetime(until)})
	}
	for offset := 0; ; offset += changedOrdersPage {
		recs, err := c.SearchRead(ctx, "pos.order", domain, []string{"write_date"},
			map[string]any{"order": "write_date asc, id asc", "limit": changedOrdersPage, "offset": offset})
		if err != nil {
			return err
		}
		page := make([]ChangedOrder, 0, len(recs))
		for _, r := range recs {
			w, err := r.Datetime("write_date")
			if err != nil {
				return err
			}
			page = append(page, ChangedOrder{ID: r.ID(), WriteDate: w})
		}
		if len(page) > 0 {
			if err := fn(page); err != nil {
				return err
			}
		}
		if len(recs) < changedOrdersPage {
			return nil
		}
	}
}

// FormatDatetime writes t as Odoo stores datetimes: UTC, to the second.
func FormatDatetime(t time.Time) string { return t.UTC().Format(datetimeLayout) }

// OrderEventIDs are the ids of the events an order gives in the usual
// cases — its sale and its return of one original order — to ask the
// inbox whether the engine has processed it. (A refund of lines of several
// orders has per-original ids; such an order is simply read back again.)
func OrderEventIDs(db string, orderID int64) []string {
	return []string{PaidEventID(db, orderID), ReturnedEventID(db, orderID, 0, false)}
}
