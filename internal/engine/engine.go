// Package engine assembles a running promoengine from its configuration:
// connections, streams, migrations, the catalog watcher and the workers
// named in PROMO_WORKERS, plus the HTTP server of health, readiness,
// metrics and (with the api worker) the API. `promoengine run`, `promoengine
// dev` and the conformance suite all start the engine through this one
// package, so tests exercise exactly what production runs.
package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/promoengine/promoengine/internal/audit"
	"github.com/promoengine/promoengine/internal/config"
	"github.com/promoengine/promoengine/internal/consume"
	"github.com/promoengine/promoengine/internal/keying"
	"github.com/promoengine/promoengine/internal/metrics"
	"github.com/promoengine/promoengine/internal/odoo"
	"github.com/promoengine/promoengine/internal/streams"
	"github.com/promoengine/promoengine/internal/tracing"
	"github.com/promoengine/promoengine/migrations"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/workers"
)

// Engine is a running promoengine process.
type Engine struct {
	cfg      *config.Config
	log      zerolog.Logger
	workers  []string
	Subjects events.Subjects

	NC   *nats.Conn
	JS   jetstream.JetStream
	Pool *pgxpool.Pool
	// ReadPool is the streaming replica of PROMO_DATABASE_REPLICA_URL, nil
	// without one: quotes and customer views read there first.
	ReadPool *pgxpool.Pool
	Registry *prometheus.Registry
	Metrics  *metrics.Metrics
	Store    *ledger.Store
	Catalogs *workers.CatalogWatcher

	Orders     *workers.Orders
	Keyer      *workers.Keyer
	Partitions *workers.Partitions
	Relay      *workers.OutboxRelay
	Jobs       *workers.JobsScheduler
	Quote      *workers.QuoteService

	// readyChecks report workers that should consume and do not.
	readyChecks []func() error
	http        *http.Server
	httpLn      net.Listener
	pprof       *http.Server // PROMO_PPROF's own listener (pprof.go)
	pprofLn     net.Listener
	stops       []func()
	odoo        *odoo.Client // nil without PROMO_ODOO_URL; shared by the API and the pusher (one login)
	odooErr     error
	odooMade    bool
	cancel      context.CancelFunc
	stopped     chan struct{}
	httpDone    chan struct{}
}

// Connect opens NATS and Postgres for cfg, the pieces every command needs.
func Connect(ctx context.Context, cfg *config.Config, log zerolog.Logger) (*nats.Conn, jetstream.JetStream, *pgxpool.Pool, error) {
	if cfg.DatabaseURL == "" {
		return nil, nil, nil, errors.New("PROMO_DATABASE_URL is not set: point it at PostgreSQL (or use `promoengine dev` for an embedded one)")
	}
	opts := []nats.Option{
		nats.Name("promoengine"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn().Err(err).Msg("NATS disconnected")
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info().Msg("NATS reconnected") }),
	}
	if cfg.NATSCreds != "" {
		opts = append(opts, nats.UserCredentials(cfg.NATSCreds))
	}
	secure, err := NATSSecurityOptions(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	opts = append(opts, secure...)
	nc, err := nats.Connect(cfg.NATSURL, opts...)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("connect to NATS at %s (PROMO_NATS_URL): %w", config.MaskURL(cfg.NATSURL), err)
	}
	// Every asynchronous publish has an ack deadline: a lost ack (a stream
	// leader change on a cluster) fails its future instead of waiting for
	// ever.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncTimeout(publishAckTimeout))
	if err != nil {
		nc.Close()
		return nil, nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	maxConns := cfg.DatabaseMaxConns
	if maxConns == 0 {
		oc := ordersConfig(cfg).Resolved()
		maxConns = int32(max(oc.Lanes, oc.InFlight) + 8)
	}
	pool, err := newPool(ctx, cfg.DatabaseURL, maxConns)
	if err != nil {
		nc.Close()
		return nil, nil, nil, config.DatabaseURLError(cfg.DatabaseURL) // the driver's error may quote the password
	}
	if err := pool.Ping(ctx); err != nil {
		nc.Close()
		pool.Close()
		return nil, nil, nil, fmt.Errorf("connect to PostgreSQL at %s (PROMO_DATABASE_URL): %w", cfg.MaskedDatabaseURL(), err)
	}
	return nc, js, pool, nil
}

