// Package keying gives each input event the key that orders it among
// others (events.KeyOf) when it is published, so that POS_ORDERS can put it
// in its partition. Every path of the engine that publishes input events —
// POST /v1/events, the Odoo webhook, `promoengine publish`, dead-letter
// redrive and the keyer that keys events published on the bare SPEC
// subjects — asks the same Resolver.
//
// A sale is keyed by its own content. A return or cancellation takes its
// original sale's key, which needs the sale's customer: the Resolver
// remembers the sales it keyed lately, then asks processed_orders. A
// reversal of a sale it cannot find is keyed by its original order (see
// events.KeyOf for what that costs).
package keying

import (
	"context"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
)

// Resolver keys events.
type Resolver struct {
	db    ledger.DB // nil: no lookup (a command without PostgreSQL)
	log   zerolog.Logger
	sales *recent
}

// NewResolver returns a resolver looking sales up in db (may be nil).
func NewResolver(db ledger.DB, log zerolog.Logger) *Resolver {
	return &Resolver{db: db, log: log, sales: newRecent(16_384)}
}

// lookupTimeout bounds the processed_orders lookup of one reversal.
const lookupTimeout = 2 * time.Second

// Key returns ev's key and remembers a sale's for its reversals.
func (r *Resolver) Key(ctx context.Context, ev *events.Event) events.Key {
	if ev.Paid != nil {
		k := events.SaleKey(ev.Paid.CustomerID, ev.Paid.ID)
		if ev.Paid.CustomerID != "" {
			// The first sale of an order id is the one that commits (in
			// stream order); a later one under the same id is refused as a
			// duplicate and must not re-key the first one's reversals.
			r.sales.putFirst(string(ev.Paid.ID), string(ev.Paid.CustomerID))
		}
		return k
	}
	return events.KeyOf(ev, func(orderID events.ID) events.ID {
		return events.ID(r.customerOf(ctx, string(orderID)))
	})
}

// KeyPatiently is Key for a publisher that can wait, the keyer: it keys
// events in stream order, so waiting for a reversal's sale delays the
// events behind it instead of letting them overtake it. A reversal whose
// sale's customer it does not know is looked up until the lookup answers
// (PostgreSQL unreachable: retried, never guessed), and while the sale is
// not processed yet, for up to saleWait: a sale published just before,
// still in flight — the usual case after the keyer moved to another
// process, whose memory of recent sales is empty. Past saleWait the
// reversal is keyed by its order (a return published before its sale).
// It returns ctx's error when ctx ends first.
func (r *Resolver) KeyPatiently(ctx context.Context, ev *events.Event, saleWait time.Duration) (events.Key, error) {
	if ev.Paid != nil || r.db == nil {
		return r.Key(ctx, ev), nil
	}
	orderID := string(ev.ReferencedOrderID())
	if c, ok := r.sales.get(orderID); ok {
		return events.KeyOf(ev, func(events.ID) events.ID { return events.ID(c) }), nil
	}
	start := time.Now()
	wait := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
		c, found, err := ledger.SaleOfOrder(lctx, r.db, orderID)
		cancel()
		switch {
		case err == nil && found:
			if c != "" {
				r.sales.put(orderID, c)
			}
			return events.KeyOf(ev, func(events.ID) events.ID { return events.ID(c) }), nil
		case err == nil && time.Since(start) >= saleWait:
			r.log.Warn().Str("order_id", orderID).Dur("waited", time.Since(start)).
				Msg("the sale of a return or cancellation is not processed; keying it by its order (it waits for its sale)")
			return events.OrderKey(events.ID(orderID)), nil
		case err != nil && ctx.Err() == nil && (attempt == 1 || attempt%20 == 0):
			r.log.Warn().Err(err).Str("order_id", orderID).Int("attempt", attempt).
				Msg("look up the customer of an order to key its reversal; retrying")
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// Subject is the keyed subject ev is published on.
func (r *Resolver) Subject(ctx context.Context, s events.Subjects, ev *events.Event) string {
	return s.KeyedOrderSubject(ev.Type, r.Key(ctx, ev))
}

func (r *Resolver) customerOf(ctx context.Context, orderID string) string {
	if c, ok := r.sales.get(orderID); ok {
		return c
	}
	if r.db == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	c, _, err := ledger.SaleOfOrder(ctx, r.db, orderID)
	if err != nil {
		r.log.Warn().Err(err).Str("order_id", orderID).Msg("look up the customer of an order to key its reversal; keying it by the order")
		return ""
	}
	if c != "" {
		r.sales.put(orderID, c)
	}
	return c
}

// recent remembers the customer of recent sales, bounded, in two
// generations: when the current one is full it becomes the previous one
// and the oldest entries go, which only costs lookups.
type recent struct {
	mu        sync.Mutex
	max       int
	cur, prev map[string]string
}

func newRecent(max int) *recent {
	return &recent{max: max, cur: make(map[string]string), prev: map[string]string{}}
}

func (c *recent) get(k string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.cur[k]; ok {
		return v, true
	}
	v, ok := c.prev[k]
	return v, ok
}

// putFirst is put unless k is known already.
func (c *recent) putFirst(k, v string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.cur[k]; ok {
		return
	}
	if _, ok := c.prev[k]; ok {
		return
	}
	c.putLocked(k, v)
}

func (c *recent) put(k, v string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(k, v)
}

func (c *recent) putLocked(k, v string) {
	if len(c.cur) >= c.max {
		c.prev, c.cur = c.cur, make(map[string]string, c.max)
	}
	c.cur[k] = v
}
