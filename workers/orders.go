package workers

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"github.com/promoengine/promoengine/internal/consume"
	"github.com/promoengine/promoengine/internal/metrics"
	"github.com/promoengine/promoengine/internal/tracing"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/pkg/rules"
)

// OrdersConfig tunes the order worker pool.
type OrdersConfig struct {
	Lanes      int // per-key serial lanes; different keys run in parallel (0: InFlight)
	BatchSize  int // most events committed in one transaction
	MaxDeliver int // deliveries before a retried event is dead-lettered
	// InFlight is the most transactions the lanes run at once (0:
	// GOMAXPROCS, at least 2). A lane waiting for its turn keeps queueing,
	// so when transactions are the bottleneck they grow instead of
	// multiplying: a transaction costs PostgreSQL about as much for one
	// event as for fifty.
	InFlight int
	// ConcurrentAt is how many events a lane must have waiting to start a
	// transaction while another one runs (0: BatchSize/8, at least 8), or
	// that one must have run for slowTransaction.
	// Under it a lane waits for the running transaction to end and takes
	// what queued meanwhile: at moderate load one transaction at a time
	// with a few more events each costs far less (measured at 1,000
	// orders/s on 2 cores: PostgreSQL 585 against 800 µs of CPU per
	// order, the engine 425 against 480) and is not slower; a backlog
	// still gets InFlight transactions.
	ConcurrentAt int
	// SoftStop is how long Stop lets queued and in-flight batches finish
	// before cancelling them.
	SoftStop time.Duration
	// Heartbeat is how often held messages get an InProgress (0: 1 s); it
	// must be well inside the consumers' AckWait (streams.Timing).
	Heartbeat time.Duration
	// RetryMax caps the wait between two tries of a transaction that failed
	// for a reason not of its events (0: 1 s), so that processing resumes
	// within about that long once PostgreSQL is back.
	RetryMax time.Duration
}

// OrdersHooks let tests stop a worker at the precise points where a crash
// matters, or make a transaction fail. Production code leaves them nil.
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
	// BeforeCommit runs inside the transaction just before commit with the
	// batch's event ids; an error it returns is the transaction's error.
	BeforeCommit func(ctx context.Context, tx pgx.Tx, eventIDs []string) error
}

// Orders is the order worker pool: it takes order events from the
// consumers this process owns (workers.Partitions) or from a replay's
// consumer, dead-letters invalid ones, and processes valid ones in per-key
// lanes, many events per PostgreSQL transaction, acknowledging each only
// after its transaction committed.
//
// Per-customer order (SPEC §1.5):
//   - a key (customer, or order for an anonymous sale and its reversals) is
//     in one partition, which one process consumes at a time, in stream
//     order (see internal/partition);
//   - in the process, every event of a key goes to the same lane (hash of
//     the key token of its subject), and a lane runs one transaction at a
//     time, in the order the events arrived;
//   - a transaction that fails for a reason that is not its events' (lost
//     connection, PostgreSQL restarting, serialization failure, deadlock)
//     is retried in place, holding its lane, its messages kept alive: a
//     later event of the same key never passes it, and such retries cost
//     no delivery;
//   - only an event that fails on its own (invalid, a duplicate order id, a
//     return before its sale, a result too large…) leaves its lane's order:
//     it is dead-lettered or retried later, and the key's next events go on;
//   - each transaction still locks the rows of all its customers (SELECT …
//     FOR UPDATE, sorted), so two processes never apply one customer's
//     events at once, even during a takeover.
type Orders struct {
	cfg      OrdersConfig
	pool     *pgxpool.Pool
	store    *ledger.Store
	catalogs *CatalogWatcher
	settler  *consume.Settler
	subjects events.Subjects
	metrics  *metrics.Metrics
	log      zerolog.Logger
	Hooks    OrdersHooks
	// Committed, when set (before Start), is called after each committed
	// transaction: the engine wakes its outbox relay with it.
	Committed func()

	held  *consume.Held
	lanes []*lane
	// A transaction holds first, or, when its lane has ConcurrentAt events
	// waiting, one of extra (InFlight-1 of them; nil when InFlight is 1).
	first, extra chan struct{}
	firstAt      atomic.Int64 // when the first slot was last taken (unix ns)

	workCtx   context.Context
	stopWork  context.CancelFunc
	stopOnce  sync.Once
	lanesDone sync.WaitGroup
	beatDone  chan struct{}
}

