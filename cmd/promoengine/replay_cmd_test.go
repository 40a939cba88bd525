package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/internal/engine"
	"github.com/promoengine/promoengine/internal/ops"
	"github.com/promoengine/promoengine/internal/streams"
	"github.com/promoengine/promoengine/internal/testbin"
	"github.com/promoengine/promoengine/internal/testdb"
	"github.com/promoengine/promoengine/internal/testnats"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/pkg/rules"
)

// opsBundle is a NATS server with the engine's streams and a migrated
// database, and the environment that points the binary at them.
type opsBundle struct {
	t     *testing.T
	ctx   context.Context
	nats  *testnats.Server
	dbURL string
	pool  *pgxpool.Pool
	js    jetstream.JetStream
	env   testbin.Env
}

func setupOps(t *testing.T) *opsBundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	b := &opsBundle{t: t, ctx: ctx, nats: testnats.New(t), dbURL: testdb.NewDatabase(t)}
	pool, err := pgxpool.New(ctx, b.dbURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	b.pool = pool
	b.js = b.nats.JetStream(t)
	require.NoError(t, streams.Ensure(ctx, b.js, events.NewSubjects(""), streams.DefaultOptions()))
	b.env = testbin.Env{"PROMO_NATS_URL": b.nats.URL(), "PROMO_DATABASE_URL": b.dbURL}
	return b
}

const cliCatalog = `
currency: IDR
money_decimals: 0
timezone: Asia/Jakarta
points:
  decimals: 0
  earn: [{per_amount: "1000", points: "1"}]
  redeem: {value: "1", min: "1", max_share: "1"}
programs:
  - {id: drinks, layer: item, when: {products: {categories: ["drinks"]}}, reward: {percent: "10"}}
`

func (b *opsBundle) applyCatalog(doc string) {
	cat, err := rules.Parse([]byte(doc))
	require.NoError(b.t, err)
	_, err = ledger.ApplyCatalog(b.ctx, b.pool, cat)
	require.NoError(b.t, err)
}

func (b *opsBundle) startEngine() {
	cfg := &config.Config{NATSURL: b.nats.URL(), DatabaseURL: b.dbURL, HTTPAddr: "off",
		BatchSize: 16, Lanes: 2, MaxDeliver: 2, DuplicateWindow: 10 * time.Minute, OdooConcurrency: 1, OdooTimeout: time.Second}
	e, err := engine.Start(b.ctx, cfg, []string{config.WorkerOrders, config.WorkerOutbox}, zerolog.Nop())
	require.NoError(b.t, err)
	b.t.Cleanup(e.Stop)
}

func (b *opsBundle) run(args ...string) testbin.Result {
	b.t.Helper()
	return testbin.Run(b.t, b.env, args...)
}

