package rules

import (
	"errors"
	"testing"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/events"
)

func runCases(t *testing.T, cases []evalCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t)
		})
	}
}

// SPEC §6.1: gross = qty × unit_price rounded half up to money decimals.
func TestEvaluateGross(t *testing.T) {
	t.Parallel()
	runCases(t, []evalCase{
		{
			name: "0 decimals, half up",
			// 1 × 0.5 = 0.5 → 1 (half even would give 0); 1.5 × 333 = 499.5 → 500.
			lines:     []events.Line{ln("1", "1", "0.5"), ln("2", "1.5", "333")},
			wantLines: []string{"1 1 0 1", "2 500 0 500"},
		},
		{
			name: "2 decimals, half up", places: 2,
			// 1 × 2.345 → 2.35 (half even: 2.34); 3 × 1.005 = 3.015 → 3.02; 2 × 5 = 10.00.
			lines:     []events.Line{ln("1", "1", "2.345"), ln("2", "3", "1.005"), ln("3", "2", "5")},
			wantLines: []string{"1 2.35 0.00 2.35", "2 3.02 0.00 3.02", "3 10.00 0.00 10.00"},
		},
		{
			name: "fractional qty", places: 2,
			// 1.5 kg × 19990.55 = 29985.825 → 29985.83.
			lines:     []events.Line{ln("1", "1.5", "19990.55")},
			wantLines: []string{"1 29985.83 0.00 29985.83"},
		},
	})
}

// SPEC §6.3: one total — raw, capped at max, capped at the target's net,
// rounded half up — allocated by largest remainder, ties to the earlier line.
func TestEvaluateDiscountTotalAndAllocation(t *testing.T) {
	t.Parallel()
	runCases(t, []evalCase{
		{
			name: "percent rounds half up, 0 decimals",
			// 10% of 25 = 2.5 → 3.
			programs:      `  - {id: p, layer: item, reward: {percent: "10"}}`,
			lines:         []events.Line{ln("1", "1", "25")},
			wantLines:     []string{"1 25 3 22"},
			wantDiscounts: []string{"item p 1 3"},
			wantTrace:     []string{"p applied: 10% of the qualifying lines (25): 3"},
		},
		{
			name: "percent rounds half up, 2 decimals", places: 2,
			// 15% of 2.30 = 0.345 → 0.35.
			programs:  `  - {id: p, layer: item, reward: {percent: "15"}}`,
			lines:     []events.Line{ln("1", "1", "2.30")},
			wantLines: []string{"1 2.30 0.35 1.95"},
		},
		{
			name: "max caps the total",
			// 20% of 100000 = 20000 > max 15000 → 15000, split 60000:40000 → 9000, 6000.
			programs:      `  - {id: p, layer: item, reward: {percent: "20", max: "15000"}}`,
			lines:         []events.Line{ln("1", "1", "60000"), ln("2", "2", "20000")},
			wantDiscounts: []string{"item p 1 9000", "item p 2 6000"},
			wantTrace:     []string{"p applied: capped at max 15000: 15000"},
		},
		{
			name: "amount is capped at the target's net",
			// 50000 off the qualifying line of 30000 → 30000; line 2 does not qualify.
			programs:      `  - {id: p, layer: item, when: {products: {categories: [x]}}, reward: {amount: "50000"}}`,
			lines:         []events.Line{ln("1", "1", "30000", "c:x"), ln("2", "1", "20000")},
			wantLines:     []string{"1 30000 30000 0", "2 20000 0 20000"},
			wantDiscounts: []string{"item p 1 30000"},
		},
		{
			name: "remainder ties go to the earlier line",
			// 10 over 100, 100, 100: exact 3.33 each, floors 3+3+3 = 9, one unit
			// left, equal remainders → line 1: 4, 3, 3.
			programs:      `  - {id: p, layer: order, reward: {amount: "10"}}`,
			lines:         []events.Line{ln("1", "1", "100"), ln("2", "1", "100"), ln("3", "1", "100")},
			wantDiscounts: []string{"order p 1 4", "order p 2 3", "order p 3 3"},
		},
		{
			name: "largest remainders get the units left",
			// 10 over 100, 200, 400 (700): exact 1.43, 2.86, 5.71; floors 1+2+5 = 8;
			// 2 left → the remainders .86 (line 2) and .71 (line 3): 1, 3, 6.
			programs:      `  - {id: p, layer: order, reward: {amount: "10"}}`,
			lines:         []events.Line{ln("1", "1", "100"), ln("2", "1", "200"), ln("3", "1", "400")},
			wantDiscounts: []string{"order p 1 1", "order p 2 3", "order p 3 6"},
		},
		{
			name: "allocation in cents", places: 2,
			// 0.10 over 1.00 × 3: exact 0.0333 each; floors 0.03 × 3 = 0.09; 0.01 left → line 1.
			programs:      `  - {id: p, layer: order, reward: {amount: "0.10"}}`,
			lines:         []events.Line{ln("1", "1", "1"), ln("2", "1", "1"), ln("3", "1", "1")},
			wantDiscounts: []string{"order p 1 0.04", "order p 2 0.03", "order p 3 0.03"},
		},
		{
			name: "a share that rounds to nothing is not listed",
			// 1 over 1000 and 1: exact 0.999 and 0.000999 → floors 0, 0; the one
			// unit goes to the larger remainder (line 1); line 2 gets 0, not listed.
			programs:      `  - {id: p, layer: order, reward: {amount: "1"}}`,
			lines:         []events.Line{ln("1", "1", "1000"), ln("2", "1", "1")},
			wantDiscounts: []string{"order p 1 1"},
		},
		{
			name: "programs see running nets",
			// a: 50% of line 1 (10000) = 5000 → 5000. b: 10% of 5000 + 10000 = 1500,
			// split 5000:10000 → 500, 1000.
			programs: `  - {id: a, layer: item, priority: 1, when: {products: {ids: [x]}}, reward: {percent: "50"}}
  - {id: b, layer: item, priority: 2, reward: {percent: "10"}}`,
			lines:         []events.Line{ln("1", "1", "10000", "p:x"), ln("2", "1", "10000")},
			wantDiscounts: []string{"item a 1 5000", "item b 1 500", "item b 2 1000"},
		},
		{
			name: "order layer min_amount and products filter",
			// Only the drink qualifies: min_amount counts its net 85000 < 100000.
			programs:  `  - {id: o, layer: order, when: {products: {categories: [drinks]}, min_amount: "100000"}, reward: {amount: "10000"}}`,
			lines:     []events.Line{ln("1", "1", "85000", "c:drinks"), ln("2", "1", "50000")},
			wantTrace: []string{"o condition_failed: min_amount 100000 not met: 85000"},
		},
		{
			name:      "no line matches the products",
			programs:  `  - {id: o, layer: order, when: {products: {tags: [vip]}}, reward: {percent: "5"}}`,
			lines:     []events.Line{ln("1", "1", "1000")},
			wantTrace: []string{"o condition_failed: no line matches the products"},
		},
		{
			name: "min_qty sums qualifying qty",
			// 1.5 + 0.4 = 1.9 < 2.
			programs:  `  - {id: p, layer: item, when: {products: {categories: [fruit]}, min_qty: "2"}, reward: {percent: "5"}}`,
			lines:     []events.Line{ln("1", "1.5", "1000", "c:fruit"), ln("2", "0.4", "1000", "c:fruit"), ln("3", "5", "1")},
			wantTrace: []string{"p condition_failed: min_qty 2 not met: 1.9"},
		},
		{
			name: "a discount that rounds to 0 comes to nothing",
			// 1% of 40 = 0.4 → 0.
			programs:      `  - {id: p, layer: item, reward: {percent: "1"}}`,
			lines:         []events.Line{ln("1", "1", "40")},
			wantDiscounts: []string{},
			wantTrace:     []string{"p condition_failed: rounds to 0"},
		},
		{
			name:          "a percent of a zero net comes to nothing",
			programs:      `  - {id: p, layer: item, reward: {percent: "10"}}`,
			lines:         []events.Line{ln("1", "3", "0")},
			wantDiscounts: []string{},
			wantTrace:     []string{"p condition_failed: nothing to discount"},
		},
	})
}

