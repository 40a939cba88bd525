package tracing

import (
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

const codesError = codes.Error

// HTTPHandler wraps h in a SERVER span per request (otelhttp) while tracing
// is on; off, it returns h itself.
func HTTPHandler(h http.Handler, operation string) http.Handler {
	if !Enabled() {
		return h
	}
	return otelhttp.NewHandler(h, operation, otelhttp.WithPropagators(propagator))
}

// HTTPTransport wraps rt (nil: http.DefaultTransport) in a CLIENT span per
// request (otelhttp) while tracing is on; off, it returns rt itself.
func HTTPTransport(rt http.RoundTripper) http.RoundTripper {
	if !Enabled() {
		return rt
	}
	if rt == nil {
		rt = http.DefaultTransport
	}
	return otelhttp.NewTransport(rt, otelhttp.WithPropagators(propagator))
}

// NameRoute names the request's SERVER span after its route ("POST
// /v1/events"): otelhttp runs before the mux knows the route, and a span
// name must not hold ids from the path.
func NameRoute(r *http.Request, route string) {
	if !Enabled() {
		return
	}
	if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
		span.SetName(r.Method + " " + route)
		span.SetAttributes(attribute.String("http.route", route))
	}
}
