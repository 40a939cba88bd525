package rules

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"reflect"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/events"
)

// Property tests: random catalogs and orders, checked against what must
// hold whatever the numbers (SPEC §4 and §6).

var (
	productIDs = []string{"p0", "p1", "p2", "p3", "p4"}
	categories = []string{"c0", "c1", "c2"}
	tags       = []string{"t0", "t1", "t2"}
)

// drawDecimal draws a decimal in [lo, hi] with up to places decimals.
func drawDecimal(t *rapid.T, label string, lo, hi int64, places int32) string {
	units := rapid.Int64Range(lo, hi).Draw(t, label)
	if places == 0 {
		return fmt.Sprint(units)
	}
	frac := rapid.Int64Range(0, pow10Int(places)-1).Draw(t, label+"_frac")
	if units == hi {
		frac = 0
	}
	return dec.Add(dec.FromInt(units), dec.Mul(dec.FromInt(frac), dec.Quantum(places))).String()
}

func pow10Int(n int32) int64 {
	p := int64(1)
	for range n {
		p *= 10
	}
	return p
}

func drawFilter(t *rapid.T, label string) map[string]any {
	f := map[string]any{}
	for f["ids"] == nil && f["categories"] == nil && f["tags"] == nil {
		if rapid.Bool().Draw(t, label+"_has_ids") {
			f["ids"] = rapid.SliceOfNDistinct(rapid.SampledFrom(productIDs), 1, 2, rapid.ID[string]).Draw(t, label+"_ids")
		}
		if rapid.Bool().Draw(t, label+"_has_categories") {
			f["categories"] = rapid.SliceOfNDistinct(rapid.SampledFrom(categories), 1, 2, rapid.ID[string]).Draw(t, label+"_categories")
		}
		if rapid.Bool().Draw(t, label+"_has_tags") {
			f["tags"] = rapid.SliceOfNDistinct(rapid.SampledFrom(tags), 1, 2, rapid.ID[string]).Draw(t, label+"_tags")
		}
	}
	return f
}

// drawCatalog draws a valid catalog. Without filters every program sees
// every line (no when.products, no separate buy_get pool).
func drawCatalog(t *rapid.T, filters bool) *Catalog {
	places := int32(rapid.IntRange(0, 3).Draw(t, "money_decimals"))
	doc := map[string]any{
		"currency": "IDR", "money_decimals": places, "timezone": "Asia/Jakarta",
		"points": map[string]any{
			"decimals": rapid.IntRange(0, 2).Draw(t, "points_decimals"),
			"earn":     []any{map[string]any{"per_amount": drawDecimal(t, "per_amount", 1, 20000, 0), "points": drawDecimal(t, "earn_points", 0, 5, 1)}},
			"redeem": map[string]any{
				"value": drawDecimal(t, "redeem_value", 1, 100, 2), "min": drawDecimal(t, "redeem_min", 0, 20, 0),
				"max_share": rapid.SampledFrom([]string{"0.1", "0.5", "1"}).Draw(t, "max_share"),
			},
		},
		"membership": map[string]any{
			"default_path": "default",
			"paths": []any{map[string]any{
				"id": "default", "qualify": map[string]any{"window_days": 365}, "retention_days": 365,
				"levels": []any{
					map[string]any{"id": "classic", "min": "0"},
					map[string]any{"id": "silver", "min": "1000", "discount_percent": drawDecimal(t, "silver_percent", 1, 100, 1), "points_multiplier": "1.5"},
				},
			}},
		},
	}
	programs := []any{}
	for i := range rapid.IntRange(0, 8).Draw(t, "programs") {
		label := fmt.Sprintf("p%d", i)
		layer := rapid.SampledFrom([]string{LayerItem, LayerOrder}).Draw(t, label+"_layer")
		p := map[string]any{
			"id": label, "layer": layer,
			"priority":  rapid.IntRange(0, 3).Draw(t, label+"_priority"),
			"exclusive": rapid.Bool().Draw(t, label+"_exclusive"),
		}
		when := map[string]any{}
		if filters && rapid.Bool().Draw(t, label+"_filtered") {
			when["products"] = drawFilter(t, label)
		}
		if rapid.Bool().Draw(t, label+"_has_min_qty") {
			when["min_qty"] = drawDecimal(t, label+"_min_qty", 0, 6, 1)
		}
		if rapid.Bool().Draw(t, label+"_has_min_amount") {
			when["min_amount"] = drawDecimal(t, label+"_min_amount", 0, 200000, places)
		}
		if rapid.IntRange(0, 4).Draw(t, label+"_gated") == 0 {
			when["code"] = "CODE"
		}
		if rapid.IntRange(0, 4).Draw(t, label+"_leveled") == 0 {
			when["levels"] = []any{"silver"}
		}
		p["when"] = when

		kinds := []string{RewardPercent, RewardAmount, RewardPointsMultiplier, RewardBonusPoints}
		if layer == LayerItem {
			kinds = append(kinds, RewardBuyGet, RewardBuyGet)
		}
		reward := map[string]any{}
		kind := rapid.SampledFrom(kinds).Draw(t, label+"_kind")
		switch kind {
		case RewardPercent:
			reward["percent"] = drawDecimal(t, label+"_percent", 1, 100, 2)
		case RewardAmount:
			reward["amount"] = drawDecimal(t, label+"_amount", 0, 50000, places+1)
		case RewardBuyGet:
			bg := map[string]any{"buy": rapid.IntRange(1, 3).Draw(t, label+"_buy"), "get": rapid.IntRange(1, 2).Draw(t, label+"_get")}
			if rapid.Bool().Draw(t, label+"_bg_percent") {
				bg["percent"] = drawDecimal(t, label+"_bg_pct", 1, 100, 0)
			}
			if filters && rapid.Bool().Draw(t, label+"_bg_pool") {
				bg["products"] = drawFilter(t, label+"_pool")
			}
			reward["buy_get"] = bg
		case RewardPointsMultiplier:
			reward["points_multiplier"] = drawDecimal(t, label+"_mult", 1, 3, 1)
		case RewardBonusPoints:
			reward["bonus_points"] = drawDecimal(t, label+"_bonus", 1, 50, 0)
		}
		if (kind == RewardPercent || kind == RewardAmount) && layer == LayerItem && rapid.Bool().Draw(t, label+"_cheapest") {
			reward["on"] = OnCheapest
		}
		if (kind == RewardPercent || kind == RewardAmount || kind == RewardBuyGet) && rapid.Bool().Draw(t, label+"_has_max") {
			reward["max"] = drawDecimal(t, label+"_max", 0, 30000, places)
		}
		p["reward"] = reward
		if rapid.IntRange(0, 3).Draw(t, label+"_limited") == 0 {
			limits := map[string]any{"total_uses": 10}
			if kind != RewardPointsMultiplier && kind != RewardBonusPoints {
				limits["budget"] = drawDecimal(t, label+"_budget", 0, 20000, places)
			}
			p["limits"] = limits
		}
		programs = append(programs, p)
	}
	doc["programs"] = programs
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(b)
	if err != nil {
		t.Fatalf("drawn catalog refused: %v\n%s", err, b)
	}
	return c
}

