package shadow

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/promoengine/promoengine/internal/odoo"
	"github.com/promoengine/promoengine/internal/odoo/loyalty"
	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/rules"
)

// Outcomes of a comparison.
const (
	OutcomeMatch       = "match"
	OutcomeMismatch    = "mismatch"
	OutcomeNotCompared = "not_compared"
)

// Fields compared, per program.
const (
	FieldDiscount      = "discount"
	FieldPointsEarned  = "points_earned"
	FieldPointsSpent   = "points_spent"
	FieldBalance       = "points_balance"
	FieldCodes         = "codes"
	FieldCouponsIssued = "coupons_issued"
)

// Explanations: the known systematic differences between Odoo's loyalty
// and the engine, each named where it shows (Explain gives the text).
const (
	ExplainNotInCatalog      = "not_in_catalog"
	ExplainCodeNotInEvent    = "code_not_in_event"
	ExplainRedemption        = "redemption_not_in_event"
	ExplainRounding          = "rounding"
	ExplainThreshold         = "threshold_after_discounts"
	ExplainFollows           = "follows_from_discounts"
	ExplainCouponsNotIssued  = "coupons_not_issued"
	ExplainCustomerRequired  = "customer_required"
	ExplainPointsNotRecorded = "points_not_recorded"
	ExplainPointsBase        = "points_base"
	ExplainCheapest          = "cheapest_before_discounts"
	ExplainBalanceDrift      = "balance_drift"
	ExplainUnexplained       = "unexplained"
)

// Explain is the text of each explanation: what differs, and why.
var Explain = map[string]string{
	ExplainNotInCatalog: "the program is not in the engine's catalog (not translated, or left out: see `odoo import-catalog`'s report)",
	ExplainCodeNotInEvent: "Odoo applied it for a code scanned at the till; the order event carries no code (coupon_codes): " +
		"Odoo's POS keeps the codes it scans to itself",
	ExplainRedemption: "Odoo redeemed points for a reward at the till; the order event carries no redeem_points: " +
		"Odoo's POS keeps its rewards to itself",
	ExplainRounding: "rounding: Odoo rounds points half up to 0.01 and spreads discounts in floats; the engine rounds points " +
		"down to the catalog's decimals and money half up, exactly",
	ExplainThreshold: "Odoo checks the rule's minimum on the order before its automatic discounts; the engine on the running " +
		"net, after the programs applied before it",
	ExplainFollows:          "follows from the differences above: the order's net differs, and so do the points earned on it",
	ExplainCouponsNotIssued: "the catalog does not issue this program's coupons (next order coupons need engine-issued coupons, SPEC §6.10)",
	ExplainCustomerRequired: "the engine issues coupons to customers only; Odoo issues them to anonymous orders too",
	ExplainPointsNotRecorded: "Odoo 17 keeps only each card's balance; install promo_engine_loyalty for the points each order " +
		"won and spent",
	ExplainPointsBase: "Odoo earns points on the order before the loyalty program's own rewards; the engine on the final net, " +
		"after the redemption",
	ExplainCheapest: "Odoo discounts the cheapest unit at its price before other promotions; the engine at its running net " +
		"after the programs applied before it",
	ExplainBalanceDrift: "the order earned and spent the same, but the balances differed before it: the import, earlier " +
		"orders' differences (redemptions the engine did not see), and points kept differently — the engine a lot per " +
		"order, spent and expired first-expiring-first, Odoo one card balance that never expires; the true-up at cut-over " +
		"settles it",
	ExplainUnexplained: "not a known systematic difference: check the translation of this program",
}

// Diff is one field of one program on which the engine and Odoo differ.
type Diff struct {
	// Program is the Odoo program's catalog id (odoo-<id>), or the engine's
	// program id for one that does not come from Odoo.
	Program     string `json:"program"`
	OdooID      int64  `json:"odoo_id,omitempty"`
	Name        string `json:"name,omitempty"`
	Field       string `json:"field"`
	Engine      string `json:"engine"`
	Odoo        string `json:"odoo"`
	Explanation string `json:"explanation"`
}

