package odoo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/promoengine/promoengine/internal/tracing"
	"github.com/promoengine/promoengine/pkg/events"
)

// Sources of a recorded order id.
const (
	SourceWebhook    = "webhook"    // Odoo's automation rule posted /v1/odoo/webhook
	SourceReconciler = "reconciler" // the engine found it asking Odoo for changed orders
	SourceSync       = "sync"       // an operator ran `promoengine odoo sync`
)

// OrderRef is what the engine records about an Odoo order before reading
// it back: one message on PROMO_ODOO_ORDERS. It holds ids only — the order
// itself is read from Odoo by the read-back worker, so a forged or replayed
// reference can make the engine read a real order, never invent one.
type OrderRef struct {
	DB      string `json:"db"`
	OrderID int64  `json:"order_id"`
	Source  string `json:"source"`
	// RecordedAt is when the engine recorded it; the read-back gives up
	// (dead letter odoo_order_unavailable) a bound after it.
	RecordedAt time.Time `json:"recorded_at"`
	// State is the state the webhook said the order is in ("" when the
	// rule does not send it): a claimed paid order that Odoo does not show
	// yet is waited for, since Odoo posts webhooks before it commits.
	State string `json:"state,omitempty"`
	// CompanyID and POSConfigID are what the webhook said ("" when not
	// sent), already checked against Scope.
	CompanyID   string `json:"company_id,omitempty"`
	POSConfigID string `json:"pos_config_id,omitempty"`
	// Scope is the store scope of the credential that recorded the order;
	// nil for an unscoped one. The read-back checks the order's real
	// company and POS config against it again.
	Scope *StoreScope `json:"scope,omitempty"`
}

// MsgID is the Nats-Msg-Id of a recorded order: one per order, so a webhook
// fired twice and the reconciler finding the same order record it once
// within the stream's duplicate window.
func (r OrderRef) MsgID() string {
	return "odoo:" + r.DB + ":pos.order:" + strconv.FormatInt(r.OrderID, 10)
}

// ErrBadOrderRef: a message on PROMO_ODOO_ORDERS that is not an OrderRef.
var ErrBadOrderRef = errors.New("odoo: not a recorded order reference")

// DecodeOrderRef reads a recorded order.
func DecodeOrderRef(data []byte) (OrderRef, error) {
	var r OrderRef
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("%w: %v", ErrBadOrderRef, err)
	}
	if r.DB == "" || r.OrderID <= 0 {
		return r, fmt.Errorf("%w: db and a positive order_id are required", ErrBadOrderRef)
	}
	return r, nil
}

// Recorded is the outcome of RecordOrder.
type Recorded struct {
	StreamSeq uint64
	// Duplicate: the order was already recorded within the duplicate
	// window (a webhook delivered twice).
	Duplicate bool
}

// RecordOrder stores ref on PROMO_ODOO_ORDERS and waits for JetStream's
// acknowledgement. Once it returns without error, the order will be read
// back and published even if this process dies the next instant.
func RecordOrder(ctx context.Context, js jetstream.JetStream, subjects events.Subjects, ref OrderRef) (Recorded, error) {
	if ref.RecordedAt.IsZero() {
		ref.RecordedAt = time.Now().UTC()
	}
	data, err := json.Marshal(ref)
	if err != nil {
		return Recorded{}, err
	}
	msg := &nats.Msg{Subject: subjects.OdooOrders(), Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, ref.MsgID())
	// The webhook's trace goes on to the read-back (internal/tracing).
	ctx, span := tracing.StartPublish(ctx, subjects.OdooOrders(), msg.Header)
	ack, err := js.PublishMsg(ctx, msg)
	tracing.End(span, err)
	if err != nil {
		return Recorded{}, fmt.Errorf("odoo: record pos.order %d: %w", ref.OrderID, err)
	}
	return Recorded{StreamSeq: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

// StoreScope limits a credential to some stores (SPEC §8): the companies and
// POS configs whose orders it may send. A nil list allows every value; an
// empty value ("" — not sent) is outside any list.
type StoreScope struct {
	CompanyIDs   []string `json:"company_ids,omitempty"`
	POSConfigIDs []string `json:"pos_config_ids,omitempty"`
}

// Allows reports whether an order of company and posConfig is inside the
// scope. A nil scope allows everything.
func (s *StoreScope) Allows(company, posConfig string) bool {
	if s == nil {
		return true
	}
	if s.CompanyIDs != nil && !slices.Contains(s.CompanyIDs, company) {
		return false
	}
	if s.POSConfigIDs != nil && !slices.Contains(s.POSConfigIDs, posConfig) {
		return false
	}
	return true
}

// Unscoped reports whether the scope allows every store.
func (s *StoreScope) Unscoped() bool {
	return s == nil || (s.CompanyIDs == nil && s.POSConfigIDs == nil)
}
