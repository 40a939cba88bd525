package audit_test

import (
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/promoengine/promoengine/internal/audit"
	"github.com/promoengine/promoengine/internal/testdb"
	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/pkg/rules"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).backgroundHealthCheck"))
}

func TestRecordListAndAppendOnly(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := testdb.New(t)
	e := audit.Entry{Actor: "api_key sha256:1a2b3c4d", Action: audit.ActionDLQPurge, Target: "dead letter 4", Source: "http 10.0.0.7:5123"}
	id1, err := audit.Record(ctx, pool, e, map[string]any{"code": "invalid_event"})
	require.NoError(t, err)
	e.Actor, e.Action, e.Target, e.Outcome = "cli alice", audit.ActionReplay, "POS_ORDERS seq 1–9", audit.OutcomeFailed
	id2, err := audit.Record(ctx, pool, e, nil)
	require.NoError(t, err)
	require.Greater(t, id2, id1)
	_, err = audit.Record(ctx, pool, audit.Entry{Action: audit.ActionReplay}, nil)
	require.Error(t, err, "an entry names its actor")
	_, err = audit.Record(ctx, pool, audit.Entry{Actor: "x", Action: audit.ActionReplay, Outcome: "maybe"}, nil)
	require.Error(t, err, "the outcome is ok or failed")

	all, err := audit.List(ctx, pool, audit.Filter{})
	require.NoError(t, err)
	require.Len(t, all, 2)
	require.Equal(t, "dead letter 4", all[0].Target)
	require.JSONEq(t, `{"code": "invalid_event"}`, string(all[0].Details))
	require.JSONEq(t, `{}`, string(all[1].Details))
	require.Equal(t, audit.OutcomeOK, all[0].Outcome)
	require.Equal(t, audit.OutcomeFailed, all[1].Outcome)
	require.WithinDuration(t, time.Now(), all[0].At, time.Minute)

	for _, f := range []struct {
		filter audit.Filter
		want   int
	}{
		{audit.Filter{Action: audit.ActionReplay}, 1},
		{audit.Filter{Actor: "sha256:1a2b"}, 1},
		{audit.Filter{Since: time.Now().Add(time.Hour)}, 0},
		{audit.Filter{Until: time.Now().Add(-time.Hour)}, 0},
		{audit.Filter{Limit: 1}, 1},
	} {
		got, err := audit.List(ctx, pool, f.filter)
		require.NoError(t, err)
		require.Len(t, got, f.want, "%+v", f.filter)
	}

	// Append-only.
	for _, stmt := range []string{`UPDATE audit_log SET actor = 'nobody'`, `DELETE FROM audit_log`, `TRUNCATE audit_log`} {
		_, err := pool.Exec(ctx, stmt)
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr, stmt)
		require.Equal(t, "42501", pgErr.Code, stmt)
	}
	again, err := audit.List(ctx, pool, audit.Filter{})
	require.NoError(t, err)
	require.Equal(t, all, again)

	// The metric counts every entry in the database, with a zero series for
	// each action and outcome.
	c := audit.NewCollector(pool)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP promo_audit_entries_total Entries in the audit trail (admin actions), by action and outcome; the same on every process: use max.
# TYPE promo_audit_entries_total counter
promo_audit_entries_total{action="catalog.apply",outcome="failed"} 0
promo_audit_entries_total{action="catalog.apply",outcome="ok"} 0
promo_audit_entries_total{action="dlq.purge",outcome="failed"} 0
promo_audit_entries_total{action="dlq.purge",outcome="ok"} 1
promo_audit_entries_total{action="dlq.redrive",outcome="failed"} 0
promo_audit_entries_total{action="dlq.redrive",outcome="ok"} 0
promo_audit_entries_total{action="jobs.run",outcome="failed"} 0
promo_audit_entries_total{action="jobs.run",outcome="ok"} 0
promo_audit_entries_total{action="partitions.set",outcome="failed"} 0
promo_audit_entries_total{action="partitions.set",outcome="ok"} 0
promo_audit_entries_total{action="replay",outcome="failed"} 1
promo_audit_entries_total{action="replay",outcome="ok"} 0
`), "promo_audit_entries_total"))
}

const catalogV1 = `
currency: IDR
money_decimals: 0
timezone: Asia/Jakarta
points: {decimals: 0, earn: [{per_amount: "1000", points: "1"}]}
programs:
  - {id: drinks, layer: item, when: {products: {categories: ["12"]}}, reward: {percent: "10"}}
  - {id: bread, layer: item, when: {products: {categories: ["13"]}}, reward: {percent: "20"}}
