package loyalty

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/rules"
)

// Options steer Translate.
type Options struct {
	// Company is the res.company whose currency the catalog takes; 0 is the
	// API user's company. Programs of other companies in the same currency
	// are kept (with a companies condition), the others are skipped.
	Company int64
	// LoyaltyProgram is the loyalty.program (type loyalty) whose points
	// become the catalog's points section; 0 picks the only active one, or
	// the first by sequence when there are several (the others are listed).
	LoyaltyProgram int64
	// Timezone is the catalog's IANA time zone; "" takes the API user's
	// (res.users tz), and UTC when it has none.
	Timezone string
	// MaxCouponCodes bounds how many open coupons (coupons and next order
	// coupons holding points) become one catalog program each; the rest are
	// listed. Every such program is in the trace of every result, so keep
	// it small. 0 means 50; negative means none.
	MaxCouponCodes int
	// IssuedCoupons says the engine's catalog has engine-issued coupons
	// (SPEC §6.10: issue_coupon, when.coupon: issued), which next order
	// coupons translate to. SupportsIssuedCoupons tells.
	IssuedCoupons bool
	// CouponValidDays is how long a coupon the engine issues for a next
	// order coupons program stays valid. 0 means 30.
	CouponValidDays int
	// Now is when the import runs: coupons that expired before its date
	// (in the catalog time zone) are not translated. The zero time
	// considers no coupon expired.
	Now time.Time
}

// Outcomes of a program in the report.
const (
	// OutcomeTranslated: the program is in the catalog; Differences says
	// where the engine will still give another result than Odoo.
	OutcomeTranslated = "translated"
	// OutcomePartial: part of the program is in the catalog; NotTranslated
	// lists the rest.
	OutcomePartial = "partial"
	// OutcomeUntranslated: the catalog cannot express the program; Reason
	// says why. It needs a decision (rewrite it by hand, keep it in Odoo).
	OutcomeUntranslated = "untranslated"
	// OutcomeSkipped: the program is not live in this Point of Sale
	// (archived, not offered in the POS, another company's currency).
	OutcomeSkipped = "skipped"
)

// Import is the result of Translate.
type Import struct {
	// YAML is the catalog, with comments naming the Odoo records behind
	// every program. rules.Parse accepts it.
	YAML []byte `json:"-"`
	// Catalog is YAML parsed.
	Catalog  *rules.Catalog `json:"-"`
	Currency string         `json:"currency"`
	Timezone string         `json:"timezone"`
	// LoyaltyProgram is the Odoo program whose points are the catalog's
	// points (0: none).
	LoyaltyProgram int64           `json:"loyalty_program,omitempty"`
	Programs       []ProgramReport `json:"programs"`
	Notes          []string        `json:"notes,omitempty"`
}

// ProgramReport says what became of one Odoo program.
type ProgramReport struct {
	ID      int64  `json:"id"`
	Name    string `json:"name"`
	Type    string `json:"type"`
	Outcome string `json:"outcome"`
	// CatalogIDs are the catalog programs made from it ("points" for the
	// loyalty program's earn and redeem rules).
	CatalogIDs []string `json:"catalog_ids,omitempty"`
	// Reason is why an untranslated or skipped program is not in the
	// catalog.
	Reason string `json:"reason,omitempty"`
	// NotTranslated lists the parts (a rule, a reward, coupons) left out
	// of a partial translation, each with its reason.
	NotTranslated []string `json:"not_translated,omitempty"`
	// Differences are where the engine, running the catalog, will give
	// another result than Odoo for the same order.
	Differences []string `json:"differences,omitempty"`
}

// CatalogProgramID is the catalog id of Odoo program id; the shadow
// comparison reads the Odoo id back from it (ProgramOf).
func CatalogProgramID(id int64) string { return "odoo-" + strconv.FormatInt(id, 10) }