// SPEC §6.4: the cheapest unit of the qualifying lines.
func TestEvaluateCheapest(t *testing.T) {
	t.Parallel()
	runCases(t, []evalCase{
		{
			name: "ties go to the earlier line",
			// Units of 6000 on lines 1 and 2 → line 1; 50% = 3000.
			programs:      `  - {id: p, layer: item, reward: {percent: "50", on: cheapest}}`,
			lines:         []events.Line{ln("1", "2", "6000"), ln("2", "1", "6000"), ln("3", "1", "9000")},
			wantDiscounts: []string{"item p 1 3000"},
		},
		{
			name: "only whole units count",
			// Cheese 0.5 × 4000 (unit 4000) has no whole unit; bread 1.5 × 10000
			// = 15000 has one at unit net 10000 < milk's 12000 → 50% = 5000.
			programs:      `  - {id: p, layer: item, when: {products: {categories: [deli]}}, reward: {percent: "50", on: cheapest}}`,
			lines:         []events.Line{ln("1", "0.5", "4000", "c:deli"), ln("2", "1.5", "10000", "c:deli"), ln("3", "2", "12000", "c:deli")},
			wantDiscounts: []string{"item p 2 5000"},
		},
		{
			name:      "no whole unit comes to nothing",
			programs:  `  - {id: p, layer: item, reward: {percent: "50", on: cheapest}}`,
			lines:     []events.Line{ln("1", "0.5", "4000")},
			wantTrace: []string{"p condition_failed: no qualifying line has a whole unit"},
		},
		{
			name: "the unit net is the running net per unit",
			// a: 50% off line 1 (2 × 10000) → 10000 left, unit 5000 < line 2's 8000;
			// b: 100% of that unit = 5000.
			programs: `  - {id: a, layer: item, priority: 1, when: {products: {ids: [x]}}, reward: {percent: "50"}}
  - {id: b, layer: item, priority: 2, reward: {percent: "100", on: cheapest}}`,
			lines:         []events.Line{ln("1", "2", "10000", "p:x"), ln("2", "1", "8000")},
			wantDiscounts: []string{"item a 1 10000", "item b 1 5000"},
		},
		{
			name: "a unit net with a fraction", places: 0,
			// 3 × 3333.34 = 10000.02 → 10000; unit 3333.33…; 50% = 1666.67 → 1667.
			programs:      `  - {id: p, layer: item, reward: {percent: "50", on: cheapest}}`,
			lines:         []events.Line{ln("1", "3", "3333.34")},
			wantDiscounts: []string{"item p 1 1667"},
		},
	})
}

