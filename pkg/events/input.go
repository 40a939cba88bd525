package events

import (
	"encoding/json"
	"time"

	"github.com/promoengine/promoengine/pkg/dec"
)

// Input event types (SPEC §3).
const (
	TypeOrderPaid      = "pos.order.paid"
	TypeOrderReturned  = "pos.order.returned"
	TypeOrderCancelled = "pos.order.cancelled"
)

// Limits of SPEC §3.
const (
	MaxEventBytes = 1 << 20
	MaxLines      = 1000
)

// Event is a decoded, valid input event. Exactly one of Paid, Returned and
// Cancelled is set, matching Type.
type Event struct {
	EventID     string
	Type        string
	OccurredAt  time.Time // keeps the offset it was written with
	CompanyID   ID
	PosConfigID ID

	Paid      *PaidOrder
	Returned  *ReturnedOrder
	Cancelled *CancelledOrder
}

// PaidOrder is the order of a pos.order.paid event.
type PaidOrder struct {
	ID           ID           `json:"id"`
	Name         string       `json:"name,omitempty"`
	Currency     string       `json:"currency"`
	CustomerID   ID           `json:"customer_id,omitempty"` // "" for an anonymous order
	Lines        []Line       `json:"lines"`
	CouponCodes  []string     `json:"coupon_codes,omitempty"`
	RedeemPoints *dec.Decimal `json:"redeem_points,omitempty"`
}

// Line is one line of a paid order.
type Line struct {
	ID          ID          `json:"id"`
	ProductID   ID          `json:"product_id"`
	CategoryIDs IDs         `json:"category_ids,omitempty"`
	TagIDs      IDs         `json:"tag_ids,omitempty"`
	Qty         dec.Decimal `json:"qty"`
	UnitPrice   dec.Decimal `json:"unit_price"`
}

// ReturnedOrder is the order of a pos.order.returned event.
type ReturnedOrder struct {
	ID              ID           `json:"id"`
	Name            string       `json:"name,omitempty"`
	OriginalOrderID ID           `json:"original_order_id"`
	Lines           []ReturnLine `json:"lines"`
}

// ReturnLine names a line of the original order and the quantity brought back.
type ReturnLine struct {
	LineID ID          `json:"line_id"`
	Qty    dec.Decimal `json:"qty"`
}

// CancelledOrder is the order of a pos.order.cancelled event.
type CancelledOrder struct {
	ID ID `json:"id"`
}

// OrderID returns the id of the event's order.
func (e *Event) OrderID() ID {
	switch {
	case e.Paid != nil:
		return e.Paid.ID
	case e.Returned != nil:
		return e.Returned.ID
	case e.Cancelled != nil:
		return e.Cancelled.ID
	}
	return ""
}

// ReferencedOrderID is the paid order a return or cancellation refers to;
// for a paid event, its own id.
func (e *Event) ReferencedOrderID() ID {
	switch {
	case e.Returned != nil:
		return e.Returned.OriginalOrderID
	case e.Cancelled != nil:
		return e.Cancelled.ID
	}
	return e.OrderID()
}

// CustomerID is the customer named by a paid event ("" for anonymous or for
// returns and cancellations, whose customer comes from the original order).
func (e *Event) CustomerID() ID {
	if e.Paid != nil {
		return e.Paid.CustomerID
	}
	return ""
}

// FormatTime writes a time as RFC 3339 with its own offset, which is how
// every time goes on the wire.
func FormatTime(t time.Time) string { return t.Format(time.RFC3339Nano) }

// wireEvent is the JSON shape shared by all input events.
type wireEvent struct {
	EventID     string          `json:"event_id"`
	Type        string          `json:"type"`
	OccurredAt  string          `json:"occurred_at"`
	CompanyID   ID              `json:"company_id"`
	PosConfigID ID              `json:"pos_config_id"`
	Order       json.RawMessage `json:"order"`
}

// MarshalJSON writes the event in its wire shape (used by `publish`, the
// load generator and tests; the engine itself never re-encodes input).
func (e *Event) MarshalJSON() ([]byte, error) {
	var order any
	switch {
	case e.Paid != nil:
		order = e.Paid
	case e.Returned != nil:
		order = e.Returned
	default:
		order = e.Cancelled
	}
	ob, err := json.Marshal(order)
	if err != nil {
		return nil, err
	}
	return json.Marshal(wireEvent{
		EventID: e.EventID, Type: e.Type, OccurredAt: FormatTime(e.OccurredAt),
		CompanyID: e.CompanyID, PosConfigID: e.PosConfigID, Order: ob,
	})
}
