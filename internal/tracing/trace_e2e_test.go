package tracing_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/internal/engine"
	"github.com/promoengine/promoengine/internal/logging"
	"github.com/promoengine/promoengine/internal/odoo/odootest"
	"github.com/promoengine/promoengine/internal/testdb"
	"github.com/promoengine/promoengine/internal/testlog"
	"github.com/promoengine/promoengine/internal/testnats"
	"github.com/promoengine/promoengine/internal/tracing"
	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/pkg/rules"
)

// The whole engine in process — real NATS, real PostgreSQL, the fake Odoo —
// with the real OTLP/HTTP exporter sending to a receiver in the test. The
// tests set process-wide state (environment, the global tracer provider),
// so they do not run in parallel; this package's binary runs nothing else.

// receiver is an OTLP/HTTP trace receiver: it decodes every export.
type receiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	spans    []span
	requests int
}

type span struct {
	traceID, spanID, parentID string
	name                      string
	kind                      tracepb.Span_SpanKind
	attrs                     map[string]string
	links                     []string // span ids
	start, end                uint64   // unix nanoseconds
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		var exp collectortrace.ExportTraceServiceRequest
		if err != nil || req.URL.Path != "/v1/traces" || proto.Unmarshal(body, &exp) != nil {
			http.Error(w, "not an OTLP trace export", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.requests++
		for _, rs := range exp.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					r.spans = append(r.spans, decodeSpan(s))
				}
			}
		}
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func decodeSpan(s *tracepb.Span) span {
	out := span{traceID: hex.EncodeToString(s.TraceId), spanID: hex.EncodeToString(s.SpanId),
		parentID: hex.EncodeToString(s.ParentSpanId), name: s.Name, kind: s.Kind, attrs: map[string]string{},
		start: s.StartTimeUnixNano, end: s.EndTimeUnixNano}
	for _, kv := range s.Attributes {
		out.attrs[kv.Key] = anyValue(kv.Value)
	}
	for _, l := range s.Links {
		out.links = append(out.links, hex.EncodeToString(l.SpanId))
	}
	return out
}

func anyValue(v *commonpb.AnyValue) string {
	switch x := v.Value.(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	}
	return v.String()
}

func (r *receiver) snapshot() ([]span, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]span(nil), r.spans...), r.requests
}

const (
	webhookKey = "webhook-key-trace-e2e-7f"
	posKey     = "pos-key-trace-e2e-3c"
)

// pipeline is an engine with every worker, against the fake Odoo.
type pipeline struct {
	t      *testing.T
	ctx    context.Context
	engine *engine.Engine
	odoo   *odootest.Server
	pool   *pgxpool.Pool
	logs   *testlog.Buffer

	mu     sync.Mutex
	pushed map[string]bool // result event ids Odoo received
}

