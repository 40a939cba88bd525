package ledger_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/pkg/events"
)

func outcomeOf(res *events.OrderResult, program string) string {
	return traceOf(res, program).Outcome
}

func TestCancellationReleasesUsesPartialReturnDoesNot(t *testing.T) {
	t.Parallel()
	b := setup(t, catalogWith("programs: []", `programs:
  - {id: once, layer: order, priority: 1, limits: {total_uses: 1}, reward: {amount: "3000", on: order}}
  - {id: mine, layer: order, priority: 2, limits: {uses_per_customer: 1}, reward: {amount: "1000", on: order}}`))
	at := "2026-03-01T10:00:00+07:00"
	res := b.process(t, paidEvent(t, "e1", at, "o1", "c", "", line{qty: "2", price: "10000"}))
	require.Equal(t, events.OutcomeApplied, outcomeOf(res, "once"))
	require.Equal(t, events.OutcomeApplied, outcomeOf(res, "mine"))
	res = b.process(t, paidEvent(t, "e2", at, "o2", "c", "", line{qty: "2", price: "10000"}))
	require.Equal(t, events.OutcomeLimitReached, outcomeOf(res, "once"))
	require.Equal(t, events.OutcomeLimitReached, outcomeOf(res, "mine"))
	res = b.process(t, paidEvent(t, "e3", at, "o3", "other", "", line{qty: "2", price: "10000"}))
	require.Equal(t, events.OutcomeLimitReached, outcomeOf(res, "once"))
	require.Equal(t, events.OutcomeApplied, outcomeOf(res, "mine"), "uses_per_customer counts per customer")

	// A partial return keeps the uses.
	b.process(t, returnEvent(t, "r1", at, "o1-r", "o1", "1", "1"))
	res = b.process(t, paidEvent(t, "e4", at, "o4", "c", "", line{qty: "2", price: "10000"}))
	require.Equal(t, events.OutcomeLimitReached, outcomeOf(res, "once"))
	require.Equal(t, events.OutcomeLimitReached, outcomeOf(res, "mine"))

	// The cancellation gives them back.
	b.process(t, cancelEvent(t, "x1", at, "o1"))
	require.Equal(t, "0/0", scalar[string](t, b, `SELECT uses || '/' || budget_used FROM program_usage WHERE program_id = 'once'`))
	res = b.process(t, paidEvent(t, "e5", at, "o5", "c", "", line{qty: "2", price: "10000"}))
	require.Equal(t, events.OutcomeApplied, outcomeOf(res, "once"))
	require.Equal(t, events.OutcomeApplied, outcomeOf(res, "mine"))

	// A second cancellation gives nothing back twice.
	res = b.process(t, cancelEvent(t, "x1-again", at, "o1"))
	require.Equal(t, events.RejectAlreadyCancelled, res.Error.Code)
	require.Equal(t, "1", scalar[string](t, b, `SELECT uses::text FROM program_usage WHERE program_id = 'once'`))
}

func TestBudgetIsCutAndReleased(t *testing.T) {
	t.Parallel()
	b := setup(t, catalogWith("programs: []", `programs:
  - {id: pot, layer: order, priority: 1, limits: {budget: "5000"}, reward: {amount: "3000", on: order}}`))
	at := "2026-03-01T10:00:00+07:00"
	res := b.process(t, paidEvent(t, "e1", at, "o1", "", "", line{qty: "1", price: "10000"}))
	requireDec(t, "3000", res.Totals.Discount)
	res = b.process(t, paidEvent(t, "e2", at, "o2", "", "", line{qty: "1", price: "10000"}))
	requireDec(t, "2000", res.Totals.Discount, "cut to what remains")
	res = b.process(t, paidEvent(t, "e3", at, "o3", "", "", line{qty: "1", price: "10000"}))
	require.Equal(t, events.OutcomeLimitReached, outcomeOf(res, "pot"))
	requireDec(t, "5000", d(scalar[string](t, b, `SELECT budget_used::text FROM program_usage WHERE program_id = 'pot'`)))

	b.process(t, cancelEvent(t, "x1", at, "o1"))
	requireDec(t, "2000", d(scalar[string](t, b, `SELECT budget_used::text FROM program_usage WHERE program_id = 'pot'`)))
	res = b.process(t, paidEvent(t, "e4", at, "o4", "", "", line{qty: "1", price: "10000"}))
	requireDec(t, "3000", res.Totals.Discount)
}