func drawInput(t *rapid.T, c *Catalog) Input {
	n := rapid.IntRange(1, 8).Draw(t, "lines")
	o := &events.PaidOrder{ID: "1", Currency: "IDR"}
	for i := range n {
		label := fmt.Sprintf("line%d", i)
		l := events.Line{
			ID:        events.ID(fmt.Sprint(i + 1)),
			ProductID: events.ID(rapid.SampledFrom(productIDs).Draw(t, label+"_product")),
			Qty:       dec.MustParse(rapid.SampledFrom([]string{"1", "2", "3", "5", "0.5", "1.5", "2.25", "0.001", "12"}).Draw(t, label+"_qty")),
			UnitPrice: dec.MustParse(drawDecimal(t, label+"_price", 0, 60000, c.MoneyDecimals+1)),
		}
		for _, cat := range rapid.SliceOfNDistinct(rapid.SampledFrom(categories), 0, 2, rapid.ID[string]).Draw(t, label+"_categories") {
			l.CategoryIDs = append(l.CategoryIDs, events.ID(cat))
		}
		for _, tag := range rapid.SliceOfNDistinct(rapid.SampledFrom(tags), 0, 2, rapid.ID[string]).Draw(t, label+"_tags") {
			l.TagIDs = append(l.TagIDs, events.ID(tag))
		}
		o.Lines = append(o.Lines, l)
	}
	if rapid.Bool().Draw(t, "coupon") {
		o.CouponCodes = []string{"code"}
	}
	in := Input{OccurredAt: time.Date(2026, 11, 24, 10, 0, 0, 0, c.Location), CompanyID: "1", PosConfigID: "1", Order: o}
	if rapid.Bool().Draw(t, "customer") {
		in.Customer = &Customer{
			ID: "c1", Path: "default",
			Level:   rapid.SampledFrom([]string{"", "classic", "silver"}).Draw(t, "level"),
			Balance: dec.FromInt(rapid.Int64Range(0, 500).Draw(t, "balance")),
		}
		o.CustomerID = "c1"
	}
	if rapid.IntRange(0, 2).Draw(t, "redeems") == 0 {
		pts := dec.FromInt(rapid.Int64Range(0, 300).Draw(t, "redeem_points"))
		o.RedeemPoints = &pts
	}
	return in
}

