package ledger

import (
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/rules"
)

// customerState is what an event needs to know about its customer, read in
// the event's first round trip.
type customerState struct {
	id string

	// The account row. found is false only for a quote about a customer the
	// ledger has never seen. opened is false for a row created only to be
	// locked: the customer has had no applied order yet.
	found    bool
	path     *string
	debt     dec.Decimal
	openedAt *time.Time

	levels map[string]levelRow // by path

	// lots with points left that have not expired at the event's time
	// (pending ones included), in FEFO order.
	lots []*lot

	// spend is the net spend per path over the path's window ending at the
	// event's time, before the event.
	spend map[string]dec.Decimal

	// coupons are the customer's issued coupons whose codes the order
	// presents (read only for paid orders and quotes).
	coupons []*coupon
}

type levelRow struct {
	Level string
	Since time.Time
}

// queueCustomerReads adds to b the reads of customer id's state at t. With
// lock, the account row is created when missing and locked FOR UPDATE: it
// is the customer's lock, held until commit, which serialises everything
// that changes the customer's lots, debt, spend and levels.
func queueCustomerReads(b *pgx.Batch, cat *rules.Catalog, id string, t time.Time, lock bool) *customerState {
	st := &customerState{id: id, levels: map[string]levelRow{}, spend: map[string]dec.Decimal{}}
	scanAccount := func(row pgx.Row) error {
		err := row.Scan(&st.path, &st.debt, &st.openedAt)
		if isNoRows(err) && !lock {
			return nil
		}
		st.found = err == nil
		return err
	}
	if lock {
		b.Queue(`INSERT INTO accounts (customer_id) VALUES ($1) ON CONFLICT (customer_id) DO NOTHING`, id)
		b.Queue(`SELECT path, debt, opened_at FROM accounts WHERE customer_id = $1 FOR UPDATE`, id).QueryRow(scanAccount)
	} else {
		b.Queue(`SELECT path, debt, opened_at FROM accounts WHERE customer_id = $1`, id).QueryRow(scanAccount)
	}
	b.Queue(`SELECT path, level, since FROM member_levels WHERE customer_id = $1`, id).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var path string
			var r levelRow
			if err := rows.Scan(&path, &r.Level, &r.Since); err != nil {
				return err
			}
			st.levels[path] = r
		}
		return rows.Err()
	})
	b.Queue(`SELECT `+lotColumns+` FROM point_lots
		WHERE customer_id = $1 AND remaining > 0 AND (expires_at IS NULL OR expires_at > $2)`, id, t).
		Query(func(rows pgx.Rows) error {
			lots, err := pgx.CollectRows(rows, scanLot)
			sortFEFO(lots)
			st.lots = lots
			return err
		})
	if paths, starts := windowStarts(cat, t); len(paths) > 0 {
		b.Queue(`
			SELECT w.path, COALESCE(sum(s.amount), 0)
			FROM unnest($2::text[], $3::timestamptz[]) AS w(path, start)
			LEFT JOIN spend_entries s ON s.customer_id = $1 AND s.spent_at > w.start AND s.spent_at <= $4
			GROUP BY w.path`, id, paths, starts, t).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var path string
				var sum dec.Decimal
				if err := rows.Scan(&path, &sum); err != nil {
					return err
				}
				st.spend[path] = sum
			}
			return rows.Err()
		})
	}
	return st
}

// windowStarts gives, for every membership path, the exclusive start of its
// qualifying window ending at t: t minus window_days on the catalog's
// calendar. It is computed here rather than in SQL so that the session's
// TimeZone never changes a result.
func windowStarts(cat *rules.Catalog, t time.Time) ([]string, []time.Time) {
	if cat.Membership == nil {
		return nil, nil
	}
	paths := make([]string, 0, len(cat.Membership.Paths))
	starts := make([]time.Time, 0, len(cat.Membership.Paths))
	for _, p := range cat.Membership.Paths {
		paths = append(paths, p.ID)
		starts = append(starts, windowStart(cat, p, t))
	}
	return paths, starts
}

func windowStart(cat *rules.Catalog, p *rules.Path, t time.Time) time.Time {
	return t.In(formatOf(cat).loc).AddDate(0, 0, -p.WindowDays)
}

// member is a customer's place on their membership path before an event.
type member struct {
	path  *rules.Path
	level string // the level held, always a level of path
	// row is false when the customer has no level row on path yet (a new
	// customer starts at the entry level from this event on).
	row   bool
	since time.Time
}

// memberOf resolves the customer's path and level under cat: the account's
// path, or the default path for a new customer (or one whose path the
// catalog no longer has); the stored level, or the entry level when there is
// none (or the catalog no longer has it). nil without membership.
func memberOf(cat *rules.Catalog, st *customerState) *member {
	if cat.Membership == nil {
		return nil
	}
	var p *rules.Path
	if st.path != nil {
		p = cat.Path(*st.path)
	}
	if p == nil {
		p = cat.Path("")
	}
	if p == nil || len(p.Levels) == 0 {
		return nil
	}
	m := &member{path: p, level: p.Levels[0].ID}
	if r, ok := st.levels[p.ID]; ok {
		m.row, m.since = true, r.Since
		if p.Level(r.Level) != nil {
			m.level = r.Level
		}
	}
	return m
}

// levelIndex is the rung of level id on p, 0 for an unknown id.
func levelIndex(p *rules.Path, id string) int {
	for i, l := range p.Levels {
		if l.ID == id {
			return i
		}
	}
	return 0
}

// queueLevelChange writes a customer's new level on a path and its history.
func queueLevelChange(b *pgx.Batch, customerID, path, previous, level string, at time.Time, reason, eventID string) {
	b.Queue(`
		INSERT INTO member_levels AS m (customer_id, path, level, since) VALUES ($1, $2, $3, $4)
		ON CONFLICT (customer_id, path) DO UPDATE SET level = excluded.level, since = excluded.since`,
		customerID, path, level, pgTime(at))
	var prev *string
	if previous != "" {
		prev = &previous
	}
	b.Queue(`
		INSERT INTO level_history (customer_id, path, previous_level, level, changed_at, reason, event_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		customerID, path, prev, level, pgTime(at), reason, eventID)
}

func upgradeReason(p *rules.Path, l *rules.Level, spend dec.Decimal) string {
	return fmt.Sprintf("qualified: net spend %s over %d days reaches %s min %s", spend, p.WindowDays, l.ID, l.Min)
}
