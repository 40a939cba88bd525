package shadow_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/odoo/loyalty"
	"github.com/promoengine/promoengine/internal/shadow"
	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/rules"
)

// importedCatalog is the catalog `odoo import-catalog` makes of the
// programs of a real Odoo 17.0 (internal/odoo/loyalty/testdata): odoo-4
// Cola 2+1, odoo-7 10 % over $20, odoo-8 the cheapest of 20, odoo-10 the
// code WELCOME5, odoo-11-card-* coupons, the points of loyalty program 13
// (0.5 point per dollar), next order coupons of program 12 not issued.
func importedCatalog(t *testing.T) *rules.Catalog {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "odoo", "loyalty", "testdata", "odoo17_catalog.yaml"))
	require.NoError(t, err)
	c, err := rules.Parse(b)
	require.NoError(t, err)
	c.Version = 3
	return c
}

var programs = map[int64]*loyalty.ProgramInfo{
	4:  {ID: 4, Name: "Cola 2+1", Type: "buy_x_get_y", Trigger: "auto", AppliesOn: "current"},
	7:  {ID: 7, Name: "10% over $20", Type: "promotion", Trigger: "auto", AppliesOn: "current"},
	8:  {ID: 8, Name: "Half price on the cheapest of 20", Type: "promotion", Trigger: "auto", AppliesOn: "current"},
	10: {ID: 10, Name: "Welcome code", Type: "promo_code", Trigger: "with_code", AppliesOn: "current", Codes: []string{"WELCOME5"}},
	12: {ID: 12, Name: "Come back 10%", Type: "next_order_coupons", Trigger: "auto", AppliesOn: "future"},
	13: {ID: 13, Name: "Loyalty card", Type: "loyalty", Trigger: "auto", AppliesOn: "both"},
	17: {ID: 17, Name: "Two rules", Type: "promotion", Trigger: "auto", AppliesOn: "current"},
}

func d(s string) dec.Decimal { return dec.MustParse(s) }

func ptr(x dec.Decimal) *dec.Decimal { return &x }

// engine is an engine result of a sale by customer 10.
func engine(discounts []events.Discount, earned, redeemed string, trace ...events.Trace) *shadow.Result {
	r := &shadow.Result{OrderResult: events.OrderResult{EventID: "result:odoo1:pos.order:7001:paid",
		CausationID: "odoo1:pos.order:7001:paid", SourceType: events.TypeOrderPaid, OccurredAt: "2026-12-01T03:00:00Z",
		OrderID: "7001", CustomerID: "10", Currency: "USD", Status: events.StatusApplied, CatalogVersion: 3,
		Discounts: discounts, Trace: trace}}
	if earned != "" {
		r.Points = &events.Points{Earned: d(earned), Redeemed: d(redeemed)}
	}
	return r
}

func disc(program, layer, amount string) events.Discount {
	return events.Discount{Layer: layer, ProgramID: program, LineID: "1", Amount: d(amount)}
}

// odooSide is Odoo's side of order 7001; points are recorded by
// promo_engine_loyalty.
func odooSide(rewards []loyalty.RewardLine, points ...loyalty.PointChange) *loyalty.OrderLoyalty {
	return &loyalty.OrderLoyalty{OrderID: 7001, Name: "Shop/7001", State: "paid", CompanyID: 1, POSConfigID: 1, PartnerID: 10,
		Rewards: rewards, Points: points, PointsRecorded: true, Programs: programs}
}

func reward(program int64, amount, cost string) loyalty.RewardLine {
	return loyalty.RewardLine{LineID: 99, RewardID: program, ProgramID: program, RewardType: "discount", Amount: d(amount), PointsCost: d(cost)}
}

func won(points string) loyalty.PointChange {
	return loyalty.PointChange{ProgramID: 13, CardID: 20, Points: d(points)}
}

