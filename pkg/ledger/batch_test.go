package ledger_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
)

// Catalogs of the equivalence test: limits of every kind (total uses, budget,
// uses per customer, with coupons; per day, week and month, per company and
// per pos config), issued coupons, points multipliers and bonuses, short
// expiry with pending days, level upgrades over short windows, downgrade
// warnings, money and points with decimals, and no membership at all.
var equivalenceCatalogs = map[string]string{
	"limits": `
currency: IDR
money_decimals: 0
timezone: Asia/Jakarta
points:
  decimals: 0
  earn: [{per_amount: "1000", points: "1"}]
  expiry: {days: 6}
  pending_days: 1
  redeem: {value: "1", min: "5", max_share: "0.8"}
membership:
  default_path: default
  paths:
    - id: default
      qualify: {window_days: 5}
      retention_days: 3
      downgrade: one_level
      levels:
        - {id: bronze, min: "0"}
        - {id: silver, min: "60000", discount_percent: "2", points_multiplier: "1.5"}
        - {id: gold, min: "150000", discount_percent: "5", points_multiplier: "2"}
programs:
  - {id: ten, layer: item, priority: 1, when: {products: {categories: ["food"]}}, reward: {percent: "10", on: lines}}
  - {id: few, layer: item, priority: 2, limits: {total_uses: 6}, reward: {percent: "5", on: lines}}
  - {id: pot, layer: order, priority: 1, when: {min_amount: "20000"}, limits: {budget: "9000"}, reward: {amount: "2500", on: order}}
  - {id: coupon, layer: order, priority: 2, when: {code: SAVE}, limits: {uses_per_customer: 1, total_uses: 8}, reward: {amount: "3000", on: order}}
  - {id: twice, layer: order, priority: 3, when: {levels: [silver, gold]}, limits: {uses_per_customer: 2}, reward: {percent: "3", on: order}}
  - {id: bonus, layer: order, priority: 9, when: {min_amount: "40000"}, reward: {bonus_points: "7"}}
  - {id: mult, layer: order, priority: 10, when: {code: DOUBLE}, limits: {total_uses: 5}, reward: {points_multiplier: "2"}}
`,
	"decimals": `
currency: IDR
money_decimals: 2
timezone: America/New_York
points:
  decimals: 2
  earn: [{per_amount: "1000", points: "1.5"}]
  expiry: {months: 1}
  pending_days: 2
  redeem: {value: "1", min: "1", max_share: "0.5"}
membership:
  default_path: default
  paths:
    - id: default
      qualify: {window_days: 7}
      retention_days: 3
      downgrade: to_qualified
      levels:
        - {id: bronze, min: "0"}
        - {id: silver, min: "50000", discount_percent: "3", points_multiplier: "1.5"}
        - {id: gold, min: "150000", discount_percent: "7", points_multiplier: "2"}
programs:
  - {id: third, layer: item, priority: 1, reward: {percent: "33.3", on: lines}}
  - {id: pot, layer: order, priority: 1, limits: {budget: "12345.67", total_uses: 9}, reward: {percent: "7.5", on: order, max: "2500.55"}}
  - {id: coupon, layer: order, priority: 2, when: {code: SAVE}, limits: {uses_per_customer: 2}, reward: {amount: "1000.10", on: order}}
  - {id: bonus, layer: order, priority: 9, when: {code: DOUBLE}, limits: {uses_per_customer: 1, total_uses: 4}, reward: {bonus_points: "3.33"}}
`,
	"plain": `
currency: IDR
money_decimals: 0
timezone: Asia/Jakarta
points:
  decimals: 0
  earn: [{per_amount: "5000", points: "2"}]
  redeem: {value: "10", min: "1", max_share: "1"}
programs:
  - {id: cheap, layer: item, priority: 1, when: {products: {categories: ["food"]}}, limits: {total_uses: 7, budget: "20000"}, reward: {percent: "50", on: cheapest}}
  - {id: coupon, layer: order, priority: 1, when: {code: SAVE}, limits: {uses_per_customer: 1}, reward: {amount: "5000", on: order}}
  - {id: mult, layer: order, priority: 5, when: {code: DOUBLE}, reward: {points_multiplier: "3"}}
`,
}