// newPool opens a pool on url (it connects on first use).
func newPool(ctx context.Context, url string, maxConns int32) (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	pcfg.MaxConns = maxConns
	// Business time is the event's; the session time zone only affects how
	// Postgres does interval arithmetic, and UTC makes a day 24 hours.
	pcfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	pcfg.ConnConfig.RuntimeParams["application_name"] = "promoengine"
	// Deliberate timeouts: a connection attempt to a host that does not
	// answer fails in seconds (and is retried in place), a transaction
	// never waits on a row lock for ever, and a session that stopped in the
	// middle of a transaction (a frozen process) gives its locks back.
	pcfg.ConnConfig.ConnectTimeout = 5 * time.Second
	pcfg.ConnConfig.RuntimeParams["lock_timeout"] = "10s"
	pcfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = "60s"
	if tracing.Enabled() {
		// Query spans under a traced operation (otelpgx starts none
		// without a recording parent); off, no tracer is installed at all.
		pcfg.ConnConfig.Tracer = otelpgx.NewTracer(otelpgx.WithTrimSQLInSpanName(), otelpgx.WithDisableConnectionDetailsInAttributes())
	}
	return pgxpool.NewWithConfig(ctx, pcfg)
}

// publishAckTimeout bounds the wait for JetStream's acknowledgement of a
// publish.
const publishAckTimeout = 5 * time.Second

// Start connects, migrates, ensures streams and starts the named workers.
// It returns once everything is started; Stop shuts down gracefully.
func Start(ctx context.Context, cfg *config.Config, workerNames []string, log zerolog.Logger) (*Engine, error) {
	if cfg.Partitions == 0 { // a Config built in code rather than loaded
		cfg.Partitions = streams.DefaultPartitions
	}
	e := &Engine{cfg: cfg, log: log, workers: workerNames, Subjects: events.NewSubjects(cfg.SubjectPrefix),
		stopped: make(chan struct{})}
	ctx, e.cancel = context.WithCancel(ctx)
	var err error
	e.NC, e.JS, e.Pool, err = Connect(ctx, cfg, log)
	if err != nil {
		e.cancel()
		return nil, err
	}
	if cfg.DatabaseReplicaURL != "" {
		if e.ReadPool, err = newPool(ctx, cfg.DatabaseReplicaURL, 8); err != nil {
			e.Stop()
			return nil, fmt.Errorf("PROMO_DATABASE_REPLICA_URL: %s is not a PostgreSQL URL or key=value string the driver can read",
				config.MaskURL(cfg.DatabaseReplicaURL))
		}
	}
	if err := e.start(ctx); err != nil {
		e.Stop()
		return nil, err
	}
	return e, nil
}

func (e *Engine) has(w string) bool { return slices.Contains(e.workers, w) }

func (e *Engine) start(ctx context.Context) error {
	applied, err := migrations.Up(ctx, e.Pool)
	if err != nil {
		return err
	}
	if len(applied) > 0 {
		e.log.Info().Ints64("versions", applied).Msg("migrations applied")
	}
	sopts := streams.DefaultOptions()
	sopts.DuplicateWindow = e.cfg.DuplicateWindow
	sopts.Replicas = e.cfg.StreamReplicas
	sopts.Partitions = e.cfg.Partitions
	if err := streams.Ensure(ctx, e.JS, e.Subjects, sopts); err != nil {
		return err
	}
	if e.cfg.OdooURL != "" { // the webhook records into it, the read-back reads it
		if err := streams.EnsureOdoo(ctx, e.JS, e.Subjects, sopts); err != nil {
			return err
		}
	}
	e.Registry = prometheus.NewRegistry()
	e.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	e.Metrics = metrics.New(e.Registry)
	e.Registry.MustRegister(audit.NewCollector(e.Pool))
	metrics.RegisterReady(e.Registry, func() bool { return e.Ready(ctx) == nil })
	e.Store = ledger.NewStore(e.Subjects, ledger.WithCouponSecret([]byte(e.cfg.CouponSecret)))
	if e.has(config.WorkerOrders) {
		if err := e.checkCatalog(ctx); err != nil {
			return err
		}
	}
	e.Catalogs = workers.NewCatalogWatcher(e.Pool, e.Metrics, e.log)
	if e.has(config.WorkerOrders) {
		e.Catalogs.Accept = e.Store.CheckCatalog
	}
	e.Catalogs.Start(ctx)

	dl := consume.NewDeadLetterer(e.JS, e.Subjects)
	if e.has(config.WorkerOutbox) {
		e.Relay = workers.NewOutboxRelay(e.Pool, e.JS, e.Subjects, e.Metrics, e.log)
	}
	if e.has(config.WorkerOrders) {
		if err := e.startOrders(ctx, dl); err != nil {
			return err
		}
	}
	if e.Relay != nil {
		e.Relay.Start(ctx)
		e.stops = append(e.stops, e.Relay.Stop)
	}
	if e.has(config.WorkerOdoo) {
		if err := e.startOdoo(ctx, dl); err != nil {
			return err
		}
	}
	if e.has(config.WorkerJobs) {
		e.Jobs = workers.NewJobsScheduler(e.Pool, e.Store, e.Catalogs, e.Metrics, e.log)
		e.Jobs.Start(ctx)
		e.stops = append(e.stops, e.Jobs.Stop)
	}
	if e.has(config.WorkerAPI) {
		e.Quote = workers.NewQuoteService(e.NC, e.Pool, e.ReadPool, e.Store, e.Catalogs, e.Subjects, e.log)
		if err := e.Quote.Start(ctx); err != nil {
			return fmt.Errorf("quote service: %w", err)
		}
		e.stops = append(e.stops, e.Quote.Stop)
	}
	return e.startHTTP(ctx)
}

