package ledger_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/pkg/events"
)

// warnCatalog: a 30-day window, levels held at least 10 days, warnings 14
// days ahead.
func warnCatalog(downgrade string) string {
	return strings.NewReplacer(
		"qualify: {window_days: 30}", "qualify: {window_days: 30}\n      warn_days: 14",
		"retention_days: 30", "retention_days: 10",
		"downgrade: one_level", "downgrade: "+downgrade,
		`{id: silver, min: "100000"}`, `{id: silver, min: "100000"}`,
		`{id: gold, min: "200000"}`, `{id: gold, min: "300000"}`,
		`{id: platinum, min: "500000"}`, `{id: platinum, min: "900000"}`,
	).Replace(baseCatalog)
}

// warningsSince returns the level warnings enqueued after outbox id after,
// and the last id.
func (b *bundle) warningsSince(t *testing.T, after int64) ([]events.LevelWarning, int64) {
	t.Helper()
	rows, err := b.pool.Query(b.ctx, `SELECT id, payload FROM outbox WHERE id > $1 AND subject = 'promo.results.level_warning' ORDER BY id`, after)
	require.NoError(t, err)
	type row struct {
		ID      int64
		Payload []byte
	}
	rs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[row])
	require.NoError(t, err)
	var out []events.LevelWarning
	last := after
	for _, r := range rs {
		var w events.LevelWarning
		require.NoError(t, json.Unmarshal(r.Payload, &w))
		out = append(out, w)
		last = r.ID
	}
	return out, last
}

