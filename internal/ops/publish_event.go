package ops

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"

	"github.com/promoengine/promoengine/internal/tracing"
	"github.com/promoengine/promoengine/pkg/events"
)

// orderMsg is the message of an input event as every publisher of
// internal/ops sends it: on the keyed subject of its type and key
// (keying.Resolver), with Nats-Msg-Id the event id (or msgID when given).
func orderMsg(subjects events.Subjects, ev *events.Event, key events.Key, data []byte, msgID string) *nats.Msg {
	msg := &nats.Msg{Subject: subjects.KeyedOrderSubject(ev.Type, key), Data: data, Header: nats.Header{}}
	if msgID == "" {
		msgID = ev.EventID
	}
	msg.Header.Set(jetstream.MsgIDHeader, msgID)
	return msg
}

// PublishEvent publishes one decoded input event to POS_ORDERS as Publish
// does and waits for the acknowledgement. msgID "" uses the event id, so a
// second publish within the duplicate window is stored once; a rebuild
// from Odoo passes a fresh one (the workers' inbox, keyed by event_id,
// still processes the event once).
func (o *Operator) PublishEvent(ctx context.Context, ev *events.Event, data []byte, msgID string) (*jetstream.PubAck, error) {
	msg := orderMsg(o.subjects, ev, o.keys.Key(ctx, ev), data, msgID)
	// The order's trace (a webhook's, through the read-back) goes on in
	// the message headers (internal/tracing).
	ctx, span := tracing.StartPublish(ctx, o.subjects.StreamOrders(), msg.Header, attribute.String("promo.event_id", ev.EventID))
	ack, err := o.js.PublishMsg(ctx, msg)
	tracing.End(span, err)
	if err != nil {
		return nil, fmt.Errorf("ops: publish %s: %w", ev.EventID, err)
	}
	return ack, nil
}
