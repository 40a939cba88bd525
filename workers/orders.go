package workers

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/promoengine/promoengine/internal/consume"
	"github.com/promoengine/promoengine/internal/metrics"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/pkg/rules"
)

// OrdersConfig tunes the order worker pool.
type OrdersConfig struct {
	Lanes      int // per-customer serial lanes; different customers run in parallel (0: InFlight)
	BatchSize  int // most events committed in one transaction
	MaxDeliver int // deliveries before a retried event is dead-lettered
	// InFlight is the most transactions the lanes run at once (0:
	// GOMAXPROCS, at least 2). A lane waiting for its turn keeps queueing,
	// so when transactions are the bottleneck they grow instead of
	// multiplying: a transaction costs PostgreSQL about as much for one
	// event as for fifty.
	InFlight int
	// SoftStop is how long Stop lets in-flight batches finish before
	// cancelling them.
	SoftStop time.Duration
}

// OrdersHooks let tests stop a worker at the precise points where a crash
// matters. Production code leaves them nil.
type OrdersHooks struct {
	// AfterCommit runs after a batch committed and before its messages are
	// acknowledged. Returning an error skips the acks, as a crash would.
	AfterCommit func(eventIDs []string) error
	// InLock runs while a batch holds its customers' row locks, before
	// commit, with the customers it holds.
	InLock func(customers []string)
	// Releasing runs just before the batch gives its locks up (before
	// commit or rollback).
	Releasing func(customers []string)
}

// Orders is the order worker pool: it pulls order events, dead-letters
// invalid ones, and processes valid ones in per-customer lanes, many events
// per PostgreSQL transaction, acknowledging each only after its transaction
// committed.
//
// Per-customer serial processing:
//   - in one process, every event of a customer goes to the same lane
//     (hash of the customer id; a return or cancellation is routed by the
//     customer of its original order), and a lane runs one transaction at a
//     time, so a customer's events take effect in stream order;
//   - across processes, each transaction first locks the rows of all its
//     customers (SELECT … FOR UPDATE, sorted, so two transactions never
//     deadlock on them), so two workers never process one customer at once.
type Orders struct {
	cfg      OrdersConfig
	pool     *pgxpool.Pool
	cons     jetstream.Consumer
	store    *ledger.Store
	catalogs *CatalogWatcher
	settler  *consume.Settler
	subjects events.Subjects
	metrics  *metrics.Metrics
	log      zerolog.Logger
	Hooks    OrdersHooks

	fetcher *consume.Fetcher
	lanes   []chan item
	routes  *routeCache
	txSlots chan struct{} // one per transaction running (OrdersConfig.InFlight)

	stopFetch context.CancelFunc
	stopWork  context.CancelFunc
	stopOnce  sync.Once
	fetchDone chan struct{}
	lanesDone sync.WaitGroup
}

type item struct {
	msg      jetstream.Msg
	ev       *events.Event
	customer string // lock key: customer id, or "" for anonymous
	received time.Time
	seq      uint64
}

// Resolved is the configuration with the defaults NewOrders applies.
func (c OrdersConfig) Resolved() OrdersConfig {
	if c.BatchSize < 1 {
		c.BatchSize = 1
	}
	if c.SoftStop <= 0 {
		c.SoftStop = 10 * time.Second
	}
	if c.InFlight <= 0 {
		c.InFlight = max(runtime.GOMAXPROCS(0), 2)
	}
	if c.Lanes < 1 {
		// More lanes than transactions only adds waiting: a lane holds its
		// events until a transaction slot is free (measured: p99 at 1,000
		// orders/s 15 ms with 2 lanes, 18 ms with 4, 29 ms with 8 on 2 CPUs).
		c.Lanes = c.InFlight
	}
	return c
}

// MaxAckPending is what the pool's consumer should allow unacknowledged:
// four full batches per lane (at least 1,000), so that fetching never
// waits on acknowledgements while lanes have work.
func (c OrdersConfig) MaxAckPending() int {
	c = c.Resolved()
	return max(4*max(c.Lanes, c.InFlight)*c.BatchSize, 1000)
}

