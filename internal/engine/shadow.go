package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/internal/odoo"
	"github.com/promoengine/promoengine/workers"
)

// Shadow mode (docs/MIGRATION.md): the orders of shops in shadow are
// processed as usual, their results are not pushed to Odoo, and the shadow
// worker compares them with what Odoo's own loyalty gave.

// pushSkip is the pusher's Skip for the modes: nil when every shop is
// live, "always" when every shop is in shadow (the pusher still consumes,
// so that a switch to live later does not push the shadow period's
// results), and a read of the order's company and POS config otherwise.
func pushSkip(client *odoo.Client, modes config.Modes) func(context.Context, string) (bool, error) {
	mode, uniform := modes.Uniform()
	switch {
	case uniform && mode == config.ModeLive:
		return nil
	case uniform:
		return func(context.Context, string) (bool, error) { return true, nil }
	}
	return func(ctx context.Context, orderID string) (bool, error) {
		id, err := strconv.ParseInt(orderID, 10, 64)
		if err != nil {
			return false, nil // not an Odoo order id: the push reports it
		}
		recs, err := client.Read(ctx, "pos.order", []int64{id}, []string{"company_id", "config_id"})
		var oe *odoo.Error
		if errors.As(err, &oe) && oe.Permanent() {
			return false, nil // a missing order: the push dead-letters it with Odoo's answer
		}
		if err != nil || len(recs) == 0 {
			return false, err
		}
		company, _, _ := recs[0].Many2one("company_id")
		posConfig, _, _ := recs[0].Many2one("config_id")
		return modes.Of(strconv.FormatInt(company, 10), strconv.FormatInt(posConfig, 10)) == config.ModeShadow, nil
	}
}

// startShadow starts the shadow worker when some shop is in shadow, and
// removes its consumer when none is.
func (e *Engine) startShadow(ctx context.Context, client *odoo.Client, modes config.Modes) error {
	if !modes.AnyShadow() {
		err := e.JS.DeleteConsumer(ctx, e.Subjects.StreamResults(), workers.OdooShadowConsumer)
		if err == nil {
			e.log.Info().Msg("no shop is in shadow mode any more: the shadow comparison's consumer is removed")
		} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
			e.log.Warn().Err(err).Msg("remove the shadow comparison's consumer")
		}
		return nil
	}
	w := workers.NewOdooShadow(workers.OdooShadowConfig{
		Modes:         modes,
		Settle:        e.cfg.ShadowSettle,
		PointsProgram: e.cfg.ShadowPointsProgram,
		Concurrency:   e.cfg.OdooConcurrency,
	}, client, e.JS, e.Subjects, e.Pool, e.Metrics, e.log)
	if err := w.Start(ctx); err != nil {
		return fmt.Errorf("odoo shadow: %w", err)
	}
	e.stops = append(e.stops, w.Stop)
	e.readyChecks = append(e.readyChecks, w.Ready)
	return nil
}
