package api_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/api"
)

// Error bodies are bounded whatever the request: a 71 KB quote of 1,000
// lines with -1e100000 amounts answered 200 MB (issue 14).
func TestAPIErrorBodiesAreBounded(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, apiOptions{})
	var order strings.Builder
	order.WriteString(`{"currency":"IDR","lines":[`)
	for i := range 1000 {
		if i > 0 {
			order.WriteString(",")
		}
		fmt.Fprintf(&order, `{"id":"%d","product_id":"p","qty":1,"unit_price":-1e100000}`, i)
	}
	order.WriteString("]}")
	for _, path := range []string{"/v1/quote", "/v1/events"} {
		body := []byte(order.String())
		if path == "/v1/events" {
			body = []byte(`{"event_id":"e","type":"pos.order.paid","occurred_at":"2026-11-28T10:15:00+07:00","company_id":"1","pos_config_id":"1","order":` + order.String() + `}`)
		}
		r := b.do("POST", path, posKey, body)
		require.Equal(t, http.StatusBadRequest, r.status, path)
		require.Less(t, len(r.body), 32<<10, "%s answered %d bytes", path, len(r.body))
		_, details := r.errorBody(t)
		require.LessOrEqual(t, len(details), 21)
	}

	// Each violation quotes at most the head of a long value.
	r := b.do("POST", "/v1/quote", posKey, []byte(`{"currency":"`+strings.Repeat("X", 900_000)+`","lines":[{"id":"1","product_id":"p","qty":"1","unit_price":"1"}]}`))
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Less(t, len(r.body), 4<<10)

	// An alias bomb answered a 1 GB body.
	var cat strings.Builder
	cat.WriteString("currency: IDR\ntimezone: UTC\nx: &big \"" + strings.Repeat("a", 50_000) + "\"\nprograms:\n")
	cat.WriteString(" - &p {id: p, layer: item, reward: {percent: \"1\"}, valid: {from: *big, until: *big}}\n")
	for range 5000 {
		cat.WriteString(" - *p\n")
	}
	r = b.do("PUT", "/v1/catalog", adminKey, []byte(cat.String()))
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Less(t, len(r.body), 32<<10)
	code, _ := r.errorBody(t)
	require.Equal(t, api.CodeInvalidCatalog, code)
}

// What PostgreSQL would refuse is answered 400 naming the field, never 500:
// a NUL, invalid UTF-8 or an over-long id in a quote or in the path of
// GET /v1/customers/{id}.
func TestAPIRefusesWhatPostgreSQLWouldRefuse(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, apiOptions{db: true})
	b.applyCatalog(testCatalog)

	for _, tc := range []struct{ body, pointer string }{
		{`{"currency":"IDR","customer_id":"a\u0000b","lines":[{"id":"1","product_id":"p","qty":"1","unit_price":"1"}]}`, "/customer_id"},
		{`{"currency":"IDR","customer_id":"a` + "\xff" + `","lines":[{"id":"1","product_id":"p","qty":"1","unit_price":"1"}]}`, ""},
		{`{"currency":"IDR","customer_id":` + strings.Repeat("9", 3001) + `,"lines":[{"id":"1","product_id":"p","qty":"1","unit_price":"1"}]}`, "/customer_id"},
		{`{"currency":"IDR","occurred_at":"9999-01-01T00:00:00Z","lines":[{"id":"1","product_id":"p","qty":"1","unit_price":"1"}]}`, "/occurred_at"},
	} {
		r := b.do("POST", "/v1/quote", posKey, []byte(tc.body))
		require.Equal(t, http.StatusBadRequest, r.status, "%.80s: %s", tc.body, r.body)
		code, details := r.errorBody(t)
		require.Equal(t, api.CodeInvalidOrder, code)
		require.Equal(t, tc.pointer, details[0].(map[string]any)["pointer"], "%s", r.body)
	}

	for _, id := range []string{"a%00b", "%FF%FE", strings.Repeat("c", 201), "a%0Ab"} {
		r := b.do("GET", "/v1/customers/"+id, posKey, nil)
		require.Equal(t, http.StatusBadRequest, r.status, "%.40s: %s", id, r.body)
		code, details := r.errorBody(t)
		require.Equal(t, api.CodeInvalidRequest, code)
		require.Equal(t, "/customer_id", details[0].(map[string]any)["pointer"])
	}
	r := b.do("GET", "/v1/customers/"+strings.Repeat("c", 200), posKey, nil)
	require.Equal(t, http.StatusNotFound, r.status, "200 characters is a possible id, of no known customer")
	require.Zero(t, b.requests("/v1/customers/{id}", "500"))
	require.Zero(t, b.requests("/v1/quote", "500"))
}

// /readyz is unauthenticated: it says whether the engine is ready, never
// what a driver said (hosts, users, databases).
func TestReadyzKeepsInternalsInTheLog(t *testing.T) {
	t.Parallel()
	b := setupAPI(t, apiOptions{})
	b.ready.Store(ptr(errors.New(`PostgreSQL: failed to connect to user=promo_owner database=promo_prod host=10.1.2.3: password authentication failed`)))
	r := b.do("GET", "/readyz", "", nil)
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	code, _ := r.errorBody(t)
	require.Equal(t, api.CodeNotReady, code)
	for _, secret := range []string{"promo_owner", "promo_prod", "10.1.2.3", "password"} {
		require.NotContains(t, string(r.body), secret)
	}
	require.Contains(t, b.logs.String(), "promo_owner", "the reason is logged for the operator")
}
