package ledger

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ProcessedEventIDs returns which of ids are in the inbox: events the
// engine has processed. The Odoo reconciler asks it to find the orders it
// has not seen.
func ProcessedEventIDs(ctx context.Context, db DB, ids []string) (map[string]bool, error) {
	out := make(map[string]bool, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := db.Query(ctx, `SELECT event_id FROM inbox WHERE event_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("ledger: processed events: %w", err)
	}
	seen, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("ledger: processed events: %w", err)
	}
	for _, id := range seen {
		out[id] = true
	}
	return out, nil
}
