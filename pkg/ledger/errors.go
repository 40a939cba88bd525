package ledger

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
)

// Sentinels of the ledger. Callers match them with errors.Is; the worker's
// run loop decides once which are permanent (dead letter) and which are
// retried.
var (
	// ErrNoCatalog: no catalog has been applied yet.
	ErrNoCatalog = errors.New("ledger: no catalog applied")
	// ErrUnknownCatalogVersion: CatalogByVersion was asked for a version that
	// was never stored.
	ErrUnknownCatalogVersion = errors.New("ledger: unknown catalog version")
	// ErrUnknownOriginalOrder: a return or cancellation names an order that
	// has not been processed (yet). Retryable: the paid event may still be on
	// its way; the worker dead-letters after the delivery limit.
	ErrUnknownOriginalOrder = errors.New("ledger: unknown original order")
	// ErrDuplicateOrder: an order id already processed arrives under another
	// event_id. Permanent: the worker dead-letters it.
	ErrDuplicateOrder = errors.New("ledger: order already processed under another event")
	// ErrCurrencyMismatch: the order's currency is not the catalog's
	// (SPEC §3). Permanent, an invalid event.
	ErrCurrencyMismatch = errors.New("ledger: order currency differs from the catalog's")
	// ErrUnknownCustomer: Customer was asked about a customer with no account.
	ErrUnknownCustomer = errors.New("ledger: unknown customer")
	// ErrConflict: Postgres aborted the transaction to break a deadlock or a
	// serialisation conflict. Nothing was committed; retry the transaction.
	ErrConflict = errors.New("ledger: transaction conflict, retry")

	// ErrResultTooLarge refuses an event whose result is too big to publish
	// (MaxResultBytes).
	ErrResultTooLarge = errors.New("ledger: result too large")
	// ErrReconcile: a customer's lots and journal disagree.
	ErrReconcile = errors.New("ledger: reconciliation failed")
)

// Postgres error codes the store maps to sentinels.
const (
	pgUniqueViolation      = "23505"
	pgSerializationFailure = "40001"
	pgDeadlockDetected     = "40P01"
	pgLockNotAvailable     = "55P03"
)

// Constraints whose violation means a duplicate order id (two events with
// the same order id raced past the pre-check in parallel transactions).
var duplicateOrderConstraints = map[string]bool{
	"processed_orders_pkey":     true,
	"order_reversals_return_id": true,
}

// dbErr wraps an error of Postgres with what the ledger was doing, mapping
// the codes that have a domain meaning to their sentinels. It is the one
// place where Postgres codes are looked at.
func dbErr(what string, err error) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case pgSerializationFailure, pgDeadlockDetected, pgLockNotAvailable:
			return fmt.Errorf("ledger: %s: %w: %w", what, ErrConflict, err)
		case pgUniqueViolation:
			if duplicateOrderConstraints[pgErr.ConstraintName] {
				return fmt.Errorf("ledger: %s: %w: %w", what, ErrDuplicateOrder, err)
			}
		}
	}
	return fmt.Errorf("ledger: %s: %w", what, err)
}
