package grpcapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/promoengine/promoengine/internal/api"
	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/internal/engine"
	"github.com/promoengine/promoengine/internal/grpcapi"
	"github.com/promoengine/promoengine/internal/identity"
	"github.com/promoengine/promoengine/internal/testdb"
	"github.com/promoengine/promoengine/internal/testnats"
	promov1 "github.com/promoengine/promoengine/pkg/promov1"
	"github.com/promoengine/promoengine/pkg/promov1/promov1connect"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).backgroundHealthCheck"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

const (
	posKey   = "pos-key-5b1e9d"
	adminKey = "admin-key-c04f7a"
	storeKey = "store-key-1-3-9e2a" // pos, company 1, point of sale 3 only
)

const testCatalog = `
currency: IDR
money_decimals: 0
timezone: Asia/Jakarta
points:
  decimals: 0
  earn: [{per_amount: "1000", points: "1"}]
  expiry: {months: 12}
  redeem: {value: "1", min: "1", max_share: "0.5"}
membership:
  default_path: member
  paths:
    - id: member
      qualify: {window_days: 365}
      retention_days: 365
      downgrade: one_level
      levels:
        - {id: classic, min: "0"}
        - {id: silver, min: "40000", discount_percent: "1"}
programs:
  - {id: drinks-10, layer: item, when: {products: {categories: ["12"]}}, reward: {percent: "10"}}
`

// bundle is a real engine (order worker, outbox relay, HTTP API with the
// gRPC service) on an embedded NATS server and a PostgreSQL database, with
// a client of each kind on loopback.
type bundle struct {
	t       testing.TB
	ctx     context.Context
	e       *engine.Engine
	js      jetstream.JetStream
	base    string // http://127.0.0.1:port
	httpc   *http.Client
	grpc    *grpc.ClientConn
	connect promov1connect.PromoServiceClient // the Connect protocol, JSON
	web     promov1connect.PromoServiceClient // gRPC-Web, binary
	h2c     promov1connect.PromoServiceClient // connect-go's gRPC, HTTP/2 cleartext
}

func setup(t testing.TB) *bundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	ns := testnats.New(t)
	loaded, err := config.Load()
	require.NoError(t, err)
	cfg := *loaded
	cfg.NATSURL, cfg.DatabaseURL, cfg.HTTPAddr = ns.URL(), testdb.NewDatabase(t), "127.0.0.1:0"
	cfg.APIKeys = config.APIKeys{
		{Key: posKey, Role: config.RolePOS},
		{Key: adminKey, Role: config.RoleAdmin},
		{Key: storeKey, Role: config.RolePOS, Scope: identity.Scope{CompanyIDs: []string{"1"}, PosConfigIDs: []string{"3"}}},
	}
	require.NoError(t, cfg.Validate())
	e, err := engine.Start(ctx, &cfg, []string{config.WorkerOrders, config.WorkerOutbox, config.WorkerAPI}, zerolog.Nop())
	require.NoError(t, err)
	t.Cleanup(e.Stop)

	b := &bundle{t: t, ctx: ctx, e: e, js: ns.JetStream(t), base: "http://" + e.HTTPAddr()}
	h1 := &http.Transport{}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	h2 := &http.Transport{Protocols: &p}
	t.Cleanup(h1.CloseIdleConnections)
	t.Cleanup(h2.CloseIdleConnections)
	b.httpc = &http.Client{Transport: h1}
	b.connect = promov1connect.NewPromoServiceClient(b.httpc, b.base, connect.WithProtoJSON())
	b.web = promov1connect.NewPromoServiceClient(b.httpc, b.base, connect.WithGRPCWeb())
	b.h2c = promov1connect.NewPromoServiceClient(&http.Client{Transport: h2}, b.base, connect.WithGRPC())
	b.grpc, err = grpc.NewClient(e.HTTPAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.grpc.Close() })
	return b
}

