package loyalty

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/promoengine/promoengine/internal/odoo"
	"github.com/promoengine/promoengine/pkg/dec"
)

// What Odoo's loyalty gave one POS order, as Odoo recorded it, for the
// shadow comparison:
//
//   - reward lines (pos.order.line with is_reward_line): the reward, hence
//     the program, the amount (−price_unit × qty: a discount, or a free
//     product's price), the points it cost, the card (coupon) it was
//     claimed with;
//   - the codes used: a card's code for a coupon, the rule's code for a
//     discount code program (the POS creates a throwaway card then);
//   - the cards the order created: next order coupons it issued;
//   - the point changes the POS confirmed (promo_engine_loyalty's
//     promo_engine_loyalty_points): points won and spent per card. Without
//     that module Odoo 17 keeps only each card's balance, and points are
//     not compared.

// Fields read for the comparison.
var (
	OrderFields        = []string{"name", "state", "partner_id", "company_id", "config_id", "lines"}
	OrderPointsField   = "promo_engine_loyalty_points"
	RewardLineFields   = []string{"is_reward_line", "reward_id", "coupon_id", "points_cost", "price_unit", "qty"}
	OrderRewardFields  = []string{"program_id", "reward_type", "description"}
	OrderProgramFields = []string{"name", "program_type", "trigger", "applies_on", "rule_ids"}
	OrderRuleFields    = []string{"mode", "code"}
	OrderCardFields    = []string{"program_id", "code", "points", "expiration_date", "source_pos_order_id"}
)

// OrderLoyalty is what Odoo's loyalty did with an order.
type OrderLoyalty struct {
	OrderID     int64
	Name        string
	State       string
	CompanyID   int64
	POSConfigID int64
	PartnerID   int64
	Rewards     []RewardLine
	// Points are the confirmed point changes; PointsRecorded is false when
	// Odoo has no promo_engine_loyalty module to record them.
	Points         []PointChange
	PointsRecorded bool
	// Issued are the cards the order created for programs applied to
	// future orders (next order coupons).
	Issued []IssuedCard
	// Programs describes every program named above.
	Programs map[int64]*ProgramInfo
}

// RewardLine is one reward line of the order.
type RewardLine struct {
	LineID     int64
	RewardID   int64
	ProgramID  int64
	RewardType string      // discount, product
	Amount     dec.Decimal // what it took off: −price_unit × qty
	PointsCost dec.Decimal
	CardID     int64
	// Code is what was scanned for it: the coupon's code, or the discount
	// code of the program's rule; "" for an automatic reward.
	Code string
}

// PointChange is one card's change confirmed with the order.
type PointChange struct {
	ProgramID int64
	CardID    int64
	Code      string
	// Points is the change of the card: won minus what its reward lines
	// cost.
	Points  dec.Decimal
	Balance *dec.Decimal
	Created bool
}

// IssuedCard is a card the order created.
type IssuedCard struct {
	CardID    int64
	ProgramID int64
	Code      string
	Points    dec.Decimal
}

// ProgramInfo is what the comparison needs of a program.
type ProgramInfo struct {
	ID        int64
	Name      string
	Type      string
	Trigger   string
	AppliesOn string
	Codes     []string // the codes of its rules
}

// Spent sums the points the reward lines of program cost.
func (o *OrderLoyalty) Spent(program int64) dec.Decimal {
	sum := dec.Zero
	for _, r := range o.Rewards {
		if r.ProgramID == program {
			sum = dec.Add(sum, r.PointsCost)
		}
	}
	return sum
}

// Won is what the cards of program won with the order (the recorded
// change plus what its reward lines cost); ok is false when nothing was
// recorded for the program.
func (o *OrderLoyalty) Won(program int64) (dec.Decimal, bool) {
	sum, ok := dec.Zero, false
	for _, p := range o.Points {
		if p.ProgramID == program {
			sum, ok = dec.Add(sum, p.Points), true
		}
	}
	if !ok {
		return dec.Zero, false
	}
	return dec.Add(sum, o.Spent(program)), true
}

// OrderReader reads orders' loyalty; it remembers whether Odoo has the
// promo_engine_loyalty field. Safe for concurrent use.
type OrderReader struct {
	c *odoo.Client
	// noPointsField is set once Odoo refused the field.
	noPointsField atomic.Bool
}

// NewOrderReader returns a reader of c.
func NewOrderReader(c *odoo.Client) *OrderReader { return &OrderReader{c: c} }

