package identity

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Roles a principal may have. Admin may do everything pos may.
const (
	RolePOS   = "pos"
	RoleAdmin = "admin"
	// RoleWebhook may only trigger Odoo read-backs (the webhook route):
	// its key sits in an Odoo automation rule and in Odoo's logs.
	RoleWebhook = "webhook"
)

// Kinds of credential a principal authenticated with.
const (
	KindAPIKey = "api_key"
	KindOIDC   = "oidc"
)

// Principal is who made a request: the subject, the role and the stores it
// may act for. It is the same whatever the credential (an API key or an
// OpenID Connect token) and whatever the transport (HTTP today, gRPC
// later), so that authorisation is written once.
type Principal struct {
	// Kind is KindAPIKey or KindOIDC.
	Kind string
	// Subject names the principal in logs and the audit trail without
	// revealing a secret: the token's sub, or the key's fingerprint
	// ("sha256:1a2b3c4d").
	Subject string
	// Issuer is the token's iss (empty for an API key).
	Issuer string
	// Role is RolePOS, RoleAdmin, or "" for a token that carries no role
	// promoengine knows (it is authenticated, and allowed nothing).
	Role string
	// Scope limits the stores the principal may act for.
	Scope Scope
}

// Who renders the principal for the audit trail and logs:
// "api_key sha256:1a2b3c4d" or "oidc https://idp/realms/shop#7f1e…".
func (p Principal) Who() string {
	if p.Kind == KindOIDC {
		return p.Kind + " " + p.Issuer + "#" + p.Subject
	}
	return p.Kind + " " + p.Subject
}

// Allows says whether the principal may call something that needs role
// need: admin may call everything, pos what needs pos.
func (p Principal) Allows(need string) bool {
	switch p.Role {
	case RoleAdmin:
		return true
	case RolePOS:
		return need == RolePOS || need == RoleWebhook
	case RoleWebhook:
		return need == RoleWebhook
	}
	return false
}

// AllowsStore says whether the principal may act for an order of company
// companyID at point of sale posConfigID (SPEC §8). An empty id is outside
// any limited scope.
func (p Principal) AllowsStore(companyID, posConfigID string) bool {
	return p.Scope.Allows(companyID, posConfigID)
}

// Scope is the set of stores a principal may act for. A nil list does not
// limit its dimension; an empty, non-nil list allows nothing (a token whose
// company_ids is [] acts for no company).
type Scope struct {
	CompanyIDs   []string
	PosConfigIDs []string
}

// Unlimited reports whether the scope allows every store.
func (s Scope) Unlimited() bool { return s.CompanyIDs == nil && s.PosConfigIDs == nil }

// Allows says whether an order of company companyID at point of sale
// posConfigID is inside the scope. A dimension that is limited needs the id:
// an order (or a quote) without it is outside.
func (s Scope) Allows(companyID, posConfigID string) bool {
	return inList(s.CompanyIDs, companyID) && inList(s.PosConfigIDs, posConfigID)
}

func inList(list []string, id string) bool {
	return list == nil || (id != "" && slices.Contains(list, id))
}

// String renders the scope in the syntax ParseScope reads ("" when
// unlimited).
func (s Scope) String() string {
	var parts []string
	if s.CompanyIDs != nil {
		parts = append(parts, scopeCompany+"="+strings.Join(s.CompanyIDs, "|"))
	}
	if s.PosConfigIDs != nil {
		parts = append(parts, scopePosConfig+"="+strings.Join(s.PosConfigIDs, "|"))
	}
	return strings.Join(parts, ";")
}

// Keys of the API-key scope syntax.
const (
	scopeCompany   = "company"
	scopePosConfig = "pos_config"
)

// ParseScope reads the store scope of an API key, the part after "@" in
// PROMO_API_KEYS: "company=1|2;pos_config=3|4". Each dimension appears at
// most once and lists at least one id; ids are what events carry in
// company_id / pos_config_id (Odoo's integer ids as decimal strings).
func ParseScope(text string) (Scope, error) {
	var s Scope
	if strings.TrimSpace(text) == "" {
		return s, fmt.Errorf("%w: empty store scope after @; want company=ID|ID;pos_config=ID|ID", ErrBadScope)
	}
	for part := range strings.SplitSeq(text, ";") {
		name, values, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return Scope{}, fmt.Errorf("%w: %q is not name=ID|ID", ErrBadScope, part)
		}
		var ids []string
		for id := range strings.SplitSeq(values, "|") {
			id = strings.TrimSpace(id)
			if !validID(id) {
				return Scope{}, fmt.Errorf("%w: %s has an empty or invalid id %q", ErrBadScope, name, id)
			}
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
		var dst *[]string
		switch strings.TrimSpace(name) {
		case scopeCompany:
			dst = &s.CompanyIDs
		case scopePosConfig:
			dst = &s.PosConfigIDs
		default:
			return Scope{}, fmt.Errorf("%w: unknown name %q; want %s or %s", ErrBadScope, name, scopeCompany, scopePosConfig)
		}
		if *dst != nil {
			return Scope{}, fmt.Errorf("%w: %s is given twice", ErrBadScope, name)
		}
		*dst = ids
	}
	return s, nil
}

// validID accepts what an event id field may hold: at most 200 characters,
// no control characters and none of the scope syntax's separators.
func validID(id string) bool {
	if id == "" || len(id) > 200 {
		return false
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(";|=,@", r) {
			return false
		}
	}
	return true
}

type principalKey struct{}

// NewContext returns ctx carrying the principal.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal of ctx, if any.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