// do is an HTTP API request.
func (b *bundle) do(method, path, key string, body []byte) (int, []byte) {
	b.t.Helper()
	req, err := http.NewRequestWithContext(b.ctx, method, b.base+path, bytes.NewReader(body))
	require.NoError(b.t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := b.httpc.Do(req)
	require.NoError(b.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(b.t, err)
	return resp.StatusCode, data
}

// rpcError is a refusal as a client sees it.
type rpcError struct {
	code   connect.Code
	detail *promov1.Error
}

// Transports of the tests: a real gRPC client (grpc-go), and connect-go
// speaking the Connect protocol with JSON, gRPC-Web, and gRPC.
var transports = []string{"grpc-go", "connect", "grpc-web", "connect-grpc"}

// unary knows, for each procedure, its answer type and how connect-go's
// generated client calls it.
var unary = map[string]struct {
	answer func() proto.Message
	call   func(promov1connect.PromoServiceClient) func(context.Context, proto.Message, string) (proto.Message, error)
}{
	promov1connect.PromoServiceQuoteProcedure: {
		func() proto.Message { return &promov1.OrderResult{} },
		func(c promov1connect.PromoServiceClient) func(context.Context, proto.Message, string) (proto.Message, error) {
			return connectCall(c.Quote)
		}},
	promov1connect.PromoServicePublishEventProcedure: {
		func() proto.Message { return &promov1.PublishEventResponse{} },
		func(c promov1connect.PromoServiceClient) func(context.Context, proto.Message, string) (proto.Message, error) {
			return connectCall(c.PublishEvent)
		}},
	promov1connect.PromoServiceGetCustomerProcedure: {
		func() proto.Message { return &promov1.Customer{} },
		func(c promov1connect.PromoServiceClient) func(context.Context, proto.Message, string) (proto.Message, error) {
			return connectCall(c.GetCustomer)
		}},
	promov1connect.PromoServiceApplyCatalogProcedure: {
		func() proto.Message { return &promov1.ApplyCatalogResponse{} },
		func(c promov1connect.PromoServiceClient) func(context.Context, proto.Message, string) (proto.Message, error) {
			return connectCall(c.ApplyCatalog)
		}},
}

func connectCall[Req, Res any](f func(context.Context, *connect.Request[Req]) (*connect.Response[Res], error)) func(context.Context, proto.Message, string) (proto.Message, error) {
	return func(ctx context.Context, req proto.Message, key string) (proto.Message, error) {
		r := connect.NewRequest(any(req).(*Req))
		if key != "" {
			r.Header().Set("Authorization", "Bearer "+key)
		}
		resp, err := f(ctx, r)
		if err != nil {
			return nil, err
		}
		return any(resp.Msg).(proto.Message), nil
	}
}

// rpc calls a unary procedure over a transport.
func (b *bundle) rpc(transport, procedure, key string, req proto.Message) (proto.Message, *rpcError) {
	b.t.Helper()
	u, ok := unary[procedure]
	require.True(b.t, ok, procedure)
	if transport == "grpc-go" {
		ctx := b.ctx
		if key != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
		}
		res := u.answer()
		if err := b.grpc.Invoke(ctx, procedure, req, res); err != nil {
			return nil, grpcError(b.t, err)
		}
		return res, nil
	}
	client := map[string]promov1connect.PromoServiceClient{"connect": b.connect, "grpc-web": b.web, "connect-grpc": b.h2c}[transport]
	require.NotNil(b.t, client, transport)
	res, err := u.call(client)(b.ctx, req, key)
	if err != nil {
		return nil, connectError(b.t, err)
	}
	return res, nil
}

func grpcError(t testing.TB, err error) *rpcError {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok { // called from a stream's goroutine too: no FailNow
		t.Errorf("not a status: %v", err)
		return &rpcError{code: connect.CodeUnknown}
	}
	e := &rpcError{code: connect.Code(st.Code())}
	for _, d := range st.Details() {
		if pe, ok := d.(*promov1.Error); ok {
			e.detail = pe
		}
	}
	return e
}

func connectError(t testing.TB, err error) *rpcError {
	t.Helper()
	var ce *connect.Error
	require.ErrorAs(t, err, &ce)
	e := &rpcError{code: ce.Code()}
	for _, d := range ce.Details() {
		v, derr := d.Value()
		require.NoError(t, derr)
		if pe, ok := v.(*promov1.Error); ok {
			e.detail = pe
		}
	}
	return e
}

// requireSameAnswer checks that an RPC answer is the HTTP API's answer:
//   - the HTTP JSON reads as the contract's message with nothing left over
//     (every field the HTTP API writes is in the contract), and written
//     back with protojson it is byte-equal to the RPC answer written with
//     protojson (grpcapi.JSON: the SPEC's field names);
//   - when asText, the RPC answer's protojson is byte-equal to the HTTP
//     JSON itself, once both leave out what protobuf's JSON cannot say
//     (a null; an empty list that the HTTP API omits).
func requireSameAnswer(t testing.TB, httpJSON []byte, got proto.Message, asText bool) {
	t.Helper()
	parsed := got.ProtoReflect().New().Interface()
	require.NoError(t, protojson.Unmarshal(httpJSON, parsed), "the HTTP answer reads as %T: %s", got, httpJSON)
	want, err := grpcapi.Compact(parsed)
	require.NoError(t, err)
	have, err := grpcapi.Compact(got)
	require.NoError(t, err)
	require.Equal(t, string(want), string(have))
	if asText {
		require.Equal(t, string(normalize(t, httpJSON)), string(normalize(t, have)))
	}
}

// requireSameError checks that an RPC refusal is the HTTP API's: the
// status code is the one of its error code, and the promo.v1.Error detail
// is the body's error object.
func requireSameError(t testing.TB, httpStatus int, httpBody []byte, got *rpcError) {
	t.Helper()
	require.NotNil(t, got, "refused like HTTP %d: %s", httpStatus, httpBody)
	require.GreaterOrEqual(t, httpStatus, 400)
	var body struct {
		Error json.RawMessage `json:"error"`
	}
	require.NoError(t, json.Unmarshal(httpBody, &body))
	require.NotNil(t, got.detail, "a promo.v1.Error detail")
	requireSameAnswer(t, body.Error, got.detail, true)
	require.Equal(t, grpcapi.CodeOf(got.detail.Code), got.code, "the status of %s", got.detail.Code)
}

// normalize writes JSON compact, in its own key order, without null
// members and empty lists.
func normalize(t testing.TB, data []byte) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var out bytes.Buffer
	var write func() bool // false: the value was left out
	write = func() bool {
		tok, err := dec.Token()
		require.NoError(t, err)
		switch tok {
		case json.Delim('{'):
			var obj bytes.Buffer
			obj.WriteByte('{')
			n := 0
			for dec.More() {
				key, err := dec.Token()
				require.NoError(t, err)
				mark := out.Len()
				if !write() {
					out.Truncate(mark)
					continue
				}
				value := append([]byte(nil), out.Bytes()[mark:]...)
				out.Truncate(mark)
				if n > 0 {
					obj.WriteByte(',')
				}
				k, _ := json.Marshal(key)
				obj.Write(k)
				obj.WriteByte(':')
				obj.Write(value)
				n++
			}
			_, err := dec.Token()
			require.NoError(t, err)
			obj.WriteByte('}')
			out.Write(obj.Bytes())
			return true
		case json.Delim('['):
			mark := out.Len()
			out.WriteByte('[')
			n := 0
			for dec.More() {
				if n > 0 {
					out.WriteByte(',')
				}
				inner := out.Len()
				if !write() {
					out.Truncate(inner)
					out.WriteString("null")
				}
				n++
			}
			_, err := dec.Token()
			require.NoError(t, err)
			out.WriteByte(']')
			if n == 0 {
				out.Truncate(mark)
				return false
			}
			return true
		case nil:
			return false
		}
		v, err := json.Marshal(tok)
		require.NoError(t, err)
		out.Write(v)
		return true
	}
	if !write() {
		return nil
	}
	return out.Bytes()
}

