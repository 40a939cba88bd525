package identity

import (
	"context"
	"fmt"
	"strings"
)

// Authenticator turns a bearer credential into a principal: a configured
// API key, or else (when an issuer is configured) an OpenID Connect token.
// It knows nothing of HTTP, so the HTTP API and a gRPC API share it.
type Authenticator struct {
	keys *Keyring
	oidc *OIDC // nil: API keys only
}

// NewAuthenticator combines a keyring and, when not nil, a token verifier.
func NewAuthenticator(keys *Keyring, tokens *OIDC) *Authenticator {
	return &Authenticator{keys: keys, oidc: tokens}
}

// Authenticate returns the principal of a bearer credential.
// ErrNoCredentials: nothing presented. ErrInvalidCredentials (or
// ErrIssuerUnavailable): not a key, and not a token that verifies; the
// caller answers 401 in both cases. A principal with Role "" is
// authenticated but allowed nothing.
//
// API keys are looked up first, always, over every configured key (see
// Keyring), so a key that happens to look like a JWT still works and the
// time taken does not say whether a token was tried.
func (a *Authenticator) Authenticate(ctx context.Context, bearer string) (Principal, error) {
	if bearer == "" {
		return Principal{}, ErrNoCredentials
	}
	if p, ok := a.keys.Lookup(bearer); ok {
		return p, nil
	}
	if a.oidc != nil && looksLikeJWT(bearer) {
		return a.oidc.Verify(ctx, bearer)
	}
	if a.oidc != nil {
		return Principal{}, fmt.Errorf("%w: not an API key nor a token of %s", ErrInvalidCredentials, a.oidc.cfg.Issuer)
	}
	return Principal{}, fmt.Errorf("%w: not an API key", ErrInvalidCredentials)
}

// OIDCEnabled reports whether tokens are accepted.
func (a *Authenticator) OIDCEnabled() bool { return a.oidc != nil }

// looksLikeJWT: three base64url parts (a JWS in compact form).
func looksLikeJWT(s string) bool {
	return strings.Count(s, ".") == 2 && !strings.ContainsAny(s, " \t")
}