// hashedLimits answers from a hash of the program id: deterministic, with
// some programs out of uses and some budgets nearly spent.
type hashedLimits struct{}

func (hashedLimits) Remaining(p *Program, _ string) (Remaining, error) {
	h := fnv.New32a()
	h.Write([]byte(p.ID))
	n := h.Sum32()
	r := Remaining{UsesLeft: n%5 != 0}
	if p.Limits.Budget != nil {
		b := dec.Mul(*p.Limits.Budget, dec.MustParse(fmt.Sprintf("0.%d", n%10)))
		r.Budget = &b
	}
	return r, nil
}

// Per line gross − discount = net, no net below zero, totals are the sums
// of the lines and of the discounts, amounts carry the money decimals.
func TestPropertyInvariants(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		c := drawCatalog(t, true)
		in := drawInput(t, c)
		o, err := Evaluate(c, in, hashedLimits{})
		if err != nil {
			t.Fatal(err)
		}
		checkInvariants(t, c, o)
		if o.Rejection == nil && !o.RedeemValue.IsZero() {
			share := dec.Mul(c.Points.Redeem.MaxShare, dec.Add(o.Totals.Net, o.RedeemValue))
			if o.RedeemValue.Greater(share.Round(c.MoneyDecimals)) {
				t.Fatalf("redeemed %s, over max_share of the net before points %s", o.RedeemValue, share)
			}
		}
	})
}

// The same input gives a deep-equal outcome.
func TestPropertyDeterministic(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		c := drawCatalog(t, true)
		in := drawInput(t, c)
		first, err := Evaluate(c, in, hashedLimits{})
		if err != nil {
			t.Fatal(err)
		}
		again, err := Evaluate(c, in, hashedLimits{})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(first, again) {
			t.Fatalf("two evaluations differ:\n%s\n%s", dump(first), dump(again))
		}
	})
}

// Permuting the lines does not change the totals, the points or the
// rejection. The catalogs here have no product filters: ties (cheapest
// units, allocation remainders) go to the earlier line by contract, so a
// permutation may move one quantum from one line to another, and a later
// program whose filter tells those lines apart would then see a different
// base. Without filters every program sees the sum, which no tie moves.
func TestPropertyLineOrderDoesNotChangeTotals(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		c := drawCatalog(t, false)
		in := drawInput(t, c)
		o, err := Evaluate(c, in, hashedLimits{})
		if err != nil {
			t.Fatal(err)
		}
		permuted := *in.Order
		permuted.Lines = rapid.Permutation(in.Order.Lines).Draw(t, "permutation")
		in.Order = &permuted
		p, err := Evaluate(c, in, hashedLimits{})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(o.Totals, p.Totals) || !o.Earned.Equal(p.Earned) || !reflect.DeepEqual(o.Rejection, p.Rejection) {
			t.Fatalf("permuted lines changed the outcome:\n%s\n%s", dump(o), dump(p))
		}
	})
}

// Allocate's shares sum to the total and stay within one quantum of their
// exact proportion.
func TestPropertyAllocate(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		places := int32(rapid.IntRange(0, 4).Draw(t, "places"))
		weights := make([]dec.Decimal, rapid.IntRange(1, 10).Draw(t, "n"))
		sum := dec.Zero
		for i := range weights {
			weights[i] = dec.MustParse(drawDecimal(t, fmt.Sprintf("w%d", i), 0, 1000000, 6))
			sum = dec.Add(sum, weights[i])
		}
		total := dec.MustParse(drawDecimal(t, "total", 0, 2000000, places))
		shares := Allocate(total, weights, places)
		if sum.IsZero() {
			for _, s := range shares {
				if !s.IsZero() {
					t.Fatalf("share %s with no weight", s)
				}
			}
			return
		}
		got := dec.Zero
		quantum := dec.Quantum(places)
		for i, s := range shares {
			if s.Places() != places {
				t.Fatalf("share %s has not %d decimals", s, places)
			}
			exact := dec.Quo(dec.Mul(total, weights[i]), sum)
			if dec.Sub(s, exact).GreaterEq(quantum) || dec.Sub(exact, s).GreaterEq(quantum) {
				t.Fatalf("share %s is a quantum or more from its exact %s", s, exact)
			}
			got = dec.Add(got, s)
		}
		if !got.Equal(total) {
			t.Fatalf("shares sum to %s, not %s", got, total)
		}
	})
}
