package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/api"
	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/internal/identity"
	"github.com/promoengine/promoengine/internal/odoo/odootest"
	"github.com/promoengine/promoengine/internal/testoidc"
)

// newOIDC is a verifier of a fake issuer on loopback.
func newOIDC(t *testing.T) (*testoidc.Issuer, *identity.OIDC) {
	t.Helper()
	iss := testoidc.New(t)
	v, err := identity.NewOIDC(identity.OIDCConfig{Issuer: iss.URL, Audience: testoidc.Audience, Log: zerolog.Nop()})
	require.NoError(t, err)
	return iss, v
}

// apiRoutes are the authenticated routes and whether they need admin.
var apiRoutes = []struct {
	method, path string
	admin        bool
}{
	{"POST", "/v1/quote", false},
	{"POST", "/v1/events", false},
	{"GET", "/v1/customers/77", false},
	{"POST", "/v1/odoo/webhook", false},
	{"PUT", "/v1/catalog", true},
}

func TestAPIAcceptsOpenIDConnectTokens(t *testing.T) {
	t.Parallel()
	iss, v := newOIDC(t)
	b := setupAPI(t, apiOptions{oidc: v})
	now := time.Now()
	pos := iss.Token(t, iss.Claims(now, "till-17", "promo.pos"))
	admin := testoidc.Sign(t, iss.Keys()[1], iss.Claims(now, "ops-ann", "promo.admin")) // ES256
	noRole := testoidc.Sign(t, iss.Keys()[2], iss.Claims(now, "someone", "offline_access"))

	for _, rt := range apiRoutes {
		r := b.do(rt.method, rt.path, pos, []byte(`{}`))
		if rt.admin {
			require.Equal(t, http.StatusForbidden, r.status, "%s %s with a pos token", rt.method, rt.path)
			code, _ := r.errorBody(t)
			require.Equal(t, api.CodeForbidden, code)
		} else {
			require.NotContains(t, []int{401, 403}, r.status, "%s %s with a pos token: %s", rt.method, rt.path, r.body)
		}
		r = b.do(rt.method, rt.path, admin, []byte(`{}`))
		require.NotContains(t, []int{401, 403}, r.status, "%s %s with an admin token: %s", rt.method, rt.path, r.body)

		r = b.do(rt.method, rt.path, noRole, []byte(`{}`))
		require.Equal(t, http.StatusForbidden, r.status, "%s %s with a token without role", rt.method, rt.path)
		code, _ := r.errorBody(t)
		require.Equal(t, api.CodeForbidden, code)

		// API keys keep working beside tokens.
		r = b.do(rt.method, rt.path, adminKey, []byte(`{}`))
		require.NotContains(t, []int{401, 403}, r.status, "%s %s with the admin key", rt.method, rt.path)
	}

	claims := func(change func(map[string]any)) map[string]any {
		c := iss.Claims(now, "till-17", "promo.admin")
		change(c)
		return c
	}
	bad := map[string]string{
		"expired":          iss.Token(t, claims(func(c map[string]any) { c["exp"] = now.Add(-2 * time.Minute).Unix() })),
		"not yet valid":    iss.Token(t, claims(func(c map[string]any) { c["nbf"] = now.Add(2 * time.Minute).Unix() })),
		"wrong audience":   iss.Token(t, claims(func(c map[string]any) { c["aud"] = "billing" })),
		"wrong issuer":     iss.Token(t, claims(func(c map[string]any) { c["iss"] = "https://sso.evil.example" })),
		"alg none":         testoidc.Unsigned(t, "rsa-1", claims(func(map[string]any) {})),
		"HS256":            testoidc.HMACWithPublicKey(t, iss.Keys()[0], claims(func(map[string]any) {})),
		"unpublished key":  testoidc.Sign(t, testoidc.NewKey(t, jose.RS256, "not-published"), claims(func(map[string]any) {})),
		"impostor kid":     testoidc.Sign(t, testoidc.NewKey(t, jose.ES256, "ec-1"), claims(func(map[string]any) {})),
		"malformed scope":  iss.Token(t, claims(func(c map[string]any) { c["company_ids"] = true })),
		"not even a token": "eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
		"a long audience":  iss.Token(t, claims(func(c map[string]any) { c["aud"] = strings.Repeat("x", 8000) })),
	}
	for name, tok := range bad {
		for _, rt := range apiRoutes {
			r := b.do(rt.method, rt.path, tok, []byte(`{}`))
			require.Equal(t, http.StatusUnauthorized, r.status, "%s on %s %s: %s", name, rt.method, rt.path, r.body)
			code, _ := r.errorBody(t)
			require.Equal(t, api.CodeUnauthorized, code)
			require.Equal(t, `Bearer realm="promoengine"`, r.header.Get("WWW-Authenticate"))
			require.Less(t, len(r.body), 600, "the reason is bounded")
		}
	}

	// The issuer's keys unreachable: a token with a new kid cannot be
	// verified (401, without the issuer's answer); API keys work.
	iss.SetKeysDown(true)
	r := b.do("POST", "/v1/events", testoidc.Sign(t, testoidc.NewKey(t, jose.RS256, "rotated"), iss.Claims(now, "till-17", "promo.pos")), []byte(`{}`))
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.Equal(t, http.StatusBadRequest, b.do("POST", "/v1/events", posKey, []byte(`{}`)).status)
	// The webhook takes a token as ?token= too.
	require.Equal(t, http.StatusServiceUnavailable, b.do("POST", "/v1/odoo/webhook?token="+pos, "", []byte(`{}`)).status,
		"authenticated by token; no Odoo configured")
}