func TestCompare(t *testing.T) {
	t.Parallel()
	cat := importedCatalog(t)
	type want struct {
		program, field, engine, odoo, explanation string
	}
	for _, tc := range []struct {
		name    string
		engine  *shadow.Result
		odoo    *loyalty.OrderLoyalty
		outcome string
		diffs   []want
		progs   map[string]string
	}{
		{
			"the same free Cola and the same points",
			engine([]events.Discount{disc("odoo-4", "item", "2.50")}, "2.50", "0"),
			odooSide([]loyalty.RewardLine{reward(4, "2.5", "2")}, won("2.5")),
			shadow.OutcomeMatch, nil, map[string]string{"odoo-4": "match", "odoo-13": "match"},
		},
		{
			"a discount code the event does not carry",
			engine(nil, "3.00", "0"),
			odooSide([]loyalty.RewardLine{{LineID: 9, RewardID: 10, ProgramID: 10, RewardType: "discount", Amount: d("5"), Code: "WELCOME5"}},
				won("0.5")),
			shadow.OutcomeMismatch, []want{
				{"odoo-10", shadow.FieldDiscount, "0.00", "5.00", shadow.ExplainCodeNotInEvent},
				{"odoo-10", shadow.FieldCodes, "", "WELCOME5", shadow.ExplainCodeNotInEvent},
				{"odoo-13", shadow.FieldPointsEarned, "3.00", "0.5", shadow.ExplainFollows},
			}, map[string]string{"odoo-10": "mismatch", "odoo-13": "mismatch"},
		},
		{
			"points redeemed at the till",
			engine(nil, "7.50", "0"),
			// 300 points for $3 off; 7.5 won: the card changed by -292.5.
			odooSide([]loyalty.RewardLine{reward(13, "3", "300")}, won("-292.5")),
			shadow.OutcomeMismatch, []want{
				{"odoo-13", shadow.FieldDiscount, "0.00", "3.00", shadow.ExplainRedemption},
				{"odoo-13", shadow.FieldPointsSpent, "0", "300", shadow.ExplainRedemption},
			}, map[string]string{"odoo-13": "mismatch"},
		},
		{
			"points rounded: Odoo half up, the engine down",
			engine(nil, "2.77", "0"),
			odooSide(nil, won("2.78")),
			shadow.OutcomeMismatch, []want{
				{"odoo-13", shadow.FieldPointsEarned, "2.77", "2.78", shadow.ExplainRounding},
			}, map[string]string{"odoo-13": "mismatch"},
		},
		{
			"a minimum Odoo checks before other discounts",
			engine([]events.Discount{disc("odoo-6", "item", "1.20")}, "9.90", "0",
				events.Trace{ProgramID: "odoo-6", Layer: "item", Outcome: "applied"},
				events.Trace{ProgramID: "odoo-7", Layer: "order", Outcome: "condition_failed", Reason: "min_amount 20 not met: 19.80"}),
			odooSide([]loyalty.RewardLine{reward(6, "1.2", "1"), reward(7, "1.98", "1")}, won("8.91")),
			shadow.OutcomeMismatch, []want{
				{"odoo-7", shadow.FieldDiscount, "0.00", "1.98", shadow.ExplainThreshold},
				{"odoo-13", shadow.FieldPointsEarned, "9.90", "8.91", shadow.ExplainFollows},
			}, map[string]string{"odoo-6": "match", "odoo-7": "mismatch", "odoo-13": "mismatch"},
		},
		{
			"a next order coupon the catalog does not issue",
			engine(nil, "18.00", "0"),
			func() *loyalty.OrderLoyalty {
				o := odooSide(nil, won("18"), loyalty.PointChange{ProgramID: 12, CardID: 31, Points: d("1"), Created: true})
				o.Issued = []loyalty.IssuedCard{{CardID: 31, ProgramID: 12, Code: "044a", Points: d("1")}}
				return o
			}(),
			shadow.OutcomeMismatch, []want{
				{"odoo-12", shadow.FieldCouponsIssued, "0", "1", shadow.ExplainCouponsNotIssued},
			}, map[string]string{"odoo-12": "mismatch", "odoo-13": "match"},
		},
		{
			"a program the import did not translate",
			engine(nil, "1.00", "0"),
			odooSide([]loyalty.RewardLine{reward(17, "3", "1")}, won("1")),
			shadow.OutcomeMismatch, []want{
				{"odoo-17", shadow.FieldDiscount, "0.00", "3.00", shadow.ExplainNotInCatalog},
			}, map[string]string{"odoo-17": "mismatch", "odoo-13": "match"},
		},
		{
			"a discount the engine gives and Odoo does not",
			engine([]events.Discount{disc("odoo-7", "order", "2.00")}, "9.00", "0",
				events.Trace{ProgramID: "odoo-7", Layer: "order", Outcome: "applied"}),
			odooSide(nil, won("10")),
			shadow.OutcomeMismatch, []want{
				{"odoo-7", shadow.FieldDiscount, "2.00", "0.00", shadow.ExplainUnexplained},
				{"odoo-13", shadow.FieldPointsEarned, "9.00", "10", shadow.ExplainFollows},
			}, map[string]string{"odoo-7": "mismatch", "odoo-13": "mismatch"},
		},
		{
			"amounts a cent apart",
			engine([]events.Discount{disc("odoo-7", "order", "1.23")}, "", ""),
			odooSide([]loyalty.RewardLine{reward(7, "1.2249999999", "1")}),
			shadow.OutcomeMismatch, []want{
				{"odoo-7", shadow.FieldDiscount, "1.23", "1.22", shadow.ExplainRounding},
			}, map[string]string{"odoo-7": "mismatch"},
		},
		{
			"without promo_engine_loyalty, Odoo's points are unknown",
			engine(nil, "5.00", "0"),
			func() *loyalty.OrderLoyalty { o := odooSide(nil); o.PointsRecorded = false; return o }(),
			shadow.OutcomeMismatch, []want{
				{"odoo-13", shadow.FieldPointsEarned, "5.00", "not recorded", shadow.ExplainPointsNotRecorded},
			}, map[string]string{"odoo-13": "mismatch"},
		},
		{
			"the same points, the balances apart from before",
			func() *shadow.Result { r := engine(nil, "2.00", "0"); r.Points.Balance = d("412.00"); return r }(),
			odooSide(nil, loyalty.PointChange{ProgramID: 13, CardID: 20, Points: d("2"), Balance: ptr(d("112.0"))}),
			shadow.OutcomeMismatch, []want{
				{"odoo-13", shadow.FieldBalance, "412.00", "112", shadow.ExplainBalanceDrift},
			}, map[string]string{"odoo-13": "mismatch"},
		},
		{
			"the same points and the same balance",
			func() *shadow.Result { r := engine(nil, "2.00", "0"); r.Points.Balance = d("112.00"); return r }(),
			odooSide(nil, loyalty.PointChange{ProgramID: 13, CardID: 20, Points: d("2"), Balance: ptr(d("112.00000000000001"))}),
			shadow.OutcomeMatch, nil, map[string]string{"odoo-13": "match"},
		},
		{
			"an anonymous order given nothing by either",
			func() *shadow.Result { r := engine(nil, "", ""); r.CustomerID = ""; return r }(),
			func() *loyalty.OrderLoyalty { o := odooSide(nil); o.PartnerID = 0; return o }(),
			shadow.OutcomeMatch, nil, map[string]string{},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := shadow.Compare(tc.engine, tc.odoo, cat, shadow.Options{})
			require.Equal(t, tc.outcome, c.Outcome, "%+v", c.Diffs)
			var got []want
			for _, df := range c.Diffs {
				got = append(got, want{df.Program, df.Field, df.Engine, df.Odoo, df.Explanation})
				require.NotEmpty(t, shadow.Explain[df.Explanation], df.Explanation)
			}
			require.Equal(t, tc.diffs, got)
			progs := map[string]string{}
			for _, p := range c.Programs {
				progs[p.Program] = p.Outcome
			}
			require.Equal(t, tc.progs, progs)
			require.Equal(t, "odoo1:pos.order:7001:paid", c.EventID)
			require.Equal(t, "Shop/7001", c.OrderName)
			require.Equal(t, "1", c.CompanyID)
			require.Equal(t, int64(3), c.CatalogVersion)
		})
	}
}

