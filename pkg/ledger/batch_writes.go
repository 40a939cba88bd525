package ledger

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/promoengine/promoengine/pkg/dec"
)

// batchWrites accumulates a Batch's writes, table by table, for one bulk
// statement each. Rows of append-only tables keep stream order (their ids
// are serials, assigned in that order); rows that a later event of the batch
// changes again (accounts, levels, counters, lot remainders) are written
// once, with their final value or their summed change.
type batchWrites struct {
	programUses  programUseRows
	customerUses customerUseCounts
	accounts     accountRows
	levels       levelRows
	history      historyRows
	consumptions consumptionRows
	lots         lotRows
	lotDeltas    lotDeltas
	entries      entryRows
	spend        spendRows
	orders       orderRows
	outbox       outboxRows
	coupons      couponRows
}

// flush sends the pending writes in one round trip; final adds the deferred
// program counters, which must come last before commit.
func (b *Batch) flush(ctx context.Context, final bool) error {
	pb := b.nextBatch()
	b.w.queue(pb, b.cat.Version, b.store.subjects.ResultsOrder())
	check := func() error { return nil }
	if final {
		check = b.counters.queueFlush(pb)
	}
	b.lockQueued = false
	if err := runBatch(ctx, b.tx, pb, "write effects of a batch"); err != nil {
		return err
	}
	return check()
}

// writeSQL is every write of a flush in one statement: a statement costs
// PostgreSQL about as much as a few dozen rows, and a transaction of one
// or two events (the common case at moderate load) has a dozen tables to
// write. Each data-modifying CTE takes the rows of one table (none: its
// arrays are empty). Sibling CTEs see the same snapshot, not each other's
// rows, so a lot created in this flush is inserted with its remaining as of
// now rather than changed afterwards; no row is written by two CTEs.
// Serial ids follow stream order (ORDER BY n). Every order stored has its
// result in the outbox: the documents are sent once ($55), for both. The
// parameters from $60 on were added after the first 59 (counters' scopes and
// periods, coupons, the outbox rows' trace parents) and are appended last.
const writeSQL = `
WITH program_uses AS (
	INSERT INTO order_program_uses (order_id, program_id, customer_id, discount, scope, period)
	SELECT o, p, NULLIF(c, ''), d, s, per FROM unnest($1::text[], $2::text[], $3::text[], $4::numeric[], $60::text[], $61::text[]) AS u(o, p, c, d, s, per)
), customer_uses AS (
	INSERT INTO program_customer_usage AS p (program_id, customer_id, uses, scope, period)
	SELECT * FROM unnest($5::text[], $6::text[], $7::bigint[], $62::text[], $63::text[])
	ON CONFLICT (program_id, customer_id, scope, period) DO UPDATE SET uses = p.uses + excluded.uses
), account_changes AS (
	UPDATE accounts a SET path = u.path, debt = u.debt, opened_at = COALESCE(a.opened_at, u.opened_at)
	FROM unnest($8::text[], $9::text[], $10::numeric[], $11::timestamptz[]) AS u(id, path, debt, opened_at)
	WHERE a.customer_id = u.id
), levels AS (
	INSERT INTO member_levels AS m (customer_id, path, level, since)
	SELECT * FROM unnest($12::text[], $13::text[], $14::text[], $15::timestamptz[])
	ON CONFLICT (customer_id, path) DO UPDATE SET level = excluded.level, since = excluded.since
), history AS (
	INSERT INTO level_history (customer_id, path, previous_level, level, changed_at, reason, event_id)
	SELECT c, p, prev, l, at, why, e
	FROM unnest($16::text[], $17::text[], $18::text[], $19::text[], $20::timestamptz[], $21::text[], $22::text[])
	     WITH ORDINALITY AS h(c, p, prev, l, at, why, e, n)
	ORDER BY n
), consumptions AS (
	INSERT INTO point_consumptions (order_id, seq, lot_id, amount)
	SELECT * FROM unnest($23::text[], $24::int[], $25::text[], $26::numeric[])
), new_lots AS (
	INSERT INTO point_lots (lot_id, customer_id, order_id, earned_at, available_at, expires_at, original, remaining)
	SELECT * FROM unnest($27::text[], $28::text[], $29::text[], $30::timestamptz[], $31::timestamptz[], $32::timestamptz[], $33::numeric[], $34::numeric[])
), lot_changes AS (
	UPDATE point_lots l SET remaining = l.remaining + d.delta
	FROM unnest($35::text[], $36::numeric[]) AS d(id, delta)
	WHERE l.lot_id = d.id
), entries AS (
	INSERT INTO ledger_entries (customer_id, kind, amount, lot_id, order_id, event_id, occurred_at)
	SELECT c, k, a, NULLIF(l, ''), NULLIF(o, ''), e, t
	FROM unnest($37::text[], $38::text[], $39::numeric[], $40::text[], $41::text[], $42::text[], $43::timestamptz[])
	     WITH ORDINALITY AS j(c, k, a, l, o, e, t, n)
	ORDER BY n
), spend AS (
	INSERT INTO spend_entries (customer_id, order_id, event_id, spent_at, amount)
	SELECT c, o, e, t, a
	FROM unnest($44::text[], $45::text[], $46::text[], $47::timestamptz[], $48::numeric[]) WITH ORDINALITY AS s(c, o, e, t, a, n)
	ORDER BY n
), orders AS (
	INSERT INTO processed_orders (order_id, event_id, customer_id, occurred_at, status, catalog_version, result, points_earned, points_redeemed)
	SELECT o, e, c, t, s, $49, convert_from(r, 'UTF8')::json, pe, pr
	FROM unnest($50::text[], $51::text[], $52::text[], $53::timestamptz[], $54::text[], $55::bytea[], $56::numeric[], $57::numeric[])
	     AS u(o, e, c, t, s, r, pe, pr)
), results AS (
	INSERT INTO outbox (event_id, subject, payload, trace_parent)
	SELECT e, $58, r, NULLIF(tp, '') FROM unnest($59::text[], $55::bytea[], $79::text[]) WITH ORDINALITY AS u(e, r, tp, n)
	ORDER BY n
	ON CONFLICT (event_id) DO NOTHING
)` + couponsSQL + `
SELECT pg_notify('` + OutboxChannel + `', '') WHERE cardinality($59::text[]) > 0`

