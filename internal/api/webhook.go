package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/promoengine/promoengine/internal/odoo"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/schemas"
)

// webhookTimeout bounds the work of one webhook, read-back retries and
// publishes included, once it is detached from the request.
const webhookTimeout = time.Minute

// readBackRetries is the schedule of read-backs when Odoo's webhook named a
// paid order that Odoo does not show as paid (yet): the webhook was sent
// before Odoo committed. About six seconds in all; Odoo commits as soon as
// its one-second webhook timeout has passed.
var readBackRetries = []time.Duration{200 * time.Millisecond, 400 * time.Millisecond,
	800 * time.Millisecond, 1600 * time.Millisecond, 3200 * time.Millisecond}

// webhookPayload is the body of Odoo's "Send Webhook Notification": the
// record's model and id, the action, and the fields chosen in the rule
// (read with load=None, so many-to-ones are bare ids). Only _model, _id
// and, when sent, state are used; everything else is read back.
type webhookPayload struct {
	Model  string          `json:"_model"`
	ID     json.RawMessage `json:"_id"`
	Action string          `json:"_action"`
	State  json.RawMessage `json:"state"`
}

// webhookAnswer is the 202 body.
type webhookAnswer struct {
	Status  string             `json:"status"` // published or ignored
	Reason  string             `json:"reason,omitempty"`
	OrderID string             `json:"order_id"`
	State   string             `json:"state,omitempty"`
	Events  []published        `json:"events,omitempty"`
	Skipped []odoo.SkippedLine `json:"skipped,omitempty"`
	// Duplicate is true when every event was already in the stream: the
	// webhook was delivered again.
	Duplicate bool `json:"duplicate"`
}

