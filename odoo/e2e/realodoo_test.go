// Package e2e_test runs promoengine against a real Odoo 17.0 or 18.0
// (`make test-odoo`, ODOO_SRC=<an Odoo source tree>): it boots Odoo from the
// tree with Debian's Python and a private PostgreSQL, installs the addons of
// odoo/, runs their Python tests, starts the real promoengine binary, and
// drives Point of Sale flows over JSON-RPC exactly as the POS screen does
// (pos.order.create_from_ui), asserting that every result is stored on the
// right Odoo order exactly once. Without ODOO_SRC it is skipped.
package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/odoo"
	"github.com/promoengine/promoengine/internal/testbin"
	"github.com/promoengine/promoengine/internal/testdb"
	"github.com/promoengine/promoengine/internal/testlog"
	"github.com/promoengine/promoengine/internal/testnats"
)

const (
	posKey     = "e2e-pos-key-6c1f0d2e"
	webhookKey = "e2e-webhook-key-91be77"
)

// setupScript makes what a shop has before it sells, as a manager would
// through Odoo's screens: the engine's API user and its API key, a
// category tree, products without taxes, customers, an open POS session.
const setupScript = `
import inspect, json
env = env(context=dict(env.context, tracking_disable=True))
user = env['res.users'].create({
    'name': 'Promo Engine', 'login': 'promo-engine', 'password': 'promo-engine-e2e',
    'groups_id': [(6, 0, [env.ref('base.group_user').id, env.ref('point_of_sale.group_pos_user').id])],
})
gen = env['res.users.apikeys'].with_user(user)._generate
key = gen(None, 'promoengine') if len(inspect.signature(gen).parameters) == 2 else gen(None, 'promoengine', None)
saleable = env.ref('product.product_category_1')
drinks = env['product.category'].create({'name': 'Drinks', 'parent_id': saleable.id})
def product(name, categ, price):
    return env['product.product'].create({'name': name, 'categ_id': categ.id, 'list_price': price,
        'available_in_pos': True, 'taxes_id': [(6, 0, [])]}).id
config = env['pos.config'].search([], order='id', limit=1)
session = env['pos.session'].create({'config_id': config.id, 'user_id': env.ref('base.user_admin').id})
cash = config.payment_method_ids.filtered('is_cash_count')[:1] or config.payment_method_ids[:1]
out = {
    'key': key, 'uid': user.id, 'admin': env.ref('base.user_admin').id,
    'all': env.ref('product.product_category_all').id, 'saleable': saleable.id, 'drinks': drinks.id,
    'cola': product('Cola', drinks, 2.5), 'chips': product('Chips', env.ref('product.product_category_all'), 1.0),
    'ann': env['res.partner'].create({'name': 'Ann'}).id, 'bob': env['res.partner'].create({'name': 'Bob'}).id,
    'config': config.id, 'session': session.id, 'cash': cash.id, 'company': config.company_id.id,
    'currency': config.currency_id.name, 'pricelist': config.pricelist_id.id or False,
    'webhook_rule': env.ref('promo_engine_webhook.automation_pos_order_paid').id,
    'webhook_action': env.ref('promo_engine_webhook.action_pos_order_paid_webhook').id,
}
env.cr.commit()
print('RESULT ' + json.dumps(out))
`

type shop struct {
	Key       string `json:"key"`
	UID       int64  `json:"uid"`
	Admin     int64  `json:"admin"`
	All       int64  `json:"all"`
	Saleable  int64  `json:"saleable"`
	Drinks    int64  `json:"drinks"`
	Cola      int64  `json:"cola"`
	Chips     int64  `json:"chips"`
	Ann       int64  `json:"ann"`
	Bob       int64  `json:"bob"`
	Config    int64  `json:"config"`
	Session   int64  `json:"session"`
	Cash      int64  `json:"cash"`
	Company   int64  `json:"company"`
	Currency  string `json:"currency"`
	Pricelist any    `json:"pricelist"`
	Rule      int64  `json:"webhook_rule"`
	RuleAct   int64  `json:"webhook_action"`
}

type e2e struct {
	t      *testing.T
	ctx    context.Context
	odoo   *odooEnv
	server *odooServer
	rpc    *odoo.Client
	shop   shop

	env        testbin.Env
	engineAddr string
	engine     *exec.Cmd
	engineLog  *testlog.Buffer
	engineDone chan struct{}

	seq   atomic.Int64
	want  map[int64][]string // order id → result event ids it must store
	names map[int64]string   // order id → what it is, for messages
	timed map[string][]time.Duration
}

