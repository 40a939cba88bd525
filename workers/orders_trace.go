package workers

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/promoengine/promoengine/internal/tracing"
	"github.com/promoengine/promoengine/pkg/rules"
)

// The order worker's spans (internal/tracing): each event one CONSUMER span
// in its own trace (child of the publisher's context in the message
// headers), from receipt to settlement; each batch transaction one span of
// its own, linked to the event spans it carries. Nothing while tracing is
// off: it.span stays nil.

// startEventSpan opens the event span of a message just received.
func (o *Orders) startEventSpan(it *item) {
	if !tracing.Enabled() {
		return
	}
	ctx, span := tracing.StartConsume(context.Background(), "process order event", o.subjects.StreamOrders(), it.msg.Headers(),
		trace.WithTimestamp(it.received), trace.WithAttributes(
			attribute.Int64("messaging.nats.stream_sequence", int64(it.seq)), //nolint:gosec // a stream sequence fits
			attribute.Int64("messaging.nats.delivery", int64(it.delivery)),   //nolint:gosec // a delivery count fits
		))
	it.traceCtx, it.span = ctx, span
}

// decodedEventSpan adds what the event says to its span.
func (it *item) decodedEventSpan() {
	if it.span == nil || it.ev == nil {
		return
	}
	it.span.SetAttributes(attribute.String("promo.event_id", it.ev.EventID), attribute.String("promo.event_type", it.ev.Type),
		attribute.String("promo.customer_id", it.customer))
}

// traceParent is what the event's outbox row keeps ("" untraced).
func (it *item) traceParent() string {
	if it.span == nil {
		return ""
	}
	return tracing.TraceParent(it.traceCtx)
}

// logCtx is the context a log line of the item carries (its trace ids).
func (it *item) logCtx() context.Context {
	if it.traceCtx == nil {
		return context.Background()
	}
	return it.traceCtx
}

// endEventSpan closes the event span with its outcome; err marks a failure.
func (it *item) endEventSpan(outcome string, catalogVersion int64, err error) {
	if it.span == nil {
		return
	}
	it.span.SetAttributes(attribute.String("promo.outcome", outcome))
	if catalogVersion > 0 {
		it.span.SetAttributes(attribute.Int64("promo.catalog_version", catalogVersion))
	}
	if err != nil {
		it.span.RecordError(err)
		it.span.SetStatus(codes.Error, outcome)
	}
	it.span.End()
	it.span = nil
}

// startBatchSpan opens the span of one batch's processing: a root of its
// own (a batch belongs to many orders' traces), linked to each event's span.
func (o *Orders) startBatchSpan(ctx context.Context, batch []*item, cat *rules.Catalog) (context.Context, trace.Span) {
	if !tracing.Enabled() {
		return ctx, nil
	}
	links := make([]trace.Link, 0, len(batch))
	for _, it := range batch {
		if it.span != nil {
			links = append(links, trace.Link{SpanContext: it.span.SpanContext()})
		}
	}
	attrs := []attribute.KeyValue{attribute.Int("promo.batch_size", len(batch))}
	if cat != nil {
		attrs = append(attrs, attribute.Int64("promo.catalog_version", cat.Version))
	}
	return tracing.Tracer().Start(ctx, "order batch transaction", trace.WithNewRoot(), trace.WithLinks(links...),
		trace.WithAttributes(attrs...))
}

// endBatchSpan closes a batch span (nil: untraced).
func endBatchSpan(span trace.Span, committed int, err error) {
	if span == nil {
		return
	}
	span.SetAttributes(attribute.Int("promo.committed", committed))
	tracing.End(span, err)
}