// item is one message between delivery and settlement.
type item struct {
	msg      jetstream.Msg
	src      *consume.Source
	token    string // the key token of its subject: decides the lane
	seq      uint64
	delivery uint64
	received time.Time
	ev       *events.Event // decoded when its batch forms
	customer string        // lock key: the sale's customer, "" otherwise

	// The event span and its context (orders_trace.go); nil untraced.
	traceCtx context.Context
	span     trace.Span
}

func (it *item) typ() string {
	if it.ev != nil {
		return it.ev.Type
	}
	return "unknown"
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
	if c.Heartbeat <= 0 {
		c.Heartbeat = time.Second
	}
	if c.ConcurrentAt <= 0 {
		c.ConcurrentAt = max(c.BatchSize/8, 8)
	}
	if c.RetryMax <= 0 {
		c.RetryMax = time.Second
	}
	return c
}

// MaxAckPending is what a replay's one consumer may have unacknowledged: a
// few full batches, so that fetching never waits on acknowledgements while
// lanes have work, and bounded, since everything held is kept in memory and
// beaten.
func (c OrdersConfig) MaxAckPending() int {
	c = c.Resolved()
	return max(2*c.BatchSize, 256)
}

// PartitionMaxAckPending is what each consumer of the partitions (and the
// keyer's) may have unacknowledged: one full batch. A process owns all the
// partitions when it is alone, so what it may hold is this times the
// partition count (4,096 messages with the defaults, ~13 MB of held
// messages at ~3 kB each, was twice that), which keeps a catch-up after an
// outage inside SPEC §10's 100 MB while the lanes still find a batch and
// the next one waiting.
func (c OrdersConfig) PartitionMaxAckPending() int {
	c = c.Resolved()
	return max(c.BatchSize, 128)
}

// NewOrders assembles the pool; call Start.
func NewOrders(cfg OrdersConfig, pool *pgxpool.Pool, store *ledger.Store, catalogs *CatalogWatcher,
	settler *consume.Settler, subjects events.Subjects, m *metrics.Metrics, log zerolog.Logger) *Orders {
	cfg = cfg.Resolved()
	return &Orders{
		cfg: cfg, pool: pool, store: store, catalogs: catalogs, settler: settler,
		subjects: subjects, metrics: m, log: log.With().Str("worker", "orders").Logger(),
		held: consume.NewHeld(cfg.Heartbeat), first: make(chan struct{}, 1), extra: extraSlots(cfg.InFlight),
	}
}

func extraSlots(inFlight int) chan struct{} {
	if inFlight <= 1 {
		return nil
	}
	return make(chan struct{}, inFlight-1)
}

// slowTransaction is how long the transaction holding the first slot may
// run before the other lanes stop waiting for it: a transaction of a few
// events takes milliseconds, so one running longer waits on something (a
// lock a taking-over node still holds, PostgreSQL stalling, a retry in
// place) that the other lanes' customers need not wait on.
const slowTransaction = 100 * time.Millisecond

// acquire waits for the lane's turn to run a transaction and returns the
// slot to give back: the first one whenever it is free, another only while
// the lane has ConcurrentAt events or more waiting (checked again as events
// arrive) or the first one's transaction is slow.
func (o *Orders) acquire(l *lane) chan struct{} {
	for {
		select {
		case o.first <- struct{}{}:
			o.firstAt.Store(time.Now().UnixNano())
			return o.first
		default:
		}
		if o.extra == nil {
			o.first <- struct{}{}
			return o.first
		}
		slowIn := slowTransaction - time.Since(time.Unix(0, o.firstAt.Load()))
		if l.len() >= o.cfg.ConcurrentAt || slowIn <= 0 {
			select {
			case o.first <- struct{}{}:
				o.firstAt.Store(time.Now().UnixNano())
				return o.first
			case o.extra <- struct{}{}:
				return o.extra
			}
		}
		t := time.NewTimer(slowIn)
		select {
		case o.first <- struct{}{}:
			t.Stop()
			o.firstAt.Store(time.Now().UnixNano())
			return o.first
		case <-l.ready: // more events: look again (wait looks at the queue, not the signal)
		case <-t.C: // the running transaction is slow now
		}
		t.Stop()
	}
}