func TestRealOdoo(t *testing.T) {
	src := os.Getenv("ODOO_SRC")
	if src == "" {
		t.Skip("ODOO_SRC is not set: `make test-odoo ODOO_SRC=/path/to/odoo` runs promoengine against a real Odoo 17.0 or 18.0 (docs/ODOO.md, \"Testing against a real Odoo\")")
	}
	version := odooVersion(src)
	if version != 17 && version != 18 {
		t.Skipf("ODOO_SRC=%s is not an Odoo 17.0 or 18.0 source tree (odoo/release.py says %d)", src, version)
	}
	checkPython(t)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	b := &e2e{t: t, ctx: ctx, want: map[int64][]string{}, names: map[int64]string{}, timed: map[string][]time.Duration{}}
	b.seq.Store(time.Now().Unix() % 10000 * 100)

	b.odoo = setupOdoo(ctx, t, src, version)
	start := time.Now()
	log := b.odoo.odooBin(ctx, "addons", "-i", "promo_engine,promo_engine_webhook", "--test-enable", "--test-tags", "/promo_engine", "--stop-after-init")
	require.Regexp(t, `0 failed, 0 error\(s\) of [1-9]\d* tests`, log, "the addon's own tests")
	require.NotContains(t, log, " ERROR ")
	t.Logf("addons installed and their Python tests passed in %s: %s", time.Since(start).Round(time.Second),
		regexp1(`\d+ failed, \d+ error\(s\) of \d+ tests`, log))
	if version != 17 {
		// 18.0 replaced create_from_ui by sync_from_ui with another order
		// shape; driving it is not written yet. The module is installed and
		// its own tests ran above.
		t.Skipf("Odoo %d: the addons install and their tests pass; the POS flows over JSON-RPC drive 17.0's create_from_ui only", version)
	}
	b.odoo.shell(ctx, "setup", setupScript, &b.shop)
	t.Logf("Odoo %d: company currency %s, POS config %d, session %d, categories All %d / Saleable %d / Drinks %d",
		version, b.shop.Currency, b.shop.Config, b.shop.Session, b.shop.All, b.shop.Saleable, b.shop.Drinks)
	require.Equal(t, int64(1), b.shop.All, "examples/odoo-catalog.yaml names the category ids of a fresh Odoo")
	require.Equal(t, int64(2), b.shop.Saleable, "examples/odoo-catalog.yaml names the category ids of a fresh Odoo")
	require.Equal(t, "USD", b.shop.Currency, "examples/odoo-catalog.yaml is in the currency of a fresh Odoo")

	b.server = b.odoo.startServer(t)
	b.rpc = b.client("admin", "admin")
	b.startEngine()
	b.catalog("../../examples/odoo-catalog.yaml")

	b.run("addon path", b.addonPath)
	b.run("no path: the reconciler finds the orders", b.noPath)
	b.run("webhook path", b.webhookPath)
	b.run("engine down during payments", b.engineDown)
	b.run("currency mismatch fixed and recovered", b.currencyMismatch)
	b.checkEverythingOnce()
	b.report()
}

// run runs a step as a subtest; the helpers fail the subtest, and a failed
// step stops the test (the next ones build on it).
func (b *e2e) run(name string, step func(t *testing.T)) {
	runStep(b.t, name, func(t *testing.T) { b.t = t }, step)
}

// client is a JSON-RPC client of the Odoo under test.
func (b *e2e) client(login, key string) *odoo.Client {
	return rpcClient(b.ctx, b.t, b.server.url, b.odoo.db, login, key)
}

func (b *e2e) call(model, method string, args []any, kwargs map[string]any) json.RawMessage {
	b.t.Helper()
	res, err := b.rpc.ExecuteKW(b.ctx, model, method, args, kwargs)
	require.NoError(b.t, err, "%s.%s", model, method)
	return res
}

func (b *e2e) setParam(key, value string) {
	b.call("ir.config_parameter", "set_param", []any{key, value}, nil)
}

