package identity_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/promoengine/promoengine/internal/identity"
	"github.com/promoengine/promoengine/internal/testoidc"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

// clock is a settable clock shared by the verifier and the tokens.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type oidcBundle struct {
	iss   *testoidc.Issuer
	clock *clock
	v     *identity.OIDC
	ctx   context.Context
}

func setupOIDC(t *testing.T, mutate func(*identity.OIDCConfig)) *oidcBundle {
	t.Helper()
	b := &oidcBundle{iss: testoidc.New(t), clock: &clock{now: time.Now().Truncate(time.Second)}, ctx: t.Context()}
	cfg := identity.OIDCConfig{Issuer: b.iss.URL, Audience: testoidc.Audience, Now: b.clock.Now, Log: zerolog.Nop()}
	if mutate != nil {
		mutate(&cfg)
	}
	v, err := identity.NewOIDC(cfg)
	require.NoError(t, err)
	b.v = v
	return b
}

func (b *oidcBundle) claims(roles ...string) map[string]any {
	return b.iss.Claims(b.clock.Now(), "user-7", roles...)
}

func TestOIDCAcceptsValidTokensByRole(t *testing.T) {
	t.Parallel()
	b := setupOIDC(t, nil)
	cases := []struct {
		roles []string
		want  string
	}{
		{[]string{"promo.pos"}, identity.RolePOS},
		{[]string{"promo.admin"}, identity.RoleAdmin},
		{[]string{"offline_access", "promo.pos", "promo.admin"}, identity.RoleAdmin},
		{[]string{"offline_access"}, ""},
		{nil, ""},
	}
	for _, key := range b.iss.Keys() { // RS256, ES256, EdDSA
		for _, c := range cases {
			p, err := b.v.Verify(b.ctx, testoidc.Sign(t, key, b.claims(c.roles...)))
			require.NoError(t, err, "%s %v", key.Alg, c.roles)
			require.Equal(t, c.want, p.Role, "%s %v", key.Alg, c.roles)
			require.Equal(t, identity.KindOIDC, p.Kind)
			require.Equal(t, "user-7", p.Subject)
			require.Equal(t, b.iss.URL, p.Issuer)
			require.True(t, p.Scope.Unlimited())
		}
	}
	// A token with a role but no known one is authenticated and allowed
	// nothing.
	p, err := b.v.Verify(b.ctx, b.iss.Token(t, b.claims("promo.superuser")))
	require.NoError(t, err)
	require.False(t, p.Allows(identity.RolePOS))
	require.Equal(t, int64(1), b.iss.Discoveries())
	require.Equal(t, int64(1), b.iss.JWKSFetches(), "keys are cached")
}