// The "periods" catalog counts per store and per calendar period and
// issues coupons that later orders of the scenario present.
func init() {
	doc := equivalenceCatalogs["limits"]
	doc = strings.Replace(doc, "      downgrade: one_level\n", "      downgrade: one_level\n      warn_days: 4\n", 1)
	equivalenceCatalogs["periods"] = doc[:strings.Index(doc, "programs:")] + `programs:
  - {id: ten, layer: item, priority: 1, when: {products: {categories: ["food"]}}, reward: {percent: "10", on: lines}}
  - {id: daily, layer: item, priority: 2, limits: {per_period: {period: day, uses: 3, uses_per_customer: 1, budget: "5000"}, scope: pos_config}, reward: {percent: "5", on: lines}}
  - {id: weekly, layer: order, priority: 1, when: {min_amount: "20000"}, limits: {total_uses: 12, per_period: {period: week, budget: "9000"}, scope: company}, reward: {amount: "2500", on: order}}
  - {id: issue, layer: order, priority: 5, when: {min_amount: "30000"}, limits: {per_period: {period: day, uses: 4}}, reward: {issue_coupon: {program: back, valid_days: 3}}}
  - {id: back, layer: order, priority: 6, when: {coupon: issued}, reward: {percent: "10", on: order}}
  - {id: coupon, layer: order, priority: 7, when: {code: SAVE}, limits: {uses_per_customer: 2, per_period: {period: month, uses_per_customer: 1}}, reward: {amount: "3000", on: order}}
`
}

// The "paths" scenarios start on a catalog whose default path is "short"
// (5-day window) and switch half way to one whose default is "long" (20
// days): customers seen before stay on "short", and every event's windows
// are summed for both paths.
const pathsMembership = `
membership:
  default_path: %s
  paths:
    - id: short
      qualify: {window_days: 5}
      retention_days: 3
      downgrade: one_level
      levels:
        - {id: bronze, min: "0"}
        - {id: silver, min: "60000", discount_percent: "2", points_multiplier: "1.5"}
        - {id: gold, min: "150000", discount_percent: "5", points_multiplier: "2"}%s
programs:`

const longPath = `
    - id: long
      qualify: {window_days: 20}
      retention_days: 10
      downgrade: to_qualified
      levels:
        - {id: member, min: "0"}
        - {id: vip, min: "200000", discount_percent: "4"}`

// withMembership replaces the membership section of the "limits" catalog.
func withMembership(defaultPath, extraPaths string) string {
	doc := equivalenceCatalogs["limits"]
	start := strings.Index(doc, "\nmembership:")
	end := strings.Index(doc, "\nprograms:")
	return doc[:start] + fmt.Sprintf(pathsMembership, defaultPath, extraPaths) + doc[end+len("\nprograms:"):]
}

var (
	pathsCatalog = withMembership("short", "")
	nextCatalogs = map[string]string{pathsCatalog: withMembership("long", longPath)}
)

func init() { equivalenceCatalogs["paths"] = pathsCatalog }

// step is one step of an equivalence scenario: an event, or a job run.
type step struct {
	ev      *events.Event
	jobs    time.Time
	catalog string // a catalog applied at this step (with no event)
}

// runStep runs a step that is not an event: a job run or a new catalog.
func runStep(t *testing.T, b *bundle, s step) {
	if s.catalog != "" {
		b.cat = b.apply(t, s.catalog)
		return
	}
	_, err := b.store.RunJobs(b.ctx, b.pool, b.cat, s.jobs)
	require.NoError(t, err)
}