// startEngine runs the real binary (engine workers, API, Odoo pusher,
// read-back and reconciler) on a fixed address, so that Odoo's settings
// stay right across restarts.
func (b *e2e) startEngine() {
	t := b.t
	if b.env == nil {
		ns := testnats.New(t)
		b.engineAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		b.env = testbin.Env{
			"PROMO_NATS_URL": ns.URL(), "PROMO_DATABASE_URL": testdb.NewDatabase(t), "PROMO_HTTP_ADDR": b.engineAddr,
			"PROMO_ODOO_URL": b.server.url, "PROMO_ODOO_DB": b.odoo.db, "PROMO_ODOO_LOGIN": "promo-engine",
			"PROMO_ODOO_API_KEY": b.shop.Key, "PROMO_API_KEYS": posKey + ":pos," + webhookKey + ":webhook",
			"PROMO_ODOO_RECONCILE_INTERVAL": reconcileInterval(), "PROMO_LOG_LEVEL": "info", "PROMO_LOG_FORMAT": "json",
		}
		b.engineLog = &testlog.Buffer{}
		t.Cleanup(func() {
			b.stopEngine()
			_ = os.WriteFile(filepath.Join(b.odoo.dir, "logs", b.odoo.db+"-engine.log"), []byte(b.engineLog.String()), 0o644)
			require.NotContains(t, b.engineLog.String(), b.shop.Key, "the Odoo API key is never logged")
			require.NotContains(t, b.engineLog.String(), webhookKey, "the engine never logs a key")
		})
	}
	cmd := exec.Command(testbin.Path(t), "run")
	for k, v := range b.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = b.engineLog, b.engineLog
	require.NoError(t, cmd.Start())
	b.engine, b.engineDone = cmd, make(chan struct{})
	done := b.engineDone
	go func() { _ = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + b.engineAddr + "/readyz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("promoengine not ready:\n%s", tail(b.engineLog.String(), 40))
}

func (b *e2e) stopEngine() {
	if b.engine == nil {
		return
	}
	_ = b.engine.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.engineDone:
	case <-time.After(time.Minute):
		_ = b.engine.Process.Kill()
		<-b.engineDone
	}
	b.engine = nil
}

func (b *e2e) catalog(path string) {
	b.t.Helper()
	abs, err := filepath.Abs(path)
	require.NoError(b.t, err)
	res := testbin.Run(b.t, b.env, "catalog", "apply", "-f", abs)
	require.Equal(b.t, 0, res.ExitCode, res.Stderr)
}

// line is a POS order line as the POS screen sends it.
type line struct {
	product  int64
	qty      float64
	price    float64
	refunds  int64 // pos.order.line given back
	customer int64
}

// pay sends orders (each a list of lines, with the customer of its first
// line) in one create_from_ui call, as the POS syncs its pending orders, and
// returns their ids and how long the till waited.
func (b *e2e) pay(orders ...[]line) ([]int64, time.Duration) {
	b.t.Helper()
	var payload []any
	var names []string
	for _, ls := range orders {
		n := b.seq.Add(1)
		uid := fmt.Sprintf("%05d-%03d-%04d", b.shop.Session, 1, n)
		total := 0.0
		var lines []any
		for i, l := range ls {
			vals := map[string]any{"product_id": l.product, "qty": l.qty, "price_unit": l.price, "discount": 0,
				"price_subtotal": l.qty * l.price, "price_subtotal_incl": l.qty * l.price, "tax_ids": []any{[]any{6, 0, []any{}}},
				"full_product_name": fmt.Sprintf("product %d", l.product), "id": i + 1}
			if l.refunds != 0 {
				vals["refunded_orderline_id"] = l.refunds
			}
			lines = append(lines, []any{0, 0, vals})
			total += l.qty * l.price
		}
		var partner any = false
		if ls[0].customer != 0 {
			partner = ls[0].customer
		}
		now := time.Now().UTC().Format("2006-01-02 15:04:05")
		names = append(names, "Order "+uid)
		payload = append(payload, map[string]any{"id": uid, "to_invoice": false, "data": map[string]any{
			"name": "Order " + uid, "uid": uid, "pos_session_id": b.shop.Session, "user_id": b.shop.Admin,
			"partner_id": partner, "sequence_number": n, "date_order": now, "fiscal_position_id": false,
			"pricelist_id": b.shop.Pricelist, "amount_paid": total, "amount_total": total, "amount_tax": 0,
			"amount_return": 0, "to_invoice": false, "lines": lines,
			"statement_ids": []any{[]any{0, 0, map[string]any{"amount": total, "name": now, "payment_method_id": b.shop.Cash}}},
		}})
	}
	start := time.Now()
	res := b.call("pos.order", "create_from_ui", []any{payload}, nil)
	took := time.Since(start)
	var created []struct {
		ID  int64  `json:"id"`
		Ref string `json:"pos_reference"`
	}
	require.NoError(b.t, json.Unmarshal(res, &created), string(res))
	require.Len(b.t, created, len(orders), string(res))
	byRef := map[string]int64{}
	for _, c := range created {
		byRef[c.Ref] = c.ID
	}
	ids := make([]int64, len(names))
	for i, name := range names {
		ids[i] = byRef[name]
		require.NotZero(b.t, ids[i], "order %s created", name)
	}
	return ids, took
}

