package tracing_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"

	"github.com/promoengine/promoengine/internal/tracing"
)

// BenchmarkOrderEventSpans is the tracing work of one order event on its
// way through the engine, without the I/O: the publisher's PRODUCER span
// and header, the worker's CONSUMER span with its attributes, the outbox
// traceparent, the relay's span and header. "off" is the default (no
// endpoint); "10%" samples a tenth of the traces and exports them (to a
// receiver that discards them).
func BenchmarkOrderEventSpans(b *testing.B) {
	for _, tc := range []struct {
		name string
		env  map[string]string
	}{
		{"off", nil},
		{"10%", map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
			defer sink.Close()
			b.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
			for k, v := range tc.env {
				b.Setenv(k, v)
				b.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", sink.URL)
			}
			shutdown, err := tracing.Setup(context.Background())
			require.NoError(b, err)
			defer func() { _ = shutdown(context.Background()) }()
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				h := nats.Header{}
				pctx, pub := tracing.StartPublish(ctx, "POS_ORDERS", h, attribute.String("promo.event_id", "e"))
				pub.End()
				_ = pctx
				ectx, ev := tracing.StartConsume(ctx, "process order event", "POS_ORDERS", h)
				ev.SetAttributes(attribute.String("promo.outcome", "applied"))
				tp := tracing.TraceParent(ectx)
				ev.End()
				rh := nats.Header{}
				_, rel := tracing.StartPublish(tracing.FromTraceParent(ctx, tp), "promo.results.order", rh)
				rel.End()
			}
		})
	}
}
