package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/rules"
)

// Store applies order events to the ledger and answers questions about it.
// It holds no state of its own besides the subject names its results are
// enqueued on: everything lives in Postgres, in the caller's transaction, so
// one Store serves every worker goroutine.
type Store struct {
	subjects     events.Subjects
	couponSecret []byte // derives issued coupon codes; none: a catalog that issues coupons fails
}

// NewStore returns a Store that enqueues results on subjects' result
// subjects.
func NewStore(subjects events.Subjects, opts ...StoreOption) *Store {
	s := &Store{subjects: subjects}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Process applies one input event inside the caller's transaction: it
// records the event in the inbox, changes the ledger, stores the processed
// order and enqueues its result to the outbox, and returns the result.
//
// An event already in the inbox returns (nil, nil) and changes nothing. On
// any error the transaction holds partial writes (at least the inbox row)
// and must be rolled back, or rolled back to a savepoint taken before the
// call. Errors: ErrUnknownOriginalOrder (retry later), ErrDuplicateOrder and
// ErrCurrencyMismatch (permanent), ErrConflict (retry the transaction).
func (s *Store) Process(ctx context.Context, tx pgx.Tx, cat *rules.Catalog, ev *events.Event, streamSeq uint64) (*events.OrderResult, error) {
	return s.ProcessDeferred(ctx, tx, cat, ev, streamSeq, nil)
}

// ProcessDeferred is Process for one event of a batch whose global program
// counters are deferred to counters (see ProgramCounters): the caller calls
// counters.Flush before commit and, on ErrLimitRace, rolls back and runs
// the batch again with Process. A cancellation gives its uses back through
// counters too. Nil counters is Process.
func (s *Store) ProcessDeferred(ctx context.Context, tx pgx.Tx, cat *rules.Catalog, ev *events.Event, streamSeq uint64, counters *ProgramCounters) (*events.OrderResult, error) {
	if cat == nil {
		return nil, ErrNoCatalog
	}
	var res *events.OrderResult
	var err error
	switch {
	case ev.Paid != nil:
		res, err = s.processPaid(ctx, tx, cat, ev, streamSeq, counters)
	case ev.Returned != nil, ev.Cancelled != nil:
		res, err = s.processReversal(ctx, tx, cat, ev, streamSeq, counters)
	default:
		return nil, fmt.Errorf("ledger: event %s carries no order", ev.EventID)
	}
	if err != nil || res == nil {
		return res, err
	}
	if counters != nil {
		counters.stamp(ev.EventID)
	} else if _, err := tx.Exec(ctx, stampOrderSQL, []string{ev.EventID}); err != nil {
		// Counters locked as they are used: the event is dated after its
		// locks, in the transaction's order (see stampOrderSQL).
		return nil, dbErr("date the event", err)
	}
	return res, nil
}

// queueInbox adds the inbox insert to b; *fresh reports whether the event
// was new once the batch has run.
func queueInbox(b *pgx.Batch, ev *events.Event, streamSeq uint64, fresh *bool) {
	b.Queue(`INSERT INTO inbox (event_id, event_type, stream_seq) VALUES ($1, $2, $3) ON CONFLICT (event_id) DO NOTHING`,
		ev.EventID, ev.Type, streamSeqParam(streamSeq)).Exec(func(ct pgconn.CommandTag) error {
		*fresh = ct.RowsAffected() == 1
		return nil
	})
}

// runBatch sends b and runs its callbacks, mapping Postgres errors.
func runBatch(ctx context.Context, db DB, b *pgx.Batch, what string) error {
	if b.Len() == 0 {
		return nil
	}
	return dbErr(what, db.SendBatch(ctx, b).Close())
}

// format quantizes and formats for the wire: amounts with the catalog's money
// decimals, points with its points decimals, instants in its timezone.
type format struct {
	loc    *time.Location
	money  int32
	points int32
}

func formatOf(cat *rules.Catalog) format {
	loc := cat.Location
	if loc == nil {
		loc = time.UTC
	}
	return format{loc: loc, money: cat.MoneyDecimals, points: cat.Points.Decimals}
}

func (f format) time(t time.Time) string { return events.FormatTime(t.In(f.loc)) }

func (f format) timePtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := f.time(*t)
	return &s
}

func (f format) amount(x dec.Decimal) dec.Decimal { return x.Round(f.money) }
func (f format) pts(x dec.Decimal) dec.Decimal    { return x.Round(f.points) }

// pgTime is t as Postgres keeps it: microseconds. Every instant the ledger
// stores and later reads back goes through it, so that a value computed in Go
// and the same value read back format identically.
func pgTime(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

func pgTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := pgTime(*t)
	return &v
}

// isNoRows reports pgx's "no rows" for a QueryRow.
func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

// decArray renders decimals as a numeric[] parameter (see numericArray).
func decArray(xs []dec.Decimal) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = x.String()
	}
	return numericArray(s)
}

// numericArray renders decimals, given as their strings, as the text of a
// numeric[] parameter. pgx sends a Go string in text format as it is, while
// a []string for numeric[] it first tries, and fails, to encode as binary
// numerics, and plans that failure anew on every call: that was a tenth of
// the engine's CPU at 1,000 orders/s (the batch statement has ten numeric
// arrays). A decimal's string holds only digits, a sign, a point and an
// exponent, never a character an array literal would need quoted.
func numericArray(xs []string) string { return "{" + strings.Join(xs, ",") + "}" }

// nullableNumericArray is numericArray with NULL for a nil element.
func nullableNumericArray(xs []*string) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = "NULL"
		if x != nil {
			s[i] = *x
		}
	}
	return numericArray(s)
}
