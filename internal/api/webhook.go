package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/promoengine/promoengine/internal/odoo"
	"github.com/promoengine/promoengine/schemas"
)

// codeForbiddenStore is the error code of an order outside the store scope
// of the credential (SPEC §8).
const codeForbiddenStore = "forbidden_store"

// webhookAnswer is the 202 body.
type webhookAnswer struct {
	// Status is "recorded" (the order id is stored; it will be read back
	// from Odoo and published) or "ignored" (the state sent is not final).
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
	OrderID string `json:"order_id"`
	State   string `json:"state,omitempty"`
	// StreamSeq is the order's sequence in PROMO_ODOO_ORDERS.
	StreamSeq uint64 `json:"stream_seq,omitempty"`
	// Duplicate is true when the order was already recorded: the webhook
	// was delivered again.
	Duplicate bool `json:"duplicate"`
}

// webhook records the id of the pos.order Odoo's automation rule names and
// answers at once. It reads nothing from Odoo: the read-back worker
// (workers.OdooReadback) reads the order, its lines and products from Odoo
// and publishes its events, waiting as long as it takes for Odoo to commit
// it — Odoo posts the webhook from inside the transaction that pays the
// order, and a POS syncing many orders commits them all at the end.
//
// The body is Odoo's "Send Webhook Notification": _model, _id, and the
// fields chosen in the rule, read with load=None (many-to-ones as bare ids).
// Only _model and _id are needed; state, company_id and config_id are
// used when sent: a state that is not final is ignored at once, and the
// company and POS config are checked against the credential's store scope
// here and again, with the values read back, before anything is published.
func (s *Server) webhook(w http.ResponseWriter, r *http.Request) error {
	if s.d.Odoo == nil {
		return apiErr(http.StatusServiceUnavailable, CodeOdooNotConfigured, "PROMO_ODOO_URL is not set: the engine cannot read orders back from Odoo")
	}
	body, err := readBody(w, r, maxEventBody)
	if err != nil {
		return err
	}
	var p odoo.Record
	if err := json.Unmarshal(body, &p); err != nil {
		return violations(http.StatusBadRequest, CodeInvalidRequest, "not an Odoo webhook payload",
			[]schemas.Violation{{Pointer: "", Message: "not a JSON object"}})
	}
	var vs []schemas.Violation
	if model := p.String("_model"); model != "pos.order" {
		vs = append(vs, schemas.Violation{Pointer: "/_model", Message: fmt.Sprintf("must be \"pos.order\", got %q: the automation rule must be on Point of Sale Orders", model)})
	}
	orderID, ok := p.Int("_id")
	if !ok || orderID <= 0 {
		vs = append(vs, schemas.Violation{Pointer: "/_id", Message: "must be the order's id, a positive integer"})
	}
	if len(vs) > 0 {
		return violations(http.StatusBadRequest, CodeInvalidRequest, "not a pos.order webhook payload", vs)
	}
	ans := webhookAnswer{OrderID: fmt.Sprint(orderID)}
	claimed := p.String("state")
	if claimed != "" && !slices.Contains(odoo.PublishableStates, claimed) {
		ans.Status, ans.State = "ignored", claimed
		ans.Reason = fmt.Sprintf("state %q is not one of %s", claimed, strings.Join(odoo.PublishableStates, ", "))
		writeJSON(w, http.StatusAccepted, ans)
		return nil
	}
	ref := odoo.OrderRef{DB: s.d.Odoo.DB(), OrderID: orderID, Source: odoo.SourceWebhook, State: claimed}
	if id, _, ok := p.Many2one("company_id"); ok {
		ref.CompanyID = fmt.Sprint(id)
	}
	if id, _, ok := p.Many2one("config_id"); ok {
		ref.POSConfigID = fmt.Sprint(id)
	}
	if ref.Scope, err = s.webhookStoreScope(r, ref.CompanyID, ref.POSConfigID); err != nil {
		return err
	}
	rec, err := odoo.RecordOrder(r.Context(), s.d.JS, s.d.Subjects, ref)
	if err != nil {
		s.log.Warn().Err(err).Int64("order_id", orderID).Msg("recording an Odoo order failed")
		return apiErr(http.StatusServiceUnavailable, CodeUnavailable, "pos.order %d could not be recorded in JetStream; send it again", orderID)
	}
	s.log.Debug().Int64("order_id", orderID).Uint64("stream_seq", rec.StreamSeq).Bool("duplicate", rec.Duplicate).
		Msg("Odoo order recorded for read-back")
	ans.Status, ans.State, ans.StreamSeq, ans.Duplicate = "recorded", claimed, rec.StreamSeq, rec.Duplicate
	writeJSON(w, http.StatusAccepted, ans)
	return nil
}

// webhookStoreScope checks the company and POS config the webhook names
// against the store scope of the request's principal and returns that scope
// (nil: every store), which travels with the recorded order so that the
// read-back checks the values Odoo really holds before publishing anything.
// A scoped principal must name both: one missing counts as outside.
//
// The hook of SPEC §8's store scopes is Deps.StoreScope: API keys have
// none (nil: every key is unscoped); the identity layer (OIDC tokens with
// company_ids / pos_config_ids) returns the principal's scope there.
func (s *Server) webhookStoreScope(r *http.Request, companyID, posConfigID string) (*odoo.StoreScope, error) {
	var scope *odoo.StoreScope
	if s.d.StoreScope != nil {
		scope = s.d.StoreScope(r)
	}
	if scope.Unscoped() {
		return nil, nil
	}
	if !scope.Allows(companyID, posConfigID) {
		return nil, apiErr(http.StatusForbidden, codeForbiddenStore,
			"this credential may not send orders of company %q, POS config %q (the automation rule must send company_id and config_id)",
			companyID, posConfigID)
	}
	return scope, nil
}