// SPEC §6.4: buy_get with the qualifying pool or a reward pool of its own.
func TestEvaluateBuyGet(t *testing.T) {
	t.Parallel()
	runCases(t, []evalCase{
		{
			name: "qualifying pool: sets of buy + get",
			// 3 + 2 = 5 snack units, sets = floor(5 / 3) = 1 → the cheapest unit,
			// 8000 on line 2.
			programs:      `  - {id: b2g1, layer: item, when: {products: {tags: [snack]}}, reward: {buy_get: {buy: 2, get: 1}}}`,
			lines:         []events.Line{ln("1", "3", "10000", "t:snack"), ln("2", "2", "8000", "t:snack"), ln("3", "1", "1000")},
			wantDiscounts: []string{"item b2g1 2 8000"},
		},
		{
			name: "cheapest units across lines, ties to the earlier line",
			// 6 units at 5000 (line 1: 2, line 2: 2) and 7000 (line 3: 2): sets = 2,
			// 2 free: both from line 1 (ties → earlier) → 10000.
			programs:      `  - {id: b2g1, layer: item, reward: {buy_get: {buy: 2, get: 1}}}`,
			lines:         []events.Line{ln("1", "2", "5000"), ln("2", "2", "5000"), ln("3", "2", "7000")},
			wantDiscounts: []string{"item b2g1 1 10000"},
		},
		{
			name: "percent and max",
			// Buy 1 get 1 at 50%: 4 units, sets = 2, 2 × 10000 = 20000 × 50% =
			// 10000, max 8000 → 8000.
			programs:      `  - {id: b1g1, layer: item, reward: {buy_get: {buy: 1, get: 1, percent: "50"}, max: "8000"}}`,
			lines:         []events.Line{ln("1", "4", "10000")},
			wantDiscounts: []string{"item b1g1 1 8000"},
		},
		{
			name: "separate reward pool",
			// 4 snacks, sets = floor(4 / 2) = 2 → 2 cheapest drink units: line 3's
			// 2 × 3000 = 6000.
			programs:      `  - {id: snack-drink, layer: item, when: {products: {tags: [snack]}}, reward: {buy_get: {buy: 2, get: 1, products: {tags: [drink]}}}}`,
			lines:         []events.Line{ln("1", "4", "10000", "t:snack"), ln("2", "1", "5000", "t:drink"), ln("3", "2", "3000", "t:drink")},
			wantDiscounts: []string{"item snack-drink 3 6000"},
		},
		{
			name: "separate pool with fewer units than sets × get",
			// 6 snacks, sets = 3, but one drink unit: 5000.
			programs:      `  - {id: snack-drink, layer: item, when: {products: {tags: [snack]}}, reward: {buy_get: {buy: 2, get: 1, products: {tags: [drink]}}}}`,
			lines:         []events.Line{ln("1", "6", "10000", "t:snack"), ln("2", "1", "5000", "t:drink")},
			wantDiscounts: []string{"item snack-drink 2 5000"},
		},
		{
			name:      "separate pool absent from the order",
			programs:  `  - {id: snack-drink, layer: item, when: {products: {tags: [snack]}}, reward: {buy_get: {buy: 2, get: 1, products: {tags: [drink]}}}}`,
			lines:     []events.Line{ln("1", "6", "10000", "t:snack")},
			wantTrace: []string{"snack-drink condition_failed: no whole unit of the reward products"},
		},
		{
			name: "overlapping reward pool",
			// Qualifying: all snacks, 2 + 2 = 4 units → sets = floor(4 / 2) = 2;
			// reward pool: chips-b only → its 2 units, 2 × 8000 = 16000.
			programs:      `  - {id: chips, layer: item, when: {products: {tags: [snack]}}, reward: {buy_get: {buy: 2, get: 1, products: {ids: [chips-b]}}}}`,
			lines:         []events.Line{ln("1", "2", "10000", "p:chips-a", "t:snack"), ln("2", "2", "8000", "p:chips-b", "t:snack")},
			wantDiscounts: []string{"item chips 2 16000"},
		},
		{
			name: "fractional qty counts whole units",
			// 2.5 kg × 20000 = 50000: 2 whole units at unit net 20000; buy 1 get 1:
			// sets = 1 → 20000.
			programs:      `  - {id: b1g1, layer: item, reward: {buy_get: {buy: 1, get: 1}}}`,
			lines:         []events.Line{ln("1", "2.5", "20000")},
			wantDiscounts: []string{"item b1g1 1 20000"},
		},
		{
			name: "1.5 kg is one whole unit: no set",
			// floor(1.5) = 1 < buy 1 + get 1.
			programs:  `  - {id: b1g1, layer: item, reward: {buy_get: {buy: 1, get: 1}}}`,
			lines:     []events.Line{ln("1", "1.5", "20000")},
			wantTrace: []string{"b1g1 condition_failed: 1 qualifying whole units make no complete set"},
		},
	})
}

