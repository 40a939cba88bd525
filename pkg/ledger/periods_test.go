package ledger_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
)

// order is a paid event with the fields these tests vary.
type order struct {
	event, at, id, customer, company, pos string
	codes                                 []string
	qty, price                            string // one line, default qty 1 at 10000
}

func (o order) event_(t testing.TB) *events.Event {
	t.Helper()
	qty, price := o.qty, o.price
	if qty == "" {
		qty = "1"
	}
	if price == "" {
		price = "10000"
	}
	m := map[string]any{"id": o.id, "currency": "IDR", "lines": []map[string]any{{"id": "1", "product_id": "p1", "qty": qty, "unit_price": price}}}
	if o.customer != "" {
		m["customer_id"] = o.customer
	}
	if len(o.codes) > 0 {
		m["coupon_codes"] = o.codes
	}
	company, pos := o.company, o.pos
	if company == "" {
		company = "1"
	}
	if pos == "" {
		pos = "1"
	}
	return decode(t, map[string]any{"event_id": o.event, "type": events.TypeOrderPaid, "occurred_at": o.at,
		"company_id": company, "pos_config_id": pos, "order": m})
}

func traceOf(res *events.OrderResult, program string) events.Trace {
	for _, tr := range res.Trace {
		if tr.ProgramID == program {
			return tr
		}
	}
	return events.Trace{}
}

// SPEC §6.9, sentence by sentence, on one flash sale: per_period counters
// count the orders of the same calendar day in the catalog timezone; with
// scope company every counter (total, per customer, per period, budget) is
// kept apart per company; a use must be allowed by every counter; a budget
// cut takes the smallest remainder; anonymous orders count for every
// counter that is not per customer; a cancellation gives back to the
// counters of the original order's period and scope.
func TestPerPeriodAndScopeLimits(t *testing.T) {
	t.Parallel()
	// 10% of 10000 = 1000 a use; at most 2 uses a day per company, 1 per
	// customer a day, 2500 a day per company, 4 uses in all per company.
	b := setup(t, catalogWith("programs: []", `programs:
  - id: flash
    layer: order
    limits:
      total_uses: 4
      per_period: {period: day, uses: 2, uses_per_customer: 1, budget: "2500"}
      scope: company
    reward: {percent: "10", on: order}`))
	day1, day1late, day2, day3, day4 := "2026-03-02T10:00:00+07:00", "2026-03-02T23:59:59+07:00", "2026-03-02T17:00:00Z", "2026-03-04T09:00:00+07:00", "2026-03-05T09:00:00+07:00"
	steps := []struct {
		o        order
		outcome  string
		reason   string
		discount string
	}{
		// Day 1 (Monday 2 March in Jakarta), company 1.
		{order{event: "e1", at: day1, id: "o1", customer: "ann"}, events.OutcomeApplied, "10% of the order (10000): 1000", "1000"},
		{order{event: "e2", at: day1, id: "o2", customer: "ann"}, events.OutcomeLimitReached, "daily uses per customer 1 reached for company 1", "0"},
		// An anonymous order counts for the daily uses: the second of the day.
		{order{event: "e3", at: day1late, id: "o3"}, events.OutcomeApplied, "", "1000"},
		{order{event: "e4", at: day1late, id: "o4", customer: "bob"}, events.OutcomeLimitReached, "daily uses 2 reached for company 1", "0"},
		// Company 2 has counters of its own.
		{order{event: "e5", at: day1, id: "o5", customer: "ann", company: "2"}, events.OutcomeApplied, "", "1000"},
		// 17:00Z is 00:00 on Tuesday in Jakarta: a new day, a new customer allowance.
		{order{event: "e6", at: day2, id: "o6", customer: "ann"}, events.OutcomeApplied, "", "1000"},
		// The day's budget has 1500 left: the 2500 order's 25000 × 10% = 2500 is cut to it.
		{order{event: "e7", at: day2, id: "o7", customer: "bob", price: "25000"}, events.OutcomeApplied, "cut to the daily budget left 1500 for company 1", "1500"},
		// Company 1 has used 4 of its 4 in all.
		{order{event: "e8", at: day3, id: "o8", customer: "cid"}, events.OutcomeLimitReached, "total uses 4 reached for company 1", "0"},
		{order{event: "e9", at: day3, id: "o9", customer: "cid", company: "2"}, events.OutcomeApplied, "", "1000"},
	}
	for _, s := range steps {
		res := b.process(t, s.o.event_(t))
		tr := traceOf(res, "flash")
		require.Equal(t, s.outcome, tr.Outcome, "%s: %s", s.o.event, tr.Reason)
		require.Contains(t, tr.Reason, s.reason, s.o.event)
		requireDec(t, s.discount, res.Totals.Discount, s.o.event)
	}
	counter := func(scope, period string) string {
		return scalar[string](t, b, `SELECT COALESCE(max(uses || '/' || budget_used), '-') FROM program_usage WHERE program_id = 'flash' AND scope = $1 AND period = $2`, scope, period)
	}
	require.Equal(t, "4/4500", counter("company:1", ""))
	require.Equal(t, "2/2000", counter("company:1", "2026-03-02"))
	require.Equal(t, "2/2500", counter("company:1", "2026-03-03"))
	require.Equal(t, "2/2000", counter("company:2", ""))
	require.Equal(t, "1/1000", counter("company:2", "2026-03-04"))
	require.Equal(t, "-", counter("", ""), "no chain-wide counter for a per-company program")

	// Cancelling o1 (Monday, company 1) on Thursday gives back to Monday's
	// counters of company 1 and to ann's Monday, not to Thursday's.
	b.process(t, cancelEvent(t, "x1", day4, "o1"))
	require.Equal(t, "3/3500", counter("company:1", ""))
	require.Equal(t, "1/1000", counter("company:1", "2026-03-02"))
	require.Equal(t, "2/2500", counter("company:1", "2026-03-03"))
	require.Equal(t, int64(0), scalar[int64](t, b, `SELECT uses FROM program_customer_usage WHERE program_id = 'flash' AND customer_id = 'ann' AND scope = 'company:1' AND period = '2026-03-02'`))
	// So ann can have Monday's offer again (a late order from an offline till).
	res := b.process(t, order{event: "e10", at: day1, id: "o10", customer: "ann"}.event_(t))
	require.Equal(t, events.OutcomeApplied, traceOf(res, "flash").Outcome, traceOf(res, "flash").Reason)
	// A return (even of everything) gives nothing back: only a cancellation does.
	b.process(t, returnEvent(t, "r1", day4, "o10-r", "o10", "1", "1"))
	require.Equal(t, "2/2000", counter("company:1", "2026-03-02"))
}

