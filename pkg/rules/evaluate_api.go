package rules

import (
	"time"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/events"
)

// Input is everything an evaluation may look at besides the catalog and the
// limits. It holds no clock: OccurredAt is business time.
type Input struct {
	OccurredAt  time.Time
	CompanyID   string
	PosConfigID string
	Order       *events.PaidOrder
	Customer    *Customer // nil for an anonymous order
	// Coupons are the customer's issued coupons whose codes the order
	// presents, as the ledger holds them before the order (SPEC §6.10).
	Coupons []Coupon
}

// Customer is the ledger's view of the customer before this order.
type Customer struct {
	ID      string
	Path    string      // membership path id ("" without membership)
	Level   string      // level held before this order ("" without membership)
	Balance dec.Decimal // points spendable at OccurredAt
}

// LimitsReader answers how much of a program's limits remain. The ledger
// implements it inside the event's transaction and holds a lock on the
// program's counters until commit, which is what makes limits exact under
// concurrency while evaluation stays pure. Evaluate calls it only for
// programs whose Limits.Any() is true, at most once per program, after the
// reward was computed and found non-zero.
type LimitsReader interface {
	Remaining(p *Program, customerID string) (Remaining, error)
}

// Remaining is what a program's limits still allow for one order.
type Remaining struct {
	UsesLeft bool         // every uses counter allows one more use
	Budget   *dec.Decimal // budget left (the smallest remainder); nil when the program has no budget
	// Stopped names the counter that allows no more use, BudgetLimit the
	// budget Budget is the remainder of, for the trace (LimitNone: not
	// said).
	Stopped     Limit
	BudgetLimit Limit
}

// Outcome is the result of evaluating one paid order.
type Outcome struct {
	// Rejection is set when the order is rejected (points layer); then the
	// ledger must not change and Lines carry no discount.
	Rejection *events.ResultError

	Lines     []events.LineResult // quantized to money decimals
	Totals    events.Totals
	Discounts []events.Discount // non-zero allocations in application order
	Trace     []events.Trace    // one entry per catalog program, in evaluation order

	// Uses are the applied programs with limits: the ledger records one use
	// and the discount against each.
	Uses []Use

	RedeemPoints dec.Decimal // points to consume FEFO (0 when none)
	RedeemValue  dec.Decimal // their money value, as discounted

	// Earned is the points this order earns (rounded down to the points
	// decimals), before any debt is paid from it; 0 for anonymous orders.
	Earned dec.Decimal

	// CouponsIssued are the coupons applied issue_coupon programs give and
	// CouponsUsed the codes applied when.coupon programs use, in
	// application order (SPEC §6.10).
	CouponsIssued []IssuedCoupon
	CouponsUsed   []UsedCoupon
}

// Use is one applied program that has limits.
type Use struct {
	ProgramID string
	Discount  dec.Decimal
}
