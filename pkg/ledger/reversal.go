package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/rules"
)

// Reversal kinds, as stored in order_reversals.
const (
	reversalReturned  = "returned"
	reversalCancelled = "cancelled"
)

// storedOrder is a processed paid order as returns and cancellations see it.
type storedOrder struct {
	orderID    string
	eventID    string
	customerID *string
	occurredAt time.Time
	status     string
	result     events.OrderResult
	cancelled  bool
	returned   map[string]dec.Decimal // line id → qty returned so far
	earned     dec.Decimal
	redeemed   dec.Decimal
	clawed     dec.Decimal
	restored   dec.Decimal
}

// consumption is one lot that paid part of the original order's redemption.
type consumption struct {
	seq      int32
	amount   dec.Decimal
	restored dec.Decimal
	lot      *lot
}

// reversalLine is the share of one original line given back.
type reversalLine struct {
	line      events.LineResult // qty returned and its gross, discount and net share
	discounts []events.Discount
}

// reversalPlan is everything a return or cancellation does.
type reversalPlan struct {
	kind   string
	t      time.Time
	orig   *storedOrder
	cust   *customerState
	member *member

	lines       []reversalLine
	cumReturned map[string]dec.Decimal // line id → qty returned after this event
	returnedNet dec.Decimal            // net given back by this event

	restoreTakes []take // into the lots the redemption came from
	restoredSeq  map[int32]dec.Decimal
	clawTakes    []take // out of lots
	clawed       dec.Decimal
	restored     dec.Decimal
	debtAdded    dec.Decimal
	debtAfter    dec.Decimal
	balance      dec.Decimal
	qualifying   dec.Decimal
	journal      *journal

	counters *ProgramCounters // deferred global counters of the batch; nil: released in place
	uses     []programUse     // a cancellation's uses to give back through counters

	// Coupons (SPEC §6.10): the original order's coupons (issued by it or
	// used by it), and what this event does to them.
	coupons  []*coupon
	voided   []*coupon // unused codes the original order issued, void from now on
	released []*coupon // codes the cancelled order used, usable again
}