`

func parse(t *testing.T, doc string) *rules.Catalog {
	t.Helper()
	c, err := rules.Parse([]byte(doc))
	require.NoError(t, err)
	return c
}

func TestApplyCatalogRecordsTheChange(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := testdb.New(t)
	who := audit.Entry{Actor: "oidc https://sso.example.com/realms/shop#ann", Source: "http 10.0.0.9:4000"}
	v1, change, id, err := audit.ApplyCatalog(ctx, pool, parse(t, catalogV1), who)
	require.NoError(t, err)
	require.Equal(t, int64(1), v1)
	require.Equal(t, audit.CatalogChange{Version: 1, SHA256: change.SHA256, Programs: 2, Added: []string{"drinks", "bread"},
		Settings: []string{"currency", "money_decimals", "points", "timezone"}}, change, "the first catalog: everything is new")

	v2doc := strings.Replace(strings.Replace(catalogV1, `percent: "20"`, `percent: "25"`, 1), "  - {id: drinks", "  - {id: cakes, layer: item, reward: {percent: \"5\"}}\n  - {id: drinks", 1)
	v2doc = strings.Replace(v2doc, `per_amount: "1000"`, `per_amount: "2000"`, 1)
	_, change, id2, err := audit.ApplyCatalog(ctx, pool, parse(t, v2doc), who)
	require.NoError(t, err)
	require.Greater(t, id2, id)
	require.Equal(t, int64(2), change.Version)
	require.Equal(t, int64(1), change.PreviousVersion)
	require.Equal(t, []string{"cakes"}, change.Added)
	require.Equal(t, []string{"bread"}, change.Changed)
	require.Empty(t, change.Removed)
	require.Equal(t, []string{"points"}, change.Settings)

	// Unchanged: nothing listed.
	_, change, _, err = audit.ApplyCatalog(ctx, pool, parse(t, v2doc), who)
	require.NoError(t, err)
	require.Empty(t, change.Added)
	require.Empty(t, change.Changed)
	require.Empty(t, change.Settings)

	entries, err := audit.List(ctx, pool, audit.Filter{Action: audit.ActionCatalogApply})
	require.NoError(t, err)
	require.Len(t, entries, 3)
	require.Equal(t, "catalog version 2", entries[1].Target)
	require.Equal(t, who.Actor, entries[1].Actor)
	require.Equal(t, who.Source, entries[1].Source)

	// The catalog and its entry commit together: a failure to record rolls
	// the catalog back.
	_, _, _, err = audit.ApplyCatalog(ctx, pool, parse(t, catalogV1), audit.Entry{})
	require.Error(t, err)
	latest, err := ledger.LatestCatalog(ctx, pool)
	require.NoError(t, err)
	require.Equal(t, int64(3), latest.Version)
}

func TestSummarizeCatalogRemovals(t *testing.T) {
	t.Parallel()
	prev := []byte(`{"currency": "IDR", "programs": [{"id": "a", "x": 1}, {"id": "b"}], "membership": {"paths": []}}`)
	next := []byte(`{"programs": [{"x": 1, "id": "a"}], "currency": "IDR"}`)
	c := audit.SummarizeCatalog(prev, next)
	require.Equal(t, []string{"b"}, c.Removed)
	require.Empty(t, c.Changed, "key order is no change")
	require.Equal(t, []string{"membership"}, c.Settings)
	require.Equal(t, 1, c.Programs)
}
