package ledger_test

import (
	"encoding/json"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/pkg/events"
)

// runJobs runs the jobs at asOf and returns the events they enqueued.
func (b *bundle) runJobs(t *testing.T, asOf string) []map[string]any {
	t.Helper()
	last := scalar[int64](t, b, `SELECT COALESCE(max(id), 0) FROM outbox`)
	b.jobs(t, asOf)
	rows, err := b.pool.Query(b.ctx, `SELECT subject, payload FROM outbox WHERE id > $1 ORDER BY id`, last)
	require.NoError(t, err)
	type row struct {
		Subject string
		Payload []byte
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	require.NoError(t, err)
	var out []map[string]any
	for _, r := range got {
		var m map[string]any
		require.NoError(t, json.Unmarshal(r.Payload, &m))
		require.Equal(t, events.NewSubjects("").ResultSubject(m["type"].(string)), r.Subject)
		out = append(out, m)
	}
	return out
}

// levelJobs runs the jobs and returns the level events they enqueued.
func (b *bundle) levelJobs(t *testing.T, asOf string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, ev := range b.runJobs(t, asOf) {
		if ev["type"] == events.TypeLevelChanged {
			out = append(out, ev)
		}
	}
	return out
}

func TestJobsExpirePoints(t *testing.T) {
	t.Parallel()
	b := setup(t, baseCatalog)
	b.process(t, paidEvent(t, "a1", "2026-03-01T10:00:00+07:00", "o1", "a", "", line{qty: "1", price: "30000"})) // 30, expires 31 March
	b.process(t, paidEvent(t, "b1", "2026-03-02T10:00:00+07:00", "o2", "b", "", line{qty: "1", price: "15000"})) // 15, expires 1 April
	b.process(t, paidEvent(t, "a2", "2026-03-05T10:00:00+07:00", "o3", "a", "", line{qty: "1", price: "20000"})) // 20, expires 4 April
	b.process(t, paidEvent(t, "a3", "2026-03-10T10:00:00+07:00", "o4", "a", "", line{qty: "1", price: "40000"})) // 40, expires 9 April
	b.process(t, paidEvent(t, "a4", "2026-03-20T10:00:00+07:00", "o5", "a", "10", line{qty: "1", price: "10"}))  // spends 10 of a1

	rep := b.runJobs(t, "2026-04-05T00:00:00+07:00")
	require.Equal(t, []map[string]any{
		{
			"event_id": "points_expired:a:2026-04-04T17:00:00Z", "type": "promo.points_expired",
			"occurred_at": "2026-04-05T00:00:00+07:00", "customer_id": "a", "balance": "40",
			"expired": []any{
				map[string]any{"lot_id": "a1", "amount": "20", "expires_at": "2026-03-31T10:00:00+07:00"},
				map[string]any{"lot_id": "a2", "amount": "20", "expires_at": "2026-04-04T10:00:00+07:00"},
			},
		},
		{
			"event_id": "points_expired:b:2026-04-04T17:00:00Z", "type": "promo.points_expired",
			"occurred_at": "2026-04-05T00:00:00+07:00", "customer_id": "b", "balance": "0",
			"expired": []any{
				map[string]any{"lot_id": "b1", "amount": "15", "expires_at": "2026-04-01T10:00:00+07:00"},
			},
		},
	}, rep)
	requireDec(t, "0", d(scalar[string](t, b, `SELECT sum(remaining)::text FROM point_lots WHERE lot_id IN ('a1', 'a2', 'b1')`)))
	b.reconcile(t, "a", "b")

	// Rerunning at the same instant finds nothing and changes nothing.
	before := b.counts(t)
	require.Empty(t, b.runJobs(t, "2026-04-05T00:00:00+07:00"))
	require.Equal(t, before, b.counts(t))

	v := b.customer(t, "a", "2026-04-05T00:00:00+07:00")
	requireDec(t, "40", v.Balance)
	require.Equal(t, "expire", v.History[0].Kind)
	require.Equal(t, "points_expired:a:2026-04-04T17:00:00Z", v.History[0].EventID)
}

func TestDowngradeOneLevelAfterRetention(t *testing.T) {
	t.Parallel()
	b := setup(t, baseCatalog)
	res := b.process(t, paidEvent(t, "g1", "2026-01-01T10:00:00+07:00", "o1", "g", "", line{qty: "1", price: "250000"}))
	require.Equal(t, "gold", res.Membership.Level)

	require.Empty(t, b.levelJobs(t, "2026-01-20T00:00:00+07:00"), "held less than 30 days")

	// Held since 1 January 10:00, 30 days passed on 31 January 10:00; the
	// window (6 January, 5 February] has no spend: one level down.
	require.Equal(t, []map[string]any{{
		"event_id": "level_changed:g:default:2026-02-04T17:00:00Z", "type": "promo.level_changed",
		"occurred_at": "2026-02-05T00:00:00+07:00", "customer_id": "g", "path": "default",
		"previous_level": "gold", "level": "silver",
		"reason": "net spend 0 over 30 days is below gold min 200000 after 30 days retention; down one level to silver",
	}}, b.levelJobs(t, "2026-02-05T00:00:00+07:00"))
	before := b.counts(t)
	require.Empty(t, b.levelJobs(t, "2026-02-05T00:00:00+07:00"), "idempotent")
	require.Equal(t, before, b.counts(t))

	// Silver is held from 5 February: its retention starts again.
	require.Empty(t, b.levelJobs(t, "2026-02-20T00:00:00+07:00"))
	ev := b.levelJobs(t, "2026-03-08T00:00:00+07:00")
	require.Len(t, ev, 1)
	require.Equal(t, "silver", ev[0]["previous_level"])
	require.Equal(t, "bronze", ev[0]["level"])
	require.Empty(t, b.levelJobs(t, "2026-06-01T00:00:00+07:00"), "the entry level never drops")

	v := b.customer(t, "g", "2026-06-01T00:00:00+07:00")
	require.Equal(t, []ledgerLevel{{"default", "bronze", "2026-03-08T00:00:00+07:00"}}, levelsOf(v))
}

func TestDowngradeToQualified(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ policy, want string }{
		{"one_level", "gold"},
		{"to_qualified", "silver"},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			t.Parallel()
			b := setup(t, catalogWith("downgrade: one_level", "downgrade: "+tc.policy))
			b.process(t, paidEvent(t, "p1", "2026-01-01T10:00:00+07:00", "o1", "p", "", line{qty: "1", price: "600000"}))
			res := b.process(t, paidEvent(t, "p2", "2026-01-20T10:00:00+07:00", "o2", "p", "", line{qty: "1", price: "120000"}))
			require.Equal(t, "platinum", res.Membership.Level)
			// Window spend 120000 qualifies for silver only.
			ev := b.levelJobs(t, "2026-02-05T00:00:00+07:00")
			require.Len(t, ev, 1)
			require.Equal(t, "platinum", ev[0]["previous_level"])
			require.Equal(t, tc.want, ev[0]["level"])
		})
	}
}

