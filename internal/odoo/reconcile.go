package odoo

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/promoengine/promoengine/pkg/events"
)

// SeenFunc reports which event ids the engine has processed (the inbox).
type SeenFunc func(ctx context.Context, eventIDs []string) (map[string]bool, error)

// ReconcileOptions say which orders Reconcile looks at.
type ReconcileOptions struct {
	// Since and Until bound the orders' write_date: [Since, Until); a zero
	// Until means up to now.
	Since, Until time.Time
	// Source is recorded with each order (SourceReconciler, SourceSync).
	Source string
	// DryRun lists the orders the engine has not seen without recording
	// them.
	DryRun bool
}

// ReconcileReport is what Reconcile found.
type ReconcileReport struct {
	Examined   int `json:"examined"`   // final orders found in Odoo
	Seen       int `json:"seen"`       // already processed by the engine
	Recorded   int `json:"recorded"`   // recorded for read-back now
	Duplicates int `json:"duplicates"` // recorded already, not yet processed (in flight)
	// Missing are the ids of the orders the engine had not seen (recorded,
	// duplicates, or with DryRun only listed), at most maxListed.
	Missing []int64 `json:"missing,omitempty"`
	// LastWrite is the latest write_date among the orders examined (zero
	// when none): the reconciler's next cursor.
	LastWrite time.Time `json:"last_write,omitzero"`
}

const maxListed = 1000

// Reconcile asks Odoo for the final pos.orders written in the window and
// records, on PROMO_ODOO_ORDERS, every one whose events the engine has not
// processed, so that the read-back worker publishes it. An order already
// recorded (in flight) is a duplicate within the stream's duplicate
// window; one recorded again later is read back and published again, and
// the inbox, keyed by event id, skips what was processed meanwhile.
func Reconcile(ctx context.Context, c *Client, js jetstream.JetStream, subjects events.Subjects, seen SeenFunc, opts ReconcileOptions) (*ReconcileReport, error) {
	rep := &ReconcileReport{}
	if opts.Source == "" {
		opts.Source = SourceReconciler
	}
	db := c.DB()
	err := ChangedOrders(ctx, c, opts.Since, opts.Until, func(page []ChangedOrder) error {
		ids := make([]string, 0, 2*len(page))
		for _, o := range page {
			ids = append(ids, OrderEventIDs(db, o.ID)...)
		}
		processed, err := seen(ctx, ids)
		if err != nil {
			return err
		}
		for _, o := range page {
			rep.Examined++
			if o.WriteDate.After(rep.LastWrite) {
				rep.LastWrite = o.WriteDate
			}
			if anyOf(processed, OrderEventIDs(db, o.ID)) {
				rep.Seen++
				continue
			}
			if len(rep.Missing) < maxListed {
				rep.Missing = append(rep.Missing, o.ID)
			}
			if opts.DryRun {
				continue
			}
			rec, err := RecordOrder(ctx, js, subjects, OrderRef{DB: db, OrderID: o.ID, Source: opts.Source})
			if err != nil {
				return err
			}
			if rec.Duplicate {
				rep.Duplicates++
			} else {
				rep.Recorded++
			}
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("odoo: reconcile: %w", err)
	}
	return rep, nil
}

func anyOf(set map[string]bool, keys []string) bool {
	for _, k := range keys {
		if set[k] {
			return true
		}
	}
	return false
}
