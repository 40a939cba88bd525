// Package testoidc is a fake OpenID Connect issuer for tests, served on
// loopback: a discovery document and a JSON Web Key Set of generated keys
// (RSA, ECDSA P-256, Ed25519) it can rotate, plus keys it does not publish,
// and helpers that sign tokens with any of them, or forge tokens with "alg:
// none" or HS256. The verifier under test talks to it over real HTTP, as it
// talks to Keycloak in production.
package testoidc

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"
)

// Audience is the audience the fake issuer's tokens carry by default.
const Audience = "promoengine"

// Key is a signing key.
type Key struct {
	ID   string
	Alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

// Issuer is a running fake issuer.
type Issuer struct {
	URL string

	mu        sync.Mutex
	published []*Key

	discoveries atomic.Int64
	jwksFetches atomic.Int64
	jwksDown    atomic.Bool
}

// New starts an issuer publishing one RSA, one ECDSA and one Ed25519 key.
func New(t testing.TB) *Issuer {
	t.Helper()
	iss := &Issuer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		iss.discoveries.Add(1)
		writeJSON(w, map[string]any{
			"issuer":                                iss.URL,
			"jwks_uri":                              iss.URL + "/keys",
			"authorization_endpoint":                iss.URL + "/auth",
			"token_endpoint":                        iss.URL + "/token",
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256", "EdDSA"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) {
		iss.jwksFetches.Add(1)
		if iss.jwksDown.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		iss.mu.Lock()
		set := jose.JSONWebKeySet{}
		for _, k := range iss.published {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.ID, Algorithm: string(k.Alg), Use: "sig"})
		}
		iss.mu.Unlock()
		writeJSON(w, set)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	iss.URL = srv.URL
	iss.published = []*Key{NewKey(t, jose.RS256, "rsa-1"), NewKey(t, jose.ES256, "ec-1"), NewKey(t, jose.EdDSA, "ed-1")}
	return iss
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// NewKey generates a key (not published by any issuer).
func NewKey(t testing.TB, alg jose.SignatureAlgorithm, id string) *Key {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case jose.RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("testoidc: no key for %s", alg)
	}
	require.NoError(t, err)
	return &Key{ID: id, Alg: alg, priv: priv}
}

// Keys returns the published keys.
func (i *Issuer) Keys() []*Key {
	i.mu.Lock()
	defer i.mu.Unlock()
	return append([]*Key(nil), i.published...)
}

// Publish replaces the published key set (a rotation).
func (i *Issuer) Publish(keys ...*Key) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.published = keys
}

// SetKeysDown makes the key set endpoint answer 503.
func (i *Issuer) SetKeysDown(down bool) { i.jwksDown.Store(down) }

// JWKSFetches is how often the key set was fetched.
func (i *Issuer) JWKSFetches() int64 { return i.jwksFetches.Load() }

// Discoveries is how often the discovery document was fetched.
func (i *Issuer) Discoveries() int64 { return i.discoveries.Load() }

// Claims returns the claims of a valid token for subject sub with roles,
// valid from now-1m to now+5m.
func (i *Issuer) Claims(now time.Time, sub string, roles ...string) map[string]any {
	return map[string]any{
		"iss":   i.URL,
		"aud":   []string{Audience, "account"},
		"sub":   sub,
		"iat":   now.Add(-time.Minute).Unix(),
		"nbf":   now.Add(-time.Minute).Unix(),
		"exp":   now.Add(5 * time.Minute).Unix(),
		"roles": roles,
	}
}

// Sign signs claims with key, naming it by its kid.
func Sign(t testing.TB, key *Key, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if key.ID != "" {
		opts = opts.WithHeader("kid", key.ID)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: key.Alg, Key: key.priv}, opts)
	require.NoError(t, err)
	return sign(t, signer, claims)
}

func sign(t testing.TB, signer jose.Signer, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	require.NoError(t, err)
	jws, err := signer.Sign(payload)
	require.NoError(t, err)
	tok, err := jws.CompactSerialize()
	require.NoError(t, err)
	return tok
}

// Token signs claims with the issuer's first published key.
func (i *Issuer) Token(t testing.TB, claims map[string]any) string {
	t.Helper()
	return Sign(t, i.Keys()[0], claims)
}

// Unsigned forges a token with "alg": "none" naming a published kid.
func Unsigned(t testing.TB, kid string, claims map[string]any) string {
	t.Helper()
	header, err := json.Marshal(map[string]string{"alg": "none", "typ": "JWT", "kid": kid})
	require.NoError(t, err)
	payload, err := json.Marshal(claims)
	require.NoError(t, err)
	enc := base64.RawURLEncoding
	return enc.EncodeToString(header) + "." + enc.EncodeToString(payload) + "."
}

// HMACWithPublicKey forges an HS256 token whose secret is the DER of the
// RSA key's public half: the algorithm-confusion attack on verifiers that
// let the token choose the algorithm.
func HMACWithPublicKey(t testing.TB, key *Key, claims map[string]any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key.priv.Public())
	require.NoError(t, err)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: der},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", key.ID))
	require.NoError(t, err)
	return sign(t, signer, claims)
}
