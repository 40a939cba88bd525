// Package streams creates or updates, at every start, the JetStream streams
// and durable consumers of SPEC §2, so that a fresh NATS server and an
// upgraded engine converge to the same configuration without an operator.
package streams

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/promoengine/promoengine/pkg/events"
)

// Options tune retention and delivery.
type Options struct {
	// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id. At least
	// two minutes (SPEC), so a retried publish is recognised.
	DuplicateWindow time.Duration
	// OrdersMaxAge keeps order events this long so they can be replayed.
	OrdersMaxAge time.Duration
	// ResultsMaxAge keeps result events this long.
	ResultsMaxAge time.Duration
	// Replicas for clustered NATS (1 on a single server).
	Replicas int
}

// DefaultOptions are what `run` and `dev` use.
func DefaultOptions() Options {
	return Options{
		DuplicateWindow: 10 * time.Minute,
		OrdersMaxAge:    90 * 24 * time.Hour,
		ResultsMaxAge:   30 * 24 * time.Hour,
		Replicas:        1,
	}
}

// Ensure creates or updates POS_ORDERS, PROMO_RESULTS and PROMO_DLQ.
//
//   - POS_ORDERS keeps every order event (limits retention, file storage) for
//     OrdersMaxAge so `replay` can reprocess history; it takes pos.orders.*
//     rather than the three names, so an event published to a misspelt
//     subject is stored and dead-lettered by the worker instead of vanishing.
//   - PROMO_RESULTS keeps results for subscribers, de-duplicated by the
//     result's event_id.
//   - PROMO_DLQ never ages out: a dead letter leaves only by redrive or purge.
func Ensure(ctx context.Context, js jetstream.JetStream, s events.Subjects, o Options) error {
	if o.DuplicateWindow < 2*time.Minute {
		o.DuplicateWindow = 2 * time.Minute
	}
	if o.Replicas < 1 {
		o.Replicas = 1
	}
	cfgs := []jetstream.StreamConfig{
		{
			Name:        s.StreamOrders(),
			Description: "Order events from Odoo and promoengine publish (SPEC §3)",
			Subjects:    []string{s.OrdersAll()},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardOld,
			MaxAge:      o.OrdersMaxAge,
			MaxMsgSize:  events.MaxEventBytes + 64*1024,
			Duplicates:  o.DuplicateWindow,
			Replicas:    o.Replicas,
		},
		{
			Name:        s.StreamResults(),
			Description: "Result events published from the outbox (SPEC §4)",
			Subjects:    []string{s.ResultsAll()},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardOld,
			MaxAge:      o.ResultsMaxAge,
			Duplicates:  o.DuplicateWindow,
			Replicas:    o.Replicas,
		},
		{
			Name:        s.StreamDLQ(),
			Description: "Dead letters: original bytes and headers plus Promo-Error-* headers",
			Subjects:    []string{s.DLQAll()},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardNew, // never push out an unread dead letter
			Duplicates:  o.DuplicateWindow,
			Replicas:    o.Replicas,
		},
	}
	for _, cfg := range cfgs {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("streams: ensure %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// Durable consumer names.
const (
	OrdersConsumer = "promo-orders"
	OdooConsumer   = "promo-odoo"
)

// OrdersConsumerConfig is the durable pull consumer of the order workers.
//
//   - Explicit acks, sent only after the event's transaction committed.
//   - AckWait 30 s: a batch takes milliseconds; 30 s leaves room for a slow
//     database without redelivering work still in progress, and bounds how
//     long the events of a killed worker wait before another takes them.
//   - BackOff grows the redelivery delay of unacknowledged messages (a crashed
//     or stuck worker) so a poison message cannot spin.
//   - MaxDeliver: after that many deliveries the worker dead-letters the
//     event itself (it checks the delivery count), so nothing is dropped by
//     the server silently.
//   - MaxAckPending bounds the events in flight across all processes:
//     enough for every lane of a few processes to fill its batches.
func OrdersConsumerConfig(s events.Subjects, maxDeliver, maxAckPending int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       OrdersConsumer,
		Description:   "promoengine order workers",
		FilterSubject: s.OrdersAll(),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		BackOff:       RedeliveryBackoff(maxDeliver),
		MaxDeliver:    maxDeliver + 1, // one spare so the worker, not the server, has the last word
		MaxAckPending: maxAckPending,
		MaxWaiting:    512,
	}
}

// RedeliveryBackoff is the schedule of redelivery delays, one per delivery
// after the first: 30s, 1m, 2m, 5m then 10m. Its first entry doubles as the
// ack wait.
func RedeliveryBackoff(maxDeliver int) []time.Duration {
	steps := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute}
	out := make([]time.Duration, 0, maxDeliver)
	for i := 0; i < maxDeliver; i++ {
		if i < len(steps) {
			out = append(out, steps[i])
		} else {
			out = append(out, 10*time.Minute)
		}
	}
	return out
}

// EnsureOrdersConsumer creates or updates the order workers' consumer.
func EnsureOrdersConsumer(ctx context.Context, js jetstream.JetStream, s events.Subjects, maxDeliver, maxAckPending int) (jetstream.Consumer, error) {
	c, err := js.CreateOrUpdateConsumer(ctx, s.StreamOrders(), OrdersConsumerConfig(s, maxDeliver, maxAckPending))
	if err != nil {
		return nil, fmt.Errorf("streams: ensure consumer %s: %w", OrdersConsumer, err)
	}
	return c, nil
}
