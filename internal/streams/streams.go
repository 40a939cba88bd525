// Package streams creates or updates, at every start, the JetStream streams
// and durable consumers of SPEC §2, so that a fresh NATS server and an
// upgraded engine converge to the same configuration without an operator.
package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/promoengine/promoengine/pkg/events"
)

// Options tune retention, replication and partitioning.
type Options struct {
	// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id. At least
	// two minutes (SPEC), so a retried publish is recognised.
	DuplicateWindow time.Duration
	// OrdersMaxAge keeps order events this long so they can be replayed.
	OrdersMaxAge time.Duration
	// ResultsMaxAge keeps result events this long.
	ResultsMaxAge time.Duration
	// Replicas of every stream (PROMO_STREAM_REPLICAS): 1 on a single
	// server, 3 on a three-server cluster so that losing one loses nothing.
	Replicas int
	// Partitions is how many partitions POS_ORDERS spreads keyed events
	// over (PROMO_PARTITIONS). Chosen once: see CheckPartitions.
	Partitions int
}

// DefaultPartitions is PROMO_PARTITIONS' default: enough for a few nodes
// to share, few enough that an idle engine's pulls cost nothing.
const DefaultPartitions = 16

// DefaultOptions are what `run` and `dev` use.
func DefaultOptions() Options {
	return Options{
		DuplicateWindow: 10 * time.Minute,
		OrdersMaxAge:    90 * 24 * time.Hour,
		ResultsMaxAge:   30 * 24 * time.Hour,
		Replicas:        1,
		Partitions:      DefaultPartitions,
	}
}

// ErrPartitionsChanged is returned by Ensure when POS_ORDERS already
// partitions into another number of partitions than asked.
var ErrPartitionsChanged = errors.New("streams: POS_ORDERS is partitioned differently")

// Ensure creates or updates POS_ORDERS, PROMO_RESULTS and PROMO_DLQ.
//
//   - POS_ORDERS keeps every order event (limits retention, file storage) for
//     OrdersMaxAge so `replay` can reprocess history. It takes the bare SPEC
//     subjects (pos.orders.<kind>, read by the keyer) and keyed ones
//     (pos.orders.<kind>.<token>), which it rewrites on arrival to
//     pos.orders.<kind>.<partition>.<token> with NATS's partition()
//     function, so each partition's consumer sees its keys' events in stream
//     order. Any kind is taken, so an event published to a misspelt subject
//     is stored and dead-lettered instead of vanishing.
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
	if o.Partitions < 1 {
		o.Partitions = DefaultPartitions
	}
	if err := CheckPartitions(ctx, js, s, o.Partitions); err != nil {
		return err
	}
	src, dest := s.PartitionTransform(o.Partitions)
	cfgs := []jetstream.StreamConfig{
		{
			Name:             s.StreamOrders(),
			Description:      "Order events from Odoo and promoengine publish (SPEC §3)",
			Subjects:         []string{s.OrdersUnkeyed(), s.OrdersKeyedIn()},
			SubjectTransform: &jetstream.SubjectTransformConfig{Source: src, Destination: dest},
			Storage:          jetstream.FileStorage,
			Retention:        jetstream.LimitsPolicy,
			Discard:          jetstream.DiscardOld,
			MaxAge:           o.OrdersMaxAge,
			MaxMsgSize:       events.MaxEventBytes + 64*1024,
			Duplicates:       o.DuplicateWindow,
			Replicas:         o.Replicas,
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

// CheckPartitions refuses a number of partitions other than the one
// POS_ORDERS already uses. Changing it while events wait in the old
// partitions would let a key's new events overtake its old ones; the
// procedure is in docs/DEPLOY.md.
func CheckPartitions(ctx context.Context, js jetstream.JetStream, s events.Subjects, n int) error {
	st, err := js.Stream(ctx, s.StreamOrders())
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("streams: look up %s: %w", s.StreamOrders(), err)
	}
	tr := st.CachedInfo().Config.SubjectTransform
	if tr == nil {
		return nil // an engine from before partitioning: see EnsureOrderConsumers
	}
	if _, want := s.PartitionTransform(n); tr.Destination != want {
		return fmt.Errorf("%w: it uses the transform %q, PROMO_PARTITIONS=%d asks for %q (see docs/DEPLOY.md, \"Changing the number of partitions\")",
			ErrPartitionsChanged, tr.Destination, n, want)
	}
	return nil
}