// Start starts the lanes; they take events once a catalog is in force.
// ctx bounds the whole pool; Stop ends it gracefully.
func (o *Orders) Start(ctx context.Context) {
	o.workCtx, o.stopWork = context.WithCancel(context.WithoutCancel(ctx))
	o.lanes = make([]*lane, o.cfg.Lanes)
	for i := range o.lanes {
		o.lanes[i] = newLane()
		o.lanesDone.Add(1)
		go o.runLane(o.workCtx, o.lanes[i])
	}
	o.beatDone = make(chan struct{})
	go func() { defer close(o.beatDone); o.held.Run(o.workCtx) }()
}

// Handle takes a message of src. It never blocks (the consumer's
// MaxAckPending bounds what arrives), so messages are beaten from the
// moment they arrive.
func (o *Orders) Handle(src *consume.Source, msg jetstream.Msg) {
	it := &item{msg: msg, src: src, received: time.Now(), delivery: 1}
	if md, err := msg.Metadata(); err == nil {
		it.seq, it.delivery = md.Sequence.Stream, md.NumDelivered
	}
	o.startEventSpan(it)
	_, _, it.token, _ = o.subjects.OrderSubjectParts(msg.Subject())
	o.held.Add(msg, src)
	src.Hold()
	src.SawPin(msg.Headers().Get(pinHeader))
	if !o.lanes[laneOf(it.token, len(o.lanes))].push(it) {
		o.finish(o.workCtx, it, context.Canceled) // stopping: hand it back
	}
}

// Held is the number of messages the pool holds (queued or in flight).
func (o *Orders) Held() int { return o.held.Len() }

// Stop lets queued and in-flight batches commit and ack for up to SoftStop,
// then cancels what is left (naked for immediate redelivery). The caller
// stops the pullers first.
func (o *Orders) Stop() {
	if o.stopWork == nil {
		return
	}
	o.stopOnce.Do(o.stop)
}

func (o *Orders) stop() {
	for _, l := range o.lanes {
		l.close()
	}
	done := make(chan struct{})
	go func() { o.lanesDone.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(o.cfg.SoftStop):
		o.log.Warn().Msg("queued and in-flight batches did not finish in time; cancelling them")
		o.stopWork()
		<-done
	}
	o.stopWork()
	<-o.beatDone
}

