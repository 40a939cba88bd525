package tracing

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"
)

// Observe records v in h with the trace id of ctx's span as an exemplar when
// that span is sampled, so that a latency spike on a dashboard leads to one
// of its traces.
func Observe(ctx context.Context, h prometheus.Observer, v float64) {
	if Enabled() {
		if sc := trace.SpanContextFromContext(ctx); sc.IsSampled() {
			if eo, ok := h.(prometheus.ExemplarObserver); ok {
				eo.ObserveWithExemplar(v, prometheus.Labels{"trace_id": sc.TraceID().String()})
				return
			}
		}
	}
	h.Observe(v)
}

// LogHook adds trace_id and span_id to every log line whose event carries
// a context with a span (zerolog's Event.Ctx).
type LogHook struct{}

// Run implements zerolog.Hook.
func (LogHook) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	if !Enabled() {
		return
	}
	if sc := trace.SpanContextFromContext(e.GetCtx()); sc.IsValid() {
		e.Str("trace_id", sc.TraceID().String()).Str("span_id", sc.SpanID().String())
	}
}