// Eight workers race for a program limited to 25 uses: exactly 25 orders
// get it.
func TestTotalUsesExactUnderConcurrency(t *testing.T) {
	t.Parallel()
	b := setup(t, catalogWith("programs: []", `programs:
  - {id: first25, layer: order, priority: 1, limits: {total_uses: 25}, reward: {amount: "100", on: order}}`))
	const workers, perWorker = 8, 10
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		applied int
	)
	errs := make(chan error, workers*perWorker)
	evs := make([][]*events.Event, workers)
	for w := range workers {
		for i := range perWorker {
			id := fmt.Sprintf("w%d-%d", w, i)
			// Half anonymous, half with a customer of their own.
			customer := ""
			if i%2 == 0 {
				customer = "c-" + id
			}
			evs[w] = append(evs[w], paidEvent(t, id, "2026-03-01T10:00:00+07:00", id, customer, "", line{qty: "1", price: "1000"}))
		}
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, ev := range evs[w] {
				res, err := b.tryProcess(ev)
				if err != nil {
					errs <- err
					return
				}
				if outcomeOf(res, "first25") == events.OutcomeApplied {
					mu.Lock()
					applied++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, 25, applied)
	require.Equal(t, int64(25), scalar[int64](t, b, `SELECT uses FROM program_usage WHERE program_id = 'first25'`))
	require.Equal(t, int64(25), scalar[int64](t, b, `SELECT count(*) FROM order_program_uses WHERE program_id = 'first25'`))
}

// A hundred redemptions against one customer at once never overdraw: the
// account lock serialises them, each sees the balance the previous left.
func TestConcurrentRedemptionsNeverOverdraw(t *testing.T) {
	t.Parallel()
	b := setup(t, baseCatalog)
	b.process(t, paidEvent(t, "seed", "2026-03-01T10:00:00+07:00", "seed", "c", "", line{qty: "1", price: "1000000"})) // 1000 points
	const n = 100
	var wg sync.WaitGroup
	results := make(chan *events.OrderResult, n)
	errs := make(chan error, n)
	evs := make([]*events.Event, n)
	for i := range evs {
		id := fmt.Sprintf("r%03d", i)
		// Each pays 20 of a 20 order: net 0, nothing earned.
		evs[i] = paidEvent(t, id, "2026-03-02T10:00:00+07:00", id, "c", "20", line{qty: "1", price: "20"})
	}
	for _, ev := range evs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := b.tryProcess(ev)
			if err != nil {
				errs <- err
				return
			}
			results <- res
		}()
	}
	wg.Wait()
	close(errs)
	close(results)
	for err := range errs {
		require.NoError(t, err)
	}
	applied, rejected := 0, 0
	for res := range results {
		switch res.Status {
		case events.StatusApplied:
			applied++
			require.GreaterOrEqual(t, res.Points.Balance.Sign(), 0)
		default:
			rejected++
			require.Equal(t, events.RejectInsufficientPoints, res.Error.Code)
		}
	}
	require.Equal(t, 50, applied)
	require.Equal(t, 50, rejected)
	requireDec(t, "0", b.customer(t, "c", "2026-03-02T10:00:00+07:00").Balance)
	requireDec(t, "0", d(scalar[string](t, b, `SELECT remaining::text FROM point_lots WHERE lot_id = 'seed'`)))
	b.reconcile(t, "c")
}
