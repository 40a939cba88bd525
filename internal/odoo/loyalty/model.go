package loyalty

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/promoengine/promoengine/internal/odoo"
	"github.com/promoengine/promoengine/pkg/dec"
)

// Odoo's program types (loyalty.program.program_type).
const (
	TypeCoupons          = "coupons"
	TypeGiftCard         = "gift_card"
	TypeLoyalty          = "loyalty"
	TypePromotion        = "promotion"
	TypeEWallet          = "ewallet"
	TypePromoCode        = "promo_code"
	TypeBuyXGetY         = "buy_x_get_y"
	TypeNextOrderCoupons = "next_order_coupons"
)

// Program is a loyalty.program with its rules and rewards.
type Program struct {
	ID         int64
	Name       string
	Type       string
	Active     bool
	Sequence   int64
	CompanyID  int64
	CurrencyID int64
	Pricelists []int64
	DateFrom   string // YYYY-MM-DD, "" when open
	DateTo     string // YYYY-MM-DD (inclusive), "" when open
	MaxUsage   int64  // 0: unlimited (limit_usage off)
	Used       int64  // total_order_count: orders that used the program so far
	AppliesOn  string // current, future, both
	Trigger    string // auto, with_code
	POSOk      bool
	POSConfigs []int64
	PointName  string
	Rules      []*Rule
	Rewards    []*Reward
}

// Rule is a loyalty.rule: when an order earns points, and how many.
type Rule struct {
	ID            int64
	Active        bool
	Products      []int64
	Category      int64
	Tag           int64
	Domain        string
	PointAmount   dec.Decimal
	PointSplit    bool
	PointMode     string // order, money, unit
	MinQty        dec.Decimal
	MinAmount     dec.Decimal
	MinAmountMode string // incl, excl
	Code          string // mode with_code
}

// HasProducts reports whether the rule counts some products only.
func (r *Rule) HasProducts() bool { return len(r.Products) > 0 || r.Category != 0 || r.Tag != 0 }

// Reward is a loyalty.reward: what points buy.
type Reward struct {
	ID               int64
	Active           bool
	Description      string
	Type             string // discount, product
	Discount         dec.Decimal
	DiscountMode     string // percent, per_point, per_order
	Applicability    string // order, cheapest, specific
	DiscountProducts []int64
	DiscountCategory int64
	DiscountTag      int64
	DiscountDomain   string
	MaxAmount        dec.Decimal // 0: no cap
	RewardProduct    int64
	RewardProductTag int64
	RewardProductQty int64
	RequiredPoints   dec.Decimal
	ClearWallet      bool
}

// Card is a loyalty.card holding points: a coupon, or a customer's loyalty
// card.
type Card struct {
	ID         int64
	ProgramID  int64
	PartnerID  int64
	Code       string
	Points     dec.Decimal
	Expiration string // YYYY-MM-DD, "" when none
}

// isTrue reads a boolean field.
func isTrue(r odoo.Record, field string) bool {
	return bytes.Equal(bytes.TrimSpace(r[field]), []byte("true"))
}

func many2one(r odoo.Record, field string) int64 {
	id, _, _ := r.Many2one(field)
	return id
}

// decimal reads a float field; a field Odoo did not return reads 0.
func decimal(r odoo.Record, field string) (dec.Decimal, error) {
	d, err := r.Decimal(field)
	if err != nil {
		return dec.Zero, fmt.Errorf("%s %d: %w", field, r.ID(), err)
	}
	return d, nil
}

// date reads a date field ("2026-12-31"), "" when empty.
func date(r odoo.Record, field string) (string, error) {
	s := r.String(field)
	if s == "" {
		return "", nil
	}
	if _, err := time.Parse(time.DateOnly, s); err != nil {
		return "", fmt.Errorf("field %s of record %d: %q is not a date", field, r.ID(), s)
	}
	return s, nil
}