// startOrders starts the order workers: the keyer and partition consumers
// ensured, the pool, and this process's share of the consumers.
func (e *Engine) startOrders(ctx context.Context, dl *consume.DeadLetterer) error {
	oc := ordersConfig(e.cfg)
	timing := streams.Timing{AckWait: e.cfg.AckWait}
	if err := streams.EnsureOrderConsumers(ctx, e.JS, e.Subjects, e.cfg.Partitions, timing, oc.PartitionMaxAckPending()); err != nil {
		return err
	}
	settler := consume.NewSettler(dl, e.cfg.MaxDeliver)
	settler.OnDeadLetterError = func(err error) {
		e.log.Warn().Err(err).Msg("dead letter not stored; trying again with the message held")
	}
	e.Orders = workers.NewOrders(oc, e.Pool, e.Store, e.Catalogs, settler, e.Subjects, e.Metrics, e.log)
	if e.Relay != nil {
		e.Orders.Committed = e.Relay.Kick // this process's relay, when it leads, need not wait for the NOTIFY
	}
	e.Orders.Start(ctx)
	e.Keyer = workers.NewKeyer(e.JS, e.Subjects, keying.NewResolver(e.Pool, e.log), settler, timing.Heartbeat(), e.Metrics, e.log)
	e.Keyer.Start(ctx)
	e.Partitions = workers.NewPartitions(workers.PartitionsConfig{
		Partitions: e.cfg.Partitions, Timing: timing, MaxAckPending: oc.PartitionMaxAckPending(),
		NodeID: e.cfg.NodeID, Replicas: e.cfg.StreamReplicas,
	}, e.JS, e.Subjects, e.Orders, e.Keyer, e.Metrics, e.log)
	if err := e.Partitions.Start(ctx); err != nil {
		e.Orders.Stop()
		e.Keyer.Stop()
		return err
	}
	e.stops = append(e.stops, e.Partitions.Stop)
	go e.watchConsumers(ctx)
	return nil
}