// paidEvent is a pos.order.paid event of customer 77 at company/pos.
func paidEvent(eventID, orderID, company, pos string) []byte {
	return []byte(fmt.Sprintf(`{"event_id": %q, "type": "pos.order.paid", "occurred_at": "2026-11-28T10:15:00+07:00",
		"company_id": %q, "pos_config_id": %q, "order": {"id": %q, "name": "Shop/%s", "currency": "IDR", "customer_id": "77",
		"lines": [{"id": "1", "product_id": "501", "category_ids": ["12"], "tag_ids": ["drink"], "qty": "2", "unit_price": "25000"},
		          {"id": "2", "product_id": "502", "qty": "1", "unit_price": "9000"}]}}`, eventID, company, pos, orderID, orderID))
}

// read reads a JSON body as a request message, as a client generated from
// the contract would build it.
func read[M proto.Message](t testing.TB, m M, body []byte) M {
	t.Helper()
	require.NoError(t, protojson.Unmarshal(body, m), "%s", body)
	return m
}

// waitResult waits for the order worker's result of an input event.
func (b *bundle) waitResult(causation string) []byte {
	b.t.Helper()
	s, err := b.js.Stream(b.ctx, "PROMO_RESULTS")
	require.NoError(b.t, err)
	var data []byte
	require.Eventually(b.t, func() bool {
		info, err := s.Info(b.ctx)
		if err != nil {
			return false
		}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
			m, err := s.GetMsg(b.ctx, seq)
			if err != nil {
				continue
			}
			var r struct {
				CausationID string `json:"causation_id"`
			}
			if json.Unmarshal(m.Data, &r) == nil && r.CausationID == causation {
				data = m.Data
				return true
			}
		}
		return false
	}, time.Minute, 20*time.Millisecond, "the result of %s", causation)
	return data
}

