package main

import (
	"context"
	"os"
	"strings"

	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/internal/engine"
	"github.com/promoengine/promoengine/internal/gctune"
)

func runRun(ctx context.Context, c *cli, args []string) error {
	fs := newFlags(c, "run", "run [--workers orders,outbox,odoo,jobs,api]",
		`  PROMO_NATS_URL=nats://nats:4222 PROMO_DATABASE_URL=postgres://promo@db/promo promoengine run
  promoengine run --workers orders,outbox     # a process that only evaluates and publishes
`)
	workers := fs.String("workers", "", "comma-separated workers to run (default PROMO_WORKERS, i.e. "+strings.Join(config.AllWorkers, ",")+")")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	if *workers != "" {
		cfg.Workers = *workers
	}
	names, err := cfg.WorkerList()
	if err != nil {
		return usagef("--workers: %v", err)
	}
	c.log.Info().Fields(cfg.LogFields()).Msg("starting promoengine")
	if gctune.Tune(ctx, os.Getenv) {
		c.log.Debug().Int("gogc", gctune.Percent).Int("memory_limit_mib", gctune.Target>>20).
			Msg("garbage collector tuned (GOGC or GOMEMLIMIT in the environment leave Go's defaults)")
	}
	stopTracing, err := startTracing(ctx, c)
	if err != nil {
		return err
	}
	defer stopTracing()
	e, err := engine.Start(ctx, cfg, names, c.log)
	if err != nil {
		return err
	}
	<-ctx.Done()
	c.log.Info().Msg("stopping: finishing in-flight batches")
	e.Stop()
	c.log.Info().Msg("stopped")
	return nil
}
