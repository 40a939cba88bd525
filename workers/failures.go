package workers

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/promoengine/promoengine/pkg/ledger"
)

// isInfraFailure reports a failure that is not the fault of the events
// being processed (ledger.Transient): the same transaction will succeed
// once the cause is gone, so it is retried in place. Anything else may be
// an event's own doing and is pinned on one event (processBatch).
func isInfraFailure(err error) bool { return ledger.Transient(err) }

// retryReason labels an in-place retry for promo_batch_retries_total.
func retryReason(err error) string {
	if errors.Is(err, ledger.ErrConflict) {
		return "conflict"
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40P01":
			return "deadlock"
		case "40001":
			return "serialization"
		}
		return "pg_" + pgErr.Code
	}
	return "connection"
}
