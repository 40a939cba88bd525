package workers

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

	"github.com/promoengine/promoengine/internal/tracing"
)

// startPushSpan opens the CONSUMER span of one result's push, in the
// order's trace (the relay wrote its context into the result's headers);
// the JSON-RPC call under it is the Odoo client's CLIENT span (otelhttp).
func (p *OdooPusher) startPushSpan(ctx context.Context, it *pushItem) context.Context {
	if !tracing.Enabled() {
		return ctx
	}
	ctx, it.span = tracing.StartConsume(ctx, "push order result to Odoo", p.subjects.StreamResults(), it.msg.Headers())
	it.span.SetAttributes(attribute.String("promo.event_id", it.eventID), attribute.String("promo.order_id", it.orderID),
		attribute.Int64("messaging.nats.stream_sequence", int64(it.seq)), //nolint:gosec // a stream sequence fits
		attribute.Int64("messaging.nats.delivery", int64(it.deliver)),    //nolint:gosec // a delivery count fits
		attribute.String("odoo.model", p.cfg.Model), attribute.String("odoo.method", p.cfg.Method))
	return ctx
}

// endPushSpan closes the push's span with its outcome.
func (it *pushItem) endPushSpan(outcome string, settleErr error) {
	if it.span == nil {
		return
	}
	it.span.SetAttributes(attribute.String("promo.outcome", outcome))
	switch outcome {
	case "delivered", "shadowed", "held", "released":
	default:
		it.span.SetStatus(codes.Error, outcome)
	}
	if settleErr != nil {
		it.span.RecordError(errors.Join(errors.New("settle"), settleErr))
	}
	it.span.End()
	it.span = nil
}
