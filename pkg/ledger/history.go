package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The history of processing, as `replay --dry-run` reads it to re-apply
// what was processed, in the order it was processed: the inbox, the
// recorded job runs, and the stored results.

// ProcessedUpTo counts the inbox rows of events up to stream sequence last
// and returns the smallest of their sequences (nil when there is none).
func ProcessedUpTo(ctx context.Context, db DB, last uint64) (count int, first *int64, err error) {
	err = db.QueryRow(ctx, `SELECT count(*), min(stream_seq) FROM inbox WHERE stream_seq <= $1`, int64(last)).
		Scan(&count, &first)
	if err != nil {
		return 0, nil, fmt.Errorf("ledger: processed events: %w", err)
	}
	return count, first, nil
}

// ProcessedEvent is an inbox row.
type ProcessedEvent struct {
	EventID     string
	StreamSeq   int64
	ProcessedAt time.Time // the start of the transaction that processed it
}

// DeclareProcessedCursor declares in tx the cursor name over the inbox rows
// of events up to stream sequence last, in processing order: by
// processed_at, then stream sequence. FetchProcessed reads it.
func DeclareProcessedCursor(ctx context.Context, tx pgx.Tx, name string, last uint64) error {
	_, err := tx.Exec(ctx, fmt.Sprintf(`DECLARE %s NO SCROLL CURSOR FOR
		SELECT event_id, stream_seq, processed_at FROM inbox WHERE stream_seq <= %d ORDER BY processed_at, stream_seq`,
		pgx.Identifier{name}.Sanitize(), last))
	if err != nil {
		return fmt.Errorf("ledger: processed events: %w", err)
	}
	return nil
}

// FetchProcessed reads the next n rows of a DeclareProcessedCursor cursor
// (none at its end).
func FetchProcessed(ctx context.Context, tx pgx.Tx, name string, n int) ([]ProcessedEvent, error) {
	rows, err := tx.Query(ctx, fmt.Sprintf("FETCH %d FROM %s", n, pgx.Identifier{name}.Sanitize()))
	if err != nil {
		return nil, fmt.Errorf("ledger: processed events: %w", err)
	}
	page, err := pgx.CollectRows(rows, pgx.RowToStructByPos[ProcessedEvent])
	if err != nil {
		return nil, fmt.Errorf("ledger: processed events: %w", err)
	}
	return page, nil
}

// JobRun is a recorded run of the expiry and downgrade job.
type JobRun struct {
	AsOf           time.Time
	CatalogVersion int64
	RanAt          time.Time
}

// JobRuns returns every recorded job run, in the order they ran.
func JobRuns(ctx context.Context, db DB) ([]JobRun, error) {
	rows, err := db.Query(ctx, `SELECT as_of, catalog_version, ran_at FROM job_runs ORDER BY ran_at, id`)
	if err != nil {
		return nil, fmt.Errorf("ledger: job runs: %w", err)
	}
	runs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[JobRun])
	if err != nil {
		return nil, fmt.Errorf("ledger: job runs: %w", err)
	}
	return runs, nil
}

// StoredEvent is what the database knows of a processed event.
type StoredEvent struct {
	InInbox        bool
	StreamSeq      *int64 // the inbox's stream_seq
	Stored         bool   // a processed_orders or order_reversals row
	CatalogVersion int64
	Result         []byte // only for the events asked with their result
}

// LookupStored reads, in one round trip, the inbox rows of the events ids
// and what is stored of the paid orders paidOrders (by order id) and of the
// reversals (by event id): the catalog version, and the result of the
// events in withResult.
func LookupStored(ctx context.Context, db DB, ids, paidOrders, reversals, withResult []string) (map[string]StoredEvent, error) {
	out := make(map[string]StoredEvent, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT event_id, stream_seq FROM inbox WHERE event_id = ANY($1)`, ids).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id string
			var st StoredEvent
			if err := rows.Scan(&id, &st.StreamSeq); err != nil {
				return err
			}
			st.InInbox = true
			out[id] = st
		}
		return rows.Err()
	})
	scanStored := func(rows pgx.Rows) error {
		for rows.Next() {
			var id string
			var version int64
			var result *string
			if err := rows.Scan(&id, &version, &result); err != nil {
				return err
			}
			st := out[id]
			st.Stored, st.CatalogVersion = true, version
			if result != nil {
				st.Result = []byte(*result)
			}
			out[id] = st
		}
		return rows.Err()
	}
	if len(paidOrders) > 0 {
		b.Queue(`SELECT event_id, catalog_version, CASE WHEN event_id = ANY($2) THEN result::text END
			FROM processed_orders WHERE order_id = ANY($1)`, paidOrders, withResult).Query(scanStored)
	}
	if len(reversals) > 0 {
		b.Queue(`SELECT event_id, catalog_version, CASE WHEN event_id = ANY($2) THEN result::text END
			FROM order_reversals WHERE event_id = ANY($1)`, reversals, withResult).Query(scanStored)
	}
	if err := db.SendBatch(ctx, b).Close(); err != nil {
		return nil, fmt.Errorf("ledger: look up processed events: %w", err)
	}
	return out, nil
}
