package shadow_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/odoo/loyalty"
	"github.com/promoengine/promoengine/internal/shadow"
	"github.com/promoengine/promoengine/internal/testdb"
	"github.com/promoengine/promoengine/pkg/events"
)

func TestSaveAndReport(t *testing.T) {
	t.Parallel()
	pool := testdb.New(t)
	ctx := t.Context()
	cat := importedCatalog(t)
	at := func(day int) string { return time.Date(2026, 12, day, 3, 0, 0, 0, time.UTC).Format(time.RFC3339) }
	save := func(order, day int, res *shadow.Result, o *loyalty.OrderLoyalty) *shadow.Comparison {
		res.CausationID = "odoo1:pos.order:" + itoa(order) + ":paid"
		res.OrderID = itoa(order)
		res.OccurredAt = at(day)
		o.Name = "Shop/" + itoa(order)
		c := shadow.Compare(res, o, cat, shadow.Options{})
		require.NoError(t, shadow.Save(ctx, pool, c))
		return c
	}
	// Day 1: a match; day 2: a code the event lacks (explained); day 3: a
	// discount nobody explains; day 4: a return.
	save(7001, 1, engine([]events.Discount{disc("odoo-4", "item", "2.50")}, "2.50", "0"),
		odooSide([]loyalty.RewardLine{reward(4, "2.5", "2")}, won("2.5")))
	save(7002, 2, engine(nil, "3.00", "0"),
		odooSide([]loyalty.RewardLine{{RewardID: 10, ProgramID: 10, Amount: d("5"), Code: "WELCOME5"}}, won("0.5")))
	c := save(7003, 3, engine([]events.Discount{disc("odoo-7", "order", "2.00")}, "9.00", "0",
		events.Trace{ProgramID: "odoo-7", Layer: "order", Outcome: "applied"}), odooSide(nil, won("10")))
	ret := engine(nil, "", "")
	ret.SourceType = events.TypeOrderReturned
	save(7004, 4, ret, odooSide(nil))

	// A result delivered again is compared again: one row.
	require.NoError(t, shadow.Save(ctx, pool, c))

	rep, err := shadow.Query(ctx, pool, shadow.ReportOptions{})
	require.NoError(t, err)
	require.Equal(t, 4, rep.Orders)
	require.Equal(t, 1, rep.Matches)
	require.Equal(t, 2, rep.Mismatches)
	require.Equal(t, 1, rep.Explained)
	require.Equal(t, 1, rep.NotCompared)
	stats := map[string]shadow.ProgramStats{}
	for _, p := range rep.Programs {
		stats[p.Program] = p
	}
	require.Equal(t, shadow.ProgramStats{Program: "odoo-13", OdooID: 13, Name: "Loyalty card", Orders: 3, Matches: 1, Mismatches: 2}, stats["odoo-13"])
	require.Equal(t, shadow.ProgramStats{Program: "odoo-4", OdooID: 4, Name: "Cola 2+1", Orders: 1, Matches: 1}, stats["odoo-4"])
	codes := map[string]int{}
	for _, e := range rep.Explanations {
		codes[e.Code] = e.Orders
		require.NotEmpty(t, e.Text)
	}
	require.Equal(t, map[string]int{shadow.ExplainCodeNotInEvent: 1, shadow.ExplainFollows: 2, shadow.ExplainUnexplained: 1}, codes)
	require.Len(t, rep.Differing, 2)

	var out bytes.Buffer
	require.NoError(t, rep.Write(&out))
	text := out.String()
	require.Contains(t, text, "3 compared, 1 agree (33.3 %), 2 differ (1 explained by known differences, 1 not); 1 returns and cancellations not compared")
	require.Contains(t, text, "odoo-13  Loyalty card  3       1      2       33.3 %")
	require.Contains(t, text, "code_not_in_event — 1 order(s), 2 field(s): Odoo applied it for a code scanned at the till")
	require.Regexp(t, `odoo-7 "10% over \$20"\n  Shop/7003  order 7003  2026-12-03 03:00  10  discount:  engine 2.00  Odoo 0.00\s+unexplained\n`+
		`odoo-10 "Welcome code"\n  Shop/7002  order 7002  2026-12-02 03:00  10  discount:  engine 0.00  Odoo 5.00\s+code_not_in_event\n`+
		`  Shop/7002  order 7002  2026-12-02 03:00  10  codes:  \s+engine\s+Odoo WELCOME5\s+code_not_in_event\n`+
		`odoo-13 "Loyalty card"\n`, text)

	// A window, a program, a limit.
	rep, err = shadow.Query(ctx, pool, shadow.ReportOptions{Since: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC),
		Until: time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)})
	require.NoError(t, err)
	require.Equal(t, 1, rep.Orders)
	require.Equal(t, "7002", rep.Differing[0].OrderID)
	rep, err = shadow.Query(ctx, pool, shadow.ReportOptions{Program: "odoo-4"})
	require.NoError(t, err)
	require.Equal(t, 1, rep.Orders)
	require.Equal(t, 1, rep.Matches)
	rep, err = shadow.Query(ctx, pool, shadow.ReportOptions{Limit: 1})
	require.NoError(t, err)
	require.Len(t, rep.Differing, 1)
	require.True(t, rep.Truncated)
	require.Equal(t, 2, rep.Mismatches, "the counts cover every order")
}

func itoa(i int) string {
	return string(rune('0'+i/1000%10)) + string(rune('0'+i/100%10)) + string(rune('0'+i/10%10)) + string(rune('0'+i%10))
}