// ErrOrderMissing: Odoo shows no such pos.order to the API user.
var ErrOrderMissing = errors.New("loyalty: pos.order not found")

// Read reads what Odoo's loyalty did with pos.order id.
func (r *OrderReader) Read(ctx context.Context, id int64) (*OrderLoyalty, error) {
	order, err := r.readOrder(ctx, id)
	if err != nil {
		return nil, err
	}
	o := &OrderLoyalty{OrderID: id, Name: order.String("name"), State: order.String("state"),
		CompanyID: many2one(order, "company_id"), POSConfigID: many2one(order, "config_id"),
		PartnerID: many2one(order, "partner_id"), Programs: map[int64]*ProgramInfo{}}
	if order.Has(OrderPointsField) {
		o.PointsRecorded = true
		if err := o.decodePoints(order.String(OrderPointsField)); err != nil {
			return nil, fmt.Errorf("loyalty: pos.order %d: %w", id, err)
		}
	}
	lines, err := r.c.Read(ctx, "pos.order.line", sortedIDs(order.IDs("lines")), RewardLineFields)
	if err != nil {
		return nil, err
	}
	rewardIDs, cardIDs := []int64{}, []int64{}
	for _, l := range lines {
		if !isTrue(l, "is_reward_line") {
			continue
		}
		rl := RewardLine{LineID: l.ID(), RewardID: many2one(l, "reward_id"), CardID: many2one(l, "coupon_id")}
		price, err := decimal(l, "price_unit")
		if err != nil {
			return nil, err
		}
		qty, err := decimal(l, "qty")
		if err != nil {
			return nil, err
		}
		rl.Amount = odoo.Reduce(dec.Mul(price, qty).Neg())
		if rl.PointsCost, err = decimal(l, "points_cost"); err != nil {
			return nil, err
		}
		o.Rewards = append(o.Rewards, rl)
		rewardIDs = append(rewardIDs, rl.RewardID)
		if rl.CardID != 0 {
			cardIDs = append(cardIDs, rl.CardID)
		}
	}
	slices.SortFunc(o.Rewards, func(a, b RewardLine) int { return int(a.LineID - b.LineID) })
	rewards, err := r.c.Read(ctx, ModelReward, sortedIDs(rewardIDs), OrderRewardFields)
	if err != nil {
		return nil, err
	}
	rewardOf := map[int64]odoo.Record{}
	for _, w := range rewards {
		rewardOf[w.ID()] = w
	}
	created, err := r.c.SearchRead(ctx, ModelCard, []any{[]any{"source_pos_order_id", "=", id}}, OrderCardFields, map[string]any{"order": "id"})
	if err != nil {
		return nil, err
	}
	cards, err := r.c.Read(ctx, ModelCard, sortedIDs(cardIDs), OrderCardFields)
	if err != nil {
		return nil, err
	}
	cardOf := map[int64]odoo.Record{}
	for _, c := range append(cards, created...) {
		cardOf[c.ID()] = c
	}
	programIDs := []int64{}
	for i := range o.Rewards {
		o.Rewards[i].ProgramID = many2one(rewardOf[o.Rewards[i].RewardID], "program_id")
		o.Rewards[i].RewardType = rewardOf[o.Rewards[i].RewardID].String("reward_type")
		programIDs = append(programIDs, o.Rewards[i].ProgramID)
	}
	for _, p := range o.Points {
		programIDs = append(programIDs, p.ProgramID)
	}
	for _, c := range created {
		programIDs = append(programIDs, many2one(c, "program_id"))
	}
	if err := r.readPrograms(ctx, o, programIDs); err != nil {
		return nil, err
	}
	for _, c := range created {
		points, err := decimal(c, "points")
		if err != nil {
			return nil, err
		}
		if p := o.Programs[many2one(c, "program_id")]; p != nil && p.AppliesOn == "future" && p.Type != TypeGiftCard && p.Type != TypeEWallet {
			o.Issued = append(o.Issued, IssuedCard{CardID: c.ID(), ProgramID: p.ID, Code: c.String("code"), Points: points})
		}
	}
	createdHere := func(card int64) bool { return many2one(cardOf[card], "source_pos_order_id") == id }
	for i, rl := range o.Rewards {
		p := o.Programs[rl.ProgramID]
		if p == nil || p.Trigger != "with_code" {
			continue
		}
		switch {
		case rl.CardID != 0 && !createdHere(rl.CardID):
			o.Rewards[i].Code = cardOf[rl.CardID].String("code") // a coupon scanned
		case len(p.Codes) == 1:
			o.Rewards[i].Code = p.Codes[0] // a discount code
		case len(p.Codes) > 1:
			o.Rewards[i].Code = strings.Join(p.Codes, "|")
		}
	}
	return o, nil
}

