package odoo_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/internal/odoo"
	"github.com/promoengine/promoengine/internal/odoo/odootest"
	"github.com/promoengine/promoengine/internal/testlog"
	"github.com/promoengine/promoengine/pkg/dec"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Idle keep-alive connections of the HTTP client close on their own
		// once the test server is gone.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

type bundle struct {
	odoo *odootest.Server
	c    *odoo.Client
	logs *testlog.Buffer
}

func setup(t *testing.T, timeout time.Duration) *bundle {
	t.Helper()
	srv := odootest.New(t)
	logs := &testlog.Buffer{}
	log := zerolog.New(logs).Level(zerolog.TraceLevel)
	return &bundle{odoo: srv, c: srv.Client(t, log, timeout), logs: logs}
}

func TestOdooClientExecuteKWSendsSpecCalls(t *testing.T) {
	t.Parallel()
	b := setup(t, 5*time.Second)
	b.odoo.Handle("pos.order", "promo_engine_apply", func(c odootest.Call) (any, *odootest.RPCError) { return true, nil })

	res, err := b.c.ExecuteKW(context.Background(), "pos.order", "promo_engine_apply",
		[]any{[]any{1042}, json.RawMessage(`{"status":"applied"}`)}, nil)
	require.NoError(t, err)
	require.JSONEq(t, `true`, string(res))

	calls := b.odoo.Calls()
	require.Len(t, calls, 2)
	require.JSONEq(t, `{"jsonrpc":"2.0","method":"call","id":1,"params":{"service":"common","method":"authenticate",
		"args":["odoo1","promo-bot","0123456789abcdef-secret-api-key",{}]}}`, string(calls[0].Body))
	require.JSONEq(t, `{"jsonrpc":"2.0","method":"call","id":2,"params":{"service":"object","method":"execute_kw",
		"args":["odoo1",7,"0123456789abcdef-secret-api-key","pos.order","promo_engine_apply",
		[[1042],{"status":"applied"}],{}]}}`, string(calls[1].Body))

	// The uid is cached: a second call does not authenticate again.
	_, err = b.c.ExecuteKW(context.Background(), "pos.order", "promo_engine_apply", []any{[]any{1}, map[string]any{}}, nil)
	require.NoError(t, err)
	require.Equal(t, 1, b.odoo.Authentications())
}

func TestOdooClientReauthenticatesOnceOnAccessDenied(t *testing.T) {
	t.Parallel()
	b := setup(t, 5*time.Second)
	ctx := context.Background()
	_, err := b.c.Authenticate(ctx)
	require.NoError(t, err)

	// One denial (a rotated key): authenticate again, repeat, succeed.
	b.odoo.Inject("execute_kw", odootest.Fault{Error: odootest.AccessDenied()})
	recs, err := b.c.SearchRead(ctx, "res.partner", nil, []string{"name"}, nil)
	require.NoError(t, err)
	require.Empty(t, recs)
	require.Equal(t, 2, b.odoo.Authentications())

	// Denied again after the fresh login: give up, do not loop.
	b.odoo.Inject("execute_kw", odootest.Fault{Error: odootest.AccessDenied()}, odootest.Fault{Error: odootest.AccessDenied()})
	_, err = b.c.SearchRead(ctx, "res.partner", nil, []string{"name"}, nil)
	require.ErrorIs(t, err, odoo.ErrAccessDenied)
	require.False(t, odoo.IsPermanent(err))
	require.Equal(t, 3, b.odoo.Authentications())
}

func TestOdooClientAuthenticateFalseIsAccessDenied(t *testing.T) {
	t.Parallel()
	srv := odootest.New(t)
	c, err := odoo.New(odoo.Config{URL: srv.URL, DB: srv.DB, Login: srv.Login, APIKey: "wrong-key"})
	require.NoError(t, err)
	_, err = c.ExecuteKW(context.Background(), "pos.order", "read", []any{[]int64{1}}, nil)
	require.ErrorIs(t, err, odoo.ErrAccessDenied)
	require.NotContains(t, err.Error(), "wrong-key")
}

