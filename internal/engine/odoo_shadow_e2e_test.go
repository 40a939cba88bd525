package engine_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/internal/odoo/odootest"
	"github.com/promoengine/promoengine/internal/shadow"
	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/pkg/rules"
)

// Shadow mode end to end against the fake Odoo holding what a real Odoo
// 17.0 answered about its loyalty programs: orders paid with Odoo's loyalty
// (reward lines, the point changes promo_engine_loyalty records) are
// processed by the engine with the catalog `odoo import-catalog` made of
// those programs; nothing is pushed for the shops in shadow, each order is
// compared, and a shop set live is pushed as usual.
func TestShadowModeComparesWithOdoosLoyaltyAndPushesNothing(t *testing.T) {
	t.Parallel()
	b := setupOdooE2E(t)
	loyaltyData, err := os.ReadFile(filepath.Join("..", "odoo", "loyalty", "testdata", "odoo17_programs.json"))
	require.NoError(t, err)
	b.odoo.LoadModels(t, loyaltyData)
	b.odoo.AddField("pos.order", "promo_engine_loyalty_points")
	imported, err := os.ReadFile(filepath.Join("..", "odoo", "loyalty", "testdata", "odoo17_catalog.yaml"))
	require.NoError(t, err)
	cat, err := rules.Parse(imported)
	require.NoError(t, err)
	_, err = ledger.ApplyCatalog(b.ctx, b.pool, cat)
	require.NoError(t, err)
	// Ann's card (20) was imported with 120.50 points (odoo import-balances).
	require.NoError(t, pgx.BeginFunc(b.ctx, b.pool, func(tx pgx.Tx) error {
		_, err := ledger.OpenLots(b.ctx, tx, []ledger.OpeningLot{{LotID: "odoo1:loyalty.card:20:opening", CustomerID: "10",
			Source: "odoo1:loyalty.card:20", At: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Points: dec.MustParse("120.50")}})
		return err
	}))

	// Ann (partner 10) buys 3 Colas: Odoo's "Cola 2+1" (reward 4) gives one
	// free; her card (20) of "Loyalty card" (program 13, 0.5 point a
	// dollar) wins 2.5, to 123 points in both.
	b.odoo.AddOrder(odootest.Order{ID: 7001, Partner: 10, Currency: "USD", Lines: []odootest.Line{
		{ID: 70011, Product: 11, Qty: 3, Price: 2.5},
		{ID: 70012, Product: 1, Qty: 1, Price: -2.5, Reward: 4, PointsCost: 2}},
		LoyaltyPoints: `[{"program_id": 13, "card_id": 20, "code": "0441", "points": 2.5, "balance": 123.0, "created": false, "line_codes": []}]`})
	// Bob (11) buys 2 Chips with the code WELCOME5 (program 10, reward 10):
	// $5 off; the POS made a throwaway card (30) for it.
	b.odoo.Add("loyalty.card", 30, map[string]any{"program_id": []any{10, "Welcome code"}, "code": "044f-aaaa", "points": 0.0,
		"expiration_date": false, "source_pos_order_id": []any{7002, "Shop/7002"}, "partner_id": false})
	b.odoo.AddOrder(odootest.Order{ID: 7002, Partner: 11, Currency: "USD", Lines: []odootest.Line{
		{ID: 70021, Product: 13, Qty: 2, Price: 3},
		{ID: 70022, Product: 1, Qty: 1, Price: -5, Reward: 10, Coupon: 30, PointsCost: 1}},
		LoyaltyPoints: `[{"program_id": 13, "card_id": 21, "code": "0442", "points": 0.5, "balance": 300.5, "created": false, "line_codes": []}]`})
	// An anonymous Candy, given nothing by either.
	b.odoo.AddOrder(odootest.Order{ID: 7003, Currency: "USD", Lines: []odootest.Line{{ID: 70031, Product: 14, Qty: 1, Price: 1}}})
	// Company 2 is live already: its order is pushed, not compared.
	b.odoo.AddOrder(odootest.Order{ID: 7004, Company: 2, Partner: 77, Currency: "USD", Lines: []odootest.Line{{ID: 70041, Product: 14, Qty: 2, Price: 1}}})

	b.start(func(c *config.Config) {
		c.Mode, c.ModeCompanies, c.ShadowSettle = config.ModeShadow, "2:live", 200*time.Millisecond
	})
	for _, id := range []int64{7001, 7002, 7003, 7004} {
		require.Equal(t, http.StatusAccepted, b.webhook(id))
	}
	b.waitStored(map[int64][]string{7004: {result("odoo1:pos.order:7004:paid")}}, time.Minute)

	var rep *shadow.Report
	require.Eventually(t, func() bool {
		rep, err = shadow.Query(b.ctx, b.pool, shadow.ReportOptions{})
		return err == nil && rep.Orders == 3
	}, time.Minute, 50*time.Millisecond)
	require.Equal(t, 2, rep.Matches, "%+v", rep.Differing)
	require.Equal(t, 1, rep.Mismatches)
	require.Equal(t, 1, rep.Explained, "every difference is a known one")
	diffs := rep.Differing[0].Diffs
	require.Equal(t, "7002", rep.Differing[0].OrderID)
	require.Equal(t, []shadow.Diff{
		{Program: "odoo-10", OdooID: 10, Name: "Welcome code", Field: shadow.FieldDiscount, Engine: "0.00", Odoo: "5.00", Explanation: shadow.ExplainCodeNotInEvent},
		{Program: "odoo-10", OdooID: 10, Name: "Welcome code", Field: shadow.FieldCodes, Engine: "", Odoo: "WELCOME5", Explanation: shadow.ExplainCodeNotInEvent},
		{Program: "odoo-13", OdooID: 13, Name: "Loyalty card", Field: shadow.FieldPointsEarned, Engine: "3.00", Odoo: "0.5", Explanation: shadow.ExplainFollows},
	}, diffs)

	m := b.engine.Metrics.ShadowComparisons
	require.Equal(t, 1.0, testutil.ToFloat64(m.WithLabelValues("odoo-4", "match")))
	require.Equal(t, 1.0, testutil.ToFloat64(m.WithLabelValues("odoo-13", "match")))
	require.Equal(t, 1.0, testutil.ToFloat64(m.WithLabelValues("odoo-13", "mismatch")))
	require.Equal(t, 1.0, testutil.ToFloat64(m.WithLabelValues("odoo-10", "mismatch")))
	require.Equal(t, 1.0, testutil.ToFloat64(m.WithLabelValues("none", "match")))

	b.mu.Lock()
	defer b.mu.Unlock()
	require.Equal(t, map[int64][]string{7004: {result("odoo1:pos.order:7004:paid")}}, b.stored, "nothing pushed for the shops in shadow")
}
