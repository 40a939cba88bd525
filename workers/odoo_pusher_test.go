package workers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/consume"
	"github.com/promoengine/promoengine/internal/metrics"
	"github.com/promoengine/promoengine/internal/odoo"
	"github.com/promoengine/promoengine/internal/odoo/odootest"
	"github.com/promoengine/promoengine/internal/streams"
	"github.com/promoengine/promoengine/internal/testlog"
	"github.com/promoengine/promoengine/internal/testnats"
	"github.com/promoengine/promoengine/pkg/events"
)

// pusherBundle is what a pusher test works with: a real NATS server with the
// engine's streams, a fake Odoo over real HTTP, and the log of every result
// Odoo accepted.
type pusherBundle struct {
	t        *testing.T
	ctx      context.Context
	js       jetstream.JetStream
	subjects events.Subjects
	odoo     *odootest.Server
	client   *odoo.Client
	metrics  *metrics.Metrics
	logs     *testlog.Buffer
	log      zerolog.Logger

	mu      sync.Mutex
	applied []appliedResult
	// fail, when set, decides per call whether Odoo refuses a result.
	fail  func(r appliedResult, attempt int) *odootest.RPCError
	tries map[string]int
}

// appliedResult is one promo_engine_apply call Odoo accepted.
type appliedResult struct {
	OrderIDs []int64
	Result   json.RawMessage
	EventID  string
	Kwargs   map[string]json.RawMessage
}

func setupPusher(t *testing.T, odooTimeout time.Duration) *pusherBundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	ns := testnats.New(t)
	b := &pusherBundle{t: t, ctx: ctx, js: ns.JetStream(t), subjects: events.NewSubjects(""),
		odoo: odootest.New(t), metrics: metrics.New(prometheus.NewRegistry()), logs: &testlog.Buffer{},
		tries: map[string]int{}}
	b.log = zerolog.New(b.logs).Level(zerolog.TraceLevel)
	b.client = b.odoo.Client(t, b.log, odooTimeout)
	require.NoError(t, streams.Ensure(ctx, b.js, b.subjects, streams.DefaultOptions()))
	b.odoo.Handle("pos.order", "promo_engine_apply", b.apply)
	t.Cleanup(func() {
		logs := b.logs.String()
		require.NotEmpty(t, logs)
		require.NotContains(t, logs, b.odoo.APIKey, "the Odoo API key must never be logged")
	})
	return b
}

// apply is the fake Odoo's promo_engine_apply.
func (b *pusherBundle) apply(c odootest.Call) (any, *odootest.RPCError) {
	var r appliedResult
	if len(c.Args) != 2 {
		return nil, &odootest.RPCError{Name: "builtins.TypeError", Message: "promo_engine_apply() takes 2 positional arguments"}
	}
	if err := json.Unmarshal(c.Args[0], &r.OrderIDs); err != nil {
		return nil, &odootest.RPCError{Name: "builtins.TypeError", Message: "ids: " + err.Error()}
	}
	r.Result = c.Args[1]
	r.Kwargs = c.Kwargs
	var head struct {
		EventID string `json:"event_id"`
	}
	_ = json.Unmarshal(r.Result, &head)
	r.EventID = head.EventID
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tries[r.EventID]++
	if b.fail != nil {
		if e := b.fail(r, b.tries[r.EventID]); e != nil {
			return nil, e
		}
	}
	b.applied = append(b.applied, r)
	return true, nil
}

func (b *pusherBundle) setFail(f func(r appliedResult, attempt int) *odootest.RPCError) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fail = f
}

func (b *pusherBundle) appliedResults() []appliedResult {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.applied)
}

// waitApplied waits until Odoo accepted n results.
func (b *pusherBundle) waitApplied(n int) []appliedResult {
	b.t.Helper()
	b.odoo.WaitCalls(b.t, 30*time.Second, func([]odootest.Call) bool { return len(b.appliedResults()) >= n })
	return b.appliedResults()
}

