package rules

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/errtext"
	"github.com/promoengine/promoengine/pkg/events"
)

// ErrInvalidOrder reports an order Evaluate cannot price: no order, no
// lines, or a currency other than the catalog's. The decoder cannot see the
// currency rule (it does not know the catalog), so the worker dead-letters
// this as invalid_event.
var ErrInvalidOrder = errors.New("rules: invalid order")

// Program ids of the discounts that do not come from a catalog program.
const PointsProgramID = "points"

// Evaluate prices one paid order against a catalog (SPEC §6). It is a pure
// function of its arguments: no clock, no I/O beyond the LimitsReader, no
// float64. The same catalog, input and limits give a deep-equal outcome.
//
// A business rejection (a redemption the order cannot have) is an Outcome
// with Rejection set, not an error. An error means the evaluation could not
// be done: ErrInvalidOrder, or the LimitsReader failed (wrapped).
func Evaluate(c *Catalog, in Input, limits LimitsReader) (*Outcome, error) {
	switch {
	case c == nil:
		return nil, errors.New("rules: no catalog")
	case in.Order == nil:
		return nil, fmt.Errorf("%w: no order", ErrInvalidOrder)
	case len(in.Order.Lines) == 0:
		return nil, fmt.Errorf("%w: the order has no lines", ErrInvalidOrder)
	case in.Order.Currency != c.Currency:
		return nil, fmt.Errorf("%w: currency %q, the catalog's is %q", ErrInvalidOrder, in.Order.Currency, c.Currency)
	}
	e := newEvaluation(c, in, limits)
	if err := e.programs(LayerItem); err != nil {
		return nil, err
	}
	e.member()
	if err := e.programs(LayerOrder); err != nil {
		return nil, err
	}
	if rej := e.redeem(); rej != nil {
		return e.rejected(rej), nil
	}
	return e.outcome(), nil
}

// Unlimited is a LimitsReader for which every limit always allows one more
// use and the whole budget remains: for tools and tests that price orders
// without a ledger.
type Unlimited struct{}

// Remaining allows one more use and hands back the whole budget (the
// smallest, with per_period).
func (Unlimited) Remaining(p *Program, _ string) (Remaining, error) {
	b, k := p.Limits.smallestBudget()
	return Remaining{UsesLeft: true, Budget: b, BudgetLimit: k}, nil
}

// lineState is one order line while layers run.
type lineState struct {
	line  *events.Line
	gross dec.Decimal
	net   dec.Decimal // running net: gross minus every discount so far
	whole int64       // whole units, floor(qty): what cheapest and buy_get count
}

type evaluation struct {
	c        *Catalog
	in       Input
	limits   LimitsReader
	places   int32
	local    time.Time // occurred_at in the catalog timezone
	customer string    // "" for an anonymous order
	lines    []lineState

	sets       *lineSets     // the product filters each line matches
	qualifying []bool        // scratch: lines matching the current program
	weights    []dec.Decimal // scratch: target weights of the current program
	alloc      allocScratch  // scratch: buffers of the allocations

	discounts   []events.Discount
	trace       []events.Trace
	uses        []Use
	multipliers []dec.Decimal // applied points_multiplier rewards
	bonus       dec.Decimal   // applied bonus_points, summed
	redeemPts   dec.Decimal
	redeemValue dec.Decimal

	coupon        string // the code the current program would use (when.coupon)
	couponsUsed   []UsedCoupon
	couponsIssued []IssuedCoupon
}

func newEvaluation(c *Catalog, in Input, limits LimitsReader) *evaluation {
	e := &evaluation{
		c: c, in: in, limits: limits, places: c.MoneyDecimals,
		local:      in.OccurredAt.In(c.location()),
		lines:      make([]lineState, len(in.Order.Lines)),
		qualifying: make([]bool, len(in.Order.Lines)),
		weights:    make([]dec.Decimal, len(in.Order.Lines)),
		// A discount per line and layer is common; more grow the slice.
		discounts: make([]events.Discount, 0, 2*len(in.Order.Lines)),
		trace:     make([]events.Trace, 0, len(c.Programs)),
	}
	if in.Customer != nil {
		e.customer = in.Customer.ID
	}
	index := c.products
	if index == nil {
		index = newProductIndex(c)
	}
	e.sets = index.match(in.Order.Lines)
	for i := range in.Order.Lines {
		l := &in.Order.Lines[i]
		gross := dec.Mul(l.Qty, l.UnitPrice).Round(e.places)
		e.lines[i] = lineState{line: l, gross: gross, net: gross, whole: wholeUnits(l.Qty)}
	}
	return e
}

