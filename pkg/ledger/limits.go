package ledger

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/rules"
)

// counterKey names one row of program_usage: a program's uses and budget
// used in one scope (the company or pos config its limits.scope keeps
// apart, "" for the chain) and one calendar period ("" for all time).
type counterKey struct{ program, scope, period string }

// useKeys are the counters one use of program p by an order counts in: the
// all-time counter of its scope, always, and the counter of its scope and
// calendar period when the program has per_period (SPEC §6.9). Every
// limited program keeps its all-time counters whatever its limits, so that
// a limit added by a later catalog finds the history; period counters exist
// only for programs with per_period.
type useKeys struct {
	total  counterKey
	period counterKey // period "" when the program has no per_period
}

func keysOf(cat *rules.Catalog, p *rules.Program, ev *events.Event) useKeys {
	k := cat.CountersKey(p, string(ev.CompanyID), string(ev.PosConfigID), ev.OccurredAt)
	keys := useKeys{total: counterKey{p.ID, k.Scope, ""}}
	if k.Period != "" {
		keys.period = counterKey{p.ID, k.Scope, k.Period}
	}
	return keys
}

func (k useKeys) hasPeriod() bool { return k.period.period != "" }

// counterLimit is what one counter may reach: a counter of all time is
// bounded by total_uses and budget, a period counter by per_period's uses
// and budget. nil: unbounded.
type counterLimit struct {
	uses   *int64
	budget *dec.Decimal
}

func (l counterLimit) any() bool { return l.uses != nil || l.budget != nil }

func totalLimit(lim rules.Limits) counterLimit {
	return counterLimit{uses: lim.TotalUses, budget: lim.Budget}
}

func periodLimit(lim rules.Limits) counterLimit {
	if pp := lim.PerPeriod; pp != nil {
		return counterLimit{uses: pp.Uses, budget: pp.Budget}
	}
	return counterLimit{}
}

// needsCustomerCounts reports a program with a per-customer limit.
func needsCustomerCounts(lim rules.Limits) bool {
	return lim.UsesPerCustomer != nil || (lim.PerPeriod != nil && lim.PerPeriod.UsesPerCustomer != nil)
}

// usage is what an order sees of a program's counters: the all-time and
// period counters of its scope, and, for a customer, the customer's uses
// in both.
type usage struct {
	total, period            programCount
	perCustomer              bool // a customer's order: the customer counts below apply
	customer, customerPeriod int64
}

// remainingOf is what a program's limits leave for one more order: every
// uses counter must allow one more use (the first that does not is named),
// and the budget left is the smallest remainder of the budgets (SPEC §6.9).
func remainingOf(lim rules.Limits, u usage) rules.Remaining {
	r := rules.Remaining{UsesLeft: true}
	stop := func(k rules.Limit) {
		if r.UsesLeft {
			r.UsesLeft, r.Stopped = false, k
		}
	}
	if lim.TotalUses != nil && u.total.uses >= *lim.TotalUses {
		stop(rules.LimitTotalUses)
	}
	if u.perCustomer && lim.UsesPerCustomer != nil && u.customer >= *lim.UsesPerCustomer {
		stop(rules.LimitUsesPerCustomer)
	}
	pp := lim.PerPeriod
	if pp != nil && pp.Uses != nil && u.period.uses >= *pp.Uses {
		stop(rules.LimitPeriodUses)
	}
	if pp != nil && u.perCustomer && pp.UsesPerCustomer != nil && u.customerPeriod >= *pp.UsesPerCustomer {
		stop(rules.LimitPeriodUsesPerCustomer)
	}
	if lim.Budget != nil {
		left := dec.Max(dec.Sub(*lim.Budget, u.total.budget), dec.Zero)
		r.Budget, r.BudgetLimit = &left, rules.LimitBudget
	}
	if pp != nil && pp.Budget != nil {
		left := dec.Max(dec.Sub(*pp.Budget, u.period.budget), dec.Zero)
		if r.Budget == nil || left.Less(*r.Budget) {
			r.Budget, r.BudgetLimit = &left, rules.LimitPeriodBudget
		}
	}
	return r
}

