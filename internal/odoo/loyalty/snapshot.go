package loyalty

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/promoengine/promoengine/internal/odoo"
)

// The fields Read asks for, model by model. Each exists in Odoo 17.0 (and
// 18.0) with loyalty and pos_loyalty installed; pos_ok and pos_config_ids
// come from pos_loyalty.
var (
	ProgramFields = []string{"name", "active", "program_type", "sequence", "company_id", "currency_id",
		"pricelist_ids", "date_from", "date_to", "limit_usage", "max_usage", "applies_on", "trigger",
		"rule_ids", "reward_ids", "pos_ok", "pos_config_ids", "portal_point_name", "total_order_count"}
	RuleFields = []string{"program_id", "active", "product_ids", "product_category_id", "product_tag_id",
		"product_domain", "reward_point_amount", "reward_point_split", "reward_point_mode", "minimum_qty",
		"minimum_amount", "minimum_amount_tax_mode", "mode", "code"}
	RewardFields = []string{"program_id", "active", "description", "reward_type", "discount", "discount_mode",
		"discount_applicability", "discount_product_ids", "discount_product_category_id", "discount_product_tag_id",
		"discount_product_domain", "discount_max_amount", "reward_product_id", "reward_product_tag_id",
		"reward_product_qty", "required_points", "clear_wallet"}
	CardFields      = []string{"program_id", "partner_id", "code", "points", "expiration_date"}
	ProductFields   = []string{"display_name", "default_code", "categ_id", "product_tag_ids"}
	CategoryFields  = []string{"complete_name", "parent_path"}
	TagFields       = []string{"name"}
	PricelistFields = []string{"name", "currency_id"}
	CompanyFields   = []string{"name", "currency_id"}
	CurrencyFields  = []string{"name", "decimal_places"}
	POSConfigFields = []string{"name", "company_id"}
	UserFields      = []string{"tz", "company_id"}
)

// Models of a Snapshot.
const (
	ModelProgram   = "loyalty.program"
	ModelRule      = "loyalty.rule"
	ModelReward    = "loyalty.reward"
	ModelCard      = "loyalty.card"
	ModelProduct   = "product.product"
	ModelCategory  = "product.category"
	ModelTag       = "product.tag"
	ModelPricelist = "product.pricelist"
	ModelCompany   = "res.company"
	ModelCurrency  = "res.currency"
	ModelPOSConfig = "pos.config"
	ModelUser      = "res.users"
)

// Snapshot is what Odoo answered: the records of each model exactly as
// read() and search_read() returned them. It is the input of Translate,
// and what the tests record from a real Odoo (testdata/*.json) and replay.
type Snapshot struct {
	// UID is the API user's id; its res.users record gives the default
	// company and time zone.
	UID int64 `json:"uid"`
	// Models holds the records by model name.
	Models map[string][]odoo.Record `json:"models"`
	// CardCounts is, per coupon program id, how many of its cards hold
	// points (search_count), of which Models["loyalty.card"] holds at most
	// ReadOptions.MaxCards.
	CardCounts map[int64]int `json:"card_counts,omitempty"`
}

// ReadOptions bounds Read.
type ReadOptions struct {
	// MaxCards is how many cards with points of each coupon program
	// (coupons, next order coupons) are read, the rest only counted.
	// Default 1000.
	MaxCards int
}

