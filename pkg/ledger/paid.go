package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/events"
	"github.com/promoengine/promoengine/pkg/rules"
)

// paidPlan is everything a paid order does to the ledger, computed in memory
// between the read round trip and the write round trip.
type paidPlan struct {
	t        time.Time // business time, as stored
	outcome  *rules.Outcome
	cust     *customerState   // nil for an anonymous order
	counters *ProgramCounters // deferred global program counters of the batch; nil: locked per event
	member   *member          // nil without a customer or membership

	balanceBefore dec.Decimal

	// Membership after the order.
	qualifying   dec.Decimal
	level        string
	levelChanged bool

	// Points.
	takes     []take // the redemption, in consumption order
	earned    dec.Decimal
	debtPaid  dec.Decimal
	newLot    *lot // nil when nothing is left after paying debt
	expiresAt *time.Time
	debtAfter dec.Decimal
	balance   dec.Decimal

	// Coupons the order issues (their codes derived by issueCoupons).
	issued []*coupon
}

func checkCurrency(cat *rules.Catalog, o *events.PaidOrder) error {
	if o.Currency != cat.Currency {
		return fmt.Errorf("%w: order %s is in %q, the catalog in %q", ErrCurrencyMismatch, o.ID, o.Currency, cat.Currency)
	}
	return nil
}

func (s *Store) processPaid(ctx context.Context, tx pgx.Tx, cat *rules.Catalog, ev *events.Event, streamSeq uint64, counters *ProgramCounters) (*events.OrderResult, error) {
	if err := checkCurrency(cat, ev.Paid); err != nil {
		return nil, err
	}
	t := pgTime(ev.OccurredAt)
	orderID := string(ev.Paid.ID)
	customerID := string(ev.Paid.CustomerID)

	// Round trip 1: inbox, order id check, the customer's locked state.
	b := &pgx.Batch{}
	var fresh bool
	queueInbox(b, ev, streamSeq, &fresh)
	var seenEvent string
	b.Queue(`SELECT event_id FROM processed_orders WHERE order_id = $1`, orderID).QueryRow(func(row pgx.Row) error {
		if err := row.Scan(&seenEvent); err != nil && !isNoRows(err) {
			return err
		}
		return nil
	})
	var cust *customerState
	if customerID != "" {
		cust = queueCustomerReads(b, cat, customerID, t, true)
		queueCouponReads(b, cust, presentedCodes(ev.Paid))
	}
	if err := runBatch(ctx, tx, b, "read state of "+ev.EventID); err != nil {
		return nil, err
	}
	if !fresh || seenEvent == ev.EventID {
		return nil, nil
	}
	if seenEvent != "" {
		return nil, fmt.Errorf("%w: order %s was processed by event %s, not %s", ErrDuplicateOrder, orderID, seenEvent, ev.EventID)
	}

	// Evaluation; limits are read (and locked) as it goes.
	plan, err := planPaid(cat, ev, t, cust, &limitsReader{ctx: ctx, db: tx, lock: true, counters: counters, cat: cat, ev: ev})
	if err != nil {
		return nil, err
	}
	if err := plan.issueCoupons(s.couponSecret, ev); err != nil {
		return nil, err
	}
	plan.counters = counters
	res := plan.result(cat, ev, events.StatusApplied)
	doc, err := marshalResult(res)
	if err != nil {
		return nil, err
	}

	// Round trip 2: every write.
	b = &pgx.Batch{}
	var couponCheck error
	if plan.outcome.Rejection == nil {
		plan.queueWrites(b, cat, ev, &couponCheck)
	}
	queueProcessedOrder(b, ev, cat, res, plan, doc)
	queueEnqueueJSON(b, s.subjects.ResultsOrder(), res.EventID, doc, traceParentOf(ctx))
	if err := runBatch(ctx, tx, b, "write effects of "+ev.EventID); err != nil {
		return nil, err
	}
	if couponCheck != nil {
		return nil, couponCheck
	}
	return res, nil
}

