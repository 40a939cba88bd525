package ops

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/ledger"
	"github.com/promoengine/promoengine/pkg/rules"
)

// DryRunOptions tune DryRun.
type DryRunOptions struct {
	Range Range
	// BatchSize is the most events re-applied in one ledger.Batch, like
	// PROMO_BATCH_SIZE for the worker (default 256).
	BatchSize int
	// CheckpointEvery is how many events the scratch work commits at a time
	// (default 1000; see scratch).
	CheckpointEvery int
	Progress        Progress
}

// DryRunReport is the outcome of DryRun.
type DryRunReport struct {
	Stream string `json:"stream"`
	Range  string `json:"range"`
	// CatalogVersion is the current catalog, which the range was evaluated
	// with.
	CatalogVersion int64 `json:"catalog_version"`
	// RebuiltFrom is the sequence of the first processed event, where the
	// rebuild started; LastSeq the last sequence of the range.
	RebuiltFrom uint64 `json:"rebuilt_from_seq"`
	LastSeq     uint64 `json:"last_seq"`
	// Reapplied counts the events re-applied to the scratch ledger, before
	// and in the range; JobRuns the recorded expiry/downgrade job runs
	// re-applied between them.
	Reapplied int `json:"reapplied"`
	JobRuns   int `json:"job_runs"`
	// Compared counts the processed events of the range whose result was
	// compared; NotProcessed the events of the range that were never
	// processed (not yet, or dead-lettered), which have nothing to compare.
	Compared     int         `json:"compared"`
	NotProcessed int         `json:"not_processed"`
	Differences  []EventDiff `json:"differences"`
	// Warnings are reasons to trust the comparison less (events that could
	// not be re-applied before the range, processed events the stream no
	// longer holds).
	Warnings []string      `json:"warnings,omitempty"`
	Elapsed  time.Duration `json:"elapsed_ns"`
}

// Differs reports whether any event of the range would get another result.
func (r *DryRunReport) Differs() bool { return len(r.Differences) > 0 }

// EventDiff is an event of the range whose result would differ.
type EventDiff struct {
	Seq                  uint64      `json:"seq"`
	EventID              string      `json:"event_id"`
	Type                 string      `json:"type"`
	OrderID              string      `json:"order_id"`
	StoredCatalogVersion int64       `json:"stored_catalog_version"`
	Fields               []FieldDiff `json:"fields,omitempty"`
	// Failure is set instead of Fields when the event would not get a
	// result at all under the current catalog but be dead-lettered (its
	// currency is no longer the catalog's, say).
	Failure string `json:"failure,omitempty"`
}

// ErrHistoryGone: the stream no longer holds every processed event, so the
// ledger cannot be rebuilt from the first one.
var ErrHistoryGone = errors.New("ops: the stream no longer holds the first processed event")

// dryRunChunk is how many messages are looked up in the real database per
// round trip.
const dryRunChunk = 256