// SPEC §5: exclusive stops later programs of its layer once applied; a
// program that comes to nothing stops nothing.
func TestEvaluateExclusive(t *testing.T) {
	t.Parallel()
	runCases(t, []evalCase{
		{
			name: "stops later programs of its layer only",
			// ex: 10% of 100000 = 10000; later: stopped; ord: 10% of 90000 = 9000.
			programs: `  - {id: ex, layer: item, priority: 1, exclusive: true, reward: {percent: "10"}}
  - {id: later, layer: item, priority: 2, reward: {percent: "5"}}
  - {id: ord, layer: order, reward: {percent: "10"}}`,
			lines:         []events.Line{ln("1", "1", "100000")},
			wantDiscounts: []string{"item ex 1 10000", "order ord 1 9000"},
			wantTrace:     []string{"ex applied", "later stopped_by_exclusive: ex", "ord applied"},
		},
		{
			name: "earlier programs are not stopped",
			// first: 5% = 5000; ex: 10% of 95000 = 9500.
			programs: `  - {id: first, layer: item, priority: 1, reward: {percent: "5"}}
  - {id: ex, layer: item, priority: 2, exclusive: true, reward: {percent: "10"}}`,
			lines:     []events.Line{ln("1", "1", "100000")},
			wantTrace: []string{"first applied", "ex applied"},
		},
		{
			name: "condition_failed stops nothing",
			programs: `  - {id: ex, layer: item, priority: 1, exclusive: true, when: {min_qty: "5"}, reward: {percent: "10"}}
  - {id: later, layer: item, priority: 2, reward: {percent: "5"}}`,
			lines:     []events.Line{ln("1", "1", "100000")},
			wantTrace: []string{"ex condition_failed: min_qty 5 not met: 1", "later applied"},
		},
		{
			name: "a reward of nothing stops nothing",
			// ex discounts the free line: a percent of 0; later: 10% of 1000 = 100.
			programs: `  - {id: ex, layer: item, priority: 1, exclusive: true, when: {products: {categories: [free]}}, reward: {percent: "10"}}
  - {id: later, layer: item, priority: 2, reward: {percent: "10"}}`,
			lines:         []events.Line{ln("1", "1", "0", "c:free"), ln("2", "1", "1000")},
			wantDiscounts: []string{"item later 2 100"},
			wantTrace:     []string{"ex condition_failed: nothing to discount", "later applied"},
		},
		{
			name: "not_active and not_eligible stop nothing",
			programs: `  - {id: a, layer: item, priority: 1, exclusive: true, valid: {until: "2026-01-01T00:00:00+07:00"}, reward: {percent: "10"}}
  - {id: b, layer: item, priority: 2, exclusive: true, when: {code: X}, reward: {percent: "10"}}
  - {id: c, layer: item, priority: 3, reward: {percent: "10"}}`,
			lines:     []events.Line{ln("1", "1", "1000")},
			wantTrace: []string{"a not_active", "b not_eligible", "c applied"},
		},
		{
			name: "an exclusive program stopped by another stops nothing itself",
			programs: `  - {id: a, layer: item, priority: 1, exclusive: true, reward: {percent: "10"}}
  - {id: b, layer: item, priority: 2, exclusive: true, reward: {percent: "10"}}
  - {id: c, layer: item, priority: 3, reward: {percent: "10"}}`,
			lines:     []events.Line{ln("1", "1", "1000")},
			wantTrace: []string{"a applied", "b stopped_by_exclusive: a", "c stopped_by_exclusive: a"},
		},
	})
}

