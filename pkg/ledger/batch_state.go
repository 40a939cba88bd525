package ledger

import (
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/rules"
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
	// spend holds the spend entries inside any window the batch needs.
	spend []spendEntry
	// uses counts the customer's uses of programs with uses_per_customer.
	uses map[string]int64

	accountDirty bool // the account row has changes not flushed
}

type spendEntry struct {
	at     time.Time
	amount dec.Decimal
}

// stateAt is what queueCustomerReads would read for an event at t: the live
// lots (points left, not expired at t) and the window spend of every path
// ending at t.
func (c *cachedCustomer) stateAt(cat *rules.Catalog, t time.Time) *customerState {
	st := &customerState{id: c.id, found: true, path: c.path, debt: c.debt, openedAt: c.openedAt,
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
			for _, e := range c.spend {
				if e.at.After(start) && !e.at.After(t) {
					sum = dec.Add(sum, e.amount)
				}
			}
			st.spend[p.ID] = sum
		}
	}
	return st
}

// queueCustomerLoads adds to pb the reads of the given customers (sorted,
// none cached yet), with their accounts created when missing and locked in
// id order, as LockCustomers does.
func (b *Batch) queueCustomerLoads(pb *pgx.Batch, ids []string) {
	if len(ids) == 0 {
		return
	}
	for _, id := range ids {
		b.customers[id] = &cachedCustomer{id: id, levels: map[string]levelRow{}, uses: map[string]int64{}}
	}
	pb.Queue(`INSERT INTO accounts (customer_id) SELECT id FROM unnest($1::text[]) WITH ORDINALITY AS u(id, n) ORDER BY n
		ON CONFLICT (customer_id) DO NOTHING`, ids)
	pb.Queue(`SELECT customer_id, path, debt, opened_at FROM accounts WHERE customer_id = ANY($1) ORDER BY customer_id COLLATE "C" FOR UPDATE`, ids).
		Query(func(rows pgx.Rows) error {
			n := 0
			for rows.Next() {
				var id string
				var path *string
				var debt dec.Decimal
				var opened *time.Time
				if err := rows.Scan(&id, &path, &debt, &opened); err != nil {
					return err
				}
				c := b.customers[id]
				c.path, c.debt, c.openedAt = path, debt, opened
				n++
			}
			if err := rows.Err(); err != nil {
				return err
			}
			if n != len(ids) {
				return fmt.Errorf("%d of %d accounts found", n, len(ids))
			}
			return nil
		})
	pb.Queue(`SELECT customer_id, path, level, since FROM member_levels WHERE customer_id = ANY($1)`, ids).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id, path string
			var r levelRow
			if err := rows.Scan(&id, &path, &r.Level, &r.Since); err != nil {
				return err
			}
			b.customers[id].levels[path] = r
		}
		return rows.Err()
	})
	pb.Queue(`SELECT `+lotColumns+` FROM point_lots
		WHERE customer_id = ANY($1) AND remaining > 0 AND (expires_at IS NULL OR expires_at > $2)`, ids, b.from).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				l, err := scanLot(rows)
				if err != nil {
					return err
				}
				c := b.customers[l.CustomerID]
				c.lots = append(c.lots, l)
			}
			if err := rows.Err(); err != nil {
				return err
			}
			for _, id := range ids {
				sortFEFO(b.customers[id].lots)
			}
			return nil
		})
	if b.cat.Membership != nil {
		pb.Queue(`SELECT customer_id, spent_at, amount FROM spend_entries
			WHERE customer_id = ANY($1) AND spent_at > $2 AND spent_at <= $3`, ids, b.spendFrom, b.until).
			Query(func(rows pgx.Rows) error {
				for rows.Next() {
					var id string
					var e spendEntry
					if err := rows.Scan(&id, &e.at, &e.amount); err != nil {
						return err
					}
					c := b.customers[id]
					c.spend = append(c.spend, e)
				}
				return rows.Err()
			})
	}
	if len(b.perCustomerPrograms) > 0 {
		pb.Queue(`SELECT program_id, customer_id, uses FROM program_customer_usage WHERE customer_id = ANY($1) AND program_id = ANY($2)`,
			ids, b.perCustomerPrograms).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var program, id string
				var n int64
				if err := rows.Scan(&program, &id, &n); err != nil {
					return err
				}
				b.customers[id].uses[program] = n
			}
			return rows.Err()
		})
	}
}
