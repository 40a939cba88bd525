package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/rs/zerolog"
)

// allowedAlgs are the signature algorithms SPEC §8 accepts. Never "none",
// never HMAC: an HS256 token "signed" with the issuer's public key as the
// shared secret is the classic algorithm-confusion forgery.
var allowedAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}

// maxJWKSBytes bounds the key set document read from the issuer.
const maxJWKSBytes = 1 << 20

var (
	errUnknownKey  = errors.New("no key of the issuer has the token's kid")
	errRateLimited = errors.New("the issuer's key set was fetched moments ago")
	errBadKey      = errors.New("signature does not verify")
)

// keySet is the issuer's JSON Web Key Set, cached. It implements go-oidc's
// KeySet; the signature itself is checked by go-jose (JSONWebSignature.Verify),
// never here.
//
// Keys are fetched on first use, when a token names a kid the cache does not
// hold (the issuer rotated its keys), and in passing when the cache is older
// than maxAge (so a key the issuer withdrew stops being trusted). Fetches are
// one at a time and at most one per minRefresh, whatever their cause: a flood
// of tokens with made-up kids costs the issuer one request per minRefresh,
// and such tokens are refused without waiting in the meantime.
type keySet struct {
	url        string
	client     *http.Client
	now        func() time.Time
	minRefresh time.Duration
	maxAge     time.Duration
	log        zerolog.Logger

	fetching chan struct{} // a one-slot semaphore: one fetch at a time

	mu      sync.RWMutex
	keys    []jose.JSONWebKey
	fetched time.Time // when keys were fetched; zero: never
	tried   time.Time // last fetch attempt, successful or not
	gen     uint64    // bumped at every successful fetch
}

func newKeySet(url string, client *http.Client, now func() time.Time, minRefresh, maxAge time.Duration, log zerolog.Logger) *keySet {
	return &keySet{url: url, client: client, now: now, minRefresh: minRefresh, maxAge: maxAge, log: log,
		fetching: make(chan struct{}, 1)}
}

// VerifySignature implements oidc.KeySet.
func (k *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSigned(raw, allowedAlgs)
	if err != nil {
		return nil, err
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("want exactly one signature")
	}
	header := jws.Signatures[0].Header
	keys, gen, fetched := k.snapshot()
	candidates := matching(keys, header)
	if len(candidates) == 0 {
		// An unknown kid: the issuer may have rotated its keys.
		if err := k.refresh(ctx, gen, true); err != nil {
			if errors.Is(err, errRateLimited) {
				return nil, errUnknownKey
			}
			return nil, err
		}
		keys, _, _ = k.snapshot()
		candidates = matching(keys, header)
		if len(candidates) == 0 {
			return nil, errUnknownKey
		}
	} else if k.now().Sub(fetched) > k.maxAge {
		// Best effort, without waiting for a fetch already under way; on
		// failure the cached keys stay in use, after a fetch only the keys
		// the issuer still publishes.
		_ = k.refresh(ctx, gen, false)
		var now uint64
		if keys, now, _ = k.snapshot(); now != gen {
			candidates = matching(keys, header)
		}
	}
	for i := range candidates {
		if payload, err := jws.Verify(&candidates[i]); err == nil {
			return payload, nil
		}
	}
	return nil, errBadKey
}

// unavailable reports whether fetching the keys was tried and never
// succeeded.
func (k *keySet) unavailable() bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.gen == 0 && !k.tried.IsZero()
}

func (k *keySet) snapshot() ([]jose.JSONWebKey, uint64, time.Time) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.keys, k.gen, k.fetched
}

// matching returns the keys that may have made the signature: those with
// its kid (every key when the token has none) and, when the key names an
// algorithm, the token's.
func matching(keys []jose.JSONWebKey, h jose.Header) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, key := range keys {
		if (h.KeyID == "" || key.KeyID == h.KeyID) && (key.Algorithm == "" || key.Algorithm == h.Algorithm) {
			out = append(out, key)
		}
	}
	return out
}

// refresh fetches the key set unless another caller did since generation
// seen, or a fetch was tried less than minRefresh ago. wait says whether to
// wait for a fetch already under way.
func (k *keySet) refresh(ctx context.Context, seen uint64, wait bool) error {
	if wait {
		select {
		case k.fetching <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
	} else {
		select {
		case k.fetching <- struct{}{}:
		default:
			return nil
		}
	}
	defer func() { <-k.fetching }()

	k.mu.Lock()
	if k.gen != seen {
		k.mu.Unlock()
		return nil
	}
	now := k.now()
	if !k.tried.IsZero() && now.Sub(k.tried) < k.minRefresh {
		k.mu.Unlock()
		return errRateLimited
	}
	k.tried = now
	k.mu.Unlock()

	// The fetch outlives a caller that hangs up (the client's timeout bounds
	// it): it counts against the interval either way.
	keys, err := k.fetch(context.WithoutCancel(ctx))
	if err != nil {
		k.log.Warn().Err(err).Str("jwks_uri", k.url).Msg("fetching the OpenID Connect issuer's keys failed")
		return fmt.Errorf("%w: %w", ErrIssuerUnavailable, err)
	}
	k.mu.Lock()
	k.keys, k.fetched = keys, now
	k.gen++
	k.mu.Unlock()
	k.log.Info().Str("jwks_uri", k.url).Int("keys", len(keys)).Msg("OpenID Connect signing keys fetched")
	return nil
}

// fetch reads the key set. Keys it cannot use are skipped: encryption keys,
// symmetric keys, key types go-jose does not know.
func (k *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", k.url, resp.Status)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("GET %s: key set larger than %d bytes", k.url, maxJWKSBytes)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("GET %s: not a JSON Web Key Set: %w", k.url, err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range doc.Keys {
		var key jose.JSONWebKey
		if err := key.UnmarshalJSON(raw); err != nil {
			continue
		}
		if key.Use != "" && key.Use != "sig" {
			continue
		}
		if !key.IsPublic() {
			if _, symmetric := key.Key.([]byte); symmetric {
				continue
			}
			key = key.Public()
			if !key.Valid() {
				continue
			}
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("GET %s: no signing key in the key set", k.url)
	}
	return keys, nil
}
