package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/schemas"
)

// SPEC §5's catalog with the limits and coupons of §6.9 and §6.10, and a
// path that warns 14 days ahead (§6.8).
var featuresCatalog = strings.Replace(testCatalog(0, `
  - id: flash
    layer: item
    when: {products: {categories: ["12"]}}
    limits:
      total_uses: 1000
      per_period: {period: day, uses: 100, uses_per_customer: 1, budget: "500000"}
      scope: company
    reward: {percent: "20", on: lines, max: "50000"}
  - id: next-visit
    layer: order
    when: {min_amount: "150000"}
    reward: {issue_coupon: {program: comeback-10, valid_days: 30}}
  - id: comeback-10
    layer: order
    when: {coupon: issued}
    reward: {percent: "10"}`), "retention_days: 365\n", "retention_days: 365\n      warn_days: 14\n", 1)

func TestParsePeriodLimitsScopeCouponsAndWarnings(t *testing.T) {
	t.Parallel()
	c := mustParse(t, featuresCatalog)
	requireEqual(t, 14, c.Path("default").WarnDays, "warn_days")

	flash := c.Program("flash")
	requireEqual(t, ScopeCompany, flash.Limits.Scope, "scope")
	pp := flash.Limits.PerPeriod
	requireEqual(t, PeriodDay, pp.Period, "period")
	requireEqual(t, int64(100), *pp.Uses, "per_period.uses")
	requireEqual(t, int64(1), *pp.UsesPerCustomer, "per_period.uses_per_customer")
	requireDec(t, "500000", *pp.Budget, "per_period.budget")
	requireEqual(t, true, flash.Limits.Any(), "Any")

	next := c.Program("next-visit")
	requireEqual(t, RewardIssueCoupon, next.Reward.Kind, "kind")
	requireDeepEqual(t, &IssueCoupon{Program: "comeback-10", ValidDays: 30}, next.Reward.IssueCoupon, "issue_coupon")
	requireEqual(t, false, next.Limits.Any(), "no limits")
	requireEqual(t, CouponIssued, c.Program("comeback-10").When.Coupon, "when.coupon")
	requireEqual(t, "next-visit", c.CouponIssuer().ID, "CouponIssuer")

	// Defaults: the chain scope, no period, no warnings.
	d := mustParse(t, testCatalog(0, `  - {id: p, layer: order, limits: {total_uses: 5}, reward: {percent: "1"}}`))
	requireEqual(t, ScopeChain, d.Programs[0].Limits.Scope, "default scope")
	requireEqual(t, true, d.Programs[0].Limits.PerPeriod == nil, "no per_period")
	requireEqual(t, 0, d.Path("default").WarnDays, "no warn_days")
	requireEqual(t, true, d.CouponIssuer() == nil, "no issuer")

	// The canonical JSON parses back to the same features.
	again := mustParse(t, string(c.JSON))
	requireDeepEqual(t, c.Program("flash").Limits, again.Program("flash").Limits, "limits round trip")
}

