package e2e_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/odoo/loyalty"
	"github.com/promoengine/promoengine/internal/shadow"
	"github.com/promoengine/promoengine/internal/testbin"
	"github.com/promoengine/promoengine/internal/testdb"
	"github.com/promoengine/promoengine/internal/testnats"
)

// The steps of docs/MIGRATION.md against the real Odoo: import, balances,
// shadow with orders paid as the POS pays them with Odoo's loyalty active,
// the report, the true-up at cut-over.

func (m *migration) startNATSAndDB() {
	ns := testnats.New(m.t)
	m.env = testbin.Env{
		"PROMO_NATS_URL": ns.URL(), "PROMO_DATABASE_URL": testdb.NewDatabase(m.t),
		"PROMO_ODOO_URL": m.server.url, "PROMO_ODOO_DB": m.odoo.db, "PROMO_ODOO_LOGIN": "promo-engine",
		"PROMO_ODOO_API_KEY": m.shop.Key, "PROMO_API_KEYS": posKey + ":pos", "PROMO_LOG_LEVEL": "info",
		// The import translates next-order coupon programs to engine-issued
		// coupons, so the catalog needs the coupon secret.
		"PROMO_COUPON_SECRET": "migration-e2e-coupon-secret",
	}
	m.seq.Store(time.Now().Unix() % 10000 * 100)
}

func (m *migration) cli(args ...string) testbin.Result {
	m.t.Helper()
	res := testbin.Run(m.t, m.env, args...)
	m.t.Logf("$ promoengine %s → exit %d\n%s%s", strings.Join(args, " "), res.ExitCode, res.Stdout, tail(res.Stderr, 5))
	return res
}

// importCatalog: every program type is reported, the catalog validates and
// is applied.
func (m *migration) importCatalog(t *testing.T) {
	m.catalog = filepath.Join(t.TempDir(), "catalog.yaml")
	res := m.cli("odoo", "import-catalog", "-o", m.catalog, "--json")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	var imp loyalty.Import
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &imp))
	require.Equal(t, "USD", imp.Currency)
	require.Equal(t, "Asia/Jakarta", imp.Timezone, "the API user's time zone in Odoo")
	require.Equal(t, m.programs["Loyalty card"], imp.LoyaltyProgram)
	outcome := map[string]loyalty.ProgramReport{}
	for _, r := range imp.Programs {
		outcome[r.Name] = r
	}
	for name, want := range map[string]string{
		"Cola 2+1": loyalty.OutcomeTranslated, "Candy with 2 Chips": loyalty.OutcomeTranslated,
		"Juice 20%": loyalty.OutcomeTranslated, "10% over $20": loyalty.OutcomeTranslated,
		"Half price on the cheapest of 20": loyalty.OutcomeTranslated, "Summer $1 off, 100 uses": loyalty.OutcomeTranslated,
		"Welcome code": loyalty.OutcomeTranslated, "Coupon 15%": loyalty.OutcomeTranslated,
		"Come back 10%": loyalty.OutcomeTranslated, "Loyalty card": loyalty.OutcomePartial,
		"Gift cards": loyalty.OutcomeUntranslated, "eWallet": loyalty.OutcomeUntranslated,
		"Wholesale 5%": loyalty.OutcomeUntranslated, "Two rules": loyalty.OutcomeUntranslated,
		"Pricey products": loyalty.OutcomeUntranslated, "Old 30%": loyalty.OutcomeSkipped,
	} {
		r, ok := outcome[name]
		require.True(t, ok, "program %q reported", name)
		require.Equal(t, want, r.Outcome, "%s: %s", name, r.Reason)
		if want == loyalty.OutcomeUntranslated || want == loyalty.OutcomeSkipped {
			require.NotEmpty(t, r.Reason, name)
		}
	}
	res = m.cli("catalog", "validate", "-f", m.catalog)
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	res = m.cli("catalog", "apply", "-f", m.catalog)
	require.Equal(t, 0, res.ExitCode, res.Stderr)

	// The programs the catalog cannot express are rewritten or switched
	// off in Odoo before the shadow (docs/MIGRATION.md, step 2): here the
	// product domain one, which would otherwise give 2 % on most orders.
	m.call("loyalty.program", "action_archive", []any{[]int64{m.programs["Pricey products"]}}, nil)
}