// ProgramOutcome is how one program fared on one order.
type ProgramOutcome struct {
	Program string `json:"program"`
	OdooID  int64  `json:"odoo_id,omitempty"`
	Name    string `json:"name,omitempty"`
	Outcome string `json:"outcome"`
}

// Comparison is the engine's result of one order beside Odoo's loyalty.
type Comparison struct {
	EventID        string           `json:"event_id"`
	OrderID        string           `json:"order_id"`
	OrderName      string           `json:"order_name,omitempty"`
	CompanyID      string           `json:"company_id,omitempty"`
	POSConfigID    string           `json:"pos_config_id,omitempty"`
	CustomerID     string           `json:"customer_id,omitempty"`
	OccurredAt     time.Time        `json:"occurred_at"`
	CatalogVersion int64            `json:"catalog_version"`
	Outcome        string           `json:"outcome"`
	Note           string           `json:"note,omitempty"`
	Programs       []ProgramOutcome `json:"programs"`
	Diffs          []Diff           `json:"diffs"`
}

// Result is the part of an order result the comparison reads; coupons
// issued are read whether or not this engine's events have the field yet
// (SPEC §4).
type Result struct {
	events.OrderResult
	CouponsIssued []struct {
		Code      string `json:"code"`
		ProgramID string `json:"program_id"`
		IssuedBy  string `json:"issued_by"`
	} `json:"coupons_issued"`
}

// ErrBadResult: a message on promo.results.order that is not an order
// result.
var ErrBadResult = errors.New("shadow: not an order result")

// DecodeResult reads a result event.
func DecodeResult(data []byte) (*Result, error) {
	var r Result
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadResult, err)
	}
	if r.EventID == "" || r.OrderID == "" || r.CausationID == "" {
		return nil, fmt.Errorf("%w: no event_id, causation_id or order_id", ErrBadResult)
	}
	return &r, nil
}

// Options of Compare.
type Options struct {
	// PointsProgram is the Odoo loyalty program the catalog's points stand
	// for; 0 takes the loyalty program the order shows.
	PointsProgram int64
}

// Compare sets the engine's result of a sale beside what Odoo's loyalty did
// with the same order. cat is the catalog version the result was computed
// with. Returns and cancellations are not compared (see NotCompared).
func Compare(res *Result, odooSide *loyalty.OrderLoyalty, cat *rules.Catalog, opts Options) *Comparison {
	c := &Comparison{EventID: res.CausationID, OrderID: res.OrderID, OrderName: odooSide.Name,
		CustomerID: res.CustomerID, CatalogVersion: res.CatalogVersion, Diffs: []Diff{}, Programs: []ProgramOutcome{}}
	c.OccurredAt, _ = time.Parse(time.RFC3339Nano, res.OccurredAt)
	if odooSide.CompanyID != 0 {
		c.CompanyID = strconv.FormatInt(odooSide.CompanyID, 10)
	}
	if odooSide.POSConfigID != 0 {
		c.POSConfigID = strconv.FormatInt(odooSide.POSConfigID, 10)
	}
	if res.SourceType != events.TypeOrderPaid {
		c.Outcome, c.Note = OutcomeNotCompared, NotCompared
		return c
	}
	k := &comparer{res: res, odoo: odooSide, cat: cat, c: c, money: cat.MoneyDecimals, points: cat.Points.Decimals,
		sides: map[string]*side{}}
	k.pointsProgram = opts.PointsProgram
	if k.pointsProgram == 0 {
		for _, id := range sortedKeys(odooSide.Programs) {
			if odooSide.Programs[id].Type == loyalty.TypeLoyalty {
				k.pointsProgram = id
				break
			}
		}
	}
	k.collect()
	k.compare()
	return c
}

// NotCompared is why returns and cancellations are not compared.
const NotCompared = "returns and cancellations are not compared: Odoo 17's POS loyalty takes back no points and no coupons " +
	"on a refund, the engine claws points back in proportion (SPEC §6)"

