package workers

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/promoengine/promoengine/internal/consume"
	"github.com/promoengine/promoengine/internal/metrics"
	"github.com/promoengine/promoengine/internal/odoo"
	"github.com/promoengine/promoengine/internal/streams"
	"github.com/promoengine/promoengine/internal/tracing"
	"github.com/promoengine/promoengine/pkg/events"
)

// OdooPusherConfig tunes the Odoo pusher. Zero values take the defaults
// noted on each field.
type OdooPusherConfig struct {
	// Concurrency is the number of lanes, i.e. pushes in flight at once
	// (PROMO_ODOO_CONCURRENCY). Default 4.
	Concurrency int
	// MaxDeliver is how many deliveries a result gets before a push that
	// keeps failing transiently is dead-lettered (processing_failed).
	// Deliveries spent waiting behind an earlier result of the same order
	// count too. Default 50: with the nak schedule below, about four hours
	// of Odoo being unreachable.
	MaxDeliver int
	// Model and Method are what execute_kw calls. Defaults pos.order and
	// promo_engine_apply.
	Model, Method string

	// Attempts is how many times one delivery is pushed in process before
	// the message is naked with a delay. Default 3.
	Attempts int
	// RetryBase is the first in-process backoff; it doubles per attempt,
	// with full jitter. Default 250 ms.
	RetryBase time.Duration
	// NakBase is the first NakWithDelay delay; it doubles per delivery up
	// to NakMax, with ±20 % jitter. Defaults 5 s and 5 min.
	NakBase, NakMax time.Duration
	// InPlaceMax caps the backoff of a result retried in place while Odoo
	// is down (no push succeeds); a success wakes every one at once.
	// Default 5 s.
	InPlaceMax time.Duration
	// AckWait is the consumer's ack wait. Messages held by the pusher are
	// kept alive with InProgress, so it only decides how soon the results
	// of a crashed process are redelivered. Default 30 s.
	AckWait time.Duration
	// PinnedTTL is how long the consumer stays pinned to a process that
	// stopped pulling. Default 2 min.
	PinnedTTL time.Duration
	// SoftStop is how long Stop lets pushes in flight finish. Default 10 s.
	SoftStop time.Duration
	// Skip, when set, says whether an order's results must not be pushed
	// (its shop is in shadow mode, workers/odoo_shadow.go): they are
	// acknowledged without a call to Odoo. An error is retried like a
	// failed push.
	Skip func(ctx context.Context, orderID string) (bool, error)
}

func (c *OdooPusherConfig) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Concurrency < 1 {
		c.Concurrency = 4
	}
	if c.MaxDeliver < 1 {
		c.MaxDeliver = 50
	}
	if c.Model == "" {
		c.Model = "pos.order"
	}
	if c.Method == "" {
		c.Method = "promo_engine_apply"
	}
	if c.Attempts < 1 {
		c.Attempts = 3
	}
	def(&c.RetryBase, 250*time.Millisecond)
	def(&c.NakBase, 5*time.Second)
	def(&c.NakMax, 5*time.Minute)
	def(&c.InPlaceMax, 5*time.Second)
	def(&c.AckWait, 30*time.Second)
	def(&c.PinnedTTL, 2*time.Minute)
	def(&c.SoftStop, 10*time.Second)
}

// odooPriorityGroup is the one priority group of the pusher's consumer.
const odooPriorityGroup = "odoo"

// pinHeader is set by the server on messages of a pinned consumer.
const pinHeader = "Nats-Pin-Id"

