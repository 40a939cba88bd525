// Package identity says who is calling and what they may do: it turns a
// bearer credential into a Principal (subject, role, store scope) and
// answers Principal.Allows(role) and Principal.AllowsStore(company,
// pos_config). It does not know HTTP: the HTTP API (internal/api) puts the
// principal in the request context with NewContext, and a gRPC or Connect
// API calls the same Authenticator with the same bearer.
//
// # Credentials
//
// API keys (PROMO_API_KEYS) are static bearers with a role and, optionally,
// a store scope: "key:pos@company=1;pos_config=3|4" (ParseScope). The
// keyring keeps only their SHA-256 and compares in constant time over every
// key. A key is named by its Fingerprint ("sha256:1a2b3c4d") in logs and in
// the audit trail, never by its value.
//
// OpenID Connect tokens (PROMO_OIDC_ISSUER, PROMO_OIDC_AUDIENCE) follow SPEC
// §8 exactly:
//   - the issuer is discovered from /.well-known/openid-configuration
//     (go-oidc, which checks that the document names the same issuer);
//   - the signature is checked by go-jose against the issuer's JSON Web Key
//     Set, with RS256, ES256 or EdDSA only: "none" and HMAC are refused
//     before any key is looked at;
//   - iss must equal the issuer, aud must contain the audience (go-oidc);
//     exp is required and, like nbf, checked here with at most 60 s of
//     leeway (go-oidc's own check allows five minutes on nbf, so it is off);
//   - the role comes from the claim PROMO_OIDC_ROLES_CLAIM (default
//     "roles"): promo.admin gives admin, promo.pos gives pos, neither gives
//     an authenticated principal allowed nothing (403, not 401);
//   - company_ids and pos_config_ids, when present, limit the stores. An
//     empty list allows no store; a claim of the wrong shape makes the token
//     unusable, never unlimited.
//
// # Keys of the issuer
//
// The key set is fetched on first use and cached; a token naming a kid that
// is not cached makes it fetch again (the issuer rotated its keys), and keys
// older than 15 minutes are fetched again in passing, so a withdrawn key
// stops being trusted. Fetches go one at a time and at most one per 10 s
// whatever their cause: a flood of tokens with invented kids costs the issuer
// one request per 10 s, and those tokens are refused at once meanwhile.
// Discovery, too, is retried at most once per 10 s. When the issuer is down
// at start the engine still starts; tokens are refused (401) until it
// answers, API keys work throughout.
//
// Why go-oidc and not a hand-written verifier: discovery, issuer and
// audience checks and the algorithm allow-list are easy to get subtly wrong,
// and go-oidc with go-jose is what most Go services trust for them. The key
// set is ours only because go-oidc's refetches on every unknown kid without
// a limit; it hands the signature to go-jose's JSONWebSignature.Verify.
package identity