// NewOrders assembles the pool; call Start.
func NewOrders(cfg OrdersConfig, pool *pgxpool.Pool, cons jetstream.Consumer, store *ledger.Store,
	catalogs *CatalogWatcher, settler *consume.Settler, subjects events.Subjects, m *metrics.Metrics, log zerolog.Logger) *Orders {
	cfg = cfg.Resolved()
	return &Orders{
		cfg: cfg, pool: pool, cons: cons, store: store, catalogs: catalogs, settler: settler,
		subjects: subjects, metrics: m, log: log.With().Str("worker", "orders").Logger(),
		routes: newRouteCache(16_384), txSlots: make(chan struct{}, cfg.InFlight),
	}
}

// Start begins fetching once a catalog is in force. ctx bounds the whole
// worker; Stop ends it gracefully.
func (o *Orders) Start(ctx context.Context) {
	fetchCtx, stopFetch := context.WithCancel(ctx)
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	o.stopFetch, o.stopWork = stopFetch, stopWork
	o.fetchDone = make(chan struct{})
	// Slots: a full batch for every transaction that can run and two more
	// being filled (at most two per lane). Fetched messages are held
	// decoded, a few kB each: sized by lanes (4,096 by default) they were
	// a third of the live heap at max rate, and RSS went over 110 MB; at
	// (InFlight+2) batches it is ~80 MB for ~5% of throughput.
	slots := min(o.cfg.Lanes*2, o.cfg.InFlight+2) * o.cfg.BatchSize
	o.fetcher = consume.NewFetcher(o.cons, slots, o.log)
	o.lanes = make([]chan item, o.cfg.Lanes)
	for i := range o.lanes {
		o.lanes[i] = make(chan item, slots)
		o.lanesDone.Add(1)
		go o.runLane(workCtx, o.lanes[i])
	}
	go func() {
		defer close(o.fetchDone)
		select {
		case <-o.catalogs.Ready():
		case <-fetchCtx.Done():
			return
		}
		if err := o.fetcher.Run(fetchCtx, func(msg jetstream.Msg) { o.route(workCtx, msg) }); err != nil {
			o.log.Error().Err(err).Msg("fetcher stopped")
		}
	}()
}

// Stop stops fetching, lets queued and in-flight batches commit and ack for
// up to SoftStop, then cancels what is left (unacknowledged events are
// redelivered; the inbox makes that harmless).
func (o *Orders) Stop() {
	if o.stopFetch == nil {
		return
	}
	o.stopOnce.Do(o.stop)
}

func (o *Orders) stop() {
	o.stopFetch()
	<-o.fetchDone
	for _, l := range o.lanes {
		close(l)
	}
	done := make(chan struct{})
	go func() { o.lanesDone.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(o.cfg.SoftStop):
		o.log.Warn().Msg("in-flight batches did not finish in time; cancelling them")
		o.stopWork()
		<-done
	}
	o.stopWork()
}

// route decodes a message and queues it on its customer's lane; invalid
// input is dead-lettered at once.
func (o *Orders) route(ctx context.Context, msg jetstream.Msg) {
	it := item{msg: msg, received: time.Now()}
	if md, err := msg.Metadata(); err == nil {
		it.seq = md.Sequence.Stream
	}
	ev, err := events.Decode(msg.Data())
	if err == nil && o.subjects.OrderSubject(ev.Type) != msg.Subject() {
		err = fmt.Errorf("%w: /type: a %s event was published on %s; want %s",
			events.ErrInvalid, ev.Type, msg.Subject(), o.subjects.OrderSubject(ev.Type))
	}
	if err != nil {
		o.finish(ctx, it, "unknown", consume.NewPermanent(events.DLQInvalidEvent, err))
		return
	}
	it.ev = ev
	key := string(ev.CustomerID())
	if ev.Paid == nil {
		key = o.customerOfOrder(ctx, string(ev.ReferencedOrderID()))
	} else if key != "" {
		// Remember the customer as the sale is routed, not once it is
		// committed: a return fetched right behind its sale must go to the
		// same lane, after the sale and before the customer's next events.
		o.routes.put(string(ev.Paid.ID), key)
	}
	it.customer = key
	if key == "" {
		key = "order:" + string(ev.ReferencedOrderID())
	}
	o.lanes[laneOf(key, len(o.lanes))] <- it
}

// customerOfOrder finds the customer of an already processed order, from a
// cache filled by this process or from the database.
func (o *Orders) customerOfOrder(ctx context.Context, orderID string) string {
	if c, ok := o.routes.get(orderID); ok {
		return c
	}
	m, err := ledger.CustomersOfOrders(ctx, o.pool, []string{orderID})
	if err != nil {
		o.log.Warn().Err(err).Str("order_id", orderID).Msg("look up the customer of an order; routing by order id")
		return ""
	}
	c := m[orderID]
	if c != "" {
		o.routes.put(orderID, c)
	}
	return c
}

