package ledger

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/rules"
)

// BatchEvent is one event of a Batch, with its stream sequence for the inbox.
type BatchEvent struct {
	Event     *events.Event
	StreamSeq uint64
}

// EventError is the failure of one event of a Batch, for the caller to settle
// apart (Index is the event's position in the slice given to Process). Every
// earlier event succeeded. The transaction holds partial writes and must be
// rolled back; the rest of the batch can be run again without the event.
type EventError struct {
	Index int
	Err   error
}

func (e *EventError) Error() string { return fmt.Sprintf("event %d of the batch: %v", e.Index, e.Err) }
func (e *EventError) Unwrap() error { return e.Err }

// Batch applies many events inside one transaction with a few round trips
// whatever their number, with exactly the results, errors and ledger
// contents of Store.ProcessDeferred called on each event in turn.
//
// Paid events are the hot path. A run of consecutive paid events costs one
// round trip of reads — the inbox rows of all of them with the order id
// checks (one statement), and the state of every customer not seen yet in
// the batch (accounts, read as they are locked; lots, levels, spend and
// per-customer uses in one statement), with the global counters of limited
// programs. The events are then evaluated one by one in stream order, in
// memory, with planPaid (the code Process uses), and after each one the
// cached customer state is changed exactly as the database would be: lots
// consumed, new lot, debt, path, levels, spend, uses. Writes accumulate and
// go out at the end in one statement (writeSQL), with the deferred program
// counters (ProgramCounters) and one pg_notify.
//
// Returns and cancellations are rare: the pending writes are flushed, the
// event runs through the per-event code, and its customer's cached state is
// dropped (to be read again if a later event needs it).
//
// The time range a customer's state is read for covers every paid event of
// the batch, which is why Process takes all the events at once: a customer
// read for one event is good for any later one, whatever its occurred_at.
type Batch struct {
	store    *Store
	tx       pgx.Tx
	cat      *rules.Catalog
	counters *ProgramCounters
	ran      bool
	lock     []string // customers to lock first (LockCustomers)
	// locked holds the accounts of the locked customers as they were read
	// when locked, until the customer is loaded (or a reversal changes it).
	locked map[string]*accountRow
	next   *pgx.Batch // statements to send with the next round trip

	customers map[string]*cachedCustomer
	orders    map[string]string // paid order id → event id, for the paid events of this batch
	w         batchWrites

	globalPrograms      []*rules.Program // programs with total_uses or budget
	perCustomerPrograms []string         // programs with uses_per_customer

	// Every paid event of the batch has from <= occurred_at <= until, and
	// every window it needs starts after spendFrom. Every window of path
	// p, whatever the event, holds (coreStart[p], from): its spend is
	// summed by PostgreSQL, the rest of the range is read entry by entry.
	from, until, spendFrom time.Time
	coreStart              map[string]time.Time
	corePaths              []string
	coreStarts             []time.Time
	coreAll                time.Time // the latest coreStart: inside every core after it
}

// NewBatch returns a Batch that applies events to tx under cat. Its global
// program counters are deferred (see ProgramCounters): Process returns
// ErrLimitRace when another transaction took what the batch counted on, and
// the caller then rolls back and runs the events with Process, one by one.
func (s *Store) NewBatch(tx pgx.Tx, cat *rules.Catalog) *Batch {
	b := &Batch{store: s, tx: tx, cat: cat, counters: NewProgramCounters(),
		customers: map[string]*cachedCustomer{}, orders: map[string]string{}}
	if cat != nil {
		for _, p := range cat.Programs {
			if p.Limits.TotalUses != nil || p.Limits.Budget != nil {
				b.globalPrograms = append(b.globalPrograms, p)
			}
			if p.Limits.UsesPerCustomer != nil {
				b.perCustomerPrograms = append(b.perCustomerPrograms, p.ID)
			}
		}
	}
	return b
}