// Read fetches the loyalty programs (archived ones too, to list them), their
// rules and rewards, the cards holding points of the coupon programs, and
// the products, categories, tags, pricelists, companies, currencies and POS
// configs they name, with JSON-RPC read and search_read only.
func Read(ctx context.Context, c *odoo.Client, opts ReadOptions) (*Snapshot, error) {
	if opts.MaxCards <= 0 {
		opts.MaxCards = 1000
	}
	uid, err := c.Authenticate(ctx)
	if err != nil {
		return nil, err
	}
	s := &Snapshot{UID: uid, Models: map[string][]odoo.Record{}, CardCounts: map[int64]int{}}
	if err := s.read(ctx, c, ModelUser, []int64{uid}, UserFields); err != nil {
		return nil, err
	}
	programs, err := c.SearchRead(ctx, ModelProgram, nil, ProgramFields,
		map[string]any{"order": "sequence, id", "context": map[string]any{"active_test": false}})
	if err != nil {
		return nil, err
	}
	s.Models[ModelProgram] = programs
	var rules, rewards, couponPrograms []int64
	for _, p := range programs {
		rules = append(rules, p.IDs("rule_ids")...)
		rewards = append(rewards, p.IDs("reward_ids")...)
		if t := p.String("program_type"); (t == TypeCoupons || t == TypeNextOrderCoupons) && isTrue(p, "active") {
			couponPrograms = append(couponPrograms, p.ID())
		}
	}
	if err := s.read(ctx, c, ModelRule, rules, RuleFields); err != nil {
		return nil, err
	}
	if err := s.read(ctx, c, ModelReward, rewards, RewardFields); err != nil {
		return nil, err
	}
	for _, id := range couponPrograms {
		domain := []any{[]any{"program_id", "=", id}, []any{"points", ">", 0}}
		raw, err := c.ExecuteKW(ctx, ModelCard, "search_count", []any{domain}, nil)
		if err != nil {
			return nil, err
		}
		var n int
		if err := json.Unmarshal(raw, &n); err != nil {
			return nil, fmt.Errorf("loyalty: loyalty.card search_count: %w", err)
		}
		s.CardCounts[id] = n
		cards, err := c.SearchRead(ctx, ModelCard, domain, CardFields, map[string]any{"order": "id", "limit": opts.MaxCards})
		if err != nil {
			return nil, err
		}
		s.Models[ModelCard] = append(s.Models[ModelCard], cards...)
	}
	return s, s.readReferenced(ctx, c)
}

// readReferenced reads the records the programs, rules and rewards name.
func (s *Snapshot) readReferenced(ctx context.Context, c *odoo.Client) error {
	refs := map[string][]int64{}
	add := func(model string, ids ...int64) { refs[model] = append(refs[model], ids...) }
	one := func(r odoo.Record, field, model string) {
		if id, _, ok := r.Many2one(field); ok {
			add(model, id)
		}
	}
	for _, p := range s.Models[ModelProgram] {
		one(p, "currency_id", ModelCurrency)
		add(ModelPricelist, p.IDs("pricelist_ids")...)
		add(ModelPOSConfig, p.IDs("pos_config_ids")...)
	}
	for _, r := range s.Models[ModelRule] {
		add(ModelProduct, r.IDs("product_ids")...)
		one(r, "product_category_id", ModelCategory)
		one(r, "product_tag_id", ModelTag)
	}
	for _, r := range s.Models[ModelReward] {
		add(ModelProduct, r.IDs("discount_product_ids")...)
		one(r, "discount_product_category_id", ModelCategory)
		one(r, "discount_product_tag_id", ModelTag)
		one(r, "reward_product_id", ModelProduct)
		one(r, "reward_product_tag_id", ModelTag)
	}
	fields := map[string][]string{ModelCategory: CategoryFields, ModelTag: TagFields,
		ModelPricelist: PricelistFields, ModelPOSConfig: POSConfigFields}
	if err := s.read(ctx, c, ModelProduct, refs[ModelProduct], ProductFields); err != nil {
		return err
	}
	for _, p := range s.Models[ModelProduct] { // whether a product is in a rule's category
		one(p, "categ_id", ModelCategory)
	}
	for _, model := range []string{ModelCategory, ModelTag, ModelPricelist, ModelPOSConfig} {
		if err := s.read(ctx, c, model, refs[model], fields[model]); err != nil {
			return err
		}
	}
	// Every company: whether the database has several decides whether the
	// catalog's programs name theirs.
	companies, err := c.SearchRead(ctx, ModelCompany, nil, CompanyFields, map[string]any{"order": "id"})
	if err != nil {
		return fmt.Errorf("loyalty: read res.company: %w", err)
	}
	s.Models[ModelCompany] = companies
	// Currencies last: the companies' and the pricelists' are known now.
	for _, model := range []string{ModelCompany, ModelPricelist} {
		for _, r := range s.Models[model] {
			one(r, "currency_id", ModelCurrency)
		}
	}
	return s.read(ctx, c, ModelCurrency, refs[ModelCurrency], CurrencyFields)
}

// read reads ids of model (without duplicates, ascending) into the snapshot.
func (s *Snapshot) read(ctx context.Context, c *odoo.Client, model string, ids []int64, fields []string) error {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) == 0 {
		return nil
	}
	recs, err := c.Read(ctx, model, ids, fields)
	if err != nil {
		return fmt.Errorf("loyalty: read %s: %w", model, err)
	}
	s.Models[model] = append(s.Models[model], recs...)
	return nil
}

// index maps the records of a model by id.
func (s *Snapshot) index(model string) map[int64]odoo.Record {
	out := make(map[int64]odoo.Record, len(s.Models[model]))
	for _, r := range s.Models[model] {
		out[r.ID()] = r
	}
	return out
}