// queue adds the statement writing the pending rows to pb, if there are
// any, and empties w.
func (w *batchWrites) queue(pb *pgx.Batch, catalogVersion int64, resultsSubject string) {
	if w.empty() {
		return
	}
	args := make([]any, 0, 60)
	args = w.programUses.appendArgs(args)
	args = w.customerUses.appendArgs(args)
	args = w.accounts.appendArgs(args)
	args = w.levels.appendArgs(args)
	args = w.history.appendArgs(args)
	args = w.consumptions.appendArgs(args)
	args = w.lots.appendArgs(args)
	args = w.lotDeltas.appendArgs(args, w.lots.inserted)
	args = w.entries.appendArgs(args)
	args = w.spend.appendArgs(args)
	args = w.orders.appendArgs(args, catalogVersion)
	args = w.outbox.appendArgs(args, resultsSubject)
	args = w.programUses.appendKeyArgs(args)
	args = w.customerUses.appendKeyArgs(args)
	args = w.coupons.appendArgs(args)
	args = append(args, w.outbox.traceParents) // $79
	if sql, reduced, ok := reduceWrite(args); ok {
		pb.Queue(sql, reduced...)
	}
	*w = batchWrites{}
}

func (w *batchWrites) empty() bool {
	return len(w.programUses.orders) == 0 && len(w.customerUses.keys) == 0 && len(w.accounts.customers) == 0 &&
		len(w.levels.keys) == 0 && len(w.history.customers) == 0 && len(w.consumptions.orders) == 0 &&
		len(w.lots.lots) == 0 && len(w.lotDeltas.ids) == 0 && len(w.entries.customers) == 0 &&
		len(w.spend.customers) == 0 && len(w.orders.orders) == 0 && len(w.outbox.ids) == 0 && w.coupons.empty()
}

// programUseRows are order_program_uses rows.
type programUseRows struct {
	orders, programs, customers []string
	discounts                   []string
	scopes, periods             []string
}

func (r *programUseRows) add(orderID, customerID string, u programUse) {
	r.orders = append(r.orders, orderID)
	r.programs = append(r.programs, u.programID)
	r.customers = append(r.customers, customerID)
	r.discounts = append(r.discounts, u.discount.String())
	r.scopes = append(r.scopes, u.scope)
	r.periods = append(r.periods, u.period)
}

func (r *programUseRows) appendArgs(args []any) []any {
	return append(args, r.orders, r.programs, r.customers, numericArray(r.discounts))
}

func (r *programUseRows) appendKeyArgs(args []any) []any {
	return append(args, r.scopes, r.periods)
}

// customerUseCounts are the uses to add to program_customer_usage, summed
// per counter and customer (one upsert may touch a row once).
type customerUseCounts struct {
	keys []customerUseKey
	n    map[customerUseKey]int64
}

type customerUseKey struct {
	counter  counterKey
	customer string
}