// Process applies evs in order and returns their results (nil for an event
// already processed), flushing every write and the program counters: the
// caller commits next. A Batch runs once.
//
// An error of one event comes back as *EventError; anything else (a failed
// statement, ErrLimitRace, ErrConflict) is the transaction's. Either way the
// transaction must be rolled back.
func (b *Batch) Process(ctx context.Context, evs []BatchEvent) ([]*events.OrderResult, error) {
	if b.ran {
		return nil, errors.New("ledger: a Batch processes once")
	}
	b.ran = true
	if b.cat == nil {
		return nil, ErrNoCatalog
	}
	b.span(evs)
	b.next = &pgx.Batch{}
	// Plans. The statements of a batch look rows up by arrays of keys
	// (= ANY($1), unnest) in tables that grow fast from empty. Left to
	// itself, PostgreSQL plans a prepared statement anew on every run while
	// the plan for the run's arrays looks cheaper than a generic one, which
	// for small transactions is always (a third of the server's CPU at one
	// or two events a transaction), and once it keeps a generic plan, that
	// plan may be a sequential scan chosen while a table was small, which
	// then reads the whole table for every batch until autovacuum analyzes
	// it (a 30 s load test from an empty database ran at half speed). Every
	// lookup of a batch has an index: the transaction rules sequential
	// scans out and always uses the cached generic plans, index scans.
	// (Should a plan be left with no other path, its sequential scan would
	// carry a prohibitive cost, enough to make PostgreSQL JIT-compile the
	// statement on every run: jit is off.)
	b.next.Queue(`SELECT set_config('enable_seqscan', 'off', true), set_config('plan_cache_mode', 'force_generic_plan', true),
		set_config('jit', 'off', true)`)
	b.queueLock(b.next)
	results := make([]*events.OrderResult, len(evs))
	for i := 0; i < len(evs); {
		ev := evs[i].Event
		if ev.Paid == nil {
			if ev.Returned == nil && ev.Cancelled == nil {
				return nil, &EventError{i, fmt.Errorf("ledger: event %s carries no order", ev.EventID)}
			}
			// A reversal reads the ledger: it must see the writes (and hold
			// the locks) before it.
			if err := b.flush(ctx, false); err != nil {
				return nil, err
			}
			res, err := b.store.processReversal(ctx, b.tx, b.cat, ev, evs[i].StreamSeq, b.counters)
			if err != nil {
				return nil, &EventError{i, err}
			}
			if res != nil && res.CustomerID != "" {
				delete(b.customers, res.CustomerID)
				delete(b.locked, res.CustomerID) // its account as locked is stale
			}
			results[i] = res
			i++
			continue
		}
		j := i + 1
		for j < len(evs) && evs[j].Event.Paid != nil {
			j++
		}
		if err := b.paidRun(ctx, evs[i:j], i, results[i:j]); err != nil {
			return nil, err
		}
		i = j
	}
	if err := b.flush(ctx, true); err != nil {
		return nil, err
	}
	return results, nil
}

// LockCustomers has Process take the account locks of every customer in ids
// first, in its first round trip, as the function LockCustomers does: a
// worker that locks all its batch's customers up front saves a round trip.
func (b *Batch) LockCustomers(ids []string) {
	b.lock = sortedUnique(ids)
}

// nextBatch returns a statement batch for the next round trip, holding the
// statements waiting for one.
func (b *Batch) nextBatch() *pgx.Batch {
	pb := b.next
	b.next = nil
	if pb == nil {
		pb = &pgx.Batch{}
	}
	return pb
}

