// Package metrics declares every Prometheus metric of promoengine in one
// place. The collectors are registered on an injected prometheus.Registerer
// (never the global default) so tests and embedded engines get their own.
// Names follow promo_*_total for counters and *_seconds for durations, with
// snake_case labels.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics holds the collectors.
type Metrics struct {
	Events             *prometheus.CounterVec   // type, outcome
	EventSeconds       *prometheus.HistogramVec // type
	BatchSize          prometheus.Histogram
	BatchSeconds       prometheus.Histogram
	BatchRetries       *prometheus.CounterVec // reason
	DeadLetters        *prometheus.CounterVec // code
	OutboxPublished    prometheus.Counter
	OutboxBacklog      prometheus.Gauge
	OutboxOldest       prometheus.Gauge
	ConsumerPending    *prometheus.GaugeVec // consumer
	ConsumerAckPending *prometheus.GaugeVec
	CatalogVersion     prometheus.Gauge
	OdooPushes         *prometheus.CounterVec // outcome
	OdooSeconds        prometheus.Histogram
	JobRuns            *prometheus.CounterVec // outcome
	HTTPRequests       *prometheus.CounterVec // route, code
	PartitionsOwned    prometheus.Gauge

	// The Odoo integration (workers/odoo_readback.go, odoo_reconciler.go,
	// odoo_pusher.go).
	OdooReadbacks  *prometheus.CounterVec // outcome
	OdooFailures   *prometheus.CounterVec // call, reason
	OdooReconciled *prometheus.CounterVec // outcome

	// Shadow mode (workers/odoo_shadow.go): orders compared with Odoo's own
	// loyalty, per program.
	ShadowComparisons *prometheus.CounterVec // program, outcome

	// OutboxDelay is the second half of an order's end-to-end latency (the
	// first is EventSeconds): from the transaction that wrote a result to
	// JetStream's acknowledgement of its publish (workers/relay_trace.go).
	OutboxDelay prometheus.Histogram
}

// New creates and registers the collectors on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promo_events_total",
			Help: "Input order events handled, by event type and outcome (applied, rejected, duplicate, dead_lettered, retried).",
		}, []string{"type", "outcome"}),
		EventSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "promo_event_processing_seconds",
			Help:    "Time from an event's receipt by the worker to the commit of its transaction.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"type"}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "promo_batch_size",
			Help:    "Events committed per order-worker transaction.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024},
		}),
		BatchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "promo_batch_seconds",
			Help:    "Duration of one order-worker transaction, begin to commit.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5},
		}),
		BatchRetries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promo_batch_retries_total",
			Help: "Order-worker transactions rolled back and retried, by reason.",
		}, []string{"reason"}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promo_dead_letters_total",
			Help: "Messages sent to the dead-letter stream, by error code.",
		}, []string{"code"}),
		OutboxPublished: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "promo_outbox_published_total",
			Help: "Result events published from the outbox and acknowledged by JetStream.",
		}),
		OutboxBacklog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "promo_outbox_backlog",
			Help: "Result events committed but not yet published.",
		}),
		OutboxOldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "promo_outbox_oldest_seconds",
			Help: "Age of the oldest unpublished outbox row.",
		}),
		ConsumerPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "promo_consumer_pending",
			Help: "Messages in the stream not yet delivered to the consumer.",
		}, []string{"consumer"}),
		ConsumerAckPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "promo_consumer_ack_pending",
			Help: "Messages delivered to the consumer and not yet acknowledged.",
		}, []string{"consumer"}),
		CatalogVersion: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "promo_catalog_version",
			Help: "Catalog version the order workers evaluate with.",
		}),
		OdooPushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promo_odoo_pushes_total",
			Help: "Results pushed to Odoo, by outcome (delivered, retried, dead_lettered; shadowed: a shop in shadow mode, not pushed).",
		}, []string{"outcome"}),
		OdooSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "promo_odoo_push_seconds",
			Help:    "Duration of one JSON-RPC push to Odoo.",
			Buckets: prometheus.DefBuckets,
		}),
		JobRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promo_job_runs_total",
			Help: "Expiry and downgrade job runs, by outcome.",
		}, []string{"outcome"}),
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promo_http_requests_total",
			Help: "HTTP API requests, by route and status code.",
		}, []string{"route", "code"}),
		PartitionsOwned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "promo_partitions_owned",
			Help: "Order consumers (partitions, and the keyer) this process pulls.",
		}),
	}
	reg.MustRegister(m.PartitionsOwned)
	reg.MustRegister(m.Events, m.EventSeconds, m.BatchSize, m.BatchSeconds, m.BatchRetries,
		m.DeadLetters, m.OutboxPublished, m.OutboxBacklog, m.OutboxOldest, m.ConsumerPending,
		m.ConsumerAckPending, m.CatalogVersion, m.OdooPushes, m.OdooSeconds, m.JobRuns, m.HTTPRequests)
	m.newOdoo(reg)
	m.ShadowComparisons = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "promo_shadow_comparisons_total",
		Help: "Shadow mode: programs compared with what Odoo's own loyalty gave an order, by program (odoo-<id>, none for an order neither gave anything) and outcome (match, mismatch, not_compared, error).",
	}, []string{"program", "outcome"})
	reg.MustRegister(m.ShadowComparisons)
	m.OutboxDelay = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "promo_outbox_delay_seconds",
		Help:    "Time from the transaction that wrote a result to the outbox to JetStream's acknowledgement of its publish.",
		Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5, 10},
	})
	reg.MustRegister(m.OutboxDelay)
	return m
}

func (m *Metrics) newOdoo(reg prometheus.Registerer) {
	m.OdooReadbacks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "promo_odoo_readbacks_total",
		Help: "Recorded Odoo orders read back, by outcome (published, duplicate, ignored, waiting, dead_lettered).",
	}, []string{"outcome"})
	m.OdooFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "promo_odoo_failures_total",
		Help: "Failed calls to Odoo, by call (push, readback, reconcile) and reason (transport, http, rpc, access_denied, not_found, not_paid).",
	}, []string{"call", "reason"})
	m.OdooReconciled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "promo_odoo_reconciled_total",
		Help: "Orders examined by the Odoo reconciler, by outcome (seen: the engine has it; recorded: it had not, now recorded for read-back).",
	}, []string{"outcome"})
	reg.MustRegister(m.OdooReadbacks, m.OdooFailures, m.OdooReconciled)
}

// RegisterReady registers promo_ready, /readyz as a metric for the alert
// "engine not ready" (deploy/prometheus/alerts.yml): ready is called at
// each scrape.
func RegisterReady(reg prometheus.Registerer, ready func() bool) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "promo_ready",
		Help: "1 when the engine is ready (NATS and PostgreSQL answer, every owned consumer is pulled), 0 otherwise.",
	}, func() float64 {
		if ready() {
			return 1
		}
		return 0
	}))
}
