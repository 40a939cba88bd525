package chaos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/chaos"
	"github.com/promoengine/promoengine/internal/pgcluster"
	"github.com/promoengine/promoengine/internal/testbin"
	"github.com/promoengine/promoengine/internal/testnats"
	"github.com/promoengine/promoengine/pkg/events"
)

// Three engine processes share the partitions of a three-server NATS
// cluster (R3 streams) over PostgreSQL with a streaming replica, while a
// load of dependent events runs — chains of sales, redemptions of the
// points those sales earned, and returns of them, published per customer
// in order, a fifth of them without a key — and faults are injected: one
// engine killed with SIGKILL, one NATS server stopped and started again,
// PostgreSQL restarted with -m immediate. Checked from outside afterwards:
// every event exactly one result and one inbox row, every customer's
// events applied in publish order, nothing rejected that this order funds,
// the ledger reconciled, nothing dead-lettered, and the customer views the
// replica serves current.
func TestMultiNodeKeepsOrderThroughFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cluster := testnats.NewCluster(t, 3)

	root := t.TempDir()
	primary := startPG(ctx, t, pgcluster.Options{Dir: filepath.Join(root, "primary"), NoSync: true, NoFsync: true})
	conn, err := pgx.Connect(ctx, primary.URL("postgres"))
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `CREATE DATABASE promo`)
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))
	replica := startPG(ctx, t, pgcluster.Options{Dir: filepath.Join(root, "replica"), ReplicaOf: primary, NoFsync: true})

	env := testbin.Env{
		"PROMO_NATS_URL":             cluster.URLs(),
		"PROMO_DATABASE_URL":         primary.URL("promo"),
		"PROMO_DATABASE_REPLICA_URL": replica.URL("promo"),
		"PROMO_STREAM_REPLICAS":      "3",
		"PROMO_PARTITIONS":           "8",
		"PROMO_ACK_WAIT":             "2s",
		"PROMO_WORKERS":              "orders,outbox,api",
		"PROMO_API_KEYS":             "admin-key:admin",
		"PROMO_LOG_LEVEL":            "info",
	}
	catalog := filepath.Join(root, "catalog.yaml")
	require.NoError(t, os.WriteFile(catalog, []byte(chaos.Catalog), 0o600))
	res := testbin.Run(t, env, "catalog", "apply", "-f", catalog)
	require.Equal(t, 0, res.ExitCode, res.Stderr)

	var engines []*testbin.Proc
	for i := range 3 {
		e := testbin.Env{"PROMO_NODE_ID": fmt.Sprintf("engine-%d", i)}
		for k, v := range env {
			e[k] = v
		}
		engines = append(engines, testbin.Start(t, e, "run"))
	}

	nc, err := nats.Connect(cluster.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	subjects := events.NewSubjects("")

	wl := chaos.NewWorkload("mn", 8, 60, 200, 12)
	var pub chaos.Published
	published := make(chan error, 1)
	go func() {
		published <- wl.Publish(ctx, js, chaos.PublishOptions{Rate: 35, Unkeyed: 0.2, Subjects: subjects}, &pub)
	}()

	var faults sync.WaitGroup
	faults.Add(1)
	go func() {
		defer faults.Done()
		at := func(d time.Duration) { time.Sleep(d) }
		at(4 * time.Second)
		t.Log("kill -9 engine-0")
		engines[0].Kill()
		at(4 * time.Second)
		t.Log("stop NATS server n2")
		cluster.Kill(1)
		at(4 * time.Second)
		t.Log("pg_ctl restart -m immediate (primary)")
		if err := primary.Restart(ctx, "immediate"); err != nil {
			t.Errorf("restart PostgreSQL: %v", err)
		}
		at(4 * time.Second)
		t.Log("start NATS server n2 again")
		cluster.Restart(1)
	}()
	require.NoError(t, <-published)
	faults.Wait()
	t.Logf("published %d events (%d publishes retried)", pub.Acked.Load(), pub.Retried.Load())

	pool, err := pgxpool.New(ctx, primary.URL("promo"))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, chaos.WaitDrained(ctx, pool, js, subjects, 2*time.Minute))
	rep, err := wl.Check(ctx, pool, js, subjects)
	require.NoError(t, err)
	t.Log(rep)
	require.True(t, rep.OK(), rep.String())
	require.Equal(t, wl.Events(), rep.Results)
	require.Equal(t, rep.CustomerEvents, rep.OrderChecked, "every customer's event had its place checked")
	require.True(t, engines[1].LogContains(`"nodes":["engine-1","engine-2"]`) || engines[2].LogContains(`"nodes":["engine-1","engine-2"]`),
		"the survivors took engine-0's partitions over")

	// The replica serves the customer views, current within moments.
	var want string
	require.NoError(t, pool.QueryRow(ctx, `SELECT COALESCE(sum(remaining), 0)::text FROM point_lots WHERE customer_id = 'mn-hot-0'`).Scan(&want))
	require.Eventually(t, func() bool {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+engines[1].HTTPAddr+"/v1/customers/mn-hot-0", nil)
		req.Header.Set("Authorization", "Bearer admin-key")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var v struct {
			Balance string `json:"balance"`
		}
		return resp.StatusCode == http.StatusOK && json.Unmarshal(body, &v) == nil && v.Balance == want
	}, 30*time.Second, 100*time.Millisecond, "the replica serves the balance %s", want)
}

func startPG(ctx context.Context, t *testing.T, opts pgcluster.Options) *pgcluster.Cluster {
	t.Helper()
	c, err := pgcluster.Start(ctx, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	return c
}