// SPEC §5 valid: [from, until); days and hours on the catalog's wall clock.
func TestEvaluateValidity(t *testing.T) {
	t.Parallel()
	window := func(valid string) string {
		return `  - {id: w, layer: item, valid: ` + valid + `, reward: {percent: "10"}}`
	}
	line := []events.Line{ln("1", "1", "1000")}
	runCases(t, []evalCase{
		{name: "from is inclusive", programs: window(`{from: "2026-11-24T10:00:00+07:00"}`), at: "2026-11-24T03:00:00Z", lines: line,
			wantTrace: []string{"w applied"}},
		{name: "before from", programs: window(`{from: "2026-11-24T10:00:00+07:00"}`), at: "2026-11-24T09:59:59+07:00", lines: line,
			wantTrace: []string{"w not_active: starts at 2026-11-24T10:00:00+07:00"}},
		{name: "until is exclusive", programs: window(`{until: "2026-11-24T10:00:00+07:00"}`), at: "2026-11-24T03:00:00Z", lines: line,
			wantTrace: []string{"w not_active: ended at"}},
		{name: "just before until", programs: window(`{until: "2026-11-24T10:00:00+07:00"}`), at: "2026-11-24T02:59:59.999Z", lines: line,
			wantTrace: []string{"w applied"}},
		// 18:30 UTC on Tuesday is 01:30 on Wednesday in Jakarta.
		{name: "days on the catalog's calendar", programs: window(`{days: [wed]}`), at: "2026-11-24T18:30:00Z", lines: line,
			wantTrace: []string{"w applied"}},
		{name: "days exclude", programs: window(`{days: [tue]}`), at: "2026-11-24T18:30:00Z", lines: line,
			wantTrace: []string{"w not_active: not valid on wed"}},
		// The event says +00:00; the hours are Jakarta's (+07:00).
		{name: "hours start is inclusive", programs: window(`{hours: ["10:00", "14:00"]}`), at: "2026-11-24T03:00:00+00:00", lines: line,
			wantTrace: []string{"w applied"}},
		{name: "hours last second", programs: window(`{hours: ["10:00", "14:00"]}`), at: "2026-11-24T06:59:59+00:00", lines: line,
			wantTrace: []string{"w applied"}},
		{name: "hours end is exclusive", programs: window(`{hours: ["10:00", "14:00"]}`), at: "2026-11-24T07:00:00+00:00", lines: line,
			wantTrace: []string{"w not_active: 14:00 is outside hours 10:00–14:00"}},
		{name: "hours before start", programs: window(`{hours: ["10:00", "14:00"]}`), at: "2026-11-24T02:59:00+00:00", lines: line,
			wantTrace: []string{"w not_active: 09:59 is outside"}},
		{name: "wrapping hours, evening", programs: window(`{hours: ["22:00", "02:00"]}`), at: "2026-11-24T23:00:00+07:00", lines: line,
			wantTrace: []string{"w applied"}},
		{name: "wrapping hours, after midnight", programs: window(`{hours: ["22:00", "02:00"]}`), at: "2026-11-24T01:59:00+07:00", lines: line,
			wantTrace: []string{"w applied"}},
		{name: "wrapping hours, end", programs: window(`{hours: ["22:00", "02:00"]}`), at: "2026-11-24T02:00:00+07:00", lines: line,
			wantTrace: []string{"w not_active"}},
		{name: "wrapping hours, before start", programs: window(`{hours: ["22:00", "02:00"]}`), at: "2026-11-24T21:59:00+07:00", lines: line,
			wantTrace: []string{"w not_active"}},
		{name: "all of from, until, days and hours", lines: line,
			programs: window(`{from: "2026-11-01T00:00:00+07:00", until: "2026-12-01T00:00:00+07:00", days: [sat, sun], hours: ["10:00", "14:00"]}`),
			at:       "2026-11-28T11:00:00+07:00", wantTrace: []string{"w applied"}},
	})
}

// SPEC §6.2 eligibility: levels, code, company, pos config.
func TestEvaluateEligibility(t *testing.T) {
	t.Parallel()
	line := []events.Line{ln("1", "1", "1000")}
	runCases(t, []evalCase{
		{name: "code is case-insensitive", programs: `  - {id: p, layer: order, when: {code: SAVE10}, reward: {percent: "10"}}`,
			codes: []string{"OTHER", "save10"}, lines: line, wantTrace: []string{"p applied"}},
		{name: "code missing", programs: `  - {id: p, layer: order, when: {code: SAVE10}, reward: {percent: "10"}}`,
			codes: []string{"SAVE1"}, lines: line, wantTrace: []string{"p not_eligible: coupon code SAVE10 not presented"}},
		{name: "company listed", programs: `  - {id: p, layer: order, when: {companies: [1, "2"]}, reward: {percent: "10"}}`,
			company: "2", lines: line, wantTrace: []string{"p applied"}},
		{name: "company not listed", programs: `  - {id: p, layer: order, when: {companies: ["1", "2"]}, reward: {percent: "10"}}`,
			company: "3", lines: line, wantTrace: []string{`p not_eligible: company "3" is not one of 1, 2`}},
		{name: "pos config listed", programs: `  - {id: p, layer: order, when: {pos_configs: ["3"]}, reward: {percent: "10"}}`,
			pos: "3", lines: line, wantTrace: []string{"p applied"}},
		{name: "pos config not listed", programs: `  - {id: p, layer: order, when: {pos_configs: ["3"]}, reward: {percent: "10"}}`,
			pos: "4", lines: line, wantTrace: []string{`p not_eligible: pos config "4"`}},
		{name: "level listed", programs: `  - {id: p, layer: item, when: {levels: [silver, gold]}, reward: {percent: "10"}}`,
			customer: customer("gold", "0"), lines: line, wantTrace: []string{"p applied"}},
		{name: "level not listed", programs: `  - {id: p, layer: item, when: {levels: [silver, gold]}, reward: {percent: "10"}}`,
			customer: customer("classic", "0"), lines: line, wantTrace: []string{`p not_eligible: level "classic" is not one of silver, gold`}},
		{name: "anonymous holds no level", programs: `  - {id: p, layer: item, when: {levels: [classic]}, reward: {percent: "10"}}`,
			lines: line, wantTrace: []string{"p not_eligible: anonymous orders hold no level"}},
		{name: "anonymous orders earn no points", programs: `  - {id: p, layer: order, reward: {bonus_points: "5"}}`,
			lines: line, wantTrace: []string{"p not_eligible: anonymous orders earn no points"}, wantEarned: "0"},
		{name: "eligibility before conditions", programs: `  - {id: p, layer: order, when: {code: X, min_amount: "999999"}, reward: {percent: "10"}}`,
			lines: line, wantTrace: []string{"p not_eligible"}},
		{name: "validity before eligibility", programs: `  - {id: p, layer: order, valid: {days: [sun]}, when: {code: X}, reward: {percent: "10"}}`,
			lines: line, wantTrace: []string{"p not_active"}},
	})
}

