package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/promoengine/promoengine/internal/metrics"
	"github.com/promoengine/promoengine/internal/odoo"
	"github.com/promoengine/promoengine/pkg/events"
)

// OdooReconcilerConfig tunes the reconciler. Zero values take the defaults.
type OdooReconcilerConfig struct {
	// Interval between two passes (PROMO_ODOO_RECONCILE_INTERVAL). Default
	// 1 min.
	Interval time.Duration
	// Overlap is how far before the cursor each pass looks again
	// (PROMO_ODOO_RECONCILE_OVERLAP). Odoo dates an order with the start of
	// the transaction that wrote it, so an order committed by a long
	// transaction (a POS syncing many orders) appears with a date already
	// behind the cursor; the overlap must be longer than Odoo's longest
	// transaction. Keep it within PROMO_DUPLICATE_WINDOW so that an order
	// seen twice is recorded once. Default 5 min.
	Overlap time.Duration
	// Lease is how long one process holds the reconciler once it took it;
	// the others skip their passes meanwhile. Default 3 × Interval.
	Lease time.Duration
}

func (c *OdooReconcilerConfig) defaults() {
	if c.Interval <= 0 {
		c.Interval = time.Minute
	}
	if c.Overlap <= 0 {
		c.Overlap = 5 * time.Minute
	}
	if c.Lease <= 0 {
		c.Lease = 3 * c.Interval
	}
}

// Keys of the reconciler in the PROMO_ODOO_STATE bucket.
const (
	reconcilerCursorKey = "reconciler.cursor"
	reconcilerLeaseKey  = "reconciler.lease"
)

// OdooReconciler finds the orders Odoo has and the engine never heard of —
// a webhook Odoo sent while the engine was down (Odoo never retries one),
// an automation rule switched off, a network cut — and records them for
// read-back. Every Interval it asks Odoo for the final pos.orders written
// since its cursor minus Overlap (odoo.Reconcile), keeps those whose event
// ids are not in the inbox, records them on PROMO_ODOO_ORDERS and moves the
// cursor to the latest write_date it saw (Odoo's clock, not ours).
//
// The cursor and a lease live in the PROMO_ODOO_STATE bucket, so a restart
// goes on where it stopped, and of several engine processes one reconciles
// at a time. Without a cursor (first start) it begins Overlap before now;
// older history is `promoengine odoo sync --since T`.
type OdooReconciler struct {
	cfg      OdooReconcilerConfig
	client   *odoo.Client
	js       jetstream.JetStream
	subjects events.Subjects
	seen     odoo.SeenFunc
	metrics  *metrics.Metrics
	log      zerolog.Logger
	now      func() time.Time
	holder   string

	kv     jetstream.KeyValue
	cancel context.CancelFunc
	done   chan struct{}
}

// NewOdooReconciler assembles a reconciler; seen is the inbox lookup
// (ledger.ProcessedEventIDs). Call Start.
func NewOdooReconciler(cfg OdooReconcilerConfig, client *odoo.Client, js jetstream.JetStream, subjects events.Subjects,
	seen odoo.SeenFunc, m *metrics.Metrics, log zerolog.Logger) *OdooReconciler {
	cfg.defaults()
	host, _ := os.Hostname()
	return &OdooReconciler{cfg: cfg, client: client, js: js, subjects: subjects, seen: seen, metrics: m,
		log: log.With().Str("worker", "odoo_reconciler").Logger(), now: time.Now,
		holder: fmt.Sprintf("%s/%d/%d", host, os.Getpid(), time.Now().UnixNano())}
}

// Start opens the state bucket (EnsureOdoo created it) and runs a pass at
// once, then every Interval.
func (r *OdooReconciler) Start(ctx context.Context) error {
	if err := r.open(ctx); err != nil {
		return err
	}
	ctx, r.cancel = context.WithCancel(ctx)
	r.done = make(chan struct{})
	go r.loop(ctx)
	return nil
}

// Stop ends the loop after the pass in flight. Safe to call more than once.
func (r *OdooReconciler) Stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
}

