package ops

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/workers"
)

// StatusReport is the state of the pipeline at one moment.
type StatusReport struct {
	Streams []StreamStatus `json:"streams"`
	// Nodes are the engine processes alive, with the order consumers each
	// pulls (docs/DEPLOY.md).
	Nodes       []NodeStatus  `json:"nodes"`
	Outbox      *OutboxStatus `json:"outbox"`
	DeadLetters []CodeCount   `json:"dead_letters"`
	// Problems lists what could not be read (a missing stream, an
	// unreachable database); the rest of the report is still filled.
	Problems []string `json:"problems,omitempty"`
}

// StreamStatus is one stream and its consumers.
type StreamStatus struct {
	Name      string           `json:"name"`
	Missing   bool             `json:"missing,omitempty"`
	Messages  uint64           `json:"messages"`
	Bytes     uint64           `json:"bytes"`
	FirstSeq  uint64           `json:"first_seq"`
	LastSeq   uint64           `json:"last_seq"`
	FirstTime *time.Time       `json:"first_time,omitempty"`
	LastTime  *time.Time       `json:"last_time,omitempty"`
	Consumers []ConsumerStatus `json:"consumers"`
}

// ConsumerStatus is one consumer's lag.
type ConsumerStatus struct {
	Name string `json:"name"`
	// Pending messages are in the stream and not yet delivered; AckPending
	// were delivered and are not yet acknowledged; Redelivered were
	// delivered more than once and are not yet acknowledged.
	Pending     uint64     `json:"pending"`
	AckPending  int        `json:"ack_pending"`
	Redelivered int        `json:"redelivered"`
	Waiting     int        `json:"waiting"`
	LastActive  *time.Time `json:"last_active,omitempty"`
}

// NodeStatus is one live engine process.
type NodeStatus struct {
	ID string `json:"id"`
	workers.NodeInfo
}

// OutboxStatus is the backlog of results committed but not yet published.
type OutboxStatus struct {
	Backlog       int64   `json:"backlog"`
	OldestSeconds float64 `json:"oldest_seconds"`
}

// Status gathers the streams of SPEC §2 with their consumers, the outbox
// backlog (Outbox stays nil when the Operator has no pool) and the dead
// letters by code. What
// cannot be read is listed in Problems rather than failing the whole
// report: status is what an operator runs when something is wrong.
func (o *Operator) Status(ctx context.Context) (*StatusReport, error) {
	rep := &StatusReport{Streams: []StreamStatus{}, DeadLetters: []CodeCount{}}
	for _, name := range []string{o.subjects.StreamOrders(), o.subjects.StreamResults(), o.subjects.StreamDLQ()} {
		st, err := o.streamStatus(ctx, name)
		if err != nil {
			rep.Problems = append(rep.Problems, err.Error())
		}
		rep.Streams = append(rep.Streams, st)
	}
	nodes, err := o.nodes(ctx)
	if err != nil {
		rep.Problems = append(rep.Problems, err.Error())
	}
	rep.Nodes = nodes
	// The Odoo order ids waiting for read-back, when the engine talks to
	// Odoo (the stream exists only then).
	if st, err := o.streamStatus(ctx, o.subjects.StreamOdooOrders()); err == nil {
		rep.Streams = append(rep.Streams, st)
	}
	if o.pool != nil {
		n, oldest, err := ledger.OutboxBacklog(ctx, o.pool)
		if err != nil {
			rep.Problems = append(rep.Problems, err.Error())
		} else {
			rep.Outbox = &OutboxStatus{Backlog: n, OldestSeconds: oldest.Seconds()}
		}
	}
	counts, err := o.DeadLettersByCode(ctx)
	switch {
	case errors.Is(err, ErrStreamMissing):
		// Already reported with the streams.
	case err != nil:
		rep.Problems = append(rep.Problems, fmt.Sprintf("dead letters: %v", err))
	default:
		rep.DeadLetters = sortedCounts(counts)
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	return rep, nil
}

// nodes reads the membership bucket; no bucket means no engine ran the
// order workers yet.
func (o *Operator) nodes(ctx context.Context) ([]NodeStatus, error) {
	out := []NodeStatus{}
	kv, err := o.js.KeyValue(ctx, workers.MembersBucket(o.subjects))
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("nodes: %w", err)
	}
	keys, err := kv.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return out, nil
	}
	if err != nil {
		return out, fmt.Errorf("nodes: %w", err)
	}
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if err != nil {
			continue // expired between the listing and now
		}
		n := NodeStatus{ID: k}
		_ = json.Unmarshal(e.Value(), &n.NodeInfo)
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b NodeStatus) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

func (o *Operator) streamStatus(ctx context.Context, name string) (StreamStatus, error) {
	st := StreamStatus{Name: name, Consumers: []ConsumerStatus{}}
	stream, err := o.stream(ctx, name)
	if err != nil {
		st.Missing = errors.Is(err, ErrStreamMissing)
		return st, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return st, fmt.Errorf("stream %s: %w", name, err)
	}
	s := info.State
	st.Messages, st.Bytes, st.FirstSeq, st.LastSeq = s.Msgs, s.Bytes, s.FirstSeq, s.LastSeq
	if s.Msgs > 0 {
		first, last := s.FirstTime, s.LastTime
		st.FirstTime, st.LastTime = &first, &last
	}
	lister := stream.ListConsumers(ctx)
	for ci := range lister.Info() {
		cs := ConsumerStatus{Name: ci.Name, Pending: ci.NumPending, AckPending: ci.NumAckPending,
			Redelivered: ci.NumRedelivered, Waiting: ci.NumWaiting}
		if ci.Delivered.Last != nil {
			t := *ci.Delivered.Last
			cs.LastActive = &t
		}
		st.Consumers = append(st.Consumers, cs)
	}
	if err := lister.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
		return st, fmt.Errorf("consumers of %s: %w", name, err)
	}
	slices.SortFunc(st.Consumers, func(a, b ConsumerStatus) int { return cmp.Compare(a.Name, b.Name) })
	return st, nil
}