// genScenario draws a sequence of events (and job runs) that does not depend
// on their outcomes: paid orders with and without customers, coupons and
// redemptions, returns of any earlier order (some of lines it never had,
// some of more than was sold, some of orders never paid), cancellations,
// redeliveries of earlier events, orders and returns reusing an order id
// under a new event id, a currency the catalog does not have, and times that
// sometimes go backwards.
func genScenario(t *testing.T, rng *rand.Rand, decimals bool, steps int) []step {
	customers := []string{"c0", "c1", "c2", "c3", "c4"}
	now := mustTime(t, "2026-01-01T08:00:00+07:00")
	var out []step
	var paid []*events.Event    // every paid event drawn
	var returns []*events.Event // every return drawn
	var all []*events.Event
	price := func() string {
		if decimals {
			return fmt.Sprintf("%d.%02d", 1000+rng.IntN(40000), rng.IntN(100))
		}
		return fmt.Sprint(1000 + rng.IntN(60000))
	}
	add := func(ev *events.Event) {
		out = append(out, step{ev: ev})
		all = append(all, ev)
	}
	for n := 1; len(out) < steps; n++ {
		if rng.IntN(10) == 0 {
			now = now.Add(-time.Duration(rng.IntN(72*60)) * time.Minute) // out of order
		} else {
			now = now.Add(time.Duration(rng.IntN(30*60)) * time.Minute)
		}
		at := now.Format(time.RFC3339)
		switch r := rng.IntN(100); {
		case r < 4:
			out = append(out, step{jobs: now})
		case r < 9 && len(all) > 0: // redelivery
			add(all[rng.IntN(len(all))])
		case r < 12 && len(paid) > 0: // an order id again, under a new event id
			orig := paid[rng.IntN(len(paid))]
			add(genPaid(t, rng, fmt.Sprintf("ev%d", n), at, string(orig.Paid.ID), customers, price, "IDR", paid))
		case r < 13:
			add(genPaid(t, rng, fmt.Sprintf("ev%d", n), at, fmt.Sprintf("o%d", n), customers, price, "USD", paid))
		case r < 28 && len(paid) > 0:
			orig := paid[rng.IntN(len(paid))]
			origID := string(orig.Paid.ID)
			if rng.IntN(20) == 0 {
				origID = fmt.Sprintf("never%d", n)
			}
			returnID := fmt.Sprintf("r%d", n)
			if rng.IntN(15) == 0 && len(returns) > 0 {
				returnID = string(returns[rng.IntN(len(returns))].Returned.ID)
			}
			var lines []map[string]any
			first := rng.IntN(len(orig.Paid.Lines) + 1) // one past the last: a line never sold
			for k := range 1 + rng.IntN(2) {
				lines = append(lines, map[string]any{"line_id": fmt.Sprint(1 + first + k), "qty": fmt.Sprint(1 + rng.IntN(3))})
			}
			ev := decode(t, map[string]any{"event_id": fmt.Sprintf("ev%d", n), "type": events.TypeOrderReturned, "occurred_at": at,
				"company_id": "1", "pos_config_id": "1", "order": map[string]any{"id": returnID, "original_order_id": origID, "lines": lines}})
			returns = append(returns, ev)
			add(ev)
		case r < 35 && len(paid) > 0:
			orig := paid[rng.IntN(len(paid))]
			add(cancelEvent(t, fmt.Sprintf("ev%d", n), at, string(orig.Paid.ID)))
		default:
			ev := genPaid(t, rng, fmt.Sprintf("ev%d", n), at, fmt.Sprintf("o%d", n), customers, price, "IDR", paid)
			paid = append(paid, ev)
			add(ev)
		}
	}
	return out
}

// genPaid draws a paid order in one of two companies and three tills; some
// present a code the "issue" program may have issued on an earlier paid
// event (to any customer, typed in any case).
func genPaid(t testing.TB, rng *rand.Rand, eventID, at, orderID string, customers []string, price func() string, currency string, earlier []*events.Event) *events.Event {
	var lines []map[string]any
	for i := range 1 + rng.IntN(3) {
		cat := "food"
		if rng.IntN(2) == 0 {
			cat = "other"
		}
		lines = append(lines, map[string]any{"id": fmt.Sprint(i + 1), "product_id": fmt.Sprint("p", rng.IntN(5)),
			"category_ids": []string{cat}, "qty": fmt.Sprint(1 + rng.IntN(4)), "unit_price": price()})
	}
	order := map[string]any{"id": orderID, "currency": currency, "lines": lines}
	if rng.IntN(5) > 0 {
		order["customer_id"] = customers[rng.IntN(len(customers))]
		if rng.IntN(3) == 0 {
			order["redeem_points"] = []string{"1", "5", "12", "40", "100", "250", "2000"}[rng.IntN(7)]
		}
	}
	var codes []string
	switch rng.IntN(8) {
	case 0:
		codes = []string{"SAVE"}
	case 1:
		codes = []string{"double"}
	case 2:
		codes = []string{"DOUBLE", "save"}
	}
	if len(earlier) > 0 && rng.IntN(3) == 0 {
		issuer := earlier[len(earlier)-1-rng.IntN(min(len(earlier), 6))]
		code := ledger.CouponCode([]byte(testCouponSecret), issuer.EventID, "issue")
		if rng.IntN(2) == 0 {
			code = strings.ToLower(code)
		}
		codes = append(codes, code)
		if c := issuer.Paid.CustomerID; c != "" && rng.IntN(4) > 0 {
			order["customer_id"] = string(c) // mostly the customer it was issued to
		}
	}
	if len(codes) > 0 {
		order["coupon_codes"] = codes
	}
	return decode(t, map[string]any{"event_id": eventID, "type": events.TypeOrderPaid, "occurred_at": at,
		"company_id": fmt.Sprint(1 + rng.IntN(2)), "pos_config_id": fmt.Sprint(1 + rng.IntN(3)), "order": order})
}