func laneOf(key string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// runLane processes a lane's events in batches until the lane is closed and
// empty.
func (o *Orders) runLane(ctx context.Context, l *lane) {
	defer o.lanesDone.Done()
	select {
	case <-o.catalogs.Ready():
	case <-ctx.Done():
	}
	batch := make([]*item, 0, o.cfg.BatchSize)
	for l.wait() {
		// The batch is filled once a transaction slot is ours: what
		// arrived while waiting goes in too.
		slot := o.acquire(l)
		batch = l.take(batch[:0], o.cfg.BatchSize)
		batch = o.prepare(ctx, batch)
		if len(batch) > 0 {
			o.processBatch(ctx, batch)
		}
		<-slot
	}
}

// prepare decodes the batch's events, hands back those of released sources
// and dead-letters invalid ones; it returns the rest, in order.
func (o *Orders) prepare(ctx context.Context, batch []*item) []*item {
	kept := batch[:0]
	for _, it := range batch {
		if it.src.Released() || ctx.Err() != nil {
			o.finish(ctx, it, context.Canceled)
			continue
		}
		if it.ev == nil {
			if err := o.decode(it); err != nil {
				o.finish(ctx, it, consume.NewPermanent(events.DLQInvalidEvent, err))
				continue
			}
		}
		kept = append(kept, it)
	}
	return kept
}

// decode reads an item's event and checks it against its subject.
func (o *Orders) decode(it *item) error {
	ev, err := events.Decode(it.msg.Data())
	if err != nil {
		return err
	}
	kind, _, _, _ := o.subjects.OrderSubjectParts(it.msg.Subject())
	if events.TypeOfKind(kind) != ev.Type {
		return fmt.Errorf("%w: /type: a %s event was published on %s; want %s",
			events.ErrInvalid, ev.Type, it.msg.Subject(), o.subjects.OrderSubject(ev.Type)+".…")
	}
	it.ev = ev
	it.customer = string(ev.CustomerID())
	it.decodedEventSpan()
	return nil
}

// errItem is a failure attributed to one event of a batch: the batch is
// rolled back and run again without it.
type errItem struct {
	index int
	err   error
}

func (e *errItem) Error() string { return e.err.Error() }

// processBatch commits the batch's events, in as few transactions as it
// can, and settles every one of them.
//
//   - A transaction failure that is not the events' fault (see
//     isInfraFailure) is retried in place, forever, with capped exponential
//     backoff, the lane held and the messages beaten: nothing later of the
//     lane's keys passes it, and PostgreSQL coming back resumes processing
//     within RetryMax.
//   - An event that fails on its own is settled apart (dead letter, or a
//     per-event retry) and the rest runs again without it.
//   - A statement that fails with no event to blame runs the batch again one
//     event at a time in one transaction, which names the event; if even
//     that cannot (a failure outside any one event's statements), one
//     transaction per event does.
//   - Events of a source released meanwhile (the partition moved) are handed
//     back instead of being tried again.
func (o *Orders) processBatch(ctx context.Context, batch []*item) {
	cat := o.catalogs.Current()
	ctx, bspan := o.startBatchSpan(ctx, batch, cat)
	committed := 0
	defer func() { endBatchSpan(bspan, committed, nil) }()
	pending := slices.Clone(batch)
	mode := txBatch
	var wait time.Duration
	failing := 0
	for len(pending) > 0 {
		if mode == txSingle {
			o.processSingly(ctx, cat, pending)
			return
		}
		start := time.Now()
		results, err := o.runTx(ctx, cat, pending, mode)
		var ei *errItem
		switch {
		case err == nil:
			if o.Committed != nil {
				o.Committed()
			}
			o.metrics.BatchSize.Observe(float64(len(pending)))
			tracing.Observe(ctx, o.metrics.BatchSeconds, time.Since(start).Seconds())
			committed = len(pending)
			if failing > 0 {
				o.log.Info().Int("tries", failing+1).Int("events", len(pending)).Msg("batch committed after retrying in place")
			}
			o.acknowledge(ctx, pending, results)
			return
		case ctx.Err() != nil:
			o.release(ctx, pending)
			return
		case errors.As(err, &ei):
			bad := pending[ei.index]
			o.finish(ctx, bad, classify(ei.err))
			pending = slices.Delete(pending, ei.index, ei.index+1)
		case errors.Is(err, ledger.ErrLimitRace) && mode != txLocking:
			o.metrics.BatchRetries.WithLabelValues("limit_race").Inc()
			mode = txLocking
		case isInfraFailure(err):
			failing++
			wait = o.backoff(wait)
			reason := retryReason(err)
			o.metrics.BatchRetries.WithLabelValues(reason).Inc()
			if failing == 1 || failing%30 == 0 {
				o.log.Warn().Err(err).Str("reason", reason).Int("events", len(pending)).Int("tries", failing).
					Dur("next_in", wait).Msg("transaction failed, not because of its events; retrying in place")
			}
			if !o.sleep(ctx, wait) {
				o.release(ctx, pending)
				return
			}
			pending = o.dropReleased(ctx, pending)
		case mode == txBatch:
			// A statement of the bulk path failed and no event is to blame
			// yet: one event at a time says which (a unique violation of a
			// race with another process is then a duplicate order).
			o.metrics.BatchRetries.WithLabelValues("per_event").Inc()
			o.log.Warn().Err(err).Int("events", len(pending)).Msg("batch failed; running it again one event at a time")
			mode = txPerEvent
		default:
			o.metrics.BatchRetries.WithLabelValues("single").Inc()
			o.log.Warn().Err(err).Int("events", len(pending)).Msg("batch failed with no event to blame; one transaction per event")
			mode = txSingle
		}
	}
}

// processSingly runs each event in its own transaction, in order: an event
// whose transaction fails on its own is dead-lettered (processing_failed
// unless it has its own code), the others commit.
func (o *Orders) processSingly(ctx context.Context, cat *rules.Catalog, pending []*item) {
	for i, it := range pending {
		var wait time.Duration
		for {
			if ctx.Err() != nil || it.src.Released() {
				o.release(ctx, pending[i:])
				return
			}
			results, err := o.runTx(ctx, cat, []*item{it}, txLocking)
			var ei *errItem
			switch {
			case err == nil:
				if o.Committed != nil {
					o.Committed()
				}
				o.acknowledge(ctx, []*item{it}, results)
			case errors.As(err, &ei):
				o.finish(ctx, it, classify(ei.err))
			case isInfraFailure(err) && ctx.Err() == nil:
				wait = o.backoff(wait)
				o.metrics.BatchRetries.WithLabelValues(retryReason(err)).Inc()
				o.sleep(ctx, wait)
				continue
			case ctx.Err() != nil:
				continue
			default:
				o.finish(ctx, it, consume.NewPermanent(events.DLQProcessingFailed,
					fmt.Errorf("the event's transaction fails on its own: %w", err)))
			}
			break
		}
	}
}

// backoff doubles the wait from 20 ms up to RetryMax, with jitter so that
// lanes do not retry in step.
func (o *Orders) backoff(prev time.Duration) time.Duration {
	next := min(max(2*prev, 20*time.Millisecond), o.cfg.RetryMax)
	return next/2 + time.Duration(rand.Int64N(int64(next/2)+1))
}

// sleep waits d; false when ctx ended first.
func (o *Orders) sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}