// A week runs Monday 00:00 to Monday 00:00 in the catalog timezone, a
// month is a calendar month; pos_config scope keys by pos_config_id alone.
func TestWeeklyAndMonthlyPerTill(t *testing.T) {
	t.Parallel()
	b := setup(t, catalogWith("programs: []", `programs:
  - {id: weekly, layer: order, priority: 1, limits: {per_period: {period: week, uses: 1}, scope: pos_config}, reward: {amount: "100", on: order}}
  - {id: monthly, layer: order, priority: 2, limits: {per_period: {period: month, budget: "250"}}, reward: {amount: "100", on: order}}`))
	for _, s := range []struct {
		o               order
		weekly, monthly string
	}{
		{order{event: "e1", at: "2026-03-01T23:00:00+07:00", id: "o1", pos: "7"}, "applied", "applied"},                     // Sunday: week 9
		{order{event: "e2", at: "2026-03-01T23:30:00+07:00", id: "o2", company: "9", pos: "7"}, "limit_reached", "applied"}, // till 7 whatever the company
		{order{event: "e3", at: "2026-03-01T23:45:00+07:00", id: "o3", pos: "8"}, "applied", "applied"},                     // 100 cut to the 50 left
		{order{event: "e4", at: "2026-03-02T00:00:00+07:00", id: "o4", pos: "7"}, "applied", "limit_reached"},               // Monday: week 10
		{order{event: "e5", at: "2026-03-31T16:59:59Z", id: "o5", pos: "7"}, "applied", "limit_reached"},                    // 23:59:59 on 31 March
		{order{event: "e6", at: "2026-03-31T17:00:00Z", id: "o6", pos: "8"}, "applied", "applied"},                          // 1 April in Jakarta
	} {
		res := b.process(t, s.o.event_(t))
		require.Equal(t, s.weekly, traceOf(res, "weekly").Outcome, "%s weekly: %s", s.o.event, traceOf(res, "weekly").Reason)
		require.Equal(t, s.monthly, traceOf(res, "monthly").Outcome, "%s monthly: %s", s.o.event, traceOf(res, "monthly").Reason)
	}
	require.Equal(t, "3/250", scalar[string](t, b, `SELECT uses || '/' || budget_used FROM program_usage WHERE program_id = 'monthly' AND period = '2026-03'`))
	require.Contains(t, traceOf(b.process(t, order{event: "e7", at: "2026-03-31T10:00:00+07:00", id: "o7", pos: "9"}.event_(t)), "monthly").Reason,
		"monthly budget 250 exhausted")
	require.Equal(t, "weekly uses 1 reached for pos config 7",
		traceOf(b.process(t, order{event: "e8", at: "2026-03-03T10:00:00+07:00", id: "o8", pos: "7"}.event_(t)), "weekly").Reason)
}

