package tracing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of promoengine's own spans.
const ScopeName = "github.com/promoengine/promoengine"

var (
	enabled atomic.Bool
	tracer  atomic.Pointer[trace.Tracer]
)

// Enabled reports whether spans are exported. Every instrumentation point
// checks it first, so that tracing off costs nothing.
func Enabled() bool { return enabled.Load() }

// Tracer is promoengine's tracer (a no-op one while tracing is off).
func Tracer() trace.Tracer {
	if t := tracer.Load(); t != nil {
		return *t
	}
	return noop.NewTracerProvider().Tracer(ScopeName)
}

// ErrExporter is a tracing configuration the SDK cannot follow.
var ErrExporter = errors.New("tracing: unsupported OpenTelemetry configuration")

// Exporter names which exporter the environment asks for: "otlp",
// "console" or "" (none). getenv is os.Getenv outside tests.
func Exporter(getenv func(string) string) (string, error) {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		return "", nil
	}
	switch name := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))); name {
	case "none":
		return "", nil
	case "console":
		return "console", nil
	case "", "otlp":
		if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
			return "", nil // no endpoint, no export (SPEC §9)
		}
		return "otlp", nil
	default:
		return "", fmt.Errorf("%w: OTEL_TRACES_EXPORTER=%q (want otlp, console or none)", ErrExporter, name)
	}
}

// Setup installs the global tracer provider and W3C propagator the
// environment asks for and returns the function that flushes and stops
// them (a no-op when tracing is off). Call it once, before the engine
// starts: the instrumentation decides at construction whether to trace.
func Setup(ctx context.Context) (shutdown func(context.Context) error, err error) {
	name, err := Exporter(os.Getenv)
	if err != nil || name == "" {
		enabled.Store(false)
		tracer.Store(nil)
		return func(context.Context) error { return nil }, err
	}
	var exp sdktrace.SpanExporter
	switch {
	case name == "console":
		exp, err = stdouttrace.New(stdouttrace.WithWriter(os.Stderr), stdouttrace.WithPrettyPrint())
	case otlpProtocol() == "grpc":
		exp, err = otlptracegrpc.New(ctx)
	case otlpProtocol() == "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	default:
		err = fmt.Errorf("%w: OTEL_EXPORTER_OTLP_PROTOCOL=%q (want http/protobuf or grpc)", ErrExporter, otlpProtocol())
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: %s exporter: %w", name, err)
	}
	// The service is promoengine unless OTEL_SERVICE_NAME or
	// OTEL_RESOURCE_ATTRIBUTES say otherwise (WithFromEnv comes last).
	res, err := resource.New(ctx, resource.WithAttributes(semconv.ServiceName("promoengine")),
		resource.WithTelemetrySDK(), resource.WithHost(), resource.WithFromEnv())
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	// The sampler comes from OTEL_TRACES_SAMPLER (default parentbased_always_on),
	// the batcher's limits from OTEL_BSP_*: the SDK reads them itself.
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	t := tp.Tracer(ScopeName)
	tracer.Store(&t)
	enabled.Store(true)
	return func(ctx context.Context) error {
		enabled.Store(false)
		tracer.Store(nil)
		return tp.Shutdown(ctx)
	}, nil
}

func otlpProtocol() string {
	p := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if p == "" {
		p = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if p == "" {
		return "http/protobuf"
	}
	return p
}