func (r *customerUseCounts) add(k counterKey, customerID string) {
	ck := customerUseKey{k, customerID}
	if r.n == nil {
		r.n = map[customerUseKey]int64{}
	}
	if _, ok := r.n[ck]; !ok {
		r.keys = append(r.keys, ck)
	}
	r.n[ck]++
}

func (r *customerUseCounts) appendArgs(args []any) []any {
	programs := make([]string, len(r.keys))
	customers := make([]string, len(r.keys))
	counts := make([]int64, len(r.keys))
	for i, k := range r.keys {
		programs[i], customers[i], counts[i] = k.counter.program, k.customer, r.n[k]
	}
	return append(args, programs, customers, counts)
}

func (r *customerUseCounts) appendKeyArgs(args []any) []any {
	scopes := make([]string, len(r.keys))
	periods := make([]string, len(r.keys))
	for i, k := range r.keys {
		scopes[i], periods[i] = k.counter.scope, k.counter.period
	}
	return append(args, scopes, periods)
}

// accountRows are the accounts changed, written with their final state.
type accountRows struct{ customers []*cachedCustomer }

func (r *accountRows) touch(c *cachedCustomer) {
	if !c.accountDirty {
		c.accountDirty = true
		r.customers = append(r.customers, c)
	}
}

func (r *accountRows) appendArgs(args []any) []any {
	n := len(r.customers)
	ids := make([]string, n)
	paths := make([]*string, n)
	debts := make([]string, n)
	opened := make([]*time.Time, n)
	for i, c := range r.customers {
		ids[i], paths[i], debts[i], opened[i] = c.id, c.path, c.debt.String(), c.openedAt
		c.accountDirty = false
	}
	return append(args, ids, paths, numericArray(debts), opened)
}

// levelRows are the member_levels rows changed, written with their final
// level and since.
type levelRows struct {
	keys []levelKey
	seen map[levelKey]bool
}

type levelKey struct {
	c    *cachedCustomer
	path string
}

func (r *levelRows) touch(c *cachedCustomer, path string) {
	k := levelKey{c, path}
	if r.seen == nil {
		r.seen = map[levelKey]bool{}
	}
	if !r.seen[k] {
		r.seen[k] = true
		r.keys = append(r.keys, k)
	}
}

func (r *levelRows) appendArgs(args []any) []any {
	n := len(r.keys)
	ids, paths, levels := make([]string, n), make([]string, n), make([]string, n)
	since := make([]time.Time, n)
	for i, k := range r.keys {
		row := k.c.levels[k.path]
		ids[i], paths[i], levels[i], since[i] = k.c.id, k.path, row.Level, row.Since
	}
	return append(args, ids, paths, levels, since)
}

// historyRows are level_history rows.
type historyRows struct {
	customers, paths []string
	previous         []*string
	levels           []string
	at               []time.Time
	reasons, eventID []string
}

func (r *historyRows) add(lc levelChange) {
	var prev *string
	if lc.previous != "" {
		prev = &lc.previous
	}
	r.customers = append(r.customers, lc.customerID)
	r.paths = append(r.paths, lc.path)
	r.previous = append(r.previous, prev)
	r.levels = append(r.levels, lc.level)
	r.at = append(r.at, pgTime(lc.at))
	r.reasons = append(r.reasons, lc.reason)
	r.eventID = append(r.eventID, lc.eventID)
}

func (r *historyRows) appendArgs(args []any) []any {
	return append(args, r.customers, r.paths, r.previous, r.levels, r.at, r.reasons, r.eventID)
}

// consumptionRows are point_consumptions rows.
type consumptionRows struct {
	orders  []string
	seqs    []int32
	lots    []string
	amounts []string
}

func (r *consumptionRows) add(orderID string, seq int32, lotID string, amount dec.Decimal) {
	r.orders = append(r.orders, orderID)
	r.seqs = append(r.seqs, seq)
	r.lots = append(r.lots, lotID)
	r.amounts = append(r.amounts, amount.String())
}

func (r *consumptionRows) appendArgs(args []any) []any {
	return append(args, r.orders, r.seqs, r.lots, numericArray(r.amounts))
}

// lotRows are the lots created since the last flush. They are inserted
// with their remaining as of the flush: redemptions of the batch that took
// from them are not written as changes (see writeSQL).
type lotRows struct {
	lots     []*lot
	inserted map[string]bool
}

func (r *lotRows) add(l *lot) {
	if r.inserted == nil {
		r.inserted = map[string]bool{}
	}
	r.lots = append(r.lots, l)
	r.inserted[l.ID] = true
}