// outcome is what one event gave: its result's JSON ("" for none) or its
// error.
type outcome struct {
	result string
	err    string
}

func stepOutcome(t testing.TB, res *events.OrderResult, err error) outcome {
	if err != nil {
		return outcome{err: err.Error()}
	}
	if res == nil {
		return outcome{}
	}
	raw, jerr := json.Marshal(res)
	require.NoError(t, jerr)
	return outcome{result: string(raw)}
}

// runOneByOne applies each event in its own transaction with Store.Process,
// the reference.
func runOneByOne(t *testing.T, b *bundle, steps []step) []outcome {
	out := make([]outcome, len(steps))
	for i, s := range steps {
		if s.ev == nil {
			runStep(t, b, s)
			continue
		}
		var res *events.OrderResult
		err := pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
			var err error
			res, err = b.store.Process(b.ctx, tx, b.cat, s.ev, uint64(i+1))
			return err
		})
		out[i] = stepOutcome(t, res, err)
	}
	return out
}

// runBatches applies the events in batches of random sizes (never across a
// job run), each in one transaction with a Batch, the way the order worker
// does: an event that fails is set apart and the rest of its batch is run
// again without it.
func runBatches(t *testing.T, b *bundle, steps []step, rng *rand.Rand) []outcome {
	out := make([]outcome, len(steps))
	for i := 0; i < len(steps); {
		if steps[i].ev == nil {
			runStep(t, b, steps[i])
			i++
			continue
		}
		n := 1 + rng.IntN(len(steps))
		if rng.IntN(3) == 0 {
			n = 1 + rng.IntN(4)
		}
		var idx []int // indexes into steps of this batch
		for ; i < len(steps) && steps[i].ev != nil && len(idx) < n; i++ {
			idx = append(idx, i)
		}
		for len(idx) > 0 {
			evs := make([]ledger.BatchEvent, len(idx))
			for k, j := range idx {
				evs[k] = ledger.BatchEvent{Event: steps[j].ev, StreamSeq: uint64(j + 1)}
			}
			var customers []string
			for _, ev := range evs {
				if ev.Event.Paid != nil {
					customers = append(customers, string(ev.Event.Paid.CustomerID))
				}
			}
			var results []*events.OrderResult
			err := pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
				lb := b.store.NewBatch(tx, b.cat)
				lb.LockCustomers(customers) // as the worker does
				var err error
				results, err = lb.Process(b.ctx, evs)
				return err
			})
			var ee *ledger.EventError
			if errors.As(err, &ee) {
				out[idx[ee.Index]] = stepOutcome(t, nil, ee.Err)
				idx = slices.Delete(idx, ee.Index, ee.Index+1)
				continue
			}
			require.NoError(t, err)
			for k, j := range idx {
				out[j] = stepOutcome(t, results[k], nil)
			}
			idx = nil
		}
	}
	return out
}

// ledgerTables renders every table the ledger writes, rows in a fixed order
// (serial tables by id, which is write order), without serial ids and the
// columns the database fills with the wall clock.
var ledgerTables = []struct{ table, order, drop string }{
	{"inbox", "event_id", "processed_at"},
	{"outbox", "id", "id,created_at"},
	{"accounts", "customer_id", "created_at"},
	{"point_lots", "lot_id", ""},
	{"ledger_entries", "id", "id"},
	{"point_consumptions", "order_id, seq", ""},
	{"spend_entries", "id", "id"},
	{"member_levels", "customer_id, path", ""},
	{"level_history", "id", "id"},
	{"program_usage", "program_id, scope, period", ""},
	{"program_customer_usage", "program_id, customer_id, scope, period", ""},
	{"order_program_uses", "order_id, program_id", ""},
	{"coupons", "customer_id, code", ""},
	{"level_warnings", "customer_id, path, level, downgrade_at", "warned_at"},
	{"processed_orders", "order_id", ""},
	{"order_reversals", "event_id", ""},
	{"job_runs", "id", "id,ran_at"},
}

