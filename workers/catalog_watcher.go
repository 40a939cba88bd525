package workers

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/promoengine/promoengine/internal/metrics"
	"github.com/promoengine/promoengine/internal/pglisten"
	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/pkg/rules"
)

// CatalogChannel is the LISTEN/NOTIFY channel `catalog apply` notifies.
const CatalogChannel = "promo_catalog"

// CatalogWatcher keeps the latest applied catalog in memory and switches to
// a new version without a restart: it is woken by NOTIFY promo_catalog when
// a version is applied, and polls every PollInterval in case a notification
// was missed. Readers get an immutable *rules.Catalog; a batch keeps the one
// it started with, so every event names exactly the version it used.
type CatalogWatcher struct {
	pool    *pgxpool.Pool
	log     zerolog.Logger
	metrics *metrics.Metrics
	current atomic.Pointer[rules.Catalog]
	ready   chan struct{}
	once    sync.Once
	done    chan struct{}
	warned  bool // the missing catalog was reported (reload runs on one goroutine at a time)

	refused int64 // the last version Accept refused, reported once

	PollInterval time.Duration
	// Accept, when set, may refuse a new version (the engine refuses one it
	// cannot run, such as coupons without a secret): the watcher then stays
	// on the version in force and says why.
	Accept func(*rules.Catalog) error
}

// NewCatalogWatcher returns a watcher; call Start.
func NewCatalogWatcher(pool *pgxpool.Pool, m *metrics.Metrics, log zerolog.Logger) *CatalogWatcher {
	return &CatalogWatcher{pool: pool, log: log, metrics: m, ready: make(chan struct{}), done: make(chan struct{}), PollInterval: 5 * time.Second}
}

// Current returns the catalog in force, or nil before any was applied.
func (w *CatalogWatcher) Current() *rules.Catalog { return w.current.Load() }

// Ready is closed once a catalog is loaded.
func (w *CatalogWatcher) Ready() <-chan struct{} { return w.ready }

// Done is closed once the watcher has stopped after its context ended.
func (w *CatalogWatcher) Done() <-chan struct{} { return w.done }

// Start loads the latest catalog and follows new versions until ctx ends.
func (w *CatalogWatcher) Start(ctx context.Context) {
	waker := pglisten.Run(ctx, w.pool, CatalogChannel, w.PollInterval, w.log)
	w.reload(ctx)
	go func() {
		defer close(w.done)
		for {
			select {
			case <-ctx.Done():
				<-waker.Done()
				return
			case <-waker.C:
				w.reload(ctx)
			}
		}
	}()
}

func (w *CatalogWatcher) reload(ctx context.Context) {
	c, err := ledger.LatestCatalog(ctx, w.pool)
	switch {
	case errors.Is(err, ledger.ErrNoCatalog):
		if w.current.Load() == nil && !w.warned {
			w.warned = true
			w.log.Warn().Msg("no catalog applied yet: order events wait until `promoengine catalog apply -f FILE`")
		}
		return
	case err != nil:
		if ctx.Err() == nil {
			w.log.Error().Err(err).Msg("load catalog")
		}
		return
	}
	old := w.current.Load()
	if old != nil && old.Version == c.Version {
		return
	}
	if w.Accept != nil {
		if err := w.Accept(c); err != nil {
			if w.refused != c.Version {
				w.refused = c.Version
				w.log.Error().Err(err).Int64("catalog_version", c.Version).Msg("catalog version refused: staying on the version in force")
			}
			return
		}
	}
	w.current.Store(c)
	if w.metrics != nil {
		w.metrics.CatalogVersion.Set(float64(c.Version))
	}
	w.log.Info().Int64("catalog_version", c.Version).Msg("catalog in force")
	w.once.Do(func() { close(w.ready) })
}
