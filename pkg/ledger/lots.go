package ledger

import (
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/promoengine/promoengine/pkg/dec"
)

// lot is one row of point_lots as the ledger works with it in memory.
type lot struct {
	ID          string
	CustomerID  string
	OrderID     string
	EarnedAt    time.Time
	AvailableAt time.Time
	ExpiresAt   *time.Time // nil: never expires
	Original    dec.Decimal
	Remaining   dec.Decimal
}

// lotColumns is what scanLot reads, in order.
const lotColumns = `lot_id, customer_id, order_id, earned_at, available_at, expires_at, original, remaining`

func scanLot(row pgx.CollectableRow) (*lot, error) {
	var l lot
	err := row.Scan(&l.ID, &l.CustomerID, &l.OrderID, &l.EarnedAt, &l.AvailableAt, &l.ExpiresAt, &l.Original, &l.Remaining)
	return &l, err
}

// expiredAt reports whether the lot has expired at t: expires_at <= t.
// Expiry is a property of time, not of the job: an expired lot is never
// spendable whether or not the job has zeroed it yet.
func (l *lot) expiredAt(t time.Time) bool { return l.ExpiresAt != nil && !l.ExpiresAt.After(t) }

// spendableAt reports whether the lot's points can be spent at t: it has
// points, it is available (not pending) and it has not expired.
func (l *lot) spendableAt(t time.Time) bool {
	return l.Remaining.Sign() > 0 && !l.AvailableAt.After(t) && !l.expiredAt(t)
}

// fefoLess is the consumption order of SPEC §6.6: earliest expiry first,
// never-expiring last, then earliest earned, then lot id (bytewise, so the
// order does not depend on the database's collation).
func fefoLess(a, b *lot) bool {
	switch {
	case a.ExpiresAt == nil && b.ExpiresAt != nil:
		return false
	case a.ExpiresAt != nil && b.ExpiresAt == nil:
		return true
	case a.ExpiresAt != nil && !a.ExpiresAt.Equal(*b.ExpiresAt):
		return a.ExpiresAt.Before(*b.ExpiresAt)
	case !a.EarnedAt.Equal(b.EarnedAt):
		return a.EarnedAt.Before(b.EarnedAt)
	}
	return a.ID < b.ID
}

func sortFEFO(lots []*lot) {
	sort.SliceStable(lots, func(i, j int) bool { return fefoLess(lots[i], lots[j]) })
}

// balanceAt sums what the customer can spend at t.
func balanceAt(lots []*lot, t time.Time) dec.Decimal {
	sum := dec.Zero
	for _, l := range lots {
		if l.spendableAt(t) {
			sum = dec.Add(sum, l.Remaining)
		}
	}
	return sum
}

// take is an amount moved out of (or into) one lot.
type take struct {
	Lot    *lot
	Amount dec.Decimal
}

// consumeFEFO takes amount from the lots spendable at t in FEFO order,
// lowering their Remaining in memory, and returns what it took from each
// and the part it could not cover. lots must be sorted with sortFEFO.
func consumeFEFO(lots []*lot, t time.Time, amount dec.Decimal) ([]take, dec.Decimal) {
	var takes []take
	left := amount
	for _, l := range lots {
		if left.Sign() <= 0 {
			break
		}
		if !l.spendableAt(t) {
			continue
		}
		n := dec.Min(l.Remaining, left)
		l.Remaining = dec.Sub(l.Remaining, n)
		left = dec.Sub(left, n)
		takes = append(takes, take{Lot: l, Amount: n})
	}
	return takes, left
}

// Ledger entry kinds (see the migration for what each means).
const (
	kindEarn        = "earn"
	kindRedeem      = "redeem"
	kindExpire      = "expire"
	kindClawback    = "clawback"
	kindRestore     = "restore"
	kindDebt        = "debt"
	kindDebtPayment = "debt_payment"
)

// journal collects the ledger entries and lot changes of one event so that
// they are written in two statements whatever their number.
type journal struct {
	customerID string
	orderID    string
	eventID    string
	at         time.Time

	kinds   []string
	amounts []dec.Decimal
	lotIDs  []string

	// Changes of remaining per existing lot, in first-touch order.
	deltaOrder []string
	deltas     map[string]dec.Decimal
	expired    map[string]bool
}

func newJournal(customerID, orderID, eventID string, at time.Time) *journal {
	return &journal{customerID: customerID, orderID: orderID, eventID: eventID, at: pgTime(at),
		deltas: map[string]dec.Decimal{}, expired: map[string]bool{}}
}

// entry records a movement of amount (> 0); lotID may be "" (debt).
func (j *journal) entry(kind string, amount dec.Decimal, lotID string) {
	if amount.Sign() <= 0 {
		return
	}
	j.kinds = append(j.kinds, kind)
	j.amounts = append(j.amounts, amount)
	j.lotIDs = append(j.lotIDs, lotID)
}

// lotDelta records a change of an existing lot's remaining.
func (j *journal) lotDelta(lotID string, delta dec.Decimal) {
	cur, seen := j.deltas[lotID]
	if !seen {
		j.deltaOrder = append(j.deltaOrder, lotID)
		cur = dec.Zero
	}
	j.deltas[lotID] = dec.Add(cur, delta)
}

// markExpired records that a lot's points were expired at j.at.
func (j *journal) markExpired(lotID string) {
	j.lotDelta(lotID, dec.Zero)
	j.expired[lotID] = true
}

// queue adds the journal's statements to b.
func (j *journal) queue(b *pgx.Batch) {
	if len(j.deltaOrder) > 0 {
		deltas := make([]string, len(j.deltaOrder))
		expire := make([]bool, len(j.deltaOrder))
		for i, id := range j.deltaOrder {
			deltas[i] = j.deltas[id].String()
			expire[i] = j.expired[id]
		}
		b.Queue(`
			UPDATE point_lots l
			SET remaining = l.remaining + d.delta,
			    expired_at = CASE WHEN d.expire THEN COALESCE(l.expired_at, $4) ELSE l.expired_at END
			FROM unnest($1::text[], $2::numeric[], $3::bool[]) AS d(id, delta, expire)
			WHERE l.lot_id = d.id`, j.deltaOrder, numericArray(deltas), expire, j.at)
	}
	if len(j.kinds) > 0 {
		b.Queue(`
			INSERT INTO ledger_entries (customer_id, kind, amount, lot_id, order_id, event_id, occurred_at)
			SELECT $1, e.kind, e.amount, NULLIF(e.lot_id, ''), NULLIF($5, ''), $6, $7
			FROM unnest($2::text[], $3::numeric[], $4::text[]) WITH ORDINALITY AS e(kind, amount, lot_id, n)
			ORDER BY e.n`,
			j.customerID, j.kinds, decArray(j.amounts), j.lotIDs, j.orderID, j.eventID, j.at)
	}
}

// queueNewLot adds the insert of a freshly earned lot to b.
func queueNewLot(b *pgx.Batch, l *lot) {
	b.Queue(`
		INSERT INTO point_lots (lot_id, customer_id, order_id, earned_at, available_at, expires_at, original, remaining)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`,
		l.ID, l.CustomerID, l.OrderID, l.EarnedAt, l.AvailableAt, l.ExpiresAt, l.Original)
}