func (b *opsBundle) file(name, content string) string {
	path := filepath.Join(b.t.TempDir(), name)
	require.NoError(b.t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func (b *opsBundle) streamMsgs(name string) uint64 {
	s, err := b.js.Stream(b.ctx, name)
	require.NoError(b.t, err)
	info, err := s.Info(b.ctx)
	require.NoError(b.t, err)
	return info.State.Msgs
}

// settled waits until the order consumer is idle and the outbox empty.
func (b *opsBundle) settled() {
	b.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ok, err := testnats.ConsumersSettled(b.ctx, b.js, "POS_ORDERS")
		n, _, berr := ledger.OutboxBacklog(b.ctx, b.pool)
		if err == nil && berr == nil && ok && n == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatal("pipeline did not settle")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func cliPaid(id, category, qty, price string) string {
	return fmt.Sprintf(`{"event_id":"cli:%s","type":"pos.order.paid","occurred_at":"2026-11-24T10:00:00+07:00",`+
		`"company_id":"1","pos_config_id":"1","order":{"id":%q,"currency":"IDR",`+
		`"lines":[{"id":"1","product_id":"p1","category_ids":[%q],"qty":%q,"unit_price":%q}]}}`, id, id, category, qty, price)
}

// replay --dry-run: 0 when nothing differs, 1 with the differing orders
// and fields when something does, 2 on an error; replay itself reprocesses
// and reports.
func TestReplayCommand(t *testing.T) {
	t.Parallel()
	b := setupOps(t)
	b.applyCatalog(cliCatalog)
	b.startEngine()
	file := b.file("orders.jsonl", strings.Join([]string{
		cliPaid("1", "drinks", "1", "3000"), cliPaid("2", "food", "1", "3000"), cliPaid("3", "drinks", "2", "1000"),
	}, "\n"))
	res := b.run("publish", "-f", file)
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	b.settled()

	res = b.run("replay", "--from-seq", "1", "--dry-run")
	require.Equal(t, 0, res.ExitCode, "%s%s", res.Stdout, res.Stderr)
	require.Contains(t, res.Stdout, "no result differs (3 compared)")
	require.Contains(t, res.Stdout, "nothing written")

	b.applyCatalog(strings.Replace(cliCatalog, `percent: "10"`, `percent: "50"`, 1))
	res = b.run("replay", "--from-seq", "2", "--dry-run")
	require.Equal(t, 1, res.ExitCode, "%s%s", res.Stdout, res.Stderr)
	require.Contains(t, res.Stdout, "order 3 (pos.order.paid, event cli:3, seq 3, stored with catalog v1)\n")
	require.Contains(t, res.Stdout, `  totals.discount: "200" → "1000"`+"\n")
	require.NotContains(t, res.Stdout, "order 1 ")
	require.NotContains(t, res.Stdout, "order 2 ")
	require.Contains(t, res.Stdout, "1 of 2 results differ")

	res = b.run("replay", "--from-seq", "1", "--dry-run", "--json")
	require.Equal(t, 1, res.ExitCode)
	var rep ops.DryRunReport
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &rep))
	require.Len(t, rep.Differences, 2)
	require.Equal(t, int64(2), rep.CatalogVersion)

	res = b.run("replay", "--from-seq", "9", "--dry-run")
	require.Equal(t, 2, res.ExitCode)
	require.Contains(t, res.Stderr, "--from-seq 9 is past the last message of POS_ORDERS (seq 3)")

	res = b.run("replay", "--from-seq", "1", "--to-seq", "3")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Contains(t, res.Stdout, "replayed 3 events of POS_ORDERS (seq 1–3): reprocessed 0, skipped as already processed 3, dead-lettered 0")
}

func TestReplayUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"replay"}, "give --from-seq N or --since T"},
		{[]string{"replay", "--dry-run"}, "give --from-seq N or --since T"},
		{[]string{"replay", "--from-seq", "5", "--since", "1h"}, "not both"},
		{[]string{"replay", "--from-seq", "5", "--to-seq", "2"}, "--to-seq 2 is before --from-seq 5"},
		{[]string{"replay", "--since", "yesterday"}, `"yesterday" is neither an RFC 3339 time`},
		{[]string{"replay", "--from-seq", "x"}, "invalid value"},
		{[]string{"replay", "--from-seq", "1", "extra"}, `unexpected argument "extra"`},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tc.args, strings.NewReader(""), &stdout, &stderr, zerolog.Nop())
		require.Equal(t, 2, exitCode(err, &stderr), "%v", tc.args)
		require.Contains(t, stderr.String(), tc.want, "%v", tc.args)
	}
}

// Every operator command explains itself with examples.
func TestOperatorCommandsHelp(t *testing.T) {
	t.Parallel()
	operator := [][]string{
		{"publish", "--help"}, {"replay", "--help"}, {"dlq", "--help"}, {"dlq", "list", "--help"},
		{"dlq", "redrive", "-h"}, {"status", "--help"}, {"help", "replay"},
	}
	others := [][]string{
		{"catalog", "--help"}, {"help", "catalog"}, {"catalog", "apply", "--help"}, {"customer", "--help"},
		{"customer", "show", "-h"}, {"jobs", "--help"}, {"results", "--help"}, {"migrate", "--help"},
		{"run", "--help"}, {"dev", "--help"},
	}
	for i, args := range append(operator, others...) {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr, zerolog.Nop())
		require.NoError(t, err, "%v", args)
		require.Contains(t, stderr.String(), "Examples:", "%v", args)
		if i < len(operator) {
			require.Contains(t, stderr.String(), "Exit status", "%v", args)
		}
	}
}

func TestParseInstant(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	got, err := parseInstant("6h", now)
	require.NoError(t, err)
	require.Equal(t, now.Add(-6*time.Hour), got)
	got, err = parseInstant("2026-11-28T10:00:00+07:00", now)
	require.NoError(t, err)
	require.True(t, got.Equal(time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC)))
	got, err = parseInstant("", now)
	require.NoError(t, err)
	require.True(t, got.IsZero())
	_, err = parseInstant("2026-11-28T10:00:00", now)
	require.Error(t, err, "a time without offset is refused")
}

// publishMsg publishes a message as Odoo would.
func (b *opsBundle) publishMsg(subject, body, msgID string) {
	msg := &nats.Msg{Subject: subject, Data: []byte(body), Header: nats.Header{}}
	if msgID != "" {
		msg.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	_, err := b.js.PublishMsg(b.ctx, msg)
	require.NoError(b.t, err)
}
