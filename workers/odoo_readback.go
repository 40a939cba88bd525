package workers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/promoengine/promoengine/internal/consume"
	"github.com/promoengine/promoengine/internal/metrics"
	"github.com/promoengine/promoengine/internal/odoo"
	"github.com/promoengine/promoengine/internal/streams"
	"github.com/promoengine/promoengine/internal/tracing"
	"github.com/promoengine/promoengine/pkg/events"
)

// PublishEventFunc publishes one input event to POS_ORDERS (the engine
// passes internal/ops Operator.PublishEvent, the one place where input
// subjects are chosen); msgID "" means the event id.
type PublishEventFunc func(ctx context.Context, ev *events.Event, data []byte, msgID string) (*jetstream.PubAck, error)

// OdooReadbackConfig tunes the read-back worker. Zero values take the
// defaults noted on each field.
type OdooReadbackConfig struct {
	// Concurrency is the number of orders read back at once. Default 4.
	Concurrency int
	// MaxWait is how long after an order was recorded the worker keeps
	// waiting for Odoo to show it (as final, when the webhook said so)
	// before dead-lettering it as odoo_order_unavailable: an order whose
	// transaction was rolled back never appears. Default 1 h.
	MaxWait time.Duration
	// MaxOutage is how long failures to reach Odoo (network, HTTP 5xx,
	// refused login, error answers) are retried before the order is
	// dead-lettered as odoo_order_unavailable. Default 24 h; the reconciler
	// finds such an order again once Odoo is back anyway.
	MaxOutage time.Duration
	// RetryBase is the first redelivery delay; it doubles per delivery up
	// to RetryMax. Defaults 500 ms and 1 min: a POS syncing many orders in
	// one transaction commits within seconds, an outage takes minutes.
	RetryBase, RetryMax time.Duration
	// WarnAfter is how long after an order was recorded a failed read-back
	// is logged at warn rather than debug: the first read-backs of a
	// webhook sent from inside Odoo's transaction fail by design. Default
	// 30 s.
	WarnAfter time.Duration
	// AckWait is the consumer's ack wait. Default 2 min.
	AckWait time.Duration
	// CallTimeout bounds one read-back (a handful of JSON-RPC calls).
	// Default 90 s.
	CallTimeout time.Duration
	// SoftStop is how long Stop lets read-backs in flight finish. Default
	// 10 s.
	SoftStop time.Duration
}

func (c *OdooReadbackConfig) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Concurrency < 1 {
		c.Concurrency = 4
	}
	def(&c.MaxWait, time.Hour)
	def(&c.MaxOutage, 24*time.Hour)
	def(&c.RetryBase, 500*time.Millisecond)
	def(&c.RetryMax, time.Minute)
	def(&c.WarnAfter, 30*time.Second)
	def(&c.AckWait, 2*time.Minute)
	def(&c.CallTimeout, 90*time.Second)
	def(&c.SoftStop, 10*time.Second)
}

// OdooReadback turns recorded Odoo order ids (PROMO_ODOO_ORDERS, written by
// the webhook, the reconciler and `odoo sync`) into input events: it reads
// each order back from Odoo with JSON-RPC (odoo.POSOrderEvents) and
// publishes its events with Nats-Msg-Id = event_id.
//
// Outcomes of one read-back, decided in one switch (handle):
//
//	events published (or duplicates)       → Ack
//	order final but nothing to send,       → Ack (ignored)
//	  or not final and the webhook made
//	  no claim
//	not visible yet, or not final while    → NakWithDelay (doubling from
//	  the webhook said it is                  RetryBase to RetryMax); after
//	                                          MaxWait: dead letter
//	                                          odoo_order_unavailable
//	Odoo unreachable or failing            → NakWithDelay; after MaxOutage:
//	                                          dead letter odoo_order_unavailable
//	the order makes no valid event         → dead letter invalid_event
//	company or POS config outside the      → dead letter forbidden_store
//	  recording credential's scope
//	stopping                               → Nak: read back again at once
//
// The dead letters keep the recorded reference: `promoengine dlq redrive`
// records it again, which reads the order back afresh.
type OdooReadback struct {
	cfg      OdooReadbackConfig
	client   *odoo.Client
	js       jetstream.JetStream
	subjects events.Subjects
	publish  PublishEventFunc
	dl       *consume.DeadLetterer
	metrics  *metrics.Metrics
	log      zerolog.Logger
	now      func() time.Time

	fetch *fetchPool
}

// NewOdooReadback assembles the worker; call Start.
func NewOdooReadback(cfg OdooReadbackConfig, client *odoo.Client, js jetstream.JetStream, subjects events.Subjects,
	publish PublishEventFunc, dl *consume.DeadLetterer, m *metrics.Metrics, log zerolog.Logger) *OdooReadback {
	cfg.defaults()
	return &OdooReadback{cfg: cfg, client: client, js: js, subjects: subjects, publish: publish, dl: dl, metrics: m,
		log: log.With().Str("worker", "odoo_readback").Logger(), now: time.Now}
}

