package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/promoengine/promoengine/pkg/events"
)

// Durable consumer names.
const (
	// LegacyOrdersConsumer is the one consumer of engines from before
	// partitioning; EnsureOrderConsumers starts the partitions where it
	// stopped and deletes it.
	LegacyOrdersConsumer = "promo-orders"
	// KeyerConsumer reads the bare SPEC subjects to key their events.
	KeyerConsumer = "promo-keyer"
	OdooConsumer  = "promo-odoo"
	// OrdersGroup is the priority group every order consumer is pulled in:
	// the server pins each consumer to one process at a time.
	OrdersGroup = "promo"
)

// PartitionConsumer names the consumer of partition p.
func PartitionConsumer(p int) string { return fmt.Sprintf("promo-orders-%02d", p) }

// Timing is the delivery timing of the order consumers and of the processes
// that pull them. One value decides the rest, so that the guarantees
// below hold whatever PROMO_ACK_WAIT is.
type Timing struct {
	// AckWait is how long a delivered message may go without an ack or an
	// InProgress before the server delivers it again (PROMO_ACK_WAIT). A
	// process keeps what it holds alive with InProgress every Heartbeat, so
	// AckWait only decides how soon the messages of a dead process move.
	AckWait time.Duration
}

// DefaultAckWait is PROMO_ACK_WAIT's default.
const DefaultAckWait = 5 * time.Second

func (t Timing) ackWait() time.Duration {
	if t.AckWait <= 0 {
		return DefaultAckWait
	}
	return t.AckWait
}

// Heartbeat is how often a process sends InProgress for what it holds:
// three times per AckWait, so one lost beat never lets a message expire.
func (t Timing) Heartbeat() time.Duration { return t.ackWait() / 3 }

// PullExpiry is the life of one pull request. A process pulls again at
// least this often while it lives, whatever its own backlog, which keeps
// its pin.
func (t Timing) PullExpiry() time.Duration { return 2 * time.Second }

// PinnedTTL is how long the server keeps a consumer pinned to a process
// that stopped pulling: two pull expiries, so that a live process (which
// pulls at least every PullExpiry) never loses its pin, and a dead one's
// partitions move within seconds of the membership noticing. Order across
// the move does not rest on the TTL: the new owner holds what it receives
// (workers/gate.go) until the consumer counts nothing unacknowledged but
// its own — the dead process's messages have then expired (AckWait) and
// been redelivered to it, and they go first, in stream order.
func (t Timing) PinnedTTL() time.Duration { return 2 * t.PullExpiry() }

// OrderConsumerConfig is the durable pull consumer of one partition (or of
// the keyer):
//
//   - Explicit acks, sent only after the event's transaction committed.
//   - AckWait short, no BackOff: held messages are kept alive with
//     InProgress, so redelivery happens only after a process died, and a
//     NakWithDelay waits exactly its delay (a BackOff list would be applied
//     on top of it).
//   - MaxDeliver unlimited: the worker counts deliveries and dead-letters
//     itself, so the server never drops a message silently.
//   - MaxAckPending bounds what one process holds for the partition.
//   - Pinned priority group: one process consumes the partition at a time;
//     see Timing.PinnedTTL for how a takeover keeps stream order.
func OrderConsumerConfig(name, filter string, t Timing, maxAckPending int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:        name,
		Description:    "promoengine order workers",
		FilterSubject:  filter,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        t.ackWait(),
		MaxDeliver:     -1,
		MaxAckPending:  maxAckPending,
		MaxWaiting:     64,
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PriorityGroups: []string{OrdersGroup},
		PinnedTTL:      t.PinnedTTL(),
	}
}

// OrderConsumerConfigs are the keyer's and every partition's consumer
// configurations, keyer first.
func OrderConsumerConfigs(s events.Subjects, partitions int, t Timing, maxAckPending int) []jetstream.ConsumerConfig {
	cfgs := []jetstream.ConsumerConfig{OrderConsumerConfig(KeyerConsumer, s.OrdersUnkeyed(), t, maxAckPending)}
	for p := range partitions {
		cfgs = append(cfgs, OrderConsumerConfig(PartitionConsumer(p), s.Partition(p), t, maxAckPending))
	}
	return cfgs
}

// EnsureOrderConsumers creates or updates the keyer's and every partition's
// consumer. On a stream an engine from before partitioning consumed, new
// consumers start after the old consumer's ack floor (what lies between its
// floor and its last delivery is offered again; the inbox skips what was
// processed) and the old consumer is deleted once all exist.
func EnsureOrderConsumers(ctx context.Context, js jetstream.JetStream, s events.Subjects, partitions int, t Timing, maxAckPending int) error {
	stream := s.StreamOrders()
	var startSeq uint64
	legacy, err := js.Consumer(ctx, stream, LegacyOrdersConsumer)
	switch {
	case err == nil:
		startSeq = legacy.CachedInfo().AckFloor.Stream + 1
	case !errors.Is(err, jetstream.ErrConsumerNotFound):
		return fmt.Errorf("streams: look up %s: %w", LegacyOrdersConsumer, err)
	}
	for _, cfg := range OrderConsumerConfigs(s, partitions, t, maxAckPending) {
		if startSeq > 0 {
			cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, startSeq
		}
		if _, err := EnsureConsumer(ctx, js, stream, cfg); err != nil {
			return err
		}
	}
	if legacy != nil {
		if err := js.DeleteConsumer(ctx, stream, LegacyOrdersConsumer); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("streams: delete %s: %w", LegacyOrdersConsumer, err)
		}
	}
	return nil
}

// EnsureConsumer creates cfg's durable consumer or updates it in place. The
// start position of an existing consumer is kept (the server refuses to
// change it), so a restart never moves a consumer.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	if cur, err := js.Consumer(ctx, stream, cfg.Durable); err == nil {
		old := cur.CachedInfo().Config
		cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = old.DeliverPolicy, old.OptStartSeq, old.OptStartTime
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("streams: look up consumer %s: %w", cfg.Durable, err)
	}
	c, err := js.CreateOrUpdateConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("streams: ensure consumer %s: %w", cfg.Durable, err)
	}
	return c, nil
}
