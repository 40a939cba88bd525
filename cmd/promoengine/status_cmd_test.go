package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/ops"
	"github.com/promoengine/promoengine/internal/testbin"
)

func TestStatusCommand(t *testing.T) {
	t.Parallel()
	b := setupOps(t)
	b.applyCatalog(cliCatalog)
	b.startEngine()
	b.publishMsg("pos.orders.paid", cliPaid("1", "drinks", "1", "3000"), "cli:1")
	b.publishMsg("pos.orders.paid", `{"not":"an event"}`, "")
	b.settled()

	res := b.run("status")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	// Two published without a key, and the keyed copy of the valid one.
	require.Regexp(t, `(?m)^POS_ORDERS\s+3\s+\d+ B\s+1\s+3\s+\d+[smh] ago$`, res.Stdout)
	require.Regexp(t, `(?m)^POS_ORDERS/promo-keyer\s+0\s+0\s+0\s+`, res.Stdout)
	require.Regexp(t, `(?m)^POS_ORDERS/promo-orders-\* \(16 partitions\)\s+0\s+0\s+0\s+`, res.Stdout)
	require.Regexp(t, `(?m)^\S+\s+\S+\s+\d+\s+\d+[smh]\s+17$`, res.Stdout, "one node pulling the keyer and 16 partitions")
	require.Contains(t, res.Stdout, "OUTBOX  backlog 0, oldest -\n")
	require.Regexp(t, `(?m)^DEAD LETTERS  1 `, res.Stdout)
	require.Regexp(t, `(?m)^  invalid_event\s+1$`, res.Stdout)

	res = b.run("status", "--json")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	var rep ops.StatusReport
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &rep))
	require.Equal(t, uint64(1), rep.Streams[1].Messages)
	require.Equal(t, []ops.CodeCount{{Code: "invalid_event", Count: 1}}, rep.DeadLetters)

	// Without the database: the NATS half, and exit 1 naming the problem.
	res = testbin.Run(t, testbin.Env{"PROMO_NATS_URL": b.nats.URL()}, "status")
	require.Equal(t, 1, res.ExitCode)
	require.Contains(t, res.Stdout, "POS_ORDERS")
	require.Contains(t, res.Stderr, "problem: outbox: PROMO_DATABASE_URL is not set")
}
