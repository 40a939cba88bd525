package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/rs/zerolog"
)

// Role names a token carries in its roles claim (SPEC §8).
const (
	TokenRolePOS   = "promo.pos"
	TokenRoleAdmin = "promo.admin"
)

// Claims of the store scope (SPEC §8).
const (
	ClaimCompanyIDs   = "company_ids"
	ClaimPosConfigIDs = "pos_config_ids"
)

// Defaults and bounds of OIDCConfig.
const (
	DefaultRolesClaim = "roles"
	// MaxLeeway is the most clock skew SPEC §8 tolerates on exp and nbf.
	MaxLeeway         = 60 * time.Second
	DefaultMinRefresh = 10 * time.Second
	DefaultKeysMaxAge = 15 * time.Minute
	// maxTokenBytes refuses absurd bearers before any parsing.
	maxTokenBytes = 16 << 10
)

// OIDCConfig configures token verification.
type OIDCConfig struct {
	// Issuer is the issuer URL exactly as tokens carry it in iss; discovery
	// reads Issuer + "/.well-known/openid-configuration".
	Issuer string
	// Audience must be one of the token's aud.
	Audience string
	// RolesClaim is the claim holding the roles; a dotted path
	// ("realm_access.roles") reaches into nested objects when no claim has
	// the dotted name itself. Empty: DefaultRolesClaim.
	RolesClaim string
	// Leeway is the clock skew tolerated on exp and nbf; 0 means MaxLeeway,
	// more than MaxLeeway is refused.
	Leeway time.Duration
	// MinRefresh is the least time between two fetches of the key set (or
	// two discovery attempts); 0 means DefaultMinRefresh.
	MinRefresh time.Duration
	// KeysMaxAge is how long fetched keys are used before they are fetched
	// again; 0 means DefaultKeysMaxAge.
	KeysMaxAge time.Duration
	// HTTPClient talks to the issuer; nil means a client with a 10 s
	// timeout and the system's roots.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	Log zerolog.Logger
}

// OIDC verifies OpenID Connect bearer tokens (JWTs) of one issuer and turns
// them into principals. Discovery and key fetches happen on first use, so the
// engine starts while the issuer is unreachable (API keys keep working) and
// recovers by itself.
type OIDC struct {
	cfg OIDCConfig

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier // nil until discovery succeeded
	keys     *keySet
	tried    time.Time // last discovery attempt
}

// NewOIDC checks the configuration; it does not touch the network.
func NewOIDC(cfg OIDCConfig) (*OIDC, error) {
	u, err := url.Parse(cfg.Issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("identity: issuer %q is not an http(s) URL", cfg.Issuer)
	}
	if cfg.Audience == "" {
		return nil, errors.New("identity: an audience is required with an issuer")
	}
	if cfg.RolesClaim == "" {
		cfg.RolesClaim = DefaultRolesClaim
	}
	switch {
	case cfg.Leeway == 0:
		cfg.Leeway = MaxLeeway
	case cfg.Leeway < 0 || cfg.Leeway > MaxLeeway:
		return nil, fmt.Errorf("identity: leeway %s is outside 0–%s", cfg.Leeway, MaxLeeway)
	}
	if cfg.MinRefresh <= 0 {
		cfg.MinRefresh = DefaultMinRefresh
	}
	if cfg.KeysMaxAge <= 0 {
		cfg.KeysMaxAge = DefaultKeysMaxAge
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &OIDC{cfg: cfg}, nil
}

// Discover reads the issuer's discovery document now. The engine calls it at
// start to report a misconfiguration early; Verify does it by itself when it
// was not done or failed.
func (o *OIDC) Discover(ctx context.Context) error {
	_, err := o.discovered(ctx)
	return err
}

func (o *OIDC) discovered(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.verifier != nil {
		return o.verifier, nil
	}
	now := o.cfg.Now()
	if !o.tried.IsZero() && now.Sub(o.tried) < o.cfg.MinRefresh {
		return nil, fmt.Errorf("%w: discovery of %s failed moments ago", ErrIssuerUnavailable, o.cfg.Issuer)
	}
	o.tried = now
	provider, err := oidc.NewProvider(oidc.ClientContext(ctx, o.cfg.HTTPClient), o.cfg.Issuer)
	if err != nil {
		o.cfg.Log.Warn().Err(err).Str("issuer", o.cfg.Issuer).Msg("OpenID Connect discovery failed")
		return nil, fmt.Errorf("%w: discovery of %s: %w", ErrIssuerUnavailable, o.cfg.Issuer, err)
	}
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := provider.Claims(&meta); err != nil || meta.JWKSURI == "" {
		return nil, fmt.Errorf("%w: the discovery document of %s has no jwks_uri", ErrIssuerUnavailable, o.cfg.Issuer)
	}
	o.keys = newKeySet(meta.JWKSURI, o.cfg.HTTPClient, o.cfg.Now, o.cfg.MinRefresh, o.cfg.KeysMaxAge, o.cfg.Log)
	algs := make([]string, len(allowedAlgs))
	for i, a := range allowedAlgs {
		algs[i] = string(a)
	}
	o.verifier = oidc.NewVerifier(o.cfg.Issuer, o.keys, &oidc.Config{
		ClientID:             o.cfg.Audience,
		SupportedSigningAlgs: algs,
		// exp and nbf are checked below with the bounded leeway of SPEC §8
		// (go-oidc allows none on exp and five minutes on nbf).
		SkipExpiryCheck: true,
		Now:             o.cfg.Now,
	})
	o.cfg.Log.Info().Str("issuer", o.cfg.Issuer).Str("jwks_uri", meta.JWKSURI).Msg("OpenID Connect issuer discovered")
	return o.verifier, nil
}

// Verify checks a token and returns its principal. A token that verifies
// but carries no known role gives a principal with Role "" (allowed
// nothing: 403, not 401).
func (o *OIDC) Verify(ctx context.Context, raw string) (Principal, error) {
	if len(raw) > maxTokenBytes {
		return Principal{}, fmt.Errorf("%w: token longer than %d bytes", ErrInvalidCredentials, maxTokenBytes)
	}
	v, err := o.discovered(ctx)
	if err != nil {
		return Principal{}, err
	}
	tok, err := v.Verify(ctx, raw)
	if err != nil {
		if o.keys.unavailable() {
			// go-oidc keeps only the text of the key set's error; without a
			// single key fetched nothing can verify.
			return Principal{}, fmt.Errorf("%w: the issuer's keys could not be fetched yet: %w", ErrIssuerUnavailable, err)
		}
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalidCredentials, err)
	}
	var claims map[string]json.RawMessage
	if err := tok.Claims(&claims); err != nil {
		return Principal{}, fmt.Errorf("%w: claims: %w", ErrInvalidCredentials, err)
	}
	if err := o.checkTimes(claims); err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalidCredentials, err)
	}
	if tok.Subject == "" {
		return Principal{}, fmt.Errorf("%w: the token has no sub", ErrInvalidCredentials)
	}
	p := Principal{Kind: KindOIDC, Subject: tok.Subject, Issuer: tok.Issuer, Role: roleOf(claimAt(claims, o.cfg.RolesClaim))}
	if p.Scope.CompanyIDs, err = idList(claims, ClaimCompanyIDs); err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalidCredentials, err)
	}
	if p.Scope.PosConfigIDs, err = idList(claims, ClaimPosConfigIDs); err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalidCredentials, err)
	}
	return p, nil
}

