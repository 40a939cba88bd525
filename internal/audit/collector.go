package audit

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// Actions lists every action, so that each has a series from zero.
var Actions = []string{ActionCatalogApply, ActionDLQRedrive, ActionDLQPurge, ActionReplay, ActionJobsRun, ActionPartitionsSet}

// Collector exports promo_audit_entries_total{action, outcome}: the entries
// in the trail, counted in the database, so that actions taken with the CLI
// on another machine count too. The count is taken at most every 30 s (the
// table is small: admin actions are rare). Every engine process reports the
// same totals: aggregate with max, not sum.
type Collector struct {
	db   DB
	desc *prometheus.Desc
	ttl  time.Duration

	mu     sync.Mutex
	counts map[[2]string]float64
	taken  time.Time
}

// NewCollector counts the trail of db.
func NewCollector(db DB) *Collector {
	return &Collector{db: db, ttl: 30 * time.Second, desc: prometheus.NewDesc("promo_audit_entries_total",
		"Entries in the audit trail (admin actions), by action and outcome; the same on every process: use max.",
		[]string{"action", "outcome"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector. When the database does not
// answer, the last counts are reported.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	if c.counts == nil || time.Since(c.taken) >= c.ttl {
		if counts, err := c.count(); err == nil {
			c.counts, c.taken = counts, time.Now()
		}
	}
	counts := c.counts
	c.mu.Unlock()
	for _, action := range Actions {
		for _, outcome := range []string{OutcomeOK, OutcomeFailed} {
			if _, ok := counts[[2]string{action, outcome}]; !ok {
				ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, 0, action, outcome)
			}
		}
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, n, k[0], k[1])
	}
}

func (c *Collector) count() (map[[2]string]float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rows, err := c.db.Query(ctx, `SELECT action, outcome, count(*) FROM audit_log GROUP BY 1, 2`)
	if err != nil {
		return nil, err
	}
	counts := map[[2]string]float64{}
	var action, outcome string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&action, &outcome, &n}, func() error {
		counts[[2]string{action, outcome}] = float64(n)
		return nil
	})
	return counts, err
}
