package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/promoengine/promoengine/internal/api"
	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/internal/identity"
	"github.com/promoengine/promoengine/internal/metrics"
	"github.com/promoengine/promoengine/internal/odoo"
	"github.com/promoengine/promoengine/internal/odoo/odootest"
	"github.com/promoengine/promoengine/internal/streams"
	"github.com/promoengine/promoengine/internal/testdb"
	"github.com/promoengine/promoengine/internal/testlog"
	"github.com/promoengine/promoengine/internal/testnats"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/pkg/rules"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).backgroundHealthCheck"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

const (
	posKey     = "pos-key-3f9a1c"
	adminKey   = "admin-key-77d0e2"
	webhookKey = "webhook-key-5b21aa"
)

const testCatalog = `
currency: IDR
money_decimals: 0
timezone: Asia/Jakarta
points:
  decimals: 0
  earn: [{per_amount: "1000", points: "1"}]
programs:
  - {id: drinks-10, layer: item, when: {products: {categories: ["12"]}}, reward: {percent: "10"}}
`

// apiBundle is an API served over real HTTP, on a real NATS server with the
// engine's streams, with (when asked) a real database and a fake Odoo.
type apiBundle struct {
	t        *testing.T
	ctx      context.Context
	url      string
	js       jetstream.JetStream
	subjects events.Subjects
	pool     *pgxpool.Pool
	store    *ledger.Store
	odoo     *odootest.Server
	metrics  *metrics.Metrics
	logs     *testlog.Buffer
	catalog  atomic.Pointer[rules.Catalog]
	ready    atomic.Pointer[error]
}

type apiOptions struct {
	db   bool           // a migrated database (quote, customers, catalog)
	odoo bool           // a fake Odoo (webhook)
	keys config.APIKeys // more keys beside posKey, adminKey and webhookKey
	oidc *identity.OIDC // OpenID Connect tokens
	// scope, when set, is the store scope of every request's principal.
	scope func(*http.Request) *odoo.StoreScope

	couponSecret string // the store's PROMO_COUPON_SECRET
}

func setupAPI(t *testing.T, o apiOptions) *apiBundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	ns := testnats.New(t)
	b := &apiBundle{t: t, ctx: ctx, js: ns.JetStream(t), subjects: events.NewSubjects(""),
		metrics: metrics.New(prometheus.NewRegistry()), logs: &testlog.Buffer{}}
	b.store = ledger.NewStore(b.subjects, ledger.WithCouponSecret([]byte(o.couponSecret)))
	require.NoError(t, streams.Ensure(ctx, b.js, b.subjects, streams.DefaultOptions()))
	log := zerolog.New(b.logs).Level(zerolog.TraceLevel)
	d := api.Deps{
		Keys: append(config.APIKeys{{Key: posKey, Role: config.RolePOS}, {Key: adminKey, Role: config.RoleAdmin},
			{Key: webhookKey, Role: config.RoleWebhook}}, o.keys...),
		OIDC:       o.oidc,
		StoreScope: o.scope,
		JS:         b.js,
		Subjects:   b.subjects,
		Store:      b.store,
		Catalog:    b.catalog.Load,
		Metrics:    b.metrics,
		Log:        log,
		Ready: func(context.Context) error {
			if e := b.ready.Load(); e != nil {
				return *e
			}
			return nil
		},
		Now: func() time.Time { return time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC) },
	}
	if o.db {
		b.pool = testdb.New(t)
		d.Pool = b.pool
	}
	if o.odoo {
		require.NoError(t, streams.EnsureOdoo(ctx, b.js, b.subjects, streams.DefaultOptions()))
		b.odoo = odootest.New(t)
		odootest.SeedPOS(b.odoo)
		d.Odoo = b.odoo.Client(t, log, 5*time.Second)
	}
	srv := httptest.NewServer(api.New(d).Handler())
	t.Cleanup(srv.Close)
	b.url = srv.URL
	t.Cleanup(func() {
		logs := b.logs.String()
		for _, secret := range []string{posKey, adminKey, webhookKey, odootest.APIKey} {
			require.NotContains(t, logs, secret, "a key must never be logged")
		}
	})
	return b
}