// planPaid evaluates the order and works out its effects on the ledger. It
// reads nothing but cust and limits, and changes nothing but the Remaining
// of cust's lots a redemption takes from, so the per-event path and a Batch
// (which keeps the customer's state in memory between events) share it.
func planPaid(cat *rules.Catalog, ev *events.Event, t time.Time, cust *customerState, limits rules.LimitsReader) (*paidPlan, error) {
	p := &paidPlan{t: t, cust: cust}
	in := rules.Input{
		OccurredAt:  ev.OccurredAt,
		CompanyID:   string(ev.CompanyID),
		PosConfigID: string(ev.PosConfigID),
		Order:       ev.Paid,
	}
	if cust != nil {
		p.member = memberOf(cat, cust)
		p.balanceBefore = balanceAt(cust.lots, t)
		p.debtAfter = cust.debt
		in.Customer = &rules.Customer{ID: cust.id, Balance: p.balanceBefore}
		in.Coupons = couponsInput(cust.coupons)
		if p.member != nil {
			in.Customer.Path, in.Customer.Level = p.member.path.ID, p.member.level
			p.level = p.member.level
			p.qualifying = cust.spend[p.member.path.ID]
		}
	}
	out, err := rules.Evaluate(cat, in, limits)
	if err != nil {
		return nil, fmt.Errorf("ledger: evaluate %s: %w", ev.EventID, err)
	}
	p.outcome = out
	p.balance = p.balanceBefore
	if out.Rejection != nil || cust == nil {
		return p, nil
	}

	if out.RedeemPoints.Sign() > 0 {
		var short dec.Decimal
		p.takes, short = consumeFEFO(cust.lots, t, out.RedeemPoints)
		if short.Sign() > 0 {
			// Evaluate checked the redemption against this very balance.
			return nil, fmt.Errorf("ledger: redemption of %s exceeds the balance of customer %s by %s", out.RedeemPoints, cust.id, short)
		}
	}

	if m := p.member; m != nil {
		p.qualifying = dec.Add(p.qualifying, out.Totals.Net)
		if q := m.path.Qualified(p.qualifying); q != nil && levelIndex(m.path, q.ID) > levelIndex(m.path, m.level) {
			p.level, p.levelChanged = q.ID, true
		}
	}

	p.earned = out.Earned
	p.expiresAt = pgTimePtr(cat.ExpiresAt(t))
	p.debtPaid = dec.Min(cust.debt, p.earned)
	p.debtAfter = dec.Sub(cust.debt, p.debtPaid)
	if rest := dec.Sub(p.earned, p.debtPaid); rest.Sign() > 0 {
		p.newLot = &lot{
			ID: ev.EventID, CustomerID: cust.id, OrderID: string(ev.Paid.ID),
			EarnedAt: t, AvailableAt: pgTime(cat.AvailableAt(t)), ExpiresAt: p.expiresAt,
			Original: rest, Remaining: rest,
		}
	}
	p.balance = balanceAt(cust.lots, t)
	if p.newLot != nil && p.newLot.spendableAt(t) {
		p.balance = dec.Add(p.balance, p.newLot.Remaining)
	}
	return p, nil
}

// queueWrites adds the ledger writes of an applied paid order to b;
// *couponCheck reports, once b has run, a coupon used meanwhile.
func (p *paidPlan) queueWrites(b *pgx.Batch, cat *rules.Catalog, ev *events.Event, couponCheck *error) {
	orderID := string(ev.Paid.ID)
	customerID := ""
	if p.cust != nil {
		customerID = p.cust.id
	}
	queueUses(b, usesOf(cat, ev, p.outcome.Uses), orderID, customerID, p.counters)
	if p.cust == nil {
		return
	}
	c := p.cust
	p.queueCouponWrites(b, orderID, couponCheck)

	b.Queue(`UPDATE accounts SET path = $2, debt = $3, opened_at = COALESCE(opened_at, $4) WHERE customer_id = $1`,
		c.id, p.accountPath(), p.debtAfter, p.t)

	for _, lc := range p.levelChanges(ev) {
		queueLevelChange(b, lc.customerID, lc.path, lc.previous, lc.level, lc.at, lc.reason, lc.eventID)
	}

	if len(p.takes) > 0 {
		lotIDs := make([]string, len(p.takes))
		amounts := make([]dec.Decimal, len(p.takes))
		for i, tk := range p.takes {
			lotIDs[i], amounts[i] = tk.Lot.ID, tk.Amount
		}
		b.Queue(`
			INSERT INTO point_consumptions (order_id, seq, lot_id, amount)
			SELECT $1, n, id, a FROM unnest($2::text[], $3::numeric[]) WITH ORDINALITY AS c(id, a, n)`,
			orderID, lotIDs, decArray(amounts))
	}
	if p.newLot != nil {
		queueNewLot(b, p.newLot)
	}
	p.journal(ev).queue(b)

	if !p.outcome.Totals.Net.IsZero() {
		b.Queue(`INSERT INTO spend_entries (customer_id, order_id, event_id, spent_at, amount) VALUES ($1, $2, $3, $4, $5)`,
			c.id, orderID, ev.EventID, p.t, p.outcome.Totals.Net)
	}
}