// ProgramOf returns the Odoo program id a catalog program id was made from
// (odoo-12, odoo-12-card-40, odoo-12-rule-7, odoo-12-issue), or 0.
func ProgramOf(catalogID string) int64 {
	rest, ok := strings.CutPrefix(catalogID, "odoo-")
	if !ok {
		return 0
	}
	num, _, _ := strings.Cut(rest, "-")
	id, err := strconv.ParseInt(num, 10, 64)
	if err != nil || id <= 0 {
		return 0
	}
	return id
}

// PointsProgramID is the program id of the points layer's discounts in
// results (a redemption), which the loyalty program's redeem rule becomes.
const PointsProgramID = "points"

// errNoCompany: the snapshot has no company to take the currency from.
var errNoCompany = errors.New("loyalty: no company: the API user has none and --company was not given")

// Translate turns the snapshot's programs into a catalog. Every program of
// the snapshot is in the report: translated, partially, or not, with the
// reason. The catalog is checked with rules.Parse; an error means a bug
// here or a snapshot Odoo could not have produced.
func Translate(s *Snapshot, opts Options) (*Import, error) {
	if opts.MaxCouponCodes == 0 {
		opts.MaxCouponCodes = 50
	}
	if opts.CouponValidDays <= 0 {
		opts.CouponValidDays = 30
	}
	programs, err := s.Programs()
	if err != nil {
		return nil, err
	}
	cards, err := s.Cards()
	if err != nil {
		return nil, err
	}
	t := &translator{s: s, opts: opts, cardsOf: map[int64][]*Card{}, couponsLeft: max(opts.MaxCouponCodes, 0)}
	for _, c := range cards {
		t.cardsOf[c.ProgramID] = append(t.cardsOf[c.ProgramID], c)
	}
	if err := t.setup(); err != nil {
		return nil, err
	}
	t.loyalty = t.chooseLoyalty(programs)
	for _, p := range programs {
		t.imp.Programs = append(t.imp.Programs, t.program(p))
	}
	return t.finish()
}

type translator struct {
	s    *Snapshot
	opts Options
	imp  Import

	company       int64
	currencyID    int64
	moneyDecimals int32
	cardsOf       map[int64][]*Card
	couponsLeft   int
	today         string // YYYY-MM-DD of Options.Now in the catalog time zone
	loyalty       *Program

	points *mapping
	out    []*outProgram
}

// outProgram is one catalog program and the comment above it.
type outProgram struct {
	id      string
	comment []string
	m       *mapping
}

func (t *translator) setup() error {
	t.company = t.opts.Company
	if t.company == 0 {
		for _, u := range t.s.Models[ModelUser] {
			t.company = many2one(u, "company_id")
		}
	}
	if t.company == 0 {
		return errNoCompany
	}
	comp, ok := t.s.index(ModelCompany)[t.company]
	if !ok {
		return fmt.Errorf("loyalty: company %d was not read", t.company)
	}
	t.currencyID = many2one(comp, "currency_id")
	cur, ok := t.s.index(ModelCurrency)[t.currencyID]
	if !ok {
		return fmt.Errorf("loyalty: the currency of company %d was not read", t.company)
	}
	t.imp.Currency = cur.String("name")
	places, _ := cur.Int("decimal_places")
	t.moneyDecimals = int32(places)
	t.imp.Timezone = t.opts.Timezone
	if t.imp.Timezone == "" {
		for _, u := range t.s.Models[ModelUser] {
			t.imp.Timezone = u.String("tz")
		}
	}
	if t.imp.Timezone == "" {
		t.imp.Timezone = "UTC"
		t.imp.Notes = append(t.imp.Notes, "the API user has no time zone in Odoo: the catalog's validity dates are in UTC; pass --timezone (the shops' zone)")
	}
	loc, err := time.LoadLocation(t.imp.Timezone)
	if err != nil {
		return fmt.Errorf("loyalty: time zone %q: %w", t.imp.Timezone, err)
	}
	if !t.opts.Now.IsZero() {
		t.today = t.opts.Now.In(loc).Format(time.DateOnly)
	}
	return nil
}

