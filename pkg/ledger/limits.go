package ledger

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/rules"
)

// limitsReader answers rules.LimitsReader from the program counters.
//
// Inside an event's transaction (lock true) it locks the program's usage row
// FOR UPDATE, creating it on first use, and the lock is held until commit:
// a second transaction asking about the same program waits until the first
// has recorded its use, so total_uses and budget are exact however many
// workers race. Per-customer uses need no lock of their own: the customer's
// account row is already held. For a quote (lock false) it only reads.
//
// With counters (a batch of Store.ProcessDeferred), the global counters are
// read without a lock and updated at ProgramCounters.Flush instead.
type limitsReader struct {
	ctx      context.Context
	db       DB
	lock     bool
	counters *ProgramCounters
}

func (l *limitsReader) Remaining(p *rules.Program, customerID string) (rules.Remaining, error) {
	lim := p.Limits
	b := &pgx.Batch{}
	var (
		uses, customerUses int64
		used               dec.Decimal
	)
	global := lim.TotalUses != nil || lim.Budget != nil
	if global && l.counters != nil {
		var err error
		if uses, used, err = l.counters.used(l.ctx, l.db, p); err != nil {
			return rules.Remaining{}, err
		}
		global = false
	}
	if global {
		if l.lock {
			b.Queue(`INSERT INTO program_usage (program_id) VALUES ($1) ON CONFLICT (program_id) DO NOTHING`, p.ID)
			b.Queue(`SELECT uses, budget_used FROM program_usage WHERE program_id = $1 FOR UPDATE`, p.ID).
				QueryRow(func(row pgx.Row) error { return row.Scan(&uses, &used) })
		} else {
			b.Queue(`SELECT COALESCE(max(uses), 0), COALESCE(max(budget_used), 0) FROM program_usage WHERE program_id = $1`, p.ID).
				QueryRow(func(row pgx.Row) error { return row.Scan(&uses, &used) })
		}
	}
	perCustomer := lim.UsesPerCustomer != nil && customerID != ""
	if perCustomer {
		b.Queue(`SELECT COALESCE(max(uses), 0) FROM program_customer_usage WHERE program_id = $1 AND customer_id = $2`, p.ID, customerID).
			QueryRow(func(row pgx.Row) error { return row.Scan(&customerUses) })
	}
	if err := runBatch(l.ctx, l.db, b, "read limits of program "+p.ID); err != nil {
		return rules.Remaining{}, err
	}
	return remainingOf(lim, uses, used, perCustomer, customerUses), nil
}

// remainingOf is what a program's limits leave, given its uses and budget
// used so far and, when perCustomer, the customer's uses of it.
func remainingOf(lim rules.Limits, uses int64, used dec.Decimal, perCustomer bool, customerUses int64) rules.Remaining {
	r := rules.Remaining{UsesLeft: true}
	if lim.TotalUses != nil && uses >= *lim.TotalUses {
		r.UsesLeft = false
	}
	if perCustomer && customerUses >= *lim.UsesPerCustomer {
		r.UsesLeft = false
	}
	if lim.Budget != nil {
		left := dec.Max(dec.Sub(*lim.Budget, used), dec.Zero)
		r.Budget = &left
	}
	return r
}

// queueUses records one use and its discount for each applied program with
// limits, and remembers them per order so that a cancellation can give them
// back (SPEC §6.9).
//
// With counters, the global counters are left to ProgramCounters.Flush.
func queueUses(b *pgx.Batch, uses []rules.Use, orderID, customerID string, counters *ProgramCounters) {
	if len(uses) == 0 {
		return
	}
	ids := make([]string, len(uses))
	discounts := make([]string, len(uses))
	for i, u := range uses {
		ids[i] = u.ProgramID
		discounts[i] = u.Discount.String()
	}
	if counters != nil {
		counters.add(uses)
	} else {
		b.Queue(`
			INSERT INTO program_usage AS p (program_id, uses, budget_used)
			SELECT id, 1, d FROM unnest($1::text[], $2::numeric[]) AS u(id, d)
			ON CONFLICT (program_id) DO UPDATE SET uses = p.uses + 1, budget_used = p.budget_used + excluded.budget_used`,
			ids, discounts)
	}
	if customerID != "" {
		b.Queue(`
			INSERT INTO program_customer_usage AS p (program_id, customer_id, uses)
			SELECT id, $2, 1 FROM unnest($1::text[]) AS id
			ON CONFLICT (program_id, customer_id) DO UPDATE SET uses = p.uses + 1`,
			ids, customerID)
	}
	b.Queue(`
		INSERT INTO order_program_uses (order_id, program_id, customer_id, discount)
		SELECT $1, id, NULLIF($4, ''), d FROM unnest($2::text[], $3::numeric[]) AS u(id, d)`,
		orderID, ids, discounts, customerID)
}

// programUse is one use an order made of a limited program.
type programUse struct {
	programID string
	discount  dec.Decimal
}

// queueReadUses adds to b the read of an order's uses not given back yet.
func queueReadUses(b *pgx.Batch, orderID string, into *[]programUse) {
	b.Queue(`SELECT program_id, discount FROM order_program_uses WHERE order_id = $1 AND NOT released ORDER BY program_id COLLATE "C"`, orderID).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var u programUse
				if err := rows.Scan(&u.programID, &u.discount); err != nil {
					return err
				}
				*into = append(*into, u)
			}
			return rows.Err()
		})
}

// queueReleaseUses gives back the uses and budget of a cancelled order.
//
// With counters, the global counters are given back through them (uses are
// the order's unreleased uses, read beforehand with queueReadUses): the
// batch's deferred uses of the same programs may not be in program_usage yet,
// and the batch's later events must see the released uses as it counts them.
func queueReleaseUses(b *pgx.Batch, orderID string, counters *ProgramCounters, uses []programUse) {
	if counters != nil {
		for _, u := range uses {
			counters.release(u.programID, u.discount)
		}
	} else {
		b.Queue(`
			UPDATE program_usage p SET uses = p.uses - 1, budget_used = p.budget_used - u.discount
			FROM order_program_uses u
			WHERE u.order_id = $1 AND NOT u.released AND p.program_id = u.program_id`, orderID)
	}
	b.Queue(`
		UPDATE program_customer_usage p SET uses = p.uses - 1
		FROM order_program_uses u
		WHERE u.order_id = $1 AND NOT u.released AND p.program_id = u.program_id AND p.customer_id = u.customer_id`, orderID)
	b.Queue(`UPDATE order_program_uses SET released = true WHERE order_id = $1 AND NOT released`, orderID)
}
