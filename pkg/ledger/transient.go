package ledger

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Transient reports a failure that is not the fault of the data being
// written or read — PostgreSQL unreachable, restarting, out of resources,
// a serialization failure or deadlock, a statement or lock timeout — so
// the same transaction will succeed once the cause is gone: retry it in
// place (or, for a read, on another server).
func Transient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrConflict) || errors.Is(err, pgx.ErrTxClosed) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code[:2] {
		case "08", // connection exception
			"40", // transaction rollback: serialization failure, deadlock
			"53", // insufficient resources: disk full, out of memory, too many connections
			"57", // operator intervention: admin/crash shutdown, cannot connect now, query canceled (statement_timeout)
			"58": // system error: I/O
			return true
		}
		return pgErr.Code == "55P03" // lock_not_available (lock_timeout)
	}
	// Not an answer from the server: the connection, the network, a
	// deadline of our own.
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connErr) || errors.As(err, &netErr) ||
		pgconn.Timeout(err) || pgconn.SafeToRetry(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, context.DeadlineExceeded)
}
