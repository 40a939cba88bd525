package rules

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/events"
)

// benchCatalog is a realistic catalog of 50 programs: 35 item programs
// (category and tag percentages, cheapest units, buy-get sets, amounts,
// coupon and level gated ones, some out of their window) and 15 order
// programs (thresholds, coupons, points multipliers and bonuses), a third of
// them with limits.
var benchCatalog = func() string {
	var b strings.Builder
	b.WriteString(`currency: IDR
money_decimals: 0
timezone: Asia/Jakarta
points:
  earn: [{per_amount: "10000", points: "1"}]
  expiry: {months: 12}
  redeem: {value: "1", min: "100", max_share: "0.5"}
membership:
  default_path: default
  paths:
    - id: default
      qualify: {window_days: 365}
      retention_days: 365
      levels:
        - {id: classic, min: "0"}
        - {id: silver, min: "2000000", discount_percent: "2", points_multiplier: "1.25"}
        - {id: gold, min: "10000000", discount_percent: "5", points_multiplier: "1.5"}
programs:
`)
	for i := range 35 {
		cat := fmt.Sprintf("c%d", i%8)
		tag := fmt.Sprintf("t%d", i%5)
		fmt.Fprintf(&b, "  - id: item-%02d\n    layer: item\n    priority: %d\n", i, i%7)
		switch i % 7 {
		case 0:
			fmt.Fprintf(&b, "    when: {products: {categories: [%s]}, min_qty: \"2\"}\n    reward: {percent: \"10\", max: \"20000\"}\n", cat)
		case 1:
			fmt.Fprintf(&b, "    when: {products: {tags: [%s], categories: [%s]}}\n    reward: {percent: \"50\", on: cheapest}\n", tag, cat)
		case 2:
			fmt.Fprintf(&b, "    when: {products: {tags: [%s]}}\n    reward: {buy_get: {buy: 2, get: 1, percent: \"50\"}}\n", tag)
		case 3:
			fmt.Fprintf(&b, "    when: {products: {ids: [\"p%d\", \"p%d\"]}, min_amount: \"50000\"}\n    reward: {amount: \"5000\"}\n", i%10, (i+3)%10)
		case 4:
			fmt.Fprintf(&b, "    when: {code: ITEM%d, products: {categories: [%s]}}\n    reward: {percent: \"15\"}\n", i, cat)
		case 5:
			fmt.Fprintf(&b, "    valid: {days: [sat, sun], hours: [\"10:00\", \"14:00\"]}\n    when: {products: {categories: [%s]}}\n    reward: {percent: \"5\"}\n", cat)
		case 6:
			fmt.Fprintf(&b, "    when: {levels: [silver, gold], products: {tags: [%s]}}\n    limits: {total_uses: 1000, budget: \"1000000\"}\n    reward: {percent: \"3\"}\n", tag)
		}
	}
	for i := range 15 {
		fmt.Fprintf(&b, "  - id: order-%02d\n    layer: order\n    priority: %d\n", i, i%4)
		switch i % 5 {
		case 0:
			fmt.Fprintf(&b, "    when: {min_amount: \"%d\"}\n    reward: {amount: \"%d\"}\n", 100000*(i+1), 5000*(i+1))
		case 1:
			fmt.Fprintf(&b, "    when: {code: SAVE%d}\n    limits: {uses_per_customer: 1}\n    reward: {percent: \"10\", max: \"25000\"}\n", i)
		case 2:
			b.WriteString("    valid: {from: \"2026-01-01T00:00:00+07:00\", until: \"2027-01-01T00:00:00+07:00\"}\n    reward: {points_multiplier: \"2\"}\n")
		case 3:
			b.WriteString("    when: {min_qty: \"5\"}\n    limits: {total_uses: 100}\n    reward: {bonus_points: \"10\"}\n")
		case 4:
			fmt.Fprintf(&b, "    when: {companies: [\"1\"], pos_configs: [\"3\"], min_amount: \"200000\"}\n    reward: {percent: \"%d\"}\n", 1+i%3)
		}
	}
	return b.String()
}()

// benchOrder is ten lines spread over the catalog's categories and tags.
func benchOrder() *events.PaidOrder {
	o := &events.PaidOrder{ID: "1", Currency: "IDR", CustomerID: "77", CouponCodes: []string{"save1", "ITEM4"}}
	for i := range 10 {
		o.Lines = append(o.Lines, events.Line{
			ID:          events.ID(fmt.Sprint(i + 1)),
			ProductID:   events.ID(fmt.Sprintf("p%d", i)),
			CategoryIDs: events.IDs{events.ID(fmt.Sprintf("c%d", i%8))},
			TagIDs:      events.IDs{events.ID(fmt.Sprintf("t%d", i%5)), "all"},
			Qty:         dec.FromInt(int64(1 + i%3)),
			UnitPrice:   dec.FromInt(int64(5000 + 2500*i)),
		})
	}
	return o
}

func BenchmarkQuote(b *testing.B) {
	c, err := Parse([]byte(benchCatalog))
	if err != nil {
		b.Fatal(err)
	}
	in := Input{
		OccurredAt: time.Date(2026, 11, 28, 11, 0, 0, 0, c.Location), // a Saturday, inside 10:00–14:00
		CompanyID:  "1", PosConfigID: "3",
		Order:    benchOrder(),
		Customer: &Customer{ID: "77", Path: "default", Level: "silver", Balance: dec.FromInt(5000)},
	}
	redeem := dec.FromInt(500)
	in.Order.RedeemPoints = &redeem
	b.ReportAllocs()
	// Each evaluation is timed too: SPEC §10's target is a p99.
	took := make([]time.Duration, 0, 1<<16)
	for b.Loop() {
		start := time.Now()
		o, err := Evaluate(c, in, Unlimited{})
		took = append(took, time.Since(start))
		if err != nil || o.Rejection != nil {
			b.Fatal(err, o.Rejection)
		}
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)*99/100].Nanoseconds()), "p99-ns")
}
