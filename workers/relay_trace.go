package workers

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/promoengine/promoengine/internal/tracing"
	"github.com/promoengine/promoengine/pkg/ledger"
)

// publishSpans are the PRODUCER spans of one chunk's publishes, each in the
// trace of the event whose outbox row it publishes (its trace_parent). They
// end when the chunk is settled. Empty while tracing is off.
type publishSpans []trace.Span

func newPublishSpans(n int) publishSpans {
	if !tracing.Enabled() {
		return nil
	}
	return make(publishSpans, 0, n)
}

// start opens the publish span of row and writes its context into h; rows
// without a trace parent (jobs' results, tracing off when committed) have
// none.
func (s *publishSpans) start(ctx context.Context, row ledger.OutboxRow, h nats.Header) {
	if *s == nil || row.TraceParent == "" {
		return
	}
	_, span := tracing.StartPublish(tracing.FromTraceParent(ctx, row.TraceParent), row.Subject, h,
		attribute.String("promo.event_id", row.EventID), attribute.Int64("promo.outbox_id", row.ID))
	*s = append(*s, span)
}

func (s publishSpans) end(err error) {
	for _, span := range s {
		tracing.End(span, err)
	}
}

// observeDelay records how long the row waited from its transaction to
// JetStream's acknowledgement, with its trace as the exemplar.
func (r *OutboxRelay) observeDelay(row ledger.OutboxRow) {
	if r.metrics.OutboxDelay == nil {
		return
	}
	tracing.Observe(tracing.FromTraceParent(context.Background(), row.TraceParent), r.metrics.OutboxDelay,
		time.Since(row.CreatedAt).Seconds())
}
