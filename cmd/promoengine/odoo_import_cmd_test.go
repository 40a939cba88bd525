package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/odoo/loyalty"
	"github.com/promoengine/promoengine/internal/odoo/odootest"
	"github.com/promoengine/promoengine/pkg/ledger"
)

// withLoyalty points the commands at a fake Odoo holding what a real Odoo
// 17.0 answered about its loyalty programs (the programs of
// TestRealOdooMigration).
func (b *opsBundle) withLoyalty() *odootest.Server {
	srv := odootest.New(b.t)
	data, err := os.ReadFile(filepath.Join("..", "..", "internal", "odoo", "loyalty", "testdata", "odoo17_programs.json"))
	require.NoError(b.t, err)
	srv.LoadModels(b.t, data)
	b.env["PROMO_ODOO_URL"] = srv.URL
	b.env["PROMO_ODOO_DB"] = srv.DB
	b.env["PROMO_ODOO_LOGIN"] = srv.Login
	b.env["PROMO_ODOO_API_KEY"] = srv.APIKey
	// The API user of this server has the recorded API user's company and
	// time zone.
	srv.Add("res.users", srv.UID, map[string]any{"tz": "Asia/Jakarta", "company_id": []any{1, "My Company"}})
	return srv
}

func TestOdooImportCatalogWritesAValidCatalogAndListsTheRest(t *testing.T) {
	t.Parallel()
	b := setupOps(t)
	b.withLoyalty()
	file := filepath.Join(t.TempDir(), "catalog.yaml")
	res := b.run("odoo", "import-catalog", "-o", file)
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Contains(t, res.Stdout, "catalog (USD, Asia/Jakarta, ")
	for _, line := range []string{
		"4  buy_x_get_y  Cola 2+1",
		"14  gift_card  Gift cards",
		"means of payment",
		"16  promotion  Wholesale 5%",
		`restricted to pricelist(s) "Wholesale"`,
		"19  promotion  Old 30%",
	} {
		require.Contains(t, collapse(res.Stdout), line)
	}
	res = b.run("catalog", "validate", "-f", file)
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Contains(t, res.Stdout, "valid (")

	// --json: the report for a script.
	res = b.run("odoo", "import-catalog", "-o", file, "--json", "--max-coupon-codes", "0", "--timezone", "Europe/Brussels")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	var imp loyalty.Import
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &imp))
	require.Equal(t, "Europe/Brussels", imp.Timezone)
	require.Equal(t, int64(13), imp.LoyaltyProgram)
	require.Len(t, imp.Programs, 17)
	for _, p := range imp.Programs {
		if p.ID == 11 {
			require.Empty(t, p.CatalogIDs, "no coupon with --max-coupon-codes 0")
		}
	}

	res = b.run("odoo", "import-catalog", "--json")
	require.Equal(t, 2, res.ExitCode, "--json needs -o")
}

// collapse squeezes runs of spaces (tabwriter's columns) to two.
func collapse(s string) string {
	for strings.Contains(s, "   ") {
		s = strings.ReplaceAll(s, "   ", "  ")
	}
	return s
}

