package main

import (
	"context"
	"os"
	"time"

	"github.com/promoengine/promoengine/internal/tracing"
)

// startTracing sets up OpenTelemetry from the OTEL_* variables before the
// engine starts (internal/tracing) and returns what flushes the spans
// still buffered once it stopped.
func startTracing(ctx context.Context, c *cli) (stop func(), err error) {
	shutdown, err := tracing.Setup(ctx)
	if err != nil {
		return nil, err
	}
	if tracing.Enabled() {
		exporter, _ := tracing.Exporter(os.Getenv)
		c.log.Info().Str("exporter", exporter).Str("sampler", os.Getenv("OTEL_TRACES_SAMPLER")).Msg("tracing on")
	}
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdown(sctx); err != nil {
			c.log.Warn().Err(err).Msg("flush the last spans")
		}
	}, nil
}