func TestCompareNamesTheProgramsAndDoesNotCompareReturns(t *testing.T) {
	t.Parallel()
	cat := importedCatalog(t)
	c := shadow.Compare(engine(nil, "3.00", "0"), odooSide([]loyalty.RewardLine{{RewardID: 10, ProgramID: 10, Amount: d("5"), Code: "WELCOME5"}}, won("0.5")),
		cat, shadow.Options{})
	require.Equal(t, "Welcome code", c.Diffs[0].Name)
	require.Equal(t, int64(10), c.Diffs[0].OdooID)
	require.True(t, c.Explained())

	ret := engine(nil, "", "")
	ret.SourceType = events.TypeOrderReturned
	c = shadow.Compare(ret, odooSide(nil), cat, shadow.Options{})
	require.Equal(t, shadow.OutcomeNotCompared, c.Outcome)
	require.Contains(t, c.Note, "Odoo 17's POS loyalty takes back no points")

	// The points program named by configuration wins over the order's.
	c = shadow.Compare(engine(nil, "1.00", "0"), odooSide(nil, won("1")), cat, shadow.Options{PointsProgram: 99})
	require.Equal(t, []shadow.ProgramOutcome{{Program: "odoo-99", OdooID: 99, Outcome: shadow.OutcomeMismatch}}, c.Programs,
		"the catalog's points are program 99's, which won nothing in Odoo; program 13's change is not compared")
	require.Equal(t, "1.00", c.Diffs[0].Engine)
	require.Equal(t, "0", c.Diffs[0].Odoo)
}

func TestPercent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n, total int
		want     string
	}{{0, 0, "—"}, {1, 3, "33.3 %"}, {2, 3, "66.7 %"}, {97, 120, "80.8 %"}, {5, 5, "100.0 %"}} {
		require.Equal(t, tc.want, shadow.Percent(tc.n, tc.total))
	}
}

func FuzzDecodeResult(f *testing.F) {
	f.Add([]byte(`{"event_id": "result:odoo1:pos.order:1:paid", "causation_id": "odoo1:pos.order:1:paid", "order_id": "1",
		"source_type": "pos.order.paid", "discounts": [{"layer": "item", "program_id": "odoo-4", "line_id": "1", "amount": "2.50"}],
		"points": {"earned": "2.50", "redeemed": "0"}, "coupons_issued": [{"code": "X", "program_id": "b", "issued_by": "a"}]}`))
	f.Add([]byte(`{"event_id": "x"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := shadow.DecodeResult(data)
		if err != nil {
			require.ErrorIs(t, err, shadow.ErrBadResult)
			return
		}
		require.NotEmpty(t, r.EventID)
		require.NotEmpty(t, r.OrderID)
	})
}