// DryRun answers "what would the events of this range have got under the
// current catalog?" and writes nothing (SPEC §9, `replay --dry-run`).
//
// It rebuilds the ledger in a scratch session (see scratch) by re-applying
// every processed event, from the first one, with the ledger calls of the
// order worker (a ledger.Batch that locks its customers and processes up to
// 256 events, an event failing on its own set apart): events before the range
// with the catalog version each was processed with, events in the range
// with the current catalog. The recorded job runs (expiry, downgrades) are
// re-applied where they happened among the events. Each result of the range
// is compared, field by field, with the stored one, ignoring
// catalog_version. Everything read from the real database is read in one
// REPEATABLE READ, READ ONLY transaction, so a running engine does not
// change the picture half-way.
//
// An event counts as processed where its inbox row says it was: at that
// stream sequence (a redriven dead letter is processed at the sequence of
// its republished copy, and its dead-lettered copy is "not processed").
// Events are re-applied in the order they were processed — the inbox's
// processed_at, then stream sequence — which is stream order for each
// customer except where the workers had to retry an event (a return that
// came before its order): there stream order would give another result
// than the one stored even with an unchanged catalog.
//
// Limits: the stream must still hold the first processed event (POS_ORDERS
// keeps 90 days by default), else ErrHistoryGone; batches are re-applied
// one after the other, whereas the workers process customers in parallel, so a
// program limit (total_uses, budget) reached in a close race may fall to a
// different order than it did; events read ahead of their turn in
// processing order are held in memory (few, unless a replay processed old
// events long after they were stored).
func (o *Operator) DryRun(ctx context.Context, opts DryRunOptions) (*DryRunReport, error) {
	start := o.now()
	if err := opts.Range.Validate(); err != nil {
		return nil, err
	}
	if err := o.needPool(); err != nil {
		return nil, err
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 256
	}
	if opts.CheckpointEvery <= 0 {
		opts.CheckpointEvery = 1000
	}
	prog := progressOrNone(opts.Progress)
	defer prog.Done()
	name := o.subjects.StreamOrders()
	stream, err := o.stream(ctx, name)
	if err != nil {
		return nil, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	w, err := resolve(opts.Range, info.State, name)
	if err != nil {
		return nil, err
	}
	rep := &DryRunReport{Stream: name, Range: opts.Range.String(), LastSeq: w.last, Differences: []EventDiff{}}

	snap, err := o.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("dry run: %w", err)
	}
	defer func() { _ = snap.Rollback(context.WithoutCancel(ctx)) }()
	current, err := ledger.LatestCatalog(ctx, snap)
	if errors.Is(err, ledger.ErrNoCatalog) {
		return nil, errors.New("no catalog applied yet: nothing was processed, so there is nothing to compare")
	}
	if err != nil {
		return nil, err
	}
	if err := ledger.CheckCouponSecret(current, o.couponSecret); err != nil {
		return nil, fmt.Errorf("dry run needs PROMO_COUPON_SECRET, the engine's, to issue the codes it issued: %w", err)
	}
	rep.CatalogVersion = current.Version

	expected, firstProcessed, err := ledger.ProcessedUpTo(ctx, snap, w.last)
	if err != nil {
		return nil, fmt.Errorf("dry run: %w", err)
	}
	if w.empty || expected == 0 {
		// Nothing up to the end of the range was processed: nothing can
		// differ.
		if rep.NotProcessed, err = o.countRange(ctx, w); err != nil {
			return nil, fmt.Errorf("dry run: %w", err)
		}
		rep.Elapsed = o.now().Sub(start)
		return rep, nil
	}
	rep.RebuiltFrom = uint64(*firstProcessed)
	if rep.RebuiltFrom < info.State.FirstSeq {
		return nil, fmt.Errorf("%w: the first processed event is %s seq %d, but the stream now starts at seq %d "+
			"(older messages were removed by its max age of %s); a dry run rebuilds the ledger from the first processed "+
			"event and cannot without them (a replay without --dry-run still works)",
			ErrHistoryGone, name, rep.RebuiltFrom, info.State.FirstSeq, info.Config.MaxAge)
	}
	jobs, err := ledger.JobRuns(ctx, snap)
	if err != nil {
		return nil, fmt.Errorf("dry run: %w", err)
	}
	// The order the events were processed in, read as it goes.
	if err := ledger.DeclareProcessedCursor(ctx, snap, processedOrderCursor, w.last); err != nil {
		return nil, fmt.Errorf("dry run: %w", err)
	}
	// From the range's start when it comes first: its events before the
	// first processed one were never processed, and are counted so.
	reader, err := o.openStreamReader(ctx, name, o.subjects.OrdersPartitioned(), min(rep.RebuiltFrom, w.startSeq()), w.last, false)
	if err != nil {
		return nil, err
	}
	defer reader.Close()

	sc, err := openScratch(ctx, o.pool.Config())
	if err != nil {
		return nil, err
	}
	defer sc.Close()

	r := &rebuild{o: o, ctx: ctx, snap: snap, sc: sc, batchSize: opts.BatchSize, checkpointEvery: int64(opts.CheckpointEvery), w: w, rep: rep, current: current, reader: reader,
		catalogs: map[int64]*rules.Catalog{current.Version: current}, jobs: jobs,
		store: o.store(), deferred: map[string][]*rebuildItem{}, ahead: map[uint64]*rebuildItem{}}
	prog.Stage("rebuilding the ledger", int64(expected))
	if err := r.run(prog); err != nil {
		return nil, fmt.Errorf("dry run: %w", err)
	}
	slices.SortFunc(rep.Differences, func(a, b EventDiff) int { return cmp.Compare(a.Seq, b.Seq) })
	if r.missing > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf(
			"%d processed events up to seq %d are no longer in %s (deleted messages?); the rebuilt ledger lacks their effects",
			r.missing, w.last, name))
	}
	rep.Elapsed = o.now().Sub(start)
	return rep, nil
}

