package ledger_test

import (
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
)

// BenchmarkProcessPaid measures paid orders applied 100 to a transaction,
// the way the order worker batches them, over 1,000 returning customers.
func BenchmarkProcessPaid(b *testing.B) {
	bb := setup(b, baseCatalog)
	const perTx = 100
	evs := make([]*events.Event, 0, b.N)
	for i := range b.N {
		id := fmt.Sprintf("b%d", i)
		redeem := ""
		if i%4 == 3 {
			redeem = "5"
		}
		evs = append(evs, paidEvent(b, id, "2026-03-01T10:00:00+07:00", id, fmt.Sprintf("c%d", i%1000), redeem, line{qty: "2", price: "25000"}, line{qty: "1", price: "12000"}))
	}
	b.ResetTimer()
	for start := 0; start < len(evs); start += perTx {
		batch := evs[start:min(start+perTx, len(evs))]
		err := pgx.BeginFunc(bb.ctx, bb.pool, func(tx pgx.Tx) error {
			ids := make([]string, len(batch))
			for i, ev := range batch {
				ids[i] = string(ev.Paid.CustomerID)
			}
			if err := ledger.LockCustomers(bb.ctx, tx, ids); err != nil {
				return err
			}
			for _, ev := range batch {
				if _, err := bb.store.Process(bb.ctx, tx, bb.cat, ev, 0); err != nil {
					return err
				}
			}
			return nil
		})
		require.NoError(b, err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkBatchPaid measures paid orders applied 200 to a transaction with
// a Batch, as the order worker does, over the same 1,000 returning customers
// as BenchmarkProcessPaid: an op is one event.
func BenchmarkBatchPaid(b *testing.B) {
	bb := setup(b, baseCatalog)
	const perTx = 200
	evs := make([]ledger.BatchEvent, 0, b.N)
	for i := range b.N {
		id := fmt.Sprintf("b%d", i)
		redeem := ""
		if i%4 == 3 {
			redeem = "5"
		}
		ev := paidEvent(b, id, "2026-03-01T10:00:00+07:00", id, fmt.Sprintf("c%d", i%1000), redeem, line{qty: "2", price: "25000"}, line{qty: "1", price: "12000"})
		evs = append(evs, ledger.BatchEvent{Event: ev, StreamSeq: uint64(i + 1)})
	}
	b.ResetTimer()
	for start := 0; start < len(evs); start += perTx {
		batch := evs[start:min(start+perTx, len(evs))]
		err := pgx.BeginFunc(bb.ctx, bb.pool, func(tx pgx.Tx) error {
			ids := make([]string, len(batch))
			for i, ev := range batch {
				ids[i] = string(ev.Event.Paid.CustomerID)
			}
			lb := bb.store.NewBatch(tx, bb.cat)
			lb.LockCustomers(ids)
			_, err := lb.Process(bb.ctx, batch)
			return err
		})
		require.NoError(b, err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