// expect records the results an order must store (paid and/or returned).
func (b *e2e) expect(id int64, what string, kinds ...string) {
	b.names[id] = what
	for _, k := range kinds {
		b.want[id] = append(b.want[id], fmt.Sprintf("result:%s:pos.order:%d:%s", b.odoo.db, id, k))
	}
}

// lines returns the pos.order.line ids of an order, in order.
func (b *e2e) lines(order int64) []int64 {
	var recs []odoo.Record
	require.NoError(b.t, json.Unmarshal(b.call("pos.order.line", "search_read",
		[]any{[]any{[]any{"order_id", "=", order}}}, map[string]any{"fields": []string{"id"}, "order": "id"}), &recs))
	ids := make([]int64, len(recs))
	for i, r := range recs {
		ids[i] = r.ID()
	}
	return ids
}

type stored struct {
	ID         int64  `json:"id"`
	EventIDs   any    `json:"promo_engine_event_ids"`
	Status     any    `json:"promo_engine_status"`
	Discount   any    `json:"promo_engine_discount"`
	Net        any    `json:"promo_engine_net"`
	Balance    any    `json:"promo_engine_points_balance"`
	Deliveries int    `json:"promo_engine_deliveries"`
	Name       string `json:"name"`
}

func (s stored) eventIDs() []string {
	text, _ := s.EventIDs.(string)
	return strings.Fields(text)
}

func (b *e2e) readStored(ids []int64) map[int64]stored {
	var recs []stored
	require.NoError(b.t, json.Unmarshal(b.call("pos.order", "read", []any{ids}, map[string]any{"fields": []string{
		"name", "promo_engine_event_ids", "promo_engine_status", "promo_engine_discount", "promo_engine_net",
		"promo_engine_points_balance", "promo_engine_deliveries"}}), &recs))
	out := map[int64]stored{}
	for _, r := range recs {
		out[r.ID] = r
	}
	return out
}

