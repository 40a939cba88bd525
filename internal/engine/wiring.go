package engine

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/promoengine/promoengine/internal/consume"
)

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// mountAPI adds the /v1 routes of SPEC §8.
func (e *Engine) mountAPI(mux *http.ServeMux) error {
	// Wired in when internal/api lands (issue 6).
	_ = mux
	return nil
}

// startOdoo starts the Odoo pusher when PROMO_ODOO_URL is set.
func (e *Engine) startOdoo(ctx context.Context, dl *consume.DeadLetterer) error {
	if e.cfg.OdooURL == "" {
		e.log.Info().Msg("PROMO_ODOO_URL not set: no Odoo pusher")
		return nil
	}
	_ = ctx
	_ = dl
	return nil
}