// processedOrderCursor names the cursor over the inbox in processing order.
const processedOrderCursor = "promo_dry_run_processed"

// countRange counts the messages of a range, for a report with nothing
// processed.
func (o *Operator) countRange(ctx context.Context, w window) (int, error) {
	if w.empty {
		return 0, nil
	}
	n := 0
	err := o.readStream(ctx, o.subjects.StreamOrders(), o.subjects.OrdersPartitioned(), max(w.startSeq(), w.first), w.last, true,
		func(msg jetstream.Msg) error {
			if md, err := msg.Metadata(); err == nil && w.contains(md.Sequence.Stream, md.Timestamp) {
				n++
			}
			return nil
		})
	return n, err
}

// rebuild is the state of one dry run's re-application.
type rebuild struct {
	o    *Operator
	ctx  context.Context
	snap pgx.Tx   // the real database, read only
	sc   *scratch // the scratch ledger
	// batchSize and checkpointEvery are DryRunOptions'.
	batchSize       int
	checkpointEvery int64
	w               window
	rep             *DryRunReport
	store           *ledger.Store
	current         *rules.Catalog
	catalogs        map[int64]*rules.Catalog
	jobs            []ledger.JobRun
	inRange         bool // an event of the range was reached
	// deferred holds, by original order id, the reversals that found no
	// original order yet (it was processed later than the reversal's
	// stream position, after the reversal's retries).
	deferred map[string][]*rebuildItem
	// reader reads POS_ORDERS ahead of the processing order; ahead holds,
	// by sequence, the processed events read but not yet re-applied.
	reader  *streamReader
	ahead   map[uint64]*rebuildItem
	missing int
	// pending are the events queued for the next ledger batch.
	pending      []*rebuildItem
	applied      int64
	checkpointed int64
}

type rebuildItem struct {
	seq     uint64
	inRange bool
	data    []byte
	ev      *events.Event
	stored  ledger.StoredEvent
	warned  bool
}

// run re-applies the processed events in the order they were processed:
// by the inbox's processed_at (the start of the transaction that processed
// the event), then by stream sequence. For one customer that is stream
// order, except where the workers had to wait — a return that came before
// its order and was retried — which stream order would not reproduce.
func (r *rebuild) run(prog Progress) error {
	for {
		page, err := ledger.FetchProcessed(r.ctx, r.snap, processedOrderCursor, 512)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			break
		}
		for _, p := range page {
			it, err := r.item(uint64(p.StreamSeq))
			if err != nil {
				return err
			}
			if it == nil {
				r.missing++
				continue
			}
			if err := r.add(it, p.ProcessedAt, prog); err != nil {
				return err
			}
		}
	}
	if err := r.flush(prog); err != nil {
		return err
	}
	// Read the rest of the range, to count what was never processed.
	for !r.reader.done {
		if err := r.readAhead(); err != nil {
			return err
		}
	}
	r.finish()
	return nil
}