func TestEveryCallAnswersAsHTTP(t *testing.T) {
	t.Parallel()
	b := setup(t)
	quoteBody := []byte(`{"id": "q1", "currency": "IDR", "customer_id": "77", "occurred_at": "2026-11-29T09:00:00+07:00",
		"company_id": "1", "pos_config_id": "3", "redeem_points": "10",
		"lines": [{"id": "1", "product_id": "501", "category_ids": ["12"], "qty": "3", "unit_price": "25000"}]}`)

	// Before any catalog: no_catalog, alike everywhere.
	st, body := b.do("POST", "/v1/quote", posKey, quoteBody)
	for _, tr := range transports {
		_, e := b.rpc(tr, promov1connect.PromoServiceQuoteProcedure, posKey, read(t, &promov1.QuoteRequest{}, quoteBody))
		requireSameError(t, st, body, e)
		require.Equal(t, connect.CodeFailedPrecondition, e.code, tr)
	}

	// ApplyCatalog: refused whole with every violation, then applied.
	badCatalog := "currency: idr\nmoney_decimals: -1\nprograms:\n  - {id: p1, layer: sideways, reward: {percent: \"10\"}}\n"
	st, body = b.do("PUT", "/v1/catalog", adminKey, []byte(badCatalog))
	require.Equal(t, http.StatusUnprocessableEntity, st)
	for _, tr := range transports {
		_, e := b.rpc(tr, promov1connect.PromoServiceApplyCatalogProcedure, adminKey, &promov1.ApplyCatalogRequest{Document: badCatalog})
		requireSameError(t, st, body, e)
		require.Equal(t, connect.CodeInvalidArgument, e.code)
		require.GreaterOrEqual(t, len(e.detail.Details), 3, "every violation: %v", e.detail)
	}
	st, body = b.do("PUT", "/v1/catalog", adminKey, []byte(testCatalog))
	require.Equal(t, http.StatusOK, st, "%s", body)
	require.JSONEq(t, `{"version": 1}`, string(body))
	for i, tr := range transports {
		res, e := b.rpc(tr, promov1connect.PromoServiceApplyCatalogProcedure, adminKey, &promov1.ApplyCatalogRequest{Document: testCatalog})
		require.Nil(t, e, tr)
		// The same answer as HTTP's, for the next version.
		requireSameAnswer(t, []byte(fmt.Sprintf(`{"version": %d}`, i+2)), res, true)
	}
	require.Eventually(t, func() bool {
		st, _ := b.do("GET", "/v1/customers/nobody", posKey, nil)
		return st == http.StatusNotFound // the engine switched to a catalog
	}, time.Minute, 20*time.Millisecond)

	// PublishEvent: the same event through every door lands once, on the
	// keyed subject, and the answers agree.
	ev := paidEvent("odoo1:pos.order:1042:paid", "1042", "1", "3")
	st, body = b.do("POST", "/v1/events", posKey, ev)
	require.Equal(t, http.StatusAccepted, st, "%s", body)
	var first api.Published
	require.NoError(t, json.Unmarshal(body, &first))
	require.False(t, first.Duplicate)
	require.True(t, strings.HasPrefix(first.Subject, "pos.orders.paid."), "keyed: %s", first.Subject)
	st, body = b.do("POST", "/v1/events", posKey, ev) // now a duplicate, as every call below
	require.Equal(t, http.StatusAccepted, st)
	for _, tr := range transports {
		res, e := b.rpc(tr, promov1connect.PromoServicePublishEventProcedure, posKey, read(t, &promov1.InputEvent{}, ev))
		require.Nil(t, e, tr)
		// stream_seq is a 64-bit integer: a string in protobuf's JSON, so
		// the text is compared field by field.
		requireSameAnswer(t, body, res, false)
		p := res.(*promov1.PublishEventResponse)
		require.Equal(t, first.StreamSeq, p.StreamSeq)
		require.Equal(t, first.Subject, p.Subject)
		require.True(t, p.Duplicate, tr)
		text, err := grpcapi.Compact(p)
		require.NoError(t, err)
		require.JSONEq(t, strings.Replace(string(body), fmt.Sprintf(`"stream_seq":%d`, first.StreamSeq), fmt.Sprintf(`"stream_seq":"%d"`, first.StreamSeq), 1), string(text))
	}
	// A new event through gRPC is published as POST /v1/events would have:
	// its own keyed subject, compact JSON the worker decodes.
	ev2 := paidEvent("odoo1:pos.order:1043:paid", "1043", "1", "3")
	res, e := b.rpc("grpc-go", promov1connect.PromoServicePublishEventProcedure, storeKey, read(t, &promov1.InputEvent{}, ev2))
	require.Nil(t, e)
	p := res.(*promov1.PublishEventResponse)
	require.False(t, p.Duplicate)
	require.Equal(t, first.Subject, p.Subject, "the same customer, the same key")
	stream, err := b.js.Stream(b.ctx, "POS_ORDERS")
	require.NoError(t, err)
	stored, err := stream.GetMsg(b.ctx, p.StreamSeq)
	require.NoError(t, err)
	require.Equal(t, "odoo1:pos.order:1043:paid", stored.Header.Get(jetstream.MsgIDHeader))
	require.JSONEq(t, string(ev2), string(stored.Data))
	b.waitResult("odoo1:pos.order:1042:paid")
	b.waitResult("odoo1:pos.order:1043:paid")

	// Invalid events: the same violations, pointing into the event.
	bad := []byte(`{"event_id": "x", "type": "pos.order.paid", "occurred_at": "2026-11-28 10:15",
		"company_id": "1", "pos_config_id": "3", "order": {"id": "1", "currency": "IDR",
		"lines": [{"id": "1", "product_id": "501", "qty": "-2", "unit_price": "abc"}]}}`)
	st, body = b.do("POST", "/v1/events", posKey, bad)
	require.Equal(t, http.StatusBadRequest, st)
	for _, tr := range transports {
		_, e := b.rpc(tr, promov1connect.PromoServicePublishEventProcedure, posKey, read(t, &promov1.InputEvent{}, bad))
		requireSameError(t, st, body, e)
		require.Equal(t, connect.CodeInvalidArgument, e.code)
	}

	// Quote: the customer has points and a level now.
	st, body = b.do("POST", "/v1/quote", posKey, quoteBody)
	require.Equal(t, http.StatusOK, st, "%s", body)
	require.Contains(t, string(body), `"membership":`)
	require.Contains(t, string(body), `"redeemed_lots":[{`)
	for _, tr := range transports {
		res, e := b.rpc(tr, promov1connect.PromoServiceQuoteProcedure, posKey, read(t, &promov1.QuoteRequest{}, quoteBody))
		require.Nil(t, e, tr)
		requireSameAnswer(t, body, res, true)
	}
	badQuote := []byte(`{"id": "q3", "currency": "EUR", "lines": [{"id": "1", "product_id": "501", "qty": "-1", "unit_price": "1000"}]}`)
	st, body = b.do("POST", "/v1/quote", posKey, badQuote)
	require.Equal(t, http.StatusBadRequest, st)
	for _, tr := range transports {
		_, e := b.rpc(tr, promov1connect.PromoServiceQuoteProcedure, posKey, read(t, &promov1.QuoteRequest{}, badQuote))
		requireSameError(t, st, body, e)
		require.Equal(t, "/lines/0/qty", e.detail.Details[0].Pointer)
	}

	// GetCustomer, found and not.
	st, body = b.do("GET", "/v1/customers/77", posKey, nil)
	require.Equal(t, http.StatusOK, st, "%s", body)
	require.Contains(t, string(body), `"expires_at":"2027-`)
	for _, tr := range transports {
		res, e := b.rpc(tr, promov1connect.PromoServiceGetCustomerProcedure, posKey, &promov1.GetCustomerRequest{CustomerId: "77"})
		require.Nil(t, e, tr)
		requireSameAnswer(t, body, res, true)
	}
	st, body = b.do("GET", "/v1/customers/78", posKey, nil)
	require.Equal(t, http.StatusNotFound, st)
	for _, tr := range transports {
		_, e := b.rpc(tr, promov1connect.PromoServiceGetCustomerProcedure, posKey, &promov1.GetCustomerRequest{CustomerId: "78"})
		requireSameError(t, st, body, e)
		require.Equal(t, connect.CodeNotFound, e.code)
	}
}