// applyCatalog stores a catalog and makes it the one in force.
func (b *apiBundle) applyCatalog(doc string) *rules.Catalog {
	b.t.Helper()
	c, err := rules.Parse([]byte(doc))
	require.NoError(b.t, err)
	_, err = ledger.ApplyCatalog(b.ctx, b.pool, c)
	require.NoError(b.t, err)
	latest, err := ledger.LatestCatalog(b.ctx, b.pool)
	require.NoError(b.t, err)
	b.catalog.Store(latest)
	return latest
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "body: %s", r.body)
	return m
}

// errorBody checks the error shape and returns code and details.
func (r response) errorBody(t *testing.T) (string, []any) {
	t.Helper()
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Details []any  `json:"details"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(r.body, &e), "body: %s", r.body)
	require.NotEmpty(t, e.Error.Code)
	require.NotEmpty(t, e.Error.Message)
	return e.Error.Code, e.Error.Details
}

func (b *apiBundle) do(method, path, key string, body []byte) response {
	b.t.Helper()
	req, err := http.NewRequestWithContext(b.ctx, method, b.url+path, bytes.NewReader(body))
	require.NoError(b.t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

func (b *apiBundle) requests(route, code string) float64 {
	var m dto.Metric
	require.NoError(b.t, b.metrics.HTTPRequests.WithLabelValues(route, code).Write(&m))
	return m.GetCounter().GetValue()
}

func paidEvent(eventID, orderID, customer string) []byte {
	cust := ""
	if customer != "" {
		cust = fmt.Sprintf(`"customer_id": %q,`, customer)
	}
	return []byte(fmt.Sprintf(`{"event_id": %q, "type": "pos.order.paid", "occurred_at": "2026-11-28T10:15:00+07:00",
		"company_id": "1", "pos_config_id": "3", "order": {"id": %q, "currency": "IDR", %s
		"lines": [{"id": "1", "product_id": "501", "category_ids": ["12"], "qty": "2", "unit_price": "25000"}]}}`,
		eventID, orderID, cust))
}

func TestAPIAuthenticatesAndChecksRoles(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, apiOptions{})
	routes := []struct {
		method, path string
		admin        bool // admin only
	}{
		{"POST", "/v1/quote", false},
		{"POST", "/v1/events", false},
		{"GET", "/v1/customers/77", false},
		{"POST", "/v1/odoo/webhook", false},
		{"PUT", "/v1/catalog", true},
	}
	for _, rt := range routes {
		for _, key := range []string{"", "nope", posKey[:len(posKey)-1], posKey + "x", strings.ToUpper(posKey)} {
			r := b.do(rt.method, rt.path, key, []byte(`{}`))
			require.Equal(t, http.StatusUnauthorized, r.status, "%s %s with %q", rt.method, rt.path, key)
			code, _ := r.errorBody(t)
			require.Equal(t, api.CodeUnauthorized, code)
			require.Equal(t, `Bearer realm="promoengine"`, r.header.Get("WWW-Authenticate"))
		}
		r := b.do(rt.method, rt.path, posKey, []byte(`{}`))
		if rt.admin {
			require.Equal(t, http.StatusForbidden, r.status, "%s %s with the pos key", rt.method, rt.path)
			code, _ := r.errorBody(t)
			require.Equal(t, api.CodeForbidden, code)
		} else {
			require.NotContains(t, []int{401, 403}, r.status, "%s %s with the pos key", rt.method, rt.path)
		}
		r = b.do(rt.method, rt.path, adminKey, []byte(`{}`))
		require.NotContains(t, []int{401, 403}, r.status, "%s %s with the admin key", rt.method, rt.path)
		// A webhook key (it sits in Odoo's logs) may trigger read-backs
		// and nothing else.
		r = b.do(rt.method, rt.path, webhookKey, []byte(`{}`))
		if rt.path == "/v1/odoo/webhook" {
			require.NotContains(t, []int{401, 403}, r.status, "%s %s with the webhook key", rt.method, rt.path)
		} else {
			require.Equal(t, http.StatusForbidden, r.status, "%s %s with the webhook key", rt.method, rt.path)
		}
	}

	// The scheme is case-insensitive; other schemes are not keys.
	req, err := http.NewRequest("POST", b.url+"/v1/events", strings.NewReader(`{}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "bearer "+posKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	req, err = http.NewRequest("POST", b.url+"/v1/events", strings.NewReader(`{}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Basic "+posKey)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	// ?token= is accepted on the webhook only.
	require.Equal(t, http.StatusUnauthorized, b.do("POST", "/v1/events?token="+posKey, "", []byte(`{}`)).status)
	require.Equal(t, http.StatusServiceUnavailable, b.do("POST", "/v1/odoo/webhook?token="+posKey, "", []byte(`{}`)).status,
		"authenticated by token; no Odoo configured")
	require.Equal(t, http.StatusUnauthorized, b.do("POST", "/v1/odoo/webhook?token=nope", "", []byte(`{}`)).status)

	// Health needs no key.
	require.Equal(t, http.StatusOK, b.do("GET", "/healthz", "", nil).status)
	// 5 routes × 5 bad keys, the Basic scheme, a token where none is
	// accepted, a bad token.
	require.Equal(t, float64(5*5+3), b.requests("/v1/quote", "401")+b.requests("/v1/events", "401")+
		b.requests("/v1/customers/{id}", "401")+b.requests("/v1/odoo/webhook", "401")+b.requests("/v1/catalog", "401"))
}

func TestAPIErrorShapesAndLimits(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, apiOptions{})

	r := b.do("GET", "/v2/nothing", posKey, nil)
	require.Equal(t, http.StatusNotFound, r.status)
	code, _ := r.errorBody(t)
	require.Equal(t, api.CodeNotFound, code)

	r = b.do("GET", "/v1/events", posKey, nil)
	require.Equal(t, http.StatusMethodNotAllowed, r.status)
	require.Equal(t, "POST", r.header.Get("Allow"))
	code, _ = r.errorBody(t)
	require.Equal(t, api.CodeMethodNotAllowed, code)

	big := bytes.Repeat([]byte(" "), 1<<20+65<<10)
	for _, path := range []string{"/v1/events", "/v1/quote"} {
		r = b.do("POST", path, posKey, big)
		require.Equal(t, http.StatusRequestEntityTooLarge, r.status, path)
		code, _ = r.errorBody(t)
		require.Equal(t, api.CodeBodyTooLarge, code)
	}
	r = b.do("PUT", "/v1/catalog", adminKey, bytes.Repeat([]byte(" "), 4<<20+1))
	require.Equal(t, http.StatusRequestEntityTooLarge, r.status)
	require.Equal(t, 1.0, b.requests("/v1/catalog", "413"))

	// A body without Content-Length (chunked) is cut at the limit too.
	req, err := http.NewRequestWithContext(b.ctx, "POST", b.url+"/v1/events", io.MultiReader(bytes.NewReader(big)))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+posKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)

	b.ready.Store(ptr(errors.New("PostgreSQL: connection refused")))
	r = b.do("GET", "/readyz", "", nil)
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	code, _ = r.errorBody(t)
	require.Equal(t, api.CodeNotReady, code)
	b.ready.Store(nil)
	require.Equal(t, http.StatusOK, b.do("GET", "/readyz", "", nil).status)
}

func ptr[T any](v T) *T { return &v }

func TestAPIEventsIngest(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, apiOptions{})
	ev := paidEvent("odoo1:pos.order:1042:paid", "1042", "77")

	r := b.do("POST", "/v1/events", posKey, ev)
	require.Equal(t, http.StatusAccepted, r.status, "%s", r.body)
	require.Equal(t, "application/json", r.header.Get("Content-Type"))
	require.JSONEq(t, `{"event_id": "odoo1:pos.order:1042:paid", "type": "pos.order.paid",
		"subject": "pos.orders.paid.`+events.CustomerKey("77").Token()+`", "stream_seq": 1, "duplicate": false}`, string(r.body))

	stream, err := b.js.Stream(b.ctx, b.subjects.StreamOrders())
	require.NoError(t, err)
	msg, err := stream.GetMsg(b.ctx, 1)
	require.NoError(t, err)
	kind, _, token, ok := b.subjects.OrderSubjectParts(msg.Subject)
	require.True(t, ok && kind == "paid" && token == events.CustomerKey("77").Token(), "stored keyed by its customer: %s", msg.Subject)
	require.Equal(t, ev, msg.Data, "published byte for byte")
	require.Equal(t, "odoo1:pos.order:1042:paid", msg.Header.Get(jetstream.MsgIDHeader))

	r = b.do("POST", "/v1/events", posKey, ev)
	require.Equal(t, http.StatusAccepted, r.status)
	require.Equal(t, true, r.json(t)["duplicate"])
	require.Equal(t, 1.0, r.json(t)["stream_seq"])

	bad := []byte(`{"event_id": "x", "type": "pos.order.paid", "occurred_at": "2026-11-28 10:15",
		"company_id": "1", "pos_config_id": "3", "order": {"id": "1", "currency": "IDR",
		"lines": [{"id": "1", "product_id": "501", "qty": "-2", "unit_price": "abc"}]}}`)
	r = b.do("POST", "/v1/events", posKey, bad)
	require.Equal(t, http.StatusBadRequest, r.status)
	code, details := r.errorBody(t)
	require.Equal(t, api.CodeInvalidEvent, code)
	var pointers []string
	for _, d := range details {
		pointers = append(pointers, d.(map[string]any)["pointer"].(string))
	}
	require.Contains(t, pointers, "/occurred_at")
	require.Contains(t, pointers, "/order/lines/0/unit_price")

	r = b.do("POST", "/v1/events", posKey, []byte(`{"type": "pos.order.shipped"}`))
	require.Equal(t, http.StatusBadRequest, r.status)

	info, err := stream.Info(b.ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(1), info.State.Msgs, "nothing invalid was published")
	require.Equal(t, 2.0, b.requests("/v1/events", "202"))
	require.Equal(t, 2.0, b.requests("/v1/events", "400"))
}

// tableCounts counts the rows of every table of the ledger.
func tableCounts(t *testing.T, ctx context.Context, pool *pgxpool.Pool) map[string]int64 {
	t.Helper()
	rows, err := pool.Query(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1`)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.NotEmpty(t, tables)
	out := map[string]int64{}
	for _, tbl := range tables {
		var n int64
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{tbl}.Sanitize()).Scan(&n))
		out[tbl] = n
	}
	return out
}