func TestOIDCRefusesBadTokens(t *testing.T) {
	t.Parallel()
	b := setupOIDC(t, nil)
	now := b.clock.Now()
	rsa := b.iss.Keys()[0]
	with := func(change func(map[string]any)) map[string]any {
		c := b.claims("promo.pos")
		change(c)
		return c
	}
	impostor := testoidc.NewKey(t, jose.RS256, "rsa-1") // a published kid, another key
	cases := []struct {
		name  string
		token string
	}{
		{"expired beyond the leeway", b.iss.Token(t, with(func(c map[string]any) { c["exp"] = now.Add(-61 * time.Second).Unix() }))},
		{"not yet valid beyond the leeway", b.iss.Token(t, with(func(c map[string]any) { c["nbf"] = now.Add(61 * time.Second).Unix() }))},
		{"no exp", b.iss.Token(t, with(func(c map[string]any) { delete(c, "exp") }))},
		{"exp not a number", b.iss.Token(t, with(func(c map[string]any) { c["exp"] = "tomorrow" }))},
		{"wrong audience", b.iss.Token(t, with(func(c map[string]any) { c["aud"] = "another-app" }))},
		{"no audience", b.iss.Token(t, with(func(c map[string]any) { delete(c, "aud") }))},
		{"wrong issuer", b.iss.Token(t, with(func(c map[string]any) { c["iss"] = "https://evil.example" }))},
		{"issuer with a trailing slash", b.iss.Token(t, with(func(c map[string]any) { c["iss"] = b.iss.URL + "/" }))},
		{"no subject", b.iss.Token(t, with(func(c map[string]any) { delete(c, "sub") }))},
		{"alg none", testoidc.Unsigned(t, "rsa-1", b.claims("promo.admin"))},
		{"alg none without kid", testoidc.Unsigned(t, "", b.claims("promo.admin"))},
		{"HS256 with the public key as secret", testoidc.HMACWithPublicKey(t, rsa, b.claims("promo.admin"))},
		{"a key the issuer does not publish", testoidc.Sign(t, testoidc.NewKey(t, jose.ES256, "rogue"), b.claims("promo.admin"))},
		{"another key under a published kid", testoidc.Sign(t, impostor, b.claims("promo.admin"))},
		{"a key without kid the issuer does not publish", testoidc.Sign(t, testoidc.NewKey(t, jose.EdDSA, ""), b.claims("promo.admin"))},
		{"store claim of the wrong shape", b.iss.Token(t, with(func(c map[string]any) { c["company_ids"] = map[string]any{"1": true} }))},
		{"store claim with a fraction", b.iss.Token(t, with(func(c map[string]any) { c["pos_config_ids"] = []any{1.5} }))},
		{"garbage", "a.b.c"},
	}
	tampered := b.iss.Token(t, b.claims("promo.pos"))
	admin := testoidc.Sign(t, rsa, b.claims("promo.admin"))
	cases = append(cases, struct{ name, token string }{"payload swapped", swapPayload(tampered, admin)})
	for _, c := range cases {
		_, err := b.v.Verify(b.ctx, c.token)
		require.ErrorIs(t, err, identity.ErrInvalidCredentials, c.name)
	}

	// Within the leeway, both ways.
	for _, change := range []func(map[string]any){
		func(c map[string]any) { c["exp"] = now.Add(-59 * time.Second).Unix() },
		func(c map[string]any) { c["nbf"] = now.Add(59 * time.Second).Unix() },
	} {
		_, err := b.v.Verify(b.ctx, b.iss.Token(t, with(change)))
		require.NoError(t, err)
	}
}

// swapPayload puts the payload of b into a's header and signature.
func swapPayload(a, b string) string {
	pa, pb := splitJWT(a), splitJWT(b)
	return pa[0] + "." + pb[1] + "." + pa[2]
}

func splitJWT(s string) [3]string {
	var out [3]string
	i := 0
	start := 0
	for j := 0; j < len(s); j++ {
		if s[j] == '.' {
			out[i] = s[start:j]
			i++
			start = j + 1
		}
	}
	out[2] = s[start:]
	return out
}

func TestOIDCRefusesTooLargeLeeway(t *testing.T) {
	t.Parallel()
	_, err := identity.NewOIDC(identity.OIDCConfig{Issuer: "https://idp.example", Audience: "a", Leeway: 61 * time.Second})
	require.Error(t, err)
	_, err = identity.NewOIDC(identity.OIDCConfig{Issuer: "https://idp.example"})
	require.Error(t, err, "an audience is required")
	_, err = identity.NewOIDC(identity.OIDCConfig{Issuer: "idp.example", Audience: "a"})
	require.Error(t, err)
}

func TestOIDCFollowsKeyRotation(t *testing.T) {
	t.Parallel()
	b := setupOIDC(t, nil)
	old := b.iss.Keys()[0]
	_, err := b.v.Verify(b.ctx, testoidc.Sign(t, old, b.claims("promo.pos")))
	require.NoError(t, err)
	require.Equal(t, int64(1), b.iss.JWKSFetches())

	// The issuer rotates: a new key, the old one withdrawn.
	next := testoidc.NewKey(t, jose.RS256, "rsa-2")
	b.iss.Publish(next)
	b.clock.Advance(identity.DefaultMinRefresh)
	p, err := b.v.Verify(b.ctx, testoidc.Sign(t, next, b.claims("promo.admin")))
	require.NoError(t, err, "an unknown kid makes the verifier fetch the keys again")
	require.Equal(t, identity.RoleAdmin, p.Role)
	require.Equal(t, int64(2), b.iss.JWKSFetches())

	// The withdrawn key is gone from the fetched set.
	_, err = b.v.Verify(b.ctx, testoidc.Sign(t, old, b.claims("promo.pos")))
	require.ErrorIs(t, err, identity.ErrInvalidCredentials)
}