// SPEC §6.8 with hand-computed dates: as of T, the first daily instant M
// with T < M ≤ T + 14 days at which retention is reached and the 30-day
// window spend ending at M is below the level's min; once per customer,
// path, level and M.
func TestLevelWarnings(t *testing.T) {
	t.Parallel()
	b := setup(t, warnCatalog("one_level"))
	// ann: 350000 on 1 January 10:00 → gold since then. The order leaves
	// her 30-day window at 31 January 10:00, so the first midnight with
	// spend 0 is 1 February.
	b.process(t, order{event: "a1", at: "2026-01-01T10:00:00+07:00", id: "a1", customer: "ann", price: "350000"}.event_(t))
	// bea: 2 × 160000 = 320000 → gold, then one unit back on 3 January:
	// her window holds 160000 (the return is dated at the order).
	b.process(t, order{event: "b1", at: "2026-01-01T10:00:00+07:00", id: "b1", customer: "bea", qty: "2", price: "160000"}.event_(t))
	b.process(t, returnEvent(t, "b1r", "2026-01-03T09:00:00+07:00", "b1-r", "b1", "1", "1"))
	var last int64

	// As of 5 January: M runs 6–19 January; retention (10 days from 1
	// January 10:00) is reached from 12 January 00:00. ann keeps 350000 in
	// every window up to 19 January: no warning. bea's 160000 is below
	// gold's 300000 at 12 January: warned, 140000 needed, down to silver.
	got, last := b.warningsSince(t, last)
	require.Empty(t, got)
	rep := b.jobs(t, "2026-01-05T00:00:00+07:00")
	require.Equal(t, 1, rep.Warnings)
	got, last = b.warningsSince(t, last)
	require.Equal(t, []events.LevelWarning{{
		EventID: "level_warning:bea:default:gold:2026-01-11T17:00:00Z", Type: events.TypeLevelWarning,
		OccurredAt: "2026-01-05T00:00:00+07:00", CustomerID: "bea", Path: "default", Level: "gold", ToLevel: "silver",
		DowngradeAt: "2026-01-12T00:00:00+07:00", SpendNeeded: d("140000"),
	}}, got)
	// The same run again, and the next day's: the same M, nothing new.
	require.Zero(t, b.jobs(t, "2026-01-05T00:00:00+07:00").Warnings)
	require.Zero(t, b.jobs(t, "2026-01-06T00:00:00+07:00").Warnings)
	got, last = b.warningsSince(t, last)
	require.Empty(t, got)

	// 12 January: bea drops to silver (since 12 January); silver's min
	// 100000 is met by her 160000 until 31 January: no warning for silver.
	rep = b.jobs(t, "2026-01-12T00:00:00+07:00")
	require.Equal(t, 1, rep.Downgrades)
	require.Zero(t, rep.Warnings)

	// As of 20 January, M runs 21 January – 3 February: ann's spend falls
	// to 0 at 1 February 00:00. bea, silver since 12 January (retention
	// reached 22 January), has 160000 until 31 January 10:00: below
	// silver's 100000 from 1 February too.
	require.Equal(t, 2, b.jobs(t, "2026-01-20T00:00:00+07:00").Warnings)
	got, last = b.warningsSince(t, last)
	require.Equal(t, []events.LevelWarning{{
		EventID: "level_warning:ann:default:gold:2026-01-31T17:00:00Z", Type: events.TypeLevelWarning,
		OccurredAt: "2026-01-20T00:00:00+07:00", CustomerID: "ann", Path: "default", Level: "gold", ToLevel: "silver",
		DowngradeAt: "2026-02-01T00:00:00+07:00", SpendNeeded: d("300000"),
	}, {
		EventID: "level_warning:bea:default:silver:2026-01-31T17:00:00Z", Type: events.TypeLevelWarning,
		OccurredAt: "2026-01-20T00:00:00+07:00", CustomerID: "bea", Path: "default", Level: "silver", ToLevel: "bronze",
		DowngradeAt: "2026-02-01T00:00:00+07:00", SpendNeeded: d("100000"),
	}}, got)

	// ann spends 100000 on 22 January: at 1 February her window holds
	// 100000, still below 300000, and M is still 1 February: no second
	// warning for the same date.
	b.process(t, order{event: "a2", at: "2026-01-22T10:00:00+07:00", id: "a2", customer: "ann", price: "100000"}.event_(t))
	require.Zero(t, b.jobs(t, "2026-01-22T12:00:00+07:00").Warnings)

	// 1 February: ann drops to silver. Silver since 1 February (retention
	// to 11 February), her 100000 of 22 January counts until 21 February
	// 10:00: as of 8 February, M = 22 February, 100000 needed, to bronze.
	rep = b.jobs(t, "2026-02-01T00:00:00+07:00")
	require.Equal(t, 2, rep.Downgrades)
	got, last = b.warningsSince(t, last)
	require.Empty(t, got, "ann's silver is safe up to 15 February; bea holds the entry level")
	b.jobs(t, "2026-02-08T00:00:00+07:00")
	got, _ = b.warningsSince(t, last)
	require.Len(t, got, 1)
	require.Equal(t, "ann silver bronze 2026-02-22T00:00:00+07:00 100000",
		got[0].CustomerID+" "+got[0].Level+" "+got[0].ToLevel+" "+got[0].DowngradeAt+" "+got[0].SpendNeeded.String())
	require.Equal(t, int64(4), scalar[int64](t, b, `SELECT count(*) FROM level_warnings`))
}

// With downgrade: to_qualified the warning names the level the window
// spend at M qualifies for.
func TestLevelWarningToQualified(t *testing.T) {
	t.Parallel()
	b := setup(t, warnCatalog("to_qualified"))
	// 950000 → platinum; 9 of 10 units back: 95000 left, which qualifies
	// for bronze only.
	b.process(t, order{event: "c1", at: "2026-01-01T10:00:00+07:00", id: "c1", customer: "cid", qty: "10", price: "95000"}.event_(t))
	b.process(t, returnEvent(t, "c1r", "2026-01-02T09:00:00+07:00", "c1-r", "c1", "1", "9"))
	require.Equal(t, 1, b.jobs(t, "2026-01-05T00:00:00+07:00").Warnings)
	got, _ := b.warningsSince(t, 0)
	require.Len(t, got, 1)
	require.Equal(t, "cid platinum bronze 2026-01-12T00:00:00+07:00 805000",
		got[0].CustomerID+" "+got[0].Level+" "+got[0].ToLevel+" "+got[0].DowngradeAt+" "+got[0].SpendNeeded.String())
}