// Staying qualified does not restart retention: it counts from when the
// level was reached.
func TestRetentionNotRestartedByStayingQualified(t *testing.T) {
	t.Parallel()
	b := setup(t, baseCatalog)
	b.process(t, paidEvent(t, "r1", "2026-01-01T10:00:00+07:00", "o1", "r", "", line{qty: "1", price: "250000"}))
	res := b.process(t, paidEvent(t, "r2", "2026-01-25T10:00:00+07:00", "o2", "r", "", line{qty: "1", price: "50000"}))
	require.Equal(t, "gold", res.Membership.Level)
	require.False(t, res.Membership.Changed)
	// A customer who keeps spending enough keeps the level.
	b.process(t, paidEvent(t, "q1", "2026-01-01T10:00:00+07:00", "o3", "q", "", line{qty: "1", price: "250000"}))
	b.process(t, paidEvent(t, "q2", "2026-01-25T10:00:00+07:00", "o4", "q", "", line{qty: "1", price: "210000"}))

	ev := b.levelJobs(t, "2026-02-05T00:00:00+07:00")
	require.Len(t, ev, 1, "only r drops: since is still 1 January")
	require.Equal(t, "r", ev[0]["customer_id"])
	require.Equal(t, "silver", ev[0]["level"])
}

// A return lowers the window spend but never the level at once; the job
// sees the lowered spend.
func TestReturnLowersSpendForTheJob(t *testing.T) {
	t.Parallel()
	b := setup(t, baseCatalog)
	b.process(t, paidEvent(t, "s1", "2026-01-01T10:00:00+07:00", "o1", "s", "", line{qty: "2", price: "100000"}))
	res := b.process(t, returnEvent(t, "s1-r", "2026-01-02T10:00:00+07:00", "o1-r", "o1", "1", "1"))
	require.Equal(t, "gold", res.Membership.Level)
	requireDec(t, "100000", res.Membership.QualifyingAmount)
	b.process(t, paidEvent(t, "s2", "2026-01-30T10:00:00+07:00", "o2", "s", "", line{qty: "1", price: "150000"}))
	// Window (6 January, 5 February]: 150000, below gold.
	ev := b.levelJobs(t, "2026-02-05T00:00:00+07:00")
	require.Len(t, ev, 1)
	require.Equal(t, "silver", ev[0]["level"])
}