func TestOdooClientErrorClassification(t *testing.T) {
	t.Parallel()
	b := setup(t, 300*time.Millisecond)
	ctx := context.Background()
	_, err := b.c.Authenticate(ctx)
	require.NoError(t, err)
	call := func() error {
		_, err := b.c.ExecuteKW(ctx, "pos.order", "read", []any{[]int64{}}, nil)
		return err
	}

	b.odoo.Inject("execute_kw", odootest.Fault{Error: odootest.ValidationError("Order 1042 is locked")})
	err = call()
	var oe *odoo.Error
	require.ErrorAs(t, err, &oe)
	require.Equal(t, 200, oe.Code)
	require.Equal(t, "odoo.exceptions.ValidationError", oe.DataName)
	require.Equal(t, "Order 1042 is locked", oe.DataMessage)
	require.Contains(t, string(oe.Raw), `"debug"`)
	require.True(t, odoo.IsPermanent(err))
	require.False(t, odoo.IsRetryable(err))

	for _, name := range []string{"odoo.exceptions.UserError", "odoo.exceptions.MissingError",
		"odoo.exceptions.AccessError", "odoo.addons.my_module.models.ValidationError"} {
		b.odoo.Inject("execute_kw", odootest.Fault{Error: &odootest.RPCError{Name: name, Message: "no"}})
		require.True(t, odoo.IsPermanent(call()), name)
	}

	b.odoo.Inject("execute_kw", odootest.Fault{Error: &odootest.RPCError{Name: "builtins.KeyError", Message: "'x'"}})
	err = call()
	require.False(t, odoo.IsPermanent(err))
	require.False(t, odoo.IsRetryable(err))

	b.odoo.Inject("execute_kw", odootest.Fault{Status: http.StatusBadGateway})
	err = call()
	var he *odoo.HTTPError
	require.ErrorAs(t, err, &he)
	require.Equal(t, 502, he.StatusCode)
	require.True(t, odoo.IsRetryable(err))

	b.odoo.Inject("execute_kw", odootest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "3"})
	err = call()
	require.True(t, odoo.IsRetryable(err))
	require.Equal(t, 3*time.Second, odoo.RetryAfter(err))

	b.odoo.Inject("execute_kw", odootest.Fault{Status: http.StatusNotFound})
	require.False(t, odoo.IsRetryable(call()))

	b.odoo.Inject("execute_kw", odootest.Fault{Delay: time.Second})
	err = call()
	var te *odoo.TransportError
	require.ErrorAs(t, err, &te)
	require.True(t, te.Timeout())
	require.True(t, odoo.IsRetryable(err))

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = b.c.ExecuteKW(cctx, "pos.order", "read", []any{[]int64{}}, nil)
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, odoo.IsRetryable(err))
}

func TestOdooClientNeverLeaksAPIKey(t *testing.T) {
	t.Parallel()
	b := setup(t, 300*time.Millisecond)
	ctx := context.Background()
	key := b.odoo.APIKey

	// An Odoo module that echoes its arguments in the traceback.
	b.odoo.Inject("execute_kw", odootest.Fault{Error: &odootest.RPCError{Name: "odoo.exceptions.UserError",
		Message: "bad call with key " + key, Debug: "Traceback: args=('odoo1', 7, '" + key + "')"}})
	_, err := b.c.ExecuteKW(ctx, "pos.order", "promo_engine_apply", []any{[]any{1}, map[string]any{}}, nil)
	require.Error(t, err)
	var oe *odoo.Error
	require.ErrorAs(t, err, &oe)
	require.NotContains(t, err.Error(), key)
	require.NotContains(t, string(oe.Raw), key)
	require.Contains(t, string(oe.Raw), "***")

	b.odoo.Inject("execute_kw", odootest.Fault{Status: 500}, odootest.Fault{Delay: time.Second})
	for range 2 {
		_, err = b.c.ExecuteKW(ctx, "pos.order", "read", []any{[]int64{1}}, nil)
		require.Error(t, err)
		require.NotContains(t, err.Error(), key)
	}
	b.odoo.Inject("execute_kw", odootest.Fault{Error: odootest.AccessDenied()})
	_, _ = b.c.ExecuteKW(ctx, "pos.order", "read", []any{[]int64{}}, nil)

	logs := b.logs.String()
	require.Contains(t, logs, "Odoo JSON-RPC call", "debug logging was on")
	require.NotContains(t, logs, key)
}