func TestOIDCRateLimitsKeyFetchesForUnknownKids(t *testing.T) {
	t.Parallel()
	b := setupOIDC(t, nil)
	_, err := b.v.Verify(b.ctx, b.iss.Token(t, b.claims("promo.pos")))
	require.NoError(t, err)
	require.Equal(t, int64(1), b.iss.JWKSFetches())

	// A flood of tokens with invented kids, over less than the interval.
	b.clock.Advance(identity.DefaultMinRefresh)
	for i := range 50 {
		tok := testoidc.Sign(t, testoidc.NewKey(t, jose.ES256, fmt.Sprintf("random-%d", i)), b.claims("promo.admin"))
		_, err := b.v.Verify(b.ctx, tok)
		require.ErrorIs(t, err, identity.ErrInvalidCredentials)
		b.clock.Advance(100 * time.Millisecond)
	}
	require.Equal(t, int64(2), b.iss.JWKSFetches(), "one fetch for the first unknown kid, then none within 10 s")

	// A rotation while limited: refused until the interval has passed, then
	// accepted.
	next := testoidc.NewKey(t, jose.EdDSA, "ed-2")
	b.iss.Publish(append(b.iss.Keys(), next)...)
	b.clock.Advance(4 * time.Second) // 9 s after the last fetch
	tok := testoidc.Sign(t, next, b.claims("promo.pos"))
	_, err = b.v.Verify(b.ctx, tok)
	require.ErrorIs(t, err, identity.ErrInvalidCredentials)
	require.Equal(t, int64(2), b.iss.JWKSFetches())
	b.clock.Advance(time.Second)
	_, err = b.v.Verify(b.ctx, tok)
	require.NoError(t, err)
	require.Equal(t, int64(3), b.iss.JWKSFetches())

	// Known keys never cause a fetch.
	for range 20 {
		_, err := b.v.Verify(b.ctx, b.iss.Token(t, b.claims("promo.pos")))
		require.NoError(t, err)
	}
	require.Equal(t, int64(3), b.iss.JWKSFetches())
}

func TestOIDCRefetchesOldKeysAndSurvivesIssuerOutage(t *testing.T) {
	t.Parallel()
	b := setupOIDC(t, nil)
	key := b.iss.Keys()[0]

	// Down at first use: refused as unverifiable, API keys unaffected (see
	// TestAuthenticator); discovery is not retried within the interval.
	b.iss.SetKeysDown(true)
	_, err := b.v.Verify(b.ctx, testoidc.Sign(t, key, b.claims("promo.pos")))
	require.ErrorIs(t, err, identity.ErrIssuerUnavailable)
	b.iss.SetKeysDown(false)
	_, err = b.v.Verify(b.ctx, testoidc.Sign(t, key, b.claims("promo.pos")))
	require.Error(t, err, "no new fetch within the interval")
	b.clock.Advance(identity.DefaultMinRefresh)
	_, err = b.v.Verify(b.ctx, testoidc.Sign(t, key, b.claims("promo.pos")))
	require.NoError(t, err)
	fetches := b.iss.JWKSFetches()

	// Cached keys older than their maximum age are fetched again in passing;
	// when the issuer is down, the cached ones stay in use.
	b.iss.SetKeysDown(true)
	b.clock.Advance(identity.DefaultKeysMaxAge + time.Second)
	_, err = b.v.Verify(b.ctx, testoidc.Sign(t, key, b.claims("promo.pos")))
	require.NoError(t, err)
	require.Equal(t, fetches+1, b.iss.JWKSFetches())

	// Up again, the key withdrawn: after the interval it is no longer trusted.
	b.iss.SetKeysDown(false)
	b.iss.Publish(b.iss.Keys()[1:]...)
	b.clock.Advance(identity.DefaultMinRefresh)
	_, err = b.v.Verify(b.ctx, testoidc.Sign(t, key, b.claims("promo.pos")))
	require.ErrorIs(t, err, identity.ErrInvalidCredentials)
	require.Equal(t, fetches+2, b.iss.JWKSFetches())
}

func TestOIDCDiscoveryFailureIsRetried(t *testing.T) {
	t.Parallel()
	b := setupOIDC(t, func(c *identity.OIDCConfig) { c.Issuer += "/realms/nowhere" })
	require.ErrorIs(t, b.v.Discover(b.ctx), identity.ErrIssuerUnavailable)
	require.ErrorIs(t, b.v.Discover(b.ctx), identity.ErrIssuerUnavailable)
	require.Equal(t, int64(0), b.iss.Discoveries(), "wrong path: nothing served, and the second attempt was not made")
}