func TestAPIQuoteAnswersAndChangesNothing(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, apiOptions{db: true})
	order := []byte(`{"id": "q1", "currency": "IDR", "customer_id": "77", "occurred_at": "2026-11-28T10:15:00+07:00",
		"company_id": "1", "lines": [{"id": "1", "product_id": "501", "category_ids": ["12"], "qty": 2, "unit_price": "25000"}]}`)

	r := b.do("POST", "/v1/quote", posKey, order)
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	code, _ := r.errorBody(t)
	require.Equal(t, api.CodeNoCatalog, code)

	b.applyCatalog(testCatalog)
	before := tableCounts(t, b.ctx, b.pool)
	r = b.do("POST", "/v1/quote", posKey, order)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var res events.OrderResult
	require.NoError(t, json.Unmarshal(r.body, &res))
	require.Equal(t, events.StatusQuote, res.Status)
	require.Equal(t, "q1", res.OrderID)
	require.Equal(t, "50000", res.Totals.Gross.String())
	require.Equal(t, "5000", res.Totals.Discount.String())
	require.Equal(t, "45000", res.Totals.Net.String())
	require.Equal(t, "2026-11-28T10:15:00+07:00", res.OccurredAt)
	require.Equal(t, before, tableCounts(t, b.ctx, b.pool), "a quote changes nothing")

	// Without occurred_at, the quote is as of now.
	r = b.do("POST", "/v1/quote", posKey, []byte(`{"id": "q2", "currency": "IDR",
		"lines": [{"id": "1", "product_id": "501", "qty": "1", "unit_price": "1000"}]}`))
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	require.NoError(t, json.Unmarshal(r.body, &res))
	require.Equal(t, "2026-11-28T10:00:00Z", res.OccurredAt)

	// Violations point into the body as sent.
	r = b.do("POST", "/v1/quote", posKey, []byte(`{"id": "q3", "currency": "IDR",
		"lines": [{"id": "1", "product_id": "501", "qty": "-1", "unit_price": "1000"}]}`))
	require.Equal(t, http.StatusBadRequest, r.status)
	code, details := r.errorBody(t)
	require.Equal(t, api.CodeInvalidOrder, code)
	require.Equal(t, "/lines/0/qty", details[0].(map[string]any)["pointer"])

	r = b.do("POST", "/v1/quote", posKey, []byte(`{"id": "q4", "currency": "EUR",
		"lines": [{"id": "1", "product_id": "501", "qty": "1", "unit_price": "1000"}]}`))
	require.Equal(t, http.StatusBadRequest, r.status)
	_, details = r.errorBody(t)
	require.Equal(t, "/currency", details[0].(map[string]any)["pointer"])

	r = b.do("POST", "/v1/quote", posKey, []byte(`[1, 2]`))
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Equal(t, before, tableCounts(t, b.ctx, b.pool))
}