// processLedgerBatch applies evs in one transaction with a Batch, as the
// order worker does, and on ErrLimitRace runs them again one by one with
// locked counters in a new transaction.
func (b *bundle) processLedgerBatch(evs []*events.Event) ([]*events.OrderResult, error) {
	bevs := make([]ledger.BatchEvent, len(evs))
	var customers []string
	for i, ev := range evs {
		bevs[i] = ledger.BatchEvent{Event: ev}
		customers = append(customers, string(ev.CustomerID()))
	}
	var results []*events.OrderResult
	err := pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
		lb := b.store.NewBatch(tx, b.cat)
		lb.LockCustomers(customers)
		var err error
		results, err = lb.Process(b.ctx, bevs)
		return err
	})
	if !errors.Is(err, ledger.ErrLimitRace) {
		return results, err
	}
	err = pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
		results = results[:0]
		if err := ledger.LockCustomers(b.ctx, tx, customers); err != nil {
			return err
		}
		for _, ev := range evs {
			res, err := b.store.Process(b.ctx, tx, b.cat, ev, 0)
			if err != nil {
				return err
			}
			results = append(results, res)
		}
		return nil
	})
	return results, err
}

// Eight workers race on a per-store daily limit, in batches as the order
// worker runs them: every store gets exactly its limit each day.
func TestPerStoreDailyLimitExactUnderConcurrency(t *testing.T) {
	t.Parallel()
	b := setup(t, catalogWith("programs: []", `programs:
  - {id: flash, layer: order, limits: {per_period: {period: day, uses: 3}, scope: pos_config}, reward: {amount: "100", on: order}}`))
	const workers, batches, perBatch = 8, 4, 6
	stores := []string{"1", "2", "3"}
	days := []string{"2026-03-02T10:00:00+07:00", "2026-03-03T10:00:00+07:00"}
	evs := make([][][]*events.Event, workers)
	for w := range workers {
		for k := range batches {
			var batch []*events.Event
			for i := range perBatch {
				n := (w*batches+k)*perBatch + i
				id := fmt.Sprintf("w%d-%d-%d", w, k, i)
				customer := "" // half anonymous, half with a customer of their own
				if (n/6)%2 == 0 {
					customer = "c-" + id
				}
				batch = append(batch, order{event: id, at: days[n%2], id: id, customer: customer, pos: stores[(n/2)%3]}.event_(t))
			}
			evs[w] = append(evs[w], batch)
		}
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		applied = map[string]int{} // store/day → orders that got flash
	)
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for _, batch := range evs[w] {
				results, err := b.processLedgerBatch(batch)
				if err != nil {
					errs <- err
					return
				}
				for i, res := range results {
					if traceOf(res, "flash").Outcome == events.OutcomeApplied {
						mu.Lock()
						applied[string(batch[i].PosConfigID)+"/"+batch[i].OccurredAt.Format("01-02")]++
						mu.Unlock()
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	// 192 orders, 32 per store and day: 3 each get the program.
	want := map[string]int{}
	for _, s := range stores {
		for _, d := range []string{"03-02", "03-03"} {
			want[s+"/"+d] = 3
		}
	}
	require.Equal(t, want, applied)
	require.Equal(t, int64(18), scalar[int64](t, b, `SELECT count(*) FROM order_program_uses WHERE program_id = 'flash'`))
	require.Equal(t, "3", scalar[string](t, b, `SELECT string_agg(DISTINCT uses::text, ',') FROM program_usage WHERE program_id = 'flash' AND period <> ''`))
	require.Equal(t, "6", scalar[string](t, b, `SELECT string_agg(DISTINCT uses::text, ',') FROM program_usage WHERE program_id = 'flash' AND period = ''`))
}
