package rules

// Periodic and per-store limits and engine-issued coupons (SPEC §5, §6.9,
// §6.10). The schema checks their shapes; these checks are what it cannot
// say.

// couponRef is an issue_coupon reward naming the program its codes redeem,
// checked once every program has been read.
type couponRef struct {
	ptr     string // of the reward's program field
	program string
}

// limitsScope reads limits.per_period and limits.scope.
func (b *builder) limitsScope(l node, lim *Limits) {
	lim.Scope = ScopeChain
	if s := l.str("scope"); s != "" {
		lim.Scope = s
	}
	if pn, ok := l.obj("per_period"); ok {
		pp := &PeriodLimits{Period: pn.str("period")}
		if v, ok := pn.integer("uses"); ok {
			pp.Uses = &v
		}
		if v, ok := pn.integer("uses_per_customer"); ok {
			pp.UsesPerCustomer = &v
		}
		pp.Budget = b.nonNegative(pn, "budget")
		if !pn.has("uses") && !pn.has("uses_per_customer") && !pn.has("budget") {
			b.add(pn.ptr, "counts nothing: give uses, uses_per_customer or budget per %s", orDefault(pp.Period, "period"))
		}
		lim.PerPeriod = pp
	}
	if l.has("scope") && !l.has("total_uses") && !l.has("uses_per_customer") && !l.has("budget") && !l.has("per_period") {
		b.add(l.at("scope"), "keeps the program's counters apart per %s, but the program has no limit to count", lim.Scope)
	}
}

// rewardLimits checks the limits that make sense only for some rewards.
func (b *builder) rewardLimits(n node, p *Program) {
	if pp := p.Limits.PerPeriod; pp != nil && pp.Budget != nil && !p.Reward.discounts() {
		b.add(n.at("limits")+"/per_period/budget", "caps the discount a program gives: a %s reward gives none", p.Reward.Kind)
	}
}

// issueCoupon reads an issue_coupon reward.
func (b *builder) issueCoupon(n node) *IssueCoupon {
	ic := &IssueCoupon{Program: n.str("program")}
	if d, ok := n.integer("valid_days"); ok {
		ic.ValidDays = int(d)
	}
	if ic.Program != "" {
		b.refs = append(b.refs, couponRef{ptr: n.at("program"), program: ic.Program})
	}
	return ic
}

// checkCouponRefs refuses an issue_coupon naming a program that does not
// exist or cannot be redeemed with an issued code: its codes would never be
// worth anything.
func (b *builder) checkCouponRefs(programs []*Program) {
	byID := make(map[string]*Program, len(programs))
	for _, p := range programs {
		if _, dup := byID[p.ID]; !dup {
			byID[p.ID] = p
		}
	}
	for _, r := range b.refs {
		target, ok := byID[r.program]
		switch {
		case !ok:
			b.add(r.ptr, "names no program: %q is not among the programs' ids", r.program)
		case target.When.Coupon != CouponIssued:
			b.add(r.ptr, "program %q cannot be redeemed with an issued coupon: give it when: {coupon: issued}", r.program)
		}
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
