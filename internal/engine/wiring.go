package engine

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/promoengine/promoengine/internal/api"
	"github.com/promoengine/promoengine/internal/consume"
	"github.com/promoengine/promoengine/internal/odoo"
	"github.com/promoengine/promoengine/internal/ops"
	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/pkg/rules"
	"github.com/promoengine/promoengine/workers"
)

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

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
	if err := e.startShadow(ctx, client, modes); err != nil {
		return err
	}
	return e.startOdooIntake(ctx, client, dl)
}

// startOdooIntake starts the read-back of recorded Odoo orders and the
// reconciler (docs/ODOO.md, "Nothing lost").
func (e *Engine) startOdooIntake(ctx context.Context, client *odoo.Client, dl *consume.DeadLetterer) error {
	op := ops.New(e.JS, nil, e.Subjects, e.log)
	rb := workers.NewOdooReadback(workers.OdooReadbackConfig{
		Concurrency: e.cfg.OdooConcurrency,
		MaxWait:     e.cfg.OdooReadbackMaxWait,
	}, client, e.JS, e.Subjects, op.PublishEvent, dl, e.Metrics, e.log)
	if err := rb.Start(ctx); err != nil {
		return fmt.Errorf("odoo read-back: %w", err)
	}
	e.stops = append(e.stops, rb.Stop)
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
