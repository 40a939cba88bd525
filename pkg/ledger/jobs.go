package ledger

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/rules"
)

// JobChunk is how many customers one job transaction handles: enough to keep
// round trips few, few enough that a big chain never holds thousands of
// customer locks in one long transaction.
const JobChunk = 500

// JobReport counts what a job run did.
type JobReport struct {
	AsOf             time.Time   `json:"as_of"`
	LotsExpired      int         `json:"lots_expired"`
	PointsExpired    dec.Decimal `json:"points_expired"`
	CustomersExpired int         `json:"customers_expired"`
	Downgrades       int         `json:"downgrades"`
	Warnings         int         `json:"warnings"`
	Events           int         `json:"events"`
}

// TxBeginner is what the jobs need: queries, and transactions of their own.
// A *pgxpool.Pool is one; so is a pgx.Tx, whose Begin opens a savepoint,
// which is how a dry-run replay runs the jobs inside its scratch transaction.
type TxBeginner interface {
	DB
	Begin(ctx context.Context) (pgx.Tx, error)
}

// RunJobs expires points and reviews levels as of asOf (SPEC §6.8, §9):
//
//   - every lot with expires_at <= asOf and points left is zeroed with an
//     expire entry, and each customer concerned gets one promo.points_expired
//     event listing the lots (by expiry, then lot id) and the balance left;
//   - every level held for at least the path's retention_days whose window
//     spend ending at asOf is below its min drops one level (or to the
//     qualified level), from asOf on, with a promo.level_changed event;
//   - then, on paths with warn_days, every level that would drop at a
//     daily job instant within warn_days if the customer spent nothing
//     more gets a promo.level_warning naming the first such instant, once
//     per customer, path, level and instant (SPEC §6.8; see warnings.go).
//
// Events are enqueued in the transaction of their changes, customers are
// handled JobChunk at a time in customer id order, each chunk in its own
// transaction holding its customers' locks. Event ids derive from customer,
// kind and asOf: running the job twice at the same asOf finds nothing left
// to do and enqueues nothing.
func (s *Store) RunJobs(ctx context.Context, pool *pgxpool.Pool, cat *rules.Catalog, asOf time.Time) (JobReport, error) {
	return s.RunJobsWith(ctx, pool, cat, asOf)
}

// RunJobsWith is RunJobs on any TxBeginner.
func (s *Store) RunJobsWith(ctx context.Context, db TxBeginner, cat *rules.Catalog, asOf time.Time) (JobReport, error) {
	asOf = pgTime(asOf)
	rep := JobReport{AsOf: asOf, PointsExpired: dec.Zero.Round(cat.Points.Decimals)}
	plans := warnPlans(cat, asOf)
	customers, err := jobCandidates(ctx, db, cat, asOf, plans)
	if err != nil {
		return rep, err
	}
	for start := 0; start < len(customers); start += JobChunk {
		chunk := customers[start:min(start+JobChunk, len(customers))]
		if err := s.runJobChunk(ctx, db, cat, asOf, plans, chunk, &rep); err != nil {
			return rep, err
		}
	}
	if rep.LotsExpired > 0 || rep.Downgrades > 0 || rep.Warnings > 0 {
		_, err := db.Exec(ctx, `INSERT INTO job_runs (as_of, catalog_version, lots_expired, downgrades, warnings) VALUES ($1, $2, $3, $4, $5)`,
			asOf, cat.Version, rep.LotsExpired, rep.Downgrades, rep.Warnings)
		if err != nil {
			return rep, dbErr("record job run", err)
		}
	}
	return rep, nil
}