// limitsReader answers rules.LimitsReader from the program counters of the
// order's scope and period.
//
// Inside an event's transaction (lock true) it locks the counter rows a
// limit bounds FOR UPDATE, creating them on first use, and the locks are
// held until commit: a second transaction asking about the same counters
// waits until the first has recorded its use, so every limit is exact
// however many workers race. Counters of other stores or other periods are
// other rows, so a per-store program locks only its store's. Per-customer
// uses need no lock of their own: the customer's account row is already
// held. For a quote (lock false) it only reads.
//
// With counters (a batch of Store.ProcessDeferred), the global counters are
// read without a lock and updated at ProgramCounters.Flush instead.
type limitsReader struct {
	ctx      context.Context
	db       DB
	lock     bool
	counters *ProgramCounters
	cat      *rules.Catalog
	ev       *events.Event
}

func (l *limitsReader) Remaining(p *rules.Program, customerID string) (rules.Remaining, error) {
	lim := p.Limits
	keys := keysOf(l.cat, p, l.ev)
	u := usage{total: programCount{budget: dec.Zero}, period: programCount{budget: dec.Zero}}
	type global struct {
		key   counterKey
		limit counterLimit
		into  *programCount
	}
	var globals []global
	if tl := totalLimit(lim); tl.any() {
		globals = append(globals, global{keys.total, tl, &u.total})
	}
	if pl := periodLimit(lim); pl.any() && keys.hasPeriod() {
		globals = append(globals, global{keys.period, pl, &u.period})
	}
	b := &pgx.Batch{}
	for _, g := range globals {
		switch {
		case l.counters != nil:
			n, err := l.counters.used(l.ctx, l.db, g.key, g.limit)
			if err != nil {
				return rules.Remaining{}, err
			}
			*g.into = n
		case l.lock:
			// In key order (the total's period "" first), as Flush locks.
			b.Queue(`INSERT INTO program_usage (program_id, scope, period) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
				g.key.program, g.key.scope, g.key.period)
			b.Queue(`SELECT uses, budget_used FROM program_usage WHERE program_id = $1 AND scope = $2 AND period = $3 FOR UPDATE`,
				g.key.program, g.key.scope, g.key.period).
				QueryRow(func(row pgx.Row) error { return row.Scan(&g.into.uses, &g.into.budget) })
		default:
			b.Queue(`SELECT COALESCE(max(uses), 0), COALESCE(max(budget_used), 0) FROM program_usage WHERE program_id = $1 AND scope = $2 AND period = $3`,
				g.key.program, g.key.scope, g.key.period).
				QueryRow(func(row pgx.Row) error { return row.Scan(&g.into.uses, &g.into.budget) })
		}
	}
	u.perCustomer = customerID != ""
	if u.perCustomer && needsCustomerCounts(lim) {
		b.Queue(`SELECT period, uses FROM program_customer_usage WHERE program_id = $1 AND customer_id = $2 AND scope = $3 AND period = ANY($4)`,
			p.ID, customerID, keys.total.scope, []string{"", keys.period.period}).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var period string
				var n int64
				if err := rows.Scan(&period, &n); err != nil {
					return err
				}
				if period == "" {
					u.customer = n
				} else {
					u.customerPeriod = n
				}
			}
			return rows.Err()
		})
	}
	if err := runBatch(l.ctx, l.db, b, "read limits of program "+p.ID); err != nil {
		return rules.Remaining{}, err
	}
	return remainingOf(lim, u), nil
}

// programUse is one use an order made of a limited program, with the
// counters it counted in.
type programUse struct {
	programID string
	discount  dec.Decimal
	scope     string
	period    string // "" when the program had no per_period
}

func (u programUse) keys() useKeys {
	k := useKeys{total: counterKey{u.programID, u.scope, ""}}
	if u.period != "" {
		k.period = counterKey{u.programID, u.scope, u.period}
	}
	return k
}

// usesOf are the uses of an applied order with their counters.
func usesOf(cat *rules.Catalog, ev *events.Event, uses []rules.Use) []programUse {
	out := make([]programUse, 0, len(uses))
	for _, u := range uses {
		pu := programUse{programID: u.ProgramID, discount: u.Discount}
		if p := cat.Program(u.ProgramID); p != nil {
			k := keysOf(cat, p, ev)
			pu.scope, pu.period = k.total.scope, k.period.period
		}
		out = append(out, pu)
	}
	return out
}

// queueUses records one use and its discount for each applied program with
// limits, in the counters of its scope and period, and remembers them per
// order so that a cancellation can give them back (SPEC §6.9).
//
// With counters, the global counters are left to ProgramCounters.Flush.
func queueUses(b *pgx.Batch, uses []programUse, orderID, customerID string, counters *ProgramCounters) {
	if len(uses) == 0 {
		return
	}
	var (
		programs, scopes, periods, discounts []string // one per counter
		useScopes, usePeriods, useDiscounts  []string // one per use
		ids                                  []string
	)
	for _, u := range uses {
		ids = append(ids, u.programID)
		useScopes, usePeriods, useDiscounts = append(useScopes, u.scope), append(usePeriods, u.period), append(useDiscounts, u.discount.String())
		programs, scopes, periods, discounts = append(programs, u.programID), append(scopes, u.scope), append(periods, ""), append(discounts, u.discount.String())
		if u.period != "" {
			programs, scopes, periods, discounts = append(programs, u.programID), append(scopes, u.scope), append(periods, u.period), append(discounts, u.discount.String())
		}
	}
	if counters != nil {
		for _, u := range uses {
			counters.add(u)
		}
	} else {
		b.Queue(`
			INSERT INTO program_usage AS p (program_id, scope, period, uses, budget_used)
			SELECT id, s, per, 1, d FROM unnest($1::text[], $2::text[], $3::text[], $4::numeric[]) AS u(id, s, per, d)
			ON CONFLICT (program_id, scope, period) DO UPDATE SET uses = p.uses + 1, budget_used = p.budget_used + excluded.budget_used`,
			programs, scopes, periods, numericArray(discounts))
	}
	if customerID != "" {
		b.Queue(`
			INSERT INTO program_customer_usage AS p (program_id, customer_id, scope, period, uses)
			SELECT id, $4, s, per, 1 FROM unnest($1::text[], $2::text[], $3::text[]) AS u(id, s, per)
			ON CONFLICT (program_id, customer_id, scope, period) DO UPDATE SET uses = p.uses + 1`,
			programs, scopes, periods, customerID)
	}
	b.Queue(`
		INSERT INTO order_program_uses (order_id, program_id, customer_id, discount, scope, period)
		SELECT $1, id, NULLIF($4, ''), d, s, per FROM unnest($2::text[], $3::numeric[], $5::text[], $6::text[]) AS u(id, d, s, per)`,
		orderID, ids, numericArray(useDiscounts), customerID, useScopes, usePeriods)
}

// queueReadUses adds to b the read of an order's uses not given back yet.
func queueReadUses(b *pgx.Batch, orderID string, into *[]programUse) {
	b.Queue(`SELECT program_id, discount, scope, period FROM order_program_uses WHERE order_id = $1 AND NOT released ORDER BY program_id COLLATE "C"`, orderID).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var u programUse
				if err := rows.Scan(&u.programID, &u.discount, &u.scope, &u.period); err != nil {
					return err
				}
				*into = append(*into, u)
			}
			return rows.Err()
		})
}

// queueReleaseUses gives back the uses and budget of a cancelled order to
// the counters they counted in: the original order's scope and period,
// whatever the catalog says now.
//
// With counters, the global counters are given back through them (uses are
// the order's unreleased uses, read beforehand with queueReadUses): the
// batch's deferred uses of the same programs may not be in program_usage yet,
// and the batch's later events must see the released uses as it counts them.
func queueReleaseUses(b *pgx.Batch, orderID string, counters *ProgramCounters, uses []programUse) {
	if counters != nil {
		for _, u := range uses {
			counters.release(u)
		}
	} else {
		b.Queue(`
			UPDATE program_usage p SET uses = p.uses - 1, budget_used = p.budget_used - u.discount
			FROM order_program_uses u
			WHERE u.order_id = $1 AND NOT u.released AND p.program_id = u.program_id AND p.scope = u.scope
			  AND (p.period = '' OR p.period = u.period)`, orderID)
	}
	b.Queue(`
		UPDATE program_customer_usage p SET uses = p.uses - 1
		FROM order_program_uses u
		WHERE u.order_id = $1 AND NOT u.released AND p.program_id = u.program_id AND p.customer_id = u.customer_id
		  AND p.scope = u.scope AND (p.period = '' OR p.period = u.period)`, orderID)
	b.Queue(`UPDATE order_program_uses SET released = true WHERE order_id = $1 AND NOT released`, orderID)
}