// Start ensures the stream and the consumer and starts reading back.
func (w *OdooReadback) Start(ctx context.Context) error {
	if err := streams.EnsureOdoo(ctx, w.js, w.subjects, streams.DefaultOptions()); err != nil {
		return err
	}
	cons, err := w.js.CreateOrUpdateConsumer(ctx, w.subjects.StreamOdooOrders(),
		streams.OdooReadbackConsumerConfig(w.subjects, w.cfg.AckWait, w.cfg.Concurrency*64))
	if err != nil {
		return fmt.Errorf("odoo read-back: consumer: %w", err)
	}
	ccfg := streams.OdooReadbackConsumerConfig(w.subjects, w.cfg.AckWait, w.cfg.Concurrency*64)
	reopen := func(ctx context.Context) (jetstream.Consumer, error) {
		return w.js.CreateOrUpdateConsumer(ctx, w.subjects.StreamOdooOrders(), ccfg)
	}
	w.fetch = startFetchPool(ctx, cons, fetchPoolConfig{Reopen: reopen, Slots: w.cfg.Concurrency, AckWait: w.cfg.AckWait,
		SoftStop: w.cfg.SoftStop, What: "odoo read-back"}, w.log, w.handle)
	return nil
}

// Ready reports a pull that has not worked for a while (/readyz).
func (w *OdooReadback) Ready() error { return w.fetch.Ready() }

// Stop stops fetching, lets read-backs in flight finish for SoftStop, then
// cancels them (their orders are naked and read back again at once by
// another process). Safe to call more than once.
func (w *OdooReadback) Stop() { w.fetch.Stop() }

// handle reads one recorded order back and settles its message.
func (w *OdooReadback) handle(ctx context.Context, msg jetstream.Msg) {
	// The webhook's trace goes on: the read-back call to Odoo and the
	// publish of the order's events are under this span.
	ctx, span := tracing.StartConsume(ctx, "read back Odoo order", w.subjects.OdooOrders(), msg.Headers())
	defer span.End()
	var delivery uint64 = 1
	recorded := w.now()
	if md, err := msg.Metadata(); err == nil {
		// The time the reference was stored — by the webhook, or anew by
		// a redrive — starts the read-back's bounds.
		delivery, recorded = md.NumDelivered, md.Timestamp
	}
	ref, err := odoo.DecodeOrderRef(msg.Data())
	if err != nil {
		w.deadLetter(ctx, msg, ref, events.DLQInvalidEvent, err.Error())
		return
	}
	log := w.log.With().Int64("order_id", ref.OrderID).Str("source", ref.Source).Uint64("delivery", delivery).Logger()
	if ref.DB != w.client.DB() {
		w.deadLetter(ctx, msg, ref, events.DLQInvalidEvent,
			fmt.Sprintf("order recorded for Odoo database %q; this engine reads %q (PROMO_ODOO_DB)", ref.DB, w.client.DB()))
		return
	}
	age := w.now().Sub(recorded)
	rctx, cancel := context.WithTimeout(ctx, w.cfg.CallTimeout)
	o, err := odoo.POSOrderEvents(rctx, w.client, ref.DB, ref.OrderID)
	cancel()
	var inv *events.InvalidError
	notYet := errors.Is(err, odoo.ErrOrderNotFound) || (err == nil && !o.Publishable() && ref.State != "")
	switch {
	case ctx.Err() != nil: // stopping
		w.settle(msg, "released", msg.Nak())
	case notYet:
		reason := "not_found"
		if err == nil {
			reason = "not_final"
		}
		w.metrics.OdooFailures.WithLabelValues("readback", reason).Inc()
		if age >= w.cfg.MaxWait {
			what := "the order"
			if err == nil {
				what = "the order as final (paid, done, invoiced)"
			}
			w.deadLetter(ctx, msg, ref, events.DLQOdooOrderUnavailable, fmt.Sprintf(
				"pos.order %d was recorded %s ago and Odoo still does not show %s to the API user: its transaction may have been rolled back, or the user may not see its company",
				ref.OrderID, age.Round(time.Second), what))
			return
		}
		w.retry(msg, log, delivery, age, reason, err)
	case err != nil && (odoo.Unreachable(err) || errors.Is(err, context.DeadlineExceeded)) && !errors.As(err, &inv):
		reason := odoo.FailureReason(err)
		w.metrics.OdooFailures.WithLabelValues("readback", reason).Inc()
		if age >= w.cfg.MaxOutage {
			w.deadLetter(ctx, msg, ref, events.DLQOdooOrderUnavailable, fmt.Sprintf(
				"reading pos.order %d back from Odoo failed for %s: %v", ref.OrderID, age.Round(time.Second), err))
			return
		}
		w.retry(msg, log, delivery, age, reason, err)
	case err != nil:
		// Odoo answered with data that makes no event (no currency, more
		// than 1,000 lines…): reading it again as it is will not help.
		w.metrics.OdooFailures.WithLabelValues("readback", "invalid").Inc()
		w.deadLetter(ctx, msg, ref, events.DLQInvalidEvent, fmt.Sprintf("pos.order %d does not make a valid event: %v", ref.OrderID, err))
	case !o.Publishable():
		log.Info().Str("state", o.State).Msg("Odoo order is not final; nothing to publish")
		w.settle(msg, "ignored", msg.Ack())
	case !ref.Scope.Allows(o.CompanyID, o.POSConfigID):
		w.deadLetter(ctx, msg, ref, events.DLQForbiddenStore, fmt.Sprintf(
			"pos.order %d belongs to company %s, POS config %s, outside the scope of the credential that recorded it",
			ref.OrderID, o.CompanyID, o.POSConfigID))
	case len(o.Events) == 0:
		log.Info().Interface("skipped", o.Skipped).Msg("no line of the Odoo order is goods sold or given back; nothing to publish")
		w.settle(msg, "ignored", msg.Ack())
	default:
		w.publishAll(ctx, msg, log, o)
	}
}

