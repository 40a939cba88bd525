package ledger

import (
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/promoengine/promoengine/pkg/dec"
)

// cachedCustomer is a customer's ledger state as a Batch keeps it between
// events: read once, then changed in memory exactly as each event changes
// the database, so that the next event sees what it would read.
type cachedCustomer struct {
	id       string
	path     *string
	debt     dec.Decimal
	openedAt *time.Time
	levels   map[string]levelRow // by path

	// lots had points left when read and had not expired at the batch's
	// earliest event; new lots are added. In FEFO order.
	lots []*lot
	// core is, per path, the spend of the part every window of the batch
	// holds (Batch.coreStart); spend holds the entries of the windows
	// outside it (and, with several paths, inside some paths' cores: see
	// stateAt), and the batch's own.
	core  map[string]dec.Decimal
	spend []spendEntry
	// uses counts the customer's uses of programs with a per-customer
	// limit, per counter (the customer's all-time and period counters).
	uses map[counterKey]int64
	// coupons are the customer's coupons read (the codes the batch's
	// orders presented) or issued in the batch, by code; looked records
	// every code looked up, found or not. Both are made on first use: most
	// orders present no code.
	coupons map[string]*coupon
	looked  map[string]bool

	accountDirty bool // the account row has changes not flushed
}

// remember records a code looked up, with its coupon when there is one.
func (c *cachedCustomer) remember(code string, cp *coupon) {
	if c.looked == nil {
		c.looked, c.coupons = map[string]bool{}, map[string]*coupon{}
	}
	c.looked[code] = true
	if cp != nil {
		c.coupons[code] = cp
	}
}

// couponsFor are the customer's coupons among codes (all looked up).
func (c *cachedCustomer) couponsFor(codes []string) []*coupon {
	var out []*coupon
	for _, code := range codes {
		if cp := c.coupons[code]; cp != nil {
			out = append(out, cp)
		}
	}
	return out
}

type spendEntry struct {
	at     time.Time
	amount dec.Decimal
}

// stateAt is what queueCustomerReads would read for an event at t: the live
// lots (points left, not expired at t) and the window spend of every path
// ending at t. Sums are exact, so adding the core's sum to the entries
// around it gives the window's sum, scale included.
func (c *cachedCustomer) stateAt(b *Batch, t time.Time) *customerState {
	cat := b.cat
	debt := c.debt
	if debt.IsZero() {
		// PostgreSQL hands a numeric zero back without its scale (0.00
		// reads as 0): the next event must compute from what it would read.
		debt = dec.Zero
	}
	st := &customerState{id: c.id, found: true, path: c.path, debt: debt, openedAt: c.openedAt,
		levels: c.levels, lots: make([]*lot, 0, len(c.lots)), spend: map[string]dec.Decimal{}}
	for _, l := range c.lots {
		if l.Remaining.Sign() > 0 && !l.expiredAt(t) {
			st.lots = append(st.lots, l)
		}
	}
	if cat.Membership != nil {
		for _, p := range cat.Membership.Paths {
			start := windowStart(cat, p, t)
			sum := dec.Zero
			coreStart, hasCore := b.coreStart[p.ID]
			if core, ok := c.core[p.ID]; ok {
				sum = dec.Add(sum, core)
			}
			for _, e := range c.spend {
				if hasCore && e.at.After(coreStart) && e.at.Before(b.from) {
					continue // in the core
				}
				if e.at.After(start) && !e.at.After(t) {
					sum = dec.Add(sum, e.amount)
				}
			}
			st.spend[p.ID] = sum
		}
	}
	return st
}

// accountRow is an accounts row as a batch reads it.
type accountRow struct {
	path     *string
	debt     dec.Decimal
	openedAt *time.Time
}

func scanAccounts(into map[string]*accountRow) func(pgx.Rows) error {
	return func(rows pgx.Rows) error {
		for rows.Next() {
			var id string
			var a accountRow
			if err := rows.Scan(&id, &a.path, &a.debt, &a.openedAt); err != nil {
				return err
			}
			into[id] = &a
		}
		return rows.Err()
	}
}

// lockSQL creates the accounts of the customers missing one and locks them
// all in one global order (see LockCustomers), reading them as it goes.
const lockSQL = `SELECT customer_id, path, debt, opened_at FROM accounts WHERE customer_id = ANY($1) ORDER BY customer_id COLLATE "C" FOR UPDATE`

// queueLock adds to pb the locks LockCustomers asked for.
func (b *Batch) queueLock(pb *pgx.Batch) {
	if len(b.lock) == 0 {
		return
	}
	b.locked = make(map[string]*accountRow, len(b.lock))
	pb.Queue(`INSERT INTO accounts (customer_id) SELECT id FROM unnest($1::text[]) WITH ORDINALITY AS u(id, n) ORDER BY n
		ON CONFLICT (customer_id) DO NOTHING`, b.lock)
	pb.Queue(lockSQL, b.lock).Query(scanAccounts(b.locked))
	b.lockQueued = true
}

// lockHeld reports whether the customer's account is locked, or will be
// by the round trip being prepared: its row then is, or will be, in
// b.locked.
func (b *Batch) lockHeld(id string) bool {
	if _, ok := b.locked[id]; ok {
		return true
	}
	if !b.lockQueued {
		return false
	}
	_, found := slices.BinarySearch(b.lock, id)
	return found
}

