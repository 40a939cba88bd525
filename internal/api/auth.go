package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/internal/identity"
	"github.com/promoengine/promoengine/pkg/events"
)

// CodeForbiddenStore is the 403 of a principal scoped to other stores than
// the order's (SPEC §8).
const CodeForbiddenStore = "forbidden_store"

// newAuthenticator builds the authenticator of the configured keys and,
// when an issuer is configured, tokens.
func newAuthenticator(keys config.APIKeys, tokens *identity.OIDC) *identity.Authenticator {
	list := make([]identity.APIKey, 0, len(keys))
	for _, k := range keys {
		list = append(list, identity.APIKey{Key: string(k.Key), Role: k.Role, Scope: k.Scope})
	}
	return identity.NewAuthenticator(identity.NewKeyring(list), tokens)
}

// authenticate checks the request's credential and role. On success it
// returns the request with the principal in its context; otherwise it has
// answered 401 (no valid credential) or 403 (a valid one without the role).
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, route, need string, queryToken bool) (*http.Request, bool) {
	p, err := s.Authorize(r.Context(), presentedKey(r, queryToken), route, need, r.RemoteAddr)
	if err != nil {
		writeError(w, err)
		return r, false
	}
	return r.WithContext(identity.NewContext(r.Context(), p)), true
}

// Authorize authenticates a bearer credential and checks that it carries
// role need for operation (a route or an RPC procedure, named in the
// refusal); remote is the peer, for the log. Every transport calls it, so
// a credential is refused alike everywhere: a 401 *Error for no valid
// credential, a 403 for a valid one without the role.
func (s *Server) Authorize(ctx context.Context, bearer, operation, need, remote string) (identity.Principal, *Error) {
	p, err := s.auth.Authenticate(ctx, bearer)
	switch {
	case errors.Is(err, identity.ErrNoCredentials):
		return p, apiErr(http.StatusUnauthorized, CodeUnauthorized, "a valid API key or token is required: Authorization: Bearer <key>")
	case errors.Is(err, identity.ErrIssuerUnavailable):
		// The details (the issuer's answer) are logged by identity, not
		// handed to the caller.
		return p, apiErr(http.StatusUnauthorized, CodeUnauthorized, "the token cannot be verified now: the identity provider does not answer")
	case err != nil:
		s.log.Debug().Err(err).Str("route", operation).Str("remote_addr", remote).Msg("authentication refused")
		return p, apiErr(http.StatusUnauthorized, CodeUnauthorized, "%s", shorten(err.Error(), maxAuthMessage))
	case p.Role == "":
		return p, apiErr(http.StatusForbidden, CodeForbidden, "this token carries no promoengine role (%s or %s); %s needs role %s",
			identity.TokenRolePOS, identity.TokenRoleAdmin, operation, need)
	case !p.Allows(need):
		return p, apiErr(http.StatusForbidden, CodeForbidden, "this credential has role %s; %s needs role %s", p.Role, operation, need)
	}
	return p, nil
}

// authorizeStore is the store scope of SPEC §8, the one check every route
// that takes an order makes (quote, events, the webhook's read-back): nil
// when the principal in ctx may act for an order of company companyID at
// point of sale posConfigID, else a 403 forbidden_store. A context without
// a principal is refused: the route was not authenticated.
func authorizeStore(ctx context.Context, companyID, posConfigID events.ID) error {
	p, ok := identity.FromContext(ctx)
	switch {
	case !ok:
		return apiErr(http.StatusForbidden, CodeForbiddenStore, "no authenticated principal")
	case p.AllowsStore(string(companyID), string(posConfigID)):
		return nil
	}
	return apiErr(http.StatusForbidden, CodeForbiddenStore,
		"this credential may act only for the stores %s; the order names company_id %q, pos_config_id %q (a missing one is outside)",
		p.Scope, companyID, posConfigID)
}

// maxAuthMessage bounds the reason given for a 401: it may quote claims of
// the token, which the caller chose.
const maxAuthMessage = 300

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// presentedKey is the bearer of the request, or, where allowed, its
// ?token= parameter.
func presentedKey(r *http.Request, queryToken bool) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, key, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(key)
		}
		return ""
	}
	if queryToken {
		return r.URL.Query().Get("token")
	}
	return ""
}
