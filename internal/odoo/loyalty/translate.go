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