// chooseLoyalty picks the loyalty program whose points the catalog keeps.
func (t *translator) chooseLoyalty(programs []*Program) *Program {
	var live []*Program
	for _, p := range programs {
		if p.Type == TypeLoyalty && p.Active && p.POSOk && t.skipReason(p) == "" {
			if t.opts.LoyaltyProgram == p.ID {
				return p
			}
			live = append(live, p)
		}
	}
	if t.opts.LoyaltyProgram != 0 || len(live) == 0 {
		return nil
	}
	if len(live) > 1 {
		t.imp.Notes = append(t.imp.Notes, fmt.Sprintf("%d loyalty programs are active: the catalog's points are those of %q (id %d); pass --loyalty-program to choose another",
			len(live), live[0].Name, live[0].ID))
	}
	return live[0]
}

// skipReason says why a program is not live in the catalog's shops.
func (t *translator) skipReason(p *Program) string {
	switch {
	case !p.Active:
		return "archived in Odoo"
	case !p.POSOk:
		return "not offered in the Point of Sale (its Point of Sale option is off)"
	case p.CurrencyID != 0 && p.CurrencyID != t.currencyID:
		return fmt.Sprintf("in another currency (%s) than the catalog's %s: import the catalog of company %d separately",
			t.s.name(ModelCurrency, p.CurrencyID), t.imp.Currency, p.CompanyID)
	}
	return ""
}

func (t *translator) program(p *Program) ProgramReport {
	rep := ProgramReport{ID: p.ID, Name: p.Name, Type: p.Type}
	if reason := t.skipReason(p); reason != "" {
		rep.Outcome, rep.Reason = OutcomeSkipped, reason
		return rep
	}
	var err error
	switch {
	case len(p.Pricelists) > 0:
		names := make([]string, len(p.Pricelists))
		for i, id := range p.Pricelists {
			names[i] = fmt.Sprintf("%q", t.s.name(ModelPricelist, id))
		}
		err = untranslatable("it is restricted to pricelist(s) %s: the engine's order events carry no pricelist; if the pricelist is a shop's, rewrite it with pos_configs by hand", strings.Join(names, ", "))
	case p.Type == TypeGiftCard, p.Type == TypeEWallet:
		err = untranslatable("%s is a means of payment (stored value spent like money), not a promotion: the engine keeps no stored value; keep selling and accepting them in Odoo", typeName(p.Type))
	case p.Type == TypeLoyalty:
		if t.loyalty == nil || t.loyalty.ID != p.ID {
			err = untranslatable("the catalog has one points ledger, and it is loyalty program %q (id %d); pass --loyalty-program %d to import this one instead",
				t.loyaltyName(), t.loyaltyID(), p.ID)
			if t.loyalty == nil {
				err = untranslatable("--loyalty-program names another program")
			}
			break
		}
		err = t.loyaltyProgram(p, &rep)
	case p.Type == TypePromotion, p.Type == TypeBuyXGetY, p.Type == TypePromoCode:
		err = t.currentProgram(p, &rep)
	case p.Type == TypeCoupons:
		err = t.couponProgram(p, &rep)
	case p.Type == TypeNextOrderCoupons:
		err = t.nextOrderProgram(p, &rep)
	default:
		err = untranslatable("program type %q is not one Odoo 17 has; it is left out", p.Type)
	}
	var u *untranslatableError
	switch {
	case errors.As(err, &u):
		rep.Outcome, rep.Reason, rep.CatalogIDs, rep.Differences = OutcomeUntranslated, u.reason, nil, nil
	case err != nil:
		rep.Outcome, rep.Reason = OutcomeUntranslated, err.Error()
	case len(rep.NotTranslated) > 0:
		rep.Outcome = OutcomePartial
	default:
		rep.Outcome = OutcomeTranslated
	}
	if rep.Outcome == OutcomeUntranslated {
		t.out = slices.DeleteFunc(t.out, func(o *outProgram) bool { return ProgramOf(o.id) == p.ID })
	}
	return rep
}