// dropReleased hands back the events of released sources.
func (o *Orders) dropReleased(ctx context.Context, pending []*item) []*item {
	kept := pending[:0]
	for _, it := range pending {
		if it.src.Released() {
			o.finish(ctx, it, context.Canceled)
			continue
		}
		kept = append(kept, it)
	}
	return kept
}

// release hands back events that were not committed.
func (o *Orders) release(ctx context.Context, pending []*item) {
	for _, it := range pending {
		o.finish(context.WithoutCancel(ctx), it, context.Canceled)
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
	// txSingle: one transaction per event (processSingly).
	txSingle
)

// txTimeout bounds one order transaction: a batch takes milliseconds, so a
// transaction still running after this long is stuck (a network stall)
// and is retried in place.
const txTimeout = 30 * time.Second

// runTx runs one transaction over the batch and returns each event's result
// (nil for a duplicate).
//
// Unless txLocking, the global counters of limited programs are deferred to
// the end of the transaction (ledger.ProgramCounters), so a popular program
// does not serialise the lanes; ledger.ErrLimitRace asks for a rerun with
// txLocking.
func (o *Orders) runTx(ctx context.Context, cat *rules.Catalog, batch []*item, mode txMode) ([]*events.OrderResult, error) {
	customers := make([]string, 0, len(batch))
	for _, it := range batch {
		if it.customer != "" {
			customers = append(customers, it.customer)
		}
	}
	slices.Sort(customers)
	customers = slices.Compact(customers)
	for i, it := range batch {
		if it.ev.Paid != nil && it.ev.Paid.Currency != cat.Currency {
			return nil, &errItem{i, consume.NewPermanent(events.DLQInvalidEvent, fmt.Errorf(
				"%w: /order/currency: %q is not the catalog currency %q", events.ErrInvalid, it.ev.Paid.Currency, cat.Currency))}
		}
	}

	outer := ctx
	ctx, cancel := context.WithTimeout(ctx, txTimeout)
	defer cancel()
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
		_ = tx.Rollback(context.WithoutCancel(outer))
	}()
	inLockHook := func() {
		if o.Hooks.InLock != nil {
			o.Hooks.InLock(customers)
			inLock = true
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
			if len(batch) == 1 && !isInfraFailure(err) && ctx.Err() == nil {
				return nil, &errItem{0, err}
			}
			return nil, err
		}
		inLockHook()
		results, err = o.runPerEvent(ctx, tx, cat, batch, mode == txLocking)
	}
	if err != nil {
		return nil, err
	}
	if o.Hooks.BeforeCommit != nil {
		if err := o.Hooks.BeforeCommit(ctx, tx, eventIDs(batch)); err != nil {
			return nil, err
		}
	}
	releasing()
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return results, nil
}

func eventIDs(batch []*item) []string {
	ids := make([]string, len(batch))
	for i, it := range batch {
		ids[i] = it.ev.EventID
	}
	return ids
}

// runBatch applies the batch with ledger.Batch, which first locks the
// batch's customers (sorted: see ledger.LockCustomers).
func (o *Orders) runBatch(ctx context.Context, tx pgx.Tx, cat *rules.Catalog, batch []*item, customers []string) ([]*events.OrderResult, error) {
	evs := make([]ledger.BatchEvent, len(batch))
	for i, it := range batch {
		evs[i] = ledger.BatchEvent{Event: it.ev, StreamSeq: it.seq, TraceParent: it.traceParent()}
	}
	lb := o.store.NewBatch(tx, cat)
	lb.LockCustomers(customers)
	results, err := lb.Process(ctx, evs)
	var ee *ledger.EventError
	if errors.As(err, &ee) {
		if isInfraFailure(ee.Err) || ctx.Err() != nil {
			return nil, ee.Err
		}
		return nil, &errItem{ee.Index, ee.Err}
	}
	return results, err
}

