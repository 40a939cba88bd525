package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/promoengine/promoengine/internal/api"
	"github.com/promoengine/promoengine/internal/consume"
	"github.com/promoengine/promoengine/internal/grpcapi"
	"github.com/promoengine/promoengine/internal/odoo"
	"github.com/promoengine/promoengine/internal/ops"
	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/pkg/rules"
	"github.com/promoengine/promoengine/workers"
)

// checkCatalog refuses to process orders under a catalog the engine cannot
// run: one that issues coupons without PROMO_COUPON_SECRET. No catalog yet
// is fine (the watcher checks each one it switches to).
func (e *Engine) checkCatalog(ctx context.Context) error {
	cat, err := ledger.LatestCatalog(ctx, e.Pool)
	if errors.Is(err, ledger.ErrNoCatalog) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := e.Store.CheckCatalog(cat); err != nil {
		return fmt.Errorf("PROMO_COUPON_SECRET is required to process orders under catalog version %d: %w", cat.Version, err)
	}
	return nil
}

// odooClient is the engine's one Odoo client (nil without PROMO_ODOO_URL):
// the webhook's read-backs and the pusher share its login.
func (e *Engine) odooClient() (*odoo.Client, error) {
	if !e.odooMade {
		e.odoo, e.odooErr = odoo.NewFromConfig(e.cfg, e.log)
		e.odooMade = true
	}
	return e.odoo, e.odooErr
}

// newAPI builds the HTTP API of SPEC §8 (the api worker).
func (e *Engine) newAPI(ctx context.Context) (*api.Server, error) {
	client, err := e.odooClient()
	if err != nil {
		return nil, fmt.Errorf("odoo client: %w", err)
	}
	tokens, err := e.newOIDC(ctx)
	if err != nil {
		return nil, fmt.Errorf("PROMO_OIDC_ISSUER: %w", err)
	}
	if len(e.cfg.APIKeys) == 0 && tokens == nil {
		e.log.Warn().Msg("PROMO_API_KEYS is empty: every /v1 request will be refused with 401")
	}
	return api.New(api.Deps{
		Keys:     e.cfg.APIKeys,
		OIDC:     tokens,
		Pool:     e.Pool,
		ReadPool: e.ReadPool,
		JS:       e.JS,
		Subjects: e.Subjects,
		Store:    e.Store,
		Catalog:  func() *rules.Catalog { return e.Catalogs.Current() },
		Odoo:     client,
		Metrics:  e.Metrics,
		Log:      e.log.With().Str("worker", "api").Logger(),
		Ready:    e.Ready,
	}), nil
}

// newGRPC builds promo.v1.PromoService on the API's operations.
func (e *Engine) newGRPC(a *api.Server) (*grpcapi.Service, error) {
	return grpcapi.New(grpcapi.Deps{
		API:        a,
		JS:         e.JS,
		Subjects:   e.Subjects,
		Ready:      e.Ready,
		Registerer: e.Registry,
		Log:        e.log.With().Str("worker", "api").Logger(),
	})
}

// startOdoo starts the Odoo pusher when PROMO_ODOO_URL is set.
func (e *Engine) startOdoo(ctx context.Context, dl *consume.DeadLetterer) error {
	client, err := e.odooClient()
	if err != nil {
		return fmt.Errorf("odoo client: %w", err)
	}
	if client == nil {
		e.log.Info().Msg("PROMO_ODOO_URL not set: no Odoo pusher")
		return nil
	}
	modes, err := e.cfg.Modes()
	if err != nil {
		return err
	}
	p := workers.NewOdooPusher(workers.OdooPusherConfig{
		Concurrency: e.cfg.OdooConcurrency,
		Model:       e.cfg.OdooModel,
		Method:      e.cfg.OdooMethod,
		Skip:        pushSkip(client, modes),
	}, client, e.JS, e.Subjects, dl, e.Metrics, e.log)
	if err := p.Start(ctx); err != nil {
		return fmt.Errorf("odoo pusher: %w", err)
	}
	e.stops = append(e.stops, p.Stop)
	e.readyChecks = append(e.readyChecks, p.Ready)
	if err := e.startShadow(ctx, client, modes); err != nil {
		return err
	}
	return e.startOdooIntake(ctx, client, dl)
}

// startOdooIntake starts the read-back of recorded Odoo orders and the
// reconciler (docs/ODOO.md, "Nothing lost").
func (e *Engine) startOdooIntake(ctx context.Context, client *odoo.Client, dl *consume.DeadLetterer) error {
	// With the pool, a return read back from Odoo is keyed by its sale's
	// customer (internal/keying).
	op := ops.New(e.JS, e.Pool, e.Subjects, e.log)
	rb := workers.NewOdooReadback(workers.OdooReadbackConfig{
		Concurrency: e.cfg.OdooConcurrency,
		MaxWait:     e.cfg.OdooReadbackMaxWait,
	}, client, e.JS, e.Subjects, op.PublishEvent, dl, e.Metrics, e.log)
	if err := rb.Start(ctx); err != nil {
		return fmt.Errorf("odoo read-back: %w", err)
	}
	e.stops = append(e.stops, rb.Stop)
	e.readyChecks = append(e.readyChecks, rb.Ready)
	if e.cfg.OdooReconcileInterval <= 0 {
		e.log.Info().Msg("PROMO_ODOO_RECONCILE_INTERVAL is 0: no Odoo reconciler")
		return nil
	}
	pool := e.Pool
	rc := workers.NewOdooReconciler(workers.OdooReconcilerConfig{
		Interval: e.cfg.OdooReconcileInterval,
		Overlap:  e.cfg.OdooReconcileOverlap,
	}, client, e.JS, e.Subjects, func(ctx context.Context, ids []string) (map[string]bool, error) {
		return ledger.ProcessedEventIDs(ctx, pool, ids)
	}, e.Metrics, e.log)
	if err := rc.Start(ctx); err != nil {
		return fmt.Errorf("odoo reconciler: %w", err)
	}
	e.stops = append(e.stops, rc.Stop)
	return nil
}