// webhook turns Odoo's notification about a pos.order into input events:
// it reads the order, its lines and products back with JSON-RPC and
// publishes a pos.order.paid and/or pos.order.returned event with a
// deterministic event_id and Nats-Msg-Id, so that a webhook delivered twice
// (Odoo fires on every matching save) publishes nothing new.
func (s *Server) webhook(w http.ResponseWriter, r *http.Request) error {
	if s.d.Odoo == nil {
		return apiErr(http.StatusServiceUnavailable, CodeOdooNotConfigured, "PROMO_ODOO_URL is not set: the engine cannot read orders back from Odoo")
	}
	body, err := readBody(w, r, maxEventBody)
	if err != nil {
		return err
	}
	var p webhookPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return violations(http.StatusBadRequest, CodeInvalidRequest, "not an Odoo webhook payload",
			[]schemas.Violation{{Pointer: "", Message: "not a JSON object"}})
	}
	var orderID int64
	var vs []schemas.Violation
	if p.Model != "pos.order" {
		vs = append(vs, schemas.Violation{Pointer: "/_model", Message: fmt.Sprintf("must be \"pos.order\", got %q: the automation rule must be on Point of Sale Orders", p.Model)})
	}
	if err := json.Unmarshal(p.ID, &orderID); err != nil || orderID <= 0 {
		vs = append(vs, schemas.Violation{Pointer: "/_id", Message: "must be the order's id, a positive integer"})
	}
	if len(vs) > 0 {
		return violations(http.StatusBadRequest, CodeInvalidRequest, "not a pos.order webhook payload", vs)
	}
	ans := webhookAnswer{OrderID: fmt.Sprint(orderID)}
	var claimed string // the state the webhook says, when the rule sends it
	_ = json.Unmarshal(p.State, &claimed)
	if claimed != "" && !slices.Contains(odoo.PublishableStates, claimed) {
		ans.Status, ans.State = "ignored", claimed
		ans.Reason = fmt.Sprintf("state %q is not one of %s", claimed, strings.Join(odoo.PublishableStates, ", "))
		writeJSON(w, http.StatusAccepted, ans)
		return nil
	}

	// Odoo hangs up after one second and ignores the answer: finish the
	// work even then.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), webhookTimeout)
	defer cancel()
	o, err := s.readBack(ctx, orderID, claimed != "")
	var inv *events.InvalidError
	switch {
	case errors.Is(err, odoo.ErrOrderNotFound):
		return apiErr(http.StatusNotFound, CodeOrderNotFound, "pos.order %d is not visible to the Odoo API user", orderID)
	case errors.As(err, &inv):
		s.log.Error().Err(err).Int64("order_id", orderID).Msg("an Odoo order does not make a valid event")
		return violations(http.StatusUnprocessableEntity, CodeInvalidEvent, fmt.Sprintf("pos.order %d does not make a valid event", orderID), inv.Violations)
	case odooFailed(err):
		s.log.Warn().Err(err).Int64("order_id", orderID).Msg("reading an order back from Odoo failed")
		return apiErr(http.StatusBadGateway, CodeOdooUnavailable, "reading pos.order %d from Odoo failed: %v", orderID, err)
	case err != nil:
		// Odoo answered, with data that makes no event (no currency, a line
		// without product…): sending it again will not help.
		s.log.Error().Err(err).Int64("order_id", orderID).Msg("an Odoo order does not make a valid event")
		return apiErr(http.StatusUnprocessableEntity, CodeInvalidEvent, "pos.order %d does not make a valid event: %v", orderID, err)
	}
	ans.State, ans.Skipped = o.State, o.Skipped
	switch {
	case !o.Publishable():
		ans.Status = "ignored"
		ans.Reason = fmt.Sprintf("state %q is not one of %s", o.State, strings.Join(odoo.PublishableStates, ", "))
	case len(o.Events) == 0:
		ans.Status, ans.Reason = "ignored", "no line of the order is goods sold or given back"
	default:
		for _, e := range o.Events {
			if err := authorizeStore(ctx, e.Event.CompanyID, e.Event.PosConfigID); err != nil {
				s.log.Warn().Int64("order_id", orderID).Str("company_id", string(e.Event.CompanyID)).
					Str("pos_config_id", string(e.Event.PosConfigID)).Msg("webhook for an order outside the credential's stores")
				return err
			}
		}
		ans.Status, ans.Duplicate = "published", true
		for _, e := range o.Events {
			pub, err := s.publish(r.WithContext(ctx), e.Event, e.Data)
			if err != nil {
				return err
			}
			ans.Events = append(ans.Events, pub)
			ans.Duplicate = ans.Duplicate && pub.Duplicate
		}
	}
	if len(o.Skipped) > 0 {
		s.log.Info().Int64("order_id", orderID).Interface("skipped", o.Skipped).Msg("order lines not sent to the engine")
	}
	writeJSON(w, http.StatusAccepted, ans)
	return nil
}

// readBack reads the order, retrying for a few seconds while Odoo does not
// show it yet, or does not show it in the publishable state the webhook
// claimed: the webhook came from inside the transaction that writes it.
func (s *Server) readBack(ctx context.Context, orderID int64, claimedPublishable bool) (*odoo.POSOrder, error) {
	for attempt := 0; ; attempt++ {
		o, err := odoo.POSOrderEvents(ctx, s.d.Odoo, s.d.Odoo.DB(), orderID)
		notYet := errors.Is(err, odoo.ErrOrderNotFound) || (err == nil && claimedPublishable && !o.Publishable())
		if !notYet || attempt >= len(readBackRetries) {
			return o, err
		}
		select {
		case <-time.After(readBackRetries[attempt]):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// odooFailed tells a failure of Odoo or of the way to it (an error answer,
// an HTTP error, a connection, a timeout, refused credentials) from an
// answer whose data makes no event.
func odooFailed(err error) bool {
	var rpc *odoo.Error
	var status *odoo.HTTPError
	var transport *odoo.TransportError
	return errors.As(err, &rpc) || errors.As(err, &status) || errors.As(err, &transport) ||
		errors.Is(err, odoo.ErrAccessDenied) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}
