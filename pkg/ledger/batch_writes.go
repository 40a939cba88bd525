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
	if err := runBatch(ctx, b.tx, pb, "write effects of a batch"); err != nil {
		return err
	}
	return check()
}

// queue adds a statement per table with pending rows to pb and empties w.
// New lots go in before the changes of remainders, which may concern them.
func (w *batchWrites) queue(pb *pgx.Batch, catalogVersion int64, resultsSubject string) {
	w.programUses.queue(pb)
	w.customerUses.queue(pb)
	w.accounts.queue(pb)
	w.levels.queue(pb)
	w.history.queue(pb)
	w.consumptions.queue(pb)
	w.lots.queue(pb)
	w.lotDeltas.queue(pb)
	w.entries.queue(pb)
	w.spend.queue(pb)
	w.orders.queue(pb, catalogVersion)
	w.outbox.queue(pb, resultsSubject)
}

// programUseRows are order_program_uses rows.
type programUseRows struct {
	orders, programs, customers []string
	discounts                   []string
}

func (r *programUseRows) add(orderID, programID, customerID string, discount dec.Decimal) {
	r.orders = append(r.orders, orderID)
	r.programs = append(r.programs, programID)
	r.customers = append(r.customers, customerID)
	r.discounts = append(r.discounts, discount.String())
}

func (r *programUseRows) queue(pb *pgx.Batch) {
	if len(r.orders) == 0 {
		return
	}
	pb.Queue(`
		INSERT INTO order_program_uses (order_id, program_id, customer_id, discount)
		SELECT o, p, NULLIF(c, ''), d FROM unnest($1::text[], $2::text[], $3::text[], $4::numeric[]) AS u(o, p, c, d)`,
		r.orders, r.programs, r.customers, r.discounts)
	*r = programUseRows{}
}

// customerUseCounts are the uses to add to program_customer_usage, summed
// per program and customer (one upsert may touch a row once).
type customerUseCounts struct {
	keys []customerUseKey
	n    map[customerUseKey]int64
}

type customerUseKey struct{ program, customer string }

func (r *customerUseCounts) add(programID, customerID string) {
	k := customerUseKey{programID, customerID}
	if r.n == nil {
		r.n = map[customerUseKey]int64{}
	}
	if _, ok := r.n[k]; !ok {
		r.keys = append(r.keys, k)
	}
	r.n[k]++
}

func (r *customerUseCounts) queue(pb *pgx.Batch) {
	if len(r.keys) == 0 {
		return
	}
	programs := make([]string, len(r.keys))
	customers := make([]string, len(r.keys))
	counts := make([]int64, len(r.keys))
	for i, k := range r.keys {
		programs[i], customers[i], counts[i] = k.program, k.customer, r.n[k]
	}
	pb.Queue(`
		INSERT INTO program_customer_usage AS p (program_id, customer_id, uses)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
		ON CONFLICT (program_id, customer_id) DO UPDATE SET uses = p.uses + excluded.uses`,
		programs, customers, counts)
	*r = customerUseCounts{}
}

// accountRows are the accounts changed, written with their final state.
type accountRows struct{ customers []*cachedCustomer }

func (r *accountRows) touch(c *cachedCustomer) {
	if !c.accountDirty {
		c.accountDirty = true
		r.customers = append(r.customers, c)
	}
}

