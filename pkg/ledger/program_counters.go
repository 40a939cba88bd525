package ledger

import (
	"context"
	"errors"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/rules"
)

// ErrLimitRace: at Flush, another transaction had used up what this batch
// counted on of a program's total_uses or budget. Nothing is lost: the
// caller rolls the batch back and runs it again with Process (locking
// counters), which decides exactly who gets the last uses.
var ErrLimitRace = errors.New("ledger: program limit taken by a concurrent transaction, retry with locks")

// ProgramCounters defers the global counters of limited programs
// (total_uses and budget) to the end of a batch transaction.
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
	base   map[string]programCount
	delta  map[string]*programCount
	limits map[string]rules.Limits
}

type programCount struct {
	uses   int64
	budget dec.Decimal
}

// NewProgramCounters returns an empty set of deferred counters for one
// batch transaction.
func NewProgramCounters() *ProgramCounters {
	return &ProgramCounters{base: map[string]programCount{}, delta: map[string]*programCount{}, limits: map[string]rules.Limits{}}
}

// used returns the program's uses and budget used as this batch sees them:
// the committed counters (read once, unlocked) plus this batch's own.
func (c *ProgramCounters) used(ctx context.Context, db DB, p *rules.Program) (int64, dec.Decimal, error) {
	if _, ok := c.base[p.ID]; !ok {
		var base programCount
		err := db.QueryRow(ctx, `SELECT COALESCE(max(uses), 0), COALESCE(max(budget_used), 0) FROM program_usage WHERE program_id = $1`, p.ID).
			Scan(&base.uses, &base.budget)
		if err != nil {
			return 0, dec.Zero, dbErr("read counters of program "+p.ID, err)
		}
		c.base[p.ID] = base
	}
	uses, budget := c.current(p)
	return uses, budget, nil
}

// current is used for a program whose committed counters are loaded.
func (c *ProgramCounters) current(p *rules.Program) (int64, dec.Decimal) {
	c.limits[p.ID] = p.Limits
	base := c.base[p.ID]
	if d := c.delta[p.ID]; d != nil {
		return base.uses + d.uses, dec.Add(base.budget, d.budget)
	}
	return base.uses, base.budget
}

// queueLoad adds to b the read of the committed counters of the programs
// not loaded yet, so that a Batch reads them all in its first round trip.
func (c *ProgramCounters) queueLoad(b *pgx.Batch, programs []*rules.Program) {
	var ids []string
	for _, p := range programs {
		if _, ok := c.base[p.ID]; !ok {
			ids = append(ids, p.ID)
			c.base[p.ID] = programCount{budget: dec.Zero} // no row yet: nothing used
		}
	}
	if len(ids) == 0 {
		return
	}
	b.Queue(`SELECT program_id, uses, budget_used FROM program_usage WHERE program_id = ANY($1)`, ids).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id string
			var n programCount
			if err := rows.Scan(&id, &n.uses, &n.budget); err != nil {
				return err
			}
			c.base[id] = n
		}
		return rows.Err()
	})
}

// add counts one use of each applied program in this batch.
func (c *ProgramCounters) add(uses []rules.Use) {
	for _, u := range uses {
		d := c.deltaOf(u.ProgramID)
		d.uses++
		d.budget = dec.Add(d.budget, u.Discount)
	}
}

// release gives back one use and its discount, for a cancelled order.
func (c *ProgramCounters) release(programID string, discount dec.Decimal) {
	d := c.deltaOf(programID)
	d.uses--
	d.budget = dec.Sub(d.budget, discount)
}

func (c *ProgramCounters) deltaOf(programID string) *programCount {
	d := c.delta[programID]
	if d == nil {
		d = &programCount{}
		c.delta[programID] = d
	}
	return d
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

// queueFlush adds Flush's statements to b; check, called once b has run,
// reports ErrLimitRace. The deltas are cleared: the counters then hold what
// is written.
func (c *ProgramCounters) queueFlush(b *pgx.Batch) (check func() error) {
	if len(c.delta) == 0 {
		return func() error { return nil }
	}
	ids := make([]string, 0, len(c.delta))
	for id := range c.delta {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	uses := make([]int64, len(ids))
	budgets := make([]string, len(ids))
	maxUses := make([]*int64, len(ids))
	maxBudgets := make([]*string, len(ids))
	for i, id := range ids {
		d := c.delta[id]
		uses[i], budgets[i] = d.uses, d.budget.String()
		lim := c.limits[id]
		maxUses[i] = lim.TotalUses
		if lim.Budget != nil {
			s := lim.Budget.String()
			maxBudgets[i] = &s
		}
		if base, ok := c.base[id]; ok {
			c.base[id] = programCount{uses: base.uses + d.uses, budget: dec.Add(base.budget, d.budget)}
		}
	}
	clear(c.delta)
	b.Queue(`INSERT INTO program_usage (program_id) SELECT unnest($1::text[]) ON CONFLICT (program_id) DO NOTHING`, ids)
	// Locks in id order, so two flushes never deadlock on each other.
	b.Queue(`SELECT program_id FROM program_usage WHERE program_id = ANY($1) ORDER BY program_id COLLATE "C" FOR UPDATE`, ids)
	var updated int64
	b.Queue(`
		UPDATE program_usage p SET uses = p.uses + d.uses, budget_used = p.budget_used + d.budget
		FROM unnest($1::text[], $2::bigint[], $3::numeric[], $4::bigint[], $5::numeric[]) AS d(id, uses, budget, max_uses, max_budget)
		WHERE p.program_id = d.id
		  AND (d.max_uses IS NULL OR p.uses + d.uses <= d.max_uses)
		  AND (d.max_budget IS NULL OR p.budget_used + d.budget <= d.max_budget)`,
		ids, uses, budgets, maxUses, maxBudgets).Exec(func(ct pgconn.CommandTag) error {
		updated = ct.RowsAffected()
		return nil
	})
	return func() error {
		if updated != int64(len(ids)) {
			return ErrLimitRace
		}
		return nil
	}
}