func startPipeline(t *testing.T) *pipeline {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	p := &pipeline{t: t, ctx: ctx, odoo: odootest.New(t), logs: &testlog.Buffer{}, pushed: map[string]bool{}}
	dbURL := testdb.NewDatabase(t)
	pool, err := pgxpool.New(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	p.pool = pool
	odootest.SeedPOS(p.odoo)
	p.odoo.Handle("pos.order", "promo_engine_apply", func(c odootest.Call) (any, *odootest.RPCError) {
		var head struct {
			EventID string `json:"event_id"`
		}
		_ = json.Unmarshal(c.Args[1], &head)
		p.mu.Lock()
		p.pushed[head.EventID] = true
		p.mu.Unlock()
		return true, nil
	})
	cat, err := rules.Parse([]byte(`
currency: IDR
money_decimals: 0
timezone: Asia/Jakarta
points: {decimals: 0, earn: [{per_amount: "1000", points: "1"}]}
programs:
  - {id: drinks-10, layer: item, when: {products: {categories: ["5"]}}, reward: {percent: "10"}}
`))
	require.NoError(t, err)
	_, err = ledger.ApplyCatalog(ctx, pool, cat)
	require.NoError(t, err)
	nats := testnats.New(t)
	cfg := &config.Config{
		NATSURL: nats.URL(), DatabaseURL: dbURL, HTTPAddr: "127.0.0.1:0",
		BatchSize: 16, Lanes: 2, MaxDeliver: 10, DuplicateWindow: 10 * time.Minute,
		OdooURL: p.odoo.URL, OdooDB: p.odoo.DB, OdooLogin: p.odoo.Login, OdooAPIKey: config.Secret(p.odoo.APIKey),
		OdooModel: "pos.order", OdooMethod: "promo_engine_apply", OdooTimeout: 5 * time.Second, OdooConcurrency: 2,
		OdooReadbackMaxWait: time.Hour,
		APIKeys:             config.APIKeys{{Key: webhookKey, Role: config.RoleWebhook}, {Key: posKey, Role: config.RolePOS}},
	}
	e, err := engine.Start(ctx, cfg, config.AllWorkers, logging.New(p.logs, "json", "debug"))
	require.NoError(t, err)
	p.engine = e
	t.Cleanup(e.Stop)
	return p
}

// webhook posts Odoo's automation rule payload for order id and waits for
// the order's result to reach Odoo.
func (p *pipeline) webhook(id int64) string {
	body := fmt.Sprintf(`{"_action": "promoengine(#3)", "_id": %d, "_model": "pos.order", "state": "paid", "company_id": 1, "config_id": 3}`, id)
	req, err := http.NewRequestWithContext(p.ctx, http.MethodPost,
		"http://"+p.engine.HTTPAddr()+"/v1/odoo/webhook?token="+webhookKey, bytes.NewReader([]byte(body)))
	require.NoError(p.t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(p.t, err)
	resp.Body.Close()
	require.Equal(p.t, http.StatusAccepted, resp.StatusCode)
	eventID := fmt.Sprintf("odoo1:pos.order:%d:paid", id)
	require.Eventually(p.t, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		_, ok := p.pushed["result:"+eventID]
		return ok
	}, time.Minute, 20*time.Millisecond, "the order's result reaches Odoo")
	return eventID
}

// exportTo sets tracing up, by OpenTelemetry's variables, to export every
// span to rcv; the function returned flushes and ends it.
func exportTo(t *testing.T, rcv *receiver) func(context.Context) error {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", rcv.srv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	t.Setenv("OTEL_TRACES_SAMPLER", "parentbased_always_on")
	t.Setenv("OTEL_SERVICE_NAME", "promoengine-test")
	shutdown, err := tracing.Setup(context.Background())
	require.NoError(t, err)
	require.True(t, tracing.Enabled())
	return shutdown
}

func TestWebhookOrderIsOneTraceFromHTTPToOdooPush(t *testing.T) {
	rcv := newReceiver(t)
	shutdown := exportTo(t, rcv)
	p := startPipeline(t)
	eventID := p.webhook(odootest.PaidOrderID)
	resultHeader := p.resultTraceParent()

	// Exemplars: the event's latency observation names a sampled trace.
	req, err := http.NewRequestWithContext(p.ctx, http.MethodGet, "http://"+p.engine.HTTPAddr()+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	metricsText, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)

	p.engine.Stop()
	require.NoError(t, shutdown(context.Background())) // flushes every span
	spans, _ := rcv.snapshot()

	// The root: the webhook's SERVER span, named after its route.
	var root span
	for _, s := range spans {
		if s.kind == tracepb.Span_SPAN_KIND_SERVER && s.name == "POST /v1/odoo/webhook" {
			root = s
		}
	}
	require.NotEmpty(t, root.traceID, "the webhook's HTTP span was exported")
	require.Empty(t, root.parentID, "it starts the trace")
	inTrace := map[string]span{}
	byName := map[string][]span{}
	for _, s := range spans {
		if s.traceID == root.traceID {
			inTrace[s.spanID] = s
			byName[s.name] = append(byName[s.name], s)
		}
	}
	one := func(name string) span {
		t.Helper()
		require.Len(t, byName[name], 1, "one %q span in the order's trace; spans: %v", name, names(inTrace))
		return byName[name][0]
	}
	childOf := func(s, parent span) {
		t.Helper()
		require.Equal(t, parent.spanID, s.parentID, "%q is a child of %q", s.name, parent.name)
	}

	// HTTP → recorded for read-back → read back → input event published.
	recorded := one("publish promo.odoo.orders")
	require.Equal(t, tracepb.Span_SPAN_KIND_PRODUCER, recorded.kind)
	readback := one("read back Odoo order")
	childOf(readback, recorded)
	published := one("publish POS_ORDERS")
	childOf(published, readback)
	require.Equal(t, eventID, published.attrs["promo.event_id"])

	// The order worker's event span, child of the publish through the
	// message headers, with what it did.
	ev := one("process order event")
	childOf(ev, published)
	require.Equal(t, tracepb.Span_SPAN_KIND_CONSUMER, ev.kind)
	require.Equal(t, eventID, ev.attrs["promo.event_id"])
	require.Equal(t, "applied", ev.attrs["promo.outcome"])
	require.Equal(t, "77", ev.attrs["promo.customer_id"])
	require.Equal(t, "1", ev.attrs["promo.catalog_version"])
	require.NotEmpty(t, ev.attrs["messaging.nats.stream_sequence"])
	require.NotEqual(t, "0", ev.attrs["messaging.nats.stream_sequence"])

	// The batch transaction: a trace of its own, linked to the event span,
	// with the pgx query spans under it.
	var batch span
	for _, s := range spans {
		if s.name == "order batch transaction" && len(s.links) > 0 && s.links[0] == ev.spanID {
			batch = s
		}
	}
	require.NotEmpty(t, batch.spanID, "a batch span links to the event span")
	require.NotEqual(t, root.traceID, batch.traceID)
	queries := 0
	for _, s := range spans {
		if s.parentID == batch.spanID && s.kind == tracepb.Span_SPAN_KIND_CLIENT {
			queries++
		}
	}
	require.Positive(t, queries, "pgx spans under the batch span")

	// Outbox row → relay's publish → pusher → JSON-RPC call to Odoo.
	relay := one("publish promo.results.order")
	childOf(relay, ev)
	require.Equal(t, "result:"+eventID, relay.attrs["promo.event_id"])
	push := one("push order result to Odoo")
	childOf(push, relay)
	require.Equal(t, "delivered", push.attrs["promo.outcome"])
	calls := 0
	for _, s := range inTrace {
		if s.parentID == push.spanID && s.kind == tracepb.Span_SPAN_KIND_CLIENT {
			calls++
			require.Equal(t, "POST", s.attrs["http.request.method"])
		}
	}
	require.Equal(t, 1, calls, "one JSON-RPC call under the push span")

	require.Contains(t, resultHeader, root.traceID, "the result message carries the order's trace")

	t.Logf("the order's trace:\n%s", render(inTrace, root, root.start, 0))

	// The log lines of the event carry its trace; the histogram its exemplar.
	require.Contains(t, p.logs.String(), `"trace_id":"`+root.traceID+`"`)
	require.Contains(t, string(metricsText), `trace_id="`+root.traceID+`"`)
}

func TestNoEndpointExportsNothing(t *testing.T) {
	rcv := newReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	t.Setenv("OTEL_TRACES_EXPORTER", "")
	t.Setenv("OTEL_TRACES_SAMPLER", "always_on")
	// The receiver is where the SDK's own default would point if anything
	// built an exporter without our Setup's endpoint check.
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "true")
	shutdown, err := tracing.Setup(context.Background())
	require.NoError(t, err)
	require.False(t, tracing.Enabled())
	require.NotContains(t, fmt.Sprintf("%T", otel.GetTracerProvider()), "sdk", "no SDK tracer provider is installed")

	p := startPipeline(t)
	eventID := p.webhook(odootest.PaidOrderID)
	resultHeader := p.resultTraceParent()
	p.engine.Stop()
	require.NoError(t, shutdown(context.Background()))

	_, requests := rcv.snapshot()
	require.Zero(t, requests)
	require.NotContains(t, p.logs.String(), `"trace_id"`)
	require.Contains(t, p.logs.String(), eventID, "the order went through")
	require.Empty(t, resultHeader, "no traceparent travels with the result")
}