// span sets the time range the batch's paid events need.
func (b *Batch) span(evs []BatchEvent) {
	first := true
	b.coreStart = map[string]time.Time{}
	for _, be := range evs {
		if be.Event.Paid == nil || be.Event.Paid.CustomerID == "" {
			continue
		}
		t := pgTime(be.Event.OccurredAt)
		if first || t.Before(b.from) {
			b.from = t
		}
		if first || t.After(b.until) {
			b.until = t
		}
		if first || t.Before(b.spendFrom) {
			b.spendFrom = t
		}
		if b.cat.Membership != nil {
			for _, p := range b.cat.Membership.Paths {
				s := windowStart(b.cat, p, t)
				if s.Before(b.spendFrom) {
					b.spendFrom = s
				}
				// Calendar arithmetic is not monotonic across a DST change:
				// the core starts after the latest start of any window.
				if c, ok := b.coreStart[p.ID]; first || !ok || s.After(c) {
					b.coreStart[p.ID] = s
				}
			}
		}
		first = false
	}
	b.coreAll = b.from // no common core: every entry is read
	for _, p := range slices.Sorted(maps.Keys(b.coreStart)) {
		s := b.coreStart[p]
		if !s.Before(b.from) {
			delete(b.coreStart, p) // windows shorter than the batch: no core
			b.coreAll = b.from
			continue
		}
		b.corePaths = append(b.corePaths, p)
		b.coreStarts = append(b.coreStarts, s)
	}
	if len(b.coreStart) > 0 && len(b.coreStart) == len(b.cat.Membership.Paths) {
		b.coreAll = b.coreStarts[0]
		for _, s := range b.coreStarts {
			if s.After(b.coreAll) {
				b.coreAll = s
			}
		}
	}
}

// paidRun applies a run of consecutive paid events; offset is the index of
// the first in the batch.
func (b *Batch) paidRun(ctx context.Context, run []BatchEvent, offset int, results []*events.OrderResult) error {
	// The first occurrence of an event id stands for it: a later one finds
	// its inbox row, as it would one by one.
	first := make(map[string]int, len(run))
	var (
		ids, types []string
		seqs       []*int64
		orderIDs   []string
		newCust    []string
	)
	for k, be := range run {
		ev := be.Event
		if _, seen := first[ev.EventID]; !seen {
			first[ev.EventID] = k
			ids, types = append(ids, ev.EventID), append(types, ev.Type)
			seqs = append(seqs, streamSeqParam(be.StreamSeq))
		}
		orderIDs = append(orderIDs, string(ev.Paid.ID))
		if c := string(ev.Paid.CustomerID); c != "" {
			if _, cached := b.customers[c]; !cached {
				newCust = append(newCust, c)
			}
		}
	}

	pb := b.nextBatch()
	inserted := make(map[string]bool, len(ids))
	seen := map[string]string{}
	// The inbox rows, and the order ids already processed: rows with an
	// event id are order ids, the others inserted event ids.
	pb.Queue(`
		WITH ins AS (
			INSERT INTO inbox (event_id, event_type, stream_seq)
			SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
			ON CONFLICT (event_id) DO NOTHING
			RETURNING event_id
		)
		SELECT event_id, NULL::text FROM ins
		UNION ALL
		SELECT order_id, event_id FROM processed_orders WHERE order_id = ANY($4)`,
		ids, types, seqs, orderIDs).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id string
			var event *string
			if err := rows.Scan(&id, &event); err != nil {
				return err
			}
			if event == nil {
				inserted[id] = true
			} else {
				seen[id] = *event
			}
		}
		return rows.Err()
	})
	loads := b.queueCustomerLoads(pb, sortedUnique(newCust))
	b.counters.queueLoad(pb, b.globalPrograms)
	if err := runBatch(ctx, b.tx, pb, "read state of a batch"); err != nil {
		return err
	}
	if err := loads(); err != nil {
		return err
	}

	for k, be := range run {
		res, err := b.paid(be.Event, first[be.Event.EventID] == k && inserted[be.Event.EventID], seen)
		if err != nil {
			return &EventError{offset + k, err}
		}
		results[k] = res
	}
	return nil
}