func TestAuthenticationRolesStoresAndLimitsAsHTTP(t *testing.T) {
	t.Parallel()
	b := setup(t)
	order := []byte(`{"id": "q1", "currency": "IDR", "company_id": "1", "pos_config_id": "3",
		"lines": [{"id": "1", "product_id": "501", "qty": "1", "unit_price": "1000"}]}`)
	calls := []struct {
		method, path, procedure string
		body                    []byte
		req                     proto.Message
	}{
		{"POST", "/v1/quote", promov1connect.PromoServiceQuoteProcedure, order, read(t, &promov1.QuoteRequest{}, order)},
		{"POST", "/v1/events", promov1connect.PromoServicePublishEventProcedure, paidEvent("e1", "1", "2", "3"),
			read(t, &promov1.InputEvent{}, paidEvent("e1", "1", "2", "3"))},
		{"GET", "/v1/customers/77", promov1connect.PromoServiceGetCustomerProcedure, nil, &promov1.GetCustomerRequest{CustomerId: "77"}},
		{"PUT", "/v1/catalog", promov1connect.PromoServiceApplyCatalogProcedure, []byte(testCatalog), &promov1.ApplyCatalogRequest{Document: testCatalog}},
	}
	for _, c := range calls {
		// No credential, a wrong one, one a character short: 401, with the
		// same message.
		for _, key := range []string{"", "nope", posKey[:len(posKey)-1]} {
			st, body := b.do(c.method, c.path, key, c.body)
			require.Equal(t, http.StatusUnauthorized, st)
			for _, tr := range transports {
				_, e := b.rpc(tr, c.procedure, key, c.req)
				requireSameError(t, st, body, e)
				require.Equal(t, connect.CodeUnauthenticated, e.code)
			}
		}
	}
	// The pos role may not apply a catalog: 403 forbidden, the message names
	// the operation (the route, the procedure).
	st, body := b.do("PUT", "/v1/catalog", posKey, []byte(testCatalog))
	require.Equal(t, http.StatusForbidden, st)
	for _, tr := range transports {
		_, e := b.rpc(tr, promov1connect.PromoServiceApplyCatalogProcedure, posKey, &promov1.ApplyCatalogRequest{Document: testCatalog})
		require.NotNil(t, e)
		require.Equal(t, connect.CodePermissionDenied, e.code)
		require.Equal(t, api.CodeForbidden, e.detail.Code)
		require.Equal(t, strings.Replace(string(body), "/v1/catalog", promov1connect.PromoServiceApplyCatalogProcedure, 1),
			`{"error":{"code":"forbidden","message":"`+e.detail.Message+`"}}`+"\n")
	}
	// A key scoped to company 1, point of sale 3: another store's order is
	// forbidden_store, its own goes through.
	for _, c := range calls[:2] {
		st, body := b.do(c.method, c.path, storeKey, c.body)
		for _, tr := range transports {
			res, e := b.rpc(tr, c.procedure, storeKey, c.req)
			if st >= 400 {
				requireSameError(t, st, body, e)
			} else {
				require.Nil(t, e, "%s %s: %s", tr, c.procedure, body)
				require.NotNil(t, res)
			}
		}
	}
	st, body = b.do("POST", "/v1/quote", storeKey, order)
	require.Equal(t, http.StatusServiceUnavailable, st, "the key's own store; no catalog yet: %s", body)
	st, _ = b.do("POST", "/v1/events", storeKey, paidEvent("e1", "1", "2", "3"))
	require.Equal(t, http.StatusForbidden, st, "company 2 is outside the key's stores")

	// Limits: an event over 1 MiB (plus room) is refused as too large.
	big := &promov1.QuoteRequest{Id: "big", Currency: "IDR", Name: strings.Repeat("x", api.MaxEventBody)}
	bigBody, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(big)
	require.NoError(t, err)
	st, body = b.do("POST", "/v1/quote", posKey, bigBody)
	require.Equal(t, http.StatusRequestEntityTooLarge, st)
	for _, tr := range transports {
		_, e := b.rpc(tr, promov1connect.PromoServiceQuoteProcedure, posKey, big)
		requireSameError(t, st, body, e)
		require.Equal(t, connect.CodeResourceExhausted, e.code)
	}
	// Past the largest message (a catalog of 4 MiB): refused by the
	// transport before the service sees it.
	for _, tr := range transports {
		_, e := b.rpc(tr, promov1connect.PromoServiceApplyCatalogProcedure, adminKey,
			&promov1.ApplyCatalogRequest{Document: strings.Repeat(" ", api.MaxCatalogBody+128<<10)})
		require.NotNil(t, e, tr)
		require.Equal(t, connect.CodeResourceExhausted, e.code, tr)
	}

	// Health and reflection answer without a key.
	hc, err := healthpb.NewHealthClient(b.grpc).Check(b.ctx, &healthpb.HealthCheckRequest{Service: promov1connect.PromoServiceName})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, hc.Status)
	_, err = healthpb.NewHealthClient(b.grpc).Check(b.ctx, &healthpb.HealthCheckRequest{Service: "nope.v1.Nothing"})
	require.Equal(t, "NotFound", status.Code(err).String())
	rc, err := reflectpb.NewServerReflectionClient(b.grpc).ServerReflectionInfo(b.ctx)
	require.NoError(t, err)
	require.NoError(t, rc.Send(&reflectpb.ServerReflectionRequest{MessageRequest: &reflectpb.ServerReflectionRequest_ListServices{}}))
	answer, err := rc.Recv()
	require.NoError(t, err)
	require.NoError(t, rc.CloseSend())
	var services []string
	for _, s := range answer.GetListServicesResponse().GetService() {
		services = append(services, s.GetName())
	}
	require.Contains(t, services, promov1connect.PromoServiceName)
}