// resultTraceParent is the traceparent header of the last order result.
func (p *pipeline) resultTraceParent() string {
	s, err := p.engine.JS.Stream(p.ctx, p.engine.Subjects.StreamResults())
	require.NoError(p.t, err)
	msg, err := s.GetLastMsgForSubject(p.ctx, p.engine.Subjects.ResultsOrder())
	require.NoError(p.t, err)
	return msg.Header.Get("traceparent")
}

// render draws the tree of spans under s (go test -v shows it; the
// README's Observability section has one).
func render(spans map[string]span, s span, t0 uint64, depth int) string {
	attrs := ""
	for _, k := range []string{"promo.event_id", "promo.outcome", "promo.customer_id", "promo.catalog_version", "messaging.nats.stream_sequence"} {
		if v, ok := s.attrs[k]; ok {
			attrs += " " + k + "=" + v
		}
	}
	out := fmt.Sprintf("%8.1fms %7.1fms  %s%s [%s]%s\n", float64(s.start-t0)/1e6, float64(s.end-s.start)/1e6,
		strings.Repeat("  ", depth), s.name, strings.TrimPrefix(s.kind.String(), "SPAN_KIND_"), attrs)
	var children []span
	for _, c := range spans {
		if c.parentID == s.spanID {
			children = append(children, c)
		}
	}
	slices.SortFunc(children, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	for _, c := range children {
		out += render(spans, c, t0, depth+1)
	}
	return out
}

func names(spans map[string]span) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.name)
	}
	return out
}

