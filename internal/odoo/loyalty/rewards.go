package loyalty

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/rules"
)

// conditions translates a rule's products, minimum quantity and amount and
// code to a when mapping.
func (t *translator) conditions(p *Program, r *Rule, rep *ProgramReport) (*mapping, error) {
	when := &mapping{}
	if err := checkDomain("rule", r.ID, r.Domain); err != nil {
		return nil, err
	}
	if products := productFilter(r.Products, r.Category, r.Tag); products != nil {
		when.set("products", products)
	}
	if r.MinQty.Sign() > 0 && (r.HasProducts() || r.MinQty.Greater(dec.One)) {
		when.set("min_qty", r.MinQty.String())
	}
	if r.MinAmount.Sign() > 0 {
		when.set("min_amount", r.MinAmount.String())
		if r.MinAmountMode == "excl" {
			rep.Differences = appendOnce(rep.Differences, "minimum amount: Odoo compares it without taxes, the engine with the prices the order's lines carry (price_unit)")
		}
	}
	if r.Code != "" {
		when.set("code", r.Code)
	}
	return when, nil
}

// threshold adds to when the quantity or amount at which the rule gives
// the points the reward needs (a program applied to the current order).
func (t *translator) threshold(r *Rule, required dec.Decimal, when *mapping) error {
	if required.Sign() <= 0 {
		required = dec.One
	}
	if r.PointAmount.Sign() <= 0 {
		return untranslatable("rule %d gives no points", r.ID)
	}
	switch r.PointMode {
	case "order":
		if r.PointAmount.Less(required) {
			return untranslatable("rule %d gives %s point(s) per order and the reward needs %s: no single order gets it", r.ID, r.PointAmount, required)
		}
	case "unit":
		need := dec.Quo(required, r.PointAmount).Round(0)
		if dec.Quo(required, r.PointAmount).Greater(need) {
			need = dec.Add(need, dec.One)
		}
		raise(when, "min_qty", need)
	case "money":
		need := dec.Quo(required, r.PointAmount)
		up := need.Round(t.moneyDecimals)
		if up.Less(need) {
			up = dec.Add(up, dec.Quantum(t.moneyDecimals))
		}
		raise(when, "min_amount", up)
	default:
		return untranslatable("rule %d counts points %q, which Odoo 17 does not have", r.ID, r.PointMode)
	}
	return nil
}

// raise sets key to v unless it already holds at least v.
func raise(m *mapping, key string, v dec.Decimal) {
	for i, e := range m.kvs {
		if e.k != key {
			continue
		}
		if cur, err := dec.Parse(e.v.(string)); err == nil && cur.GreaterEq(v) {
			return
		}
		m.kvs[i].v = v.String()
		return
	}
	m.set(key, v.String())
}

// currentProgram translates a program applied to the order that earns it:
// promotion, buy X get Y, discount code.
func (t *translator) currentProgram(p *Program, rep *ProgramReport) error {
	rs, ws := activeRules(p), activeRewards(p)
	if err := oneRuleOneReward(rs, ws); err != nil {
		return err
	}
	o, err := t.base(p, CatalogProgramID(p.ID), rep)
	if err != nil {
		return err
	}
	r, w := rs[0], ws[0]
	if r.PointSplit {
		rep.Differences = appendOnce(rep.Differences, "the rule's 'split per unit' applies to coupons for future orders only; ignored")
	}
	when, err := t.conditions(p, r, rep)
	if err != nil {
		return err
	}
	layer, reward, err := t.reward(p, r, w, when, rep)
	if err != nil {
		return err
	}
	if w.Type == "discount" {
		if err := t.threshold(r, w.RequiredPoints, when); err != nil {
			return err
		}
	}
	if p.Type == TypePromoCode || r.Code != "" {
		rep.Differences = appendOnce(rep.Differences, "a code program applies when the order event carries the code (coupon_codes): Odoo's POS keeps the codes it scans to itself, so until the till sends them the engine does not apply it")
	}
	o.comment = append(o.comment, fmt.Sprintf("rule %d, reward %d: %s", r.ID, w.ID, w.Description))
	t.place(p, o, layer, when, reward, rep)
	return nil
}

func oneRuleOneReward(rs []*Rule, ws []*Reward) error {
	switch {
	case len(ws) == 0:
		return untranslatable("it has no reward")
	case len(ws) > 1:
		return untranslatable("it has %d rewards and the cashier chooses one at the till (Odoo applies a reward by itself only when it is the program's one); the catalog applies one reward per program: split it into one program per reward by hand", len(ws))
	case len(rs) == 0:
		return untranslatable("it has no rule: nothing earns its reward")
	case len(rs) > 1:
		return untranslatable("it has %d rules and Odoo gives points for each that holds; a catalog program has one condition: write one program per rule by hand", len(rs))
	}
	return nil
}