// watch opens WatchResults over a transport and returns its results.
func (b *bundle) watch(ctx context.Context, transport, key, company, pos string) (<-chan *promov1.OrderResult, <-chan *rpcError) {
	b.t.Helper()
	results, errs := make(chan *promov1.OrderResult, 16), make(chan *rpcError, 1)
	req := &promov1.WatchResultsRequest{CompanyId: company, PosConfigId: pos}
	switch transport {
	case "grpc-go":
		if key != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
		}
		s, err := b.grpc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, promov1connect.PromoServiceWatchResultsProcedure)
		require.NoError(b.t, err)
		require.NoError(b.t, s.SendMsg(req))
		require.NoError(b.t, s.CloseSend())
		go func() {
			for {
				m := &promov1.OrderResult{}
				if err := s.RecvMsg(m); err != nil {
					if ctx.Err() == nil {
						errs <- grpcError(b.t, err)
					}
					return
				}
				results <- m
			}
		}()
	default:
		client := map[string]promov1connect.PromoServiceClient{"connect": b.connect, "grpc-web": b.web, "connect-grpc": b.h2c}[transport]
		r := connect.NewRequest(req)
		if key != "" {
			r.Header().Set("Authorization", "Bearer "+key)
		}
		s, err := client.WatchResults(ctx, r)
		require.NoError(b.t, err)
		go func() {
			defer s.Close()
			for s.Receive() {
				results <- s.Msg()
			}
			if s.Err() != nil && ctx.Err() == nil {
				errs <- connectError(b.t, s.Err())
			}
		}()
	}
	return results, errs
}