// accountPath is the path the customer's account records after the order:
// the membership path, or NULL without membership.
func (p *paidPlan) accountPath() *string {
	if p.member == nil {
		return nil
	}
	return &p.member.path.ID
}

// levelChange is one write of a customer's level on a path, with its
// history row.
type levelChange struct {
	customerID, path, previous, level string
	at                                time.Time
	reason, eventID                   string
}

// levelChanges lists the level writes of an applied paid order with a
// customer, in order: joining the path at the entry level (a customer's first
// order on it), then the upgrade the order earned.
func (p *paidPlan) levelChanges(ev *events.Event) []levelChange {
	m := p.member
	if m == nil {
		return nil
	}
	var out []levelChange
	if !m.row {
		out = append(out, levelChange{customerID: p.cust.id, path: m.path.ID, level: m.level, at: p.t,
			reason: fmt.Sprintf("joined path %s at %s", m.path.ID, m.level), eventID: ev.EventID})
	}
	if p.levelChanged {
		out = append(out, levelChange{customerID: p.cust.id, path: m.path.ID, previous: m.level, level: p.level, at: p.t,
			reason: upgradeReason(m.path, m.path.Level(p.level), p.qualifying), eventID: ev.EventID})
	}
	return out
}

// journal is the ledger entries and lot changes of an applied paid order
// with a customer: the redemption lot by lot, the debt paid, the new lot.
func (p *paidPlan) journal(ev *events.Event) *journal {
	j := newJournal(p.cust.id, string(ev.Paid.ID), ev.EventID, p.t)
	for _, tk := range p.takes {
		j.entry(kindRedeem, tk.Amount, tk.Lot.ID)
		j.lotDelta(tk.Lot.ID, tk.Amount.Neg())
	}
	j.entry(kindDebtPayment, p.debtPaid, "")
	if p.newLot != nil {
		j.entry(kindEarn, p.newLot.Original, p.newLot.ID)
	}
	return j
}

// marshalResult renders a result once: the same bytes are stored with the
// order and enqueued to the outbox. AppendJSON writes what json.Marshal
// would, without its reflection (8 % of the engine's CPU at full speed).
func marshalResult(res *events.OrderResult) ([]byte, error) {
	doc := res.AppendJSON(make([]byte, 0, 2048))
	if len(doc) > MaxResultBytes {
		return nil, fmt.Errorf("%w: the result of %s would be %d bytes, more than the %d a NATS message can carry",
			ErrResultTooLarge, res.CausationID, len(doc), MaxResultBytes)
	}
	return doc, nil
}

// MaxResultBytes bounds a result event's JSON: NATS's default max_payload
// (1 MiB) less room for headers. A bigger result could never be published
// and would stop the outbox; the event is refused instead.
const MaxResultBytes = 1<<20 - 16<<10

