package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/promoengine/promoengine/examples"
	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/internal/engine"
	"github.com/promoengine/promoengine/internal/natsembed"
	"github.com/promoengine/promoengine/internal/pgcluster"
	"github.com/promoengine/promoengine/migrations"
	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/pkg/rules"
)

func runDev(ctx context.Context, c *cli, args []string) error {
	fs := newFlags(c, "dev", "dev [--data-dir .data] [--nats-port 4222] [--pg-port 54329] [--catalog FILE]",
		`  promoengine dev                          # everything embedded; Ctrl-C stops it all
  PROMO_DATABASE_URL=postgres://… promoengine dev   # embedded NATS, your PostgreSQL
  PROMO_HTTP_ADDR=:8080 promoengine dev    # the API on every interface (default 127.0.0.1:8080)

Then, from another terminal in the same directory:
  promoengine publish -f examples/orders.jsonl
  promoengine customer show 1001
`)
	dataDir := fs.String("data-dir", ".data", "where NATS and PostgreSQL keep their data (reused by the next start)")
	natsPort := fs.Int("nats-port", 4222, "port of the in-process NATS server")
	pgPort := fs.Int("pg-port", 54329, "port of the private PostgreSQL cluster")
	catalogFile := fs.String("catalog", "", "catalog applied when none is (default: the built-in examples/catalog.yaml)")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	// Console logs unless asked otherwise: dev is for people.
	if os.Getenv("PROMO_LOG_FORMAT") == "" {
		_ = os.Setenv("PROMO_LOG_FORMAT", "console")
	}
	setDevDefaults(c)
	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		return err
	}
	abs, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}

	ns, err := natsembed.Start(natsembed.Options{StoreDir: filepath.Join(abs, "nats"), Port: *natsPort})
	if err != nil {
		return fmt.Errorf("embedded NATS on port %d: %w (another `promoengine dev` running? use --nats-port)", *natsPort, err)
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	c.log.Info().Str("url", ns.ClientURL()).Str("store", filepath.Join(abs, "nats")).Msg("embedded NATS JetStream running")

	dbURL := os.Getenv("PROMO_DATABASE_URL")
	if dbURL == "" {
		cluster, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(abs, "pg"), Port: *pgPort, Log: devLogWriter{c}})
		if err != nil {
			return fmt.Errorf("private PostgreSQL under %s: %w", filepath.Join(abs, "pg"), err)
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := cluster.Stop(sctx); err != nil {
				c.log.Error().Err(err).Msg("stop PostgreSQL")
			}
		}()
		dbURL = cluster.URL("postgres")
		c.log.Info().Str("url", config.MaskURL(dbURL)).Str("dir", cluster.Dir()).Msg("private PostgreSQL running")
	}
	_ = os.Setenv("PROMO_DATABASE_URL", dbURL)
	_ = os.Setenv("PROMO_NATS_URL", ns.ClientURL())

	envFile := filepath.Join(*dataDir, "dev.env")
	if err := os.WriteFile(envFile, []byte(fmt.Sprintf(
		"# written by a running `promoengine dev`; removed when it stops\nPROMO_DATABASE_URL=%s\nPROMO_NATS_URL=%s\nPROMO_API_KEYS=%s\nPROMO_COUPON_SECRET=%s\n",
		dbURL, ns.ClientURL(), os.Getenv("PROMO_API_KEYS"), os.Getenv("PROMO_COUPON_SECRET"))), 0o600); err != nil {
		return err
	}
	defer os.Remove(envFile)

	cfg, err := config.Load()
	if err != nil {
		return err
	}
	if err := applyDevCatalog(ctx, c, cfg.DatabaseURL, *catalogFile); err != nil {
		return err
	}
	names, err := cfg.WorkerList()
	if err != nil {
		return err
	}
	if cfg.OdooURL == "" {
		names = removeWorker(names, config.WorkerOdoo)
	}
	stopTracing, err := startTracing(ctx, c) // OTEL_TRACES_EXPORTER=console prints each span
	if err != nil {
		return err
	}
	defer stopTracing()
	e, err := engine.Start(ctx, cfg, names, c.log)
	if err != nil {
		return err
	}
	c.log.Info().Str("http", "http://"+displayAddr(e.HTTPAddr())).Strs("workers", names).
		Msg("promoengine dev is running — Ctrl-C stops it; in another terminal: promoengine publish -f examples/orders.jsonl")
	<-ctx.Done()
	c.log.Info().Msg("stopping")
	e.Stop()
	return nil
}