// OdooConsumerConfig is the pusher's durable pull consumer on PROMO_RESULTS:
//
//   - FilterSubject promo.results.order: only order results go to Odoo;
//     points_expired and level_changed have no pos.order to land on.
//   - DeliverAll: on first creation, results already in the stream are
//     pushed too, so results produced while the pusher was not yet running
//     (first deployment, Odoo pushing switched on later) are not skipped.
//   - Explicit acks, sent only after Odoo answered success (or the result
//     was dead-lettered).
//   - AckWait 30 s, no BackOff: the pusher sends InProgress for what it
//     holds, so AckWait only matters after a crash, and one fixed value makes
//     the server redeliver a dead process's results in stream order.
//   - MaxDeliver unlimited: the pusher counts deliveries and dead-letters
//     itself (cfg.MaxDeliver), so the server never drops a result silently.
//   - MaxAckPending 64 per lane: bounds results in flight and waiting for a
//     nak delay; when Odoo is down the server stops handing out more.
//   - Pinned priority group: one process pushes at a time, so the lanes that
//     keep one order's results in order are all in that process, and
//     Concurrency bounds the load on Odoo for the whole deployment. Another
//     process takes over PinnedTTL after the pinned one stopped pulling
//     (at once when it stops cleanly). PinnedTTL is longer than AckWait, so
//     the results a crashed process held are back in the redelivery queue,
//     served before new messages, when the next process is pinned.
func OdooConsumerConfig(s events.Subjects, cfg OdooPusherConfig) jetstream.ConsumerConfig {
	cfg.defaults()
	return jetstream.ConsumerConfig{
		Durable:        streams.OdooConsumer,
		Description:    "promoengine Odoo pusher (SPEC §7)",
		FilterSubject:  s.ResultsOrder(),
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        cfg.AckWait,
		MaxDeliver:     -1,
		MaxAckPending:  cfg.Concurrency * 64,
		MaxWaiting:     64,
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PriorityGroups: []string{odooPriorityGroup},
		PinnedTTL:      max(cfg.PinnedTTL, cfg.AckWait+10*time.Second),
	}
}

// OdooHoldsBucket names the key-value bucket where the pusher remembers
// which orders have a result waiting for a retry (see orderHolds).
func OdooHoldsBucket(s events.Subjects) string {
	return strings.TrimSuffix(s.StreamResults(), "PROMO_RESULTS") + "PROMO_ODOO_HOLDS"
}

// OdooPusher pushes every order result to Odoo with
// execute_kw(model, method, [[order_id], result], {}) and acknowledges it
// only once Odoo answered success.
//
// Outcomes of one push, decided in one switch (handle):
//
//	success                   → Ack (DoubleAck)
//	Odoo user-facing error    → dead letter on promo.dlq.odoo (original
//	                            bytes and headers, Odoo's answer in
//	                            Promo-Error-Message), then Term
//	network, timeout, 5xx,    → retried in process (exponential backoff,
//	429, other errors           full jitter); then, while Odoo does not
//	                            answer a probe, retried in place until it
//	                            does (no delivery counted); when it does,
//	                            NakWithDelay (doubling, jittered,
//	                            Retry-After honoured); after MaxDeliver
//	                            deliveries dead-lettered as
//	                            processing_failed
//	stopping                  → Nak: another process takes it at once
//
// Order: the results of one sale — its own, then those of its returns and
// its cancellation — are pushed in stream order (which is the order the
// engine committed them). They share a key, the sale's order id
// (original_order_id of a return's result, else order_id), and a key
// always goes to the same lane, which pushes one result at a time. When a
// result has to wait for a retry (NakWithDelay), its key is held: later
// results of the same key are naked until it went through, so a return is
// never pushed before its sale even though a nak lets the stream move on.
// Holds are kept in a JetStream key-value bucket as well as in memory, so
// they survive a restart or a fail-over.
type OdooPusher struct {
	cfg      OdooPusherConfig
	client   *odoo.Client
	js       jetstream.JetStream
	subjects events.Subjects
	dl       *consume.DeadLetterer
	metrics  *metrics.Metrics
	log      zerolog.Logger

	cons    jetstream.Consumer
	holds   *orderHolds
	health  *odooHealth
	fetcher *consume.Fetcher
	lanes   []chan *pushItem

	stopFetch context.CancelFunc
	stopWork  context.CancelFunc
	fetchDone chan struct{}
	lanesDone sync.WaitGroup
	stopOnce  sync.Once
	// pinID is the id under which the server pinned the consumer to this
	// process, from the Nats-Pin-Id header of the messages it delivers.
	pinID atomic.Value
}

// NewOdooPusher assembles a pusher; call Start.
func NewOdooPusher(cfg OdooPusherConfig, client *odoo.Client, js jetstream.JetStream, subjects events.Subjects,
	dl *consume.DeadLetterer, m *metrics.Metrics, log zerolog.Logger) *OdooPusher {
	cfg.defaults()
	return &OdooPusher{cfg: cfg, client: client, js: js, subjects: subjects, dl: dl, metrics: m,
		health: newOdooHealth(), log: log.With().Str("worker", "odoo").Logger()}
}

