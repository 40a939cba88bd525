package loyalty

import (
	"fmt"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/rules"
)

// loyaltyProgram translates the loyalty program to the catalog's points:
// money rules earn, order rules give bonus points, the per point discount
// redeems.
func (t *translator) loyaltyProgram(p *Program, rep *ProgramReport) error {
	points := &mapping{}
	var earn []*mapping
	decimals := 0
	for _, r := range activeRules(p) {
		if r.PointAmount.Places() > 0 {
			decimals = 2
		}
		switch {
		case r.PointMode == "money" && !r.HasProducts() && r.MinAmount.Sign() <= 0 && r.MinQty.LessEq(dec.One) && domainIsAny(r.Domain) && r.Code == "":
			q := dec.Quantum(t.moneyDecimals)
			earn = append(earn, &mapping{flow: true, kvs: []kv{{"per_amount", q.String()}, {"points", dec.Mul(r.PointAmount, q).String()}}})
			decimals = 2
		case r.PointMode == "order":
			when, err := t.conditions(p, r, rep)
			if err != nil {
				rep.NotTranslated = append(rep.NotTranslated, fmt.Sprintf("rule %d: %v", r.ID, err))
				continue
			}
			o := &outProgram{id: fmt.Sprintf("%s-rule-%d", CatalogProgramID(p.ID), r.ID), m: &mapping{}}
			o.comment = append(o.comment, fmt.Sprintf("Odoo loyalty %d %q, rule %d: %s point(s) per order", p.ID, p.Name, r.ID, r.PointAmount))
			t.place(p, o, rules.LayerOrder, when, &mapping{flow: true, kvs: []kv{{"bonus_points", r.PointAmount.String()}}}, rep)
		case r.PointMode == "money":
			rep.NotTranslated = append(rep.NotTranslated, fmt.Sprintf("rule %d: points per amount spent on some products or above a minimum: the catalog's earn rules count the whole order", r.ID))
		default:
			rep.NotTranslated = append(rep.NotTranslated, fmt.Sprintf("rule %d: points per unit bought: the catalog earns per amount spent", r.ID))
		}
	}
	points.set("decimals", decimals)
	if len(earn) > 0 {
		points.set("earn", earn)
		rep.Differences = appendOnce(rep.Differences, fmt.Sprintf("points earned: Odoo rounds them half up to 0.01, the engine down to %d decimals", decimals))
		rep.Differences = appendOnce(rep.Differences, "points earned: Odoo counts the order before the loyalty program's own rewards (a redemption does not lower them), the engine the order's final net")
	}
	var redeem *mapping
	for _, w := range activeRewards(p) {
		switch {
		case redeem == nil && w.Type == "discount" && w.DiscountMode == "per_point" && w.Applicability == "order" && !w.ClearWallet:
			redeem = &mapping{flow: true, kvs: []kv{{"value", w.Discount.String()}, {"min", w.RequiredPoints.String()}}}
			rep.Differences = appendOnce(rep.Differences, "redemption: the till must send redeem_points with the order (Odoo's POS keeps the reward it applies to itself); Odoo spends whole multiples of the points needed, the engine any amount from the minimum on")
			if w.MaxAmount.Sign() > 0 {
				rep.Differences = appendOnce(rep.Differences, fmt.Sprintf("redemption: Odoo caps it at %s per order; the catalog's redeem has a share of the order (max_share), not an amount", w.MaxAmount))
			}
		default:
			rep.NotTranslated = append(rep.NotTranslated, fmt.Sprintf("reward %d %q (for %s points): %s", w.ID, w.Description, w.RequiredPoints, t.loyaltyRewardReason(w)))
		}
	}
	if redeem != nil {
		points.set("redeem", redeem)
	}
	rep.Differences = appendOnce(rep.Differences, "points: Odoo keeps one balance per card that never expires; the engine keeps a lot per order, spent first-expiring first (the catalog sets no expiry)")
	if p.DateTo != "" || len(p.POSConfigs) > 0 || p.CompanyID != 0 && len(t.s.Models[ModelCompany]) > 1 {
		rep.Differences = appendOnce(rep.Differences, "the catalog's points have no validity dates and count in every shop")
	}
	t.points = points
	rep.CatalogIDs = append([]string{PointsProgramID}, rep.CatalogIDs...)
	t.imp.LoyaltyProgram = p.ID
	return nil
}

func (t *translator) loyaltyRewardReason(w *Reward) string {
	switch {
	case w.ClearWallet:
		return "it spends the whole balance; the catalog redeems an amount of points"
	case w.Type == "product":
		return "a free product bought with points; the catalog redeems points as a discount at a value per point"
	case w.DiscountMode == "per_point":
		return "a second rate per point, or one on some products; the catalog has one redemption rate on the order"
	}
	return "a discount bought with a number of points; the catalog redeems points at a value per point only"
}

// finish writes and checks the catalog.