func (t *translator) loyaltyName() string {
	if t.loyalty == nil {
		return ""
	}
	return t.loyalty.Name
}

func (t *translator) loyaltyID() int64 {
	if t.loyalty == nil {
		return 0
	}
	return t.loyalty.ID
}

// untranslatableError is a reason a program cannot be in the catalog.
type untranslatableError struct{ reason string }

func (e *untranslatableError) Error() string { return e.reason }

func untranslatable(format string, args ...any) error {
	return &untranslatableError{reason: fmt.Sprintf(format, args...)}
}

func typeName(t string) string {
	switch t {
	case TypeGiftCard:
		return "a gift card program"
	case TypeEWallet:
		return "an eWallet program"
	}
	return t
}

// activeRules and activeRewards drop archived lines.
func activeRules(p *Program) []*Rule {
	return slices.DeleteFunc(slices.Clone(p.Rules), func(r *Rule) bool { return !r.Active })
}

func activeRewards(p *Program) []*Reward {
	return slices.DeleteFunc(slices.Clone(p.Rewards), func(r *Reward) bool { return !r.Active })
}

// base is what every program of p shares: validity, eligibility, limits
// and its comment.
func (t *translator) base(p *Program, id string, rep *ProgramReport) (*outProgram, error) {
	o := &outProgram{id: id, m: &mapping{}}
	o.comment = append(o.comment, fmt.Sprintf("Odoo %s %d %q", strings.ReplaceAll(p.Type, "_", " "), p.ID, p.Name))
	o.m.set("id", id)
	valid := &mapping{flow: true}
	if p.DateFrom != "" {
		valid.set("from", t.midnight(p.DateFrom, 0))
	}
	if p.DateTo != "" {
		valid.set("until", t.midnight(p.DateTo, 1))
	}
	if p.MaxUsage > 0 {
		left := p.MaxUsage - p.Used
		if left <= 0 {
			return nil, untranslatable("its usage limit (%d orders) is used up in Odoo: it gives nothing any more", p.MaxUsage)
		}
		if p.Used > 0 {
			rep.Differences = appendOnce(rep.Differences, fmt.Sprintf("usage limit: Odoo had counted %d of its %d uses; the catalog allows the %d left, counted by the engine from the import on", p.Used, p.MaxUsage, left))
		}
		o.m.set("limits", &mapping{flow: true, kvs: []kv{{"total_uses", left}}})
	}
	if !valid.empty() {
		o.m.set("valid", valid)
	}
	return o, nil
}

// place finishes a program: when, reward, position; it goes into the
// catalog.
func (t *translator) place(p *Program, o *outProgram, layer string, when, reward *mapping, rep *ProgramReport) {
	m := &mapping{}
	m.set("id", o.id)
	m.set("layer", word(layer))
	m.set("priority", p.Sequence)
	for _, e := range o.m.kvs {
		if e.k == "valid" {
			m.set("valid", e.v)
		}
	}
	if p.CompanyID != 0 && len(t.s.Models[ModelCompany]) > 1 {
		when.set("companies", []string{itoa(p.CompanyID)})
	}
	if len(p.POSConfigs) > 0 {
		when.set("pos_configs", ids(p.POSConfigs))
	}
	if !when.empty() {
		m.set("when", when)
	}
	for _, e := range o.m.kvs {
		if e.k == "limits" {
			m.set("limits", e.v)
		}
	}
	m.set("reward", reward)
	o.m = m
	t.out = append(t.out, o)
	rep.CatalogIDs = append(rep.CatalogIDs, o.id)
}