// waitStored waits until every order of ids stored exactly the results
// expected of it, and returns how long that took.
func (b *e2e) waitStored(ids []int64, timeout time.Duration) time.Duration {
	b.t.Helper()
	start := time.Now()
	var got map[int64]stored
	for time.Since(start) < timeout {
		got = b.readStored(ids)
		done := true
		for _, id := range ids {
			if len(got[id].eventIDs()) < len(b.want[id]) {
				done = false
			}
		}
		if done {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	for _, id := range ids {
		require.ElementsMatch(b.t, b.want[id], got[id].eventIDs(), "order %d (%s, %s): results stored", id, got[id].Name, b.names[id])
	}
	return time.Since(start)
}

func (b *e2e) time(what string, d time.Duration) { b.timed[what] = append(b.timed[what], d) }

// addonPath: the promo_engine module sends every order through its outbox.
func (b *e2e) addonPath(t *testing.T) {
	b.setParam("promo_engine.url", "http://"+b.engineAddr)
	b.setParam("promo_engine.api_key", posKey)
	s := b.shop

	// A customer's sale: 2 Cola (Drinks, under Saleable: 10 % off) and Chips.
	ids, took := b.pay([]line{{product: s.Cola, qty: 2, price: 2.5, customer: s.Ann}, {product: s.Chips, qty: 1, price: 1}})
	b.time("addon path, engine up", took)
	sale := ids[0]
	b.expect(sale, "customer sale", "paid")
	b.waitStored(ids, 2*time.Minute)
	got := b.readStored(ids)[sale]
	require.Equal(t, "applied", got.Status)
	require.Equal(t, "0.50", got.Discount, "10 %% of the two Colas (category Drinks under Saleable)")
	require.Equal(t, "5", got.Balance, "1 point per dollar of 5.50")

	// An anonymous sale.
	ids, took = b.pay([]line{{product: s.Chips, qty: 3, price: 1}})
	b.time("addon path, engine up", took)
	b.expect(ids[0], "anonymous sale", "paid")
	anonymous := ids[0]

	// A refund of one Cola, the 17.0 way: a new order whose line points at
	// the sold line with refunded_orderline_id.
	saleLines := b.lines(sale)
	ids, took = b.pay([]line{{product: s.Cola, qty: -1, price: 2.5, refunds: saleLines[0], customer: s.Ann}})
	b.time("addon path, engine up", took)
	b.expect(ids[0], "refund", "returned")
	refund := ids[0]
	// An exchange: the Chips back, another Cola sold, in one order.
	ids, took = b.pay([]line{{product: s.Chips, qty: -1, price: 1, refunds: saleLines[1], customer: s.Ann},
		{product: s.Cola, qty: 1, price: 2.5}})
	b.time("addon path, engine up", took)
	b.expect(ids[0], "exchange", "returned", "paid")
	exchange := ids[0]
	b.waitStored([]int64{anonymous, refund, exchange}, 2*time.Minute)

	// More sales, for the till's time.
	for i := range 5 {
		ids, took := b.pay([]line{{product: s.Chips, qty: float64(i + 1), price: 1, customer: s.Bob}})
		b.time("addon path, engine up", took)
		b.expect(ids[0], "sale (addon)", "paid")
		b.waitStored(ids, 2*time.Minute)
	}

	// The POS syncs 8 pending orders in one call: one transaction.
	var eight [][]line
	for i := range 8 {
		eight = append(eight, []line{{product: s.Cola, qty: float64(i + 1), price: 2.5, customer: []int64{s.Ann, s.Bob, 0}[i%3]}})
	}
	ids, took = b.pay(eight...)
	b.time("addon path, 8 orders in one call", took)
	for _, id := range ids {
		b.expect(id, "8 in one call (addon)", "paid")
	}
	b.waitStored(ids, 3*time.Minute)
}

// noPath: neither the module nor the rule sends anything (the till's time
// without any integration, for comparison); the engine's reconciler finds
// the orders by itself.
func (b *e2e) noPath(t *testing.T) {
	b.setParam("promo_engine.url", "")
	var ids []int64
	for i := range 5 {
		got, took := b.pay([]line{{product: b.shop.Chips, qty: float64(i + 1), price: 1}})
		b.time("no integration (baseline)", took)
		b.expect(got[0], "found by the reconciler", "paid")
		ids = append(ids, got[0])
	}
	b.waitStored(ids, 2*time.Minute)
	require.Contains(t, b.engineLog.String(), "Odoo has final orders the engine never received")
}

// webhookPath: no module sending; Odoo's automation rule posts the order id
// and the engine reads the order back.
func (b *e2e) webhookPath(t *testing.T) {
	b.setParam("promo_engine.url", "") // the module queues nothing
	b.call("ir.actions.server", "write", []any{[]int64{b.shop.RuleAct},
		map[string]any{"webhook_url": "http://" + b.engineAddr + "/v1/odoo/webhook?token=" + webhookKey}}, nil)
	b.call("base.automation", "write", []any{[]int64{b.shop.Rule}, map[string]any{"active": true}}, nil)
	s := b.shop

	for range 5 {
		ids, took := b.pay([]line{{product: s.Cola, qty: 1, price: 2.5, customer: s.Bob}})
		b.time("webhook path, engine up", took)
		b.expect(ids[0], "customer sale (webhook)", "paid")
		b.waitStored(ids, 2*time.Minute)
	}
	// 8 orders in one call: their webhooks are posted from inside the
	// transaction, long before it commits (issue 16: 2 of 8 were lost).
	var eight [][]line
	for i := range 8 {
		eight = append(eight, []line{{product: s.Chips, qty: float64(i + 1), price: 1, customer: []int64{0, s.Ann}[i%2]}})
	}
	ids, took := b.pay(eight...)
	b.time("webhook path, 8 orders in one call", took)
	for _, id := range ids {
		b.expect(id, "8 in one call (webhook)", "paid")
	}
	b.waitStored(ids, 3*time.Minute)
	require.Contains(t, b.server.logText(), "Webhook call to http://"+b.engineAddr+"/v1/odoo/webhook?token=",
		"Odoo logs the URL with its key: a webhook key may do nothing but trigger read-backs")

	b.call("base.automation", "write", []any{[]int64{b.shop.Rule}, map[string]any{"active": false}}, nil)
}

// reconcileInterval is the engine's PROMO_ODOO_RECONCILE_INTERVAL
// ($ODOO_E2E_RECONCILE, default 10s; the production default is 1m).
func reconcileInterval() string {
	if v := os.Getenv("ODOO_E2E_RECONCILE"); v != "" {
		return v
	}
	return "10s"
}

// outage is how long the engine stays down ($ODOO_E2E_OUTAGE, default 20 s;
// run it once with 10m).
func outage() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("ODOO_E2E_OUTAGE")); err == nil && d > 0 {
		return d
	}
	return 20 * time.Second
}

