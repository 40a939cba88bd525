package loyalty

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/rules"
)

// couponProgram translates a coupons program: one catalog program per open
// coupon, redeemed with the coupon's code, once.
func (t *translator) couponProgram(p *Program, rep *ProgramReport) error {
	rs, ws := activeRules(p), activeRewards(p)
	if len(ws) != 1 {
		return oneRuleOneReward([]*Rule{nil}, ws)
	}
	if len(rs) > 1 {
		return untranslatable("it has %d rules, all of which an order must meet; a catalog program has one condition", len(rs))
	}
	var r *Rule
	if len(rs) == 1 {
		r = rs[0]
	}
	w := ws[0]
	rep.Differences = appendOnce(rep.Differences, "each open coupon becomes a program of its own, redeemed once with its code: coupons generated in Odoo after the import are unknown to the engine")
	rep.Differences = appendOnce(rep.Differences, "a code applies when the order event carries it (coupon_codes): Odoo's POS keeps the codes it scans to itself, so until the till sends them the engine does not apply it")
	return t.cards(p, r, w, rep)
}

// cards makes a catalog program of each open coupon of p.
func (t *translator) cards(p *Program, r *Rule, w *Reward, rep *ProgramReport) error {
	required := w.RequiredPoints
	if required.Sign() <= 0 {
		required = dec.One
	}
	var open []*Card
	for _, c := range t.cardsOf[p.ID] {
		if c.Points.GreaterEq(required) && (c.Expiration == "" || t.today == "" || c.Expiration >= t.today) {
			open = append(open, c)
		}
	}
	notRead := max(t.s.CardCounts[p.ID]-len(t.cardsOf[p.ID]), 0)
	for _, c := range open {
		if t.couponsLeft == 0 {
			notRead++
			continue
		}
		o, err := t.base(p, fmt.Sprintf("%s-card-%d", CatalogProgramID(p.ID), c.ID), rep)
		if err != nil {
			return err
		}
		var when *mapping
		if r != nil {
			if when, err = t.conditions(p, r, rep); err != nil {
				return err
			}
		} else {
			when = &mapping{}
		}
		when.set("code", c.Code)
		layer, reward, err := t.reward(p, r, w, when, rep)
		if err != nil {
			return err
		}
		uses := dec.QuoInt(c.Points, required)
		n, _ := strconv.ParseInt(uses.String(), 10, 64)
		limits := &mapping{flow: true, kvs: []kv{{"total_uses", max(n, 1)}}}
		o.m.kvs = slices.DeleteFunc(o.m.kvs, func(e kv) bool { return e.k == "limits" })
		o.m.set("limits", limits)
		if c.Expiration != "" && (p.DateTo == "" || c.Expiration < p.DateTo) {
			o.m.kvs = slices.DeleteFunc(o.m.kvs, func(e kv) bool { return e.k == "valid" })
			valid := &mapping{flow: true}
			if p.DateFrom != "" {
				valid.set("from", t.midnight(p.DateFrom, 0))
			}
			valid.set("until", t.midnight(c.Expiration, 1))
			o.m.set("valid", valid)
		}
		o.comment = append(o.comment, fmt.Sprintf("coupon %d (code %s, %s point(s)), reward %d: %s", c.ID, c.Code, c.Points, w.ID, w.Description))
		if c.PartnerID != 0 {
			rep.Differences = appendOnce(rep.Differences, "a coupon reserved to a customer in Odoo is accepted from any customer by the engine")
		}
		t.place(p, o, layer, when, reward, rep)
		t.couponsLeft--
	}
	if notRead > 0 {
		rep.NotTranslated = append(rep.NotTranslated, fmt.Sprintf("%d open coupon(s) over the limit of --max-coupon-codes (every coupon program is in the trace of every result): redeem them in Odoo, or raise the limit", notRead))
	}
	return nil
}

// nextOrderProgram translates a next order coupons program: with
// engine-issued coupons, an issuing program and the program its coupons
// redeem; the coupons Odoo issued already become programs of their own.
func (t *translator) nextOrderProgram(p *Program, rep *ProgramReport) error {
	rs, ws := activeRules(p), activeRewards(p)
	if err := oneRuleOneReward(rs, ws); err != nil {
		return err
	}
	r, w := rs[0], ws[0]
	if !t.opts.IssuedCoupons {
		if err := t.cards(p, nil, w, rep); err != nil {
			return err
		}
		reason := "issuing coupons for a next order needs engine-issued coupons (SPEC §6.10: issue_coupon, when.coupon: issued), which this engine's catalog does not have yet"
		if len(rep.CatalogIDs) == 0 {
			return untranslatable("%s; it has no open coupon either", reason)
		}
		rep.NotTranslated = append(rep.NotTranslated, reason+": its open coupons are imported, new ones are not issued")
		return nil
	}
	if r.PointMode != "order" || r.PointAmount.Less(w.RequiredPoints) {
		return untranslatable("rule %d gives %s point(s) %s and the reward needs %s: the engine issues one coupon per order that meets the condition", r.ID, r.PointAmount, map[string]string{"order": "per order", "money": "per amount spent", "unit": "per unit"}[r.PointMode], w.RequiredPoints)
	}
	redeemer := CatalogProgramID(p.ID)
	o, err := t.base(p, redeemer, rep)
	if err != nil {
		return err
	}
	when := &mapping{flow: true, kvs: []kv{{"coupon", word("issued")}}}
	layer, reward, err := t.reward(p, nil, w, when, rep)
	if err != nil {
		return err
	}
	o.comment = append(o.comment, fmt.Sprintf("reward %d: %s, with a coupon the engine issued", w.ID, w.Description))
	t.place(p, o, layer, when, reward, rep)

	issuer, err := t.base(p, redeemer+"-issue", rep)
	if err != nil {
		return err
	}
	issuer.m.kvs = slices.DeleteFunc(issuer.m.kvs, func(e kv) bool { return e.k == "limits" })
	iwhen, err := t.conditions(p, r, rep)
	if err != nil {
		return err
	}
	issue := &mapping{flow: true, kvs: []kv{{"issue_coupon", &mapping{flow: true, kvs: []kv{{"program", redeemer}, {"valid_days", t.opts.CouponValidDays}}}}}}
	issuer.comment = append(issuer.comment, fmt.Sprintf("rule %d: issues the coupon of %s", r.ID, redeemer))
	t.place(p, issuer, rules.LayerOrder, iwhen, issue, rep)
	rep.Differences = appendOnce(rep.Differences, fmt.Sprintf("coupons issued by the engine are valid %d days (--coupon-valid-days), owned by the customer, and not issued to anonymous orders; Odoo's until the program's end date, to anyone holding the code", t.opts.CouponValidDays))
	return t.cards(p, nil, w, rep)
}
