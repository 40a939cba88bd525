package ledger

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/promoengine/promoengine/pkg/dec"
)

// ErrLimitRace: at Flush, another transaction had used up what this batch
// counted on of a program's total_uses or budget. Nothing is lost: the
// caller rolls the batch back and runs it again with Process (locking
// counters), which decides exactly who gets the last uses.
var ErrLimitRace = errors.New("ledger: program limit taken by a concurrent transaction, retry with locks")

// ProgramCounters defers the global counters of limited programs (their
// uses and budget of all time and per period, in each scope) to the end of
// a batch transaction.
//
// Locking a popular program's counter row when an event first asks about it
// would hold that lock for the rest of the batch, and every other batch
// touching the program would queue behind it: the engine would run one
// batch at a time. Instead, inside a batch the counters are read once
// without a lock, this batch's own uses are added in memory, and Flush
// applies them just before commit with a conditional update that refuses to
// go over a limit. The row lock is then held only from Flush to commit.
//
// Exactness is kept: a conditional update never takes a counter past its
// limit, and when it would (the batch counted on uses another transaction
// took meanwhile) Flush returns ErrLimitRace and the batch is run again with
// locks, which allocate the last uses exactly. Per-customer uses need none
// of this: the customer's account row is locked for the whole batch anyway.
type ProgramCounters struct {
	base   map[counterKey]programCount
	delta  map[counterKey]*programCount
	limits map[counterKey]counterLimit
	// order lists the batch's events in the order they were applied: when
	// they took or gave back uses of limited programs, Flush dates their
	// inbox rows in that order.
	order []string
}

// stamp notes that eventID was applied (see stampOrderSQL).
func (c *ProgramCounters) stamp(eventID string) {
	if n := len(c.order); n == 0 || c.order[n-1] != eventID {
		c.order = append(c.order, eventID)
	}
}

// stampOrderSQL dates the inbox rows of a batch that took or gave back
// uses of limited programs at the moment the counters are locked, one
// microsecond apart in the order the events were applied. Who gets the last
// uses of a global limit is decided by that moment, across processes and
// partitions, which a transaction's start time (the inbox's default) does
// not reflect; a dry run re-applies processed events in inbox order, and
// with this date reaches the same decisions (SPEC §1.1).
const stampOrderSQL = `
	UPDATE inbox i SET processed_at = t.now + o.n * interval '1 microsecond'
	FROM (SELECT clock_timestamp() AS now) t, unnest($1::text[]) WITH ORDINALITY AS o(id, n)
	WHERE i.event_id = o.id`

type programCount struct {
	uses   int64
	budget dec.Decimal
}

// NewProgramCounters returns an empty set of deferred counters for one
// batch transaction.
func NewProgramCounters() *ProgramCounters {
	return &ProgramCounters{base: map[counterKey]programCount{}, delta: map[counterKey]*programCount{}, limits: map[counterKey]counterLimit{}}
}

// used returns a counter's uses and budget used as this batch sees them:
// the committed counter (read once, unlocked) plus this batch's own. lim is
// what the counter may reach, which Flush enforces.
func (c *ProgramCounters) used(ctx context.Context, db DB, k counterKey, lim counterLimit) (programCount, error) {
	if _, ok := c.base[k]; !ok {
		base := programCount{budget: dec.Zero}
		err := db.QueryRow(ctx, `SELECT COALESCE(max(uses), 0), COALESCE(max(budget_used), 0) FROM program_usage WHERE program_id = $1 AND scope = $2 AND period = $3`,
			k.program, k.scope, k.period).Scan(&base.uses, &base.budget)
		if err != nil {
			return programCount{}, dbErr("read counters of program "+k.program, err)
		}
		c.base[k] = base
	}
	return c.current(k, lim)
}

// current is used for a counter whose committed value is loaded (by used
// or queueLoad); a counter that is not is an error, never a silent zero.
func (c *ProgramCounters) current(k counterKey, lim counterLimit) (programCount, error) {
	base, ok := c.base[k]
	if !ok {
		return programCount{}, fmt.Errorf("ledger: counter of program %s (scope %q, period %q) was not loaded", k.program, k.scope, k.period)
	}
	c.limits[k] = lim
	if d := c.delta[k]; d != nil {
		return programCount{uses: base.uses + d.uses, budget: dec.Add(base.budget, d.budget)}, nil
	}
	return base, nil
}

// queueLoad adds to b the read of the committed counters not loaded yet,
// so that a Batch reads every counter its events may ask about in its
// first round trip.
func (c *ProgramCounters) queueLoad(b *pgx.Batch, keys []counterKey) {
	var programs, scopes, periods []string
	for _, k := range keys {
		if _, ok := c.base[k]; !ok {
			programs, scopes, periods = append(programs, k.program), append(scopes, k.scope), append(periods, k.period)
			c.base[k] = programCount{budget: dec.Zero} // no row yet: nothing used
		}
	}
	if len(programs) == 0 {
		return
	}
	b.Queue(`SELECT u.program_id, u.scope, u.period, u.uses, u.budget_used
		FROM unnest($1::text[], $2::text[], $3::text[]) AS k(program_id, scope, period)
		JOIN program_usage u ON u.program_id = k.program_id AND u.scope = k.scope AND u.period = k.period`,
		programs, scopes, periods).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var k counterKey
			var n programCount
			if err := rows.Scan(&k.program, &k.scope, &k.period, &n.uses, &n.budget); err != nil {
				return err
			}
			c.base[k] = n
		}
		return rows.Err()
	})
}

