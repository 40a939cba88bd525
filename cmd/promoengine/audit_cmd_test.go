package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/audit"
	"github.com/promoengine/promoengine/internal/consume"
	"github.com/promoengine/promoengine/pkg/events"
)

// Every admin action of the CLI leaves an entry in the audit trail with the
// operator, the target, the outcome and the details; `audit list` shows
// them.
func TestAuditTrailOfTheCLI(t *testing.T) {
	t.Parallel()
	b := setupOps(t)

	res := b.run("audit", "list")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Equal(t, "no audit entries\n", res.Stdout)

	res = b.run("catalog", "apply", "-f", b.file("v1.yaml", cliCatalog))
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	v2 := strings.Replace(cliCatalog, `percent: "10"`, `percent: "50"`, 1) +
		`  - {id: food, layer: item, when: {products: {categories: ["food"]}}, reward: {percent: "5"}}` + "\n"
	v2 = strings.Replace(v2, "money_decimals: 0", "money_decimals: 2", 1)
	res = b.run("catalog", "apply", "-f", b.file("v2.yaml", v2))
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Contains(t, res.Stdout, "against version 1: added: food; changed: drinks; settings changed: money_decimals\n")

	dl := consume.NewDeadLetterer(b.js, events.NewSubjects(""))
	for i, code := range []string{events.DLQProcessingFailed, events.DLQInvalidEvent, events.DLQInvalidEvent} {
		require.NoError(t, dl.Send(b.ctx, consume.Letter{Subject: "pos.orders.paid", Stream: "POS_ORDERS", Seq: uint64(i + 1),
			Header: nats.Header{jetstream.MsgIDHeader: []string{fmt.Sprintf("cli:dl:%d", i)}},
			Data:   []byte(cliPaid("dl", "drinks", "1", "1000")), Code: code, Message: "broken"}))
	}
	require.Equal(t, 0, b.run("dlq", "redrive", "1").ExitCode)
	res = b.run("dlq", "purge", "2", "99")
	require.Equal(t, 1, res.ExitCode, "99 does not exist")
	require.Equal(t, 0, b.run("dlq", "redrive", "--all").ExitCode)

	res = b.run("replay", "--from-seq", "1")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	res = b.run("jobs", "run", "--as-of", "2026-12-01T00:00:00+07:00")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	// Read-only commands leave nothing.
	require.Equal(t, 0, b.run("dlq", "list").ExitCode)
	require.Equal(t, 0, b.run("catalog", "show").ExitCode)

	res = b.run("audit", "list", "--json")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	var entries []audit.Entry
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &entries))
	type row struct{ action, target, outcome string }
	var got []row
	for _, e := range entries {
		got = append(got, row{e.Action, e.Target, e.Outcome})
		require.True(t, strings.HasPrefix(e.Actor, "cli "), e.Actor)
		require.True(t, strings.HasPrefix(e.Source, "cli "), e.Source)
		require.Equal(t, "postgres", e.DBUser)
		require.False(t, e.At.IsZero())
	}
	require.Equal(t, []row{
		{audit.ActionCatalogApply, "catalog version 1", audit.OutcomeOK},
		{audit.ActionCatalogApply, "catalog version 2", audit.OutcomeOK},
		{audit.ActionDLQRedrive, "dead letter 1", audit.OutcomeOK},
		{audit.ActionDLQPurge, "dead letter 2", audit.OutcomeOK},
		{audit.ActionDLQPurge, "dead letter 99", audit.OutcomeFailed},
		{audit.ActionDLQRedrive, "dead letter 3", audit.OutcomeOK},
		{audit.ActionReplay, "POS_ORDERS seq 1–2", audit.OutcomeOK},
		{audit.ActionJobsRun, "as of 2026-12-01T00:00:00+07:00", audit.OutcomeOK},
	}, got)

	var change audit.CatalogChange
	require.NoError(t, json.Unmarshal(entries[1].Details, &change))
	require.Equal(t, int64(2), change.Version)
	require.Equal(t, int64(1), change.PreviousVersion)
	require.Equal(t, []string{"food"}, change.Added)
	require.Equal(t, []string{"drinks"}, change.Changed)
	require.Equal(t, []string{"money_decimals"}, change.Settings)
	require.Len(t, change.SHA256, 64)
	var purge map[string]any
	require.NoError(t, json.Unmarshal(entries[4].Details, &purge))
	require.Contains(t, purge["error"], "no such dead letter")
	var replay map[string]any
	require.NoError(t, json.Unmarshal(entries[6].Details, &replay))
	require.Equal(t, float64(2), replay["report"].(map[string]any)["events"], "the replay's report: the two redriven events")

	res = b.run("audit", "list", "--action", audit.ActionDLQPurge)
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	lines := strings.Split(strings.TrimSpace(res.Stdout), "\n")
	require.Len(t, lines, 3)
	require.Regexp(t, `^ID\s+AT\s+ACTOR\s+ACTION\s+TARGET\s+OUTCOME\s+SOURCE\s+DB USER\s+DETAILS$`, lines[0])
	require.Contains(t, lines[2], "dead letter 99")
	require.Contains(t, lines[2], "failed")

	res = b.run("audit", "list", "--limit", "2", "--json")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &entries))
	require.Len(t, entries, 2)
	require.Equal(t, audit.ActionJobsRun, entries[1].Action, "the newest, oldest first")
}
