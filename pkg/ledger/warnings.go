package ledger

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/rules"
)

// Downgrade warnings (SPEC §6.8). The job, as of T and after its own
// downgrades, looks for each customer holding a level above the entry
// level on a path with warn_days W for the first daily job instant M
// (00:00 in the catalog timezone) with T < M ≤ T + W days at which, if the
// customer spent nothing more, the level would be lowered: retention
// reached and the window spend ending at M below the level's min. Spend
// already recorded after T (orders processed before a late job run) counts:
// "nothing more" is nothing beyond what the ledger holds.

// warnPlan is what the job needs to know of one path with warn_days: the
// instants a warning may name and how their windows' spend is read.
type warnPlan struct {
	path     *rules.Path
	instants []time.Time // the daily job instants M, T < M ≤ T + warn_days
	starts   []time.Time // the exclusive start of the window ending at each M
	// Entries in (core, T] are in every window: they are summed by
	// PostgreSQL. Entries in (lo, hi] outside it are read one by one.
	// core = T: no common part.
	core, lo, hi time.Time
}

// warnPlans lists the paths that warn, with their instants as of asOf.
func warnPlans(cat *rules.Catalog, asOf time.Time) []*warnPlan {
	if cat.Membership == nil {
		return nil
	}
	loc := formatOf(cat).loc
	local := asOf.In(loc)
	midnight := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, loc)
	var out []*warnPlan
	for _, p := range cat.Membership.Paths {
		if p.WarnDays <= 0 || len(p.Levels) < 2 {
			continue
		}
		w := &warnPlan{path: p}
		end := local.AddDate(0, 0, p.WarnDays)
		for d := 1; ; d++ {
			m := pgTime(midnight.AddDate(0, 0, d))
			if m.After(end) {
				break
			}
			if !m.After(asOf) {
				continue
			}
			w.instants = append(w.instants, m)
			w.starts = append(w.starts, m.In(loc).AddDate(0, 0, -p.WindowDays))
		}
		if len(w.instants) == 0 {
			continue
		}
		w.core, w.lo, w.hi = w.starts[0], w.starts[0], w.instants[len(w.instants)-1]
		for _, s := range w.starts {
			if s.After(w.core) {
				w.core = s // calendar arithmetic is not monotonic across DST: the latest start
			}
			if s.Before(w.lo) {
				w.lo = s
			}
		}
		if !w.core.Before(asOf) {
			w.core = asOf
		}
		out = append(out, w)
	}
	return out
}

// warnSpend is a customer's spend on one path around the warning window:
// the sum of the part every window holds, and the entries around it.
type warnSpend struct {
	core    dec.Decimal
	entries []spendEntry
}

// queueWarnSpendReads adds to b the spend of customers the warnings need,
// into spend (by customer and path).
func queueWarnSpendReads(b *pgx.Batch, plans []*warnPlan, customers []string, asOf time.Time, spend map[[2]string]*warnSpend) {
	if len(plans) == 0 {
		return
	}
	var paths []string
	var cores, los, his []time.Time
	for _, w := range plans {
		paths = append(paths, w.path.ID)
		cores, los, his = append(cores, w.core), append(los, w.lo), append(his, w.hi)
	}
	b.Queue(`
		SELECT 'c', s.customer_id, w.path, sum(s.amount)::text, NULL::timestamptz
		FROM unnest($2::text[], $3::timestamptz[]) AS w(path, core)
		JOIN spend_entries s ON s.customer_id = ANY($1) AND s.spent_at > w.core AND s.spent_at <= $6
		GROUP BY s.customer_id, w.path
		UNION ALL
		SELECT 'e', s.customer_id, w.path, s.amount::text, s.spent_at
		FROM unnest($2::text[], $3::timestamptz[], $4::timestamptz[], $5::timestamptz[]) AS w(path, core, lo, hi)
		JOIN spend_entries s ON s.customer_id = ANY($1) AND s.spent_at > w.lo AND s.spent_at <= w.hi
		                    AND NOT (s.spent_at > w.core AND s.spent_at <= $6)`,
		customers, paths, cores, los, his, asOf).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var kind, customer, path, amount string
			var at pgtype.Timestamptz
			if err := rows.Scan(&kind, &customer, &path, &amount, &at); err != nil {
				return err
			}
			d, err := dec.Parse(amount)
			if err != nil {
				return err
			}
			k := [2]string{customer, path}
			ws := spend[k]
			if ws == nil {
				ws = &warnSpend{core: dec.Zero}
				spend[k] = ws
			}
			if kind == "c" {
				ws.core = d
			} else {
				ws.entries = append(ws.entries, spendEntry{at: at.Time, amount: d})
			}
		}
		return rows.Err()
	})
}