// add counts one use in this batch, in its all-time and period counters.
func (c *ProgramCounters) add(u programUse) {
	keys := u.keys()
	c.change(keys.total, 1, u.discount)
	if keys.hasPeriod() {
		c.change(keys.period, 1, u.discount)
	}
}

// release gives back one use and its discount, for a cancelled order, to
// the counters the use counted in.
func (c *ProgramCounters) release(u programUse) {
	keys := u.keys()
	c.change(keys.total, -1, u.discount.Neg())
	if keys.hasPeriod() {
		c.change(keys.period, -1, u.discount.Neg())
	}
}

func (c *ProgramCounters) change(k counterKey, uses int64, budget dec.Decimal) {
	d := c.delta[k]
	if d == nil {
		d = &programCount{budget: dec.Zero}
		c.delta[k] = d
	}
	d.uses += uses
	d.budget = dec.Add(d.budget, budget)
}

// Flush applies the batch's uses to the counters, refusing to exceed any
// limit. Call it last, right before commit. ErrLimitRace means the batch
// must be rolled back and run again with Process.
func (c *ProgramCounters) Flush(ctx context.Context, tx pgx.Tx) error {
	b := &pgx.Batch{}
	check := c.queueFlush(b)
	if err := runBatch(ctx, tx, b, "flush program counters"); err != nil {
		return err
	}
	return check()
}

func compareKeys(a, b counterKey) int {
	if c := cmp.Compare(a.program, b.program); c != 0 {
		return c
	}
	if c := cmp.Compare(a.scope, b.scope); c != 0 {
		return c
	}
	return cmp.Compare(a.period, b.period)
}

// queueFlush adds Flush's statements to b; check, called once b has run,
// reports ErrLimitRace. The deltas are cleared: the counters then hold what
// is written.
func (c *ProgramCounters) queueFlush(b *pgx.Batch) (check func() error) {
	// Every counter asked about has its row, used or not, as when the
	// counters are locked one by one (which creates a row to lock it).
	asked := slices.SortedFunc(maps.Keys(c.limits), compareKeys)
	if len(asked) > 0 {
		programs, scopes, periods := make([]string, len(asked)), make([]string, len(asked)), make([]string, len(asked))
		for i, k := range asked {
			programs[i], scopes[i], periods[i] = k.program, k.scope, k.period
		}
		b.Queue(`INSERT INTO program_usage (program_id, scope, period) SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING`,
			programs, scopes, periods)
	}
	if len(c.delta) == 0 {
		return func() error { return nil }
	}
	defer func() {
		if len(c.order) > 0 {
			b.Queue(stampOrderSQL, c.order) // after the counters' rows are locked
			c.order = nil
		}
	}()
	keys := slices.SortedFunc(maps.Keys(c.delta), compareKeys)
	n := len(keys)
	programs, scopes, periods := make([]string, n), make([]string, n), make([]string, n)
	uses := make([]int64, n)
	budgets := make([]string, n)
	maxUses := make([]*int64, n)
	maxBudgets := make([]*string, n)
	for i, k := range keys {
		d := c.delta[k]
		programs[i], scopes[i], periods[i] = k.program, k.scope, k.period
		uses[i], budgets[i] = d.uses, d.budget.String()
		lim := c.limits[k]
		maxUses[i] = lim.uses
		if lim.budget != nil {
			s := lim.budget.String()
			maxBudgets[i] = &s
		}
		if base, ok := c.base[k]; ok {
			c.base[k] = programCount{uses: base.uses + d.uses, budget: dec.Add(base.budget, d.budget)}
		}
	}
	clear(c.delta)
	b.Queue(`INSERT INTO program_usage (program_id, scope, period) SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING`,
		programs, scopes, periods)
	// Locks in key order, so two flushes never deadlock on each other.
	b.Queue(`SELECT u.program_id FROM program_usage u
		JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(program_id, scope, period)
		  ON u.program_id = k.program_id AND u.scope = k.scope AND u.period = k.period
		ORDER BY u.program_id COLLATE "C", u.scope COLLATE "C", u.period COLLATE "C" FOR UPDATE OF u`, programs, scopes, periods)
	var updated int64
	b.Queue(`
		UPDATE program_usage p SET uses = p.uses + d.uses, budget_used = p.budget_used + d.budget
		FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::numeric[], $6::bigint[], $7::numeric[])
		     AS d(id, scope, period, uses, budget, max_uses, max_budget)
		WHERE p.program_id = d.id AND p.scope = d.scope AND p.period = d.period
		  AND (d.max_uses IS NULL OR d.uses <= 0 OR p.uses + d.uses <= d.max_uses)
		  AND (d.max_budget IS NULL OR d.budget <= 0 OR p.budget_used + d.budget <= d.max_budget)`,
		programs, scopes, periods, uses, numericArray(budgets), maxUses, nullableNumericArray(maxBudgets)).Exec(func(ct pgconn.CommandTag) error {
		updated = ct.RowsAffected()
		return nil
	})
	return func() error {
		if updated != int64(n) {
			return ErrLimitRace
		}
		return nil
	}
}
