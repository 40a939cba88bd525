package chaos_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/chaos"
	"github.com/promoengine/promoengine/internal/odoo/odootest"
	"github.com/promoengine/promoengine/internal/pgcluster"
	"github.com/promoengine/promoengine/internal/testbin"
	"github.com/promoengine/promoengine/pkg/events"
)

// The fault suite: the real binary against a nats-server process and a
// PostgreSQL cluster of its own, under a load of dependent per-customer
// events, one fault per subtest on fresh state (a new database, a new
// NATS server, new engines). After each fault, checked from outside: every
// acknowledged event has exactly one result and one inbox row, each
// customer's events took effect in publish order, nothing was rejected
// that this order funds, the ledger reconciles, nothing was dead-lettered,
// the consumers and the outbox drained; and how long the backlog the fault
// left took to clear. It prints a table of it all.
//
// `go test ./internal/chaos/` (so `make test`) runs a short form: a few
// faults, a small load, fsync off. `make chaos` (PROMO_CHAOS=full) runs
// every fault under a longer load with fsync on.

// suiteCatalog is the workloads' catalog with seven more item programs on
// a category the workload never sells: they change no workload result, and
// stack on the oversized order's lines to make its result too large.
var suiteCatalog = chaos.Catalog + `  - {id: drinks-a, layer: item, when: {products: {categories: ["drinks"]}}, reward: {percent: "1"}}
  - {id: drinks-b, layer: item, when: {products: {categories: ["drinks"]}}, reward: {percent: "1"}}
  - {id: drinks-c, layer: item, when: {products: {categories: ["drinks"]}}, reward: {percent: "1"}}
  - {id: drinks-d, layer: item, when: {products: {categories: ["drinks"]}}, reward: {percent: "1"}}
  - {id: drinks-e, layer: item, when: {products: {categories: ["drinks"]}}, reward: {percent: "1"}}
  - {id: drinks-f, layer: item, when: {products: {categories: ["drinks"]}}, reward: {percent: "1"}}
  - {id: drinks-g, layer: item, when: {products: {categories: ["drinks"]}}, reward: {percent: "1"}}
`

// load is the size of a fault's workload and when the fault starts.
type load struct {
	hot, chain, cold int
	rate             float64
	warmup           time.Duration // load before the fault
}

// fault is one experiment of the suite.
type fault struct {
	name    string
	short   bool // part of the short form
	engines int  // engine processes (1 when 0)
	odoo    bool // run the Odoo pusher against a fake Odoo
	proxied bool // the engines reach PostgreSQL through the stalling proxy
	// delays says the fault must hold some events back (a check that it
	// took effect at all).
	delays bool
	// inject causes the fault and undoes it; it returns when the fault
	// ended (the failed part is back, or, for a lasting loss, when it
	// happened).
	inject func(ctx context.Context, t *testing.T, r *rig) (end time.Time)
}

// row is one line of the suite's table.
type row struct {
	fault                                   string
	events, results, dups, lost, disordered int
	faultDur, resume, recovery, maxDelay    time.Duration
	backlog                                 int
}

func faults(full bool) []fault {
	pause := func(short, long time.Duration) time.Duration {
		if full {
			return long
		}
		return short
	}
	return []fault{
		{name: "engine kill -9", short: true, delays: true, inject: func(ctx context.Context, t *testing.T, r *rig) time.Time {
			r.engines[0].Kill()
			time.Sleep(pause(time.Second, 3*time.Second))
			r.engines[0] = r.startEngine(t, 0)
			return time.Now()
		}},
		{name: "kill -9 one of two engines", engines: 2, inject: func(ctx context.Context, t *testing.T, r *rig) time.Time {
			r.engines[0].Kill()
			return time.Now()
		}},
		{name: "postgres restart -m immediate", short: true, inject: func(ctx context.Context, t *testing.T, r *rig) time.Time {
			require.NoError(t, r.pg.Restart(ctx, "immediate"))
			return time.Now()
		}},
		{name: "postgres restart -m fast", inject: func(ctx context.Context, t *testing.T, r *rig) time.Time {
			require.NoError(t, r.pg.Restart(ctx, "fast"))
			return time.Now()
		}},
		{name: "nats-server kill -9, restart", short: true, inject: func(ctx context.Context, t *testing.T, r *rig) time.Time {
			r.nats.Kill()
			time.Sleep(pause(time.Second, 3*time.Second))
			r.nats.Start()
			return time.Now()
		}},
		{name: "odoo answers 500 for a minute", odoo: true, delays: true, inject: func(ctx context.Context, t *testing.T, r *rig) time.Time {
			r.odoo.down.Store(true)
			time.Sleep(time.Minute)
			r.odoo.down.Store(false)
			return time.Now()
		}},
		{name: "network stall to postgres", short: true, proxied: true, delays: true, inject: func(ctx context.Context, t *testing.T, r *rig) time.Time {
			r.proxy.Pause()
			time.Sleep(pause(3*time.Second, 10*time.Second))
			r.proxy.Resume()
			return time.Now()
		}},
		{name: "oversized order", short: true, inject: func(ctx context.Context, t *testing.T, r *rig) time.Time {
			r.publishOversized(ctx, t)
			return time.Now()
		}},
	}
}