// fastPusherConfig shortens every delay so that retries take milliseconds.
func fastPusherConfig(concurrency int) OdooPusherConfig {
	return OdooPusherConfig{Concurrency: concurrency, MaxDeliver: 10, Attempts: 2,
		RetryBase: 5 * time.Millisecond, NakBase: 100 * time.Millisecond, NakMax: time.Second,
		AckWait: 3 * time.Second, PinnedTTL: 5 * time.Second, SoftStop: 5 * time.Second}
}

func (b *pusherBundle) startPusher(cfg OdooPusherConfig) *OdooPusher {
	b.t.Helper()
	p := NewOdooPusher(cfg, b.client, b.js, b.subjects, consume.NewDeadLetterer(b.js, b.subjects), b.metrics, b.log)
	require.NoError(b.t, p.Start(b.ctx))
	var once sync.Once
	b.t.Cleanup(func() { once.Do(p.Stop) })
	return p
}

// result is an order result as the outbox relay publishes it.
func result(eventID, orderID, originalOrderID, sourceType string) []byte {
	orig := ""
	if originalOrderID != "" {
		orig = fmt.Sprintf(`"original_order_id":%q,`, originalOrderID)
	}
	return []byte(fmt.Sprintf(`{"event_id":%q,"type":"promo.order.result","causation_id":%q,"source_type":%q,`+
		`"occurred_at":"2026-11-28T10:15:00+07:00","order_id":%q,%s"customer_id":"77","currency":"IDR",`+
		`"status":"applied","catalog_version":3,"totals":{"gross":"50000","discount":"5000","net":"45000"},`+
		`"lines":[{"id":"1","qty":"2","gross":"50000","discount":"5000","net":"45000"}],`+
		`"discounts":[{"layer":"item","program_id":"bev","line_id":"1","amount":"5000"}],"trace":[]}`,
		eventID, eventID[len("result:"):], sourceType, orderID, orig))
}

func paidResult(orderID string) []byte {
	return result("result:odoo1:pos.order:"+orderID+":paid", orderID, "", events.TypeOrderPaid)
}

func returnResult(orderID, original string) []byte {
	return result("result:odoo1:pos.order:"+orderID+":returned", orderID, original, events.TypeOrderReturned)
}

func cancelResult(orderID string) []byte {
	return result("result:odoo1:pos.order:"+orderID+":cancelled", orderID, "", events.TypeOrderCancelled)
}

// publish puts a result on promo.results.order as the relay does.
func (b *pusherBundle) publish(data []byte, header nats.Header) *jetstream.PubAck {
	b.t.Helper()
	var head struct {
		EventID string `json:"event_id"`
	}
	require.NoError(b.t, json.Unmarshal(data, &head))
	msg := &nats.Msg{Subject: b.subjects.ResultsOrder(), Data: data, Header: nats.Header{}}
	for k, v := range header {
		msg.Header[k] = v
	}
	msg.Header.Set(jetstream.MsgIDHeader, head.EventID)
	ack, err := b.js.PublishMsg(b.ctx, msg)
	require.NoError(b.t, err)
	return ack
}

// waitSettled waits until the pusher's consumer has nothing pending or
// unacknowledged.
func (b *pusherBundle) waitSettled() {
	b.t.Helper()
	require.Eventually(b.t, func() bool {
		info, err := b.js.Consumer(b.ctx, b.subjects.StreamResults(), streams.OdooConsumer)
		if err != nil {
			return false
		}
		ci, err := info.Info(b.ctx)
		return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0
	}, 30*time.Second, 20*time.Millisecond)
}

// deadLetter waits for the dead letter on promo.dlq.odoo.
func (b *pusherBundle) deadLetter() *jetstream.RawStreamMsg {
	b.t.Helper()
	var msg *jetstream.RawStreamMsg
	require.Eventually(b.t, func() bool {
		s, err := b.js.Stream(b.ctx, b.subjects.StreamDLQ())
		if err != nil {
			return false
		}
		msg, err = s.GetLastMsgForSubject(b.ctx, b.subjects.DLQOdoo())
		return err == nil
	}, 30*time.Second, 20*time.Millisecond)
	return msg
}

