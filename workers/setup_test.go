package workers

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/consume"
	"github.com/promoengine/promoengine/internal/keying"
	"github.com/promoengine/promoengine/internal/metrics"
	"github.com/promoengine/promoengine/internal/streams"
	"github.com/promoengine/promoengine/internal/testdb"
	"github.com/promoengine/promoengine/internal/testnats"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/pkg/rules"
)

// testCatalog earns 1 point per 1,000 and gives 10% off drinks.
const testCatalog = `
currency: IDR
money_decimals: 0
timezone: Asia/Jakarta
points:
  decimals: 0
  earn: [{per_amount: "1000", points: "1"}]
  redeem: {value: "1", min: "1", max_share: "1"}
membership:
  default_path: default
  paths: [{id: default, qualify: {window_days: 365}, retention_days: 365, downgrade: one_level, levels: [{id: member, min: "0"}]}]
programs:
  - {id: drinks-10, layer: item, when: {products: {categories: ["drinks"]}}, reward: {percent: "10"}}
`

// bundle is what a pipeline test works with.
type bundle struct {
	t        *testing.T
	ctx      context.Context
	pool     *pgxpool.Pool
	nats     *testnats.Server
	js       jetstream.JetStream
	subjects events.Subjects
	store    *ledger.Store
	metrics  *metrics.Metrics
	log      zerolog.Logger
	catalog  *rules.Catalog
	nodes    int // nodes started
	// ackWait is the consumer's redelivery delay (one second unless a test
	// needs to tell a redelivery from a prompt nak).
	ackWait time.Duration
}

func setup(t *testing.T) *bundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	b := &bundle{t: t, ctx: ctx, pool: testdb.New(t), nats: testnats.New(t), subjects: events.NewSubjects(""),
		metrics: metrics.New(prometheus.NewRegistry()), log: testLogger(), ackWait: time.Second}
	b.js = b.nats.JetStream(t)
	b.store = ledger.NewStore(b.subjects)
	sopts := streams.DefaultOptions()
	sopts.Partitions = testPartitions
	require.NoError(t, streams.Ensure(ctx, b.js, b.subjects, sopts))
	cat, err := rules.Parse([]byte(testCatalog))
	require.NoError(t, err)
	_, err = ledger.ApplyCatalog(ctx, b.pool, cat)
	require.NoError(t, err)
	b.catalog = cat
	return b
}

// testPartitions is the number of partitions of the tests' streams.
const testPartitions = 4

// node is one order-worker process of a test: the pool, the keyer and its
// share of the partitions, with its own NATS connection and database pool.
type node struct {
	*Orders
	id    string
	parts *Partitions
	stop  func()
}

// Stop stops the whole process gracefully.
func (n *node) Stop() { n.stop() }

// startOrders starts an order-worker process on the shared consumers, with
// its own connections (as a separate process would have).
func (b *bundle) startOrders(hooks OrdersHooks) *node {
	t := b.t
	js := b.nats.JetStream(t)
	timing := streams.Timing{AckWait: b.ackWait}
	cfg := OrdersConfig{Lanes: 4, BatchSize: 16, MaxDeliver: 5, SoftStop: 5 * time.Second, Heartbeat: timing.Heartbeat()}
	require.NoError(t, streams.EnsureOrderConsumers(b.ctx, js, b.subjects, testPartitions, timing, cfg.PartitionMaxAckPending()))
	pool, err := pgxpool.New(b.ctx, b.pool.Config().ConnString())
	require.NoError(t, err)
	catalogs := NewCatalogWatcher(pool, b.metrics, b.log)
	wctx, cancel := context.WithCancel(b.ctx)
	catalogs.Start(wctx)
	settler := consume.NewSettler(consume.NewDeadLetterer(js, b.subjects), 5)
	o := NewOrders(cfg, pool, b.store, catalogs, settler, b.subjects, b.metrics, b.log)
	o.Hooks = hooks
	o.Start(wctx)
	k := NewKeyer(js, b.subjects, keying.NewResolver(pool, b.log), settler, timing.Heartbeat(), b.metrics, b.log)
	k.Start(wctx)
	// Ids fixed by the test, so which node owns which partition is the
	// same at every run.
	b.nodes++
	id := fmt.Sprintf("%s-%d", strings.NewReplacer("/", "-", ".", "-").Replace(t.Name()), b.nodes)
	p := NewPartitions(PartitionsConfig{Partitions: testPartitions, Timing: timing, MaxAckPending: cfg.PartitionMaxAckPending(),
		NodeID: id, MemberBeat: 200 * time.Millisecond, MemberTTL: 1500 * time.Millisecond}, js, b.subjects, o, k, b.metrics, b.log)
	require.NoError(t, p.Start(wctx))
	var once sync.Once
	stop := func() { once.Do(func() { p.Stop(); cancel(); pool.Close() }) }
	t.Cleanup(stop)
	return &node{Orders: o, id: id, parts: p, stop: stop}
}