func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	full := os.Getenv("PROMO_CHAOS") == "full"
	timeout, ld := 4*time.Minute, load{hot: 6, chain: 18, cold: 60, rate: 40, warmup: 1500 * time.Millisecond}
	if full {
		timeout, ld = 55*time.Minute, load{hot: 200, chain: 30, cold: 3000, rate: 200, warmup: 15 * time.Second}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// One PostgreSQL cluster for the suite, a database per fault; fsync on
	// in the full form, as in production.
	pg := startPG(ctx, t, pgcluster.Options{Dir: filepath.Join(t.TempDir(), "pg"), NoSync: !full, NoFsync: !full})

	var rows []row
	for i, f := range faults(full) {
		if !full && !f.short {
			continue
		}
		t.Run(strings.ReplaceAll(f.name, " ", "_"), func(t *testing.T) {
			rows = append(rows, runFault(ctx, t, pg, i, f, ld))
		})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n| fault | events | results | duplicates | lost | order violations | fault lasted | backlog | resumed after | recovery | max event delay |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %s | %d | %s | %s | %s |\n", r.fault, r.events, r.results, r.dups, r.lost,
			r.disordered, r.faultDur.Round(100*time.Millisecond), r.backlog, r.resume.Round(100*time.Millisecond),
			r.recovery.Round(100*time.Millisecond), r.maxDelay.Round(100*time.Millisecond))
	}
	t.Log(b.String())
}

// rig is what one fault runs on.
type rig struct {
	pg      *pgcluster.Cluster
	dbURL   string // direct
	nats    *chaos.NATSProcess
	proxy   *chaos.Proxy
	odoo    *fakeOdoo
	env     testbin.Env
	engines []*testbin.Proc
	js      jetstream.JetStream
	pool    *pgxpool.Pool
	// oversized is the id of the oversized order, when published.
	oversized string
}

func (r *rig) startEngine(t *testing.T, i int) *testbin.Proc {
	t.Helper()
	env := testbin.Env{"PROMO_NODE_ID": fmt.Sprintf("engine-%d", i)}
	for k, v := range r.env {
		env[k] = v
	}
	return testbin.Start(t, env, "run")
}