func (b *pusherBundle) pushes(outcome string) float64 {
	var m dto.Metric
	require.NoError(b.t, b.metrics.OdooPushes.WithLabelValues(outcome).Write(&m))
	return m.GetCounter().GetValue()
}

// waitPushes waits until n pushes have the outcome: a push is counted once
// its acknowledgement returned, which may be a moment after the consumer
// shows it settled.
func (b *pusherBundle) waitPushes(outcome string, n int) {
	b.t.Helper()
	require.Eventually(b.t, func() bool { return b.pushes(outcome) == float64(n) }, 10*time.Second, 10*time.Millisecond,
		"%d pushes %s", n, outcome)
}

func TestOdooPusherPushesEachResultOnce(t *testing.T) {
	t.Parallel()
	b := setupPusher(t, 5*time.Second)
	sent := map[string][]byte{}
	for i := 1; i <= 30; i++ {
		id := fmt.Sprint(1000 + i)
		sent[id] = paidResult(id)
		b.publish(sent[id], nil)
	}
	b.startPusher(fastPusherConfig(4))

	applied := b.waitApplied(30)
	b.waitSettled()
	// A result published again (the relay after a crash) is deduplicated by
	// the stream and never reaches Odoo twice.
	ack := b.publish(sent["1001"], nil)
	require.True(t, ack.Duplicate)
	b.waitSettled()

	applied = b.appliedResults()
	require.Len(t, applied, 30)
	seen := map[int64]bool{}
	for _, r := range applied {
		require.Len(t, r.OrderIDs, 1)
		id := r.OrderIDs[0]
		require.False(t, seen[id], "order %d pushed twice", id)
		seen[id] = true
		// execute_kw(model, method, [[order_id], result], {}): the result
		// as the very JSON object that was published.
		require.JSONEq(t, string(sent[fmt.Sprint(id)]), string(r.Result))
		require.Empty(t, r.Kwargs)
	}
	b.waitPushes("delivered", 30)
	require.Equal(t, 1, b.odoo.Authentications())
}

func TestOdooPusherRetriesTransientFailuresThenDelivers(t *testing.T) {
	t.Parallel()
	// The client's timeout leaves an answering fake Odoo plenty of time even
	// on a loaded machine under -race; only the injected delay exceeds it.
	b := setupPusher(t, 1500*time.Millisecond)
	b.odoo.Inject("pos.order.promo_engine_apply",
		odootest.Fault{Status: http.StatusInternalServerError},
		odootest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "0"}, // in-process attempts spent: nak
		odootest.Fault{Delay: 4 * time.Second},                              // a timeout
		odootest.Fault{Status: http.StatusServiceUnavailable},               // nak again
	)
	data := paidResult("1042")
	b.publish(data, nil)
	b.startPusher(fastPusherConfig(2))

	applied := b.waitApplied(1)
	b.waitSettled()
	require.Len(t, applied, 1)
	require.JSONEq(t, string(data), string(applied[0].Result))
	require.Len(t, b.odoo.CallsTo("pos.order", "promo_engine_apply"), 5)
	b.waitPushes("delivered", 1)
	require.Equal(t, 2.0, b.pushes("retried"))
	require.Equal(t, 0.0, b.pushes("dead_lettered"))

	// Every failed call is counted by reason, and a result handed back for
	// later is logged at warn with its order and the reason.
	failures := func(reason string) float64 {
		var m dto.Metric
		require.NoError(t, b.metrics.OdooFailures.WithLabelValues("push", reason).Write(&m))
		return m.GetCounter().GetValue()
	}
	require.Equal(t, 3.0, failures("http"))
	require.Equal(t, 1.0, failures("timeout"))
	logs := b.logs.String()
	require.Contains(t, logs, `"level":"warn","worker":"odoo"`)
	require.Regexp(t, `"level":"warn"[^\n]*"order_id":"1042"[^\n]*"reason":"http"[^\n]*"message":"Odoo push failed; retrying later"`, logs)
}