// engineDown stops the engine while orders are paid through both paths and
// starts it again: every order gets its result.
func (b *e2e) engineDown(t *testing.T) {
	s := b.shop
	down := outage()
	b.setParam("promo_engine.url", "http://"+b.engineAddr)
	b.stopEngine()
	t.Logf("engine stopped for %s", down)
	stopped := time.Now()
	var addonIDs, webhookIDs []int64
	for i := 0; time.Since(stopped) < down || i < 4; i++ {
		ids, took := b.pay([]line{{product: s.Cola, qty: 1, price: 2.5, customer: []int64{s.Ann, s.Bob}[i%2]}})
		b.time("addon path, engine down", took)
		b.expect(ids[0], "paid while the engine was down (addon)", "paid")
		addonIDs = append(addonIDs, ids[0])
		if i == 1 { // the webhook path as well: the rule on, the module off
			b.setParam("promo_engine.url", "")
			b.call("base.automation", "write", []any{[]int64{b.shop.Rule}, map[string]any{"active": true}}, nil)
			ids, took := b.pay([]line{{product: s.Chips, qty: 2, price: 1, customer: s.Bob}})
			b.time("webhook path, engine down", took)
			b.expect(ids[0], "paid while the engine was down (webhook)", "paid")
			webhookIDs = append(webhookIDs, ids[0])
			b.call("base.automation", "write", []any{[]int64{b.shop.Rule}, map[string]any{"active": false}}, nil)
			b.setParam("promo_engine.url", "http://"+b.engineAddr)
		}
		time.Sleep(min(down/8, time.Minute))
	}
	var pending []struct {
		State    string `json:"state"`
		Attempts int    `json:"attempts"`
	}
	require.NoError(t, json.Unmarshal(b.call("promo.engine.outbox", "search_read",
		[]any{[]any{[]any{"order_id", "in", addonIDs}}}, map[string]any{"fields": []string{"state", "attempts"}}), &pending))
	require.Len(t, pending, len(addonIDs))
	attempts := make([]int, len(pending))
	for i, p := range pending {
		require.Equal(t, "pending", p.State, "kept in Odoo's outbox while the engine is down")
		attempts[i] = p.Attempts
	}
	t.Logf("Odoo's outbox before the restart: %d events pending, attempts so far %v", len(pending), attempts)
	t.Logf("paid %d orders (module) and %d (webhook) in %s with the engine down; starting it again",
		len(addonIDs), len(webhookIDs), time.Since(stopped).Round(time.Second))
	b.startEngine()
	restarted := time.Now()
	b.waitStored(webhookIDs, 10*time.Minute)
	b.time("engine back → webhook-path orders stored (reconciler)", time.Since(restarted))
	b.waitStored(addonIDs, 10*time.Minute)
	b.time("engine back → all results stored", time.Since(restarted))
}

