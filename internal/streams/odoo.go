package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/promoengine/promoengine/pkg/events"
)

// OdooReadbackConsumer is the durable consumer of the Odoo read-back worker
// on PROMO_ODOO_ORDERS.
const OdooReadbackConsumer = "promo-odoo-readback"

// OdooOrdersMaxAge keeps recorded order ids for a week: long enough to see
// where an order came from when a store asks, short enough to stay small.
const OdooOrdersMaxAge = 7 * 24 * time.Hour

// EnsureOdoo creates or updates the stream of recorded Odoo order ids
// (PROMO_ODOO_ORDERS) and the reconciler's key-value bucket. Only an engine
// that talks to Odoo needs them.
//
//   - File storage, limits retention for OdooOrdersMaxAge: an order id is
//     stored before the webhook answers, so it must survive a restart.
//   - De-duplicated by Nats-Msg-Id "odoo:<db>:pos.order:<id>": a webhook
//     fired twice, and the reconciler finding an order the webhook already
//     recorded, store it once within the duplicate window.
func EnsureOdoo(ctx context.Context, js jetstream.JetStream, s events.Subjects, o Options) error {
	if o.DuplicateWindow < 2*time.Minute {
		o.DuplicateWindow = 2 * time.Minute
	}
	if o.Replicas < 1 {
		o.Replicas = 1
	}
	cfg := jetstream.StreamConfig{
		Name:        s.StreamOdooOrders(),
		Description: "Odoo order ids recorded by the webhook, the reconciler and odoo sync, to be read back",
		Subjects:    []string{s.OdooOrders()},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      OdooOrdersMaxAge,
		MaxMsgSize:  64 * 1024,
		Duplicates:  o.DuplicateWindow,
		Replicas:    o.Replicas,
	}
	if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("streams: ensure %s: %w", cfg.Name, err)
	}
	_, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      s.OdooStateBucket(),
		Description: "Odoo reconciler: cursor and lease",
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
	})
	if err != nil {
		return fmt.Errorf("streams: ensure bucket %s: %w", s.OdooStateBucket(), err)
	}
	return nil
}

// OdooReadbackConsumerConfig is the read-back worker's durable consumer:
//
//   - DeliverAll, explicit acks, sent once the order's events are stored
//     in POS_ORDERS (or it was dead-lettered or ignored).
//   - MaxDeliver unlimited: the worker waits for Odoo with NakWithDelay
//     and decides itself, by the time since the order was recorded, when
//     to give up and dead-letter; the server never drops a recorded order.
//   - AckWait covers one read-back (a handful of JSON-RPC calls, each
//     bounded by PROMO_ODOO_TIMEOUT); a crashed worker's orders come back
//     after it.
func OdooReadbackConsumerConfig(s events.Subjects, ackWait time.Duration, maxAckPending int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       OdooReadbackConsumer,
		Description:   "promoengine Odoo read-back: recorded order ids → order events",
		FilterSubject: s.OdooOrders(),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1,
		MaxAckPending: maxAckPending,
		MaxWaiting:    64,
	}
}

// ErrOdooStreamMissing: PROMO_ODOO_ORDERS does not exist; an engine with
// PROMO_ODOO_URL set creates it at start.
var ErrOdooStreamMissing = errors.New("streams: the Odoo order stream does not exist")
