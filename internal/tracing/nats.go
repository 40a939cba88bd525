package tracing

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// propagator is W3C Trace Context (traceparent, tracestate), whatever the
// global one: the headers are part of our message contract (SPEC §9).
var propagator = propagation.TraceContext{}

// headerCarrier reads and writes trace headers of a NATS message. NATS
// header names are case-sensitive; W3C's are lower case.
type headerCarrier nats.Header

func (c headerCarrier) Get(key string) string { return nats.Header(c).Get(key) }
func (c headerCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }
func (c headerCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// Inject writes ctx's span context into h (nothing while tracing is off).
func Inject(ctx context.Context, h nats.Header) {
	if !Enabled() || h == nil {
		return
	}
	propagator.Inject(ctx, headerCarrier(h))
}

// Extract returns ctx with the remote span context of h, if any.
func Extract(ctx context.Context, h nats.Header) context.Context {
	if !Enabled() || len(h) == 0 {
		return ctx
	}
	return propagator.Extract(ctx, headerCarrier(h))
}

// traceParentKey is the one header TraceParent and FromTraceParent use.
const traceParentKey = "traceparent"

// TraceParent is the W3C traceparent of ctx's span, "" when there is none
// (the outbox row keeps it: the relay continues the order's trace).
func TraceParent(ctx context.Context) string {
	if !Enabled() || !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagator.Inject(ctx, c)
	return c[traceParentKey]
}

// FromTraceParent returns ctx with the remote span context tp names.
func FromTraceParent(ctx context.Context, tp string) context.Context {
	if !Enabled() || tp == "" {
		return ctx
	}
	return propagator.Extract(ctx, propagation.MapCarrier{traceParentKey: tp})
}

// StartPublish starts the PRODUCER span of a NATS publish to destination
// (a stable name — a stream or subject template — never a subject holding
// ids) and writes its context into h. End the span when JetStream answered.
func StartPublish(ctx context.Context, destination string, h nats.Header, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if !Enabled() {
		return ctx, noop.Span{}
	}
	ctx, span := Tracer().Start(ctx, "publish "+destination, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(append(attrs, messagingSystem, attribute.String("messaging.destination.name", destination),
			attribute.String("messaging.operation.type", "send"))...))
	Inject(ctx, h)
	return ctx, span
}

// StartConsume starts the CONSUMER span of handling a message of
// destination, child of the context in its headers.
func StartConsume(ctx context.Context, name, destination string, h nats.Header, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !Enabled() {
		return ctx, noop.Span{}
	}
	opts = append(opts, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(messagingSystem,
		attribute.String("messaging.destination.name", destination), attribute.String("messaging.operation.type", "process")))
	return Tracer().Start(Extract(ctx, h), name, opts...)
}

var messagingSystem = attribute.String("messaging.system", "nats")

// End ends span, marking it failed with err when err is not nil.
func End(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codesError, err.Error())
	}
	span.End()
}

// StartRequest starts the SERVER span of answering a NATS request (a
// request/reply service endpoint), child of the context in its headers.
func StartRequest(ctx context.Context, name string, h nats.Header) (context.Context, trace.Span) {
	if !Enabled() {
		return ctx, noop.Span{}
	}
	return Tracer().Start(Extract(ctx, h), name, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(messagingSystem, attribute.String("rpc.system", "nats_micro")))
}