// Ready reports whether NATS and Postgres answer and every consumer this
// process owns is being pulled.
func (e *Engine) Ready(ctx context.Context) error {
	if !e.NC.IsConnected() {
		return errors.New("NATS is not connected")
	}
	if e.Partitions != nil {
		if err := e.Partitions.Ready(); err != nil {
			return err
		}
	}
	for _, check := range e.readyChecks {
		if err := check(); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := e.Pool.Ping(ctx); err != nil {
		return fmt.Errorf("PostgreSQL: %w", err)
	}
	return nil
}

func (e *Engine) startHTTP(ctx context.Context) error {
	if e.cfg.PProf {
		if err := e.startPProf(); err != nil {
			return err
		}
	}
	if e.cfg.HTTPAddr == "" || e.cfg.HTTPAddr == "off" {
		return nil
	}
	mux := http.NewServeMux()
	// OpenMetrics (when the scraper asks for it) carries the histograms'
	// exemplars: trace ids of sampled orders (internal/tracing).
	mux.Handle("GET /metrics", promhttp.HandlerFor(e.Registry, promhttp.HandlerOpts{Registry: e.Registry, EnableOpenMetrics: true}))
	var srv *http.Server
	if e.has(config.WorkerAPI) {
		// The API answers /v1/*, /healthz and /readyz itself.
		a, err := e.newAPI(ctx)
		if err != nil {
			return err
		}
		mux.Handle("/", tracing.HTTPHandler(a.Handler(), "promoengine api"))
		srv = a.HTTPServer(e.cfg.HTTPAddr)
		// promo.v1.PromoService over gRPC, gRPC-Web and Connect, same port.
		g, err := e.newGRPC(a)
		if err != nil {
			return err
		}
		for path, h := range g.Routes() {
			mux.Handle(path, h)
		}
		srv.RegisterOnShutdown(g.Close)
	} else {
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"status":"ok"}`))
		})
		mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			if err := e.Ready(r.Context()); err != nil {
				// Unauthenticated: the driver's text (hosts, users) stays in
				// the log.
				e.log.Warn().Err(err).Msg("not ready")
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte(`{"status":"unavailable","error":"NATS or PostgreSQL is not reachable (see the engine's log)"}`))
				return
			}
			_, _ = w.Write([]byte(`{"status":"ready"}`))
		})
		srv = &http.Server{
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
		}
	}
	srv.Handler = mux
	ln, err := net.Listen("tcp", e.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on PROMO_HTTP_ADDR %s: %w", e.cfg.HTTPAddr, err)
	}
	if ln, err = e.listenTLS(ln); err != nil {
		return err
	}
	e.httpLn = ln
	e.http = srv
	e.httpDone = make(chan struct{})
	go func() {
		defer close(e.httpDone)
		if err := e.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error().Err(err).Msg("http server")
		}
	}()
	e.log.Info().Str("addr", ln.Addr().String()).Bool("tls", e.cfg.TLSCertFile != "").Msg("HTTP listening")
	return nil
}

// HTTPAddr is the address the HTTP server listens on ("" when off).
func (e *Engine) HTTPAddr() string {
	if e.httpLn == nil {
		return ""
	}
	return e.httpLn.Addr().String()
}

// watchConsumers exports the lag of the order consumers as metrics.
func (e *Engine) watchConsumers(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s, err := e.JS.Stream(ctx, e.Subjects.StreamOrders())
			if err != nil {
				continue
			}
			infos := s.ListConsumers(ctx)
			for info := range infos.Info() {
				e.Metrics.ConsumerPending.WithLabelValues(info.Name).Set(float64(info.NumPending))
				e.Metrics.ConsumerAckPending.WithLabelValues(info.Name).Set(float64(info.NumAckPending))
			}
		}
	}
}

// Stop shuts down gracefully: HTTP stops accepting, workers stop fetching
// and finish, commit and acknowledge their in-flight batches, then the
// connections close. Safe to call more than once.
func (e *Engine) Stop() {
	select {
	case <-e.stopped:
		return
	default:
	}
	defer close(e.stopped)
	if e.http != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = e.http.Shutdown(sctx)
		cancel()
		<-e.httpDone
	}
	if e.pprof != nil {
		_ = e.pprof.Close()
	}
	// Workers stop in start order: the order workers first, so they commit
	// and acknowledge their in-flight batches, then the relay, which
	// publishes what they committed before it stops.
	for _, stop := range e.stops {
		stop()
	}
	e.cancel()
	if e.Catalogs != nil {
		<-e.Catalogs.Done()
	}
	if e.NC != nil {
		_ = e.NC.Drain()
	}
	e.closePools(poolCloseWait)
}

// poolCloseWait bounds how long Stop waits for the database pools to
// close: closing a connection asks PostgreSQL to cancel its query, which
// pgx waits up to 15 s for, per connection; with PostgreSQL unreachable
// (a stalled network) that would hold the stop for minutes. The process
// is exiting; the kernel closes what is left.
const poolCloseWait = 5 * time.Second

// closePools closes the pools at once and waits up to wait for them.
func (e *Engine) closePools(wait time.Duration) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		var wg sync.WaitGroup
		for _, p := range []*pgxpool.Pool{e.ReadPool, e.Pool} {
			if p != nil {
				wg.Add(1)
				go func() { defer wg.Done(); p.Close() }()
			}
		}
		wg.Wait()
	}()
	select {
	case <-done:
	case <-time.After(wait):
		e.log.Warn().Dur("waited", wait).Msg("database connections did not close in time (PostgreSQL not answering); exiting without them")
	}
}

// ordersConfig is the order worker pool of cfg.
func ordersConfig(cfg *config.Config) workers.OrdersConfig {
	return workers.OrdersConfig{Lanes: cfg.Lanes, BatchSize: cfg.BatchSize, MaxDeliver: cfg.MaxDeliver, InFlight: cfg.Transactions,
		Heartbeat: streams.Timing{AckWait: cfg.AckWait}.Heartbeat()}
}