// scopedCredentials are, for one store scope, an API key and a token.
func scopedCredentials(t *testing.T, iss *testoidc.Issuer, key string, companies, posConfigs []string) []string {
	t.Helper()
	c := iss.Claims(time.Now(), "till-"+key, "promo.pos")
	if companies != nil {
		c["company_ids"] = companies
	}
	if posConfigs != nil {
		c["pos_config_ids"] = posConfigs
	}
	return []string{key, iss.Token(t, c)}
}

func TestAPIEnforcesStoreScope(t *testing.T) {
	t.Parallel()
	iss, v := newOIDC(t)
	b := setupAPI(t, apiOptions{db: true, odoo: true, oidc: v, keys: config.APIKeys{
		{Key: "store-1-3", Role: config.RolePOS, Scope: identity.Scope{CompanyIDs: []string{"1"}, PosConfigIDs: []string{"3"}}},
		{Key: "store-1-4", Role: config.RolePOS, Scope: identity.Scope{CompanyIDs: []string{"1"}, PosConfigIDs: []string{"4"}}},
		{Key: "company-1", Role: config.RoleAdmin, Scope: identity.Scope{CompanyIDs: []string{"1"}}},
		{Key: "company-2", Role: config.RolePOS, Scope: identity.Scope{CompanyIDs: []string{"2"}}},
	}})
	b.applyCatalog(testCatalog)
	inside := append(append(scopedCredentials(t, iss, "store-1-3", []string{"1"}, []string{"3"}),
		scopedCredentials(t, iss, "company-1", []string{"1", "9"}, nil)...), posKey)
	outside := append(scopedCredentials(t, iss, "store-1-4", []string{"1"}, []string{"4", "5"}),
		scopedCredentials(t, iss, "company-2", []string{"2"}, nil)...)
	// A token whose company list is empty acts for no store.
	outside = append(outside, scopedCredentials(t, iss, "nothing", []string{}, nil)[1])

	quote := func(company, posConfig string) []byte {
		extra := ""
		if company != "" {
			extra += fmt.Sprintf(`"company_id": %q,`, company)
		}
		if posConfig != "" {
			extra += fmt.Sprintf(`"pos_config_id": %q,`, posConfig)
		}
		return []byte(`{"id": "q1", "currency": "IDR", ` + extra + `
			"lines": [{"id": "1", "product_id": "501", "category_ids": ["12"], "qty": 2, "unit_price": "25000"}]}`)
	}
	forbidden := func(r response, what string) {
		t.Helper()
		require.Equal(t, http.StatusForbidden, r.status, "%s: %s", what, r.body)
		code, _ := r.errorBody(t)
		require.Equal(t, api.CodeForbiddenStore, code, what)
	}
	for i, cred := range inside {
		r := b.do("POST", "/v1/quote", cred, quote("1", "3"))
		require.Equal(t, http.StatusOK, r.status, "inside %d: %s", i, r.body)
		r = b.do("POST", "/v1/events", cred, paidEvent(fmt.Sprintf("in-%d", i), fmt.Sprint(2000+i), "77")) // company 1, pos_config 3
		require.Equal(t, http.StatusAccepted, r.status, "inside %d: %s", i, r.body)
	}
	for i, cred := range outside {
		forbidden(b.do("POST", "/v1/quote", cred, quote("1", "3")), fmt.Sprintf("quote, outside %d", i))
		forbidden(b.do("POST", "/v1/events", cred, paidEvent(fmt.Sprintf("out-%d", i), fmt.Sprint(3000+i), "77")), fmt.Sprintf("events, outside %d", i))
		forbidden(b.do("POST", "/v1/odoo/webhook?token="+cred, "", webhookBody(odootest.PaidOrderID, "paid")), fmt.Sprintf("webhook, outside %d", i))
	}
	// A scoped credential's quote must name the stores it is limited to.
	for _, cred := range inside[:2] {
		forbidden(b.do("POST", "/v1/quote", cred, quote("", "")), "quote without stores")
		forbidden(b.do("POST", "/v1/quote", cred, quote("1", "")), "quote without pos_config_id")
	}
	for _, cred := range inside[2:4] { // company-only scope: pos_config_id may be absent
		require.Equal(t, http.StatusOK, b.do("POST", "/v1/quote", cred, quote("1", "")).status)
		forbidden(b.do("POST", "/v1/quote", cred, quote("", "3")), "quote without company_id")
	}
	require.Equal(t, http.StatusOK, b.do("POST", "/v1/quote", posKey, quote("", "")).status, "an unscoped key quotes anything")

	// Nothing outside the scope reached the stream; the webhook recorded
	// the order for read-back once per credential inside it (the read-back
	// checks the stores again before anything is published).
	s, err := b.js.Stream(b.ctx, b.subjects.StreamOrders())
	require.NoError(t, err)
	info, err := s.Info(b.ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(len(inside)), info.State.Msgs)
	for _, cred := range inside {
		r := b.do("POST", "/v1/odoo/webhook?token="+cred, "", webhookBody(odootest.PaidOrderID, "paid"))
		require.Equal(t, http.StatusAccepted, r.status, "%s", r.body)
		require.Equal(t, "recorded", r.json(t)["status"])
	}
	require.Equal(t, float64(len(outside)), b.requests("/v1/odoo/webhook", "403"))
}