func (r *accountRows) queue(pb *pgx.Batch) {
	if len(r.customers) == 0 {
		return
	}
	n := len(r.customers)
	ids := make([]string, n)
	paths := make([]*string, n)
	debts := make([]string, n)
	opened := make([]*time.Time, n)
	for i, c := range r.customers {
		ids[i], paths[i], debts[i], opened[i] = c.id, c.path, c.debt.String(), c.openedAt
		c.accountDirty = false
	}
	pb.Queue(`
		UPDATE accounts a SET path = u.path, debt = u.debt, opened_at = COALESCE(a.opened_at, u.opened_at)
		FROM unnest($1::text[], $2::text[], $3::numeric[], $4::timestamptz[]) AS u(id, path, debt, opened_at)
		WHERE a.customer_id = u.id`, ids, paths, debts, opened)
	*r = accountRows{}
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

func (r *levelRows) queue(pb *pgx.Batch) {
	if len(r.keys) == 0 {
		return
	}
	n := len(r.keys)
	ids, paths, levels := make([]string, n), make([]string, n), make([]string, n)
	since := make([]time.Time, n)
	for i, k := range r.keys {
		row := k.c.levels[k.path]
		ids[i], paths[i], levels[i], since[i] = k.c.id, k.path, row.Level, row.Since
	}
	pb.Queue(`
		INSERT INTO member_levels AS m (customer_id, path, level, since)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
		ON CONFLICT (customer_id, path) DO UPDATE SET level = excluded.level, since = excluded.since`,
		ids, paths, levels, since)
	*r = levelRows{}
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

func (r *historyRows) queue(pb *pgx.Batch) {
	if len(r.customers) == 0 {
		return
	}
	pb.Queue(`
		INSERT INTO level_history (customer_id, path, previous_level, level, changed_at, reason, event_id)
		SELECT c, p, prev, l, at, why, e
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::text[])
		     WITH ORDINALITY AS h(c, p, prev, l, at, why, e, n)
		ORDER BY n`,
		r.customers, r.paths, r.previous, r.levels, r.at, r.reasons, r.eventID)
	*r = historyRows{}
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

func (r *consumptionRows) queue(pb *pgx.Batch) {
	if len(r.orders) == 0 {
		return
	}
	pb.Queue(`
		INSERT INTO point_consumptions (order_id, seq, lot_id, amount)
		SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::numeric[])`,
		r.orders, r.seqs, r.lots, r.amounts)
	*r = consumptionRows{}
}

// lotRows are new point_lots rows, inserted with remaining = original as
// queueNewLot does; later redemptions in the batch come as lotDeltas.
type lotRows struct {
	ids, customers, orders []string
	earned, available      []time.Time
	expires                []*time.Time
	originals              []string
}

func (r *lotRows) add(l *lot) {
	r.ids = append(r.ids, l.ID)
	r.customers = append(r.customers, l.CustomerID)
	r.orders = append(r.orders, l.OrderID)
	r.earned = append(r.earned, l.EarnedAt)
	r.available = append(r.available, l.AvailableAt)
	r.expires = append(r.expires, l.ExpiresAt)
	r.originals = append(r.originals, l.Original.String())
}

func (r *lotRows) queue(pb *pgx.Batch) {
	if len(r.ids) == 0 {
		return
	}
	pb.Queue(`
		INSERT INTO point_lots (lot_id, customer_id, order_id, earned_at, available_at, expires_at, original, remaining)
		SELECT id, c, o, e, a, x, n, n
		FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::timestamptz[], $7::numeric[])
		     AS l(id, c, o, e, a, x, n)`,
		r.ids, r.customers, r.orders, r.earned, r.available, r.expires, r.originals)
	*r = lotRows{}
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

func (r *lotDeltas) queue(pb *pgx.Batch) {
	if len(r.ids) == 0 {
		return
	}
	deltas := make([]string, len(r.ids))
	for i, id := range r.ids {
		deltas[i] = r.deltas[id].String()
	}
	pb.Queue(`
		UPDATE point_lots l SET remaining = l.remaining + d.delta
		FROM unnest($1::text[], $2::numeric[]) AS d(id, delta)
		WHERE l.lot_id = d.id`, r.ids, deltas)
	*r = lotDeltas{}
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

func (r *entryRows) queue(pb *pgx.Batch) {
	if len(r.customers) == 0 {
		return
	}
	pb.Queue(`
		INSERT INTO ledger_entries (customer_id, kind, amount, lot_id, order_id, event_id, occurred_at)
		SELECT c, k, a, NULLIF(l, ''), NULLIF(o, ''), e, t
		FROM unnest($1::text[], $2::text[], $3::numeric[], $4::text[], $5::text[], $6::text[], $7::timestamptz[])
		     WITH ORDINALITY AS j(c, k, a, l, o, e, t, n)
		ORDER BY n`,
		r.customers, r.kinds, r.amounts, r.lots, r.orders, r.events, r.at)
	*r = entryRows{}
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

func (r *spendRows) queue(pb *pgx.Batch) {
	if len(r.customers) == 0 {
		return
	}
	pb.Queue(`
		INSERT INTO spend_entries (customer_id, order_id, event_id, spent_at, amount)
		SELECT c, o, e, t, a
		FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::numeric[]) WITH ORDINALITY AS s(c, o, e, t, a, n)
		ORDER BY n`,
		r.customers, r.orders, r.events, r.at, r.amounts)
	*r = spendRows{}
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

func (r *orderRows) queue(pb *pgx.Batch, catalogVersion int64) {
	if len(r.orders) == 0 {
		return
	}
	pb.Queue(`
		INSERT INTO processed_orders (order_id, event_id, customer_id, occurred_at, status, catalog_version, result, points_earned, points_redeemed)
		SELECT o, e, c, t, s, $6, r, pe, pr
		FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $7::jsonb[], $8::numeric[], $9::numeric[])
		     AS u(o, e, c, t, s, r, pe, pr)`,
		r.orders, r.events, r.customers, r.at, r.statuses, catalogVersion, r.results, r.earned, r.redeemed)
	*r = orderRows{}
}

// outboxRows are the batch's result events.
type outboxRows struct {
	ids      []string
	payloads [][]byte
}

func (r *outboxRows) add(eventID string, payload []byte) {
	r.ids = append(r.ids, eventID)
	r.payloads = append(r.payloads, payload)
}

// queue writes the rows in stream order (the relay publishes in id order)
// and notifies the relay once.
func (r *outboxRows) queue(pb *pgx.Batch, subject string) {
	if len(r.ids) == 0 {
		return
	}
	pb.Queue(`
		WITH ins AS (
			INSERT INTO outbox (event_id, subject, payload)
			SELECT e, $2, p FROM unnest($1::text[], $3::bytea[]) WITH ORDINALITY AS u(e, p, n)
			ORDER BY n
			ON CONFLICT (event_id) DO NOTHING
		)
		SELECT pg_notify('`+OutboxChannel+`', '')`, r.ids, subject, r.payloads)
	*r = outboxRows{}
}