// waitShared waits until the units are shared among the nodes: each unit
// pulled by exactly one of them.
func (b *bundle) waitShared(nodes ...*node) {
	b.t.Helper()
	require.Eventually(b.t, func() bool {
		owners := map[string]int{}
		for _, n := range nodes {
			if len(n.parts.members.Live()) != len(nodes) {
				return false
			}
			for _, u := range n.parts.Owned() {
				owners[u]++
			}
		}
		if len(owners) != testPartitions+1 {
			return false
		}
		for _, c := range owners {
			if c != 1 {
				return false
			}
		}
		return true
	}, 30*time.Second, 50*time.Millisecond, "units shared among %d nodes", len(nodes))
}

// startRelay starts an outbox relay.
func (b *bundle) startRelay(hooks OutboxRelayHooks) *OutboxRelay {
	r := NewOutboxRelay(b.pool, b.js, b.subjects, b.metrics, b.log)
	r.Hooks = hooks
	r.PollInterval = 200 * time.Millisecond
	r.Start(b.ctx)
	b.t.Cleanup(r.Stop)
	return r
}

func paidEvent(id, customer string, lines ...string) []byte {
	ls := ""
	for i, l := range lines {
		if i > 0 {
			ls += ","
		}
		ls += l
	}
	cust := ""
	if customer != "" {
		cust = fmt.Sprintf(`"customer_id":%q,`, customer)
	}
	return []byte(fmt.Sprintf(`{"event_id":%q,"type":"pos.order.paid","occurred_at":"2026-11-24T10:00:00+07:00","company_id":"1","pos_config_id":"1","order":{"id":%q,"currency":"IDR",%s"lines":[%s]}}`,
		id, "o-"+id, cust, ls))
}

func line(id, category, qty, price string) string {
	return fmt.Sprintf(`{"id":%q,"product_id":"p%s","category_ids":[%q],"qty":%q,"unit_price":%q}`, id, id, category, qty, price)
}

func (b *bundle) publish(subject string, data []byte, msgID string) uint64 {
	msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	if msgID != "" {
		msg.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	ack, err := b.js.PublishMsg(b.ctx, msg)
	require.NoError(b.t, err)
	return ack.Sequence
}

// streamMsgs reads every message of a stream.
func (b *bundle) streamMsgs(stream string) []jetstream.RawStreamMsg {
	return testnats.StreamMessages(b.t, b.js, stream)
}

// results returns the order results on PROMO_RESULTS by causation id.
func (b *bundle) results() map[string][]map[string]any {
	return testnats.ResultsByCausation(b.t, b.js, b.subjects.StreamResults())
}

// waitResults waits until every id has a result on PROMO_RESULTS.
func (b *bundle) waitResults(ids ...string) map[string][]map[string]any {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rs := b.results()
		missing := 0
		for _, id := range ids {
			if len(rs[id]) == 0 {
				missing++
			}
		}
		if missing == 0 {
			return rs
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%d of %d results missing after 30s", missing, len(ids))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (b *bundle) count(sql string, args ...any) int {
	var n int
	require.NoError(b.t, b.pool.QueryRow(b.ctx, sql, args...).Scan(&n))
	return n
}

// waitQuiet waits until every order consumer has nothing pending or
// unacknowledged and the outbox is empty.
func (b *bundle) waitQuiet() {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b.consumersQuiet() && b.count(`SELECT count(*) FROM outbox`) == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.t.Fatal("pipeline did not go quiet within 30s")
}

// consumersQuiet reports whether no order consumer has anything pending.
func (b *bundle) consumersQuiet() bool {
	ok, err := testnats.ConsumersSettled(b.ctx, b.js, b.subjects.StreamOrders())
	require.NoError(b.t, err)
	return ok
}

// testLogger discards logs unless PROMO_TEST_LOG is set.
func testLogger() zerolog.Logger {
	if os.Getenv("PROMO_TEST_LOG") != "" {
		return zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).With().Timestamp().Logger()
	}
	return zerolog.New(io.Discard)
}
