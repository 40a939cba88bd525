package workers

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/internal/metrics"
	"github.com/promoengine/promoengine/internal/odoo"
	"github.com/promoengine/promoengine/internal/odoo/loyalty"
	"github.com/promoengine/promoengine/internal/shadow"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/pkg/rules"
)

// OdooShadowConsumer is the shadow worker's durable consumer on
// PROMO_RESULTS.
const OdooShadowConsumer = "promo-odoo-shadow"

// OdooShadowConfig tunes the shadow worker. Zero values take the defaults
// noted on each field.
type OdooShadowConfig struct {
	// Modes says which orders are in shadow; results of live orders are
	// left to the pusher.
	Modes config.Modes
	// Settle is how long after a result was produced it is compared: the
	// POS confirms its loyalty (confirm_coupon_programs) in a call after
	// the order's, so Odoo's side is complete a moment later. Default 1 min.
	Settle time.Duration
	// PointsProgram is the Odoo loyalty program the catalog's points
	// stand for (0: the one each order shows).
	PointsProgram int64
	// Concurrency is the comparisons in flight (each a few JSON-RPC reads).
	// Default 4.
	Concurrency int
	// MaxWait is how long an order Odoo does not show (or cannot be read)
	// is retried before it is stored as not compared. Default 1 h.
	MaxWait time.Duration
	// RetryBase and RetryMax bound the delay between tries. Defaults 5 s
	// and 5 min.
	RetryBase, RetryMax time.Duration
	// AckWait of the consumer; CallTimeout of one comparison's reads;
	// SoftStop of Stop. Defaults 2 min, 90 s, 10 s.
	AckWait, CallTimeout, SoftStop time.Duration
}

func (c *OdooShadowConfig) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Concurrency < 1 {
		c.Concurrency = 4
	}
	if c.Modes.Default == "" {
		c.Modes.Default = config.ModeShadow
	}
	if c.Settle < 0 {
		c.Settle = 0
	}
	def(&c.MaxWait, time.Hour)
	def(&c.RetryBase, 5*time.Second)
	def(&c.RetryMax, 5*time.Minute)
	def(&c.AckWait, 2*time.Minute)
	def(&c.CallTimeout, 90*time.Second)
	def(&c.SoftStop, 10*time.Second)
}

// OdooShadow compares the engine's order results with what Odoo's own
// loyalty gave the same orders, while the engine runs in shadow
// (docs/MIGRATION.md): nothing is pushed to Odoo; each comparison is
// stored (shadow_comparisons, read by `promoengine shadow report`) and
// counted in promo_shadow_comparisons_total by program and outcome.
//
// Outcomes of one result, decided in handle:
//
//	produced less than Settle ago        → NakWithDelay until then
//	not the result of an Odoo order       → Ack (not compared)
//	order in a live company or POS config → Ack (the pusher pushes it)
//	compared (or a return, not compared)  → stored, then Ack
//	Odoo does not show the order, or      → NakWithDelay, doubling; after
//	  cannot be reached                      MaxWait stored as not compared
//	stopping                              → Nak
type OdooShadow struct {
	cfg      OdooShadowConfig
	client   *odoo.Client
	reader   *loyalty.OrderReader
	js       jetstream.JetStream
	subjects events.Subjects
	pool     *pgxpool.Pool
	metrics  *metrics.Metrics
	log      zerolog.Logger
	now      func() time.Time

	catMu    sync.Mutex
	catalogs map[int64]*rules.Catalog

	fetch *fetchPool
}

// NewOdooShadow assembles the worker; call Start.
func NewOdooShadow(cfg OdooShadowConfig, client *odoo.Client, js jetstream.JetStream, subjects events.Subjects,
	pool *pgxpool.Pool, m *metrics.Metrics, log zerolog.Logger) *OdooShadow {
	cfg.defaults()
	return &OdooShadow{cfg: cfg, client: client, reader: loyalty.NewOrderReader(client), js: js, subjects: subjects,
		pool: pool, metrics: m, log: log.With().Str("worker", "odoo_shadow").Logger(), now: time.Now,
		catalogs: map[int64]*rules.Catalog{}}
}