func TestOdooImportBalancesOpensLotsOnceAndReconciles(t *testing.T) {
	t.Parallel()
	b := setupOps(t)
	srv := b.withLoyalty()
	b.applyCatalog(`
currency: USD
timezone: Asia/Jakarta
points: {decimals: 2, earn: [{per_amount: "0.01", points: "0.005"}], redeem: {value: "0.01", min: "100"}}
`)
	// The loyalty cards of program 13, as Odoo holds them: floats.
	card := func(id int64, partner any, points any, expiration any) {
		srv.Add(loyalty.ModelCard, id, map[string]any{"program_id": []any{13, "Loyalty card"}, "partner_id": partner,
			"code": "card-" + string(rune('a'+id)), "points": points, "expiration_date": expiration})
	}
	card(20, []any{10, "Ann"}, json.Number("120.5"), false)
	card(21, []any{11, "Bob"}, json.Number("300.0"), false)
	card(22, []any{12, "Cid"}, json.Number("0.30000000000000004"), false)
	card(23, []any{13, "Dan"}, json.Number("0.0"), false)
	card(24, false, json.Number("50.0"), false)
	card(25, []any{14, "Eve"}, json.Number("10.004"), "2020-01-31")

	res := b.run("odoo", "import-balances", "--as-of", "2026-12-01T00:00:00+07:00", "--dry-run")
	require.Equal(t, 0, res.ExitCode, res.Stdout+res.Stderr)
	out := collapse(res.Stdout)
	require.Contains(t, out, `Odoo loyalty program 13 "Loyalty card"`)
	require.Regexp(t, `Odoo\s+6\s+480\.80400000000000004`, out, "every card, as Odoo holds them")
	require.Regexp(t, `to import \(dry run: nothing written\)\s+3\s+3\s+420\.80`, out)
	require.Regexp(t, `left out: no points\s+1\s+0`, out)
	require.Regexp(t, `left out: no customer.*1\s+50`, out)
	require.Regexp(t, `left out: expired\s+1\s+10\.004`, out)
	require.Contains(t, out, "Odoo's total = imported + left out − rounding: equal")
	require.Contains(t, out, "card 24: 50 points, no customer: not imported")
	require.Zero(t, scalarInt(t, b, `SELECT count(*) FROM point_lots`), "dry run")

	res = b.run("odoo", "import-balances", "--as-of", "2026-12-01T00:00:00+07:00", "--json")
	require.Equal(t, 0, res.ExitCode, res.Stdout+res.Stderr)
	var rep balancesReport
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &rep))
	require.Equal(t, 3, rep.Opened)
	require.True(t, rep.Equal)
	require.Equal(t, "420.80", rep.EnginePoints.String())
	for id, want := range map[string]string{"10": "120.50", "11": "300.00", "12": "0.30"} {
		require.Equal(t, want, sumString(t, b, `SELECT sum(remaining) FROM point_lots WHERE customer_id = $1`, id), "customer %s", id)
		require.NoError(t, ledger.Reconcile(b.ctx, b.pool, id))
	}
	require.Equal(t, "odoo1:loyalty.card:20:opening",
		stringScalar(t, b, `SELECT lot_id FROM point_lots WHERE customer_id = '10'`))

	// Twice: nothing more.
	res = b.run("odoo", "import-balances", "--as-of", "2026-12-02T00:00:00+07:00")
	require.Equal(t, 0, res.ExitCode, res.Stdout+res.Stderr)
	require.Contains(t, res.Stdout, "engine: 3 opening lots of these cards (0 opened now, 3 from an earlier import), 420.80 points: equal to Odoo's")
	require.Equal(t, int64(3), scalarInt(t, b, `SELECT count(*) FROM point_lots`))

	// Odoo's cards move on (shadow period): the import says so, and the
	// true-up at cut-over brings the engine to Odoo's balances.
	card(20, []any{10, "Ann"}, json.Number("20.5"), false)
	res = b.run("odoo", "import-balances", "--as-of", "2026-12-20T00:00:00+07:00")
	require.Equal(t, 1, res.ExitCode, res.Stdout)
	require.Contains(t, res.Stdout, "1 cards changed in Odoo since their import: run --true-up at cut-over")
	res = b.run("odoo", "import-balances", "--true-up", "--as-of", "2026-12-20T00:00:00+07:00")
	require.Equal(t, 0, res.ExitCode, res.Stdout+res.Stderr)
	require.Contains(t, res.Stdout, "true-up of 5 customers: 0 raised, 1 lowered; engine balances 320.80, Odoo's 320.80: equal to Odoo's")
	require.Equal(t, "20.50", sumString(t, b, `SELECT sum(remaining) FROM point_lots WHERE customer_id = '10'`))
	require.NoError(t, ledger.Reconcile(b.ctx, b.pool, "10"))
	res = b.run("odoo", "import-balances", "--true-up", "--as-of", "2026-12-20T00:00:00+07:00")
	require.Equal(t, 0, res.ExitCode, res.Stdout+res.Stderr)
	require.Equal(t, int64(1), scalarInt(t, b, `SELECT count(*) FROM ledger_entries WHERE kind = 'clawback'`), "trued up once")

	var actions []string
	rows, err := b.pool.Query(b.ctx, `SELECT action FROM audit_log ORDER BY id`)
	require.NoError(t, err)
	for rows.Next() {
		var a string
		require.NoError(t, rows.Scan(&a))
		actions = append(actions, a)
	}
	require.Equal(t, []string{"odoo.import_balances", "odoo.import_balances", "odoo.import_balances", "odoo.import_balances", "odoo.import_balances"}, actions)
}

func scalarInt(t *testing.T, b *opsBundle, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	require.NoError(t, b.pool.QueryRow(b.ctx, sql, args...).Scan(&n))
	return n
}

func stringScalar(t *testing.T, b *opsBundle, sql string, args ...any) string {
	t.Helper()
	var s string
	require.NoError(t, b.pool.QueryRow(b.ctx, sql, args...).Scan(&s))
	return s
}

func sumString(t *testing.T, b *opsBundle, sql string, args ...any) string {
	t.Helper()
	return stringScalar(t, b, "SELECT ("+sql+")::numeric::text", args...)
}