// The validator refuses what cannot work, every problem at once.
func TestParseRefusesLimitsAndCouponsThatCannotWork(t *testing.T) {
	t.Parallel()
	vs := violationsOf(t, testCatalog(0, `
  - {id: a, layer: order, limits: {per_period: {uses: 5}}, reward: {percent: "1"}}
  - {id: b, layer: order, limits: {total_uses: 5, scope: store}, reward: {percent: "1"}}
  - {id: c, layer: order, limits: {per_period: {period: fortnight, uses: 1}}, reward: {percent: "1"}}
  - {id: d, layer: order, limits: {per_period: {period: day}}, reward: {percent: "1"}}
  - {id: e, layer: order, limits: {scope: company}, reward: {percent: "1"}}
  - {id: f, layer: order, reward: {issue_coupon: {program: g, valid_days: 30}}}
  - {id: g, layer: order, reward: {percent: "10"}}
  - {id: h, layer: order, reward: {issue_coupon: {program: nobody, valid_days: 30}}}
  - {id: i, layer: order, limits: {budget: "100", per_period: {period: week, budget: "10"}}, reward: {issue_coupon: {program: j, valid_days: 1}, max: "5"}}
  - {id: j, layer: order, when: {coupon: issued, code: SAVE}, reward: {percent: "10"}}
  - {id: k, layer: order, when: {coupon: any}, reward: {issue_coupon: {program: j, valid_days: 0}, on: order}}
  - {id: l, layer: order, limits: {per_period: {period: month, budget: "10"}}, reward: {bonus_points: "1"}}`))
	want := map[string]string{
		"/programs/0/limits/per_period/period":        "is required",
		"/programs/1/limits/scope":                    "chain",
		"/programs/2/limits/per_period/period":        "day",
		"/programs/3/limits/per_period":               "counts nothing",
		"/programs/4/limits/scope":                    "no limit to count",
		"/programs/5/reward/issue_coupon/program":     `program "g" cannot be redeemed with an issued coupon`,
		"/programs/7/reward/issue_coupon/program":     `"nobody" is not among the programs' ids`,
		"/programs/8/limits/budget":                   "gives none",
		"/programs/8/limits/per_period/budget":        "gives none",
		"/programs/8/reward/max":                      "does not apply",
		"/programs/9/when/coupon":                     "not both",
		"/programs/10/when/coupon":                    "issued",
		"/programs/10/reward/issue_coupon/valid_days": "minimum",
		"/programs/10/reward/on":                      "does not apply",
		"/programs/11/limits/per_period/budget":       "gives none",
	}
	checkViolations(t, vs, want)
}

// checkViolations requires exactly one violation at each pointer of want,
// whose message contains want's text, and none elsewhere.
func checkViolations(t *testing.T, vs []schemas.Violation, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	for _, v := range vs {
		if prev, dup := got[v.Pointer]; dup {
			t.Errorf("two violations at %s: %q and %q", v.Pointer, prev, v.Message)
		}
		got[v.Pointer] = v.Message
	}
	for ptr, sub := range want {
		msg, ok := got[ptr]
		if !ok {
			t.Errorf("no violation at %s (want %q)", ptr, sub)
			continue
		}
		if !strings.Contains(msg, sub) {
			t.Errorf("%s: %q does not contain %q", ptr, msg, sub)
		}
	}
	for ptr, msg := range got {
		if _, ok := want[ptr]; !ok {
			t.Errorf("unexpected violation %s: %s", ptr, msg)
		}
	}
}

// SPEC §6.9: per_period counts the calendar period of occurred_at in the
// catalog timezone; a week runs Monday 00:00 to Monday 00:00.
func TestPeriodKeys(t *testing.T) {
	t.Parallel()
	c := mustParse(t, testCatalog(0, ""))
	for _, tc := range []struct{ at, day, week, month string }{
		{"2026-11-22T23:59:59+07:00", "2026-11-22", "2026-W47", "2026-11"}, // Sunday night
		{"2026-11-23T00:00:00+07:00", "2026-11-23", "2026-W48", "2026-11"}, // Monday 00:00 starts a week
		{"2026-11-22T17:00:00Z", "2026-11-23", "2026-W48", "2026-11"},      // the same instant written in UTC
		{"2026-11-30T16:59:59Z", "2026-11-30", "2026-W49", "2026-11"},      // 23:59:59 in Jakarta
		{"2026-11-30T17:00:00Z", "2026-12-01", "2026-W49", "2026-12"},      // 00:00 in Jakarta: December
		{"2027-01-01T10:00:00+07:00", "2027-01-01", "2026-W53", "2027-01"}, // Friday: the week began in 2026
		{"2027-01-04T00:00:00+07:00", "2027-01-04", "2027-W01", "2027-01"},
	} {
		at := mustTime(t, tc.at)
		requireEqual(t, tc.day, c.PeriodKey(PeriodDay, at), tc.at+" day")
		requireEqual(t, tc.week, c.PeriodKey(PeriodWeek, at), tc.at+" week")
		requireEqual(t, tc.month, c.PeriodKey(PeriodMonth, at), tc.at+" month")
	}
}