// OdooShadowConsumerConfig is the worker's durable consumer: the order
// results produced from its creation on (DeliverNew: a shadow started on
// an engine that ran live must not compare the live period, when Odoo's
// loyalty was off), acknowledged once compared. The engine deletes it when
// nothing is in shadow any more, so that a later shadow starts afresh.
func OdooShadowConsumerConfig(s events.Subjects, cfg OdooShadowConfig) jetstream.ConsumerConfig {
	cfg.defaults()
	return jetstream.ConsumerConfig{
		Durable:       OdooShadowConsumer,
		Description:   "promoengine shadow comparison with Odoo's loyalty (docs/MIGRATION.md)",
		FilterSubject: s.ResultsOrder(),
		DeliverPolicy: jetstream.DeliverNewPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: cfg.Concurrency * 256,
	}
}

// Start ensures the consumer and starts comparing.
func (w *OdooShadow) Start(ctx context.Context) error {
	cons, err := w.js.CreateOrUpdateConsumer(ctx, w.subjects.StreamResults(), OdooShadowConsumerConfig(w.subjects, w.cfg))
	if err != nil {
		return fmt.Errorf("odoo shadow: consumer %s: %w", OdooShadowConsumer, err)
	}
	ccfg := OdooShadowConsumerConfig(w.subjects, w.cfg)
	reopen := func(ctx context.Context) (jetstream.Consumer, error) {
		return w.js.CreateOrUpdateConsumer(ctx, w.subjects.StreamResults(), ccfg)
	}
	w.fetch = startFetchPool(ctx, cons, fetchPoolConfig{Reopen: reopen, Slots: w.cfg.Concurrency, AckWait: w.cfg.AckWait,
		SoftStop: w.cfg.SoftStop, What: "shadow comparison"}, w.log, w.handle)
	w.log.Info().Str("default_mode", w.cfg.Modes.Default).Dur("settle", w.cfg.Settle).
		Msg("shadow mode: comparing results with Odoo's loyalty, pushing nothing to Odoo")
	return nil
}

// Stop stops fetching and lets comparisons in flight finish for SoftStop.
// Safe to call more than once.
func (w *OdooShadow) Stop() { w.fetch.Stop() }

// Ready reports a pull that has not worked for a while (/readyz).
func (w *OdooShadow) Ready() error { return w.fetch.Ready() }