func next(t *testing.T, results <-chan *promov1.OrderResult, errs <-chan *rpcError) *promov1.OrderResult {
	t.Helper()
	select {
	case r := <-results:
		return r
	case e := <-errs:
		t.Fatalf("the watch ended: %v %v", e.code, e.detail)
	case <-time.After(time.Minute):
		t.Fatal("no result within a minute")
	}
	return nil
}

func TestWatchResultsStreamsTheStoresResults(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, e := b.rpc("grpc-go", promov1connect.PromoServiceApplyCatalogProcedure, adminKey, &promov1.ApplyCatalogRequest{Document: testCatalog})
	require.Nil(t, e)
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()

	// Refusals come as the stream's error.
	_, errs := b.watch(ctx, "grpc-go", "", "1", "")
	require.Equal(t, connect.CodeUnauthenticated, (<-errs).code)
	_, errs = b.watch(ctx, "connect", storeKey, "2", "3")
	e = <-errs
	require.Equal(t, connect.CodePermissionDenied, e.code)
	require.Equal(t, api.CodeForbiddenStore, e.detail.Code)
	_, errs = b.watch(ctx, "grpc-web", storeKey, "1", "") // every pos of company 1: wider than the key
	require.Equal(t, api.CodeForbiddenStore, (<-errs).detail.Code)

	type watch struct {
		name    string
		results <-chan *promov1.OrderResult
		errs    <-chan *rpcError
	}
	var company1 []watch
	for _, tr := range transports {
		r, e := b.watch(ctx, tr, storeKey, "1", "3")
		company1 = append(company1, watch{tr, r, e})
	}
	company2, errs2 := b.watch(ctx, "grpc-go", posKey, "2", "")

	publish := func(eventID, orderID, company string) []byte {
		t.Helper()
		_, e := b.rpc("connect", promov1connect.PromoServicePublishEventProcedure, posKey,
			read(t, &promov1.InputEvent{}, paidEvent(eventID, orderID, company, "3")))
		require.Nil(t, e)
		return b.waitResult(eventID)
	}
	a := publish("w:1", "2001", "1")
	for _, w := range company1 {
		got := next(t, w.results, w.errs)
		require.Equal(t, "w:1", got.CausationId, w.name)
		// The result as the pipeline published it on PROMO_RESULTS.
		requireSameAnswer(t, a, got, true)
	}
	other := publish("w:2", "2002", "2")
	got := next(t, company2, errs2)
	require.Equal(t, "w:2", got.CausationId)
	requireSameAnswer(t, other, got, true)
	c := publish("w:3", "2003", "1")
	for _, w := range company1 {
		got := next(t, w.results, w.errs)
		require.Equal(t, "w:3", got.CausationId, "%s: company 2's result is not company 1's", w.name)
		requireSameAnswer(t, c, got, true)
	}
}