func TestOdooPusherDeadLettersPermanentOdooErrors(t *testing.T) {
	t.Parallel()
	b := setupPusher(t, 5*time.Second)
	b.setFail(func(r appliedResult, attempt int) *odootest.RPCError {
		if r.OrderIDs[0] == 1042 && r.EventID == "result:odoo1:pos.order:1042:paid" {
			return &odootest.RPCError{Name: "odoo.exceptions.ValidationError", Message: "Order Shop/0042 is already closed",
				Debug: "Traceback (most recent call last): … key " + b.odoo.APIKey}
		}
		return nil
	})
	data := paidResult("1042")
	seq := b.publish(data, nats.Header{"X-Trace": []string{"abc"}}).Sequence
	b.publish(paidResult("1043"), nil)
	b.startPusher(fastPusherConfig(2))

	dl := b.deadLetter()
	b.waitApplied(1)
	b.waitSettled()
	require.Equal(t, b.subjects.DLQOdoo(), dl.Subject)
	require.Equal(t, data, dl.Data, "the original result, byte for byte")
	require.Equal(t, "abc", dl.Header.Get("X-Trace"), "original headers kept")
	require.Equal(t, "result:odoo1:pos.order:1042:paid", dl.Header.Get(jetstream.MsgIDHeader))
	require.Equal(t, events.DLQOdooRejected, dl.Header.Get(events.HeaderErrorCode))
	require.Equal(t, b.subjects.ResultsOrder(), dl.Header.Get(events.HeaderOriginalSubject))
	require.Equal(t, fmt.Sprint(seq), dl.Header.Get(events.HeaderOriginalSeq))
	var resp struct {
		Code int `json:"code"`
		Data struct {
			Name    string `json:"name"`
			Message string `json:"message"`
			Debug   string `json:"debug"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(dl.Header.Get(events.HeaderErrorMessage)), &resp), "Odoo's response as JSON")
	require.Equal(t, 200, resp.Code)
	require.Equal(t, "odoo.exceptions.ValidationError", resp.Data.Name)
	require.Equal(t, "Order Shop/0042 is already closed", resp.Data.Message)
	require.NotContains(t, resp.Data.Debug, b.odoo.APIKey)

	require.Len(t, b.odoo.CallsTo("pos.order", "promo_engine_apply"), 2, "a permanent error is not retried")
	require.Equal(t, 1.0, b.pushes("dead_lettered"))
	require.Equal(t, []int64{1043}, b.appliedResults()[0].OrderIDs)

	// The order is not blocked by its dead-lettered result.
	b.publish(returnResult("1050", "1042"), nil)
	applied := b.waitApplied(2)
	require.Equal(t, []int64{1050}, applied[1].OrderIDs)
}

func TestOdooPusherDeadLettersAfterMaxDeliver(t *testing.T) {
	t.Parallel()
	b := setupPusher(t, 5*time.Second)
	for range 6 {
		b.odoo.Inject("pos.order.promo_engine_apply", odootest.Fault{Status: http.StatusBadGateway})
	}
	cfg := fastPusherConfig(1)
	cfg.MaxDeliver = 3
	b.publish(paidResult("1042"), nil)
	b.startPusher(cfg)

	dl := b.deadLetter()
	b.waitSettled()
	require.Equal(t, events.DLQProcessingFailed, dl.Header.Get(events.HeaderErrorCode))
	require.Contains(t, dl.Header.Get(events.HeaderErrorMessage), "HTTP 502")
	require.Len(t, b.odoo.CallsTo("pos.order", "promo_engine_apply"), 6, "3 deliveries × 2 attempts")
	require.Empty(t, b.appliedResults())
}

func TestOdooPusherReauthenticatesOnceAfterAccessDenied(t *testing.T) {
	t.Parallel()
	b := setupPusher(t, 5*time.Second)
	b.odoo.Inject("pos.order.promo_engine_apply", odootest.Fault{Error: odootest.AccessDenied()})
	b.publish(paidResult("1042"), nil)
	b.startPusher(fastPusherConfig(1))

	b.waitApplied(1)
	b.waitSettled()
	require.Equal(t, 2, b.odoo.Authentications())
	require.Len(t, b.odoo.CallsTo("pos.order", "promo_engine_apply"), 2)
	b.waitPushes("delivered", 1)
	require.Equal(t, 0.0, b.pushes("retried"))
}

// requireSaleFirst checks that, for every order, its sale's result was
// accepted before any result of its returns or cancellation.
func requireSaleFirst(t *testing.T, applied []appliedResult, orders []string) {
	t.Helper()
	pos := map[string]int{}
	for i, r := range applied {
		pos[r.EventID] = i
	}
	for _, o := range orders {
		sale, ok := pos["result:odoo1:pos.order:"+o+":paid"]
		require.True(t, ok, "sale %s pushed", o)
		for id, i := range pos {
			var original struct {
				OriginalOrderID string `json:"original_order_id"`
				OrderID         string `json:"order_id"`
			}
			require.NoError(t, json.Unmarshal(applied[i].Result, &original))
			if original.OriginalOrderID == o || (original.OrderID == o && id != "result:odoo1:pos.order:"+o+":paid") {
				require.Less(t, sale, i, "%s pushed before the sale of order %s", id, o)
			}
		}
	}
}

func TestOdooPusherKeepsAnOrdersResultsInOrder(t *testing.T) {
	t.Parallel()
	b := setupPusher(t, 5*time.Second)
	// Sales of even orders fail twice (a database conflict in Odoo) and
	// every sale is slow, so that with four lanes their returns would
	// overtake them if routing or holds were wrong.
	b.setFail(func(r appliedResult, attempt int) *odootest.RPCError {
		var res struct {
			SourceType string `json:"source_type"`
		}
		_ = json.Unmarshal(r.Result, &res)
		if res.SourceType == events.TypeOrderPaid {
			time.Sleep(10 * time.Millisecond)
			if r.OrderIDs[0]%2 == 0 && attempt <= 2 {
				return &odootest.RPCError{Name: "psycopg2.errors.SerializationFailure", Message: "could not serialize access"}
			}
		}
		return nil
	})
	cfg := fastPusherConfig(4)
	cfg.Attempts = 1
	// Long enough that the returns surely arrive while their sales wait.
	cfg.NakBase, cfg.NakMax = time.Second, time.Second
	b.startPusher(cfg)

	var orders []string
	for i := 1; i <= 8; i++ {
		orders = append(orders, fmt.Sprint(2000+i))
	}
	for _, o := range orders {
		b.publish(paidResult(o), nil)
	}
	for i, o := range orders {
		b.publish(returnResult(fmt.Sprint(3000+i), o), nil)
	}
	for _, o := range orders[:4] {
		b.publish(cancelResult(o), nil)
	}

	applied := b.waitApplied(20)
	b.waitSettled()
	require.Len(t, applied, 20)
	requireSaleFirst(t, applied, orders)
	require.Positive(t, b.pushes("held"), "returns waited behind their retried sales")
	require.Positive(t, b.pushes("retried"))
}

func TestOdooPusherHoldsSurviveARestart(t *testing.T) {
	t.Parallel()
	b := setupPusher(t, 5*time.Second)
	b.setFail(func(r appliedResult, attempt int) *odootest.RPCError {
		if r.EventID == "result:odoo1:pos.order:4001:paid" && attempt == 1 {
			return &odootest.RPCError{Name: "psycopg2.errors.SerializationFailure", Message: "could not serialize access"}
		}
		return nil
	})
	cfg := fastPusherConfig(2)
	cfg.Attempts = 1
	// Long enough that the second process surely gets the return while the
	// sale waits on the server.
	cfg.NakBase = 5 * time.Second
	cfg.NakMax = 5 * time.Second

	first := b.startPusher(cfg)
	b.publish(paidResult("4001"), nil)
	b.odoo.WaitCalls(t, 30*time.Second, func([]odootest.Call) bool { return b.pushes("retried") == 1 })
	first.Stop()

	// The sale waits for its retry on the server; a new process must not
	// push the return first, although it has never seen the sale.
	b.publish(returnResult("4002", "4001"), nil)
	b.startPusher(cfg)
	applied := b.waitApplied(2)
	b.waitSettled()
	requireSaleFirst(t, applied, []string{"4001"})
	require.Positive(t, b.pushes("held"))
}

func TestOdooPusherStandbyTakesOverAtOnce(t *testing.T) {
	t.Parallel()
	b := setupPusher(t, 5*time.Second)
	cfg := fastPusherConfig(2)
	first := b.startPusher(cfg)
	second := b.startPusher(cfg)
	for i := 1; i <= 10; i++ {
		b.publish(paidResult(fmt.Sprint(5000+i)), nil)
	}
	b.waitApplied(10)

	// Whichever process is pinned, stopping it hands the consumer over
	// without waiting for the pin to expire (cfg.PinnedTTL + AckWait).
	pin1, _ := first.pinID.Load().(string)
	pin2, _ := second.pinID.Load().(string)
	require.True(t, (pin1 == "") != (pin2 == ""), "one process had the pin: %q %q", pin1, pin2)
	pinned, standby := first, second
	if pin2 != "" {
		pinned, standby = second, first
	}
	pinned.Stop()
	for i := 11; i <= 20; i++ {
		b.publish(paidResult(fmt.Sprint(5000+i)), nil)
	}
	b.odoo.WaitCalls(t, 5*time.Second, func([]odootest.Call) bool { return len(b.appliedResults()) >= 20 })
	b.waitSettled()
	seen := map[string]bool{}
	for _, r := range b.appliedResults() {
		require.False(t, seen[r.EventID], "%s pushed twice", r.EventID)
		seen[r.EventID] = true
	}
	require.Len(t, seen, 20)
	p, _ := standby.pinID.Load().(string)
	require.NotEmpty(t, p, "the standby was pinned")
}

// While Odoo does not answer at all (every call fails, the probe too), the
// results in flight wait in place: no delivery is counted — with
// MaxDeliver 2 and dozens of failed calls nothing is dead-lettered — and
// nothing is naked; once Odoo answers, every result is pushed once.
func TestOdooPusherWaitsInPlaceWhileOdooIsDown(t *testing.T) {
	t.Parallel()
	b := setupPusher(t, 5*time.Second)
	for range 40 {
		b.odoo.Inject("execute_kw", odootest.Fault{Status: http.StatusServiceUnavailable})
	}
	orders := []string{"5001", "5002", "5003", "5004", "5005"}
	for _, o := range orders {
		b.publish(paidResult(o), nil)
	}
	cfg := fastPusherConfig(4)
	cfg.MaxDeliver = 2
	cfg.InPlaceMax = 20 * time.Millisecond
	b.startPusher(cfg)

	applied := b.waitApplied(len(orders))
	b.waitSettled()
	require.Len(t, applied, len(orders), "each result pushed once")
	b.waitPushes("delivered", len(orders))
	require.Zero(t, b.pushes("retried"), "nothing naked: the results waited in place")
	require.Zero(t, b.pushes("dead_lettered"))
	require.NotEmpty(t, b.odoo.CallsTo("pos.order", "search_count"), "Odoo was probed")
	require.Contains(t, b.logs.String(), `"odoo_down":true`)
}

// Results fetched and waiting behind slow pushes are kept alive: with an
// ack wait of one second and each push taking 300 ms on one lane, the last
// of eight results waits more than twice the ack wait, and still none is
// redelivered and pushed twice.
func TestOdooPusherSlowOdooNeverPushesTwice(t *testing.T) {
	t.Parallel()
	b := setupPusher(t, 5*time.Second)
	b.setFail(func(appliedResult, int) *odootest.RPCError {
		time.Sleep(300 * time.Millisecond)
		return nil
	})
	for i := 1; i <= 8; i++ {
		b.publish(paidResult(fmt.Sprint(6000+i)), nil)
	}
	cfg := fastPusherConfig(1)
	cfg.AckWait = time.Second
	b.startPusher(cfg)

	applied := b.waitApplied(8)
	b.waitSettled()
	require.Len(t, b.appliedResults(), 8)
	seen := map[int64]bool{}
	for _, r := range applied {
		require.False(t, seen[r.OrderIDs[0]], "order %d pushed twice", r.OrderIDs[0])
		seen[r.OrderIDs[0]] = true
	}
	b.waitPushes("delivered", 8)
}
