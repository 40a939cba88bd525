// Package logging builds the one zerolog logger of a process: JSON lines by
// default (for log shippers), a human console format with
// PROMO_LOG_FORMAT=console. There is no global logger: it is passed down.
// Lines logged with a traced context carry trace_id and span_id.
package logging

import (
	"io"
	"time"

	"github.com/rs/zerolog"

	"github.com/promoengine/promoengine/internal/tracing"
)

// New returns a logger writing to w in format ("json" or "console") at level.
func New(w io.Writer, format, level string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		lvl = zerolog.InfoLevel
	}
	if format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000"}
	}
	// A line logged with .Ctx(ctx) of a traced operation carries its
	// trace_id and span_id (internal/tracing).
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger().Hook(tracing.LogHook{})
}

func init() {
	zerolog.TimeFieldFormat = time.RFC3339Nano
	zerolog.DurationFieldUnit = time.Millisecond
}