func TestAPICustomers(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, apiOptions{db: true})
	r := b.do("GET", "/v1/customers/77", posKey, nil)
	require.Equal(t, http.StatusServiceUnavailable, r.status, "no catalog yet")

	cat := b.applyCatalog(testCatalog)
	r = b.do("GET", "/v1/customers/77", posKey, nil)
	require.Equal(t, http.StatusNotFound, r.status)
	code, _ := r.errorBody(t)
	require.Equal(t, api.CodeUnknownCustomer, code)
	require.Equal(t, 1.0, b.requests("/v1/customers/{id}", "404"))

	ev, err := events.Decode(paidEvent("odoo1:pos.order:1042:paid", "1042", "77"))
	require.NoError(t, err)
	require.NoError(t, pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
		_, err := b.store.Process(b.ctx, tx, cat, ev, 1)
		return err
	}))
	r = b.do("GET", "/v1/customers/77", posKey, nil)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	m := r.json(t)
	require.Equal(t, "77", m["customer_id"])
	require.Equal(t, "45", m["balance"], "45000 net earns 45 points")
	require.Len(t, m["lots"], 1)
}

func TestAPICatalogPut(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, apiOptions{db: true})
	r := b.do("PUT", "/v1/catalog", adminKey, []byte(`
currency: idr
money_decimals: -1
programs:
  - {id: p1, layer: sideways, reward: {percent: "10"}}
`))
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s", r.body)
	code, details := r.errorBody(t)
	require.Equal(t, api.CodeInvalidCatalog, code)
	require.GreaterOrEqual(t, len(details), 3, "every violation is listed: %s", r.body)
	var pointers []string
	for _, d := range details {
		pointers = append(pointers, d.(map[string]any)["pointer"].(string))
	}
	require.Contains(t, pointers, "/currency")
	require.Contains(t, pointers, "/money_decimals")
	require.Contains(t, pointers, "/programs/0/layer")

	r = b.do("PUT", "/v1/catalog", adminKey, []byte(testCatalog))
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	require.JSONEq(t, `{"version": 1}`, string(r.body))
	r = b.do("PUT", "/v1/catalog", adminKey, []byte(`{"currency": "IDR", "money_decimals": 0, "timezone": "Asia/Jakarta", "programs": []}`))
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	require.JSONEq(t, `{"version": 2}`, string(r.body))
	latest, err := ledger.LatestCatalog(b.ctx, b.pool)
	require.NoError(t, err)
	require.Equal(t, int64(2), latest.Version)
	require.Equal(t, http.StatusForbidden, b.do("PUT", "/v1/catalog", posKey, []byte(testCatalog)).status)
}

// webhookBody is what Odoo's "Send Webhook Notification" posts for a
// pos.order with the fields name and state chosen.