// readOrder reads the order, with the recorded point changes when Odoo has
// the field.
func (r *OrderReader) readOrder(ctx context.Context, id int64) (odoo.Record, error) {
	fields := OrderFields
	if !r.noPointsField.Load() {
		fields = append(slices.Clone(OrderFields), OrderPointsField)
	}
	recs, err := r.c.SearchRead(ctx, "pos.order", []any{[]any{"id", "=", id}}, fields, nil)
	var oe *odoo.Error
	if errors.As(err, &oe) && strings.Contains(oe.DataMessage, OrderPointsField) {
		r.noPointsField.Store(true) // Odoo without promo_engine_loyalty
		return r.readOrder(ctx, id)
	}
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%w: id %d", ErrOrderMissing, id)
	}
	return recs[0], nil
}

func (r *OrderReader) readPrograms(ctx context.Context, o *OrderLoyalty, ids []int64) error {
	recs, err := r.c.Read(ctx, ModelProgram, sortedIDs(ids), OrderProgramFields)
	if err != nil {
		return err
	}
	var ruleIDs []int64
	for _, p := range recs {
		info := &ProgramInfo{ID: p.ID(), Name: p.String("name"), Type: p.String("program_type"),
			Trigger: p.String("trigger"), AppliesOn: p.String("applies_on")}
		o.Programs[info.ID] = info
		if info.Trigger == "with_code" {
			ruleIDs = append(ruleIDs, p.IDs("rule_ids")...)
		}
	}
	if len(ruleIDs) == 0 {
		return nil
	}
	rules, err := r.c.Read(ctx, ModelRule, sortedIDs(ruleIDs), append(slices.Clone(OrderRuleFields), "program_id"))
	if err != nil {
		return err
	}
	for _, rule := range rules {
		if p := o.Programs[many2one(rule, "program_id")]; p != nil && rule.String("mode") == "with_code" && rule.String("code") != "" {
			p.Codes = append(p.Codes, rule.String("code"))
		}
	}
	return nil
}

// ErrBadPointChanges: the recorded point changes are not what
// promo_engine_loyalty writes.
var ErrBadPointChanges = errors.New("loyalty: unreadable point changes")

// decodePoints reads the JSON promo_engine_loyalty recorded.
func (o *OrderLoyalty) decodePoints(text string) error {
	changes, err := DecodePointChanges(text)
	o.Points = changes
	return err
}

// DecodePointChanges reads promo_engine_loyalty_points: a JSON list of
// {program_id, card_id, code, points, balance, created} ("" is none).
func DecodePointChanges(text string) ([]PointChange, error) {
	if text == "" {
		return nil, nil
	}
	var raw []struct {
		ProgramID int64           `json:"program_id"`
		CardID    json.RawMessage `json:"card_id"`
		Code      json.RawMessage `json:"code"`
		Points    dec.Decimal     `json:"points"`
		Balance   json.RawMessage `json:"balance"`
		Created   bool            `json:"created"`
	}
	if err := json.Unmarshal([]byte(text), &raw); err != nil {
		return nil, fmt.Errorf("%w: %s is not the JSON promo_engine_loyalty writes: %v", ErrBadPointChanges, OrderPointsField, err)
	}
	var out []PointChange
	for _, p := range raw {
		if p.ProgramID <= 0 {
			return nil, fmt.Errorf("%w: a change without a program", ErrBadPointChanges)
		}
		pc := PointChange{ProgramID: p.ProgramID, Points: odoo.Reduce(p.Points), Created: p.Created}
		_ = json.Unmarshal(p.CardID, &pc.CardID) // false for no card
		_ = json.Unmarshal(p.Code, &pc.Code)
		var b dec.Decimal
		if err := b.UnmarshalJSON(p.Balance); err == nil && string(p.Balance) != "false" {
			b = odoo.Reduce(b)
			pc.Balance = &b
		}
		out = append(out, pc)
	}
	return out, nil
}

func sortedIDs(ids []int64) []int64 {
	out := slices.Clone(ids)
	slices.Sort(out)
	out = slices.Compact(out)
	return slices.DeleteFunc(out, func(id int64) bool { return id <= 0 })
}