func runFault(ctx context.Context, t *testing.T, pg *pgcluster.Cluster, i int, f fault, ld load) row {
	r := &rig{pg: pg}
	db := fmt.Sprintf("chaos_%d", i)
	conn, err := pgx.Connect(ctx, pg.URL("postgres"))
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `DROP DATABASE IF EXISTS `+db)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `CREATE DATABASE `+db)
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))
	r.dbURL = pg.URL(db)
	engineDB := r.dbURL
	if f.proxied {
		r.proxy = chaos.StartProxy(t, fmt.Sprintf("127.0.0.1:%d", pg.Port()))
		u, err := url.Parse(r.dbURL)
		require.NoError(t, err)
		u.Host = r.proxy.Addr()
		engineDB = u.String()
	}
	r.nats = chaos.StartNATS(t)
	workers := "orders,outbox"
	r.env = testbin.Env{
		"PROMO_NATS_URL":     r.nats.URL(),
		"PROMO_DATABASE_URL": engineDB,
		"PROMO_PARTITIONS":   "8",
		"PROMO_LOG_LEVEL":    "info",
	}
	if f.odoo {
		r.odoo = startFakeOdoo(t)
		workers += ",odoo"
		r.env["PROMO_ODOO_URL"] = r.odoo.url
		r.env["PROMO_ODOO_DB"] = r.odoo.srv.DB
		r.env["PROMO_ODOO_LOGIN"] = r.odoo.srv.Login
		r.env["PROMO_ODOO_API_KEY"] = r.odoo.srv.APIKey
		r.env["PROMO_ODOO_RECONCILE_INTERVAL"] = "0"
	}
	r.env["PROMO_WORKERS"] = workers
	catalog := filepath.Join(t.TempDir(), "catalog.yaml")
	require.NoError(t, os.WriteFile(catalog, []byte(suiteCatalog), 0o600))
	res := testbin.Run(t, r.env, "catalog", "apply", "-f", catalog)
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	for e := range max(f.engines, 1) {
		r.engines = append(r.engines, r.startEngine(t, e))
	}

	nc, err := nats.Connect(r.nats.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	r.js, err = jetstream.New(nc)
	require.NoError(t, err)
	r.pool, err = pgxpool.New(ctx, r.dbURL)
	require.NoError(t, err)
	t.Cleanup(r.pool.Close)
	subjects := events.NewSubjects("")

	wl := chaos.NewWorkload(fmt.Sprintf("f%d", i), ld.hot, ld.chain, ld.cold, uint64(100+i))
	var pub chaos.Published
	published := make(chan error, 1)
	go func() {
		published <- wl.Publish(ctx, r.js, chaos.PublishOptions{Rate: ld.rate, Subjects: subjects}, &pub)
	}()
	time.Sleep(ld.warmup)
	start := time.Now()
	t.Logf("%s: injecting after %d events acknowledged", f.name, pub.Acked.Load())
	end := f.inject(ctx, t, r)
	t.Logf("%s: fault over after %s", f.name, end.Sub(start).Round(time.Millisecond))
	require.NoError(t, <-published)
	t.Logf("published %d events (%d publishes retried)", pub.Acked.Load(), pub.Retried.Load())

	bound := end.Sub(start) + 30*time.Second
	require.NoError(t, chaos.WaitDrained(ctx, r.pool, r.js, subjects, bound+time.Minute), "consumers and outbox drain")
	rep, err := wl.Check(ctx, r.pool, r.js, subjects)
	require.NoError(t, err)
	tm := pub.Timing(rep, end)
	out := row{fault: f.name, events: rep.Events, results: rep.Results, dups: len(rep.Duplicated), lost: len(rep.Missing),
		disordered: len(rep.OutOfOrder), faultDur: end.Sub(start), resume: tm.Resume, recovery: tm.Recovery, maxDelay: tm.MaxDelay, backlog: tm.Backlog}
	t.Logf("%s: %s; backlog %d events, resumed after %s, recovery %s, max event delay %s", f.name, rep, tm.Backlog, tm.Resume,
		tm.Recovery, tm.MaxDelay)

	if r.odoo != nil {
		// Every result reaches Odoo exactly once once it answers again;
		// recovery is then until the last result produced before the end
		// of the outage reached Odoo.
		var pushed map[string]pushRecord
		require.Eventually(t, func() bool {
			pushed = r.odoo.pushed()
			return len(pushed) >= wl.Events()
		}, bound+time.Minute, 250*time.Millisecond, "every result pushed to Odoo")
		out.resume, out.recovery, out.backlog = 0, 0, 0
		for id, p := range pushed {
			require.Equal(t, 1, p.calls, "result of %s pushed %d times", id, p.calls)
			if at, ok := rep.ResultAt[id]; ok && !at.After(end) && p.first.After(end) {
				if out.backlog == 0 || p.first.Sub(end) < out.resume {
					out.resume = p.first.Sub(end)
				}
				out.backlog++
				out.recovery = max(out.recovery, p.first.Sub(end))
			}
		}
		t.Logf("%s: %d results pushed after Odoo came back, the first after %s, the last after %s", f.name, out.backlog,
			out.resume, out.recovery)
	}
	if r.oversized != "" {
		r.checkOversized(ctx, t, subjects)
	}

	require.True(t, rep.OK(), rep.String())
	require.Equal(t, wl.Events(), rep.Results)
	require.Equal(t, int(pub.Acked.Load()), wl.Events())
	require.Equal(t, rep.CustomerEvents, rep.OrderChecked, "every customer's event had its place checked")
	if f.delays {
		require.Positive(t, out.backlog, "the fault held events back")
	}
	require.LessOrEqual(t, out.recovery, bound, "the backlog clears within the fault's duration + 30 s")
	return out
}

