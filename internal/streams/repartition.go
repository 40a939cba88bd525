package streams

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/promoengine/promoengine/pkg/events"
)

// Errors of Repartition; each says what the operator must do first.
var (
	// ErrNotDrained: an order consumer still has events to deliver or to
	// have acknowledged.
	ErrNotDrained = errors.New("streams: the order consumers are not drained")
	// ErrIntakeNotStopped: events arrived while the partitioning changed.
	ErrIntakeNotStopped = errors.New("streams: events arrived while the partitions changed")
)

// RepartitionReport says what Repartition did.
type RepartitionReport struct {
	From, To int
	// StartSeq is the first stream sequence the new partition consumers
	// deliver (everything before it was processed).
	StartSeq uint64
	// Deleted are the old partition consumers.
	Deleted []string
}

// Repartition changes the number of partitions of POS_ORDERS to n. It must
// run with no engine consuming and no event arriving (docs/DEPLOY.md,
// "Changing the number of partitions"): a key's events waiting in an old
// partition would otherwise be overtaken by its new ones in a new
// partition. It checks what it can check — every order consumer has
// nothing pending nor unacknowledged, and the stream's last sequence does
// not move while the transform changes (else the change is undone) — then
// replaces the partition consumers with n new ones that start after the
// last event, which every old consumer has processed.
func Repartition(ctx context.Context, js jetstream.JetStream, s events.Subjects, n int, t Timing, maxAckPending int) (*RepartitionReport, error) {
	st, err := js.Stream(ctx, s.StreamOrders())
	if err != nil {
		return nil, fmt.Errorf("streams: look up %s: %w", s.StreamOrders(), err)
	}
	cfg := st.CachedInfo().Config
	rep := &RepartitionReport{From: transformPartitions(cfg.SubjectTransform), To: n}
	src, dest := s.PartitionTransform(n)
	if cfg.SubjectTransform != nil && cfg.SubjectTransform.Destination == dest {
		return rep, nil
	}
	var old []string
	var busy []string
	names := st.ConsumerNames(ctx)
	for name := range names.Name() {
		if name != KeyerConsumer && name != LegacyOrdersConsumer && !strings.HasPrefix(name, "promo-orders-") {
			continue
		}
		c, err := st.Consumer(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("streams: consumer %s: %w", name, err)
		}
		info := c.CachedInfo()
		if info.NumPending > 0 || info.NumAckPending > 0 || info.NumRedelivered > 0 {
			busy = append(busy, fmt.Sprintf("%s (%d pending, %d unacknowledged)", name, info.NumPending, info.NumAckPending))
		}
		if name != KeyerConsumer {
			old = append(old, name)
		}
	}
	if err := names.Err(); err != nil {
		return nil, fmt.Errorf("streams: list consumers of %s: %w", s.StreamOrders(), err)
	}
	if len(busy) > 0 {
		return nil, fmt.Errorf("%w: %s; run the engines until `promoengine status` shows no lag, with intake stopped, then stop them", ErrNotDrained, strings.Join(busy, ", "))
	}
	before, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	prev := cfg.SubjectTransform
	cfg.SubjectTransform = &jetstream.SubjectTransformConfig{Source: src, Destination: dest}
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return nil, fmt.Errorf("streams: update %s: %w", s.StreamOrders(), err)
	}
	after, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	if after.State.LastSeq != before.State.LastSeq {
		cfg.SubjectTransform = prev
		if _, uerr := js.UpdateStream(ctx, cfg); uerr != nil {
			return nil, fmt.Errorf("%w (sequence %d to %d) and the change could not be undone: %v", ErrIntakeNotStopped, before.State.LastSeq, after.State.LastSeq, uerr)
		}
		return nil, fmt.Errorf("%w (sequence %d to %d); the change was undone: stop every publisher and try again", ErrIntakeNotStopped, before.State.LastSeq, after.State.LastSeq)
	}
	rep.StartSeq = before.State.LastSeq + 1
	for _, name := range old {
		if err := js.DeleteConsumer(ctx, s.StreamOrders(), name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return rep, fmt.Errorf("streams: delete %s: %w", name, err)
		}
		rep.Deleted = append(rep.Deleted, name)
	}
	for _, c := range OrderConsumerConfigs(s, n, t, maxAckPending) {
		if c.Durable == KeyerConsumer {
			continue
		}
		c.DeliverPolicy, c.OptStartSeq = jetstream.DeliverByStartSequencePolicy, rep.StartSeq
		if _, err := js.CreateOrUpdateConsumer(ctx, s.StreamOrders(), c); err != nil {
			return rep, fmt.Errorf("streams: create %s: %w", c.Durable, err)
		}
	}
	return rep, nil
}

// transformPartitions reads N back from a partition transform (0 when
// there is none).
func transformPartitions(tr *jetstream.SubjectTransformConfig) int {
	if tr == nil {
		return 0
	}
	var n, w int
	i := strings.Index(tr.Destination, "{{partition(")
	if i < 0 {
		return 0
	}
	if _, err := fmt.Sscanf(tr.Destination[i:], "{{partition(%d,%d)}}", &n, &w); err != nil {
		return 0
	}
	return n
}
