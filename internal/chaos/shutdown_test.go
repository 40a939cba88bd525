package chaos_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/chaos"
	"github.com/promoengine/promoengine/internal/testbin"
	"github.com/promoengine/promoengine/internal/testdb"
	"github.com/promoengine/promoengine/internal/testnats"
	"github.com/promoengine/promoengine/pkg/events"
)

// SIGTERM while PostgreSQL does not answer (a network stall: the engine's
// connections stay open and silent, mid-transaction and mid-lookup of a
// return's sale) ends the process within its soft-stop bounds instead of
// hanging, and loses nothing: an engine started afterwards processes every
// event exactly once, in each customer's order.
func TestStopIsBoundedWhilePostgreSQLIsStalled(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ns := testnats.New(t)
	dbURL := testdb.NewDatabase(t)
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	proxy := chaos.StartProxy(t, u.Host)
	proxied := *u
	proxied.Host = proxy.Addr()

	env := testbin.Env{"PROMO_NATS_URL": ns.URL(), "PROMO_DATABASE_URL": dbURL, "PROMO_API_KEYS": "admin-key:admin"}
	catalog := filepath.Join(t.TempDir(), "catalog.yaml")
	require.NoError(t, os.WriteFile(catalog, []byte(chaos.Catalog), 0o600))
	res := testbin.Run(t, env, "catalog", "apply", "-f", catalog)
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	stalledEnv := testbin.Env{"PROMO_DATABASE_URL": proxied.String()}
	for k, v := range env {
		if k != "PROMO_DATABASE_URL" {
			stalledEnv[k] = v
		}
	}
	engine := testbin.Start(t, stalledEnv, "run", "--workers", "orders,outbox,api")

	js := ns.JetStream(t)
	subjects := events.NewSubjects("")
	wl := chaos.NewWorkload("stall", 6, 12, 30, 7)
	var pub chaos.Published
	published := make(chan error, 1)
	go func() {
		published <- wl.Publish(ctx, js, chaos.PublishOptions{Rate: 40, Unkeyed: 0.5, Subjects: subjects}, &pub)
	}()
	time.Sleep(1500 * time.Millisecond)
	proxy.Pause()
	time.Sleep(2 * time.Second) // transactions and lookups now wait on silent connections

	start := time.Now()
	// A stop that hangs prints its goroutines (SIGQUIT) into the log the
	// failure shows.
	dump := time.AfterFunc(24*time.Second, func() { _ = syscall.Kill(engine.Pid(), syscall.SIGQUIT) })
	stopErr := engine.Stop()
	dump.Stop()
	took := time.Since(start)
	t.Logf("SIGTERM to exit with PostgreSQL stalled: %s (%v)", took.Round(time.Millisecond), stopErr)
	require.NoError(t, stopErr)
	require.Less(t, took, 24*time.Second, "the stop is bounded: soft stops of 5 s for the order workers and the relay, 5 s for the pools")
	proxy.Resume()
	require.NoError(t, <-published)

	engine = testbin.Start(t, env, "run", "--workers", "orders,outbox,api")
	pool, err := pgxpool.New(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, chaos.WaitDrained(ctx, pool, js, subjects, 2*time.Minute))
	rep, err := wl.Check(ctx, pool, js, subjects)
	require.NoError(t, err)
	require.True(t, rep.OK(), rep.String())
	require.Equal(t, wl.Events(), rep.Results)
	require.NoError(t, engine.Stop())
}
