package loyalty_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/odoo"
	"github.com/promoengine/promoengine/internal/odoo/loyalty"
	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/rules"
)

var update = flag.Bool("update", false, "rewrite the golden catalogs of testdata/")

// The snapshot testdata/odoo17_programs.json is what a real Odoo 17.0
// answered to loyalty.Read: the programs of TestRealOdooMigration
// (odoo/e2e), created over JSON-RPC, recorded with ODOO_E2E_RECORD=1.
func recorded(t *testing.T) *loyalty.Snapshot {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "odoo17_programs.json"))
	require.NoError(t, err)
	var s loyalty.Snapshot
	require.NoError(t, json.Unmarshal(b, &s))
	return &s
}

func translate(t *testing.T, s *loyalty.Snapshot, opts loyalty.Options) *loyalty.Import {
	t.Helper()
	if opts.Now.IsZero() {
		opts.Now = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	}
	imp, err := loyalty.Translate(s, opts)
	require.NoError(t, err)
	return imp
}

func report(t *testing.T, imp *loyalty.Import, id int64) loyalty.ProgramReport {
	t.Helper()
	for _, r := range imp.Programs {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("program %d is not in the report", id)
	return loyalty.ProgramReport{}
}

func program(t *testing.T, c *rules.Catalog, id string) *rules.Program {
	t.Helper()
	for _, p := range c.Programs {
		if p.ID == id {
			return p
		}
	}
	t.Fatalf("catalog program %s missing", id)
	return nil
}

func dp(s string) *dec.Decimal { d := dec.MustParse(s); return &d }

// TestTranslateRecordedOdoo17 translates every program of a real Odoo 17.0,
// one of each type and the cases the import must refuse, and checks each
// against what Odoo's POS does with it (pos_loyalty's loyalty.js).
func TestTranslateRecordedOdoo17(t *testing.T) {
	t.Parallel()
	imp := translate(t, recorded(t), loyalty.Options{})
	golden := filepath.Join("testdata", "odoo17_catalog.yaml")
	if *update {
		require.NoError(t, os.WriteFile(golden, imp.YAML, 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), string(imp.YAML), "go test ./internal/odoo/loyalty -update rewrites the golden catalog")

	cat, err := rules.Parse(imp.YAML)
	require.NoError(t, err, "catalog validate accepts it")
	require.Equal(t, "USD", cat.Currency)
	require.Equal(t, int32(2), cat.MoneyDecimals)
	require.Equal(t, "Asia/Jakarta", cat.Timezone, "the API user's time zone")
	require.Equal(t, int64(13), imp.LoyaltyProgram)

	for _, tc := range []struct {
		id      int64
		name    string
		outcome string
		ids     []string
		check   func(t *testing.T, r loyalty.ProgramReport)
	}{
		{4, "buy X get Y, the free unit among the units counted", loyalty.OutcomeTranslated, []string{"odoo-4"}, func(t *testing.T, _ loyalty.ProgramReport) {
			// Rule: 1 point per Cola, 2 points for a free Cola: Odoo gives
			// floor(n/3) free (computeFreeQuantity), as buy 2 get 1.
			p := program(t, cat, "odoo-4")
			require.Equal(t, rules.LayerItem, p.Layer)
			require.Equal(t, 1, p.Priority, "Odoo's sequence")
			require.Equal(t, []string{"11"}, p.When.Products.IDs)
			require.Equal(t, &rules.BuyGet{Buy: 2, Get: 1, Percent: dec.Hundred}, p.Reward.BuyGet)
		}},
		{5, "buy X get Y, another product free", loyalty.OutcomeTranslated, []string{"odoo-5"}, func(t *testing.T, _ loyalty.ProgramReport) {
			p := program(t, cat, "odoo-5")
			require.Equal(t, []string{"13"}, p.When.Products.IDs)
			require.Equal(t, int64(2), p.Reward.BuyGet.Buy)
			require.Equal(t, []string{"14"}, p.Reward.BuyGet.Products.IDs, "Candy, in a pool of its own")
		}},
		{6, "discount on specific products, counted on the same", loyalty.OutcomeTranslated, []string{"odoo-6"}, func(t *testing.T, _ loyalty.ProgramReport) {
			p := program(t, cat, "odoo-6")
			require.Equal(t, rules.LayerItem, p.Layer)
			require.Equal(t, []string{"8"}, p.When.Products.Categories, "Juice and the categories under it")
			require.Equal(t, dp("2"), p.When.MinQty)
			require.Equal(t, rules.RewardPercent, p.Reward.Kind)
			require.Equal(t, dp("20"), p.Reward.Percent)
			require.Equal(t, rules.OnLines, p.Reward.On)
		}},
		{7, "percent on the order with a minimum amount and a cap", loyalty.OutcomeTranslated, []string{"odoo-7"}, func(t *testing.T, _ loyalty.ProgramReport) {
			p := program(t, cat, "odoo-7")
			require.Equal(t, rules.LayerOrder, p.Layer)
			require.Nil(t, p.When.Products)
			require.Equal(t, dp("20"), p.When.MinAmount)
			require.Equal(t, dp("10"), p.Reward.Percent)
			require.Equal(t, rules.OnOrder, p.Reward.On)
			require.Equal(t, dp("50"), p.Reward.Max, "discount_max_amount")
		}},
		{8, "cheapest product", loyalty.OutcomeTranslated, []string{"odoo-8"}, func(t *testing.T, r loyalty.ProgramReport) {
			p := program(t, cat, "odoo-8")
			require.Equal(t, rules.OnCheapest, p.Reward.On)
			require.Equal(t, dp("20"), p.When.MinQty)
			require.Contains(t, r.Differences[0], "before other promotions")
		}},
		{9, "fixed amount, tag, dates, usage limit, one shop", loyalty.OutcomeTranslated, []string{"odoo-9"}, func(t *testing.T, _ loyalty.ProgramReport) {
			p := program(t, cat, "odoo-9")
			require.Equal(t, []string{"1"}, p.When.Products.Tags)
			require.Equal(t, rules.RewardAmount, p.Reward.Kind)
			require.Equal(t, dp("1"), p.Reward.Amount)
			require.Equal(t, "2026-06-01T00:00:00+07:00", p.Valid.From.Format("2006-01-02T15:04:05Z07:00"))
			require.Equal(t, "2026-09-01T00:00:00+07:00", p.Valid.Until.Format("2006-01-02T15:04:05Z07:00"), "31 August included")
			require.Equal(t, int64(100), *p.Limits.TotalUses)
			require.Equal(t, []string{"1"}, p.When.PosConfigs)
		}},
		{10, "discount code", loyalty.OutcomeTranslated, []string{"odoo-10"}, func(t *testing.T, r loyalty.ProgramReport) {
			p := program(t, cat, "odoo-10")
			require.Equal(t, "WELCOME5", p.When.Code)
			require.Equal(t, dp("5"), p.Reward.Amount)
			require.Contains(t, strings.Join(r.Differences, "\n"), "coupon_codes")
		}},
		{11, "coupons: one program per open coupon", loyalty.OutcomeTranslated, []string{"odoo-11-card-3", "odoo-11-card-4"}, func(t *testing.T, r loyalty.ProgramReport) {
			p := program(t, cat, "odoo-11-card-3")
			require.Equal(t, "0440-5935-4882", p.When.Code)
			require.Equal(t, int64(1), *p.Limits.TotalUses, "a coupon is used once")
			require.Equal(t, "2027-01-01T00:00:00+07:00", p.Valid.Until.Format("2006-01-02T15:04:05Z07:00"), "its expiration date included")
			require.Equal(t, dp("15"), p.Reward.Percent)
			require.Contains(t, strings.Join(r.Differences, "\n"), "reserved to a customer", "coupon 4 is Bob's")
		}},
		{12, "next order coupons without engine-issued coupons", loyalty.OutcomePartial, []string{"odoo-12-card-6"}, func(t *testing.T, r loyalty.ProgramReport) {
			require.Equal(t, "0448-3548-4a41", program(t, cat, "odoo-12-card-6").When.Code, "Ann's coupon still works")
			require.Contains(t, r.NotTranslated[0], "issue_coupon")
		}},
		{13, "loyalty: the catalog's points", loyalty.OutcomePartial, []string{"points", "odoo-13-rule-13"}, func(t *testing.T, r loyalty.ProgramReport) {
			// 0.5 point per dollar: per cent, 0.005 point.
			require.Equal(t, int32(2), cat.Points.Decimals)
			require.Equal(t, []rules.EarnRule{{PerAmount: dec.MustParse("0.01"), Points: dec.MustParse("0.005")}}, cat.Points.Earn)
			require.Equal(t, dec.MustParse("0.01"), cat.Points.Redeem.Value, "0.01 per point")
			require.Equal(t, dec.MustParse("100"), cat.Points.Redeem.Min)
			require.Nil(t, cat.Points.Expiry, "Odoo's points never expire")
			bonus := program(t, cat, "odoo-13-rule-13")
			require.Equal(t, rules.RewardBonusPoints, bonus.Reward.Kind)
			require.Equal(t, dp("5"), bonus.Reward.BonusPoints)
			require.Equal(t, dp("50"), bonus.When.MinAmount)
			require.Len(t, r.NotTranslated, 1)
			require.Contains(t, r.NotTranslated[0], "for 200 points")
			require.Contains(t, strings.Join(r.Differences, "\n"), "half up")
		}},
		{14, "gift card", loyalty.OutcomeUntranslated, nil, func(t *testing.T, r loyalty.ProgramReport) {
			require.Contains(t, r.Reason, "means of payment")
		}},
		{15, "eWallet", loyalty.OutcomeUntranslated, nil, func(t *testing.T, r loyalty.ProgramReport) {
			require.Contains(t, r.Reason, "means of payment")
		}},
		{16, "restricted to a pricelist", loyalty.OutcomeUntranslated, nil, func(t *testing.T, r loyalty.ProgramReport) {
			require.Contains(t, r.Reason, `"Wholesale"`)
		}},
		{17, "two rules", loyalty.OutcomeUntranslated, nil, func(t *testing.T, r loyalty.ProgramReport) {
			require.Contains(t, r.Reason, "2 rules")
		}},
		{18, "a product domain", loyalty.OutcomeUntranslated, nil, func(t *testing.T, r loyalty.ProgramReport) {
			require.Contains(t, r.Reason, `list_price`)
		}},
		{19, "archived", loyalty.OutcomeSkipped, nil, func(t *testing.T, r loyalty.ProgramReport) {
			require.Equal(t, "archived in Odoo", r.Reason)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := report(t, imp, tc.id)
			require.Equal(t, tc.outcome, r.Outcome, r.Reason)
			require.Equal(t, tc.ids, r.CatalogIDs)
			tc.check(t, r)
			if tc.outcome == loyalty.OutcomeUntranslated || tc.outcome == loyalty.OutcomeSkipped {
				require.NotEmpty(t, r.Reason)
				require.Contains(t, string(imp.YAML), r.Reason, "listed in the catalog file, never dropped silently")
			}
		})
	}
	require.Len(t, imp.Programs, len(recorded(t).Models[loyalty.ModelProgram]), "every Odoo program is reported")
}

// mutate changes one field of one record of the snapshot, as Odoo would
// answer it (JSON).
func mutate(t *testing.T, s *loyalty.Snapshot, model string, id int64, field, value string) {
	t.Helper()
	for _, r := range s.Models[model] {
		if r.ID() == id {
			r[field] = json.RawMessage(value)
			return
		}
	}
	t.Fatalf("%s %d not in the snapshot", model, id)
}

// TestTranslateVariants changes one thing of a recorded program at a time:
// how the rule's points, the reward's kind and its products translate.
func TestTranslateVariants(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		edit    func(t *testing.T, s *loyalty.Snapshot)
		program int64
		outcome string
		check   func(t *testing.T, imp *loyalty.Import, r loyalty.ProgramReport)
	}{
		{"points per unit: the minimum quantity the reward needs", func(t *testing.T, s *loyalty.Snapshot) {
			// 10 % over $20 becomes: 1 point per unit, the reward needs 3.
			mutate(t, s, loyalty.ModelRule, 7, "reward_point_mode", `"unit"`)
			mutate(t, s, loyalty.ModelRule, 7, "minimum_amount", `0.0`)
			mutate(t, s, loyalty.ModelReward, 7, "required_points", `3.0`)
		}, 7, loyalty.OutcomeTranslated, func(t *testing.T, imp *loyalty.Import, _ loyalty.ProgramReport) {
			require.Equal(t, dp("3"), program(t, imp.Catalog, "odoo-7").When.MinQty)
		}},
		{"points per amount: the minimum amount the reward needs", func(t *testing.T, s *loyalty.Snapshot) {
			// 0.3 point per dollar, 10 points needed: $33.34 at least.
			mutate(t, s, loyalty.ModelRule, 7, "reward_point_mode", `"money"`)
			mutate(t, s, loyalty.ModelRule, 7, "reward_point_amount", `0.3`)
			mutate(t, s, loyalty.ModelReward, 7, "required_points", `10.0`)
		}, 7, loyalty.OutcomeTranslated, func(t *testing.T, imp *loyalty.Import, _ loyalty.ProgramReport) {
			require.Equal(t, dp("33.34"), program(t, imp.Catalog, "odoo-7").When.MinAmount)
		}},
		{"points per order below what the reward needs", func(t *testing.T, s *loyalty.Snapshot) {
			mutate(t, s, loyalty.ModelReward, 7, "required_points", `2.0`)
		}, 7, loyalty.OutcomeUntranslated, func(t *testing.T, _ *loyalty.Import, r loyalty.ProgramReport) {
			require.Contains(t, r.Reason, "no single order gets it")
		}},
		{"minimum amount without taxes", func(t *testing.T, s *loyalty.Snapshot) {
			mutate(t, s, loyalty.ModelRule, 7, "minimum_amount_tax_mode", `"excl"`)
		}, 7, loyalty.OutcomeTranslated, func(t *testing.T, _ *loyalty.Import, r loyalty.ProgramReport) {
			require.Contains(t, strings.Join(r.Differences, "\n"), "without taxes")
		}},
		{"fixed amount on the order", func(t *testing.T, s *loyalty.Snapshot) {
			mutate(t, s, loyalty.ModelReward, 7, "discount_mode", `"per_order"`)
			mutate(t, s, loyalty.ModelReward, 7, "discount", `7.5`)
		}, 7, loyalty.OutcomeTranslated, func(t *testing.T, imp *loyalty.Import, _ loyalty.ProgramReport) {
			p := program(t, imp.Catalog, "odoo-7")
			require.Equal(t, rules.RewardAmount, p.Reward.Kind)
			require.Equal(t, dp("7.5"), p.Reward.Amount)
			require.Equal(t, rules.LayerOrder, p.Layer)
		}},
		{"a discount per point outside the loyalty program", func(t *testing.T, s *loyalty.Snapshot) {
			mutate(t, s, loyalty.ModelReward, 7, "discount_mode", `"per_point"`)
		}, 7, loyalty.OutcomeUntranslated, func(t *testing.T, _ *loyalty.Import, r loyalty.ProgramReport) {
			require.Contains(t, r.Reason, "per point")
		}},
		{"specific products on a rule counting the whole order", func(t *testing.T, s *loyalty.Snapshot) {
			mutate(t, s, loyalty.ModelReward, 7, "discount_applicability", `"specific"`)
			mutate(t, s, loyalty.ModelReward, 7, "discount_product_ids", `[11]`)
		}, 7, loyalty.OutcomeUntranslated, func(t *testing.T, _ *loyalty.Import, r loyalty.ProgramReport) {
			require.Contains(t, r.Reason, "counts the whole order")
		}},
		{"specific products on a rule without a minimum", func(t *testing.T, s *loyalty.Snapshot) {
			mutate(t, s, loyalty.ModelRule, 7, "minimum_amount", `0.0`)
			mutate(t, s, loyalty.ModelReward, 7, "discount_applicability", `"specific"`)
			mutate(t, s, loyalty.ModelReward, 7, "discount_product_ids", `[11, 13]`)
		}, 7, loyalty.OutcomeTranslated, func(t *testing.T, imp *loyalty.Import, _ loyalty.ProgramReport) {
			p := program(t, imp.Catalog, "odoo-7")
			require.Equal(t, []string{"11", "13"}, p.When.Products.IDs)
			require.Equal(t, rules.LayerItem, p.Layer)
			require.Equal(t, rules.OnLines, p.Reward.On)
		}},
		{"specific products other than the rule's", func(t *testing.T, s *loyalty.Snapshot) {
			mutate(t, s, loyalty.ModelReward, 6, "discount_product_category_id", `[9, "All / Saleable / Snacks"]`)
		}, 6, loyalty.OutcomeUntranslated, func(t *testing.T, _ *loyalty.Import, r loyalty.ProgramReport) {
			require.Contains(t, r.Reason, "other products than rule 6 counts")
		}},
		{"cheapest among the rule's products", func(t *testing.T, s *loyalty.Snapshot) {
			mutate(t, s, loyalty.ModelRule, 8, "product_ids", `[11, 13]`)
		}, 8, loyalty.OutcomeTranslated, func(t *testing.T, _ *loyalty.Import, r loyalty.ProgramReport) {
			require.Contains(t, strings.Join(r.Differences, "\n"), "cheapest unit of the whole order")
		}},
		{"several rewards", func(t *testing.T, s *loyalty.Snapshot) {
			mutate(t, s, loyalty.ModelProgram, 7, "reward_ids", `[7, 8]`)
		}, 7, loyalty.OutcomeUntranslated, func(t *testing.T, _ *loyalty.Import, r loyalty.ProgramReport) {
			require.Contains(t, r.Reason, "the cashier chooses")
		}},
		{"a free product chosen among a tag", func(t *testing.T, s *loyalty.Snapshot) {
			mutate(t, s, loyalty.ModelReward, 4, "reward_product_tag_id", `[1, "Summer"]`)
		}, 4, loyalty.OutcomeUntranslated, func(t *testing.T, _ *loyalty.Import, r loyalty.ProgramReport) {
			require.Contains(t, r.Reason, "chosen at the till")
		}},
		{"a free product for points per order", func(t *testing.T, s *loyalty.Snapshot) {
			mutate(t, s, loyalty.ModelRule, 4, "reward_point_mode", `"order"`)
		}, 4, loyalty.OutcomeUntranslated, func(t *testing.T, _ *loyalty.Import, r loyalty.ProgramReport) {
			require.Contains(t, r.Reason, "counts units bought")
		}},
		{"buy 2 get 2", func(t *testing.T, s *loyalty.Snapshot) {
			mutate(t, s, loyalty.ModelReward, 4, "reward_product_qty", `2`)
		}, 4, loyalty.OutcomeTranslated, func(t *testing.T, imp *loyalty.Import, r loyalty.ProgramReport) {
			require.Equal(t, int64(2), program(t, imp.Catalog, "odoo-4").Reward.BuyGet.Get)
			require.Contains(t, strings.Join(r.Differences, "\n"), "part of a set")
		}},
		{"a free product in the rule's category", func(t *testing.T, s *loyalty.Snapshot) {
			// Buy 2 of Snacks, a Candy (a snack) free: same pool, but not
			// only Candy counts.
			mutate(t, s, loyalty.ModelRule, 5, "product_ids", `[]`)
			mutate(t, s, loyalty.ModelRule, 5, "product_category_id", `[9, "All / Saleable / Snacks"]`)
		}, 5, loyalty.OutcomeTranslated, func(t *testing.T, imp *loyalty.Import, r loyalty.ProgramReport) {
			require.Nil(t, program(t, imp.Catalog, "odoo-5").Reward.BuyGet.Products, "the qualifying lines")
			require.Contains(t, strings.Join(r.Differences, "\n"), "Candy free")
		}},
		{"usage limit partly used in Odoo", func(t *testing.T, s *loyalty.Snapshot) {
			mutate(t, s, loyalty.ModelProgram, 9, "total_order_count", `37`)
		}, 9, loyalty.OutcomeTranslated, func(t *testing.T, imp *loyalty.Import, r loyalty.ProgramReport) {
			require.Equal(t, int64(63), *program(t, imp.Catalog, "odoo-9").Limits.TotalUses)
			require.Contains(t, strings.Join(r.Differences, "\n"), "37 of its 100")
		}},
		{"usage limit used up", func(t *testing.T, s *loyalty.Snapshot) {
			mutate(t, s, loyalty.ModelProgram, 9, "total_order_count", `100`)
		}, 9, loyalty.OutcomeUntranslated, func(t *testing.T, _ *loyalty.Import, r loyalty.ProgramReport) {
			require.Contains(t, r.Reason, "used up")
		}},
		{"not offered in the POS", func(t *testing.T, s *loyalty.Snapshot) {
			mutate(t, s, loyalty.ModelProgram, 7, "pos_ok", `false`)
		}, 7, loyalty.OutcomeSkipped, func(t *testing.T, _ *loyalty.Import, r loyalty.ProgramReport) {
			require.Contains(t, r.Reason, "Point of Sale")
		}},
		{"the default sellable-products domain is every product", func(t *testing.T, s *loyalty.Snapshot) {
			mutate(t, s, loyalty.ModelRule, 7, "product_domain", `"[('sale_ok', '=', True)]"`)
		}, 7, loyalty.OutcomeTranslated, func(t *testing.T, imp *loyalty.Import, _ loyalty.ProgramReport) {
			require.Nil(t, program(t, imp.Catalog, "odoo-7").When.Products)
		}},
		{"an expired coupon is not imported", func(t *testing.T, s *loyalty.Snapshot) {
			mutate(t, s, loyalty.ModelCard, 3, "expiration_date", `"2026-12-01"`)
		}, 11, loyalty.OutcomeTranslated, func(t *testing.T, imp *loyalty.Import, r loyalty.ProgramReport) {
			require.Equal(t, []string{"odoo-11-card-4"}, r.CatalogIDs)
		}},
		{"loyalty points per unit and per amount on some products", func(t *testing.T, s *loyalty.Snapshot) {
			mutate(t, s, loyalty.ModelRule, 13, "reward_point_mode", `"unit"`)
			mutate(t, s, loyalty.ModelRule, 12, "product_ids", `[11]`)
		}, 13, loyalty.OutcomePartial, func(t *testing.T, imp *loyalty.Import, r loyalty.ProgramReport) {
			require.Empty(t, imp.Catalog.Points.Earn)
			require.Len(t, r.NotTranslated, 3, "two rules and a reward")
			require.Equal(t, []string{"points"}, r.CatalogIDs)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := recorded(t)
			tc.edit(t, s)
			imp := translate(t, s, loyalty.Options{})
			r := report(t, imp, tc.program)
			require.Equal(t, tc.outcome, r.Outcome, r.Reason)
			tc.check(t, imp, r)
		})
	}
}

func TestTranslateOptions(t *testing.T) {
	t.Parallel()
	t.Run("the coupon limit lists what it leaves out", func(t *testing.T) {
		t.Parallel()
		imp := translate(t, recorded(t), loyalty.Options{MaxCouponCodes: 1})
		r := report(t, imp, 11)
		require.Equal(t, loyalty.OutcomePartial, r.Outcome)
		require.Equal(t, []string{"odoo-11-card-3"}, r.CatalogIDs)
		require.Contains(t, r.NotTranslated[0], "1 open coupon(s) over the limit")
		require.Contains(t, strings.Join(report(t, imp, 12).NotTranslated, "\n"), "1 open coupon(s) over the limit")
	})
	t.Run("no coupon at all", func(t *testing.T) {
		t.Parallel()
		imp := translate(t, recorded(t), loyalty.Options{MaxCouponCodes: -1})
		require.Empty(t, report(t, imp, 11).CatalogIDs)
		require.Equal(t, loyalty.OutcomeUntranslated, report(t, imp, 12).Outcome, "no issuing, no coupon")
	})
	t.Run("time zone", func(t *testing.T) {
		t.Parallel()
		imp := translate(t, recorded(t), loyalty.Options{Timezone: "Europe/Brussels"})
		require.Equal(t, "Europe/Brussels", imp.Catalog.Timezone)
		require.Equal(t, "2026-09-01T00:00:00+02:00", program(t, imp.Catalog, "odoo-9").Valid.Until.Format("2006-01-02T15:04:05Z07:00"))
		s := recorded(t)
		mutate(t, s, loyalty.ModelUser, s.UID, "tz", "false")
		imp = translate(t, s, loyalty.Options{})
		require.Equal(t, "UTC", imp.Catalog.Timezone)
		require.Contains(t, imp.Notes[0], "no time zone")
		_, err := loyalty.Translate(recorded(t), loyalty.Options{Timezone: "Mars/Olympus"})
		require.Error(t, err)
	})
	t.Run("another loyalty program is listed", func(t *testing.T) {
		t.Parallel()
		imp := translate(t, recorded(t), loyalty.Options{LoyaltyProgram: 99})
		require.Nil(t, imp.Catalog.Points.Redeem, "no points section")
		require.Equal(t, loyalty.OutcomeUntranslated, report(t, imp, 13).Outcome)
	})
	t.Run("engine-issued coupons", func(t *testing.T) {
		t.Parallel()
		if !loyalty.SupportsIssuedCoupons() {
			t.Skip("this engine's catalog has no issue_coupon yet (SPEC §6.10)")
		}
		imp := translate(t, recorded(t), loyalty.Options{IssuedCoupons: true, CouponValidDays: 45})
		r := report(t, imp, 12)
		require.Equal(t, loyalty.OutcomeTranslated, r.Outcome)
		require.Equal(t, []string{"odoo-12", "odoo-12-issue", "odoo-12-card-6"}, r.CatalogIDs)
		require.Contains(t, string(imp.YAML), "valid_days: 45")
	})
	t.Run("another company's currency is skipped", func(t *testing.T) {
		t.Parallel()
		s := recorded(t)
		mutate(t, s, loyalty.ModelProgram, 7, "currency_id", `[2, "EUR"]`)
		s.Models[loyalty.ModelCurrency] = append(s.Models[loyalty.ModelCurrency], odoo.Record{"id": json.RawMessage("2"),
			"name": json.RawMessage(`"EUR"`), "decimal_places": json.RawMessage("2")})
		imp := translate(t, s, loyalty.Options{})
		r := report(t, imp, 7)
		require.Equal(t, loyalty.OutcomeSkipped, r.Outcome)
		require.Contains(t, r.Reason, "EUR")
	})
}

func TestProgramOf(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]int64{"odoo-12": 12, "odoo-12-card-40": 12, "odoo-3-rule-7": 3, "odoo-5-issue": 5,
		"points": 0, "odoo-": 0, "odoo-x": 0, "bev-weekend": 0, "odoo--1": 0} {
		require.Equal(t, want, loyalty.ProgramOf(id), id)
	}
	require.Equal(t, "odoo-42", loyalty.CatalogProgramID(42))
	require.True(t, slices.Contains([]bool{true, false}, loyalty.SupportsIssuedCoupons()))
}
