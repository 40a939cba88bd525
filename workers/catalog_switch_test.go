package workers

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/pkg/rules"
)

// A catalog applied while the workers run is used by the next events,
// without a restart, and results name the version they used.
func TestWorkersSwitchCatalogWithoutRestart(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.startOrders(OrdersHooks{})
	b.startRelay(OutboxRelayHooks{})
	b.publish(b.subjects.OrdersPaid(), paidEvent("v1", "c1", line("1", "drinks", "1", "10000")), "v1")
	r := b.waitResults("v1")["v1"][0]
	require.EqualValues(t, 1, r["catalog_version"])
	require.Equal(t, "1000", r["totals"].(map[string]any)["discount"], "10% off drinks in version 1")

	v2, err := rules.Parse([]byte(`
currency: IDR
money_decimals: 0
timezone: Asia/Jakarta
points: {decimals: 0, earn: [{per_amount: "1000", points: "1"}]}
programs:
  - {id: drinks-50, layer: item, when: {products: {categories: ["drinks"]}}, reward: {percent: "50"}}
`))
	require.NoError(t, err)
	version, err := ledger.ApplyCatalog(b.ctx, b.pool, v2)
	require.NoError(t, err)
	require.EqualValues(t, 2, version)

	// The watcher switches on NOTIFY; publish until an event is priced with
	// version 2 (the first may still be in a batch that started on version 1).
	var got map[string]any
	require.Eventually(t, func() bool {
		id := "v2-" + time.Now().Format("150405.000000")
		b.publish(b.subjects.OrdersPaid(), paidEvent(id, "c1", line("1", "drinks", "1", "10000")), id)
		got = b.waitResults(id)[id][0]
		return got["catalog_version"] == float64(2)
	}, 20*time.Second, 10*time.Millisecond)
	require.Equal(t, "5000", got["totals"].(map[string]any)["discount"], "50% off in version 2")
}

// The NATS micro service promo.quote answers a dry run and changes nothing.
func TestQuoteServiceAnswersAndChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	catalogs := NewCatalogWatcher(b.pool, b.metrics, b.log)
	catalogs.Start(b.ctx)
	<-catalogs.Ready()
	nc := b.nats.Conn(t)
	q := NewQuoteService(nc, b.pool, nil, b.store, catalogs, b.subjects, b.log)
	require.NoError(t, q.Start(b.ctx))
	t.Cleanup(q.Stop)

	msg, err := nc.Request(b.subjects.Quote(), []byte(`{"customer_id":"c9","currency":"IDR","occurred_at":"2026-11-24T10:00:00+07:00",
		"lines":[{"id":"1","product_id":"p","category_ids":["drinks"],"qty":"2","unit_price":"10000"}]}`), 10*time.Second)
	require.NoError(t, err)
	var res events.OrderResult
	require.NoError(t, json.Unmarshal(msg.Data, &res))
	require.Equal(t, events.StatusQuote, res.Status)
	require.Equal(t, "2000", res.Totals.Discount.String())
	require.Equal(t, "18", res.Points.Earned.String())
	require.Zero(t, b.count(`SELECT count(*) FROM accounts`)+b.count(`SELECT count(*) FROM inbox`)+b.count(`SELECT count(*) FROM outbox`), "a quote writes nothing")

	msg, err = nc.Request(b.subjects.Quote(), []byte(`{"currency":"IDR","lines":[{"id":"1","product_id":"p","qty":"zero","unit_price":"1"}]}`), 10*time.Second)
	require.NoError(t, err)
	require.Equal(t, "400", msg.Header.Get("Nats-Service-Error-Code"))
	require.Contains(t, string(msg.Data), "/lines/0/qty")
}