// checkTimes checks exp (required) and nbf (optional) with the leeway.
func (o *OIDC) checkTimes(claims map[string]json.RawMessage) error {
	now := o.cfg.Now()
	exp, ok, err := numericDate(claims, "exp")
	switch {
	case err != nil:
		return err
	case !ok:
		return errors.New("the token has no exp")
	case now.After(exp.Add(o.cfg.Leeway)):
		return fmt.Errorf("the token expired at %s", exp.UTC().Format(time.RFC3339))
	}
	nbf, ok, err := numericDate(claims, "nbf")
	switch {
	case err != nil:
		return err
	case ok && now.Add(o.cfg.Leeway).Before(nbf):
		return fmt.Errorf("the token is not valid before %s", nbf.UTC().Format(time.RFC3339))
	}
	return nil
}

// numericDate reads a JWT NumericDate (seconds since the epoch, maybe
// fractional).
func numericDate(claims map[string]json.RawMessage, name string) (time.Time, bool, error) {
	raw, ok := claims[name]
	if !ok || string(raw) == "null" {
		return time.Time{}, false, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return time.Time{}, false, fmt.Errorf("%s is not a number", name)
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return time.Time{}, false, fmt.Errorf("%s is not a date", name)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, nil
}

// claimAt finds a claim by name, or by a dotted path into nested objects
// when no claim has the dotted name itself (Keycloak's realm_access.roles).
func claimAt(claims map[string]json.RawMessage, name string) json.RawMessage {
	if raw, ok := claims[name]; ok {
		return raw
	}
	parts := strings.Split(name, ".")
	cur := claims
	for i, part := range parts {
		raw, ok := cur[part]
		if !ok {
			return nil
		}
		if i == len(parts)-1 {
			return raw
		}
		cur = nil
		if json.Unmarshal(raw, &cur) != nil {
			return nil
		}
	}
	return nil
}

// roleOf maps the roles claim to a role: admin when it holds promo.admin,
// pos when it holds promo.pos, none otherwise (a claim that is not a list of
// strings or a string holds nothing).
func roleOf(raw json.RawMessage) string {
	var roles []string
	if json.Unmarshal(raw, &roles) != nil {
		var one string
		if json.Unmarshal(raw, &one) != nil {
			return ""
		}
		roles = strings.Fields(one)
	}
	role := ""
	for _, r := range roles {
		switch r {
		case TokenRoleAdmin:
			return RoleAdmin
		case TokenRolePOS:
			role = RolePOS
		}
	}
	return role
}

// idList reads a store-scope claim: absent or null is no limit; a list of
// strings (integers are taken as their decimal form, as event ids are) or a
// single string is the list; anything else makes the token unusable, never
// unlimited.
func idList(claims map[string]json.RawMessage, name string) ([]string, error) {
	raw, ok := claims[name]
	if !ok || string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	items, isList := v.([]any)
	if !isList {
		items = []any{v}
	}
	ids := make([]string, 0, len(items))
	for _, item := range items {
		var id string
		switch x := item.(type) {
		case string:
			id = x
		case json.Number:
			if _, err := x.Int64(); err != nil {
				return nil, fmt.Errorf("%s holds %s, not an id", name, x)
			}
			id = x.String()
		default:
			return nil, fmt.Errorf("%s must be a list of strings", name)
		}
		if !validID(id) {
			if len(id) > 64 {
				id = id[:64] + "…"
			}
			return nil, fmt.Errorf("%s holds an invalid id %q", name, id)
		}
		ids = append(ids, id)
	}
	return ids, nil
}