// publishAll publishes the order's events; a publish JetStream did not
// acknowledge is retried soon (the events already stored are duplicates
// then).
func (w *OdooReadback) publishAll(ctx context.Context, msg jetstream.Msg, log zerolog.Logger, o *odoo.POSOrder) {
	duplicate := true
	for _, e := range o.Events {
		ack, err := w.publish(ctx, e.Event, e.Data, "")
		if err != nil {
			log.Warn().Err(err).Str("event_id", e.Event.EventID).Msg("publishing an Odoo order's event failed; retrying")
			w.settle(msg, "retried", msg.NakWithDelay(w.cfg.RetryBase))
			return
		}
		duplicate = duplicate && ack.Duplicate
		log.Debug().Str("event_id", e.Event.EventID).Uint64("stream_seq", ack.Sequence).Bool("duplicate", ack.Duplicate).
			Msg("Odoo order event published")
	}
	if len(o.Skipped) > 0 {
		log.Info().Interface("skipped", o.Skipped).Msg("order lines not sent to the engine")
	}
	outcome := "published"
	if duplicate {
		outcome = "duplicate"
	}
	w.settle(msg, outcome, msg.DoubleAck(ctx))
}

// retry hands the order back to JetStream to be read again later.
func (w *OdooReadback) retry(msg jetstream.Msg, log zerolog.Logger, delivery uint64, age time.Duration, reason string, err error) {
	delay := w.cfg.RetryBase
	for i := uint64(1); i < delivery && delay < w.cfg.RetryMax; i++ {
		delay *= 2
	}
	delay = min(delay, w.cfg.RetryMax)
	ev := log.Debug()
	if age >= w.cfg.WarnAfter {
		ev = log.Warn()
	}
	ev = ev.Str("reason", reason).Dur("recorded_ago", age.Round(time.Millisecond)).Dur("delay", delay)
	if err != nil {
		ev = ev.Err(err)
	}
	ev.Msg("Odoo order not read back yet; trying again later")
	w.settle(msg, "waiting", msg.NakWithDelay(delay))
}

// deadLetter moves the recorded reference to promo.dlq.<subject> with the
// reason and terminates it; if the dead letter cannot be stored, the
// message is naked and tried again.
func (w *OdooReadback) deadLetter(ctx context.Context, msg jetstream.Msg, ref odoo.OrderRef, code, reason string) {
	if err := w.dl.Send(context.WithoutCancel(ctx), consume.LetterFromMsg(msg, code, reason)); err != nil {
		w.log.Error().Err(err).Int64("order_id", ref.OrderID).Msg("dead letter not stored; retrying the order later")
		w.settle(msg, "retried", msg.NakWithDelay(w.cfg.RetryMax))
		return
	}
	w.metrics.DeadLetters.WithLabelValues(code).Inc()
	w.log.Warn().Int64("order_id", ref.OrderID).Str("code", code).Str("reason", reason).Msg("Odoo order dead-lettered")
	w.settle(msg, "dead_lettered", msg.Term())
}

func (w *OdooReadback) settle(msg jetstream.Msg, outcome string, err error) {
	if err != nil {
		w.log.Warn().Err(err).Str("outcome", outcome).Msg("settling a recorded order with JetStream failed; it will be redelivered")
	}
	w.metrics.OdooReadbacks.WithLabelValues(outcome).Inc()
}