// importBalances: the cards' points are the customers' opening lots, the
// totals equal Odoo's, and a second run opens nothing.
func (m *migration) importBalances(t *testing.T) {
	res := m.cli("odoo", "import-balances", "--dry-run")
	require.Equal(t, 0, res.ExitCode, res.Stdout+res.Stderr)
	res = m.cli("odoo", "import-balances", "--json")
	require.Equal(t, 0, res.ExitCode, res.Stdout+res.Stderr)
	var rep struct {
		Plan struct {
			OdooCards        int            `json:"odoo_cards"`
			ImportedCards    int            `json:"imported_cards"`
			ImportedPartners int            `json:"imported_partners"`
			OdooPoints       string         `json:"odoo_points"`
			ImportedPoints   string         `json:"imported_points"`
			SkippedCards     map[string]int `json:"skipped_cards"`
		} `json:"plan"`
		Opened       int    `json:"opened"`
		EnginePoints string `json:"engine_points"`
		Equal        bool   `json:"equal"`
	}
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &rep))
	// Ann 120.5, Bob 300, Cid 0.25, Dan 0, anonymous 50.
	require.Equal(t, 5, rep.Plan.OdooCards)
	require.Equal(t, "470.75", rep.Plan.OdooPoints)
	require.Equal(t, 3, rep.Plan.ImportedCards)
	require.Equal(t, 3, rep.Plan.ImportedPartners)
	require.Equal(t, "420.75", rep.Plan.ImportedPoints)
	require.Equal(t, map[string]int{loyalty.SkipNoPoints: 1, loyalty.SkipNoPartner: 1}, rep.Plan.SkippedCards)
	require.Equal(t, 3, rep.Opened)
	require.Equal(t, "420.75", rep.EnginePoints)
	require.True(t, rep.Equal)

	res = m.cli("odoo", "import-balances")
	require.Equal(t, 0, res.ExitCode, res.Stdout)
	require.Contains(t, res.Stdout, "engine: 3 opening lots of these cards (0 opened now, 3 from an earlier import), 420.75 points: equal to Odoo's")
	res = m.cli("customer", "show", "--json", fmt.Sprint(m.shop.Ann))
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Contains(t, res.Stdout, `"balance": "120.50"`)
}

// goods is a line sold; reward a reward line of Odoo's loyalty, as the POS
// screen adds it (pos_loyalty's loyalty.js): on the reward's own discount
// product, at a negative price, with the points it cost and the card
// (coupon) it was claimed with (negative: a card the order makes).
type goods struct {
	product int64
	qty     float64
	price   float64
}

type rewardLine struct {
	program string
	reward  int // index in the program's rewards (by required points)
	qty     float64
	price   float64
	cost    float64
	card    int64
	code    string // reward_identifier_code
}

// cardChange is one entry of the coupon_data the POS sends to
// confirm_coupon_programs after the order: the card's change of points
// (won minus what its reward lines cost).
type cardChange struct {
	card    int64 // an existing card, or negative for one the order makes
	program string
	points  float64
	partner int64
	codes   []string
}