func TestOIDCStoreScopeAndRoleClaims(t *testing.T) {
	t.Parallel()
	b := setupOIDC(t, func(c *identity.OIDCConfig) { c.RolesClaim = "realm_access.roles" })
	c := b.claims()
	delete(c, "roles")
	c["realm_access"] = map[string]any{"roles": []string{"default-roles-shop", "promo.pos"}}
	c["company_ids"] = []any{"1", 2}
	c["pos_config_ids"] = "3"
	p, err := b.v.Verify(b.ctx, b.iss.Token(t, c))
	require.NoError(t, err)
	require.Equal(t, identity.RolePOS, p.Role, "the roles claim is found by its dotted path")
	require.Equal(t, identity.Scope{CompanyIDs: []string{"1", "2"}, PosConfigIDs: []string{"3"}}, p.Scope)
	require.True(t, p.AllowsStore("2", "3"))
	require.False(t, p.AllowsStore("2", "4"))
	require.False(t, p.AllowsStore("5", "3"))
	require.False(t, p.AllowsStore("", "3"))

	// An empty list allows no store at all.
	c["company_ids"] = []string{}
	delete(c, "pos_config_ids")
	p, err = b.v.Verify(b.ctx, b.iss.Token(t, c))
	require.NoError(t, err)
	require.False(t, p.AllowsStore("1", "3"))

	// A claim literally named with a dot wins over the path.
	c["realm_access.roles"] = []string{"promo.admin"}
	p, err = b.v.Verify(b.ctx, b.iss.Token(t, c))
	require.NoError(t, err)
	require.Equal(t, identity.RoleAdmin, p.Role)
}

func TestAuthenticator(t *testing.T) {
	t.Parallel()
	b := setupOIDC(t, nil)
	scope, err := identity.ParseScope("company=1;pos_config=3|4")
	require.NoError(t, err)
	keys := identity.NewKeyring([]identity.APIKey{
		{Key: "pos-key-1", Role: identity.RolePOS, Scope: scope},
		{Key: "admin-key-2", Role: identity.RoleAdmin},
		{Key: "x.y.z", Role: identity.RolePOS}, // a key that looks like a JWT
	})
	for _, a := range []*identity.Authenticator{identity.NewAuthenticator(keys, b.v), identity.NewAuthenticator(keys, nil)} {
		p, err := a.Authenticate(b.ctx, "pos-key-1")
		require.NoError(t, err)
		require.Equal(t, identity.Principal{Kind: identity.KindAPIKey, Subject: identity.Fingerprint("pos-key-1"), Role: identity.RolePOS, Scope: scope}, p)
		require.Equal(t, "api_key "+identity.Fingerprint("pos-key-1"), p.Who())
		require.True(t, p.AllowsStore("1", "4"))
		require.False(t, p.AllowsStore("1", "5"))
		p, err = a.Authenticate(b.ctx, "admin-key-2")
		require.NoError(t, err)
		require.True(t, p.Allows(identity.RoleAdmin))
		p, err = a.Authenticate(b.ctx, "x.y.z")
		require.NoError(t, err)
		require.Equal(t, identity.RolePOS, p.Role)

		_, err = a.Authenticate(b.ctx, "")
		require.ErrorIs(t, err, identity.ErrNoCredentials)
		_, err = a.Authenticate(b.ctx, "pos-key-")
		require.ErrorIs(t, err, identity.ErrInvalidCredentials)
	}
	a := identity.NewAuthenticator(keys, b.v)
	p, err := a.Authenticate(b.ctx, b.iss.Token(t, b.claims("promo.admin")))
	require.NoError(t, err)
	require.Equal(t, identity.RoleAdmin, p.Role)
	require.Equal(t, "oidc "+b.iss.URL+"#user-7", p.Who())
	_, err = identity.NewAuthenticator(keys, nil).Authenticate(b.ctx, b.iss.Token(t, b.claims("promo.admin")))
	require.ErrorIs(t, err, identity.ErrInvalidCredentials, "no issuer configured: a token is just an unknown key")

	// API keys keep working while the issuer is unreachable.
	b.iss.SetKeysDown(true)
	_, err = a.Authenticate(b.ctx, testoidc.Sign(t, testoidc.NewKey(t, jose.RS256, "new"), b.claims("promo.pos")))
	require.Error(t, err)
	_, err = a.Authenticate(b.ctx, "admin-key-2")
	require.NoError(t, err)
}