// currencyMismatch: the catalog is in EUR while Odoo sells in USD: the order
// is dead-lettered; once the catalog is fixed, `dlq redrive --rebuild`
// reads it back from Odoo and it is processed once.
func (b *e2e) currencyMismatch(t *testing.T) {
	eur, err := os.ReadFile("../../examples/odoo-catalog.yaml")
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "eur.yaml")
	require.NoError(t, os.WriteFile(path, []byte(strings.Replace(string(eur), "currency: USD", "currency: EUR", 1)), 0o600))
	b.catalog(path)
	ids, _ := b.pay([]line{{product: b.shop.Cola, qty: 4, price: 2.5, customer: b.shop.Ann}})
	order := ids[0]
	b.names[order] = "currency mismatch"
	var letters []map[string]any
	deadline := time.Now().Add(2 * time.Minute)
	for len(letters) == 0 && time.Now().Before(deadline) {
		res := testbin.Run(t, b.env, "dlq", "list", "--code", "invalid_event", "--json")
		require.Equal(t, 0, res.ExitCode, res.Stderr)
		require.NoError(t, json.Unmarshal([]byte(res.Stdout), &letters))
		time.Sleep(time.Second)
	}
	require.Len(t, letters, 1)
	require.Contains(t, letters[0]["message"], `"USD"`)
	require.Empty(t, b.readStored(ids)[order].eventIDs(), "no result for a dead-lettered order")

	b.catalog("../../examples/odoo-catalog.yaml")
	res := testbin.Run(t, b.env, "dlq", "redrive", "--rebuild", "--all", "--code", "invalid_event")
	require.Equal(t, 0, res.ExitCode, res.Stdout+res.Stderr)
	require.Contains(t, res.Stdout, fmt.Sprintf("Nats-Msg-Id %s:pos.order:%d:paid:rebuild:", b.odoo.db, order))
	t.Log(strings.TrimSpace(res.Stdout))
	b.expect(order, "currency mismatch, recovered", "paid")
	b.waitStored(ids, 2*time.Minute)
}

// checkEverythingOnce: each order stored exactly its results, and the
// engine produced one result per event — nothing lost, nothing twice.
func (b *e2e) checkEverythingOnce() {
	t := b.t
	var ids []int64
	for id := range b.want {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	b.waitStored(ids, time.Minute)
	got := b.readStored(ids)
	deliveries := 0
	for _, id := range ids {
		deliveries += got[id].Deliveries
	}
	// The module's outbox drains once the engine is back (its cron runs
	// every minute), even for orders the reconciler delivered first.
	var box []struct {
		Event     string `json:"event_id"`
		State     string `json:"state"`
		Duplicate bool   `json:"duplicate"`
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		require.NoError(t, json.Unmarshal(b.call("promo.engine.outbox", "search_read", []any{[]any{}},
			map[string]any{"fields": []string{"event_id", "state", "duplicate"}}), &box))
		if !slices.ContainsFunc(box, func(r struct {
			Event     string `json:"event_id"`
			State     string `json:"state"`
			Duplicate bool   `json:"duplicate"`
		}) bool {
			return r.State != "sent"
		}) || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	dups := 0
	for _, r := range box {
		require.Equal(t, "sent", r.State, "outbox event %s", r.Event)
		if r.Duplicate {
			dups++
		}
	}
	t.Logf("the module's outbox: %d events, all sent (%d answered as duplicates: the reconciler had delivered them first)", len(box), dups)

	res := testbin.Run(t, b.env, "results", "-n", "100000", "--json")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	perEvent := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(res.Stdout), "\n") {
		var r struct {
			EventID string `json:"event_id"`
		}
		require.NoError(t, json.Unmarshal([]byte(l), &r))
		perEvent[r.EventID]++
	}
	total := 0
	for _, id := range ids {
		for _, ev := range b.want[id] {
			require.Equal(t, 1, perEvent[ev], "engine results of %s", ev)
			total++
		}
	}
	require.Len(t, perEvent, total, "no result for an order that should have none")
	res = testbin.Run(t, b.env, "dlq", "list", "--json")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.JSONEq(t, "[]", strings.TrimSpace(res.Stdout), "no dead letter left")
	t.Logf("%d orders, %d results: each stored once on its Odoo order (%d promo_engine_apply calls), one engine result per event",
		len(ids), total, deliveries)
}

func (b *e2e) report() {
	keys := make([]string, 0, len(b.timed))
	for k := range b.timed {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ds := slices.Clone(b.timed[k])
		slices.Sort(ds)
		b.t.Logf("%-50s n=%-3d median %8s  max %8s", k, len(ds), ds[len(ds)/2].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond))
	}
}

func regexp1(pattern, s string) string {
	return mustRegexp(pattern).FindString(s)
}