// runPerEvent applies the batch one event at a time.
func (o *Orders) runPerEvent(ctx context.Context, tx pgx.Tx, cat *rules.Catalog, batch []*item, locking bool) ([]*events.OrderResult, error) {
	var counters *ledger.ProgramCounters
	if !locking {
		counters = ledger.NewProgramCounters()
	}
	results := make([]*events.OrderResult, len(batch))
	for i, it := range batch {
		res, err := o.store.ProcessDeferred(ledger.WithTraceParent(ctx, it.traceParent()), tx, cat, it.ev, it.seq, counters)
		if err != nil {
			if isInfraFailure(err) || ctx.Err() != nil {
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
func (o *Orders) acknowledge(ctx context.Context, batch []*item, results []*events.OrderResult) {
	if o.Hooks.AfterCommit != nil {
		if err := o.Hooks.AfterCommit(eventIDs(batch)); err != nil {
			for _, it := range batch {
				o.forget(it)
			}
			return
		}
	}
	now := time.Now()
	for i, it := range batch {
		outcome := "duplicate"
		var version int64
		if r := results[i]; r != nil {
			outcome, version = r.Status, r.CatalogVersion
		}
		tracing.Observe(it.logCtx(), o.metrics.EventSeconds.WithLabelValues(it.ev.Type), now.Sub(it.received).Seconds())
		it.endEventSpan(outcome, version, nil)
		o.metrics.Events.WithLabelValues(it.ev.Type, outcome).Inc()
		o.logEvent(it).Str("outcome", outcome).Msg("event processed")
		if err := it.msg.Ack(); err != nil {
			// The effects are committed; a redelivery will find the inbox row.
			o.logEvent(it).Err(err).Msg("ack failed after commit; the redelivery will be skipped by the inbox")
		}
		o.forget(it)
	}
	_ = ctx
}

// forget stops holding an item.
func (o *Orders) forget(it *item) {
	it.endEventSpan("abandoned", 0, nil) // no-op once ended with its outcome
	o.held.Remove(it.msg)
	it.src.Done()
}

// finish settles one event that did not commit with its batch.
func (o *Orders) finish(ctx context.Context, it *item, outcome error) {
	defer o.forget(it)
	if errors.Is(outcome, context.Canceled) {
		ctx = context.WithoutCancel(ctx)
	}
	settlement, err := o.settler.Settle(ctx, it.msg, outcome)
	label := string(settlement)
	if settlement == consume.Acked {
		label = "applied"
	}
	o.metrics.Events.WithLabelValues(it.typ(), label).Inc()
	if settlement == consume.DeadLettered {
		o.metrics.DeadLetters.WithLabelValues(deadLetterCode(outcome)).Inc()
	}
	if errors.Is(outcome, context.Canceled) {
		it.endEventSpan(label, 0, nil)
	} else {
		it.endEventSpan(label, 0, outcome)
	}
	l := o.logEvent(it).Str("outcome", label).AnErr("reason", outcome)
	if err != nil {
		l = o.log.Error().Err(err).Uint64("stream_seq", it.seq).Str("subject", it.msg.Subject())
	}
	l.Msg("event not committed")
}

// deadLetterCode is the code a dead letter of outcome carries.
func deadLetterCode(outcome error) string {
	var perm *consume.Permanent
	var retry *consume.Retry
	switch {
	case errors.As(outcome, &perm):
		return perm.Code
	case errors.As(outcome, &retry):
		return retry.Code
	}
	return events.DLQProcessingFailed
}

func (o *Orders) logEvent(it *item) *zerolog.Event {
	e := o.log.Debug().Ctx(it.logCtx())
	if it.ev != nil {
		e = e.Str("event_id", it.ev.EventID).Str("customer_id", it.customer)
	}
	return e.Str("subject", it.msg.Subject()).Uint64("stream_seq", it.seq)
}

// classify turns a ledger failure of one event into its outcome. A failure
// of its own with no code of its own is a processing failure of that event:
// retried on the per-event schedule, dead-lettered after MaxDeliver.
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
	case errors.Is(err, ledger.ErrResultTooLarge):
		return consume.NewPermanent(events.DLQResultTooLarge, err)
	}
	return &consume.Retry{Code: events.DLQProcessingFailed, Err: err}
}