// reward translates a reward; when may be narrowed to the reward's products
// (a discount on specific products).
func (t *translator) reward(p *Program, r *Rule, w *Reward, when *mapping, rep *ProgramReport) (string, *mapping, error) {
	out := &mapping{flow: true}
	switch w.Type {
	case "discount":
		switch w.DiscountMode {
		case "percent":
			out.set("percent", w.Discount.String())
		case "per_order":
			out.set("amount", w.Discount.String())
		case "per_point":
			return "", nil, untranslatable("reward %d gives %s per point: a discount per point is a redemption, which the catalog has for the loyalty program's points only", w.ID, w.Discount)
		default:
			return "", nil, untranslatable("reward %d has discount mode %q, which Odoo 17 does not have", w.ID, w.DiscountMode)
		}
		layer := rules.LayerOrder
		switch w.Applicability {
		case "order", "":
			out.set("on", word(rules.OnOrder))
		case "cheapest":
			layer = rules.LayerItem
			out.set("on", word(rules.OnCheapest))
			if r != nil && r.HasProducts() {
				rep.Differences = appendOnce(rep.Differences, "cheapest product: Odoo discounts the cheapest unit of the whole order, the engine the cheapest among the rule's products")
			}
			rep.Differences = appendOnce(rep.Differences, "cheapest product: Odoo takes the unit's price before other promotions, the engine its price after the promotions applied before it")
		case "specific":
			layer = rules.LayerItem
			if err := checkDomain("reward", w.ID, w.DiscountDomain); err != nil {
				return "", nil, err
			}
			target := productFilter(w.DiscountProducts, w.DiscountCategory, w.DiscountTag)
			if target == nil {
				return "", nil, untranslatable("reward %d discounts specific products but names none", w.ID)
			}
			if err := narrow(r, w, when, target); err != nil {
				return "", nil, err
			}
			out.set("on", word(rules.OnLines))
		default:
			return "", nil, untranslatable("reward %d applies to %q, which Odoo 17 does not have", w.ID, w.Applicability)
		}
		if w.MaxAmount.Sign() > 0 {
			out.set("max", w.MaxAmount.String())
		}
		if w.DiscountMode == "per_order" && w.Applicability != "order" {
			rep.Differences = appendOnce(rep.Differences, "a fixed amount off some lines: Odoo spreads it over the lines in proportion to their price with tax, the engine to their running net (the same without taxes and earlier discounts)")
		}
		return layer, out, nil
	case "product":
		return t.freeProduct(p, r, w, out, rep)
	}
	return "", nil, untranslatable("reward %d is of type %q, which Odoo 17 does not have", w.ID, w.Type)
}

// narrow makes the program's qualifying lines the reward's products. The
// catalog discounts the lines that meet the condition, so the rule must
// count the same products, or none with no minimum beyond one unit.
func narrow(r *Rule, w *Reward, when *mapping, target *mapping) error {
	if r == nil { // a coupon without conditions
		when.kvs = append([]kv{{"products", target}}, when.kvs...)
		return nil
	}
	if r.HasProducts() {
		if !sameProducts(r.Products, r.Category, r.Tag, w.DiscountProducts, w.DiscountCategory, w.DiscountTag) {
			return untranslatable("reward %d discounts other products than rule %d counts: a catalog program discounts the lines that meet its condition; write two programs by hand or align them in Odoo", w.ID, r.ID)
		}
		return nil
	}
	if r.MinAmount.Sign() > 0 || r.MinQty.Greater(dec.One) || (r.PointMode != "order" && w.Type == "discount") {
		return untranslatable("rule %d counts the whole order but reward %d discounts some products only: a catalog program's condition and discount are on the same lines", r.ID, w.ID)
	}
	when.kvs = append([]kv{{"products", target}}, when.kvs...)
	return nil
}

func sameProducts(aIDs []int64, aCat, aTag int64, bIDs []int64, bCat, bTag int64) bool {
	x, y := slices.Clone(aIDs), slices.Clone(bIDs)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y) && aCat == bCat && aTag == bTag
}