func (s *Store) processReversal(ctx context.Context, tx pgx.Tx, cat *rules.Catalog, ev *events.Event, streamSeq uint64, counters *ProgramCounters) (*events.OrderResult, error) {
	t := pgTime(ev.OccurredAt)
	kind := reversalCancelled
	if ev.Returned != nil {
		kind = reversalReturned
	}
	orderID := string(ev.OrderID())
	origID := string(ev.ReferencedOrderID())

	// Round trip 1: inbox, the customer's account and the original order,
	// both locked (account first, the order every paid event takes).
	b := &pgx.Batch{}
	var fresh bool
	queueInbox(b, ev, streamSeq, &fresh)
	var seenEvent string
	if kind == reversalReturned {
		// A return is one (return order, original order) pair: a refund of
		// lines of several orders comes as one event per original order.
		b.Queue(`SELECT event_id FROM order_reversals WHERE order_id = $1 AND original_order_id = $2 AND kind = 'returned'`, orderID, origID).
			QueryRow(func(row pgx.Row) error {
				if err := row.Scan(&seenEvent); err != nil && !isNoRows(err) {
					return err
				}
				return nil
			})
	}
	b.Queue(`SELECT 1 FROM accounts WHERE customer_id = (SELECT customer_id FROM processed_orders WHERE order_id = $1) FOR UPDATE`, origID)
	var orig *storedOrder
	b.Queue(`
		SELECT order_id, event_id, customer_id, occurred_at, status, result, cancelled, returned_qty,
		       points_earned, points_redeemed, points_clawed, points_restored
		FROM processed_orders WHERE order_id = $1 FOR UPDATE`, origID).QueryRow(func(row pgx.Row) error {
		var o storedOrder
		var doc []byte
		err := row.Scan(&o.orderID, &o.eventID, &o.customerID, &o.occurredAt, &o.status, &doc, &o.cancelled, &o.returned,
			&o.earned, &o.redeemed, &o.clawed, &o.restored)
		if isNoRows(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := json.Unmarshal(doc, &o.result); err != nil {
			return fmt.Errorf("stored result of order %s: %w", origID, err)
		}
		orig = &o
		return nil
	})
	var uses []programUse
	if kind == reversalCancelled && counters != nil {
		// After the order row's lock: no other cancellation releases them meanwhile.
		queueReadUses(b, origID, &uses)
	}
	if err := runBatch(ctx, tx, b, "read original of "+ev.EventID); err != nil {
		return nil, err
	}
	if !fresh || seenEvent == ev.EventID {
		return nil, nil
	}
	if seenEvent != "" {
		return nil, fmt.Errorf("%w: return %s of order %s was processed by event %s, not %s", ErrDuplicateOrder, orderID, origID, seenEvent, ev.EventID)
	}
	if orig == nil {
		return nil, fmt.Errorf("%w: %s refers to order %s", ErrUnknownOriginalOrder, ev.EventID, origID)
	}

	p := &reversalPlan{kind: kind, t: t, orig: orig, counters: counters, uses: uses}
	var rejection *events.ResultError
	switch {
	case orig.status != events.StatusApplied:
		rejection = &events.ResultError{Code: events.RejectUnknownOriginalOrder,
			Message: fmt.Sprintf("order %s was rejected; there is nothing to reverse", origID)}
	case orig.cancelled:
		rejection = &events.ResultError{Code: events.RejectAlreadyCancelled,
			Message: fmt.Sprintf("order %s is already cancelled", origID)}
	default:
		rejection = p.planLines(cat, ev)
	}

	if rejection == nil && orig.customerID != nil {
		// Round trip 2: the customer's lots, spend and levels, and the lots
		// the original redemption came from.
		b = &pgx.Batch{}
		p.cust = queueCustomerReads(b, cat, *orig.customerID, t, false)
		var cons []consumption
		b.Queue(`
			SELECT c.seq, c.amount, c.restored, `+prefixed("l.", lotColumns)+`
			FROM point_consumptions c JOIN point_lots l ON l.lot_id = c.lot_id
			WHERE c.order_id = $1 ORDER BY c.seq`, origID).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var c consumption
				var l lot
				if err := rows.Scan(&c.seq, &c.amount, &c.restored,
					&l.ID, &l.CustomerID, &l.OrderID, &l.EarnedAt, &l.AvailableAt, &l.ExpiresAt, &l.Original, &l.Remaining); err != nil {
					return err
				}
				c.lot = &l
				cons = append(cons, c)
			}
			return rows.Err()
		})
		b.Queue(`SELECT `+couponColumns+` FROM coupons WHERE customer_id = $1 AND (order_id = $2 OR used_order_id = $2) ORDER BY code COLLATE "C"`,
			*orig.customerID, origID).Query(func(rows pgx.Rows) error {
			var err error
			p.coupons, err = pgx.CollectRows(rows, scanCoupon)
			return err
		})
		if err := runBatch(ctx, tx, b, "read customer of "+ev.EventID); err != nil {
			return nil, err
		}
		p.planPoints(cat, ev, cons)
		p.planCoupons()
	}

	res := p.result(cat, ev, rejection)

	// Last round trip: every write.
	b = &pgx.Batch{}
	if rejection == nil {
		p.queueWrites(b, ev)
	}
	doc, err := marshalResult(res)
	if err != nil {
		return nil, err
	}
	b.Queue(`
		INSERT INTO order_reversals (event_id, kind, order_id, original_order_id, customer_id, occurred_at, status, catalog_version, result)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		ev.EventID, kind, orderID, origID, orig.customerID, t, res.Status, cat.Version, doc)
	queueEnqueueJSON(b, s.subjects.ResultsOrder(), res.EventID, doc, traceParentOf(ctx))
	if err := runBatch(ctx, tx, b, "write effects of "+ev.EventID); err != nil {
		return nil, err
	}
	return res, nil
}

func prefixed(prefix, columns string) string {
	var out []byte
	out = append(out, prefix...)
	for i := 0; i < len(columns); i++ {
		out = append(out, columns[i])
		if columns[i] == ' ' && i > 0 && columns[i-1] == ',' {
			out = append(out, prefix...)
		}
	}
	return string(out)
}

// planLines works out which quantities go back and their shares of the
// original lines; a return of more than was sold is a rejection.
func (p *reversalPlan) planLines(cat *rules.Catalog, ev *events.Event) *events.ResultError {
	orig := p.orig
	byID := make(map[string]events.LineResult, len(orig.result.Lines))
	for _, l := range orig.result.Lines {
		byID[l.ID] = l
	}
	prev := func(id string) dec.Decimal {
		if q, ok := orig.returned[id]; ok {
			return q
		}
		return dec.Zero
	}

	// The quantities to give back, in the order the event names them (the
	// original's order for a cancellation).
	var order []string
	qty := map[string]dec.Decimal{}
	if ev.Returned != nil {
		for _, rl := range ev.Returned.Lines {
			id := string(rl.LineID)
			if _, ok := byID[id]; !ok {
				return &events.ResultError{Code: events.RejectReturnExceedsSold,
					Message: fmt.Sprintf("line %s was not sold in order %s", id, orig.orderID)}
			}
			if _, seen := qty[id]; !seen {
				order = append(order, id)
				qty[id] = dec.Zero
			}
			qty[id] = dec.Add(qty[id], rl.Qty)
		}
		for _, id := range order {
			sold := byID[id].Qty
			if after := dec.Add(prev(id), qty[id]); after.Greater(sold) {
				return &events.ResultError{Code: events.RejectReturnExceedsSold,
					Message: fmt.Sprintf("line %s: %s returned before and %s now exceed the %s sold", id, prev(id), qty[id], sold)}
			}
		}
	} else {
		for _, l := range orig.result.Lines {
			if left := dec.Sub(l.Qty, prev(l.ID)); left.Sign() > 0 {
				order = append(order, l.ID)
				qty[l.ID] = left
			}
		}
	}

	money := cat.MoneyDecimals
	p.cumReturned = map[string]dec.Decimal{}
	for id, q := range orig.returned {
		p.cumReturned[id] = q
	}
	p.returnedNet = dec.Zero
	for _, id := range order {
		ol := byID[id]
		before, after := prev(id), dec.Add(prev(id), qty[id])
		p.cumReturned[id] = after
		gross := dec.Sub(share(ol.Gross, after, ol.Qty, money), share(ol.Gross, before, ol.Qty, money))
		net := dec.Sub(share(ol.Net, after, ol.Qty, money), share(ol.Net, before, ol.Qty, money))
		discount := dec.Sub(gross, net)
		rl := reversalLine{line: events.LineResult{ID: id, Qty: qty[id], Gross: gross, Discount: discount, Net: net}}
		rl.discounts = splitDiscount(orig.result.Discounts, id, discount, money)
		p.lines = append(p.lines, rl)
		p.returnedNet = dec.Add(p.returnedNet, net)
	}
	return nil
}

// share is an original amount's share for qty x of q sold, rounded half up:
// round(total × x / q). Shares are always taken cumulatively —
// share(before + n) − share(before) — so that returns which add up to the
// whole line give back exactly the whole line.
func share(total, x, q dec.Decimal, places int32) dec.Decimal {
	if q.IsZero() {
		return dec.Zero.Round(places)
	}
	return dec.Quo(dec.Mul(total, x), q).Round(places)
}

// splitDiscount splits a returned line's discount over the original line's
// discount entries in proportion, by largest remainder, so that the entries
// of the reversal sum exactly to its discount.
func splitDiscount(all []events.Discount, lineID string, discount dec.Decimal, places int32) []events.Discount {
	var entries []events.Discount
	var weights []dec.Decimal
	for _, d := range all {
		if d.LineID == lineID {
			entries = append(entries, d)
			weights = append(weights, d.Amount)
		}
	}
	if discount.IsZero() || len(entries) == 0 {
		return nil
	}
	neg := discount.Sign() < 0
	total := discount
	if neg {
		// Cumulative rounding can make one return's gross share round down
		// while its net share rounds up; the (tiny) negative discount is
		// split the same way.
		total = discount.Neg()
	}
	shares := rules.Allocate(total, weights, places)
	var out []events.Discount
	for i, sh := range shares {
		if sh.IsZero() {
			continue
		}
		if neg {
			sh = sh.Neg()
		}
		d := entries[i]
		d.Amount = sh
		out = append(out, d)
	}
	return out
}

// ratio returns num/den of the original order given back so far: by net,
// or by quantity when the order's net was zero.
func (p *reversalPlan) ratio(cat *rules.Catalog) (dec.Decimal, dec.Decimal) {
	orig := p.orig
	money := cat.MoneyDecimals
	cumNet, cumQty, soldQty := dec.Zero, dec.Zero, dec.Zero
	for _, l := range orig.result.Lines {
		c, ok := p.cumReturned[l.ID]
		if !ok {
			c = dec.Zero
		}
		cumNet = dec.Add(cumNet, share(l.Net, c, l.Qty, money))
		cumQty = dec.Add(cumQty, c)
		soldQty = dec.Add(soldQty, l.Qty)
	}
	if orig.result.Totals.Net.Sign() > 0 {
		return cumNet, orig.result.Totals.Net
	}
	return cumQty, soldQty
}

// proportion is floor(amount × num / den) to the points decimals.
func proportion(amount, num, den dec.Decimal, places int32) dec.Decimal {
	if den.IsZero() {
		return dec.Zero.Round(places)
	}
	return dec.Quo(dec.Mul(amount, num), den).Floor(places)
}

// planPoints works out the restore and the clawback of a customer's order.
// Redeemed points are restored first, into the lots they came from, last
// consumed first; then earned points are clawed back from the order's own
// lot, then FEFO, and what the lots cannot cover becomes debt. Restoring
// first means a customer who returns an order paid partly with points gets
// those points netted against the clawback before any debt arises.
func (p *reversalPlan) planPoints(cat *rules.Catalog, ev *events.Event, cons []consumption) {
	c, orig, t := p.cust, p.orig, p.t
	places := cat.Points.Decimals
	p.journal = newJournal(c.id, string(ev.OrderID()), ev.EventID, t)
	p.member = memberOf(cat, c)
	p.debtAfter = c.debt

	num, den := p.ratio(cat)
	p.restored = dec.Max(dec.Sub(proportion(orig.redeemed, num, den, places), orig.restored), dec.Zero)
	p.clawed = dec.Max(dec.Sub(proportion(orig.earned, num, den, places), orig.clawed), dec.Zero)

	live := make(map[string]*lot, len(c.lots))
	for _, l := range c.lots {
		live[l.ID] = l
	}

	// Restore, last consumed first, each consumption up to what it took.
	p.restoredSeq = map[int32]dec.Decimal{}
	left := p.restored
	for i := len(cons) - 1; i >= 0 && left.Sign() > 0; i-- {
		cn := cons[i]
		n := dec.Min(dec.Sub(cn.amount, cn.restored), left)
		if n.Sign() <= 0 {
			continue
		}
		left = dec.Sub(left, n)
		p.restoredSeq[cn.seq] = n
		l := cn.lot
		p.restoreTakes = append(p.restoreTakes, take{Lot: l, Amount: n})
		p.journal.entry(kindRestore, n, l.ID)
		if l.expiredAt(t) {
			// The lot has expired: the points go back and expire at once.
			p.journal.entry(kindExpire, n, l.ID)
			p.journal.markExpired(l.ID)
			continue
		}
		p.journal.lotDelta(l.ID, n)
		if ll, ok := live[l.ID]; ok {
			ll.Remaining = dec.Add(ll.Remaining, n)
		} else {
			l.Remaining = dec.Add(l.Remaining, n)
			live[l.ID] = l
			c.lots = append(c.lots, l)
			sortFEFO(c.lots)
		}
	}
	if left.Sign() > 0 {
		// Consumptions cover every redeemed point, so this cannot happen;
		// should it, the customer still gets the points, into the last lot.
		p.restored = dec.Sub(p.restored, left)
	}

	// Clawback: the order's own lot first (pending is fine, expired is not).
	need := p.clawed
	if own, ok := live[orig.eventID]; ok && need.Sign() > 0 && own.Remaining.Sign() > 0 && !own.expiredAt(t) {
		n := dec.Min(own.Remaining, need)
		own.Remaining = dec.Sub(own.Remaining, n)
		need = dec.Sub(need, n)
		p.clawTakes = append(p.clawTakes, take{Lot: own, Amount: n})
	}
	fefo, short := consumeFEFO(c.lots, t, need)
	p.clawTakes = append(p.clawTakes, fefo...)
	for _, tk := range p.clawTakes {
		p.journal.entry(kindClawback, tk.Amount, tk.Lot.ID)
		p.journal.lotDelta(tk.Lot.ID, tk.Amount.Neg())
	}
	p.debtAdded = short
	p.journal.entry(kindDebt, short, "")
	p.debtAfter = dec.Add(c.debt, short)
	p.balance = balanceAt(c.lots, t)

	if m := p.member; m != nil {
		p.qualifying = c.spend[m.path.ID]
		start := windowStart(cat, m.path, t)
		if orig.occurredAt.After(start) && !orig.occurredAt.After(t) {
			p.qualifying = dec.Sub(p.qualifying, p.returnedNet)
		}
	}
}

// queueWrites adds the writes of an applied return or cancellation to b.
func (p *reversalPlan) queueWrites(b *pgx.Batch, ev *events.Event) {
	orig := p.orig
	returned := make(map[string]string, len(p.cumReturned))
	for id, q := range p.cumReturned {
		returned[id] = q.String()
	}
	b.Queue(`
		UPDATE processed_orders
		SET returned_qty = $2, cancelled = cancelled OR $3,
		    points_clawed = points_clawed + $4, points_restored = points_restored + $5
		WHERE order_id = $1`,
		orig.orderID, returned, p.kind == reversalCancelled, p.clawed, p.restored)
	if p.kind == reversalCancelled {
		queueReleaseUses(b, orig.orderID, p.counters, p.uses)
	}
	c := p.cust
	if c == nil {
		return
	}
	p.queueCouponWrites(b)
	if len(p.restoredSeq) > 0 {
		seqs := make([]int32, 0, len(p.restoredSeq))
		for s := range p.restoredSeq {
			seqs = append(seqs, s)
		}
		sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
		amounts := make([]string, len(seqs))
		for i, s := range seqs {
			amounts[i] = p.restoredSeq[s].String()
		}
		b.Queue(`
			UPDATE point_consumptions c SET restored = c.restored + r.amount
			FROM unnest($2::int[], $3::numeric[]) AS r(seq, amount)
			WHERE c.order_id = $1 AND c.seq = r.seq`, orig.orderID, seqs, numericArray(amounts))
	}
	p.journal.queue(b)
	if p.debtAdded.Sign() > 0 {
		b.Queue(`UPDATE accounts SET debt = debt + $2 WHERE customer_id = $1`, c.id, p.debtAdded)
	}
	if !p.returnedNet.IsZero() {
		// Dated at the original order so that the rolling window sees the
		// spend as it should have been all along.
		b.Queue(`INSERT INTO spend_entries (customer_id, order_id, event_id, spent_at, amount) VALUES ($1, $2, $3, $4, $5)`,
			c.id, orig.orderID, ev.EventID, orig.occurredAt, p.returnedNet.Neg())
	}
}

// result builds the SPEC §4 result of a return or cancellation.
func (p *reversalPlan) result(cat *rules.Catalog, ev *events.Event, rejection *events.ResultError) *events.OrderResult {
	f := formatOf(cat)
	orig := p.orig
	res := newOrderResult(cat, ev, string(ev.OrderID()), orig.result.Currency)
	res.OriginalOrderID = orig.orderID
	if orig.customerID != nil {
		res.CustomerID = *orig.customerID
	}
	zero := f.amount(dec.Zero)
	res.Totals = events.Totals{Gross: zero, Discount: zero, Net: zero}
	if rejection != nil {
		res.Status = events.StatusRejected
		res.Error = rejection
		return res
	}
	res.Status = events.StatusApplied
	for _, rl := range p.lines {
		l := rl.line
		l.Gross, l.Discount, l.Net = f.amount(l.Gross), f.amount(l.Discount), f.amount(l.Net)
		res.Lines = append(res.Lines, l)
		res.Totals.Gross = dec.Add(res.Totals.Gross, l.Gross)
		res.Totals.Discount = dec.Add(res.Totals.Discount, l.Discount)
		res.Totals.Net = dec.Add(res.Totals.Net, l.Net)
		for _, d := range rl.discounts {
			d.Amount = f.amount(d.Amount)
			res.Discounts = append(res.Discounts, d)
		}
	}
	res.Totals = events.Totals{Gross: f.amount(res.Totals.Gross), Discount: f.amount(res.Totals.Discount), Net: f.amount(res.Totals.Net)}
	if p.cust == nil {
		return res
	}
	pts := newPoints(f)
	pts.ClawedBack = f.pts(p.clawed)
	if len(p.clawTakes) > 0 {
		pts.ClawedBackLots = lotAmounts(f, p.clawTakes)
	}
	pts.Restored = f.pts(p.restored)
	if len(p.restoreTakes) > 0 {
		pts.RestoredLots = lotAmounts(f, p.restoreTakes)
	}
	pts.Debt = f.pts(p.debtAfter)
	pts.Balance = f.pts(p.balance)
	res.Points = pts
	for _, c := range p.voided {
		res.CouponsVoided = append(res.CouponsVoided, events.CouponRef{Code: c.code, ProgramID: c.programID})
	}
	for _, c := range p.released {
		res.CouponsReleased = append(res.CouponsReleased, events.CouponRef{Code: c.code, ProgramID: c.programID})
	}
	if m := p.member; m != nil {
		res.Membership = &events.Membership{Path: m.path.ID, Level: m.level, PreviousLevel: m.level,
			QualifyingAmount: f.amount(p.qualifying)}
	}
	return res
}