// post sends body to an API route with the pos key and returns the status.
func (p *pipeline) post(route string, body []byte) int {
	req, err := http.NewRequestWithContext(p.ctx, http.MethodPost, "http://"+p.engine.HTTPAddr()+route, bytes.NewReader(body))
	require.NoError(p.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+posKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(p.t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// The other ways in are traced too: an event posted to POST /v1/events is
// one trace from the HTTP span through the order worker to the relay's
// publish; a quote over HTTP has its server span with the database queries
// under it; a quote over NATS (promo.quote) has its server span.
func TestAPIEventAndQuotesAreTraced(t *testing.T) {
	rcv := newReceiver(t)
	shutdown := exportTo(t, rcv)
	p := startPipeline(t)

	order := `"company_id":"1","pos_config_id":"3","order":{"id":"9001","currency":"IDR","customer_id":"c9","lines":[{"id":"1","product_id":"p1","category_ids":["5"],"qty":"1","unit_price":"20000"}]}`
	event := []byte(`{"event_id":"api-9001","type":"pos.order.paid","occurred_at":"2026-11-24T10:00:00+07:00",` + order + `}`)
	require.Equal(t, http.StatusAccepted, p.post("/v1/events", event))
	require.Eventually(t, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.pushed["result:api-9001"]
	}, time.Minute, 20*time.Millisecond, "the event's result reaches Odoo")
	quote := []byte(`{"customer_id":"c9","currency":"IDR","occurred_at":"2026-11-24T10:00:00+07:00","company_id":"1","pos_config_id":"3",` +
		`"lines":[{"id":"1","product_id":"p1","category_ids":["5"],"qty":"1","unit_price":"20000"}]}`)
	require.Equal(t, http.StatusOK, p.post("/v1/quote", quote))
	_, err := p.engine.NC.RequestWithContext(p.ctx, "promo.quote", quote)
	require.NoError(t, err)

	p.engine.Stop()
	require.NoError(t, shutdown(context.Background()))
	spans, _ := rcv.snapshot()
	server := func(name string) span {
		t.Helper()
		var found []span
		for _, s := range spans {
			if s.kind == tracepb.Span_SPAN_KIND_SERVER && s.name == name {
				found = append(found, s)
			}
		}
		require.Len(t, found, 1, "one %q server span", name)
		return found[0]
	}
	children := func(parent span, kind tracepb.Span_SpanKind) []span {
		var out []span
		for _, s := range spans {
			if s.parentID == parent.spanID && s.kind == kind {
				out = append(out, s)
			}
		}
		return out
	}

	root := server("POST /v1/events")
	pub := children(root, tracepb.Span_SPAN_KIND_PRODUCER)
	require.Len(t, pub, 1, "the HTTP span publishes the event")
	require.Equal(t, "api-9001", pub[0].attrs["promo.event_id"])
	var ev span
	for _, s := range spans {
		if s.name == "process order event" && s.attrs["promo.event_id"] == "api-9001" {
			ev = s
		}
	}
	require.Equal(t, root.traceID, ev.traceID, "the order worker's span is in the request's trace")
	require.Equal(t, "applied", ev.attrs["promo.outcome"])
	relay := children(ev, tracepb.Span_SPAN_KIND_PRODUCER)
	require.Len(t, relay, 1)
	require.Equal(t, "result:api-9001", relay[0].attrs["promo.event_id"])

	httpQuote := server("POST /v1/quote")
	require.NotEmpty(t, children(httpQuote, tracepb.Span_SPAN_KIND_CLIENT), "database queries under the HTTP quote")
	server("quote promo.quote")
}
