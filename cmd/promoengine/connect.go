package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/internal/engine"
	"github.com/promoengine/promoengine/migrations"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/pkg/rules"
)

// openPool connects to PROMO_DATABASE_URL for a one-shot command.
func openPool(ctx context.Context, c *cli) (*pgxpool.Pool, error) {
	cfg, err := loadConfig(c)
	if err != nil {
		return nil, err
	}
	if cfg.DatabaseURL == "" {
		return nil, errors.New("PROMO_DATABASE_URL is not set (or start `promoengine dev` in this directory)")
	}
	return connectPool(ctx, cfg.DatabaseURL, "PROMO_DATABASE_URL")
}

// openReadPool is openPool for a command that only reads what need not be
// current (customer show, status): it reads from PROMO_DATABASE_REPLICA_URL
// when set.
func openReadPool(ctx context.Context, c *cli) (*pgxpool.Pool, error) {
	cfg, err := loadConfig(c)
	if err != nil {
		return nil, err
	}
	if cfg.DatabaseReplicaURL == "" {
		return openPool(ctx, c)
	}
	return connectPool(ctx, cfg.DatabaseReplicaURL, "PROMO_DATABASE_REPLICA_URL")
}

func connectPool(ctx context.Context, url, variable string) (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The driver's parse error may quote the password.
		return nil, fmt.Errorf("%s: %s is not a PostgreSQL URL or key=value string the driver can read", variable, config.MaskURL(url))
	}
	pcfg.MaxConns = 4
	pcfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	pcfg.ConnConfig.RuntimeParams["application_name"] = "promoengine-cli"
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL at %s (%s): %w", config.MaskURL(url), variable, err)
	}
	return pool, nil
}

// openMigratedPool is openPool plus pending migrations, for commands that
// write (applying migrations is idempotent and locked).
func openMigratedPool(ctx context.Context, c *cli) (*pgxpool.Pool, error) {
	pool, err := openPool(ctx, c)
	if err != nil {
		return nil, err
	}
	if _, err := migrations.Up(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// openNATS connects to PROMO_NATS_URL for a one-shot command.
func openNATS(c *cli) (*nats.Conn, jetstream.JetStream, *config.Config, events.Subjects, error) {
	cfg, err := loadConfig(c)
	if err != nil {
		return nil, nil, nil, events.Subjects{}, err
	}
	opts := []nats.Option{nats.Name("promoengine-cli")}
	if cfg.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(cfg.NATSCreds))
	}
	secure, err := engine.NATSSecurityOptions(cfg)
	if err != nil {
		return nil, nil, nil, events.Subjects{}, err
	}
	opts = append(opts, secure...)
	nc, err := nats.Connect(cfg.NATSURL, opts...)
	if err != nil {
		return nil, nil, nil, events.Subjects{}, fmt.Errorf("connect to NATS at %s (PROMO_NATS_URL): %w", config.MaskURL(cfg.NATSURL), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, nil, events.Subjects{}, err
	}
	return nc, js, cfg, events.NewSubjects(cfg.SubjectPrefix), nil
}

// ledgerSession is what the ledger commands work with: a pool, the catalog
// in force and a store publishing under the configured subjects.
type ledgerSession struct {
	pool    *pgxpool.Pool
	catalog *rules.Catalog
	store   *ledger.Store
}

// openLedger connects and loads the catalog in force. migrate applies
// pending migrations first (for commands that write).
func openLedger(ctx context.Context, c *cli, migrate bool) (*ledgerSession, error) {
	open := openReadPool
	if migrate {
		open = openMigratedPool
	}
	pool, err := open(ctx, c)
	if err != nil {
		return nil, err
	}
	cat, err := ledger.LatestCatalog(ctx, pool)
	if errors.Is(err, ledger.ErrNoCatalog) {
		pool.Close()
		return nil, errors.New("no catalog applied yet: promoengine catalog apply -f FILE")
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	cfg, err := loadConfig(c)
	if err != nil {
		pool.Close()
		return nil, err
	}
	store := ledger.NewStore(events.NewSubjects(cfg.SubjectPrefix), ledger.WithCouponSecret([]byte(cfg.CouponSecret)))
	return &ledgerSession{pool: pool, catalog: cat, store: store}, nil
}

func (s *ledgerSession) Close() { s.pool.Close() }