func (r *lotRows) appendArgs(args []any) []any {
	n := len(r.lots)
	ids, customers, orders := make([]string, n), make([]string, n), make([]string, n)
	earned, available := make([]time.Time, n), make([]time.Time, n)
	expires := make([]*time.Time, n)
	originals, remaining := make([]string, n), make([]string, n)
	for i, l := range r.lots {
		ids[i], customers[i], orders[i] = l.ID, l.CustomerID, l.OrderID
		earned[i], available[i], expires[i] = l.EarnedAt, l.AvailableAt, l.ExpiresAt
		originals[i], remaining[i] = l.Original.String(), l.Remaining.String()
	}
	return append(args, ids, customers, orders, earned, available, expires, numericArray(originals), numericArray(remaining))
}

// lotDeltas are changes of lots' remaining, summed per lot.
type lotDeltas struct {
	ids    []string
	deltas map[string]dec.Decimal
}

func (r *lotDeltas) add(lotID string, delta dec.Decimal) {
	if r.deltas == nil {
		r.deltas = map[string]dec.Decimal{}
	}
	cur, ok := r.deltas[lotID]
	if !ok {
		r.ids = append(r.ids, lotID)
		cur = dec.Zero
	}
	r.deltas[lotID] = dec.Add(cur, delta)
}

// appendArgs leaves out the lots inserted by the same statement.
func (r *lotDeltas) appendArgs(args []any, inserted map[string]bool) []any {
	ids := make([]string, 0, len(r.ids))
	deltas := make([]string, 0, len(r.ids))
	for _, id := range r.ids {
		if !inserted[id] {
			ids = append(ids, id)
			deltas = append(deltas, r.deltas[id].String())
		}
	}
	return append(args, ids, numericArray(deltas))
}

// entryRows are ledger_entries rows.
type entryRows struct {
	customers, kinds, amounts, lots, orders, events []string
	at                                              []time.Time
}

// add appends entry i of journal j.
func (r *entryRows) add(j *journal, i int) {
	r.customers = append(r.customers, j.customerID)
	r.kinds = append(r.kinds, j.kinds[i])
	r.amounts = append(r.amounts, j.amounts[i].String())
	r.lots = append(r.lots, j.lotIDs[i])
	r.orders = append(r.orders, j.orderID)
	r.events = append(r.events, j.eventID)
	r.at = append(r.at, j.at)
}

func (r *entryRows) appendArgs(args []any) []any {
	return append(args, r.customers, r.kinds, numericArray(r.amounts), r.lots, r.orders, r.events, r.at)
}

// spendRows are spend_entries rows.
type spendRows struct {
	customers, orders, events []string
	at                        []time.Time
	amounts                   []string
}

func (r *spendRows) add(customerID, orderID, eventID string, at time.Time, amount dec.Decimal) {
	r.customers = append(r.customers, customerID)
	r.orders = append(r.orders, orderID)
	r.events = append(r.events, eventID)
	r.at = append(r.at, at)
	r.amounts = append(r.amounts, amount.String())
}

func (r *spendRows) appendArgs(args []any) []any {
	return append(args, r.customers, r.orders, r.events, r.at, numericArray(r.amounts))
}

// orderRows are processed_orders rows.
type orderRows struct {
	orders, events   []string
	customers        []*string
	at               []time.Time
	statuses         []string
	results          [][]byte
	earned, redeemed []string
}

func (r *orderRows) add(orderID, eventID string, customerID *string, at time.Time, status string, result []byte, earned, redeemed dec.Decimal) {
	r.orders = append(r.orders, orderID)
	r.events = append(r.events, eventID)
	r.customers = append(r.customers, customerID)
	r.at = append(r.at, at)
	r.statuses = append(r.statuses, status)
	r.results = append(r.results, result)
	r.earned = append(r.earned, earned.String())
	r.redeemed = append(r.redeemed, redeemed.String())
}

func (r *orderRows) appendArgs(args []any, catalogVersion int64) []any {
	return append(args, catalogVersion, r.orders, r.events, r.customers, r.at, r.statuses, r.results, numericArray(r.earned), numericArray(r.redeemed))
}

// outboxRows are the batch's result events; their payloads are the
// stored orders' results, in the same order.
type outboxRows struct {
	ids          []string
	traceParents []string // "" untraced (see BatchEvent.TraceParent)
}

func (r *outboxRows) add(eventID, traceParent string) {
	r.ids = append(r.ids, eventID)
	r.traceParents = append(r.traceParents, traceParent)
}

func (r *outboxRows) appendArgs(args []any, subject string) []any {
	return append(args, subject, r.ids)
}