func laneOf(key string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// runLane processes a lane's events in batches until the lane is closed.
func (o *Orders) runLane(ctx context.Context, q chan item) {
	defer o.lanesDone.Done()
	batch := make([]item, 0, o.cfg.BatchSize)
	for first := range q {
		batch = append(batch[:0], first)
		// The batch is filled once a transaction slot is ours: what
		// arrived while waiting goes in too.
		o.txSlots <- struct{}{}
	fill:
		for len(batch) < o.cfg.BatchSize {
			select {
			case it, ok := <-q:
				if !ok {
					break fill
				}
				batch = append(batch, it)
			default:
				break fill
			}
		}
		o.processBatch(ctx, batch)
		<-o.txSlots
	}
}

// errItem is a failure attributed to one event of a batch: the batch is
// rolled back and run again without it.
type errItem struct {
	index int
	err   error
}

func (e *errItem) Error() string { return e.err.Error() }

// processBatch commits as many events of the batch as possible in one
// transaction. An event that fails on its own (a return before its order, a
// duplicate order id, a bug on one event) is settled apart and the rest is
// run again without it; a failure of the transaction itself (deadlock,
// serialization, connection) retries the whole batch a few times.
func (o *Orders) processBatch(ctx context.Context, batch []item) {
	cat := o.catalogs.Current()
	pending := slices.Clone(batch)
	mode := txBatch
	for attempt := 0; len(pending) > 0; {
		start := time.Now()
		results, err := o.runTx(ctx, cat, pending, mode)
		var ei *errItem
		switch {
		case err == nil:
			o.metrics.BatchSize.Observe(float64(len(pending)))
			o.metrics.BatchSeconds.Observe(time.Since(start).Seconds())
			o.acknowledge(ctx, pending, results)
			return
		case errors.As(err, &ei):
			bad := pending[ei.index]
			o.finish(ctx, bad, bad.ev.Type, classify(ei.err))
			pending = slices.Delete(pending, ei.index, ei.index+1)
		case errors.Is(err, ledger.ErrLimitRace) && mode != txLocking:
			o.metrics.BatchRetries.WithLabelValues("limit_race").Inc()
			mode = txLocking
		case mode == txBatch && ctx.Err() == nil && !isTxFailure(err):
			// A statement of the bulk path failed and no event is to blame
			// yet: one event at a time says which (a unique violation of a
			// race with another process is then a duplicate order).
			o.metrics.BatchRetries.WithLabelValues("per_event").Inc()
			o.log.Warn().Err(err).Int("events", len(pending)).Msg("batch failed; running it again one event at a time")
			mode = txPerEvent
		case ctx.Err() != nil:
			for _, it := range pending {
				o.finish(context.WithoutCancel(ctx), it, it.ev.Type, context.Canceled)
			}
			return
		default:
			attempt++
			reason := retryReason(err)
			o.metrics.BatchRetries.WithLabelValues(reason).Inc()
			if attempt >= 4 {
				o.log.Error().Err(err).Int("events", len(pending)).Msg("batch failed repeatedly; events will be redelivered")
				for _, it := range pending {
					o.finish(ctx, it, it.ev.Type, err)
				}
				return
			}
			o.log.Warn().Err(err).Str("reason", reason).Int("attempt", attempt).Msg("batch rolled back; retrying")
			select {
			case <-time.After(time.Duration(attempt*attempt) * 20 * time.Millisecond):
			case <-ctx.Done():
			}
		}
	}
}

// txMode is how runTx applies a batch's events.
type txMode int

const (
	// txBatch: ledger.Batch, a few bulk round trips for the whole batch,
	// global program counters deferred to the end.
	txBatch txMode = iota
	// txPerEvent: Store.ProcessDeferred for each event, counters deferred;
	// it tells which event a failing statement belongs to.
	txPerEvent
	// txLocking: Store.Process for each event, program counters locked as
	// they are used, after a limit race (ledger.ErrLimitRace).
	txLocking
)

// runTx runs one transaction over the batch and returns each event's result
// (nil for a duplicate).
//
// Unless txLocking, the global counters of limited programs are deferred to
// the end of the transaction (ledger.ProgramCounters), so a popular program
// does not serialise the lanes; ledger.ErrLimitRace asks for a rerun with
// txLocking.
func (o *Orders) runTx(ctx context.Context, cat *rules.Catalog, batch []item, mode txMode) ([]*events.OrderResult, error) {
	customers := make([]string, 0, len(batch))
	for _, it := range batch {
		if it.customer != "" {
			customers = append(customers, it.customer)
		}
	}
	slices.Sort(customers)
	customers = slices.Compact(customers)

	tx, err := o.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	inLock := false
	releasing := func() {
		if inLock && o.Hooks.Releasing != nil {
			o.Hooks.Releasing(customers)
		}
		inLock = false
	}
	defer func() {
		releasing()
		_ = tx.Rollback(context.WithoutCancel(ctx))
	}()
	inLockHook := func() {
		if o.Hooks.InLock != nil {
			o.Hooks.InLock(customers)
			inLock = true
		}
	}
	for i, it := range batch {
		if it.ev.Paid != nil && it.ev.Paid.Currency != cat.Currency {
			return nil, &errItem{i, consume.NewPermanent(events.DLQInvalidEvent, fmt.Errorf(
				"%w: /order/currency: %q is not the catalog currency %q", events.ErrInvalid, it.ev.Paid.Currency, cat.Currency))}
		}
	}
	var results []*events.OrderResult
	if mode == txBatch {
		// The batch takes the locks in its first round trip.
		results, err = o.runBatch(ctx, tx, cat, batch, customers)
		if err == nil {
			inLockHook()
		}
	} else {
		if err := ledger.LockCustomers(ctx, tx, customers); err != nil {
			return nil, err
		}
		inLockHook()
		results, err = o.runPerEvent(ctx, tx, cat, batch, mode == txLocking)
	}
	if err != nil {
		return nil, err
	}
	releasing()
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return results, nil
}

// runBatch applies the batch with ledger.Batch, which first locks the
// batch's customers (sorted: see ledger.LockCustomers).
func (o *Orders) runBatch(ctx context.Context, tx pgx.Tx, cat *rules.Catalog, batch []item, customers []string) ([]*events.OrderResult, error) {
	evs := make([]ledger.BatchEvent, len(batch))
	for i, it := range batch {
		evs[i] = ledger.BatchEvent{Event: it.ev, StreamSeq: it.seq}
	}
	lb := o.store.NewBatch(tx, cat)
	lb.LockCustomers(customers)
	results, err := lb.Process(ctx, evs)
	var ee *ledger.EventError
	if errors.As(err, &ee) {
		if isTxFailure(ee.Err) || ctx.Err() != nil {
			return nil, ee.Err
		}
		return nil, &errItem{ee.Index, ee.Err}
	}
	return results, err
}

// runPerEvent applies the batch one event at a time.
func (o *Orders) runPerEvent(ctx context.Context, tx pgx.Tx, cat *rules.Catalog, batch []item, locking bool) ([]*events.OrderResult, error) {
	var counters *ledger.ProgramCounters
	if !locking {
		counters = ledger.NewProgramCounters()
	}
	results := make([]*events.OrderResult, len(batch))
	for i, it := range batch {
		res, err := o.store.ProcessDeferred(ctx, tx, cat, it.ev, it.seq, counters)
		if err != nil {
			if isTxFailure(err) || ctx.Err() != nil {
				return nil, err
			}
			return nil, &errItem{i, err}
		}
		results[i] = res
	}
	if counters != nil {
		if err := counters.Flush(ctx, tx); err != nil {
			return nil, err
		}
	}
	return results, nil
}

// acknowledge acks a committed batch, after the test hook if any.
func (o *Orders) acknowledge(ctx context.Context, batch []item, results []*events.OrderResult) {
	if o.Hooks.AfterCommit != nil {
		ids := make([]string, len(batch))
		for i, it := range batch {
			ids[i] = it.ev.EventID
		}
		if err := o.Hooks.AfterCommit(ids); err != nil {
			for range batch {
				o.fetcher.Release()
			}
			return
		}
	}
	now := time.Now()
	for i, it := range batch {
		outcome := "duplicate"
		if r := results[i]; r != nil {
			outcome = r.Status
		}
		o.metrics.EventSeconds.WithLabelValues(it.ev.Type).Observe(now.Sub(it.received).Seconds())
		o.metrics.Events.WithLabelValues(it.ev.Type, outcome).Inc()
		o.logEvent(it).Str("outcome", outcome).Msg("event processed")
		if err := it.msg.Ack(); err != nil {
			// The effects are committed; a redelivery will find the inbox row.
			o.logEvent(it).Err(err).Msg("ack failed after commit; the redelivery will be skipped by the inbox")
		}
		o.fetcher.Release()
	}
}

// finish settles one event that did not commit with its batch.
func (o *Orders) finish(ctx context.Context, it item, typ string, outcome error) {
	defer o.fetcher.Release()
	if it.ev != nil && it.ev.Paid != nil && it.customer != "" {
		// The route was remembered when the sale was routed; a sale that did
		// not commit (a duplicate order id of another customer, above all)
		// must not route the returns of the order that did.
		o.routes.forget(string(it.ev.Paid.ID), it.customer)
	}
	settlement, err := o.settler.Settle(ctx, it.msg, outcome)
	label := string(settlement)
	if settlement == consume.Acked {
		label = "applied"
	}
	o.metrics.Events.WithLabelValues(typ, label).Inc()
	var perm *consume.Permanent
	var retry *consume.Retry
	switch {
	case settlement == consume.DeadLettered && errors.As(outcome, &perm):
		o.metrics.DeadLetters.WithLabelValues(perm.Code).Inc()
	case settlement == consume.DeadLettered && errors.As(outcome, &retry):
		o.metrics.DeadLetters.WithLabelValues(retry.Code).Inc()
	case settlement == consume.DeadLettered:
		o.metrics.DeadLetters.WithLabelValues(events.DLQProcessingFailed).Inc()
	}
	l := o.logEvent(it).Str("outcome", label).AnErr("reason", outcome)
	if err != nil {
		l = o.log.Error().Err(err).Uint64("stream_seq", it.seq).Str("subject", it.msg.Subject())
	}
	l.Msg("event not committed")
}

func (o *Orders) logEvent(it item) *zerolog.Event {
	e := o.log.Debug()
	if it.ev != nil {
		e = e.Str("event_id", it.ev.EventID).Str("customer_id", it.customer)
	}
	return e.Str("subject", it.msg.Subject()).Uint64("stream_seq", it.seq)
}

// classify turns a ledger failure of one event into its outcome.
func classify(err error) error {
	var perm *consume.Permanent
	switch {
	case errors.As(err, &perm):
		return err
	case errors.Is(err, ledger.ErrUnknownOriginalOrder):
		return &consume.Retry{Code: events.DLQUnknownOriginalOrder, Err: err}
	case errors.Is(err, ledger.ErrDuplicateOrder):
		return consume.NewPermanent(events.DLQDuplicateOrder, err)
	case errors.Is(err, ledger.ErrCurrencyMismatch):
		return consume.NewPermanent(events.DLQInvalidEvent, err)
	}
	return err
}

// isTxFailure reports errors that doom the whole transaction rather than one
// event: deadlocks and serialization failures (class 40), connection loss.
func isTxFailure(err error) bool {
	if errors.Is(err, ledger.ErrConflict) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code[:2] == "40" || pgErr.Code[:2] == "08" || pgErr.Code == "57P01"
	}
	return pgconn.SafeToRetry(err) || errors.Is(err, pgx.ErrTxClosed) || pgconn.Timeout(err)
}

func retryReason(err error) string {
	if errors.Is(err, ledger.ErrConflict) {
		return "conflict"
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40P01":
			return "deadlock"
		case "40001":
			return "serialization"
		}
		return "pg_" + pgErr.Code
	}
	return "connection"
}

// routeCache remembers the customer of recent orders so returns and
// cancellations are routed without a query. Bounded, in two generations:
// when the current one is full it becomes the previous one and the oldest
// entries go, which only costs lookups.
type routeCache struct {
	mu        sync.Mutex
	max       int // entries per generation
	cur, prev map[string]string
}

func newRouteCache(max int) *routeCache {
	return &routeCache{max: max, cur: make(map[string]string), prev: map[string]string{}}
}

func (c *routeCache) get(k string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.cur[k]; ok {
		return v, true
	}
	v, ok := c.prev[k]
	return v, ok
}

func (c *routeCache) put(k, v string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cur) >= c.max {
		c.prev, c.cur = c.cur, make(map[string]string, c.max)
	}
	c.cur[k] = v
}

// forget drops k if it maps to v: a lookup then asks the database.
func (c *routeCache) forget(k, v string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur[k] == v {
		delete(c.cur, k)
	}
	if c.prev[k] == v {
		delete(c.prev, k)
	}
}