// SPEC §6.9: scope company or pos_config keeps every counter apart per
// company or pos config; pos_config keys by pos_config_id alone.
func TestCountersKey(t *testing.T) {
	t.Parallel()
	c := mustParse(t, testCatalog(0, `
  - {id: chain, layer: order, limits: {total_uses: 5}, reward: {percent: "1"}}
  - {id: company, layer: order, limits: {total_uses: 5, scope: company}, reward: {percent: "1"}}
  - {id: till, layer: order, limits: {per_period: {period: week, uses: 5}, scope: pos_config}, reward: {percent: "1"}}`))
	at := mustTime(t, "2026-11-23T08:00:00+07:00")
	requireEqual(t, CountersKey{}, c.CountersKey(c.Program("chain"), "2", "7", at), "chain")
	requireEqual(t, CountersKey{Scope: "company:2"}, c.CountersKey(c.Program("company"), "2", "7", at), "company")
	requireEqual(t, CountersKey{Scope: "pos_config:7", Period: "2026-W48"}, c.CountersKey(c.Program("till"), "2", "7", at), "pos config and week")
}

// SPEC §4: the trace of a limited program names the limit that stopped it.
func TestEvaluateNamesTheLimit(t *testing.T) {
	t.Parallel()
	flash := `  - id: flash
    layer: item
    when: {products: {categories: [drinks]}}
    limits: {total_uses: 1000, uses_per_customer: 3, budget: "900000", per_period: {period: day, uses: 100, uses_per_customer: 1, budget: "500000"}, scope: company}
    reward: {percent: "20"}`
	weekly := `  - {id: w, layer: item, limits: {per_period: {period: week, uses: 7, budget: "7000"}, scope: pos_config}, reward: {percent: "20"}}`
	lines := []events.Line{ln("1", "3", "18000", "c:drinks"), ln("2", "1", "12000", "c:drinks")}
	left := func(r Remaining) *fakeLimits { return &fakeLimits{left: map[string]Remaining{"flash": r, "w": r}} }
	runCases(t, []evalCase{
		{name: "daily uses", programs: flash, lines: lines, company: "1",
			limits:    left(Remaining{Stopped: LimitPeriodUses}),
			wantTrace: []string{"flash limit_reached: daily uses 100 reached for company 1"}, wantUses: []string{}},
		{name: "daily uses per customer", programs: flash, lines: lines, company: "4", customer: customer("classic", "0"),
			limits:    left(Remaining{Stopped: LimitPeriodUsesPerCustomer}),
			wantTrace: []string{"flash limit_reached: daily uses per customer 1 reached for company 4"}},
		{name: "total uses", programs: flash, lines: lines,
			limits:    left(Remaining{Stopped: LimitTotalUses}),
			wantTrace: []string{"flash limit_reached: total uses 1000 reached for company 1"}},
		{name: "uses per customer", programs: flash, lines: lines, customer: customer("classic", "0"),
			limits:    left(Remaining{Stopped: LimitUsesPerCustomer}),
			wantTrace: []string{"flash limit_reached: uses per customer 3 reached for company 1"}},
		{name: "weekly uses of a till", programs: weekly, lines: lines, pos: "3",
			limits:    left(Remaining{Stopped: LimitPeriodUses}),
			wantTrace: []string{"w limit_reached: weekly uses 7 reached for pos config 3"}},
		{name: "daily budget exhausted", programs: flash, lines: lines,
			limits:    left(Remaining{UsesLeft: true, Budget: ptrDec("0"), BudgetLimit: LimitPeriodBudget}),
			wantTrace: []string{"flash limit_reached: daily budget 500000 exhausted for company 1"}},
		{name: "total budget exhausted", programs: flash, lines: lines,
			limits:    left(Remaining{UsesLeft: true, Budget: ptrDec("0.4"), BudgetLimit: LimitBudget}),
			wantTrace: []string{"flash limit_reached: budget 900000 exhausted for company 1"}},
		{
			// 20% of 66000 = 13200, cut to the daily budget's 5000 left:
			// 54000:12000 → 4090.9 and 909.09 → 4091 and 909.
			name: "a daily budget cuts", programs: flash, lines: lines, company: "2",
			limits:        left(Remaining{UsesLeft: true, Budget: ptrDec("5000"), BudgetLimit: LimitPeriodBudget}),
			wantDiscounts: []string{"item flash 1 4091", "item flash 2 909"},
			wantTrace:     []string{"flash applied: cut to the daily budget left 5000 for company 2"},
			wantUses:      []string{"flash 5000"},
		},
		{
			// Unlimited hands back the smallest configured budget: the
			// weekly 7000 under no total budget → 13200 cut to 7000.
			name: "the smallest budget without a ledger", programs: weekly, lines: lines, pos: "9",
			wantTrace: []string{"w applied: cut to the weekly budget left 7000 for pos config 9"},
			wantUses:  []string{"w 7000"},
		},
	})
}