// pushItem is one result between fetch and settlement.
type pushItem struct {
	msg     jetstream.Msg
	seq     uint64
	deliver uint64
	key     string // the sale's order id
	orderID string
	eventID string
	bad     error // the result could not be read

	span trace.Span // the push's span (odoo_pusher_trace.go); nil untraced
}

// Start creates or updates the consumer and the holds bucket, loads the
// holds, and starts pushing. ctx bounds the whole worker; Stop ends it
// gracefully.
func (p *OdooPusher) Start(ctx context.Context) error {
	cons, err := p.js.CreateOrUpdateConsumer(ctx, p.subjects.StreamResults(), OdooConsumerConfig(p.subjects, p.cfg))
	if err != nil {
		return fmt.Errorf("odoo pusher: ensure consumer %s: %w", streams.OdooConsumer, err)
	}
	kv, err := p.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      OdooHoldsBucket(p.subjects),
		Description: "Orders whose next Odoo push waits for a retry (promoengine odoo pusher)",
		History:     1,
		// A hold whose result vanished (stream limits) must not block its
		// order forever; a live hold is rewritten at every retry.
		TTL:     24 * time.Hour,
		Storage: jetstream.FileStorage,
	})
	if err != nil {
		return fmt.Errorf("odoo pusher: ensure bucket %s: %w", OdooHoldsBucket(p.subjects), err)
	}
	p.cons = cons
	p.holds = newOrderHolds(kv, p.log)
	if err := p.holds.load(ctx); err != nil {
		return err
	}

	fetchCtx, stopFetch := context.WithCancel(ctx)
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	p.stopFetch, p.stopWork = stopFetch, stopWork
	// Slots: each lane may hold a few results queued behind the one it
	// pushes; more would only wait (and keep their InProgress beats busy).
	slots := p.cfg.Concurrency * 8
	ccfg := OdooConsumerConfig(p.subjects, p.cfg)
	reopen := func(ctx context.Context) (jetstream.Consumer, error) {
		return p.js.CreateOrUpdateConsumer(ctx, p.subjects.StreamResults(), ccfg)
	}
	p.fetcher = consume.NewFetcher(p.cons, reopen, slots, p.cfg.AckWait/3, p.log,
		jetstream.PullMaxMessages(max(2, p.cfg.Concurrency)), jetstream.PullPriorityGroup(odooPriorityGroup))
	p.lanes = make([]chan *pushItem, p.cfg.Concurrency)
	for i := range p.lanes {
		p.lanes[i] = make(chan *pushItem, slots)
		p.lanesDone.Add(1)
		go p.runLane(workCtx, p.lanes[i])
	}
	p.fetchDone = make(chan struct{})
	go func() {
		defer close(p.fetchDone)
		p.fetch(fetchCtx, workCtx)
	}()
	p.log.Info().Int("lanes", p.cfg.Concurrency).Str("model", p.cfg.Model).Str("method", p.cfg.Method).
		Msg("pushing order results to Odoo")
	return nil
}

// Ready reports a pull that has not worked for a while (/readyz).
func (p *OdooPusher) Ready() error {
	if p.fetcher == nil {
		return nil
	}
	return p.fetcher.Status().NotConsumingFor(streams.OdooConsumer, notConsumingGrace)
}

// Stop stops fetching, lets the pushes in flight and queued finish for up
// to SoftStop, cancels the rest (naked for immediate redelivery), and
// unpins the consumer so that a standby process takes over at once. It may
// be called more than once.
func (p *OdooPusher) Stop() {
	if p.stopFetch == nil {
		return
	}
	p.stopOnce.Do(p.stop)
}

func (p *OdooPusher) stop() {
	p.stopFetch()
	<-p.fetchDone
	for _, l := range p.lanes {
		close(l)
	}
	done := make(chan struct{})
	go func() { p.lanesDone.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(p.cfg.SoftStop):
		p.log.Warn().Msg("pushes in flight did not finish in time; cancelling them")
		p.stopWork()
		<-done
	}
	p.stopWork()
	p.unpin()
}