// jobCandidates lists, in customer id order, the customers with points to
// expire or a level that may have to drop now or, on a path that warns,
// within its warn_days. The level test here is loose (a day of margin for
// calendar arithmetic); the chunk decides exactly.
func jobCandidates(ctx context.Context, db DB, cat *rules.Catalog, asOf time.Time, plans []*warnPlan) ([]string, error) {
	var paths, entries []string
	var cutoffs []time.Time
	if cat.Membership != nil {
		for _, p := range cat.Membership.Paths {
			if len(p.Levels) < 2 {
				continue
			}
			warn := 0
			for _, w := range plans {
				if w.path == p {
					warn = p.WarnDays
				}
			}
			paths = append(paths, p.ID)
			entries = append(entries, p.Levels[0].ID)
			cutoffs = append(cutoffs, asOf.AddDate(0, 0, 1+warn-p.RetentionDays))
		}
	}
	rows, err := db.Query(ctx, `
		SELECT customer_id FROM point_lots WHERE remaining > 0 AND expires_at <= $1
		UNION
		SELECT m.customer_id FROM member_levels m
		JOIN unnest($2::text[], $3::timestamptz[], $4::text[]) AS p(path, cutoff, entry) ON m.path = p.path
		WHERE m.since <= p.cutoff AND m.since < $1 AND m.level <> p.entry`,
		asOf, paths, cutoffs, entries)
	if err != nil {
		return nil, dbErr("job candidates", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, dbErr("job candidates", err)
	}
	return sortedUnique(ids), nil
}

type jobLevel struct {
	customer, path, level string
	since                 time.Time
	spend                 dec.Decimal
}

func (s *Store) runJobChunk(ctx context.Context, db TxBeginner, cat *rules.Catalog, asOf time.Time, plans []*warnPlan, customers []string, rep *JobReport) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return dbErr("begin job chunk", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()

	// One round trip: lock the chunk's accounts in id order, then read.
	b := &pgx.Batch{}
	b.Queue(`SELECT customer_id FROM accounts WHERE customer_id = ANY($1) ORDER BY customer_id COLLATE "C" FOR UPDATE`, customers)
	expiring := map[string][]*lot{}
	b.Queue(`SELECT `+lotColumns+` FROM point_lots WHERE customer_id = ANY($1) AND remaining > 0 AND expires_at <= $2`, customers, asOf).
		Query(func(rows pgx.Rows) error {
			lots, err := pgx.CollectRows(rows, scanLot)
			for _, l := range lots {
				expiring[l.CustomerID] = append(expiring[l.CustomerID], l)
			}
			return err
		})
	balances := map[string]dec.Decimal{}
	b.Queue(`
		SELECT customer_id, sum(remaining) FROM point_lots
		WHERE customer_id = ANY($1) AND remaining > 0 AND available_at <= $2 AND (expires_at IS NULL OR expires_at > $2)
		GROUP BY customer_id`, customers, asOf).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id string
			var sum dec.Decimal
			if err := rows.Scan(&id, &sum); err != nil {
				return err
			}
			balances[id] = sum
		}
		return rows.Err()
	})
	levels := map[string][]*jobLevel{}
	if paths, starts := windowStarts(cat, asOf); len(paths) > 0 {
		b.Queue(`
			SELECT m.customer_id, m.path, m.level, m.since, COALESCE(sum(s.amount), 0)
			FROM member_levels m
			JOIN unnest($2::text[], $3::timestamptz[]) AS w(path, start) ON w.path = m.path
			LEFT JOIN spend_entries s ON s.customer_id = m.customer_id AND s.spent_at > w.start AND s.spent_at <= $4
			WHERE m.customer_id = ANY($1)
			GROUP BY m.customer_id, m.path, m.level, m.since`, customers, paths, starts, asOf).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var l jobLevel
				if err := rows.Scan(&l.customer, &l.path, &l.level, &l.since, &l.spend); err != nil {
					return err
				}
				levels[l.customer] = append(levels[l.customer], &l)
			}
			return rows.Err()
		})
	}
	warnSpends := map[[2]string]*warnSpend{}
	queueWarnSpendReads(b, plans, customers, asOf, warnSpends)
	if err := runBatch(ctx, tx, b, "read job chunk"); err != nil {
		return err
	}

	f := formatOf(cat)
	asOfID := asOf.UTC().Format(time.RFC3339)
	b = &pgx.Batch{}
	var warnings warningRows
	for _, c := range customers {
		if lots := expiring[c]; len(lots) > 0 {
			sort.Slice(lots, func(i, j int) bool {
				if !lots[i].ExpiresAt.Equal(*lots[j].ExpiresAt) {
					return lots[i].ExpiresAt.Before(*lots[j].ExpiresAt)
				}
				return lots[i].ID < lots[j].ID
			})
			ev := events.PointsExpired{
				EventID: "points_expired:" + c + ":" + asOfID, Type: events.TypePointsExpired,
				OccurredAt: f.time(asOf), CustomerID: c, Balance: f.pts(balances[c]),
			}
			j := newJournal(c, "", ev.EventID, asOf)
			for _, l := range lots {
				j.entry(kindExpire, l.Remaining, l.ID)
				j.lotDelta(l.ID, l.Remaining.Neg())
				j.markExpired(l.ID)
				ev.Expired = append(ev.Expired, events.LotAmount{LotID: l.ID, Amount: f.pts(l.Remaining), ExpiresAt: f.timePtr(l.ExpiresAt)})
				rep.LotsExpired++
				rep.PointsExpired = dec.Add(rep.PointsExpired, l.Remaining)
			}
			j.queue(b)
			if err := queueEnqueue(b, s.subjects.ResultsPointsExpired(), ev.EventID, ev); err != nil {
				return err
			}
			rep.CustomersExpired++
			rep.Events++
		}
		ls := levels[c]
		sort.Slice(ls, func(i, j int) bool { return ls[i].path < ls[j].path })
		for _, l := range ls {
			ev, ok := downgrade(cat, l, asOf)
			if !ok {
				continue
			}
			ev.EventID = "level_changed:" + c + ":" + l.path + ":" + asOfID
			ev.OccurredAt = f.time(asOf)
			queueLevelChange(b, c, l.path, ev.PreviousLevel, ev.Level, asOf, ev.Reason, ev.EventID)
			if err := queueEnqueue(b, s.subjects.ResultsLevelChanged(), ev.EventID, ev); err != nil {
				return err
			}
			l.level, l.since = ev.Level, asOf // what the warnings look at
			rep.Downgrades++
			rep.Events++
		}
		for _, w := range plans {
			for _, l := range ls {
				if l.path != w.path.ID {
					continue
				}
				if ev, m, ok := w.warning(cat, c, l.level, l.since, warnSpends[[2]string{c, l.path}]); ok {
					ev.OccurredAt = f.time(asOf)
					if err := warnings.add(ev, m); err != nil {
						return err
					}
				}
			}
		}
	}
	newWarnings := 0
	warnings.queue(b, s.subjects.ResultsLevelWarning(), asOf, &newWarnings)
	if err := runBatch(ctx, tx, b, "write job chunk"); err != nil {
		return err
	}
	rep.Warnings += newWarnings
	rep.Events += newWarnings
	return dbErr("commit job chunk", tx.Commit(ctx))
}