// stateSQL reads the rest of the customers' state in one statement: lots
// ('l'), levels ('m'), per path the spend of the batch's core window ('c',
// $7 paths starting after $8, up to $2) and the spend entries around it
// ('s', outside ($9, $2); only with membership: $5), and the uses of
// programs with a per-customer limit ('u', all time and the periods $10). Amounts come as text, which
// dec.Decimal parses with no detour.
const stateSQL = `
	SELECT 'l', customer_id, lot_id, order_id, earned_at, available_at, expires_at, original::text, remaining::text, NULL::bigint
	FROM point_lots
	WHERE customer_id = ANY($1) AND remaining > 0 AND (expires_at IS NULL OR expires_at > $2)
	UNION ALL
	SELECT 'm', customer_id, path, level, since, NULL, NULL, NULL, NULL, NULL
	FROM member_levels WHERE customer_id = ANY($1)
	UNION ALL
	SELECT 'c', s.customer_id, w.path, NULL, NULL, NULL, NULL, sum(s.amount)::text, NULL, NULL
	FROM unnest($7::text[], $8::timestamptz[]) AS w(path, start)
	JOIN spend_entries s ON s.customer_id = ANY($1) AND s.spent_at > w.start AND s.spent_at < $2
	GROUP BY s.customer_id, w.path
	UNION ALL
	SELECT 's', customer_id, NULL, NULL, spent_at, NULL, NULL, amount::text, NULL, NULL
	FROM spend_entries
	WHERE $5 AND customer_id = ANY($1) AND spent_at > $3 AND spent_at <= $4 AND NOT (spent_at > $9 AND spent_at < $2)
	UNION ALL
	SELECT 'u', customer_id, program_id, scope, NULL, NULL, NULL, period, NULL, uses
	FROM program_customer_usage WHERE customer_id = ANY($1) AND program_id = ANY($6) AND period = ANY($10)`

// queueCustomerLoads adds to pb the reads of the given customers (sorted,
// none cached yet). The accounts of customers locked with the batch were
// read then; the others are created when missing and locked in id order
// here. Call done once pb has run.
func (b *Batch) queueCustomerLoads(pb *pgx.Batch, ids []string) (done func() error) {
	if len(ids) == 0 {
		return func() error { return nil }
	}
	// The customers LockCustomers named are locked in this round trip
	// already when it is the batch's first (queueLock): locking them again
	// cost two statements a transaction.
	var unlocked []string
	for _, id := range ids {
		b.customers[id] = &cachedCustomer{id: id, levels: map[string]levelRow{}, uses: map[counterKey]int64{}}
		if !b.lockHeld(id) {
			unlocked = append(unlocked, id)
		}
	}
	if b.locked == nil {
		b.locked = make(map[string]*accountRow, len(ids))
	}
	accounts := b.locked // read by the returned function before it drops them
	if len(unlocked) > 0 {
		pb.Queue(`INSERT INTO accounts (customer_id) SELECT id FROM unnest($1::text[]) WITH ORDINALITY AS u(id, n) ORDER BY n
			ON CONFLICT (customer_id) DO NOTHING`, unlocked)
		pb.Queue(lockSQL, unlocked).Query(scanAccounts(accounts))
	}
	pb.Queue(stateSQL, ids, b.from, b.spendFrom, b.until, b.cat.Membership != nil, b.perCustomerPrograms,
		b.corePaths, b.coreStarts, b.coreAll, b.customerPeriods).Query(func(rows pgx.Rows) error {
		var (
			kind, id   string
			s1, s2     pgtype.Text
			t1, t2, t3 pgtype.Timestamptz
			n1, n2     pgtype.Text
			uses       pgtype.Int8
		)
		for rows.Next() {
			if err := rows.Scan(&kind, &id, &s1, &s2, &t1, &t2, &t3, &n1, &n2, &uses); err != nil {
				return err
			}
			c := b.customers[id]
			switch kind {
			case "l":
				l := &lot{ID: s1.String, CustomerID: id, OrderID: s2.String, EarnedAt: t1.Time, AvailableAt: t2.Time}
				if t3.Valid {
					at := t3.Time
					l.ExpiresAt = &at
				}
				var err error
				if l.Original, err = dec.Parse(n1.String); err != nil {
					return err
				}
				if l.Remaining, err = dec.Parse(n2.String); err != nil {
					return err
				}
				c.lots = append(c.lots, l)
			case "m":
				c.levels[s1.String] = levelRow{Level: s2.String, Since: t1.Time}
			case "c":
				sum, err := dec.Parse(n1.String)
				if err != nil {
					return err
				}
				if c.core == nil {
					c.core = map[string]dec.Decimal{}
				}
				c.core[s1.String] = sum
			case "s":
				amount, err := dec.Parse(n1.String)
				if err != nil {
					return err
				}
				c.spend = append(c.spend, spendEntry{at: t1.Time, amount: amount})
			case "u":
				c.uses[counterKey{s1.String, s2.String, n1.String}] = uses.Int64
			}
		}
		return rows.Err()
	})
	return func() error {
		for _, id := range ids {
			a := accounts[id]
			if a == nil {
				return fmt.Errorf("ledger: account of customer %s not found", id)
			}
			c := b.customers[id]
			c.path, c.debt, c.openedAt = a.path, a.debt, a.openedAt
			sortFEFO(c.lots)
			delete(b.locked, id) // from now on the cache is the truth
		}
		return nil
	}
}