// publishOversized publishes a valid paid order whose result cannot fit in
// a NATS message: 600 lines with ids of 200 characters, each line earning
// eight stacked item discounts that repeat its id.
func (r *rig) publishOversized(ctx context.Context, t *testing.T) {
	t.Helper()
	id := "oversized-order"
	var lines []any
	for l := range 600 {
		lines = append(lines, map[string]any{"id": fmt.Sprintf("%04d-%s", l, strings.Repeat("x", 195)), "product_id": "d1",
			"category_ids": []string{"drinks"}, "qty": "1", "unit_price": "1000"})
	}
	body, err := json.Marshal(map[string]any{"event_id": id, "type": events.TypeOrderPaid,
		"occurred_at": events.FormatTime(time.Now()), "company_id": "1", "pos_config_id": "1",
		"order": map[string]any{"id": "o-" + id, "currency": "IDR", "customer_id": "big-spender", "lines": lines}})
	require.NoError(t, err)
	_, err = events.Decode(body)
	require.NoError(t, err, "the oversized order is a valid event")
	t.Logf("oversized order: %d bytes", len(body))
	subject := events.NewSubjects("").KeyedOrderSubject(events.TypeOrderPaid, events.CustomerKey("big-spender"))
	msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, id)
	_, err = r.js.PublishMsg(ctx, msg)
	require.NoError(t, err)
	r.oversized = id
}

// checkOversized: the oversized order ended as a dead letter that says
// why, or as a rejected result, and took no ledger effect.
func (r *rig) checkOversized(ctx context.Context, t *testing.T, s events.Subjects) {
	t.Helper()
	var why []string
	require.NoError(t, chaos.ReadStreamMsgs(ctx, r.js, s.StreamDLQ(), func(m chaos.StreamMsg) error {
		if ev, err := events.Decode(m.Data); err == nil && ev.EventID == r.oversized {
			why = append(why, "dead letter "+m.Header.Get(events.HeaderErrorCode)+": "+m.Header.Get(events.HeaderErrorMessage))
		}
		return nil
	}))
	require.NoError(t, chaos.ReadStream(ctx, r.js, s.StreamResults(), func(_ string, data []byte) error {
		var res events.OrderResult
		if json.Unmarshal(data, &res) == nil && res.CausationID == r.oversized {
			code := ""
			if res.Error != nil {
				code = res.Error.Code + ": " + res.Error.Message
			}
			why = append(why, "result "+res.Status+" "+code)
		}
		return nil
	}))
	t.Logf("oversized order: %v", why)
	require.Len(t, why, 1, "one outcome for the oversized order")
	require.True(t, strings.Contains(why[0], events.DLQResultTooLarge) || strings.HasPrefix(why[0], "result "+events.StatusRejected),
		"the oversized order is dead-lettered as %s or rejected: %s", events.DLQResultTooLarge, why[0])
	var n int
	require.NoError(t, r.pool.QueryRow(ctx, `SELECT count(*) FROM point_lots WHERE customer_id = 'big-spender'`).Scan(&n))
	require.Zero(t, n, "the oversized order earned nothing")
}

// fakeOdoo is odootest's fake Odoo behind a switch that makes it answer
// HTTP 500 to everything, as an Odoo whose workers crash does.
type fakeOdoo struct {
	srv  *odootest.Server
	url  string
	down atomic.Bool

	mu     sync.Mutex
	byCaus map[string]pushRecord
}

// pushRecord is what Odoo received of one result.
type pushRecord struct {
	calls int
	first time.Time
}

func startFakeOdoo(t *testing.T) *fakeOdoo {
	o := &fakeOdoo{srv: odootest.New(t), byCaus: map[string]pushRecord{}}
	o.srv.Handle("pos.order", "promo_engine_apply", func(c odootest.Call) (any, *odootest.RPCError) {
		var res struct {
			CausationID string `json:"causation_id"`
		}
		if len(c.Args) != 2 || json.Unmarshal(c.Args[1], &res) != nil {
			return nil, &odootest.RPCError{Name: "builtins.TypeError", Message: "promo_engine_apply([id], result)"}
		}
		o.mu.Lock()
		defer o.mu.Unlock()
		p := o.byCaus[res.CausationID]
		if p.calls == 0 {
			p.first = time.Now()
		}
		p.calls++
		o.byCaus[res.CausationID] = p
		return true, nil
	})
	target, err := url.Parse(o.srv.URL)
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if o.down.Load() {
			http.Error(w, "<html><body>502/500: Odoo is down</body></html>", http.StatusInternalServerError)
			return
		}
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(front.Close)
	o.url = front.URL
	return o
}

func (o *fakeOdoo) pushed() map[string]pushRecord {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[string]pushRecord, len(o.byCaus))
	for k, v := range o.byCaus {
		out[k] = v
	}
	return out
}
