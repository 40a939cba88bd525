package rules

import (
	"fmt"
	"time"

	"github.com/promoengine/promoengine/pkg/dec"
)

// Calendar periods of limits.per_period (SPEC §6.9).
const (
	PeriodDay   = "day"
	PeriodWeek  = "week" // Monday 00:00 to Monday 00:00
	PeriodMonth = "month"
)

// Scopes of a program's counters (SPEC §6.9).
const (
	ScopeChain     = "chain"
	ScopeCompany   = "company"
	ScopePosConfig = "pos_config"
)

// PeriodLimits are the counters of limits.per_period: they count the uses
// and discount of the orders whose occurred_at falls in the same calendar
// period, in the catalog timezone. nil fields are unlimited.
type PeriodLimits struct {
	Period          string // PeriodDay, PeriodWeek or PeriodMonth
	Uses            *int64 // all customers together, per period
	UsesPerCustomer *int64 // per customer, per period
	Budget          *dec.Decimal
}

// Limit names one counter of a program's limits, so that the ledger can say
// which one stopped a program and the trace can name it.
type Limit int

// The limits a LimitsReader can name. LimitNone is the zero value: a
// reader that does not say (the trace then says "no uses left").
const (
	LimitNone Limit = iota
	LimitTotalUses
	LimitUsesPerCustomer
	LimitBudget
	LimitPeriodUses
	LimitPeriodUsesPerCustomer
	LimitPeriodBudget
)

// CountersKey is where the counters of a use of a program live: the scope
// key (the company or pos config the program's scope keeps apart, "" for
// the chain) and the period key ("" when the program has no per_period).
type CountersKey struct {
	Scope  string
	Period string
}

// CountersKey returns the counters a use of program p by an order at t in
// the given company and pos config counts against.
func (c *Catalog) CountersKey(p *Program, companyID, posConfigID string, t time.Time) CountersKey {
	var k CountersKey
	switch p.Limits.Scope {
	case ScopeCompany:
		k.Scope = "company:" + companyID
	case ScopePosConfig:
		k.Scope = "pos_config:" + posConfigID
	}
	if pp := p.Limits.PerPeriod; pp != nil {
		k.Period = c.PeriodKey(pp.Period, t)
	}
	return k
}

// PeriodKey names the calendar period of t in the catalog timezone:
// "2026-11-21" for a day, the ISO week "2026-W47" (Monday to Monday) for a
// week, "2026-11" for a month. The three shapes never collide.
func (c *Catalog) PeriodKey(period string, t time.Time) string {
	local := t.In(c.location())
	switch period {
	case PeriodWeek:
		y, w := local.ISOWeek()
		return fmt.Sprintf("%04d-W%02d", y, w)
	case PeriodMonth:
		return local.Format("2006-01")
	default:
		return local.Format("2006-01-02")
	}
}

// periodAdjective is how a period qualifies a limit in a trace reason.
func periodAdjective(period string) string {
	switch period {
	case PeriodWeek:
		return "weekly"
	case PeriodMonth:
		return "monthly"
	}
	return "daily"
}

// scopeSuffix is " for company 1", " for pos config 3" or "" (the chain).
func (e *evaluation) scopeSuffix(l *Limits) string {
	switch l.Scope {
	case ScopeCompany:
		return " for company " + e.in.CompanyID
	case ScopePosConfig:
		return " for pos config " + e.in.PosConfigID
	}
	return ""
}

// limitReached is the trace reason of a program stopped by limit k:
// "total uses 1000 reached", "daily uses 100 reached for company 1".
func (e *evaluation) limitReached(l *Limits, k Limit) string {
	var what string
	var n *int64
	switch k {
	case LimitTotalUses:
		what, n = "total uses", l.TotalUses
	case LimitUsesPerCustomer:
		what, n = "uses per customer", l.UsesPerCustomer
	case LimitPeriodUses, LimitPeriodUsesPerCustomer:
		if pp := l.PerPeriod; pp != nil {
			what, n = periodAdjective(pp.Period)+" uses", pp.Uses
			if k == LimitPeriodUsesPerCustomer {
				what, n = what+" per customer", pp.UsesPerCustomer
			}
		}
	}
	if n == nil {
		return "no uses left"
	}
	return fmt.Sprintf("%s %d reached%s", what, *n, e.scopeSuffix(l))
}

// budgetName is "budget", or "daily budget" and the like, for the budget a
// LimitsReader named, with its amount; the amount is nil when the reader
// named none.
func budgetName(l *Limits, k Limit) (name string, amount *dec.Decimal) {
	switch {
	case k == LimitBudget:
		return "budget", l.Budget
	case k == LimitPeriodBudget && l.PerPeriod != nil:
		return periodAdjective(l.PerPeriod.Period) + " budget", l.PerPeriod.Budget
	}
	return "budget", nil
}

// budgetExhausted is the trace reason of a program whose budget (the one
// with the smallest remainder) is used up: "daily budget 500000 exhausted
// for company 1", or "budget exhausted" when the reader did not name it.
func (e *evaluation) budgetExhausted(l *Limits, k Limit) string {
	name, amount := budgetName(l, k)
	if amount == nil {
		return "budget exhausted"
	}
	return name + " " + amount.String() + " exhausted" + e.scopeSuffix(l)
}

// budgetCut is the reason's tail when a budget cuts the discount.
func (e *evaluation) budgetCut(l *Limits, k Limit, left dec.Decimal) string {
	name, amount := budgetName(l, k)
	suffix := ""
	if amount != nil {
		suffix = e.scopeSuffix(l)
	}
	return ", cut to the " + name + " left " + left.String() + suffix
}

// smallestBudget is the budget with the smallest remainder among the
// configured ones, with its name: what an order may still be given when
// nothing has been used (Unlimited).
func (l *Limits) smallestBudget() (*dec.Decimal, Limit) {
	var b *dec.Decimal
	var k Limit
	if l.Budget != nil {
		b, k = l.Budget, LimitBudget
	}
	if pp := l.PerPeriod; pp != nil && pp.Budget != nil && (b == nil || pp.Budget.Less(*b)) {
		b, k = pp.Budget, LimitPeriodBudget
	}
	return b, k
}