func TestOdooClientNewChecksConfig(t *testing.T) {
	t.Parallel()
	_, err := odoo.New(odoo.Config{URL: "odoo.example.com", DB: "d", Login: "l", APIKey: "k"})
	require.Error(t, err)
	_, err = odoo.New(odoo.Config{URL: "https://odoo.example.com", DB: "d", Login: "l"})
	require.Error(t, err)

	c, err := odoo.NewFromConfig(&config.Config{}, zerolog.Nop())
	require.NoError(t, err)
	require.Nil(t, c, "no PROMO_ODOO_URL, no client")
}

func TestOdooRecordAccessors(t *testing.T) {
	t.Parallel()
	var r odoo.Record
	require.NoError(t, json.Unmarshal([]byte(`{"id": 5, "name": "Shop/0042", "partner_id": [77, "Ann"],
		"user_id": false, "company_id": 1, "lines": [3, 1, 2], "qty": 2.0, "price": 0.1,
		"big": 25000.0, "date_order": "2026-11-28 03:15:00", "frac": "2026-11-28 03:15:00.250000"}`), &r))
	require.Equal(t, int64(5), r.ID())
	require.Equal(t, "Shop/0042", r.String("name"))
	require.Empty(t, r.String("user_id"))
	id, name, ok := r.Many2one("partner_id")
	require.True(t, ok)
	require.Equal(t, int64(77), id)
	require.Equal(t, "Ann", name)
	_, _, ok = r.Many2one("user_id")
	require.False(t, ok)
	id, _, ok = r.Many2one("company_id")
	require.True(t, ok, "load=None gives a bare id")
	require.Equal(t, int64(1), id)
	require.Equal(t, []int64{3, 1, 2}, r.IDs("lines"))
	for field, want := range map[string]string{"qty": "2", "price": "0.1", "big": "25000", "missing": "0"} {
		d, err := r.Decimal(field)
		require.NoError(t, err)
		require.Equal(t, want, d.String(), field)
	}
	at, err := r.Datetime("date_order")
	require.NoError(t, err)
	require.Equal(t, "2026-11-28T03:15:00Z", at.Format(time.RFC3339Nano))
	at, err = r.Datetime("frac")
	require.NoError(t, err)
	require.Equal(t, "2026-11-28T03:15:00.25Z", at.Format(time.RFC3339Nano))
	_, err = odoo.ParseDatetime("28/11/2026")
	require.Error(t, err)
	require.Equal(t, "1200", odoo.Reduce(dec.MustParse("1.2E+3")).String())
}

func TestOdooErrorsAreTyped(t *testing.T) {
	t.Parallel()
	e := &odoo.Error{Code: 200, DataName: "odoo.exceptions.AccessDenied", DataMessage: "Access Denied"}
	require.True(t, errors.Is(e, odoo.ErrAccessDenied))
	require.False(t, e.Permanent())
	require.True(t, strings.HasPrefix(e.Error(), "odoo: odoo.exceptions.AccessDenied"))
	require.False(t, (&odoo.Error{DataName: "odoo.exceptions.AccessError"}).AccessDenied())
	require.True(t, odoo.IsRetryable(&odoo.Error{DataName: "psycopg2.errors.SerializationFailure"}))
}

// A method returning None (action_archive) is answered without a result:
// the call succeeded, with a null result.
func TestOdooClientNoneResult(t *testing.T) {
	t.Parallel()
	b := setup(t, 5*time.Second)
	b.odoo.Handle("loyalty.program", "action_archive", func(odootest.Call) (any, *odootest.RPCError) { return odootest.None, nil })
	res, err := b.c.ExecuteKW(context.Background(), "loyalty.program", "action_archive", []any{[]int64{3}}, nil)
	require.NoError(t, err)
	require.JSONEq(t, "null", string(res))
}