type comparer struct {
	res    *Result
	odoo   *loyalty.OrderLoyalty
	cat    *rules.Catalog
	c      *Comparison
	money  int32
	points int32

	pointsProgram int64
	sides         map[string]*side
	order         []string
}

// side is one program's figures on both sides.
type side struct {
	key                          string
	odooID                       int64
	name                         string
	engineDiscount, odooDiscount dec.Decimal
	engineCodes, odooCodes       []string
	engineIssued, odooIssued     int
	applied                      bool // by the engine
	trace                        []events.Trace
}

func (k *comparer) sideOf(key string, odooID int64) *side {
	s := k.sides[key]
	if s == nil {
		s = &side{key: key, odooID: odooID, engineDiscount: dec.Zero, odooDiscount: dec.Zero}
		if p := k.odoo.Programs[odooID]; p != nil {
			s.name = p.Name
		}
		k.sides[key] = s
		k.order = append(k.order, key)
	}
	return s
}

// keyOf groups an engine program under its Odoo program.
func (k *comparer) keyOf(engineProgram string) (string, int64) {
	if engineProgram == loyalty.PointsProgramID && k.pointsProgram != 0 {
		return loyalty.CatalogProgramID(k.pointsProgram), k.pointsProgram
	}
	if id := loyalty.ProgramOf(engineProgram); id != 0 {
		return loyalty.CatalogProgramID(id), id
	}
	return engineProgram, 0
}

func (k *comparer) collect() {
	for _, d := range k.res.Discounts {
		key, id := k.keyOf(d.ProgramID)
		if d.Layer == events.LayerMember {
			key, id = "member", 0
		}
		s := k.sideOf(key, id)
		s.engineDiscount = dec.Add(s.engineDiscount, d.Amount)
	}
	for _, t := range k.res.Trace {
		key, id := k.keyOf(t.ProgramID)
		if t.Outcome == events.OutcomeApplied {
			s := k.sideOf(key, id)
			s.applied = true
			if p := k.catalogProgram(t.ProgramID); p != nil && p.When.Code != "" {
				s.engineCodes = append(s.engineCodes, p.When.Code)
			}
		}
		if s := k.sides[key]; s != nil || id != 0 {
			k.sideOf(key, id).trace = append(k.sideOf(key, id).trace, t)
		}
	}
	for _, ci := range k.res.CouponsIssued {
		key, id := k.keyOf(ci.IssuedBy)
		k.sideOf(key, id).engineIssued++
	}
	for _, r := range k.odoo.Rewards {
		s := k.sideOf(loyalty.CatalogProgramID(r.ProgramID), r.ProgramID)
		s.odooDiscount = dec.Add(s.odooDiscount, r.Amount)
		if r.Code != "" {
			s.odooCodes = append(s.odooCodes, r.Code)
		}
	}
	for _, ic := range k.odoo.Issued {
		k.sideOf(loyalty.CatalogProgramID(ic.ProgramID), ic.ProgramID).odooIssued++
	}
	if k.pointsProgram != 0 && (k.res.Points != nil || len(k.odoo.Points) > 0) {
		k.sideOf(loyalty.CatalogProgramID(k.pointsProgram), k.pointsProgram)
	}
	// Sides of programs that were only considered by the engine (trace)
	// and given nothing by either are dropped below.
}

func (k *comparer) catalogProgram(id string) *rules.Program {
	for _, p := range k.cat.Programs {
		if p.ID == id {
			return p
		}
	}
	return nil
}

// inCatalog reports whether the catalog has a program made from Odoo
// program id (or is its points).
func (k *comparer) inCatalog(id int64) bool {
	if id != 0 && id == k.pointsProgram && (len(k.cat.Points.Earn) > 0 || k.cat.Points.Redeem != nil) {
		return true
	}
	for _, p := range k.cat.Programs {
		if loyalty.ProgramOf(p.ID) == id {
			return true
		}
	}
	return false
}