// wholeUnits is floor(qty) as an integer; qty is bounded to 15 integer
// digits by the decoder.
func wholeUnits(qty dec.Decimal) int64 {
	n, err := strconv.ParseInt(qty.Floor(0).String(), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// programs runs the catalog programs of one layer in catalog order (Parse
// sorted them by priority, then id).
func (e *evaluation) programs(layer string) error {
	stoppedBy := ""
	for _, p := range e.c.Programs {
		if p.Layer != layer {
			continue
		}
		t := events.Trace{ProgramID: p.ID, Layer: p.Layer}
		if stoppedBy != "" {
			t.Outcome, t.Reason = events.OutcomeStoppedByExclusive, "stopped by exclusive program "+stoppedBy
		} else {
			var err error
			t.Outcome, t.Reason, err = e.program(p)
			if err != nil {
				return err
			}
			if t.Outcome == events.OutcomeApplied && p.Exclusive {
				stoppedBy = p.ID
			}
		}
		e.trace = append(e.trace, t)
	}
	return nil
}

// program decides one program and, when it applies, applies it.
func (e *evaluation) program(p *Program) (outcome, reason string, err error) {
	if why := e.inactive(&p.Valid); why != "" {
		return events.OutcomeNotActive, why, nil
	}
	if why := e.ineligible(p); why != "" {
		return events.OutcomeNotEligible, why, nil
	}
	if why := e.conditionFailed(p); why != "" {
		return events.OutcomeConditionFailed, why, nil
	}
	var discount dec.Decimal
	if p.Reward.givesPoints() {
		pts := p.Reward.points()
		if pts == nil {
			return events.OutcomeConditionFailed, "the reward is malformed", nil // a catalog built by hand
		}
		reason = p.Reward.Kind + " " + pts.String()
	} else if ic := p.Reward.IssueCoupon; p.Reward.Kind == RewardIssueCoupon {
		if ic == nil {
			return events.OutcomeConditionFailed, "the reward is malformed", nil // a catalog built by hand
		}
		reason = issueReason(ic)
	} else {
		var why string
		discount, reason, why = e.discount(p)
		if why != "" {
			return events.OutcomeConditionFailed, why, nil
		}
	}
	if p.Limits.Any() {
		if e.limits == nil {
			return "", "", fmt.Errorf("rules: program %s has limits and no LimitsReader was given", p.ID)
		}
		left, err := e.limits.Remaining(p, e.customer)
		if err != nil {
			return "", "", fmt.Errorf("rules: limits of program %s: %w", p.ID, err)
		}
		if !left.UsesLeft {
			return events.OutcomeLimitReached, e.limitReached(&p.Limits, left.Stopped), nil
		}
		if left.Budget != nil && p.Reward.discounts() {
			budget := left.Budget.Floor(e.places)
			if budget.Sign() <= 0 {
				return events.OutcomeLimitReached, e.budgetExhausted(&p.Limits, left.BudgetLimit), nil
			}
			if discount.Greater(budget) {
				discount = budget
				reason += e.budgetCut(&p.Limits, left.BudgetLimit, budget)
			}
		}
	}
	switch p.Reward.Kind {
	case RewardPointsMultiplier:
		e.multipliers = append(e.multipliers, *p.Reward.PointsMultiplier)
	case RewardBonusPoints:
		e.bonus = dec.Add(e.bonus, *p.Reward.BonusPoints)
	case RewardIssueCoupon:
		ic := p.Reward.IssueCoupon
		e.couponsIssued = append(e.couponsIssued, IssuedCoupon{IssuedBy: p.ID, ProgramID: ic.Program,
			ValidFrom: e.in.OccurredAt, ValidUntil: e.c.CouponValidUntil(e.in.OccurredAt, ic.ValidDays)})
	default:
		discount = e.allocate(p.Layer, p.ID, discount)
	}
	if p.When.Coupon == CouponIssued {
		e.couponsUsed = append(e.couponsUsed, UsedCoupon{Code: e.coupon, ProgramID: p.ID})
		reason += ", with coupon " + e.coupon
	}
	if p.Limits.Any() {
		e.uses = append(e.uses, Use{ProgramID: p.ID, Discount: discount})
	}
	return events.OutcomeApplied, reason, nil
}

// givesPoints reports a points reward: it discounts nothing, so it has
// nothing to target, cap or take from a budget.
func (r *Reward) givesPoints() bool {
	return r.Kind == RewardPointsMultiplier || r.Kind == RewardBonusPoints
}

// discounts reports a reward that discounts lines: not points, not a
// coupon to issue.
func (r *Reward) discounts() bool {
	return !r.givesPoints() && r.Kind != RewardIssueCoupon
}

// points is the multiplier or bonus of a points reward.
func (r *Reward) points() *dec.Decimal {
	if r.Kind == RewardPointsMultiplier {
		return r.PointsMultiplier
	}
	return r.BonusPoints
}

// inactive says why the validity window excludes occurred_at ("" when it
// does not). Instants compare as instants; days and hours are read on the
// wall clock of the catalog timezone, whatever offset the event carried.
func (e *evaluation) inactive(v *Validity) string {
	at := e.in.OccurredAt
	if v.From != nil && at.Before(*v.From) {
		return "starts at " + v.From.Format(time.RFC3339)
	}
	if v.Until != nil && !at.Before(*v.Until) {
		return "ended at " + v.Until.Format(time.RFC3339)
	}
	if len(v.Days) > 0 {
		if wd := e.local.Weekday(); !slices.Contains(v.Days, wd) {
			return "not valid on " + strings.ToLower(wd.String()[:3])
		}
	}
	if h := v.Hours; h != nil {
		m := e.local.Hour()*60 + e.local.Minute()
		in := h[0] <= m && m < h[1]
		if h[1] < h[0] { // wraps past midnight: 22:00–02:00
			in = m >= h[0] || m < h[1]
		}
		if !in {
			return fmt.Sprintf("%s is outside hours %s–%s", e.local.Format("15:04"), hhmm(h[0]), hhmm(h[1]))
		}
	}
	return ""
}

func hhmm(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }

// ineligible says why the customer, the coupon codes, the company or the
// till exclude the order ("" when eligible).
func (e *evaluation) ineligible(p *Program) string {
	w := &p.When
	if len(w.Levels) > 0 {
		if e.in.Customer == nil {
			return "anonymous orders hold no level"
		}
		if !slices.Contains(w.Levels, e.in.Customer.Level) {
			return fmt.Sprintf("level %q is not one of %s", e.in.Customer.Level, errtext.Strings(w.Levels, ", "))
		}
	}
	if w.Code != "" && !slices.ContainsFunc(e.in.Order.CouponCodes, func(c string) bool { return strings.EqualFold(c, w.Code) }) {
		return "coupon code " + w.Code + " not presented"
	}
	if len(w.Companies) > 0 && !slices.Contains(w.Companies, e.in.CompanyID) {
		return fmt.Sprintf("company %q is not one of %s", e.in.CompanyID, errtext.Strings(w.Companies, ", "))
	}
	if len(w.PosConfigs) > 0 && !slices.Contains(w.PosConfigs, e.in.PosConfigID) {
		return fmt.Sprintf("pos config %q is not one of %s", e.in.PosConfigID, errtext.Strings(w.PosConfigs, ", "))
	}
	if e.in.Customer == nil && p.Reward.givesPoints() {
		return "anonymous orders earn no points"
	}
	if e.in.Customer == nil && p.Reward.Kind == RewardIssueCoupon {
		return "anonymous orders get no coupons"
	}
	if w.Coupon == CouponIssued {
		return e.couponIneligible(p)
	}
	return ""
}

// Matches reports whether a line's product id, any of its categories or any
// of its tags is listed. A nil filter matches every line.
func (f *ProductFilter) Matches(l *events.Line) bool {
	if f == nil {
		return true
	}
	if slices.Contains(f.IDs, string(l.ProductID)) {
		return true
	}
	for _, c := range l.CategoryIDs {
		if slices.Contains(f.Categories, string(c)) {
			return true
		}
	}
	for _, t := range l.TagIDs {
		if slices.Contains(f.Tags, string(t)) {
			return true
		}
	}
	return false
}

// conditionFailed marks the qualifying lines in e.qualifying and says why
// the basket fails the program's conditions ("" when it meets them).
func (e *evaluation) conditionFailed(p *Program) string {
	w := &p.When
	qty, amount := dec.Zero, dec.Zero
	matched := false
	matches := e.sets.filter(w.Products, e.in.Order.Lines)
	for i := range e.lines {
		l := &e.lines[i]
		q := matches.at(i)
		e.qualifying[i] = q
		if q {
			matched = true
			if w.MinQty != nil {
				qty = dec.Add(qty, l.line.Qty)
			}
			if w.MinAmount != nil {
				amount = dec.Add(amount, l.net)
			}
		}
	}
	if !matched {
		return "no line matches the products"
	}
	if w.MinQty != nil && qty.Less(*w.MinQty) {
		return fmt.Sprintf("min_qty %s not met: %s", w.MinQty, qty)
	}
	if w.MinAmount != nil && amount.Less(*w.MinAmount) {
		return fmt.Sprintf("min_amount %s not met: %s", w.MinAmount, amount)
	}
	return ""
}

// discount computes a discount reward as one total (SPEC §6.3) and leaves
// the target weights in e.weights. why is set when the reward comes to
// nothing on this order.
func (e *evaluation) discount(p *Program) (total dec.Decimal, reason, why string) {
	r := &p.Reward
	switch {
	case r.Kind == RewardPercent && r.Percent != nil,
		r.Kind == RewardAmount && r.Amount != nil,
		r.Kind == RewardBuyGet && r.BuyGet != nil && r.BuyGet.Buy > 0 && r.BuyGet.Get > 0:
	default:
		return dec.Zero, "", "the reward is malformed" // only a catalog built by hand gets here
	}
	for i := range e.weights {
		e.weights[i] = dec.Zero
	}
	var target string // what the reward discounts, for the reason
	switch {
	case r.Kind == RewardBuyGet:
		if why = e.buyGetWeights(r.BuyGet); why != "" {
			return dec.Zero, "", why
		}
		target = "the free units"
	case r.On == OnCheapest:
		best := -1
		for i := range e.lines {
			l := &e.lines[i]
			if !e.qualifying[i] || l.whole < 1 {
				continue
			}
			// net_i / qty_i < net_best / qty_best, without dividing.
			if best < 0 || dec.Mul(l.net, e.lines[best].line.Qty).Less(dec.Mul(e.lines[best].net, l.line.Qty)) {
				best = i
			}
		}
		if best < 0 {
			return dec.Zero, "", "no qualifying line has a whole unit"
		}
		e.weights[best] = dec.Quo(e.lines[best].net, e.lines[best].line.Qty)
		target = "the cheapest unit, of line " + string(e.lines[best].line.ID)
	case r.On == OnOrder:
		for i := range e.lines {
			e.weights[i] = e.lines[i].net
		}
		target = "the order"
	default:
		for i := range e.lines {
			if e.qualifying[i] {
				e.weights[i] = e.lines[i].net
			}
		}
		target = "the qualifying lines"
	}
	base := dec.Zero
	for _, w := range e.weights {
		if !w.IsZero() {
			base = dec.Add(base, w)
		}
	}
	if base.Sign() <= 0 {
		return dec.Zero, "", "nothing to discount: the net of " + target + " is 0"
	}
	var raw dec.Decimal
	var what string
	switch r.Kind {
	case RewardAmount:
		raw, what = *r.Amount, r.Amount.String()+" off "
	case RewardBuyGet:
		raw = dec.Mul(dec.Mul(r.BuyGet.Percent, base), hundredth)
		what = "buy " + strconv.FormatInt(r.BuyGet.Buy, 10) + " get " + strconv.FormatInt(r.BuyGet.Get, 10) +
			": " + r.BuyGet.Percent.String() + "% of "
	default:
		raw, what = dec.Mul(dec.Mul(*r.Percent, base), hundredth), r.Percent.String()+"% of "
	}
	var capped string
	if r.Max != nil && raw.Greater(*r.Max) {
		raw, capped = *r.Max, ", capped at max "+r.Max.String()
	}
	if raw.Greater(base) {
		raw, capped = base, ", capped at the target's net"
	}
	total = raw.Round(e.places)
	// Each reason is built in one concatenation: one allocation.
	baseText := fixed(base, e.places).String()
	if total.Sign() <= 0 {
		return dec.Zero, "", "nothing to discount: " + what + target + " (" + baseText + ")" + capped + " rounds to 0"
	}
	return total, what + target + " (" + baseText + ")" + capped + ": " + total.String(), ""
}

// hundredth turns a percentage into a share without dividing.
var hundredth = dec.MustParse("0.01")

// fixed is d with exactly places decimals; free when it has them already,
// as every running net does.
func fixed(d dec.Decimal, places int32) dec.Decimal {
	if d.Places() == places {
		return d
	}
	return d.Round(places)
}

// buyGetWeights fills e.weights with the discounted units of a buy_get: the
// cheapest whole units by unit net (ties: earlier line). With no reward
// products the reward pool is the qualifying pool and a set is buy + get of
// its units; otherwise a set is buy qualifying units and its get units come
// from the reward pool.
func (e *evaluation) buyGetWeights(bg *BuyGet) string {
	var bought int64
	for i := range e.lines {
		if e.qualifying[i] {
			bought += e.lines[i].whole
		}
	}
	inPool := func(i int) bool { return e.qualifying[i] }
	per := bg.Buy + bg.Get
	if bg.Products != nil {
		inPool = e.sets.filter(bg.Products, e.in.Order.Lines).at
		per = bg.Buy
	}
	sets := bought / per
	if sets == 0 {
		return fmt.Sprintf("buy %d get %d: %d qualifying whole units make no complete set", bg.Buy, bg.Get, bought)
	}
	pool := make([]int, 0, len(e.lines))
	var available int64
	for i := range e.lines {
		if inPool(i) && e.lines[i].whole > 0 {
			pool = append(pool, i)
			available += e.lines[i].whole
		}
	}
	if len(pool) == 0 {
		return fmt.Sprintf("buy %d get %d: no whole unit of the reward products in the order", bg.Buy, bg.Get)
	}
	free := available
	if sets <= available/bg.Get {
		free = min(sets*bg.Get, available)
	}
	// Cheapest unit net first, net_a / qty_a < net_b / qty_b compared
	// without dividing; stable, so ties keep line order.
	slices.SortStableFunc(pool, func(a, b int) int {
		la, lb := &e.lines[a], &e.lines[b]
		return dec.Mul(la.net, lb.line.Qty).Cmp(dec.Mul(lb.net, la.line.Qty))
	})
	for _, i := range pool {
		if free == 0 {
			break
		}
		l := &e.lines[i]
		k := min(free, l.whole)
		e.weights[i] = dec.Quo(dec.Mul(dec.FromInt(k), l.net), l.line.Qty)
		free -= k
	}
	return ""
}

// allocate spreads a discount over e.weights, lowers the running nets and
// records the non-zero shares. It returns what was actually given, which is
// the total unless a share had to be clamped at a line's net (it never
// does when total ≤ Σweights ≤ Σnets; the clamp is a guard).
func (e *evaluation) allocate(layer, programID string, total dec.Decimal) dec.Decimal {
	shares := e.alloc.allocate(total, e.weights, e.places)
	given := dec.Zero
	for i, s := range shares {
		l := &e.lines[i]
		if s.Greater(l.net) {
			s = l.net
		}
		if s.Sign() <= 0 {
			continue
		}
		l.net = dec.Sub(l.net, s)
		given = dec.Add(given, s)
		e.discounts = append(e.discounts, events.Discount{Layer: layer, ProgramID: programID, LineID: string(l.line.ID), Amount: s})
	}
	return given
}

// member applies the customer's level discount_percent to all lines.
func (e *evaluation) member() {
	cust := e.in.Customer
	if cust == nil {
		return
	}
	level := e.c.Path(cust.Path).Level(cust.Level)
	if level == nil || level.DiscountPercent == nil {
		return
	}
	for i := range e.lines {
		e.weights[i] = e.lines[i].net
	}
	base := dec.Sum(e.weights...)
	total := dec.Min(dec.Mul(dec.Mul(*level.DiscountPercent, base), hundredth), base).Round(e.places)
	e.allocate(events.LayerMember, level.ID, total)
}

func (e *evaluation) orderNet() dec.Decimal {
	net := dec.Zero
	for i := range e.lines {
		net = dec.Add(net, e.lines[i].net)
	}
	return net
}

// redeem runs the points layer: a redemption becomes a discount over all
// lines, or the order is rejected.
func (e *evaluation) redeem() *events.ResultError {
	pts := e.in.Order.RedeemPoints
	if pts == nil || pts.Sign() <= 0 {
		return nil
	}
	reject := func(code, format string, args ...any) *events.ResultError {
		return &events.ResultError{Code: code, Message: fmt.Sprintf(format, args...)}
	}
	cust, r := e.in.Customer, e.c.Points.Redeem
	switch {
	case cust == nil:
		return reject(events.RejectCustomerRequired, "redeem_points %s needs a customer: the order has none", pts)
	case r == nil:
		return reject(events.RejectRedemptionExceedsLimit, "redeem_points %s: this catalog allows no redemption", pts)
	case pts.Less(r.Min):
		return reject(events.RejectRedemptionBelowMinimum, "redeem_points %s is below the minimum %s", pts, r.Min)
	case pts.Greater(cust.Balance):
		return reject(events.RejectInsufficientPoints, "redeem_points %s exceeds the spendable balance %s", pts, cust.Balance)
	}
	value := dec.Mul(*pts, r.Value)
	net := e.orderNet()
	if limit := dec.Mul(r.MaxShare, net); value.Greater(limit) {
		return reject(events.RejectRedemptionExceedsLimit,
			"redeem_points %s are worth %s, over the max_share %s of the order net %s (%s)",
			pts, value, r.MaxShare, net, limit.Round(e.places))
	}
	for i := range e.lines {
		e.weights[i] = e.lines[i].net
	}
	e.redeemPts = *pts
	e.redeemValue = e.allocate(events.LayerPoints, PointsProgramID, value.Round(e.places))
	return nil
}

// earned is SPEC §6.7: the earn rules on the final net, times the level
// multiplier held before the order and every applied points_multiplier,
// plus applied bonus_points, rounded down to the points decimals.
func (e *evaluation) earned(net dec.Decimal) dec.Decimal {
	cust := e.in.Customer
	if cust == nil {
		return dec.Zero.Floor(e.c.Points.Decimals)
	}
	pts := dec.Zero
	for _, r := range e.c.Points.Earn {
		if r.PerAmount.Sign() > 0 { // Parse guarantees it; a catalog built by hand may not
			pts = dec.Add(pts, dec.Mul(dec.QuoInt(net, r.PerAmount), r.Points))
		}
	}
	pts = dec.Mul(pts, e.c.LevelMultiplier(cust.Path, cust.Level))
	for _, m := range e.multipliers {
		pts = dec.Mul(pts, m)
	}
	return dec.Add(pts, e.bonus).Floor(e.c.Points.Decimals)
}

// outcome writes the lines and totals with exactly the money decimals.
func (e *evaluation) outcome() *Outcome {
	o := &Outcome{
		Lines:        make([]events.LineResult, len(e.lines)),
		Discounts:    e.discounts,
		Trace:        e.trace,
		Uses:         e.uses,
		RedeemPoints: e.redeemPts,
		RedeemValue:  e.redeemValue.Round(e.places),

		CouponsIssued: e.couponsIssued,
		CouponsUsed:   e.couponsUsed,
	}
	gross, net := dec.Zero, dec.Zero
	for i := range e.lines {
		l := &e.lines[i]
		o.Lines[i] = events.LineResult{
			ID: string(l.line.ID), Qty: l.line.Qty,
			Gross: fixed(l.gross, e.places), Discount: fixed(dec.Sub(l.gross, l.net), e.places), Net: fixed(l.net, e.places),
		}
		gross, net = dec.Add(gross, l.gross), dec.Add(net, l.net)
	}
	o.Totals = events.Totals{Gross: fixed(gross, e.places), Discount: fixed(dec.Sub(gross, net), e.places), Net: fixed(net, e.places)}
	o.Earned = e.earned(net)
	return o
}

// rejected is the outcome of a rejected order: no discount on any line,
// nothing for the ledger to record, the trace kept for the operator.
func (e *evaluation) rejected(rej *events.ResultError) *Outcome {
	for i := range e.lines {
		e.lines[i].net = e.lines[i].gross
	}
	e.discounts, e.uses, e.multipliers, e.bonus = []events.Discount{}, nil, nil, dec.Zero
	e.couponsIssued, e.couponsUsed = nil, nil
	e.redeemPts, e.redeemValue = dec.Zero, dec.Zero
	o := e.outcome()
	o.Rejection = rej
	o.Earned = dec.Zero.Floor(e.c.Points.Decimals)
	return o
}