// applyDevCatalog applies the example (or given) catalog when the database
// has none yet; a second start keeps whatever catalog is in force.
func applyDevCatalog(ctx context.Context, c *cli, dbURL, file string) error {
	pool, err := openPool(ctx, c)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := migrations.Up(ctx, pool); err != nil {
		return err
	}
	if _, err := ledger.LatestCatalog(ctx, pool); err == nil {
		return nil
	} else if !errors.Is(err, ledger.ErrNoCatalog) {
		return err
	}
	var cat *rules.Catalog
	if file != "" {
		cat, err = readCatalogFile(c, file)
	} else {
		cat, err = rules.Parse(examples.Catalog)
	}
	if err != nil {
		return err
	}
	v, err := ledger.ApplyCatalog(ctx, pool, cat)
	if err != nil {
		return err
	}
	c.log.Info().Int64("catalog_version", v).Int("programs", len(cat.Programs)).Msg("example catalog applied")
	_ = dbURL
	return nil
}

// setDevDefaults sets the dev API keys unless PROMO_API_KEYS is set, and
// the API's address to the loopback unless PROMO_HTTP_ADDR is set: the dev
// keys are in the README, so an API reachable from the network with them
// would be open to anyone there (the embedded NATS and PostgreSQL listen on
// 127.0.0.1 too).
func setDevDefaults(c *cli) {
	devKeys := os.Getenv("PROMO_API_KEYS") == ""
	if devKeys {
		_ = os.Setenv("PROMO_API_KEYS", "dev-pos-key:pos,dev-admin-key:admin")
	}
	if os.Getenv("PROMO_COUPON_SECRET") == "" {
		// A fixed secret, like the dev keys: codes are reproducible from
		// one dev run to the next, and never worth anything.
		_ = os.Setenv("PROMO_COUPON_SECRET", devCouponSecret)
	}
	if _, set := os.LookupEnv("PROMO_HTTP_ADDR"); !set {
		_ = os.Setenv("PROMO_HTTP_ADDR", devHTTPAddr)
	} else if devKeys && !loopback(os.Getenv("PROMO_HTTP_ADDR")) {
		c.log.Warn().Str("addr", os.Getenv("PROMO_HTTP_ADDR")).
			Msg("the API listens beyond this machine with the well-known dev keys: set PROMO_API_KEYS")
	}
}

// devHTTPAddr is where `dev` serves the API unless PROMO_HTTP_ADDR is set.
const devHTTPAddr = "127.0.0.1:8080"

// loopback reports a listen address on the loopback interface only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func removeWorker(names []string, w string) []string {
	out := names[:0:0]
	for _, n := range names {
		if n != w {
			out = append(out, n)
		}
	}
	return out
}

func displayAddr(addr string) string {
	if strings.HasPrefix(addr, "[::]:") || strings.HasPrefix(addr, "0.0.0.0:") {
		_, port, _ := strings.Cut(addr, "]:")
		if port == "" {
			_, port, _ = strings.Cut(addr, ":")
		}
		if _, err := strconv.Atoi(port); err == nil {
			return "localhost:" + port
		}
	}
	return addr
}

// devLogWriter forwards initdb/pg_ctl output to the debug log.
type devLogWriter struct{ c *cli }

func (w devLogWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if line != "" {
			w.c.log.Debug().Str("component", "postgres").Msg(line)
		}
	}
	return len(p), nil
}

// devCouponSecret is PROMO_COUPON_SECRET under `promoengine dev` when none
// is set.
const devCouponSecret = "dev-coupon-secret-not-for-production"
