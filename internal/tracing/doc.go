// Package tracing owns promoengine's OpenTelemetry tracing: the SDK set up
// from OpenTelemetry's own environment variables, and the few helpers the
// rest of the code uses to carry one trace per order from the HTTP request
// to the Odoo push (SPEC §9).
//
// Configuration is OpenTelemetry's, nothing of our own:
//
//	OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
//	                         where spans go; unset: no export at all
//	OTEL_EXPORTER_OTLP_PROTOCOL  http/protobuf (default) or grpc
//	OTEL_TRACES_EXPORTER     otlp (default), console (pretty JSON on
//	                         stderr, for `promoengine dev`), none
//	OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
//	OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG (e.g. parentbased_traceidratio, 0.1)
//	OTEL_SDK_DISABLED=true   off, whatever else is set
//
// Off (no endpoint, no console) is the default and costs nothing measurable:
// Setup installs no tracer provider, Enabled reports false, and every
// instrumentation point checks Enabled first — the HTTP handler and the Odoo
// transport are not wrapped, the pgx tracer is not installed, no header is
// read or written, no span is started.
//
// How the context travels (docs/DESIGN.md, "Tracing"):
//
//	HTTP request (otelhttp SERVER span)
//	  → NATS publish (PRODUCER span; W3C traceparent in the message headers;
//	    the keyer's keyed copy keeps the headers)
//	  → the order worker: one CONSUMER span per event, child of the
//	    publisher's context, carrying promo.event_id, outcome, customer,
//	    catalog version and stream sequence; the batch transaction is its own
//	    root span with a link to every event span (pgx query spans are its
//	    children)
//	  → the outbox row's trace_parent column (the event span's context)
//	  → the relay's publish (PRODUCER span, traceparent in the result's
//	    headers)
//	  → the Odoo pusher (CONSUMER span) and its JSON-RPC call (otelhttp
//	    CLIENT span).
package tracing