// queueProcessedOrder stores the paid order with its result (doc), which
// returns and cancellations are computed from.
func queueProcessedOrder(b *pgx.Batch, ev *events.Event, cat *rules.Catalog, res *events.OrderResult, p *paidPlan, doc []byte) {
	b.Queue(`
		INSERT INTO processed_orders (order_id, event_id, customer_id, occurred_at, status, catalog_version, result, points_earned, points_redeemed)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		string(ev.Paid.ID), ev.EventID, p.orderCustomer(ev), p.t, res.Status, cat.Version, doc, p.pointsEarned(), p.pointsRedeemed())
}

// orderCustomer is the stored order's customer_id: NULL when anonymous.
func (p *paidPlan) orderCustomer(ev *events.Event) *string {
	if ev.Paid.CustomerID == "" {
		return nil
	}
	id := string(ev.Paid.CustomerID)
	return &id
}

// pointsEarned and pointsRedeemed are what a stored order records for
// returns to claw back and restore.
func (p *paidPlan) pointsEarned() dec.Decimal {
	if p.cust == nil {
		return dec.Zero
	}
	return p.earned
}

func (p *paidPlan) pointsRedeemed() dec.Decimal {
	if p.outcome.Rejection != nil {
		return dec.Zero
	}
	return p.outcome.RedeemPoints
}

// result builds the SPEC §4 result of a paid order (or of a quote).
func (p *paidPlan) result(cat *rules.Catalog, ev *events.Event, applied string) *events.OrderResult {
	f := formatOf(cat)
	out := p.outcome
	res := newOrderResult(cat, ev, string(ev.Paid.ID), ev.Paid.Currency)
	res.CustomerID = string(ev.Paid.CustomerID)
	res.Status = applied
	if out.Rejection != nil {
		res.Status = events.StatusRejected
		e := *out.Rejection
		res.Error = &e
	}
	res.Totals = events.Totals{Gross: f.amount(out.Totals.Gross), Discount: f.amount(out.Totals.Discount), Net: f.amount(out.Totals.Net)}
	for _, l := range out.Lines {
		res.Lines = append(res.Lines, events.LineResult{ID: l.ID, Qty: l.Qty, Gross: f.amount(l.Gross), Discount: f.amount(l.Discount), Net: f.amount(l.Net)})
	}
	for _, d := range out.Discounts {
		d.Amount = f.amount(d.Amount)
		res.Discounts = append(res.Discounts, d)
	}
	res.Trace = append(res.Trace, out.Trace...)
	if p.cust == nil {
		return res
	}
	p.couponResults(f, res)
	pts := newPoints(f)
	pts.Debt = f.pts(p.debtAfter)
	pts.Balance = f.pts(p.balance)
	if out.Rejection == nil {
		pts.Earned = f.pts(p.earned)
		if p.earned.Sign() > 0 {
			pts.EarnedExpiresAt = f.timePtr(p.expiresAt)
		}
		if p.newLot != nil && applied == events.StatusApplied {
			pts.EarnedLotID = p.newLot.ID
		}
		pts.Redeemed = f.pts(out.RedeemPoints)
		pts.RedeemedLots = lotAmounts(f, p.takes)
	}
	res.Points = pts
	if m := p.member; m != nil {
		res.Membership = &events.Membership{
			Path: m.path.ID, Level: p.level, PreviousLevel: m.level, Changed: p.levelChanged,
			QualifyingAmount: f.amount(p.qualifying),
		}
	}
	return res
}

// newOrderResult fills the envelope every order result shares.
func newOrderResult(cat *rules.Catalog, ev *events.Event, orderID, currency string) *events.OrderResult {
	res := &events.OrderResult{
		Type:           events.TypeOrderResult,
		CausationID:    ev.EventID,
		SourceType:     ev.Type,
		OccurredAt:     events.FormatTime(ev.OccurredAt),
		OrderID:        orderID,
		Currency:       currency,
		CatalogVersion: cat.Version,
		Lines:          []events.LineResult{},
		Discounts:      []events.Discount{},
		Trace:          []events.Trace{},
	}
	if ev.EventID != "" {
		res.EventID = events.ResultEventID(ev.EventID)
	}
	return res
}

func newPoints(f format) *events.Points {
	z := f.pts(dec.Zero)
	return &events.Points{Earned: z, Redeemed: z, RedeemedLots: []events.LotAmount{}, ClawedBack: z, Restored: z, Debt: z, Balance: z}
}

func lotAmounts(f format, takes []take) []events.LotAmount {
	out := make([]events.LotAmount, 0, len(takes))
	for _, tk := range takes {
		out = append(out, events.LotAmount{LotID: tk.Lot.ID, Amount: f.pts(tk.Amount), ExpiresAt: f.timePtr(tk.Lot.ExpiresAt)})
	}
	return out
}
