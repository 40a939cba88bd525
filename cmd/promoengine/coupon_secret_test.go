package main

import (
	"maps"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/internal/engine"
	"github.com/promoengine/promoengine/internal/testbin"
	"github.com/promoengine/promoengine/pkg/ledger"
)

const couponCatalog = cliCatalog + `  - {id: thanks, layer: order, reward: {issue_coupon: {program: back, valid_days: 30}}}
  - {id: back, layer: order, when: {coupon: issued}, reward: {percent: "5"}}
`

// PROMO_COUPON_SECRET is required once a catalog issues coupons: catalog
// apply refuses the catalog naming the variable, and an engine that
// processes orders refuses to start on it.
func TestCouponSecretRequired(t *testing.T) {
	t.Parallel()
	b := setupOps(t)
	file := b.file("coupons.yaml", couponCatalog)

	res := b.run("catalog", "apply", "-f", file)
	require.NotEqual(t, 0, res.ExitCode)
	require.Contains(t, res.Stderr, "PROMO_COUPON_SECRET is not set")
	require.Contains(t, res.Stderr, "program thanks issues coupons")
	require.Contains(t, res.Stderr, "nothing was applied")

	short := maps.Clone(b.env)
	short["PROMO_COUPON_SECRET"] = "too-short"
	res = testbin.Run(t, short, "catalog", "apply", "-f", file)
	require.NotEqual(t, 0, res.ExitCode)
	require.Contains(t, res.Stderr, "PROMO_COUPON_SECRET: must be at least 16 characters")

	_, err := ledger.LatestCatalog(b.ctx, b.pool)
	require.ErrorIs(t, err, ledger.ErrNoCatalog, "nothing was applied")

	good := maps.Clone(b.env)
	good["PROMO_COUPON_SECRET"] = "a-secret-long-enough-for-codes"
	res = testbin.Run(t, good, "catalog", "apply", "-f", file)
	require.Equal(t, 0, res.ExitCode, res.Stderr)

	cfg := &config.Config{NATSURL: b.nats.URL(), DatabaseURL: b.dbURL, HTTPAddr: "off",
		BatchSize: 16, Lanes: 2, MaxDeliver: 2, DuplicateWindow: 10 * time.Minute, OdooConcurrency: 1, OdooTimeout: time.Second}
	_, err = engine.Start(b.ctx, cfg, []string{config.WorkerOrders, config.WorkerOutbox}, zerolog.Nop())
	require.ErrorIs(t, err, ledger.ErrNoCouponSecret)
	require.Contains(t, err.Error(), "PROMO_COUPON_SECRET is required to process orders under catalog version 1")

	// Workers that issue nothing start without it.
	e, err := engine.Start(b.ctx, cfg, []string{config.WorkerOutbox}, zerolog.Nop())
	require.NoError(t, err)
	e.Stop()

	cfg.CouponSecret = "a-secret-long-enough-for-codes"
	e, err = engine.Start(b.ctx, cfg, []string{config.WorkerOrders, config.WorkerOutbox}, zerolog.Nop())
	require.NoError(t, err)
	e.Stop()
}