// payWithLoyalty pays an order as the POS does with Odoo's loyalty active:
// create_from_ui with the goods and the reward lines, then
// confirm_coupon_programs with the point changes. It returns the order id.
func (m *migration) payWithLoyalty(customer int64, sold []goods, rewards []rewardLine, changes []cardChange) int64 {
	m.t.Helper()
	n := m.seq.Add(1)
	uid := fmt.Sprintf("%05d-%03d-%04d", m.shop.Session, 2, n)
	total := 0.0
	var lines []any
	add := func(vals map[string]any, qty, price float64) {
		vals["qty"], vals["price_unit"], vals["discount"] = qty, price, 0
		vals["price_subtotal"], vals["price_subtotal_incl"] = qty*price, qty*price
		vals["tax_ids"], vals["id"] = []any{[]any{6, 0, []any{}}}, len(lines)+1
		lines = append(lines, []any{0, 0, vals})
		total += qty * price
	}
	for _, g := range sold {
		add(map[string]any{"product_id": g.product, "full_product_name": fmt.Sprintf("product %d", g.product)}, g.qty, g.price)
	}
	for _, r := range rewards {
		w := m.rewards[r.program][r.reward]
		add(map[string]any{"product_id": w.Product, "full_product_name": r.program, "is_reward_line": true, "reward_id": w.ID,
			"coupon_id": r.card, "points_cost": r.cost, "reward_identifier_code": r.code}, r.qty, r.price)
	}
	var partner any = false
	if customer != 0 {
		partner = customer
	}
	now := time.Now().UTC().Format("2006-01-02 15:04:05")
	res := m.call("pos.order", "create_from_ui", []any{[]any{map[string]any{"id": uid, "to_invoice": false, "data": map[string]any{
		"name": "Order " + uid, "uid": uid, "pos_session_id": m.shop.Session, "user_id": m.shop.Admin,
		"partner_id": partner, "sequence_number": n, "date_order": now, "fiscal_position_id": false,
		"pricelist_id": m.shop.Pricelist, "amount_paid": total, "amount_total": total, "amount_tax": 0,
		"amount_return": 0, "to_invoice": false, "lines": lines,
		"statement_ids": []any{[]any{0, 0, map[string]any{"amount": total, "name": now, "payment_method_id": m.shop.Cash}}},
	}}}}, nil)
	var created []struct {
		ID int64 `json:"id"`
	}
	require.NoError(m.t, json.Unmarshal(res, &created), string(res))
	require.Len(m.t, created, 1)
	id := created[0].ID
	if len(changes) > 0 {
		data := map[string]any{}
		for _, c := range changes {
			v := map[string]any{"program_id": m.programs[c.program], "coupon_id": c.card, "points": c.points, "barcode": false}
			if len(c.codes) > 0 { // the POS sends line_codes only for a card that paid reward lines
				v["line_codes"] = c.codes
			}
			if c.partner != 0 {
				v["partner_id"] = c.partner
			}
			if c.card < 0 {
				v["date_to"] = false
			}
			data[fmt.Sprint(c.card)] = v
		}
		m.call("pos.order", "confirm_coupon_programs", []any{[]int64{id}, data}, nil)
	}
	return id
}

