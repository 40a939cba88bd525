package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/promoengine/promoengine/pkg/dec"
	"github.com/promoengine/promoengine/pkg/rules"
)

// CustomerView is a customer's points and levels, for `customer show` and
// GET /v1/customers/{id}.
type CustomerView struct {
	CustomerID string         `json:"customer_id"`
	Balance    dec.Decimal    `json:"balance"`
	Debt       dec.Decimal    `json:"debt"`
	Lots       []LotView      `json:"lots"`
	Levels     []LevelView    `json:"levels"`
	History    []HistoryEntry `json:"history"`
	Coupons    []CouponView   `json:"coupons"`
}

// CouponView is one coupon the customer was issued (SPEC §6.10), with its
// state at the view's time: issued (usable), used, voided or expired.
type CouponView struct {
	Code       string `json:"code"`
	ProgramID  string `json:"program_id"`
	IssuedBy   string `json:"issued_by"`
	OrderID    string `json:"order_id"` // the order that earned it
	ValidFrom  string `json:"valid_from"`
	ValidUntil string `json:"valid_until"`
	State      string `json:"state"`
	UsedBy     string `json:"used_by,omitempty"` // the order that used it
}

// LotView is one lot with points left.
type LotView struct {
	LotID       string      `json:"lot_id"`
	EarnedAt    string      `json:"earned_at"`
	AvailableAt string      `json:"available_at"`
	ExpiresAt   *string     `json:"expires_at"`
	Original    dec.Decimal `json:"original"`
	Remaining   dec.Decimal `json:"remaining"`
}

// LevelView is the level held on one path.
type LevelView struct {
	Path  string `json:"path"`
	Level string `json:"level"`
	Since string `json:"since"`
}

// HistoryEntry is one ledger entry (kind earn, redeem, …) or one level
// change (kind level_change), newest first.
type HistoryEntry struct {
	At            string       `json:"at"`
	Kind          string       `json:"kind"`
	Amount        *dec.Decimal `json:"amount,omitempty"`
	LotID         string       `json:"lot_id,omitempty"`
	OrderID       string       `json:"order_id,omitempty"`
	EventID       string       `json:"event_id"`
	Path          string       `json:"path,omitempty"`
	PreviousLevel string       `json:"previous_level,omitempty"`
	Level         string       `json:"level,omitempty"`
	Reason        string       `json:"reason,omitempty"`
}

// HistoryLimit is how many history entries Customer returns.
const HistoryLimit = 50

// CouponLimit is how many coupons Customer returns, newest first: a till
// needs the usable ones, which are the newest.
const CouponLimit = 100

// Customer returns the customer's view at `at`: the balance spendable then,
// the debt, the lots with points left that have not expired by then
// (pending ones included) in FEFO order, the levels, the last
// HistoryLimit ledger entries and level changes, and the last CouponLimit
// coupons with their state then. ErrUnknownCustomer when the
// customer has no applied order.
func (s *Store) Customer(ctx context.Context, db DB, id string, at time.Time, cat *rules.Catalog) (*CustomerView, error) {
	at = pgTime(at)
	f := formatOf(cat)
	v := &CustomerView{CustomerID: id, Lots: []LotView{}, Levels: []LevelView{}, History: []HistoryEntry{}, Coupons: []CouponView{}}
	var opened *time.Time
	found := false
	var lots []*lot
	b := &pgx.Batch{}
	b.Queue(`SELECT debt, opened_at FROM accounts WHERE customer_id = $1`, id).QueryRow(func(row pgx.Row) error {
		err := row.Scan(&v.Debt, &opened)
		if isNoRows(err) {
			return nil
		}
		found = err == nil
		return err
	})
	b.Queue(`SELECT `+lotColumns+` FROM point_lots
		WHERE customer_id = $1 AND remaining > 0 AND (expires_at IS NULL OR expires_at > $2)`, id, at).
		Query(func(rows pgx.Rows) error {
			var err error
			lots, err = pgx.CollectRows(rows, scanLot)
			return err
		})
	b.Queue(`SELECT path, level, since FROM member_levels WHERE customer_id = $1 ORDER BY path`, id).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var lv LevelView
			var since time.Time
			if err := rows.Scan(&lv.Path, &lv.Level, &since); err != nil {
				return err
			}
			lv.Since = f.time(since)
			v.Levels = append(v.Levels, lv)
		}
		return rows.Err()
	})
	b.Queue(`
		(SELECT occurred_at, id, 0 AS src, kind, amount, COALESCE(lot_id, ''), COALESCE(order_id, ''), event_id, '', '', '', ''
		 FROM ledger_entries WHERE customer_id = $1 ORDER BY id DESC LIMIT $2)
		UNION ALL
		(SELECT changed_at, id, 1, 'level_change', NULL, '', '', event_id, path, COALESCE(previous_level, ''), level, reason
		 FROM level_history WHERE customer_id = $1 ORDER BY id DESC LIMIT $2)
		ORDER BY 1 DESC, 3 DESC, 2 DESC
		LIMIT $2`, id, HistoryLimit).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var h HistoryEntry
			var when time.Time
			var seq int64
			var src int
			if err := rows.Scan(&when, &seq, &src, &h.Kind, &h.Amount, &h.LotID, &h.OrderID, &h.EventID,
				&h.Path, &h.PreviousLevel, &h.Level, &h.Reason); err != nil {
				return err
			}
			h.At = f.time(when)
			v.History = append(v.History, h)
		}
		return rows.Err()
	})
	b.Queue(`SELECT `+couponColumns+` FROM coupons WHERE customer_id = $1 ORDER BY valid_from DESC, code COLLATE "C" LIMIT $2`, id, CouponLimit).
		Query(func(rows pgx.Rows) error {
			cs, err := pgx.CollectRows(rows, scanCoupon)
			for _, c := range cs {
				cv := CouponView{Code: c.code, ProgramID: c.programID, IssuedBy: c.issuedBy, OrderID: c.orderID,
					ValidFrom: f.time(c.validFrom), ValidUntil: f.time(c.validUntil), State: c.state(at)}
				if c.usedBy != nil {
					cv.UsedBy = *c.usedBy
				}
				v.Coupons = append(v.Coupons, cv)
			}
			return err
		})
	if err := runBatch(ctx, db, b, "read customer "+id); err != nil {
		return nil, err
	}
	if !found || opened == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownCustomer, id)
	}
	sortFEFO(lots)
	v.Balance = f.pts(balanceAt(lots, at))
	v.Debt = f.pts(v.Debt)
	for _, l := range lots {
		v.Lots = append(v.Lots, LotView{
			LotID: l.ID, EarnedAt: f.time(l.EarnedAt), AvailableAt: f.time(l.AvailableAt), ExpiresAt: f.timePtr(l.ExpiresAt),
			Original: f.pts(l.Original), Remaining: f.pts(l.Remaining),
		})
	}
	return v, nil
}