// BenchmarkQuote measures a quote's latency through the HTTP API and
// through the gRPC service (grpc-go and connect-go clients), on one engine,
// for the same order.
func BenchmarkQuote(b *testing.B) {
	bb := setup(b)
	_, e := bb.rpc("grpc-go", promov1connect.PromoServiceApplyCatalogProcedure, adminKey, &promov1.ApplyCatalogRequest{Document: testCatalog})
	require.Nil(b, e)
	body := []byte(`{"id": "q1", "currency": "IDR", "occurred_at": "2026-11-29T09:00:00+07:00", "company_id": "1", "pos_config_id": "3",
		"lines": [{"id": "1", "product_id": "501", "category_ids": ["12"], "qty": "3", "unit_price": "25000"},
		          {"id": "2", "product_id": "502", "qty": "1", "unit_price": "9000"}]}`)
	req := read(b, &promov1.QuoteRequest{}, body)
	require.Eventually(b, func() bool {
		_, e := bb.rpc("grpc-go", promov1connect.PromoServiceQuoteProcedure, posKey, req)
		return e == nil
	}, time.Minute, 20*time.Millisecond)
	b.Run("http", func(b *testing.B) {
		for b.Loop() {
			if st, out := bb.do("POST", "/v1/quote", posKey, body); st != http.StatusOK {
				b.Fatalf("%d %s", st, out)
			}
		}
	})
	for _, tr := range transports {
		b.Run(tr, func(b *testing.B) {
			for b.Loop() {
				if _, e := bb.rpc(tr, promov1connect.PromoServiceQuoteProcedure, posKey, req); e != nil {
					b.Fatalf("%v %v", e.code, e.detail)
				}
			}
		})
	}
}