// shadowOrders: the engine runs in shadow with the imported catalog while
// the POS pays orders with Odoo's loyalty. The rewards, amounts and points
// below are what pos_loyalty's POS screen computes for these programs
// (loyalty.js: pointsForPrograms, _getRewardLineValues…); each order's
// comparison is checked field by field.
func (m *migration) shadowOrders(t *testing.T) {
	s := m.shop
	m.setParam("promo_engine.url", "") // set below, once the engine listens
	env := testbin.Env{}
	for k, v := range m.env {
		env[k] = v
	}
	env["PROMO_MODE"], env["PROMO_SHADOW_SETTLE"], env["PROMO_ODOO_RECONCILE_INTERVAL"] = "shadow", "5s", "0"
	engine := testbin.Start(t, env, "run")
	defer func() { require.NoError(t, engine.Stop()) }()
	m.setParam("promo_engine.url", "http://"+engine.HTTPAddr)
	m.setParam("promo_engine.api_key", posKey)
	ann, bob, cid := m.cards["loyalty Ann"], m.cards["loyalty Bob"], m.cards["loyalty Cid"]

	type expect struct {
		program, field, engine, odoo, explanation string
	}
	orders := []struct {
		what  string
		id    int64
		diffs []expect
	}{
		{"A: 3 Colas, one free (Cola 2+1); Ann wins 2.5 points", m.payWithLoyalty(s.Ann,
			[]goods{{s.Cola, 3, 2.5}},
			[]rewardLine{{program: "Cola 2+1", qty: 1, price: -2.5, cost: 2, card: -1, code: "A1"}},
			[]cardChange{{card: ann, program: "Loyalty card", points: 2.5, partner: s.Ann},
				{card: -1, program: "Cola 2+1", points: 0, codes: []string{"A1"}}}),
			nil},
		{"B: 20 % on the juice, then 10 % over $20 (checked before the juice's discount)", m.payWithLoyalty(s.Bob,
			[]goods{{s.JuiceProd, 2, 3}, {s.Chips, 5, 3}},
			[]rewardLine{{program: "Juice 20%", qty: 1, price: -1.2, cost: 1, card: -1, code: "B1"},
				{program: "10% over $20", qty: 1, price: -1.98, cost: 1, card: -2, code: "B2"}},
			[]cardChange{{card: bob, program: "Loyalty card", points: 8.91, partner: s.Bob},
				{card: -1, program: "Juice 20%", points: 0, codes: []string{"B1"}},
				{card: -2, program: "10% over $20", points: 0, codes: []string{"B2"}}}),
			[]expect{{"10% over $20", shadow.FieldDiscount, "0.00", "1.98", shadow.ExplainThreshold},
				{"Loyalty card", shadow.FieldPointsEarned, "9.90", "8.91", shadow.ExplainFollows}}},
		{"C: the code WELCOME5, $5 off", m.payWithLoyalty(s.Cid,
			[]goods{{s.Chips, 2, 3}},
			[]rewardLine{{program: "Welcome code", qty: 1, price: -5, cost: 1, card: -1, code: "C1"}},
			[]cardChange{{card: cid, program: "Loyalty card", points: 0.5, partner: s.Cid},
				{card: -1, program: "Welcome code", points: 0, codes: []string{"C1"}}}),
			[]expect{{"Welcome code", shadow.FieldDiscount, "0.00", "5.00", shadow.ExplainCodeNotInEvent},
				{"Welcome code", shadow.FieldCodes, "", "WELCOME5", shadow.ExplainCodeNotInEvent},
				{"Loyalty card", shadow.FieldPointsEarned, "3.00", "0.5", shadow.ExplainFollows}}},
		{"D: Bob redeems 300 points for $3", m.payWithLoyalty(s.Bob,
			[]goods{{s.Chips, 1, 3}, {s.Candy, 2, 1}},
			[]rewardLine{{program: "Loyalty card", qty: 1, price: -3, cost: 300, card: bob, code: "D1"}},
			[]cardChange{{card: bob, program: "Loyalty card", points: 2.5 - 300, partner: s.Bob, codes: []string{"D1"}}}),
			[]expect{{"Loyalty card", shadow.FieldDiscount, "0.00", "3.00", shadow.ExplainRedemption},
				{"Loyalty card", shadow.FieldPointsSpent, "0.00", "300", shadow.ExplainRedemption}}},
		{"E: $36 of Chips: 10 % off, and a coupon for the next order", m.payWithLoyalty(s.Ann,
			[]goods{{s.Chips, 12, 3}},
			[]rewardLine{{program: "10% over $20", qty: 1, price: -3.6, cost: 1, card: -1, code: "E1"}},
			[]cardChange{{card: ann, program: "Loyalty card", points: 16.2, partner: s.Ann},
				{card: -1, program: "10% over $20", points: 0, codes: []string{"E1"}},
				{card: -2, program: "Come back 10%", points: 1}}),
			// The engine issues the next-order coupon too (SPEC §6.10), so
			// the two agree.
			nil},
		{"F: an anonymous Candy", m.payWithLoyalty(0, []goods{{s.Candy, 1, 1}}, nil, nil), nil},
		{"G: a Gum at 0.99: 0.495 points, Odoo rounds up", m.payWithLoyalty(s.Ann,
			[]goods{{s.Gum, 1, 0.99}}, nil,
			[]cardChange{{card: ann, program: "Loyalty card", points: 0.5, partner: s.Ann}}),
			[]expect{{"Loyalty card", shadow.FieldPointsEarned, "0.49", "0.5", shadow.ExplainRounding}}},
	}

	var rep shadow.Report
	deadline := time.Now().Add(3 * time.Minute)
	for {
		res := testbin.Run(t, m.env, "shadow", "report", "--json")
		require.Equal(t, 0, res.ExitCode, res.Stderr)
		require.NoError(t, json.Unmarshal([]byte(res.Stdout), &rep))
		if rep.Compared() >= len(orders) || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	require.Equal(t, len(orders), rep.Compared(), "every order compared:\n%s", engine.Log())
	byOrder := map[string]*shadow.Comparison{}
	for _, c := range rep.Differing {
		byOrder[c.OrderID] = c
	}
	matches := 0
	for _, o := range orders {
		c := byOrder[fmt.Sprint(o.id)]
		if o.diffs == nil {
			require.Nil(t, c, "%s: the engine and Odoo agree", o.what)
			matches++
			continue
		}
		require.NotNil(t, c, "%s differs", o.what)
		var got []expect
		for _, d := range c.Diffs {
			got = append(got, expect{d.Name, d.Field, d.Engine, d.Odoo, d.Explanation})
		}
		require.Equal(t, o.diffs, got, o.what)
	}
	require.Equal(t, matches, rep.Matches)
	require.Equal(t, rep.Mismatches, rep.Explained, "every difference named")

	// The report as an operator reads it.
	res := m.cli("shadow", "report")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Contains(t, res.Stdout, fmt.Sprintf("%d compared, %d agree", len(orders), matches))

	// Nothing was pushed to Odoo.
	var stored []struct {
		EventIDs any `json:"promo_engine_event_ids"`
	}
	ids := make([]int64, len(orders))
	for i, o := range orders {
		ids[i] = o.id
	}
	require.NoError(t, json.Unmarshal(m.call("pos.order", "read", []any{ids}, map[string]any{"fields": []string{"promo_engine_event_ids"}}), &stored))
	for _, st := range stored {
		require.Equal(t, false, st.EventIDs, "shadow: no result stored on an Odoo order")
	}
	require.Contains(t, engine.Log(), "shadow mode: comparing results with Odoo's loyalty")
}

func (m *migration) setParam(key, value string) {
	m.call("ir.config_parameter", "set_param", []any{key, value}, nil)
}

// trueUp: at cut-over the engine's balances become Odoo's cards' points
// (the shadow period earned in both, redeemed in Odoo only), once.
func (m *migration) trueUp(t *testing.T) {
	res := m.cli("odoo", "import-balances", "--true-up")
	require.Equal(t, 0, res.ExitCode, res.Stdout+res.Stderr)
	// Odoo: Ann 120.5 + 2.5 + 16.2 + 0.5, Bob 300 + 8.91 − 297.5, Cid
	// 0.25 + 0.5, Dan 0; the engine had Ann 139.69, Bob 312.40, Cid 3.25.
	require.Contains(t, res.Stdout, "true-up of 4 customers: 1 raised, 2 lowered; engine balances 151.86, Odoo's 151.86: equal to Odoo's")
	res = m.cli("odoo", "import-balances", "--true-up")
	require.Equal(t, 0, res.ExitCode, res.Stdout+res.Stderr)
	res = m.cli("customer", "show", "--json", fmt.Sprint(m.shop.Bob))
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Contains(t, res.Stdout, `"balance": "11.41"`)
}