func (k *comparer) compare() {
	for _, key := range k.order {
		s := k.sides[key]
		odooHas := !s.odooDiscount.IsZero() || len(s.odooCodes) > 0 || s.odooIssued > 0
		engineHas := !s.engineDiscount.IsZero() || len(s.engineCodes) > 0 || s.engineIssued > 0
		points := s.odooID != 0 && s.odooID == k.pointsProgram && k.pointsMoved()
		if !odooHas && !engineHas && !points {
			continue
		}
		before := len(k.c.Diffs)
		engineD, odooD := s.engineDiscount.Round(k.money), s.odooDiscount.Round(k.money)
		if !engineD.Equal(odooD) {
			k.diff(s, FieldDiscount, engineD.String(), odooD.String(), k.explainDiscount(s, engineD, odooD))
		}
		if !slices.Equal(sorted(s.engineCodes), sorted(s.odooCodes)) && len(s.odooCodes) > 0 {
			k.diff(s, FieldCodes, strings.Join(sorted(s.engineCodes), " "), strings.Join(sorted(s.odooCodes), " "), k.explainCodes(s))
		}
		if s.engineIssued != s.odooIssued {
			k.diff(s, FieldCouponsIssued, strconv.Itoa(s.engineIssued), strconv.Itoa(s.odooIssued), k.explainIssued(s))
		}
		if points {
			k.comparePoints(s)
		}
		outcome := OutcomeMatch
		if len(k.c.Diffs) > before {
			outcome = OutcomeMismatch
		}
		k.c.Programs = append(k.c.Programs, ProgramOutcome{Program: s.key, OdooID: s.odooID, Name: s.name, Outcome: outcome})
	}
	k.c.Outcome = OutcomeMatch
	if len(k.c.Diffs) > 0 {
		k.c.Outcome = OutcomeMismatch
	}
	// Points earned follow from any discount that differs: said once the
	// whole order is known.
	discountsDiffer := slices.ContainsFunc(k.c.Diffs, func(d Diff) bool { return d.Field == FieldDiscount })
	for i, d := range k.c.Diffs {
		if d.Field == FieldPointsEarned && d.Explanation == ExplainUnexplained && discountsDiffer {
			k.c.Diffs[i].Explanation = ExplainFollows
		}
	}
}

// pointsMoved reports whether either side earned or spent points.
func (k *comparer) pointsMoved() bool {
	if p := k.res.Points; p != nil && (!p.Earned.IsZero() || !p.Redeemed.IsZero()) {
		return true
	}
	for _, p := range k.odoo.Points {
		if p.ProgramID == k.pointsProgram {
			return true
		}
	}
	return k.odoo.Spent(k.pointsProgram).Sign() > 0
}

func (k *comparer) diff(s *side, field, engine, odoo, explanation string) {
	k.c.Diffs = append(k.c.Diffs, Diff{Program: s.key, OdooID: s.odooID, Name: s.name, Field: field,
		Engine: engine, Odoo: odoo, Explanation: explanation})
}

func (k *comparer) comparePoints(s *side) {
	before := len(k.c.Diffs)
	engineEarned, engineSpent := dec.Zero, dec.Zero
	if p := k.res.Points; p != nil {
		engineEarned, engineSpent = p.Earned, p.Redeemed
	}
	spent := k.odoo.Spent(s.odooID)
	won, recorded := k.odoo.Won(s.odooID)
	if !recorded && !k.odoo.PointsRecorded {
		if !engineEarned.IsZero() {
			k.diff(s, FieldPointsEarned, engineEarned.String(), "not recorded", ExplainPointsNotRecorded)
		}
	} else if !engineEarned.Equal(won) {
		k.diff(s, FieldPointsEarned, engineEarned.String(), odoo.Reduce(won).String(), k.explainEarned(engineEarned, won, spent))
	}
	if !engineSpent.Equal(spent) {
		explanation := ExplainUnexplained
		if engineSpent.IsZero() {
			explanation = ExplainRedemption
		}
		k.diff(s, FieldPointsSpent, engineSpent.String(), odoo.Reduce(spent).String(), explanation)
	}
	// The balance after the order, when the order itself moved the same
	// points on both sides (otherwise it follows from the above).
	balance, known := k.odooBalance(s.odooID)
	if p := k.res.Points; p != nil && known && len(k.c.Diffs) == before && !p.Balance.Equal(balance.Round(k.points)) {
		k.diff(s, FieldBalance, p.Balance.String(), odoo.Reduce(balance).String(), ExplainBalanceDrift)
	}
}