// unpin hands the consumer to a standby process at once instead of after
// PinnedTTL. It runs once nothing is in flight here any more, so two
// processes never push at the same time, and only when the server still
// has this process pinned, so a stopping standby does not disturb the
// active one.
func (p *OdooPusher) unpin() {
	pin, _ := p.pinID.Load().(string)
	if pin == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := p.cons.Info(ctx)
	if err != nil {
		return
	}
	for _, g := range info.PriorityGroups {
		if g.Group != odooPriorityGroup || g.PinnedClientID != pin {
			continue
		}
		if s, err := p.js.Stream(ctx, p.subjects.StreamResults()); err == nil {
			if err := s.UnpinConsumer(ctx, streams.OdooConsumer, odooPriorityGroup); err != nil {
				p.log.Debug().Err(err).Msg("unpin consumer")
			}
		}
	}
}

// fetch pulls results while a slot is free, with the consumer's priority
// group, and routes each to its lane.
func (p *OdooPusher) fetch(ctx, workCtx context.Context) {
	var last time.Time
	p.fetcher.Run(ctx, workCtx, func(msg jetstream.Msg) {
		// After a silence as long as PinnedTTL another process may have
		// held the pin and changed the holds: read them again before
		// routing anything.
		now := time.Now()
		if now.Sub(last) >= p.cfg.PinnedTTL {
			if err := p.holds.load(ctx); err != nil {
				p.log.Warn().Err(err).Msg("reload holds; using the ones in memory")
			}
		}
		last = now
		p.route(msg)
	})
}

// route reads the order ids of a result and queues it on its key's lane.
func (p *OdooPusher) route(msg jetstream.Msg) {
	it := &pushItem{msg: msg, deliver: 1}
	if md, err := msg.Metadata(); err == nil {
		it.seq, it.deliver = md.Sequence.Stream, md.NumDelivered
	}
	if pin := msg.Headers().Get(pinHeader); pin != "" {
		p.pinID.Store(pin)
	}
	var r struct {
		EventID         string `json:"event_id"`
		OrderID         string `json:"order_id"`
		OriginalOrderID string `json:"original_order_id"`
	}
	if err := json.Unmarshal(msg.Data(), &r); err != nil {
		it.bad = fmt.Errorf("result is not JSON: %w", err)
	} else if r.OrderID == "" {
		it.bad = errors.New("result has no order_id")
	}
	it.eventID, it.orderID = r.EventID, r.OrderID
	it.key = r.OrderID
	if r.OriginalOrderID != "" {
		it.key = r.OriginalOrderID
	}
	p.lanes[laneOf(it.key, len(p.lanes))] <- it
}

func (p *OdooPusher) runLane(ctx context.Context, q chan *pushItem) {
	defer p.lanesDone.Done()
	for it := range q {
		if ctx.Err() != nil { // cancelled at stop: hand it back at once
			p.settle(it, "released", it.msg.Nak())
			continue
		}
		p.handle(ctx, it)
	}
}

// handle pushes one result and settles it.
func (p *OdooPusher) handle(ctx context.Context, it *pushItem) {
	ctx = p.startPushSpan(ctx, it)
	if it.bad != nil {
		p.deadLetter(ctx, it, events.DLQInvalidEvent, it.bad.Error())
		return
	}
	if p.cfg.Skip != nil {
		skip, err := p.cfg.Skip(ctx, it.orderID)
		switch {
		case err != nil:
			delay := p.nakDelay(it.deliver, odoo.RetryAfter(err))
			p.warnItem(it).Err(err).Dur("delay", delay).Msg("the order's mode (live or shadow) is not known; retrying later")
			p.settle(it, "retried", it.msg.NakWithDelay(delay))
			return
		case skip:
			p.settle(it, "shadowed", it.msg.Ack())
			return
		}
	}
	if wait, held := p.holds.wait(ctx, it.key, it.seq, time.Now()); held {
		p.logItem(it).Dur("delay", wait).Msg("an earlier result of this order waits for a retry; holding this one")
		p.settle(it, "held", it.msg.NakWithDelay(wait))
		return
	}
	err := p.pushWithRetries(ctx, it)
	switch {
	case err == nil:
		p.holds.done(ctx, it.key, it.seq)
		ackErr := it.msg.DoubleAck(ctx)
		if ackErr != nil {
			// Odoo has it; the redelivery pushes it again, which the Odoo
			// method must tolerate (see docs/ODOO.md).
			p.logItem(it).Err(ackErr).Msg("ack failed after Odoo accepted the result")
		}
		p.settle(it, "delivered", nil)
	case ctx.Err() != nil:
		p.settle(it, "released", it.msg.Nak())
	case odoo.IsPermanent(err):
		p.deadLetter(ctx, it, events.DLQOdooRejected, odooResponse(err))
	case it.deliver >= uint64(p.cfg.MaxDeliver):
		p.deadLetter(ctx, it, events.DLQProcessingFailed,
			fmt.Sprintf("Odoo push failed %d deliveries in a row; last: %s", it.deliver, odooResponse(err)))
	default:
		delay := p.nakDelay(it.deliver, odoo.RetryAfter(err))
		p.holds.fail(ctx, it.key, it.seq, time.Now().Add(delay))
		p.warnItem(it).Err(err).Str("reason", odoo.FailureReason(err)).Dur("delay", delay).Msg("Odoo push failed; retrying later")
		p.settle(it, "retried", it.msg.NakWithDelay(delay))
	}
}