// Programs decodes the snapshot's programs with their rules and rewards,
// in Odoo's order (sequence, then id).
func (s *Snapshot) Programs() ([]*Program, error) {
	rules := s.index(ModelRule)
	rewards := s.index(ModelReward)
	var out []*Program
	for _, r := range s.Models[ModelProgram] {
		p := &Program{ID: r.ID(), Name: r.String("name"), Type: r.String("program_type"), Active: isTrue(r, "active"),
			CompanyID: many2one(r, "company_id"), CurrencyID: many2one(r, "currency_id"), Pricelists: r.IDs("pricelist_ids"),
			AppliesOn: r.String("applies_on"), Trigger: r.String("trigger"), POSOk: isTrue(r, "pos_ok"),
			POSConfigs: r.IDs("pos_config_ids"), PointName: r.String("portal_point_name")}
		p.Sequence, _ = r.Int("sequence")
		p.Used, _ = r.Int("total_order_count")
		var err error
		if p.DateFrom, err = date(r, "date_from"); err != nil {
			return nil, err
		}
		if p.DateTo, err = date(r, "date_to"); err != nil {
			return nil, err
		}
		if isTrue(r, "limit_usage") {
			p.MaxUsage, _ = r.Int("max_usage")
		}
		if !r.Has("pos_ok") { // pos_loyalty not installed: every program is the POS's
			p.POSOk = true
		}
		for _, id := range r.IDs("rule_ids") {
			rec, ok := rules[id]
			if !ok {
				return nil, fmt.Errorf("loyalty: rule %d of program %d was not read", id, p.ID)
			}
			rule, err := decodeRule(rec)
			if err != nil {
				return nil, fmt.Errorf("loyalty: program %d: %w", p.ID, err)
			}
			p.Rules = append(p.Rules, rule)
		}
		for _, id := range r.IDs("reward_ids") {
			rec, ok := rewards[id]
			if !ok {
				return nil, fmt.Errorf("loyalty: reward %d of program %d was not read", id, p.ID)
			}
			reward, err := decodeReward(rec)
			if err != nil {
				return nil, fmt.Errorf("loyalty: program %d: %w", p.ID, err)
			}
			p.Rewards = append(p.Rewards, reward)
		}
		out = append(out, p)
	}
	return out, nil
}

func decodeRule(r odoo.Record) (*Rule, error) {
	rule := &Rule{ID: r.ID(), Active: isTrue(r, "active") || !r.Has("active"), Products: r.IDs("product_ids"),
		Category: many2one(r, "product_category_id"), Tag: many2one(r, "product_tag_id"),
		Domain: strings.TrimSpace(r.String("product_domain")), PointSplit: isTrue(r, "reward_point_split"),
		PointMode: r.String("reward_point_mode"), MinAmountMode: r.String("minimum_amount_tax_mode")}
	if r.String("mode") == "with_code" {
		rule.Code = r.String("code")
	}
	var err error
	if rule.PointAmount, err = decimal(r, "reward_point_amount"); err != nil {
		return nil, err
	}
	if rule.MinQty, err = decimal(r, "minimum_qty"); err != nil {
		return nil, err
	}
	if rule.MinAmount, err = decimal(r, "minimum_amount"); err != nil {
		return nil, err
	}
	return rule, nil
}

func decodeReward(r odoo.Record) (*Reward, error) {
	w := &Reward{ID: r.ID(), Active: isTrue(r, "active") || !r.Has("active"), Description: r.String("description"),
		Type: r.String("reward_type"), DiscountMode: r.String("discount_mode"), Applicability: r.String("discount_applicability"),
		DiscountProducts: r.IDs("discount_product_ids"), DiscountCategory: many2one(r, "discount_product_category_id"),
		DiscountTag: many2one(r, "discount_product_tag_id"), DiscountDomain: strings.TrimSpace(r.String("discount_product_domain")),
		RewardProduct: many2one(r, "reward_product_id"), RewardProductTag: many2one(r, "reward_product_tag_id"),
		ClearWallet: isTrue(r, "clear_wallet")}
	w.RewardProductQty, _ = r.Int("reward_product_qty")
	var err error
	if w.Discount, err = decimal(r, "discount"); err != nil {
		return nil, err
	}
	if w.MaxAmount, err = decimal(r, "discount_max_amount"); err != nil {
		return nil, err
	}
	if w.RequiredPoints, err = decimal(r, "required_points"); err != nil {
		return nil, err
	}
	return w, nil
}

// Cards decodes the snapshot's cards.
func (s *Snapshot) Cards() ([]*Card, error) {
	return DecodeCards(s.Models[ModelCard])
}

// DecodeCards decodes loyalty.card records read with CardFields.
func DecodeCards(recs []odoo.Record) ([]*Card, error) {
	out := make([]*Card, 0, len(recs))
	for _, r := range recs {
		c := &Card{ID: r.ID(), ProgramID: many2one(r, "program_id"), PartnerID: many2one(r, "partner_id"), Code: r.String("code")}
		var err error
		if c.Points, err = decimal(r, "points"); err != nil {
			return nil, err
		}
		if c.Expiration, err = date(r, "expiration_date"); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// name returns a record's display name from the snapshot ("" when absent).
func (s *Snapshot) name(model string, id int64) string {
	for _, r := range s.Models[model] {
		if r.ID() == id {
			for _, f := range []string{"display_name", "complete_name", "name"} {
				if n := r.String(f); n != "" {
					return n
				}
			}
		}
	}
	return ""
}
