package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/shadow"
)

func TestShadowReport(t *testing.T) {
	t.Parallel()
	b := setupOps(t)
	res := b.run("shadow", "report")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Contains(t, res.Stdout, "0 compared, 0 agree (—), 0 differ")

	at := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	for _, c := range []*shadow.Comparison{
		{EventID: "odoo1:pos.order:1:paid", OrderID: "1", OrderName: "Shop/0001", OccurredAt: at, CatalogVersion: 1,
			Outcome: shadow.OutcomeMatch, Programs: []shadow.ProgramOutcome{{Program: "odoo-4", OdooID: 4, Name: "Cola 2+1", Outcome: shadow.OutcomeMatch}},
			Diffs: []shadow.Diff{}},
		{EventID: "odoo1:pos.order:2:paid", OrderID: "2", OrderName: "Shop/0002", CustomerID: "11", OccurredAt: at, CatalogVersion: 1,
			Outcome:  shadow.OutcomeMismatch,
			Programs: []shadow.ProgramOutcome{{Program: "odoo-10", OdooID: 10, Name: "Welcome code", Outcome: shadow.OutcomeMismatch}},
			Diffs: []shadow.Diff{{Program: "odoo-10", OdooID: 10, Name: "Welcome code", Field: shadow.FieldDiscount, Engine: "0.00",
				Odoo: "5.00", Explanation: shadow.ExplainCodeNotInEvent}}},
	} {
		require.NoError(t, shadow.Save(b.ctx, b.pool, c))
	}
	res = b.run("shadow", "report", "--since", "24h")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Contains(t, res.Stdout, "2 compared, 1 agree (50.0 %), 1 differ (1 explained by known differences, 0 not)")
	require.Contains(t, collapse(res.Stdout), "odoo-10  Welcome code  1  0  1  0.0 %")
	require.Contains(t, collapse(res.Stdout), "Shop/0002  order 2")

	res = b.run("shadow", "report", "--program", "odoo-4", "--json")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	var rep shadow.Report
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &rep))
	require.Equal(t, 1, rep.Orders)
	require.Equal(t, 1, rep.Matches)

	res = b.run("shadow", "report", "--since", "yesterday")
	require.Equal(t, 2, res.ExitCode)
	res = b.run("shadow")
	require.Equal(t, 2, res.ExitCode)
}