func dumpLedger(t *testing.T, b *bundle) map[string][]string {
	out := map[string][]string{}
	for _, tb := range ledgerTables {
		expr := "to_jsonb(x)"
		for _, col := range strings.Split(tb.drop, ",") {
			if col != "" {
				expr += " - '" + col + "'"
			}
		}
		if tb.table == "outbox" {
			expr = "(" + expr + ") || jsonb_build_object('payload', convert_from(x.payload, 'UTF8'))"
		}
		rows, err := b.pool.Query(b.ctx, fmt.Sprintf(`SELECT (%s)::text FROM %s x ORDER BY %s`, expr, tb.table, tb.order))
		require.NoError(t, err)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		out[tb.table] = lines
	}
	return out
}

// A Batch gives byte for byte what Store.Process gives one event per
// transaction: every result, every error, and every row of every ledger
// table, over random scenarios cut into random batches.
func TestBatchEqualsOneByOne(t *testing.T) {
	t.Parallel()
	seeds := 80 // × 5 catalogs: as many scenarios as 100 × 4 before "periods"
	if testing.Short() {
		seeds = 10
	}
	names := make([]string, 0, len(equivalenceCatalogs))
	for name := range equivalenceCatalogs {
		names = append(names, name)
	}
	slices.Sort(names)
	type testCase struct {
		name string
		seed uint64
	}
	cases := make(chan testCase)
	go func() {
		defer close(cases)
		for _, name := range names {
			for seed := uint64(1); seed <= uint64(seeds); seed++ {
				cases <- testCase{name, seed}
			}
		}
	}()
	// The cases wait on the database far more than they compute: run more
	// at once than -parallel (GOMAXPROCS) would.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for c := range cases {
				t.Run(fmt.Sprintf("%s/seed%d", c.name, c.seed), func(t *testing.T) {
					checkBatchEquivalence(t, equivalenceCatalogs[c.name], c.name == "decimals", c.seed, 60)
				})
			}
		})
	}
	wg.Wait()
}

func checkBatchEquivalence(t *testing.T, catalog string, decimals bool, seed uint64, n int) {
	steps := genScenario(t, rand.New(rand.NewPCG(seed, 1)), decimals, n)
	if next, ok := nextCatalogs[catalog]; ok {
		// Half way, a catalog whose default path is another: the customers
		// seen so far stay on theirs.
		half := len(steps) / 2
		steps = append(steps[:half:half], append([]step{{catalog: next}}, steps[half:]...)...)
		moved := map[*events.Event]bool{}
		for i, s := range steps[half:] {
			if ev := s.ev; ev != nil && ev.Paid != nil && ev.Paid.CustomerID != "" && i%2 == 0 && !moved[ev] {
				ev.Paid.CustomerID = "new-" + ev.Paid.CustomerID // first seen on the new default path
				moved[ev] = true
			}
		}
	}
	ref, got := setup(t, catalog), setup(t, catalog)
	want := runOneByOne(t, ref, steps)
	have := runBatches(t, got, steps, rand.New(rand.NewPCG(seed, 2)))
	kinds := map[string]int{}
	for i, s := range steps {
		if s.ev == nil {
			kinds["jobs/catalogs"]++
			continue
		}
		require.Equal(t, want[i], have[i], "step %d: event %s", i, s.ev.EventID)
		switch o := want[i]; {
		case o.err != "":
			kinds["error"]++
		case o.result == "":
			kinds["duplicate"]++
		case strings.Contains(o.result, `"status":"rejected"`):
			kinds[s.ev.Type+"/rejected"]++
		default:
			kinds[s.ev.Type+"/applied"]++
		}
	}
	wantRows, haveRows := dumpLedger(t, ref), dumpLedger(t, got)
	rows := map[string]int{}
	for _, tb := range ledgerTables {
		require.Equal(t, wantRows[tb.table], haveRows[tb.table], "table %s", tb.table)
		rows[tb.table] = len(wantRows[tb.table])
	}
	for _, row := range wantRows["coupons"] {
		if !strings.Contains(row, `"used_order_id": null`) {
			rows["coupons used"]++
		}
		if !strings.Contains(row, `"voided_at": null`) {
			rows["coupons voided"]++
		}
	}
	t.Logf("steps %v; rows %v", kinds, rows)
}