// couponCase evaluates featuresCatalog for customer c1 with coupons.
func evalCoupons(t *testing.T, at string, codes []string, coupons []Coupon, cust *Customer, lines ...events.Line) *Outcome {
	t.Helper()
	c := mustParse(t, featuresCatalog)
	in := Input{OccurredAt: mustTime(t, at), CompanyID: "1", PosConfigID: "1", Customer: cust, Coupons: coupons,
		Order: &events.PaidOrder{ID: "9", Currency: "IDR", Lines: lines, CouponCodes: codes}}
	o, err := Evaluate(c, in, Unlimited{})
	requireNoError(t, err)
	checkInvariants(t, c, o)
	return o
}

func traceOf(o *Outcome, program string) events.Trace {
	for _, tr := range o.Trace {
		if tr.ProgramID == program {
			return tr
		}
	}
	return events.Trace{}
}

// SPEC §6.10: a when.coupon: issued program is eligible only with a code
// issued for it, to this customer, valid at occurred_at and unused.
func TestEvaluateIssuedCouponEligibility(t *testing.T) {
	t.Parallel()
	from, until := mustTime(t, "2026-11-01T10:00:00+07:00"), mustTime(t, "2026-12-01T10:00:00+07:00")
	good := Coupon{Code: "7K3M9XQ2HB4T", ProgramID: "comeback-10", ValidFrom: from, ValidUntil: until}
	with := func(f func(*Coupon)) Coupon { c := good; f(&c); return c }
	other := Coupon{Code: "0000000000AB", ProgramID: "someone-else", ValidFrom: from, ValidUntil: until}
	// 100000 net; next-visit wants 150000, so only comeback-10 can apply.
	line := ln("1", "1", "100000")
	at := "2026-11-24T10:00:00+07:00"
	for _, tc := range []struct {
		name    string
		at      string
		codes   []string
		coupons []Coupon
		anon    bool
		outcome string
		reason  string
		used    string // the code used when applied
	}{
		{name: "valid and unused", codes: []string{"7K3M9XQ2HB4T"}, coupons: []Coupon{good},
			outcome: events.OutcomeApplied, reason: "10% of the order (100000): 10000, with coupon 7K3M9XQ2HB4T", used: "7K3M9XQ2HB4T"},
		{name: "typed in lower case with O for 0 and l for 1, grouped", codes: []string{"7k3m-9xq2-hb4t"}, coupons: []Coupon{good},
			outcome: events.OutcomeApplied, used: "7K3M9XQ2HB4T"},
		{name: "no code presented", coupons: []Coupon{good},
			outcome: events.OutcomeNotEligible, reason: "no coupon issued for comeback-10 presented"},
		{name: "a code of another program", codes: []string{"0000000000AB"}, coupons: []Coupon{other},
			outcome: events.OutcomeNotEligible, reason: "no coupon issued for comeback-10 presented"},
		{name: "a code the ledger does not know (another customer's)", codes: []string{"7K3M9XQ2HB4T"},
			outcome: events.OutcomeNotEligible, reason: "no coupon issued for comeback-10 presented"},
		{name: "used", codes: []string{"7K3M9XQ2HB4T"}, coupons: []Coupon{with(func(c *Coupon) { c.UsedBy = "77" })},
			outcome: events.OutcomeNotEligible, reason: "coupon 7K3M9XQ2HB4T is already used (order 77)"},
		{name: "voided", codes: []string{"7K3M9XQ2HB4T"}, coupons: []Coupon{with(func(c *Coupon) { c.Voided = true })},
			outcome: events.OutcomeNotEligible, reason: "coupon 7K3M9XQ2HB4T is void"},
		{name: "not valid yet", at: "2026-11-01T09:59:59+07:00", codes: []string{"7K3M9XQ2HB4T"}, coupons: []Coupon{good},
			outcome: events.OutcomeNotEligible, reason: "coupon 7K3M9XQ2HB4T is valid from 2026-11-01T10:00:00+07:00"},
		{name: "valid from is inclusive", at: "2026-11-01T10:00:00+07:00", codes: []string{"7K3M9XQ2HB4T"}, coupons: []Coupon{good},
			outcome: events.OutcomeApplied, used: "7K3M9XQ2HB4T"},
		{name: "valid until is exclusive", at: "2026-12-01T10:00:00+07:00", codes: []string{"7K3M9XQ2HB4T"}, coupons: []Coupon{good},
			outcome: events.OutcomeNotEligible, reason: "coupon 7K3M9XQ2HB4T expired at 2026-12-01T10:00:00+07:00"},
		{name: "the first usable of several", codes: []string{"AAAAAAAAAAAA", "7K3M9XQ2HB4T"},
			coupons: []Coupon{with(func(c *Coupon) { c.Code, c.UsedBy = "AAAAAAAAAAAA", "5" }), good},
			outcome: events.OutcomeApplied, used: "7K3M9XQ2HB4T"},
		{name: "anonymous", anon: true, codes: []string{"7K3M9XQ2HB4T"}, coupons: []Coupon{good},
			outcome: events.OutcomeNotEligible, reason: "anonymous orders hold no coupon"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cust := customer("classic", "0")
			if tc.anon {
				cust = nil
			}
			when := at
			if tc.at != "" {
				when = tc.at
			}
			o := evalCoupons(t, when, tc.codes, tc.coupons, cust, line)
			tr := traceOf(o, "comeback-10")
			requireEqual(t, tc.outcome, tr.Outcome, "outcome ("+tr.Reason+")")
			requireContains(t, tr.Reason, tc.reason, "reason")
			if tc.used == "" {
				requireEqual(t, 0, len(o.CouponsUsed), "coupons used")
				requireDec(t, "0", o.Totals.Discount, "discount")
				return
			}
			requireDeepEqual(t, []UsedCoupon{{Code: tc.used, ProgramID: "comeback-10"}}, o.CouponsUsed, "coupons used")
			requireDec(t, "10000", o.Totals.Discount, "10% of 100000")
		})
	}
}