// SPEC §6.9 through the LimitsReader: uses, budget cut, budget exhausted.
func TestEvaluateLimits(t *testing.T) {
	t.Parallel()
	drinks := `  - {id: drinks, layer: item, when: {products: {categories: [drinks]}}, limits: {total_uses: 100, budget: "1000000"}, reward: {percent: "20"}}`
	lines := []events.Line{ln("1", "3", "18000", "c:drinks"), ln("2", "1", "12000", "c:drinks")}
	runCases(t, []evalCase{
		{
			name: "uses left", programs: drinks, lines: lines, customer: customer("classic", "0"),
			limits: &fakeLimits{},
			// 20% of 66000 = 13200 → 10800, 2400.
			wantDiscounts: []string{"item drinks 1 10800", "item drinks 2 2400"},
			wantUses:      []string{"drinks 13200"},
			wantCalls:     []string{"drinks c1"},
		},
		{
			name: "no uses left", programs: drinks, lines: lines,
			limits:        &fakeLimits{left: map[string]Remaining{"drinks": {UsesLeft: false}}},
			wantDiscounts: []string{},
			wantTrace:     []string{"drinks limit_reached: no uses left"},
			wantUses:      []string{},
			wantCalls:     []string{"drinks "},
		},
		{
			name: "budget cuts the discount", programs: drinks, lines: lines,
			limits: &fakeLimits{left: map[string]Remaining{"drinks": {UsesLeft: true, Budget: ptrDec("5000")}}},
			// 13200 cut to 5000, split 54000:12000: exact 4090.9 and 909.09 →
			// floors 4090 + 909 = 4999, one left → the larger remainder, line 1.
			wantDiscounts: []string{"item drinks 1 4091", "item drinks 2 909"},
			wantTrace:     []string{"drinks applied: cut to the budget left 5000"},
			wantUses:      []string{"drinks 5000"},
		},
		{
			name: "budget exhausted", programs: drinks, lines: lines,
			limits:    &fakeLimits{left: map[string]Remaining{"drinks": {UsesLeft: true, Budget: ptrDec("0")}}},
			wantTrace: []string{"drinks limit_reached: budget exhausted"},
			wantUses:  []string{},
		},
		{
			name: "a budget left under one unit is exhausted", programs: drinks, lines: lines, places: 0,
			limits:    &fakeLimits{left: map[string]Remaining{"drinks": {UsesLeft: true, Budget: ptrDec("0.99")}}},
			wantTrace: []string{"drinks limit_reached: budget exhausted"},
		},
		{
			name: "budget rounds down to the money decimals", places: 2, lines: lines,
			programs: drinks,
			limits:   &fakeLimits{left: map[string]Remaining{"drinks": {UsesLeft: true, Budget: ptrDec("10.019")}}},
			// 10.019 → 10.01, split 54000:12000 → 8.19 (8.1900) and 1.82 (1.8200).
			wantDiscounts: []string{"item drinks 1 8.19", "item drinks 2 1.82"},
			wantUses:      []string{"drinks 10.01"},
		},
		{
			name: "not asked when the reward comes to nothing", lines: lines,
			programs:  `  - {id: b, layer: item, limits: {total_uses: 1}, reward: {buy_get: {buy: 9, get: 1}}}`,
			limits:    &fakeLimits{},
			wantTrace: []string{"b condition_failed"},
			wantCalls: []string{},
		},
		{
			name: "not asked for a program without limits", lines: lines,
			programs:  `  - {id: p, layer: item, reward: {percent: "5"}}`,
			limits:    &fakeLimits{err: errors.New("must not be called")},
			wantCalls: []string{},
		},
		{
			name: "a points reward with limits records a use", lines: lines, customer: customer("classic", "0"),
			programs: `  - {id: bonus, layer: order, limits: {uses_per_customer: 1}, reward: {bonus_points: "50"}}`,
			limits:   &fakeLimits{},
			// floor(66000 / 10000) = 6 + 50 = 56.
			wantUses: []string{"bonus 0"}, wantEarned: "56",
		},
		{
			name: "a points reward out of uses adds nothing", lines: lines, customer: customer("classic", "0"),
			programs:   `  - {id: bonus, layer: order, limits: {uses_per_customer: 1}, reward: {bonus_points: "50"}}`,
			limits:     &fakeLimits{left: map[string]Remaining{"bonus": {UsesLeft: false}}},
			wantTrace:  []string{"bonus limit_reached"},
			wantEarned: "6",
		},
	})

	t.Run("reader error", func(t *testing.T) {
		t.Parallel()
		boom := errors.New("boom")
		tc := evalCase{programs: drinks, lines: lines, limits: &fakeLimits{err: boom}}
		c, in, limits := tc.input(t)
		_, err := Evaluate(c, in, limits)
		requireEqual(t, true, errors.Is(err, boom), "the reader's error is wrapped")
		requireContains(t, err.Error(), "drinks", "error names the program")
	})
}