// downgrade decides whether a level drops at asOf: it must have been held
// for the path's retention (counted from since, which staying qualified
// never moves) and the window spend ending at asOf must be below its min.
func downgrade(cat *rules.Catalog, l *jobLevel, asOf time.Time) (events.LevelChanged, bool) {
	p := cat.Path(l.path)
	cur := p.Level(l.level)
	if cur == nil || levelIndex(p, cur.ID) == 0 {
		return events.LevelChanged{}, false
	}
	loc := formatOf(cat).loc
	if !l.since.Before(asOf) || l.since.In(loc).AddDate(0, 0, p.RetentionDays).After(asOf) {
		return events.LevelChanged{}, false
	}
	if l.spend.GreaterEq(cur.Min) {
		return events.LevelChanged{}, false
	}
	next := p.Below(cur.ID)
	how := "down one level"
	if p.Downgrade == rules.DowngradeToQualified {
		next = p.Qualified(l.spend)
		how = "down to the qualified level"
		if next == nil {
			next = p.Levels[0]
		}
	}
	if next == nil || next.ID == cur.ID {
		return events.LevelChanged{}, false
	}
	return events.LevelChanged{
		Type: events.TypeLevelChanged, CustomerID: l.customer, Path: p.ID,
		PreviousLevel: cur.ID, Level: next.ID,
		Reason: fmt.Sprintf("net spend %s over %d days is below %s min %s after %d days retention; %s to %s",
			l.spend, p.WindowDays, cur.ID, cur.Min, p.RetentionDays, how, next.ID),
	}, true
}