// at is the spend over the window (start, m].
func (ws *warnSpend) at(start, m time.Time) dec.Decimal {
	if ws == nil {
		return dec.Zero
	}
	sum := ws.core
	for _, e := range ws.entries {
		if e.at.After(start) && !e.at.After(m) {
			sum = dec.Add(sum, e.amount)
		}
	}
	return sum
}

// warning decides whether a customer holding level since `since` on w's
// path gets a warning, and for which instant.
func (w *warnPlan) warning(cat *rules.Catalog, customer, level string, since time.Time, ws *warnSpend) (events.LevelWarning, time.Time, bool) {
	p := w.path
	cur := p.Level(level)
	if cur == nil || levelIndex(p, cur.ID) == 0 {
		return events.LevelWarning{}, time.Time{}, false
	}
	loc := formatOf(cat).loc
	retained := since.In(loc).AddDate(0, 0, p.RetentionDays)
	for i, m := range w.instants {
		if !since.Before(m) || retained.After(m) {
			continue // retention not reached at m
		}
		spend := ws.at(w.starts[i], m)
		if spend.GreaterEq(cur.Min) {
			continue
		}
		to := p.Below(cur.ID)
		if p.Downgrade == rules.DowngradeToQualified {
			if to = p.Qualified(spend); to == nil {
				to = p.Levels[0]
			}
		}
		if to == nil || to.ID == cur.ID {
			return events.LevelWarning{}, time.Time{}, false
		}
		return events.LevelWarning{
			EventID: "level_warning:" + customer + ":" + p.ID + ":" + cur.ID + ":" + m.UTC().Format(time.RFC3339),
			Type:    events.TypeLevelWarning, CustomerID: customer, Path: p.ID, Level: cur.ID, ToLevel: to.ID,
			DowngradeAt: formatOf(cat).time(m), SpendNeeded: formatOf(cat).amount(dec.Sub(cur.Min, spend)),
		}, m, true
	}
	return events.LevelWarning{}, time.Time{}, false
}

// warningRows are the warnings a job chunk publishes: each is recorded in
// level_warnings and enqueued only when it was not recorded before.
type warningRows struct {
	customers, paths, levels, ids []string
	at                            []time.Time
	payloads                      [][]byte
}

func (r *warningRows) add(ev events.LevelWarning, at time.Time) error {
	payload, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("ledger: marshal %s: %w", ev.EventID, err)
	}
	r.customers, r.paths, r.levels, r.ids = append(r.customers, ev.CustomerID), append(r.paths, ev.Path), append(r.levels, ev.Level), append(r.ids, ev.EventID)
	r.at = append(r.at, at)
	r.payloads = append(r.payloads, payload)
	return nil
}

// queue adds the statement recording and enqueueing the warnings; *n is
// how many were new.
func (r *warningRows) queue(b *pgx.Batch, subject string, asOf time.Time, n *int) {
	if len(r.ids) == 0 {
		return
	}
	b.Queue(`
		WITH w AS (
			INSERT INTO level_warnings (customer_id, path, level, downgrade_at, event_id, warned_at)
			SELECT c, p, l, d, e, $7 FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[]) AS u(c, p, l, d, e)
			ON CONFLICT DO NOTHING
			RETURNING event_id
		), o AS (
			INSERT INTO outbox (event_id, subject, payload)
			SELECT w.event_id, $8, u.payload FROM w JOIN unnest($5::text[], $6::bytea[]) AS u(event_id, payload) ON u.event_id = w.event_id
			ORDER BY w.event_id
			ON CONFLICT (event_id) DO NOTHING
			RETURNING 1
		)
		SELECT count(*) FROM (SELECT pg_notify('`+OutboxChannel+`', '') FROM o) AS notified`,
		r.customers, r.paths, r.levels, r.at, r.ids, r.payloads, asOf, subject).QueryRow(func(row pgx.Row) error {
		var count int64
		if err := row.Scan(&count); err != nil {
			return err
		}
		*n = int(count)
		return nil
	})
}