// pushWithRetries calls Odoo up to Attempts times while the failure is
// retryable and short. Past that, it asks whether Odoo answers at all
// (odooHealth, probe): while it does not, the result waits in place and is
// pushed again — after a capped backoff, or at once when any push or probe
// succeeds; when Odoo answers, the failure is this result's and is
// returned (NakWithDelay, deliveries counted).
func (p *OdooPusher) pushWithRetries(ctx context.Context, it *pushItem) error {
	var err error
	waited := false // this result waited for Odoo to answer
	for attempt := 1; ; attempt++ {
		start := time.Now()
		err = p.push(ctx, it)
		tracing.Observe(ctx, p.metrics.OdooSeconds, time.Since(start).Seconds())
		if err == nil {
			p.health.succeeded()
			return nil
		}
		if ctx.Err() == nil {
			p.metrics.OdooFailures.WithLabelValues("push", odoo.FailureReason(err)).Inc()
		}
		if !odoo.IsRetryable(err) {
			return err
		}
		recovered := p.health.failed()
		ra := odoo.RetryAfter(err)
		if ra > 5*time.Second { // a long wait is the server's job (NakWithDelay)
			return err
		}
		down := false
		if attempt >= p.cfg.Attempts {
			perr := p.probe(ctx)
			switch {
			case perr == nil && waited:
				// Odoo is back: the failure may be from before; a fresh
				// round of attempts decides.
				waited, attempt = false, 0
				continue
			case perr == nil:
				return err // Odoo answers: the failure is this result's
			case ctx.Err() != nil:
				return ctx.Err()
			}
			down, waited = true, true
		}
		backoff := min(p.cfg.RetryBase<<min(attempt-1, 16), p.cfg.InPlaceMax)
		backoff = time.Duration(rand.Int64N(int64(backoff) + 1)) // full jitter
		if ra > 0 {
			backoff = ra
		}
		ev := p.logItem(it)
		if down {
			ev = p.warnItem(it)
		}
		ev.Err(err).Int("attempt", attempt).Dur("backoff", backoff).Bool("odoo_down", down).Msg("Odoo push failed; trying again")
		select {
		case <-time.After(backoff):
		case <-recovered:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// probe asks Odoo a question that needs its database and this user's
// access but no addon code: nil when Odoo answers.
func (p *OdooPusher) probe(ctx context.Context) error {
	_, err := p.client.ExecuteKW(ctx, p.cfg.Model, "search_count", []any{[]any{[]any{"id", "=", 0}}}, map[string]any{})
	if err == nil {
		p.health.succeeded()
	}
	return err
}

// push makes the execute_kw call. The order id goes as an integer when it
// is one (Odoo record ids are), the result as the JSON object it is.
func (p *OdooPusher) push(ctx context.Context, it *pushItem) error {
	var id any = it.orderID
	if n, err := strconv.ParseInt(it.orderID, 10, 64); err == nil {
		id = n
	}
	_, err := p.client.ExecuteKW(ctx, p.cfg.Model, p.cfg.Method,
		[]any{[]any{id}, json.RawMessage(it.msg.Data())}, map[string]any{})
	return err
}

// nakDelay doubles from NakBase per delivery up to NakMax, ±20 % jitter,
// and is at least what Odoo asked with Retry-After.
func (p *OdooPusher) nakDelay(delivery uint64, retryAfter time.Duration) time.Duration {
	d := p.cfg.NakBase
	for i := uint64(1); i < delivery && d < p.cfg.NakMax; i++ {
		d *= 2
	}
	d = min(d, p.cfg.NakMax)
	d = time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
	return min(max(d, retryAfter), p.cfg.NakMax)
}

// deadLetter sends the result to promo.dlq.odoo and terminates it; if the
// dead letter cannot be stored, the result is naked and tried again.
func (p *OdooPusher) deadLetter(ctx context.Context, it *pushItem, code, message string) {
	l := consume.LetterFromMsg(it.msg, code, message)
	l.DLQSubject = p.subjects.DLQOdoo()
	if l.Header.Get(pinHeader) != "" { // a delivery detail, not part of the result
		h := nats.Header{}
		for k, v := range l.Header {
			h[k] = v
		}
		h.Del(pinHeader)
		l.Header = h
	}
	if err := p.dl.Send(context.WithoutCancel(ctx), l); err != nil {
		p.logItem(it).Err(err).Msg("dead letter not stored; retrying the result later")
		p.holds.fail(ctx, it.key, it.seq, time.Now().Add(p.cfg.NakBase))
		p.settle(it, "retried", it.msg.NakWithDelay(p.cfg.NakBase))
		return
	}
	p.holds.done(ctx, it.key, it.seq)
	p.metrics.DeadLetters.WithLabelValues(code).Inc()
	p.warnItem(it).Str("code", code).Str("reason", message).Msg("result dead-lettered")
	p.settle(it, "dead_lettered", it.msg.Term())
}

// settle counts the outcome and frees the result's slot.
func (p *OdooPusher) settle(it *pushItem, outcome string, err error) {
	if err != nil {
		p.logItem(it).Err(err).Str("outcome", outcome).Msg("settling the result with JetStream failed; it will be redelivered")
	}
	p.metrics.OdooPushes.WithLabelValues(outcome).Inc()
	p.logItem(it).Str("outcome", outcome).Msg("result settled")
	it.endPushSpan(outcome, err)
	p.fetcher.Release(it.msg)
}

func (p *OdooPusher) logItem(it *pushItem) *zerolog.Event {
	return p.itemFields(p.log.Debug(), it)
}

// warnItem is for failures: an operator must see them without debug logs.
func (p *OdooPusher) warnItem(it *pushItem) *zerolog.Event { return p.itemFields(p.log.Warn(), it) }

func (p *OdooPusher) itemFields(e *zerolog.Event, it *pushItem) *zerolog.Event {
	if it.span != nil {
		e = e.Ctx(trace.ContextWithSpan(context.Background(), it.span))
	}
	return e.Str("event_id", it.eventID).Str("order_id", it.orderID).Uint64("stream_seq", it.seq).Uint64("delivery", it.deliver)
}

// odooResponse is what a dead letter says: Odoo's JSON-RPC error with the
// short fields first (the traceback last, since the header is truncated),
// or the error text for a failure without an Odoo answer.
func odooResponse(err error) string {
	var oe *odoo.Error
	if !errors.As(err, &oe) {
		return err.Error()
	}
	var raw struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Data    struct {
			Name      string          `json:"name"`
			Message   string          `json:"message"`
			Arguments json.RawMessage `json:"arguments,omitempty"`
			Debug     string          `json:"debug,omitempty"`
		} `json:"data"`
	}
	if json.Unmarshal(oe.Raw, &raw) != nil {
		return err.Error()
	}
	b, mErr := json.Marshal(raw)
	if mErr != nil {
		return err.Error()
	}
	return string(b)
}

// orderHolds remembers, per order key, the stream sequences of results
// that were naked to wait: the first failed a push and waits for its retry,
// the others came after it and wait for it. Only the lowest may be pushed.
//
// The key-value bucket is the truth and the map its copy: every change is
// written through while the lock is held, so a reload (after another
// process may have held the pin) never reads a bucket older than the map.
// Writes happen only when something waits, so the lock is not contended
// while Odoo answers.
type orderHolds struct {
	kv  jetstream.KeyValue
	log zerolog.Logger
	mu  sync.Mutex
	m   map[string]*orderHold
}

type orderHold struct {
	Seqs []uint64  `json:"seqs"` // ascending
	Due  time.Time `json:"due"`  // when the lowest is expected back
}

// holdStagger spaces the redeliveries of the results waiting behind a hold
// so that they come back in stream order.
const holdStagger = 500 * time.Millisecond

// staleHold: a hold whose lowest result has not come back this long after
// it was due has lost it (deleted from the stream); it is dropped rather
// than blocking the order for good.
const staleHold = time.Hour

func newOrderHolds(kv jetstream.KeyValue, log zerolog.Logger) *orderHolds {
	return &orderHolds{kv: kv, log: log, m: map[string]*orderHold{}}
}

func holdKey(key string) string { return base64.RawURLEncoding.EncodeToString([]byte(key)) }

// load reads the holds as stored (left by an earlier process, or by
// another one that held the pin meanwhile), replacing those in memory.
func (h *orderHolds) load(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	keys, err := h.kv.Keys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return fmt.Errorf("odoo pusher: load holds: %w", err)
	}
	m := make(map[string]*orderHold, len(keys))
	for _, k := range keys {
		e, err := h.kv.Get(ctx, k)
		if err != nil {
			continue // deleted meanwhile
		}
		key, err := base64.RawURLEncoding.DecodeString(k)
		var hold orderHold
		if err != nil || json.Unmarshal(e.Value(), &hold) != nil || len(hold.Seqs) == 0 {
			continue
		}
		m[string(key)] = &hold
	}
	h.m = m
	if len(m) > 0 {
		h.log.Info().Int("orders", len(m)).Msg("orders with results waiting for a retry")
	}
	return nil
}

// wait reports whether seq must wait behind an earlier result of key, and
// for how long; a waiting seq joins the hold.
func (h *orderHolds) wait(ctx context.Context, key string, seq uint64, now time.Time) (time.Duration, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hold := h.m[key]
	if hold == nil {
		return 0, false
	}
	if now.Sub(hold.Due) > staleHold {
		h.log.Warn().Str("order_id", key).Uint64("stream_seq", hold.Seqs[0]).
			Msg("a held result never came back; releasing its order")
		hold.Seqs = hold.Seqs[1:]
		hold.Due = now
		h.store(ctx, key, hold)
		if len(hold.Seqs) == 0 {
			return 0, false
		}
	}
	if hold.Seqs[0] >= seq {
		return 0, false
	}
	i, found := slices.BinarySearch(hold.Seqs, seq)
	if !found {
		hold.Seqs = slices.Insert(hold.Seqs, i, seq)
		h.store(ctx, key, hold)
	}
	return max(hold.Due.Sub(now), 0) + time.Duration(i)*holdStagger, true
}

// fail records that seq (the lowest of its key, or older than all held)
// waits for a retry due at due.
func (h *orderHolds) fail(ctx context.Context, key string, seq uint64, due time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hold := h.m[key]
	if hold == nil {
		hold = &orderHold{}
	}
	if i, found := slices.BinarySearch(hold.Seqs, seq); !found {
		hold.Seqs = slices.Insert(hold.Seqs, i, seq)
	}
	if hold.Seqs[0] == seq {
		hold.Due = due
	}
	h.store(ctx, key, hold)
}

// done removes seq once it went through (pushed or dead-lettered). It
// costs nothing for a result that never waited.
func (h *orderHolds) done(ctx context.Context, key string, seq uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hold := h.m[key]
	if hold == nil {
		return
	}
	i, found := slices.BinarySearch(hold.Seqs, seq)
	if !found {
		return
	}
	hold.Seqs = slices.Delete(hold.Seqs, i, i+1)
	h.store(ctx, key, hold)
}

// store puts a key's hold in the map and the bucket, or removes it from
// both when nothing waits any more; the caller holds the lock. A failed
// write is logged: the hold still works in memory, and only a restart
// before the next write would forget it.
func (h *orderHolds) store(ctx context.Context, key string, hold *orderHold) {
	ctx = context.WithoutCancel(ctx)
	var err error
	if len(hold.Seqs) == 0 {
		delete(h.m, key)
		err = h.kv.Delete(ctx, holdKey(key))
	} else {
		h.m[key] = hold
		var b []byte
		if b, err = json.Marshal(hold); err == nil {
			_, err = h.kv.Put(ctx, holdKey(key), b)
		}
	}
	if err != nil {
		h.log.Warn().Err(err).Str("order_id", key).Msg("could not store the order's hold")
	}
}