// add queues a processed event for re-application. Events go to the ledger
// in batches of consecutive events under one catalog version, as the
// worker sends them; a recorded job run between two events, a change of
// catalog, or a paid order that reversals were waiting for ends a batch.
func (r *rebuild) add(it *rebuildItem, processedAt time.Time, prog Progress) error {
	if len(r.jobs) > 0 && !r.jobs[0].RanAt.After(processedAt) {
		if err := r.flush(prog); err != nil {
			return err
		}
		if err := r.runJobsBefore(processedAt); err != nil {
			return err
		}
	}
	if it.inRange {
		r.inRange = true
	}
	r.pending = append(r.pending, it)
	full := len(r.pending) >= r.batchSize
	if it.ev.Paid != nil && len(r.deferred[string(it.ev.Paid.ID)]) > 0 {
		full = true
	}
	if full {
		return r.flush(prog)
	}
	return nil
}

// flush re-applies the queued events, then checkpoints the scratch work
// when enough has accumulated.
func (r *rebuild) flush(prog Progress) error {
	queue := r.pending
	r.pending = nil
	for len(queue) > 0 {
		cat, err := r.catalogFor(queue[0])
		if err != nil {
			return err
		}
		n := 1
		for n < len(queue) && n < r.batchSize {
			c, err := r.catalogFor(queue[n])
			if err != nil {
				return err
			}
			if c != cat {
				break
			}
			n++
		}
		released, err := r.applyRun(cat, queue[:n])
		if err != nil {
			return err
		}
		// Reversals that were waiting for an order of this run go next.
		queue = append(released, queue[n:]...)
	}
	if r.applied-r.checkpointed >= r.checkpointEvery {
		if err := r.sc.checkpoint(r.ctx); err != nil {
			return err
		}
		r.checkpointed = r.applied
	}
	prog.Advance(r.applied)
	return nil
}

// catalogFor is the catalog an event is re-applied with: the current one
// in the range, the version it was processed with before.
func (r *rebuild) catalogFor(it *rebuildItem) (*rules.Catalog, error) {
	if it.inRange {
		return r.current, nil
	}
	if !it.stored.Stored {
		if !it.warned {
			it.warned = true
			r.warn("event %s (seq %d) is in the inbox without a stored result; re-applied with the current catalog", it.ev.EventID, it.seq)
		}
		return r.current, nil
	}
	return r.catalog(it.stored.CatalogVersion)
}

// item returns the processed event stored at seq, reading the stream ahead
// as far as needed; nil when the stream does not have it.
func (r *rebuild) item(seq uint64) (*rebuildItem, error) {
	for {
		if it, ok := r.ahead[seq]; ok {
			delete(r.ahead, seq)
			return it, nil
		}
		if r.reader.done {
			return nil, nil
		}
		if err := r.readAhead(); err != nil {
			return nil, err
		}
	}
}

// readAhead reads the next chunk of the stream and keeps its processed
// events (those whose inbox row names this sequence).
func (r *rebuild) readAhead() error {
	chunk := make([]*rebuildItem, 0, dryRunChunk)
	for len(chunk) < dryRunChunk {
		msg, err := r.reader.Next()
		if err != nil {
			return err
		}
		if msg == nil {
			break
		}
		md, err := msg.Metadata()
		if err != nil {
			return err
		}
		chunk = append(chunk, &rebuildItem{seq: md.Sequence.Stream, inRange: r.w.contains(md.Sequence.Stream, md.Timestamp),
			data: bytes.Clone(msg.Data())})
	}
	var ids, paidOrders, reversals, inRange []string
	for _, it := range chunk {
		ev, err := events.Decode(it.data)
		if err != nil {
			continue // dead-lettered as invalid, never processed
		}
		it.ev = ev
		ids = append(ids, ev.EventID)
		if ev.Paid != nil {
			paidOrders = append(paidOrders, string(ev.Paid.ID))
		} else {
			reversals = append(reversals, ev.EventID)
		}
		if it.inRange {
			inRange = append(inRange, ev.EventID)
		}
	}
	stored, err := ledger.LookupStored(r.ctx, r.snap, ids, paidOrders, reversals, inRange)
	if err != nil {
		return err
	}
	for _, it := range chunk {
		var st ledger.StoredEvent
		if it.ev != nil {
			st = stored[it.ev.EventID]
		}
		if !st.InInbox || st.StreamSeq == nil || uint64(*st.StreamSeq) != it.seq {
			if it.inRange {
				r.rep.NotProcessed++
			}
			continue
		}
		it.stored = st
		r.ahead[it.seq] = it
	}
	return nil
}