func (r *OdooReconciler) loop(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := r.RunOnce(ctx); err != nil && ctx.Err() == nil {
			r.metrics.OdooFailures.WithLabelValues("reconcile", odoo.FailureReason(err)).Inc()
			r.log.Warn().Err(err).Str("reason", odoo.FailureReason(err)).Msg("reconciling with Odoo failed; trying again at the next pass")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *OdooReconciler) open(ctx context.Context) error {
	if r.kv != nil {
		return nil
	}
	kv, err := r.js.KeyValue(ctx, r.subjects.OdooStateBucket())
	if err != nil {
		return fmt.Errorf("odoo reconciler: bucket %s: %w", r.subjects.OdooStateBucket(), err)
	}
	r.kv = kv
	return nil
}

// ErrLeaseHeld: another process reconciles now.
var ErrLeaseHeld = errors.New("odoo reconciler: another process holds the lease")

// RunOnce makes one pass if this process holds (or takes) the lease. It
// returns nil and no error when another process holds it. Start runs it
// every Interval; it may also be called alone (tests, tools).
func (r *OdooReconciler) RunOnce(ctx context.Context) (*odoo.ReconcileReport, error) {
	if err := r.open(ctx); err != nil {
		return nil, err
	}
	if err := r.takeLease(ctx); err != nil {
		if errors.Is(err, ErrLeaseHeld) {
			return nil, nil
		}
		return nil, err
	}
	cursor, rev, err := r.cursor(ctx)
	if err != nil {
		return nil, err
	}
	if cursor.IsZero() {
		cursor = r.now().UTC()
	}
	rep, err := odoo.Reconcile(ctx, r.client, r.js, r.subjects, r.seen,
		odoo.ReconcileOptions{Since: cursor.Add(-r.cfg.Overlap), Source: odoo.SourceReconciler})
	if rep != nil {
		r.metrics.OdooReconciled.WithLabelValues("seen").Add(float64(rep.Seen))
		r.metrics.OdooReconciled.WithLabelValues("recorded").Add(float64(rep.Recorded))
		r.metrics.OdooReconciled.WithLabelValues("in_flight").Add(float64(rep.Duplicates))
	}
	if err != nil {
		return rep, err
	}
	if rep.Recorded > 0 {
		r.log.Warn().Int("recorded", rep.Recorded).Ints64("order_ids", rep.Missing).Time("since", cursor.Add(-r.cfg.Overlap)).
			Msg("Odoo has final orders the engine never received; recorded them for read-back")
	} else {
		r.log.Debug().Int("examined", rep.Examined).Int("seen", rep.Seen).Int("in_flight", rep.Duplicates).Msg("reconciled with Odoo")
	}
	if rep.LastWrite.After(cursor) {
		if err := r.storeCursor(ctx, rep.LastWrite, rev); err != nil {
			return rep, err
		}
	} else if rev == 0 {
		if err := r.storeCursor(ctx, cursor, rev); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// cursor returns the stored cursor (zero when none) and its revision.
func (r *OdooReconciler) cursor(ctx context.Context) (time.Time, uint64, error) {
	e, err := r.kv.Get(ctx, reconcilerCursorKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return time.Time{}, 0, nil
	}
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("odoo reconciler: read cursor: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, string(e.Value()))
	if err != nil {
		r.log.Warn().Str("cursor", string(e.Value())).Msg("unreadable reconciler cursor; starting from now")
		return time.Time{}, e.Revision(), nil
	}
	return t, e.Revision(), nil
}

func (r *OdooReconciler) storeCursor(ctx context.Context, t time.Time, rev uint64) error {
	v := []byte(t.UTC().Format(time.RFC3339Nano))
	var err error
	if rev == 0 {
		_, err = r.kv.Create(ctx, reconcilerCursorKey, v)
	} else {
		_, err = r.kv.Update(ctx, reconcilerCursorKey, v, rev)
	}
	if err != nil {
		return fmt.Errorf("odoo reconciler: store cursor: %w", err)
	}
	return nil
}

type reconcilerLease struct {
	Holder string    `json:"holder"`
	Until  time.Time `json:"until"`
}

// takeLease takes or renews the lease, by compare-and-set on its revision.
func (r *OdooReconciler) takeLease(ctx context.Context) error {
	now := r.now()
	next, err := json.Marshal(reconcilerLease{Holder: r.holder, Until: now.Add(r.cfg.Lease)})
	if err != nil {
		return err
	}
	e, err := r.kv.Get(ctx, reconcilerLeaseKey)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		if _, err := r.kv.Create(ctx, reconcilerLeaseKey, next); err != nil {
			return fmt.Errorf("%w (%v)", ErrLeaseHeld, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("odoo reconciler: read lease: %w", err)
	}
	var cur reconcilerLease
	if json.Unmarshal(e.Value(), &cur) == nil && cur.Holder != r.holder && now.Before(cur.Until) {
		return ErrLeaseHeld
	}
	if _, err := r.kv.Update(ctx, reconcilerLeaseKey, next, e.Revision()); err != nil {
		return fmt.Errorf("%w (%v)", ErrLeaseHeld, err)
	}
	return nil
}