// midnight is 00:00 of date plus days, in the catalog's time zone.
func (t *translator) midnight(date string, days int) string {
	loc, _ := time.LoadLocation(t.imp.Timezone)
	d, _ := time.ParseInLocation(time.DateOnly, date, loc)
	return d.AddDate(0, 0, days).Format(time.RFC3339)
}

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
func (t *translator) finish() (*Import, error) {
	root := &mapping{}
	root.set("currency", t.imp.Currency)
	root.set("money_decimals", int(t.moneyDecimals))
	root.set("timezone", word(t.imp.Timezone))
	if t.points != nil {
		root.set("points", t.points)
	}
	progs := &yaml.Node{Kind: yaml.SequenceNode} // in Odoo's order: sequence, then id
	for _, o := range t.out {
		n := o.m.node()
		n.HeadComment = strings.Join(o.comment, "\n")
		progs.Content = append(progs.Content, n)
	}
	doc := root.node()
	doc.HeadComment = t.header()
	if t.points != nil {
		doc.Content[len(doc.Content)-2].HeadComment = fmt.Sprintf("Points of Odoo loyalty program %d %q", t.loyalty.ID, t.loyalty.Name)
	}
	doc.Content = append(doc.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "programs"}, progs)
	doc.FootComment = t.footer()
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{doc}}); err != nil {
		return nil, fmt.Errorf("loyalty: write the catalog: %w", err)
	}
	out := buf.Bytes()
	t.imp.YAML = out
	var err error
	if t.imp.Catalog, err = rules.Parse(out); err != nil {
		return nil, fmt.Errorf("loyalty: the translated catalog is refused (a bug of the import): %w", err)
	}
	return &t.imp, nil
}

func (t *translator) header() string {
	counts := map[string]int{}
	for _, r := range t.imp.Programs {
		counts[r.Outcome]++
	}
	lines := []string{
		"Catalog imported from Odoo's loyalty programs by `promoengine odoo import-catalog`.",
		fmt.Sprintf("Odoo programs: %d translated, %d partly, %d not translated, %d skipped (see the end of the file).",
			counts[OutcomeTranslated], counts[OutcomePartial], counts[OutcomeUntranslated], counts[OutcomeSkipped]),
		"Ids are Odoo's: products (product.product), categories (product.category, with their subcategories),",
		"tags (product.tag), companies and POS configs; program ids are odoo-<loyalty.program id>.",
		"Review it, then `promoengine catalog validate -f` and `catalog apply -f` (docs/MIGRATION.md).",
	}
	for _, n := range t.imp.Notes {
		lines = append(lines, "NOTE: "+n)
	}
	return strings.Join(lines, "\n")
}

func (t *translator) footer() string {
	var lines []string
	for _, r := range t.imp.Programs {
		switch r.Outcome {
		case OutcomeUntranslated, OutcomeSkipped:
			lines = append(lines, fmt.Sprintf("%s: Odoo %s %d %q: %s", strings.ToUpper(r.Outcome), strings.ReplaceAll(r.Type, "_", " "), r.ID, r.Name, r.Reason))
		}
		for _, n := range r.NotTranslated {
			lines = append(lines, fmt.Sprintf("NOT TRANSLATED: Odoo %s %d %q: %s", strings.ReplaceAll(r.Type, "_", " "), r.ID, r.Name, n))
		}
		for _, d := range r.Differences {
			lines = append(lines, fmt.Sprintf("DIFFERS: Odoo %s %d %q: %s", strings.ReplaceAll(r.Type, "_", " "), r.ID, r.Name, d))
		}
	}
	return strings.Join(lines, "\n")
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

func ids(xs []int64) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = itoa(x)
	}
	slices.Sort(out)
	return out
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }

func appendOnce(xs []string, s string) []string {
	if slices.Contains(xs, s) {
		return xs
	}
	return append(xs, s)
}

// SupportsIssuedCoupons reports whether this engine's catalog has
// engine-issued coupons (SPEC §6.10), by asking rules.Parse.
func SupportsIssuedCoupons() bool {
	_, err := rules.Parse([]byte(`{"currency": "USD", "timezone": "UTC", "programs": [
		{"id": "a", "layer": "order", "reward": {"issue_coupon": {"program": "b", "valid_days": 1}}},
		{"id": "b", "layer": "order", "when": {"coupon": "issued"}, "reward": {"percent": "1"}}]}`))
	return err == nil
}