// paid applies one paid event in memory, as processPaid does in the
// database; fresh reports its inbox row new, seen the order ids already in
// processed_orders when the run started.
func (b *Batch) paid(ev *events.Event, fresh bool, seen map[string]string) (*events.OrderResult, error) {
	cat := b.cat
	if err := checkCurrency(cat, ev.Paid); err != nil {
		return nil, err
	}
	t := pgTime(ev.OccurredAt)
	orderID := string(ev.Paid.ID)
	seenEvent, ok := b.orders[orderID]
	if !ok {
		seenEvent = seen[orderID]
	}
	if !fresh || seenEvent == ev.EventID {
		return nil, nil
	}
	if seenEvent != "" {
		return nil, fmt.Errorf("%w: order %s was processed by event %s, not %s", ErrDuplicateOrder, orderID, seenEvent, ev.EventID)
	}

	var c *cachedCustomer
	var cust *customerState
	if id := string(ev.Paid.CustomerID); id != "" {
		c = b.customers[id]
		cust = c.stateAt(b, t)
	}
	plan, err := planPaid(cat, ev, t, cust, batchLimits{b: b, c: c})
	if err != nil {
		return nil, err
	}
	res := plan.result(cat, ev, events.StatusApplied)
	doc, err := marshalResult(res)
	if err != nil {
		return nil, err
	}
	b.orders[orderID] = ev.EventID
	if plan.outcome.Rejection == nil {
		b.apply(plan, ev, c)
	}
	w := &b.w
	w.orders.add(orderID, ev.EventID, plan.orderCustomer(ev), t, res.Status, doc, plan.pointsEarned(), plan.pointsRedeemed())
	w.outbox.add(res.EventID)
	return res, nil
}

// apply records the writes of an applied paid order and changes the cached
// state of its customer as they change the database.
func (b *Batch) apply(p *paidPlan, ev *events.Event, c *cachedCustomer) {
	w := &b.w
	orderID := string(ev.Paid.ID)
	if uses := p.outcome.Uses; len(uses) > 0 {
		b.counters.add(uses)
		customerID := ""
		if c != nil {
			customerID = c.id
		}
		for _, u := range uses {
			w.programUses.add(orderID, u.ProgramID, customerID, u.Discount)
			if c != nil {
				c.uses[u.ProgramID]++
				w.customerUses.add(u.ProgramID, c.id)
			}
		}
	}
	if c == nil {
		return
	}

	c.path = p.accountPath()
	c.debt = p.debtAfter
	if c.openedAt == nil {
		at := p.t
		c.openedAt = &at
	}
	w.accounts.touch(c)

	for _, lc := range p.levelChanges(ev) {
		c.levels[lc.path] = levelRow{Level: lc.level, Since: lc.at}
		w.levels.touch(c, lc.path)
		w.history.add(lc)
	}

	// The redemption has lowered the cached lots' Remaining already.
	for i, tk := range p.takes {
		w.consumptions.add(orderID, int32(i+1), tk.Lot.ID, tk.Amount)
	}
	if l := p.newLot; l != nil {
		w.lots.add(l)
		c.lots = append(c.lots, l)
		sortFEFO(c.lots)
	}
	j := p.journal(ev)
	for _, id := range j.deltaOrder {
		w.lotDeltas.add(id, j.deltas[id])
	}
	for i := range j.kinds {
		w.entries.add(j, i)
	}

	if net := p.outcome.Totals.Net; !net.IsZero() {
		c.spend = append(c.spend, spendEntry{at: p.t, amount: net})
		w.spend.add(c.id, orderID, ev.EventID, p.t, net)
	}
}

// batchLimits answers rules.LimitsReader from the batch's memory: the global
// counters through ProgramCounters (loaded in the run's read), the customer's
// uses from the cached customer.
type batchLimits struct {
	b *Batch
	c *cachedCustomer // nil: anonymous
}

func (l batchLimits) Remaining(p *rules.Program, customerID string) (rules.Remaining, error) {
	lim := p.Limits
	var uses int64
	used := dec.Zero
	if lim.TotalUses != nil || lim.Budget != nil {
		uses, used = l.b.counters.current(p)
	}
	perCustomer := lim.UsesPerCustomer != nil && customerID != ""
	var customerUses int64
	if perCustomer {
		if l.c == nil || l.c.id != customerID {
			return rules.Remaining{}, fmt.Errorf("ledger: limits asked for customer %s, not the order's", customerID)
		}
		customerUses = l.c.uses[p.ID]
	}
	return remainingOf(lim, uses, used, perCustomer, customerUses), nil
}

// streamSeqParam is the inbox's stream_seq: NULL when unknown.
func streamSeqParam(streamSeq uint64) *int64 {
	if streamSeq == 0 || streamSeq > math.MaxInt64 {
		return nil
	}
	v := int64(streamSeq)
	return &v
}
