package identity

import "errors"

// Errors of authentication. Authenticate wraps them with the reason, which
// is safe to show the caller (it never holds a secret).
var (
	// ErrNoCredentials: no bearer was presented.
	ErrNoCredentials = errors.New("identity: no credentials")
	// ErrInvalidCredentials: the bearer is neither a configured key nor a
	// token that verifies (bad signature, unknown key, wrong issuer or
	// audience, expired, not yet valid, a refused algorithm).
	ErrInvalidCredentials = errors.New("identity: invalid credentials")
	// ErrBadScope: an API key's store scope does not parse.
	ErrBadScope = errors.New("identity: bad store scope")
	// ErrIssuerUnavailable: the OpenID Connect issuer's discovery document
	// or key set could not be fetched; tokens cannot be verified for now.
	ErrIssuerUnavailable = errors.New("identity: issuer unavailable")
)