// SPEC §6.5: the member layer runs between item and order.
func TestEvaluateMember(t *testing.T) {
	t.Parallel()
	runCases(t, []evalCase{
		{
			name: "discount_percent on all lines",
			// gold 5% of 30000 + 20000 = 2500 → 1500, 1000; no trace entry.
			lines: []events.Line{ln("1", "1", "30000"), ln("2", "1", "20000")}, customer: customer("gold", "0"),
			wantDiscounts: []string{"member gold 1 1500", "member gold 2 1000"},
			wantTrace:     []string{},
		},
		{
			name: "after item, before order",
			// item 10% of 113333 = 11333.3 → 11333 → 102000; silver 2% = 2040 →
			// 99960 < min_amount 100000.
			programs: `  - {id: i, layer: item, reward: {percent: "10"}}
  - {id: o, layer: order, when: {min_amount: "100000"}, reward: {amount: "1000"}}`,
			lines: []events.Line{ln("1", "1", "113333")}, customer: customer("silver", "0"),
			wantDiscounts: []string{"item i 1 11333", "member silver 1 2040"},
			wantTrace:     []string{"i applied", "o condition_failed: min_amount 100000 not met: 99960"},
		},
		{
			name:  "a level without discount_percent",
			lines: []events.Line{ln("1", "1", "30000")}, customer: customer("classic", "0"),
			wantDiscounts: []string{},
		},
		{
			name:  "an unknown level is ignored",
			lines: []events.Line{ln("1", "1", "30000")}, customer: &Customer{ID: "c1", Path: "default", Level: "platinum"},
			// No discount; multiplier 1: floor(30000 / 10000) = 3.
			wantDiscounts: []string{}, wantEarned: "3",
		},
		{
			name:  "the empty path is the default path",
			lines: []events.Line{ln("1", "1", "30000")}, customer: &Customer{ID: "c1", Level: "gold"},
			// 5% of 30000 = 1500.
			wantDiscounts: []string{"member gold 1 1500"},
		},
		{
			name:          "anonymous orders get no member discount",
			lines:         []events.Line{ln("1", "1", "30000")},
			wantDiscounts: []string{},
		},
	})
}

// SPEC §6.6: redemption rules, each rejection code, checked in order.
func TestEvaluateRedemption(t *testing.T) {
	t.Parallel()
	line := []events.Line{ln("1", "1", "10000")}
	noRedeem := `currency: IDR
money_decimals: 0
timezone: Asia/Jakarta
points: {earn: [{per_amount: "10000", points: "1"}]}
`
	runCases(t, []evalCase{
		{
			name: "redeemed as a discount", lines: []events.Line{ln("1", "1", "6000"), ln("2", "1", "4000")},
			redeem: "50", customer: customer("classic", "50"),
			// 50 × 100 = 5000 ≤ 0.5 × 10000 (equal is allowed) → 3000, 2000;
			// earned floor(5000 / 10000) = 0.
			wantDiscounts: []string{"points points 1 3000", "points points 2 2000"},
			wantEarned:    "0",
		},
		{name: "customer required", lines: line, redeem: "50",
			wantReject: "customer_required: redeem_points 50 needs a customer"},
		{name: "no redemption in the catalog", catalog: noRedeem, lines: line, redeem: "50", customer: customer("", "100"),
			wantReject: "redemption_exceeds_limit: this catalog allows no redemption"},
		{name: "below the minimum", lines: line, redeem: "9", customer: customer("classic", "100"),
			wantReject: "redemption_below_minimum: redeem_points 9 is below the minimum 10"},
		{name: "over the balance", lines: line, redeem: "1000", customer: customer("classic", "57"),
			wantReject: "insufficient_points: redeem_points 1000 exceeds the spendable balance 57"},
		{name: "over max_share of the running net", lines: line, redeem: "51", customer: customer("classic", "100"),
			// 51 × 100 = 5100 > 0.5 × 10000 = 5000.
			wantReject: "redemption_exceeds_limit: redeem_points 51 are worth 5100, over the max_share 0.5 of the order net 10000 (5000)"},
		{name: "max_share of the net after every discount", lines: line, redeem: "46", customer: customer("gold", "100"),
			programs: `  - {id: p, layer: item, reward: {percent: "10"}}`,
			// 10000 − 1000 (item) − 450 (gold 5%) = 8550; 0.5 × 8550 = 4275 < 4600.
			wantReject: "redemption_exceeds_limit"},
		{name: "anonymous comes first", lines: line, redeem: "1",
			wantReject: "customer_required"},
		{name: "minimum before balance", lines: line, redeem: "5", customer: customer("classic", "0"),
			wantReject: "redemption_below_minimum"},
		{name: "balance before share", lines: line, redeem: "1000", customer: customer("classic", "10"),
			wantReject: "insufficient_points"},
		{name: "zero redeem_points is no redemption", lines: line, redeem: "0",
			wantDiscounts: []string{}},
		{
			name: "a rejected order keeps its trace and discounts nothing", lines: line, redeem: "1000",
			customer:  customer("gold", "10"),
			programs:  `  - {id: p, layer: item, limits: {total_uses: 5}, reward: {percent: "10"}}`,
			limits:    &fakeLimits{},
			wantLines: []string{"1 10000 0 10000"}, wantDiscounts: []string{}, wantTrace: []string{"p applied"},
			wantUses: []string{}, wantEarned: "0", wantReject: "insufficient_points",
		},
	})

	t.Run("outcome fields", func(t *testing.T) {
		t.Parallel()
		tc := evalCase{lines: line, redeem: "50", customer: customer("classic", "50")}
		c, in, limits := tc.input(t)
		o, err := Evaluate(c, in, limits)
		requireNoError(t, err)
		requireDec(t, "50", o.RedeemPoints, "RedeemPoints")
		requireDec(t, "5000", o.RedeemValue, "RedeemValue")
	})
}