// freeProduct translates a free product reward to a buy_get.
func (t *translator) freeProduct(p *Program, r *Rule, w *Reward, out *mapping, rep *ProgramReport) (string, *mapping, error) {
	if w.RewardProductTag != 0 {
		return "", nil, untranslatable("reward %d gives a product chosen at the till among tag %q: the catalog's buy_get discounts units already in the basket, without a choice", w.ID, t.s.name(ModelTag, w.RewardProductTag))
	}
	if w.RewardProduct == 0 {
		return "", nil, untranslatable("reward %d gives a free product but names none", w.ID)
	}
	if r == nil || r.PointMode != "unit" {
		return "", nil, untranslatable("reward %d gives a free product for points per order or per amount spent: the catalog's buy_get counts units bought", w.ID)
	}
	buy := dec.Quo(w.RequiredPoints, r.PointAmount)
	if !buy.IsInteger() || buy.Sign() <= 0 {
		return "", nil, untranslatable("reward %d needs %s points and rule %d gives %s per unit: not a whole number of units to buy", w.ID, w.RequiredPoints, r.ID, r.PointAmount)
	}
	n, _ := strconv.ParseInt(buy.Floor(0).String(), 10, 64)
	get := max(w.RewardProductQty, 1)
	bg := &mapping{flow: true, kvs: []kv{{"buy", n}, {"get", get}}}
	product := itoa(w.RewardProduct)
	inPool, known := t.inRule(r, w.RewardProduct)
	switch {
	case !r.HasProducts() || inPool:
		if !(len(r.Products) == 1 && r.Products[0] == w.RewardProduct && r.Category == 0 && r.Tag == 0) {
			rep.Differences = appendOnce(rep.Differences, fmt.Sprintf("free product: Odoo gives %s free, the engine the cheapest units of what the rule counts (the same when only it is in the basket)", t.s.name(ModelProduct, w.RewardProduct)))
		}
		if get > 1 {
			rep.Differences = appendOnce(rep.Differences, fmt.Sprintf("buy %d get %d: Odoo also gives part of a set (with %d units, %d free); the engine whole sets only", n, get, n+1, 1))
		}
	case !known:
		return "", nil, untranslatable("rule %d counts a category or tag and it is not known whether reward product %d is in it", r.ID, w.RewardProduct)
	default:
		bg.set("products", &mapping{flow: true, kvs: []kv{{"ids", []string{product}}}})
	}
	out.set("buy_get", bg)
	if r.MinQty.Sign() > 0 && r.MinQty.Greater(dec.FromInt(n)) {
		rep.Differences = appendOnce(rep.Differences, "the rule's minimum quantity is above the units of one set")
	}
	return rules.LayerItem, out, nil
}

// inRule reports whether product is among the products rule r counts;
// known is false when the snapshot cannot tell (a product not read).
func (t *translator) inRule(r *Rule, product int64) (in, known bool) {
	if slices.Contains(r.Products, product) {
		return true, true
	}
	if r.Category == 0 && r.Tag == 0 {
		return false, true
	}
	rec, ok := t.s.index(ModelProduct)[product]
	if !ok {
		return false, false
	}
	if r.Tag != 0 && slices.Contains(rec.IDs("product_tag_ids"), r.Tag) {
		return true, true
	}
	if r.Category != 0 {
		categ := many2one(rec, "categ_id")
		c, ok := t.s.index(ModelCategory)[categ]
		if !ok {
			return false, false
		}
		for _, part := range strings.Split(strings.Trim(c.String("parent_path"), "/"), "/") {
			if part == itoa(r.Category) {
				return true, true
			}
		}
	}
	return false, true
}

// productFilter is a catalog products mapping, nil when it names nothing.
func productFilter(products []int64, category, tag int64) *mapping {
	m := &mapping{flow: true}
	if len(products) > 0 {
		m.set("ids", ids(products))
	}
	if category != 0 {
		m.set("categories", []string{itoa(category)})
	}
	if tag != 0 {
		m.set("tags", []string{itoa(tag)})
	}
	if m.empty() {
		return nil
	}
	return m
}

// domainIsAny reports whether a product domain selects every product the
// POS sells: empty, or Odoo's default of sellable products.
func domainIsAny(domain string) bool {
	d := strings.NewReplacer(" ", "", `"`, "'", "(", "[", ")", "]").Replace(domain)
	return d == "" || d == "[]" || d == "[['sale_ok','=',True]]"
}

func checkDomain(what string, id int64, domain string) error {
	if domainIsAny(domain) {
		return nil
	}
	return untranslatable("%s %d selects products with the domain %s: a catalog names products, categories and tags, not arbitrary domains", what, id, domain)
}