// runJobsBefore re-applies the recorded job runs that ran before t.
func (r *rebuild) runJobsBefore(t time.Time) error {
	for len(r.jobs) > 0 && !r.jobs[0].RanAt.After(t) {
		j := r.jobs[0]
		r.jobs = r.jobs[1:]
		cat := r.current
		if !r.inRange {
			var err error
			if cat, err = r.catalog(j.CatalogVersion); err != nil {
				return err
			}
		}
		if _, err := r.store.RunJobsWith(r.ctx, r.sc.Tx, cat, j.AsOf); err != nil {
			return fmt.Errorf("re-apply the job run as of %s: %w", j.AsOf.Format(time.RFC3339), err)
		}
		r.rep.JobRuns++
	}
	return nil
}

func (r *rebuild) catalog(version int64) (*rules.Catalog, error) {
	if c, ok := r.catalogs[version]; ok {
		return c, nil
	}
	c, err := ledger.CatalogByVersion(r.ctx, r.snap, version)
	if err != nil {
		return nil, fmt.Errorf("catalog version %d: %w", version, err)
	}
	r.catalogs[version] = c
	return c, nil
}

// applyRun re-applies a run of events under one catalog with ledger.Batch,
// in a savepoint of the scratch transaction. An event that fails on its own
// is set apart — deferred until its order is in, or recorded as a failure —
// and the run goes again without it, as the worker does. It returns the
// reversals that were waiting for a paid order of the run.
func (r *rebuild) applyRun(cat *rules.Catalog, run []*rebuildItem) ([]*rebuildItem, error) {
	run = slices.Clone(run)
	for len(run) > 0 {
		results, bad, badErr, err := r.batch(cat, run)
		if err != nil {
			return nil, err
		}
		if bad >= 0 {
			it := run[bad]
			switch {
			case errors.Is(badErr, ledger.ErrUnknownOriginalOrder):
				ref := string(it.ev.ReferencedOrderID())
				r.deferred[ref] = append(r.deferred[ref], it)
			case isPermanent(badErr):
				r.failed(it, deadLetterCode(badErr), badErr)
			default:
				return nil, fmt.Errorf("re-apply %s (seq %d): %w", it.ev.EventID, it.seq, badErr)
			}
			run = slices.Delete(run, bad, bad+1)
			continue
		}
		var released []*rebuildItem
		for i, it := range run {
			r.applied++
			r.rep.Reapplied++
			if it.inRange && results[i] != nil {
				if err := r.compare(it, results[i]); err != nil {
					return nil, err
				}
			}
			if it.ev.Paid != nil {
				id := string(it.ev.Paid.ID)
				released = append(released, r.deferred[id]...)
				delete(r.deferred, id)
			}
		}
		return released, nil
	}
	return nil, nil
}

