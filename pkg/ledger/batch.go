package ledger

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
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
	// TraceParent is the W3C traceparent of the event's span ("" untraced):
	// its result's outbox row keeps it for the relay (internal/tracing).
	TraceParent string
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
	// lockQueued: the locks of lock are in the round trip being prepared.
	lockQueued bool
	next       *pgx.Batch // statements to send with the next round trip

	customers map[string]*cachedCustomer
	orders    map[string]string // paid order id → event id, for the paid events of this batch
	w         batchWrites

	globalPrograms      []*rules.Program // programs with a global limit: total or per period, uses or budget
	perCustomerPrograms []string         // programs with uses_per_customer, of all time or per period
	// customerPeriods are the periods whose per-customer counters the
	// batch's events may ask about ("" for all time).
	customerPeriods []string

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
			if totalLimit(p.Limits).any() || periodLimit(p.Limits).any() {
				b.globalPrograms = append(b.globalPrograms, p)
			}
			if needsCustomerCounts(p.Limits) {
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
			res, err := b.store.processReversal(WithTraceParent(ctx, evs[i].TraceParent), b.tx, b.cat, ev, evs[i].StreamSeq, b.counters)
			if err != nil {
				return nil, &EventError{i, err}
			}
			if res != nil {
				b.counters.stamp(ev.EventID) // in the order applied (see stampOrderSQL)
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
	b.customerPeriods = b.periodsOf(evs)
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
	b.queueCouponLookups(pb, run)
	b.counters.queueLoad(pb, b.counterKeys(run))
	b.lockQueued = false
	if err := runBatch(ctx, b.tx, pb, "read state of a batch"); err != nil {
		return err
	}
	if err := loads(); err != nil {
		return err
	}

	for k, be := range run {
		res, err := b.paid(be, first[be.Event.EventID] == k && inserted[be.Event.EventID], seen)
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
func (b *Batch) paid(be BatchEvent, fresh bool, seen map[string]string) (*events.OrderResult, error) {
	ev := be.Event
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
	b.counters.stamp(ev.EventID) // in the order applied (see stampOrderSQL)

	var c *cachedCustomer
	var cust *customerState
	if id := string(ev.Paid.CustomerID); id != "" {
		c = b.customers[id]
		cust = c.stateAt(b, t)
		cust.coupons = c.couponsFor(presentedCodes(ev.Paid))
	}
	plan, err := planPaid(cat, ev, t, cust, batchLimits{b: b, c: c, ev: ev})
	if err != nil {
		return nil, err
	}
	if err := plan.issueCoupons(b.store.couponSecret, ev); err != nil {
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
	w.outbox.add(res.EventID, be.TraceParent)
	return res, nil
}

// apply records the writes of an applied paid order and changes the cached
// state of its customer as they change the database.
func (b *Batch) apply(p *paidPlan, ev *events.Event, c *cachedCustomer) {
	w := &b.w
	orderID := string(ev.Paid.ID)
	if uses := usesOf(b.cat, ev, p.outcome.Uses); len(uses) > 0 {
		customerID := ""
		if c != nil {
			customerID = c.id
		}
		for _, u := range uses {
			b.counters.add(u)
			w.programUses.add(orderID, customerID, u)
			if c != nil {
				keys := u.keys()
				c.uses[keys.total]++
				w.customerUses.add(keys.total, c.id)
				if keys.hasPeriod() {
					c.uses[keys.period]++
					w.customerUses.add(keys.period, c.id)
				}
			}
		}
	}
	if c == nil {
		return
	}

	for _, u := range p.outcome.CouponsUsed {
		cp := c.coupons[u.Code]
		order, at := orderID, p.t
		cp.usedBy, cp.usedAt = &order, &at
		w.coupons.use(cp)
	}
	for _, cp := range p.issued {
		c.remember(cp.code, cp)
		w.coupons.issue(cp)
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

// counterKeys are the global counters the paid events of run may ask
// about: for every event and every program with a global limit, the
// counters of the event's scope and period that a limit bounds.
func (b *Batch) counterKeys(run []BatchEvent) []counterKey {
	if len(b.globalPrograms) == 0 {
		return nil
	}
	seen := map[counterKey]bool{}
	var out []counterKey
	add := func(k counterKey) {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	for _, be := range run {
		for _, p := range b.globalPrograms {
			keys := keysOf(b.cat, p, be.Event)
			if totalLimit(p.Limits).any() {
				add(keys.total)
			}
			if periodLimit(p.Limits).any() && keys.hasPeriod() {
				add(keys.period)
			}
		}
	}
	return out
}

// batchLimits answers rules.LimitsReader from the batch's memory: the global
// counters through ProgramCounters (loaded in the run's read), the customer's
// uses from the cached customer.
type batchLimits struct {
	b  *Batch
	c  *cachedCustomer // nil: anonymous
	ev *events.Event
}

func (l batchLimits) Remaining(p *rules.Program, customerID string) (rules.Remaining, error) {
	lim := p.Limits
	keys := keysOf(l.b.cat, p, l.ev)
	u := usage{total: programCount{budget: dec.Zero}, period: programCount{budget: dec.Zero}}
	var err error
	if tl := totalLimit(lim); tl.any() {
		if u.total, err = l.b.counters.current(keys.total, tl); err != nil {
			return rules.Remaining{}, err
		}
	}
	if pl := periodLimit(lim); pl.any() && keys.hasPeriod() {
		if u.period, err = l.b.counters.current(keys.period, pl); err != nil {
			return rules.Remaining{}, err
		}
	}
	u.perCustomer = customerID != ""
	if u.perCustomer && needsCustomerCounts(lim) {
		if l.c == nil || l.c.id != customerID {
			return rules.Remaining{}, fmt.Errorf("ledger: limits asked for customer %s, not the order's", customerID)
		}
		u.customer = l.c.uses[keys.total]
		if keys.hasPeriod() {
			u.customerPeriod = l.c.uses[keys.period]
		}
	}
	return remainingOf(lim, u), nil
}

// streamSeqParam is the inbox's stream_seq: NULL when unknown.
func streamSeqParam(streamSeq uint64) *int64 {
	if streamSeq == 0 || streamSeq > math.MaxInt64 {
		return nil
	}
	v := int64(streamSeq)
	return &v
}

// periodsOf are the periods of the per-customer counters the paid events
// of evs may ask about, "" (all time) first: their customers' counters of
// those periods are read with their state.
func (b *Batch) periodsOf(evs []BatchEvent) []string {
	out := []string{""}
	for _, p := range b.cat.Programs {
		pp := p.Limits.PerPeriod
		if pp == nil || pp.UsesPerCustomer == nil {
			continue
		}
		for _, be := range evs {
			if be.Event.Paid == nil || be.Event.Paid.CustomerID == "" {
				continue
			}
			if k := b.cat.PeriodKey(pp.Period, be.Event.OccurredAt); !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	return out
}

// queueCouponLookups adds to pb the read of the coupons the run's paid
// orders present that their customers' cache has not looked up yet. It
// comes after the run's customer loads, so after their account locks.
func (b *Batch) queueCouponLookups(pb *pgx.Batch, run []BatchEvent) {
	var customers, codes []string
	for _, be := range run {
		id := string(be.Event.Paid.CustomerID)
		if id == "" {
			continue
		}
		c := b.customers[id]
		for _, code := range presentedCodes(be.Event.Paid) {
			if !c.looked[code] {
				c.remember(code, nil)
				customers, codes = append(customers, id), append(codes, code)
			}
		}
	}
	if len(codes) == 0 {
		return
	}
	pb.Queue(`SELECT c.`+strings.ReplaceAll(couponColumns, ", ", ", c.")+`
		FROM unnest($1::text[], $2::text[]) AS k(customer_id, code)
		JOIN coupons c ON c.customer_id = k.customer_id AND c.code = k.code`, customers, codes).Query(func(rows pgx.Rows) error {
		cs, err := pgx.CollectRows(rows, scanCoupon)
		for _, cp := range cs {
			b.customers[cp.customerID].remember(cp.code, cp)
		}
		return err
	})
}
