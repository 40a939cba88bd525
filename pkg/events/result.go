package events

import "github.com/promoengine/promoengine/pkg/dec"

// Result event types (SPEC §4).
const (
	TypeOrderResult   = "promo.order.result"
	TypePointsExpired = "promo.points_expired"
	TypeLevelChanged  = "promo.level_changed"
)

// Result statuses.
const (
	StatusApplied  = "applied"
	StatusRejected = "rejected"
	StatusQuote    = "quote"
)

// Rejection codes of SPEC §4.
const (
	RejectInsufficientPoints     = "insufficient_points"
	RejectRedemptionBelowMinimum = "redemption_below_minimum"
	RejectRedemptionExceedsLimit = "redemption_exceeds_limit"
	RejectCustomerRequired       = "customer_required"
	RejectUnknownOriginalOrder   = "unknown_original_order"
	RejectReturnExceedsSold      = "return_exceeds_sold"
	RejectAlreadyCancelled       = "already_cancelled"
)

// Trace outcomes of SPEC §4.
const (
	OutcomeApplied            = "applied"
	OutcomeNotActive          = "not_active"
	OutcomeNotEligible        = "not_eligible"
	OutcomeConditionFailed    = "condition_failed"
	OutcomeLimitReached       = "limit_reached"
	OutcomeStoppedByExclusive = "stopped_by_exclusive"
)

// Layers, in evaluation order.
const (
	LayerItem   = "item"
	LayerMember = "member"
	LayerOrder  = "order"
	LayerPoints = "points"
)

// ResultEventID is the event_id of the result of input event id.
func ResultEventID(inputEventID string) string { return "result:" + inputEventID }

// OrderResult is the promo.results.order event: the outcome of one order
// event. Amounts are quantized to the catalog's money decimals and points to
// its points decimals before they are put here, so that they marshal with
// exactly those decimals.
type OrderResult struct {
	EventID         string       `json:"event_id"`
	Type            string       `json:"type"`
	CausationID     string       `json:"causation_id"`
	SourceType      string       `json:"source_type"`
	OccurredAt      string       `json:"occurred_at"`
	OrderID         string       `json:"order_id"`
	OriginalOrderID string       `json:"original_order_id,omitempty"`
	CustomerID      string       `json:"customer_id,omitempty"`
	Currency        string       `json:"currency"`
	Status          string       `json:"status"`
	Error           *ResultError `json:"error,omitempty"`
	CatalogVersion  int64        `json:"catalog_version"`
	Totals          Totals       `json:"totals"`
	Lines           []LineResult `json:"lines"`
	Discounts       []Discount   `json:"discounts"`
	Points          *Points      `json:"points,omitempty"`
	Membership      *Membership  `json:"membership,omitempty"`
	Trace           []Trace      `json:"trace"`

	// Coupons (SPEC §6.10): issued and used by a paid order; voided and
	// made usable again by a return or cancellation.
	CouponsIssued   []CouponIssued `json:"coupons_issued,omitempty"`
	CouponsUsed     []CouponRef    `json:"coupons_used,omitempty"`
	CouponsVoided   []CouponRef    `json:"coupons_voided,omitempty"`
	CouponsReleased []CouponRef    `json:"coupons_released,omitempty"`
}

// ResultError explains a rejection.
type ResultError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Totals sum the lines.
type Totals struct {
	Gross    dec.Decimal `json:"gross"`
	Discount dec.Decimal `json:"discount"`
	Net      dec.Decimal `json:"net"`
}

// LineResult is one line after every layer: gross - discount = net.
type LineResult struct {
	ID       string      `json:"id"`
	Qty      dec.Decimal `json:"qty"`
	Gross    dec.Decimal `json:"gross"`
	Discount dec.Decimal `json:"discount"`
	Net      dec.Decimal `json:"net"`
}

// Discount is one non-zero allocation of one program (or of the member level
// or of a points redemption) to one line.
type Discount struct {
	Layer     string      `json:"layer"`
	ProgramID string      `json:"program_id"`
	LineID    string      `json:"line_id"`
	Amount    dec.Decimal `json:"amount"`
}

// Points is the points side of an order result.
type Points struct {
	Earned          dec.Decimal `json:"earned"`
	EarnedLotID     string      `json:"earned_lot_id,omitempty"`
	EarnedExpiresAt *string     `json:"earned_expires_at"`
	Redeemed        dec.Decimal `json:"redeemed"`
	RedeemedLots    []LotAmount `json:"redeemed_lots"`
	ClawedBack      dec.Decimal `json:"clawed_back"`
	ClawedBackLots  []LotAmount `json:"clawed_back_lots,omitempty"`
	Restored        dec.Decimal `json:"restored"`
	RestoredLots    []LotAmount `json:"restored_lots,omitempty"`
	Debt            dec.Decimal `json:"debt"`
	Balance         dec.Decimal `json:"balance"`
}

// LotAmount is an amount of points taken from or put into one lot.
type LotAmount struct {
	LotID     string      `json:"lot_id"`
	Amount    dec.Decimal `json:"amount"`
	ExpiresAt *string     `json:"expires_at"`
}

// Membership is the level side of an order result.
type Membership struct {
	Path             string      `json:"path"`
	Level            string      `json:"level"`
	PreviousLevel    string      `json:"previous_level"`
	Changed          bool        `json:"changed"`
	QualifyingAmount dec.Decimal `json:"qualifying_amount"`
}

// Trace is the decision about one catalog program.
type Trace struct {
	ProgramID string `json:"program_id"`
	Layer     string `json:"layer"`
	Outcome   string `json:"outcome"`
	Reason    string `json:"reason"`
}

// PointsExpired is the promo.results.points_expired event.
type PointsExpired struct {
	EventID    string      `json:"event_id"`
	Type       string      `json:"type"`
	OccurredAt string      `json:"occurred_at"`
	CustomerID string      `json:"customer_id"`
	Expired    []LotAmount `json:"expired"`
	Balance    dec.Decimal `json:"balance"`
}

// LevelChanged is the promo.results.level_changed event.
type LevelChanged struct {
	EventID       string `json:"event_id"`
	Type          string `json:"type"`
	OccurredAt    string `json:"occurred_at"`
	CustomerID    string `json:"customer_id"`
	Path          string `json:"path"`
	PreviousLevel string `json:"previous_level"`
	Level         string `json:"level"`
	Reason        string `json:"reason"`
}