// SPEC §6.7: earn on the final net, multipliers, bonus, rounded down.
func TestEvaluateEarn(t *testing.T) {
	t.Parallel()
	runCases(t, []evalCase{
		{
			name: "level multiplier of the level held before the order",
			// silver 2% of 100000 = 2000 → 98000; floor(9.8) = 9 × 1.5 = 13.5 → 13.
			lines: []events.Line{ln("1", "1", "100000")}, customer: customer("silver", "0"),
			wantEarned: "13",
		},
		{
			name: "program multipliers and bonus",
			// gold 5% → 95000; 9 × 2 (gold) × 2 × 1.5 (programs) = 54, + 5 + 7 = 66.
			programs: `  - {id: double, layer: order, reward: {points_multiplier: "2"}}
  - {id: half-more, layer: item, reward: {points_multiplier: "1.5"}}
  - {id: bonus5, layer: order, reward: {bonus_points: "5"}}
  - {id: bonus7, layer: order, reward: {bonus_points: "7"}}
  - {id: not-today, layer: order, valid: {days: [sun]}, reward: {bonus_points: "100"}}`,
			lines: []events.Line{ln("1", "1", "100000")}, customer: customer("gold", "0"),
			wantTrace:  []string{"half-more applied: points_multiplier 1.5", "bonus5 applied", "bonus7 applied", "double applied", "not-today not_active"},
			wantEarned: "66",
		},
		{
			name: "base is the net after redemption",
			// 30000 − 50 × 100 = 25000 → floor(2.5) = 2.
			lines: []events.Line{ln("1", "1", "30000")}, customer: customer("classic", "50"), redeem: "50",
			wantEarned: "2",
		},
		{
			name: "points decimals", lines: []events.Line{ln("1", "1", "10")}, customer: customer("", "0"),
			catalog: `currency: IDR
money_decimals: 0
timezone: Asia/Jakarta
points: {decimals: 2, earn: [{per_amount: "3", points: "1"}, {per_amount: "5", points: "0.5"}]}
programs: [{id: m, layer: order, reward: {points_multiplier: "1.333"}}]
`,
			// floor(10 / 3) × 1 + floor(10 / 5) × 0.5 = 4; × 1.333 = 5.332 → 5.33.
			wantEarned: "5.33",
		},
		{
			name:       "anonymous earns nothing",
			lines:      []events.Line{ln("1", "1", "100000")},
			wantEarned: "0",
		},
	})
}

func TestEvaluateRefusesInvalidOrders(t *testing.T) {
	t.Parallel()
	c := mustParse(t, testCatalog(0, ""))
	for name, in := range map[string]Input{
		"no order":       {},
		"no lines":       {Order: &events.PaidOrder{Currency: "IDR"}},
		"wrong currency": {Order: &events.PaidOrder{Currency: "EUR", Lines: []events.Line{ln("1", "1", "1")}}},
	} {
		_, err := Evaluate(c, in, Unlimited{})
		if !errors.Is(err, ErrInvalidOrder) {
			t.Errorf("%s: want ErrInvalidOrder, got %v", name, err)
		}
	}
}

func TestEvaluateIsDeterministic(t *testing.T) {
	t.Parallel()
	c := mustParse(t, benchCatalog)
	in := Input{OccurredAt: mustTime(t, "2026-11-28T11:00:00+07:00"), CompanyID: "1", PosConfigID: "3", Order: benchOrder(),
		Customer: &Customer{ID: "77", Level: "silver", Balance: dec.FromInt(1000)}}
	first, err := Evaluate(c, in, Unlimited{})
	requireNoError(t, err)
	checkInvariants(t, c, first)
	for range 20 {
		again, err := Evaluate(c, in, Unlimited{})
		requireNoError(t, err)
		requireDeepEqual(t, first, again, "outcome")
	}
}
