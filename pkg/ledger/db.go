package ledger

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DB is what the ledger needs of a pool, a connection or a transaction.
// Functions that must run inside the event's transaction take a pgx.Tx
// instead, so the type says which is which.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// Read runs a read that need not be current on replica (when not nil),
// and on primary when the replica cannot answer (down, restarting, too far
// behind to serve the query): a replica makes reads cheaper for the primary,
// never less available.
func Read(replica, primary DB, fn func(DB) error) error {
	if replica == nil {
		return fn(primary)
	}
	err := fn(replica)
	if Transient(err) {
		return fn(primary)
	}
	return err
}
