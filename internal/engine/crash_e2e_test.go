package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/testbin"
	"github.com/promoengine/promoengine/internal/testdb"
	"github.com/promoengine/promoengine/internal/testnats"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
)

const crashCatalog = `
currency: IDR
money_decimals: 0
timezone: Asia/Jakarta
points: {decimals: 0, earn: [{per_amount: "1000", points: "1"}]}
membership:
  default_path: default
  paths: [{id: default, qualify: {window_days: 365}, retention_days: 365, downgrade: one_level, levels: [{id: member, min: "0"}]}]
programs: []
`

// SPEC §10: kill -9 of a worker under load loses nothing and duplicates no
// effect. The real binary is killed with SIGKILL while events stream in and
// a second one takes over; afterwards every event has exactly one result on
// PROMO_RESULTS and exactly one effect in the ledger.
func TestKillNineUnderLoadLosesNothingDuplicatesNothing(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ns := testnats.New(t)
	dbURL := testdb.NewDatabase(t)
	env := testbin.Env{"PROMO_NATS_URL": ns.URL(), "PROMO_DATABASE_URL": dbURL, "PROMO_LANES": "4", "PROMO_BATCH_SIZE": "64"}
	catFile := filepath.Join(t.TempDir(), "catalog.yaml")
	require.NoError(t, os.WriteFile(catFile, []byte(crashCatalog), 0o600))
	res := testbin.Run(t, env, "catalog", "apply", "-f", catFile)
	require.Equal(t, 0, res.ExitCode, res.Stderr)

	first := testbin.Start(t, env, "run", "--workers", "orders,outbox")
	pool, err := pgxpool.New(ctx, dbURL)
	require.NoError(t, err)
	defer pool.Close()
	js := ns.JetStream(t)
	subjects := events.NewSubjects("")

	const n, customers = 2000, 50
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the load keeps coming while the worker dies
		defer wg.Done()
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("k9-%d", i)
			body := fmt.Sprintf(`{"event_id":%q,"type":"pos.order.paid","occurred_at":"2026-11-24T10:00:00+07:00","company_id":"1","pos_config_id":"1","order":{"id":%q,"currency":"IDR","customer_id":"c%d","lines":[{"id":"1","product_id":"p","qty":"1","unit_price":"%d000"}]}}`,
				id, id, i%customers, 1+i%5)
			_, err := js.PublishMsgAsync(&nats.Msg{Subject: subjects.OrdersPaid(), Data: []byte(body)}, jetstream.WithMsgID(id))
			if err != nil {
				t.Errorf("publish: %v", err)
				return
			}
			if i%100 == 0 {
				time.Sleep(5 * time.Millisecond)
			}
		}
		<-js.PublishAsyncComplete()
	}()

	processed := func() int {
		var c int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM inbox`).Scan(&c))
		return c
	}
	require.Eventually(t, func() bool { return processed() >= n/4 }, time.Minute, 10*time.Millisecond)
	first.Kill()
	killedAt := processed()
	t.Logf("killed after %d of %d events", killedAt, n)
	require.Less(t, killedAt, n, "the kill happened under load")

	testbin.Start(t, env, "run", "--workers", "orders,outbox")
	wg.Wait()
	// Unacknowledged events of the killed worker come back after the
	// consumer's ack wait (30 s).
	require.Eventually(t, func() bool {
		var left int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&left))
		return processed() == n && left == 0
	}, 2*time.Minute, 100*time.Millisecond)

	stream, err := js.Stream(ctx, subjects.StreamResults())
	require.NoError(t, err)
	info, err := stream.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(n), info.State.Msgs, "one result per event on PROMO_RESULTS")
	seen := map[string]bool{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := stream.GetMsg(ctx, seq)
		require.NoError(t, err)
		var r events.OrderResult
		require.NoError(t, json.Unmarshal(m.Data, &r))
		require.False(t, seen[r.CausationID], "duplicate result for %s", r.CausationID)
		seen[r.CausationID] = true
	}
	require.Len(t, seen, n)

	// Every effect exactly once: event i earned 1 + i%5 points.
	want := 0
	for i := 0; i < n; i++ {
		want += 1 + i%5
	}
	var lots, earned int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*), COALESCE(sum(original), 0)::int FROM point_lots`).Scan(&lots, &earned))
	require.Equal(t, n, lots)
	require.Equal(t, want, earned)
	for c := 0; c < customers; c++ {
		require.NoError(t, ledger.Reconcile(ctx, pool, fmt.Sprintf("c%d", c)))
	}
}