func (w *OdooShadow) handle(ctx context.Context, msg jetstream.Msg) {
	var delivery uint64 = 1
	produced := w.now()
	if md, err := msg.Metadata(); err == nil {
		delivery, produced = md.NumDelivered, md.Timestamp
	}
	if wait := produced.Add(w.cfg.Settle).Sub(w.now()); wait > 0 {
		w.settle(msg, msg.NakWithDelay(wait))
		return
	}
	res, err := shadow.DecodeResult(msg.Data())
	if err != nil {
		w.log.Warn().Err(err).Msg("a result that cannot be read is not compared")
		w.count("none", "not_compared")
		w.settle(msg, msg.Term())
		return
	}
	db, orderID, ok := odoo.ParseEventID(res.CausationID)
	if !ok || db != w.client.DB() {
		w.count("none", "not_compared") // not an order of this Odoo: nothing to compare with
		w.settle(msg, msg.Ack())
		return
	}
	log := w.log.With().Str("event_id", res.CausationID).Int64("order_id", orderID).Uint64("delivery", delivery).Logger()
	_, uniform := w.cfg.Modes.Uniform()
	if res.SourceType != events.TypeOrderPaid && uniform {
		w.store(ctx, msg, log, &shadow.Comparison{EventID: res.CausationID, OrderID: res.OrderID, CustomerID: res.CustomerID,
			OccurredAt: occurred(res), CatalogVersion: res.CatalogVersion, Outcome: shadow.OutcomeNotCompared, Note: shadow.NotCompared,
			Programs: []shadow.ProgramOutcome{}, Diffs: []shadow.Diff{}})
		return
	}
	rctx, cancel := context.WithTimeout(ctx, w.cfg.CallTimeout)
	odooSide, err := w.reader.Read(rctx, orderID)
	cancel()
	switch {
	case ctx.Err() != nil:
		w.settle(msg, msg.Nak())
		return
	case err != nil:
		age := w.now().Sub(produced)
		if age < w.cfg.MaxWait && (errors.Is(err, loyalty.ErrOrderMissing) || odoo.IsRetryable(err) || odoo.Unreachable(err)) {
			delay := w.cfg.RetryBase
			for i := uint64(1); i < delivery && delay < w.cfg.RetryMax; i++ {
				delay *= 2
			}
			log.Warn().Err(err).Dur("delay", min(delay, w.cfg.RetryMax)).Msg("Odoo's side of the order not read; comparing later")
			w.settle(msg, msg.NakWithDelay(min(delay, w.cfg.RetryMax)))
			return
		}
		log.Warn().Err(err).Msg("Odoo's side of the order cannot be read; stored as not compared")
		w.store(ctx, msg, log, &shadow.Comparison{EventID: res.CausationID, OrderID: res.OrderID, CustomerID: res.CustomerID,
			OccurredAt: occurred(res), CatalogVersion: res.CatalogVersion, Outcome: shadow.OutcomeNotCompared,
			Note: "Odoo's side could not be read: " + err.Error(), Programs: []shadow.ProgramOutcome{}, Diffs: []shadow.Diff{}})
		return
	}
	if w.cfg.Modes.Of(strconv.FormatInt(odooSide.CompanyID, 10), strconv.FormatInt(odooSide.POSConfigID, 10)) != config.ModeShadow {
		w.settle(msg, msg.Ack()) // live: the pusher's
		return
	}
	cat, err := w.catalog(ctx, res.CatalogVersion)
	if err != nil {
		log.Warn().Err(err).Msg("catalog of the result not read; comparing later")
		w.settle(msg, msg.NakWithDelay(w.cfg.RetryBase))
		return
	}
	c := shadow.Compare(res, odooSide, cat, shadow.Options{PointsProgram: w.cfg.PointsProgram})
	w.store(ctx, msg, log, c)
}

func occurred(res *shadow.Result) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, res.OccurredAt)
	return t
}

// store saves a comparison, counts it and acknowledges the result.
func (w *OdooShadow) store(ctx context.Context, msg jetstream.Msg, log zerolog.Logger, c *shadow.Comparison) {
	if err := shadow.Save(ctx, w.pool, c); err != nil {
		log.Warn().Err(err).Msg("comparison not stored; comparing again later")
		w.settle(msg, msg.NakWithDelay(w.cfg.RetryBase))
		return
	}
	switch {
	case c.Outcome == shadow.OutcomeNotCompared:
		w.count("none", shadow.OutcomeNotCompared)
	case len(c.Programs) == 0:
		w.count("none", c.Outcome)
	}
	for _, p := range c.Programs {
		w.count(p.Program, p.Outcome)
	}
	ev := log.Debug()
	if c.Outcome == shadow.OutcomeMismatch {
		ev = log.Info()
		if !c.Explained() {
			ev = log.Warn()
		}
	}
	ev.Str("outcome", c.Outcome).Int("differences", len(c.Diffs)).Bool("explained", c.Explained()).
		Msg("order compared with Odoo's loyalty")
	w.settle(msg, msg.DoubleAck(ctx))
}

func (w *OdooShadow) count(program, outcome string) {
	w.metrics.ShadowComparisons.WithLabelValues(program, outcome).Inc()
}

// settle logs a failed acknowledgement (the result comes back and is
// compared again, which replaces its row).
func (w *OdooShadow) settle(_ jetstream.Msg, err error) {
	if err != nil {
		w.log.Warn().Err(err).Msg("settling a result with JetStream failed; it will be redelivered")
	}
}

// catalog returns a catalog version, read once.
func (w *OdooShadow) catalog(ctx context.Context, version int64) (*rules.Catalog, error) {
	w.catMu.Lock()
	defer w.catMu.Unlock()
	if c := w.catalogs[version]; c != nil {
		return c, nil
	}
	c, err := ledger.CatalogByVersion(ctx, w.pool, version)
	if err != nil {
		return nil, err
	}
	w.catalogs[version] = c
	return c, nil
}