// SPEC §6.10: an issue_coupon program gives a customer one code, valid from
// occurred_at for valid_days days; an anonymous order is not eligible.
func TestEvaluateIssueCoupon(t *testing.T) {
	t.Parallel()
	at := "2026-11-24T10:15:00+07:00"
	// 160000 ≥ min_amount 150000: next-visit issues; nothing is discounted.
	line := ln("1", "2", "80000")
	o := evalCoupons(t, at, nil, nil, customer("classic", "0"), line)
	tr := traceOf(o, "next-visit")
	requireEqual(t, events.OutcomeApplied, tr.Outcome, "outcome")
	requireEqual(t, "issues a coupon for comeback-10, valid 30 days", tr.Reason, "reason")
	requireEqual(t, 1, len(o.CouponsIssued), "one coupon")
	ic := o.CouponsIssued[0]
	requireEqual(t, "next-visit comeback-10", ic.IssuedBy+" "+ic.ProgramID, "issued by, for")
	requireEqual(t, true, ic.ValidFrom.Equal(mustTime(t, at)), "valid from occurred_at")
	requireEqual(t, true, ic.ValidUntil.Equal(mustTime(t, "2026-12-24T10:15:00+07:00")), "valid 30 days: "+ic.ValidUntil.String())
	requireDec(t, "0", o.Totals.Discount, "issuing discounts nothing")
	requireDec(t, "16", o.Earned, "points as usual")

	anon := evalCoupons(t, at, nil, nil, nil, line)
	requireEqual(t, events.OutcomeNotEligible+": anonymous orders get no coupons",
		traceOf(anon, "next-visit").Outcome+": "+traceOf(anon, "next-visit").Reason, "anonymous")
	requireEqual(t, 0, len(anon.CouponsIssued), "none issued")

	below := evalCoupons(t, at, nil, nil, customer("classic", "0"), ln("1", "1", "149999"))
	requireEqual(t, events.OutcomeConditionFailed, traceOf(below, "next-visit").Outcome, "below min_amount")
	requireEqual(t, 0, len(below.CouponsIssued), "none issued")

	// A rejected order issues and uses nothing.
	c := mustParse(t, featuresCatalog)
	in := Input{OccurredAt: mustTime(t, at), CompanyID: "1", PosConfigID: "1", Customer: customer("classic", "0"),
		Coupons: []Coupon{{Code: "7K3M9XQ2HB4T", ProgramID: "comeback-10", ValidFrom: mustTime(t, at), ValidUntil: mustTime(t, "2027-01-01T00:00:00Z")}},
		Order:   &events.PaidOrder{ID: "9", Currency: "IDR", Lines: []events.Line{line}, CouponCodes: []string{"7K3M9XQ2HB4T"}, RedeemPoints: ptrDec("500")}}
	rej, err := Evaluate(c, in, Unlimited{})
	requireNoError(t, err)
	requireEqual(t, true, rej.Rejection != nil, "rejected")
	requireEqual(t, 0, len(rej.CouponsIssued)+len(rej.CouponsUsed), "a rejected order issues and uses no coupon")
}

// valid_days are calendar days of the catalog timezone, across a change of
// daylight saving time.
func TestCouponValidUntilCountsCalendarDays(t *testing.T) {
	t.Parallel()
	c := mustParse(t, strings.Replace(testCatalog(0, ""), "Asia/Jakarta", "Europe/Berlin", 1))
	got := c.CouponValidUntil(mustTime(t, "2026-03-20T10:00:00+01:00"), 10)
	requireEqual(t, true, got.Equal(mustTime(t, "2026-03-30T10:00:00+02:00")), "10 calendar days across the DST change: "+got.String())
	requireEqual(t, "2026-03-30T10:00:00+02:00", got.Format(time.RFC3339), "in the catalog timezone")
}

func TestNormalizeCouponCode(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"7k3m9xq2hb4t":    "7K3M9XQ2HB4T",
		"7K3M-9XQ2-HB4T":  "7K3M9XQ2HB4T",
		" 7k3m 9xq2 hb4t": "7K3M9XQ2HB4T",
		"OIL0":            "0110",
	} {
		requireEqual(t, want, NormalizeCouponCode(in), in)
	}
}
