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

// processBatch runs evs in one transaction the way the order worker does:
// deferred program counters first, and on ErrLimitRace the whole batch again
// with locked counters.
func (b *bundle) processBatch(evs []*events.Event) ([]*events.OrderResult, bool, error) {
	for _, locking := range []bool{false, true} {
		var results []*events.OrderResult
		err := pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
			results = results[:0]
			var counters *ledger.ProgramCounters
			if !locking {
				counters = ledger.NewProgramCounters()
			}
			for _, ev := range evs {
				res, err := b.store.ProcessDeferred(b.ctx, tx, b.cat, ev, 0, counters)
				if err != nil {
					return err
				}
				results = append(results, res)
			}
			if counters != nil {
				return counters.Flush(b.ctx, tx)
			}
			return nil
		})
		if errors.Is(err, ledger.ErrLimitRace) {
			continue
		}
		return results, locking, err
	}
	panic("unreachable")
}

// Eight workers commit batches of five events in parallel, with the global
// counters deferred to the end of each batch: exactly 25 orders get a
// program limited to 25 uses, exactly its budget is spent of another, and
// some batches had to be rerun with locks to get there.
func TestDeferredCountersExactUnderConcurrency(t *testing.T) {
	t.Parallel()
	b := setup(t, catalogWith("programs: []", `programs:
  - {id: first25, layer: order, priority: 1, limits: {total_uses: 25}, reward: {amount: "100", on: order}}
  - {id: pot, layer: order, priority: 2, limits: {budget: "4150"}, reward: {amount: "300", on: order}}
  - {id: mine, layer: order, priority: 3, limits: {uses_per_customer: 2}, reward: {amount: "10", on: order}}`))
	const workers, batches, perBatch = 8, 4, 5
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		applied  = map[string]int{}
		spent    = map[string]int{}
		reruns   int
		failures []error
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range batches {
				evs := make([]*events.Event, perBatch)
				for i := range evs {
					id := fmt.Sprintf("w%d-b%d-%d", w, k, i)
					// Three customers per worker, so per-customer uses repeat
					// within and across batches.
					evs[i] = paidEvent(t, id, "2026-03-01T10:00:00+07:00", id, fmt.Sprintf("c%d-%d", w, i%3), "", line{qty: "1", price: "1000"})
				}
				results, locked, err := b.processBatch(evs)
				mu.Lock()
				if err != nil {
					failures = append(failures, err)
				}
				if locked {
					reruns++
				}
				for _, res := range results {
					for _, p := range []string{"first25", "pot", "mine"} {
						if outcomeOf(res, p) == events.OutcomeApplied {
							applied[p]++
						}
					}
					for _, dsc := range res.Discounts {
						if dsc.ProgramID == "pot" {
							var n int
							_, _ = fmt.Sscan(dsc.Amount.String(), &n)
							spent["pot"] += n
						}
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.Empty(t, failures)
	require.Equal(t, 25, applied["first25"])
	require.Equal(t, int64(25), scalar[int64](t, b, `SELECT uses FROM program_usage WHERE program_id = 'first25'`))
	require.Equal(t, 4150, spent["pot"], "the budget is spent to the last rupiah, the last reward cut")
	requireDec(t, "4150", d(scalar[string](t, b, `SELECT budget_used::text FROM program_usage WHERE program_id = 'pot'`)))
	require.Equal(t, 14, applied["pot"], "13 full rewards of 300 and one cut to 250")
	require.Equal(t, workers*3*2, applied["mine"], "two uses per customer, 24 customers")
	require.Positive(t, reruns, "some batches raced for the last uses and were rerun with locks")
}

// A cancellation in the same batch as its order gives the order's use back
// through the deferred counters: the use was never written to program_usage,
// so releasing it there would be lost (or break uses >= 0), and a later
// order of the batch must see the use free again, as one by one.
func TestDeferredCountersCancelInSameBatch(t *testing.T) {
	t.Parallel()
	catalog := catalogWith("programs: []", `programs:
  - {id: once, layer: order, priority: 1, limits: {total_uses: 1, budget: "100"}, reward: {amount: "100", on: order}}`)
	b := setup(t, catalog)
	at := "2026-03-01T10:00:00+07:00"
	evs := []*events.Event{
		paidEvent(t, "p1", at, "o1", "c1", "", line{qty: "1", price: "1000"}),
		cancelEvent(t, "x1", at, "o1"),
		paidEvent(t, "p2", at, "o2", "c2", "", line{qty: "1", price: "1000"}),
	}
	results, locked, err := b.processBatch(evs)
	require.NoError(t, err)
	require.False(t, locked)
	require.Equal(t, "applied", results[2].Trace[0].Outcome, "the cancelled order's use is free again")
	require.Equal(t, int64(1), scalar[int64](t, b, `SELECT uses FROM program_usage WHERE program_id = 'once'`))
	require.Equal(t, "100", scalar[string](t, b, `SELECT budget_used::text FROM program_usage WHERE program_id = 'once'`))

	// The same through a Batch.
	nb := setup(t, catalog)
	require.NoError(t, pgx.BeginFunc(nb.ctx, nb.pool, func(tx pgx.Tx) error {
		bevs := make([]ledger.BatchEvent, len(evs))
		for i, ev := range evs {
			bevs[i] = ledger.BatchEvent{Event: ev}
		}
		var err error
		results, err = nb.store.NewBatch(tx, nb.cat).Process(nb.ctx, bevs)
		return err
	}))
	require.Equal(t, "applied", results[2].Trace[0].Outcome)
	require.Equal(t, int64(1), scalar[int64](t, nb, `SELECT uses FROM program_usage WHERE program_id = 'once'`))
}