// batch runs the worker's ledger calls for a run of events: the currency
// check, then a ledger.Batch that locks the run's customers and processes
// the events. It returns the results, or the index and error of the event
// that failed on its own (bad < 0 when none did), or an error that stops
// the dry run.
func (r *rebuild) batch(cat *rules.Catalog, run []*rebuildItem) (results []*events.OrderResult, bad int, badErr, err error) {
	ctx := r.ctx
	for i, it := range run {
		if it.ev.Paid != nil && it.ev.Paid.Currency != cat.Currency {
			return nil, i, fmt.Errorf("%w: /order/currency: %q is not the catalog currency %q",
				events.ErrInvalid, it.ev.Paid.Currency, cat.Currency), nil
		}
	}
	sp, err := r.sc.Tx.Begin(ctx)
	if err != nil {
		return nil, -1, nil, err
	}
	defer func() { _ = sp.Rollback(ctx) }()
	evs := make([]ledger.BatchEvent, len(run))
	var customers, refs []string
	for i, it := range run {
		evs[i] = ledger.BatchEvent{Event: it.ev, StreamSeq: it.seq}
		if c := string(it.ev.CustomerID()); c != "" {
			customers = append(customers, c)
		}
		if it.ev.Paid == nil {
			refs = append(refs, string(it.ev.ReferencedOrderID()))
		}
	}
	if len(refs) > 0 {
		m, err := ledger.CustomersOfOrders(ctx, sp, refs)
		if err != nil {
			return nil, -1, nil, err
		}
		for _, c := range m {
			customers = append(customers, c)
		}
	}
	slices.Sort(customers)
	lb := r.store.NewBatch(sp, cat)
	lb.LockCustomers(slices.Compact(customers))
	results, err = lb.Process(ctx, evs)
	var ee *ledger.EventError
	if errors.As(err, &ee) {
		return nil, ee.Index, ee.Err, nil
	}
	if err != nil {
		return nil, -1, nil, err
	}
	if err := sp.Commit(ctx); err != nil {
		return nil, -1, nil, err
	}
	return results, -1, nil, nil
}

func (r *rebuild) compare(it *rebuildItem, res *events.OrderResult) error {
	r.rep.Compared++
	if it.stored.Result == nil {
		r.warn("event %s (seq %d) has no stored result to compare with", it.ev.EventID, it.seq)
		return nil
	}
	replayed, err := json.Marshal(res)
	if err != nil {
		return err
	}
	fields, err := diffResults(it.stored.Result, replayed)
	if err != nil {
		return fmt.Errorf("compare the result of %s: %w", it.ev.EventID, err)
	}
	if len(fields) > 0 {
		r.rep.Differences = append(r.rep.Differences, r.eventDiff(it, fields, ""))
	}
	return nil
}

func (r *rebuild) eventDiff(it *rebuildItem, fields []FieldDiff, failure string) EventDiff {
	return EventDiff{Seq: it.seq, EventID: it.ev.EventID, Type: it.ev.Type, OrderID: string(it.ev.OrderID()),
		StoredCatalogVersion: it.stored.CatalogVersion, Fields: fields, Failure: failure}
}

// failed records an event that could not be re-applied: in the range it
// would be dead-lettered under the current catalog, which is a difference;
// before the range it makes the rebuilt ledger less faithful.
func (r *rebuild) failed(it *rebuildItem, code string, err error) {
	if it.inRange {
		r.rep.Compared++
		r.rep.Differences = append(r.rep.Differences, r.eventDiff(it, nil, fmt.Sprintf("would be dead-lettered (%s): %v", code, err)))
		return
	}
	r.warn("event %s (seq %d) could not be re-applied (%s): %v", it.ev.EventID, it.seq, code, err)
}

// finish settles the reversals whose original order never came.
func (r *rebuild) finish() {
	for _, items := range r.deferred {
		for _, it := range items {
			r.failed(it, events.DLQUnknownOriginalOrder, fmt.Errorf("order %s was not re-applied", it.ev.ReferencedOrderID()))
		}
	}
}

func (r *rebuild) warn(format string, args ...any) {
	const maxWarnings = 100
	if len(r.rep.Warnings) < maxWarnings {
		r.rep.Warnings = append(r.rep.Warnings, fmt.Sprintf(format, args...))
	}
}

// isPermanent reports the failures of one event that the worker
// dead-letters rather than retries.
func isPermanent(err error) bool {
	return errors.Is(err, ledger.ErrDuplicateOrder) || errors.Is(err, ledger.ErrCurrencyMismatch) || errors.Is(err, events.ErrInvalid)
}

func deadLetterCode(err error) string {
	if errors.Is(err, ledger.ErrDuplicateOrder) {
		return events.DLQDuplicateOrder
	}
	return events.DLQInvalidEvent
}