// odooBalance sums the balances Odoo recorded after the order on the
// program's cards (one per customer, as a rule).
func (k *comparer) odooBalance(program int64) (dec.Decimal, bool) {
	sum, known, seen := dec.Zero, false, map[int64]bool{}
	for _, p := range k.odoo.Points {
		if p.ProgramID != program || p.Balance == nil || seen[p.CardID] {
			continue
		}
		seen[p.CardID] = true
		sum, known = dec.Add(sum, *p.Balance), true
	}
	return sum, known
}

func (k *comparer) explainDiscount(s *side, engine, odooAmount dec.Decimal) string {
	if s.odooID != 0 && !k.inCatalog(s.odooID) && engine.IsZero() {
		return ExplainNotInCatalog
	}
	if s.odooID != 0 && s.odooID == k.pointsProgram && engine.IsZero() && k.odoo.Spent(s.odooID).Sign() > 0 {
		return ExplainRedemption
	}
	if engine.IsZero() && len(s.odooCodes) > 0 {
		return ExplainCodeNotInEvent
	}
	if diff := dec.Sub(engine, odooAmount); diff.Sign() != 0 && abs(diff).LessEq(dec.Quantum(k.money)) {
		return ExplainRounding
	}
	for _, t := range s.trace {
		if t.Outcome == events.OutcomeConditionFailed && strings.Contains(t.Reason, "min_amount") && engine.IsZero() {
			return ExplainThreshold
		}
	}
	for _, id := range k.engineIDs(s) {
		if p := k.catalogProgram(id); p != nil && p.Reward.On == rules.OnCheapest && !engine.IsZero() && !odooAmount.IsZero() {
			return ExplainCheapest
		}
	}
	return ExplainUnexplained
}

// engineIDs are the catalog programs grouped under s.
func (k *comparer) engineIDs(s *side) []string {
	var out []string
	for _, t := range s.trace {
		out = append(out, t.ProgramID)
	}
	return out
}

func (k *comparer) explainCodes(s *side) string {
	if len(s.engineCodes) == 0 {
		if s.odooID != 0 && !k.inCatalog(s.odooID) {
			return ExplainNotInCatalog
		}
		return ExplainCodeNotInEvent
	}
	return ExplainUnexplained
}

func (k *comparer) explainIssued(s *side) string {
	if s.engineIssued < s.odooIssued {
		if k.catalogProgram(loyalty.CatalogProgramID(s.odooID)+"-issue") == nil {
			return ExplainCouponsNotIssued
		}
		if k.res.CustomerID == "" {
			return ExplainCustomerRequired
		}
	}
	return ExplainUnexplained
}

func (k *comparer) explainEarned(engine, won, spent dec.Decimal) string {
	if diff := dec.Sub(engine, won); abs(diff).LessEq(dec.Max(dec.Quantum(k.points), dec.MustParse("0.01"))) {
		return ExplainRounding
	}
	if spent.Sign() > 0 && k.res.Points != nil && k.res.Points.Redeemed.Sign() > 0 {
		return ExplainPointsBase
	}
	return ExplainUnexplained // becomes follows_from_discounts when a discount differs
}

func abs(d dec.Decimal) dec.Decimal {
	if d.Sign() < 0 {
		return d.Neg()
	}
	return d
}

func sorted(xs []string) []string {
	out := slices.Clone(xs)
	slices.Sort(out)
	return out
}

func sortedKeys[V any](m map[int64]V) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Explained reports whether every difference has a known explanation.
func (c *Comparison) Explained() bool {
	return !slices.ContainsFunc(c.Diffs, func(d Diff) bool { return d.Explanation == ExplainUnexplained })
}
